//! The endpoints, one module per concern.
//!
//! | route | module | what |
//! |---|---|---|
//! | `GET /auth/{tenant}/{platform}/login?return_to=…` | [`login`] | starts a login (H5 page, or a redirect login) |
//! | `GET /auth/{tenant}/{platform}/callback` | [`callback`] | finishes a redirect login: state, code, session, redirect |
//! | `POST /auth/{tenant}/{platform}/code` | [`code`] | H5 login-free exchange of a JSAPI code `{code}` → profile + session |
//! | `GET /auth/{tenant}/{platform}/jsapi-config?url=…` | [`jsapi`] | the signed JS SDK config (`dd.config`, `h5sdk.config`, `wx.config` / `wx.agentConfig`) for a page of an allowed origin |
//! | `POST /auth/{tenant}/{platform}/jsapi-config/rejected` | [`jsapi`] | a page reports a config its SDK refused: the ticket is invalidated (compare-and-delete) when the report matches it, at most once per cool-down |
//! | `GET /`, `GET /me`, `POST /logout` | [`session`] | who is signed in; the session's claims; revocation |
//! | `GET /healthz`, `/readyz`, `/metrics`, `/.well-known/jwks.json` | [`ops`] | liveness, readiness, metrics, public keys |
//! | `POST`/`GET /events/{tenant}/{platform}` | [`events`] | platform event callbacks (verified, de-duplicated, applied asynchronously) |
//! | `GET /webhook/deliveries` (operations listener) | [`events`] | the app webhook's delivery log |
//! | `/.well-known/openid-configuration`, `/oidc/…` | [`crate::oidc`] | the OpenID Provider (when enabled) |
//! | `POST /sandbox/{platform}/h5-code` | `sandbox` | sandbox only: what the client's JSAPI would return |
//!
//! Every `/auth/{tenant}/{platform}/…` handler takes a [`Target`]: the path's tenant and
//! platform resolved **once** into the core's [`Prepared`] handle, which every later step of the
//! request uses (return URL check, authorize, exchange, session scopes).

pub mod callback;
pub mod code;
pub mod events;
pub mod jsapi;
pub mod login;
pub mod ops;
#[cfg(feature = "sandbox")]
pub mod sandbox;
pub mod session;

/// Without the sandbox: no sandbox code endpoint and no demo links.
#[cfg(not(feature = "sandbox"))]
pub(crate) mod sandbox {
    use crate::app::Gateway;
    use unilogin::PlatformName;

    pub(crate) fn code_url(_: &Gateway, _: &PlatformName) -> Option<String> {
        None
    }

    pub(crate) fn links(_: &Gateway) -> Vec<(String, String)> {
        Vec::new()
    }
}

use std::time::Instant;

use axum::Router;
use axum::extract::{FromRequestParts, Path};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use axum::routing::{get, post};
use unilogin::{Error, Flow, Login, Prepared, TenantId};

use crate::app::Gateway;
use crate::error::ApiError;

/// The routes, without state or layers (see [`Gateway::router`]).
pub(crate) fn router(gw: &Gateway) -> Router<Gateway> {
    let router = Router::new()
        .route("/", get(session::home))
        .route("/auth/{tenant}/{platform}/login", get(login::login))
        .route(
            "/auth/{tenant}/{platform}/callback",
            get(callback::callback),
        )
        .route("/auth/{tenant}/{platform}/code", post(code::code))
        .route(
            "/auth/{tenant}/{platform}/jsapi-config",
            get(jsapi::jsapi_config),
        )
        .route(
            "/auth/{tenant}/{platform}/jsapi-config/rejected",
            post(jsapi::jsapi_rejected),
        )
        .route("/me", get(session::me))
        .route("/logout", post(session::logout))
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/.well-known/jwks.json", get(ops::jwks))
        .route(
            "/events/{tenant}/{platform}",
            get(events::receive).post(events::receive),
        );
    // The OpenID Provider's endpoints: its own router (its own state) behind each of its paths.
    let router = match gw.provider() {
        Some(provider) => {
            let endpoints = provider.router();
            crate::oidc::PATHS
                .iter()
                .fold(router, |r, path| r.route_service(path, endpoints.clone()))
                .route("/oidc/login/{tenant}/{platform}", get(crate::oidc::choose))
        }
        None => router,
    };
    #[cfg(feature = "sandbox")]
    let router = sandbox::routes(gw, router);
    // The admin API under `admin.path_prefix`, when it has no listener of its own.
    #[cfg(feature = "sql")]
    let router = crate::admin::mount(gw, router);
    #[cfg(not(any(feature = "sandbox", feature = "sql")))]
    let _ = gw;
    router
        .fallback(ops::not_found)
        .method_not_allowed_fallback(ops::method_not_allowed)
}

