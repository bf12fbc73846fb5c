//! # unilogin-wecom
//!
//! WeCom (企业微信, WeChat Work) for unilogin. Registered as platform `wecom`; a `User-Agent`
//! containing `wxwork` (mobile, PC and `wxworklocal` private deployments) is inside its client.
//! Every WeCom code comes back on a redirect, with the state, so the registration declares
//! [`InClient::Redirect`]: both logins below are redirect logins
//! ([`Prepared::start_web_login`] → [`Prepared::finish_web_login`]), and the core refuses to
//! redeem a posted WeCom code without its state ([`Error::RedirectLoginRequired`]).
//!
//! - **H5 login-free** is WeCom's in-client OAuth, started with [`Flow::H5`]: the link is
//!   `open.weixin.qq.com/connect/oauth2/authorize?appid=CORPID&redirect_uri=…
//!   &response_type=code&scope=snsapi_base|snsapi_privateinfo&state=…&agentid=…#wechat_redirect`;
//!   the page opened inside WeCom is redirected back with `?code=&state=`; the server exchanges
//!   the code: `gettoken` (cached, per app) → `cgi-bin/auth/getuserinfo` (`userid`, and a
//!   `user_ticket` with `snsapi_privateinfo`) → `cgi-bin/user/get`, plus
//!   `cgi-bin/auth/getuserdetail` with the ticket. Apps created after 2022-06-20 only receive
//!   mobile, e-mail, avatar, gender and address that way; the getuserdetail body is handed to
//!   the mapping rules under the top-level key `"private"` (`$.private.mobile`, …). The
//!   in-client `state` must be 1–128 ASCII letters and digits ([`is_valid_h5_state`]; the
//!   core's 64 hex characters are): anything else is refused with [`Error::Unsupported`]
//!   before a URL is built.
//! - **Web / QR login** from a PC browser, started with [`Flow::Web`]:
//!   `login.work.weixin.qq.com/wwlogin/sso/login?login_type=CorpApp&appid&agentid&redirect_uri
//!   &state` (or, with option `web_login = "qrconnect"`, the older
//!   `open.work.weixin.qq.com/wwopen/sso/qrConnect`) → callback `code` → the same
//!   `getuserinfo` (never a `user_ticket`) → `user/get`.
//!
//! A visitor who is not a member of the corp gets `openid` (and `external_userid`) instead of a
//! `userid`: [`Error::NotInTenant`]. A member of a linked corp (上下游/企业互联) comes back as
//! `CorpId/userid`; that corp id is reported as the identity's organisation, so the core refuses
//! the login for this tenant. Both response generations are understood: `auth/getuserinfo`
//! (lowercase `userid`) and the legacy `user/getuserinfo` (`UserId`, `OpenId`).
//!
//! ## Configuration
//! `corp_id` (企业ID, required), `agent_id` (the app's AgentId, required, digits),
//! `app_secret` (that app's Secret — every app has its own, and the access token belongs to the
//! app, so tokens are cached per corp **and** agent), `app_key`: must equal `corp_id` (WeCom's
//! app identifier *is* the corpid; requiring both to agree catches an AgentId or secret pasted
//! into the wrong field). Hosts `qyapi`, `oauth` (`open.weixin.qq.com`), `login`
//! (`login.work.weixin.qq.com`) and `open` (`open.work.weixin.qq.com`) can be overridden.
//! Options: `scope` = `"snsapi_base"` (default) or `"snsapi_privateinfo"` (H5 link; needed for
//! mobile / e-mail / avatar on apps created after 2022-06-20); `web_login` = `"sso"` (default)
//! or `"qrconnect"`; `userinfo_api` = `"auth"` (default, `cgi-bin/auth/getuserinfo`) or
//! `"legacy"` (`cgi-bin/user/getuserinfo`); `lang` = `"zh"` / `"en"` (web login page).
//!
//! ## JSAPI signatures (`wx.config`, `wx.agentConfig`)
//! [`Prepared::jsapi_config`] signs a page with either ticket, both fetched with this app's
//! access token (corp + agent) and cached by the core per corp, agent and app token:
//! [`TicketKind::Jsapi`] — the corp ticket, `cgi-bin/get_jsapi_ticket` — for
//! `wx.config({beta: true, appId: corpid, timestamp, nonceStr, signature, jsApiList})`, and
//! [`TicketKind::AgentConfig`] — the app ticket, `cgi-bin/ticket/get?type=agent_config` — for
//! `wx.agentConfig({corpid, agentid, timestamp, nonceStr, signature, jsApiList})`; timestamps in
//! seconds. WeCom limits ticket fetches (corp ticket ≤ 400/hour per corp and ≤ 100/hour per app,
//! agent ticket ≤ 100/hour per app): the shared cache fetches each once per app token lifetime.
//! `agentConfig` needs WeCom ≥ 2.5.0 (and, before 3.0.24, a successful `wx.config` first); the
//! page's domain must be the app's trusted domain (可信域名). "invalid signature" (notably on iOS,
//! which signs the URL the page was *first* opened with) is almost always another URL.
//!
//! ## Mini programs (`qy.login`)
//! With `options.mini_program: true` (default `false`), the code of a WeCom mini program's
//! `wx.qy.login` is redeemed without state through [`Prepared::login_with_code_kind`]`(`
//! [`CodeKind::MiniProgram`]`, …)`: `cgi-bin/miniprogram/jscode2session` with the access token
//! of the self-built app associated with the mini program (this configuration), then
//! `cgi-bin/user/get` as for every login, so it yields the same profile. A `corpid` other than
//! `corp_id` is refused ([`Error::NotInTenant`]); the `session_key` is dropped on arrival.
//! Redirect codes stay redirect-only: only this second kind is stateless.
//!
//! ## Service-provider apps (`mode: isv`)
//! `app_key` = the suite_id, `app_secret` = the suite secret, `corp_id` + `permanent_code` = the
//! authorising corp (or neither: the suite's app entry, which logs no one in). Tokens: the
//! newest pushed `suite_ticket` → `service/get_suite_token` → `service/get_corp_token` per corp;
//! logins: the in-client OAuth link with `appid` = the suite_id and the `ServiceApp` web login,
//! both redeemed at `service/auth/getuserinfo3rd` with the suite token (membership: the answer's
//! `corpid` must be `corp_id`); installations: `create_auth`'s code redeemed by
//! [`Platform::redeem_install_code`] (`service/get_permanent_code`). See docs/store-apps.md.
//!
//! ## Error codes
//! See [`classify`], the crate's error table.
//!
//! [`Prepared::start_web_login`]: unilogin_core::Prepared::start_web_login
//! [`Prepared::finish_web_login`]: unilogin_core::Prepared::finish_web_login
//! [`Prepared::jsapi_config`]: unilogin_core::Prepared::jsapi_config
//! [`Prepared::login_with_code_kind`]: unilogin_core::Prepared::login_with_code_kind
//! [`TicketKind::Jsapi`]: unilogin_core::TicketKind::Jsapi
//! [`TicketKind::AgentConfig`]: unilogin_core::TicketKind::AgentConfig
//! [`CodeKind::MiniProgram`]: unilogin_core::CodeKind::MiniProgram

