//! Store apps (`mode: isv`): configuration, the missing ticket, the app entry, the store-app
//! events (`app_ticket`, `app_open`, `app_status_change`, `app_uninstalled`), redaction.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use unilogin_conformance::TraceCapture;
use unilogin_conformance::isv::{APP_TENANT, ORG_TENANTS, StoreAppSetup, TicketReceiver};
use unilogin_core::config::{PlatformConfig, StaticConfig};
use unilogin_core::events::{EventCodec, EventError, EventRequest, Inbound, StoreAppChange};
use unilogin_core::http::{HttpClient, HttpConfig};
use unilogin_core::platform::Flow;
use unilogin_core::registry::PlatformContext;
use unilogin_core::web_login::Callback;
use unilogin_core::{AuthCode, Error, Sso, TenantId};
use unilogin_feishu::Feishu;
use unilogin_feishu::events::{FeishuEvents, store_app_changes};
use unilogin_testkit::feishu::{self, FakeFeishu};
use unilogin_testkit::{FakePlatform as _, FakeUser};

const APP_ID: &str = "cli_store0001";
const SECRET: &str = "fake_fs_store_secret_0001";
const ORG_A: &str = "tk_store_a";
const TOKEN: &str = "vt_example";

fn entry(fs: &FakeFeishu, tenant: &str, mode: &str, corp_id: Option<&str>) -> Value {
    let mut v = json!({
        "tenant": tenant, "platform": "feishu", "mode": mode,
        "app_key": APP_ID, "app_secret": SECRET,
        "hosts": { "open": fs.base_url(), "accounts": fs.base_url() },
        "redirect_uris": ["https://app.example.com/auth/callback"],
    });
    if let Some(c) = corp_id {
        v["corp_id"] = json!(c);
    }
    v
}

fn sso(entries: Vec<Value>) -> Result<Sso, Error> {
    let configs: Vec<PlatformConfig> = entries
        .into_iter()
        .map(|e| serde_json::from_value(e).unwrap())
        .collect();
    Sso::builder(StaticConfig::new(configs)).build()
}

/// Builds the handler of one entry (what `Sso` does when the tenant is first used).
fn build(entry: Value) -> Result<(), Error> {
    let config: PlatformConfig = serde_json::from_value(entry).unwrap();
    let http = HttpClient::new(&HttpConfig::default()).unwrap();
    Feishu::build(PlatformContext {
        config: &config,
        http: &http,
    })
    .map(|_| ())
}

#[tokio::test]
async fn mode_is_internal_or_isv_and_isv_needs_no_corp_id() {
    let fs = feishu::start().await;
    let err = build(entry(&fs, "acme", "store", Some(ORG_A))).unwrap_err();
    assert!(err.to_string().contains("mode"), "{err}");
    let err = build(entry(&fs, "acme", "isv", Some("a:b"))).unwrap_err();
    assert!(err.to_string().contains("corp_id"), "{err}");
    // The app entry (no corp_id) and an organisation entry both build.
    build(entry(&fs, "app", "isv", None)).unwrap();
    build(entry(&fs, "org-a", "isv", Some(ORG_A))).unwrap();
    // The secret never shows in the handler's Debug.
    let config: PlatformConfig =
        serde_json::from_value(entry(&fs, "org-a", "isv", Some(ORG_A))).unwrap();
    let http = HttpClient::new(&HttpConfig::default()).unwrap();
    let handler = Feishu::build(PlatformContext {
        config: &config,
        http: &http,
    })
    .unwrap();
    let debug = format!("{handler:?}");
    assert!(debug.contains(ORG_A) && !debug.contains(SECRET), "{debug}");
    // An internal entry still requires corp_id.
    let err = build(entry(&fs, "acme", "internal", None)).unwrap_err();
    assert!(err.to_string().contains("corp_id"), "{err}");
}

