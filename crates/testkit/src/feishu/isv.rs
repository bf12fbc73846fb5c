//! The store-app side of the Feishu fake (商店应用, reference `isv-jsapi-events.md` §1.2):
//! store apps, pushed `app_ticket`s, installations per `tenant_key`, the token chain and the
//! installation events.
//!
//! | endpoint name ([`super::endpoints`]) | method and path |
//! |---|---|
//! | `store_app_access_token` | `POST /open-apis/auth/v3/app_access_token` `{app_id, app_secret, app_ticket}` → `{code, msg, app_access_token, expire}` |
//! | `store_tenant_access_token` | `POST /open-apis/auth/v3/tenant_access_token` `{app_access_token, tenant_key}` → `{code, msg, tenant_access_token, expire}` |
//! | `app_ticket_resend` | `POST /open-apis/auth/v3/app_ticket/resend` `{app_id, app_secret}` → `{code:0}`; the ticket then arrives **by event** at the app's subscription ([`FakeFeishu::subscribe_store_app`]) |
//!
//! What it validates (no `Authorization` header on these calls, JSON bodies as at every token
//! endpoint): the app id and secret (10003 / 10014); the `app_ticket` is the newest pushed or
//! the one before it (10012 otherwise, also before any push); a self-built app asking the
//! store-app endpoint gets 10003. The `app_access_token` (`a-…`) and the tenant tokens (`t-…`)
//! follow the reissue rule of every Feishu app token ([`super::REISSUE_BELOW`]); a tenant token
//! is asked with a live `app_access_token` of the app (99991664 otherwise) for a tenant that
//! installed it ([`CODE_TENANT_NOT_INSTALLED`] otherwise). A tenant token acts for its tenant
//! only: the directory (`contact/v3/users`) finds that tenant's members, the jssdk ticket is
//! the tenant's ([`FakeFeishu::verify_store_jsapi_config`] checks a page of one tenant). The v1 user-token endpoints take the `app_access_token`.
//!
//! Logins: codes (JSAPI, authorize page, [`FakeFeishu::approve_web_login_with`]) of a store app
//! are issued only to members of a tenant that installed it (a never-issued code otherwise);
//! `user_info` reports the person's own `tenant_key`, so a member of one installed tenant
//! logging in through another's entry is seen for what they are.
//!
//! Events go out in the v1 envelope `{ts, uuid, token, type: "event_callback", event}`,
//! sealed with the app's Encrypt Key and signed like every Feishu push: `app_ticket`,
//! `app_open`, `app_status_change`, `app_uninstalled`.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::extract::Request;
use serde_json::{Value, json};

use super::envelope::{
    CODE_APP_TOKEN_INVALID, CODE_INVALID_APP, CODE_TICKET_INVALID, error, ok_fields,
};
use super::handlers::{Shape, json_body, require, token_request};
use super::{AppTokenMeta, FakeApp, FakeFeishu, Feishu};
use crate::events::{Delivery, FakeEvent, PushError};
use crate::http::Reply;
use crate::store::random_id;

pub use super::envelope::CODE_TENANT_NOT_INSTALLED;

/// The store-app state of one app: its pushed tickets and the tenants that installed it.
#[derive(Debug, Clone, Default)]
pub(crate) struct StoreState {
    /// Pushed tickets, newest last (the fake accepts the last two).
    tickets: Vec<String>,
    /// `tenant_key`s of the tenants that installed the app and did not remove it.
    installed: BTreeSet<String>,
    /// The app's event subscription URL, where `app_ticket/resend` pushes.
    subscription: Option<String>,
}

impl Feishu {
    /// Whether `app_id` is a store app.
    pub(crate) fn is_store_app(&self, app_id: &str) -> bool {
        self.store_apps.get(app_id).is_some()
    }

    /// Whether `tenant` installed the store app `app_id`.
    pub(crate) fn installed(&self, app_id: &str, tenant: &str) -> bool {
        self.store_apps
            .get(app_id)
            .is_some_and(|s| s.installed.contains(tenant))
    }

    fn update_store(&self, app_id: &str, f: impl FnOnce(&mut StoreState)) -> bool {
        let Some(mut state) = self.store_apps.get(app_id) else {
            return false;
        };
        f(&mut state);
        self.store_apps.insert(app_id.to_owned(), state);
        true
    }

    /// A new ticket of `app_id` (the last two stay accepted); `None` for no store app.
    fn new_ticket(&self, app_id: &str) -> Option<String> {
        let ticket = random_id("fake_fs_app_ticket_");
        let t = ticket.clone();
        self.update_store(app_id, |s| s.tickets.push(t))
            .then_some(ticket)
    }

    /// The v1 envelope of a store-app event, as plaintext.
    fn v1_event(&self, app_id: &str, event: Value) -> String {
        let token = self.event_credentials(app_id).token;
        let ts = crate::events::unix_now();
        json!({
            "ts": format!("{}.{:03}", ts.as_secs(), ts.subsec_millis()),
            "uuid": random_id("")[..32].to_owned(),
            "token": token,
            "type": "event_callback",
            "event": event,
        })
        .to_string()
    }

