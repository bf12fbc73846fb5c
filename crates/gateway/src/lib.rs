//! # unilogin-gateway
//!
//! A runnable login service over [`unilogin`]: many teams want SSO as a service rather than a
//! library call. It offers, per tenant and platform:
//!
//! - `GET /auth/{tenant}/{platform}/login?return_to=…` — the return URL must be one of the
//!   tenant's allowed redirect URIs exactly. Inside the platform's client (`User-Agent`) the
//!   platform's registration decides: a JSAPI platform gets the H5 page (JSAPI code →
//!   `POST …/code`), a platform whose client opens an OAuth link gets that redirect login;
//!   anywhere else the web/QR redirect login. A redirect login keeps the core's pending login
//!   (single-use `state`, PKCE verifier, nonce) bound to a browser cookie for a few minutes.
//! - `GET /auth/{tenant}/{platform}/callback` — state checked and consumed atomically, code
//!   exchanged, session issued (cookie), redirect to `return_to`.
//! - `POST /auth/{tenant}/{platform}/code` — the H5 login-free exchange of a JSAPI code; returns
//!   the profile and a session token. Platforms without a JSAPI login are refused
//!   (`redirect_login_required`) before any upstream call.
//! - `POST /events/{tenant}/{platform}` (and `GET` for URL verification) — platform event
//!   callbacks: verified, decrypted, de-duplicated in the shared store, acknowledged at once and
//!   applied asynchronously: a leaver's sessions are revoked on every replica and the app's
//!   signed webhook is told (`docs/events.md`).
//! - With `oidc_provider.enabled`, an OpenID Provider (`/.well-known/openid-configuration`,
//!   `/oidc/…`): OIDC applications sign in through the same platform logins
//!   (`docs/oidc-provider.md`, [`oidc`]).
//! - `GET /me`, `POST /logout`, `GET /healthz`, `GET /readyz`, `GET /metrics`,
//!   `GET /.well-known/jwks.json`.
//!
//! Sessions are Ed25519 JWTs from [`unilogin_axum::session::SessionIssuer`], verifiable by any
//! service through the JWKS (see `unilogin-axum`'s guard). Pending logins and revocations live
//! in memory, or in Redis (`unilogin-redis`) so that replicas share them. The gateway names no
//! platform: everything platform-specific comes from the registrations of the linked platform
//! crates (the sandbox's fakes aside). See `docs/gateway.md`.
//!
//! Cargo features: one per platform (`dingtalk`, `feishu`, `wecom`, `custom-oauth`), `redis`,
//! `mimalloc`, and `sandbox` (the `--sandbox` mode and its routes; the only user of
//! `unilogin-testkit`). All on by default.
//!
//! ```no_run
//! use unilogin_gateway::{Gateway, config::GatewayConfig};
//! # async fn run() -> unilogin::Result<()> {
//! let gateway = Gateway::builder(GatewayConfig::from_yaml("tenants_file: tenants.yaml")?)
//!     .open()
//!     .await
//!     .map_err(|problems| unilogin::Error::Internal(problems.to_string()))?;
//! let listener = tokio::net::TcpListener::bind(gateway.config().listen).await
//!     .map_err(|e| unilogin::Error::Internal(e.to_string()))?;
//! gateway.serve(listener, unilogin_gateway::shutdown_signal()).await
//!     .map_err(|e| unilogin::Error::Internal(e.to_string()))?;
//! # Ok(()) }
//! ```

#[cfg(feature = "sql")]
pub mod admin;
pub mod app;
pub mod config;
pub mod cookies;
pub mod error;
pub mod events;
pub mod limits;
pub mod metrics;
pub mod oidc;
pub mod pages;
pub mod routes;
#[cfg(feature = "sandbox")]
pub mod sandbox;
mod serve;
pub mod store;
pub mod store_apps;
pub mod tenants;
pub mod trace;
pub mod webhook;

pub use app::{Gateway, GatewayBuilder, shutdown_signal};
pub use config::GatewayConfig;
pub use error::ApiError;
#[cfg(feature = "sandbox")]
pub use sandbox::{Sandbox, SandboxHooks, SandboxOptions};
pub use tenants::Tenants;

/// Installs the global tracing subscriber: text or JSON lines, filter from `RUST_LOG` or
/// `filter`. Span fields (the request's `trace_id`) appear on every line.
pub fn init_logging(format: config::LogFormat, filter: &str) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(filter))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let result = match format {
        config::LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        config::LogFormat::Text => builder.try_init(),
    };
    // Already installed (tests, embedding applications): keep theirs.
    let _ = result;
}
