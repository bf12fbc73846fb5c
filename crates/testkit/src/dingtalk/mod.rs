//! A faithful fake of DingTalk (钉钉): `oapi.dingtalk.com`, `api.dingtalk.com` and
//! `login.dingtalk.com` served by one loopback server.
//!
//! Point every DingTalk host of the client at [`FakeDingTalk::base_url`]. The fake knows one
//! default app ([`DEFAULT_APP_KEY`] / [`DEFAULT_APP_SECRET`] in corp [`DEFAULT_CORP_ID`]) and three
//! users: [`DEMO_USER_ID`] (`user001`, exactly the person of `fixtures/dingtalk/*.json`),
//! [`SECOND_USER_ID`] (`user002`, an admin with no avatar / org e-mail) and [`OUTSIDER_USER_ID`]
//! (`outsider001`, from corp [`OTHER_CORP_ID`]: web login works, `getbyunionid` answers 60121).
//!
//! | endpoint name ([`endpoints`]) | method and path | family |
//! |---|---|---|
//! | `gettoken` | `GET /gettoken?appkey&appsecret` | oapi |
//! | `oauth2_access_token` | `POST /v1.0/oauth2/accessToken` JSON `{appKey,appSecret}` | api |
//! | `getuserinfo` | `POST /topapi/v2/user/getuserinfo?access_token` `{code}` | oapi |
//! | `user_get` | `POST /topapi/v2/user/get?access_token` `{userid,language?}` | oapi |
//! | `getbyunionid` | `POST /topapi/user/getbyunionid?access_token` `{unionid}` | oapi |
//! | `user_access_token` | `POST /v1.0/oauth2/userAccessToken` JSON (code / refresh grants) | api |
//! | `users_me` | `GET /v1.0/contact/users/me`, header `x-acs-dingtalk-access-token` | api |
//! | `authorize` | `GET /oauth2/auth?client_id&response_type=code&redirect_uri&scope&state&prompt` | login |
//! | `approve` | `POST /oauth2/approve` (form posted by the page's buttons) → 303 | login |
//! | `jsapi_tickets` | `POST /v1.0/oauth2/jsapiTickets`, header `x-acs-dingtalk-access-token` → `{jsapiTicket, expireIn}` | api |
//! | `get_jsapi_ticket` | `GET /get_jsapi_ticket?access_token` → `{errcode, errmsg, ticket, expires_in}` | oapi |
//! | `jsapi_sdk`, `jsapi_verify`, `jsapi_code` | the fake `dd` SDK and its helpers ([`crate::jsapi`]) | login |
//!
//! # What it validates (as the real platform does)
//! * **Credentials**: wrong app key or secret → errcode 40096 (`不合法的appKey或appSecret`, what
//!   the live API answers) at `gettoken`; HTTP 400 `invalidClientIdOrSecret` on `api`.
//! * **App tokens** (7200 s, [`APP_TOKEN_TTL`]): unknown, expired (fake clock) or revoked
//!   ([`FakePlatform::revoke_app_tokens`](crate::FakePlatform::revoke_app_tokens)) → errcode 40014. Fetching again while one is live returns
//!   the same token and extends it; both token endpoints share tokens (they are interchangeable
//!   for internal apps). Tokens are per app.
//! * **H5 codes**: single use, 5 minutes, bound to the user's organisation → otherwise 40078. The
//!   token is checked first, so a request with a bad token does not burn the code.
//! * **Web codes**: single use, 5 minutes, bound to the client id → otherwise HTTP 400
//!   `InvalidAuthCode`. User tokens live 7200 s; refresh tokens 30 days ([`REFRESH_TOKEN_TTL`]);
//!   a refresh returns a new access and refresh token and leaves the old refresh token valid.
//! * **Encodings**: `api` endpoints require `Content-Type: application/json` → otherwise HTTP 400
//!   `Missingbody` ("body is mandatory for this action."); a missing field → HTTP 400
//!   `Missing<field>`. `oapi` endpoints accept JSON or form bodies; a missing parameter → errcode
//!   40035.
//! * **Methods**: wrong method on `oapi` → errcode 43001 (needs GET) / 43002 (needs POST); on `api`
//!   → HTTP 404 `InvalidAction.NotFound`. Unknown paths: HTTP 404 with errcode 404 (oapi style) or
//!   `InvalidAction.NotFound` (`/v1.0/…`).
//! * **Membership**: `getbyunionid` and `user_get` only find members of the app's organisation
//!   → otherwise 60121.
//! * **Authorize page**: `client_id` known, `response_type=code`, `redirect_uri` absolute http(s)
//!   on one of the app's [`FakeApp::redirect_hosts`], `scope` ⊆ {`openid`, `corpid`} containing
//!   `openid`, `prompt` ⊆ {`login`, `consent`} containing `consent` → otherwise an HTTP 400 HTML
//!   error page. `corpId` appears in the user token response when the scope had `corpid`.
//!
//! * **JSAPI tickets** ([`crate::jsapi::TICKET_TTL`], 7200 s) are per app (AppKey), shared by
//!   both ticket endpoints, and handed out again while they live (`expireIn` = time left);
//!   a bad app token → HTTP 400 `InvalidAuthentication` / errcode 40014. Test helpers:
//!   [`FakeDingTalk::jsapi_ticket_fetches`], [`FakeDingTalk::live_jsapi_ticket`],
//!   [`FakeDingTalk::expire_jsapi_tickets`], [`FakeDingTalk::rotate_jsapi_ticket`].
//! * **`dd.config`** ([`FakeDingTalk::verify_jsapi_config`], `POST /__fake/jsapi/verify`):
//!   `agentId` + `corpId` must name an app, `timeStamp` (camel case; string or number),
//!   `nonceStr` and `signature` present, and the signature must be
//!   [`jsapi_signature`](crate::jsapi::jsapi_signature) over a live ticket of that app and the
//!   page URL without fragment → otherwise `dd.error` gets
//!   `{"errorCode":"52013","errorMessage":"签名校验失败…"}` ([`SIGNATURE_MISMATCH`]; the number is
//!   from memory in the reference). Mini-apps use the H5 code (`dd.getAuthCode`) path: nothing new.
//! * **Events** ([`FakeDingTalk::push_event`], [`crate::events`]): per-app subscriptions
//!   ([`FakeDingTalk::set_event_credentials`]; defaults [`DEFAULT_EVENT_TOKEN`],
//!   [`DEFAULT_EVENT_AES_KEY`], owner key = AppKey); `check_url`, `user_leave_org` (`UserId`
//!   array, `CorpId`, `eventId`), `user_modify_org`.
//!
//! * **Store apps** ([`FakeSuite`], [`FakeDingTalk::add_suite`], [`FakeDingTalk::install_suite`]):
//!   suite and corp tokens with both APIs, pushed suite tickets, installation pushes; see the
//!   `isv` section below ([`FakeDingTalk::push_suite_ticket`]).
//!
//! # Faults
//! The new ticket endpoint answers [`Fault::SystemBusy`](crate::Fault::SystemBusy) with HTTP 500
//! `systemBusy` (the reference's code for it). Platform faults render as: [`Fault::TokenInvalid`](crate::Fault::TokenInvalid) 40014 / HTTP 400
//! `InvalidAuthentication`; `CodeInvalid` 40078 / HTTP 400 `InvalidAuthCode`; `RateLimited` 90002 /
//! HTTP **403** `Forbidden.AccessDenied.QpsLimitForAppkeyAndApi` (the v1.0 API throttles with 403,
//! not 429); `RateLimitPage` the HTML ban page with HTTP 200; `PermissionDenied`
//! 88 + `sub_code` 60011 / HTTP 403 `Forbidden.AccessDenied.AccessTokenPermissionDenied` (with
//! `accessdenieddetail`); `IpNotAllowed` 60020 / HTTP 403 `Forbidden.AccessDenied.IpNotInWhiteList`;
//! `SystemBusy` -1 / HTTP 503 `ServiceUnavailable`. `Fault::code(n)` on an oapi endpoint gives
//! errcode `n` with the reference message; `Fault::code("Name")` on an api endpoint gives that code
//! with its reference HTTP status (400 by default, 403 for `Forbidden.*` including the
//! `Forbidden.AccessDenied.Qp?Limit*` throttling codes, 404, 503).
//! Login pages accept only transport faults and `RateLimitPage`.
//!
//! # Illustrative choices
//! The reference does not confirm these; the fake picks a plausible answer and clients must only
//! branch on the class (4xx on code exchange = invalid code): the `api` codes `InvalidAuthCode`,
//! `invalidClientIdOrSecret`, `InvalidRefreshToken`, `ServiceUnavailable`,
//! `Forbidden.AccessDenied.IpNotInWhiteList`; the message of the throttling answer; oapi errcodes
//! 40035, 43001, 43002 and the errmsg of 40001 / 90002; HTTP 200 for the ban page; refresh-token
//! non-rotation.