    /// Push a fresh `app_ticket` of `app_id` to `url`; the delivery and the ticket.
    pub(crate) async fn push_ticket(
        &self,
        app_id: &str,
        url: &str,
    ) -> Result<(Delivery, String), PushError> {
        let ticket = self
            .new_ticket(app_id)
            .ok_or(PushError::BadCredentials("unknown store app"))?;
        let event = json!({"app_id": app_id, "app_ticket": ticket, "type": "app_ticket"});
        let text = self.v1_event(app_id, event);
        let delivery = self
            .push_for(app_id, url, FakeEvent::Custom(text), None)
            .await?;
        Ok((delivery, ticket))
    }
}

/// `POST /open-apis/auth/v3/app_access_token` (store apps).
pub(crate) async fn store_app_access_token(st: Arc<Feishu>, req: Request) -> Reply {
    let (app, obj) = token_request(&st, req).await?;
    let state = st
        .store_apps
        .get(&app.app_id)
        .ok_or_else(|| error(CODE_INVALID_APP))?;
    let ticket = super::handlers::field(&obj, "app_ticket");
    let recent = ticket.is_some_and(|t| state.tickets.iter().rev().take(2).any(|k| k == t));
    if !recent {
        return Err(error(CODE_TICKET_INVALID));
    }
    let meta = AppTokenMeta {
        app_id: app.app_id.clone(),
        tenant_key: None,
    };
    let (token, left) = st.reissued(&st.store_app_tokens, meta);
    super::handlers::mark_app_kind(&st, &token);
    Ok(ok_fields(
        json!({"app_access_token": token, "expire": left.as_secs()}),
    ))
}

/// `POST /open-apis/auth/v3/tenant_access_token` (store apps): the tenant token of an
/// installed tenant.
pub(crate) async fn store_tenant_access_token(st: Arc<Feishu>, req: Request) -> Reply {
    let (parts, body) = req.into_parts();
    let obj = json_body(&parts.headers, body, Shape::Open).await?;
    let app_token = require(&obj, "app_access_token", Shape::Open)?;
    let tenant = require(&obj, "tenant_key", Shape::Open)?;
    let meta = st
        .store_app_tokens
        .check(app_token)
        .map_err(|_| error(CODE_APP_TOKEN_INVALID))?;
    if !st.installed(&meta.app_id, tenant) {
        return Err(error(CODE_TENANT_NOT_INSTALLED));
    }
    let meta = AppTokenMeta {
        app_id: meta.app_id,
        tenant_key: Some(tenant.to_owned()),
    };
    let (token, left) = st.reissued(&st.app_tokens, meta);
    Ok(ok_fields(
        json!({"tenant_access_token": token, "expire": left.as_secs()}),
    ))
}

/// After a store app's `app_ticket/resend`: the ticket goes out by event to the app's
/// subscription, as Feishu does, a moment after the answer.
pub(crate) fn resend_ticket(st: &Arc<Feishu>, app: &FakeApp) {
    let Some(url) = st.store_apps.get(&app.app_id).and_then(|s| s.subscription) else {
        return;
    };
    let (st, app_id) = (Arc::clone(st), app.app_id.clone());
    tokio::spawn(async move {
        if let Err(e) = st.push_ticket(&app_id, &url).await {
            tracing::warn!(app_id, error = %e, "fake feishu: the resent app_ticket was not delivered");
        }
    });
}

impl FakeFeishu {
    /// Register a store app (its credentials, permissions and callback hosts are `app`'s;
    /// `app.tenant_key` is the developer's tenant). No ticket is pushed and no tenant has
    /// installed it yet.
    pub fn add_store_app(&self, app: FakeApp) {
        let st = self.backend();
        st.store_apps
            .insert(app.app_id.clone(), StoreState::default());
        st.apps.insert(app.app_id.clone(), app);
    }

    /// The store app's event subscription URL: where `app_ticket/resend` delivers a new ticket.
    pub fn subscribe_store_app(&self, app_id: &str, url: &str) {
        let url = url.to_owned();
        self.backend()
            .update_store(app_id, |s| s.subscription = Some(url));
    }

    /// `tenant_key` installs the store app `app_id` (set-up without an event).
    pub fn install_store_app(&self, app_id: &str, tenant_key: &str) {
        let tenant = tenant_key.to_owned();
        self.backend().update_store(app_id, |s| {
            s.installed.insert(tenant);
        });
    }

    /// Whether `tenant_key` has the store app `app_id` installed.
    pub fn store_app_installed(&self, app_id: &str, tenant_key: &str) -> bool {
        self.backend().installed(app_id, tenant_key)
    }

    /// The newest pushed `app_ticket` of `app_id`.
    pub fn live_app_ticket(&self, app_id: &str) -> Option<String> {
        self.backend()
            .store_apps
            .get(app_id)
            .and_then(|s| s.tickets.last().cloned())
    }

