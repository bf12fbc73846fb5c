//! The guard: a tower [`Layer`](tower_layer::Layer) that lets a request through only with a valid session token,
//! and the [`AuthUser`] extractor and [`RequireScopes`] layer that build on it.
//!
//! For every request the guard reads `Authorization: Bearer <token>`, checks the signature
//! against the issuer's keys (a JWKS URL, or [`SessionKeys`] in the same process), the `iss`,
//! `aud`, `exp` and `nbf` claims with a small clock skew, the `tenant` claim against the
//! tenants the guard was built for ([`GuardBuilder::tenant`]: every tenant's tokens share one
//! issuer and audience, so this is what keeps tenant A's users out of tenant B's API), and the
//! [`RevocationList`] if one is set ([`RevocationList::check_claims`]: the token id, and the
//! person's subjects revoked "issued before", e.g. when they left the organisation), then puts an [`AuthUser`] into the request's extensions
//! for handlers. Failures become RFC 6750 responses (see [`AuthRejection`]); why a token failed
//! is logged (`tracing` warn, with the request's `x-request-id`) and never told to the client.

mod jwks;
mod layer;
mod rejection;
mod user;

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use jsonwebtoken::{DecodingKey, Validation};
use unilogin_core::TenantId;
use unilogin_core::http::{HttpClient, HttpConfig};
use url::Url;

use crate::session::{
    self, DEFAULT_LEEWAY, RevocationList, SessionIssuer, SessionKeys, Unreachable, VerifyError,
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
/// The builder has no `build` until it is told whose tokens the guard accepts:
/// [`tenant`](GuardBuilder::tenant), [`tenants`](GuardBuilder::tenants) or, for a service that
/// checks the tenant itself, [`any_tenant`](GuardBuilder::any_tenant).
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
///     .tenant("acme")                    // tokens of other tenants: 403 wrong_tenant
///     .leeway(Duration::from_secs(30))
///     .build()?;
/// let app: Router = Router::new().route("/me", get(me)).layer(guard);
/// # Ok(()) }
/// ```
///
/// Forgetting the tenant choice does not compile:
///
/// ```compile_fail
/// use unilogin_axum::{Guard, session::SessionKeys};
/// let keys = SessionKeys::generate().unwrap();
/// let guard = Guard::local(keys, "https://login.example.com", "example-apis").build();
/// ```
#[derive(Clone)]
pub struct Guard {
    inner: Arc<Inner>,
}

struct Inner {
    source: KeySource,
    validation: Validation,
    tenants: Tenants,
    realm: Arc<str>,
    revocation: Option<Arc<dyn RevocationList>>,
}

/// Whose session tokens a [`Guard`] lets through, by their `tenant` claim. Chosen on the
/// builder ([`GuardBuilder::tenant`], [`GuardBuilder::tenants`], [`GuardBuilder::any_tenant`]);
/// a token of another tenant is refused with 403 `wrong_tenant`
/// ([`RejectionKind::WrongTenant`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tenants {
    /// Only tokens whose `tenant` is one of these.
    Only(Vec<String>),
    /// Every tenant's tokens: the service itself checks [`AuthUser::tenant`] (for example
    /// against a path parameter, with [`AuthUser::require_tenant`]).
    Any,
}

impl Tenants {
    /// Whether a token of `tenant` is let through.
    pub fn admits(&self, tenant: &str) -> bool {
        match self {
            Tenants::Only(list) => list.iter().any(|t| t == tenant),
            Tenants::Any => true,
        }
    }
}

/// A [`GuardBuilder`] whose tenants are not chosen yet: it has no `build`.
#[derive(Debug, Clone, Copy)]
pub struct TenantUnchosen;

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::Tenants {}
}

/// Implemented by [`Tenants`] only: what a [`GuardBuilder`] needs before
/// [`build`](GuardBuilder::build).
#[diagnostic::on_unimplemented(
    message = "choose which tenants' tokens this guard accepts before `.build()`",
    label = "no tenant chosen",
    note = "call `.tenant(\"b\")` or `.tenants([..])` on the builder, or `.any_tenant()` for a service that checks `AuthUser::tenant()` itself"
)]
pub trait TenantChoice: sealed::Sealed {
    /// The chosen tenants.
    fn into_tenants(self) -> Tenants;
}

