//! # unilogin-feishu
//!
//! Feishu / Lark (飞书) for unilogin. Registered as platform `feishu`; one option picks the
//! Feishu (`open.feishu.cn`, `accounts.feishu.cn`) or Lark (`open.larksuite.com`,
//! `accounts.larksuite.com`) hosts.
//!
//! - **H5 login-free** (self-built apps): the page inside the Feishu/Lark client calls
//!   `tt.requestAccess({appID, scopeList})` or `tt.requestAuthCode({appId})` and posts the `code`;
//!   the server exchanges it for a *user* access token (`authen/v2/oauth/token` by default, or
//!   the v1 `authen/v1/oidc/access_token` with the app token), reads `authen/v1/user_info` with
//!   it and, by default, the directory entry `contact/v3/users/:open_id` with the tenant token.
//! - **Web OAuth**: `accounts…/open-apis/authen/v1/authorize` (PKCE when a challenge is given) →
//!   callback `code` → the same exchange and reads.
//!
//! The user's `tenant_key` (from `user_info`) is reported as [`Identity::org_id`]; the core
//! compares it with the configured `corp_id` and refuses people from other tenants with
//! [`Error::NotInTenant`]. App tokens (`tenant_access_token` or `app_access_token`) are
//! cached by the core with the lifetime Feishu reports in `expire` (the *remaining* time).
//! User refresh tokens are single use: the core's
//! [`Sso::refresh_user_token`](unilogin_core::sso::Sso::refresh_user_token) collapses concurrent
//! refreshes of the same refresh token into one upstream call, in one process and across
//! replicas sharing a token store
//! ([`TokenCache::single_flight`](unilogin_core::token_cache::TokenCache::single_flight)).
//! [`Platform::refresh_user_token`] on this handler makes exactly one upstream call.
//!
//! ## Configuration
//! `app_key` / `app_secret`: the app's App ID (`cli_…`) and App Secret. `corp_id` (required):
//! the organisation's `tenant_key`. Hosts `open` and `accounts` can be overridden. Options:
//! - `region`: `"feishu"` (default) or `"lark"`: the default hosts.
//! - `app_token_api`: `"tenant"` (default, `auth/v3/tenant_access_token/internal`) or `"app"`
//!   (`auth/v3/app_access_token/internal`).
//! - `token_api`: `"v2"` (default, `authen/v2/oauth/token`) or `"v1"` (`authen/v1/oidc/*`).
//! - `scope`: space-separated scopes for the authorize URL (e.g. `"offline_access"` to get
//!   refresh tokens); none by default.
//! - `contact`: `"required"` (default: the directory read must succeed), `"best_effort"`
//!   (a permission or visibility refusal skips it and the profile lacks departments, job title
//!   and status) or `"off"`.
//! - `department_id_type`: `"open_department_id"` (default) or `"department_id"`.

use std::sync::Arc;

use async_trait::async_trait;
use reqwest::Method;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use serde_json::{Value, json};
use unilogin_core::config::PlatformConfig;
use unilogin_core::envelope::{
    self, check_code, fail, message_at, require_str, seconds_at, str_at,
};
use unilogin_core::http::{HttpClient, UpstreamResponse};
use unilogin_core::platform::{AuthorizeRequest, Identity, Platform, UserToken, WebCallback};
use unilogin_core::registry::{PlatformContext, PlatformRegistration};
use unilogin_core::token_cache::{FetchedToken, TokenKey};
use unilogin_core::{
    AccessToken, AppKey, AppSecret, AuthCode, Error, ErrorClass, PlatformName, RefreshToken,
    Result, TenantId, UpstreamCode, UpstreamCtx,
};
use url::Url;

/// The platform's registered name.
pub const NAME: &str = "feishu";

/// The default mapping rules (YAML).
pub const DEFAULT_RULES: &str = include_str!("../rules.yaml");

inventory::submit! {
    PlatformRegistration {
        name: NAME,
        description: "Feishu / Lark (飞书): H5 login-free and web OAuth (v2 and v1 user tokens)",
        default_rules: DEFAULT_RULES,
        user_agent_markers: &["lark/", "larklocale", "feishu"],
        build: Feishu::build,
    }
}

