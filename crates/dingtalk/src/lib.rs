//! # unilogin-dingtalk
//!
//! DingTalk (钉钉) for unilogin, registered as platform `dingtalk`.
//!
//! - **H5 login-free** (internal apps): the page inside the client gets a code from
//!   `dd.getAuthCode` or `dd.runtime.permission.requestAuthCode` (the registration's
//!   [`InClient::Jsapi`]); the server redeems it: `oapi` `gettoken` (cached) →
//!   `topapi/v2/user/getuserinfo` → `topapi/v2/user/get`.
//! - **Web / QR OAuth2**: `login.dingtalk.com/oauth2/auth` → callback `authCode` →
//!   `v1.0/oauth2/userAccessToken` → `v1.0/contact/users/me`; the unionId is resolved to this
//!   tenant's `userid` with `topapi/user/getbyunionid` (60121 → [`Error::NotInTenant`]), then
//!   `topapi/v2/user/get`. The user's token (refreshable) is returned to the caller.
//!
//! **Configuration**: `app_key` / `app_secret` of the internal app; `corp_id`, the
//! organisation's corpId: required for the H5 login (`dd.getAuthCode` cannot get a code
//! without it, so a configuration without it is refused unless `options.h5` is `false`: a
//! web/QR-only configuration), and a web login reporting another organisation is refused;
//! hosts `oapi`, `api`, `login`; options `h5` (default `true`; `false` refuses H5 codes),
//! `app_token_api` = `oapi` (default, `gettoken`) or `v1` (`v1.0/oauth2/accessToken`), `scope`
//! = `openid` (default) or `openid corpid` (the user picks an organisation), `restrict_to_corp`
//! (default `false`; `true` needs `corp_id` and scope `openid corpid`, the default then: the
//! authorize page offers only that organisation).
//!
//! ## Store (third-party) apps
//! `mode: isv` makes the entry one organisation that installed a store app: `app_key` /
//! `app_secret` are the SuiteKey / SuiteSecret, `corp_id` the installing organisation. Without
//! `corp_id` it is the suite's own **app entry**: it receives the suite's pushes (tickets,
//! installations), its app token is the suite token, and it logs no one in. The app token is that organisation's corp token, from the newest pushed
//! `suite_ticket` in the [`Sso`](unilogin_core::Sso)'s ticket store (see [`isv`]); the logins
//! are the internal app's, the web login's scope is `openid corpid` and its `corpId` must be
//! `corp_id`. `app_token_api` defaults to `v1` in this mode. The codec's
//! [`store_app_changes`](unilogin_core::events::EventCodec::store_app_changes) reads the
//! ticket and authorisation pushes ([`events`]).
//!
//! ## JSAPI signatures (`dd.config`)
//! [`Prepared::jsapi_config`] with [`TicketKind::Jsapi`] signs a page for `dd.config`: the
//! JSAPI ticket is fetched with the app token — `GET oapi get_jsapi_ticket?access_token=`
//! (`ticket`, `expires_in`), or with `app_token_api: v1` `POST v1.0/oauth2/jsapiTickets` with
//! header `x-acs-dingtalk-access-token` (`jsapiTicket`, `expireIn`) — and cached by the core per
//! app and app token. The object is `{agentId, corpId, timeStamp, nonceStr, signature, type: 0,
//! jsApiList}` (camel-case **`timeStamp`**, in seconds; `jsApiList` names without `dd.`); it
//! needs `agent_id` (the micro-app's AgentId) and `corp_id` in the configuration. Sign
//! `location.href` exactly as the page sees it: 52013 ("signature mismatch") is almost always
//! another URL (fragment, PC vs mobile, encoding, http vs https). `dd.getAuthCode` needs no
//! `dd.config`.
//!
//! ## Mini-apps
//! A DingTalk mini-app (小程序) gets its login code with `dd.getAuthCode({corpId})` (no
//! `dd.config` needed), the very code an H5 page gets, redeemed by the same exchange. Redeem it
//! with [`Prepared::login_with_code`] or, naming the kind,
//! [`Prepared::login_with_code_kind`]`(`[`CodeKind::MiniProgram`]`, …)`: the handler declares
//! mini-program codes exactly when it offers the H5 login (`options.h5`, default `true`).
//!
//! [`Prepared::jsapi_config`]: unilogin_core::Prepared::jsapi_config
//! [`Prepared::login_with_code`]: unilogin_core::Prepared::login_with_code
//! [`Prepared::login_with_code_kind`]: unilogin_core::Prepared::login_with_code_kind
//! [`TicketKind::Jsapi`]: unilogin_core::TicketKind::Jsapi
//! [`CodeKind::MiniProgram`]: unilogin_core::CodeKind::MiniProgram