impl TenantChoice for Tenants {
    fn into_tenants(self) -> Tenants {
        self
    }
}

enum KeySource {
    Local(SessionKeys),
    Jwks(Arc<JwksCache>),
}

/// Settings of a [`Guard`]; start with [`Guard::jwks`] or [`Guard::local`], choose the tenants
/// ([`tenant`](Self::tenant), [`tenants`](Self::tenants) or [`any_tenant`](Self::any_tenant)),
/// then [`build`](Self::build).
#[must_use = "choose the tenants, then call .build() to get the Guard"]
pub struct GuardBuilder<T = TenantUnchosen> {
    source: SourceSpec,
    issuer: String,
    audience: String,
    tenants: T,
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
    /// The URL must be `https` (plain `http` only to a loopback host: `127.0.0.0/8`, `::1`,
    /// `localhost`), or [`build`](GuardBuilder::build) fails: keys fetched in clear could be
    /// swapped on the way, and with them any token accepted.
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

    /// Verifies a bearer token: signature, `iss`, `aud`, `exp`, `nbf`, tenant, revocation.
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
        if !self.inner.tenants.admits(&claims.tenant) {
            tracing::warn!(
                trace_id,
                tenant = claims.tenant,
                sub = claims.sub,
                "bearer token rejected: issued for a tenant this guard does not serve"
            );
            return Err(self.reject(RejectionKind::WrongTenant));
        }
        if let Some(list) = &self.inner.revocation {
            match list.check_claims(&claims).await {
                Ok(false) => {}
                Ok(true) => {
                    tracing::warn!(trace_id, reason = %VerifyError::Revoked, jti = claims.jti, sub = claims.sub, "bearer token rejected");
                    return Err(self.reject(RejectionKind::InvalidToken(VerifyError::Revoked)));
                }
                Err(Unreachable) => {
                    tracing::warn!(
                        trace_id,
                        jti = claims.jti,
                        "bearer token not verifiable: the revocation list is unreachable"
                    );
                    return Err(self.reject(RejectionKind::Unavailable));
                }
            }
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

    /// Whose tokens this guard lets through.
    pub fn tenants(&self) -> &Tenants {
        &self.inner.tenants
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
            .field("tenants", &self.inner.tenants)
            .field("realm", &self.inner.realm)
            .field("revocation", &self.inner.revocation.is_some())
            .finish()
    }
}

impl GuardBuilder<TenantUnchosen> {
    fn new(source: SourceSpec, issuer: String, audience: String) -> Self {
        Self {
            source,
            issuer,
            audience,
            tenants: TenantUnchosen,
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

    /// Lets through only the tokens of `tenant` (its `tenant` claim, compared exactly): the
    /// guard of one tenant's API. A token of another tenant gets 403 `wrong_tenant`, whatever
    /// its scopes.
    pub fn tenant(self, tenant: impl Into<String>) -> GuardBuilder<Tenants> {
        self.tenants([tenant])
    }

    /// Lets through only the tokens of these tenants (at least one, each a valid tenant id,
    /// or [`build`](GuardBuilder::build) fails).
    pub fn tenants<I, S>(self, tenants: I) -> GuardBuilder<Tenants>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let list = tenants.into_iter().map(Into::into).collect();
        self.with_tenants(Tenants::Only(list))
    }

    /// Lets every tenant's tokens through. Only for a service that serves several tenants
    /// and checks [`AuthUser::tenant`] on every request itself (for example against the
    /// tenant in its path, with [`AuthUser::require_tenant`]): without such a check, a user
    /// of one tenant holding a scope passes every other tenant's routes that need it.
    pub fn any_tenant(self) -> GuardBuilder<Tenants> {
        self.with_tenants(Tenants::Any)
    }

    fn with_tenants(self, tenants: Tenants) -> GuardBuilder<Tenants> {
        GuardBuilder {
            source: self.source,
            issuer: self.issuer,
            audience: self.audience,
            tenants,
            realm: self.realm,
            leeway: self.leeway,
            revocation: self.revocation,
            refetch_interval: self.refetch_interval,
            max_age: self.max_age,
            http: self.http,
        }
    }
}

impl<T> GuardBuilder<T> {
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

