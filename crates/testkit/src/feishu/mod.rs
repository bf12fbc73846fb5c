//! A faithful fake of Feishu / Lark (飞书): the `open` host (`open.feishu.cn` /
//! `open.larksuite.com`) and the `accounts` host (`accounts.feishu.cn` /
//! `accounts.larksuite.com`) served by one loopback server. The paths are the same for Feishu
//! and Lark; [`start_lark`] only changes the default tenant keys.
//!
//! Point every Feishu host of the client at [`FakeFeishu::base_url`]. The fake knows one default
//! app ([`DEFAULT_APP_ID`] / [`DEFAULT_APP_SECRET`], a self-built app of tenant
//! [`DEFAULT_TENANT_KEY`]) and three users: [`DEMO_USER_ID`] (`user001`, the person of
//! `fixtures/feishu/*.json`), [`SECOND_USER_ID`] (`user002`, tenant manager without avatar) and
//! [`OUTSIDER_USER_ID`] (`outsider001`, tenant [`OTHER_TENANT_KEY`]: web login works and
//! `user_info` reports the other `tenant_key`; the directory does not know them).
//!
//! | endpoint name ([`endpoints`]) | method and path | family |
//! |---|---|---|
//! | `tenant_access_token` | `POST /open-apis/auth/v3/tenant_access_token/internal` `{app_id,app_secret}` | auth |
//! | `app_access_token` | `POST /open-apis/auth/v3/app_access_token/internal` `{app_id,app_secret}` | auth |
//! | `app_ticket_resend` | `POST /open-apis/auth/v3/app_ticket/resend` `{app_id,app_secret}` (store apps: a new ticket is pushed to the app's subscription, [`isv`]) | auth |
//! | `store_app_access_token` | `POST /open-apis/auth/v3/app_access_token` `{app_id,app_secret,app_ticket}` (store apps, [`isv`]) | auth |
//! | `store_tenant_access_token` | `POST /open-apis/auth/v3/tenant_access_token` `{app_access_token,tenant_key}` (store apps, [`isv`]) | auth |
//! | `oauth_token_v2` | `POST /open-apis/authen/v2/oauth/token` (code / refresh grants) | oauth2 |
//! | `oidc_access_token` | `POST /open-apis/authen/v1/oidc/access_token`, app token in `Authorization` | open |
//! | `oidc_refresh_access_token` | `POST /open-apis/authen/v1/oidc/refresh_access_token`, app token | open |
//! | `v1_access_token` | `POST /open-apis/authen/v1/access_token` (legacy: token and user in `data`) | open |
//! | `user_info` | `GET /open-apis/authen/v1/user_info`, `Authorization: Bearer u-…` | open_user |
//! | `contact_user` | `GET /open-apis/contact/v3/users/{id}?user_id_type&department_id_type`, tenant token | open |
//! | `authorize` | `GET /open-apis/authen/v1/authorize` (accounts host) | accounts |
//! | `approve` | `POST /open-apis/authen/v1/authorize/approve` (the page's buttons) → 302 | accounts |
//! | `jssdk_ticket` | `POST /open-apis/jssdk/ticket/get`, tenant token → `{code,msg:"ok",data{expire_in,ticket}}` | open |
//! | `mina_token_login_validate` | `POST /open-apis/mina/v2/tokenLoginValidate` `{code}`, app token | open |
//! | `jsapi_sdk`, `jsapi_verify`, `jsapi_code` | the fake `h5sdk` / `tt` SDK and its helpers ([`crate::jsapi`]) | accounts |
//!
//! # What it validates (as the real platform does)
//! * **Credentials**: unknown `app_id` → code 10003, wrong `app_secret` → 10014 at the token
//!   endpoints; v2 `client_id`/`client_secret` → HTTP 401 `invalid_client`.
//! * **App tokens** (`t-…`, at most 7200 s, [`APP_TOKEN_TTL`]): Feishu's reissue rule — while at
//!   least 30 minutes remain ([`REISSUE_BELOW`]) a token request returns the **same** token with
//!   `expire` = its *remaining* lifetime; below that a **new** token is issued and the old one
//!   stays valid until its own expiry (two valid tokens). Both token endpoints share tokens (for a
//!   self-built app `app_access_token` and `tenant_access_token` are the same value, as in the
//!   fixture). Missing `Authorization` → 99991661; not `Bearer t-…` → 99991671; unknown, expired or
//!   revoked ([`FakePlatform::revoke_app_tokens`](crate::FakePlatform::revoke_app_tokens)) → 99991663.
//!   The v1 user-token endpoints (`authen/v1/oidc/*`, `authen/v1/access_token`) take the
//!   **app** access token, as the official SDK declares them: a token the client obtained only
//!   from `tenant_access_token/internal` → 99991664 (`CODE_APP_TOKEN_INVALID`).
//! * **User tokens** (`u-…`, 7200 s): missing → 99991661; unknown or revoked → 99991668; expired →
//!   99991677. **Refresh tokens** (`ur-…`, 30 days) are issued only when the grant's scope has
//!   `offline_access` and the app has that permission; each is **single use**: a refresh returns a
//!   new pair and the old refresh token dies at once.
//! * **Codes**: single use; 5 minutes (`tt.requestAuthCode`, authorize page) or 3 minutes
//!   (`tt.requestAccess`, [`FakeFeishu::issue_request_access_code`]); bound to the app. A code from
//!   the authorize page is bound to its `redirect_uri` (the token request must repeat it) and to
//!   its PKCE challenge (`S256` or `plain`; the token request must carry the matching
//!   `code_verifier`). v2: HTTP 400 `{code: 20003, error: "invalid_grant"}` (the fixture); v1:
//!   HTTP 400 code 20003. The token is checked first, so a rejected token never burns a code.
//! * **Scopes**: `user_info` carries `email`, `mobile`, `user_id` only if the app has
//!   `contact:user.email:readonly`, `contact:user.phone:readonly`,
//!   `contact:user.employee_id:readonly` ([`FakeApp::permissions`]); the directory also needs
//!   `contact:user.base:readonly` (else 99991672) and `contact:user.department:readonly` for
//!   `department_ids`. The authorize page refuses scopes the app does not have.
//! * **Directory**: `contact/v3/users/{id}` finds only members of the app's tenant → otherwise
//!   HTTP 400 code 41050.
//! * **Encodings**: token endpoints need a JSON object body with `Content-Type: application/json`
//!   → otherwise HTTP 400 code 99992402 (`invalid_request` on v2).
//! * **Authorize page**: `client_id` (or the previous generation's `app_id`) known, `redirect_uri`
//!   absolute http(s) on one of [`FakeApp::redirect_hosts`], `response_type` absent or `code`,
//!   scopes known to the app, `code_challenge_method` `S256`/`plain` → otherwise an HTTP 400 HTML
//!   page. Approve answers `302` to `redirect_uri?code=CODE&state=STATE`.
//!
//! * **JSAPI tickets** (7200 s) are per app and handed out again while they live (`expire_in` =
//!   time left); helpers [`FakeFeishu::jsapi_ticket_fetches`], [`FakeFeishu::live_jsapi_ticket`],
//!   [`FakeFeishu::expire_jsapi_tickets`], [`FakeFeishu::rotate_jsapi_ticket`].
//! * **`h5sdk.config`** ([`FakeFeishu::verify_jsapi_config`]): `appId` known, `timestamp` a JSON
//!   **number** (ms; a string is refused), `nonceStr`, `signature` over a live ticket of the app
//!   and the page URL without fragment → otherwise `onFail` / `h5sdk.error` get
//!   `{errorCode: 2 (illustrative, JSAPI_CONFIG_FAILED), errorMessage}`.
//! * **Mini programs**: [`FakeFeishu::issue_mina_code`] mints a `tt.login` code (single use,
//!   5 minutes, bound to the app); `tokenLoginValidate` takes any live app token (for a self-built
//!   app the app and tenant tokens are one value) → 10202 otherwise; a used / expired / other
//!   app's code → 10213; a person outside the app's tenant → 10228. `expires_in` is an
//!   **absolute** unix time (wall clock + the fake clock's offset); `union_id` is deliberately not
//!   the person's real Union ID (deprecated there); `access_token` is a real user token.
//! * **Events** ([`FakeFeishu::push_event`], [`crate::events`]): defaults
//!   [`DEFAULT_VERIFICATION_TOKEN`], [`DEFAULT_ENCRYPT_KEY`]; `url_verification`, schema 2.0
//!   `contact.user.deleted_v3` / `contact.user.updated_v3` (`object.status.is_resigned`,
//!   `is_frozen`), `header.event_id`, `header.token`.
//!
//! # Faults
//! On `mina_token_login_validate`, `TokenInvalid` renders 10202 and `CodeInvalid` 10213.
//! Platform faults render as: [`Fault::TokenInvalid`](crate::Fault::TokenInvalid) 99991663 (99991668 on `user_info`; not
//! offered where no access token is sent: token endpoints, v2 oauth); `CodeInvalid` 20003;
//! `RateLimited` and `RateLimitPage` HTTP 429 code 99991400 with headers
//! `x-ogw-ratelimit-limit` / `x-ogw-ratelimit-reset` ([`RATE_LIMIT_RESET_SECS`]);
//! `PermissionDenied` 99991672; `IpNotAllowed` 99991401; `SystemBusy` HTTP 500 code 2200.
//! `Fault::code(n)` gives code `n` (HTTP 429 for 99991400, 500 for 2200, else 400; on v2 the
//! standard OAuth2 shape). Login pages accept only transport faults.
//!
//! # Illustrative choices
//! Not confirmed by the reference; clients must branch only on the class: codes 10003, 10014,
//! 99992402, 41050, 20003 on v1, 20026 (bad refresh token), 2200 and its HTTP 500; HTTP 400 as the
//! status of error codes other than 99991400; the v2 `error` strings other than `invalid_grant`;
//! `404 page not found` for unknown paths and wrong methods; 99991401's text (seen in issue
//! threads).

