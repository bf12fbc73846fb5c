//! The one error type of unilogin.
//!
//! Every variant says *where* it happened (tenant, platform, endpoint) and *what a caller can do*
//! about it, and none of them can carry a secret: the fields are identifiers, upstream codes,
//! and upstream messages and body excerpts that went through the masking of
//! [`redact_excerpt`] (masked first, then cut, so a cut never exposes part of a secret).
//!
//! `Error` is `Clone` so that one failed token refresh can be handed to every caller waiting for
//! it.

use std::fmt;
use std::time::Duration;

use crate::types::{AppKey, PlatformName, TenantId};

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
    /// The `aud` (or `azp`) claim does not name this client, or `aud` names several audiences
    /// without an `azp` (OIDC Core 3.1.3.7).
    Audience,
    /// The token expired (or is not valid yet).
    Expired,
    /// The `nonce` claim is not the one sent at authorize time.
    Nonce,
    /// The userinfo `sub` differs from the `id_token`'s.
    Subject,
    /// The `at_hash` claim is not the hash of the access token it came with (OIDC Core
    /// 3.1.3.8): the access token was swapped.
    AccessTokenHash,
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
            IdTokenProblem::AccessTokenHash => {
                "does not match the access token it came with (`at_hash`)"
            }
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

    /// A store app (see [`crate::isv`]) has no pushed ticket (`suite_ticket` / `app_ticket`)
    /// yet, so its suite / app token cannot be fetched. Retry once the platform's next push has
    /// arrived, or have it resent.
    #[error(
        "platform `{platform}` app `{app}`: no pushed ticket (suite_ticket / app_ticket) has arrived yet; wait for the platform's next push, or have it resent (Feishu `app_ticket/resend`, the DingTalk or WeCom developer console) and check that the app's callback URL receives it"
    )]
    TicketMissing {
        /// The platform.
        platform: PlatformName,
        /// The app's id (DingTalk `suiteKey`, Feishu `app_id`, WeCom `suite_id`).
        app: AppKey,
    },

    /// An internal invariant failed (a background task died, a lock was poisoned).
    #[error("internal error: {0}")]
    Internal(String),

    /// An account-linking operation was refused (an ambiguous match, an unknown account, an
    /// identity linked elsewhere): see [`crate::identity`].
    #[error("identity: {0}")]
    Identity(crate::identity::IdentityError),

    /// A page URL given to sign a JSAPI configuration is not usable (see
    /// [`crate::jsapi::PageUrl`]): nothing was fetched or signed.
    #[error("page URL {0}")]
    InvalidPageUrl(crate::jsapi::PageUrlProblem),
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
                message: redact(&message.into(), 200),
                transient: true,
            },
            ErrorClass::Other => Error::Upstream {
                ctx,
                code,
                message: redact(&message.into(), 200),
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
            Error::Identity(e) => e.kind(),
            Error::InvalidPageUrl(_) => "invalid_page_url",
            Error::TicketMissing { .. } => "ticket_missing",
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

/// How many characters of a body an excerpt keeps (then `…`).
const EXCERPT_CHARS: usize = 160;

/// What a masked value is replaced with.
const MASK: &str = "***";

/// Masks anything that looks like a credential in a response body, **then** cuts it down to a
/// short excerpt on a character boundary, so a cut can never expose part of a secret.
///
/// Masked, in JSON (valid or not, including JSON escaped inside a string), in query strings and
/// forms, and in plain text:
/// - the value after a name that mentions a token, secret, code, ticket, password, state,
///   verifier, nonce, credential, assertion, authorization, cookie or API / private key,
///   followed by `:` or `=` (also `%3D`): a quoted string up to its closing quote (or the end
///   of the body when it is cut short), an array or object up to its closing bracket, or a bare
///   word (after `:`, a JSON number, `true`, `false` or `null` is kept: that is an error code,
///   not a credential);
/// - the credential after `Bearer` or `Basic`;
/// - anything shaped like a JWT (`eyJ….….…`), wherever it is;
/// - the quoted value in serde's `string "…"` (a decoding error quoting a value it did not
///   expect, without saying which field it came from).
///
/// ```
/// let e = unilogin_core::error::redact_excerpt(r#"{"access_token":"abc123","errmsg":"ok"}"#);
/// assert!(!e.contains("abc123"));
/// assert!(e.contains("errmsg"));
/// ```
pub fn redact_excerpt(body: &str) -> String {
    redact(body.trim(), EXCERPT_CHARS)
}

/// Masks `text` ([`redact_excerpt`]), then keeps at most `max_chars` characters (plus `…`).
fn redact(text: &str, max_chars: usize) -> String {
    truncate(&Masker::run(text, max_chars + 1), max_chars)
}

/// Whether a name is that of a credential (compared without case, `_` and `-`).
fn is_secret_name(word: &str) -> bool {
    const NEEDLES: &[&str] = &[
        "token",
        "secret",
        "code",
        "ticket",
        "password",
        "passwd",
        "state",
        "verifier",
        "nonce",
        "credential",
        "assertion",
        "authorization",
        "cookie",
        "apikey",
        "privatekey",
        // Mini-program `session_key` (Feishu, WeCom, WeChat).
        "sessionkey",
    ];
    let norm: String = word
        .chars()
        .filter(|c| *c != '_' && *c != '-')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    NEEDLES.iter().any(|n| norm.contains(n))
}

fn is_word_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// The one-pass masking scanner behind [`redact_excerpt`]. It works on bytes but only ever
/// splits the text at ASCII bytes, so every slice is on a character boundary.
struct Masker<'a> {
    text: &'a str,
    at: usize,
    out: String,
    chars: usize,
}