mod envelope;
mod events;
mod handlers;
pub mod isv;
mod jsapi;
mod login;

use std::sync::Arc;
use std::time::Duration;

use axum::http::Method;
use url::Url;

pub use events::{DEFAULT_EVENT_AES_KEY, DEFAULT_EVENT_TOKEN, success_reply};
pub use isv::{
    API_INVALID_AUTH_CORP, API_INVALID_SUITE_KEY, API_INVALID_SUITE_TICKET, FakeSuite,
    ISV_TOKEN_TTL, SUITE_TICKET_TTL, corp_token_signature,
};
pub use jsapi::SIGNATURE_MISMATCH;

pub use envelope::{
    API_INVALID_AUTH_CODE, API_INVALID_AUTHENTICATION, API_INVALID_CLIENT, API_INVALID_PARAMETER,
    API_INVALID_REFRESH_TOKEN, API_IP_DENIED, API_MISSING_BODY, API_NOT_FOUND,
    API_PERMISSION_DENIED, API_THROTTLED, API_UNAVAILABLE, OAPI_BAD_PARAMETER,
    OAPI_INVALID_CREDENTIALS, OAPI_RATE_LIMITED,
};

use crate::clock::FakeClock;
use crate::events::EventCredentials;
use crate::fake::{Backend, Fake, Identity, start_functions};
use crate::http;
use crate::jsapi::{JsapiKind, JsapiRefusal, TicketBook};
use crate::platform::{AppCredentials, EndpointRole, debug_hiding_secret};
use crate::server::FakeRouter;
use crate::store::{CODE_TTL, CodeStore, TokenStore};
use crate::table::Table;
use crate::users::{FakeUser, UserDirectory};

