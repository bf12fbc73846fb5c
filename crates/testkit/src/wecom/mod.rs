//! A faithful fake of WeCom (企业微信): `qyapi.weixin.qq.com`, the in-client OAuth link of
//! `open.weixin.qq.com`, the web login of `login.work.weixin.qq.com` and the old QR connect page
//! of `open.work.weixin.qq.com`, served by one loopback server.
//!
//! Point every WeCom host of the client at [`FakeWeCom::base_url`]. The fake knows one
//! organisation ([`DEFAULT_CORP_ID`]) with three self-built apps, each with its own `corpsecret`
//! and therefore its own access tokens:
//!
//! | agentid | secret | created | `user/get` returns sensitive fields? |
//! |---|---|---|---|
//! | [`DEFAULT_AGENT_ID`] (default app) | [`DEFAULT_CORP_SECRET`] | after 2022-06-20 | no: only through `snsapi_privateinfo` + `auth/getuserdetail` |
//! | [`SECOND_AGENT_ID`] | [`SECOND_CORP_SECRET`] | after 2022-06-20 | no |
//! | [`LEGACY_AGENT_ID`] | [`LEGACY_CORP_SECRET`] | before 2022-06-20 | yes |
//!
//! and three people: [`DEMO_USER_ID`] (`user001`, exactly the person of
//! `fixtures/wecom/user_get.json`), [`SECOND_USER_ID`] (`user002`, no avatar or e-mail) and
//! [`OUTSIDER_USER_ID`] (`outsider001`, not a member: the code exchange answers with `openid`
//! and `external_userid` instead of `userid`).
//!
//! | endpoint name ([`endpoints`]) | method and path | family |
//! |---|---|---|
//! | `gettoken` | `GET /cgi-bin/gettoken?corpid&corpsecret` | qyapi |
//! | `auth_getuserinfo` | `GET /cgi-bin/auth/getuserinfo?access_token&code` | qyapi |
//! | `user_getuserinfo` | `GET /cgi-bin/user/getuserinfo?access_token&code` (legacy, capitalised keys) | qyapi |
//! | `user_get` | `GET /cgi-bin/user/get?access_token&userid` | qyapi |
//! | `auth_getuserdetail` | `POST /cgi-bin/auth/getuserdetail?access_token` JSON `{user_ticket}` | qyapi |
//! | `oauth2_authorize` | `GET /connect/oauth2/authorize?appid&redirect_uri&response_type=code&scope&state&agentid` | page |
//! | `sso_login` | `GET /wwlogin/sso/login?login_type=CorpApp&appid&agentid&redirect_uri&state&lang` | page |
//! | `qr_connect` | `GET /wwopen/sso/qrConnect?appid&agentid&redirect_uri&state` | page |
//! | `approve` | `POST /wwlogin/sso/approve` (form posted by the pages' buttons) → 303 | page |
//! | `get_jsapi_ticket` | `GET /cgi-bin/get_jsapi_ticket?access_token` → `{errcode, errmsg, ticket, expires_in}` | qyapi |
//! | `ticket_get` | `GET /cgi-bin/ticket/get?access_token&type=agent_config` → the same shape | qyapi |
//! | `jscode2session` | `GET /cgi-bin/miniprogram/jscode2session?access_token&js_code&grant_type=authorization_code` | qyapi |
//! | `jsapi_sdk`, `jsapi_verify`, `jsapi_code` | the fake `wx` SDK and its helpers ([`crate::jsapi`]) | page |
//!
//! # What it validates (as the real platform does)
//! * **Credentials**: `corpid`/`corpsecret` missing → 41002 / 41004; unknown corp → 40013; a
//!   secret of another corp → 40091; a wrong secret → 40001.
//! * **App tokens** (7200 s, [`APP_TOKEN_TTL`]) belong to **one app** (corpid + the app's secret):
//!   missing → 41001; unknown or revoked → 40014; expired on the fake clock → 42001. Fetching
//!   again while one is live returns the same token with its remaining lifetime.
//! * **Codes**: single use, 5 minutes, bound to the corp and (when the link carried an `agentid`)
//!   to that app → otherwise 40029. A code whose `redirect_uri` was not on the app's trusted
//!   domain (可信域名) → 50001 at the exchange. The token is checked first, so a request with a
//!   bad token never burns the code.
//! * **`user_ticket`**: issued by the code exchange only for `snsapi_privateinfo` links that
//!   carried an `agentid`, and only to members; lives 1800 s ([`USER_TICKET_TTL`]), bound to the
//!   app; expired → 84014, unknown or another app's → 84015.
//! * **Members**: `user/get` only finds members of the token's corp → otherwise 60111 (missing
//!   `userid` → 41009). Apps created after 2022-06-20 ([`FakeApp::legacy`] `false`) get no
//!   avatar, gender, mobile, e-mail, biz_mail, qr_code or address there.
//! * **Bodies**: `auth/getuserdetail` wants a JSON object → otherwise 47001.
//! * **Methods**: wrong method → 43001 (needs GET) / 43002 (needs POST). Unknown paths: HTTP 404
//!   with errcode 404.
//! * **Pages**: `appid` must be a known corp, `agentid` an app of it (required for web login and
//!   QR connect; with `snsapi_privateinfo` in the OAuth link, missing → silently `snsapi_base`),
//!   `redirect_uri` an absolute http(s) URL, `response_type=code`, `scope` one of `snsapi_base`,
//!   `snsapi_privateinfo`, `snsapi_userinfo`, `state` `[a-zA-Z0-9]{0,128}` in the OAuth link
//!   (else 84025), `login_type=CorpApp` → otherwise an HTML error page.
//!
//! * **JSAPI tickets** (7200 s) belong to one app (corp + agent) and one kind (corp ticket for
//!   `wx.config`, agent ticket for `wx.agentConfig`), handed out again while they live; token
//!   41001 / 40014 / 42001 as above; hourly quotas on the fake clock — corp ticket ≤ 400 per corp
//!   and ≤ 100 per app, agent ticket ≤ 100 per app → 45009 (refused fetches do not count); a
//!   `type` other than `agent_config` → 40097 (illustrative). Helpers:
//!   [`FakeWeCom::jsapi_ticket_fetches`], [`FakeWeCom::live_jsapi_ticket`],
//!   [`FakeWeCom::expire_jsapi_tickets`], [`FakeWeCom::rotate_jsapi_ticket`].
//! * **`wx.config`** ([`FakeWeCom::verify_jsapi_config`]): `appId` = a known corpid, `timestamp`
//!   (string or number), `nonceStr`, `signature` over a live corp ticket of any app of that corp;
//!   **`wx.agentConfig`**: `corpid` + `agentid` naming an app, its live agent ticket → otherwise
//!   `{errMsg: "config:invalid signature"}` / `"agentConfig:invalid signature"` (or
//!   `invalid corpid` / `invalid agentid`).
//! * **Mini programs**: [`FakeWeCom::issue_mina_code`] mints a `wx.qy.login` code (members
//!   only; single use, 5 minutes, bound to the app); `jscode2session` with that app's token →
//!   `{corpid, userid, session_key}`; other app's / used / expired code → 40029; missing
//!   `js_code` → 41008; `grant_type` ≠ `authorization_code` → 40097 (illustrative).
//! * **Events** ([`FakeWeCom::push_event`], [`crate::events`]): per-app callback settings
//!   (defaults [`DEFAULT_EVENT_TOKEN`], [`DEFAULT_ENCODING_AES_KEY`], receiveid = corpid); the
//!   `echostr` verification, `change_contact` `delete_user`, `update_user` (`Status` 2 / 5,
//!   `Name`).
//!
//! # Faults
//! [`Fault::TokenInvalid`](crate::Fault::TokenInvalid) 40014; `CodeInvalid` 40029; `RateLimited` and `RateLimitPage` 45009
//! (WeCom has no HTML ban page); `PermissionDenied` 48002; `IpNotAllowed` 60020; `SystemBusy`
//! -1; `Fault::code(n)` errcode `n` with its message. Pages accept only transport faults.
//!
//! # Illustrative choices
//! The reference does not confirm these: the messages of 45033, 47001, 50002, 84015, 84025 and of
//! the 41xxx "missing parameter" codes; 40091 for a secret of another corp; 43001/43002 for wrong
//! methods; errcode 404 for unknown paths; 84015 for a missing `user_ticket`; 50001 answered at the
//! code exchange rather than on the page; `thumb_avatar` withheld from new apps along with
//! `avatar`; outsiders obtaining codes (the in-client OAuth link answers anyone, which is why the
//! exchange returns `openid` for them).