#[tokio::test]
async fn before_any_ticket_logins_are_ticket_missing() {
    let fs = feishu::start().await;
    fs.add_app(feishu::FakeApp::new(APP_ID, SECRET, ORG_A));
    let sso = sso(vec![entry(&fs, "org-a", "isv", Some(ORG_A))]).unwrap();
    let tenant = TenantId::new("org-a").unwrap();
    let mut logins = Vec::new();
    for _ in 0..8 {
        let (sso, tenant) = (sso.clone(), tenant.clone());
        logins.push(tokio::spawn(async move {
            let code = AuthCode::new("fake-code");
            sso.login_with_code(&tenant, "feishu", &code).await
        }));
    }
    for login in logins {
        let err = login.await.unwrap().unwrap_err();
        assert!(matches!(err, Error::TicketMissing { .. }), "{err:?}");
        assert!(err.to_string().contains(APP_ID), "{err}");
    }
    // Feishu was asked once to push a ticket, whatever the number of logins.
    assert_eq!(fs.calls(feishu::endpoints::APP_TICKET_RESEND), 1);
    let code = AuthCode::new("fake-code");
    let again = sso.login_with_code(&tenant, "feishu", &code).await;
    assert!(matches!(again, Err(Error::TicketMissing { .. })));
    assert_eq!(fs.calls(feishu::endpoints::APP_TICKET_RESEND), 1);
}

#[tokio::test]
async fn the_app_entry_logs_no_one_in() {
    let fs = feishu::start().await;
    let sso = sso(vec![entry(&fs, "app", "isv", None)]).unwrap();
    let tenant = TenantId::new("app").unwrap();
    let redirect = url::Url::parse("https://app.example.com/auth/callback").unwrap();
    let web = sso
        .start_web_login(
            &tenant,
            "feishu",
            unilogin_core::platform::Flow::Web,
            &redirect,
        )
        .await;
    let err = web.map(|_| ()).unwrap_err();
    assert!(matches!(err, Error::Unsupported { .. }), "{err:?}");
    assert!(err.to_string().contains("own entry"), "{err}");
}

fn v1(event: Value) -> Value {
    json!({"ts": "1602491118.218", "uuid": "u-1", "token": TOKEN, "type": "event_callback", "event": event})
}

fn open_plain(doc: &Value) -> Result<Vec<StoreAppChange>, EventError> {
    let codec = FeishuEvents::new(TOKEN, None).unwrap();
    let body = doc.to_string().into_bytes();
    let Inbound::Event(event) = codec.open(&EventRequest::new("POST", &body))? else {
        panic!("an event")
    };
    codec.store_app_changes(&event)
}

#[test]
fn app_ticket_is_a_pushed_ticket_with_its_ts() {
    let doc = v1(json!({"app_id": APP_ID, "app_ticket": "tk-secret-1", "type": "app_ticket"}));
    let changes = open_plain(&doc).unwrap();
    let [StoreAppChange::TicketPushed { app, ticket }] = &changes[..] else {
        panic!("{changes:?}")
    };
    assert_eq!(app.app_id().as_str(), APP_ID);
    assert_eq!(app.platform().as_str(), "feishu");
    assert_eq!(ticket.value.expose(), "tk-secret-1");
    assert_eq!(
        ticket.pushed_at,
        UNIX_EPOCH + Duration::from_millis(1_602_491_118_218)
    );
    assert!(!format!("{changes:?}").contains("tk-secret-1"));
}

#[test]
fn installation_events_map_to_their_changes() {
    let installed = |doc: Value, who: Option<&str>| {
        let changes = open_plain(&doc).unwrap();
        let [StoreAppChange::Installed { org, info, .. }] = &changes[..] else {
            panic!("{changes:?}")
        };
        assert_eq!(org.as_str(), ORG_A);
        assert_eq!(info.installer.as_deref(), who);
    };
    installed(
        v1(
            json!({"app_id": APP_ID, "tenant_key": ORG_A, "type": "app_open",
            "applicants": [{"open_id": "ou_x"}], "installer": {"open_id": "ou_admin"}}),
        ),
        Some("ou_admin"),
    );
    installed(
        v1(
            json!({"app_id": APP_ID, "tenant_key": ORG_A, "type": "app_open",
            "installer_employee": {"open_id": "ou_member"}}),
        ),
        Some("ou_member"),
    );
    installed(
        v1(
            json!({"app_id": APP_ID, "tenant_key": ORG_A, "type": "app_status_change",
            "status": "start_by_tenant", "operator": {"open_id": "ou_op"}}),
        ),
        Some("ou_op"),
    );
    for doc in [
        v1(
            json!({"app_id": APP_ID, "tenant_key": ORG_A, "type": "app_status_change", "status": "stop_by_tenant"}),
        ),
        v1(
            json!({"app_id": APP_ID, "tenant_key": ORG_A, "type": "app_status_change", "status": "stop_by_platform"}),
        ),
        v1(json!({"app_id": APP_ID, "tenant_key": ORG_A, "type": "app_uninstalled"})),
    ] {
        let changes = open_plain(&doc).unwrap();
        let [StoreAppChange::Uninstalled { app, org }] = &changes[..] else {
            panic!("{changes:?}")
        };
        assert_eq!((app.app_id().as_str(), org.as_str()), (APP_ID, ORG_A));
    }
}

