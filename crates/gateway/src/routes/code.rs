//! `POST /auth/{tenant}/{platform}/code`: the H5 login-free exchange of a code from the platform
//! client's JSAPI, `{"code": "…"}` → profile and session.
//!
//! Only platforms whose registration declares a JSAPI login redeem a code this way: any other
//! platform's codes also arrive on browser redirects, so the core refuses them with
//! [`Error::RedirectLoginRequired`](unilogin::Error::RedirectLoginRequired) (HTTP 400
//! `redirect_login_required`) before any upstream call — they are redeemed only by the
//! redirect login they belong to, with its state and PKCE verifier.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use unilogin::web_login::MAX_CODE_LEN;
use unilogin::{AuthCode, Flow, UserProfile};

use super::{Target, no_store};
use crate::app::Gateway;
use crate::error::ApiError;

/// Body of `POST /auth/{tenant}/{platform}/code`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeBody {
    /// The code from the platform client's JSAPI.
    pub code: String,
}

/// Answer of `POST /auth/{tenant}/{platform}/code`.
#[derive(Debug, Serialize)]
pub struct CodeAnswer {
    /// The unified profile.
    pub profile: UserProfile,
    /// The session token (compact JWT; also set as the session cookie).
    pub token: String,
    /// Always `Bearer`.
    pub token_type: &'static str,
    /// Seconds until the token expires.
    pub expires_in: u64,
    /// Granted scopes, space-separated.
    pub scope: String,
}

/// Whether `code` has the shape of a platform code (DingTalk, Feishu: 32 hex or alphanumeric
/// characters; every platform's: URL-safe, well under [`MAX_CODE_LEN`]).
pub fn plausible_code(code: &str) -> bool {
    !code.is_empty()
        && code.len() <= MAX_CODE_LEN
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~'))
}

/// `POST /auth/{tenant}/{platform}/code`.
pub async fn code(
    State(gw): State<Gateway>,
    target: Target,
    body: Result<Json<CodeBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let p = &target.prepared;
    let Json(body) = body.map_err(|e| {
        match e.status() {
            StatusCode::PAYLOAD_TOO_LARGE => {
                ApiError::new(e.status(), "payload_too_large", e.body_text())
            }
            // A wrongly typed field is a bad request like malformed JSON (not an undocumented 422).
            StatusCode::UNPROCESSABLE_ENTITY => ApiError::bad_request("bad_request", e.body_text()),
            status => ApiError::new(status, "bad_request", e.body_text()),
        }
    })?;
    // Cheap refusal before any upstream call: platform codes are short URL-safe tokens.
    if !plausible_code(&body.code) {
        gw.count(p, Flow::H5, "bad_request");
        return Err(ApiError::bad_request(
            "bad_request",
            format!("`code` must be 1 to {MAX_CODE_LEN} characters from `A-Z a-z 0-9 - _ . ~`"),
        ));
    }
    let code = AuthCode::new(body.code);
    let login = gw.run_login(p, Flow::H5, p.login_with_code(&code)).await?;
    let (session, cookie) = gw.session_for(p, &login.profile).await?;
    let expires_in = session
        .expires_at
        .duration_since(Gateway::now())
        .unwrap_or(Duration::ZERO)
        .as_secs();
    let mut r = Json(CodeAnswer {
        profile: login.profile,
        token: session.token,
        token_type: "Bearer",
        expires_in,
        scope: session.claims.scope,
    })
    .into_response();
    r.headers_mut().insert(header::SET_COOKIE, cookie);
    Ok(no_store(r))
}