mod envelope;
mod events;
mod handlers;
pub mod isv;
mod jsapi;
mod pages;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::Method;
use url::Url;

pub use envelope::{API_FORBIDDEN, DATA_FORMAT_ERROR, RATE_LIMITED};
pub use events::{DEFAULT_ENCODING_AES_KEY, DEFAULT_EVENT_TOKEN, encrypted_reply};
pub use jsapi::{
    AGENT_TICKETS_PER_APP_HOUR, CORP_TICKETS_PER_APP_HOUR, CORP_TICKETS_PER_CORP_HOUR, INVALID_ARGS,
};

use crate::clock::FakeClock;
use crate::events::EventCredentials;
use crate::fake::{Backend, Fake, Identity, start_functions};
use crate::http;
use crate::jsapi::{JsapiKind, JsapiRefusal, TicketBook};
use crate::platform::{AppCredentials, EndpointRole, debug_hiding_secret};
use crate::server::FakeRouter;
use crate::store::{CODE_TTL, CodeStore, TokenStore};
use crate::table::{Table, lock};
use crate::users::{FakeUser, UserDirectory};

/// The home organisation's corpid.
pub const DEFAULT_CORP_ID: &str = "wwfakecorp00000001";
/// Agent id of the default app (created after 2022-06-20).
pub const DEFAULT_AGENT_ID: &str = "1000002";
/// `corpsecret` of the default app.
pub const DEFAULT_CORP_SECRET: &str = "fake_wecom_corpsecret_1000002";
/// Agent id of a second app of the same corp (created after 2022-06-20).
pub const SECOND_AGENT_ID: &str = "1000003";
/// `corpsecret` of the second app.
pub const SECOND_CORP_SECRET: &str = "fake_wecom_corpsecret_1000003";
/// Agent id of an app created before 2022-06-20 (`user/get` still returns sensitive fields).
pub const LEGACY_AGENT_ID: &str = "1000001";
/// `corpsecret` of the legacy app.
pub const LEGACY_CORP_SECRET: &str = "fake_wecom_corpsecret_1000001";
/// corpid of another organisation (for apps registered by tests).
pub const OTHER_CORP_ID: &str = "wwfakecorp00000002";
/// The fixture person (`Zhang San`), member of the home organisation.
pub const DEMO_USER_ID: &str = "user001";
/// A second member (`Li Si`, no avatar, no e-mail).
pub const SECOND_USER_ID: &str = "user002";
/// A visitor who is not a member (WeChat user / external contact).
pub const OUTSIDER_USER_ID: &str = "outsider001";

