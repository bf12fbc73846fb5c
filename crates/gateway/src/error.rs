//! HTTP errors: every failure becomes a status and a body `{error, message, trace_id}` (JSON, or
//! a small HTML page for browsers that ask for HTML).
//!
//! `error` is a stable machine-readable kind ([`unilogin::Error::kind`] for library errors).
//! `message` never carries a secret; for upstream and server-side failures it is deliberately
//! generic, and the full error goes to the log line carrying the same trace id.

use std::time::Duration;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use unilogin::Error;

use crate::pages;
use crate::trace::TraceId;

/// An HTTP error response.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable kind.
    pub kind: &'static str,
    /// Human-readable, secret-free message.
    pub message: String,
    /// `Retry-After`, for 503s caused by an upstream rate limit.
    pub retry_after: Option<Duration>,
    /// Render an HTML page instead of JSON.
    pub html: bool,
    /// `WWW-Authenticate: Bearer` (401 on token-protected endpoints).
    pub bearer_challenge: bool,
}

impl ApiError {
    /// An error with a status, kind and message.
    pub fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            kind,
            message: message.into(),
            retry_after: None,
            html: false,
            bearer_challenge: false,
        }
    }

    /// 503 with `kind` and `Retry-After: 1`: a dependency (a store) cannot answer right now;
    /// the client should retry, not conclude anything.
    pub fn unavailable(kind: &'static str, message: impl Into<String>) -> Self {
        Self {
            retry_after: Some(Duration::from_secs(1)),
            ..Self::new(StatusCode::SERVICE_UNAVAILABLE, kind, message)
        }
    }

    /// 400 with `kind`.
    pub fn bad_request(kind: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, kind, message)
    }

    /// 401 `unauthenticated` with a Bearer challenge.
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self {
            bearer_challenge: true,
            ..Self::new(StatusCode::UNAUTHORIZED, "unauthenticated", message)
        }
    }

    /// Render as HTML when `html` is true (browser-facing endpoints).
    pub fn html(mut self, html: bool) -> Self {
        self.html = html;
        self
    }

    /// The status a library error maps to.
    pub fn status_of(e: &Error) -> StatusCode {
        match e {
            Error::UnknownPlatform { .. }
            | Error::UnknownTenant { .. }
            | Error::PlatformNotConfigured { .. } => StatusCode::NOT_FOUND,
            Error::Disabled { .. } | Error::NotInTenant { .. } => StatusCode::FORBIDDEN,
            // The person's contact data matches two accounts, or the identity is linked
            // elsewhere: a conflict an operator resolves (link explicitly, or merge).
            Error::Identity(
                unilogin::identity::IdentityError::Ambiguous { .. }
                | unilogin::identity::IdentityError::AlreadyLinked { .. },
            ) => StatusCode::CONFLICT,
            Error::Identity(_) => StatusCode::NOT_FOUND,
            Error::State(_)
            | Error::RedirectNotAllowed { .. }
            | Error::InvalidCode { .. }
            | Error::InvalidCallback { .. }
            | Error::RedirectLoginRequired { .. }
            | Error::InvalidPageUrl(_)
            | Error::Unsupported { .. } => StatusCode::BAD_REQUEST,
            Error::ReauthRequired { .. } => StatusCode::UNAUTHORIZED,
            // A store app whose ticket has not been pushed yet: the platform pushes it (or is
            // asked to resend it); retry later.
            Error::RateLimited { .. } | Error::Store { .. } | Error::TicketMissing { .. } => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Error::Upstream {
                transient: true, ..
            } => StatusCode::SERVICE_UNAVAILABLE,
            Error::Timeout { .. } => StatusCode::GATEWAY_TIMEOUT,
            Error::TokenInvalid { .. }
            | Error::InvalidIdToken { .. }
            | Error::Misconfigured { .. }
            | Error::Upstream { .. }
            | Error::BadResponse { .. }
            | Error::Transport { .. }
            | Error::Mapping { .. } => StatusCode::BAD_GATEWAY,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        let status = Self::status_of(&e);
        let message = match &e {
            // Actionable by the caller, and secret-free by construction of `Error`.
            Error::UnknownPlatform { .. }
            | Error::UnknownTenant { .. }
            | Error::PlatformNotConfigured { .. }
            | Error::Disabled { .. }
            | Error::NotInTenant { .. }
            | Error::State(_)
            | Error::RedirectNotAllowed { .. }
            | Error::InvalidCode { .. }
            | Error::ReauthRequired { .. }
            | Error::InvalidCallback { .. }
            | Error::Identity(_)
            | Error::Unsupported { .. } => e.to_string(),
            Error::RedirectLoginRequired { platform } => format!(
                "platform `{platform}` does not accept a posted code: its codes are redeemed only \
                 by the redirect login they belong to (with its state and PKCE verifier); start \
                 the login at `GET /auth/{{tenant}}/{platform}/login` instead"
            ),
            Error::Store { .. } => "the login state store is unavailable; try again".into(),
            Error::RateLimited { .. } => "the platform is rate limiting logins; retry later".into(),
            Error::Timeout { .. } => "the platform did not answer in time".into(),
            Error::Config { .. } | Error::Misconfigured { .. } => {
                "the login is misconfigured for this tenant; the operator has been told".into()
            }
            Error::Internal(_) => "internal error".into(),
            _ => "the platform could not complete the login".into(),
        };
        if status.is_server_error() {
            tracing::error!(error = %e, kind = e.kind(), "request failed");
        } else {
            tracing::info!(error = %e, kind = e.kind(), "request refused");
        }
        let retry_after = match &e {
            Error::RateLimited { retry_after, .. } => {
                Some(retry_after.unwrap_or(Duration::from_secs(5)))
            }
            Error::Upstream {
                transient: true, ..
            } => Some(Duration::from_secs(1)),
            _ => None,
        };
        Self {
            retry_after,
            ..Self::new(status, e.kind(), message)
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let trace_id = TraceId::current();
        let mut response = if self.html {
            pages::error_page(self.status, self.kind, &self.message, trace_id.as_deref())
        } else {
            (
                self.status,
                axum::Json(json!({
                    "error": self.kind,
                    "message": self.message,
                    "trace_id": trace_id,
                })),
            )
                .into_response()
        };
        let headers = response.headers_mut();
        if let Some(d) = self.retry_after {
            let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
            if let Ok(v) = HeaderValue::from_str(&secs.max(1).to_string()) {
                headers.insert(header::RETRY_AFTER, v);
            }
        }
        if self.bearer_challenge {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"unilogin\""),
            );
        }
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use unilogin::error::ErrorClass;
    use unilogin::error::StateProblem;
    use unilogin::{PlatformName, TenantId, UpstreamCode, UpstreamCtx};

    fn ctx() -> UpstreamCtx {
        UpstreamCtx::new(
            Some(TenantId::new("acme").unwrap()),
            PlatformName::new("some-platform").unwrap(),
            "gettoken",
        )
    }

    #[test]
    fn statuses() {
        let t = TenantId::new("acme").unwrap();
        let cases: Vec<(Error, StatusCode)> = vec![
            // An id_token that fails verification is the provider's fault: 502, not 500.
            (
                Error::InvalidIdToken {
                    ctx: ctx(),
                    problem: unilogin::error::IdTokenProblem::Malformed,
                },
                StatusCode::BAD_GATEWAY,
            ),
            (
                Error::UnknownTenant { tenant: "x".into() },
                StatusCode::NOT_FOUND,
            ),
            (
                Error::Disabled {
                    tenant: t.clone(),
                    platform: PlatformName::new("some-platform").unwrap(),
                },
                StatusCode::FORBIDDEN,
            ),
            (
                Error::RedirectLoginRequired {
                    platform: PlatformName::new("some-platform").unwrap(),
                },
                StatusCode::BAD_REQUEST,
            ),
            (
                Error::Store {
                    store: "redis",
                    operation: "take",
                    message: "timed out".into(),
                },
                StatusCode::SERVICE_UNAVAILABLE,
            ),
            (Error::State(StateProblem::Reused), StatusCode::BAD_REQUEST),
            (
                Error::RedirectNotAllowed { tenant: t },
                StatusCode::BAD_REQUEST,
            ),
            (
                Error::from_class(
                    ErrorClass::RateLimited,
                    ctx(),
                    UpstreamCode::Number(90002),
                    "",
                    None,
                ),
                StatusCode::SERVICE_UNAVAILABLE,
            ),
            (Error::Timeout { ctx: ctx() }, StatusCode::GATEWAY_TIMEOUT),
            (
                Error::InvalidCallback { reason: "no code" },
                StatusCode::BAD_REQUEST,
            ),
        ];
        for (e, status) in cases {
            assert_eq!(ApiError::from(e.clone()).status, status, "{e}");
        }
    }

    #[test]
    fn rate_limit_sets_retry_after_and_hides_details() {
        let e = Error::from_class(
            ErrorClass::RateLimited,
            ctx(),
            UpstreamCode::Number(90002),
            "",
            Some(Duration::from_millis(7_500)),
        );
        let r = ApiError::from(e).into_response();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.headers()[header::RETRY_AFTER], "8");
    }

    #[test]
    fn redirect_login_required_says_what_to_do_and_store_errors_stay_generic() {
        let e = Error::RedirectLoginRequired {
            platform: PlatformName::new("some-platform").unwrap(),
        };
        let a = ApiError::from(e);
        assert_eq!(a.kind, "redirect_login_required");
        assert!(
            a.message.contains("/auth/{tenant}/some-platform/login"),
            "{}",
            a.message
        );
        let a = ApiError::from(Error::Store {
            store: "redis",
            operation: "take",
            message: "Io: connection refused".into(),
        });
        assert_eq!(a.kind, "store_unavailable");
        assert!(!a.message.contains("refused"), "{}", a.message);
    }

    #[test]
    fn misconfiguration_message_is_generic() {
        let e = Error::config(Some(&TenantId::new("acme").unwrap()), None, "app_key", "x");
        let a = ApiError::from(e);
        assert_eq!(a.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(a.kind, "config");
        assert!(!a.message.contains("app_key"));
    }
}
