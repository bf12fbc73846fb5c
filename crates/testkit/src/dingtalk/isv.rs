//! The store-app (third-party, ISV) side of the DingTalk fake (reference `isv-jsapi-events.md`
//! §1.1): suites, their pushed `suite_ticket`s, installed organisations, suite tokens and corp
//! tokens, both API generations.
//!
//! | endpoint name | method and path | answer |
//! |---|---|---|
//! | `suite_access_token` | `POST /v1.0/oauth2/suiteAccessToken` JSON `{suiteKey, suiteSecret, suiteTicket}` | `{accessToken, expireIn}` |
//! | `get_suite_token` | `POST /service/get_suite_token` JSON `{suite_key, suite_secret, suite_ticket}` | `{errcode:0, suite_access_token, expires_in}` |
//! | `corp_access_token` | `POST /v1.0/oauth2/corpAccessToken` JSON `{suiteKey, suiteSecret, authCorpId, suiteTicket}` | `{accessToken, expireIn}` |
//! | `get_corp_token` | `POST /service/get_corp_token?accessKey&timestamp&suiteTicket&signature` JSON `{auth_corpid}` | `{errcode:0, access_token, expires_in}` |
//!
//! * A wrong suite key or secret → HTTP 400 `invalidSuiteKey` (v1.0; the reference's code),
//!   errcode 40096 on the old API (illustrative).
//! * The ticket must be the suite's **current** one (the last pushed; a push replaces it) and
//!   not expired ([`SUITE_TICKET_TTL`], fake clock) → otherwise HTTP 400 `invalidSuiteTicket`
//!   / errcode 40096 (illustrative).
//! * The old corp-token call's `signature` must be base64 HMAC-SHA256 (key suiteSecret) of
//!   `timestamp + "\n" + suiteTicket`, the timestamp in milliseconds within 5 minutes of the
//!   fake clock's wall time → otherwise errcode 40096 (illustrative).
//! * `authCorpId` must have the suite installed ([`FakeDingTalk::install_suite`]) → otherwise
//!   HTTP 400 `invalidAuthCorpId` / errcode 40096 (illustrative).
//! * Corp tokens (7200 s) are new at every fetch (the reference: re-fetching within validity
//!   returns a new token) and are app tokens of the organisation: the `topapi` user endpoints
//!   accept them exactly like an internal app's token. Suite tokens live 7200 s.
//! * The suite is also the OAuth client (`client_id` = suiteKey): a web login's token answer
//!   carries the `corpId` of the user's organisation.
//!
//! Pushes go through [`FakeDingTalk::push_event_for`] with the suite key as owner key:
//! [`FakeDingTalk::push_suite_ticket`], [`FakeDingTalk::push_install`],
//! [`FakeDingTalk::push_uninstall`] (the `SYNC_HTTP_PUSH_HIGH` format, `biz_data` a JSON string).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::http::StatusCode;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::envelope::{
    OAPI_INVALID_CREDENTIALS, api_error_with, api_missing, oapi_error_msg, oapi_missing,
};
use super::handlers::{api_body, oapi_body};
use super::{AppTokenMeta, DingTalk, FakeApp, FakeDingTalk};
use crate::events::{Delivery, EventFault, FakeEvent, PushError, unix_now};
use crate::http::{self, Reply, param};
use crate::platform::debug_hiding_secret;

/// Lifetime of suite and corp tokens.
pub const ISV_TOKEN_TTL: Duration = Duration::from_secs(7200);
/// How long a pushed suite ticket is accepted (illustrative: the reference gives no figure).
pub const SUITE_TICKET_TTL: Duration = Duration::from_secs(5 * 3600);
/// The v1.0 code for a wrong suite key or secret.
pub const API_INVALID_SUITE_KEY: &str = "invalidSuiteKey";
/// The v1.0 code for an unknown, replaced or expired suite ticket.
pub const API_INVALID_SUITE_TICKET: &str = "invalidSuiteTicket";
/// The v1.0 code for an organisation that has not installed the suite (illustrative).
pub const API_INVALID_AUTH_CORP: &str = "invalidAuthCorpId";

/// A store app (suite) registered with the fake. `Debug` hides the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct FakeSuite {
    /// SuiteKey (also the OAuth `client_id`).
    pub suite_key: String,
    /// SuiteSecret.
    pub suite_secret: String,
    /// The numeric suite id (`biz_id`, `subscribe_id` = `<suiteId>_0`).
    pub suite_id: String,
}

debug_hiding_secret!(FakeSuite { suite_key, [suite_secret], suite_id });

