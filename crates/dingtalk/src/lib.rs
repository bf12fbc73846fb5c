//! # unilogin-dingtalk
//!
//! DingTalk (钉钉) for unilogin. Registered as platform `dingtalk`.
//!
//! - **H5 login-free** (internal apps): the page inside the DingTalk client calls
//!   `dd.getAuthCode({corpId})` (result field `authCode`) or
//!   `dd.runtime.permission.requestAuthCode({corpId})` (field `code`); the server exchanges it:
//!   `oapi` `gettoken` (cached) → `topapi/v2/user/getuserinfo` → `topapi/v2/user/get`.
//! - **Web / QR OAuth2**: `login.dingtalk.com/oauth2/auth` → callback `authCode` →
//!   `api.dingtalk.com/v1.0/oauth2/userAccessToken` → `v1.0/contact/users/me`; the unionId is
//!   then resolved to this tenant's `userid` with `topapi/user/getbyunionid` (errcode 60121 →
//!   [`Error::NotInTenant`]) and the detail read with `topapi/v2/user/get`. The user's refresh
//!   token is returned to the caller and can be refreshed.
//!
//! Both envelope generations are understood: `oapi` `{errcode, errmsg, result}` (errcode 88
//! wraps a `sub_code`) and `api` HTTP-status errors with string `code`s.
//!
//! ## Configuration
//! `app_key` / `app_secret` (AppKey/AppSecret of the internal app), `corp_id` (optional: when
//! set, a web login that reports another organisation is refused). Hosts `oapi`, `api`,
//! `login` can be overridden. Options: `app_token_api` = `"oapi"` (default, `GET /gettoken`) or
//! `"v1"` (`POST /v1.0/oauth2/accessToken`); `scope` (default `"openid"`; `"openid corpid"`
//! lets the user pick an organisation); `restrict_to_corp` (default `false`: when `true` and
//! `corp_id` is set, the authorize page only offers that organisation).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::Method;
use serde_json::{Value, json};
use unilogin_core::config::PlatformConfig;
use unilogin_core::envelope::{
    self, check_code, fail, message_at, require_str, seconds_at, str_at,
};
use unilogin_core::error::BadBody;
use unilogin_core::http::{HttpClient, UpstreamResponse};
use unilogin_core::platform::{AuthorizeRequest, Flow, Identity, Platform, UserToken, WebCallback};
use unilogin_core::registry::{PlatformContext, PlatformRegistration};
use unilogin_core::token_cache::{FetchedToken, TokenKey};
use unilogin_core::{
    AccessToken, AppKey, AppSecret, AuthCode, Error, ErrorClass, PlatformName, RefreshToken,
    Result, TenantId, UpstreamCode, UpstreamCtx,
};
use url::Url;

/// The platform's registered name.
pub const NAME: &str = "dingtalk";

/// The default mapping rules (YAML).
pub const DEFAULT_RULES: &str = include_str!("../rules.yaml");

inventory::submit! {
    PlatformRegistration {
        name: NAME,
        description: "DingTalk (钉钉): H5 login-free and web/QR OAuth2",
        default_rules: DEFAULT_RULES,
        user_agent_markers: &["dingtalk"],
        build: DingTalk::build,
    }
}

const IP_HINT: &str = "the server's egress IP is not in the app's IP whitelist: add it in the DingTalk developer console (应用开发 → 开发管理 → 服务器出口IP)";
const PERMISSION_HINT: &str = "the app lacks a permission for this API: grant it in the DingTalk developer console (权限管理), e.g. Contact.User.Read / 通讯录个人信息读权限";
const SECRET_HINT: &str =
    "DingTalk rejected the AppKey/AppSecret pair: check app_key and app_secret";
const QUOTA_HINT: &str = "the organisation's monthly API quota is exhausted (errcode 90020): upgrade the edition or wait for the next month";
/// The per-IP ban (HTML page) lasts five minutes.
const BAN: Duration = Duration::from_secs(300);

/// Which endpoint issues app tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AppTokenApi {
    Oapi,
    V1,
}

/// The DingTalk handler for one tenant.
#[derive(Debug)]
pub struct DingTalk {
    name: PlatformName,
    tenant: TenantId,
    app_key: AppKey,
    app_secret: AppSecret,
    corp_id: Option<String>,
    oapi: Url,
    api: Url,
    login: Url,
    app_token_api: AppTokenApi,
    scope: String,
    restrict_to_corp: bool,
    http: HttpClient,
}

impl DingTalk {
    /// Builds the handler for a registration.
    pub fn build(ctx: PlatformContext<'_>) -> Result<Arc<dyn Platform>> {
        Ok(Arc::new(Self::new(ctx.config, ctx.http.clone())?))
    }

