//! The [`Platform`] trait: what every platform crate implements.
//!
//! A platform handler is built for one tenant's configuration (see
//! [`PlatformRegistration`](crate::registry::PlatformRegistration)) and knows its endpoints, its
//! envelopes and its error codes, nothing more. It never caches tokens and never maps fields:
//! the [`Sso`](crate::sso::Sso) orchestrator obtains the app token through the
//! [`TokenCache`](crate::token_cache::TokenCache), calls the handler's steps, invalidates and
//! retries once when a step reports [`Error::TokenInvalid`], and
//! hands the detail document to the mapping engine.
//!
//! The seed's three-step `AuthHandler` (token → user id → user detail) is the H5 case:
//! [`Platform::fetch_app_token`] → [`Platform::identify_h5`] → [`Platform::user_detail`].
//!
//! Platform authors build on the [`sdk`] (named hosts, endpoint contexts, option parsing, the
//! "secret rejected" error) and declare their in-client surface with [`InClient`].

pub mod in_client;
pub mod sdk;

pub use in_client::{CodeKind, InClient, JsapiLogin};
pub use sdk::{Base, Hosts, Services};

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::Value;
use url::Url;

use crate::error::{Error, Result};
use crate::jsapi::{Signed, TicketKind, TimestampUnit};
use crate::token_cache::{FetchedToken, TokenKey};
use crate::types::{
    AccessToken, AuthCode, PlatformName, RefreshToken, State, TenantId, UserTicket,
};

/// The two ways in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Flow {
    /// In-app H5 login-free (免登): the page runs inside the platform's client, whose JSAPI (or
    /// in-client OAuth redirect) yields a short-lived code.
    H5,
    /// Web / QR OAuth2 from a browser: redirect to the platform, come back with a code.
    Web,
}

impl Flow {
    /// `"h5"` or `"web"` (metric labels, logs).
    pub fn as_str(self) -> &'static str {
        match self {
            Flow::H5 => "h5",
            Flow::Web => "web",
        }
    }
}

impl fmt::Display for Flow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A user-level token set returned by a web login (kept available to the caller, for example to
/// call the platform on the user's behalf later).
#[derive(Debug, Clone)]
pub struct UserToken {
    /// The user access token.
    pub access_token: AccessToken,
    /// The refresh token, when the platform issued one (Feishu: single use).
    pub refresh_token: Option<RefreshToken>,
    /// Lifetime of the access token as the platform reported it.
    pub expires_in: Option<Duration>,
    /// Lifetime of the refresh token as the platform reported it.
    pub refresh_expires_in: Option<Duration>,
    /// Granted scopes, when reported.
    pub scope: Option<String>,
}

/// Who the code belongs to, as far as the code step tells.
#[derive(Debug, Clone, Default)]
pub struct Identity {
    /// The id inside the tenant's organisation (DingTalk `userid`, WeCom `userid`, Feishu
    /// `user_id`), when the step yields it.
    pub user_id: Option<String>,
    /// Cross-app id (DingTalk `unionid`, Feishu `union_id`).
    pub union_id: Option<String>,
    /// App-scoped id (DingTalk `openId`, Feishu `open_id`, WeCom non-member `openid`).
    pub open_id: Option<String>,
    /// The organisation the platform says the user logged in through (DingTalk `corpId`,
    /// Feishu `tenant_key`).
    pub org_id: Option<String>,
    /// WeCom's `user_ticket` (only with `snsapi_privateinfo`).
    pub user_ticket: Option<UserTicket>,
    /// The user's own token set (web flows that issue one).
    pub user_token: Option<UserToken>,
    /// Documents gathered during the code step, merged into the detail document at top level
    /// under these keys (for example DingTalk's `users/me` under `"me"`).
    pub documents: serde_json::Map<String, Value>,
}

/// Inputs to build an authorize URL.
#[derive(Debug, Clone, Copy)]
pub struct AuthorizeRequest<'a> {
    /// Which flow the URL is for ([`Flow::H5`] builds in-client OAuth links where the platform
    /// uses them, such as WeCom's `#wechat_redirect` link).
    pub flow: Flow,
    /// Where the platform sends the browser back (must be registered with the platform).
    pub redirect_uri: &'a Url,
    /// The CSRF state.
    pub state: &'a State,
    /// OIDC nonce (always present; providers without OIDC ignore it).
    pub nonce: &'a str,
    /// PKCE S256 code challenge (always present; providers without PKCE ignore it).
    pub code_challenge: &'a str,
}

