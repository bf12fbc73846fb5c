//! The service: shared state ([`Gateway`]), how it is built ([`GatewayBuilder`]), its routes and
//! graceful serving.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use tokio::net::TcpListener;
use unilogin::config::{ConfigSource, StaticConfig};
use unilogin::token_cache::TokenCache;
use unilogin::{Error, Result, Sso};
use unilogin_axum::session::{MemoryRevocationList, RevocationList, SessionIssuer, SessionKeys};

use crate::config::GatewayConfig;
use crate::metrics::Metrics;
use crate::routes;
use crate::store::{LoginStateStore, MemoryStateStore};
use crate::trace::{self, TraceSettings};

pub(crate) struct Inner {
    pub(crate) config: GatewayConfig,
    pub(crate) sso: Sso,
    pub(crate) states: Arc<dyn LoginStateStore>,
    pub(crate) revocations: Arc<dyn RevocationList>,
    pub(crate) issuer: SessionIssuer,
    pub(crate) metrics: Metrics,
    #[cfg(feature = "sandbox")]
    pub(crate) sandbox: Option<crate::sandbox::SandboxHooks>,
}

/// A configured gateway. Cheap to clone; build with [`Gateway::builder`].
#[derive(Clone)]
pub struct Gateway {
    pub(crate) inner: Arc<Inner>,
}

impl fmt::Debug for Gateway {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Gateway")
            .field("public_url", &self.inner.config.public_url.as_str())
            .field("states", &self.inner.states)
            .finish_non_exhaustive()
    }
}

/// Builds a [`Gateway`].
pub struct GatewayBuilder {
    config: GatewayConfig,
    source: Option<Arc<dyn ConfigSource>>,
    keys: Option<SessionKeys>,
    states: Option<Arc<dyn LoginStateStore>>,
    revocations: Option<Arc<dyn RevocationList>>,
    token_cache: Option<TokenCache>,
    #[cfg(feature = "sandbox")]
    sandbox: Option<crate::sandbox::SandboxHooks>,
}

impl fmt::Debug for GatewayBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GatewayBuilder")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl GatewayBuilder {
    /// Serves tenants from this source (default: the config's `tenants_file`, or none).
    pub fn config_source(mut self, source: impl ConfigSource + 'static) -> Self {
        self.source = Some(Arc::new(source));
        self
    }

    /// Signs sessions with these keys (default: `session.signing_key_file`, or a fresh key).
    pub fn session_keys(mut self, keys: SessionKeys) -> Self {
        self.keys = Some(keys);
        self
    }

    /// Keeps pending logins here (default: Redis when `redis.url` is set, else memory).
    pub fn state_store(mut self, store: Arc<dyn LoginStateStore>) -> Self {
        self.states = Some(store);
        self
    }

    /// Keeps revocations here (default: Redis when `redis.url` is set, else memory).
    pub fn revocation_list(mut self, list: Arc<dyn RevocationList>) -> Self {
        self.revocations = Some(list);
        self
    }

    /// Uses this app-token cache (default: memory, with a Redis L2 when `redis.url` is set).
    pub fn token_cache(mut self, cache: TokenCache) -> Self {
        self.token_cache = Some(cache);
        self
    }

    /// Sandbox mode hooks.
    #[cfg(feature = "sandbox")]
    pub fn sandbox(mut self, hooks: crate::sandbox::SandboxHooks) -> Self {
        self.sandbox = Some(hooks);
        self
    }

    /// Builds the gateway (inside a tokio runtime: Redis connections are set up lazily).
    pub fn build(self) -> Result<Gateway> {
        let config = self.config;
        let source: Arc<dyn ConfigSource> = match self.source {
            Some(s) => s,
            None => match &config.tenants_file {
                Some(path) => Arc::new(StaticConfig::new(crate::config::load_tenants(path)?)),
                None => Arc::new(StaticConfig::new(vec![])),
            },
        };
        let keys = match self.keys {
            Some(k) => k,
            None => match (&config.session.signing_key_file, &config.session.key_id) {
                (Some(path), Some(kid)) => {
                    let pem = std::fs::read_to_string(path).map_err(|e| {
                        Error::config(
                            None,
                            None,
                            "session.signing_key_file",
                            format!("cannot read {}: {}", path.display(), e.kind()),
                        )
                    })?;
                    SessionKeys::from_pkcs8_pem(&pem, kid).map_err(|e| {
                        Error::config(None, None, "session.signing_key_file", e.to_string())
                    })?
                }
                _ => SessionKeys::generate().map_err(Error::from)?,
            },
        };
        let redis = open_redis(&config)?;
        let states: Arc<dyn LoginStateStore> = match (self.states, &redis) {
            (Some(s), _) => s,
            #[cfg(feature = "redis")]
            (None, Some(r)) => Arc::new(r.state_store()),
            _ => Arc::new(MemoryStateStore::new(config.login.max_pending)),
        };
        let revocations: Arc<dyn RevocationList> = match (self.revocations, &redis) {
            (Some(r), _) => r,
            #[cfg(feature = "redis")]
            (None, Some(r)) => Arc::new(r.revocation_list()),
            _ => Arc::new(MemoryRevocationList::new()),
        };
        let cache = match (self.token_cache, &redis) {
            (Some(c), _) => c,
            #[cfg(feature = "redis")]
            (None, Some(r)) => TokenCache::builder().store(Arc::new(r.clone())).build(),
            _ => TokenCache::new(),
        };
        let sso = Sso::builder(ArcSource(source))
            .token_cache(cache)
            .http(config.http())
            .build()?;
        let issuer = SessionIssuer::new(
            keys,
            config.issuer(),
            config.session.audience.clone(),
            config.session_ttl(),
        );
        let metrics = Metrics::new(&sso);
        Ok(Gateway {
            inner: Arc::new(Inner {
                config,
                sso,
                states,
                revocations,
                issuer,
                metrics,
                #[cfg(feature = "sandbox")]
                sandbox: self.sandbox,
            }),
        })
    }
}

