//! [`Sso`]: one login, end to end.
//!
//! ```text
//! tenant + platform ─▶ ConfigSource ─▶ PlatformConfig ─▶ Registry ─▶ Prepared (built once per config revision)
//!                                                                      │
//!             TokenCache (L1 → L2 → one refresh) ◀── app token ────────┤
//!             code → identity → detail document  ◀── platform calls ───┘  (token invalid: invalidate that token, retry once)
//!             MappingRules (platform defaults + tenant overrides) ─▶ UserProfile
//! ```
//!
//! A request resolves its (tenant, platform) **once** with [`Sso::prepare`] into a
//! [`Prepared`] handle (configuration, handler, compiled mapping rules, and whatever else the
//! caller compiles per revision with [`Prepared::compiled`]) and runs every step on it. The
//! orchestration lives here once, so platform crates stay small: they never cache, retry or
//! map.

mod prepared;
mod shared_user_token;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use url::Url;

use crate::config::ConfigSource;
use crate::error::{Error, Result};
use crate::http::{HttpClient, HttpConfig};
use crate::isv::{MemoryTicketStore, TicketStore};
use crate::jsapi::{JsapiConfig, Signed, TicketKind};
use crate::mapping::UserProfile;
use crate::platform::{CodeKind, Flow, UserToken};
use crate::registry::{PlatformContext, Registry};
use crate::token_cache::TokenCache;
use crate::types::{AuthCode, RefreshToken, TenantId};
use crate::web_login::{Callback, PendingLogin, WebLoginStart};

pub use prepared::Prepared;

/// The result of a successful login.
#[derive(Debug, Clone)]
pub struct Login {
    /// The unified profile.
    pub profile: UserProfile,
    /// The user's own token set, for web flows whose platform issues one.
    pub user_token: Option<UserToken>,
    /// Which flow produced the login.
    pub flow: Flow,
}

/// Prepared handles by (tenant, platform name).
type PreparedTable = HashMap<(TenantId, &'static str), Prepared>;

pub(crate) struct Inner {
    config: Arc<dyn ConfigSource>,
    cache: TokenCache,
    tickets: Arc<dyn TicketStore>,
    http: HttpClient,
    prepared: Mutex<PreparedTable>,
}

/// Logs people in. Cheap to clone; share one per process.
///
/// ```no_run
/// # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
/// use unilogin_core::{sso::Sso, config::StaticConfig, AuthCode, TenantId};
/// let sso = Sso::builder(StaticConfig::new(vec![/* tenant configs */])).build()?;
/// let login = sso
///     .login_with_code(&TenantId::new("acme")?, "dingtalk", &AuthCode::new("code-from-jsapi"))
///     .await?;
/// println!("{} logged in", login.profile.subject);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Sso {
    inner: Arc<Inner>,
}

impl fmt::Debug for Sso {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sso")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// Builds an [`Sso`].
#[derive(Debug)]
pub struct SsoBuilder {
    config: Arc<dyn ConfigSource>,
    cache: Option<TokenCache>,
    tickets: Option<Arc<dyn TicketStore>>,
    http: HttpConfig,
}

impl SsoBuilder {
    /// Keeps store apps' pushed tickets (see [`crate::isv`]) in this store (for example
    /// `unilogin_redis::RedisTicketStore`, shared by every replica) instead of a
    /// [`MemoryTicketStore`]. Handlers reach it through
    /// [`Base::services`](crate::platform::Base::services); receivers offer pushed tickets to
    /// [`Sso::ticket_store`].
    ///
    /// ```
    /// use std::sync::Arc;
    /// use unilogin_core::config::StaticConfig;
    /// use unilogin_core::isv::{MemoryTicketStore, TicketStore};
    /// use unilogin_core::sso::Sso;
    /// let store: Arc<dyn TicketStore> = Arc::new(MemoryTicketStore::new());
    /// let sso = Sso::builder(StaticConfig::new(vec![])).ticket_store(store.clone()).build()?;
    /// assert!(Arc::ptr_eq(sso.ticket_store(), &store));
    /// # Ok::<(), unilogin_core::Error>(())
    /// ```
    pub fn ticket_store(mut self, store: Arc<dyn TicketStore>) -> Self {
        self.tickets = Some(store);
        self
    }

    /// Uses this token cache (for example one with a Redis store) instead of a memory-only one.
    pub fn token_cache(mut self, cache: TokenCache) -> Self {
        self.cache = Some(cache);
        self
    }

    /// HTTP settings (timeouts, body limit).
    pub fn http(mut self, http: HttpConfig) -> Self {
        self.http = http;
        self
    }

