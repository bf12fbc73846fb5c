//! The HTTP calls and DingTalk's two envelopes: `oapi` `{errcode, errmsg}` (with errcode 88's
//! `sub_code` and the per-IP ban pages) and `api` HTTP-status errors with string `code`s.

use std::time::Duration;

use reqwest::{Method, RequestBuilder};
use serde_json::{Value, json};
use unilogin_core::ErrorClass::{InvalidCode, Other, RateLimited, TokenInvalid, UserTokenInvalid};
use unilogin_core::envelope::{check_code, fail, message_at, numeric, require_str};
use unilogin_core::envelope::{seconds_at, str_at};
use unilogin_core::error::BadBody;
use unilogin_core::http::UpstreamResponse as Response;
use unilogin_core::platform::{UserToken, sdk::secret_rejected};
use unilogin_core::token_cache::FetchedToken;
use unilogin_core::{AccessToken, Error, RefreshToken, Result, UpstreamCode, UpstreamCtx};

use crate::DingTalk;
use crate::error::{SECRET_HINT, classify, with_required_scopes};

/// What authenticates an `api` request, which decides what a refusal means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum By {
    App,
    Code,
    Refresh,
    User,
}

/// The per-IP ban (HTML page) lasts five minutes.
const BAN: Duration = Duration::from_secs(300);

impl DingTalk {
    /// A fresh app token from `gettoken` or, with `app_token_api: v1`, `v1.0/oauth2/accessToken`.
    pub(crate) async fn app_token(&self) -> Result<FetchedToken> {
        let (key, secret) = (self.base.app_key.as_str(), self.app_secret.expose());
        let (ctx, response, token_at, ttl_at) = if self.app_token_v1 {
            let ctx = self.base.ctx("v1.0/oauth2/accessToken");
            let body = json!({ "appKey": key, "appSecret": secret });
            let request = self.base.request(Method::POST, "api", ctx.endpoint)?;
            let response = self.api(&ctx, request.json(&body), By::App).await;
            (ctx, response, "/accessToken", "/expireIn")
        } else {
            let ctx = self.base.ctx("gettoken");
            let query = [("appkey", key), ("appsecret", secret)];
            let request = self.base.request(Method::GET, "oapi", ctx.endpoint)?;
            let response = self.oapi(&ctx, request.query(&query)).await;
            (ctx, response, "/access_token", "/expires_in")
        };
        let response = response.map_err(secret_rejected(SECRET_HINT))?;
        let token = AccessToken::new(require_str(&ctx, &response, token_at)?);
        let expires_in = seconds_at(&response.body, ttl_at).unwrap_or(Duration::from_secs(7200));
        Ok(FetchedToken { token, expires_in })
    }

    /// `POST` to an `oapi` path (also the endpoint's name) with the app token and a JSON body.
    pub(crate) async fn topapi(
        &self,
        token: &AccessToken,
        path: &'static str,
        body: &Value,
    ) -> Result<(UpstreamCtx, Response)> {
        let ctx = self.base.ctx(path);
        let query = [("access_token", token.expose())];
        let request = self.base.request(Method::POST, "oapi", path)?;
        let response = self.oapi(&ctx, request.query(&query).json(body)).await?;
        Ok((ctx, response))
    }

    /// `userAccessToken` with a code or refresh grant: the user's token set and `corpId`.
    pub(crate) async fn user_token(&self, by: By, v: &str) -> Result<(UserToken, Option<String>)> {
        let (kind, field) = match by {
            By::Refresh => ("refresh_token", "refreshToken"),
            _ => ("authorization_code", "code"),
        };
        let (id, secret) = (self.base.app_key.as_str(), self.app_secret.expose());
        let grant = json!({ "clientId": id, "clientSecret": secret, "grantType": kind, field: v });
        let ctx = self.base.ctx("v1.0/oauth2/userAccessToken");
        let request = self.base.request(Method::POST, "api", ctx.endpoint)?;
        let response = self.api(&ctx, request.json(&grant), by).await?;
        let body = &response.body;
        let token = UserToken {
            access_token: AccessToken::new(require_str(&ctx, &response, "/accessToken")?),
            refresh_token: str_at(body, "/refreshToken").map(RefreshToken::new),
            expires_in: seconds_at(body, "/expireIn"),
            refresh_expires_in: None,
            scope: None,
        };
        Ok((token, str_at(body, "/corpId")))
    }

    /// `v1.0/contact/users/me` with the user's token.
    pub(crate) async fn users_me(&self, token: &AccessToken) -> Result<(UpstreamCtx, Response)> {
        let ctx = self.base.ctx("v1.0/contact/users/me");
        let request = self.base.request(Method::GET, "api", ctx.endpoint)?;
        let request = request.header("x-acs-dingtalk-access-token", token.expose());
        let response = self.api(&ctx, request, By::User).await?;
        Ok((ctx, response))
    }

    /// Sends an `oapi` request and checks its envelope: errcode (88: `sub_code`), ban pages.
    pub(crate) async fn oapi(&self, ctx: &UpstreamCtx, req: RequestBuilder) -> Result<Response> {
        let banned = |code, wait| fail(ctx, &RateLimited, code, "", Some(wait));
        let response = match self.base.http.send(ctx, req).await {
            Err(Error::BadResponse {
                kind: BadBody::Html,
                status,
                ..
            }) if status < 500 => {
                return Err(banned(UpstreamCode::Http(status), BAN));
            }
            other => other?,
        };
        let body = &response.body;
        if body.get("punish").is_some() {
            let minutes = body.get("wait").and_then(numeric).unwrap_or(5).clamp(1, 60) as u64;
            let wait = Duration::from_secs(minutes * 60);
            return Err(banned(UpstreamCode::Text("punish".into()), wait));
        }
        let errcode = body.get("errcode").and_then(numeric);
        if let (Some(88), Some(sub)) = (errcode, str_at(body, "/sub_code")) {
            let code = UpstreamCode::WithSub(88, sub);
            let message = message_at(body, "/sub_msg");
            return Err(fail(ctx, &classify(&code), code, message, None));
        }
        check_code(ctx, &response, "/errcode", "/errmsg", classify, None).map(|()| response)
    }

    /// Sends an `api.dingtalk.com` request: success is HTTP 2xx, errors carry a string `code`.
    pub(crate) async fn api(
        &self,
        ctx: &UpstreamCtx,
        req: RequestBuilder,
        by: By,
    ) -> Result<Response> {
        let response = self.base.http.send(ctx, req).await?;
        if response.is_success() {
            return Ok(response);
        }
        let (body, status) = (&response.body, response.status);
        let code = str_at(body, "/code").map_or(UpstreamCode::Http(status), UpstreamCode::Text);
        // A 4xx on the code exchange means the code (or refresh token) is unusable, unless
        // DingTalk names another cause (set-up, limits; any `Forbidden.*` is about the app).
        let spent = status < 500 && !code.to_string().starts_with("Forbidden.");
        let class = match (classify(&code), by) {
            // A rejected user token means the user must log in again, not a bad app token.
            (TokenInvalid, By::User) => UserTokenInvalid,
            (Other | TokenInvalid, By::Code) if spent => InvalidCode,
            (Other | TokenInvalid, By::Refresh) if spent => UserTokenInvalid,
            (class, _) => class,
        };
        let error = fail(ctx, &class, code, message_at(body, "/message"), None);
        Err(with_required_scopes(error, body))
    }
}
