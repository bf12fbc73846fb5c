//! Store apps (商店应用): `mode: isv` (reference `isv-jsapi-events.md` §1.2).
//!
//! An entry in this mode with a `corp_id` is **one organisation that installed the app**:
//! `app_key` is the store app's `app_id`, `app_secret` its secret, `corp_id` the installing
//! tenant's `tenant_key`. Without `corp_id` it is the **app entry**: it receives the app's
//! pushes and fetches the `app_access_token`, and logs no one in.
//!
//! The token chain, every step through the core token cache:
//!
//! 1. the newest pushed `app_ticket` from the ticket store ([`Error::TicketMissing`] before
//!    the first push, after asking Feishu to push one: `auth/v3/app_ticket/resend`, at most
//!    once per app per [`RESEND_INTERVAL`] across callers and replicas);
//! 2. `auth/v3/app_access_token` `{app_id, app_secret, app_ticket}`, cached under
//!    [`TicketApp::shared_suite_key`] (one per app for every organisation); error 10012
//!    (ticket invalid) asks for a new push as above and is a typed
//!    [`Error::Misconfigured`];
//! 3. `auth/v3/tenant_access_token` `{app_access_token, tenant_key}`, cached under
//!    [`TokenKey::organisation`] of that key: the entry's app token. A tenant token a call
//!    rejects invalidates only itself; an app token rejected by the tenant-token call
//!    invalidates only the app token.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde_json::json;
use unilogin_core::envelope::{malformed, require_str, seconds_at};
use unilogin_core::isv::{OrgId, TicketApp, TicketValue};
use unilogin_core::platform::Base;
use unilogin_core::platform::sdk::secret_rejected;
use unilogin_core::token_cache::{FetchedToken, TokenKey};
use unilogin_core::{AccessToken, Error, PlatformName, Result, UpstreamCode};

use crate::Feishu;
use crate::api::SECRET_HINT;

/// The shortest interval between two `app_ticket/resend` calls for one app.
pub const RESEND_INTERVAL: Duration = Duration::from_secs(60);

/// The tenant-token endpoint (store apps).
const TENANT_TOKEN: &str = "auth/v3/tenant_access_token";

/// The error code of an invalid `app_ticket`.
pub const TICKET_INVALID: i64 = 10012;

pub(crate) const APP_ENTRY: &str = "logins on the store app's own entry (mode: isv without corp_id): each installed organisation has its own entry, with corp_id set to its tenant_key";
pub(crate) const TICKET_HINT: &str = "Feishu rejected the app_ticket (10012): a new push was requested (app_ticket/resend); check that the event subscription URL of the app entry receives app_ticket events";

/// The store-app side of a Feishu handler.
#[derive(Debug, Clone)]
pub(crate) struct Store {
    pub(crate) app: TicketApp,
    /// The app token's key, shared by every entry of the app.
    pub(crate) app_key: TokenKey,
    /// The installed organisation and its tenant-token key; `None` on the app entry.
    pub(crate) org: Option<(OrgId, TokenKey)>,
    /// When this entry last asked for a ticket push (one slot per configured entry).
    last_resend: Arc<Mutex<Option<Instant>>>,
}

impl Store {
    /// The store-app side of an entry, or the configuration field that cannot be one.
    pub(crate) fn new(
        platform: &PlatformName,
        app_id: &str,
        tenant_key: Option<&str>,
    ) -> std::result::Result<Self, &'static str> {
        let app = TicketApp::new(platform.clone(), app_id).map_err(|_| "app_key")?;
        let app_key = app.shared_suite_key();
        let org = match tenant_key {
            None => None,
            Some(t) => {
                let org = OrgId::new(t).map_err(|_| "corp_id")?;
                let key = app_key.organisation(&org);
                Some((org, key))
            }
        };
        Ok(Self {
            app,
            app_key,
            org,
            last_resend: Arc::default(),
        })
    }

    /// The installed organisation, or `Unsupported` on the app entry.
    pub(crate) fn org(&self, base: &Base) -> Result<&OrgId> {
        self.org
            .as_ref()
            .map(|(org, _)| org)
            .ok_or_else(|| base.unsupported(APP_ENTRY))
    }

    /// The entry's app token key: the tenant token, or on the app entry the app token.
    pub(crate) fn token_key(&self) -> &TokenKey {
        self.org.as_ref().map_or(&self.app_key, |(_, key)| key)
    }
}

impl Feishu {
    fn store(&self) -> Result<&Store> {
        self.isv
            .as_ref()
            .ok_or_else(|| self.base.unsupported("store-app tokens (mode: isv)"))
    }

    /// The newest pushed `app_ticket`; without one, asks for a push and fails with
    /// [`Error::TicketMissing`].
    async fn app_ticket(&self) -> Result<TicketValue> {
        let store = self.store()?;
        let tickets = &self.base.services()?.tickets;
        match tickets.get(&store.app).await? {
            Some(ticket) => Ok(ticket.value),
            None => {
                self.request_ticket().await;
                Err(store.app.missing())
            }
        }
    }

