//! [`Sso`]: one login, end to end.
//!
//! ```text
//! tenant + platform ─▶ ConfigSource ─▶ PlatformConfig ─▶ Registry ─▶ handler (built once per config)
//!                                                                      │
//!             TokenCache (L1 → L2 → one refresh) ◀── app token ────────┤
//!             code → identity → detail document  ◀── platform calls ───┘  (token invalid: invalidate that token, retry once)
//!             MappingRules (platform defaults + tenant overrides) ─▶ UserProfile
//! ```
//!
//! The orchestration lives here once, so platform crates stay small: they never cache, retry
//! or map.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tracing::Instrument;
use url::Url;

use crate::config::{ConfigSource, PlatformConfig};
use crate::error::{Error, Result, UpstreamCtx};
use crate::http::{HttpClient, HttpConfig};
use crate::mapping::{MappingRules, UserProfile};
use crate::platform::{AuthorizeRequest, Flow, Identity, Platform, UserToken, WebCallback};
use crate::redirect::check_redirect;
use crate::registry::{PlatformContext, Registry};
use crate::token_cache::TokenCache;
use crate::types::{AccessToken, AuthCode, PlatformName, RefreshToken, State, TenantId};

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

/// Parameters of a web login's authorize step.
#[derive(Debug, Clone, Copy)]
pub struct AuthorizeParams<'a> {
    /// Which flow the link is for.
    pub flow: Flow,
    /// Your callback URL, registered with the platform.
    pub redirect_uri: &'a Url,
    /// The CSRF state you stored for this browser.
    pub state: &'a State,
    /// OIDC nonce, where the provider supports it.
    pub nonce: Option<&'a str>,
    /// PKCE S256 challenge, where the provider supports it.
    pub code_challenge: Option<&'a str>,
}

/// A prepared (tenant, platform): its configuration, built handler and compiled rules.
struct Prepared {
    config: Arc<PlatformConfig>,
    handler: Arc<dyn Platform>,
    rules: MappingRules,
}

/// Built handlers by (tenant, platform name).
type PreparedTable = HashMap<(TenantId, String), Arc<Prepared>>;

struct Inner {
    config: Arc<dyn ConfigSource>,
    cache: TokenCache,
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
/// println!("{} logged in", login.profile.user_id);
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
    http: HttpConfig,
}

impl SsoBuilder {
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
                http: HttpClient::new(&self.http)?,
                prepared: Mutex::new(HashMap::new()),
            }),
        })
    }
}

const TRANSIENT_RETRIES: u32 = 2;

/// How long a user token set refreshed by [`Sso::refresh_user_token`] stays in the shared store
/// for replicas that refresh the same refresh token slightly later.
pub const USER_REFRESH_KEEP: Duration = Duration::from_secs(30);

/// [`UserToken`] as the opaque value [`TokenCache::single_flight`] shares through the store.
mod shared_user_token {
    use std::time::Duration;

    use serde::{Deserialize, Serialize};

    use crate::error::{Error, Result};
    use crate::platform::UserToken;
    use crate::types::{AccessToken, RefreshToken};

    /// Bumped when the encoding changes: a replica reading another version treats it as absent.
    const VERSION: u8 = 1;

    /// Wire form. Deliberately without `Debug`: it holds the secrets in clear.
    #[derive(Serialize, Deserialize)]
    struct Wire {
        v: u8,
        access_token: String,
        refresh_token: Option<String>,
        expires_in_ms: Option<u64>,
        refresh_expires_in_ms: Option<u64>,
        scope: Option<String>,
    }

