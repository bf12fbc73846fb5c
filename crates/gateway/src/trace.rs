//! Trace ids: every request gets one (the caller's `x-request-id` when it is a sane token, a
//! fresh random one otherwise). It is a field of the request's tracing span, so every log line
//! written while handling the request carries it; it is returned in the `x-request-id`
//! response header and in error bodies.
//!
//! Only the path is logged, never the query string (it carries codes and states).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tracing::Instrument;

use crate::error::ApiError;
use crate::limits::{Bucket, ClientAddr, Limiters};

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

/// Settings of the front middleware.
#[derive(Debug, Clone)]
pub struct TraceSettings {
    /// Bound of one request's handling.
    pub request_timeout: Duration,
    /// Reverse proxies trusted to append to `X-Forwarded-For` (see [`ClientAddr::resolve`]).
    pub trusted_proxies: usize,
    /// The rate limiters.
    pub limiters: Arc<Limiters>,
    /// Largest request body.
    pub max_body_bytes: usize,
    /// Largest request body of a platform event callback (`/events/…`).
    pub max_event_body_bytes: usize,
    /// Time to receive a request body.
    pub body_read_timeout: Duration,
    /// Most request headers.
    pub max_headers: usize,
    /// Most bytes of request headers.
    pub max_header_bytes: usize,
    /// Longest request target.
    pub max_uri_bytes: usize,
    /// `Strict-Transport-Security` (the public URL is https).
    pub hsts: bool,
}

/// A request path as logged: its first 256 characters, written straight into the log line
/// (no copy is made, and nothing is done when the span is not recorded).
struct LoggedPath<'a>(&'a str);

impl std::fmt::Display for LoggedPath<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const MAX_CHARS: usize = 256;
        let end = self
            .0
            .char_indices()
            .nth(MAX_CHARS)
            .map_or(self.0.len(), |(at, _)| at);
        f.write_str(&self.0[..end])
    }
}

/// Which per-client limit a request counts against, by its route.
fn bucket(req: &Request) -> Bucket {
    let path = req.uri().path();
    if path.starts_with("/events/") {
        return Bucket::Events;
    }
    // The OpenID Provider: an authorization request (or a chooser link) stores a pending
    // request and may start a platform login — a login start; the token endpoint checks client
    // secrets and redeems codes — a code exchange.
    if path == "/oidc/authorize" || path.starts_with("/oidc/login/") {
        return Bucket::Login;
    }
    if path == "/oidc/token" || path == "/oidc/resume" {
        return Bucket::Code;
    }
    if !path.starts_with("/auth/") {
        return Bucket::Other;
    }
    if path.ends_with("/login") {
        Bucket::Login
    } else if path.ends_with("/code") || path.ends_with("/callback") {
        Bucket::Code
    } else {
        Bucket::Other
    }
}

/// Refusals made before routing: the request's shape (413, 414, 431) and the client's rate.
/// `Ok`: whether the request has a body (`Content-Length` or `Transfer-Encoding`).
fn admit(req: &Request, s: &TraceSettings, client: ClientAddr) -> Result<bool, ApiError> {
    let uri_len = req.uri().path_and_query().map_or(0, |pq| pq.as_str().len());
    if uri_len > s.max_uri_bytes {
        return Err(ApiError::new(
            StatusCode::URI_TOO_LONG,
            "uri_too_long",
            format!(
                "the request target is longer than {} bytes",
                s.max_uri_bytes
            ),
        ));
    }
    let headers = req.headers();
    let header_bytes: usize = headers
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    if headers.len() > s.max_headers || header_bytes > s.max_header_bytes {
        return Err(ApiError::new(
            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            "headers_too_large",
            format!(
                "at most {} request headers of {} bytes in all",
                s.max_headers, s.max_header_bytes
            ),
        ));
    }
    let length = headers.get(header::CONTENT_LENGTH);
    let declared = length
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let limit = body_limit(req, s);
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large(limit));
    }
    s.limiters.check_client(bucket(req), client)?;
    Ok(length.is_some() || headers.contains_key(header::TRANSFER_ENCODING))
}

/// The body limit of a request: platform event callbacks may be larger than the rest.
fn body_limit(req: &Request, s: &TraceSettings) -> usize {
    if req.uri().path().starts_with("/events/") {
        s.max_event_body_bytes
    } else {
        s.max_body_bytes
    }
}

fn too_large(limit: usize) -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        format!("the request body is larger than {limit} bytes"),
    )
}