/// Lifetime of app tokens.
pub const APP_TOKEN_TTL: Duration = Duration::from_secs(7200);
/// Lifetime of a `user_ticket`.
pub const USER_TICKET_TTL: Duration = Duration::from_secs(1800);

const CODE_PREFIX: &str = "fake_wecom_code_";
const APPROVE_PATH: &str = "/wwlogin/sso/approve";

/// Endpoint names of the WeCom fake (for `calls`, fault injection).
pub mod endpoints {
    /// `GET /cgi-bin/gettoken` (app token, per app).
    pub const GETTOKEN: &str = "gettoken";
    /// `GET /cgi-bin/auth/getuserinfo` (code → userid / openid, `user_ticket`).
    pub const AUTH_GETUSERINFO: &str = "auth_getuserinfo";
    /// `GET /cgi-bin/user/getuserinfo` (legacy code exchange, capitalised keys).
    pub const USER_GETUSERINFO: &str = "user_getuserinfo";
    /// `GET /cgi-bin/user/get` (member detail).
    pub const USER_GET: &str = "user_get";
    /// `POST /cgi-bin/auth/getuserdetail` (sensitive fields with a `user_ticket`).
    pub const AUTH_GETUSERDETAIL: &str = "auth_getuserdetail";
    /// `GET /connect/oauth2/authorize` (the in-client OAuth link's page).
    pub const OAUTH2_AUTHORIZE: &str = "oauth2_authorize";
    /// `GET /wwlogin/sso/login` (web login page).
    pub const SSO_LOGIN: &str = "sso_login";
    /// `GET /wwopen/sso/qrConnect` (old QR login page).
    pub const QR_CONNECT: &str = "qr_connect";
    /// `POST /wwlogin/sso/approve` (the pages' Approve buttons).
    pub const APPROVE: &str = "approve";
    /// `GET /cgi-bin/get_jsapi_ticket` (corp jsapi ticket for `wx.config`).
    pub const GET_JSAPI_TICKET: &str = "get_jsapi_ticket";
    /// `GET /cgi-bin/ticket/get?type=agent_config` (agent ticket for `wx.agentConfig`).
    pub const TICKET_GET: &str = "ticket_get";
    /// `GET /cgi-bin/miniprogram/jscode2session` (mini-program `wx.qy.login` code).
    pub const JSCODE2SESSION: &str = "jscode2session";
    /// `POST /cgi-bin/service/get_suite_token` (a suite's token, [`super::isv`]).
    pub const GET_SUITE_TOKEN: &str = "get_suite_token";
    /// `POST /cgi-bin/service/get_corp_token` (an authorising corp's token).
    pub const GET_CORP_TOKEN: &str = "get_corp_token";
    /// `POST /cgi-bin/service/get_permanent_code` (an installation's permanent code).
    pub const GET_PERMANENT_CODE: &str = "get_permanent_code";
    /// `GET /cgi-bin/service/auth/getuserinfo3rd` (a third-party login code).
    pub const GETUSERINFO3RD: &str = "getuserinfo3rd";
    pub use crate::jsapi::endpoints::{JSAPI_CODE, JSAPI_SDK, JSAPI_VERIFY};
}