    fn millis(d: Option<Duration>) -> Option<u64> {
        d.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub(super) fn encode(token: &UserToken) -> Result<AccessToken> {
        let wire = Wire {
            v: VERSION,
            access_token: token.access_token.expose().to_owned(),
            refresh_token: token.refresh_token.as_ref().map(|r| r.expose().to_owned()),
            expires_in_ms: millis(token.expires_in),
            refresh_expires_in_ms: millis(token.refresh_expires_in),
            scope: token.scope.clone(),
        };
        serde_json::to_string(&wire)
            .map(AccessToken::new)
            .map_err(|_| Error::Internal("cannot encode a user token to share it".into()))
    }

    /// `None` for anything this version did not write (never panics, never echoes the value).
    pub(super) fn decode(shared: &AccessToken) -> Option<UserToken> {
        let wire: Wire = serde_json::from_str(shared.expose()).ok()?;
        (wire.v == VERSION).then(|| UserToken {
            access_token: AccessToken::new(wire.access_token),
            refresh_token: wire.refresh_token.map(RefreshToken::new),
            expires_in: wire.expires_in_ms.map(Duration::from_millis),
            refresh_expires_in: wire.refresh_expires_in_ms.map(Duration::from_millis),
            scope: wire.scope,
        })
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn round_trip_keeps_every_field_and_debug_stays_redacted() {
            let token = UserToken {
                access_token: AccessToken::new("u-secret-access"),
                refresh_token: Some(RefreshToken::new("ur-secret-refresh")),
                expires_in: Some(Duration::from_secs(7200)),
                refresh_expires_in: None,
                scope: Some("offline_access".into()),
            };
            let shared = encode(&token).unwrap();
            assert!(!format!("{shared:?} {shared}").contains("secret"));
            let back = decode(&shared).unwrap();
            assert_eq!(back.access_token.expose(), "u-secret-access");
            assert_eq!(
                back.refresh_token.as_ref().map(|r| r.expose()),
                Some("ur-secret-refresh")
            );
            assert_eq!(back.expires_in, Some(Duration::from_secs(7200)));
            assert_eq!(back.refresh_expires_in, None);
            assert_eq!(back.scope.as_deref(), Some("offline_access"));
            assert!(!format!("{back:?}").contains("secret"));
        }

        #[test]
        fn malformed_or_foreign_values_decode_to_none() {
            for bad in [
                "",
                "not json",
                "{}",
                r#"{"v":2,"access_token":"a"}"#,
                r#"{"v":1,"access_token":7}"#,
                r#"{"v":1,"access_token":"a","expires_in_ms":-1}"#,
                "[1,2,3]",
            ] {
                assert!(decode(&AccessToken::new(bad)).is_none(), "{bad}");
            }
            assert!(decode(&AccessToken::new(r#"{"v":1,"access_token":"a"}"#)).is_some());
        }
    }
}

impl Sso {
    /// Starts building an [`Sso`] over a configuration source.
    pub fn builder(config: impl ConfigSource + 'static) -> SsoBuilder {
        SsoBuilder {
            config: Arc::new(config),
            cache: None,
            http: HttpConfig::default(),
        }
    }

    /// The token cache (for its statistics).
    pub fn token_cache(&self) -> &TokenCache {
        &self.inner.cache
    }

    /// The configuration source.
    pub fn config_source(&self) -> &Arc<dyn ConfigSource> {
        &self.inner.config
    }

    /// The H5 login-free exchange: a code from the platform client's JSAPI becomes a profile.
    pub async fn login_with_code(
        &self,
        tenant: &TenantId,
        platform: &str,
        code: &AuthCode,
    ) -> Result<Login> {
        let span = tracing::info_span!("login", tenant = %tenant, platform, flow = "h5");
        async {
            let p = self.prepare(tenant, platform).await?;
            let identity = self
                .with_app_token(&p, |token| {
                    let handler = p.handler.clone();
                    let code = code.clone();
                    async move { handler.identify_h5(&token, &code).await }
                })
                .await?;
            self.finish(&p, identity, Flow::H5).await
        }
        .instrument(span)
        .await
    }

    /// Builds the URL to send a browser to for a web/QR (or in-client OAuth) login.
    pub async fn authorize_url(
        &self,
        tenant: &TenantId,
        platform: &str,
        params: AuthorizeParams<'_>,
    ) -> Result<Url> {
        let p = self.prepare(tenant, platform).await?;
        p.handler.prepare_authorize().await?;
        p.handler.authorize_url(&AuthorizeRequest {
            flow: params.flow,
            redirect_uri: params.redirect_uri,
            state: params.state,
            nonce: params.nonce,
            code_challenge: params.code_challenge,
        })
    }

    /// Completes a web login with the callback's code. Check the `state` *before* calling this.
    pub async fn complete_web_login(
        &self,
        tenant: &TenantId,
        platform: &str,
        callback: WebCallback<'_>,
    ) -> Result<Login> {
        let span = tracing::info_span!("login", tenant = %tenant, platform, flow = "web");
        async {
            let p = self.prepare(tenant, platform).await?;
            let identity = self
                .with_app_token(&p, |token| {
                    let handler = p.handler.clone();
                    async move { handler.exchange_web_code(&token, &callback).await }
                })
                .await?;
            self.finish(&p, identity, Flow::Web).await
        }
        .instrument(span)
        .await
    }

    /// Refreshes a user's token with the platform.
    ///
    /// Concurrent refreshes of the same refresh token run **once**, in this process and across
    /// every replica whose [`TokenCache`] shares a store, and all callers get the same new token
    /// set ([`TokenCache::single_flight`] under [`TokenKey::user_refresh`](crate::token_cache::TokenKey::user_refresh)):
    /// with single-use refresh tokens (Feishu) a second upstream refresh would be refused and
    /// log that user out. With a store, the new token set is also kept there for
    /// [`USER_REFRESH_KEEP`] (in clear text, like app tokens), so a refresh with the same token
    /// arriving that much later gets it too instead of the platform's refusal; its
    /// `expires_in` figures are then as the platform reported them at the refresh. Without a
    /// store only concurrent callers of this process share.
    pub async fn refresh_user_token(
        &self,
        tenant: &TenantId,
        platform: &str,
        refresh_token: &RefreshToken,
    ) -> Result<UserToken> {
        let p = self.prepare(tenant, platform).await?;
        let key = p.handler.token_key().user_refresh(refresh_token);
        let (handler, token) = (p.handler.clone(), refresh_token.clone());
        let shared = self
            .inner
            .cache
            .single_flight(&key, USER_REFRESH_KEEP, move || async move {
                let fresh = handler.refresh_user_token(&token).await?;
                shared_user_token::encode(&fresh)
            })
            .await?;
        match shared_user_token::decode(&shared) {
            Some(token) => Ok(token),
            None => {
                // Another version's encoding: treat it as absent and ask the platform.
                tracing::warn!(key = %key, "unreadable shared user token; refreshing without it");
                p.handler.refresh_user_token(refresh_token).await
            }
        }
    }

    /// Checks a user-supplied return URL against the tenant's allow-list (exact match).
    pub async fn check_return_to(
        &self,
        tenant: &TenantId,
        platform: &str,
        candidate: &str,
    ) -> Result<Url> {
        let config = self.inner.config.get(tenant, platform).await?;
        check_redirect(tenant, &config.redirect_uris, candidate)
    }

    /// The built handler for a tenant's platform (validating the configuration on first use).
    pub async fn handler(&self, tenant: &TenantId, platform: &str) -> Result<Arc<dyn Platform>> {
        Ok(self.prepare(tenant, platform).await?.handler.clone())
    }

    async fn prepare(&self, tenant: &TenantId, platform: &str) -> Result<Arc<Prepared>> {
        // Unknown platform names fail before any configuration lookup, listing what exists.
        let registration = Registry::get(platform)?;
        let config = self.inner.config.get(tenant, registration.name).await?;
        if !config.enabled {
            return Err(Error::Disabled {
                tenant: tenant.clone(),
                platform: config.platform.clone(),
            });
        }
        let key = (tenant.clone(), registration.name.to_string());
        let previous = self.lock_prepared()?.get(&key).cloned();
        if let Some(p) = &previous
            && Arc::ptr_eq(&p.config, &config)
        {
            return Ok(p.clone());
        }
        let handler = (registration.build)(PlatformContext {
            config: &config,
            http: &self.inner.http,
        })?;
        let mut rules = MappingRules::from_yaml(registration.name, registration.default_rules)?;
        if let Some(overrides) = &config.mapping {
            rules = rules.with_overrides(overrides).map_err(|e| match e {
                Error::Config { field, reason, .. } => Error::Config {
                    tenant: Some(tenant.clone()),
                    platform: Some(registration.name.to_string()),
                    field,
                    reason,
                },
                other => other,
            })?;
        }
        // A rotated secret (or another app) invalidates the token the old configuration cached.
        if let Some(old) = previous {
            let old_key = old.handler.token_key();
            if old.config.app_secret != config.app_secret || old_key != handler.token_key() {
                tracing::info!(token = %old_key, "app credentials changed; evicting the cached app token");
                self.inner.cache.evict(&old_key).await;
            }
        }
        let prepared = Arc::new(Prepared {
            config,
            handler,
            rules,
        });
        self.lock_prepared()?.insert(key, prepared.clone());
        Ok(prepared)
    }

    fn lock_prepared(&self) -> Result<std::sync::MutexGuard<'_, PreparedTable>> {
        self.inner
            .prepared
            .lock()
            .map_err(|_| Error::Internal("handler table lock poisoned".into()))
    }

    async fn app_token(&self, p: &Prepared) -> Result<AccessToken> {
        if !p.handler.needs_app_token() {
            // Documented in `Platform::needs_app_token`: an empty token the steps ignore.
            return Ok(AccessToken::new(""));
        }
        let handler = p.handler.clone();
        self.inner
            .cache
            .get(&p.handler.token_key(), move || async move {
                handler.fetch_app_token().await
            })
            .await
    }

    /// Runs `step` with the app token; when the platform rejects the token, invalidates exactly
    /// that token and runs the step once more with a fresh one.
    async fn with_app_token<T, F, Fut>(&self, p: &Prepared, step: F) -> Result<T>
    where
        F: Fn(AccessToken) -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let token = self.app_token(p).await?;
        match step(token.clone()).await {
            Err(e) if e.is_token_invalid() && p.handler.needs_app_token() => {
                tracing::info!(error = %e, "app token rejected; invalidating it and retrying once");
                self.inner
                    .cache
                    .invalidate(&p.handler.token_key(), &token)
                    .await;
                let fresh = self.app_token(p).await?;
                step(fresh).await
            }
            other => other,
        }
    }

    async fn finish(&self, p: &Prepared, identity: Identity, flow: Flow) -> Result<Login> {
        let handler = p.handler.clone();
        if let (Some(org), Some(corp)) = (&identity.org_id, &p.config.corp_id)
            && !org.is_empty()
            && org != corp
        {
            return Err(Error::NotInTenant {
                ctx: UpstreamCtx::new(
                    Some(handler.tenant().clone()),
                    handler.name().clone(),
                    "membership",
                ),
            });
        }
        let mut attempt = 0;
        let mut detail = loop {
            let result = self
                .with_app_token(p, |token| {
                    let handler = handler.clone();
                    let identity = &identity;
                    async move { handler.user_detail(&token, identity).await }
                })
                .await;
            match result {
                Err(e)
                    if e.is_transient()
                        && attempt < TRANSIENT_RETRIES
                        && !matches!(e, Error::RateLimited { .. }) =>
                {
                    attempt += 1;
                    tracing::warn!(error = %e, attempt, "transient failure fetching user detail; retrying");
                    tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
                }
                other => break other?,
            }
        };
        if let Value::Object(map) = &mut detail {
            for (k, v) in &identity.documents {
                map.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        let mut profile = p.rules.map(handler.name(), handler.tenant(), &detail)?;
        if profile.union_id.is_none() {
            profile.union_id = identity.union_id.clone();
        }
        if profile.open_id.is_none() {
            profile.open_id = identity.open_id.clone();
        }
        tracing::info!(user_id = %profile.user_id, "login succeeded");
        Ok(Login {
            profile,
            user_token: identity.user_token,
            flow,
        })
    }
}

/// The platform name of a prepared handler (kept for diagnostics).
impl fmt::Debug for Prepared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Prepared")
            .field("platform", &PlatformName::clone(self.handler.name()))
            .field("tenant", self.handler.tenant())
            .finish_non_exhaustive()
    }
}
