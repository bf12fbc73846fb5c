//! The shared HTTP side of every fake: endpoints, the per-request guard, and the loopback server.
//!
//! A platform fake is built in three steps:
//!
//! 1. Describe each endpoint with an [`EndpointSpec`] (name used by tests, HTTP method, path, and
//!    a free-form `family` tag the platform uses to pick its envelope, e.g. `"oapi"` / `"api"`).
//! 2. Implement [`PlatformResponder`]: how the platform renders platform faults
//!    ([`Fault::Code`], [`Fault::TokenInvalid`], …), wrong HTTP methods and unknown paths.
//! 3. Register one handler per endpoint on a [`FakeRouter`], [`build`](FakeRouter::build) it, and
//!    [`FakeServer::start`] the result on `127.0.0.1:0`.
//!
//! Every request then goes through the same guard, in this order: **count** the call (so rejected
//! requests count too) → check the **HTTP method** → apply an armed **fault** → run the **handler**.
//! Handlers receive the raw [`Request`] and validate everything themselves (credentials, tokens,
//! parameters, body encoding), so rejections use the platform's shapes.
//!
//! The server stops when the [`FakeServer`] is dropped or [`FakeServer::shutdown`] is awaited.
//! Requests held by [`Fault::Hang`] or [`Fault::Delay`] are released at shutdown.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::calls::{CallCounter, UNMATCHED};
use crate::clock::FakeClock;
use crate::faults::{ANY_ENDPOINT, Fault, FaultError, FaultPlan, MAX_OVERSIZED_BODY, Times};
use crate::http;

/// One endpoint of a fake.
#[derive(Debug, Clone)]
pub struct EndpointSpec {
    /// Name tests use (`calls("gettoken")`, fault injection). Unique within a fake.
    pub name: &'static str,
    /// The HTTP method the real endpoint accepts.
    pub method: Method,
    /// Path (axum route syntax). One endpoint per path.
    pub path: &'static str,
    /// Free-form envelope family chosen by the platform (DingTalk: `"oapi"`, `"api"`, `"login"`).
    pub family: &'static str,
}

impl EndpointSpec {
    /// An endpoint (shorthand for the struct literal).
    pub fn new(
        name: &'static str,
        method: Method,
        path: &'static str,
        family: &'static str,
    ) -> Self {
        Self {
            name,
            method,
            path,
            family,
        }
    }
}

/// Adapts a handler over shared state, `async fn(Arc<S>, Request) -> Response`, to the
/// `Fn(Request)` form [`FakeRouter::endpoint`] registers.
pub fn with_state<S, F, Fut>(
    state: &Arc<S>,
    handler: F,
) -> impl Fn(Request) -> Fut + Send + Sync + 'static
where
    S: Send + Sync + 'static,
    F: Fn(Arc<S>, Request) -> Fut + Send + Sync + 'static,
{
    let state = state.clone();
    move |req| handler(state.clone(), req)
}

/// How a platform answers what the shared infrastructure decides: platform faults, wrong methods
/// and unknown paths. Implemented once per platform fake.
pub trait PlatformResponder: Send + Sync + 'static {
    /// Whether `endpoint` can render `fault` (called when a fault is armed, so mistakes surface at
    /// injection time). Only called for platform faults (`!fault.is_transport()`).
    /// `Err` carries the reason.
    fn supports(&self, endpoint: &EndpointSpec, fault: &Fault) -> Result<(), String>;

    /// Render a platform fault that [`supports`](Self::supports) accepted.
    fn render_fault(&self, endpoint: &EndpointSpec, fault: &Fault) -> Response;

    /// Answer a request that used another HTTP method than `endpoint.method`.
    fn wrong_method(&self, endpoint: &EndpointSpec, method: &Method) -> Response;

    /// Answer a request to a path no endpoint serves.
    fn not_found(&self, method: &Method, path: &str) -> Response;
}

/// For [`PlatformResponder::supports`] on a numeric envelope: whether a [`Fault::Code`] is a
/// non-zero integer. The refusals read `zero` for code 0 and "`{kind}` are numeric, got …".
pub fn numeric_code(code: &str, zero: &str, kind: &str) -> Result<(), String> {
    match code.parse::<i64>() {
        Ok(0) => Err(zero.to_owned()),
        Ok(_) => Ok(()),
        Err(_) => Err(format!("{kind} are numeric, got `{code}`")),
    }
}

