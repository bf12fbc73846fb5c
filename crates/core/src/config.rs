//! Per-tenant platform configuration: [`PlatformConfig`] (one tenant's settings for one
//! platform) and the [`ConfigSource`] trait that serves them.
//!
//! A source returns the same `Arc<PlatformConfig>` until the configuration changes, so callers
//! can cache whatever they derive from it (built handlers, compiled mapping rules) and notice a
//! change with [`Arc::ptr_eq`].
//!
//! Sources:
//! - [`StaticConfig`]: a fixed list (tests, programs that build their configuration in code);
//! - [`CachedSource`] over a [`ConfigLoader`]: served from memory, reloaded without a restart,
//!   validated on load ([`PlatformConfig::validate`]), with the last good configuration kept
//!   when a change is invalid. Loaders: [`YamlFile`] / [`YamlText`] here (schema in
//!   [`parse_yaml`]), and the SQL database in the `unilogin-sql` crate.
//!
//! App secrets may be given as references ([`SecretRef`]: `env:NAME`, `file:PATH`) that the
//! loaders resolve at load time.

mod cached;
mod rules_cache;
mod secret;
pub mod shared;
#[cfg(test)]
mod source_tests;
mod yaml;

pub use cached::{
    CachedSource, Changes, ConfigLoader, ConfigProblems, LoadedEntry, MAX_REPORTED, OnReload,
    ReloadReport, ReloadStatus, ReloaderHandle,
};
pub use rules_cache::{MAX_INTERNED, interned_count, mapping_rules};
pub use secret::{SecretRef, SecretRefPolicy};
pub use yaml::{YamlFile, YamlText, parse_yaml, yaml_section};

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, OnceLock};

use async_trait::async_trait;
use serde::Deserialize;
use url::Url;

use crate::error::{Error, Result};
use crate::events::{EventCodec, EventCredentials, EventError};
use crate::http::{HttpClient, HttpConfig};
use crate::identity::IdentityPolicy;
use crate::mapping::ScopeRules;
use crate::redirect::validate_redirect_shape;
use crate::registry::{PlatformContext, Registry};
use crate::types::{AppKey, AppSecret, PlatformName, TenantId};

fn yes() -> bool {
    true
}

/// One tenant's configuration of one platform.
///
/// ```
/// use unilogin_core::config::PlatformConfig;
/// let cfg: PlatformConfig = serde_json::from_value(serde_json::json!({
///     "tenant": "acme", "platform": "dingtalk",
///     "app_key": "dingabc", "app_secret": "s3cret",
///     "redirect_uris": ["https://app.acme.example/after-login"]
/// })).unwrap();
/// assert!(cfg.enabled);
/// assert!(!format!("{cfg:?}").contains("s3cret"));
/// ```
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlatformConfig {
    /// The tenant.
    pub tenant: TenantId,
    /// The platform (a registered name).
    pub platform: PlatformName,
    /// Whether new logins are allowed.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Protocol or mode, where a platform offers several (custom-oauth: `oidc` / `steps`).
    #[serde(default)]
    pub mode: Option<String>,
    /// App key / app id / client id.
    pub app_key: AppKey,
    /// App secret / client secret. Only a public OAuth client leaves it out (see
    /// [`PlatformConfig::is_public_client`]); [`PlatformConfig::validate`] refuses any other
    /// configuration without one.
    #[serde(default = "no_secret")]
    pub app_secret: AppSecret,
    /// Organisation id, where the platform needs one (DingTalk corpId, WeCom corpid, Feishu
    /// tenant_key).
    #[serde(default)]
    pub corp_id: Option<String>,
    /// App id inside the organisation (WeCom agentid, DingTalk agentId).
    #[serde(default)]
    pub agent_id: Option<String>,
    /// A store app's credential for the installing organisation (`corp_id`), where the
    /// platform issues one on installation (WeCom `permanent_code`, the `get_corp_token`
    /// input): a secret like `app_secret` (`env:` / `file:` references, encrypted in SQL,
    /// never shown in `Debug`). Other configurations leave it out.
    #[serde(default)]
    pub permanent_code: Option<AppSecret>,
    /// Host overrides by name (`api`, `oapi`, `login`, `open`, `accounts`, ...): private
    /// deployments, Lark vs Feishu, the test-kit fakes. Shared (one `Arc` per distinct map) by
    /// the configurations the loaders read.
    #[serde(default)]
    pub hosts: Arc<BTreeMap<String, Url>>,
    /// Mapping-rule overrides (field → rule), merged field by field over the platform defaults.
    /// Shared by content like `hosts`.
    #[serde(default)]
    pub mapping: Option<Arc<serde_json::Value>>,
    /// The exact redirect URIs this tenant may send users back to.
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// Which session scopes a person gets from their profile (read by session issuers such as
    /// the gateway, never by the platform): `{default: [..], rules: [{when: {..}, grant: [..]}]}`,
    /// validated and compiled when the configuration is read (shared by content like `hosts`).
    #[serde(default)]
    pub session_scopes: Option<Arc<ScopeRules>>,
    /// Who logged in: the subject policy (`identity.subject`) and the account-linking rules
    /// (`identity.link`) of this platform for this tenant; see [`IdentityPolicy`].
    #[serde(default)]
    pub identity: IdentityPolicy,
    /// Platform-specific flow options.
    #[serde(default)]
    pub options: serde_json::Map<String, serde_json::Value>,
    /// The platform's event subscription (callbacks the platform pushes: a member left, a
    /// profile changed…), when the tenant receives events; see [`EventSettings`].
    #[serde(default)]
    pub events: Option<EventSettings>,
}

