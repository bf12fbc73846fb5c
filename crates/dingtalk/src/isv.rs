//! Store (third-party, ISV) apps: `mode: isv` (reference `isv-jsapi-events.md` §1.1).
//!
//! A tenant entry in this mode is **one organisation that installed the suite**: `app_key` is
//! the suiteKey, `app_secret` the suiteSecret, `corp_id` the installing organisation's
//! `authCorpId`. The token chain:
//!
//! 1. the newest pushed `suite_ticket`, from the [`TicketStore`](unilogin_core::isv::TicketStore)
//!    of the [`Sso`](unilogin_core::Sso) ([`Error::TicketMissing`](unilogin_core::Error::TicketMissing) before the first push);
//! 2. the **suite token** (`POST api v1.0/oauth2/suiteAccessToken`, or with
//!    `app_token_api: oapi` the old `service/get_suite_token`), cached under the suite's key,
//!    which every organisation of the suite shares ([`suite_key`]);
//! 3. the organisation's **corp token** (`POST api v1.0/oauth2/corpAccessToken` with
//!    `authCorpId`, or the old `service/get_corp_token` signed with
//!    [`corp_token_signature`]), the handler's app token, cached under
//!    [`TokenKey::organisation`] of the suite key. A corp token rejected by a call
//!    invalidates only itself; a suite ticket DingTalk refuses (`invalidSuiteTicket`) is a
//!    typed [`Error::Misconfigured`](unilogin_core::Error::Misconfigured) naming the ticket.
//!
//! DingTalk's corp-token call takes the suite credentials and the ticket directly, not the
//! suite token: the suite token serves the suite-level calls ([`DingTalk::suite_token`]).

use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use unilogin_core::envelope::{require_str, seconds_at};
use unilogin_core::isv::{OrgId, TicketApp, TicketValue, unix_ms};
use unilogin_core::platform::sdk::secret_rejected;
use unilogin_core::token_cache::{FetchedToken, TokenKey};
use unilogin_core::{AccessToken, PlatformName, Result};

use crate::DingTalk;
use crate::api::By;

/// The tenant part of every suite-token key (the core's reserved one).
pub use unilogin_core::isv::SUITE_TENANT;

/// Lifetime assumed when DingTalk reports none.
const DEFAULT_TTL: Duration = Duration::from_secs(7200);

pub(crate) const SUITE_HINT: &str = "DingTalk rejected the suite credentials (invalidSuiteKey): check app_key (the SuiteKey) and app_secret (the SuiteSecret) of this store-app tenant";
pub(crate) const TICKET_HINT: &str = "DingTalk rejected the suite_ticket (invalidSuiteTicket): the stored ticket is stale or not this suite's; wait for the next suite_ticket push (or trigger one in the developer console) and check that the callback URL receives it";

/// The store-app side of a DingTalk handler.
#[derive(Debug, Clone)]
pub(crate) struct Store {
    pub(crate) app: TicketApp,
    /// The installed organisation and its corp-token key; `None` on the app entry (no
    /// `corp_id`), which receives the suite's pushes and logs no one in.
    pub(crate) org: Option<(OrgId, TokenKey)>,
    pub(crate) suite_key: TokenKey,
}

/// What a login on the app entry is refused with.
pub(crate) const APP_ENTRY: &str = "logins on the store app's own entry (mode: isv without corp_id receives the suite's pushes; each installed organisation has its own entry, with its corp_id)";

impl Store {
    /// The store-app side of an entry, or the configuration field that cannot be one.
    pub(crate) fn new(
        platform: &PlatformName,
        suite_key: &str,
        corp_id: Option<&str>,
    ) -> std::result::Result<Self, &'static str> {
        let app = TicketApp::new(platform.clone(), suite_key).map_err(|_| "app_key")?;
        let suite_key = self::suite_key(&app);
        let org = match corp_id {
            None => None,
            Some(corp) => {
                let org = OrgId::new(corp).map_err(|_| "corp_id")?;
                let key = suite_key.organisation(&org);
                Some((org, key))
            }
        };
        Ok(Self {
            app,
            org,
            suite_key,
        })
    }

    /// The installed organisation, or `Unsupported` on the app entry.
    pub(crate) fn org(&self, base: &unilogin_core::platform::Base) -> Result<&OrgId> {
        self.org
            .as_ref()
            .map(|(org, _)| org)
            .ok_or_else(|| base.unsupported(APP_ENTRY))
    }

    /// The key of the entry's app token: the organisation's corp token, or on the app entry
    /// the suite token.
    pub(crate) fn token_key(&self) -> &TokenKey {
        self.org.as_ref().map_or(&self.suite_key, |(_, key)| key)
    }
}