/// [`PlatformResponder::supports`] of a platform with one numeric JSON envelope (endpoints of
/// family `api`) beside browser pages (family `page`) that only take transport faults: the
/// refusals are worded by the other fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NumericEnvelope {
    /// Family of the JSON endpoints.
    pub api: &'static str,
    /// Family of the browser pages.
    pub page: &'static str,
    /// Refusal of a platform fault on a page.
    pub pages_only: &'static str,
    /// Refusal of `Fault::code(0)`.
    pub zero: &'static str,
    /// What the codes are called ("`{codes}` are numeric, got …").
    pub codes: &'static str,
    /// Refusal of [`Fault::CodeWithSub`].
    pub no_sub_code: &'static str,
}

impl NumericEnvelope {
    /// Whether `endpoint` can render `fault` (see [`PlatformResponder::supports`]).
    pub fn supports(&self, endpoint: &EndpointSpec, fault: &Fault) -> Result<(), String> {
        match (endpoint.family, fault) {
            (family, _) if family == self.page => Err(self.pages_only.to_owned()),
            (family, fault) if family == self.api => match fault {
                Fault::Code(c) => numeric_code(c, self.zero, self.codes),
                Fault::CodeWithSub { .. } => Err(self.no_sub_code.to_owned()),
                _ => Ok(()),
            },
            (other, _) => Err(format!("unknown endpoint family `{other}`")),
        }
    }
}

/// The error codes a numeric envelope answers the platform faults with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FaultCodes {
    /// [`Fault::TokenInvalid`].
    pub token_invalid: i64,
    /// [`Fault::CodeInvalid`].
    pub code_invalid: i64,
    /// [`Fault::RateLimited`] and [`Fault::RateLimitPage`].
    pub rate_limited: i64,
    /// [`Fault::PermissionDenied`].
    pub permission_denied: i64,
    /// [`Fault::IpNotAllowed`].
    pub ip_not_allowed: i64,
    /// [`Fault::SystemBusy`], a [`Fault::Code`] that is not a number, and any fault the guard
    /// renders itself: a transient failure is the honest answer.
    pub system_busy: i64,
}

impl FaultCodes {
    /// The code `fault` renders as ([`Fault::Code`] as itself).
    pub fn of(&self, fault: &Fault) -> i64 {
        match fault {
            Fault::Code(c) => c.parse().unwrap_or(self.system_busy),
            Fault::TokenInvalid => self.token_invalid,
            Fault::CodeInvalid => self.code_invalid,
            Fault::RateLimited | Fault::RateLimitPage => self.rate_limited,
            Fault::PermissionDenied => self.permission_denied,
            Fault::IpNotAllowed => self.ip_not_allowed,
            _ => self.system_busy,
        }
    }
}

/// Shared per-fake state used by tests: clock, call counts, armed faults, endpoint list.
pub struct Harness {
    clock: FakeClock,
    calls: CallCounter,
    faults: FaultPlan,
    endpoints: Vec<EndpointSpec>,
    responder: Arc<dyn PlatformResponder>,
    shutdown: watch::Sender<bool>,
}

impl fmt::Debug for Harness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Harness")
            .field("clock_offset", &self.clock.offset())
            .field("calls", &self.calls.snapshot())
            .field("pending_faults", &self.faults.pending())
            .field("endpoints", &self.endpoint_names())
            .finish_non_exhaustive()
    }
}

impl Harness {
    /// The fake's clock.
    pub fn clock(&self) -> &FakeClock {
        &self.clock
    }

    /// Move the fake's clock forward (expire codes and tokens without sleeping).
    pub fn advance_clock(&self, by: Duration) {
        self.clock.advance(by);
    }

    /// The fake's call counter.
    pub fn call_counter(&self) -> &CallCounter {
        &self.calls
    }