#[test]
fn incomplete_store_app_events_are_typed_errors_and_others_are_none() {
    let missing = |doc: Value, name: &str| match open_plain(&doc) {
        Err(EventError::MissingField { name: n }) => assert_eq!(n, name),
        other => panic!("{other:?}"),
    };
    missing(
        v1(json!({"type": "app_ticket", "app_ticket": "t"})),
        "app_id",
    );
    missing(
        v1(json!({"type": "app_ticket", "app_id": APP_ID})),
        "app_ticket",
    );
    missing(
        v1(json!({"type": "app_uninstalled", "app_id": APP_ID})),
        "tenant_key",
    );
    missing(
        v1(json!({"type": "app_status_change", "app_id": APP_ID, "tenant_key": ORG_A})),
        "status",
    );
    let other = v1(json!({"type": "user_add", "open_id": "ou_1"}));
    assert!(open_plain(&other).unwrap().is_empty());
    // A `ts` that is not seconds falls back to the receive time.
    let now = SystemTime::now();
    let mut doc = v1(json!({"app_id": APP_ID, "app_ticket": "t", "type": "app_ticket"}));
    doc["ts"] = json!("soon");
    let changes = store_app_changes("app_ticket", &doc, now).unwrap();
    let [StoreAppChange::TicketPushed { ticket, .. }] = &changes[..] else {
        panic!()
    };
    assert_eq!(ticket.pushed_at, now);
}

#[test]
fn a_wrong_verification_token_is_refused_for_store_app_events() {
    let mut doc = v1(json!({"app_id": APP_ID, "app_ticket": "t", "type": "app_ticket"}));
    doc["token"] = json!("wrong");
    assert!(matches!(open_plain(&doc), Err(EventError::WrongToken)));
}

// ---- End to end against the fake's store-app side -------------------------------------------

const ORG_B: &str = "tk_store_b";
const ORG_NONE: &str = "tk_store_none";
const USER_A: &str = "store_user_a";
const USER_B: &str = "store_user_b";
const USER_NONE: &str = "store_user_none";

/// A fake with the store app installed by `ORG_A` and `ORG_B` (one member each) and a person
/// of a tenant that never installed it.
async fn store_fake() -> FakeFeishu {
    let fs = feishu::start().await;
    fs.add_store_app(feishu::FakeApp::new(APP_ID, SECRET, "tk_developer"));
    fs.install_store_app(APP_ID, ORG_A);
    fs.install_store_app(APP_ID, ORG_B);
    for (user, org) in [(USER_A, ORG_A), (USER_B, ORG_B), (USER_NONE, ORG_NONE)] {
        fs.add_user(
            FakeUser::new(user)
                .name(user)
                .open_id(format!("ou_{user}"))
                .in_org(org),
        );
    }
    fs
}

/// The app entry and the two organisations' entries.
fn store_sso(fs: &FakeFeishu) -> Sso {
    sso(vec![
        entry(fs, "app", "isv", None),
        entry(fs, "org-a", "isv", Some(ORG_A)),
        entry(fs, "org-b", "isv", Some(ORG_B)),
    ])
    .unwrap()
}

/// The app's event receiver feeding `sso`'s ticket store.
async fn store_receiver(fs: &FakeFeishu, sso: &Sso) -> TicketReceiver {
    let creds = fs.event_credentials_for(APP_ID);
    let codec = FeishuEvents::new(&creds.token, creds.aes_key.as_deref()).unwrap();
    TicketReceiver::start(Arc::new(codec), sso.ticket_store().clone()).await
}