mod envelope;
mod events;
mod handlers;
pub mod isv;
mod jsapi;
mod login;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::Method;
use url::Url;

pub use events::{DEFAULT_ENCRYPT_KEY, DEFAULT_VERIFICATION_TOKEN};

pub use envelope::{
    CODE_APP_TOKEN_INVALID, CODE_BAD_REQUEST, CODE_INVALID_APP, CODE_INVALID_CODE,
    CODE_INVALID_REFRESH_TOKEN, CODE_INVALID_SECRET, CODE_IP_DENIED, CODE_MINA_CODE_INVALID,
    CODE_MINA_NO_VISIBILITY, CODE_MINA_TOKEN_INVALID, CODE_NO_USER_AUTHORITY, CODE_RATE_LIMITED,
    CODE_SCOPE_MISSING, CODE_SYSTEM_BUSY, CODE_TENANT_TOKEN_INVALID, CODE_TOKEN_FORMAT,
    CODE_TOKEN_MISSING, CODE_USER_TOKEN_EXPIRED, CODE_USER_TOKEN_INVALID, JSAPI_CONFIG_FAILED,
    RATE_LIMIT_RESET_SECS,
};

use crate::clock::FakeClock;
use crate::events::EventCredentials;
use crate::fake::{Backend, Fake, Identity, loopback, start_functions, started};
use crate::http;
use crate::jsapi::{JsapiKind, JsapiRefusal, TicketBook};
use crate::platform::{AppCredentials, EndpointRole, debug_hiding_secret};
use crate::server::FakeRouter;
use crate::store::{CODE_TTL, CodeStore, TokenStore};
use crate::table::{Table, lock};
use crate::users::{FakeUser, UserDirectory};