/// One tenant's event subscription on one platform: the credentials the platform's console
/// shows for its callback URL. `Debug` never shows `token` or `key`.
///
/// | platform | `token` | `key` | `receiver_id` (default: `app_key`) |
/// |---|---|---|---|
/// | DingTalk | token | aes_key (43 characters) | the app key (the owner key of 事件订阅) |
/// | Feishu | Verification Token | Encrypt Key (optional, recommended) | unused |
/// | WeCom | Token | EncodingAESKey (43 characters) | the corp id (= `app_key`) |
///
/// ```
/// use unilogin_core::config::PlatformConfig;
/// let cfg: PlatformConfig = serde_json::from_value(serde_json::json!({
///     "tenant": "acme", "platform": "some-platform", "app_key": "k", "app_secret": "s",
///     "events": { "token": "tok3n", "key": "k3y" }
/// })).unwrap();
/// let events = cfg.events.as_ref().unwrap();
/// assert_eq!(events.credentials(&cfg).receiver_id.as_deref(), Some("k"));
/// assert!(!format!("{cfg:?}").contains("tok3n") && !format!("{cfg:?}").contains("k3y"));
/// ```
#[derive(Clone, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventSettings {
    /// The callback token (DingTalk token, Feishu Verification Token, WeCom Token).
    #[serde(default)]
    pub token: Option<AppSecret>,
    /// The encryption key (DingTalk aes_key, Feishu Encrypt Key, WeCom EncodingAESKey).
    #[serde(default)]
    pub key: Option<AppSecret>,
    /// Who the messages are for; default: the configuration's `app_key` (DingTalk's app key,
    /// WeCom's corp id). Feishu ignores it.
    #[serde(default)]
    pub receiver_id: Option<String>,
}

impl fmt::Debug for EventSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mark = |v: &Option<AppSecret>| if v.is_some() { "***" } else { "-" };
        f.debug_struct("EventSettings")
            .field("token", &mark(&self.token))
            .field("key", &mark(&self.key))
            .field("receiver_id", &self.receiver_id)
            .finish()
    }
}

