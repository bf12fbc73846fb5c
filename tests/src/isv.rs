//! A store app's event receiver, as the gateway runs one, for the platform crates' store-app
//! tests: every push is opened with the app's [`EventCodec`] (query parameters and headers as
//! sent), a pushed ticket is offered to the [`TicketStore`] (the `Sso`'s), every store-app
//! change is recorded, and the answer is the codec's acknowledgement (the handshake's reply
//! for a URL check; HTTP 400 with the error for a push the codec refuses).
//!
//! The shared store-app cases ([`StoreAppSetup`], [`store_app_suite!`](crate::store_app_suite))
//! run against it: no ticket, one app-level token for every organisation, membership, a
//! refused organisation token, no secret at TRACE.
//!
//! ```no_run
//! # async fn demo(codec: std::sync::Arc<dyn unilogin_core::events::EventCodec>, sso: unilogin_core::Sso) {
//! use unilogin_conformance::isv::TicketReceiver;
//! let rx = TicketReceiver::start(codec, sso.ticket_store().clone()).await;
//! // Point the fake's pushes at `rx.url`; read what arrived in `rx.seen`.
//! println!("{}", rx.url);
//! # }
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use unilogin_core::config::{PlatformConfig, StaticConfig};
use unilogin_core::events::{EventCodec, EventRequest, Inbound, StoreAppChange};
use unilogin_core::isv::TicketStore;
use unilogin_core::{Error, Sso, TenantId};

/// A running receiver: its URL and the store-app changes it saw, in arrival order.
#[derive(Clone)]
pub struct TicketReceiver {
    /// Where the platform's fake pushes (`http://127.0.0.1:PORT/events`).
    pub url: String,
    /// Every store-app change of every accepted push, the tickets included.
    pub seen: Arc<Mutex<Vec<StoreAppChange>>>,
    codec: Arc<dyn EventCodec>,
    tickets: Arc<dyn TicketStore>,
}

impl TicketReceiver {
    /// Starts a receiver on a loopback port (it runs until the test's runtime ends).
    ///
    /// # Panics
    /// If no loopback port can be bound.
    pub async fn start(codec: Arc<dyn EventCodec>, tickets: Arc<dyn TicketStore>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        let addr = listener.local_addr().expect("the bound address");
        let rx = Self {
            url: format!("http://{addr}/events"),
            seen: Arc::default(),
            codec,
            tickets,
        };
        let router = axum::Router::new()
            .route("/events", axum::routing::post(receive))
            .with_state(rx.clone());
        tokio::spawn(async move { axum::serve(listener, router).await });
        rx
    }