    /// Requests that reached `endpoint` since the last reset, including rejected ones.
    ///
    /// [`UNMATCHED`] counts the requests no endpoint matched.
    ///
    /// # Panics
    /// If the fake has no endpoint of that name (a path, a typo): a count of an endpoint that
    /// does not exist would be 0 whatever the client did, an assertion that cannot fail.
    pub fn calls(&self, endpoint: &str) -> u64 {
        assert!(
            endpoint == UNMATCHED || self.endpoints.iter().any(|e| e.name == endpoint),
            "the fake has no endpoint named `{endpoint}` (endpoint names: {:?})",
            self.endpoint_names()
        );
        self.calls.get(endpoint)
    }

    /// Requests that reached the fake since the last reset (all endpoints and unknown paths).
    pub fn total_calls(&self) -> u64 {
        self.calls.total()
    }

    /// Forget all call counts.
    pub fn reset_calls(&self) {
        self.calls.reset();
    }

    /// The endpoints, in registration order.
    pub fn endpoints(&self) -> &[EndpointSpec] {
        &self.endpoints
    }

    /// The endpoint names, in registration order.
    pub fn endpoint_names(&self) -> Vec<&'static str> {
        self.endpoints.iter().map(|e| e.name).collect()
    }

    /// Arm `fault` on `endpoint` (or [`ANY_ENDPOINT`]) for `times` requests, after checking that
    /// the endpoint exists and can render the fault.
    pub fn inject(&self, endpoint: &str, fault: Fault, times: Times) -> Result<(), FaultError> {
        let targets: Vec<&EndpointSpec> = if endpoint == ANY_ENDPOINT {
            self.endpoints.iter().collect()
        } else {
            let spec = self
                .endpoints
                .iter()
                .find(|e| e.name == endpoint)
                .ok_or_else(|| FaultError::UnknownEndpoint(endpoint.to_owned()))?;
            vec![spec]
        };
        let unsupported = |spec: &EndpointSpec, reason: String| FaultError::Unsupported {
            endpoint: spec.name.to_owned(),
            fault: format!("{fault:?}"),
            reason,
        };
        for spec in targets {
            match &fault {
                Fault::HttpStatus(code) => {
                    if StatusCode::from_u16(*code).is_err() {
                        return Err(unsupported(spec, format!("{code} is not an HTTP status")));
                    }
                }
                Fault::OversizedBody(n) if *n > MAX_OVERSIZED_BODY => {
                    return Err(unsupported(
                        spec,
                        format!("at most {MAX_OVERSIZED_BODY} bytes"),
                    ));
                }
                f if f.is_transport() => {}
                f => self
                    .responder
                    .supports(spec, f)
                    .map_err(|reason| unsupported(spec, reason))?,
            }
        }
        self.faults.arm(endpoint, fault, times);
        Ok(())
    }

    /// Disarm every fault.
    pub fn clear_faults(&self) {
        self.faults.clear();
    }

    /// Number of armed fault entries.
    pub fn pending_faults(&self) -> usize {
        self.faults.pending()
    }

    /// True once the server was told to stop.
    pub fn is_shutting_down(&self) -> bool {
        *self.shutdown.borrow()
    }

    fn signal_shutdown(&self) {
        self.shutdown.send_replace(true);
    }

    /// Resolves when the server is told to stop (or immediately if it already was).
    pub async fn shutdown_signal(&self) {
        let mut rx = self.shutdown.subscribe();
        // An Err means the sender is gone, which also means "stop".
        let _ = rx.wait_for(|stop| *stop).await;
    }
}

/// A boxed endpoint handler.
type BoxHandler =
    Arc<dyn Fn(Request) -> Pin<Box<dyn Future<Output = Response> + Send>> + Send + Sync>;

/// Builder that turns endpoint handlers into a guarded [`Router`] plus its [`Harness`].
pub struct FakeRouter {
    clock: FakeClock,
    responder: Arc<dyn PlatformResponder>,
    endpoints: Vec<(EndpointSpec, BoxHandler)>,
}