/// The scope of an in-client OAuth link.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OAuthScope {
    /// `snsapi_base`: silent, userid only.
    #[default]
    Base,
    /// `snsapi_privateinfo`: manual consent; the exchange also returns a `user_ticket` (when the
    /// link carried an `agentid`).
    PrivateInfo,
}

impl OAuthScope {
    /// The scope's wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            OAuthScope::Base => "snsapi_base",
            OAuthScope::PrivateInfo => "snsapi_privateinfo",
        }
    }
}

/// A self-built app of a corp. `Debug` hides the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct FakeApp {
    /// The corp the app belongs to.
    pub corp_id: String,
    /// The app's agentid.
    pub agent_id: String,
    /// The app's `corpsecret`.
    pub secret: String,
    /// Created before 2022-06-20: `user/get` still returns avatar, gender, mobile, e-mail,
    /// biz_mail, qr_code and address. `false` (new apps) gets them only via
    /// `auth/getuserdetail`.
    pub legacy: bool,
    /// The admin enabled the sensitive fields for this app: `auth/getuserdetail` returns them
    /// (otherwise only `userid`).
    pub sensitive_fields: bool,
    /// Trusted domains (可信域名): a host matches itself and its subdomains. Default:
    /// `localhost`, `127.0.0.1`, `[::1]`, `example.com`, `example` (the reserved TLD).
    pub trusted_domains: Vec<String>,
}

debug_hiding_secret!(FakeApp { corp_id, agent_id, [secret], legacy, sensitive_fields, trusted_domains });

impl FakeApp {
    /// A new (post-2022) app with sensitive fields enabled and the default trusted domains.
    pub fn new(
        corp_id: impl Into<String>,
        agent_id: impl Into<String>,
        secret: impl Into<String>,
    ) -> Self {
        Self {
            corp_id: corp_id.into(),
            agent_id: agent_id.into(),
            secret: secret.into(),
            legacy: false,
            sensitive_fields: true,
            trusted_domains: [http::default_redirect_hosts(), vec!["example".to_owned()]].concat(),
        }
    }

    /// The default app of a fresh fake.
    pub fn default_app() -> Self {
        Self::new(DEFAULT_CORP_ID, DEFAULT_AGENT_ID, DEFAULT_CORP_SECRET)
    }

    /// Whether `url`'s host is on the app's trusted domains (or a subdomain of one).
    pub fn redirect_trusted(&self, url: &Url) -> bool {
        http::host_allowed(&self.trusted_domains, url)
    }
}

/// The apps of a fresh fake: the default app, a second new app and a legacy app, all of
/// [`DEFAULT_CORP_ID`].
pub fn default_apps() -> Vec<FakeApp> {
    vec![
        FakeApp::default_app(),
        FakeApp::new(DEFAULT_CORP_ID, SECOND_AGENT_ID, SECOND_CORP_SECRET),
        FakeApp {
            legacy: true,
            ..FakeApp::new(DEFAULT_CORP_ID, LEGACY_AGENT_ID, LEGACY_CORP_SECRET)
        },
    ]
}

/// WeCom member attributes that [`FakeUser`] does not carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberExtras {
    /// `"0"` unknown, `"1"` male, `"2"` female.
    pub gender: String,
    /// Alias (别名).
    pub alias: String,
    /// Landline.
    pub telephone: String,
    /// Address.
    pub address: String,
    /// Direct leaders' userids.
    pub direct_leader: Vec<String>,
    /// Personal QR code URL.
    pub qr_code: String,
}

impl Default for MemberExtras {
    fn default() -> Self {
        Self {
            gender: "0".to_owned(),
            alias: String::new(),
            telephone: String::new(),
            address: String::new(),
            direct_leader: Vec::new(),
            qr_code: String::new(),
        }
    }
}

/// The default people: the fixture person, a second member and a non-member.
pub fn default_users() -> Vec<FakeUser> {
    vec![
        FakeUser::new(DEMO_USER_ID)
            .name("Zhang San")
            .union_id("fake_open_userid_0001")
            .avatar("https://example.com/avatar/user001/0")
            .mobile("13800000000")
            .title("Engineer")
            .email("user001@example.com")
            .org_email("user001@corp.example.com")
            .dept_ids([1, 2]),
        FakeUser::new(SECOND_USER_ID)
            .name("Li Si")
            .union_id("fake_open_userid_0002")
            .mobile("13800000002")
            .title("Manager")
            .dept_ids([1]),
        FakeUser::new(OUTSIDER_USER_ID)
            .name("Wang Wu")
            .open_id("fake_openid_0001")
            .in_org("wechat"),
    ]
}

fn default_extras() -> BTreeMap<String, MemberExtras> {
    BTreeMap::from([(
        DEMO_USER_ID.to_owned(),
        MemberExtras {
            gender: "1".to_owned(),
            alias: "zs".to_owned(),
            direct_leader: vec!["user000".to_owned()],
            qr_code: "https://example.com/qrcode/user001".to_owned(),
            address: "Example Road 1".to_owned(),
            telephone: String::new(),
        },
    )])
}