    /// `app_ticket/resend`, at most once per [`RESEND_INTERVAL`]: concurrent callers share one
    /// call ([`TokenCache::single_flight`](unilogin_core::token_cache::TokenCache::single_flight)
    /// under a key derived from the app's), whose success the shared store keeps for the
    /// interval (other entries and replicas of the app skip it); each entry also remembers its
    /// own last request. Failures are logged, not returned: the
    /// caller reports the missing ticket either way.
    pub(crate) async fn request_ticket(&self) {
        let Ok(store) = self.store() else { return };
        let Ok(services) = self.base.services() else {
            return;
        };
        {
            // This entry asked recently: the push is on its way.
            let mut last = store
                .last_resend
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if last.is_some_and(|at| at.elapsed() < RESEND_INTERVAL) {
                return;
            }
            *last = Some(Instant::now());
        }
        let lease = store.app_key.ticket(
            unilogin_core::jsapi::TicketKind::Jsapi,
            &AccessToken::new("app_ticket/resend"),
        );
        let this = self.clone();
        let result = services
            .token_cache
            .single_flight(&lease, RESEND_INTERVAL, move || async move {
                this.resend().await?;
                Ok(AccessToken::new("requested"))
            })
            .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, app = %store.app, "app_ticket/resend failed");
        }
    }

    async fn resend(&self) -> Result<()> {
        let endpoint = "auth/v3/app_ticket/resend";
        let ctx = self.base.ctx(endpoint);
        let body =
            json!({"app_id": self.base.app_key.as_str(), "app_secret": self.app_secret.expose()});
        let request = self.post_json(endpoint, &body)?;
        let response = self.open_call(&ctx, request, None, false).await;
        response.map_err(secret_rejected(SECRET_HINT))?;
        tracing::info!(app = %self.base.app_key.as_str(), "asked Feishu to push a new app_ticket");
        Ok(())
    }

    /// The store app's `app_access_token` (`mode: isv` only), through the token cache: one
    /// fetch per app for every organisation.
    pub async fn store_app_token(&self) -> Result<AccessToken> {
        let store = self.store()?;
        let cache = &self.base.services()?.token_cache;
        let this = self.clone();
        cache
            .get(&store.app_key, move || async move {
                this.fetch_store_app_token().await
            })
            .await
    }

    /// A fresh `app_access_token` with the newest ticket.
    pub(crate) async fn fetch_store_app_token(&self) -> Result<FetchedToken> {
        let ticket = self.app_ticket().await?;
        let endpoint = "auth/v3/app_access_token";
        let ctx = self.base.ctx(endpoint);
        let body = json!({
            "app_id": self.base.app_key.as_str(),
            "app_secret": self.app_secret.expose(),
            "app_ticket": ticket.expose(),
        });
        let request = self.post_json(endpoint, &body)?;
        let response = match self.open_call(&ctx, request, None, false).await {
            Ok(response) => response,
            Err(
                e @ Error::Misconfigured {
                    code: UpstreamCode::Number(TICKET_INVALID),
                    ..
                },
            ) => {
                self.request_ticket().await;
                return Err(e);
            }
            Err(e) => return Err(secret_rejected(SECRET_HINT)(e)),
        };
        fetched(&ctx, &response, "/app_access_token")
    }

    /// A fresh `tenant_access_token` of the entry's organisation (its app token).
    pub(crate) async fn fetch_tenant_token(&self) -> Result<FetchedToken> {
        let store = self.store()?;
        let org = store.org(&self.base)?;
        let ctx = self.base.ctx(TENANT_TOKEN);
        let app_token = self.store_app_token().await?;
        let response = match self.tenant_token_with(&ctx, org, &app_token).await {
            // The app token was refused: forget only it, and try once more.
            Err(e) if e.is_token_invalid() => {
                let cache = &self.base.services()?.token_cache;
                cache.invalidate(&store.app_key, &app_token).await;
                let fresh = self.store_app_token().await?;
                self.tenant_token_with(&ctx, org, &fresh).await
            }
            other => other,
        };
        let response = response.map_err(secret_rejected(SECRET_HINT))?;
        fetched(&ctx, &response, "/tenant_access_token")
    }

    /// `auth/v3/tenant_access_token` for `org` with `app_token`.
    async fn tenant_token_with(
        &self,
        ctx: &unilogin_core::UpstreamCtx,
        org: &OrgId,
        app_token: &AccessToken,
    ) -> Result<unilogin_core::http::UpstreamResponse> {
        let body = json!({"app_access_token": app_token.expose(), "tenant_key": org.as_str()});
        let request = self.post_json(TENANT_TOKEN, &body)?;
        self.open_call(ctx, request, None, false).await
    }
}

fn fetched(
    ctx: &unilogin_core::UpstreamCtx,
    response: &unilogin_core::http::UpstreamResponse,
    at: &str,
) -> Result<FetchedToken> {
    let token = AccessToken::new(require_str(ctx, response, at)?);
    let expires_in = seconds_at(&response.body, "/expire")
        .ok_or_else(|| malformed(ctx, response, "missing or non-positive `expire`"))?;
    Ok(FetchedToken { token, expires_in })
}