/// App key (client id) of the default app.
pub const DEFAULT_APP_KEY: &str = "dingfakeappkey0001";
/// App secret (client secret) of the default app.
pub const DEFAULT_APP_SECRET: &str = "fake_dt_app_secret_0001";
/// Corp id of the home organisation (as in `fixtures/dingtalk/v1_oauth2_userAccessToken.json`).
pub const DEFAULT_CORP_ID: &str = "dingfakecorp0001";
/// Agent id of the default app.
pub const DEFAULT_AGENT_ID: &str = "100000001";
/// Corp id of the outsider's organisation.
pub const OTHER_CORP_ID: &str = "dingfakecorp0002";
/// The fixture person (`Zhang San`), member of the home organisation.
pub const DEMO_USER_ID: &str = "user001";
/// A second member (`Li Si`, admin, no avatar / org e-mail / hire date).
pub const SECOND_USER_ID: &str = "user002";
/// A person from [`OTHER_CORP_ID`].
pub const OUTSIDER_USER_ID: &str = "outsider001";

/// Lifetime of app tokens.
pub const APP_TOKEN_TTL: Duration = Duration::from_secs(7200);
/// Lifetime of user access tokens.
pub const USER_TOKEN_TTL: Duration = Duration::from_secs(7200);
/// Lifetime of user refresh tokens (30 days).
pub const REFRESH_TOKEN_TTL: Duration = Duration::from_secs(30 * 24 * 3600);

