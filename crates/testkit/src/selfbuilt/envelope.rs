//! The self-built platform's envelope, error codes and fault rendering.
//!
//! * API endpoints answer `{"result": {"status": "OK", "payload": {…}}, "requestId": "…"}` on
//!   success and `{"result": {"status": "ERROR", "error": {"code": N, "message": "…"}},
//!   "requestId": "…"}` on failure, with an HTTP status that follows the code (see
//!   [`status_of`]). A rate-limited answer also carries `Retry-After`.
//! * The authorize page and its Approve form answer HTML.

use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::Response;
use serde_json::{Value, json};

use crate::faults::Fault;
use crate::server::{EndpointSpec, FaultCodes, NumericEnvelope, PlatformResponder};
use crate::store::random_id;
use crate::{http, pages};

/// Endpoint family tag of the JSON API endpoints.
pub(crate) const API: &str = "api";
/// Endpoint family tag of the browser pages (authorize, approve).
pub(crate) const PAGE: &str = "page";

/// A parameter is missing or malformed, or the body is not the encoding the endpoint wants.
pub const BAD_REQUEST: i64 = 1001;
/// The endpoint does not accept this HTTP method.
pub const METHOD_NOT_ALLOWED: i64 = 1002;
/// No endpoint at this path.
pub const NOT_FOUND: i64 = 1004;
/// Unknown `appId` or wrong `appSecret` at the token endpoint.
pub const APP_CREDENTIALS_INVALID: i64 = 2001;
/// The `X-Open-Token` app token is missing, unknown, revoked or expired.
pub const TOKEN_INVALID: i64 = 2002;
/// The app has not been granted the API (a scope is missing).
pub const PERMISSION_DENIED: i64 = 2003;
/// The caller's IP address is not on the app's allow-list.
pub const IP_NOT_ALLOWED: i64 = 2004;
/// The authorization code is unknown, used, expired or issued to another app.
pub const CODE_INVALID: i64 = 3001;
/// No such user in the app's organisation.
pub const USER_NOT_FOUND: i64 = 3004;
/// Too many requests (HTTP 429 with `Retry-After`).
pub const RATE_LIMITED: i64 = 4029;
/// The platform is temporarily unavailable (HTTP 503).
pub const SYSTEM_BUSY: i64 = 5000;

/// Seconds announced in `Retry-After` on rate-limited answers.
pub const RETRY_AFTER_SECS: u64 = 30;

/// The message of an error code.
pub(crate) fn message(code: i64) -> String {
    match code {
        BAD_REQUEST => "bad request",
        METHOD_NOT_ALLOWED => "method not allowed",
        NOT_FOUND => "no such API",
        APP_CREDENTIALS_INVALID => "invalid app credentials",
        TOKEN_INVALID => "access token invalid or expired",
        PERMISSION_DENIED => "the app has no permission for this API",
        IP_NOT_ALLOWED => "caller IP is not on the app's allow-list",
        CODE_INVALID => "authorization code invalid, used or expired",
        USER_NOT_FOUND => "user not found in this organisation",
        RATE_LIMITED => "too many requests",
        SYSTEM_BUSY => "service temporarily unavailable",
        other => return format!("fake self-built platform error {other}"),
    }
    .to_owned()
}

/// The HTTP status the platform answers an error code with.
pub fn status_of(code: i64) -> StatusCode {
    match code {
        METHOD_NOT_ALLOWED => StatusCode::METHOD_NOT_ALLOWED,
        NOT_FOUND | USER_NOT_FOUND => StatusCode::NOT_FOUND,
        APP_CREDENTIALS_INVALID | TOKEN_INVALID => StatusCode::UNAUTHORIZED,
        PERMISSION_DENIED | IP_NOT_ALLOWED => StatusCode::FORBIDDEN,
        RATE_LIMITED => StatusCode::TOO_MANY_REQUESTS,
        5000..=5999 => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    }
}

fn request_id() -> String {
    random_id("req-")[..20].to_owned()
}

/// Success: HTTP 200 `{"result": {"status": "OK", "payload": …}, "requestId": …}`.
pub(crate) fn ok(payload: Value) -> Response {
    http::json(
        StatusCode::OK,
        &json!({
            "result": {"status": "OK", "payload": payload},
            "requestId": request_id(),
        }),
    )
}

/// Error `code` with its message and HTTP status (plus `Retry-After` when rate limited).
pub(crate) fn error(code: i64) -> Response {
    error_with(code, &message(code))
}

/// Error `code` with a specific message.
pub(crate) fn error_with(code: i64, text: &str) -> Response {
    tracing::debug!(code, "fake self-built platform error");
    let mut resp = http::json(
        status_of(code),
        &json!({
            "result": {"status": "ERROR", "error": {"code": code, "message": text}},
            "requestId": request_id(),
        }),
    );
    if code == RATE_LIMITED {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
    }
    resp
}

/// An error page of the browser side.
pub(crate) fn error_page(status: StatusCode, text: &str) -> Response {
    pages::error_page(status, ("Sign-in error", "Sign-in error"), text, "")
}

/// The API gateway's own rate-limit page (HTML, not the platform's JSON).
fn rate_limit_page() -> Response {
    let mut resp = http::html(
        StatusCode::TOO_MANY_REQUESTS,
        "<html>\r\n<head><title>429 Too Many Requests</title></head>\r\n<body>\r\n\
         <center><h1>429 Too Many Requests</h1></center>\r\n</body>\r\n</html>\r\n"
            .to_owned(),
    );
    resp.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECS));
    resp
}

const ENVELOPE: NumericEnvelope = NumericEnvelope {
    api: API,
    page: PAGE,
    pages_only: "the browser pages only support transport faults",
    zero: "the platform has no error code 0 (success is status OK)",
    codes: "error codes",
    no_sub_code: "the envelope has no sub-code (that is DingTalk's errcode 88)",
};

const FAULT_CODES: FaultCodes = FaultCodes {
    token_invalid: TOKEN_INVALID,
    code_invalid: CODE_INVALID,
    rate_limited: RATE_LIMITED,
    permission_denied: PERMISSION_DENIED,
    ip_not_allowed: IP_NOT_ALLOWED,
    system_busy: SYSTEM_BUSY,
};

/// Renders platform faults, wrong methods and unknown paths the self-built platform's way.
#[derive(Debug, Default)]
pub struct SelfBuiltResponder;

impl PlatformResponder for SelfBuiltResponder {
    fn supports(&self, endpoint: &EndpointSpec, fault: &Fault) -> Result<(), String> {
        ENVELOPE.supports(endpoint, fault)
    }

    fn render_fault(&self, endpoint: &EndpointSpec, fault: &Fault) -> Response {
        if endpoint.family == PAGE {
            return error_page(StatusCode::SERVICE_UNAVAILABLE, "service unavailable");
        }
        match fault {
            Fault::RateLimitPage => rate_limit_page(),
            fault => error(FAULT_CODES.of(fault)),
        }
    }

    fn wrong_method(&self, endpoint: &EndpointSpec, _method: &Method) -> Response {
        match endpoint.family {
            API => error(METHOD_NOT_ALLOWED),
            _ => error_page(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
        }
    }

    fn not_found(&self, _method: &Method, _path: &str) -> Response {
        error(NOT_FOUND)
    }
}