    /// Builds the [`Sso`].
    pub fn build(self) -> Result<Sso> {
        Ok(Sso {
            inner: Arc::new(Inner {
                config: self.config,
                cache: self.cache.unwrap_or_default(),
                tickets: self
                    .tickets
                    .unwrap_or_else(|| Arc::new(MemoryTicketStore::new())),
                http: HttpClient::new(&self.http)?,
                prepared: Mutex::new(HashMap::new()),
            }),
        })
    }
}

/// How long a user token set refreshed by [`Sso::refresh_user_token`] stays in the shared store
/// for replicas that refresh the same refresh token slightly later.
pub const USER_REFRESH_KEEP: Duration = Duration::from_secs(30);

impl Sso {
    /// Starts building an [`Sso`] over a configuration source.
    pub fn builder(config: impl ConfigSource + 'static) -> SsoBuilder {
        Self::builder_shared(Arc::new(config))
    }

    /// Starts building an [`Sso`] over a configuration source shared with other parts.
    pub fn builder_shared(config: Arc<dyn ConfigSource>) -> SsoBuilder {
        SsoBuilder {
            config,
            cache: None,
            tickets: None,
            http: HttpConfig::default(),
        }
    }

    /// The token cache (for its statistics).
    pub fn token_cache(&self) -> &TokenCache {
        &self.inner.cache
    }

    /// The store of pushed tickets (see [`SsoBuilder::ticket_store`]).
    pub fn ticket_store(&self) -> &Arc<dyn TicketStore> {
        &self.inner.tickets
    }

    /// The configuration source.
    pub fn config_source(&self) -> &Arc<dyn ConfigSource> {
        &self.inner.config
    }

    /// Resolves `(tenant, platform)` once: registered, configured, enabled, its handler built
    /// and its rules compiled. The handle is reused until the configuration changes (the
    /// source returns another `Arc`); then the next call rebuilds it and, when the app's
    /// credentials changed, evicts the app token cached under the old ones.
    pub async fn prepare(&self, tenant: &TenantId, platform: &str) -> Result<Prepared> {
        // Unknown platform names fail before any configuration lookup, listing what exists.
        let registration = Registry::get(platform)?;
        let config = self.inner.config.get(tenant, registration.name).await?;
        if !config.enabled {
            return Err(Error::Disabled {
                tenant: tenant.clone(),
                platform: config.platform.clone(),
            });
        }
        let key = (tenant.clone(), registration.name);
        let previous = self.lock_prepared()?.get(&key).cloned();
        if let Some(p) = &previous
            && Arc::ptr_eq(p.config(), &config)
        {
            return Ok(p.clone());
        }
        let handler = (registration.build)(PlatformContext {
            config: &config,
            http: &self.inner.http,
        })?;
        handler.base().attach(crate::platform::sdk::Services {
            token_cache: self.inner.cache.clone(),
            tickets: self.inner.tickets.clone(),
        });
        // Shared with every configuration of the same platform and overrides; the tenant's
        // subject policy is applied on top (it shares the compiled rules).
        let rules = crate::config::mapping_rules(registration, config.mapping.as_deref())
            .and_then(|rules| rules.with_subject(config.identity.subject))
            .map_err(|e| match e {
                Error::Config { field, reason, .. } => Error::Config {
                    tenant: Some(tenant.clone()),
                    platform: Some(registration.name.to_string()),
                    field,
                    reason,
                },
                other => other,
            })?;
        // A rotated secret (or another app) invalidates the token the old configuration cached.
        if let Some(old) = previous
            && let Some(old_key) = old.handler().token_key()
            && (old.config().app_secret != config.app_secret
                || Some(&old_key) != handler.token_key().as_ref())
        {
            tracing::info!(token = %old_key, "app credentials changed; evicting the cached app token");
            self.inner.cache.evict(&old_key).await;
        }
        let prepared = Prepared::new(self.clone(), registration, config, handler, rules);
        self.lock_prepared()?.insert(key, prepared.clone());
        Ok(prepared)
    }

    /// Applies a configuration reload to the handles prepared so far (call it with the report
    /// of every reload, see [`CachedSource::spawn_watcher`](crate::config::CachedSource::spawn_watcher)):
    /// a changed entry that was prepared here is prepared again at once — which evicts the app
    /// token cached under its old credentials when they changed — and a removed or no longer
    /// usable entry's handle is dropped together with its cached app token. Entries never
    /// prepared here are left alone (they are built at their first login). Requests already
    /// running keep the handle they resolved.
    pub async fn apply_reload(&self, report: &crate::config::ReloadReport) {
        for (tenant, platform) in &report.changed {
            let Ok(registration) = Registry::get(platform.as_str()) else {
                continue;
            };
            let key = (tenant.clone(), registration.name);
            let prepared_here = self
                .lock_prepared()
                .map(|t| t.contains_key(&key))
                .unwrap_or(false);
            if prepared_here && self.prepare(tenant, registration.name).await.is_err() {
                self.drop_prepared(&key).await;
            }
        }
        for (tenant, platform) in &report.removed {
            if let Ok(registration) = Registry::get(platform.as_str()) {
                self.drop_prepared(&(tenant.clone(), registration.name))
                    .await;
            }
        }
    }