impl FakeSuite {
    /// A suite.
    pub fn new(
        suite_key: impl Into<String>,
        suite_secret: impl Into<String>,
        suite_id: impl Into<String>,
    ) -> Self {
        Self {
            suite_key: suite_key.into(),
            suite_secret: suite_secret.into(),
            suite_id: suite_id.into(),
        }
    }

    /// The suite as an OAuth client (its redirect hosts are the defaults).
    pub(crate) fn as_client(&self) -> FakeApp {
        FakeApp::new(&self.suite_key, &self.suite_secret, "")
    }
}

/// HMAC-SHA256 (RFC 2104).
fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let inner = Sha256::new()
        .chain_update(k.map(|b| b ^ 0x36))
        .chain_update(msg)
        .finalize();
    Sha256::new()
        .chain_update(k.map(|b| b ^ 0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

/// The old API's signature: base64(HMAC-SHA256(suiteSecret, timestamp + "\n" + ticket)).
pub fn corp_token_signature(suite_secret: &str, timestamp_ms: &str, ticket: &str) -> String {
    use base64::Engine as _;
    let mac = hmac_sha256(
        suite_secret.as_bytes(),
        format!("{timestamp_ms}\n{ticket}").as_bytes(),
    );
    base64::engine::general_purpose::STANDARD.encode(mac)
}

impl DingTalk {
    fn suite_with_secret(&self, key: &str, secret: &str) -> Option<FakeSuite> {
        self.suites.get(key).filter(|s| s.suite_secret == secret)
    }

    /// Whether `ticket` is `suite_key`'s current, unexpired ticket.
    fn ticket_ok(&self, suite_key: &str, ticket: &str) -> bool {
        self.suite_tickets
            .check(ticket)
            .is_ok_and(|owner| owner == suite_key)
    }

    fn installed(&self, suite_key: &str, corp_id: &str) -> bool {
        self.installs
            .get(&install_key(suite_key, corp_id))
            .is_some()
    }

    fn issue_corp_token(&self, suite_key: &str, corp_id: &str) -> String {
        let meta = AppTokenMeta {
            app_key: suite_key.to_owned(),
            corp_id: corp_id.to_owned(),
        };
        self.app_tokens.issue(meta, ISV_TOKEN_TTL)
    }
}

fn install_key(suite_key: &str, corp_id: &str) -> String {
    format!("{suite_key}/{corp_id}")
}

fn v1_error(code: &str) -> axum::response::Response {
    let message = match code {
        API_INVALID_SUITE_KEY => "suitekey不合法",
        API_INVALID_SUITE_TICKET => "suiteTicket不合法",
        _ => "authCorpId不合法",
    };
    api_error_with(StatusCode::BAD_REQUEST, code, message)
}

fn old_error(what: &str) -> axum::response::Response {
    oapi_error_msg(OAPI_INVALID_CREDENTIALS, what)
}

/// `POST /v1.0/oauth2/suiteAccessToken`.
pub(crate) async fn suite_access_token(st: Arc<DingTalk>, req: Request) -> Reply {
    let p = api_body(req).await?;
    let get = |k: &str| param(&p, k).ok_or_else(|| api_missing(k));
    let (key, secret, ticket) = (get("suiteKey")?, get("suiteSecret")?, get("suiteTicket")?);
    let suite = st
        .suite_with_secret(key, secret)
        .ok_or_else(|| v1_error(API_INVALID_SUITE_KEY))?;
    if !st.ticket_ok(&suite.suite_key, ticket) {
        return Err(v1_error(API_INVALID_SUITE_TICKET));
    }
    let token = st.suite_tokens.issue(suite.suite_key, ISV_TOKEN_TTL);
    let body = json!({"accessToken": token, "expireIn": ISV_TOKEN_TTL.as_secs()});
    Ok(http::json(StatusCode::OK, &body))
}

/// `POST /service/get_suite_token`.
pub(crate) async fn get_suite_token(st: Arc<DingTalk>, req: Request) -> Reply {
    let (parts, body) = req.into_parts();
    let p = oapi_body(&parts.headers, body).await?;
    let get = |k: &str| param(&p, k).ok_or_else(|| oapi_missing(k));
    let (key, secret, ticket) = (
        get("suite_key")?,
        get("suite_secret")?,
        get("suite_ticket")?,
    );
    let suite = st
        .suite_with_secret(key, secret)
        .ok_or_else(|| old_error("不合法的suiteKey或suiteSecret"))?;
    if !st.ticket_ok(&suite.suite_key, ticket) {
        return Err(old_error("不合法的suiteTicket"));
    }
    let token = st.suite_tokens.issue(suite.suite_key, ISV_TOKEN_TTL);
    let body = json!({
        "errcode": 0, "errmsg": "ok",
        "suite_access_token": token, "expires_in": ISV_TOKEN_TTL.as_secs(),
    });
    Ok(http::json(StatusCode::OK, &body))
}

/// `POST /v1.0/oauth2/corpAccessToken`.
pub(crate) async fn corp_access_token(st: Arc<DingTalk>, req: Request) -> Reply {
    let p = api_body(req).await?;
    let get = |k: &str| param(&p, k).ok_or_else(|| api_missing(k));
    let (key, secret) = (get("suiteKey")?, get("suiteSecret")?);
    let (corp, ticket) = (get("authCorpId")?, get("suiteTicket")?);
    let suite = st
        .suite_with_secret(key, secret)
        .ok_or_else(|| v1_error(API_INVALID_SUITE_KEY))?;
    if !st.ticket_ok(&suite.suite_key, ticket) {
        return Err(v1_error(API_INVALID_SUITE_TICKET));
    }
    if !st.installed(&suite.suite_key, corp) {
        return Err(v1_error(API_INVALID_AUTH_CORP));
    }
    let token = st.issue_corp_token(&suite.suite_key, corp);
    let body = json!({"accessToken": token, "expireIn": ISV_TOKEN_TTL.as_secs()});
    Ok(http::json(StatusCode::OK, &body))
}

/// `POST /service/get_corp_token?accessKey&timestamp&suiteTicket&signature` `{auth_corpid}`.
pub(crate) async fn get_corp_token(st: Arc<DingTalk>, req: Request) -> Reply {
    let (parts, body) = req.into_parts();
    let q = http::query_params(&parts.uri);
    let get = |k: &str| param(&q, k).ok_or_else(|| oapi_missing(k));
    let (key, ts, ticket, sig) = (
        get("accessKey")?,
        get("timestamp")?,
        get("suiteTicket")?,
        get("signature")?,
    );
    let p = oapi_body(&parts.headers, body).await?;
    let corp = param(&p, "auth_corpid").ok_or_else(|| oapi_missing("auth_corpid"))?;
    let suite = st
        .suites
        .get(key)
        .ok_or_else(|| old_error("不合法的accessKey"))?;
    let fresh = ts
        .parse::<u128>()
        .is_ok_and(|ms| ms.abs_diff(unix_now().as_millis()) <= 300_000);
    if !fresh || corp_token_signature(&suite.suite_secret, ts, ticket) != sig {
        return Err(old_error("签名校验失败"));
    }
    if !st.ticket_ok(&suite.suite_key, ticket) {
        return Err(old_error("不合法的suiteTicket"));
    }
    if !st.installed(&suite.suite_key, corp) {
        return Err(old_error("企业未授权该应用"));
    }
    let token = st.issue_corp_token(&suite.suite_key, corp);
    let body = json!({
        "errcode": 0, "errmsg": "ok",
        "access_token": token, "expires_in": ISV_TOKEN_TTL.as_secs(),
    });
    Ok(http::json(StatusCode::OK, &body))
}

/// A `SYNC_HTTP_PUSH_HIGH` document with one `bizData` item.
fn sync_push(suite: &FakeSuite, corp_id: &str, biz_type: u8, biz_data: &Value) -> String {
    let now_ms = u64::try_from(unix_now().as_millis()).unwrap_or(u64::MAX);
    json!({
        "EventType": "SYNC_HTTP_PUSH_HIGH",
        "bizData": [{
            "gmt_create": now_ms,
            "biz_type": biz_type,
            "open_cursor": 0,
            "subscribe_id": format!("{}_0", suite.suite_id),
            "id": now_ms % 1_000_000,
            "gmt_modified": now_ms,
            "biz_id": suite.suite_id,
            "biz_data": biz_data.to_string(),
            "corp_id": corp_id,
            "status": 0,
        }],
    })
    .to_string()
}

impl FakeDingTalk {
    /// Register a store app (suite). Its event subscription defaults to the suite key as owner
    /// key ([`event_credentials_for`](Self::event_credentials_for)).
    pub fn add_suite(&self, suite: FakeSuite) {
        self.backend().suites.insert(suite.suite_key.clone(), suite);
    }

    /// Record that `corp_id` installed `suite_key` (its users are the fake's users whose
    /// organisation is `corp_id`, see [`FakeUser::in_org`](crate::users::FakeUser::in_org)).
    pub fn install_suite(&self, suite_key: &str, corp_id: &str) {
        let key = install_key(suite_key, corp_id);
        self.backend().installs.insert(key, ());
    }

    /// Record that `corp_id` removed `suite_key`: corp tokens are refused from now on, and the
    /// organisation's live corp tokens are revoked. Returns how many were.
    pub fn uninstall_suite(&self, suite_key: &str, corp_id: &str) -> usize {
        self.backend()
            .installs
            .remove(&install_key(suite_key, corp_id));
        self.revoke_corp_tokens(suite_key, corp_id)
    }

    /// Revoke `corp_id`'s live corp tokens of `suite_key` (a call with one is then refused as
    /// an invalid token); the installation, the suite token and other organisations' tokens
    /// stay. Returns how many were live.
    pub fn revoke_corp_tokens(&self, suite_key: &str, corp_id: &str) -> usize {
        self.backend()
            .app_tokens
            .revoke_where(|m| m.app_key == suite_key && m.corp_id == corp_id)
    }

    /// A new current suite ticket for `suite_key` (the previous one stops working), without a
    /// push: what DingTalk would push next.
    pub fn rotate_suite_ticket(&self, suite_key: &str) -> String {
        let st = self.backend();
        st.suite_tickets.revoke_where(|owner| owner == suite_key);
        st.suite_tickets
            .issue(suite_key.to_owned(), SUITE_TICKET_TTL)
    }

    /// The suite's current ticket, if one is live.
    pub fn current_suite_ticket(&self, suite_key: &str) -> Option<String> {
        self.backend()
            .suite_tickets
            .find_live(|owner| owner == suite_key)
    }

    /// Rotate the suite's ticket ([`rotate_suite_ticket`](Self::rotate_suite_ticket)) and push
    /// it to `url` as DingTalk does (`biz_type` 2, encrypted with the suite's subscription).
    /// Returns the delivery and the new ticket.
    pub async fn push_suite_ticket(
        &self,
        suite_key: &str,
        url: &str,
    ) -> Result<(Delivery, String), PushError> {
        let suite = self.suite(suite_key)?;
        let ticket = self.rotate_suite_ticket(suite_key);
        let data = json!({"syncAction": "suite_ticket", "suiteTicket": ticket, "syncSeq": "fake"});
        let doc = sync_push(&suite, &suite.suite_id, 2, &data);
        let delivery = self
            .push_event_for(suite_key, url, FakeEvent::Custom(doc), None)
            .await?;
        Ok((delivery, ticket))
    }

    /// Install `suite_key` in `corp_id` ([`install_suite`](Self::install_suite)) and push
    /// `org_suite_auth` (`biz_type` 4, with `auth_corp_info`, `auth_info.agent[]` and a
    /// `permanent_code`) to `url`.
    pub async fn push_install(
        &self,
        suite_key: &str,
        corp_id: &str,
        url: &str,
        fault: Option<EventFault>,
    ) -> Result<Delivery, PushError> {
        let suite = self.suite(suite_key)?;
        self.install_suite(suite_key, corp_id);
        let data = json!({
            "syncAction": "org_suite_auth",
            "auth_corp_info": {"corpid": corp_id, "corp_name": format!("Org {corp_id}")},
            "auth_user_info": {"userId": "installer01"},
            "auth_info": {"agent": [{"agentid": 200001, "agent_name": "Fake store app", "appid": 1}]},
            "permanent_code": crate::store::random_id("fake_dt_permanent_"),
        });
        let doc = sync_push(&suite, corp_id, 4, &data);
        self.push_event_for(suite_key, url, FakeEvent::Custom(doc), fault)
            .await
    }

    /// Uninstall ([`uninstall_suite`](Self::uninstall_suite)) and push `org_suite_relieve`
    /// (`biz_type` 4) to `url`.
    pub async fn push_uninstall(
        &self,
        suite_key: &str,
        corp_id: &str,
        url: &str,
    ) -> Result<Delivery, PushError> {
        let suite = self.suite(suite_key)?;
        self.uninstall_suite(suite_key, corp_id);
        let data =
            json!({"syncAction": "org_suite_relieve", "auth_corp_info": {"corpid": corp_id}});
        let doc = sync_push(&suite, corp_id, 4, &data);
        self.push_event_for(suite_key, url, FakeEvent::Custom(doc), None)
            .await
    }

    fn suite(&self, suite_key: &str) -> Result<FakeSuite, PushError> {
        self.backend()
            .suites
            .get(suite_key)
            .ok_or(PushError::Unsupported(
                "unknown suite: add it with add_suite first",
            ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reference_worked_example_signs() {
        let sig = corp_token_signature("suite_secret_example", "1700000000000", "ticket_example");
        assert_eq!(sig, "zjiHENNbUM93sBIgn6L0owXLWCHBjWcg/5seU+vhfXw=");
    }

    #[test]
    fn suites_never_print_their_secret() {
        let s = FakeSuite::new("suitekey1", "s3cr3t-suite", "1001");
        let shown = format!("{s:?}");
        assert!(
            !shown.contains("s3cr3t") && shown.contains("suitekey1"),
            "{shown}"
        );
    }
}
