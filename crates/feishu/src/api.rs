//! The HTTP layer: Feishu's error codes, the Open API envelope, the v2 OAuth2 shape, the
//! user-token exchanges (v2 and v1) and `user_info`.

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use reqwest::{Method, RequestBuilder};
use serde_json::{Value, json};
use unilogin_core::envelope::{check_code, class_of_status, fail, message_at, numeric};
use unilogin_core::envelope::{malformed, require_str, seconds_at, str_at};
use unilogin_core::http::UpstreamResponse;
use unilogin_core::platform::{Identity, UserToken, WebCallback, sdk::secret_rejected};
use unilogin_core::token_cache::FetchedToken;
use unilogin_core::{AccessToken, AuthCode, Error, ErrorClass, RefreshToken, Result};
use unilogin_core::{UpstreamCode, UpstreamCtx};

use crate::{Feishu, TokenApi};

pub(crate) const SECRET_HINT: &str =
    "Feishu rejected the App ID / App Secret pair: check app_key (cli_…) and app_secret";
const IP_HINT: &str = "the server's egress IP is denied by the app's IP whitelist: add it in the Feishu developer console (安全设置 → IP 白名单)";
const SCOPE_HINT: &str = "the app lacks a permission this call needs: enable it in the Feishu developer console (权限管理), e.g. contact:user.base:readonly for the directory, then publish a new app version";
const TOKEN_PERMISSION_HINT: &str = "the access token has no permission for this API: enable the permission (权限管理) and publish a new app version";
const USER_SCOPE_HINT: &str = "the user has not granted a scope this call needs: add it to options.scope so the authorize page asks for it";
pub(crate) const AVAILABILITY_HINT: &str = "the user may not use this app: add them to the app's availability range (可用范围) in the Feishu developer console";
const CONTACT_RANGE_HINT: &str = "the directory does not show this user to the app: widen the app's contact range (通讯录权限范围), or set options.contact to \"best_effort\" or \"off\"";

/// The class of a Feishu code (numeric, v2 OAuth2 text, or a bare HTTP status).
fn classify(code: &UpstreamCode) -> ErrorClass {
    use ErrorClass::*;
    match code {
        UpstreamCode::Number(99991661 | 99991663 | 99991664 | 99991671) => TokenInvalid,
        UpstreamCode::Number(99991668 | 99991677) => UserTokenInvalid,
        UpstreamCode::Number(99991400) => RateLimited,
        UpstreamCode::Number(99991401) => Misconfigured(IP_HINT),
        UpstreamCode::Number(99991672) => Misconfigured(SCOPE_HINT),
        UpstreamCode::Number(99991676) => Misconfigured(TOKEN_PERMISSION_HINT),
        UpstreamCode::Number(99991679) => Misconfigured(USER_SCOPE_HINT),
        UpstreamCode::Number(20010) => Misconfigured(AVAILABILITY_HINT),
        UpstreamCode::Number(10003 | 10014) => Misconfigured(SECRET_HINT),
        UpstreamCode::Number(41050) => Misconfigured(CONTACT_RANGE_HINT),
        UpstreamCode::Number(crate::isv::TICKET_INVALID) => Misconfigured(crate::isv::TICKET_HINT),
        UpstreamCode::Number(20003) => InvalidCode,
        UpstreamCode::Number(2200) => Transient,
        UpstreamCode::Text(t) => match t.as_str() {
            "invalid_grant" => InvalidCode,
            "invalid_client" | "unauthorized_client" => Misconfigured(SECRET_HINT),
            "invalid_scope" => Misconfigured(USER_SCOPE_HINT),
            "server_error" | "temporarily_unavailable" => Transient,
            _ => Other,
        },
        UpstreamCode::Http(status) => class_of_status(*status),
        _ => Other,
    }
}