/// The cache key of a suite's suite token, shared by every organisation that installed it:
/// [`TicketApp::suite_key`] under the tenant [`SUITE_TENANT`].
///
/// ```
/// use unilogin_core::isv::{OrgId, TicketApp};
/// use unilogin_core::PlatformName;
/// let app = TicketApp::new(PlatformName::new("dingtalk").unwrap(), "suiteabc").unwrap();
/// let key = unilogin_dingtalk::isv::suite_key(&app);
/// assert_eq!(key.as_str(), "dingtalk:isv:suiteabc");
/// let org = key.organisation(&OrgId::new("dingcorp1").unwrap());
/// assert_eq!(org.as_str(), "dingtalk:isv:suiteabc#org:dingcorp1");
/// ```
pub fn suite_key(app: &TicketApp) -> TokenKey {
    app.shared_suite_key()
}

/// The old API's signature (`service/get_corp_token`, `service/get_auth_info`): base64 of
/// HMAC-SHA256 with the suiteSecret as key over `timestamp + "\n" + suiteTicket`, the
/// timestamp in milliseconds (URL-encode it when building the query by hand; a query
/// serializer does).
///
/// ```
/// use unilogin_dingtalk::isv::corp_token_signature;
/// assert_eq!(
///     corp_token_signature("suite_secret_example", "1700000000000", "ticket_example"),
///     "zjiHENNbUM93sBIgn6L0owXLWCHBjWcg/5seU+vhfXw=",
/// );
/// ```
pub fn corp_token_signature(suite_secret: &str, timestamp_ms: &str, suite_ticket: &str) -> String {
    let msg = format!("{timestamp_ms}\n{suite_ticket}");
    unilogin_core::events::crypto::encode_base64(&hmac_sha256(
        suite_secret.as_bytes(),
        msg.as_bytes(),
    ))
}