    /// Builds the handler from a tenant's configuration, validating it.
    pub fn new(config: &PlatformConfig, http: HttpClient) -> Result<Self> {
        let app_token_api = match config.option_str("app_token_api")? {
            None | Some("oapi") => AppTokenApi::Oapi,
            Some("v1") => AppTokenApi::V1,
            Some(other) => {
                return Err(config.error(
                    "options.app_token_api",
                    format!("`{other}` is not one of `oapi`, `v1`"),
                ));
            }
        };
        let scope = config.option_str("scope")?.unwrap_or("openid").to_string();
        if !scope.split(' ').all(|s| matches!(s, "openid" | "corpid")) {
            return Err(config.error("options.scope", "must be `openid` or `openid corpid`"));
        }
        if config.app_secret.is_empty() {
            return Err(config.error("app_secret", "must not be empty"));
        }
        let restrict_to_corp = config.option_bool("restrict_to_corp", false)?;
        if restrict_to_corp && config.corp_id.is_none() {
            return Err(config.error("options.restrict_to_corp", "needs `corp_id`"));
        }
        Ok(Self {
            name: config.platform.clone(),
            tenant: config.tenant.clone(),
            app_key: config.app_key.clone(),
            app_secret: config.app_secret.clone(),
            corp_id: config.corp_id.clone().filter(|c| !c.is_empty()),
            oapi: config.host("oapi", "https://oapi.dingtalk.com/")?,
            api: config.host("api", "https://api.dingtalk.com/")?,
            login: config.host("login", "https://login.dingtalk.com/")?,
            app_token_api,
            scope,
            restrict_to_corp,
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

    /// Sends an `oapi` request and checks its `{errcode, errmsg}` envelope, including errcode 88
    /// with a `sub_code`, and the HTML / JSON ban pages of the per-IP limit.
    async fn oapi(
        &self,
        ctx: &UpstreamCtx,
        request: reqwest::RequestBuilder,
    ) -> Result<UpstreamResponse> {
        let response = match self.http.send(ctx, request).await {
            Err(Error::BadResponse {
                kind: BadBody::Html,
                status,
                ..
            }) if status < 500 => {
                return Err(Error::RateLimited {
                    ctx: ctx.clone(),
                    code: UpstreamCode::Http(status),
                    retry_after: Some(BAN),
                });
            }
            other => other?,
        };
        let body = &response.body;
        if body.get("punish").is_some() {
            let wait = body
                .get("wait")
                .and_then(envelope::numeric)
                .unwrap_or(5)
                .clamp(1, 60);
            return Err(Error::RateLimited {
                ctx: ctx.clone(),
                code: UpstreamCode::Text("punish".into()),
                retry_after: Some(Duration::from_secs(wait as u64 * 60)),
            });
        }
        if body.get("errcode").and_then(envelope::numeric) == Some(88)
            && let Some(sub) = str_at(body, "/sub_code")
        {
            let code = UpstreamCode::WithSub(88, sub);
            return Err(fail(
                ctx,
                &self.classify(&code),
                code,
                message_at(body, "/sub_msg"),
                None,
            ));
        }
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

    /// Sends an `api.dingtalk.com` request: success is HTTP 2xx, errors carry a string `code`.
    /// `user_token` says whether the request was authenticated with a *user* token, whose
    /// rejection means the user must log in again (not that the app token is bad).
    async fn api(
        &self,
        ctx: &UpstreamCtx,
        request: reqwest::RequestBuilder,
        user_token: bool,
    ) -> Result<UpstreamResponse> {
        let response = self.http.send(ctx, request).await?;
        if response.is_success() {
            return Ok(response);
        }
        let code = match str_at(&response.body, "/code") {
            Some(code) => UpstreamCode::Text(code),
            None => UpstreamCode::Http(response.status),
        };
        let mut class = self.classify(&code);
        if user_token && class == ErrorClass::TokenInvalid {
            class = ErrorClass::UserTokenInvalid;
        }
        Err(fail(
            ctx,
            &class,
            code,
            message_at(&response.body, "/message"),
            None,
        ))
    }

    async fn oauth_token(
        &self,
        grant: Value,
        refreshing: bool,
    ) -> Result<(UserToken, Option<String>)> {
        let ctx = self.ctx("v1.0/oauth2/userAccessToken");
        let url = self.join(&self.api, "api", "v1.0/oauth2/userAccessToken")?;
        let response = match self
            .api(
                &ctx,
                self.http.request(Method::POST, url).json(&grant),
                false,
            )
            .await
        {
            // A 4xx on the code exchange means the code (or refresh token) is unusable, unless
            // DingTalk says the app itself is misconfigured.
            Err(Error::Upstream { code, .. } | Error::TokenInvalid { code, .. }) if !matches!(code, UpstreamCode::Http(s) if s >= 500) =>
            {
                return Err(if refreshing {
                    Error::ReauthRequired { ctx, code }
                } else {
                    Error::InvalidCode { ctx, code }
                });
            }
            other => other?,
        };
        let token = UserToken {
            access_token: AccessToken::new(require_str(&ctx, &response, "/accessToken")?),
            refresh_token: str_at(&response.body, "/refreshToken").map(RefreshToken::new),
            expires_in: seconds_at(&response.body, "/expireIn"),
            refresh_expires_in: None,
            scope: None,
        };
        Ok((token, str_at(&response.body, "/corpId")))
    }

    async fn userid_by_unionid(&self, app_token: &AccessToken, union_id: &str) -> Result<String> {
        let ctx = self.ctx("topapi/user/getbyunionid");
        let url = self.join(&self.oapi, "oapi", "topapi/user/getbyunionid")?;
        let request = self
            .http
            .request(Method::POST, url)
            .query(&[("access_token", app_token.expose())])
            .json(&json!({ "unionid": union_id }));
        let response = self.oapi(&ctx, request).await?;
        require_str(&ctx, &response, "/result/userid")
    }
}

#[async_trait]
impl Platform for DingTalk {
    fn name(&self) -> &PlatformName {
        &self.name
    }

    fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    fn token_key(&self) -> TokenKey {
        TokenKey::new(&self.name, &self.tenant, self.app_key.as_str(), None)
    }

    async fn fetch_app_token(&self) -> Result<FetchedToken> {
        let (ctx, response, token_at, ttl_at) = match self.app_token_api {
            AppTokenApi::Oapi => {
                let ctx = self.ctx("gettoken");
                let url = self.join(&self.oapi, "oapi", "gettoken")?;
                let request = self.http.request(Method::GET, url).query(&[
                    ("appkey", self.app_key.as_str()),
                    ("appsecret", self.app_secret.expose()),
                ]);
                let response = self.oapi(&ctx, request).await.map_err(secret_rejected)?;
                (ctx, response, "/access_token", "/expires_in")
            }
            AppTokenApi::V1 => {
                let ctx = self.ctx("v1.0/oauth2/accessToken");
                let url = self.join(&self.api, "api", "v1.0/oauth2/accessToken")?;
                let body = json!({ "appKey": self.app_key.as_str(), "appSecret": self.app_secret.expose() });
                let request = self.http.request(Method::POST, url).json(&body);
                let response = self
                    .api(&ctx, request, false)
                    .await
                    .map_err(secret_rejected)?;
                (ctx, response, "/accessToken", "/expireIn")
            }
        };
        Ok(FetchedToken {
            token: AccessToken::new(require_str(&ctx, &response, token_at)?),
            expires_in: seconds_at(&response.body, ttl_at).unwrap_or(Duration::from_secs(7200)),
        })
    }

    async fn identify_h5(&self, app_token: &AccessToken, code: &AuthCode) -> Result<Identity> {
        let ctx = self.ctx("topapi/v2/user/getuserinfo");
        let url = self.join(&self.oapi, "oapi", "topapi/v2/user/getuserinfo")?;
        let request = self
            .http
            .request(Method::POST, url)
            .query(&[("access_token", app_token.expose())])
            .json(&json!({ "code": code.expose() }));
        let response = self.oapi(&ctx, request).await?;
        Ok(Identity {
            user_id: Some(require_str(&ctx, &response, "/result/userid")?),
            union_id: str_at(&response.body, "/result/unionid"),
            ..Identity::default()
        })
    }

    async fn exchange_web_code(
        &self,
        _app_token: &AccessToken,
        callback: &WebCallback<'_>,
    ) -> Result<Identity> {
        let grant = json!({
            "clientId": self.app_key.as_str(),
            "clientSecret": self.app_secret.expose(),
            "code": callback.code.expose(),
            "grantType": "authorization_code",
        });
        let (user_token, corp_id) = self.oauth_token(grant, false).await?;
        let ctx = self.ctx("v1.0/contact/users/me");
        let url = self.join(&self.api, "api", "v1.0/contact/users/me")?;
        let request = self.http.request(Method::GET, url).header(
            "x-acs-dingtalk-access-token",
            user_token.access_token.expose(),
        );
        let me = self.api(&ctx, request, true).await?;
        let union_id = require_str(&ctx, &me, "/unionId")?;
        let mut documents = serde_json::Map::new();
        documents.insert("me".into(), me.body.clone());
        Ok(Identity {
            user_id: None,
            union_id: Some(union_id),
            open_id: str_at(&me.body, "/openId"),
            org_id: corp_id,
            user_ticket: None,
            user_token: Some(user_token),
            documents,
        })
    }

    async fn user_detail(&self, app_token: &AccessToken, identity: &Identity) -> Result<Value> {
        let user_id = match (&identity.user_id, &identity.union_id) {
            (Some(user_id), _) => user_id.clone(),
            (None, Some(union_id)) => self.userid_by_unionid(app_token, union_id).await?,
            (None, None) => {
                return Err(Error::NotInTenant {
                    ctx: self.ctx("topapi/user/getbyunionid"),
                });
            }
        };
        let ctx = self.ctx("topapi/v2/user/get");
        let url = self.join(&self.oapi, "oapi", "topapi/v2/user/get")?;
        let request = self
            .http
            .request(Method::POST, url)
            .query(&[("access_token", app_token.expose())])
            .json(&json!({ "userid": user_id, "language": "zh_CN" }));
        Ok(self.oapi(&ctx, request).await?.body)
    }

    fn authorize_url(&self, request: &AuthorizeRequest<'_>) -> Result<Url> {
        if request.flow == Flow::H5 {
            return Err(Error::Unsupported {
                platform: self.name.clone(),
                operation: "an authorize URL for the H5 flow (the page calls dd.getAuthCode)",
            });
        }
        let mut url = self.join(&self.login, "login", "oauth2/auth")?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("redirect_uri", request.redirect_uri.as_str())
                .append_pair("response_type", "code")
                .append_pair("client_id", self.app_key.as_str())
                .append_pair("scope", &self.scope)
                .append_pair("state", request.state.expose())
                .append_pair("prompt", "consent");
            if self.restrict_to_corp
                && let Some(corp) = &self.corp_id
            {
                q.append_pair("corpId", corp);
            }
        }
        Ok(url)
    }

    async fn refresh_user_token(&self, refresh_token: &RefreshToken) -> Result<UserToken> {
        let grant = json!({
            "clientId": self.app_key.as_str(),
            "clientSecret": self.app_secret.expose(),
            "refreshToken": refresh_token.expose(),
            "grantType": "refresh_token",
        });
        Ok(self.oauth_token(grant, true).await?.0)
    }

    fn classify(&self, code: &UpstreamCode) -> ErrorClass {
        match code {
            UpstreamCode::Number(40014 | 42001 | 40001) => ErrorClass::TokenInvalid,
            UpstreamCode::WithSub(88, sub) => match sub.as_str() {
                "40014" | "42001" | "40001" => ErrorClass::TokenInvalid,
                "60020" => ErrorClass::Misconfigured(IP_HINT),
                _ => ErrorClass::Misconfigured(PERMISSION_HINT),
            },
            UpstreamCode::Number(40078) => ErrorClass::InvalidCode,
            UpstreamCode::Number(60020) => ErrorClass::Misconfigured(IP_HINT),
            UpstreamCode::Number(60011) => ErrorClass::Misconfigured(PERMISSION_HINT),
            UpstreamCode::Number(90020) => ErrorClass::Misconfigured(QUOTA_HINT),
            UpstreamCode::Number(60121) => ErrorClass::NotInTenant,
            UpstreamCode::Number(90002 | 90018 | 90019) => ErrorClass::RateLimited,
            UpstreamCode::Number(-1) => ErrorClass::Transient,
            UpstreamCode::Text(t) => match t.as_str() {
                "InvalidAuthentication" => ErrorClass::TokenInvalid,
                "InvalidAuthCode" => ErrorClass::InvalidCode,
                "InvalidRefreshToken" => ErrorClass::UserTokenInvalid,
                "invalidClientIdOrSecret" => ErrorClass::Misconfigured(SECRET_HINT),
                "Forbidden.AccessDenied.IpNotInWhiteList" => ErrorClass::Misconfigured(IP_HINT),
                "ServiceUnavailable" => ErrorClass::Transient,
                t if t.starts_with("Forbidden.AccessDenied") => {
                    ErrorClass::Misconfigured(PERMISSION_HINT)
                }
                t if t.starts_with("Throttling") => ErrorClass::RateLimited,
                _ => ErrorClass::Other,
            },
            UpstreamCode::Http(status) => envelope::class_of_status(*status),
            _ => ErrorClass::Other,
        }
    }
}

/// At the token endpoints a rejected credential is a configuration problem, not a stale token.
fn secret_rejected(e: Error) -> Error {
    match e {
        Error::TokenInvalid { ctx, code } => Error::Misconfigured {
            ctx,
            code,
            hint: SECRET_HINT.into(),
        },
        other => other,
    }
}