mod error;
pub mod events;
mod isv;
mod jsapi;
mod miniprogram;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::Method;
use serde_json::{Value, json};
use unilogin_core::envelope::{check_code, require_str, seconds_at, str_at};
use unilogin_core::error::{BadBody, redact_excerpt};
use unilogin_core::http::UpstreamResponse;
use unilogin_core::jsapi::{Signed, TicketKind};
use unilogin_core::platform::sdk::{Base, Hosts, choice, secret_rejected};
use unilogin_core::platform::{AuthorizeRequest, Flow, Identity, InClient, Platform, WebCallback};
use unilogin_core::registry::{PlatformContext, PlatformRegistration};
use unilogin_core::token_cache::{FetchedToken, TokenKey};
use unilogin_core::{AccessToken, AppSecret, AuthCode, Error, Result, UserTicket};
use url::Url;

pub use error::classify;

/// The platform's registered name.
pub const NAME: &str = "wecom";

/// The default mapping rules (YAML).
pub const DEFAULT_RULES: &str = include_str!("../rules.yaml");

inventory::submit! {
    PlatformRegistration {
        name: NAME,
        description: "WeCom (企业微信): in-client OAuth (H5) and web/QR login",
        default_rules: DEFAULT_RULES,
        user_agent_markers: &["wxwork"],
        in_client: InClient::Redirect,
        build: WeCom::build,

        events: Some(events::WeComEvents::from_credentials),
    }
}

