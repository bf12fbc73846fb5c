//! Trace ids: every request gets one (the caller's `x-request-id` when it is a sane token, a
//! fresh random one otherwise). It is a field of the request's tracing span, so every log line
//! written while handling the request carries it; it is returned in the `x-request-id`
//! response header and in error bodies.
//!
//! Only the path is logged, never the query string (it carries codes and states).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tracing::Instrument;

use crate::error::ApiError;

/// The request id header.
pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

tokio::task_local! {
    static CURRENT: String;
}

/// Access to the current request's trace id.
#[derive(Debug, Clone, Copy)]
pub struct TraceId;

impl TraceId {
    /// The trace id of the request being handled by this task, if any.
    pub fn current() -> Option<String> {
        CURRENT.try_with(Clone::clone).ok()
    }

    /// A fresh random trace id (32 hex digits).
    pub fn generate() -> String {
        unilogin::web_login::random_hex(16)
    }

    /// Whether an incoming id is acceptable: 1 to 128 characters from `[A-Za-z0-9._:-]`.
    pub fn is_acceptable(id: &str) -> bool {
        !id.is_empty()
            && id.len() <= 128
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
    }
}

/// Settings of the trace middleware.
#[derive(Debug, Clone)]
pub struct TraceSettings {
    /// Bound of one request's handling.
    pub request_timeout: Duration,
    /// Take the client address from `X-Forwarded-For`.
    pub trust_forwarded_for: bool,
}

fn client_addr(req: &Request, trust_forwarded_for: bool) -> String {
    if trust_forwarded_for
        && let Some(first) = req
            .headers()
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
    {
        let first = first.trim();
        if !first.is_empty() && first.len() <= 64 {
            return first.to_string();
        }
    }
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ci| ci.0.ip().to_string())
        .unwrap_or_else(|| "-".into())
}

/// The middleware: trace id, request span, time limit, one access log line.
pub async fn middleware(
    State(settings): State<TraceSettings>,
    req: Request,
    next: Next,
) -> Response {
    let id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| TraceId::is_acceptable(v))
        .map(str::to_string)
        .unwrap_or_else(TraceId::generate);
    let span = tracing::info_span!(
        "request",
        trace_id = %id,
        method = %req.method(),
        path = %req.uri().path(),
        client = %client_addr(&req, settings.trust_forwarded_for),
    );
    let started = Instant::now();
    let timeout = settings.request_timeout;
    let mut response = CURRENT
        .scope(id.clone(), async move {
            match tokio::time::timeout(timeout, next.run(req)).await {
                Ok(r) => r,
                Err(_) => {
                    tracing::warn!(?timeout, "request timed out");
                    ApiError::new(
                        StatusCode::GATEWAY_TIMEOUT,
                        "timeout",
                        "the request took too long",
                    )
                    .into_response()
                }
            }
        })
        .instrument(span.clone())
        .await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(REQUEST_ID.clone(), v);
    }
    let status = response.status().as_u16();
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    span.in_scope(|| tracing::info!(status, elapsed_ms, "handled"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incoming_ids_are_filtered() {
        assert!(TraceId::is_acceptable("abc-123_x.y:z"));
        assert!(!TraceId::is_acceptable(""));
        assert!(!TraceId::is_acceptable("a b"));
        assert!(!TraceId::is_acceptable("evil\r\nheader"));
        assert!(!TraceId::is_acceptable(&"a".repeat(129)));
        assert_eq!(TraceId::generate().len(), 32);
        assert!(TraceId::current().is_none());
    }
}
