//! Per-tenant platform configuration: [`PlatformConfig`] (one tenant's settings for one
//! platform) and the [`ConfigSource`] trait that serves them.
//!
//! A source returns the same `Arc<PlatformConfig>` until the configuration changes, so callers
//! can cache whatever they derive from it (built handlers, compiled mapping rules) and notice a
//! change with [`Arc::ptr_eq`].

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use serde::Deserialize;
use url::Url;

use crate::error::{Error, Result};
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
#[derive(Clone, Deserialize)]
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
    /// App secret / client secret.
    pub app_secret: AppSecret,
    /// Organisation id, where the platform needs one (DingTalk corpId, WeCom corpid, Feishu
    /// tenant_key).
    #[serde(default)]
    pub corp_id: Option<String>,
    /// App id inside the organisation (WeCom agentid, DingTalk agentId).
    #[serde(default)]
    pub agent_id: Option<String>,
    /// Host overrides by name (`api`, `oapi`, `login`, `open`, `accounts`, ...): private
    /// deployments, Lark vs Feishu, the test-kit fakes.
    #[serde(default)]
    pub hosts: BTreeMap<String, Url>,
    /// Mapping-rule overrides (field → rule), merged field by field over the platform defaults.
    #[serde(default)]
    pub mapping: Option<serde_json::Value>,
    /// The exact redirect URIs this tenant may send users back to.
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// Platform-specific flow options.
    #[serde(default)]
    pub options: serde_json::Map<String, serde_json::Value>,
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
            .field("hosts", &self.hosts)
            .field("redirect_uris", &self.redirect_uris)
            .field("options", &self.options.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl PlatformConfig {
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
    /// Wraps a list of configurations.
    pub fn new(configs: Vec<PlatformConfig>) -> Self {
        Self {
            configs: configs.into_iter().map(Arc::new).collect(),
        }
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
