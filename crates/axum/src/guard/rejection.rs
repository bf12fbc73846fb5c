//! RFC 6750 error responses.

use std::fmt;
use std::sync::Arc;

use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::session::VerifyError;

/// Why a request was not let through.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RejectionKind {
    /// No bearer token (no `Authorization` header, or another scheme): 401 with a bare
    /// `WWW-Authenticate: Bearer realm=".."` (RFC 6750 §3.1: no error code).
    Missing,
    /// More than one `Authorization` header: 400 `invalid_request`.
    InvalidRequest,
    /// The token is malformed, expired, not yet valid, badly signed, for another issuer or
    /// audience, or revoked: 401 `invalid_token`. The reason is for logs only; the response
    /// does not say it.
    InvalidToken(VerifyError),
    /// The token is valid but lacks scopes: 403 `insufficient_scope` with the scopes the route
    /// needs (space-separated).
    InsufficientScope(String),
    /// The token is valid but was issued for a tenant the guard does not serve
    /// ([`GuardBuilder::tenant`](super::GuardBuilder::tenant)), or not the one a handler
    /// requires ([`AuthUser::require_tenant`](super::AuthUser::require_tenant)): 403
    /// `wrong_tenant`, whatever scopes the token carries.
    WrongTenant,
    /// The issuer's keys could not be fetched, or the revocation list cannot be reached, so the
    /// token cannot be checked: 503.
    Unavailable,
    /// [`AuthUser`](super::AuthUser) or [`RequireScopes`](super::RequireScopes) was used on a
    /// route that the guard layer does not cover: 500 (a wiring mistake, logged as an error).
    NotGuarded,
}

/// A rejected request, rendered as an RFC 6750 response by [`IntoResponse`].
///
/// The JSON body names only the error code (`{"error":"invalid_token"}`), never the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthRejection {
    kind: RejectionKind,
    realm: Arc<str>,
}

impl AuthRejection {
    pub(crate) fn new(kind: RejectionKind, realm: Arc<str>) -> Self {
        Self { kind, realm }
    }

    /// What went wrong.
    pub fn kind(&self) -> &RejectionKind {
        &self.kind
    }

    /// The HTTP status of the response.
    pub fn status(&self) -> StatusCode {
        match self.kind {
            RejectionKind::Missing | RejectionKind::InvalidToken(_) => StatusCode::UNAUTHORIZED,
            RejectionKind::InvalidRequest => StatusCode::BAD_REQUEST,
            RejectionKind::InsufficientScope(_) | RejectionKind::WrongTenant => {
                StatusCode::FORBIDDEN
            }
            RejectionKind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            RejectionKind::NotGuarded => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The error code, if the response carries one: RFC 6750's, plus `wrong_tenant` (403) for
    /// a token of another tenant.
    pub fn error_code(&self) -> Option<&'static str> {
        match self.kind {
            RejectionKind::Missing => None,
            RejectionKind::InvalidRequest => Some("invalid_request"),
            RejectionKind::InvalidToken(_) => Some("invalid_token"),
            RejectionKind::InsufficientScope(_) => Some("insufficient_scope"),
            RejectionKind::WrongTenant => Some("wrong_tenant"),
            RejectionKind::Unavailable => Some("temporarily_unavailable"),
            RejectionKind::NotGuarded => Some("server_error"),
        }
    }

    /// The `WWW-Authenticate` value, for 400, 401 and 403.
    pub fn www_authenticate(&self) -> Option<String> {
        let realm = &self.realm;
        match &self.kind {
            RejectionKind::Missing => Some(format!("Bearer realm=\"{realm}\"")),
            RejectionKind::InvalidRequest
            | RejectionKind::InvalidToken(_)
            | RejectionKind::WrongTenant => Some(format!(
                "Bearer realm=\"{realm}\", error=\"{}\"",
                self.error_code().unwrap_or_default()
            )),
            RejectionKind::InsufficientScope(scope) => Some(format!(
                "Bearer realm=\"{realm}\", error=\"insufficient_scope\", scope=\"{scope}\""
            )),
            RejectionKind::Unavailable | RejectionKind::NotGuarded => None,
        }
    }
}

impl fmt::Display for AuthRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            RejectionKind::Missing => f.write_str("no bearer token"),
            RejectionKind::InvalidRequest => f.write_str("more than one Authorization header"),
            RejectionKind::InvalidToken(r) => write!(f, "invalid bearer token: {r}"),
            RejectionKind::InsufficientScope(s) => write!(f, "insufficient scope, needs {s}"),
            RejectionKind::WrongTenant => f.write_str("the token is for another tenant"),
            RejectionKind::Unavailable => f.write_str("the issuer's keys are unavailable"),
            RejectionKind::NotGuarded => f.write_str("route not covered by the guard layer"),
        }
    }
}