impl EventSettings {
    /// The platform-neutral credentials of `config` (whose `events` these are): the receiver
    /// id defaults to its `app_key`.
    pub fn credentials(&self, config: &PlatformConfig) -> EventCredentials {
        EventCredentials {
            token: self.token.clone(),
            key: self.key.clone(),
            receiver_id: Some(
                self.receiver_id
                    .clone()
                    .unwrap_or_else(|| config.app_key.as_str().to_string()),
            ),
        }
    }
}

/// The configuration field an [`EventError::InvalidConfig`] is about, from its fixed words.
fn event_field(what: &str) -> &'static str {
    if what.contains("receiver") {
        "events.receiver_id"
    } else if what.contains("token") {
        "events.token"
    } else if what.contains("key") {
        "events.key"
    } else {
        "events"
    }
}

impl fmt::Debug for PlatformConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PlatformConfig")
            .field("tenant", &self.tenant)
            .field("platform", &self.platform)
            .field("enabled", &self.enabled)
            .field("mode", &self.mode)
            .field("app_key", &self.app_key)
            .field("app_secret", &self.app_secret)
            .field("corp_id", &self.corp_id)
            .field("agent_id", &self.agent_id)
            .field("permanent_code", &self.permanent_code)
            .field("hosts", &self.hosts)
            .field("redirect_uris", &self.redirect_uris)
            .field("session_scopes", &self.session_scopes.is_some())
            .field("identity", &self.identity)
            .field("options", &self.options.keys().collect::<Vec<_>>())
            .field("events", &self.events)
            .finish_non_exhaustive()
    }
}

/// A shared client for building handlers during validation (building one never connects).
fn validation_http() -> Result<&'static HttpClient> {
    static CLIENT: OnceLock<std::result::Result<HttpClient, Error>> = OnceLock::new();
    CLIENT
        .get_or_init(|| HttpClient::new(&HttpConfig::default()))
        .as_ref()
        .map_err(Clone::clone)
}

fn no_secret() -> AppSecret {
    AppSecret::new("")
}

/// Whether `options` declare a public OAuth client: `token_auth_method: none` (RFC 7591's name
/// for a client that has no secret).
pub(crate) fn declares_public_client(options: &serde_json::Map<String, serde_json::Value>) -> bool {
    options
        .get("token_auth_method")
        .and_then(serde_json::Value::as_str)
        .is_some_and(|m| m.trim() == "none")
}

fn blank(s: &Option<String>) -> bool {
    s.as_deref().is_some_and(|v| v.trim().is_empty())
}

/// The checks of one host override (`hosts.<name>`).
fn check_host(name: &str, url: &Url) -> std::result::Result<(), &'static str> {
    if name.trim().is_empty() {
        return Err("host names must not be blank");
    }
    if !matches!(url.scheme(), "http" | "https") {
        return Err("must be an http or https URL");
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err("must have a host");
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain user info");
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("must not contain a query or fragment (secrets never go into URLs)");
    }
    Ok(())
}