/// The hosts and their defaults.
const HOSTS: Hosts = &[
    ("qyapi", "https://qyapi.weixin.qq.com/"),
    ("oauth", "https://open.weixin.qq.com/"),
    ("login", "https://login.work.weixin.qq.com/"),
    ("open", "https://open.work.weixin.qq.com/"),
];

/// Which page starts a web login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WebLogin {
    Sso,
    QrConnect,
}

/// The WeCom handler for one tenant (one self-built app of one corp, or in `mode: isv` one
/// corp that authorised a service provider's suite).
#[derive(Debug, Clone)]
pub struct WeCom {
    /// Its `app_key` is the corpid.
    base: Base,
    agent_id: String,
    secret: AppSecret,
    /// The in-client OAuth link's `scope`.
    scope: &'static str,
    web_login: WebLogin,
    /// The code exchange's path (current or legacy).
    userinfo_path: &'static str,
    lang: Option<&'static str>,
    /// `options.mini_program` (default false): `qy.login` codes are redeemed.
    mini_program: bool,
    /// `mode: isv`: a service provider's suite, for one authorising corp or its app entry.
    isv: Option<isv::Store>,
}

/// Whether WeCom accepts `state` in its in-client OAuth link: 1–128 ASCII letters and digits
/// (otherwise it answers errcode 84025). The core's state (64 hex characters) always is.
///
/// ```
/// assert!(unilogin_wecom::is_valid_h5_state("abc123XYZ"));
/// assert!(unilogin_wecom::is_valid_h5_state(&"0f".repeat(32)));
/// assert!(!unilogin_wecom::is_valid_h5_state("abc-123"));
/// assert!(!unilogin_wecom::is_valid_h5_state(""));
/// assert!(!unilogin_wecom::is_valid_h5_state(&"a".repeat(129)));
/// ```
pub fn is_valid_h5_state(state: &str) -> bool {
    (1..=128).contains(&state.len()) && state.bytes().all(|b| b.is_ascii_alphanumeric())
}

impl WeCom {
    /// Builds the handler for a registration.
    pub fn build(ctx: PlatformContext<'_>) -> Result<Arc<dyn Platform>> {
        Ok(Arc::new(Self::new(&ctx)?))
    }

