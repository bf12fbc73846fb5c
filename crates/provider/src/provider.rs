//! The [`Provider`]: configuration, shared state and the router.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use unilogin_axum::session::{RevocationList, SessionIssuer};
use url::Url;

use crate::client::ClientSource;
use crate::error::{ProviderError, Result};
use crate::host::{Authenticated, Host};
use crate::keys::{IdTokenAlg, IdTokenKeys};
use crate::logout::{Backchannel, BackchannelSettings};
use crate::routes;
use crate::store::{GrantStore, LoginRecord};
use unilogin_core::{PlatformName, TenantId};

/// Lifetimes and limits. The defaults follow the usual practice: 60 s codes, 10 min access
/// and id tokens, refresh tokens for 30 days that lapse after 7 idle days.
///
/// ```
/// use std::time::Duration;
/// let s = unilogin_provider::Settings::default();
/// assert_eq!(s.code_ttl, Duration::from_secs(60));
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Settings {
    /// How long an authorization code may be redeemed.
    pub code_ttl: Duration,
    /// Access token lifetime (also how long userinfo answers for it).
    pub access_ttl: Duration,
    /// Id token lifetime.
    pub id_token_ttl: Duration,
    /// Absolute refresh lifetime of a grant, counted from the login.
    pub refresh_ttl: Duration,
    /// A refresh token not used for this long lapses.
    pub refresh_idle: Duration,
    /// How long a pending authorization request waits for the login.
    pub request_ttl: Duration,
    /// Largest accepted form body (token, userinfo, authorize and end-session POSTs).
    pub max_body: usize,
    /// Back-channel logout delivery.
    pub backchannel: BackchannelSettings,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            code_ttl: Duration::from_secs(60),
            access_ttl: Duration::from_secs(600),
            id_token_ttl: Duration::from_secs(600),
            refresh_ttl: Duration::from_secs(30 * 24 * 3600),
            refresh_idle: Duration::from_secs(7 * 24 * 3600),
            request_ttl: Duration::from_secs(600),
            max_body: 64 * 1024,
            backchannel: BackchannelSettings::default(),
        }
    }
}

/// Builds a [`Provider`].
pub struct ProviderBuilder {
    issuer: Url,
    clients: Arc<dyn ClientSource>,
    store: Arc<dyn GrantStore>,
    host: Arc<dyn Host>,
    access: SessionIssuer,
    revocations: Arc<dyn RevocationList>,
    keys: Vec<Arc<dyn IdTokenKeys>>,
    settings: Settings,
    pairwise_secret: Option<[u8; 32]>,
    http: Option<reqwest::Client>,
}

impl std::fmt::Debug for ProviderBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderBuilder")
            .field("issuer", &self.issuer.as_str())
            .field("keys", &self.keys)
            .field("settings", &self.settings)
            .field("pairwise_secret", &self.pairwise_secret.map(|_| "***"))
            .finish_non_exhaustive()
    }
}

impl ProviderBuilder {
    /// Adds the signing keys of one algorithm (one key set per algorithm; the last one added
    /// for an algorithm wins). At least one is needed; RS256 is the default clients ask for.
    pub fn id_token_keys(mut self, keys: impl IdTokenKeys) -> Self {
        let keys: Arc<dyn IdTokenKeys> = Arc::new(keys);
        self.keys.retain(|k| k.alg() != keys.alg());
        self.keys.push(keys);
        self
    }

    /// Like [`id_token_keys`](Self::id_token_keys) with a shared key set.
    pub fn id_token_keys_arc(mut self, keys: Arc<dyn IdTokenKeys>) -> Self {
        self.keys.retain(|k| k.alg() != keys.alg());
        self.keys.push(keys);
        self
    }

    /// Lifetimes and limits.
    pub fn settings(mut self, settings: Settings) -> Self {
        self.settings = settings;
        self
    }

    /// The secret of pairwise subjects (OIDC Core §8.1). It must be the same on every replica
    /// and stable for as long as clients keep their users: changing it changes every pairwise
    /// `sub`. Without it, clients with `subject_type: pairwise` are refused.
    pub fn pairwise_secret(mut self, secret: [u8; 32]) -> Self {
        self.pairwise_secret = Some(secret);
        self
    }

    /// The HTTP client of back-channel logout deliveries (default: 5 s timeout, no
    /// redirects).
    pub fn http_client(mut self, client: reqwest::Client) -> Self {
        self.http = Some(client);
        self
    }