const CODE_PREFIX: &str = "fake_dt_code_";
const APPROVE_PATH: &str = "/oauth2/approve";

/// Endpoint names of the DingTalk fake (for `calls`, fault injection).
pub mod endpoints {
    /// `GET /gettoken` (oapi app token).
    pub const GETTOKEN: &str = "gettoken";
    /// `POST /v1.0/oauth2/accessToken` (api app token).
    pub const OAUTH2_ACCESS_TOKEN: &str = "oauth2_access_token";
    /// `POST /topapi/v2/user/getuserinfo` (H5 code → userid).
    pub const GETUSERINFO: &str = "getuserinfo";
    /// `POST /topapi/v2/user/get` (user detail).
    pub const USER_GET: &str = "user_get";
    /// `POST /topapi/user/getbyunionid` (unionid → userid, membership).
    pub const GETBYUNIONID: &str = "getbyunionid";
    /// `POST /v1.0/oauth2/userAccessToken` (web code / refresh token → user token).
    pub const USER_ACCESS_TOKEN: &str = "user_access_token";
    /// `GET /v1.0/contact/users/me` (web user profile).
    pub const USERS_ME: &str = "users_me";
    /// `GET /oauth2/auth` (authorize page).
    pub const AUTHORIZE: &str = "authorize";
    /// `POST /oauth2/approve` (the page's Approve / Deny buttons).
    pub const APPROVE: &str = "approve";
    /// `POST /v1.0/oauth2/jsapiTickets` (api jsapi ticket).
    pub const JSAPI_TICKETS: &str = "jsapi_tickets";
    /// `GET /get_jsapi_ticket` (oapi jsapi ticket).
    pub const GET_JSAPI_TICKET: &str = "get_jsapi_ticket";
    pub use crate::jsapi::endpoints::{JSAPI_CODE, JSAPI_SDK, JSAPI_VERIFY};
    /// `POST /v1.0/oauth2/suiteAccessToken` (store app: suite token).
    pub const SUITE_ACCESS_TOKEN: &str = "suite_access_token";
    /// `POST /service/get_suite_token` (store app: suite token, old API).
    pub const GET_SUITE_TOKEN: &str = "get_suite_token";
    /// `POST /v1.0/oauth2/corpAccessToken` (store app: an installed organisation's token).
    pub const CORP_ACCESS_TOKEN: &str = "corp_access_token";
    /// `POST /service/get_corp_token` (store app: corp token, old signed API).
    pub const GET_CORP_TOKEN: &str = "get_corp_token";
}

/// An app registered with the fake (an internal app of one organisation). `Debug` hides the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct FakeApp {
    /// AppKey / clientId.
    pub app_key: String,
    /// AppSecret / clientSecret.
    pub app_secret: String,
    /// The organisation the app belongs to.
    pub corp_id: String,
    /// AgentId (informational).
    pub agent_id: String,
    /// Callback hosts accepted in `redirect_uri` (a host matches itself and its subdomains).
    /// Default: `localhost`, `127.0.0.1`, `[::1]`, `example.com`.
    pub redirect_hosts: Vec<String>,
}

debug_hiding_secret!(FakeApp { app_key, [app_secret], corp_id, agent_id, redirect_hosts });

impl FakeApp {
    /// An app with the default redirect hosts and no agent id.
    pub fn new(
        app_key: impl Into<String>,
        app_secret: impl Into<String>,
        corp_id: impl Into<String>,
    ) -> Self {
        Self {
            app_key: app_key.into(),
            app_secret: app_secret.into(),
            corp_id: corp_id.into(),
            agent_id: String::new(),
            redirect_hosts: http::default_redirect_hosts(),
        }
    }

    /// The default app of a fresh fake.
    pub fn default_app() -> Self {
        Self {
            agent_id: DEFAULT_AGENT_ID.to_owned(),
            ..Self::new(DEFAULT_APP_KEY, DEFAULT_APP_SECRET, DEFAULT_CORP_ID)
        }
    }

