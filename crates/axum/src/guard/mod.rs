//! The guard: a tower [`Layer`](tower_layer::Layer) that lets a request through only with a valid session token,
//! and the [`AuthUser`] extractor and [`RequireScopes`] layer that build on it.
//!
//! For every request the guard reads `Authorization: Bearer <token>`, checks the signature
//! against the issuer's keys (a JWKS URL, or [`SessionKeys`] in the same process), the `iss`,
//! `aud`, `exp` and `nbf` claims with a small clock skew, and the [`RevocationList`] if one is
//! set, then puts an [`AuthUser`] into the request's extensions for handlers. Failures become
//! RFC 6750 responses (see [`AuthRejection`]); why a token failed is logged (`tracing` warn,
//! with the request's `x-request-id`) and never told to the client.

mod jwks;
mod layer;
mod rejection;
mod user;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use jsonwebtoken::{DecodingKey, Validation};
use unilogin_core::http::{HttpClient, HttpConfig};
use url::Url;

use crate::session::{
    self, DEFAULT_LEEWAY, RevocationList, SessionIssuer, SessionKeys, VerifyError,
};

pub use layer::{GuardService, RequireScopes, RequireScopesService};
pub use rejection::{AuthRejection, RejectionKind};
pub use user::AuthUser;

use jwks::{JwksCache, KeyMiss};

/// Default lower bound between two JWKS fetches.
pub const DEFAULT_JWKS_REFETCH_INTERVAL: Duration = Duration::from_secs(10);
/// Default age after which the JWKS copy is refreshed in the background.
pub const DEFAULT_JWKS_MAX_AGE: Duration = Duration::from_secs(300);

/// Longest `Authorization` value looked at; longer ones are rejected without parsing.
const MAX_TOKEN_LEN: usize = 8 * 1024;
/// Longest key id looked up.
const MAX_KID_LEN: usize = 256;

/// Verifies session tokens and guards routes. Cheap to clone; use it as a layer
/// (`router.layer(guard)`) or call [`verify`](Self::verify) directly.
///
/// ```
/// use std::time::Duration;
/// use axum::{Router, routing::get};
/// use unilogin_axum::{AuthUser, Guard};
///
/// async fn me(user: AuthUser) -> String { user.subject().to_string() }
///
/// # fn main() -> Result<(), unilogin_core::Error> {
/// let guard = Guard::jwks("https://login.example.com/.well-known/jwks.json",
///     "https://login.example.com", "example-apis")
///     .leeway(Duration::from_secs(30))
///     .build()?;
/// let app: Router = Router::new().route("/me", get(me)).layer(guard);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Guard {
    inner: Arc<Inner>,
}

struct Inner {
    source: KeySource,
    validation: Validation,
    realm: Arc<str>,
    revocation: Option<Arc<dyn RevocationList>>,
}

enum KeySource {
    Local(SessionKeys),
    Jwks(Arc<JwksCache>),
}

/// Settings of a [`Guard`]; start with [`Guard::jwks`] or [`Guard::local`].
#[must_use = "call .build() to get the Guard"]
pub struct GuardBuilder {
    source: SourceSpec,
    issuer: String,
    audience: String,
    realm: Option<String>,
    leeway: Duration,
    revocation: Option<Arc<dyn RevocationList>>,
    refetch_interval: Duration,
    max_age: Duration,
    http: HttpConfig,
}

enum SourceSpec {
    Local(SessionKeys),
    Jwks(String),
}

impl Guard {
    /// A guard that verifies against the JWKS published at `jwks_url` (fetched on first use,
    /// cached, refetched on an unknown key id at most once per
    /// [`DEFAULT_JWKS_REFETCH_INTERVAL`]), for tokens with `iss: issuer` and `aud: audience`.
    pub fn jwks(
        jwks_url: impl Into<String>,
        issuer: impl Into<String>,
        audience: impl Into<String>,
    ) -> GuardBuilder {
        GuardBuilder::new(
            SourceSpec::Jwks(jwks_url.into()),
            issuer.into(),
            audience.into(),
        )
    }