/// An H5 login-free login of `user` through `tenant`'s entry: the user id.
async fn h5_login(sso: &Sso, fs: &FakeFeishu, tenant: &str, user: &str) -> Result<String, Error> {
    let code = AuthCode::new(fs.approve_web_login_with(APP_ID, user, ""));
    let tenant = TenantId::new(tenant).unwrap();
    let login = sso.login_with_code(&tenant, "feishu", &code).await?;
    Ok(login.profile.user_id.unwrap_or_default())
}

/// A web login of `user` through `tenant`'s entry, the browser sent through the fake's
/// authorize page (the code bound to the redirect URI and the PKCE challenge).
async fn web_login(sso: &Sso, fs: &FakeFeishu, tenant: &str, user: &str) -> Result<String, Error> {
    let tenant = TenantId::new(tenant).unwrap();
    let redirect = url::Url::parse("https://app.example.com/auth/callback").unwrap();
    let start = sso
        .start_web_login(&tenant, "feishu", Flow::Web, &redirect)
        .await?;
    let back = fs.approve_on_page(&start.url, user).await.unwrap();
    let callback = Callback::from_query(back.query_pairs()).expect("a code and the state");
    let login = sso.finish_web_login(&start.pending, &callback).await?;
    Ok(login.profile.user_id.unwrap_or_default())
}

async fn push_ticket(fs: &FakeFeishu, rx: &TicketReceiver) -> String {
    let (delivery, ticket) = fs.push_app_ticket(APP_ID, &rx.url).await.unwrap();
    assert!(delivery.accepted(), "{:?}", delivery.verdict);
    ticket
}

/// The pushed `app_ticket` buys one `app_access_token` for the app; each installed
/// organisation gets one `tenant_access_token`, whatever the number and kind of logins; the
/// directory is read with the organisation's own tenant token.
#[tokio::test]
async fn two_organisations_log_in_with_one_app_token_and_one_tenant_token_each() {
    let fs = store_fake().await;
    let sso = store_sso(&fs);
    let rx = store_receiver(&fs, &sso).await;
    push_ticket(&fs, &rx).await;
    for _ in 0..3 {
        assert_eq!(h5_login(&sso, &fs, "org-a", USER_A).await.unwrap(), USER_A);
        assert_eq!(h5_login(&sso, &fs, "org-b", USER_B).await.unwrap(), USER_B);
    }
    assert_eq!(web_login(&sso, &fs, "org-a", USER_A).await.unwrap(), USER_A);
    assert_eq!(web_login(&sso, &fs, "org-b", USER_B).await.unwrap(), USER_B);
    assert_eq!(fs.calls(feishu::endpoints::STORE_APP_ACCESS_TOKEN), 1);
    assert_eq!(fs.calls(feishu::endpoints::STORE_TENANT_ACCESS_TOKEN), 2);
    // The self-built app endpoints are never asked, and no resend was needed.
    assert_eq!(fs.calls(feishu::endpoints::TENANT_ACCESS_TOKEN), 0);
    assert_eq!(fs.calls(feishu::endpoints::APP_ACCESS_TOKEN), 0);
    assert_eq!(fs.calls(feishu::endpoints::APP_TICKET_RESEND), 0);
    // Eight logins, each with its directory read.
    assert_eq!(fs.calls(feishu::endpoints::CONTACT_USER), 8);
}

/// The installing organisation is the membership check: a member of the other installed
/// organisation is `NotInTenant` on this entry (in both flows), and a person whose
/// organisation never installed the app gets no code at all.
#[tokio::test]
async fn a_member_of_another_tenant_is_not_in_tenant() {
    let fs = store_fake().await;
    let sso = store_sso(&fs);
    let rx = store_receiver(&fs, &sso).await;
    push_ticket(&fs, &rx).await;
    let err = h5_login(&sso, &fs, "org-a", USER_B).await.unwrap_err();
    assert!(matches!(err, Error::NotInTenant { .. }), "{err:?}");
    let err = web_login(&sso, &fs, "org-a", USER_B).await.unwrap_err();
    assert!(matches!(err, Error::NotInTenant { .. }), "{err:?}");
    let err = h5_login(&sso, &fs, "org-a", USER_NONE).await.unwrap_err();
    assert!(matches!(err, Error::InvalidCode { .. }), "{err:?}");
    // The refusals cost no directory read and no tenant token of the other organisation.
    assert_eq!(fs.calls(feishu::endpoints::CONTACT_USER), 0);
    assert!(fs.calls(feishu::endpoints::STORE_TENANT_ACCESS_TOKEN) <= 1);
}

