//! `GET|POST /oidc/userinfo` (OIDC Core §5.3, RFC 6750).
//!
//! The access token comes in `Authorization: Bearer` or, on POST, in the form body
//! (`access_token`), never both. It is verified with the access-token keys (signature, issuer,
//! expiry, `aud` a configured client), then against the revocation list, then its grant must
//! still exist: the answer is the claims the grant's scopes released, narrowed to the token's
//! scope. Failures answer 401 with `WWW-Authenticate: Bearer error="invalid_token"`.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Value, json};
use unilogin_axum::session::SessionIssuer;

use super::{Params, is_form, json_no_store};
use crate::claims::narrow;
use crate::error::ProviderError;
use crate::provider::Provider;

/// `GET /oidc/userinfo`.
pub(crate) async fn userinfo_get(State(p): State<Provider>, headers: HeaderMap) -> Response {
    respond(&p, bearer(&headers, None)).await
}

/// `POST /oidc/userinfo`.
pub(crate) async fn userinfo_post(
    State(p): State<Provider>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let form = if is_form(&headers) {
        match std::str::from_utf8(&body)
            .map_err(|_| ProviderError::InvalidRequest("the body is not UTF-8".into()))
            .and_then(Params::parse)
        {
            Ok(p) => Some(p),
            Err(e) => return bearer_error(&e),
        }
    } else {
        None
    };
    respond(&p, bearer(&headers, form.as_ref())).await
}

/// The description of a request without any token: answered with a bare `Bearer` challenge
/// (RFC 6750 §3.1: no error code when no authentication was attempted).
const NO_TOKEN: &str = "no access token";

/// The token from the header or the form (RFC 6750 §2.1, §2.2).
fn bearer(headers: &HeaderMap, form: Option<&Params>) -> Result<String, ProviderError> {
    let header_token = match headers.get(header::AUTHORIZATION) {
        None => None,
        Some(v) => {
            let text = v
                .to_str()
                .map_err(|_| ProviderError::InvalidRequest("malformed Authorization".into()))?;
            match text.split_once(' ') {
                Some((scheme, token)) if scheme.eq_ignore_ascii_case("bearer") => {
                    Some(token.trim().to_string())
                }
                _ => {
                    return Err(ProviderError::InvalidRequest(
                        "the Authorization scheme must be Bearer".into(),
                    ));
                }
            }
        }
    };
    let form_token = form.and_then(|f| f.get("access_token")).map(str::to_string);
    match (header_token, form_token) {
        (Some(_), Some(_)) => Err(ProviderError::InvalidRequest(
            "the access token is given twice".into(),
        )),
        (Some(t), None) | (None, Some(t)) => Ok(t),
        (None, None) => Err(ProviderError::InvalidToken(NO_TOKEN.into())),
    }
}

async fn respond(p: &Provider, token: Result<String, ProviderError>) -> Response {
    match token {
        Ok(token) => match claims(p, &token).await {
            Ok(body) => json_no_store(StatusCode::OK, body),
            Err(e) => bearer_error(&e),
        },
        Err(e) => bearer_error(&e),
    }
}

/// The `aud` of a compact JWT, read without verifying (only to choose the verifier).
fn unverified_aud(token: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    v.get("aud")?.as_str().map(str::to_string)
}

async fn claims(p: &Provider, token: &str) -> Result<Value, ProviderError> {
    let invalid = |why: &str| ProviderError::InvalidToken(why.into());
    let aud = unverified_aud(token).ok_or_else(|| invalid("malformed token"))?;
    let client = p
        .inner
        .clients
        .client(&aud)
        .ok_or_else(|| invalid("the token's client is unknown"))?;
    let access = &p.inner.access;
    let verifier = SessionIssuer::new(
        access.keys().clone(),
        access.issuer(),
        client.client_id.clone(),
        access.ttl(),
    );
    let verified = verifier
        .verify(token)
        .map_err(|e| invalid(&e.to_string()))?;
    match p.inner.revocations.check_claims(&verified).await {
        Ok(false) => {}
        Ok(true) => return Err(invalid("token revoked")),
        Err(_) => {
            return Err(ProviderError::TemporarilyUnavailable(
                "the revocation list is unreachable".into(),
            ));
        }
    }
    if !verified.has_scope("openid") {
        return Err(ProviderError::InvalidToken(
            "the token was not issued with openid".into(),
        ));
    }
    let grant_id = verified
        .jti
        .split_once('.')
        .map(|(g, _)| g)
        .ok_or_else(|| invalid("not a provider access token"))?;
    let grant = p
        .inner
        .store
        .grant(grant_id)
        .await?
        .ok_or_else(|| invalid("the grant was revoked or expired"))?;
    if grant.client_id != client.client_id {
        return Err(invalid("the token's grant belongs to another client"));
    }
    let scopes: Vec<String> = verified.scopes().map(str::to_string).collect();
    let mut body = narrow(&grant.claims, &scopes);
    body.insert("sub".into(), json!(grant.sub));
    Ok(Value::Object(body))
}

/// A 401 (or 400 / 503) with `WWW-Authenticate: Bearer …` (RFC 6750 §3).
fn bearer_error(e: &ProviderError) -> Response {
    let (status, challenge) = match e {
        ProviderError::InvalidToken(d) if d == NO_TOKEN => {
            (StatusCode::UNAUTHORIZED, "Bearer".to_string())
        }
        ProviderError::InvalidToken(_) => (
            StatusCode::UNAUTHORIZED,
            "Bearer error=\"invalid_token\"".to_string(),
        ),
        ProviderError::InvalidRequest(_) => (
            StatusCode::BAD_REQUEST,
            "Bearer error=\"invalid_request\"".to_string(),
        ),
        _ => (e.token_status(), "Bearer".to_string()),
    };
    if e.is_internal() {
        tracing::warn!(error = %e, "userinfo failed");
    }
    let mut r = json_no_store(
        status,
        json!({"error": e.code(), "error_description": e.public_description()}),
    );
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    r
}