/// App id of the default app.
pub const DEFAULT_APP_ID: &str = "cli_fakeappid0001";
/// App secret of the default app.
pub const DEFAULT_APP_SECRET: &str = "fake_fs_app_secret_0001";
/// Tenant key of the home tenant (as in `fixtures/feishu/authen_v1_user_info.json`).
pub const DEFAULT_TENANT_KEY: &str = "faketenantkey001";
/// Tenant key of the outsider's tenant.
pub const OTHER_TENANT_KEY: &str = "faketenantkey002";
/// Tenant key of the home tenant of a fake started with [`start_lark`].
pub const LARK_TENANT_KEY: &str = "fakelarktenant001";
/// Tenant key of the outsider's tenant in a fake started with [`start_lark`].
pub const LARK_OTHER_TENANT_KEY: &str = "fakelarktenant002";
/// The fixture person (`Zhang San`), member of the home tenant.
pub const DEMO_USER_ID: &str = "user001";
/// A second member (`Li Si`, tenant manager, no avatar).
pub const SECOND_USER_ID: &str = "user002";
/// A person from another tenant.
pub const OUTSIDER_USER_ID: &str = "outsider001";

/// Longest lifetime of an app token.
pub const APP_TOKEN_TTL: Duration = Duration::from_secs(7200);
/// Below this remaining lifetime a token request issues a new app token (the old stays valid).
pub const REISSUE_BELOW: Duration = Duration::from_secs(30 * 60);
/// Lifetime of user access tokens.
pub const USER_TOKEN_TTL: Duration = Duration::from_secs(7200);
/// Lifetime of refresh tokens (30 days).
pub const REFRESH_TOKEN_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
/// Lifetime of a `tt.requestAccess` code.
pub const REQUEST_ACCESS_CODE_TTL: Duration = Duration::from_secs(3 * 60);

/// Permission for the directory (`contact/v3/users/:id`).
pub const SCOPE_CONTACT_BASE: &str = "contact:user.base:readonly";
/// Permission that brings `email`.
pub const SCOPE_EMAIL: &str = "contact:user.email:readonly";
/// Permission that brings `mobile`.
pub const SCOPE_PHONE: &str = "contact:user.phone:readonly";
/// Permission that brings `user_id`.
pub const SCOPE_EMPLOYEE_ID: &str = "contact:user.employee_id:readonly";
/// Permission that brings `department_ids` in the directory.
pub const SCOPE_DEPARTMENT: &str = "contact:user.department:readonly";
/// Permission (and authorize scope) that brings refresh tokens.
pub const SCOPE_OFFLINE_ACCESS: &str = "offline_access";

const CODE_PREFIX: &str = "fake_fs_code_";
const APPROVE_PATH: &str = "/open-apis/authen/v1/authorize/approve";