    /// Whether `url`'s host is one of the app's callback hosts (or a subdomain of one).
    pub fn redirect_allowed(&self, url: &Url) -> bool {
        http::host_allowed(&self.redirect_hosts, url)
    }
}

/// The default users: the fixture person, a second member, and an outsider.
pub fn default_users() -> Vec<FakeUser> {
    vec![
        FakeUser::new(DEMO_USER_ID)
            .name("Zhang San")
            .avatar("https://example.com/avatar/user001.png")
            .mobile("13800000000")
            .country_code("86")
            .job_number("E0001")
            .title("Engineer")
            .email("user001@example.com")
            .org_email("user001@corp.example.com")
            .dept_ids([1, 100])
            .roles(["Member"])
            .hired_at_ms(1_700_000_000_000),
        FakeUser::new(SECOND_USER_ID)
            .name("Li Si")
            .mobile("13800000002")
            .job_number("E0002")
            .title("Manager")
            .email("user002@example.com")
            .dept_ids([1])
            .roles(["Admin"])
            .admin(true),
        FakeUser::new(OUTSIDER_USER_ID)
            .name("Wang Wu")
            .avatar("https://example.org/avatar/outsider001.png")
            .mobile("13800000009")
            .email("outsider001@example.org")
            .in_org(OTHER_CORP_ID),
    ]
}

#[derive(Debug, Clone)]
struct AppTokenMeta {
    app_key: String,
    corp_id: String,
}

#[derive(Debug, Clone)]
struct UserTokenMeta {
    app_key: String,
    user_id: String,
    /// Filled when the login's scope had `corpid`.
    corp_id: Option<String>,
}

#[derive(Debug, Clone)]
struct H5Grant {
    user_id: String,
    corp_id: String,
}

#[derive(Debug, Clone)]
struct WebGrant {
    app_key: String,
    user_id: String,
    corp_id: Option<String>,
}

/// The DingTalk side of a [`FakeDingTalk`]: apps, users, tokens and codes, shared by its
/// endpoints. Opaque: drive it through the fake.
#[derive(Debug)]
pub struct DingTalk {
    home_corp: String,
    apps: Table<String, FakeApp>,
    users: UserDirectory,
    app_tokens: TokenStore<AppTokenMeta>,
    user_tokens: TokenStore<UserTokenMeta>,
    refresh_tokens: TokenStore<UserTokenMeta>,
    h5_codes: CodeStore<H5Grant>,
    web_codes: CodeStore<WebGrant>,
    tickets: TicketBook,
    event_creds: Table<String, EventCredentials>,
    /// Store apps ([`isv`]).
    suites: Table<String, FakeSuite>,
    /// Each suite's current ticket (meta: the suite key).
    suite_tickets: TokenStore<String>,
    /// Suite tokens (meta: the suite key).
    suite_tokens: TokenStore<String>,
    /// `suite/corp` pairs of installed organisations.
    installs: Table<String, ()>,
}

impl DingTalk {
    fn app(&self, app_key: &str) -> Option<FakeApp> {
        self.apps.get(app_key)
    }

    /// An OAuth client: an app, or a store app's suite (clientId = suiteKey).
    fn client(&self, key: &str) -> Option<FakeApp> {
        self.app(key)
            .or_else(|| self.suites.get(key).map(|s| s.as_client()))
    }

    /// The app if `secret` is its secret.
    fn app_with_secret(&self, app_key: &str, secret: &str) -> Option<FakeApp> {
        self.app(app_key).filter(|a| a.app_secret == secret)
    }

    /// DingTalk's app-token policy: the live token again (validity extended), else a new one.
    fn app_token_for(&self, app_key: &str, corp_id: &str) -> String {
        if let Some(token) = self.app_tokens.find_live(|m| m.app_key == app_key)
            && self.app_tokens.extend(&token, APP_TOKEN_TTL)
        {
            return token;
        }
        let meta = AppTokenMeta {
            app_key: app_key.to_owned(),
            corp_id: corp_id.to_owned(),
        };
        self.app_tokens.issue(meta, APP_TOKEN_TTL)
    }