/// A tenant token the directory refuses is forgotten (only it) and the call made once more
/// with a fresh one: the app token and the other organisation's tenant token stay.
#[tokio::test]
async fn a_rejected_tenant_token_is_invalidated_and_the_call_retried_once() {
    let fs = store_fake().await;
    let sso = store_sso(&fs);
    let rx = store_receiver(&fs, &sso).await;
    push_ticket(&fs, &rx).await;
    assert_eq!(h5_login(&sso, &fs, "org-a", USER_A).await.unwrap(), USER_A);
    assert_eq!(h5_login(&sso, &fs, "org-b", USER_B).await.unwrap(), USER_B);
    assert_eq!(fs.revoke_tenant_tokens(APP_ID, ORG_A), 1);
    fs.reset_calls();
    assert_eq!(h5_login(&sso, &fs, "org-a", USER_A).await.unwrap(), USER_A);
    assert_eq!(fs.calls(feishu::endpoints::STORE_TENANT_ACCESS_TOKEN), 1);
    assert_eq!(fs.calls(feishu::endpoints::STORE_APP_ACCESS_TOKEN), 0);
    assert_eq!(fs.calls(feishu::endpoints::CONTACT_USER), 2);
    assert_eq!(h5_login(&sso, &fs, "org-b", USER_B).await.unwrap(), USER_B);
    assert_eq!(fs.calls(feishu::endpoints::STORE_TENANT_ACCESS_TOKEN), 1);
    // The app token refused at `tenant_access_token` (99991664): only it is forgotten, a new
    // one is fetched with the held ticket, and the tenant token asked once more.
    assert_eq!(fs.revoke_store_app_tokens(APP_ID), 1);
    assert_eq!(fs.revoke_tenant_tokens(APP_ID, ORG_A), 1);
    fs.reset_calls();
    assert_eq!(h5_login(&sso, &fs, "org-a", USER_A).await.unwrap(), USER_A);
    assert_eq!(fs.calls(feishu::endpoints::STORE_APP_ACCESS_TOKEN), 1);
    assert_eq!(fs.calls(feishu::endpoints::STORE_TENANT_ACCESS_TOKEN), 2);
    assert_eq!(h5_login(&sso, &fs, "org-b", USER_B).await.unwrap(), USER_B);
    assert_eq!(fs.calls(feishu::endpoints::STORE_TENANT_ACCESS_TOKEN), 2);
    // An uninstalled organisation's tenant token is refused for good: a typed upstream error,
    // the other organisation unaffected.
    let d = fs
        .push_app_uninstalled(APP_ID, ORG_A, &rx.url)
        .await
        .unwrap();
    assert!(d.accepted(), "{:?}", d.verdict);
    assert!(matches!(
        rx.changes().last(),
        Some(StoreAppChange::Uninstalled { org, .. }) if org.as_str() == ORG_A
    ));
    assert!(h5_login(&sso, &fs, "org-a", USER_A).await.is_err());
    assert_eq!(h5_login(&sso, &fs, "org-b", USER_B).await.unwrap(), USER_B);
}

