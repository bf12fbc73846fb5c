//! Operations: liveness, readiness, metrics, the session keys, and the 404 of unknown paths.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use unilogin::Error;

use crate::app::Gateway;
use crate::error::ApiError;

/// `GET /healthz`: the process is up.
pub async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

/// `GET /readyz`: the tenant configuration and the state store answer.
pub async fn readyz(State(gw): State<Gateway>) -> Response {
    let config = gw.sso().config_source().list().await.map(|_| ());
    let store = gw.inner.states.ping().await;
    let describe = |what: &str, r: &Result<(), Error>| match r {
        Ok(()) => "ok",
        Err(e) => {
            tracing::warn!(error = %e, "readiness: {what} failed");
            e.kind()
        }
    };
    let checks = json!({
        "config": describe("config source", &config),
        "state_store": describe("state store", &store),
        // How the latest tenant configuration reload went (the last good one keeps serving).
        "config_reload": gw.tenants().map(crate::tenants::Tenants::readiness),
        // How the latest OIDC client reload went (the last good set keeps serving).
        "oidc_clients": gw.inner.provider.as_ref().map(|(_, clients)| clients.readiness()),
    });
    let (status, word) = if config.is_ok() && store.is_ok() {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not_ready")
    };
    (status, Json(json!({ "status": word, "checks": checks }))).into_response()
}

/// `GET /metrics` on the public listener: only with `Authorization: Bearer <ops.metrics_token>`
/// (constant-time compare); without a configured token it does not exist there (404).
pub async fn metrics(
    State(gw): State<Gateway>,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    let Some(token) = &gw.inner.metrics_token else {
        return Err(not_found().await);
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !bool::from(subtle::ConstantTimeEq::ct_eq(
        given.as_bytes(),
        token.expose().as_bytes(),
    )) {
        return Err(ApiError::unauthenticated("a metrics token is required"));
    }
    metrics_open(State(gw)).await
}

/// `GET /metrics` on the operations listener.
pub async fn metrics_open(State(gw): State<Gateway>) -> Result<Response, ApiError> {
    let text = gw
        .metrics()
        .render()
        .map_err(|_| Error::Internal("encoding metrics".into()))?;
    let mut r = text.into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    Ok(r)
}

/// `GET /.well-known/jwks.json`.
pub async fn jwks(State(gw): State<Gateway>) -> Response {
    let mut r = Json(gw.issuer().keys().jwks()).into_response();
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    r
}

/// Any other path.
pub async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
}

/// A known path with another method.
pub async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this endpoint does not take that method",
    )
}
