//! `GET|POST /oidc/end_session` (OpenID Connect RP-Initiated Logout 1.0).
//!
//! - `id_token_hint`: an id token this provider issued (its signature and issuer are checked,
//!   an expired one is accepted); its `aud` names the client.
//! - `client_id`: names the client without a hint (must equal the hint's `aud` with one).
//! - `post_logout_redirect_uri`: must be registered for that client (exact match) — without a
//!   known client it is refused (error page, no redirect); `state` is echoed to it.
//! - The browser's host session is ended ([`Host::end_session`](crate::Host::end_session)),
//!   then the provider side of it ([`Provider::end_sid`]): grants revoked, back-channel logout
//!   tokens queued.
//!
//! There is no confirmation page: a logout link only ends the browser's own session.

use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use url::Url;

use super::{Params, error_page, is_form, no_store};
use crate::error::ProviderError;
use crate::keys::verify_signature;
use crate::provider::Provider;

/// `GET /oidc/end_session`.
pub(crate) async fn end_session_get(
    State(p): State<Provider>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    end_session(&p, query.as_deref().unwrap_or(""), &headers).await
}

/// `POST /oidc/end_session` (form body).
pub(crate) async fn end_session_post(
    State(p): State<Provider>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if !is_form(&headers) {
        return error_page(
            StatusCode::BAD_REQUEST,
            &ProviderError::InvalidRequest("the body must be a form".into()),
        );
    }
    match std::str::from_utf8(&body) {
        Ok(text) => end_session(&p, text, &headers).await,
        Err(_) => error_page(
            StatusCode::BAD_REQUEST,
            &ProviderError::InvalidRequest("the body is not UTF-8".into()),
        ),
    }
}

async fn end_session(p: &Provider, text: &str, headers: &HeaderMap) -> Response {
    match handle(p, text, headers).await {
        Ok(r) => r,
        Err(e) => {
            let status = if e.is_internal() {
                StatusCode::SERVICE_UNAVAILABLE
            } else {
                StatusCode::BAD_REQUEST
            };
            error_page(status, &e)
        }
    }
}

async fn handle(p: &Provider, text: &str, headers: &HeaderMap) -> Result<Response, ProviderError> {
    let params = Params::parse(text)?;
    let hint_aud = match params.get("id_token_hint") {
        Some(hint) => {
            let claims = verify_signature(hint, &p.all_jwks(), p.issuer())?;
            let aud = match &claims["aud"] {
                serde_json::Value::String(a) => a.clone(),
                serde_json::Value::Array(a) if a.len() == 1 => {
                    a[0].as_str().unwrap_or_default().to_string()
                }
                _ => {
                    return Err(ProviderError::InvalidRequest(
                        "id_token_hint has no single audience".into(),
                    ));
                }
            };
            Some(aud)
        }
        None => None,
    };
    let client_id = match (hint_aud, params.get("client_id")) {
        (Some(a), Some(c)) if a != c => {
            return Err(ProviderError::InvalidRequest(
                "client_id differs from the id_token_hint's audience".into(),
            ));
        }
        (Some(a), _) => Some(a),
        (None, c) => c.map(str::to_string),
    };
    let client = match &client_id {
        Some(id) => Some(
            p.inner
                .clients
                .client(id)
                .ok_or_else(|| ProviderError::InvalidRequest("unknown client".into()))?,
        ),
        None => None,
    };
    let redirect = match params.get("post_logout_redirect_uri") {
        None => None,
        Some(uri) => match &client {
            Some(c) if c.allows_post_logout_redirect(uri) => Some(uri.to_string()),
            Some(_) => {
                return Err(ProviderError::InvalidRequest(
                    "post_logout_redirect_uri is not registered for this client".into(),
                ));
            }
            None => {
                return Err(ProviderError::InvalidRequest(
                    "post_logout_redirect_uri needs id_token_hint or client_id".into(),
                ));
            }
        },
    };
    let session = p.inner.host.session(headers).await?;
    let clear = p.inner.host.end_session(headers).await?;
    if let Some(s) = session {
        p.end_sid(&s.sid).await?;
    }
    let mut response = match redirect {
        Some(uri) => {
            let mut url = Url::parse(&uri)
                .map_err(|_| ProviderError::Server("registered URI is invalid".into()))?;
            if let Some(state) = params.get("state") {
                url.query_pairs_mut().append_pair("state", state);
            }
            Redirect::to(url.as_str()).into_response()
        }
        None => (
            StatusCode::OK,
            Html(
                "<!doctype html><meta charset=utf-8><title>Signed out</title>\
                 <h1>You are signed out</h1>",
            ),
        )
            .into_response(),
    };
    response.headers_mut().extend(clear);
    Ok(no_store(response))
}