mod api;
mod error;
pub mod events;
pub mod isv;
mod jsapi;
mod miniprogram;

use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Map, Value, json};
use unilogin_core::envelope::{require_str, str_at};
use unilogin_core::jsapi::{Signed, TicketKind};
use unilogin_core::platform::sdk::{Hosts, choice_opt};
use unilogin_core::platform::{AuthorizeRequest, Base, Flow, Identity, InClient, JsapiLogin};
use unilogin_core::platform::{Platform, UserToken, WebCallback};
use unilogin_core::registry::{PlatformContext, PlatformRegistration};
use unilogin_core::token_cache::FetchedToken;
use unilogin_core::{AccessToken, AppSecret, AuthCode, Error, RefreshToken, Result};
use url::Url;

use crate::api::By;

/// The platform's registered name.
pub const NAME: &str = "dingtalk";

/// The default mapping rules (YAML).
pub const DEFAULT_RULES: &str = include_str!("../rules.yaml");

const HOSTS: Hosts = &[
    ("oapi", "https://oapi.dingtalk.com/"),
    ("api", "https://api.dingtalk.com/"),
    ("login", "https://login.dingtalk.com/"),
];

/// `dd.getAuthCode` (result `authCode`), or `dd.runtime.permission.requestAuthCode` (result
/// `code`) in clients without it.
const JSAPI: JsapiLogin = JsapiLogin {
    sdk_url: "https://g.alicdn.com/dingding/dingtalk-jsapi/3.0.25/dingtalk.open.js",
    global: "dd",
    get_code: include_str!("../jsapi.js"),
    params: |config| json!({ "corpId": config.corp_id }),
};

inventory::submit! {
    PlatformRegistration {
        name: NAME,
        description: "DingTalk (钉钉): H5 login-free and web/QR OAuth2",
        default_rules: DEFAULT_RULES,
        user_agent_markers: &["dingtalk"],
        in_client: InClient::Jsapi(JSAPI),
        build: DingTalk::build,

        events: Some(events::DingTalkEvents::from_credentials),
    }
}

const GETUSERINFO: &str = "topapi/v2/user/getuserinfo";
const GETBYUNIONID: &str = "topapi/user/getbyunionid";
const APP_TOKEN_V1: &[(&str, bool)] = &[("oapi", false), ("v1", true)];
const SCOPES: &[(&str, &str)] = &[("openid", "openid"), ("openid corpid", "openid corpid")];

/// The DingTalk handler for one tenant.
#[derive(Debug, Clone)]
pub struct DingTalk {
    base: Base,
    app_secret: AppSecret,
    corp_id: Option<String>,
    /// The micro-app's AgentId (`dd.config`'s `agentId`), when configured.
    agent_id: Option<String>,
    /// `options.app_token_api: v1`: app tokens from `v1.0/oauth2/accessToken`.
    app_token_v1: bool,
    scope: &'static str,
    restrict_to_corp: bool,
    /// `options.h5` (default true): the H5 login-free exchange is offered.
    h5: bool,
    /// `mode: isv`: a store app's installed organisation.
    isv: Option<isv::Store>,
}

impl DingTalk {
    /// Builds the handler for a registration.
    pub fn build(ctx: PlatformContext<'_>) -> Result<Arc<dyn Platform>> {
        Ok(Arc::new(Self::new(&ctx)?))
    }