#[derive(Debug, Clone)]
struct AppTokenMeta {
    corp_id: String,
    agent_id: String,
}

#[derive(Debug, Clone)]
struct CodeGrant {
    corp_id: String,
    /// The app the link named, if any (`None`: any app of the corp may exchange it).
    agent_id: Option<String>,
    user_id: String,
    /// The exchange returns a `user_ticket` (privateinfo link with an agentid).
    private: bool,
    /// The `redirect_uri` was on the app's trusted domain.
    trusted: bool,
}

#[derive(Debug, Clone)]
struct TicketMeta {
    corp_id: String,
    agent_id: String,
    user_id: String,
}

/// The WeCom side of a [`FakeWeCom`]: apps, people, tokens, tickets and codes, shared by its
/// endpoints. Opaque: drive it through the fake.
#[derive(Debug)]
pub struct WeCom {
    home_corp: String,
    /// Apps by (corpid, agentid).
    apps: Table<(String, String), FakeApp>,
    extras: Table<String, MemberExtras>,
    h5_scope: Mutex<OAuthScope>,
    /// The agentid the [`FakePlatform`](crate::FakePlatform) methods act for.
    current_agent: Mutex<String>,
    users: UserDirectory,
    app_tokens: TokenStore<AppTokenMeta>,
    tickets: TokenStore<TicketMeta>,
    codes: CodeStore<CodeGrant>,
    jsapi_tickets: TicketBook,
    mina_codes: CodeStore<MinaGrant>,
    event_creds: Table<String, EventCredentials>,
    /// Service-provider suites by suite_id ([`isv`]).
    suites: Table<String, isv::FakeSuite>,
    /// Permanent codes by (suite_id, corpid).
    installs: Table<(String, String), String>,
    auth_codes: CodeStore<isv::PendingAuth>,
    suite_tokens: TokenStore<isv::SuiteTokenMeta>,
    codes_3rd: CodeStore<isv::Code3rd>,
}

/// A `wx.qy.login` code: the mini program's app and the person.
#[derive(Debug, Clone)]
struct MinaGrant {
    corp_id: String,
    agent_id: String,
    user_id: String,
}

impl WeCom {
    fn app(&self, corp_id: &str, agent_id: &str) -> Option<FakeApp> {
        self.apps.get(&(corp_id.to_owned(), agent_id.to_owned()))
    }

    fn corp_known(&self, corp_id: &str) -> bool {
        self.apps.any(|a| a.corp_id == corp_id)
    }

    /// The app of `corp_id` whose secret is `secret`.
    fn app_by_secret(&self, corp_id: &str, secret: &str) -> Option<FakeApp> {
        self.apps
            .find(|a| a.corp_id == corp_id && a.secret == secret)
    }

    /// Whether `secret` belongs to an app of a corp other than `corp_id`.
    fn secret_of_other_corp(&self, corp_id: &str, secret: &str) -> bool {
        self.apps
            .any(|a| a.corp_id != corp_id && a.secret == secret)
    }

    /// Whether `url` is on the trusted domain of the app `agent_id` of `corp_id`, or of any of
    /// the corp's apps when the link named none.
    fn trusts(&self, corp_id: &str, agent_id: Option<&str>, url: &Url) -> bool {
        self.apps.any(|a| {
            a.corp_id == corp_id
                && agent_id.is_none_or(|id| a.agent_id == id)
                && a.redirect_trusted(url)
        })
    }

    fn extras(&self, user_id: &str) -> MemberExtras {
        self.extras.get(user_id).unwrap_or_default()
    }

    /// WeCom's token policy: the live token of this app again, else a new one.
    fn app_token_for(&self, app: &FakeApp) -> (String, Duration) {
        if let Some(token) = self
            .app_tokens
            .find_live(|m| m.corp_id == app.corp_id && m.agent_id == app.agent_id)
            && let Some(left) = self.app_tokens.remaining(&token)
        {
            return (token, left);
        }
        let meta = AppTokenMeta {
            corp_id: app.corp_id.clone(),
            agent_id: app.agent_id.clone(),
        };
        (self.app_tokens.issue(meta, APP_TOKEN_TTL), APP_TOKEN_TTL)
    }

    /// `user_id` if they are a member of `corp_id`.
    fn member(&self, user_id: &str, corp_id: &str) -> Option<FakeUser> {
        self.users
            .get(user_id)
            .filter(|u| u.org_or(&self.home_corp) == corp_id)
    }