/// Endpoint names of the Feishu fake (for `calls`, fault injection).
pub mod endpoints {
    /// `POST /open-apis/auth/v3/tenant_access_token/internal`.
    pub const TENANT_ACCESS_TOKEN: &str = "tenant_access_token";
    /// `POST /open-apis/auth/v3/app_access_token/internal`.
    pub const APP_ACCESS_TOKEN: &str = "app_access_token";
    /// `POST /open-apis/auth/v3/app_ticket/resend` (store apps: ask for an `app_ticket` push).
    pub const APP_TICKET_RESEND: &str = "app_ticket_resend";
    /// `POST /open-apis/auth/v3/app_access_token` (store apps: with the `app_ticket`).
    pub const STORE_APP_ACCESS_TOKEN: &str = "store_app_access_token";
    /// `POST /open-apis/auth/v3/tenant_access_token` (store apps: per `tenant_key`).
    pub const STORE_TENANT_ACCESS_TOKEN: &str = "store_tenant_access_token";
    /// `POST /open-apis/authen/v2/oauth/token` (code and refresh grants, v2).
    pub const OAUTH_TOKEN_V2: &str = "oauth_token_v2";
    /// `POST /open-apis/authen/v1/oidc/access_token` (code → user token, v1 OIDC).
    pub const OIDC_ACCESS_TOKEN: &str = "oidc_access_token";
    /// `POST /open-apis/authen/v1/oidc/refresh_access_token` (v1 OIDC refresh).
    pub const OIDC_REFRESH_ACCESS_TOKEN: &str = "oidc_refresh_access_token";
    /// `POST /open-apis/authen/v1/access_token` (legacy v1: token and user).
    pub const V1_ACCESS_TOKEN: &str = "v1_access_token";
    /// `GET /open-apis/authen/v1/user_info` (user token).
    pub const USER_INFO: &str = "user_info";
    /// `GET /open-apis/contact/v3/users/{id}` (tenant token).
    pub const CONTACT_USER: &str = "contact_user";
    /// `GET /open-apis/authen/v1/authorize` (authorize page, accounts host).
    pub const AUTHORIZE: &str = "authorize";
    /// `POST /open-apis/authen/v1/authorize/approve` (the page's buttons).
    pub const APPROVE: &str = "approve";
    /// `POST /open-apis/jssdk/ticket/get` (jsapi ticket, tenant token).
    pub const JSSDK_TICKET: &str = "jssdk_ticket";
    /// `POST /open-apis/mina/v2/tokenLoginValidate` (mini-program `tt.login` code, app token).
    pub const MINA_TOKEN_LOGIN_VALIDATE: &str = "mina_token_login_validate";
    pub use crate::jsapi::endpoints::{JSAPI_CODE, JSAPI_SDK, JSAPI_VERIFY};
}

/// Which code-exchange generation the client under test uses; decides which endpoints
/// [`FakePlatform::endpoints_for`](crate::FakePlatform::endpoints_for) names for the
/// code-exchange roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UserTokenApi {
    /// `authen/v2/oauth/token` (the default).
    #[default]
    V2,
    /// `authen/v1/oidc/access_token` and `…/refresh_access_token`.
    V1Oidc,
}

/// A self-built app registered with the fake. `Debug` hides the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct FakeApp {
    /// `app_id` / `client_id` (`cli_…`).
    pub app_id: String,
    /// `app_secret` / `client_secret`.
    pub app_secret: String,
    /// The tenant the app belongs to.
    pub tenant_key: String,
    /// Permissions the app was granted in the console (scopes).
    pub permissions: BTreeSet<String>,
    /// Callback hosts accepted in `redirect_uri` (a host matches itself and its subdomains).
    /// Default: `localhost`, `127.0.0.1`, `[::1]`, `example.com`.
    pub redirect_hosts: Vec<String>,
}

debug_hiding_secret!(FakeApp { app_id, [app_secret], tenant_key, permissions, redirect_hosts });

impl FakeApp {
    /// An app with every contact permission, `offline_access` and the default redirect hosts.
    pub fn new(
        app_id: impl Into<String>,
        app_secret: impl Into<String>,
        tenant_key: impl Into<String>,
    ) -> Self {
        Self {
            app_id: app_id.into(),
            app_secret: app_secret.into(),
            tenant_key: tenant_key.into(),
            permissions: [
                SCOPE_CONTACT_BASE,
                SCOPE_EMAIL,
                SCOPE_PHONE,
                SCOPE_EMPLOYEE_ID,
                SCOPE_DEPARTMENT,
                SCOPE_OFFLINE_ACCESS,
            ]
            .map(String::from)
            .into_iter()
            .collect(),
            redirect_hosts: http::default_redirect_hosts(),
        }
    }

    /// The same app without `permission`.
    pub fn without(mut self, permission: &str) -> Self {
        self.permissions.remove(permission);
        self
    }

    /// Whether the app has `permission`.
    pub fn has(&self, permission: &str) -> bool {
        self.permissions.contains(permission)
    }

    /// Whether `url`'s host is one of the app's callback hosts (or a subdomain of one).
    pub fn redirect_allowed(&self, url: &Url) -> bool {
        http::host_allowed(&self.redirect_hosts, url)
    }
}