    /// Builds the handler from a tenant's configuration, validating it.
    pub fn new(ctx: &PlatformContext<'_>) -> Result<Self> {
        let config = ctx.config;
        if config.app_secret.is_empty() {
            return Err(config.error("app_secret", "must not be empty"));
        }
        let corp_id = config.corp_id.clone().filter(|c| !c.is_empty());
        let store_app = config.store_app_mode()?;
        // `mode: isv` without `corp_id` is the suite's own entry (its pushes, its suite token).
        let isv = match store_app {
            false => None,
            true => Some(
                isv::Store::new(
                    &config.platform,
                    config.app_key.as_str(),
                    corp_id.as_deref(),
                )
                .map_err(|field| {
                    config.error(
                        field,
                        "not a DingTalk id (ASCII letters, digits, `-`, `_`, `.`)",
                    )
                })?,
            ),
        };
        // The H5 page's `dd.getAuthCode` needs the organisation's corpId (reference §2.3).
        let app_entry = isv.as_ref().is_some_and(|store| store.org.is_none());
        let h5 = config.option_bool("h5", true)? && !app_entry;
        if h5 && corp_id.is_none() {
            let why = "required for the H5 login (dd.getAuthCode needs the organisation's corpId); set `options.h5: false` for a web/QR-only configuration";
            return Err(config.error("corp_id", why));
        }
        let restrict_to_corp = config.option_bool("restrict_to_corp", false)?;
        if restrict_to_corp && corp_id.is_none() {
            return Err(config.error("options.restrict_to_corp", "needs `corp_id`"));
        }
        // DingTalk honours `corpId` only when the scope includes `corpid` (reference §2.4).
        let scope = choice_opt(config, "scope", SCOPES)?;
        // A store app's web login must learn the organisation the user chose (`corpId`).
        if isv.is_some() && scope == Some("openid") {
            let why = "`mode: isv` needs `openid corpid` (the token answer's corpId is the membership check)";
            return Err(config.error("options.scope", why));
        }
        let scope = if isv.is_some() {
            scope.or(Some("openid corpid"))
        } else {
            scope
        };
        let scope = match (restrict_to_corp, scope) {
            (true, Some("openid")) => {
                let why = "needs `scope: openid corpid` (DingTalk ignores `corpId` without it)";
                return Err(config.error("options.restrict_to_corp", why));
            }
            (true, None) => "openid corpid",
            (_, scope) => scope.unwrap_or("openid"),
        };
        Ok(Self {
            base: Base::new(ctx, HOSTS)?,
            app_secret: config.app_secret.clone(),
            corp_id,
            agent_id: config
                .agent_id
                .as_deref()
                .map(str::trim)
                .filter(|a| !a.is_empty())
                .map(str::to_string),
            // Store apps default to the v1.0 API (`suiteAccessToken`, `corpAccessToken`).
            app_token_v1: choice_opt(config, "app_token_api", APP_TOKEN_V1)?
                .unwrap_or(isv.is_some()),
            scope,
            restrict_to_corp,
            h5,
            isv,
        })
    }
}

#[async_trait]
impl Platform for DingTalk {
    fn base(&self) -> &Base {
        &self.base
    }

    /// In `mode: isv`, the installed organisation's corp token, keyed under the suite's key.
    fn token_key(&self) -> Option<unilogin_core::token_cache::TokenKey> {
        Some(match &self.isv {
            Some(store) => store.token_key().clone(),
            None => self.base.token_key(None),
        })
    }

    async fn fetch_app_token(&self) -> Result<FetchedToken> {
        match &self.isv {
            Some(store) if store.org.is_none() => self.fetch_suite_token().await,
            Some(_) => self.corp_token().await,
            None => self.app_token().await,
        }
    }

    async fn identify_h5(
        &self,
        app_token: Option<&AccessToken>,
        code: &AuthCode,
    ) -> Result<Identity> {
        if let Some(store) = &self.isv {
            store.org(&self.base)?;
        }
        if !self.h5 {
            return Err(self.base.unsupported("the H5 login (options.h5 is false)"));
        }
        let token = self.base.app_token(app_token)?;
        let body = json!({ "code": code.expose() });
        let (ctx, response) = self.topapi(token, GETUSERINFO, &body).await?;
        Ok(Identity {
            user_id: Some(require_str(&ctx, &response, "/result/userid")?),
            union_id: str_at(&response.body, "/result/unionid"),
            ..Identity::default()
        })
    }

