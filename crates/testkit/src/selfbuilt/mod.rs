//! A fake of a **self-built** workplace platform: the kind of in-house "open platform" a company
//! runs beside DingTalk, Feishu and WeCom, which unilogin logs into with the `custom-oauth`
//! platform in `mode: steps` (configuration only, no code). Its shapes deliberately differ from
//! the three known platforms:
//!
//! * a **nested envelope**: `{"result": {"status": "OK", "payload": {…}}, "requestId": "…"}`,
//!   errors as `{"result": {"status": "ERROR", "error": {"code": 2002, "message": "…"}}}` with
//!   an HTTP status that follows the code (401, 403, 404, 429 + `Retry-After`, 503);
//! * the app token is requested with a **form** body and sent back in a **request header**
//!   (`X-Open-Token`), never in the URL;
//! * user ids are **numbers** (`{"id": 10086}`);
//! * the code exchange answers for anyone who signed in and says which organisation they belong
//!   to (`orgId`); the user endpoint only knows members of the app's organisation.
//!
//! [`FakeSelfBuilt::tenant_config`] is the unilogin tenant configuration (plain data, see
//! `custom-oauth-steps.json` beside this file) that logs into the fake.
//!
//! | endpoint name ([`endpoints`]) | method and path | family |
//! |---|---|---|
//! | `auth_token` | `POST /open/v3/auth/token`, form `appId`, `appSecret` → `payload.credential {value, ttl}` | api |
//! | `sso_identify` | `GET /open/v3/sso/identify?auth_code=`, header `X-Open-Token` → `payload.user {id, unionId, orgId}` | api |
//! | `users_get` | `GET /open/v3/users/{id}`, header `X-Open-Token` → `payload.profile` | api |
//! | `sso_authorize` | `GET /open/v3/sso/authorize?app_id&redirect_uri&response_type=code&state` | page |
//! | `sso_approve` | `POST /open/v3/sso/approve` (the page's form) → 302 `redirect_uri?code&state` | page |
//!
//! # What it validates
//! * **Credentials**: the token request must be a form (else 1001) with `appId` and `appSecret`
//!   (else 1001); an unknown app or a wrong secret → 2001 (HTTP 401).
//! * **App tokens** live 7200 s ([`APP_TOKEN_TTL`]) on the fake clock; every request issues a
//!   new one (earlier ones stay valid). Missing, unknown, revoked or expired → 2002 (HTTP 401).
//! * **Codes**: single use, 5 minutes, bound to the app → otherwise 3001 (HTTP 400). The token
//!   is checked first, so a request with a bad token never burns the code.
//! * **Users**: `users/{id}` finds members of the app's organisation only → otherwise 3004
//!   (HTTP 404).
//! * **Methods** → 1002 (HTTP 405); unknown paths → 1004 (HTTP 404).
//! * **Pages**: `app_id` must be the app, `response_type=code`, `redirect_uri` an absolute
//!   `http(s)` URL whose host is registered for the app ([`DEFAULT_REDIRECT_HOSTS`],
//!   [`FakeSelfBuilt::allow_redirect_host`]); otherwise an HTML error page.
//!
//! # Faults
//! [`Fault::TokenInvalid`](crate::Fault::TokenInvalid) 2002; `CodeInvalid` 3001; `RateLimited` 4029 (HTTP 429 with
//! `Retry-After: 30`); `RateLimitPage` the API gateway's HTML 429 page; `PermissionDenied` 2003;
//! `IpNotAllowed` 2004; `SystemBusy` 5000 (HTTP 503); `Fault::code(n)` error `n` with the status
//! of [`status_of`]. Sub-codes are not supported; pages accept only
//! transport faults.
//!
//! # Illustrative choices
//! The platform is invented, so every shape, code and message here is illustrative. Test users
//! whose id is not a decimal number keep a string id (a convenience the "real" platform would
//! not have).

