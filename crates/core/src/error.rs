//! The one error type of unilogin.
//!
//! Every variant says *where* it happened (tenant, platform, endpoint) and *what a caller can do*
//! about it, and none of them can carry a secret: the fields are identifiers, upstream codes,
//! upstream messages (which platforms never fill with credentials) and body excerpts that went
//! through [`redact_excerpt`].
//!
//! `Error` is `Clone` so that one failed token refresh can be handed to every caller waiting for
//! it.

use std::fmt;
use std::time::Duration;

use crate::types::{PlatformName, TenantId};

/// Convenience alias.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Where an upstream call happened: which tenant, platform and endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamCtx {
    /// The tenant the call was made for, if known.
    pub tenant: Option<TenantId>,
    /// The platform called.
    pub platform: PlatformName,
    /// A short, secret-free name of the endpoint, e.g. `topapi/v2/user/get`.
    pub endpoint: &'static str,
}

impl UpstreamCtx {
    /// Builds a context.
    pub fn new(tenant: Option<TenantId>, platform: PlatformName, endpoint: &'static str) -> Self {
        Self {
            tenant,
            platform,
            endpoint,
        }
    }

    /// The same context for another endpoint.
    pub fn at(&self, endpoint: &'static str) -> Self {
        Self {
            endpoint,
            ..self.clone()
        }
    }
}

impl fmt::Display for UpstreamCtx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.tenant {
            Some(t) => write!(
                f,
                "tenant `{t}` platform `{}` at `{}`",
                self.platform, self.endpoint
            ),
            None => write!(f, "platform `{}` at `{}`", self.platform, self.endpoint),
        }
    }
}

/// A platform's error code: numeric (`errcode`, `code`) or textual (DingTalk v1 `code`, OAuth2
/// `error`). An optional sub-code carries DingTalk's `sub_code` under errcode 88.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum UpstreamCode {
    /// A numeric code such as `40014`.
    Number(i64),
    /// A textual code such as `InvalidAuthentication` or `invalid_grant`.
    Text(String),
    /// A code that wraps a more precise sub-code (DingTalk errcode 88 with `sub_code`).
    WithSub(i64, String),
    /// No code in the body; the HTTP status is the only signal.
    Http(u16),
}

impl fmt::Display for UpstreamCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UpstreamCode::Number(n) => write!(f, "{n}"),
            UpstreamCode::Text(s) => f.write_str(s),
            UpstreamCode::WithSub(n, s) => write!(f, "{n}/{s}"),
            UpstreamCode::Http(s) => write!(f, "HTTP {s}"),
        }
    }
}

/// What a caller can do about a platform error. Each platform crate classifies its codes into
/// these; the core acts on the class (invalidate and retry, back off, fail fast).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorClass {
    /// The app access token was rejected: invalidate that token and retry the call once.
    TokenInvalid,
    /// A user access token is invalid or expired: refresh it, or authenticate again.
    UserTokenInvalid,
    /// Rate limited: back off.
    RateLimited,
    /// The authorization code is unknown, expired or used: never retry it.
    InvalidCode,
    /// The platform rejects the app's set-up; the hint says what the operator must fix.
    Misconfigured(&'static str),
    /// The person is not a member of the tenant's organisation.
    NotInTenant,
    /// A transient platform fault (system busy, 5xx).
    Transient,
    /// Anything else.
    Other,
}

/// What kind of unusable body an upstream returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadBody {
    /// An HTML page (gateway error, ban page, login page).
    Html,
    /// An empty body.
    Empty,
    /// Not valid JSON, or JSON of an unexpected shape.
    Malformed,
    /// Larger than the configured limit.
    TooLarge,
}

impl fmt::Display for BadBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BadBody::Html => "an HTML page instead of JSON",
            BadBody::Empty => "an empty body",
            BadBody::Malformed => "a malformed body",
            BadBody::TooLarge => "a body over the size limit",
        })
    }
}

/// Problems with a web login's `state` or redirect target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateProblem {
    /// No state was presented.
    Missing,
    /// The state is unknown, forged or was tampered with.
    Unknown,
    /// The state expired.
    Expired,
    /// The state was already used.
    Reused,
    /// The state belongs to another browser (cookie mismatch).
    WrongBrowser,
    /// The state was issued for another tenant or platform.
    WrongTarget,
    /// The callback's `iss` names another issuer than the provider's (RFC 9207).
    WrongIssuer,
    /// The provider promises `iss` in its callbacks (RFC 9207) and this one has none.
    MissingIssuer,
}