/// One Redis connection for pending logins, revocations and app tokens.
#[cfg(feature = "redis")]
fn open_redis(config: &GatewayConfig) -> Result<Option<unilogin_redis::RedisStore>> {
    let Some(url) = &config.redis.url else {
        return Ok(None);
    };
    unilogin_redis::RedisStore::builder(url.clone())
        .prefix(config.redis.prefix.clone())
        .build()
        .map(Some)
}

#[cfg(not(feature = "redis"))]
fn open_redis(config: &GatewayConfig) -> Result<Option<std::convert::Infallible>> {
    match &config.redis.url {
        None => Ok(None),
        Some(_) => Err(Error::config(
            None,
            None,
            "redis.url",
            "this gateway was built without the `redis` feature",
        )),
    }
}

/// Adapts a shared `Arc<dyn ConfigSource>` to the `impl ConfigSource` the [`Sso`] builder takes.
#[derive(Debug)]
struct ArcSource(Arc<dyn ConfigSource>);

#[async_trait::async_trait]
impl ConfigSource for ArcSource {
    async fn get(
        &self,
        tenant: &unilogin::TenantId,
        platform: &str,
    ) -> Result<Arc<unilogin::config::PlatformConfig>> {
        self.0.get(tenant, platform).await
    }

    async fn list(&self) -> Result<Vec<Arc<unilogin::config::PlatformConfig>>> {
        self.0.list().await
    }
}

impl Gateway {
    /// Starts building a gateway from its configuration.
    pub fn builder(config: GatewayConfig) -> GatewayBuilder {
        GatewayBuilder {
            config,
            source: None,
            keys: None,
            states: None,
            revocations: None,
            token_cache: None,
            #[cfg(feature = "sandbox")]
            sandbox: None,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &GatewayConfig {
        &self.inner.config
    }

    /// The login orchestrator.
    pub fn sso(&self) -> &Sso {
        &self.inner.sso
    }

    /// The session issuer (its keys are published at `/.well-known/jwks.json`).
    pub fn issuer(&self) -> &SessionIssuer {
        &self.inner.issuer
    }

    /// The metrics.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// The HTTP routes, with the trace-id middleware and body limit.
    pub fn router(&self) -> Router {
        let settings = TraceSettings {
            request_timeout: Duration::from_millis(self.inner.config.limits.request_timeout_ms),
            trust_forwarded_for: self.inner.config.proxy.trust_forwarded_for,
        };
        routes::router(self)
            .layer(DefaultBodyLimit::max(
                self.inner.config.limits.max_body_bytes,
            ))
            .with_state(self.clone())
            .layer(axum::middleware::from_fn_with_state(
                settings,
                trace::middleware,
            ))
    }

    /// Serves on `listener` until `shutdown` resolves, then stops accepting and lets requests in
    /// flight finish for at most `limits.shutdown_grace_secs`.
    pub async fn serve(
        &self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let grace = Duration::from_secs(self.inner.config.limits.shutdown_grace_secs);
        let (stopping_tx, stopping_rx) = tokio::sync::oneshot::channel::<()>();
        let app = self
            .router()
            .into_make_service_with_connect_info::<std::net::SocketAddr>();
        let server = axum::serve(listener, app).with_graceful_shutdown(async move {
            shutdown.await;
            tracing::info!("shutting down: no new connections, finishing requests in flight");
            let _ = stopping_tx.send(());
        });
        let server = std::pin::pin!(server.into_future());
        tokio::select! {
            r = server => r,
            () = async {
                let _ = stopping_rx.await;
                tokio::time::sleep(grace).await;
            } => {
                tracing::warn!(?grace, "requests still running after the grace period; stopping");
                Ok(())
            }
        }
    }

    /// The callback URL registered with the platforms for `(tenant, platform)`.
    pub fn callback_url(&self, tenant: &str, platform: &str) -> Result<url::Url> {
        self.inner
            .config
            .base_url()
            .join(&format!("auth/{tenant}/{platform}/callback"))
            .map_err(|e| Error::config(None, None, "public_url", e.to_string()))
    }

    pub(crate) fn now() -> SystemTime {
        SystemTime::now()
    }
}

/// Resolves when the process receives SIGTERM or Ctrl-C (SIGINT).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => tracing::info!("received Ctrl-C"),
        () = term => tracing::info!("received SIGTERM"),
    }
}
