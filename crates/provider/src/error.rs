//! The provider's one error type and its mapping to the OAuth 2.0 / OIDC error codes.
//!
//! Every variant carries a short, secret-free description (what was wrong, never the value:
//! no code, token, secret or state appears in a message). The `error` code a client sees is
//! [`ProviderError::code`]; the description goes into `error_description` for the protocol
//! errors and into the log only for the internal ones.

use axum::http::StatusCode;

/// What went wrong in a provider request. `Display` never shows a secret.
///
/// ```
/// use unilogin_provider::ProviderError;
/// let e = ProviderError::InvalidGrant("the code was used before".into());
/// assert_eq!(e.code(), "invalid_grant");
/// assert_eq!(e.to_string(), "invalid_grant: the code was used before");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProviderError {
    /// A parameter is missing, repeated, malformed or not allowed (RFC 6749 §4.1.2.1, §5.2).
    #[error("invalid_request: {0}")]
    InvalidRequest(String),
    /// Client authentication failed (RFC 6749 §5.2): unknown client, wrong secret, wrong
    /// method. Answered with 401.
    #[error("invalid_client: {0}")]
    InvalidClient(String),
    /// The code or refresh token is invalid, expired, used, revoked or was issued to another
    /// client, or `redirect_uri` / the PKCE verifier do not match (RFC 6749 §5.2).
    #[error("invalid_grant: {0}")]
    InvalidGrant(String),
    /// The client may not use this grant type or response (RFC 6749 §5.2).
    #[error("unauthorized_client: {0}")]
    UnauthorizedClient(String),
    /// The grant type is not one the provider knows (RFC 6749 §5.2).
    #[error("unsupported_grant_type: {0}")]
    UnsupportedGrantType(String),
    /// A requested scope is unknown or not allowed (RFC 6749 §5.2).
    #[error("invalid_scope: {0}")]
    InvalidScope(String),
    /// `response_type` is not `code` (RFC 6749 §4.1.2.1).
    #[error("unsupported_response_type: {0}")]
    UnsupportedResponseType(String),
    /// The request was refused (for example: the person's tenant is not one of the client's).
    #[error("access_denied: {0}")]
    AccessDenied(String),
    /// `prompt=none` and nobody is signed in, or the session is too old (OIDC Core §3.1.2.6).
    #[error("login_required: {0}")]
    LoginRequired(String),
    /// `prompt=none` and consent would be needed (OIDC Core §3.1.2.6).
    #[error("consent_required: {0}")]
    ConsentRequired(String),
    /// `prompt=none` and the login needs a choice (several platforms) (OIDC Core §3.1.2.6).
    #[error("interaction_required: {0}")]
    InteractionRequired(String),
    /// The bearer token is missing, malformed, expired or revoked (RFC 6750 §3.1).
    #[error("invalid_token: {0}")]
    InvalidToken(String),
    /// The store or the host is unreachable for now (try again).
    #[error("temporarily_unavailable: {0}")]
    TemporarilyUnavailable(String),
    /// A failure on our side (configuration, signing).
    #[error("server_error: {0}")]
    Server(String),
}

impl ProviderError {
    /// The error code of the protocol (`invalid_request`, `invalid_grant`, …).
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidRequest(_) => "invalid_request",
            Self::InvalidClient(_) => "invalid_client",
            Self::InvalidGrant(_) => "invalid_grant",
            Self::UnauthorizedClient(_) => "unauthorized_client",
            Self::UnsupportedGrantType(_) => "unsupported_grant_type",
            Self::InvalidScope(_) => "invalid_scope",
            Self::UnsupportedResponseType(_) => "unsupported_response_type",
            Self::AccessDenied(_) => "access_denied",
            Self::LoginRequired(_) => "login_required",
            Self::ConsentRequired(_) => "consent_required",
            Self::InteractionRequired(_) => "interaction_required",
            Self::InvalidToken(_) => "invalid_token",
            Self::TemporarilyUnavailable(_) => "temporarily_unavailable",
            Self::Server(_) => "server_error",
        }
    }

    /// The secret-free description.
    pub fn description(&self) -> &str {
        match self {
            Self::InvalidRequest(d)
            | Self::InvalidClient(d)
            | Self::InvalidGrant(d)
            | Self::UnauthorizedClient(d)
            | Self::UnsupportedGrantType(d)
            | Self::InvalidScope(d)
            | Self::UnsupportedResponseType(d)
            | Self::AccessDenied(d)
            | Self::LoginRequired(d)
            | Self::ConsentRequired(d)
            | Self::InteractionRequired(d)
            | Self::InvalidToken(d)
            | Self::TemporarilyUnavailable(d)
            | Self::Server(d) => d,
        }
    }

    /// Whether the description may be shown to the client: protocol errors yes, internal
    /// failures no (they are logged and answered with a generic text).
    pub fn is_internal(&self) -> bool {
        matches!(self, Self::Server(_) | Self::TemporarilyUnavailable(_))
    }

    /// The HTTP status of a token-endpoint answer (RFC 6749 §5.2): 401 for `invalid_client`,
    /// 500 / 503 for our failures, 400 otherwise.
    pub fn token_status(&self) -> StatusCode {
        match self {
            Self::InvalidClient(_) | Self::InvalidToken(_) => StatusCode::UNAUTHORIZED,
            Self::Server(_) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::TemporarilyUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// The description a client may see.
    pub(crate) fn public_description(&self) -> &str {
        if self.is_internal() {
            match self {
                Self::TemporarilyUnavailable(_) => "try again later",
                _ => "internal error",
            }
        } else {
            self.description()
        }
    }

    /// A store failure (unreachable, timed out): `temporarily_unavailable`.
    pub fn store(operation: &str, message: impl std::fmt::Display) -> Self {
        Self::TemporarilyUnavailable(format!("grant store: {operation}: {message}"))
    }
}

/// The result type of the provider.
pub type Result<T, E = ProviderError> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_statuses_follow_rfc_6749() {
        let client = ProviderError::InvalidClient("bad secret".into());
        assert_eq!(client.code(), "invalid_client");
        assert_eq!(client.token_status(), StatusCode::UNAUTHORIZED);
        let grant = ProviderError::InvalidGrant("used".into());
        assert_eq!(grant.token_status(), StatusCode::BAD_REQUEST);
        let store = ProviderError::store("take code", "timed out");
        assert_eq!(store.code(), "temporarily_unavailable");
        assert_eq!(store.token_status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(store.public_description(), "try again later");
        assert!(!store.public_description().contains("grant store"));
        assert_eq!(
            ProviderError::Server("key".into()).public_description(),
            "internal error"
        );
        assert_eq!(grant.public_description(), "used");
    }
}