    /// `user_id` if they are a member of `corp_id`.
    fn member(&self, user_id: &str, corp_id: &str) -> Option<FakeUser> {
        self.users
            .get(user_id)
            .filter(|u| u.org_or(&self.home_corp) == corp_id)
    }

    /// The web code Approve hands out for `user_id` through the app `app_key` (`corpId` in the
    /// token response when `scope` has `corpid`); never-issued for an unknown app or user.
    fn issue_web_code(&self, app_key: &str, user_id: &str, scope: &str) -> String {
        if self.client(app_key).is_none() {
            return self.web_codes.unissued();
        }
        let with_corp = scope.split_whitespace().any(|s| s == "corpid");
        self.web_codes
            .issue_for(&self.users, user_id, |user| WebGrant {
                app_key: app_key.to_owned(),
                corp_id: with_corp.then(|| user.org_or(&self.home_corp).to_owned()),
                user_id: user.user_id,
            })
    }
}

impl Backend for DingTalk {
    const IDENTITY: Identity = Identity {
        name: "dingtalk",
        label: "DingTalk",
        demo_user_id: DEMO_USER_ID,
        outsider_user_id: Some(OUTSIDER_USER_ID),
    };
    type Responder = envelope::DingTalkResponder;

    fn new(clock: &FakeClock) -> Self {
        let app = FakeApp::default_app();
        Self {
            home_corp: app.corp_id.clone(),
            apps: Table::from_iter([(app.app_key.clone(), app)]),
            users: default_users().into_iter().collect(),
            app_tokens: TokenStore::new(clock.clone(), "fake_dt_app_token_"),
            user_tokens: TokenStore::new(clock.clone(), "fake_dt_user_token_"),
            refresh_tokens: TokenStore::new(clock.clone(), "fake_dt_refresh_"),
            h5_codes: CodeStore::new(clock.clone(), CODE_PREFIX, CODE_TTL),
            web_codes: CodeStore::new(clock.clone(), CODE_PREFIX, CODE_TTL),
            tickets: TicketBook::new(clock, "fake_dt_jsapi_ticket_"),
            event_creds: Table::default(),
            suites: Table::default(),
            suite_tickets: TokenStore::new(clock.clone(), "fake_dt_suite_ticket_"),
            suite_tokens: TokenStore::new(clock.clone(), "fake_dt_suite_token_"),
            installs: Table::default(),
        }
    }

    #[rustfmt::skip]
    fn routes(st: &Arc<Self>, router: FakeRouter) -> FakeRouter {
        use endpoints::*;
        use envelope::{API, LOGIN, OAPI};
        use Method as M;
        router
            .route(st, (GETTOKEN, M::GET, "/gettoken", OAPI), handlers::gettoken)
            .route(st, (OAUTH2_ACCESS_TOKEN, M::POST, "/v1.0/oauth2/accessToken", API), handlers::oauth2_access_token)
            .route(st, (GETUSERINFO, M::POST, "/topapi/v2/user/getuserinfo", OAPI), handlers::getuserinfo)
            .route(st, (USER_GET, M::POST, "/topapi/v2/user/get", OAPI), handlers::user_get)
            .route(st, (GETBYUNIONID, M::POST, "/topapi/user/getbyunionid", OAPI), handlers::getbyunionid)
            .route(st, (USER_ACCESS_TOKEN, M::POST, "/v1.0/oauth2/userAccessToken", API), handlers::user_access_token)
            .route(st, (USERS_ME, M::GET, "/v1.0/contact/users/me", API), handlers::users_me)
            .route(st, (AUTHORIZE, M::GET, "/oauth2/auth", LOGIN), login::authorize)
            .route(st, (APPROVE, M::POST, APPROVE_PATH, LOGIN), login::approve)
            .route(st, (JSAPI_TICKETS, M::POST, "/v1.0/oauth2/jsapiTickets", API), jsapi::jsapi_tickets)
            .route(st, (GET_JSAPI_TICKET, M::GET, "/get_jsapi_ticket", OAPI), jsapi::get_jsapi_ticket)
            .route(st, (JSAPI_SDK, M::GET, crate::jsapi::DINGTALK_SDK_PATH, LOGIN), jsapi::sdk)
            .route(st, (JSAPI_VERIFY, M::POST, crate::jsapi::VERIFY_PATH, LOGIN), jsapi::verify)
            .route(st, (JSAPI_CODE, M::POST, crate::jsapi::CODE_PATH, LOGIN), jsapi::code)
            .route(st, (SUITE_ACCESS_TOKEN, M::POST, "/v1.0/oauth2/suiteAccessToken", API), isv::suite_access_token)
            .route(st, (GET_SUITE_TOKEN, M::POST, "/service/get_suite_token", OAPI), isv::get_suite_token)
            .route(st, (CORP_ACCESS_TOKEN, M::POST, "/v1.0/oauth2/corpAccessToken", API), isv::corp_access_token)
            .route(st, (GET_CORP_TOKEN, M::POST, "/service/get_corp_token", OAPI), isv::get_corp_token)
    }