    /// Issues a code as the OAuth link / login page would after the person approved.
    fn issue_code(
        &self,
        corp_id: &str,
        agent_id: Option<&str>,
        user_id: &str,
        private: bool,
        trusted: bool,
    ) -> String {
        self.codes
            .issue_for(&self.users, user_id, |user| CodeGrant {
                corp_id: corp_id.to_owned(),
                agent_id: agent_id.map(str::to_owned),
                user_id: user.user_id,
                private: private && agent_id.is_some(),
                trusted,
            })
    }

    fn current_agent(&self) -> String {
        lock(&self.current_agent).clone()
    }
}

fn credentials_of(app: &FakeApp) -> AppCredentials {
    AppCredentials {
        app_key: app.corp_id.clone(),
        app_secret: app.secret.clone(),
        corp_id: app.corp_id.clone(),
        agent_id: app.agent_id.clone(),
    }
}

impl Backend for WeCom {
    const IDENTITY: Identity = Identity {
        name: "wecom",
        label: "WeCom",
        demo_user_id: DEMO_USER_ID,
        outsider_user_id: Some(OUTSIDER_USER_ID),
    };
    type Responder = envelope::WeComResponder;

    fn new(clock: &FakeClock) -> Self {
        let apps = default_apps()
            .into_iter()
            .map(|a| ((a.corp_id.clone(), a.agent_id.clone()), a));
        Self {
            home_corp: DEFAULT_CORP_ID.to_owned(),
            apps: apps.collect(),
            extras: default_extras().into_iter().collect(),
            h5_scope: Mutex::new(OAuthScope::Base),
            current_agent: Mutex::new(DEFAULT_AGENT_ID.to_owned()),
            users: default_users().into_iter().collect(),
            app_tokens: TokenStore::new(clock.clone(), "fake_wecom_app_token_"),
            tickets: TokenStore::new(clock.clone(), "fake_wecom_user_ticket_"),
            codes: CodeStore::new(clock.clone(), CODE_PREFIX, CODE_TTL),
            jsapi_tickets: TicketBook::new(clock, "fake_wecom_jsapi_ticket_"),
            mina_codes: CodeStore::new(clock.clone(), "fake_wecom_mina_code_", CODE_TTL),
            event_creds: Table::default(),
            suites: Table::default(),
            installs: Table::default(),
            auth_codes: CodeStore::new(clock.clone(), "fake_wecom_auth_code_", CODE_TTL),
            suite_tokens: TokenStore::new(clock.clone(), "fake_wecom_suite_token_"),
            codes_3rd: CodeStore::new(clock.clone(), "fake_wecom_3rd_code_", CODE_TTL),
        }
    }

    #[rustfmt::skip]
    fn routes(st: &Arc<Self>, router: FakeRouter) -> FakeRouter {
        use endpoints::*;
        use envelope::{PAGE, QYAPI};
        use Method as M;
        router
            .route(st, (GETTOKEN, M::GET, "/cgi-bin/gettoken", QYAPI), handlers::gettoken)
            .route(st, (AUTH_GETUSERINFO, M::GET, "/cgi-bin/auth/getuserinfo", QYAPI), handlers::auth_getuserinfo)
            .route(st, (USER_GETUSERINFO, M::GET, "/cgi-bin/user/getuserinfo", QYAPI), handlers::user_getuserinfo)
            .route(st, (USER_GET, M::GET, "/cgi-bin/user/get", QYAPI), handlers::user_get)
            .route(st, (AUTH_GETUSERDETAIL, M::POST, "/cgi-bin/auth/getuserdetail", QYAPI), handlers::auth_getuserdetail)
            .route(st, (OAUTH2_AUTHORIZE, M::GET, "/connect/oauth2/authorize", PAGE), pages::oauth2_authorize)
            .route(st, (SSO_LOGIN, M::GET, "/wwlogin/sso/login", PAGE), pages::sso_login)
            .route(st, (QR_CONNECT, M::GET, "/wwopen/sso/qrConnect", PAGE), pages::qr_connect)
            .route(st, (APPROVE, M::POST, APPROVE_PATH, PAGE), pages::approve)
            .route(st, (GET_JSAPI_TICKET, M::GET, "/cgi-bin/get_jsapi_ticket", QYAPI), jsapi::get_jsapi_ticket)
            .route(st, (TICKET_GET, M::GET, "/cgi-bin/ticket/get", QYAPI), jsapi::ticket_get)
            .route(st, (JSCODE2SESSION, M::GET, "/cgi-bin/miniprogram/jscode2session", QYAPI), jsapi::jscode2session)
            .route(st, (GET_SUITE_TOKEN, M::POST, "/cgi-bin/service/get_suite_token", QYAPI), isv::get_suite_token)
            .route(st, (GET_CORP_TOKEN, M::POST, "/cgi-bin/service/get_corp_token", QYAPI), isv::get_corp_token)
            .route(st, (GET_PERMANENT_CODE, M::POST, "/cgi-bin/service/get_permanent_code", QYAPI), isv::get_permanent_code)
            .route(st, (GETUSERINFO3RD, M::GET, "/cgi-bin/service/auth/getuserinfo3rd", QYAPI), isv::getuserinfo3rd)
            .route(st, (JSAPI_SDK, M::GET, crate::jsapi::WECOM_SDK_PATH, PAGE), jsapi::sdk)
            .route(st, (JSAPI_VERIFY, M::POST, crate::jsapi::VERIFY_PATH, PAGE), jsapi::verify)
            .route(st, (JSAPI_CODE, M::POST, crate::jsapi::CODE_PATH, PAGE), jsapi::code)
    }