mod envelope;
mod handlers;
mod pages;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::Method;
use serde_json::Value;
use url::Url;

pub use envelope::{
    APP_CREDENTIALS_INVALID, BAD_REQUEST, CODE_INVALID, IP_NOT_ALLOWED, METHOD_NOT_ALLOWED,
    NOT_FOUND, PERMISSION_DENIED, RATE_LIMITED, RETRY_AFTER_SECS, SYSTEM_BUSY, TOKEN_INVALID,
    USER_NOT_FOUND, status_of,
};

use crate::clock::FakeClock;
use crate::fake::{Backend, Fake, Identity, start_functions};
use crate::platform::{AppCredentials, EndpointRole};
use crate::server::FakeRouter;
use crate::store::{CODE_TTL, CodeStore, TokenStore};
use crate::table::lock;
use crate::users::{FakeUser, UserDirectory};

/// The unilogin platform that logs into this fake (`custom-oauth`, `mode: steps`).
pub const PLATFORM: &str = "custom-oauth";
/// The app's id (`appId`; unilogin's `app_key`).
pub const DEFAULT_APP_ID: &str = "sb_app_acme_0001";
/// The app's secret (`appSecret`; unilogin's `app_secret`).
pub const DEFAULT_APP_SECRET: &str = "fake_selfbuilt_secret_0001";
/// The organisation the app belongs to (unilogin's `corp_id`).
pub const HOME_ORG: &str = "org-acme";
/// Another organisation whose people can sign in but are not members.
pub const PARTNER_ORG: &str = "org-partner";
/// The demo person (`Zhang San`, every field filled).
pub const DEMO_USER_ID: &str = "10086";
/// A second member (`Li Si`, no e-mail, no avatar).
pub const SECOND_USER_ID: &str = "10087";
/// A person of [`PARTNER_ORG`].
pub const OUTSIDER_USER_ID: &str = "20001";
/// The request header that carries the app token.
pub const TOKEN_HEADER: &str = "x-open-token";
/// Lifetime of app tokens.
pub const APP_TOKEN_TTL: Duration = Duration::from_secs(7200);
/// Redirect hosts registered for the app in a fresh fake.
pub const DEFAULT_REDIRECT_HOSTS: &[&str] = &["app.acme.example", "localhost", "127.0.0.1"];

/// The host the bundled tenant configuration names; [`FakeSelfBuilt::tenant_config`] replaces
/// it with the fake's base URL.
const CONFIG_BASE: &str = "https://open.selfbuilt.example";
/// The unilogin tenant configuration of the platform (see [`FakeSelfBuilt::tenant_config`]).
pub const TENANT_CONFIG_JSON: &str = include_str!("custom-oauth-steps.json");

const USERS_PATH_PREFIX: &str = "/open/v3/users/";
const APPROVE_PATH: &str = "/open/v3/sso/approve";
const CODE_PREFIX: &str = "fake_sb_code_";

/// Endpoint names of the fake (for `calls`, fault injection).
pub mod endpoints {
    /// `POST /open/v3/auth/token` (app token).
    pub const AUTH_TOKEN: &str = "auth_token";
    /// `GET /open/v3/sso/identify` (code → user id).
    pub const SSO_IDENTIFY: &str = "sso_identify";
    /// `GET /open/v3/users/{id}` (user detail).
    pub const USERS_GET: &str = "users_get";
    /// `GET /open/v3/sso/authorize` (browser sign-in page).
    pub const SSO_AUTHORIZE: &str = "sso_authorize";
    /// `POST /open/v3/sso/approve` (the page's Approve button).
    pub const SSO_APPROVE: &str = "sso_approve";
}