impl fmt::Display for StateProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StateProblem::Missing => "missing",
            StateProblem::Unknown => "unknown or tampered",
            StateProblem::Expired => "expired",
            StateProblem::Reused => "already used",
            StateProblem::WrongBrowser => "issued to another browser",
            StateProblem::WrongTarget => "issued for another tenant or platform",
            StateProblem::WrongIssuer => {
                "answered by another issuer than the provider's (RFC 9207 `iss`)"
            }
            StateProblem::MissingIssuer => "lacks the `iss` the provider promises (RFC 9207)",
        })
    }
}

/// Why an OpenID Connect `id_token` was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdTokenProblem {
    /// Not a well-formed JWT, or a required claim (`sub`, `iss`, `aud`, `exp`) is missing.
    Malformed,
    /// Signed with an algorithm the configuration does not allow (`none`, HMAC, ...).
    Algorithm,
    /// Signed with a key the provider's JWKS does not hold, even after a refetch.
    UnknownKey,
    /// The signature does not verify.
    Signature,
    /// The `iss` claim is not the provider's issuer.
    Issuer,
    /// The `aud` (or `azp`) claim does not name this client.
    Audience,
    /// The token expired (or is not valid yet).
    Expired,
    /// The `nonce` claim is not the one sent at authorize time.
    Nonce,
    /// The userinfo `sub` differs from the `id_token`'s.
    Subject,
}

impl fmt::Display for IdTokenProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            IdTokenProblem::Malformed => "is malformed or lacks a required claim",
            IdTokenProblem::Algorithm => "uses a signing algorithm that is not allowed",
            IdTokenProblem::UnknownKey => "is signed with a key the provider does not publish",
            IdTokenProblem::Signature => "has an invalid signature",
            IdTokenProblem::Issuer => "was issued by another issuer",
            IdTokenProblem::Audience => "was issued to another client",
            IdTokenProblem::Expired => "is expired or not valid yet",
            IdTokenProblem::Nonce => "does not carry the nonce sent at authorize time",
            IdTokenProblem::Subject => "names another subject than the userinfo response",
        })
    }
}