impl std::error::Error for AuthRejection {}

impl IntoResponse for AuthRejection {
    fn into_response(self) -> Response {
        let body = match self.error_code() {
            Some(code) => format!("{{\"error\":\"{code}\"}}"),
            None => "{\"error\":\"unauthorized\"}".to_string(),
        };
        let mut response = (self.status(), body).into_response();
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        // The realm and scopes were sanitised / validated when the guard and the scope layer
        // were built, so this conversion only fails on a bug; the header is then left out.
        if let Some(value) = self
            .www_authenticate()
            .and_then(|v| HeaderValue::from_str(&v).ok())
        {
            headers.insert(WWW_AUTHENTICATE, value);
        }
        if self.kind == RejectionKind::Unavailable {
            headers.insert(RETRY_AFTER, HeaderValue::from_static("5"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rej(kind: RejectionKind) -> Response {
        AuthRejection::new(kind, Arc::from("api")).into_response()
    }

    fn www(r: &Response) -> Option<&str> {
        r.headers()
            .get(WWW_AUTHENTICATE)
            .map(|v| v.to_str().unwrap())
    }

    #[test]
    fn responses_follow_rfc_6750() {
        let r = rej(RejectionKind::Missing);
        assert_eq!(r.status(), 401);
        assert_eq!(www(&r), Some("Bearer realm=\"api\""));
        let r = rej(RejectionKind::InvalidToken(VerifyError::BadSignature));
        assert_eq!(r.status(), 401);
        assert_eq!(
            www(&r),
            Some("Bearer realm=\"api\", error=\"invalid_token\"")
        );
        let r = rej(RejectionKind::InsufficientScope("admin:write".into()));
        assert_eq!(r.status(), 403);
        assert_eq!(
            www(&r),
            Some("Bearer realm=\"api\", error=\"insufficient_scope\", scope=\"admin:write\"")
        );
        let r = rej(RejectionKind::WrongTenant);
        assert_eq!(r.status(), 403);
        assert_eq!(
            www(&r),
            Some("Bearer realm=\"api\", error=\"wrong_tenant\"")
        );
        let r = rej(RejectionKind::InvalidRequest);
        assert_eq!(r.status(), 400);
        assert_eq!(
            www(&r),
            Some("Bearer realm=\"api\", error=\"invalid_request\"")
        );
        let r = rej(RejectionKind::Unavailable);
        assert_eq!(r.status(), 503);
        assert_eq!(www(&r), None);
        assert_eq!(r.headers()[RETRY_AFTER], "5");
        assert_eq!(rej(RejectionKind::NotGuarded).status(), 500);
    }

    #[test]
    fn reasons_do_not_reach_the_client() {
        for reason in [
            VerifyError::BadSignature,
            VerifyError::Expired,
            VerifyError::Revoked,
            VerifyError::WrongIssuer,
        ] {
            let a = AuthRejection::new(RejectionKind::InvalidToken(reason), Arc::from("api"));
            let b = AuthRejection::new(
                RejectionKind::InvalidToken(VerifyError::Malformed),
                Arc::from("api"),
            );
            assert_eq!(a.www_authenticate(), b.www_authenticate());
            assert_eq!(a.error_code(), b.error_code());
        }
    }
}