    async fn exchange_web_code(
        &self,
        _: Option<&AccessToken>,
        callback: &WebCallback<'_>,
    ) -> Result<Identity> {
        let (user_token, org_id) = self.user_token(By::Code, callback.code.expose()).await?;
        // A store app is installed by many organisations: the one the user chose must be this
        // tenant's (the core compares a reported corpId; a missing one cannot be checked).
        if let Some(store) = &self.isv
            && org_id.as_deref() != Some(store.org(&self.base)?.as_str())
        {
            let ctx = self.base.ctx("v1.0/oauth2/userAccessToken");
            return Err(Error::NotInTenant { ctx });
        }
        let (ctx, me) = self.users_me(&user_token.access_token).await?;
        Ok(Identity {
            union_id: Some(require_str(&ctx, &me, "/unionId")?),
            open_id: str_at(&me.body, "/openId"),
            org_id,
            user_token: Some(user_token),
            documents: Map::from_iter([("me".into(), me.body)]),
            ..Identity::default()
        })
    }

    async fn user_detail(
        &self,
        app_token: Option<&AccessToken>,
        identity: &Identity,
    ) -> Result<Value> {
        let token = self.base.app_token(app_token)?;
        let user_id = match (&identity.user_id, &identity.union_id) {
            (Some(user_id), _) => user_id.clone(),
            (None, Some(union_id)) => {
                let body = json!({ "unionid": union_id });
                let (ctx, response) = self.topapi(token, GETBYUNIONID, &body).await?;
                require_str(&ctx, &response, "/result/userid")?
            }
            (None, None) => {
                let ctx = self.base.ctx(GETBYUNIONID);
                return Err(Error::NotInTenant { ctx });
            }
        };
        let body = json!({ "userid": user_id, "language": "zh_CN" });
        let (_, response) = self.topapi(token, "topapi/v2/user/get", &body).await?;
        Ok(response.body)
    }

    async fn authorize_url(&self, request: &AuthorizeRequest<'_>) -> Result<Url> {
        if request.flow == Flow::H5 {
            let what = "an authorize URL for the H5 flow (the page calls dd.getAuthCode)";
            return Err(self.base.unsupported(what));
        }
        if let Some(store) = &self.isv {
            store.org(&self.base)?;
        }
        let corp = self.corp_id.as_deref().filter(|_| self.restrict_to_corp);
        let mut url = self.base.url("login", "oauth2/auth")?;
        url.query_pairs_mut()
            .append_pair("redirect_uri", request.redirect_uri.as_str())
            .append_pair("response_type", "code")
            .append_pair("client_id", self.base.app_key.as_str())
            .append_pair("scope", self.scope)
            .append_pair("state", request.state.expose())
            .append_pair("prompt", "consent")
            .extend_pairs(corp.map(|corp| ("corpId", corp)));
        Ok(url)
    }

    async fn refresh_user_token(&self, refresh_token: &RefreshToken) -> Result<UserToken> {
        let refresh_token = refresh_token.expose();
        Ok(self.user_token(By::Refresh, refresh_token).await?.0)
    }

    fn login_refusal(&self) -> Option<&'static str> {
        self.isv
            .as_ref()
            .filter(|store| store.org.is_none())
            .map(|_| isv::APP_ENTRY)
    }

    fn ticket_kinds(&self) -> &'static [TicketKind] {
        &[TicketKind::Jsapi]
    }

    async fn fetch_ticket(
        &self,
        app_token: Option<&AccessToken>,
        kind: TicketKind,
    ) -> Result<FetchedToken> {
        if kind != TicketKind::Jsapi {
            return Err(self.base.unsupported("agent-config tickets (WeCom only)"));
        }
        self.jsapi_ticket(self.base.app_token(app_token)?).await
    }

    fn jsapi_object(
        &self,
        kind: TicketKind,
        signed: &Signed,
        js_api_list: &[String],
    ) -> Result<Value> {
        self.dd_config(kind, signed, js_api_list)
    }

    /// Mini-app codes are H5 codes: declared whenever the H5 login is offered.
    fn redeems_mini_program_codes(&self) -> bool {
        self.h5
    }

    async fn identify_mini_program(
        &self,
        app_token: Option<&AccessToken>,
        code: &AuthCode,
    ) -> Result<Identity> {
        self.mini_app_identity(app_token, code).await
    }
}