/// The error type of every unilogin operation.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No platform of that name is registered (its crate or feature is not enabled).
    #[error("unknown platform `{name}`; registered platforms: [{}]", .registered.join(", "))]
    UnknownPlatform {
        /// The name asked for.
        name: String,
        /// The platforms this binary has.
        registered: Vec<&'static str>,
    },

    /// The tenant is not configured.
    #[error("unknown tenant `{tenant}`")]
    UnknownTenant {
        /// The tenant asked for.
        tenant: String,
    },

    /// The tenant exists but has no configuration for that platform.
    #[error("platform `{platform}` is not configured for tenant `{tenant}`")]
    PlatformNotConfigured {
        /// The tenant.
        tenant: TenantId,
        /// The platform.
        platform: String,
    },

    /// The tenant's configuration for the platform is disabled or deprecated.
    #[error("platform `{platform}` is disabled for tenant `{tenant}`")]
    Disabled {
        /// The tenant.
        tenant: TenantId,
        /// The platform.
        platform: PlatformName,
    },

    /// A configuration value is invalid.
    #[error("invalid configuration{}: field `{field}`: {reason}", fmt_scope(.tenant, .platform))]
    Config {
        /// The tenant, if the configuration belongs to one.
        tenant: Option<TenantId>,
        /// The platform, if the configuration belongs to one.
        platform: Option<String>,
        /// The offending field (dotted path).
        field: String,
        /// What is wrong.
        reason: String,
    },

    /// The platform rejected the app access token; the core invalidates it and retries once.
    #[error("{ctx}: the platform rejected the access token (code {code})")]
    TokenInvalid {
        /// Where.
        ctx: UpstreamCtx,
        /// The platform's code.
        code: UpstreamCode,
    },

    /// A user's access or refresh token is invalid or expired: the user must log in again.
    #[error(
        "{ctx}: the user's token is invalid or expired (code {code}); re-authentication required"
    )]
    ReauthRequired {
        /// Where.
        ctx: UpstreamCtx,
        /// The platform's code.
        code: UpstreamCode,
    },

    /// The authorization code is unknown, expired or already used. Never retried.
    #[error("{ctx}: the authorization code is invalid, expired or already used (code {code})")]
    InvalidCode {
        /// Where.
        ctx: UpstreamCtx,
        /// The platform's code.
        code: UpstreamCode,
    },

    /// The platform is rate limiting this app or server.
    #[error("{ctx}: rate limited (code {code}){}", fmt_retry(.retry_after))]
    RateLimited {
        /// Where.
        ctx: UpstreamCtx,
        /// The platform's code.
        code: UpstreamCode,
        /// How long the platform asked us to wait, when it said.
        retry_after: Option<Duration>,
    },

    /// The platform rejects the app's set-up (IP whitelist, redirect domain, permissions).
    #[error("{ctx}: platform configuration problem (code {code}): {hint}")]
    Misconfigured {
        /// Where.
        ctx: UpstreamCtx,
        /// The platform's code.
        code: UpstreamCode,
        /// What the operator must fix.
        hint: String,
    },

    /// The person is not a member of the tenant's organisation.
    #[error("{ctx}: the user is not a member of this tenant's organisation")]
    NotInTenant {
        /// Where.
        ctx: UpstreamCtx,
    },

    /// Any other error the platform reported.
    #[error("{ctx}: platform error {code}: {message}")]
    Upstream {
        /// Where.
        ctx: UpstreamCtx,
        /// The platform's code.
        code: UpstreamCode,
        /// The platform's message (localized text; informational only).
        message: String,
        /// Whether retrying later may succeed (system busy, 5xx).
        transient: bool,
    },

    /// An OpenID Connect `id_token` failed verification; its claims were not used.
    #[error("{ctx}: the id_token {problem}")]
    InvalidIdToken {
        /// Where.
        ctx: UpstreamCtx,
        /// What was wrong.
        problem: IdTokenProblem,
    },

    /// The platform answered with something that is not the expected JSON.
    #[error("{ctx}: HTTP {status} with {kind}: {excerpt:?}")]
    BadResponse {
        /// Where.
        ctx: UpstreamCtx,
        /// HTTP status.
        status: u16,
        /// What was wrong with the body.
        kind: BadBody,
        /// A short excerpt of the body with anything secret-looking masked.
        excerpt: String,
    },

    /// The upstream did not answer in time.
    #[error("{ctx}: timed out")]
    Timeout {
        /// Where.
        ctx: UpstreamCtx,
    },

    /// The connection failed (refused, reset, DNS, TLS).
    #[error("{ctx}: transport error: {message}")]
    Transport {
        /// Where.
        ctx: UpstreamCtx,
        /// The transport's description, without the request URL.
        message: String,
    },

    /// The profile could not be mapped from the platform's user document.
    #[error("mapping for platform `{platform}`: {message}")]
    Mapping {
        /// The platform whose rules failed.
        platform: String,
        /// What failed (field, paths tried).
        message: String,
    },

    /// A web login's `state` check failed.
    #[error("login state {0}")]
    State(StateProblem),

    /// A redirect target is not on the tenant's allow-list.
    #[error("redirect URI is not allowed for tenant `{tenant}`")]
    RedirectNotAllowed {
        /// The tenant.
        tenant: TenantId,
    },

    /// The operation is not offered by this platform (for example refreshing user tokens).
    #[error("platform `{platform}` does not support {operation}")]
    Unsupported {
        /// The platform.
        platform: PlatformName,
        /// The operation.
        operation: &'static str,
    },

    /// The platform's codes also arrive on browser redirects, so a code alone (without the
    /// state and PKCE verifier of the redirect login it belongs to) is never redeemed.
    #[error(
        "platform `{platform}` codes are redeemed only by finishing the redirect login they belong to (with its state), never posted alone"
    )]
    RedirectLoginRequired {
        /// The platform.
        platform: PlatformName,
    },

    /// A callback lacks what a redirect login needs (its code).
    #[error("invalid callback: {reason}")]
    InvalidCallback {
        /// What is wrong.
        reason: &'static str,
    },

    /// A shared store (state, revocations, tokens) failed; the operation failed closed.
    #[error("{store} store: {operation} failed: {message}")]
    Store {
        /// Which store (`redis`, `sql`, `memory`).
        store: &'static str,
        /// What was being done.
        operation: &'static str,
        /// The store's description, without credentials.
        message: String,
    },

    /// An internal invariant failed (a background task died, a lock was poisoned).
    #[error("internal error: {0}")]
    Internal(String),
}