    /// A guard that verifies against `keys` directly (no HTTP): for services running in the
    /// same process as the issuer. Rotations of `keys` are seen at once.
    pub fn local(
        keys: SessionKeys,
        issuer: impl Into<String>,
        audience: impl Into<String>,
    ) -> GuardBuilder {
        GuardBuilder::new(SourceSpec::Local(keys), issuer.into(), audience.into())
    }

    /// [`Guard::local`] with the keys, issuer and audience of `issuer`.
    pub fn for_issuer(issuer: &SessionIssuer) -> GuardBuilder {
        Self::local(issuer.keys().clone(), issuer.issuer(), issuer.audience())
    }

    /// Verifies a bearer token: signature, `iss`, `aud`, `exp`, `nbf`, revocation.
    ///
    /// An unknown key id makes a JWKS guard refetch the key set (bounded, see
    /// [`GuardBuilder::jwks_refetch_interval`]); if the key set cannot be fetched at all the
    /// error is [`RejectionKind::Unavailable`] rather than an invalid token.
    pub async fn verify(&self, token: &str) -> Result<AuthUser, AuthRejection> {
        self.verify_traced(token, "-").await
    }

    async fn verify_traced(&self, token: &str, trace_id: &str) -> Result<AuthUser, AuthRejection> {
        let invalid = |reason: VerifyError| {
            tracing::warn!(trace_id, %reason, "bearer token rejected");
            self.reject(RejectionKind::InvalidToken(reason))
        };
        let kid = match session::token_kid(token) {
            Ok(kid) => kid,
            Err(reason) => return Err(invalid(reason)),
        };
        if kid.len() > MAX_KID_LEN {
            return Err(invalid(VerifyError::UnknownKey));
        }
        let key: Arc<DecodingKey> = match &self.inner.source {
            KeySource::Local(keys) => match keys.decoding_key(&kid) {
                Some(k) => Arc::new(k),
                None => return Err(invalid(VerifyError::UnknownKey)),
            },
            KeySource::Jwks(cache) => match cache.key(&kid, trace_id).await {
                Ok(k) => k,
                Err(KeyMiss::Unknown) => return Err(invalid(VerifyError::UnknownKey)),
                Err(KeyMiss::Unavailable) => {
                    tracing::warn!(trace_id, kid, "bearer token not verifiable: no JWKS");
                    return Err(self.reject(RejectionKind::Unavailable));
                }
            },
        };
        let claims = match session::verify_with_key(token, &key, &self.inner.validation) {
            Ok(c) => c,
            Err(reason) => return Err(invalid(reason)),
        };
        if let Some(list) = &self.inner.revocation
            && list.is_revoked(&claims.jti).await
        {
            tracing::warn!(trace_id, reason = %VerifyError::Revoked, jti = claims.jti, sub = claims.sub, "bearer token rejected");
            return Err(self.reject(RejectionKind::InvalidToken(VerifyError::Revoked)));
        }
        Ok(AuthUser::new(claims, self.inner.realm.clone()))
    }