    fn users(&self) -> &UserDirectory {
        &self.users
    }

    /// The default app's.
    fn credentials(&self) -> AppCredentials {
        let app = self
            .app(DEFAULT_APP_KEY)
            .unwrap_or_else(FakeApp::default_app);
        AppCredentials {
            app_key: app.app_key,
            app_secret: app.app_secret,
            corp_id: app.corp_id,
            agent_id: app.agent_id,
        }
    }

    /// What `dd.getAuthCode({corpId})` returns inside DingTalk: a code valid once for 5 minutes
    /// with an app of the user's organisation.
    fn issue_h5_code(&self, user_id: &str) -> String {
        self.h5_codes
            .issue_for(&self.users, user_id, |user| H5Grant {
                corp_id: user.org_or(&self.home_corp).to_owned(),
                user_id: user.user_id,
            })
    }

    /// The `authCode` of the default app with scope `openid corpid` (so the token response
    /// carries `corpId`).
    fn approve_web_login(&self, user_id: &str) -> String {
        self.issue_web_code(DEFAULT_APP_KEY, user_id, "openid corpid")
    }

    fn revoke_app_tokens(&self) -> usize {
        self.app_tokens.revoke_all()
    }

    fn endpoints_for(&self, role: EndpointRole) -> Vec<&'static str> {
        use endpoints::*;
        match role {
            EndpointRole::AppToken => vec![GETTOKEN, OAUTH2_ACCESS_TOKEN],
            EndpointRole::H5CodeExchange => vec![GETUSERINFO],
            EndpointRole::UserDetail => vec![USER_GET],
            EndpointRole::Membership => vec![GETBYUNIONID],
            EndpointRole::Authorize => vec![AUTHORIZE],
            EndpointRole::WebCodeExchange => vec![USER_ACCESS_TOKEN],
            EndpointRole::WebUserInfo => vec![USERS_ME],
        }
    }
}

/// A running DingTalk fake. See the [module docs](self). Dropping it stops the server.
///
/// Its login side (users, H5 codes, web logins, app-token revocation, call counts, faults, the
/// clock) is the [`FakePlatform`](crate::FakePlatform) trait; `base_url` and `credentials` (the default app's) need
/// no import.
pub type FakeDingTalk = Fake<DingTalk>;

start_functions!(FakeDingTalk);

impl FakeDingTalk {
    /// Stand-in for `https://oapi.dingtalk.com` (same as [`base_url`](Self::base_url)).
    pub fn oapi_base_url(&self) -> &str {
        self.base_url()
    }

    /// Stand-in for `https://api.dingtalk.com` (same as [`base_url`](Self::base_url)).
    pub fn api_base_url(&self) -> &str {
        self.base_url()
    }

    /// Stand-in for `https://login.dingtalk.com` (same as [`base_url`](Self::base_url)).
    pub fn login_base_url(&self) -> &str {
        self.base_url()
    }