    /// Builds the handler from a tenant's configuration, validating it.
    pub fn new(ctx: &PlatformContext<'_>) -> Result<Self> {
        let config = ctx.config;
        let store_app = config.store_app_mode()?;
        if store_app {
            return Self::new_isv(ctx);
        }
        let corp_id = config.require_corp_id()?.trim();
        if config.app_key.as_str() != corp_id {
            return Err(config.error(
                "app_key",
                "must be the corpid (the same value as `corp_id`); the app is chosen by `agent_id` and `app_secret`",
            ));
        }
        let agent_id = config.require_agent_id()?.trim().to_string();
        if !agent_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(config.error("agent_id", "must be the app's numeric AgentId"));
        }
        if config.app_secret.is_empty() {
            return Err(config.error("app_secret", "must not be empty"));
        }
        let scopes = [
            ("snsapi_base", "snsapi_base"),
            ("snsapi_privateinfo", "snsapi_privateinfo"),
        ];
        let lang = match config.option_str("lang")? {
            None => None,
            Some(_) => Some(choice(config, "lang", &[("zh", "zh"), ("en", "en")])?),
        };
        Ok(Self {
            base: Base::new(ctx, HOSTS)?,
            agent_id,
            secret: config.app_secret.clone(),
            scope: choice(config, "scope", &scopes)?,
            web_login: choice(
                config,
                "web_login",
                &[("sso", WebLogin::Sso), ("qrconnect", WebLogin::QrConnect)],
            )?,
            userinfo_path: choice(
                config,
                "userinfo_api",
                &[
                    ("auth", "cgi-bin/auth/getuserinfo"),
                    ("legacy", "cgi-bin/user/getuserinfo"),
                ],
            )?,
            lang,
            mini_program: config.option_bool("mini_program", false)?,
            isv: None,
        })
    }

    /// `mode: isv`: `app_key` the suite_id, `corp_id` (with `permanent_code`) the authorising
    /// corp or absent (the app entry); `agent_id` optional (the app inside that corp).
    fn new_isv(ctx: &PlatformContext<'_>) -> Result<Self> {
        let config = ctx.config;
        if config.app_secret.is_empty() {
            return Err(config.error("app_secret", "must not be empty (the suite secret)"));
        }
        if config.option_bool("mini_program", false)? {
            return Err(config.error(
                "options.mini_program",
                "not offered in `mode: isv` (a mini program logs in with its own corp's app)",
            ));
        }
        let corp = config
            .corp_id
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty());
        let store = isv::Store::new(
            &config.platform,
            config.app_key.as_str(),
            corp.map(|c| (c, config.permanent_code.as_ref())),
        )
        .map_err(|(field, why)| config.error(field, why))?;
        let agent_id = config
            .agent_id
            .as_deref()
            .map(str::trim)
            .unwrap_or_default()
            .to_string();
        if !agent_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(config.error("agent_id", "must be the app's numeric AgentId"));
        }
        let scopes = [
            ("snsapi_base", "snsapi_base"),
            ("snsapi_privateinfo", "snsapi_privateinfo"),
        ];
        Ok(Self {
            base: Base::new(ctx, HOSTS)?,
            agent_id,
            secret: config.app_secret.clone(),
            scope: choice(config, "scope", &scopes)?,
            web_login: WebLogin::Sso,
            userinfo_path: "cgi-bin/service/auth/getuserinfo3rd",
            lang: None,
            mini_program: false,
            isv: Some(store),
        })
    }

    /// The corpid (the same value as the app key).
    fn corp_id(&self) -> &str {
        self.base.app_key.as_str()
    }

    /// Calls `path` on `qyapi` and checks its `{errcode, errmsg}` envelope.
    async fn call(
        &self,
        method: Method,
        path: &'static str,
        query: &[(&str, &str)],
        body: Option<Value>,
    ) -> Result<UpstreamResponse> {
        let ctx = self.base.ctx(path);
        let mut request = self.base.request(method, "qyapi", path)?.query(query);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = self.base.http.send(&ctx, request).await?;
        check_code(&ctx, &response, "/errcode", "/errmsg", classify, None)?;
        Ok(response)
    }

    /// A redirect URL: `path` on `host` with `pairs`.
    fn link(&self, host: &str, path: &str, pairs: &[(&str, &str)]) -> Result<Url> {
        let mut url = self.base.url(host, path)?;
        url.query_pairs_mut().extend_pairs(pairs);
        Ok(url)
    }
}

#[async_trait]
impl Platform for WeCom {
    fn base(&self) -> &Base {
        &self.base
    }

    /// Keyed by corpid **and** agentid: each app has its own secret and its own token.
    fn token_key(&self) -> Option<TokenKey> {
        if let Some(store) = &self.isv {
            return Some(store.token_key().clone());
        }
        Some(self.base.token_key(Some(&self.agent_id)))
    }

