//! Sandbox only (feature `sandbox`, `--sandbox`): `POST /sandbox/{platform}/h5-code` answers
//! what the platform client's JSAPI would, from the platform fake, so the H5 page works in a
//! plain browser.

use axum::Json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use serde_json::json;
use unilogin::PlatformName;

use crate::app::Gateway;
use crate::error::ApiError;

/// Adds the sandbox routes when the gateway runs as the sandbox.
pub(crate) fn routes(gw: &Gateway, router: Router<Gateway>) -> Router<Gateway> {
    match gw.inner.sandbox {
        Some(_) => router.route("/sandbox/{platform}/h5-code", post(h5_code)),
        None => router,
    }
}

/// Where the H5 page of `platform` asks for a code when the client's global is absent.
pub(crate) fn code_url(gw: &Gateway, platform: &PlatformName) -> Option<String> {
    gw.inner.sandbox.as_ref()?;
    let url = gw
        .config()
        .base_url()
        .join(&format!("sandbox/{platform}/h5-code"))
        .ok()?;
    Some(url.to_string())
}

/// The home page's login links.
pub(crate) fn links(gw: &Gateway) -> Vec<(String, String)> {
    gw.inner
        .sandbox
        .as_ref()
        .map(|s| s.links.clone())
        .unwrap_or_default()
}

/// `POST /sandbox/{platform}/h5-code`.
pub async fn h5_code(
    State(gw): State<Gateway>,
    Path(platform): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let hooks = gw
        .inner
        .sandbox
        .as_ref()
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint"))?;
    let code = (hooks.issue_h5_code)(&platform).ok_or_else(|| {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_platform",
            "no fake for this platform",
        )
    })?;
    Ok(Json(json!({ "code": code })))
}