const SECRET_HINT: &str =
    "Feishu rejected the App ID / App Secret pair: check app_key (cli_…) and app_secret";
const IP_HINT: &str = "the server's egress IP is denied by the app's IP whitelist: add it in the Feishu developer console (安全设置 → IP 白名单)";
const SCOPE_HINT: &str = "the app lacks a permission this call needs: enable it in the Feishu developer console (权限管理), e.g. contact:user.base:readonly for the directory, then publish a new app version";
const TOKEN_PERMISSION_HINT: &str = "the access token has no permission for this API: enable the permission (权限管理) and publish a new app version";
const USER_SCOPE_HINT: &str = "the user has not granted a scope this call needs: add it to options.scope so the authorize page asks for it";
const AVAILABILITY_HINT: &str = "the user may not use this app: add them to the app's availability range (可用范围) in the Feishu developer console";
const CONTACT_RANGE_HINT: &str = "the directory does not show this user to the app: widen the app's contact range (通讯录权限范围), or set options.contact to \"best_effort\" or \"off\"";

/// Which endpoint issues app tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AppTokenApi {
    Tenant,
    App,
}

/// Which generation exchanges codes for user tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TokenApi {
    V2,
    V1,
}

/// What to do about the directory read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Contact {
    Required,
    BestEffort,
    Off,
}

/// The Feishu / Lark handler for one tenant.
#[derive(Debug, Clone)]
pub struct Feishu {
    name: PlatformName,
    tenant: TenantId,
    app_id: AppKey,
    app_secret: AppSecret,
    open: Url,
    accounts: Url,
    app_token_api: AppTokenApi,
    token_api: TokenApi,
    contact: Contact,
    scope: Option<String>,
    department_id_type: &'static str,
    http: HttpClient,
}

fn choice<T: Copy>(config: &PlatformConfig, name: &str, choices: &[(&str, T)]) -> Result<T> {
    let value = config.option_str(name)?;
    match value {
        None => Ok(choices[0].1),
        Some(v) => choices
            .iter()
            .find(|(k, _)| *k == v)
            .map(|(_, t)| *t)
            .ok_or_else(|| {
                let names: Vec<String> = choices.iter().map(|(k, _)| format!("`{k}`")).collect();
                config.error(
                    &format!("options.{name}"),
                    format!("`{v}` is not one of {}", names.join(", ")),
                )
            }),
    }
}

impl Feishu {
    /// Builds the handler for a registration.
    pub fn build(ctx: PlatformContext<'_>) -> Result<Arc<dyn Platform>> {
        Ok(Arc::new(Self::new(ctx.config, ctx.http.clone())?))
    }

    /// Builds the handler from a tenant's configuration, validating it.
    pub fn new(config: &PlatformConfig, http: HttpClient) -> Result<Self> {
        let (open, accounts) = match choice(config, "region", &[("feishu", false), ("lark", true)])?
        {
            false => ("https://open.feishu.cn/", "https://accounts.feishu.cn/"),
            true => (
                "https://open.larksuite.com/",
                "https://accounts.larksuite.com/",
            ),
        };
        if config.app_key.as_str().trim().is_empty() {
            return Err(config.error("app_key", "must be the app's App ID (cli_…)"));
        }
        if config.app_secret.is_empty() {
            return Err(config.error("app_secret", "must not be empty"));
        }
        config.require_corp_id().map_err(|_| {
            config.error(
                "corp_id",
                "required: the organisation's tenant_key (the `tenant_key` of any user_info \
                 response); people from other tenants are refused with it",
            )
        })?;
        let scope = config
            .option_str("scope")?
            .map(|s| s.split_whitespace().collect::<Vec<_>>().join(" "))
            .filter(|s| !s.is_empty());
        Ok(Self {
            name: config.platform.clone(),
            tenant: config.tenant.clone(),
            app_id: config.app_key.clone(),
            app_secret: config.app_secret.clone(),
            open: with_slash(config.host("open", open)?),
            accounts: with_slash(config.host("accounts", accounts)?),
            app_token_api: choice(
                config,
                "app_token_api",
                &[("tenant", AppTokenApi::Tenant), ("app", AppTokenApi::App)],
            )?,
            token_api: choice(
                config,
                "token_api",
                &[("v2", TokenApi::V2), ("v1", TokenApi::V1)],
            )?,
            contact: choice(
                config,
                "contact",
                &[
                    ("required", Contact::Required),
                    ("best_effort", Contact::BestEffort),
                    ("off", Contact::Off),
                ],
            )?,
            scope,
            department_id_type: choice(
                config,
                "department_id_type",
                &[
                    ("open_department_id", "open_department_id"),
                    ("department_id", "department_id"),
                ],
            )?,
            http,
        })
    }