/// HMAC-SHA256 (RFC 2104) over the core's SHA-256.
fn hmac_sha256(key: &[u8], msg: &[u8]) -> [u8; 32] {
    use unilogin_core::events::crypto::sha256;
    const BLOCK: usize = 64;
    let mut k = [0u8; BLOCK];
    if key.len() > BLOCK {
        k[..32].copy_from_slice(&sha256(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| k.iter().map(|b| b ^ byte).collect::<Vec<u8>>();
    let mut inner = pad(0x36);
    inner.extend_from_slice(msg);
    let mut outer = pad(0x5c);
    outer.extend_from_slice(&sha256(&inner));
    sha256(&outer)
}

impl DingTalk {
    fn store(&self) -> Result<&Store> {
        self.isv
            .as_ref()
            .ok_or_else(|| self.base.unsupported("store-app tokens (mode: isv)"))
    }

    /// The newest pushed suite ticket, or [`Error::TicketMissing`](unilogin_core::Error::TicketMissing).
    async fn suite_ticket(&self) -> Result<TicketValue> {
        let store = self.store()?;
        let tickets = &self.base.services()?.tickets;
        Ok(tickets.require(&store.app).await?.value)
    }

    /// The suite token (`mode: isv` only), through the token cache: one fetch per suite for
    /// every organisation, refreshed ahead of expiry, with the newest ticket at each fetch.
    pub async fn suite_token(&self) -> Result<AccessToken> {
        let store = self.store()?;
        let cache = &self.base.services()?.token_cache;
        // The refresher may outlive this call (a refresh ahead runs in the background).
        let this = self.clone();
        cache
            .get(&store.suite_key, move || async move {
                this.fetch_suite_token().await
            })
            .await
    }

    /// Forgets a suite token a suite-level call reported rejected (compare-and-delete: a
    /// newer token is left alone); organisations' corp tokens are untouched.
    pub async fn invalidate_suite_token(&self, rejected: &AccessToken) -> Result<()> {
        let store = self.store()?;
        let cache = &self.base.services()?.token_cache;
        cache.invalidate(&store.suite_key, rejected).await;
        Ok(())
    }

    /// A fresh suite token from `v1.0/oauth2/suiteAccessToken` or `service/get_suite_token`.
    pub(crate) async fn fetch_suite_token(&self) -> Result<FetchedToken> {
        let ticket = self.suite_ticket().await?;
        let (key, secret) = (self.base.app_key.as_str(), self.app_secret.expose());
        if self.app_token_v1 {
            let ctx = self.base.ctx("v1.0/oauth2/suiteAccessToken");
            let body =
                json!({ "suiteKey": key, "suiteSecret": secret, "suiteTicket": ticket.expose() });
            let request = self.base.request(Method::POST, "api", ctx.endpoint)?;
            let response = self.api(&ctx, request.json(&body), By::App).await;
            let response = response.map_err(secret_rejected(SUITE_HINT))?;
            fetched(&ctx, &response, "/accessToken", "/expireIn")
        } else {
            let ctx = self.base.ctx("service/get_suite_token");
            let body = json!({ "suite_key": key, "suite_secret": secret, "suite_ticket": ticket.expose() });
            let request = self.base.request(Method::POST, "oapi", ctx.endpoint)?;
            let response = self.oapi(&ctx, request.json(&body)).await;
            let response = response.map_err(secret_rejected(SUITE_HINT))?;
            fetched(&ctx, &response, "/suite_access_token", "/expires_in")
        }
    }

    /// A fresh corp token of the tenant's organisation (the handler's app token in
    /// `mode: isv`).
    pub(crate) async fn corp_token(&self) -> Result<FetchedToken> {
        let store = self.store()?;
        let corp = store.org(&self.base)?.as_str();
        let ticket = self.suite_ticket().await?;
        let (key, secret) = (self.base.app_key.as_str(), self.app_secret.expose());
        if self.app_token_v1 {
            let ctx = self.base.ctx("v1.0/oauth2/corpAccessToken");
            let body = json!({
                "suiteKey": key, "suiteSecret": secret, "authCorpId": corp,
                "suiteTicket": ticket.expose(),
            });
            let request = self.base.request(Method::POST, "api", ctx.endpoint)?;
            let response = self.api(&ctx, request.json(&body), By::App).await;
            let response = response.map_err(secret_rejected(SUITE_HINT))?;
            fetched(&ctx, &response, "/accessToken", "/expireIn")
        } else {
            let ctx = self.base.ctx("service/get_corp_token");
            let timestamp = unix_ms(std::time::SystemTime::now()).to_string();
            let signature = corp_token_signature(secret, &timestamp, ticket.expose());
            let query = [
                ("accessKey", key),
                ("timestamp", timestamp.as_str()),
                ("suiteTicket", ticket.expose()),
                ("signature", signature.as_str()),
            ];
            let request = self.base.request(Method::POST, "oapi", ctx.endpoint)?;
            let request = request.query(&query).json(&json!({ "auth_corpid": corp }));
            let response = self.oapi(&ctx, request).await;
            let response = response.map_err(secret_rejected(SUITE_HINT))?;
            fetched(&ctx, &response, "/access_token", "/expires_in")
        }
    }
}

fn fetched(
    ctx: &unilogin_core::UpstreamCtx,
    response: &unilogin_core::http::UpstreamResponse,
    token_at: &str,
    ttl_at: &str,
) -> Result<FetchedToken> {
    let token = AccessToken::new(require_str(ctx, response, token_at)?);
    let expires_in = seconds_at(&response.body, ttl_at).unwrap_or(DEFAULT_TTL);
    Ok(FetchedToken { token, expires_in })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231_case_2_and_long_keys_are_hashed() {
        let mac = hmac_sha256(b"Jefe", b"what do ya want for nothing?");
        assert_eq!(
            unilogin_core::events::crypto::hex(&mac),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // RFC 4231 case 6: a 131-byte key is hashed first.
        let mac = hmac_sha256(
            &[0xaa; 131],
            b"Test Using Larger Than Block-Size Key - Hash Key First",
        );
        assert_eq!(
            unilogin_core::events::crypto::hex(&mac),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn the_reference_worked_example_signs() {
        let sig = corp_token_signature("suite_secret_example", "1700000000000", "ticket_example");
        assert_eq!(sig, "zjiHENNbUM93sBIgn6L0owXLWCHBjWcg/5seU+vhfXw=");
    }
}
