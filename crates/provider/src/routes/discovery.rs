//! `GET /.well-known/openid-configuration` (OIDC Discovery 1.0 §3, RFC 8414) and
//! `GET /oidc/jwks`.

use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::claims::{SUPPORTED_CLAIMS, SUPPORTED_SCOPES};
use crate::provider::Provider;

/// The discovery document.
pub(crate) fn document(p: &Provider) -> Value {
    let algs: Vec<&str> = p.inner.keys.iter().map(|k| k.alg().as_str()).collect();
    json!({
        "issuer": p.issuer(),
        "authorization_endpoint": p.endpoint("/oidc/authorize"),
        "token_endpoint": p.endpoint("/oidc/token"),
        "userinfo_endpoint": p.endpoint("/oidc/userinfo"),
        "jwks_uri": p.endpoint("/oidc/jwks"),
        "end_session_endpoint": p.endpoint("/oidc/end_session"),
        "scopes_supported": SUPPORTED_SCOPES,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "subject_types_supported": ["public", "pairwise"],
        "id_token_signing_alg_values_supported": algs,
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": SUPPORTED_CLAIMS,
        "claims_parameter_supported": false,
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "authorization_response_iss_parameter_supported": true,
        "backchannel_logout_supported": true,
        "backchannel_logout_session_supported": true,
        "frontchannel_logout_supported": false,
    })
}

/// `GET /.well-known/openid-configuration`.
pub(crate) async fn discovery(State(p): State<Provider>) -> Response {
    let mut r = axum::Json(document(&p)).into_response();
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    r
}

/// `GET /oidc/jwks`: every key set's public keys (current, staged, retired).
pub(crate) async fn jwks(State(p): State<Provider>) -> Response {
    let mut r = axum::Json(json!({ "keys": p.all_jwks() })).into_response();
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=60"),
    );
    r
}