    /// Authenticates a request from its headers (what the layer does).
    pub async fn authenticate(&self, headers: &HeaderMap) -> Result<AuthUser, AuthRejection> {
        let trace_id = trace_id(headers);
        let mut values = headers.get_all(AUTHORIZATION).iter();
        let Some(value) = values.next() else {
            tracing::debug!(trace_id, "no Authorization header");
            return Err(self.reject(RejectionKind::Missing));
        };
        if values.next().is_some() {
            tracing::warn!(trace_id, "more than one Authorization header");
            return Err(self.reject(RejectionKind::InvalidRequest));
        }
        let bytes = value.as_bytes();
        if bytes.len() > MAX_TOKEN_LEN {
            return Err({
                tracing::warn!(trace_id, len = bytes.len(), reason = %VerifyError::Malformed, "bearer token rejected");
                self.reject(RejectionKind::InvalidToken(VerifyError::Malformed))
            });
        }
        let Ok(text) = value.to_str() else {
            tracing::warn!(trace_id, reason = %VerifyError::Malformed, "bearer token rejected: not ASCII");
            return Err(self.reject(RejectionKind::InvalidToken(VerifyError::Malformed)));
        };
        let (scheme, rest) = text.trim().split_once(' ').unwrap_or((text.trim(), ""));
        if !scheme.eq_ignore_ascii_case("bearer") {
            // RFC 6750 §3.1: another scheme is "no authentication information" for us.
            tracing::debug!(trace_id, "Authorization header with another scheme");
            return Err(self.reject(RejectionKind::Missing));
        }
        let token = rest.trim();
        if !is_b64token(token) {
            tracing::warn!(trace_id, reason = %VerifyError::Malformed, "bearer token rejected");
            return Err(self.reject(RejectionKind::InvalidToken(VerifyError::Malformed)));
        }
        self.verify_traced(token, &trace_id).await
    }

    /// How many JWKS fetches this guard has started (zero for a local guard).
    pub fn jwks_fetches(&self) -> u64 {
        match &self.inner.source {
            KeySource::Local(_) => 0,
            KeySource::Jwks(c) => c.attempts(),
        }
    }

    /// The realm named in `WWW-Authenticate`.
    pub fn realm(&self) -> &str {
        &self.inner.realm
    }

    fn reject(&self, kind: RejectionKind) -> AuthRejection {
        AuthRejection::new(kind, self.inner.realm.clone())
    }
}

impl fmt::Debug for Guard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let source = match &self.inner.source {
            KeySource::Local(k) => format!("local({:?})", k.kids()),
            KeySource::Jwks(_) => "jwks".to_string(),
        };
        f.debug_struct("Guard")
            .field("source", &source)
            .field("realm", &self.inner.realm)
            .field("revocation", &self.inner.revocation.is_some())
            .finish()
    }
}

impl GuardBuilder {
    fn new(source: SourceSpec, issuer: String, audience: String) -> Self {
        Self {
            source,
            issuer,
            audience,
            realm: None,
            leeway: DEFAULT_LEEWAY,
            revocation: None,
            refetch_interval: DEFAULT_JWKS_REFETCH_INTERVAL,
            max_age: DEFAULT_JWKS_MAX_AGE,
            http: HttpConfig {
                request_timeout: Duration::from_secs(5),
                max_body_bytes: 64 * 1024,
                ..HttpConfig::default()
            },
        }
    }

    /// The realm named in `WWW-Authenticate` (default: the audience). Characters that cannot
    /// appear in a quoted string (`"`, `\`, control characters) are dropped.
    pub fn realm(mut self, realm: impl Into<String>) -> Self {
        self.realm = Some(realm.into());
        self
    }

    /// Clock skew allowed on `exp` and `nbf` (default 30 s).
    pub fn leeway(mut self, leeway: Duration) -> Self {
        self.leeway = leeway;
        self
    }

    /// Rejects tokens whose `jti` is on `list`.
    pub fn revocation(mut self, list: Arc<dyn RevocationList>) -> Self {
        self.revocation = Some(list);
        self
    }

    /// Lower bound between two JWKS fetches (default 10 s). Unknown key ids within the
    /// interval are rejected without a fetch.
    pub fn jwks_refetch_interval(mut self, interval: Duration) -> Self {
        self.refetch_interval = interval;
        self
    }

    /// Age after which the JWKS copy is refreshed in the background (default 5 min).
    pub fn jwks_max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    /// HTTP client settings for JWKS fetches (default: 3 s connect, 5 s total, 64 KiB body).
    pub fn http_config(mut self, config: HttpConfig) -> Self {
        self.http = config;
        self
    }