    fn ctx(&self, endpoint: &'static str) -> UpstreamCtx {
        UpstreamCtx::new(Some(self.tenant.clone()), self.name.clone(), endpoint)
    }

    fn url(&self, base: &Url, host: &str, path: &str) -> Result<Url> {
        base.join(path).map_err(|e| {
            Error::config(
                Some(&self.tenant),
                Some(NAME),
                format!("hosts.{host}"),
                e.to_string(),
            )
        })
    }

    /// A JSON request with the `Content-Type` Feishu documents.
    fn post_json(&self, url: Url, body: &Value) -> reqwest::RequestBuilder {
        self.http
            .request(Method::POST, url)
            .header(CONTENT_TYPE, "application/json; charset=utf-8")
            .body(body.to_string())
    }

    /// The class of a code as seen on a response with `status`, on a call authenticated with a
    /// user token (`user_token`) or not.
    fn class_at(&self, code: &UpstreamCode, status: u16, user_token: bool) -> ErrorClass {
        match self.classify(code) {
            ErrorClass::TokenInvalid if user_token => ErrorClass::UserTokenInvalid,
            ErrorClass::Other if status == 429 => ErrorClass::RateLimited,
            ErrorClass::Other if status >= 500 => ErrorClass::Transient,
            class => class,
        }
    }

    /// Sends an Open API request and checks its `{code, msg}` envelope. `user_token`: the call
    /// was authenticated with a *user* token, whose rejection means "log in again", never "the
    /// app token is bad" (which would make the core retry a step that already used a code).
    async fn open_call(
        &self,
        ctx: &UpstreamCtx,
        request: reqwest::RequestBuilder,
        user_token: bool,
    ) -> Result<UpstreamResponse> {
        let response = self.http.send(ctx, request).await?;
        let status = response.status;
        check_code(
            ctx,
            &response,
            "/code",
            "/msg",
            |c| self.class_at(c, status, user_token),
            response.header_seconds("x-ogw-ratelimit-reset"),
        )?;
        Ok(response)
    }

    /// `authen/v2/oauth/token`: success is HTTP 200 with fields at the top level; errors are the
    /// standard OAuth2 shape `{code, error, error_description}`. A refused code is
    /// [`Error::InvalidCode`], a refused refresh token [`Error::ReauthRequired`].
    async fn v2_token(&self, grant: Value, refreshing: bool) -> Result<UserToken> {
        let ctx = self.ctx("authen/v2/oauth/token");
        let url = self.url(&self.open, "open", "open-apis/authen/v2/oauth/token")?;
        let response = self.http.send(&ctx, self.post_json(url, &grant)).await?;
        let body = &response.body;
        let code = body.get("code").and_then(envelope::numeric);
        if response.status == 200 && code.unwrap_or(0) == 0 {
            return Ok(UserToken {
                access_token: AccessToken::new(require_str(&ctx, &response, "/access_token")?),
                refresh_token: str_at(body, "/refresh_token").map(RefreshToken::new),
                expires_in: seconds_at(body, "/expires_in"),
                refresh_expires_in: seconds_at(body, "/refresh_token_expires_in"),
                scope: str_at(body, "/scope"),
            });
        }
        let text = str_at(body, "/error").map(UpstreamCode::Text);
        let code = match (code, &text) {
            (Some(n), _) if n != 0 => UpstreamCode::Number(n),
            (_, Some(t)) => t.clone(),
            _ => UpstreamCode::Http(response.status),
        };
        let mut class = self.class_at(&code, response.status, true);
        if class == ErrorClass::Other
            && let Some(t) = &text
        {
            class = self.class_at(t, response.status, true);
        }
        let message = message_at(body, "/error_description");
        let retry_after = response.header_seconds("x-ogw-ratelimit-reset");
        Err(grant_error(
            fail(&ctx, &class, code, message, retry_after),
            refreshing,
        ))
    }