/// The class of `code` on a response with `status`. On a user-token call (`user_token`) a bad
/// token means "log in again", never "retry with a new app token" (the code is spent).
pub(crate) fn class_at(code: &UpstreamCode, status: u16, user_token: bool) -> ErrorClass {
    match classify(code) {
        ErrorClass::TokenInvalid if user_token => ErrorClass::UserTokenInvalid,
        ErrorClass::Other if status == 429 => ErrorClass::RateLimited,
        ErrorClass::Other if status >= 500 => ErrorClass::Transient,
        class => class,
    }
}

/// `authen/v2/oauth/token` succeeds with HTTP 200 (fields at the top level) and fails with the
/// OAuth2 shape `{code, error, error_description}`.
fn check_v2(ctx: &UpstreamCtx, response: &UpstreamResponse) -> Result<()> {
    let (body, status) = (&response.body, response.status);
    let code = body.get("code").and_then(numeric);
    if status == 200 && code.unwrap_or(0) == 0 {
        return Ok(());
    }
    let text = str_at(body, "/error").map(UpstreamCode::Text);
    let code = match (code, &text) {
        (Some(n), _) if n != 0 => UpstreamCode::Number(n),
        (_, Some(t)) => t.clone(),
        _ => UpstreamCode::Http(status),
    };
    let mut class = class_at(&code, status, true);
    if let (ErrorClass::Other, Some(t)) = (&class, &text) {
        class = class_at(t, status, true);
    }
    let message = message_at(body, "/error_description");
    let retry_after = response.header_seconds("x-ogw-ratelimit-reset");
    Err(fail(ctx, &class, code, message, retry_after))
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
    match refreshing {
        true => Error::ReauthRequired { ctx, code },
        false => Error::InvalidCode { ctx, code },
    }
}

impl Feishu {
    /// A fresh `tenant_access_token`, or with `app` the `app_access_token` (self-built app).
    pub(crate) async fn fetch_token(&self, app: bool) -> Result<FetchedToken> {
        let (kind, endpoint) = match app {
            true => ("/app_access_token", "auth/v3/app_access_token/internal"),
            false => (
                "/tenant_access_token",
                "auth/v3/tenant_access_token/internal",
            ),
        };
        let ctx = self.base.ctx(endpoint);
        let (id, secret) = (self.base.app_key.as_str(), self.app_secret.expose());
        let request = self.post_json(endpoint, &json!({"app_id": id, "app_secret": secret}))?;
        let response = self.open_call(&ctx, request, None, false).await;
        let response = response.map_err(secret_rejected(SECRET_HINT))?;
        let token = AccessToken::new(require_str(&ctx, &response, kind)?);
        // `expire` is the *remaining* lifetime (the same token is reissued until 30 min are left).
        let expires_in = seconds_at(&response.body, "/expire")
            .ok_or_else(|| malformed(&ctx, &response, "missing or non-positive `expire`"))?;
        Ok(FetchedToken { token, expires_in })
    }

    /// A JSON `POST` to `open-apis/<endpoint>` with the `Content-Type` Feishu documents.
    pub(crate) fn post_json(&self, endpoint: &str, body: &Value) -> Result<RequestBuilder> {
        let path = format!("open-apis/{endpoint}");
        let request = self.base.request(Method::POST, "open", &path)?;
        let request = request.header(CONTENT_TYPE, "application/json; charset=utf-8");
        Ok(request.body(body.to_string()))
    }

    /// Sends an Open API request with bearer `token`; checks its `{code, msg}` ([`class_at`]).
    pub(crate) async fn open_call(
        &self,
        ctx: &UpstreamCtx,
        mut request: RequestBuilder,
        token: Option<&AccessToken>,
        user_token: bool,
    ) -> Result<UpstreamResponse> {
        if let Some(token) = token {
            request = request.header(AUTHORIZATION, format!("Bearer {}", token.expose()));
        }
        let response = self.base.http.send(ctx, request).await?;
        let status = response.status;
        let reset = response.header_seconds("x-ogw-ratelimit-reset");
        let classify = |c: &UpstreamCode| class_at(c, status, user_token);
        check_code(ctx, &response, "/code", "/msg", classify, reset)?;
        Ok(response)
    }