    /// Rejects tokens that `list` refuses ([`RevocationList::check_claims`]: a revoked `jti`,
    /// or a subject of the token revoked at or after its `iat`) with 401 `invalid_token`, and
    /// answers 503 while the list cannot tell (its shared store is unreachable).
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

    /// Builds the guard. Fails (`Error::Config`) on a JWKS URL that is not an absolute `https`
    /// URL (or `http` to a loopback host), on an empty tenant list or one that is not a valid
    /// tenant id, or if the HTTP client cannot be built.
    pub fn build(self) -> Result<Guard, unilogin_core::Error>
    where
        T: TenantChoice,
    {
        let tenants = self.tenants.into_tenants();
        if let Tenants::Only(list) = &tenants {
            if list.is_empty() {
                return Err(unilogin_core::Error::config(
                    None,
                    None,
                    "tenants",
                    "no tenant named: name at least one, or call .any_tenant() for a service that checks the tenant itself",
                ));
            }
            for tenant in list {
                TenantId::new(tenant.as_str())?;
            }
        }
        let source = match self.source {
            SourceSpec::Local(keys) => KeySource::Local(keys),
            SourceSpec::Jwks(url) => {
                let url = jwks_url(&url)?;
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
                tenants,
                realm: Arc::from(realm),
                revocation: self.revocation,
            }),
        })
    }
}

/// The JWKS URL: absolute, `https`, or `http` to a loopback host only.
fn jwks_url(text: &str) -> Result<Url, unilogin_core::Error> {
    let refuse = |reason: &str| unilogin_core::Error::config(None, None, "jwks_url", reason);
    let url = Url::parse(text)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.has_host())
        .ok_or_else(|| refuse("expected an absolute https URL"))?;
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => false,
    };
    if url.scheme() == "http" && !loopback {
        return Err(refuse(
            "must use https: plain http is accepted only for a loopback host (127.0.0.1, ::1, localhost)",
        ));
    }
    Ok(url)
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
            .tenant("acme")
            .build()
            .unwrap();
        assert_eq!(g.realm(), "my api");
        let g = Guard::local(SessionKeys::generate().unwrap(), "i", "aud-x")
            .any_tenant()
            .build()
            .unwrap();
        assert_eq!(g.realm(), "aud-x");
    }

    fn config_field(e: &unilogin_core::Error) -> Option<&str> {
        match e {
            unilogin_core::Error::Config { field, .. } => Some(field),
            _ => None,
        }
    }

    #[test]
    fn jwks_url_must_be_absolute_https_or_loopback_http() {
        let build = |url: &str| Guard::jwks(url, "i", "a").tenant("acme").build();
        for bad in [
            "",
            "/jwks.json",
            "ftp://x/jwks",
            "not a url",
            "http://login.example.com/.well-known/jwks.json",
            "http://10.0.0.8/jwks.json",
            "http://localhost.evil.example/jwks.json",
            "http://[2001:db8::1]/jwks.json",
        ] {
            let e = build(bad).expect_err(bad);
            assert_eq!(config_field(&e), Some("jwks_url"), "{bad}: {e:?}");
        }
        let e = build("http://login.example.com/jwks").unwrap_err();
        assert!(e.to_string().contains("https"), "{e}");
        for good in [
            "https://login.example.com/.well-known/jwks.json",
            "http://127.0.0.1:1/jwks.json",
            "http://[::1]:1/jwks.json",
            "http://localhost:1/jwks.json",
            "http://LOCALHOST:1/jwks.json",
        ] {
            assert!(build(good).is_ok(), "{good}");
        }
    }

    #[test]
    fn a_tenant_list_must_name_valid_tenants() {
        let keys = SessionKeys::generate().unwrap();
        let e = Guard::local(keys.clone(), "i", "a")
            .tenants(Vec::<String>::new())
            .build()
            .unwrap_err();
        assert_eq!(config_field(&e), Some("tenants"), "{e:?}");
        assert!(
            Guard::local(keys.clone(), "i", "a")
                .tenant("not a tenant id!")
                .build()
                .is_err()
        );
        let g = Guard::local(keys, "i", "a")
            .tenants(["a", "b"])
            .build()
            .unwrap();
        assert!(g.tenants().admits("a") && g.tenants().admits("b"));
        assert!(!g.tenants().admits("c") && !g.tenants().admits("A"));
        assert!(Tenants::Any.admits("anything"));
    }
}
