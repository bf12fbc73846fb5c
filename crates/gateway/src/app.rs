//! The service: shared state ([`Gateway`]), how it is built ([`GatewayBuilder`]), its routes and
//! graceful serving.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use tokio::net::TcpListener;
use unilogin::config::{ConfigProblems, ConfigSource, StaticConfig, YamlText};
use unilogin::token_cache::TokenCache;
use unilogin::{Error, Result, Sso};
use unilogin_axum::session::{MemoryRevocationList, RevocationList, SessionIssuer, SessionKeys};

use crate::config::GatewayConfig;
use crate::limits::Limiters;
use crate::metrics::Metrics;
use crate::routes;
use crate::store::{LoginStateStore, MemoryStateStore};
use crate::tenants::Tenants;
use crate::trace::{self, TraceSettings};
use unilogin::identity::IdentityStore;

pub(crate) struct Inner {
    pub(crate) config: GatewayConfig,
    pub(crate) sso: Sso,
    pub(crate) states: Arc<dyn LoginStateStore>,
    pub(crate) revocations: Arc<dyn RevocationList>,
    pub(crate) issuer: SessionIssuer,
    pub(crate) metrics: Metrics,
    pub(crate) limiters: Arc<Limiters>,
    /// Keys the login-binding cookie values this gateway issues ([`crate::cookies::Binding`]).
    pub(crate) binding_key: aws_lc_rs::hmac::Key,
    /// The bearer token that opens `/metrics` on the public listener.
    pub(crate) metrics_token: Option<unilogin::AppSecret>,
    /// Account linking (`accounts`), when configured.
    pub(crate) identities: Option<Arc<dyn IdentityStore>>,
    /// The tenant configuration source and its watcher (`None`: a source given in code).
    pub(crate) tenants: Option<Arc<Tenants>>,
    /// The platform event receiver's queue, de-duplication store and codecs.
    pub(crate) events: crate::events::Events,
    /// The app's webhook.
    pub(crate) webhook: Arc<crate::webhook::Webhook>,
    /// The admin API, when enabled.
    #[cfg(feature = "sql")]
    pub(crate) admin: Option<Arc<crate::admin::Admin>>,
    #[cfg(feature = "sandbox")]
    pub(crate) sandbox: Option<crate::sandbox::SandboxHooks>,
    /// The OpenID Provider and its clients, when `oidc_provider.enabled`.
    pub(crate) provider: Option<(
        unilogin_provider::Provider,
        Arc<crate::oidc::clients::GatewayClients>,
    )>,
    /// Polls the OpenID Provider's clients while the gateway lives.
    pub(crate) clients_watcher: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        if let Some(w) = self.clients_watcher.take() {
            w.abort();
        }
    }
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
    yaml: Option<YamlText>,
    tenants: Option<Tenants>,
    identities: Option<Arc<dyn IdentityStore>>,
    dedupe: Option<Arc<dyn crate::events::EventDedupe>>,
    clients: Option<crate::oidc::clients::GatewayClients>,
    grants: Option<Arc<dyn unilogin_provider::GrantStore>>,
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
    /// Serves tenants from this source instead of the configured one (tests, programs that
    /// assemble their configuration in code). Not validated or watched by the gateway.
    pub fn config_source(mut self, source: impl ConfigSource + 'static) -> Self {
        self.source = Some(Arc::new(source));
        self
    }

    /// Serves the tenants of this YAML document (the documented format, as in a tenants
    /// file) instead of `tenants_file`: the same parser, validation and reloading (after
    /// [`YamlText::set`]). The sandbox's demo tenants come this way.
    pub fn tenants_yaml(mut self, yaml: YamlText) -> Self {
        self.yaml = Some(yaml);
        self
    }

    /// Reads and validates the configured tenants (`tenants_file`, `tenants_database`, or
    /// [`tenants_yaml`](Self::tenants_yaml)), then builds the gateway (see
    /// [`build`](Self::build)). Refuses with **every** problem of the tenant configuration,
    /// each naming tenant, platform and field.
    pub async fn open(mut self) -> std::result::Result<Gateway, ConfigProblems> {
        let yaml = self.yaml.clone();
        if self.source.is_none() {
            self.tenants = Tenants::open(&self.config, self.yaml.take()).await?;
        }
        if self.config.oidc_provider.enabled && self.clients.is_none() {
            #[cfg(feature = "sql")]
            let store = self.tenants.as_ref().and_then(|t| t.store());
            self.clients = Some(
                crate::oidc::clients::GatewayClients::open(
                    &self.config,
                    yaml.as_ref(),
                    #[cfg(feature = "sql")]
                    store,
                )
                .await
                .map_err(ConfigProblems)?,
            );
        }
        if self.identities.is_none()
            && let Some(url) = self.config.accounts.connect_url()
        {
            self.identities = Some(
                open_accounts(&url, self.config.accounts.migrate)
                    .await
                    .map_err(|e| ConfigProblems(vec![e]))?,
            );
        }
        self.build().map_err(|e| ConfigProblems(vec![e]))
    }

    /// Links logins to accounts in this store (default: `accounts.url` when set, else none).
    pub fn identity_store(mut self, store: Arc<dyn IdentityStore>) -> Self {
        self.identities = Some(store);
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

    /// Records platform event ids here (default: Redis when `redis.url` is set, else memory).
    pub fn event_dedupe(mut self, store: Arc<dyn crate::events::EventDedupe>) -> Self {
        self.dedupe = Some(store);
        self
    }

    /// Uses this app-token cache (default: memory, with a Redis L2 when `redis.url` is set).
    pub fn token_cache(mut self, cache: TokenCache) -> Self {
        self.token_cache = Some(cache);
        self
    }

    /// The OpenID Provider's relying parties (default, with [`open`](Self::open): the
    /// `oidc_clients` of the tenant source).
    pub fn oidc_clients(mut self, clients: crate::oidc::clients::GatewayClients) -> Self {
        self.clients = Some(clients);
        self
    }

    /// Keeps the OpenID Provider's codes, grants and sessions here (default: Redis when
    /// `redis.url` is set, else memory).
    pub fn grant_store(mut self, store: Arc<dyn unilogin_provider::GrantStore>) -> Self {
        self.grants = Some(store);
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
        let tenants = self.tenants.map(Arc::new);
        let source: Arc<dyn ConfigSource> = match (self.source, &tenants) {
            (Some(s), _) => s,
            (None, Some(t)) => t.source().clone(),
            (None, None)
                if config.tenants_file.is_some()
                    || config.tenants_database.url.is_some()
                    || self.yaml.is_some() =>
            {
                return Err(Error::config(
                    None,
                    None,
                    "tenants_file",
                    "tenants are read and validated asynchronously: build with `GatewayBuilder::open`",
                ));
            }
            (None, None) => Arc::new(StaticConfig::new(vec![])),
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
        let sso = Sso::builder_shared(source)
            .token_cache(cache)
            .http(config.http());
        // Store apps' pushed tickets: durable in Redis (every replica, across restarts), else
        // this process's memory.
        #[cfg(feature = "redis")]
        let sso = match &redis {
            Some(r) => sso.ticket_store(Arc::new(r.ticket_store())),
            None => sso,
        };
        let sso = sso.build()?;
        let binding_key =
            crate::cookies::binding_key(&keys.derive_secret("unilogin-gateway login binding v1"));
        let provider = if config.oidc_provider.enabled {
            let clients = match self.clients {
                Some(c) => Arc::new(c),
                None => {
                    return Err(Error::config(
                        None,
                        None,
                        "oidc_provider.enabled",
                        "the provider's clients are read asynchronously: build with `GatewayBuilder::open` (or give `oidc_clients`)",
                    ));
                }
            };
            let grants: Option<Arc<dyn unilogin_provider::GrantStore>> = match (self.grants, &redis)
            {
                (Some(g), _) => Some(g),
                #[cfg(feature = "redis")]
                (None, Some(r)) => Some(Arc::new(r.grant_store())),
                _ => None,
            };
            // Access tokens are session tokens of the same keys and issuer: the guard and
            // `/me` verify them like sessions (their audience is the client id).
            let access = SessionIssuer::new(
                keys.clone(),
                config.issuer(),
                config.session.audience.clone(),
                Duration::from_secs(config.oidc_provider.access_token_ttl_secs),
            );
            let (provider, host) = crate::oidc::build(crate::oidc::ProviderParts {
                config: &config,
                clients: clients.clone(),
                grants,
                session_keys: &keys,
                access,
                revocations: revocations.clone(),
            })?;
            Some((provider, clients, host))
        } else {
            None
        };
        let issuer = SessionIssuer::new(
            keys,
            config.issuer(),
            config.session.audience.clone(),
            config.session_ttl(),
        );
        let metrics = Metrics::new(&sso);
        if let Some(t) = &tenants {
            t.start_watching(&config, &sso)?;
            metrics.watch_config(t.clone());
        }
        #[cfg(feature = "sql")]
        let admin = crate::admin::Admin::from_config(
            &config,
            tenants.as_ref(),
            provider.as_ref().map(|(_, clients, _)| clients),
        )?;
        #[cfg(not(feature = "sql"))]
        if config.admin.enabled {
            return Err(Error::config(
                None,
                None,
                "admin.enabled",
                "this gateway was built without the `sql` feature",
            ));
        }
        let limiters = Arc::new(Limiters::new(&config));
        spawn_sweeper(&limiters);

        let dedupe: Arc<dyn crate::events::EventDedupe> = match (self.dedupe, &redis) {
            (Some(d), _) => d,
            #[cfg(feature = "redis")]
            (None, Some(r)) => Arc::new(crate::events::RedisDedupe(r.clone())),
            _ => Arc::new(crate::events::MemoryDedupe::new(config.login.max_pending)),
        };
        let webhook = crate::webhook::Webhook::start(&config.webhook, metrics.clone())?;
        let events = crate::events::start(
            config.events.queue_capacity,
            config.events.workers,
            dedupe,
            config.events.window(),
            config.events.dedupe_ttl(),
            crate::events::Applier {
                revocations: revocations.clone(),
                identities: self.identities.clone(),
                webhook: webhook.clone(),
                metrics: metrics.clone(),
                session_ttl: config.session_ttl(),
                provider: provider.as_ref().map(|(p, _, _)| p.clone()),
                tickets: sso.ticket_store().clone(),
                installations: crate::store_apps::Installations {
                    sso: sso.clone(),
                    tenants: tenants.clone(),
                    revocations: revocations.clone(),
                    session_ttl: config.session_ttl(),
                    template: config.events.store_app_tenant.clone(),
                },
            },
        );
        let metrics_token = match &config.ops.metrics_token {
            None => None,
            Some(raw) => Some(
                unilogin::config::SecretRef::parse(raw)
                    .resolve(None)
                    .map_err(|why| Error::config(None, None, "ops.metrics_token", why))?,
            ),
        };
        let clients_watcher = provider.as_ref().map(|(_, clients, _)| {
            clients.spawn_watcher(Duration::from_millis(config.reload.poll_ms))
        });
        let host = provider.as_ref().map(|(_, _, h)| h.clone());
        let gateway = Gateway {
            inner: Arc::new(Inner {
                config,
                sso,
                states,
                revocations,
                issuer,
                metrics,
                limiters,
                binding_key,
                metrics_token,
                identities: self.identities,
                tenants,
                events,
                webhook,
                #[cfg(feature = "sql")]
                admin,
                #[cfg(feature = "sandbox")]
                sandbox: self.sandbox,
                provider: provider.map(|(p, c, _)| (p, c)),
                clients_watcher,
            }),
        };
        if let Some(host) = host {
            host.attach(&gateway.inner);
        }
        Ok(gateway)
    }
}

/// The SQL identity store of `accounts.url`, migrated when asked.
#[cfg(feature = "sql")]
async fn open_accounts(url: &str, migrate: bool) -> Result<Arc<dyn IdentityStore>> {
    let store = unilogin::sql::SqlIdentityStore::connect(url).await?;
    if migrate {
        store.migrate().await?;
    }
    Ok(Arc::new(store))
}

#[cfg(not(feature = "sql"))]
async fn open_accounts(_: &str, _: bool) -> Result<Arc<dyn IdentityStore>> {
    Err(Error::config(
        None,
        None,
        "accounts.url",
        "this gateway was built without the `sql` feature",
    ))
}

/// Forgets idle rate-limit keys every minute, for as long as the limiters live.
fn spawn_sweeper(limiters: &Arc<Limiters>) {
    let weak = Arc::downgrade(limiters);
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        tick.tick().await;
        loop {
            tick.tick().await;
            match weak.upgrade() {
                Some(l) => l.sweep(),
                None => break,
            }
        }
    });
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
            yaml: None,
            tenants: None,
            identities: None,
            dedupe: None,
            clients: None,
            grants: None,
            #[cfg(feature = "sandbox")]
            sandbox: None,
        }
    }

    /// The configuration.
    pub fn config(&self) -> &GatewayConfig {
        &self.inner.config
    }

    /// The app's webhook (its delivery log, its queue).
    pub fn webhook(&self) -> &crate::webhook::Webhook {
        &self.inner.webhook
    }

    /// Accepted platform events waiting to be applied.
    pub fn events_queued(&self) -> usize {
        self.inner.events.queue.len()
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

    /// The configured tenant source and its reload status (`None` when the source was given
    /// in code with [`GatewayBuilder::config_source`]).
    pub fn tenants(&self) -> Option<&Tenants> {
        self.inner.tenants.as_deref()
    }

    /// Reads the tenant configuration again now (what SIGHUP does); applied in the background.
    pub fn reload_tenants(&self) {
        if let Some(t) = &self.inner.tenants {
            t.trigger();
        }
    }

    fn front_settings(&self) -> TraceSettings {
        let c = &self.inner.config;
        TraceSettings {
            request_timeout: Duration::from_millis(c.limits.request_timeout_ms),
            trusted_proxies: c.proxy.hops(),
            limiters: Arc::clone(&self.inner.limiters),
            max_body_bytes: c.limits.max_body_bytes,
            max_event_body_bytes: c.events.max_body_bytes,
            body_read_timeout: Duration::from_millis(c.limits.body_read_timeout_ms),
            max_headers: c.limits.max_headers,
            max_header_bytes: c.limits.max_header_bytes,
            max_uri_bytes: c.limits.max_uri_bytes,
            hsts: c.public_url.scheme() == "https",
        }
    }

    /// The HTTP routes, behind the front middleware (trace id, limits, body read, security
    /// headers).
    pub fn router(&self) -> Router {
        let limits = &self.inner.config;
        routes::router(self)
            .layer(DefaultBodyLimit::max(
                limits
                    .limits
                    .max_body_bytes
                    .max(limits.events.max_body_bytes),
            ))
            .with_state(self.clone())
            .layer(trace::FrontLayer::new(self.front_settings()))
    }

    /// The operations routes (`/metrics`, `/healthz`, `/readyz`) served on `ops.listen`.
    pub fn ops_router(&self) -> Router {
        routes::ops_router()
            .with_state(self.clone())
            .layer(trace::FrontLayer::new(self.front_settings()))
    }

    /// The admin API's routes under `admin.path_prefix`, behind the front middleware, for its
    /// own listener (`admin.listen`); `None` when the admin API is off.
    pub fn admin_router(&self) -> Option<Router> {
        #[cfg(feature = "sql")]
        if let Some(admin) = &self.inner.admin {
            return Some(
                admin
                    .router(&self.inner.config.admin.path_prefix)
                    .layer(DefaultBodyLimit::max(
                        self.inner.config.limits.max_body_bytes,
                    ))
                    .layer(trace::FrontLayer::new(self.front_settings())),
            );
        }
        None
    }

    /// Serves on `listener` (and on `ops.listen` when set) until `shutdown` resolves, then stops
    /// accepting and lets requests in flight finish for at most `limits.shutdown_grace_secs`.
    ///
    /// Connections are bounded (`limits.max_connections`, and per TCP peer
    /// `limits.max_connections_per_client` when no proxy is trusted) and must send their request
    /// headers within `limits.header_read_timeout_ms`.
    pub async fn serve(
        &self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let ops = match self.inner.config.ops.listen {
            Some(addr) => {
                let l = TcpListener::bind(addr).await?;
                tracing::info!(addr = %l.local_addr()?, "operations listener");
                Some(tokio::spawn(crate::serve::serve(
                    self.clone(),
                    l,
                    self.ops_router(),
                    stop_rx.clone(),
                )))
            }
            None => None,
        };
        let admin = match (self.inner.config.admin.listen, self.admin_router()) {
            (Some(addr), Some(router)) => {
                let l = TcpListener::bind(addr).await?;
                tracing::info!(addr = %l.local_addr()?, "admin API listener");
                Some(tokio::spawn(crate::serve::serve(
                    self.clone(),
                    l,
                    router,
                    stop_rx.clone(),
                )))
            }
            _ => None,
        };
        tokio::spawn(async move {
            shutdown.await;
            tracing::info!("shutting down: no new connections, finishing requests in flight");
            let _ = stop_tx.send(true);
        });
        let main = crate::serve::serve(self.clone(), listener, self.router(), stop_rx).await;
        if let Some(ops) = ops {
            let _ = ops.await;
        }
        if let Some(admin) = admin {
            let _ = admin.await;
        }
        main
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