    /// In `mode: isv` the code step (`getuserinfo3rd`) takes the suite token.
    fn code_token_key(&self) -> Option<TokenKey> {
        match &self.isv {
            Some(store) => Some(store.suite_key.clone()),
            None => self.token_key(),
        }
    }

    async fn fetch_code_token(&self) -> Result<FetchedToken> {
        match &self.isv {
            Some(_) => self.fetch_suite_token().await,
            None => self.fetch_app_token().await,
        }
    }

    async fn fetch_app_token(&self) -> Result<FetchedToken> {
        if let Some(store) = &self.isv {
            return match store.org {
                Some(_) => self.fetch_corp_token().await,
                None => self.fetch_suite_token().await,
            };
        }
        let path = "cgi-bin/gettoken";
        let query = [
            ("corpid", self.corp_id()),
            ("corpsecret", self.secret.expose()),
        ];
        let response = self
            .call(Method::GET, path, &query, None)
            .await
            .map_err(secret_rejected(error::SECRET_HINT))?;
        Ok(FetchedToken {
            token: AccessToken::new(require_str(
                &self.base.ctx(path),
                &response,
                "/access_token",
            )?),
            expires_in: seconds_at(&response.body, "/expires_in")
                .unwrap_or(Duration::from_secs(7200)),
        })
    }

    /// `getuserinfo` (current or legacy) for a code from either redirect login.
    async fn exchange_web_code(
        &self,
        app_token: Option<&AccessToken>,
        callback: &WebCallback<'_>,
    ) -> Result<Identity> {
        if self.isv.is_some() {
            return self.identify_3rd(app_token, callback).await;
        }
        let token = self.base.app_token(app_token)?;
        let query = [
            ("access_token", token.expose()),
            ("code", callback.code.expose()),
        ];
        let response = self
            .call(Method::GET, self.userinfo_path, &query, None)
            .await?;
        let body = &response.body;
        let Some(user_id) = str_at(body, "/userid").or_else(|| str_at(body, "/UserId")) else {
            let ctx = self.base.ctx(self.userinfo_path);
            if ["/openid", "/OpenId", "/external_userid"]
                .iter()
                .any(|p| str_at(body, p).is_some())
            {
                return Err(Error::NotInTenant { ctx });
            }
            return Err(Error::BadResponse {
                ctx,
                status: response.status,
                kind: BadBody::Malformed,
                excerpt: format!(
                    "neither `userid` nor `openid` in {}",
                    redact_excerpt(&body.to_string())
                ),
            });
        };
        // Linked corps (上下游 / 企业互联) answer `CorpId/userid`.
        let (org_id, user_id) = match user_id.split_once('/') {
            Some((corp, id)) if corp == self.corp_id() => (None, id.to_string()),
            Some((corp, _)) => (Some(corp.to_string()), user_id.clone()),
            None => (None, user_id),
        };
        Ok(Identity {
            user_id: Some(user_id),
            org_id,
            user_ticket: str_at(body, "/user_ticket").map(UserTicket::new),
            ..Identity::default()
        })
    }

    async fn authorize_url(&self, request: &AuthorizeRequest<'_>) -> Result<Url> {
        let (state, redirect_uri) = (request.state.expose(), request.redirect_uri.as_str());
        if self.isv.is_some() {
            return self.authorize_3rd(request.flow, state, redirect_uri);
        }
        let (corp_id, agent_id) = (self.corp_id(), self.agent_id.as_str());
        match (request.flow, self.web_login) {
            (Flow::H5, _) => {
                if !is_valid_h5_state(state) {
                    return Err(self.base.unsupported(
                        "an in-client OAuth `state` other than 1-128 ASCII letters and digits (WeCom answers errcode 84025)",
                    ));
                }
                let pairs = [
                    ("appid", corp_id),
                    ("redirect_uri", redirect_uri),
                    ("response_type", "code"),
                    ("scope", self.scope),
                    ("state", state),
                    ("agentid", agent_id),
                ];
                let mut url = self.link("oauth", "connect/oauth2/authorize", &pairs)?;
                url.set_fragment(Some("wechat_redirect"));
                Ok(url)
            }
            (Flow::Web, WebLogin::Sso) => {
                let pairs = [
                    ("login_type", "CorpApp"),
                    ("appid", corp_id),
                    ("agentid", agent_id),
                    ("redirect_uri", redirect_uri),
                    ("state", state),
                ];
                let mut url = self.link("login", "wwlogin/sso/login", &pairs)?;
                if let Some(lang) = self.lang {
                    url.query_pairs_mut().append_pair("lang", lang);
                }
                Ok(url)
            }
            (Flow::Web, WebLogin::QrConnect) => {
                let pairs = [
                    ("appid", corp_id),
                    ("agentid", agent_id),
                    ("redirect_uri", redirect_uri),
                    ("state", state),
                ];
                self.link("open", "wwopen/sso/qrConnect", &pairs)
            }
        }
    }