    /// Register another app (or replace one with the same key), e.g. a second app of the same
    /// organisation to prove two apps never share a token.
    pub fn add_app(&self, app: FakeApp) {
        self.backend().apps.insert(app.app_key.clone(), app);
    }

    /// Like [`FakePlatform::approve_web_login`](crate::FakePlatform::approve_web_login) for any
    /// app and scope.
    /// An unknown app or user gets a never-issued code.
    pub fn approve_web_login_with(&self, app_key: &str, user_id: &str, scope: &str) -> String {
        self.backend().issue_web_code(app_key, user_id, scope)
    }

    /// The authorize URL a client should build for the default app (`scope=openid corpid`,
    /// `prompt=consent`), handy for browser-driven tests.
    pub fn authorize_url(&self, redirect_uri: &str, state: &str) -> String {
        let mut url = format!("{}/oauth2/auth?", self.base_url());
        url.push_str(
            &url::form_urlencoded::Serializer::new(String::new())
                .append_pair("redirect_uri", redirect_uri)
                .append_pair("response_type", "code")
                .append_pair("client_id", DEFAULT_APP_KEY)
                .append_pair("scope", "openid corpid")
                .append_pair("state", state)
                .append_pair("prompt", "consent")
                .finish(),
        );
        url
    }

    /// An app token for the default app without an HTTP call (not counted), following the same
    /// policy as `gettoken`.
    pub fn mint_app_token(&self) -> String {
        let st = self.backend();
        st.app_token_for(DEFAULT_APP_KEY, &st.home_corp)
    }

    /// Revoke every user access token (refresh tokens stay valid).
    pub fn revoke_user_tokens(&self) {
        self.backend().user_tokens.revoke_all();
    }

    /// Successful jsapi-ticket fetches (both endpoints) by `app_key` since the last
    /// [`reset_jsapi_ticket_fetches`](Self::reset_jsapi_ticket_fetches).
    pub fn jsapi_ticket_fetches(&self, app_key: &str) -> u64 {
        self.backend().tickets.fetches(app_key, JsapiKind::Config)
    }

    /// Forget the jsapi-ticket fetch counts.
    pub fn reset_jsapi_ticket_fetches(&self) {
        self.backend().tickets.reset_fetches();
    }

    /// The live jsapi ticket of `app_key` (the one a fetch returns now), if any.
    pub fn live_jsapi_ticket(&self, app_key: &str) -> Option<String> {
        self.backend()
            .tickets
            .live(app_key, JsapiKind::Config)
            .into_iter()
            .next()
    }

    /// Expire `app_key`'s jsapi tickets now: signatures made with them are refused and the next
    /// fetch issues a new ticket. Returns how many were live.
    pub fn expire_jsapi_tickets(&self, app_key: &str) -> usize {
        self.backend().tickets.expire(app_key, JsapiKind::Config)
    }

    /// Replace `app_key`'s jsapi ticket with a new one (the old one stops working at once);
    /// returns the new ticket (not counted as a fetch).
    pub fn rotate_jsapi_ticket(&self, app_key: &str) -> String {
        self.backend().tickets.rotate(app_key, JsapiKind::Config)
    }

    /// Check a `dd.config` object as DingTalk's JS SDK and server do (see the [module
    /// docs](self)) for the page at `page_url` (its fragment is ignored, as the SDK drops it).
    /// `kind` must be [`JsapiKind::Config`].
    pub fn verify_jsapi_config(
        &self,
        kind: JsapiKind,
        config: &serde_json::Value,
        page_url: &str,
    ) -> Result<(), JsapiRefusal> {
        self.backend().verify_jsapi(kind, config, page_url)
    }

    /// `{base}/__fake/jsapi/dingtalk.js`: the fake `dd` SDK (see [`crate::jsapi`]).
    pub fn jsapi_sdk_url(&self) -> String {
        format!("{}{}", self.base_url(), crate::jsapi::DINGTALK_SDK_PATH)
    }
}