impl<'a> Masker<'a> {
    /// Masks `text`, stopping once `enough` characters are written (the rest would be cut).
    fn run(text: &'a str, enough: usize) -> String {
        let mut m = Masker {
            text,
            at: 0,
            out: String::with_capacity(text.len().min(4 * enough + 16)),
            chars: 0,
        };
        while m.at < text.len() && m.chars < enough {
            m.step();
        }
        m.out
    }

    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    fn emit(&mut self, s: &str) {
        self.chars += s.chars().count();
        self.out.push_str(s);
    }

    /// Copies `text[self.at..to]` and moves there.
    fn copy_to(&mut self, to: usize) {
        let text = self.text;
        self.emit(&text[self.at..to]);
        self.at = to;
    }

    /// The end of the run of `pred` bytes from `from`.
    fn run_end(&self, from: usize, pred: impl Fn(u8) -> bool) -> usize {
        from + self.bytes()[from..]
            .iter()
            .take_while(|b| pred(**b))
            .count()
    }

    fn starts_with_at(&self, at: usize, s: &str) -> bool {
        self.bytes()
            .get(at..at + s.len())
            .is_some_and(|b| b.eq_ignore_ascii_case(s.as_bytes()))
    }

    fn step(&mut self) {
        let b = self.bytes()[self.at];
        if !is_word_byte(b) {
            let len = self.text[self.at..]
                .chars()
                .next()
                .map_or(1, char::len_utf8);
            self.copy_to(self.at + len);
            return;
        }
        let start = self.at;
        let end = self.run_end(start, is_word_byte);
        let word = &self.text[start..end];
        if word.starts_with("eyJ") && self.bytes().get(end) == Some(&b'.') {
            // A JWT (or JWE): segments of base64url joined by dots.
            let mut to = end;
            while self.bytes().get(to) == Some(&b'.') {
                to = self.run_end(to + 1, is_word_byte);
            }
            self.emit(MASK);
            self.at = to;
            return;
        }
        self.copy_to(end);
        if word.eq_ignore_ascii_case("bearer") || word.eq_ignore_ascii_case("basic") {
            let from = self.run_end(end, |b| b == b' ' || b == b'\t');
            let to = self.run_end(from, |b| is_word_byte(b) || b"._~+/=".contains(&b));
            if from > end && to > from {
                self.copy_to(from);
                self.emit(MASK);
                self.at = to;
            }
        } else if word == "string" && self.starts_with_at(end, " \"") {
            self.copy_to(end + 1);
            self.mask_quoted(b'"');
        } else if is_secret_name(word)
            && let Some((value_at, colon)) = self.separator(end)
        {
            self.copy_to(value_at);
            self.mask_value(colon);
        }
    }