    /// Builds the provider and starts the back-channel delivery task. Fails outside a tokio
    /// runtime, when the issuer is not an `https` (or loopback `http`) URL without query or
    /// fragment, or when no signing keys were given.
    pub fn build(self) -> Result<Provider> {
        let issuer = self.issuer;
        let loopback = matches!(issuer.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
        if !(issuer.scheme() == "https" || issuer.scheme() == "http" && loopback)
            || issuer.query().is_some()
            || issuer.fragment().is_some()
            || issuer.cannot_be_a_base()
        {
            return Err(ProviderError::Server(
                "the issuer is an https URL (http on loopback) without query or fragment".into(),
            ));
        }
        if self.keys.is_empty() {
            return Err(ProviderError::Server(
                "the provider needs at least one id-token key set".into(),
            ));
        }
        let issuer_str = issuer.as_str().trim_end_matches('/').to_string();
        let base_path = issuer.path().trim_end_matches('/').to_string();
        let http = match self.http {
            Some(c) => c,
            None => reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(|e| ProviderError::Server(format!("HTTP client: {e}")))?,
        };
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(ProviderError::Server(
                "the provider must be built inside a tokio runtime".into(),
            ));
        }
        let backchannel = Backchannel::start(http, self.settings.backchannel.clone());
        Ok(Provider {
            inner: Arc::new(Inner {
                issuer: issuer_str,
                base_path,
                clients: self.clients,
                store: self.store,
                host: self.host,
                access: self.access,
                revocations: self.revocations,
                keys: self.keys,
                settings: self.settings,
                pairwise_secret: self.pairwise_secret,
                backchannel,
            }),
        })
    }
}

pub(crate) struct Inner {
    /// The issuer without a trailing slash (what `iss` says).
    pub(crate) issuer: String,
    /// The issuer's path without a trailing slash (`""` at the root).
    pub(crate) base_path: String,
    pub(crate) clients: Arc<dyn ClientSource>,
    pub(crate) store: Arc<dyn GrantStore>,
    pub(crate) host: Arc<dyn Host>,
    pub(crate) access: SessionIssuer,
    pub(crate) revocations: Arc<dyn RevocationList>,
    pub(crate) keys: Vec<Arc<dyn IdTokenKeys>>,
    pub(crate) settings: Settings,
    pub(crate) pairwise_secret: Option<[u8; 32]>,
    pub(crate) backchannel: Backchannel,
}

/// An OpenID Provider in front of a [`Host`]'s platform logins. Cheap to clone.
///
/// Serve [`router`](Self::router) (merged into the host's router); it answers, relative to
/// the issuer's path:
/// `GET /.well-known/openid-configuration`, `GET|POST /oidc/authorize`, `POST /oidc/token`,
/// `GET|POST /oidc/userinfo`, `GET /oidc/jwks`, `GET|POST /oidc/end_session` and
/// `GET /oidc/resume` (where the host sends the browser after a login).
///
/// Access tokens are session tokens of the given [`SessionIssuer`]'s keys, with `aud` the
/// client id and `scope` the granted scopes, so `unilogin-axum`'s guard verifies them.
///
/// ```no_run
/// # async fn run(
/// #     host: std::sync::Arc<dyn unilogin_provider::Host>,
/// # ) -> Result<(), Box<dyn std::error::Error>> {
/// use std::sync::Arc;
/// use std::time::Duration;
/// use unilogin_axum::session::{MemoryRevocationList, SessionIssuer, SessionKeys};
/// use unilogin_provider::{IdTokenAlg, MemoryGrantStore, PemKey, Provider, StaticClients};
///
/// let access = SessionIssuer::new(SessionKeys::generate()?, "https://login.example.com",
///     "apis", Duration::from_secs(600));
/// let rsa = PemKey::from_pem(IdTokenAlg::Rs256, "rsa-1", &std::fs::read_to_string("rsa.pem")?)?;
/// let provider = Provider::builder(
///     "https://login.example.com".parse()?,
///     Arc::new(StaticClients::new(vec![])?),
///     Arc::new(MemoryGrantStore::new()),
///     host, // the service's `Host` (the gateway's: its sessions and platform logins)
///     access,
///     Arc::new(MemoryRevocationList::new()),
/// )
/// .id_token_keys(rsa)
/// .build()?;
/// let app: axum::Router = provider.router();
/// # let _ = app; Ok(()) }
/// ```
#[derive(Clone)]
pub struct Provider {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("issuer", &self.inner.issuer)
            .field("keys", &self.inner.keys)
            .field("store", &self.inner.store)
            .finish_non_exhaustive()
    }
}

impl Provider {
    /// A builder: the issuer URL (what `iss` says and where the endpoints live), where
    /// clients are looked up, the grant store, the host, the access-token issuer and the
    /// revocation list the guard consults.
    pub fn builder(
        issuer: Url,
        clients: Arc<dyn ClientSource>,
        store: Arc<dyn GrantStore>,
        host: Arc<dyn Host>,
        access: SessionIssuer,
        revocations: Arc<dyn RevocationList>,
    ) -> ProviderBuilder {
        ProviderBuilder {
            issuer,
            clients,
            store,
            host,
            access,
            revocations,
            keys: Vec::new(),
            settings: Settings::default(),
            pairwise_secret: None,
            http: None,
        }
    }