/// The default people: the demo person, a second member and a partner-organisation outsider.
pub fn default_users() -> Vec<FakeUser> {
    vec![
        FakeUser::new(DEMO_USER_ID)
            .union_id("union-10086")
            .name("Zhang San")
            .mobile("13800000000")
            .email("User001@Example.com")
            .org_email("zhangsan@acme.example")
            .avatar("https://example.com/avatar/10086.png")
            .job_number("E0001")
            .title("Engineer")
            .dept_ids([1, 100]),
        FakeUser::new(SECOND_USER_ID)
            .union_id("union-10087")
            .name("Li Si")
            .mobile("13800000002")
            .title("Manager"),
        FakeUser::new(OUTSIDER_USER_ID)
            .union_id("union-20001")
            .name("Wang Wu")
            .in_org(PARTNER_ORG),
    ]
}

#[derive(Debug, Clone)]
struct CodeGrant {
    app_id: String,
    user_id: String,
}

/// The platform side of a [`FakeSelfBuilt`]: the app, people, tokens and codes, shared by its
/// endpoints. Opaque: drive it through the fake.
#[derive(Debug)]
pub struct SelfBuilt {
    app_id: String,
    app_secret: String,
    home_org: String,
    redirect_hosts: Mutex<Vec<String>>,
    users: UserDirectory,
    /// App tokens, carrying the app id.
    tokens: TokenStore<String>,
    codes: CodeStore<CodeGrant>,
}

impl SelfBuilt {
    /// Whether `url`'s host is registered for the app (exact, case-insensitive).
    fn redirect_allowed(&self, url: &Url) -> bool {
        url.host_str().is_some_and(|host| {
            lock(&self.redirect_hosts)
                .iter()
                .any(|h| h.eq_ignore_ascii_case(host))
        })
    }

    /// A code for `user_id` as the sign-in page (or the in-app JSAPI) hands it out; unknown
    /// people get a code that was never issued.
    fn issue_code(&self, user_id: &str) -> String {
        self.codes
            .issue_for(&self.users, user_id, |user| CodeGrant {
                app_id: self.app_id.clone(),
                user_id: user.user_id,
            })
    }
}

/// Ids are numbers here: give added [`FakeUser`]s decimal ids. Codes (in-app JSAPI and sign-in
/// page alike) are valid once for 5 minutes; outsiders get real codes (the exchange tells their
/// organisation), unknown people never-issued ones. Revoked app tokens answer 2002.
impl Backend for SelfBuilt {
    const IDENTITY: Identity = Identity {
        name: PLATFORM,
        label: "self-built platform",
        demo_user_id: DEMO_USER_ID,
        outsider_user_id: Some(OUTSIDER_USER_ID),
    };
    type Responder = envelope::SelfBuiltResponder;

    fn new(clock: &FakeClock) -> Self {
        let hosts = DEFAULT_REDIRECT_HOSTS.iter().map(|h| h.to_string());
        Self {
            app_id: DEFAULT_APP_ID.to_owned(),
            app_secret: DEFAULT_APP_SECRET.to_owned(),
            home_org: HOME_ORG.to_owned(),
            redirect_hosts: Mutex::new(hosts.collect()),
            users: default_users().into_iter().collect(),
            tokens: TokenStore::new(clock.clone(), "fake_sb_app_token_"),
            codes: CodeStore::new(clock.clone(), CODE_PREFIX, CODE_TTL),
        }
    }

    #[rustfmt::skip]
    fn routes(st: &Arc<Self>, router: FakeRouter) -> FakeRouter {
        use endpoints::*;
        use envelope::{API, PAGE};
        use Method as M;
        router
            .route(st, (AUTH_TOKEN, M::POST, "/open/v3/auth/token", API), handlers::app_token)
            .route(st, (SSO_IDENTIFY, M::GET, "/open/v3/sso/identify", API), handlers::identify)
            .route(st, (USERS_GET, M::GET, "/open/v3/users/{id}", API), handlers::user)
            .route(st, (SSO_AUTHORIZE, M::GET, "/open/v3/sso/authorize", PAGE), pages::authorize)
            .route(st, (SSO_APPROVE, M::POST, APPROVE_PATH, PAGE), pages::approve)
    }