    /// After a name ending at `from`: an optional closing quote (`"`, `'`, `\"`), blanks, `:` or
    /// `=` (or `%3D` / `%3A`), blanks. Returns where the value starts and whether it was `:`.
    fn separator(&self, from: usize) -> Option<(usize, bool)> {
        let b = self.bytes();
        let mut at = from;
        if b.get(at) == Some(&b'\\') && b.get(at + 1) == Some(&b'"') {
            at += 2;
        } else if matches!(b.get(at), Some(b'"' | b'\'')) {
            at += 1;
        }
        at = self.run_end(at, |b| b.is_ascii_whitespace());
        let colon = match b.get(at) {
            Some(b':') => {
                at += 1;
                true
            }
            Some(b'=') => {
                at += 1;
                false
            }
            Some(b'%') if self.starts_with_at(at, "%3D") => {
                at += 3;
                false
            }
            Some(b'%') if self.starts_with_at(at, "%3A") => {
                at += 3;
                true
            }
            _ => return None,
        };
        Some((self.run_end(at, |b| b.is_ascii_whitespace()), colon))
    }

    /// Masks the value at `self.at`.
    fn mask_value(&mut self, after_colon: bool) {
        let b = self.bytes();
        match b.get(self.at) {
            Some(b'\\') if b.get(self.at + 1) == Some(&b'"') => {
                // JSON inside a JSON string: `\"value\"`, ending at `\"` or at the outer `"`.
                let mut to = self.at + 2;
                while to < b.len() && b[to] != b'"' {
                    if b[to] == b'\\' && b.get(to + 1) == Some(&b'"') {
                        break;
                    }
                    to += 1;
                }
                self.emit("\\\"");
                self.emit(MASK);
                if to < b.len() && b[to] == b'\\' {
                    self.emit("\\\"");
                    to += 2;
                }
                self.at = to;
            }
            Some(&q @ (b'"' | b'\'')) => self.mask_quoted(q),
            Some(b'[' | b'{') => {
                self.at = self.balanced_end(self.at);
                self.emit(MASK);
            }
            Some(_) => {
                let to = self.run_end(self.at, |b| {
                    !b.is_ascii_whitespace() && !b"&,;<>\"'}])\\".contains(&b)
                });
                let value = &self.text[self.at..to];
                let literal = after_colon
                    && (matches!(value, "true" | "false" | "null")
                        || value.parse::<f64>().is_ok_and(f64::is_finite));
                let scheme =
                    value.eq_ignore_ascii_case("bearer") || value.eq_ignore_ascii_case("basic");
                if literal || scheme {
                    // A code stays readable; an auth scheme is read again as a word (its
                    // credential is masked then).
                    if literal {
                        self.copy_to(to);
                    }
                } else if to > self.at {
                    self.emit(MASK);
                    self.at = to;
                }
            }
            None => {}
        }
    }

    /// Masks the string opened by the quote `q` at `self.at`, up to its unescaped closing quote
    /// or the end of the text.
    fn mask_quoted(&mut self, q: u8) {
        let b = self.bytes();
        let mut to = self.at + 1;
        while to < b.len() && b[to] != q {
            to += if b[to] == b'\\' { 2 } else { 1 };
        }
        let closed = to < b.len();
        let quote = if q == b'"' { "\"" } else { "'" };
        self.emit(quote);
        self.emit(MASK);
        if closed {
            self.emit(quote);
        }
        self.at = (to + 1).min(b.len());
    }