    /// v1 OIDC: `authen/v1/oidc/access_token` or `…/refresh_access_token` with the app token.
    async fn v1_token(
        &self,
        app_token: &AccessToken,
        grant: Value,
        refreshing: bool,
    ) -> Result<UserToken> {
        let (endpoint, path) = if refreshing {
            (
                "authen/v1/oidc/refresh_access_token",
                "open-apis/authen/v1/oidc/refresh_access_token",
            )
        } else {
            (
                "authen/v1/oidc/access_token",
                "open-apis/authen/v1/oidc/access_token",
            )
        };
        let ctx = self.ctx(endpoint);
        let url = self.url(&self.open, "open", path)?;
        let request = self
            .post_json(url, &grant)
            .header(AUTHORIZATION, format!("Bearer {}", app_token.expose()));
        let response = self
            .open_call(&ctx, request, false)
            .await
            .map_err(|e| grant_error(e, refreshing))?;
        let body = &response.body;
        Ok(UserToken {
            access_token: AccessToken::new(require_str(&ctx, &response, "/data/access_token")?),
            refresh_token: str_at(body, "/data/refresh_token").map(RefreshToken::new),
            expires_in: seconds_at(body, "/data/expires_in"),
            refresh_expires_in: seconds_at(body, "/data/refresh_expires_in"),
            scope: str_at(body, "/data/scope"),
        })
    }

    /// Code → user token → `user_info`, as an identity carrying the `user_info` body.
    async fn identify(
        &self,
        app_token: &AccessToken,
        code: &AuthCode,
        redirect_uri: Option<&Url>,
        code_verifier: Option<&str>,
    ) -> Result<Identity> {
        let user_token = match self.token_api {
            TokenApi::V2 => {
                let mut grant = json!({
                    "grant_type": "authorization_code",
                    "client_id": self.app_id.as_str(),
                    "client_secret": self.app_secret.expose(),
                    "code": code.expose(),
                });
                if let Some(obj) = grant.as_object_mut() {
                    if let Some(uri) = redirect_uri {
                        obj.insert("redirect_uri".into(), json!(uri.as_str()));
                    }
                    if let Some(verifier) = code_verifier {
                        obj.insert("code_verifier".into(), json!(verifier));
                    }
                }
                self.v2_token(grant, false).await?
            }
            TokenApi::V1 => {
                let grant = json!({"grant_type": "authorization_code", "code": code.expose()});
                self.v1_token(app_token, grant, false).await?
            }
        };
        // From here on the code is spent: nothing below may report `TokenInvalid` (the core
        // would run this step again with the same code).
        let ctx = self.ctx("authen/v1/user_info");
        let url = self.url(&self.open, "open", "open-apis/authen/v1/user_info")?;
        let request = self.http.request(Method::GET, url).header(
            AUTHORIZATION,
            format!("Bearer {}", user_token.access_token.expose()),
        );
        let info = self.open_call(&ctx, request, true).await?;
        let open_id = require_str(&ctx, &info, "/data/open_id")?;
        let tenant_key = require_str(&ctx, &info, "/data/tenant_key")?;
        let mut documents = serde_json::Map::new();
        if let Value::Object(body) = &info.body {
            for (k, v) in body {
                documents.insert(k.clone(), v.clone());
            }
        }
        Ok(Identity {
            user_id: str_at(&info.body, "/data/user_id"),
            union_id: str_at(&info.body, "/data/union_id"),
            open_id: Some(open_id),
            org_id: Some(tenant_key),
            user_ticket: None,
            user_token: Some(user_token),
            documents,
        })
    }
}

fn with_slash(mut url: Url) -> Url {
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    url
}