impl PlatformConfig {
    /// Checks everything that can be checked before a login, with an [`Error::Config`] naming
    /// the tenant, the platform and the field:
    ///
    /// - `app_key` and `app_secret` are present (not blank); `app_secret` may be left out only
    ///   by a [public client](Self::is_public_client), and the platform's `build` then decides
    ///   whether it supports one;
    /// - `mode`, `corp_id`, `agent_id`, when given, are not blank;
    /// - every host override is an absolute `http(s)` URL with a host and without user info,
    ///   query or fragment;
    /// - every redirect URI has a valid shape
    ///   ([`validate_redirect_shape`]) and none is listed twice;
    /// - when the platform is registered in this binary: the mapping overrides compile against
    ///   the platform's default rules, and the platform's own `build` accepts the configuration
    ///   (its required fields and options). An unregistered platform is only checked generically
    ///   ([`Sso`](crate::sso::Sso) refuses it with [`Error::UnknownPlatform`] at login).
    ///
    /// ```
    /// use unilogin_core::config::PlatformConfig;
    /// let mut cfg: PlatformConfig = serde_json::from_value(serde_json::json!({
    ///     "tenant": "acme", "platform": "some-platform", "app_key": "k", "app_secret": "s",
    ///     "redirect_uris": ["http://evil.example/cb"]
    /// })).unwrap();
    /// let err = cfg.validate().unwrap_err().to_string();
    /// assert!(err.contains("acme") && err.contains("some-platform") && err.contains("redirect_uris[0]"), "{err}");
    /// cfg.redirect_uris = vec!["https://app.acme.example/cb".into()];
    /// assert!(cfg.validate().is_ok());
    /// ```
    pub fn validate(&self) -> Result<()> {
        match self.problems().into_iter().next() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// The store-app switch of the platforms that have store apps: `mode` absent or
    /// `internal` is an organisation's own app (`false`), `isv` a store (third-party) app
    /// (`true`, docs/store-apps.md); anything else is an [`Error::Config`] naming `mode`.
    ///
    /// ```
    /// use unilogin_core::config::PlatformConfig;
    /// let cfg = |mode: serde_json::Value| -> PlatformConfig {
    ///     serde_json::from_value(serde_json::json!({
    ///         "tenant": "acme", "platform": "dingtalk", "app_key": "k", "app_secret": "s",
    ///         "mode": mode,
    ///     })).unwrap()
    /// };
    /// assert!(!cfg(serde_json::Value::Null).store_app_mode().unwrap());
    /// assert!(!cfg("internal".into()).store_app_mode().unwrap());
    /// assert!(cfg("isv".into()).store_app_mode().unwrap());
    /// assert!(cfg("store".into()).store_app_mode().unwrap_err().to_string().contains("mode"));
    /// ```
    pub fn store_app_mode(&self) -> Result<bool> {
        match self.mode.as_deref().map(str::trim) {
            None | Some("internal") => Ok(false),
            Some("isv") => Ok(true),
            Some(other) => {
                let other: String = other.chars().take(32).collect();
                Err(self.error("mode", format!("`{other}` is not one of `internal`, `isv`")))
            }
        }
    }

    /// Every problem [`validate`](Self::validate) would find, not only the first: the generic
    /// checks field by field, then (when those pass and the platform is registered) the mapping
    /// overrides and the platform's own `build`. Empty when the configuration is valid.
    ///
    /// ```
    /// use unilogin_core::config::PlatformConfig;
    /// let cfg: PlatformConfig = serde_json::from_value(serde_json::json!({
    ///     "tenant": "acme", "platform": "some-platform", "app_key": "k", "app_secret": "s",
    ///     "hosts": { "api": "https://api.example/?token=1" },
    ///     "redirect_uris": ["http://evil.example/cb"]
    /// })).unwrap();
    /// let fields: Vec<String> = cfg.problems().iter().map(|e| e.to_string()).collect();
    /// assert_eq!(fields.len(), 2, "{fields:?}");
    /// assert!(fields[0].contains("hosts.api") && fields[1].contains("redirect_uris[0]"));
    /// ```
    pub fn problems(&self) -> Vec<Error> {
        let mut problems = Vec::new();
        if self.tenant.as_str() == crate::isv::SUITE_TENANT {
            problems.push(self.error(
                "tenant",
                "`isv` is reserved (store apps' suite tokens are cached under it)",
            ));
        }
        if self.app_key.as_str().trim().is_empty() {
            problems.push(self.error("app_key", "must not be empty"));
        }
        if self.app_secret.expose().trim().is_empty() && !self.is_public_client() {
            problems.push(self.error(
                "app_secret",
                "must not be empty (only a public OAuth client, `options.token_auth_method: none`, has no secret)",
            ));
        }
        for (field, value) in [
            ("mode", &self.mode),
            ("corp_id", &self.corp_id),
            ("agent_id", &self.agent_id),
        ] {
            if blank(value) {
                problems.push(self.error(field, "must not be blank (leave it out instead)"));
            }
        }
        for (name, url) in self.hosts.iter() {
            if let Err(reason) = check_host(name, url) {
                problems.push(self.error(&format!("hosts.{name}"), reason));
            }
        }
        for (i, uri) in self.redirect_uris.iter().enumerate() {
            let field = format!("redirect_uris[{i}]");
            if let Err(reason) = validate_redirect_shape(uri) {
                problems.push(self.error(&field, reason));
            } else if self.redirect_uris[..i].contains(uri) {
                problems.push(self.error(&field, "listed twice"));
            }
        }
        if let Err(reason) = self.identity.validate() {
            problems.push(self.error("identity.link.default_country_code", reason));
        }
        let Ok(registration) = Registry::get(self.platform.as_str()) else {
            tracing::debug!(
                tenant = %self.tenant,
                platform = %self.platform,
                "platform not registered in this binary; only generic checks applied"
            );
            return problems;
        };
        if let Some(overrides) = self.mapping.as_deref()
            && let Err(e) = mapping_rules(registration, Some(overrides))
        {
            problems.push(self.scoped(e));
        }
        if let Err(e) = self.event_codec() {
            problems.push(e);
        }
        if !problems.is_empty() {
            // The platform's own checks assume the generic ones passed.
            return problems;
        }
        let built = validation_http().and_then(|http| {
            (registration.build)(PlatformContext { config: self, http }).map(drop)
        });
        if let Err(e) = built {
            problems.push(self.scoped(e));
        }
        problems
    }

    /// Builds this configuration's event codec (the platform's callback scheme with the
    /// tenant's `events` credentials): `Ok(None)` without `events`; an [`Error::Config`] naming
    /// the field (`events.key` for an AES key of the wrong length…) when the credentials are
    /// unusable or the platform pushes no events. [`validate`](Self::validate) runs it, so a
    /// configuration that loaded builds its codec.
    ///
    /// ```
    /// use unilogin_core::config::PlatformConfig;
    /// let cfg: PlatformConfig = serde_json::from_value(serde_json::json!({
    ///     "tenant": "acme", "platform": "some-platform", "app_key": "k", "app_secret": "s"
    /// })).unwrap();
    /// assert!(cfg.event_codec().unwrap().is_none());
    /// ```
    pub fn event_codec(&self) -> Result<Option<Box<dyn EventCodec>>> {
        let Some(settings) = &self.events else {
            return Ok(None);
        };
        let registration = Registry::get(self.platform.as_str())?;
        let Some(build) = registration.events else {
            return Err(self.error("events", "this platform pushes no events"));
        };
        build(&settings.credentials(self))
            .map(Some)
            .map_err(|e| match e {
                EventError::InvalidConfig { what } => self.error(event_field(what), what),
                other => self.error("events", other.kind()),
            })
    }

    /// Puts this configuration's tenant and platform on a configuration error that lacks them.
    fn scoped(&self, e: Error) -> Error {
        match e {
            Error::Config {
                tenant,
                platform,
                field,
                reason,
            } => Error::Config {
                tenant: tenant.or_else(|| Some(self.tenant.clone())),
                platform: platform.or_else(|| Some(self.platform.to_string())),
                field,
                reason,
            },
            other => other,
        }
    }

    /// Whether this is a public OAuth client, which has no secret: `options.token_auth_method`
    /// is `none` (RFC 7591's name). Only platforms that implement client authentication read
    /// that option (custom-oauth in `mode: oidc`); every other platform's handler needs
    /// `app_secret`.
    ///
    /// ```
    /// use unilogin_core::config::PlatformConfig;
    /// let cfg: PlatformConfig = serde_json::from_value(serde_json::json!({
    ///     "tenant": "acme", "platform": "some-platform", "app_key": "spa-client",
    ///     "options": { "token_auth_method": "none" }
    /// })).unwrap();
    /// assert!(cfg.is_public_client() && cfg.app_secret.is_empty());
    /// assert!(cfg.validate().is_ok());
    /// ```
    pub fn is_public_client(&self) -> bool {
        declares_public_client(&self.options)
    }

    /// A configuration error about `field` of this configuration.
    pub fn error(&self, field: &str, reason: impl Into<String>) -> Error {
        Error::config(
            Some(&self.tenant),
            Some(self.platform.as_str()),
            field,
            reason,
        )
    }

    /// The host named `name`: the override if configured, else `default`.
    pub fn host(&self, name: &str, default: &str) -> Result<Url> {
        match self.hosts.get(name) {
            Some(url) => Ok(url.clone()),
            None => Url::parse(default).map_err(|e| {
                self.error(&format!("hosts.{name}"), format!("bad default host: {e}"))
            }),
        }
    }

    /// The corp id, or a configuration error naming the field.
    pub fn require_corp_id(&self) -> Result<&str> {
        self.corp_id
            .as_deref()
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| self.error("corp_id", "required for this platform"))
    }

