//! # unilogin-wecom
//!
//! WeCom (企业微信, WeChat Work) for unilogin. Registered as platform `wecom`; a `User-Agent`
//! containing `wxwork` (mobile, PC and `wxworklocal` private deployments) is inside its client.
//!
//! - **H5 login-free** is WeCom's in-client OAuth: [`Sso::authorize_url`] with [`Flow::H5`]
//!   builds `open.weixin.qq.com/connect/oauth2/authorize?appid=CORPID&redirect_uri=…
//!   &response_type=code&scope=snsapi_base|snsapi_privateinfo&state=…&agentid=…#wechat_redirect`;
//!   the page opened inside WeCom is redirected back with `?code=`; the server exchanges it:
//!   `gettoken` (cached, per app) → `cgi-bin/auth/getuserinfo` (`userid`, and a `user_ticket`
//!   with `snsapi_privateinfo`) → `cgi-bin/user/get`, plus `cgi-bin/auth/getuserdetail` with the
//!   ticket. Apps created after 2022-06-20 only receive mobile, e-mail, avatar, gender and
//!   address that way; the getuserdetail body is handed to the mapping rules under the top-level
//!   key `"private"` (`$.private.mobile`, …). The in-client `state` must be 1–128 ASCII letters
//!   and digits: anything else is refused with [`Error::Unsupported`] before a URL is built.
//! - **Web / QR login** from a PC browser: `login.work.weixin.qq.com/wwlogin/sso/login
//!   ?login_type=CorpApp&appid&agentid&redirect_uri&state` (or, with option
//!   `web_login = "qrconnect"`, the older `open.work.weixin.qq.com/wwopen/sso/qrConnect`) →
//!   callback `code` → the same `getuserinfo` (never a `user_ticket`) → `user/get`.
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
//! ## Error codes
//! 40014 / 42001 / 40001 → [`Error::TokenInvalid`] (the core invalidates that token and retries
//! once; 40001 at `gettoken` means a wrong secret → [`Error::Misconfigured`]); 45009 / 45033 →
//! [`Error::RateLimited`]; 40029 (bad, used, expired or another app's code) and 84014 / 84015
//! (the `user_ticket` expired or is invalid: the person must go through the OAuth link again) →
//! [`Error::InvalidCode`], never retried; 60020 (trusted IP), 50001 (trusted domain), 40013,
//! 40091, 48002, 60011 and 50002 (visible range) → [`Error::Misconfigured`] with what to fix;
//! 60111 (no such member) → [`Error::NotInTenant`]; -1 → transient.
//!
//! [`Sso::authorize_url`]: unilogin_core::sso::Sso::authorize_url

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::Method;
use serde_json::{Value, json};
use unilogin_core::config::PlatformConfig;
use unilogin_core::envelope::{self, check_code, require_str, seconds_at, str_at};
use unilogin_core::error::{BadBody, redact_excerpt};
use unilogin_core::http::{HttpClient, UpstreamResponse};
use unilogin_core::platform::{AuthorizeRequest, Flow, Identity, Platform, WebCallback};
use unilogin_core::registry::{PlatformContext, PlatformRegistration};
use unilogin_core::token_cache::{FetchedToken, TokenKey};
use unilogin_core::{
    AccessToken, AppSecret, AuthCode, Error, ErrorClass, PlatformName, Result, TenantId,
    UpstreamCode, UpstreamCtx, UserTicket,
};
use url::Url;

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
        build: WeCom::build,
    }
}

const IP_HINT: &str = "the server's egress IP is not in the app's trusted IP list: add it in the WeCom admin console (应用管理 → the app → 企业可信IP)";
const DOMAIN_HINT: &str = "the redirect_uri's domain is not the app's trusted domain: set it in the WeCom admin console (应用管理 → the app → 网页授权及JS-SDK → 可信域名; for web login also 企业微信授权登录 → 授权回调域)";
const SECRET_HINT: &str = "WeCom rejected the corpsecret: app_secret must be the Secret of the app `agent_id` (应用管理 → the app → Secret), not another app's or the contacts-sync secret";
const CORP_HINT: &str = "WeCom does not know this corpid: corp_id (and app_key) must be the 企业ID shown in 我的企业 → 企业信息";
const OTHER_CORP_HINT: &str =
    "app_secret belongs to an app of another corp: check corp_id and app_secret";
const FORBIDDEN_HINT: &str = "the app may not call this API: check the app's permissions in the WeCom admin console (e.g. contacts read access, sensitive-field authorization)";
const RANGE_HINT: &str = "the member is outside the app's visible range: add the member or their department in 应用管理 → the app → 可见范围";