/// The default users: the fixture person, a second member, and an outsider from `other_tenant`.
pub fn default_users(other_tenant: &str) -> Vec<FakeUser> {
    vec![
        FakeUser::new(DEMO_USER_ID)
            .open_id("ou_fakeopenid0001")
            .union_id("on_fakeunionid0001")
            .name("Zhang San")
            .avatar("https://example.com/avatar/user001.png")
            .mobile("13800000000")
            .country_code("86")
            .job_number("E0001")
            .title("Engineer")
            .email("user001@example.com")
            .org_email("user001@corp.example.com")
            .dept_ids([1])
            .hired_at_ms(1_700_000_000_000),
        FakeUser::new(SECOND_USER_ID)
            .open_id("ou_fakeopenid0002")
            .union_id("on_fakeunionid0002")
            .name("Li Si")
            .mobile("13800000002")
            .job_number("E0002")
            .title("Manager")
            .email("user002@example.com")
            .dept_ids([1, 2])
            .admin(true),
        FakeUser::new(OUTSIDER_USER_ID)
            .open_id("ou_fakeopenid0009")
            .union_id("on_fakeunionid0009")
            .name("Wang Wu")
            .avatar("https://example.org/avatar/outsider001.png")
            .mobile("13800000009")
            .email("outsider001@example.org")
            .in_org(other_tenant),
    ]
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct AppTokenMeta {
    app_id: String,
    /// A store app's tenant token: the tenant it acts for (`None`: the app's own token).
    tenant_key: Option<String>,
}

#[derive(Debug, Clone)]
struct UserTokenMeta {
    app_id: String,
    user_id: String,
    scope: String,
}

/// PKCE challenge bound to a code.
#[derive(Debug, Clone)]
struct Pkce {
    challenge: String,
    /// `S256` or `plain`.
    method: String,
}

#[derive(Debug, Clone)]
struct CodeGrant {
    app_id: String,
    user_id: String,
    scope: String,
    redirect_uri: Option<String>,
    pkce: Option<Pkce>,
}

/// The Feishu side of a [`FakeFeishu`]: apps, users, tokens and codes, shared by its endpoints.
/// Opaque: drive it through the fake.
#[derive(Debug)]
pub struct Feishu {
    home_tenant: String,
    apps: Table<String, FakeApp>,
    users: UserDirectory,
    app_tokens: TokenStore<AppTokenMeta>,
    /// The app tokens handed out as `app_access_token` (by its endpoint): the v1 user-token
    /// endpoints take only these (the same values as the tenant tokens for a self-built app,
    /// but a client must have asked for them as app tokens).
    app_kind: Mutex<BTreeSet<String>>,
    user_tokens: TokenStore<UserTokenMeta>,
    refresh_tokens: TokenStore<UserTokenMeta>,
    codes: CodeStore<CodeGrant>,
    short_codes: CodeStore<CodeGrant>,
    user_token_api: Mutex<UserTokenApi>,
    clock: FakeClock,
    tickets: TicketBook,
    mina_codes: CodeStore<MinaGrant>,
    event_creds: Table<String, EventCredentials>,
    /// Store apps ([`isv`]): tickets, installations, subscription.
    store_apps: Table<String, isv::StoreState>,
    /// Store apps' `app_access_token`s (`a-…`).
    store_app_tokens: TokenStore<AppTokenMeta>,
}

/// A `tt.login` code: the app and the person.
#[derive(Debug, Clone)]
struct MinaGrant {
    app_id: String,
    user_id: String,
}

impl Feishu {
    /// A backend whose home tenant is `home` and whose outsider belongs to `other`.
    fn with_tenants(clock: &FakeClock, home: &str, other: &str) -> Self {
        let app = FakeApp::new(DEFAULT_APP_ID, DEFAULT_APP_SECRET, home);
        Self {
            home_tenant: home.to_owned(),
            apps: Table::from_iter([(app.app_id.clone(), app)]),
            users: default_users(other).into_iter().collect(),
            app_tokens: TokenStore::new(clock.clone(), "t-"),
            app_kind: Mutex::new(BTreeSet::new()),
            user_tokens: TokenStore::new(clock.clone(), "u-"),
            refresh_tokens: TokenStore::new(clock.clone(), "ur-"),
            codes: CodeStore::new(clock.clone(), CODE_PREFIX, CODE_TTL),
            short_codes: CodeStore::new(clock.clone(), CODE_PREFIX, REQUEST_ACCESS_CODE_TTL),
            user_token_api: Mutex::new(UserTokenApi::V2),
            clock: clock.clone(),
            tickets: TicketBook::new(clock, "fake_fs_jsapi_ticket_"),
            mina_codes: CodeStore::new(clock.clone(), "fake_fs_mina_code_", CODE_TTL),
            event_creds: Table::default(),
            store_apps: Table::default(),
            store_app_tokens: TokenStore::new(clock.clone(), "a-"),
        }
    }

    fn app(&self, app_id: &str) -> Option<FakeApp> {
        self.apps.get(app_id)
    }

    fn default_app(&self) -> FakeApp {
        self.app(DEFAULT_APP_ID)
            .unwrap_or_else(|| FakeApp::new(DEFAULT_APP_ID, DEFAULT_APP_SECRET, &self.home_tenant))
    }

    /// Feishu's reissue rule over `store`, for the tokens whose meta is `meta`: the live
    /// token while at least [`REISSUE_BELOW`] of it remains, else a new one. Returns the token
    /// and its remaining lifetime.
    fn reissued(&self, store: &TokenStore<AppTokenMeta>, meta: AppTokenMeta) -> (String, Duration) {
        if let Some(token) = store.find_live(|m| *m == meta)
            && let Some(left) = store.remaining(&token)
            && left >= REISSUE_BELOW
        {
            return (token, left);
        }
        (store.issue(meta, APP_TOKEN_TTL), APP_TOKEN_TTL)
    }

    /// A self-built app's token by the reissue rule ([`reissued`](Self::reissued)).
    fn app_token_for(&self, app_id: &str) -> (String, Duration) {
        let meta = AppTokenMeta {
            app_id: app_id.to_owned(),
            tenant_key: None,
        };
        self.reissued(&self.app_tokens, meta)
    }

    /// The tenant of `user`.
    fn tenant_of<'a>(&'a self, user: &'a FakeUser) -> &'a str {
        user.org_or(&self.home_tenant)
    }

    /// A code of either lifetime, without using it.
    fn peek_code(&self, code: &str) -> Option<CodeGrant> {
        self.codes
            .peek(code)
            .or_else(|_| self.short_codes.peek(code))
            .ok()
    }

    /// Use a code of either lifetime that passes `check` (a refused one stays usable).
    fn consume_code(&self, code: &str, check: impl Fn(&CodeGrant) -> bool) -> Option<CodeGrant> {
        self.codes
            .consume_if(code, &check)
            .or_else(|| self.short_codes.consume_if(code, &check))
    }

    /// A code for `user_id` through `app_id` as the JSAPI (`short`: `tt.requestAccess`) or the
    /// authorize page (bound to its `redirect_uri` and PKCE challenge) hands it out;
    /// never-issued for an unknown app or user.
    fn issue_code(
        &self,
        short: bool,
        app_id: &str,
        user_id: &str,
        scope: &str,
        binding: (Option<&Url>, Option<Pkce>),
    ) -> String {
        let store = if short {
            &self.short_codes
        } else {
            &self.codes
        };
        if self.app(app_id).is_none() {
            return store.unissued();
        }
        // A store app opens only for members of a tenant that installed it.
        if self.is_store_app(app_id)
            && !self
                .users
                .get(user_id)
                .is_some_and(|u| self.installed(app_id, self.tenant_of(&u)))
        {
            return store.unissued();
        }
        let (redirect_uri, pkce) = binding;
        store.issue_for(&self.users, user_id, |user| CodeGrant {
            app_id: app_id.to_owned(),
            user_id: user.user_id,
            scope: scope.to_owned(),
            redirect_uri: redirect_uri.map(|u| u.as_str().to_owned()),
            pkce,
        })
    }
}

impl Backend for Feishu {
    const IDENTITY: Identity = Identity {
        name: "feishu",
        label: "Feishu",
        demo_user_id: DEMO_USER_ID,
        outsider_user_id: Some(OUTSIDER_USER_ID),
    };
    type Responder = envelope::FeishuResponder;

    fn new(clock: &FakeClock) -> Self {
        Self::with_tenants(clock, DEFAULT_TENANT_KEY, OTHER_TENANT_KEY)
    }

    #[rustfmt::skip]
    fn routes(st: &Arc<Self>, router: FakeRouter) -> FakeRouter {
        use endpoints::*;
        use envelope::{ACCOUNTS, AUTH, OAUTH2, OPEN, OPEN_USER};
        use Method as M;
        router
            .route(st, (TENANT_ACCESS_TOKEN, M::POST, "/open-apis/auth/v3/tenant_access_token/internal", AUTH), handlers::tenant_access_token)
            .route(st, (APP_ACCESS_TOKEN, M::POST, "/open-apis/auth/v3/app_access_token/internal", AUTH), handlers::app_access_token)
            .route(st, (APP_TICKET_RESEND, M::POST, "/open-apis/auth/v3/app_ticket/resend", AUTH), handlers::app_ticket_resend)
            .route(st, (STORE_APP_ACCESS_TOKEN, M::POST, "/open-apis/auth/v3/app_access_token", AUTH), isv::store_app_access_token)
            .route(st, (STORE_TENANT_ACCESS_TOKEN, M::POST, "/open-apis/auth/v3/tenant_access_token", AUTH), isv::store_tenant_access_token)
            .route(st, (OAUTH_TOKEN_V2, M::POST, "/open-apis/authen/v2/oauth/token", OAUTH2), handlers::oauth_token_v2)
            .route(st, (OIDC_ACCESS_TOKEN, M::POST, "/open-apis/authen/v1/oidc/access_token", OPEN), handlers::oidc_access_token)
            .route(st, (OIDC_REFRESH_ACCESS_TOKEN, M::POST, "/open-apis/authen/v1/oidc/refresh_access_token", OPEN), handlers::oidc_refresh_access_token)
            .route(st, (V1_ACCESS_TOKEN, M::POST, "/open-apis/authen/v1/access_token", OPEN), handlers::v1_access_token)
            .route(st, (USER_INFO, M::GET, "/open-apis/authen/v1/user_info", OPEN_USER), handlers::user_info)
            .route(st, (CONTACT_USER, M::GET, "/open-apis/contact/v3/users/{user_id}", OPEN), handlers::contact_user)
            .route(st, (AUTHORIZE, M::GET, "/open-apis/authen/v1/authorize", ACCOUNTS), login::authorize)
            .route(st, (APPROVE, M::POST, APPROVE_PATH, ACCOUNTS), login::approve)
            .route(st, (JSSDK_TICKET, M::POST, "/open-apis/jssdk/ticket/get", OPEN), handlers::jssdk_ticket)
            .route(st, (MINA_TOKEN_LOGIN_VALIDATE, M::POST, "/open-apis/mina/v2/tokenLoginValidate", OPEN), handlers::token_login_validate)
            .route(st, (JSAPI_SDK, M::GET, crate::jsapi::FEISHU_SDK_PATH, ACCOUNTS), jsapi::sdk)
            .route(st, (JSAPI_VERIFY, M::POST, crate::jsapi::VERIFY_PATH, ACCOUNTS), jsapi::verify)
            .route(st, (JSAPI_CODE, M::POST, crate::jsapi::CODE_PATH, ACCOUNTS), jsapi::code)
    }

    fn users(&self) -> &UserDirectory {
        &self.users
    }

    /// The default app's (`corp_id` = the home tenant key).
    fn credentials(&self) -> AppCredentials {
        let app = self.default_app();
        AppCredentials {
            app_key: app.app_id,
            app_secret: app.app_secret,
            corp_id: app.tenant_key,
            agent_id: String::new(),
        }
    }

    /// What `tt.requestAuthCode({appId})` returns inside Feishu (default app): a code valid
    /// once for 5 minutes.
    fn issue_h5_code(&self, user_id: &str) -> String {
        self.issue_code(false, DEFAULT_APP_ID, user_id, "", (None, None))
    }

    /// The `code` of the default app with scope `offline_access`, no redirect or PKCE binding.
    fn approve_web_login(&self, user_id: &str) -> String {
        let scope = SCOPE_OFFLINE_ACCESS;
        self.issue_code(false, DEFAULT_APP_ID, user_id, scope, (None, None))
    }

    fn revoke_app_tokens(&self) -> usize {
        self.app_tokens.revoke_all()
    }

    fn endpoints_for(&self, role: EndpointRole) -> Vec<&'static str> {
        use endpoints::*;
        let exchange = match *lock(&self.user_token_api) {
            UserTokenApi::V2 => OAUTH_TOKEN_V2,
            UserTokenApi::V1Oidc => OIDC_ACCESS_TOKEN,
        };
        match role {
            EndpointRole::AppToken => vec![TENANT_ACCESS_TOKEN, APP_ACCESS_TOKEN],
            EndpointRole::H5CodeExchange | EndpointRole::WebCodeExchange => vec![exchange],
            EndpointRole::UserDetail => vec![CONTACT_USER],
            EndpointRole::Authorize => vec![AUTHORIZE],
            EndpointRole::WebUserInfo => vec![USER_INFO],
            // Membership is the `tenant_key` in `user_info`; there is no separate call.
            EndpointRole::Membership => Vec::new(),
        }
    }
}