/// The operations listener's routes (`ops.listen`): metrics without a token, health, readiness.
pub(crate) fn ops_router() -> Router<Gateway> {
    Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics_open))
        .route("/webhook/deliveries", get(events::deliveries))
        .fallback(ops::not_found)
        .method_not_allowed_fallback(ops::method_not_allowed)
}

/// Whether the client asked for HTML (browser-facing errors become a page).
pub(crate) fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/html"))
}

/// `Cache-Control: no-store` (every answer that carries a session, a state or a code).
pub(crate) fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// The `(tenant, platform)` of an `/auth/{tenant}/{platform}/…` path, resolved once per request
/// by [`Sso::prepare`](unilogin::Sso::prepare): registered, configured, enabled.
pub struct Target {
    /// The prepared handle every step of the request runs on.
    pub prepared: Prepared,
    /// Whether errors should be rendered as HTML.
    pub html: bool,
}

impl FromRequestParts<Gateway> for Target {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, gw: &Gateway) -> Result<Self, ApiError> {
        let html = wants_html(&parts.headers);
        let Path((tenant, platform)) = Path::<(String, String)>::from_request_parts(parts, gw)
            .await
            .map_err(|e| ApiError::bad_request("bad_request", e.body_text()).html(html))?;
        let resolve = async {
            let tenant = TenantId::new(&tenant).map_err(|_| Error::UnknownTenant {
                tenant: tenant.chars().take(64).collect(),
            })?;
            gw.sso().prepare(&tenant, &platform).await
        };
        match resolve.await {
            Ok(prepared) => Ok(Self { prepared, html }),
            // An unknown tenant, an unknown platform and a platform the tenant has not configured
            // answer alike, so the public cannot list tenants; the log line says which.
            Err(
                e @ (Error::UnknownTenant { .. }
                | Error::UnknownPlatform { .. }
                | Error::PlatformNotConfigured { .. }),
            ) => {
                tracing::info!(error = %e, kind = e.kind(), "no such login");
                Err(ApiError::new(
                    axum::http::StatusCode::NOT_FOUND,
                    "not_found",
                    "no such login: check the tenant and platform in the URL",
                )
                .html(html))
            }
            Err(e) => Err(ApiError::from(e).html(html)),
        }
    }
}

impl Gateway {
    /// Counts a finished login under the target's configured names.
    pub(crate) fn count(&self, target: &Prepared, flow: Flow, outcome: &str) {
        self.inner.metrics.login(
            target.tenant().as_str(),
            target.platform().as_str(),
            flow.as_str(),
            outcome,
        );
    }

    /// Runs a login, counting it and timing its upstream part. The success path uses metric
    /// handles kept per (configuration revision, flow) with the prepared handle.
    pub(crate) async fn run_login<F>(
        &self,
        target: &Prepared,
        flow: Flow,
        login: F,
    ) -> Result<Login, ApiError>
    where
        F: Future<Output = unilogin::Result<Login>>,
    {
        // The tenant's cap on code exchanges reaching its platform (rate and concurrency):
        // a flood of invented codes cannot spend the tenant's quota or get the shared egress
        // address banned.
        let _permit = self
            .inner
            .limiters
            .admit_upstream(
                target.tenant().as_str(),
                target.platform().as_str(),
                UPSTREAM_SLOT_WAIT,
            )
            .await
            .inspect_err(|_| self.count(target, flow, "too_many_requests"))?;
        let started = Instant::now();
        let result = login.await;
        let handles = target.compiled(|config| {
            let metrics = &self.inner.metrics;
            let (t, p) = (config.tenant.as_str(), config.platform.as_str());
            Ok(FlowHandles([
                metrics.login_handles(t, p, Flow::H5.as_str()),
                metrics.login_handles(t, p, Flow::Web.as_str()),
            ]))
        })?;
        let handles = &handles.0[usize::from(flow == Flow::Web)];
        handles.upstream.observe(started.elapsed().as_secs_f64());
        match result {
            Ok(login) => {
                handles.success.inc();
                Ok(login)
            }
            Err(e) => {
                self.count(target, flow, e.kind());
                Err(e.into())
            }
        }
    }
}

/// How long a code exchange waits for one of its tenant's upstream slots before a 429.
const UPSTREAM_SLOT_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// The metric handles of a prepared (tenant, platform), by flow (`h5`, `web`).
struct FlowHandles([crate::metrics::LoginHandles; 2]);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_chosen_by_accept() {
        let mut h = HeaderMap::new();
        assert!(!wants_html(&h));
        h.insert(
            header::ACCEPT,
            HeaderValue::from_static("text/html,application/xhtml+xml"),
        );
        assert!(wants_html(&h));
    }
}