    /// The routes, with the provider as their state (merge them into the host's router).
    pub fn router(&self) -> Router {
        let p = |path: &str| format!("{}{path}", self.inner.base_path);
        Router::new()
            .route(
                &p("/.well-known/openid-configuration"),
                get(routes::discovery::discovery),
            )
            .route(
                &p("/oidc/authorize"),
                get(routes::authorize::authorize_get).post(routes::authorize::authorize_post),
            )
            .route(&p("/oidc/resume"), get(routes::authorize::resume))
            .route(&p("/oidc/token"), axum::routing::post(routes::token::token))
            .route(
                &p("/oidc/userinfo"),
                get(routes::userinfo::userinfo_get).post(routes::userinfo::userinfo_post),
            )
            .route(&p("/oidc/jwks"), get(routes::discovery::jwks))
            .route(
                &p("/oidc/end_session"),
                get(routes::end_session::end_session_get)
                    .post(routes::end_session::end_session_post),
            )
            .layer(DefaultBodyLimit::max(self.inner.settings.max_body))
            .with_state(self.clone())
    }

    /// The issuer (`iss`), without a trailing slash.
    pub fn issuer(&self) -> &str {
        &self.inner.issuer
    }

    /// The URL of the endpoint `path` (`/oidc/token`, …) under the issuer.
    pub fn endpoint(&self, path: &str) -> String {
        format!("{}{path}", self.inner.issuer)
    }

    /// Ends every session of `subject` (a session subject, `tenant:platform:uid`) the way
    /// logout does: revokes the grants (refresh families and access tokens) issued in them
    /// and sends back-channel logout tokens to the clients that got tokens. For the host's
    /// leaver events. Returns how many sessions were ended.
    pub async fn logout_subject(&self, subject: &str) -> Result<usize> {
        let sids = self.inner.store.subject_sessions(subject).await?;
        let mut ended = 0;
        for sid in sids {
            if self.end_sid(&sid).await? {
                ended += 1;
            }
        }
        Ok(ended)
    }

    /// Keeps what the host knows of a login (the profile the platform returned) for the host
    /// session's lifetime `ttl`, under its `sid`: a [`Host`] without profile storage of its
    /// own (the gateway keeps only claims in its session token) answers
    /// [`Host::session`] with [`recall_login`](Self::recall_login).
    pub async fn remember_login(&self, login: &Authenticated, ttl: Duration) -> Result<()> {
        let record = LoginRecord {
            profile: login.profile.clone(),
            tenant: login.tenant.to_string(),
            platform: login.platform.to_string(),
            subject: login.subject.clone(),
            account: login.account.clone(),
            auth_time_ms: unix_ms(login.auth_time),
        };
        self.inner.store.put_login(&login.sid, &record, ttl).await
    }

    /// The login [`remember_login`](Self::remember_login) kept for session `sid`, if any
    /// (unknown, expired, or a record whose tenant or platform no longer parses: `None`).
    pub async fn recall_login(&self, sid: &str) -> Result<Option<Authenticated>> {
        let Some(r) = self.inner.store.login(sid).await? else {
            return Ok(None);
        };
        let (Ok(tenant), Ok(platform)) = (TenantId::new(&r.tenant), PlatformName::new(&r.platform))
        else {
            return Ok(None);
        };
        Ok(Some(Authenticated {
            profile: r.profile,
            tenant,
            platform,
            subject: r.subject,
            account: r.account,
            auth_time: UNIX_EPOCH + Duration::from_millis(r.auth_time_ms),
            sid: sid.to_string(),
        }))
    }

    /// Ends the provider side of host session `sid` (grants revoked, back-channel logout
    /// queued). Whether there was anything to end.
    pub async fn end_sid(&self, sid: &str) -> Result<bool> {
        crate::logout::end_sid(self, sid).await
    }

    /// The key set for `alg`.
    pub(crate) fn keys_for(&self, alg: IdTokenAlg) -> Result<&Arc<dyn IdTokenKeys>> {
        self.inner
            .keys
            .iter()
            .find(|k| k.alg() == alg)
            .ok_or_else(|| {
                ProviderError::Server(format!("no {} signing key is configured", alg.as_str()))
            })
    }

    /// Every published JWK.
    pub(crate) fn all_jwks(&self) -> Vec<serde_json::Value> {
        self.inner.keys.iter().flat_map(|k| k.jwks()).collect()
    }
}

/// Seconds since the Unix epoch.
pub(crate) fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// Unix milliseconds.
pub(crate) fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Now, in seconds since the Unix epoch.
pub(crate) fn now() -> u64 {
    unix(SystemTime::now())
}