    /// Push a fresh `app_ticket` of `app_id` to `url` (v1 envelope, sealed and signed with the
    /// app's subscription); the delivery and the ticket.
    pub async fn push_app_ticket(
        &self,
        app_id: &str,
        url: &str,
    ) -> Result<(Delivery, String), PushError> {
        self.backend().push_ticket(app_id, url).await
    }

    /// `tenant_key` installs (or enables) `app_id`: push `app_open`.
    pub async fn push_app_open(
        &self,
        app_id: &str,
        tenant_key: &str,
        url: &str,
    ) -> Result<Delivery, PushError> {
        self.install_store_app(app_id, tenant_key);
        let event = json!({
            "app_id": app_id, "tenant_key": tenant_key, "type": "app_open",
            "applicants": [{"open_id": "ou_fake_applicant"}],
            "installer": {"open_id": "ou_fake_installer"},
        });
        self.push_store_event(app_id, url, event).await
    }

    /// `tenant_key` stops (`stop_by_tenant`) or starts (`start_by_tenant`) `app_id`: push
    /// `app_status_change`. A stopped app's tenant tokens stop working.
    pub async fn push_app_status_change(
        &self,
        app_id: &str,
        tenant_key: &str,
        status: &str,
        url: &str,
    ) -> Result<Delivery, PushError> {
        let started = status == "start_by_tenant";
        if started {
            self.install_store_app(app_id, tenant_key);
        } else {
            self.remove_installation(app_id, tenant_key);
        }
        let mut event = json!({"app_id": app_id, "tenant_key": tenant_key, "type": "app_status_change", "status": status});
        if started {
            event["operator"] = json!({"open_id": "ou_fake_operator", "user_id": "operator01", "union_id": "on_fake_operator"});
        }
        self.push_store_event(app_id, url, event).await
    }

    /// `tenant_key` removes `app_id`: its tenant tokens die, its people can no longer log in;
    /// push `app_uninstalled`.
    pub async fn push_app_uninstalled(
        &self,
        app_id: &str,
        tenant_key: &str,
        url: &str,
    ) -> Result<Delivery, PushError> {
        self.remove_installation(app_id, tenant_key);
        let event = json!({"app_id": app_id, "tenant_key": tenant_key, "type": "app_uninstalled"});
        self.push_store_event(app_id, url, event).await
    }

    /// `tenant_key` no longer has `app_id` (removed or stopped): its tenant tokens die.
    fn remove_installation(&self, app_id: &str, tenant_key: &str) {
        let tenant = tenant_key.to_owned();
        self.backend().update_store(app_id, |s| {
            s.installed.remove(&tenant);
        });
        self.revoke_tenant_tokens(app_id, tenant_key);
    }

    async fn push_store_event(
        &self,
        app_id: &str,
        url: &str,
        event: Value,
    ) -> Result<Delivery, PushError> {
        let text = self.backend().v1_event(app_id, event);
        self.push_event_for(app_id, url, FakeEvent::Custom(text), None)
            .await
    }

    /// Check an `h5sdk.config` object of the store app `app_id`'s page running inside the client
    /// of `tenant_key` (see [`FakeFeishu::verify_jsapi_config`]): signed with one of that
    /// tenant's live jssdk tickets.
    pub fn verify_store_jsapi_config(
        &self,
        tenant_key: &str,
        config: &Value,
        page_url: &str,
    ) -> Result<(), crate::jsapi::JsapiRefusal> {
        let kind = crate::jsapi::JsapiKind::Config;
        self.backend()
            .verify_jsapi(kind, config, page_url, Some(tenant_key))
    }

    /// Successful jssdk-ticket fetches of `tenant_key` for the store app `app_id`.
    pub fn store_jsapi_ticket_fetches(&self, app_id: &str, tenant_key: &str) -> u64 {
        let owner = format!("{app_id}@{tenant_key}");
        let kind = crate::jsapi::JsapiKind::Config;
        self.backend().tickets.fetches(&owner, kind)
    }

    /// Revoke the live `app_access_token`s of the store app `app_id` (a `tenant_access_token`
    /// asked with one is then refused with 99991664); its tenant tokens stay. Returns how many
    /// were live.
    pub fn revoke_store_app_tokens(&self, app_id: &str) -> usize {
        self.backend()
            .store_app_tokens
            .revoke_where(|m| m.app_id == app_id)
    }

    /// Revoke the live tenant tokens of `tenant_key` for `app_id` (a call with one is then
    /// refused with 99991663); the app's `app_access_token` and other tenants' tokens stay.
    /// Returns how many were live.
    pub fn revoke_tenant_tokens(&self, app_id: &str, tenant_key: &str) -> usize {
        self.backend()
            .app_tokens
            .revoke_where(|m| m.app_id == app_id && m.tenant_key.as_deref() == Some(tenant_key))
    }
}