/// A running Feishu / Lark fake. See the [module docs](self). Dropping it stops the server.
///
/// Its login side (users, codes, web logins, app-token revocation, call counts, faults, the
/// clock) is the [`FakePlatform`](crate::FakePlatform) trait; `base_url` and `credentials` (the
/// default app's, `corp_id` = the home tenant key) need no import.
pub type FakeFeishu = Fake<Feishu>;

start_functions!(FakeFeishu);

/// Start a Lark (international) fake: the same API with Lark tenant keys
/// ([`LARK_TENANT_KEY`], [`LARK_OTHER_TENANT_KEY`]).
///
/// # Panics
/// If no loopback port can be bound.
pub async fn start_lark() -> FakeFeishu {
    let lark =
        |clock: &FakeClock| Feishu::with_tenants(clock, LARK_TENANT_KEY, LARK_OTHER_TENANT_KEY);
    started("Lark", Fake::try_start_with(loopback(), lark).await)
}

impl FakeFeishu {
    /// The home tenant's key (the `corp_id` a client configures).
    pub fn tenant_key(&self) -> &str {
        &self.backend().home_tenant
    }

    /// Register another app (or replace one with the same id), e.g. the default app without a
    /// permission: `fake.add_app(FakeApp::new(..).without(SCOPE_EMAIL))`.
    pub fn add_app(&self, app: FakeApp) {
        self.backend().apps.insert(app.app_id.clone(), app);
    }