/// Before the first push a login is `TicketMissing` and Feishu is asked to push; the ticket it
/// then pushes to the subscription opens the logins, without a second resend.
#[tokio::test]
async fn a_resend_opens_the_logins() {
    let fs = store_fake().await;
    let sso = store_sso(&fs);
    let rx = store_receiver(&fs, &sso).await;
    fs.subscribe_store_app(APP_ID, &rx.url);
    let err = h5_login(&sso, &fs, "org-a", USER_A).await.unwrap_err();
    assert!(matches!(err, Error::TicketMissing { .. }), "{err:?}");
    assert_eq!(fs.calls(feishu::endpoints::APP_TICKET_RESEND), 1);
    let mut user = None;
    for _ in 0..200 {
        match h5_login(&sso, &fs, "org-a", USER_A).await {
            Ok(u) => {
                user = Some(u);
                break;
            }
            Err(Error::TicketMissing { .. }) => {
                tokio::time::sleep(Duration::from_millis(25)).await;
            }
            Err(e) => panic!("{e:?}"),
        }
    }
    assert_eq!(
        user.as_deref(),
        Some(USER_A),
        "the resent ticket never opened the logins"
    );
    assert_eq!(fs.calls(feishu::endpoints::APP_TICKET_RESEND), 1);
    assert!(matches!(
        rx.changes().first(),
        Some(StoreAppChange::TicketPushed { .. })
    ));
}