    /// Forgets a prepared handle and evicts its cached app token.
    async fn drop_prepared(&self, key: &(TenantId, &'static str)) {
        let old = self.lock_prepared().ok().and_then(|mut t| t.remove(key));
        if let Some(old) = old
            && let Some(token) = old.handler().token_key()
        {
            tracing::info!(token = %token, "configuration gone or unusable; evicting the cached app token");
            self.inner.cache.evict(&token).await;
        }
    }

    fn lock_prepared(&self) -> Result<std::sync::MutexGuard<'_, PreparedTable>> {
        self.inner
            .prepared
            .lock()
            .map_err(|_| Error::Internal("handler table lock poisoned".into()))
    }

    /// The H5 login-free exchange: a code from the platform client's JSAPI becomes a profile
    /// (see [`Prepared::login_with_code`]).
    pub async fn login_with_code(
        &self,
        tenant: &TenantId,
        platform: &str,
        code: &AuthCode,
    ) -> Result<Login> {
        self.prepare(tenant, platform)
            .await?
            .login_with_code(code)
            .await
    }

    /// A code of either stateless kind (H5 JSAPI or mini program) becomes a profile (see
    /// [`Prepared::login_with_code_kind`]).
    pub async fn login_with_code_kind(
        &self,
        tenant: &TenantId,
        platform: &str,
        kind: CodeKind,
        code: &AuthCode,
    ) -> Result<Login> {
        self.prepare(tenant, platform)
            .await?
            .login_with_code_kind(kind, code)
            .await
    }

    /// The signed JS SDK configuration for a page (see [`Prepared::jsapi_config`]).
    ///
    /// ```no_run
    /// # async fn demo(sso: unilogin_core::Sso) -> unilogin_core::Result<()> {
    /// use unilogin_core::{TenantId, TicketKind};
    /// let tenant = TenantId::new("acme")?;
    /// let config = sso
    ///     .jsapi_config(&tenant, "wecom", "https://app.example.com/h5/", TicketKind::AgentConfig, &[])
    ///     .await?;
    /// assert_eq!(config.config["nonceStr"], config.signed.nonce.as_str());
    /// # Ok(()) }
    /// ```
    pub async fn jsapi_config(
        &self,
        tenant: &TenantId,
        platform: &str,
        page_url: &str,
        kind: TicketKind,
        js_api_list: &[String],
    ) -> Result<JsapiConfig> {
        self.prepare(tenant, platform)
            .await?
            .jsapi_config(page_url, kind, js_api_list)
            .await
    }

    /// Forgets the ticket that signed a configuration the client reports rejected (see
    /// [`Prepared::invalidate_ticket`]).
    pub async fn invalidate_ticket(
        &self,
        tenant: &TenantId,
        platform: &str,
        kind: TicketKind,
        rejected: &Signed,
    ) -> Result<bool> {
        self.prepare(tenant, platform)
            .await?
            .invalidate_ticket(kind, rejected)
            .await
    }

    /// Starts a redirect login (see [`Prepared::start_web_login`]).
    pub async fn start_web_login(
        &self,
        tenant: &TenantId,
        platform: &str,
        flow: Flow,
        redirect_uri: &Url,
    ) -> Result<WebLoginStart> {
        self.prepare(tenant, platform)
            .await?
            .start_web_login(flow, redirect_uri)
            .await
    }

    /// Finishes a redirect login with its pending login and the callback (see
    /// [`Prepared::finish_web_login`]).
    pub async fn finish_web_login(
        &self,
        pending: &PendingLogin,
        callback: &Callback,
    ) -> Result<Login> {
        self.prepare(&pending.tenant, pending.platform.as_str())
            .await?
            .finish_web_login(pending, callback)
            .await
    }

    /// Refreshes a user's token with the platform (see [`Prepared::refresh_user_token`]).
    pub async fn refresh_user_token(
        &self,
        tenant: &TenantId,
        platform: &str,
        refresh_token: &RefreshToken,
    ) -> Result<UserToken> {
        self.prepare(tenant, platform)
            .await?
            .refresh_user_token(refresh_token)
            .await
    }

    /// Checks a user-supplied return URL against the tenant's allow-list (exact match).
    pub async fn check_return_to(
        &self,
        tenant: &TenantId,
        platform: &str,
        candidate: &str,
    ) -> Result<Url> {
        self.prepare(tenant, platform)
            .await?
            .check_return_to(candidate)
    }
}
