//! The token endpoint: the grants, client authentication (RFC 6749 §2.3) and its errors as
//! typed errors (§5.2).

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use reqwest::Method;
use reqwest::header::{ACCEPT, AUTHORIZATION};
use serde::Deserialize;
use serde_json::Value;
use unilogin_core::envelope::{self, fail, message_at, str_at};
use unilogin_core::error::BadBody;
use unilogin_core::http::UpstreamResponse;
use unilogin_core::platform::UserToken;
use unilogin_core::{
    AccessToken, Error, ErrorClass, RefreshToken, Result, UpstreamCode, UpstreamCtx,
};

use super::Oidc;
use super::discovery::Endpoints;
use super::options::AuthMethod;

const CLIENT_HINT: &str = "the provider rejected the client: check app_key (client id), app_secret (client secret), options.token_auth_method and the redirect URI registered with the provider";
pub(super) const SCOPE_HINT: &str = "the provider refused the requested scopes or grant: check options.scopes and the grant types enabled for the client";

/// A successful token response.
#[derive(Debug, Deserialize)]
pub(super) struct TokenResponse {
    pub access_token: String,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    pub id_token: Option<String>,
    #[serde(default)]
    expires_in: Option<Value>,
}

impl TokenResponse {
    /// The user's token set (`expires_in` a number or a numeric string; absent or `0`: unknown).
    pub(super) fn user_token(&self) -> UserToken {
        UserToken {
            access_token: AccessToken::new(self.access_token.clone()),
            refresh_token: self.refresh_token.clone().map(RefreshToken::new),
            expires_in: self
                .expires_in
                .as_ref()
                .and_then(envelope::numeric)
                .filter(|s| *s > 0)
                .map(|s| Duration::from_secs(s as u64)),
            refresh_expires_in: None,
            scope: self.scope.clone(),
        }
    }
}

impl Oidc {
    /// Calls the token endpoint with a grant, authenticating the client.
    pub(super) async fn token_request(
        &self,
        ep: &Endpoints,
        mut form: Vec<(&'static str, String)>,
        refreshing: bool,
    ) -> Result<TokenResponse> {
        let ctx = self.base.ctx("token");
        let client_id = self.base.app_key.as_str();
        let mut request = self
            .base
            .http
            .request(Method::POST, ep.token.clone())
            .header(ACCEPT, "application/json");
        match self.options.auth {
            AuthMethod::Basic => {
                let user = form_urlencode(client_id);
                let pass = form_urlencode(self.client_secret.expose());
                let basic = STANDARD.encode(format!("{user}:{pass}"));
                request = request.header(AUTHORIZATION, format!("Basic {basic}"));
            }
            AuthMethod::Post => {
                form.push(("client_id", client_id.to_string()));
                form.push(("client_secret", self.client_secret.expose().to_string()));
            }
            AuthMethod::None => form.push(("client_id", client_id.to_string())),
        }
        let response = self.base.http.send(&ctx, request.form(&form)).await?;
        if response.is_success() && response.body.get("access_token").is_some() {
            let token: TokenResponse = response.decode(&ctx)?;
            if let Some(kind) = &token.token_type
                && !kind.eq_ignore_ascii_case("bearer")
            {
                return Err(Error::BadResponse {
                    ctx,
                    status: response.status,
                    kind: BadBody::Malformed,
                    excerpt: format!(
                        "token_type `{}` is not Bearer",
                        kind.chars().take(32).collect::<String>()
                    ),
                });
            }
            return Ok(token);
        }
        match str_at(&response.body, "/error") {
            Some(code) => Err(fail(
                &ctx,
                &rfc6749_class(&code, refreshing),
                UpstreamCode::Text(code),
                message_at(&response.body, "/error_description"),
                response.header_seconds("retry-after"),
            )),
            None if response.is_success() => Err(Error::BadResponse {
                ctx,
                status: response.status,
                kind: BadBody::Malformed,
                excerpt: "no access_token and no error in the token response".into(),
            }),
            None => Err(http_error(&ctx, &response)),
        }
    }
}

/// The class of an RFC 6749 §5.2 `error` (and the common extensions).
fn rfc6749_class(code: &str, refreshing: bool) -> ErrorClass {
    match code {
        "invalid_grant" if refreshing => ErrorClass::UserTokenInvalid,
        "invalid_grant" => ErrorClass::InvalidCode,
        "invalid_client" | "unauthorized_client" => ErrorClass::Misconfigured(CLIENT_HINT),
        "invalid_scope" | "unsupported_grant_type" | "access_denied" => {
            ErrorClass::Misconfigured(SCOPE_HINT)
        }
        "temporarily_unavailable" | "server_error" => ErrorClass::Transient,
        "slow_down" => ErrorClass::RateLimited,
        _ => ErrorClass::Other,
    }
}

/// The error of a non-2xx response without an OAuth2 `error` member.
pub(super) fn http_error(ctx: &UpstreamCtx, response: &UpstreamResponse) -> Error {
    fail(
        ctx,
        &envelope::class_of_status(response.status),
        UpstreamCode::Http(response.status),
        message_at(&response.body, "/error_description"),
        response.header_seconds("retry-after"),
    )
}

/// `application/x-www-form-urlencoded` encoding of one value (RFC 6749 §2.3.1 applies it to
/// the client id and secret before HTTP Basic).
fn form_urlencode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}