/// A ticket Feishu no longer accepts (10012 at `app_access_token`) is a typed error naming the
/// ticket, and asks for a new push; the pushed ticket then opens the logins.
#[tokio::test]
async fn an_outdated_ticket_is_typed_and_asks_for_a_push() {
    let fs = store_fake().await;
    let sso = store_sso(&fs);
    let rx = store_receiver(&fs, &sso).await;
    let first = push_ticket(&fs, &rx).await;
    // Two newer tickets reach Feishu's side but not ours (another replica's receiver): the
    // one we hold is outdated.
    let other = "http://127.0.0.1:9/unreachable";
    for _ in 0..2 {
        let _ = fs.push_app_ticket(APP_ID, other).await;
    }
    assert_ne!(fs.live_app_ticket(APP_ID).as_deref(), Some(first.as_str()));
    fs.subscribe_store_app(APP_ID, &rx.url);
    let err = h5_login(&sso, &fs, "org-a", USER_A).await.unwrap_err();
    assert!(
        matches!(&err, Error::Misconfigured { .. }) && err.to_string().contains("10012"),
        "{err:?}"
    );
    assert!(!err.to_string().contains(&first), "{err}");
    assert_eq!(fs.calls(feishu::endpoints::APP_TICKET_RESEND), 1);
    let mut ok = false;
    for _ in 0..200 {
        if h5_login(&sso, &fs, "org-a", USER_A).await.is_ok() {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(ok, "the pushed ticket never opened the logins");
}

/// Nothing secret shows in any log line at TRACE across the whole chain: the app secret, the
/// ticket, the app and tenant tokens, the codes, the user tokens.
#[tokio::test]
async fn no_secret_in_the_trace_logs() {
    let logs = TraceCapture::start();
    let fs = store_fake().await;
    let sso = store_sso(&fs);
    let rx = store_receiver(&fs, &sso).await;
    let ticket = push_ticket(&fs, &rx).await;
    let code = fs.approve_web_login_with(APP_ID, USER_A, "");
    let login = sso
        .login_with_code(
            &TenantId::new("org-a").unwrap(),
            "feishu",
            &AuthCode::new(code.clone()),
        )
        .await
        .unwrap();
    assert_eq!(web_login(&sso, &fs, "org-b", USER_B).await.unwrap(), USER_B);
    let err = h5_login(&sso, &fs, "org-a", USER_B).await.unwrap_err();
    let prepared = sso
        .prepare(&TenantId::new("org-a").unwrap(), "feishu")
        .await
        .unwrap();
    let tenant_token = prepared.handler().fetch_app_token().await.unwrap().token;
    let mut secrets = vec![
        SECRET.to_string(),
        ticket,
        code,
        tenant_token.expose().to_string(),
    ];
    if let Some(t) = &login.user_token {
        secrets.push(t.access_token.expose().to_string());
    }
    let text = logs.text();
    assert!(text.contains("login"), "the capture saw nothing");
    let texts = [
        format!("{login:?}"),
        format!("{err} {err:?}"),
        format!("{:?}", rx.changes()),
    ];
    for s in &secrets {
        assert!(!text.contains(s.as_str()), "a secret leaked into the logs");
        for t in &texts {
            assert!(!t.contains(s.as_str()), "a secret leaked into {t}");
        }
    }
}

// ---- The shared store-app cases (`unilogin_conformance::isv`) --------------------------------

struct FeishuStore(FakeFeishu);

#[async_trait::async_trait]
impl StoreAppSetup for FeishuStore {
    fn platform(&self) -> &'static str {
        "feishu"
    }

    fn entries(&self) -> Vec<PlatformConfig> {
        let [a, b] = ORG_TENANTS;
        [
            entry(&self.0, APP_TENANT, "isv", None),
            entry(&self.0, a, "isv", Some(ORG_A)),
            entry(&self.0, b, "isv", Some(ORG_B)),
        ]
        .into_iter()
        .map(|e| serde_json::from_value(e).unwrap())
        .collect()
    }

    fn codec(&self) -> Arc<dyn EventCodec> {
        let creds = self.0.event_credentials_for(APP_ID);
        Arc::new(FeishuEvents::new(&creds.token, creds.aes_key.as_deref()).unwrap())
    }

    async fn push_ticket(&self, url: &str) -> String {
        let (delivery, ticket) = self.0.push_app_ticket(APP_ID, url).await.unwrap();
        assert!(delivery.accepted(), "{:?}", delivery.verdict);
        ticket
    }

    async fn login(
        &self,
        sso: &Sso,
        tenant: &TenantId,
        member_of: usize,
        secrets: &mut Vec<String>,
    ) -> Result<String, Error> {
        let code = self
            .0
            .approve_web_login_with(APP_ID, &self.member(member_of), "");
        secrets.push(code.clone());
        let login = sso
            .login_with_code(tenant, "feishu", &AuthCode::new(code))
            .await?;
        Ok(login.profile.user_id.unwrap_or_default())
    }

    fn member(&self, org: usize) -> String {
        [USER_A, USER_B][org].to_string()
    }

    fn revoke_org_tokens(&self, org: usize) {
        self.0.revoke_tenant_tokens(APP_ID, [ORG_A, ORG_B][org]);
    }

    fn token_fetches(&self) -> (u64, u64) {
        (
            self.0.calls(feishu::endpoints::STORE_APP_ACCESS_TOKEN),
            self.0.calls(feishu::endpoints::STORE_TENANT_ACCESS_TOKEN),
        )
    }

    fn app_secret(&self) -> String {
        SECRET.to_string()
    }
}

async fn store_setup() -> Box<dyn StoreAppSetup> {
    Box::new(FeishuStore(store_fake().await))
}

unilogin_conformance::store_app_suite!(store_setup);

/// Each installed organisation's pages are signed with its own jssdk ticket, fetched with its
/// tenant token: a page signed for one tenant is refused inside the other's client.
#[tokio::test]
async fn each_organisation_signs_its_pages_with_its_own_ticket() {
    let fs = store_fake().await;
    let sso = store_sso(&fs);
    let rx = store_receiver(&fs, &sso).await;
    push_ticket(&fs, &rx).await;
    let page = "https://app.example.com/h5/index?x=1#/home";
    let apis = vec!["biz.contact.choose".to_string()];
    let mut configs = Vec::new();
    for tenant in ["org-a", "org-b"] {
        let prepared = sso
            .prepare(&TenantId::new(tenant).unwrap(), "feishu")
            .await
            .unwrap();
        let signed = prepared
            .jsapi_config(page, unilogin_core::TicketKind::Jsapi, &apis)
            .await
            .unwrap();
        configs.push(signed.config);
    }
    fs.verify_store_jsapi_config(ORG_A, &configs[0], page)
        .unwrap();
    fs.verify_store_jsapi_config(ORG_B, &configs[1], page)
        .unwrap();
    assert!(
        fs.verify_store_jsapi_config(ORG_B, &configs[0], page)
            .is_err()
    );
    assert!(
        fs.verify_store_jsapi_config(ORG_A, &configs[1], page)
            .is_err()
    );
    assert_eq!(fs.store_jsapi_ticket_fetches(APP_ID, ORG_A), 1);
    assert_eq!(fs.store_jsapi_ticket_fetches(APP_ID, ORG_B), 1);
    assert_eq!(fs.calls(feishu::endpoints::STORE_TENANT_ACCESS_TOKEN), 2);
}