impl fmt::Debug for FakeRouter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeRouter")
            .field(
                "endpoints",
                &self
                    .endpoints
                    .iter()
                    .map(|(s, _)| s.name)
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl FakeRouter {
    /// Start a fake whose time comes from `clock` and whose platform answers come from `responder`.
    pub fn new(clock: FakeClock, responder: Arc<dyn PlatformResponder>) -> Self {
        Self {
            clock,
            responder,
            endpoints: Vec::new(),
        }
    }

    /// Register an endpoint. The handler sees only requests with the right method and no fault;
    /// it may answer anything that converts into a response (e.g. [`http::Reply`]).
    pub fn endpoint<H, Fut>(mut self, spec: EndpointSpec, handler: H) -> Self
    where
        H: Fn(Request) -> Fut + Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: IntoResponse,
    {
        let handler = Arc::new(handler);
        let boxed: BoxHandler = Arc::new(move |req| {
            let fut = handler(req);
            Box::pin(async move { fut.await.into_response() })
        });
        self.endpoints.push((spec, boxed));
        self
    }

    /// Register the endpoint `name` (`method` on `path`, envelope `family`) served by
    /// `handler` over shared `state`: [`endpoint`](Self::endpoint) with [`with_state`].
    pub fn route<S, F, Fut>(
        self,
        state: &Arc<S>,
        (name, method, path, family): (&'static str, Method, &'static str, &'static str),
        handler: F,
    ) -> Self
    where
        S: Send + Sync + 'static,
        F: Fn(Arc<S>, Request) -> Fut + Send + Sync + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: IntoResponse,
    {
        let spec = EndpointSpec::new(name, method, path, family);
        self.endpoint(spec, with_state(state, handler))
    }

    /// The router (every endpoint guarded, unknown paths answered by the responder) and the
    /// harness tests use to drive it.
    ///
    /// Endpoint names and paths must be unique; a second endpoint on an already used path is a
    /// programming error in the platform fake: it is skipped with a warning.
    pub fn build(self) -> (Router, Arc<Harness>) {
        let (shutdown, _) = watch::channel(false);
        let harness = Arc::new(Harness {
            clock: self.clock,
            calls: CallCounter::new(),
            faults: FaultPlan::new(),
            endpoints: self.endpoints.iter().map(|(s, _)| s.clone()).collect(),
            responder: self.responder,
            shutdown,
        });
        let mut router = Router::new();
        let mut seen = BTreeMap::new();
        for (spec, handler) in self.endpoints {
            if seen.insert(spec.path, spec.name).is_some() {
                tracing::warn!(path = spec.path, "duplicate fake endpoint path ignored");
                continue;
            }
            let h = harness.clone();
            let path = spec.path;
            let spec = Arc::new(spec);
            router = router.route(
                path,
                any(move |req: Request| guard(h.clone(), spec.clone(), handler.clone(), req)),
            );
        }
        let h = harness.clone();
        let router = router.fallback(move |req: Request| {
            let h = h.clone();
            async move {
                h.calls.record(UNMATCHED);
                tracing::debug!(path = req.uri().path(), "fake: unknown path");
                h.responder.not_found(req.method(), req.uri().path())
            }
        });
        (router, harness)
    }
}

async fn guard(
    h: Arc<Harness>,
    spec: Arc<EndpointSpec>,
    handler: BoxHandler,
    req: Request,
) -> Response {
    h.calls.record(spec.name);
    // Never log the query or body: they carry secrets and codes.
    tracing::debug!(endpoint = spec.name, method = %req.method(), "fake request");
    if req.method() != spec.method {
        return h.responder.wrong_method(&spec, req.method());
    }
    let Some(fault) = h.faults.take(spec.name) else {
        return handler(req).await;
    };
    tracing::debug!(endpoint = spec.name, ?fault, "fake: injecting fault");
    match fault {
        Fault::Delay(d) => {
            tokio::select! {
                _ = tokio::time::sleep(d) => handler(req).await,
                _ = h.shutdown_signal() => stopping(),
            }
        }
        Fault::Hang => {
            h.shutdown_signal().await;
            stopping()
        }
        Fault::TruncatedBody => truncate(handler(req).await).await,
        Fault::HttpStatus(code) => {
            let status = StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            http::response(
                status,
                "text/plain;charset=utf-8",
                format!("fake upstream error: HTTP {code}"),
            )
        }
        Fault::HtmlErrorPage => http::html(StatusCode::BAD_GATEWAY, HTML_502.to_owned()),
        Fault::OversizedBody(n) => oversized(n),
        Fault::GarbageBody => garbage(),
        platform => h.responder.render_fault(&spec, &platform),
    }
}

fn stopping() -> Response {
    http::response(
        StatusCode::SERVICE_UNAVAILABLE,
        "text/plain;charset=utf-8",
        "fake server shutting down",
    )
}

const HTML_502: &str = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n\
<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";

async fn truncate(resp: Response) -> Response {
    let (mut parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .unwrap_or_default();
    let keep = if bytes.len() >= 2 { bytes.len() / 2 } else { 0 };
    let cut = if keep == 0 {
        axum::body::Bytes::from_static(b"{\"")
    } else {
        bytes.slice(..keep)
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(cut))
}

fn oversized(n: usize) -> Response {
    const HEAD: &str = "{\"errcode\":0,\"errmsg\":\"ok\",\"padding\":\"";
    const TAIL: &str = "\"}";
    let mut body = String::with_capacity(n.max(HEAD.len() + TAIL.len()));
    body.push_str(HEAD);
    let pad = n.saturating_sub(HEAD.len() + TAIL.len());
    body.extend(std::iter::repeat_n('x', pad));
    body.push_str(TAIL);
    let mut resp = http::response(StatusCode::OK, "application/json;charset=utf-8", body);
    if let Ok(v) = HeaderValue::from_str(&n.max(HEAD.len() + TAIL.len()).to_string()) {
        resp.headers_mut().insert(header::CONTENT_LENGTH, v);
    }
    resp
}

fn garbage() -> Response {
    let mut bytes = vec![0xFF_u8, 0xFE, 0x00, 0xC3];
    bytes.extend((0..1020).map(|_| rand::random::<u8>()));
    http::response(StatusCode::OK, "application/json;charset=utf-8", bytes)
}

/// A fake platform served over HTTP on an ephemeral loopback port.
///
/// Dropping it tells the server to stop (in the background); [`shutdown`](Self::shutdown) stops it
/// and waits.
pub struct FakeServer {
    addr: SocketAddr,
    base_url: String,
    harness: Arc<Harness>,
    task: Option<JoinHandle<()>>,
}

impl fmt::Debug for FakeServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeServer")
            .field("base_url", &self.base_url)
            .finish_non_exhaustive()
    }
}

impl FakeServer {
    /// Bind `127.0.0.1:0` (an ephemeral loopback port) and serve `router` on the current Tokio
    /// runtime.
    pub async fn start(router: Router, harness: Arc<Harness>) -> std::io::Result<Self> {
        Self::start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), router, harness).await
    }

    /// Like [`start`](Self::start) on a chosen address (e.g. a fixed port for a sandbox that a
    /// browser must reach). Prefer [`start`](Self::start) in tests: fixed ports collide.
    pub async fn start_on(
        addr: SocketAddr,
        router: Router,
        harness: Arc<Harness>,
    ) -> std::io::Result<Self> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let signal_source = harness.clone();
        let task = tokio::spawn(async move {
            let serve = axum::serve(listener, router)
                .with_graceful_shutdown(async move { signal_source.shutdown_signal().await });
            if let Err(err) = serve.await {
                tracing::warn!(%err, "fake server stopped with an error");
            }
        });
        tracing::debug!(%addr, "fake server listening");
        Ok(Self {
            addr,
            base_url: format!("http://{addr}"),
            harness,
            task: Some(task),
        })
    }

    /// `http://127.0.0.1:PORT` (no trailing slash).
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The bound socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The harness (clock, calls, faults) of the served fake.
    pub fn harness(&self) -> &Arc<Harness> {
        &self.harness
    }

    /// Stop the server and wait until it has stopped (at most 5 s, then it is aborted).
    pub async fn shutdown(mut self) {
        self.harness.signal_shutdown();
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(Duration::from_secs(5), &mut task)
                .await
                .is_err()
        {
            task.abort();
        }
    }
}

impl Drop for FakeServer {
    fn drop(&mut self) {
        self.harness.signal_shutdown();
    }
}