/// At a code (or refresh-token) exchange, a refusal that is not about the app, the network or
/// rate limits means the grant itself is unusable.
fn grant_error(e: Error, refreshing: bool) -> Error {
    let (ctx, code) = match e {
        Error::Upstream {
            ctx,
            code,
            transient: false,
            ..
        }
        | Error::InvalidCode { ctx, code }
        | Error::ReauthRequired { ctx, code } => (ctx, code),
        other => return other,
    };
    if refreshing {
        Error::ReauthRequired { ctx, code }
    } else {
        Error::InvalidCode { ctx, code }
    }
}

/// At the app-token endpoints a rejected credential is a configuration problem, not a stale
/// token.
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

#[async_trait]
impl Platform for Feishu {
    fn name(&self) -> &PlatformName {
        &self.name
    }

    fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    fn token_key(&self) -> TokenKey {
        let agent = match self.app_token_api {
            AppTokenApi::Tenant => None,
            AppTokenApi::App => Some("app_access_token"),
        };
        TokenKey::new(&self.name, &self.tenant, self.app_id.as_str(), agent)
    }

    async fn fetch_app_token(&self) -> Result<FetchedToken> {
        let (endpoint, path, field) = match self.app_token_api {
            AppTokenApi::Tenant => (
                "auth/v3/tenant_access_token/internal",
                "open-apis/auth/v3/tenant_access_token/internal",
                "/tenant_access_token",
            ),
            AppTokenApi::App => (
                "auth/v3/app_access_token/internal",
                "open-apis/auth/v3/app_access_token/internal",
                "/app_access_token",
            ),
        };
        let ctx = self.ctx(endpoint);
        let url = self.url(&self.open, "open", path)?;
        let body = json!({"app_id": self.app_id.as_str(), "app_secret": self.app_secret.expose()});
        let response = self
            .open_call(&ctx, self.post_json(url, &body), false)
            .await
            .map_err(secret_rejected)?;
        let token = AccessToken::new(require_str(&ctx, &response, field)?);
        // `expire` is the token's *remaining* lifetime (Feishu hands out the same token until
        // 30 minutes are left), so it is taken as reported, never assumed to be 7200 s.
        let expires_in =
            seconds_at(&response.body, "/expire").ok_or_else(|| Error::BadResponse {
                ctx: ctx.clone(),
                status: response.status,
                kind: unilogin_core::error::BadBody::Malformed,
                excerpt: "missing or non-positive `expire`".into(),
            })?;
        Ok(FetchedToken { token, expires_in })
    }

    async fn identify_h5(&self, app_token: &AccessToken, code: &AuthCode) -> Result<Identity> {
        self.identify(app_token, code, None, None).await
    }

    async fn exchange_web_code(
        &self,
        app_token: &AccessToken,
        callback: &WebCallback<'_>,
    ) -> Result<Identity> {
        self.identify(
            app_token,
            callback.code,
            Some(callback.redirect_uri),
            callback.code_verifier,
        )
        .await
    }

    async fn user_detail(&self, app_token: &AccessToken, identity: &Identity) -> Result<Value> {
        if self.contact == Contact::Off {
            return Ok(json!({}));
        }
        let ctx = self.ctx("contact/v3/users");
        let Some(open_id) = identity.open_id.as_deref() else {
            return Err(Error::NotInTenant { ctx });
        };
        let mut url = self.url(&self.open, "open", "open-apis/contact/v3/users/")?;
        url.path_segments_mut()
            .map_err(|()| {
                Error::config(
                    Some(&self.tenant),
                    Some(NAME),
                    "hosts.open",
                    "cannot be a base",
                )
            })?
            .pop_if_empty()
            .push(open_id);
        let request = self
            .http
            .request(Method::GET, url)
            .query(&[
                ("user_id_type", "open_id"),
                ("department_id_type", self.department_id_type),
            ])
            .header(AUTHORIZATION, format!("Bearer {}", app_token.expose()));
        match self.open_call(&ctx, request, false).await {
            Ok(response) => {
                let user = response
                    .body
                    .pointer("/data/user")
                    .cloned()
                    .ok_or_else(|| Error::BadResponse {
                        ctx: ctx.clone(),
                        status: response.status,
                        kind: unilogin_core::error::BadBody::Malformed,
                        excerpt: "missing `/data/user`".into(),
                    })?;
                Ok(json!({ "contact": user }))
            }
            Err(e @ Error::Misconfigured { .. }) if self.contact == Contact::BestEffort => {
                tracing::warn!(error = %e, "directory read refused; continuing without it (options.contact = best_effort)");
                Ok(json!({}))
            }
            Err(e) => Err(e),
        }
    }