    /// The end of the array or object opening at `from` (strings skipped), or of the text.
    fn balanced_end(&self, from: usize) -> usize {
        let b = self.bytes();
        let (mut depth, mut at, mut in_string) = (0usize, from, false);
        while at < b.len() {
            match (in_string, b[at]) {
                (true, b'\\') => at += 1,
                (true, b'"') => in_string = false,
                (false, b'"') => in_string = true,
                (false, b'[' | b'{') => depth += 1,
                (false, b']' | b'}') => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        return at + 1;
                    }
                }
                _ => {}
            }
            at += 1;
        }
        b.len()
    }
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

    /// Every run of `n` characters of `secret`.
    fn windows(secret: &str, n: usize) -> impl Iterator<Item = &str> {
        (0..=secret.len().saturating_sub(n)).map(move |i| &secret[i..i + n])
    }

    fn assert_no_part_of(secret: &str, text: &str) {
        if let Some(w) = windows(secret, 8).find(|w| text.contains(w)) {
            panic!("`{w}` of the secret appears in {text:?}");
        }
    }

    #[test]
    fn a_token_response_that_fails_to_decode_leaks_no_part_of_the_token() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct TokenResponse {
            access_token: String,
            scope: Option<String>,
        }
        let token = format!("eyJhbGciOiJSUzI1NiJ9{}", "Ab3dE6gH9jK2mN5pQ8sT".repeat(12));
        let response = crate::http::UpstreamResponse {
            status: 200,
            headers: Default::default(),
            body: serde_json::json!({
                "access_token": token, "token_type": "Bearer", "scope": ["a", "b"],
            }),
        };
        let e = response.decode::<TokenResponse>(&ctx()).unwrap_err();
        let Error::BadResponse { excerpt, .. } = &e else {
            panic!("{e:?}")
        };
        assert!(
            excerpt.contains("sequence"),
            "the excerpt still says why: {excerpt}"
        );
        assert_no_part_of(&token, excerpt);
        assert_no_part_of(&token, &e.to_string());
        assert_no_part_of(&token, &format!("{e:?}"));
    }

    #[test]
    fn a_body_cut_short_inside_a_secret_value_is_masked_to_its_end() {
        let token = "tok_".to_string() + &"Zq9Xw8Vu7Ts6Rp5".repeat(20);
        // Cut by the upstream (or a size limit) inside the value: no closing quote.
        for body in [
            format!(r#"{{"errcode":0,"access_token":"{token}"#),
            format!(r#"{{"errcode":0,"access_token":"{}"#, &token[..40]),
            format!(r#"{{"data":{{"refresh_token":["{token}""#),
            format!("access_token={token}"),
        ] {
            let e = redact_excerpt(&body);
            assert_no_part_of(&token[..40], &e);
            assert!(e.chars().count() <= EXCERPT_CHARS + 1, "{e}");
        }
        let e = redact_excerpt(&format!(r#"{{"errcode":40078,"access_token":"{token}"#));
        assert!(e.contains("40078"), "error codes stay readable: {e}");
    }

    #[test]
    fn secrets_are_masked_in_every_shape_a_body_comes_in() {
        let s = "S3cr3tValu3xyz";
        let jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJTM2NyM3RWYWx1M3h5eiJ9.c2lnbmF0dXJlUzNjcjN0";
        for body in [
            format!(r#"{{"client_secret": "{s}"}}"#),
            format!(r#"{{"access_token":"ab\"{s}"}}"#),
            format!(r#"{{'password': '{s}'}}"#),
            format!(r#"{{"tokens": {{"access": "{s}", "n": [1, "{s}"]}}}}"#),
            format!(r#"{{"access_token": ["{s}", "{s}"]}}"#),
            format!(r#"{{"msg":"{{\"access_token\":\"{s}\"}}"}}"#),
            format!("code={s}&state={s}"),
            format!("redirect?x=1&access_token%3D{s}"),
            format!("X-Api-Key: {s}"),
            format!("Authorization: Bearer {s}"),
            format!("<html>bad header Authorization: Basic {s}=</html>"),
            format!("invalid type: string \"{s}\", expected u64; body: {{}}"),
            format!("{{\"result\": [\"{jwt}\"]}}"),
            format!("{{\"session_state\":{s}}}"),
        ] {
            let e = redact_excerpt(&body);
            assert!(!e.contains(&s[..8]), "{body} -> {e}");
            assert!(!e.contains(&jwt[..20]), "{body} -> {e}");
        }
        let plain = r#"{"errcode":40078,"errmsg":"不存在的临时授权码","ok":true,"ttl":7200}"#;
        assert_eq!(redact_excerpt(plain), plain);
        assert_eq!(
            redact_excerpt(r#"{"code": 0, "state": null, "token_ok": true}"#),
            r#"{"code": 0, "state": null, "token_ok": true}"#
        );
    }

    #[test]
    fn excerpts_are_cut_on_a_character_boundary_after_masking() {
        let body = format!("{}{}", "授权码".repeat(100), r#""access_token":"x""#);
        let e = redact_excerpt(&body);
        assert_eq!(e.chars().count(), EXCERPT_CHARS + 1);
        assert!(e.ends_with('…'));
        // A long secret value early in the body no longer pushes the rest out of the excerpt.
        let e = redact_excerpt(&format!(
            r#"{{"access_token":"{}","errmsg":"scope refused"}}"#,
            "a".repeat(400)
        ));
        assert!(e.contains("scope refused"), "{e}");
    }

    #[test]
    fn upstream_messages_are_masked_too() {
        let e = Error::from_class(
            ErrorClass::Other,
            ctx(),
            UpstreamCode::Number(1),
            "invalid access_token=SECRETVALUE99 for app",
            None,
        );
        assert!(!e.to_string().contains("SECRETVALUE"), "{e}");
        assert!(e.to_string().contains("for app"), "{e}");
    }

    mod props {
        use super::super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

            /// Any text (quotes, backslashes, brackets, multi-byte characters, cut anywhere)
            /// gives a short excerpt without panicking.
            #[test]
            fn any_body_gives_a_short_excerpt(body in r#"[a-z_"'\\:=\[\]{}&% .,é授0-9\-]{0,400}"#) {
                let e = redact_excerpt(&body);
                prop_assert!(e.chars().count() <= EXCERPT_CHARS + 1);
            }

            /// A secret value after a secret-like name never survives, however the body around
            /// it looks or wherever it is cut.
            #[test]
            fn a_named_secret_never_survives(
                prefix in r#"[a-z"' :,{\[]{0,200}"#,
                name in "(access_token|client_secret|code|refresh_token|id_token|ticket)",
                shape in 0usize..5,
                secret in "[A-Za-z0-9]{16,300}",
                cut in 0usize..400,
            ) {
                let value = match shape {
                    0 => format!("\"{name}\":\"{secret}\""),
                    1 => format!("\"{name}\": [\"{secret}\"]"),
                    2 => format!("{name}={secret}&x=1"),
                    3 => format!("{{\\\"{name}\\\":\\\"{secret}\\\"}}"),
                    _ => format!("'{name}': '{secret}'"),
                };
                let body = format!("{prefix}{value}");
                let cut = body.char_indices().map(|(i, _)| i).find(|i| *i >= cut.min(body.len())).unwrap_or(body.len());
                for text in [&body[..], &body[..cut]] {
                    let e = redact_excerpt(text);
                    prop_assert!(!e.contains(&secret[..8]), "{} -> {}", text, e);
                }
            }
        }
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