    /// Remove `permission` from the default app.
    pub fn revoke_permission(&self, permission: &str) {
        self.add_app(self.backend().default_app().without(permission));
    }

    /// Which code-exchange endpoints
    /// [`FakePlatform::endpoints_for`](crate::FakePlatform::endpoints_for) names (the generation
    /// the client under test uses). Default [`UserTokenApi::V2`].
    pub fn set_user_token_api(&self, api: UserTokenApi) {
        *lock(&self.backend().user_token_api) = api;
    }

    /// What `tt.requestAccess({appID, scopeList})` returns: a code valid once for 3 minutes
    /// carrying `scope` (space-separated).
    pub fn issue_request_access_code(&self, user_id: &str, scope: &str) -> String {
        let st = self.backend();
        st.issue_code(true, DEFAULT_APP_ID, user_id, scope, (None, None))
    }

    /// Like [`FakePlatform::approve_web_login`](crate::FakePlatform::approve_web_login) for any
    /// app and scope. An unknown app or user gets a never-issued code.
    pub fn approve_web_login_with(&self, app_id: &str, user_id: &str, scope: &str) -> String {
        let st = self.backend();
        st.issue_code(false, app_id, user_id, scope, (None, None))
    }

    /// An app token for the default app without an HTTP call (not counted), following the same
    /// reissue rule as the token endpoints. Returns the token and its remaining lifetime.
    pub fn mint_app_token(&self) -> (String, Duration) {
        self.backend().app_token_for(DEFAULT_APP_ID)
    }

