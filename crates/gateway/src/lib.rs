//! # unilogin-gateway
//!
//! A runnable login service over [`unilogin`]: many teams want SSO as a service rather than a
//! library call. It offers, per tenant and platform:
//!
//! - `GET /auth/{tenant}/{platform}/login?return_to=…` — the return URL must be one of the
//!   tenant's allowed redirect URIs exactly; a single-use `state` bound to a browser cookie is
//!   stored for a few minutes. The `User-Agent` decides the path: inside the platform's client
//!   the H5 login-free page (JSAPI code → `POST …/code`) or the platform's in-client OAuth link;
//!   anywhere else a redirect to the platform's web/QR authorize page.
//! - `GET /auth/{tenant}/{platform}/callback` — state checked and consumed atomically, code
//!   exchanged, session issued (cookie), redirect to `return_to`.
//! - `POST /auth/{tenant}/{platform}/code` — the H5 login-free exchange; returns the profile and
//!   a session token.
//! - `GET /me`, `POST /logout`, `GET /healthz`, `GET /readyz`, `GET /metrics`,
//!   `GET /.well-known/jwks.json`.
//!
//! Sessions are Ed25519 JWTs from [`unilogin_axum::session::SessionIssuer`], verifiable by any
//! service through the JWKS (see `unilogin-axum`'s guard). Pending logins and revocations live
//! in memory, or in Redis so that replicas share them. See `docs/gateway.md`.
//!
//! ```no_run
//! use unilogin_gateway::{Gateway, config::GatewayConfig};
//! # async fn run() -> unilogin::Result<()> {
//! let gateway = Gateway::builder(GatewayConfig::from_yaml("tenants_file: tenants.yaml")?).build()?;
//! let listener = tokio::net::TcpListener::bind(gateway.config().listen).await
//!     .map_err(|e| unilogin::Error::Internal(e.to_string()))?;
//! gateway.serve(listener, unilogin_gateway::shutdown_signal()).await
//!     .map_err(|e| unilogin::Error::Internal(e.to_string()))?;
//! # Ok(()) }
//! ```

pub mod app;
pub mod config;
pub mod cookies;
pub mod error;
pub mod handlers;
pub mod metrics;
pub mod pages;
#[cfg(feature = "redis")]
pub mod redis_store;
pub mod sandbox;
pub mod store;
pub mod trace;

pub use app::{Gateway, GatewayBuilder, SandboxHooks, shutdown_signal};
pub use config::GatewayConfig;
pub use error::ApiError;
pub use sandbox::{Sandbox, SandboxOptions};

/// `bytes` random bytes from the thread-local CSPRNG, as lower-case hex.
pub fn random_hex(bytes: usize) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(bytes * 2);
    let mut left = bytes;
    while left > 0 {
        let chunk: [u8; 32] = rand::random();
        for b in chunk.iter().take(left) {
            let _ = write!(out, "{b:02x}");
        }
        left = left.saturating_sub(32);
    }
    out
}

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

#[cfg(test)]
mod tests {
    #[test]
    fn random_hex_lengths_and_uniqueness() {
        assert_eq!(super::random_hex(16).len(), 32);
        assert_eq!(super::random_hex(40).len(), 80);
        assert_ne!(super::random_hex(32), super::random_hex(32));
        assert!(super::random_hex(8).bytes().all(|b| b.is_ascii_hexdigit()));
    }
}