    /// The agent id, or a configuration error naming the field.
    pub fn require_agent_id(&self) -> Result<&str> {
        self.agent_id
            .as_deref()
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| self.error("agent_id", "required for this platform"))
    }

    /// A string option, or `None` when absent; an option of another type is an error.
    pub fn option_str(&self, name: &str) -> Result<Option<&str>> {
        match self.options.get(name) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(self.error(&format!("options.{name}"), "must be a string")),
        }
    }

    /// A boolean option with a default; an option of another type is an error.
    pub fn option_bool(&self, name: &str, default: bool) -> Result<bool> {
        match self.options.get(name) {
            None | Some(serde_json::Value::Null) => Ok(default),
            Some(serde_json::Value::Bool(b)) => Ok(*b),
            Some(_) => Err(self.error(&format!("options.{name}"), "must be true or false")),
        }
    }

    /// A typed option deserialized from its JSON value.
    pub fn option<T: serde::de::DeserializeOwned>(&self, name: &str) -> Result<Option<T>> {
        match self.options.get(name) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(v) => T::deserialize(v)
                .map(Some)
                .map_err(|e| self.error(&format!("options.{name}"), e.to_string())),
        }
    }
}

/// Serves tenant configurations.
#[async_trait]
pub trait ConfigSource: Send + Sync + fmt::Debug {
    /// The configuration of `platform` for `tenant`: [`Error::UnknownTenant`] when the tenant
    /// has no configuration at all, [`Error::PlatformNotConfigured`] when it lacks this
    /// platform. Disabled configurations are returned (the caller refuses new logins).
    async fn get(&self, tenant: &TenantId, platform: &str) -> Result<Arc<PlatformConfig>>;