    fn users(&self) -> &UserDirectory {
        &self.users
    }

    /// `corp_id` is the app's organisation; there is no agent id.
    fn credentials(&self) -> AppCredentials {
        AppCredentials {
            app_key: self.app_id.clone(),
            app_secret: self.app_secret.clone(),
            corp_id: self.home_org.clone(),
            agent_id: String::new(),
        }
    }

    fn issue_h5_code(&self, user_id: &str) -> String {
        self.issue_code(user_id)
    }

    fn approve_web_login(&self, user_id: &str) -> String {
        self.issue_code(user_id)
    }

    fn revoke_app_tokens(&self) -> usize {
        self.tokens.revoke_all()
    }

    /// One code exchange serves both flows; the platform issues no user tokens and tells the
    /// organisation in the exchange (no separate membership call).
    fn endpoints_for(&self, role: EndpointRole) -> Vec<&'static str> {
        use endpoints::*;
        match role {
            EndpointRole::AppToken => vec![AUTH_TOKEN],
            EndpointRole::H5CodeExchange | EndpointRole::WebCodeExchange => vec![SSO_IDENTIFY],
            EndpointRole::UserDetail => vec![USERS_GET],
            EndpointRole::Authorize => vec![SSO_AUTHORIZE],
            _ => Vec::new(),
        }
    }
}

/// A running self-built platform fake. See the [module docs](self). Dropping it stops the
/// server. Its platform side (users, codes, call counts, faults, the clock) is the
/// [`FakePlatform`](crate::FakePlatform) trait: import it; `base_url` and `credentials` need
/// no import.
pub type FakeSelfBuilt = Fake<SelfBuilt>;

start_functions!(FakeSelfBuilt);

impl FakeSelfBuilt {
    /// The unilogin tenant configuration that logs into this fake: platform `custom-oauth`,
    /// `mode: steps`, the three steps, the error-code classes and the mapping rules, pointing
    /// at [`base_url`](Self::base_url). Tenant `acme`, redirect URI
    /// `https://app.acme.example/auth/callback`; change them as needed. The same document, with
    /// the placeholder host `https://open.selfbuilt.example`, is [`TENANT_CONFIG_JSON`].
    pub fn tenant_config(&self) -> Value {
        let text = TENANT_CONFIG_JSON.replace(CONFIG_BASE, self.base_url());
        // A constant document (parsed by this module's tests); Null only if it were broken.
        serde_json::from_str(&text).unwrap_or(Value::Null)
    }

    /// Register another redirect host for the app (exact host match).
    pub fn allow_redirect_host(&self, host: &str) {
        lock(&self.backend().redirect_hosts).push(host.to_owned());
    }

    /// A live app token without an HTTP call (not counted).
    pub fn mint_app_token(&self) -> String {
        let st = self.backend();
        st.tokens.issue(st.app_id.clone(), APP_TOKEN_TTL)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_tenant_config_parses_and_names_the_default_app() {
        let v: Value = serde_json::from_str(TENANT_CONFIG_JSON).expect("valid JSON");
        assert_eq!(v["platform"], PLATFORM);
        assert_eq!(v["mode"], "steps");
        assert_eq!(v["app_key"], DEFAULT_APP_ID);
        assert_eq!(v["corp_id"], HOME_ORG);
        assert!(!TENANT_CONFIG_JSON.contains("127.0.0.1"));
        // The secret is never spelled out inside a URL, parameter or header template.
        let steps = v["options"]["steps"].to_string();
        assert!(!steps.contains(DEFAULT_APP_SECRET), "{steps}");
    }

    #[test]
    fn ids_are_numbers_where_they_can_be() {
        assert_eq!(handlers::id_value("10086"), serde_json::json!(10086));
        assert_eq!(handlers::id_value("abc"), serde_json::json!("abc"));
    }
}