    /// Builds the guard. Fails on a JWKS URL that is not an absolute `http(s)` URL, or if the
    /// HTTP client cannot be built.
    pub fn build(self) -> Result<Guard, unilogin_core::Error> {
        let source = match self.source {
            SourceSpec::Local(keys) => KeySource::Local(keys),
            SourceSpec::Jwks(url) => {
                let url = Url::parse(&url)
                    .ok()
                    .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
                    .ok_or_else(|| {
                        unilogin_core::Error::config(
                            None,
                            None,
                            "jwks_url",
                            "expected an absolute http(s) URL",
                        )
                    })?;
                let http = HttpClient::new(&self.http)?;
                KeySource::Jwks(Arc::new(JwksCache::new(
                    url,
                    http,
                    self.refetch_interval,
                    self.max_age,
                )))
            }
        };
        let realm: String = self
            .realm
            .unwrap_or_else(|| self.audience.clone())
            .chars()
            .filter(|c| !c.is_control() && *c != '"' && *c != '\\')
            .collect();
        Ok(Guard {
            inner: Arc::new(Inner {
                source,
                validation: session::validation(&self.issuer, &self.audience, self.leeway),
                realm: Arc::from(realm),
                revocation: self.revocation,
            }),
        })
    }
}

/// RFC 6750 `b64token`: `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
fn is_b64token(s: &str) -> bool {
    let body = s.trim_end_matches('=');
    !body.is_empty()
        && body.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/')
        })
}

/// The request's trace id for logs: `x-request-id`, else the trace id of a W3C
/// `traceparent`, else `-`. Only a short run of safe characters is kept.
fn trace_id(headers: &HeaderMap) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
            .take(128)
            .collect()
    };
    if let Some(id) = headers.get("x-request-id").and_then(|v| v.to_str().ok()) {
        let id = clean(id);
        if !id.is_empty() {
            return id;
        }
    }
    if let Some(tp) = headers.get("traceparent").and_then(|v| v.to_str().ok())
        && let Some(id) = tp.split('-').nth(1)
    {
        let id = clean(id);
        if !id.is_empty() {
            return id;
        }
    }
    "-".to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn b64token_charset() {
        assert!(is_b64token("abc.DEF-_~+/=="));
        assert!(!is_b64token(""));
        assert!(!is_b64token("=="));
        assert!(!is_b64token("a b"));
        assert!(!is_b64token("a,b"));
        assert!(!is_b64token("a\"b"));
    }

    #[test]
    fn trace_id_prefers_request_id_and_sanitises() {
        let mut h = HeaderMap::new();
        assert_eq!(trace_id(&h), "-");
        h.insert(
            "traceparent",
            HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),
        );
        assert_eq!(trace_id(&h), "4bf92f3577b34da6a3ce929d0e0e4736");
        h.insert("x-request-id", HeaderValue::from_static("req-1\"; evil=1"));
        assert_eq!(trace_id(&h), "req-1evil1");
    }

    #[test]
    fn realm_drops_characters_that_break_the_header() {
        let g = Guard::local(SessionKeys::generate().unwrap(), "i", "a")
            .realm("my \"api\"\\\n")
            .build()
            .unwrap();
        assert_eq!(g.realm(), "my api");
        let g = Guard::local(SessionKeys::generate().unwrap(), "i", "aud-x")
            .build()
            .unwrap();
        assert_eq!(g.realm(), "aud-x");
    }

    #[test]
    fn jwks_url_must_be_absolute_http() {
        for bad in ["", "/jwks.json", "ftp://x/jwks", "not a url"] {
            assert!(Guard::jwks(bad, "i", "a").build().is_err(), "{bad}");
        }
        assert!(
            Guard::jwks("http://127.0.0.1:1/jwks.json", "i", "a")
                .build()
                .is_ok()
        );
    }
}