    /// Every configuration.
    async fn list(&self) -> Result<Vec<Arc<PlatformConfig>>>;

    /// Reads the configuration again where it is kept and applies what changed (see
    /// [`CachedSource`]). Sources that cannot change report nothing.
    async fn reload(&self) -> Result<ReloadReport> {
        Ok(ReloadReport::default())
    }
}

#[async_trait]
impl<S: ConfigSource + ?Sized> ConfigSource for Arc<S> {
    async fn get(&self, tenant: &TenantId, platform: &str) -> Result<Arc<PlatformConfig>> {
        (**self).get(tenant, platform).await
    }

    async fn list(&self) -> Result<Vec<Arc<PlatformConfig>>> {
        (**self).list().await
    }

    async fn reload(&self) -> Result<ReloadReport> {
        (**self).reload().await
    }
}

/// A fixed, in-memory set of configurations.
///
/// ```
/// # use unilogin_core::config::{StaticConfig, PlatformConfig, ConfigSource};
/// # use unilogin_core::TenantId;
/// # tokio_test_block_on(async {
/// let source = StaticConfig::new(vec![]);
/// let err = source.get(&TenantId::new("acme").unwrap(), "dingtalk").await.unwrap_err();
/// assert!(err.to_string().contains("unknown tenant"));
/// # });
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct StaticConfig {
    configs: Vec<Arc<PlatformConfig>>,
}