    fn users(&self) -> &UserDirectory {
        &self.users
    }

    /// The current app's (`app_key` is the corpid, `app_secret` the app's `corpsecret`); see
    /// [`FakeWeCom::use_app`].
    fn credentials(&self) -> AppCredentials {
        let app = self.app(&self.home_corp, &self.current_agent());
        credentials_of(&app.unwrap_or_else(FakeApp::default_app))
    }

    /// The code the in-client OAuth link (the current app's agentid, the scope set with
    /// [`FakeWeCom::set_h5_scope`]) sends to the callback: valid once for 5 minutes.
    /// Non-members get a real code too (the exchange then answers with `openid`).
    fn issue_h5_code(&self, user_id: &str) -> String {
        let private = *lock(&self.h5_scope) == OAuthScope::PrivateInfo;
        let agent = self.current_agent();
        self.issue_code(&self.home_corp, Some(&agent), user_id, private, true)
    }

    /// The code the web login page sends to the callback (current app): valid once for
    /// 5 minutes, never with a `user_ticket`.
    fn approve_web_login(&self, user_id: &str) -> String {
        let agent = self.current_agent();
        self.issue_code(&self.home_corp, Some(&agent), user_id, false, true)
    }

    fn revoke_app_tokens(&self) -> usize {
        self.app_tokens.revoke_all()
    }

    /// The two code-exchange endpoints are alternatives (current and legacy) for both flows;
    /// `auth_getuserdetail` plays no role of its own (it runs after `user_get` in the
    /// user-detail step when a `user_ticket` exists); WeCom issues no user tokens and checks
    /// membership in the code exchange and `user_get` themselves.
    fn endpoints_for(&self, role: EndpointRole) -> Vec<&'static str> {
        use endpoints::*;
        match role {
            EndpointRole::AppToken => vec![GETTOKEN],
            EndpointRole::H5CodeExchange | EndpointRole::WebCodeExchange => {
                vec![AUTH_GETUSERINFO, USER_GETUSERINFO]
            }
            EndpointRole::UserDetail => vec![USER_GET],
            EndpointRole::Authorize => vec![OAUTH2_AUTHORIZE, SSO_LOGIN, QR_CONNECT],
            _ => Vec::new(),
        }
    }
}

/// A running WeCom fake. See the [module docs](self). Dropping it stops the server.
///
/// Its login side (people, codes, web logins, app-token revocation, call counts, faults, the
/// clock) is the [`FakePlatform`](crate::FakePlatform) trait; `base_url` (every WeCom host
/// alike) and `credentials` (the current app's, see [`use_app`](Self::use_app)) need no import.
pub type FakeWeCom = Fake<WeCom>;

start_functions!(FakeWeCom);

impl FakeWeCom {
    /// Make the app `agent_id` of the home corp the one `credentials`, `issue_h5_code` and
    /// `approve_web_login` act for (default [`DEFAULT_AGENT_ID`]), e.g. [`LEGACY_AGENT_ID`].
    /// False (and no change) for an unknown agentid.
    pub fn use_app(&self, agent_id: &str) -> bool {
        let st = self.backend();
        if st.app(&st.home_corp, agent_id).is_none() {
            return false;
        }
        *lock(&st.current_agent) = agent_id.to_owned();
        true
    }

    /// The credentials of an app of the home corp, by agentid.
    pub fn app_credentials(&self, agent_id: &str) -> Option<AppCredentials> {
        let st = self.backend();
        st.app(&st.home_corp, agent_id).map(|a| credentials_of(&a))
    }

    /// An app by corpid and agentid.
    pub fn app(&self, corp_id: &str, agent_id: &str) -> Option<FakeApp> {
        self.backend().app(corp_id, agent_id)
    }

    /// Register an app (or replace the one with the same corpid and agentid).
    pub fn add_app(&self, app: FakeApp) {
        let key = (app.corp_id.clone(), app.agent_id.clone());
        self.backend().apps.insert(key, app);
    }

    /// Set the WeCom-only attributes of a member (gender, alias, …).
    pub fn set_extras(&self, user_id: &str, extras: MemberExtras) {
        self.backend().extras.insert(user_id.to_owned(), extras);
    }