/// Reads the whole body within the body timeout and size limit (bodies are small: codes and
/// admin entries), so a client that declares more than it sends gets a 408, not a held handler.
async fn buffer_body(req: Request, s: &TraceSettings, has_body: bool) -> Result<Request, ApiError> {
    if !has_body {
        return Ok(req);
    }
    let limit = body_limit(&req, s);
    let (parts, body) = req.into_parts();
    let read = axum::body::to_bytes(body, limit);
    match tokio::time::timeout(s.body_read_timeout, read).await {
        Err(_) => Err(ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            "the request body did not arrive in time",
        )),
        Ok(Err(e)) => {
            let too_big = std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>());
            if too_big {
                Err(too_large(limit))
            } else {
                Err(ApiError::bad_request(
                    "bad_request",
                    "the request body could not be read",
                ))
            }
        }
        Ok(Ok(bytes)) => Ok(Request::from_parts(parts, Body::from(bytes))),
    }
}

/// Headers every answer carries: no sniffing, no framing, no referrer, a restrictive default
/// content security policy (pages set their own), HSTS behind https.
fn secure_headers(response: &mut Response, hsts: bool) {
    let h = response.headers_mut();
    // One growth of the map at most, not one per insert.
    h.reserve(6);
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // A page's own policies stay (one lookup each, not a lookup and an insert).
    h.entry(header::REFERRER_POLICY)
        .or_insert_with(|| HeaderValue::from_static("no-referrer"));
    h.entry(header::CONTENT_SECURITY_POLICY).or_insert_with(|| {
        HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'; base-uri 'none'")
    });
    if hsts {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
}

/// The front middleware, as a tower layer wrapping every route of a router (and its
/// fallbacks): trace id, request span, the refusals of `admit`, the body read within its
/// time, the handling time limit, security headers, one access log line.
#[derive(Debug, Clone)]
pub struct FrontLayer(Arc<TraceSettings>);

impl FrontLayer {
    /// The front middleware with these settings.
    pub fn new(settings: TraceSettings) -> Self {
        Self(Arc::new(settings))
    }
}

impl<S> tower::Layer<S> for FrontLayer {
    type Service = Front<S>;

    fn layer(&self, inner: S) -> Front<S> {
        Front {
            inner,
            settings: Arc::clone(&self.0),
        }
    }
}

/// The service of [`FrontLayer`].
#[derive(Debug, Clone)]
pub struct Front<S> {
    inner: S,
    settings: Arc<TraceSettings>,
}

impl<S> tower::Service<Request> for Front<S>
where
    S: tower::Service<Request, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        // The service that was polled ready handles this request; a clone stays for the next.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let settings = Arc::clone(&self.settings);
        Box::pin(async move {
            let next = |req| async move {
                match inner.call(req).await {
                    Ok(r) => r,
                    Err(never) => match never {},
                }
            };
            Ok(front(&settings, req, next).await)
        })
    }
}

/// The front middleware's work around `next` (see [`FrontLayer`]).
async fn front<F, Fut>(settings: &TraceSettings, req: Request, next: F) -> Response
where
    F: FnOnce(Request) -> Fut,
    Fut: Future<Output = Response>,
{
    let id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| TraceId::is_acceptable(v))
        .map(str::to_string)
        .unwrap_or_else(TraceId::generate);
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ci| ci.0.ip());
    let client = ClientAddr::resolve(req.headers(), peer, settings.trusted_proxies);
    let span = tracing::info_span!(
        "request",
        trace_id = %id,
        method = %req.method(),
        path = %LoggedPath(req.uri().path()),
        client = %client.0,
    );
    let started = Instant::now();
    let timeout = settings.request_timeout;
    let s = settings;
    let handled = CURRENT
        .scope(id, async move {
            let has_body = match admit(&req, s, client) {
                Ok(has_body) => has_body,
                Err(e) => return e.into_response(),
            };
            let mut req = match buffer_body(req, s, has_body).await {
                Ok(r) => r,
                Err(e) => return e.into_response(),
            };
            req.extensions_mut().insert(client);
            match tokio::time::timeout(timeout, next(req)).await {
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
        .instrument(span.clone());
    let mut handled = std::pin::pin!(handled);
    let mut response = handled.as_mut().await;
    // The id back from the task-local, its buffer made the response header without a copy
    // (acceptable and generated ids are header-safe).
    let id = handled.as_mut().inner_pin_mut().take_value();
    if let Some(v) = id.and_then(|id| HeaderValue::from_maybe_shared(Bytes::from(id)).ok()) {
        response.headers_mut().insert(REQUEST_ID.clone(), v);
    }
    secure_headers(&mut response, settings.hsts);
    let status = response.status().as_u16();
    // The time is read only when the line is written.
    span.in_scope(|| {
        tracing::info!(
            status,
            elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
            "handled"
        );
    });
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

    #[test]
    fn logged_paths_are_cut_at_256_characters() {
        assert_eq!(
            LoggedPath("/auth/acme/x/login").to_string(),
            "/auth/acme/x/login"
        );
        let long = format!("/{}", "é".repeat(300));
        let shown = LoggedPath(&long).to_string();
        assert_eq!(shown.chars().count(), 256);
        assert!(long.starts_with(&shown));
        let ascii = "a".repeat(300);
        assert_eq!(LoggedPath(&ascii).to_string(), ascii[..256]);
    }
}