    /// Revoke every user access token (refresh tokens stay valid).
    pub fn revoke_user_tokens(&self) {
        self.backend().user_tokens.revoke_all();
    }

    /// Number of live refresh tokens (a refresh replaces one with another).
    pub fn live_refresh_tokens(&self) -> usize {
        self.backend().refresh_tokens.live_count()
    }

    /// What `tt.login` returns inside a Feishu mini program of the default app: a code valid
    /// once for 5 minutes at `mina/v2/tokenLoginValidate`. An unknown user gets a never-issued
    /// code.
    pub fn issue_mina_code(&self, user_id: &str) -> String {
        self.issue_mina_code_for(DEFAULT_APP_ID, user_id)
    }

    /// [`issue_mina_code`](Self::issue_mina_code) for the mini program of `app_id`.
    pub fn issue_mina_code_for(&self, app_id: &str, user_id: &str) -> String {
        let st = self.backend();
        st.mina_codes.issue_for(&st.users, user_id, |u| MinaGrant {
            app_id: app_id.to_owned(),
            user_id: u.user_id,
        })
    }

    /// Successful jsapi-ticket fetches by `app_id` since the last
    /// [`reset_jsapi_ticket_fetches`](Self::reset_jsapi_ticket_fetches).
    pub fn jsapi_ticket_fetches(&self, app_id: &str) -> u64 {
        self.backend().tickets.fetches(app_id, JsapiKind::Config)
    }

    /// Forget the jsapi-ticket fetch counts.
    pub fn reset_jsapi_ticket_fetches(&self) {
        self.backend().tickets.reset_fetches();
    }

    /// The live jsapi ticket of `app_id` (the one a fetch returns now), if any.
    pub fn live_jsapi_ticket(&self, app_id: &str) -> Option<String> {
        self.backend()
            .tickets
            .live(app_id, JsapiKind::Config)
            .into_iter()
            .next()
    }

    /// Expire `app_id`'s jsapi tickets now (signatures made with them are refused; the next
    /// fetch issues a new one). Returns how many were live.
    pub fn expire_jsapi_tickets(&self, app_id: &str) -> usize {
        self.backend().tickets.expire(app_id, JsapiKind::Config)
    }

    /// Replace `app_id`'s jsapi ticket with a new one; returns it (not counted as a fetch).
    pub fn rotate_jsapi_ticket(&self, app_id: &str) -> String {
        self.backend().tickets.rotate(app_id, JsapiKind::Config)
    }

    /// Check an `h5sdk.config` object as Feishu does (see the [module docs](self)) for the page
    /// at `page_url` (fragment ignored). `kind` must be [`JsapiKind::Config`].
    pub fn verify_jsapi_config(
        &self,
        kind: JsapiKind,
        config: &serde_json::Value,
        page_url: &str,
    ) -> Result<(), JsapiRefusal> {
        self.backend().verify_jsapi(kind, config, page_url, None)
    }

    /// `{base}/__fake/jsapi/feishu.js`: the fake `h5sdk` / `tt` SDK (see [`crate::jsapi`]).
    pub fn jsapi_sdk_url(&self) -> String {
        format!("{}{}", self.base_url(), crate::jsapi::FEISHU_SDK_PATH)
    }
}