impl StaticConfig {
    /// Wraps a list of configurations (validated only when a login prepares them).
    pub fn new(configs: Vec<PlatformConfig>) -> Self {
        Self {
            configs: configs.into_iter().map(Arc::new).collect(),
        }
    }

    /// Wraps a list of configurations after [validating](PlatformConfig::validate) each.
    pub fn validated(configs: Vec<PlatformConfig>) -> Result<Self> {
        for c in &configs {
            c.validate()?;
        }
        Ok(Self::new(configs))
    }
}

/// Finds `(tenant, platform)` in a list, with the errors [`ConfigSource::get`] promises.
pub fn lookup(
    configs: &[Arc<PlatformConfig>],
    tenant: &TenantId,
    platform: &str,
) -> Result<Arc<PlatformConfig>> {
    let mut tenant_known = false;
    for c in configs {
        if &c.tenant == tenant {
            tenant_known = true;
            if c.platform.as_str().eq_ignore_ascii_case(platform) {
                return Ok(c.clone());
            }
        }
    }
    if tenant_known {
        Err(Error::PlatformNotConfigured {
            tenant: tenant.clone(),
            platform: platform.chars().take(64).collect(),
        })
    } else {
        Err(Error::UnknownTenant {
            tenant: tenant.to_string(),
        })
    }
}

#[async_trait]
impl ConfigSource for StaticConfig {
    async fn get(&self, tenant: &TenantId, platform: &str) -> Result<Arc<PlatformConfig>> {
        lookup(&self.configs, tenant, platform)
    }

    async fn list(&self) -> Result<Vec<Arc<PlatformConfig>>> {
        Ok(self.configs.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(tenant: &str, platform: &str) -> PlatformConfig {
        serde_json::from_value(serde_json::json!({
            "tenant": tenant, "platform": platform, "app_key": "k", "app_secret": "topsecret",
            "options": {"flag": true, "name": "x", "n": 3}
        }))
        .unwrap()
    }

    #[test]
    fn the_suite_tenant_is_reserved() {
        let problems = cfg(crate::isv::SUITE_TENANT, "some-platform").problems();
        assert!(
            problems.iter().any(|e| e.to_string().contains("reserved")),
            "{problems:?}"
        );
        assert!(
            !cfg("isv-customer", "some-platform")
                .problems()
                .iter()
                .any(|e| e.to_string().contains("reserved"))
        );
    }

    #[tokio::test]
    async fn lookup_errors_distinguish_tenant_and_platform() {
        let s = StaticConfig::new(vec![cfg("acme", "dingtalk")]);
        let acme = TenantId::new("acme").unwrap();
        assert!(s.get(&acme, "DingTalk").await.is_ok());
        let e = s.get(&acme, "wecom").await.unwrap_err();
        assert!(matches!(e, Error::PlatformNotConfigured { .. }), "{e}");
        let e = s
            .get(&TenantId::new("other").unwrap(), "dingtalk")
            .await
            .unwrap_err();
        assert!(matches!(e, Error::UnknownTenant { .. }), "{e}");
    }

    #[test]
    fn options_are_typed() {
        let c = cfg("acme", "dingtalk");
        assert!(c.option_bool("flag", false).unwrap());
        assert!(c.option_bool("absent", true).unwrap());
        assert_eq!(c.option_str("name").unwrap(), Some("x"));
        let e = c.option_bool("name", false).unwrap_err().to_string();
        assert!(e.contains("options.name") && e.contains("acme"), "{e}");
        assert_eq!(c.option::<u32>("n").unwrap(), Some(3));
        assert!(
            c.require_corp_id()
                .unwrap_err()
                .to_string()
                .contains("corp_id")
        );
        assert!(!format!("{c:?}").contains("topsecret"));
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let r: std::result::Result<PlatformConfig, _> = serde_json::from_value(serde_json::json!({
            "tenant": "acme", "platform": "dingtalk", "app_key": "k", "app_secret": "s",
            "app_secert": "typo"
        }));
        assert!(r.unwrap_err().to_string().contains("app_secert"));
    }
}