fn fmt_scope(tenant: &Option<TenantId>, platform: &Option<String>) -> String {
    match (tenant, platform) {
        (Some(t), Some(p)) => format!(" for tenant `{t}` platform `{p}`"),
        (Some(t), None) => format!(" for tenant `{t}`"),
        (None, Some(p)) => format!(" for platform `{p}`"),
        (None, None) => String::new(),
    }
}

fn fmt_retry(retry: &Option<Duration>) -> String {
    match retry {
        Some(d) => format!("; retry after {}s", d.as_secs_f64().ceil() as u64),
        None => String::new(),
    }
}

impl Error {
    /// Builds the error for a platform error code from its [`ErrorClass`].
    pub fn from_class(
        class: ErrorClass,
        ctx: UpstreamCtx,
        code: UpstreamCode,
        message: impl Into<String>,
        retry_after: Option<Duration>,
    ) -> Self {
        match class {
            ErrorClass::TokenInvalid => Error::TokenInvalid { ctx, code },
            ErrorClass::UserTokenInvalid => Error::ReauthRequired { ctx, code },
            ErrorClass::RateLimited => Error::RateLimited {
                ctx,
                code,
                retry_after,
            },
            ErrorClass::InvalidCode => Error::InvalidCode { ctx, code },
            ErrorClass::Misconfigured(hint) => Error::Misconfigured {
                ctx,
                code,
                hint: hint.to_string(),
            },
            ErrorClass::NotInTenant => Error::NotInTenant { ctx },
            ErrorClass::Transient => Error::Upstream {
                ctx,
                code,
                message: truncate(&message.into(), 200),
                transient: true,
            },
            ErrorClass::Other => Error::Upstream {
                ctx,
                code,
                message: truncate(&message.into(), 200),
                transient: false,
            },
        }
    }

    /// A configuration error.
    pub fn config(
        tenant: Option<&TenantId>,
        platform: Option<&str>,
        field: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        Error::Config {
            tenant: tenant.cloned(),
            platform: platform.map(str::to_string),
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// Whether the error means "the app token was rejected".
    pub fn is_token_invalid(&self) -> bool {
        matches!(self, Error::TokenInvalid { .. })
    }

    /// Whether retrying the same request later could succeed (never true for code errors).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Error::Timeout { .. }
                | Error::Transport { .. }
                | Error::RateLimited { .. }
                | Error::Upstream {
                    transient: true,
                    ..
                }
        ) || matches!(self, Error::BadResponse { status, .. } if *status >= 500)
    }

    /// The hint to wait before retrying, for rate-limit errors.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::RateLimited { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// A short, stable, machine-readable name of the variant, for metrics labels and API bodies.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::UnknownPlatform { .. } => "unknown_platform",
            Error::UnknownTenant { .. } => "unknown_tenant",
            Error::PlatformNotConfigured { .. } => "platform_not_configured",
            Error::Disabled { .. } => "disabled",
            Error::Config { .. } => "config",
            Error::TokenInvalid { .. } => "token_invalid",
            Error::ReauthRequired { .. } => "reauth_required",
            Error::InvalidCode { .. } => "invalid_code",
            Error::RateLimited { .. } => "rate_limited",
            Error::Misconfigured { .. } => "misconfigured",
            Error::NotInTenant { .. } => "not_in_tenant",
            Error::Upstream { .. } => "upstream",
            Error::InvalidIdToken { .. } => "invalid_id_token",
            Error::BadResponse { .. } => "bad_response",
            Error::Timeout { .. } => "timeout",
            Error::Transport { .. } => "transport",
            Error::Mapping { .. } => "mapping",
            Error::State(_) => "state",
            Error::RedirectNotAllowed { .. } => "redirect_not_allowed",
            Error::Unsupported { .. } => "unsupported",
            Error::RedirectLoginRequired { .. } => "redirect_login_required",
            Error::Store { .. } => "store_unavailable",
            Error::InvalidCallback { .. } => "invalid_callback",
            Error::Internal(_) => "internal",
        }
    }
}