    /// The scope `issue_h5_code` simulates (default [`OAuthScope::Base`]).
    pub fn set_h5_scope(&self, scope: OAuthScope) {
        *lock(&self.backend().h5_scope) = scope;
    }

    /// Like `issue_h5_code` for any app of the home corp (`None`: a link without `agentid`,
    /// which never yields a `user_ticket`) and scope.
    pub fn issue_oauth_code(
        &self,
        agent_id: Option<&str>,
        user_id: &str,
        scope: OAuthScope,
    ) -> String {
        let st = self.backend();
        let private = scope == OAuthScope::PrivateInfo;
        st.issue_code(&st.home_corp, agent_id, user_id, private, true)
    }

    /// Like `approve_web_login` for another app of the home corp.
    pub fn approve_web_login_for(&self, agent_id: &str, user_id: &str) -> String {
        let st = self.backend();
        st.issue_code(&st.home_corp, Some(agent_id), user_id, false, true)
    }

    /// What `wx.qy.login` returns inside the mini program associated with the current app: a
    /// code valid once for 5 minutes at `jscode2session` with that app's token. Non-members get
    /// a never-issued code.
    pub fn issue_mina_code(&self, user_id: &str) -> String {
        let agent = self.backend().current_agent();
        self.issue_mina_code_for(&agent, user_id)
    }

    /// [`issue_mina_code`](Self::issue_mina_code) for the mini program of the app `agent_id`.
    pub fn issue_mina_code_for(&self, agent_id: &str, user_id: &str) -> String {
        let st = self.backend();
        if st.member(user_id, &st.home_corp).is_none() {
            return st.mina_codes.unissued();
        }
        st.mina_codes.issue(MinaGrant {
            corp_id: st.home_corp.clone(),
            agent_id: agent_id.to_owned(),
            user_id: user_id.to_owned(),
        })
    }

    /// Successful ticket fetches of `kind` (`Config`: `get_jsapi_ticket`, `AgentConfig`:
    /// `ticket/get`) by the app `agent_id` of the home corp since the last reset.
    pub fn jsapi_ticket_fetches(&self, agent_id: &str, kind: JsapiKind) -> u64 {
        let st = self.backend();
        st.jsapi_tickets
            .fetches(&jsapi::ticket_owner(&st.home_corp, agent_id), kind)
    }

    /// Forget the ticket fetch counts and the hourly quota history.
    pub fn reset_jsapi_ticket_fetches(&self) {
        self.backend().jsapi_tickets.reset_fetches();
    }

    /// The live ticket of `kind` of the app `agent_id` (the one a fetch returns now), if any.
    pub fn live_jsapi_ticket(&self, agent_id: &str, kind: JsapiKind) -> Option<String> {
        let st = self.backend();
        st.jsapi_tickets
            .live(&jsapi::ticket_owner(&st.home_corp, agent_id), kind)
            .into_iter()
            .next()
    }

    /// Expire the app's tickets of `kind` now (signatures made with them are refused; the next
    /// fetch issues a new one). Returns how many were live.
    pub fn expire_jsapi_tickets(&self, agent_id: &str, kind: JsapiKind) -> usize {
        let st = self.backend();
        st.jsapi_tickets
            .expire(&jsapi::ticket_owner(&st.home_corp, agent_id), kind)
    }

    /// Replace the app's ticket of `kind` with a new one; returns it (not counted as a fetch).
    pub fn rotate_jsapi_ticket(&self, agent_id: &str, kind: JsapiKind) -> String {
        let st = self.backend();
        st.jsapi_tickets
            .rotate(&jsapi::ticket_owner(&st.home_corp, agent_id), kind)
    }

    /// Check a `wx.config` ([`JsapiKind::Config`]) or `wx.agentConfig`
    /// ([`JsapiKind::AgentConfig`]) object as WeCom does (see the [module docs](self)) for the
    /// page at `page_url` (fragment ignored).
    pub fn verify_jsapi_config(
        &self,
        kind: JsapiKind,
        config: &serde_json::Value,
        page_url: &str,
    ) -> Result<(), JsapiRefusal> {
        self.backend().verify_jsapi(kind, config, page_url)
    }

    /// `{base}/__fake/jsapi/wecom.js`: the fake `wx` SDK (see [`crate::jsapi`]).
    pub fn jsapi_sdk_url(&self) -> String {
        format!("{}{}", self.base_url(), crate::jsapi::WECOM_SDK_PATH)
    }

    /// A live app token of an app of the home corp without an HTTP call (not counted), following
    /// the same policy as `gettoken`. `None` for an unknown agentid.
    pub fn mint_app_token(&self, agent_id: &str) -> Option<String> {
        let st = self.backend();
        let app = st.app(&st.home_corp, agent_id)?;
        Some(st.app_token_for(&app).0)
    }
}