    fn login_refusal(&self) -> Option<&'static str> {
        self.isv
            .as_ref()
            .filter(|store| store.org.is_none())
            .map(|_| isv::APP_ENTRY)
    }

    fn ticket_kinds(&self) -> &'static [TicketKind] {
        &[TicketKind::Jsapi, TicketKind::AgentConfig]
    }

    /// Both tickets with this app's token (corp + agent).
    async fn fetch_ticket(
        &self,
        app_token: Option<&AccessToken>,
        kind: TicketKind,
    ) -> Result<FetchedToken> {
        self.ticket(self.base.app_token(app_token)?, kind).await
    }

    fn jsapi_object(
        &self,
        kind: TicketKind,
        signed: &Signed,
        js_api_list: &[String],
    ) -> Result<Value> {
        Ok(self.wx_config(kind, signed, js_api_list))
    }

    fn redeems_mini_program_codes(&self) -> bool {
        self.mini_program
    }

    /// `service/get_permanent_code` on the suite (any `mode: isv` entry).
    async fn redeem_install_code(
        &self,
        code: &AppSecret,
    ) -> Result<(
        unilogin_core::isv::OrgId,
        unilogin_core::events::InstallInfo,
    )> {
        self.store()?;
        self.permanent_code(code).await
    }

    async fn identify_mini_program(
        &self,
        app_token: Option<&AccessToken>,
        code: &AuthCode,
    ) -> Result<Identity> {
        self.mini_program_identity(app_token, code).await
    }

    async fn user_detail(
        &self,
        app_token: Option<&AccessToken>,
        identity: &Identity,
    ) -> Result<Value> {
        let path = "cgi-bin/user/get";
        let Some(user_id) = &identity.user_id else {
            return Err(Error::NotInTenant {
                ctx: self.base.ctx(path),
            });
        };
        let token = ("access_token", self.base.app_token(app_token)?.expose());
        let query = [token, ("userid", user_id.as_str())];
        let mut detail = self.call(Method::GET, path, &query, None).await?.body;
        if let (Some(ticket), Some(_)) = (&identity.user_ticket, &self.isv) {
            // A service provider's private details come from `getuserdetail3rd`, with the
            // suite token.
            let suite = self.suite_token().await?;
            let body = json!({ "user_ticket": ticket.expose() });
            let private = self
                .call(
                    Method::POST,
                    "cgi-bin/service/auth/getuserdetail3rd",
                    &[("suite_access_token", suite.expose())],
                    Some(body),
                )
                .await?
                .body;
            if let Value::Object(map) = &mut detail {
                map.insert("private".into(), private);
            }
        } else if let Some(ticket) = &identity.user_ticket {
            let body = json!({ "user_ticket": ticket.expose() });
            let private = self
                .call(
                    Method::POST,
                    "cgi-bin/auth/getuserdetail",
                    &[token],
                    Some(body),
                )
                .await?
                .body;
            if let Value::Object(map) = &mut detail {
                map.insert("private".into(), private);
            }
        }
        Ok(detail)
    }
}