fn truncate(s: &str, max_chars: usize) -> String {
    let mut out: String = s.chars().take(max_chars).collect();
    if s.chars().count() > max_chars {
        out.push('…');
    }
    out
}

/// Cuts a response body down to a short excerpt and masks anything that looks like a credential:
/// values of query parameters and JSON fields whose name mentions a token, secret, code, ticket,
/// password or state.
///
/// ```
/// let e = unilogin_core::error::redact_excerpt(r#"{"access_token":"abc123","errmsg":"ok"}"#);
/// assert!(!e.contains("abc123"));
/// assert!(e.contains("errmsg"));
/// ```
pub fn redact_excerpt(body: &str) -> String {
    use std::sync::OnceLock;
    static PATTERNS: OnceLock<[regex_lite::Regex; 2]> = OnceLock::new();
    let [query, json] = PATTERNS.get_or_init(|| {
        let names = r"[A-Za-z_\-]*(?:token|secret|code|ticket|password|state|verifier)[A-Za-z_\-]*";
        [
            regex_lite::Regex::new(&format!(r"(?i)({names})=[^&\s<>'\x22]+"))
                .expect("static pattern"),
            regex_lite::Regex::new(&format!(r#"(?i)("{names}"\s*:\s*)"[^"]*""#))
                .expect("static pattern"),
        ]
    });
    let short = truncate(body.trim(), 160);
    let masked = query.replace_all(&short, "$1=***");
    json.replace_all(&masked, "$1\"***\"").into_owned()
}

impl From<crate::types::InvalidId> for Error {
    /// An identifier that failed validation (for example a tenant id from a request) is a
    /// configuration-class error naming the identifier kind.
    fn from(e: crate::types::InvalidId) -> Self {
        Error::Config {
            tenant: None,
            platform: None,
            field: e.kind.to_string(),
            reason: e.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> UpstreamCtx {
        UpstreamCtx::new(
            Some(TenantId::new("acme").unwrap()),
            PlatformName::new("dingtalk").unwrap(),
            "gettoken",
        )
    }

    #[test]
    fn display_names_tenant_platform_and_code() {
        let e = Error::from_class(
            ErrorClass::InvalidCode,
            ctx(),
            UpstreamCode::Number(40078),
            "不存在的临时授权码",
            None,
        );
        let s = e.to_string();
        assert!(
            s.contains("acme") && s.contains("dingtalk") && s.contains("40078"),
            "{s}"
        );
        assert_eq!(e.kind(), "invalid_code");
    }

    #[test]
    fn unknown_platform_lists_registered() {
        let e = Error::UnknownPlatform {
            name: "qq".into(),
            registered: vec!["dingtalk", "wecom"],
        };
        assert_eq!(
            e.to_string(),
            "unknown platform `qq`; registered platforms: [dingtalk, wecom]"
        );
    }

    #[test]
    fn rate_limit_shows_hint() {
        let e = Error::from_class(
            ErrorClass::RateLimited,
            ctx(),
            UpstreamCode::Number(99991400),
            "",
            Some(Duration::from_secs(7)),
        );
        assert!(e.to_string().ends_with("retry after 7s"), "{e}");
        assert_eq!(e.retry_after(), Some(Duration::from_secs(7)));
        assert!(e.is_transient());
    }

    #[test]
    fn excerpt_masks_credentials() {
        let html =
            "<html>Forbidden: /gettoken?appkey=k&appsecret=SEKRIT&x=1 access_token=TOK</html>";
        let e = redact_excerpt(html);
        assert!(!e.contains("SEKRIT") && !e.contains("TOK<"), "{e}");
        let json = r#"{"refresh_token": "ur-xyz", "authCode":"c0de", "name":"n"}"#;
        let e = redact_excerpt(json);
        assert!(
            !e.contains("ur-xyz") && !e.contains("c0de") && e.contains("\"name\""),
            "{e}"
        );
        assert!(redact_excerpt(&"x".repeat(1000)).chars().count() <= 161);
    }
}