    /// The changes seen so far (a copy).
    pub fn changes(&self) -> Vec<StoreAppChange> {
        self.seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}

async fn receive(
    State(rx): State<TicketReceiver>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, Vec<u8>) {
    let headers: Vec<(String, String)> = headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    let mut request = EventRequest::new("POST", &body);
    for (k, v) in &query {
        request = request.query(k, v);
    }
    for (k, v) in &headers {
        request = request.header(k, v);
    }
    let event = match rx.codec.open(&request) {
        Ok(Inbound::Event(event)) => event,
        Ok(Inbound::Handshake(h)) => return (StatusCode::OK, h.reply.into_body()),
        Err(e) => return (StatusCode::BAD_REQUEST, e.to_string().into()),
    };
    let changes = match rx.codec.store_app_changes(&event) {
        Ok(changes) => changes,
        Err(e) => return (StatusCode::BAD_REQUEST, e.to_string().into()),
    };
    for change in changes {
        if let StoreAppChange::TicketPushed { app, ticket } = &change
            && let Err(e) = rx.tickets.offer(app, ticket.clone()).await
        {
            return (StatusCode::SERVICE_UNAVAILABLE, e.to_string().into());
        }
        rx.seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(change);
    }
    (StatusCode::OK, rx.codec.acknowledge(&event).into_body())
}

// ---- The store-app cases every platform passes ----------------------------------------------

/// The app entry's tenant in the shared store-app cases.
pub const APP_TENANT: &str = "store-app";

/// The two installed organisations' entries' tenants, in the order of
/// [`StoreAppSetup::login`]'s `member_of`.
pub const ORG_TENANTS: [&str; 2] = ["store-org-a", "store-org-b"];

/// What a platform's store-app test gives the shared cases ([`store_app_suite!`](crate::store_app_suite)):
/// a fake with one store app installed by two organisations (one member each), and how to
/// drive it.
#[async_trait::async_trait]
pub trait StoreAppSetup: Send + Sync {
    /// The platform's name.
    fn platform(&self) -> &'static str;
    /// The configuration: the app entry at [`APP_TENANT`] (`mode: isv`, no `corp_id`) and the
    /// two organisations' entries at [`ORG_TENANTS`], pointing at the fake.
    fn entries(&self) -> Vec<PlatformConfig>;
    /// The codec of the app's pushes.
    fn codec(&self) -> Arc<dyn EventCodec>;
    /// Pushes a fresh ticket of the app to `url`; the ticket.
    async fn push_ticket(&self, url: &str) -> String;
    /// Logs the member of organisation `member_of` (0 or 1) in through `tenant`'s entry, in
    /// the platform's in-client store-app flow; their user id. Every code used is added to
    /// `secrets`.
    async fn login(
        &self,
        sso: &Sso,
        tenant: &TenantId,
        member_of: usize,
        secrets: &mut Vec<String>,
    ) -> Result<String, Error>;
    /// The user id of organisation `org`'s member.
    fn member(&self, org: usize) -> String;
    /// Revokes organisation `org`'s live organisation tokens at the fake (a call with one is
    /// then refused as an invalid token).
    fn revoke_org_tokens(&self, org: usize);
    /// Upstream fetches so far: (app-level tokens, organisation tokens). A platform whose
    /// organisation token is bought with the app's own credentials (DingTalk's
    /// `corpAccessToken`) fetches no app-level token for logins: 0.
    fn token_fetches(&self) -> (u64, u64);
    /// The app's secret.
    fn app_secret(&self) -> String;
}

fn store_sso(setup: &dyn StoreAppSetup) -> Sso {
    let sso = Sso::builder(StaticConfig::new(setup.entries()));
    sso.build().expect("the store-app entries build")
}

fn tenant(name: &str) -> TenantId {
    TenantId::new(name).expect("a tenant id")
}

/// Before the first ticket every organisation's login is `TicketMissing` (typed, naming the
/// app); the app entry is `Unsupported` then and after, before any upstream call.
pub async fn store_no_ticket_is_ticket_missing(setup: Box<dyn StoreAppSetup>) {
    let sso = store_sso(&*setup);
    let mut secrets = Vec::new();
    for (org, t) in ORG_TENANTS.iter().enumerate() {
        let err = setup
            .login(&sso, &tenant(t), org, &mut secrets)
            .await
            .expect_err("no ticket yet");
        assert!(matches!(err, Error::TicketMissing { .. }), "{err:?}");
    }
    assert_eq!(setup.token_fetches(), (0, 0), "no token without a ticket");
    let rx = TicketReceiver::start(setup.codec(), sso.ticket_store().clone()).await;
    for pushed in [false, true] {
        if pushed {
            setup.push_ticket(&rx.url).await;
        }
        let err = setup
            .login(&sso, &tenant(APP_TENANT), 0, &mut secrets)
            .await
            .expect_err("the app entry logs no one in");
        assert!(matches!(err, Error::Unsupported { .. }), "{err:?}");
    }
    assert_eq!(
        setup.token_fetches(),
        (0, 0),
        "the app entry asked upstream"
    );
}

/// After the push both organisations' members log in, repeatedly, with at most one app-level
/// token and one organisation token per organisation.
pub async fn store_logins_share_one_app_token(setup: Box<dyn StoreAppSetup>) {
    let sso = store_sso(&*setup);
    let rx = TicketReceiver::start(setup.codec(), sso.ticket_store().clone()).await;
    setup.push_ticket(&rx.url).await;
    let mut secrets = Vec::new();
    for _ in 0..3 {
        for (org, t) in ORG_TENANTS.iter().enumerate() {
            let user = setup.login(&sso, &tenant(t), org, &mut secrets).await;
            assert_eq!(
                user.expect("an installed member logs in"),
                setup.member(org)
            );
        }
    }
    let (app, orgs) = setup.token_fetches();
    assert!(app <= 1, "{app} app-level token fetches");
    assert_eq!(orgs, 2, "one organisation token per organisation");
}

/// A member of the other installed organisation never logs in through this entry:
/// `NotInTenant`, or `InvalidCode` where the platform binds the in-client code to the
/// organisation whose client issued it (DingTalk).
pub async fn store_membership_is_the_installing_organisation(setup: Box<dyn StoreAppSetup>) {
    let sso = store_sso(&*setup);
    let rx = TicketReceiver::start(setup.codec(), sso.ticket_store().clone()).await;
    setup.push_ticket(&rx.url).await;
    let mut secrets = Vec::new();
    for (org, t) in ORG_TENANTS.iter().enumerate() {
        let err = setup
            .login(&sso, &tenant(t), 1 - org, &mut secrets)
            .await
            .expect_err("another organisation's member");
        assert!(
            matches!(err, Error::NotInTenant { .. } | Error::InvalidCode { .. }),
            "{err:?}"
        );
    }
}

/// An organisation token the platform refuses is invalidated (only it) and the call made once
/// more: the login succeeds, one new organisation token is fetched, the app-level token and
/// the other organisation's token are kept.
pub async fn store_a_refused_org_token_invalidates_only_itself(setup: Box<dyn StoreAppSetup>) {
    let sso = store_sso(&*setup);
    let rx = TicketReceiver::start(setup.codec(), sso.ticket_store().clone()).await;
    setup.push_ticket(&rx.url).await;
    let mut secrets = Vec::new();
    for (org, t) in ORG_TENANTS.iter().enumerate() {
        setup
            .login(&sso, &tenant(t), org, &mut secrets)
            .await
            .expect("warm");
    }
    let (app, orgs) = setup.token_fetches();
    assert_eq!(orgs, 2);
    setup.revoke_org_tokens(0);
    let user = setup
        .login(&sso, &tenant(ORG_TENANTS[0]), 0, &mut secrets)
        .await;
    assert_eq!(user.expect("retried once"), setup.member(0));
    assert_eq!(setup.token_fetches(), (app, 3));
    let user = setup
        .login(&sso, &tenant(ORG_TENANTS[1]), 1, &mut secrets)
        .await;
    assert_eq!(user.expect("untouched"), setup.member(1));
    assert_eq!(setup.token_fetches(), (app, 3));
}

/// Nothing secret in any log line at TRACE, in the errors or in the pushed changes' `Debug`:
/// the app secret, the ticket, the codes, the app-level and organisation tokens.
pub async fn store_secrets_never_leak(setup: Box<dyn StoreAppSetup>) {
    let logs = crate::TraceCapture::start();
    let sso = store_sso(&*setup);
    let rx = TicketReceiver::start(setup.codec(), sso.ticket_store().clone()).await;
    let mut secrets = vec![setup.app_secret()];
    let mut texts = Vec::new();
    secrets.push(setup.push_ticket(&rx.url).await);
    let login = setup
        .login(&sso, &tenant(ORG_TENANTS[0]), 0, &mut secrets)
        .await;
    texts.push(format!("{login:?}"));
    let err = setup
        .login(&sso, &tenant(ORG_TENANTS[0]), 1, &mut secrets)
        .await;
    texts.push(format!("{err:?}"));
    // The organisation token and (the app entry's app token) the app-level token.
    for t in [ORG_TENANTS[0], APP_TENANT] {
        let prepared = sso.prepare(&tenant(t), setup.platform()).await;
        let handler = prepared.expect("a configured entry").handler().clone();
        let token = handler.fetch_app_token().await.expect("a token");
        secrets.push(token.token.expose().to_string());
    }
    texts.push(format!("{:?}", rx.changes()));
    let logs = logs.text();
    assert!(logs.contains("login"), "the log capture saw nothing");
    for s in secrets.iter().filter(|s| s.len() >= 6) {
        assert!(!logs.contains(s.as_str()), "a secret leaked into the logs");
        for t in &texts {
            assert!(!t.contains(s.as_str()), "a secret leaked into {t}");
        }
    }
}

/// Expands the store-app cases for a platform: `store_app_suite!(setup_fn);` where `setup_fn`
/// is an `async fn() -> Box<dyn StoreAppSetup>`.
#[macro_export]
macro_rules! store_app_suite {
    ($setup:path) => {
        mod store_app_conformance {
            use super::*;

            #[tokio::test]
            async fn no_ticket_is_ticket_missing() {
                $crate::isv::store_no_ticket_is_ticket_missing($setup().await).await;
            }

            #[tokio::test]
            async fn logins_share_one_app_token() {
                $crate::isv::store_logins_share_one_app_token($setup().await).await;
            }

            #[tokio::test]
            async fn membership_is_the_installing_organisation() {
                $crate::isv::store_membership_is_the_installing_organisation($setup().await).await;
            }

            #[tokio::test]
            async fn a_refused_org_token_invalidates_only_itself() {
                $crate::isv::store_a_refused_org_token_invalidates_only_itself($setup().await)
                    .await;
            }

            #[tokio::test]
            async fn secrets_never_leak() {
                $crate::isv::store_secrets_never_leak($setup().await).await;
            }
        }
    };
}