    fn authorize_url(&self, request: &AuthorizeRequest<'_>) -> Result<Url> {
        // Inside the Feishu client the same URL serves the H5 flow too (consent is skipped).
        let mut url = self.url(&self.accounts, "accounts", "open-apis/authen/v1/authorize")?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("client_id", self.app_id.as_str())
                .append_pair("response_type", "code")
                .append_pair("redirect_uri", request.redirect_uri.as_str());
            if let Some(scope) = &self.scope {
                q.append_pair("scope", scope);
            }
            q.append_pair("state", request.state.expose());
            // v1 exchanges cannot send a verifier, so PKCE is only requested with v2.
            if let (Some(challenge), TokenApi::V2) = (request.code_challenge, self.token_api) {
                q.append_pair("code_challenge", challenge)
                    .append_pair("code_challenge_method", "S256");
            }
        }
        Ok(url)
    }

    /// One upstream refresh. Refresh tokens are single use: call it through
    /// [`Sso::refresh_user_token`](unilogin_core::sso::Sso::refresh_user_token), which runs
    /// concurrent refreshes of one token once across replicas.
    async fn refresh_user_token(&self, refresh_token: &RefreshToken) -> Result<UserToken> {
        match self.token_api {
            TokenApi::V2 => {
                let grant = json!({
                    "grant_type": "refresh_token",
                    "client_id": self.app_id.as_str(),
                    "client_secret": self.app_secret.expose(),
                    "refresh_token": refresh_token.expose(),
                });
                self.v2_token(grant, true).await
            }
            TokenApi::V1 => {
                // The refresh step gets no cached app token, so v1 costs one token call here.
                let app_token = self.fetch_app_token().await?.token;
                let grant = json!({
                    "grant_type": "refresh_token",
                    "refresh_token": refresh_token.expose(),
                });
                self.v1_token(&app_token, grant, true).await
            }
        }
    }

    fn classify(&self, code: &UpstreamCode) -> ErrorClass {
        match code {
            UpstreamCode::Number(99991661 | 99991663 | 99991664 | 99991671) => {
                ErrorClass::TokenInvalid
            }
            UpstreamCode::Number(99991668 | 99991677) => ErrorClass::UserTokenInvalid,
            UpstreamCode::Number(99991400) => ErrorClass::RateLimited,
            UpstreamCode::Number(99991401) => ErrorClass::Misconfigured(IP_HINT),
            UpstreamCode::Number(99991672) => ErrorClass::Misconfigured(SCOPE_HINT),
            UpstreamCode::Number(99991676) => ErrorClass::Misconfigured(TOKEN_PERMISSION_HINT),
            UpstreamCode::Number(99991679) => ErrorClass::Misconfigured(USER_SCOPE_HINT),
            UpstreamCode::Number(20010) => ErrorClass::Misconfigured(AVAILABILITY_HINT),
            UpstreamCode::Number(10003 | 10014) => ErrorClass::Misconfigured(SECRET_HINT),
            UpstreamCode::Number(41050) => ErrorClass::Misconfigured(CONTACT_RANGE_HINT),
            UpstreamCode::Number(20003) => ErrorClass::InvalidCode,
            UpstreamCode::Number(2200) => ErrorClass::Transient,
            UpstreamCode::Text(t) => match t.as_str() {
                "invalid_grant" => ErrorClass::InvalidCode,
                "invalid_client" | "unauthorized_client" => ErrorClass::Misconfigured(SECRET_HINT),
                "invalid_scope" => ErrorClass::Misconfigured(USER_SCOPE_HINT),
                "server_error" | "temporarily_unavailable" => ErrorClass::Transient,
                _ => ErrorClass::Other,
            },
            UpstreamCode::Http(status) => envelope::class_of_status(*status),
            _ => ErrorClass::Other,
        }
    }
}