    /// A grant (code or refresh token) → user token set, with the app's credentials (v2) or
    /// the app token (v1); a refused grant is `InvalidCode` (`ReauthRequired` when `refreshing`).
    pub(crate) async fn user_token(
        &self,
        app_token: Option<&AccessToken>,
        mut grant: Value,
        refreshing: bool,
    ) -> Result<UserToken> {
        let (endpoint, at) = match (self.token_api, refreshing) {
            (TokenApi::V2, _) => ("authen/v2/oauth/token", ""),
            (TokenApi::V1, false) => ("authen/v1/oidc/access_token", "/data"),
            (TokenApi::V1, true) => ("authen/v1/oidc/refresh_access_token", "/data"),
        };
        let ctx = self.base.ctx(endpoint);
        let response = match self.token_api {
            TokenApi::V2 => {
                grant["client_id"] = json!(self.base.app_key.as_str());
                grant["client_secret"] = json!(self.app_secret.expose());
                let request = self.post_json(endpoint, &grant)?;
                let response = self.base.http.send(&ctx, request).await?;
                check_v2(&ctx, &response).map_err(|e| grant_error(e, refreshing))?;
                response
            }
            TokenApi::V1 => {
                let token = self.base.app_token(app_token)?;
                let request = self.post_json(endpoint, &grant)?;
                let result = self.open_call(&ctx, request, Some(token), false).await;
                result.map_err(|e| grant_error(e, refreshing))?
            }
        };
        let (body, field) = (&response.body, |f: &str| format!("{at}/{f}"));
        // v2 names the refresh token's lifetime `refresh_token_expires_in`, v1 `refresh_expires_in`.
        let refresh_ttl = seconds_at(body, &field("refresh_token_expires_in"));
        Ok(UserToken {
            access_token: AccessToken::new(require_str(&ctx, &response, &field("access_token"))?),
            refresh_token: str_at(body, &field("refresh_token")).map(RefreshToken::new),
            expires_in: seconds_at(body, &field("expires_in")),
            refresh_expires_in: refresh_ttl.or(seconds_at(body, &field("refresh_expires_in"))),
            scope: str_at(body, &field("scope")),
        })
    }

    /// Code → user token → `user_info`. `web`: the redirect login of the code, whose
    /// `redirect_uri` and PKCE verifier v2 sends (v1 takes neither: not PKCE-bound).
    pub(crate) async fn identify(
        &self,
        app_token: Option<&AccessToken>,
        code: &AuthCode,
        web: Option<&WebCallback<'_>>,
    ) -> Result<Identity> {
        if let Some(store) = &self.isv {
            store.org(&self.base)?;
        }
        let mut grant = json!({"grant_type": "authorization_code", "code": code.expose()});
        if let (Some(web), TokenApi::V2) = (web, self.token_api) {
            grant["redirect_uri"] = json!(web.redirect_uri.as_str());
            grant["code_verifier"] = json!(web.code_verifier);
        }
        let user_token = self.user_token(app_token, grant, false).await?;
        // From here on the code is spent: nothing below may report `TokenInvalid` (the core
        // would run this step again with the same code).
        let ctx = self.base.ctx("authen/v1/user_info");
        let path = "open-apis/authen/v1/user_info";
        let request = self.base.request(Method::GET, "open", path)?;
        let token = Some(&user_token.access_token);
        let info = self.open_call(&ctx, request, token, true).await?;
        // `org_id` is the membership check: the core refuses a `tenant_key` other than the
        // entry's `corp_id` (for a store app, the installing tenant's) before the directory.
        Ok(Identity {
            open_id: Some(require_str(&ctx, &info, "/data/open_id")?),
            org_id: Some(require_str(&ctx, &info, "/data/tenant_key")?),
            user_id: str_at(&info.body, "/data/user_id"),
            union_id: str_at(&info.body, "/data/union_id"),
            user_token: Some(user_token),
            documents: info.body.as_object().cloned().unwrap_or_default(),
            ..Identity::default()
        })
    }
}