/// The scope of the in-client OAuth link.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    Base,
    PrivateInfo,
}

/// Which page starts a web login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WebLogin {
    Sso,
    QrConnect,
}

/// Which endpoint exchanges codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum UserinfoApi {
    Auth,
    Legacy,
}

impl UserinfoApi {
    fn path(self) -> &'static str {
        match self {
            UserinfoApi::Auth => "cgi-bin/auth/getuserinfo",
            UserinfoApi::Legacy => "cgi-bin/user/getuserinfo",
        }
    }
}

/// The WeCom handler for one tenant (one self-built app of one corp).
#[derive(Debug)]
pub struct WeCom {
    name: PlatformName,
    tenant: TenantId,
    corp_id: String,
    agent_id: String,
    secret: AppSecret,
    qyapi: Url,
    oauth: Url,
    login: Url,
    open: Url,
    scope: Scope,
    web_login: WebLogin,
    userinfo_api: UserinfoApi,
    lang: Option<String>,
    http: HttpClient,
}

/// Whether WeCom accepts `state` in its in-client OAuth link: 1–128 ASCII letters and digits.
///
/// ```
/// assert!(unilogin_wecom::is_valid_h5_state("abc123XYZ"));
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
        Ok(Arc::new(Self::new(ctx.config, ctx.http.clone())?))
    }

    /// Builds the handler from a tenant's configuration, validating it.
    pub fn new(config: &PlatformConfig, http: HttpClient) -> Result<Self> {
        let corp_id = config.require_corp_id()?.trim().to_string();
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
        let scope = match config.option_str("scope")? {
            None | Some("snsapi_base") => Scope::Base,
            Some("snsapi_privateinfo") => Scope::PrivateInfo,
            Some(other) => {
                return Err(config.error(
                    "options.scope",
                    format!("`{other}` is not one of `snsapi_base`, `snsapi_privateinfo`"),
                ));
            }
        };
        let web_login = match config.option_str("web_login")? {
            None | Some("sso") => WebLogin::Sso,
            Some("qrconnect") => WebLogin::QrConnect,
            Some(other) => {
                return Err(config.error(
                    "options.web_login",
                    format!("`{other}` is not one of `sso`, `qrconnect`"),
                ));
            }
        };
        let userinfo_api = match config.option_str("userinfo_api")? {
            None | Some("auth") => UserinfoApi::Auth,
            Some("legacy") => UserinfoApi::Legacy,
            Some(other) => {
                return Err(config.error(
                    "options.userinfo_api",
                    format!("`{other}` is not one of `auth`, `legacy`"),
                ));
            }
        };
        let lang = match config.option_str("lang")? {
            None => None,
            Some(l @ ("zh" | "en")) => Some(l.to_string()),
            Some(other) => {
                return Err(config.error(
                    "options.lang",
                    format!("`{other}` is not one of `zh`, `en`"),
                ));
            }
        };
        Ok(Self {
            name: config.platform.clone(),
            tenant: config.tenant.clone(),
            corp_id,
            agent_id,
            secret: config.app_secret.clone(),
            qyapi: config.host("qyapi", "https://qyapi.weixin.qq.com/")?,
            oauth: config.host("oauth", "https://open.weixin.qq.com/")?,
            login: config.host("login", "https://login.work.weixin.qq.com/")?,
            open: config.host("open", "https://open.work.weixin.qq.com/")?,
            scope,
            web_login,
            userinfo_api,
            lang,
            http,
        })
    }

    fn ctx(&self, endpoint: &'static str) -> UpstreamCtx {
        UpstreamCtx::new(Some(self.tenant.clone()), self.name.clone(), endpoint)
    }

    fn join(&self, base: &Url, host: &str, path: &str) -> Result<Url> {
        base.join(path).map_err(|e| {
            Error::config(
                Some(&self.tenant),
                Some(NAME),
                format!("hosts.{host}"),
                e.to_string(),
            )
        })
    }

    /// Sends a `qyapi` request and checks its `{errcode, errmsg}` envelope.
    async fn call(
        &self,
        ctx: &UpstreamCtx,
        request: reqwest::RequestBuilder,
    ) -> Result<UpstreamResponse> {
        let response = self.http.send(ctx, request).await?;
        check_code(
            ctx,
            &response,
            "/errcode",
            "/errmsg",
            |c| self.classify(c),
            None,
        )?;
        Ok(response)
    }

    /// `getuserinfo` (current or legacy) for a code from either flow.
    async fn exchange(&self, app_token: &AccessToken, code: &AuthCode) -> Result<Identity> {
        let path = self.userinfo_api.path();
        let ctx = self.ctx(path);
        let url = self.join(&self.qyapi, "qyapi", path)?;
        let request = self.http.request(Method::GET, url).query(&[
            ("access_token", app_token.expose()),
            ("code", code.expose()),
        ]);
        let response = self.call(&ctx, request).await?;
        let body = &response.body;
        let Some(user_id) = str_at(body, "/userid").or_else(|| str_at(body, "/UserId")) else {
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
            Some((corp, id)) if corp == self.corp_id => (None, id.to_string()),
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
}

#[async_trait]
impl Platform for WeCom {
    fn name(&self) -> &PlatformName {
        &self.name
    }

    fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    /// Keyed by corpid **and** agentid: each app has its own secret and its own token.
    fn token_key(&self) -> TokenKey {
        TokenKey::new(
            &self.name,
            &self.tenant,
            &self.corp_id,
            Some(&self.agent_id),
        )
    }

    async fn fetch_app_token(&self) -> Result<FetchedToken> {
        let ctx = self.ctx("cgi-bin/gettoken");
        let url = self.join(&self.qyapi, "qyapi", "cgi-bin/gettoken")?;
        let request = self.http.request(Method::GET, url).query(&[
            ("corpid", self.corp_id.as_str()),
            ("corpsecret", self.secret.expose()),
        ]);
        let response = self.call(&ctx, request).await.map_err(|e| match e {
            // At gettoken, "invalid credential" is the secret, not a stale token.
            Error::TokenInvalid { ctx, code } => Error::Misconfigured {
                ctx,
                code,
                hint: SECRET_HINT.into(),
            },
            other => other,
        })?;
        Ok(FetchedToken {
            token: AccessToken::new(require_str(&ctx, &response, "/access_token")?),
            expires_in: seconds_at(&response.body, "/expires_in")
                .unwrap_or(Duration::from_secs(7200)),
        })
    }

    async fn identify_h5(&self, app_token: &AccessToken, code: &AuthCode) -> Result<Identity> {
        self.exchange(app_token, code).await
    }

    async fn exchange_web_code(
        &self,
        app_token: &AccessToken,
        callback: &WebCallback<'_>,
    ) -> Result<Identity> {
        self.exchange(app_token, callback.code).await
    }

    async fn user_detail(&self, app_token: &AccessToken, identity: &Identity) -> Result<Value> {
        let Some(user_id) = &identity.user_id else {
            return Err(Error::NotInTenant {
                ctx: self.ctx("cgi-bin/user/get"),
            });
        };
        let ctx = self.ctx("cgi-bin/user/get");
        let url = self.join(&self.qyapi, "qyapi", "cgi-bin/user/get")?;
        let request = self.http.request(Method::GET, url).query(&[
            ("access_token", app_token.expose()),
            ("userid", user_id.as_str()),
        ]);
        let mut detail = self.call(&ctx, request).await?.body;
        if let Some(ticket) = &identity.user_ticket {
            let ctx = self.ctx("cgi-bin/auth/getuserdetail");
            let url = self.join(&self.qyapi, "qyapi", "cgi-bin/auth/getuserdetail")?;
            let request = self
                .http
                .request(Method::POST, url)
                .query(&[("access_token", app_token.expose())])
                .json(&json!({ "user_ticket": ticket.expose() }));
            let private = self.call(&ctx, request).await?.body;
            if let Value::Object(map) = &mut detail {
                map.insert("private".into(), private);
            }
        }
        Ok(detail)
    }

    fn authorize_url(&self, request: &AuthorizeRequest<'_>) -> Result<Url> {
        let state = request.state.expose();
        match (request.flow, self.web_login) {
            (Flow::H5, _) => {
                if !is_valid_h5_state(state) {
                    return Err(Error::Unsupported {
                        platform: self.name.clone(),
                        operation: "an in-client OAuth `state` other than 1-128 ASCII letters and digits (WeCom answers errcode 84025)",
                    });
                }
                let mut url = self.join(&self.oauth, "oauth", "connect/oauth2/authorize")?;
                url.query_pairs_mut()
                    .append_pair("appid", &self.corp_id)
                    .append_pair("redirect_uri", request.redirect_uri.as_str())
                    .append_pair("response_type", "code")
                    .append_pair(
                        "scope",
                        match self.scope {
                            Scope::Base => "snsapi_base",
                            Scope::PrivateInfo => "snsapi_privateinfo",
                        },
                    )
                    .append_pair("state", state)
                    .append_pair("agentid", &self.agent_id);
                url.set_fragment(Some("wechat_redirect"));
                Ok(url)
            }
            (Flow::Web, WebLogin::Sso) => {
                let mut url = self.join(&self.login, "login", "wwlogin/sso/login")?;
                {
                    let mut q = url.query_pairs_mut();
                    q.append_pair("login_type", "CorpApp")
                        .append_pair("appid", &self.corp_id)
                        .append_pair("agentid", &self.agent_id)
                        .append_pair("redirect_uri", request.redirect_uri.as_str())
                        .append_pair("state", state);
                    if let Some(lang) = &self.lang {
                        q.append_pair("lang", lang);
                    }
                }
                Ok(url)
            }
            (Flow::Web, WebLogin::QrConnect) => {
                let mut url = self.join(&self.open, "open", "wwopen/sso/qrConnect")?;
                url.query_pairs_mut()
                    .append_pair("appid", &self.corp_id)
                    .append_pair("agentid", &self.agent_id)
                    .append_pair("redirect_uri", request.redirect_uri.as_str())
                    .append_pair("state", state);
                Ok(url)
            }
        }
    }

    fn classify(&self, code: &UpstreamCode) -> ErrorClass {
        match code {
            UpstreamCode::Number(n) => match n {
                40014 | 42001 | 40001 => ErrorClass::TokenInvalid,
                45009 | 45033 => ErrorClass::RateLimited,
                40029 | 84014 | 84015 => ErrorClass::InvalidCode,
                60020 => ErrorClass::Misconfigured(IP_HINT),
                50001 => ErrorClass::Misconfigured(DOMAIN_HINT),
                40013 => ErrorClass::Misconfigured(CORP_HINT),
                40091 => ErrorClass::Misconfigured(OTHER_CORP_HINT),
                48002 => ErrorClass::Misconfigured(FORBIDDEN_HINT),
                60011 | 50002 => ErrorClass::Misconfigured(RANGE_HINT),
                60111 => ErrorClass::NotInTenant,
                -1 => ErrorClass::Transient,
                _ => ErrorClass::Other,
            },
            UpstreamCode::Http(status) => envelope::class_of_status(*status),
            _ => ErrorClass::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use unilogin_core::State;
    use unilogin_core::http::HttpConfig;

    fn config(patch: Value) -> PlatformConfig {
        let mut c = json!({
            "tenant": "acme", "platform": "wecom",
            "app_key": "wwcorp", "corp_id": "wwcorp", "agent_id": "1000002",
            "app_secret": "s3cret-value",
        });
        if let (Some(c), Value::Object(p)) = (c.as_object_mut(), patch) {
            c.extend(p);
        }
        serde_json::from_value(c).expect("config")
    }

    fn wecom(patch: Value) -> Result<WeCom> {
        WeCom::new(
            &config(patch),
            HttpClient::new(&HttpConfig::default()).expect("client"),
        )
    }

    fn field_of(e: Error) -> String {
        match e {
            Error::Config { field, .. } => field,
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    #[test]
    fn configuration_is_validated() {
        assert!(wecom(json!({})).is_ok());
        let bad = [
            (json!({"app_key": "1000002"}), "app_key"),
            (json!({"corp_id": null}), "corp_id"),
            (json!({"agent_id": null}), "agent_id"),
            (json!({"agent_id": "app-one"}), "agent_id"),
            (json!({"app_secret": ""}), "app_secret"),
            (
                json!({"options": {"scope": "snsapi_userinfo"}}),
                "options.scope",
            ),
            (
                json!({"options": {"web_login": "popup"}}),
                "options.web_login",
            ),
            (
                json!({"options": {"userinfo_api": "v3"}}),
                "options.userinfo_api",
            ),
            (json!({"options": {"lang": "fr"}}), "options.lang"),
            (json!({"options": {"scope": true}}), "options.scope"),
        ];
        for (patch, field) in bad {
            let e = wecom(patch.clone()).expect_err("invalid");
            assert!(!e.to_string().contains("s3cret-value"));
            assert_eq!(field_of(e), field, "{patch}");
        }
    }

    #[test]
    fn token_key_names_corp_and_agent() {
        let a = wecom(json!({})).unwrap().token_key();
        let b = wecom(json!({"agent_id": "1000003", "app_secret": "other"}))
            .unwrap()
            .token_key();
        assert_eq!(a.as_str(), "wecom:acme:wwcorp:1000002");
        assert_ne!(a, b);
    }

    fn url(w: &WeCom, flow: Flow, state: &str) -> Result<Url> {
        let redirect = Url::parse("https://app.example.com/cb?x=1").unwrap();
        let state = State::new(state);
        w.authorize_url(&AuthorizeRequest {
            flow,
            redirect_uri: &redirect,
            state: &state,
            nonce: None,
            code_challenge: None,
        })
    }

    #[test]
    fn h5_link_has_the_documented_shape() {
        let w = wecom(json!({})).unwrap();
        let u = url(&w, Flow::H5, "abc123").unwrap();
        assert_eq!(
            u.as_str(),
            "https://open.weixin.qq.com/connect/oauth2/authorize?appid=wwcorp\
             &redirect_uri=https%3A%2F%2Fapp.example.com%2Fcb%3Fx%3D1&response_type=code\
             &scope=snsapi_base&state=abc123&agentid=1000002#wechat_redirect"
        );
        let w = wecom(json!({"options": {"scope": "snsapi_privateinfo"}})).unwrap();
        let u = url(&w, Flow::H5, &"Z".repeat(128)).unwrap();
        assert!(
            u.query_pairs()
                .any(|(k, v)| k == "scope" && v == "snsapi_privateinfo")
        );
        for bad in ["a-b", "a b", "", "é", &"a".repeat(129)] {
            assert!(
                matches!(url(&w, Flow::H5, bad), Err(Error::Unsupported { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn web_urls_have_the_documented_shape() {
        let w = wecom(json!({"options": {"lang": "en"}})).unwrap();
        let u = url(&w, Flow::Web, "st-1").unwrap();
        assert_eq!(
            u.as_str(),
            "https://login.work.weixin.qq.com/wwlogin/sso/login?login_type=CorpApp\
             &appid=wwcorp&agentid=1000002&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcb%3Fx%3D1\
             &state=st-1&lang=en"
        );
        let w = wecom(json!({"options": {"web_login": "qrconnect"}})).unwrap();
        let u = url(&w, Flow::Web, "st-1").unwrap();
        assert_eq!(
            u.as_str(),
            "https://open.work.weixin.qq.com/wwopen/sso/qrConnect?appid=wwcorp&agentid=1000002\
             &redirect_uri=https%3A%2F%2Fapp.example.com%2Fcb%3Fx%3D1&state=st-1"
        );
    }

    #[test]
    fn every_reference_code_is_classified() {
        let w = wecom(json!({})).unwrap();
        let class = |n| w.classify(&UpstreamCode::Number(n));
        for n in [40014, 42001, 40001] {
            assert_eq!(class(n), ErrorClass::TokenInvalid, "{n}");
        }
        for n in [45009, 45033] {
            assert_eq!(class(n), ErrorClass::RateLimited, "{n}");
        }
        for n in [40029, 84014, 84015] {
            assert_eq!(class(n), ErrorClass::InvalidCode, "{n}");
        }
        let hint = |n| match class(n) {
            ErrorClass::Misconfigured(h) => h,
            other => panic!("{n}: {other:?}"),
        };
        assert!(hint(60020).contains("trusted IP"));
        assert!(hint(50001).contains("trusted domain"));
        assert!(hint(40013).contains("corp_id"));
        assert!(hint(40091).contains("app_secret"));
        assert!(hint(48002).contains("permissions"));
        assert!(hint(60011).contains("visible range"));
        assert!(hint(50002).contains("visible range"));
        assert_eq!(class(60111), ErrorClass::NotInTenant);
        assert_eq!(class(-1), ErrorClass::Transient);
        assert_eq!(class(41001), ErrorClass::Other);
        assert_eq!(class(84025), ErrorClass::Other);
        assert_eq!(w.classify(&UpstreamCode::Http(502)), ErrorClass::Transient);
        assert_eq!(
            w.classify(&UpstreamCode::Http(429)),
            ErrorClass::RateLimited
        );
    }

    #[test]
    fn registration_is_collected_with_its_rules() {
        let r = unilogin_core::Registry::get("wecom").expect("registered");
        assert_eq!(r.user_agent_markers, ["wxwork"]);
        unilogin_core::MappingRules::from_yaml(NAME, r.default_rules).expect("rules compile");
        let ua = "Mozilla/5.0 (iPhone; CPU iPhone OS 16_0 like Mac OS X) Mobile/15E148 \
                  wxwork/4.1.6 MicroMessenger/7.0.1 Language/zh";
        let info = unilogin_core::user_agent::ClientInfo::detect(ua);
        assert!(info.is_inside("wecom") && info.mobile);
    }
}