/// Inputs to exchange a web callback code.
#[derive(Debug, Clone, Copy)]
pub struct WebCallback<'a> {
    /// The code from the callback.
    pub code: &'a AuthCode,
    /// The redirect URI used at authorize time (some platforms require it again).
    pub redirect_uri: &'a Url,
    /// PKCE verifier matching the challenge sent at authorize time.
    pub code_verifier: &'a str,
    /// The nonce sent at authorize time (OIDC).
    pub nonce: &'a str,
}

/// What a provider says about the `iss` parameter of its authorization responses (RFC 9207).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuerPolicy {
    /// The issuer identifier the callback's `iss` must equal.
    pub issuer: String,
    /// Whether the provider advertises `authorization_response_iss_parameter_supported`: a
    /// callback without `iss` is then refused.
    pub required: bool,
}

/// One platform, configured for one tenant.
///
/// Implementations live in platform crates and are registered with
/// [`inventory::submit!`] as a [`PlatformRegistration`](crate::registry::PlatformRegistration).
/// Every step returns a typed [`Error`]; a step that was refused because the app token is
/// invalid returns [`Error::TokenInvalid`] so the caller can invalidate exactly that token and
/// retry once.
///
/// Steps receive the app token as `Option<&AccessToken>`: `Some` whenever
/// [`token_key`](Self::token_key) is `Some` (the default; for the code step,
/// [`code_token_key`](Self::code_token_key)), `None` for handlers that declare no app token (a standard OAuth2 / OIDC provider authenticates the client at its token endpoint
/// instead). [`Base::app_token`] turns the option into the token or a typed error.
#[async_trait]
pub trait Platform: Send + Sync + fmt::Debug + 'static {
    /// The handler's common parts (name, tenant, app key, hosts, HTTP client).
    fn base(&self) -> &Base;

    /// The platform's registered name.
    fn name(&self) -> &PlatformName {
        &self.base().name
    }

    /// The tenant this handler serves.
    fn tenant(&self) -> &TenantId {
        &self.base().tenant
    }

    /// The cache key of this app's access token (scoped so that two apps never share a token),
    /// or `None` when the handler's steps use no app token; then
    /// [`fetch_app_token`](Self::fetch_app_token) is never called. Default: keyed by platform,
    /// tenant and app key.
    fn token_key(&self) -> Option<TokenKey> {
        Some(self.base().token_key(None))
    }

    /// Fetches a fresh app-level access token and its lifetime as the platform reported it.
    /// Only called when [`token_key`](Self::token_key) is `Some`.
    async fn fetch_app_token(&self) -> Result<FetchedToken> {
        Err(self.base().unsupported("app access tokens"))
    }

    /// The cache key of the app token the **code step** ([`identify_h5`](Self::identify_h5),
    /// [`exchange_web_code`](Self::exchange_web_code)) is given, for platforms whose code
    /// exchange needs another kind of app token than the other steps (Feishu's v1 user-token
    /// endpoints take the `app_access_token`, its directory the `tenant_access_token`), or
    /// `None` when the code step uses no app token. Default: the same token as every step
    /// ([`token_key`](Self::token_key)).
    fn code_token_key(&self) -> Option<TokenKey> {
        self.token_key()
    }

    /// Fetches the code step's app token. Only called when
    /// [`code_token_key`](Self::code_token_key) is `Some` and differs from
    /// [`token_key`](Self::token_key). Default: [`fetch_app_token`](Self::fetch_app_token).
    async fn fetch_code_token(&self) -> Result<FetchedToken> {
        self.fetch_app_token().await
    }

    /// Turns an in-client JSAPI code into an identity. Only called for platforms whose
    /// registration declares [`InClient::Jsapi`].
    async fn identify_h5(
        &self,
        app_token: Option<&AccessToken>,
        code: &AuthCode,
    ) -> Result<Identity> {
        let _ = (app_token, code);
        Err(self.base().unsupported("in-client JSAPI codes"))
    }

    /// Exchanges a redirect login's callback code for an identity (and the user's token, where
    /// issued).
    async fn exchange_web_code(
        &self,
        app_token: Option<&AccessToken>,
        callback: &WebCallback<'_>,
    ) -> Result<Identity>;

    /// Fetches the user's detail document, checking that the user belongs to the tenant
    /// ([`Error::NotInTenant`] otherwise).
    async fn user_detail(
        &self,
        app_token: Option<&AccessToken>,
        identity: &Identity,
    ) -> Result<Value>;

    /// Builds the URL the browser is sent to (loading whatever it needs first, such as an OIDC
    /// provider's discovery document).
    async fn authorize_url(&self, request: &AuthorizeRequest<'_>) -> Result<Url>;

    /// The `iss` the provider's authorization responses carry (RFC 9207), when it has one.
    /// The core refuses a callback whose `iss` differs, or lacks one the provider promised.
    async fn authorization_issuer(&self) -> Result<Option<IssuerPolicy>> {
        Ok(None)
    }

    /// Refreshes a user token with its refresh token.
    async fn refresh_user_token(&self, refresh_token: &RefreshToken) -> Result<UserToken> {
        let _ = refresh_token;
        Err(self.base().unsupported("refreshing user tokens"))
    }

    /// The JSAPI tickets this handler fetches and signs with (see [`crate::jsapi`]); default
    /// none. [`Prepared::jsapi_config`](crate::Prepared::jsapi_config) refuses any other kind
    /// with [`Error::Unsupported`] before an upstream call.
    fn ticket_kinds(&self) -> &'static [TicketKind] {
        &[]
    }

    /// Fetches a fresh ticket of `kind` with the app token ([`token_key`](Self::token_key))
    /// and its lifetime as the platform reported it. The core caches it (see
    /// [`TokenKey::ticket`]); a refusal because the app token is invalid must be
    /// [`Error::TokenInvalid`], so the core invalidates the app token and retries once.
    async fn fetch_ticket(
        &self,
        app_token: Option<&AccessToken>,
        kind: TicketKind,
    ) -> Result<FetchedToken> {
        let _ = (app_token, kind);
        Err(self.base().unsupported("JSAPI tickets"))
    }

    /// The unit of the timestamp the platform's JS SDK expects and that is signed. Default:
    /// seconds.
    fn jsapi_timestamp_unit(&self) -> TimestampUnit {
        TimestampUnit::Seconds
    }

    /// The exact object the platform's JS SDK `config` call of `kind` expects, built from the
    /// signed values (the core signs; the platform only names the fields). Never includes the
    /// ticket.
    fn jsapi_object(
        &self,
        kind: TicketKind,
        signed: &Signed,
        js_api_list: &[String],
    ) -> Result<Value> {
        let _ = (kind, signed, js_api_list);
        Err(self.base().unsupported("JSAPI signatures"))
    }

    /// Why this entry logs no one in, or `None` (the default) when it does. The core checks it
    /// first on every login (a code, the start and the finish of a redirect login), before
    /// any upstream call, and answers [`Error::Unsupported`] with this text: a store app's
    /// own entry, for one, holds the app's pushes and app token, and its organisations log
    /// in through their own entries, whatever the state of its tickets.
    fn login_refusal(&self) -> Option<&'static str> {
        None
    }

    /// Whether this handler redeems mini-program login codes ([`CodeKind::MiniProgram`]:
    /// Feishu `tt.login`, WeCom `qy.login`, DingTalk mini-app `dd.getAuthCode`). Such codes
    /// come from the client's JSAPI, never on a browser redirect, so they are redeemed without
    /// state. Default: no.
    fn redeems_mini_program_codes(&self) -> bool {
        false
    }

    /// The cache key of the app token [`identify_mini_program`](Self::identify_mini_program)
    /// is given, or `None` for none. A key other than [`token_key`](Self::token_key) is
    /// fetched with [`fetch_code_token`](Self::fetch_code_token). Default: the code step's
    /// ([`code_token_key`](Self::code_token_key)).
    fn mini_program_token_key(&self) -> Option<TokenKey> {
        self.code_token_key()
    }

    /// Turns a mini-program login code into an identity. Only called when
    /// [`redeems_mini_program_codes`](Self::redeems_mini_program_codes) is true; the detail
    /// step ([`user_detail`](Self::user_detail)) follows as for every login.
    async fn identify_mini_program(
        &self,
        app_token: Option<&AccessToken>,
        code: &AuthCode,
    ) -> Result<Identity> {
        let _ = (app_token, code);
        Err(self.base().unsupported("mini-program login codes"))
    }

    /// Redeems a store app's installation code (WeCom `create_auth` / `reset_permanent_code`
    /// `AuthCode`, carried by [`StoreAppChange::InstallCode`](crate::events::StoreAppChange::InstallCode))
    /// for the installing organisation and what its installation grants, the permanent code
    /// included. Called on the handler of the entry that received the event (the app's own
    /// credentials); a platform whose installation events already name the organisation keeps
    /// the default, [`Error::Unsupported`].
    async fn redeem_install_code(
        &self,
        code: &crate::AppSecret,
    ) -> Result<(crate::isv::OrgId, crate::events::InstallInfo)> {
        let _ = code;
        Err(self.base().unsupported("store-app installation codes"))
    }
}

/// The error of a step a platform does not offer.
pub(crate) fn unsupported(platform: &PlatformName, operation: &'static str) -> Error {
    Error::Unsupported {
        platform: platform.clone(),
        operation,
    }
}
