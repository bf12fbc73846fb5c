//! The gateway's own configuration ([`GatewayConfig`]), read from YAML and merged key by key over
//! the embedded defaults (`defaults.yaml`, printed by `unilogin-gateway --print-defaults`).
//!
//! Tenants' platform settings are not in this file: `tenants_file` names a YAML list of
//! [`PlatformConfig`] entries (or the sandbox generates them).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use unilogin::HttpConfig;
use unilogin::config::PlatformConfig;
use unilogin::{Error, Registry, Result};
use url::Url;

/// The embedded defaults, as YAML text.
pub const DEFAULTS_YAML: &str = include_str!("defaults.yaml");

/// The gateway configuration. See `defaults.yaml` for every key and its meaning.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// The URL browsers use to reach the gateway; callback URLs are built from it.
    pub public_url: Url,
    /// YAML file with the tenants' platform configurations.
    pub tenants_file: Option<PathBuf>,
    /// Cookie settings.
    pub cookies: CookieConfig,
    /// Session token settings.
    pub session: SessionConfig,
    /// Pending web login settings.
    pub login: LoginConfig,
    /// Redis settings.
    pub redis: RedisConfig,
    /// Size and time limits.
    pub limits: LimitsConfig,
    /// Reverse proxy settings.
    pub proxy: ProxyConfig,
    /// H5 login-free page settings.
    pub h5: H5Config,
    /// Logging.
    pub log: LogConfig,
}

/// Cookie settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CookieConfig {
    /// Whether cookies carry `Secure`.
    pub secure: bool,
    /// The `Domain` attribute, if any.
    pub domain: Option<String>,
    /// Name of the session cookie.
    pub session_name: String,
    /// Name of the login-binding cookie.
    pub binding_name: String,
}

/// Session token settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionConfig {
    /// `iss` of issued tokens (default: the public URL without trailing slash).
    pub issuer: Option<String>,
    /// `aud` of issued tokens.
    pub audience: String,
    /// Token lifetime in seconds.
    pub ttl_secs: u64,
    /// PKCS#8 PEM file with the Ed25519 signing key.
    pub signing_key_file: Option<PathBuf>,
    /// Key id of that key.
    pub key_id: Option<String>,
}

/// Pending web login settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginConfig {
    /// Lifetime of a pending login's state, in seconds.
    pub state_ttl_secs: u64,
    /// Bound of pending logins held by the memory store.
    pub max_pending: usize,
}

/// Redis settings.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    /// The Redis URL; `None` keeps everything in memory.
    pub url: Option<String>,
    /// Key prefix.
    pub prefix: String,
}

impl std::fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password.
        f.debug_struct("RedisConfig")
            .field("url", &self.url.as_ref().map(|_| "***"))
            .field("prefix", &self.prefix)
            .finish()
    }
}

/// Size and time limits.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest request body accepted.
    pub max_body_bytes: usize,
    /// Upstream connect timeout (ms).
    pub upstream_connect_timeout_ms: u64,
    /// Upstream whole-request timeout (ms).
    pub upstream_request_timeout_ms: u64,
    /// Bound of one request's handling (ms).
    pub request_timeout_ms: u64,
    /// Grace period of a graceful shutdown (s).
    pub shutdown_grace_secs: u64,
}

/// Reverse proxy settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyConfig {
    /// Whether to log the client address from `X-Forwarded-For`.
    pub trust_forwarded_for: bool,
}

/// H5 login-free page settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct H5Config {
    /// Per platform name: the JS SDK the H5 page loads instead of the one the platform's
    /// registration publishes (a self-hosted copy), or `null` to load none. Platforms not listed
    /// load their published SDK.
    #[serde(default)]
    pub sdk_urls: BTreeMap<String, Option<Url>>,
}

impl H5Config {
    /// The SDK script the H5 page of `platform` loads: the configured override, else
    /// `published` (the registration's). `None`: load no script.
    pub fn sdk_url<'a>(&'a self, platform: &str, published: &'a str) -> Option<&'a str> {
        match self.sdk_urls.get(platform) {
            Some(over) => over.as_ref().map(Url::as_str),
            None => Some(published),
        }
    }
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Logging.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogConfig {
    /// Output format.
    pub format: LogFormat,
    /// Filter directives.
    pub filter: String,
}

fn config_error(field: &str, reason: impl Into<String>) -> Error {
    Error::config(None, None, field, reason)
}

fn parse_yaml_value(text: &str, what: &str) -> Result<Value> {
    serde_saphyr::from_str::<Value>(text)
        .map_err(|e| config_error(what, format!("invalid YAML: {e}")))
}

/// Merges `over` into `base`: mappings key by key (recursively), anything else replaced.
fn merge(base: &mut Value, over: Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(&k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k, v);
                    }
                }
            }
        }
        (slot, v) => *slot = v,
    }
}

impl Default for GatewayConfig {
    fn default() -> Self {
        // The embedded file is covered by the `defaults_parse` test; failing here would be a
        // build defect, not bad input.
        Self::from_yaml("").expect("embedded defaults.yaml is valid")
    }
}

impl GatewayConfig {
    /// Parses `yaml` merged over the embedded defaults (an empty string gives the defaults).
    ///
    /// ```
    /// use unilogin_gateway::config::GatewayConfig;
    /// let c = GatewayConfig::from_yaml("listen: 0.0.0.0:9000\ncookies: {secure: false}").unwrap();
    /// assert_eq!(c.listen.port(), 9000);
    /// assert!(!c.cookies.secure);
    /// assert_eq!(c.cookies.session_name, "unilogin_session"); // from the defaults
    /// ```
    pub fn from_yaml(yaml: &str) -> Result<Self> {
        let mut value = parse_yaml_value(DEFAULTS_YAML, "defaults.yaml")?;
        if !yaml.trim().is_empty() {
            let over = parse_yaml_value(yaml, "gateway config")?;
            match over {
                Value::Null => {}
                Value::Object(_) => merge(&mut value, over),
                _ => return Err(config_error("gateway config", "must be a YAML mapping")),
            }
        }
        let config: GatewayConfig = serde_json::from_value(value)
            .map_err(|e| config_error("gateway config", e.to_string()))?;
        config.validate()?;
        Ok(config)
    }

    /// Reads a YAML file merged over the embedded defaults. Relative paths inside it
    /// (`tenants_file`, `session.signing_key_file`) are resolved against the file's directory.
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            config_error(
                "--config",
                format!("cannot read {}: {}", path.display(), e.kind()),
            )
        })?;
        let mut config = Self::from_yaml(&text)?;
        let base = path.parent().unwrap_or(Path::new("."));
        let resolve = |p: &mut PathBuf| {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        };
        if let Some(p) = config.tenants_file.as_mut() {
            resolve(p);
        }
        if let Some(p) = config.session.signing_key_file.as_mut() {
            resolve(p);
        }
        Ok(config)
    }

    fn validate(&self) -> Result<()> {
        if !matches!(self.public_url.scheme(), "http" | "https") {
            return Err(config_error("public_url", "must be an http(s) URL"));
        }
        if self.session.ttl_secs == 0 {
            return Err(config_error("session.ttl_secs", "must be positive"));
        }
        if self.login.state_ttl_secs == 0 || self.login.state_ttl_secs > 3600 {
            return Err(config_error(
                "login.state_ttl_secs",
                "must be between 1 and 3600",
            ));
        }
        if self.session.signing_key_file.is_some() && self.session.key_id.is_none() {
            return Err(config_error(
                "session.key_id",
                "required with session.signing_key_file",
            ));
        }
        for (field, name) in [
            ("cookies.session_name", &self.cookies.session_name),
            ("cookies.binding_name", &self.cookies.binding_name),
        ] {
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
            {
                return Err(config_error(field, "must be letters, digits, `_` or `-`"));
            }
        }
        for (name, url) in &self.h5.sdk_urls {
            let field = format!("h5.sdk_urls.{name}");
            Registry::get(name).map_err(|e| config_error(&field, e.to_string()))?;
            if url
                .as_ref()
                .is_some_and(|u| !matches!(u.scheme(), "https" | "http"))
            {
                return Err(config_error(&field, "must be an http(s) URL or null"));
            }
        }
        Ok(())
    }

    /// The public URL with a trailing slash, so relative joins stay below it.
    pub fn base_url(&self) -> Url {
        let mut url = self.public_url.clone();
        if !url.path().ends_with('/') {
            let path = format!("{}/", url.path());
            url.set_path(&path);
        }
        url
    }

    /// The issuer of session tokens.
    pub fn issuer(&self) -> String {
        self.session
            .issuer
            .clone()
            .unwrap_or_else(|| self.base_url().as_str().trim_end_matches('/').to_string())
    }

    /// Session lifetime.
    pub fn session_ttl(&self) -> Duration {
        Duration::from_secs(self.session.ttl_secs)
    }

    /// Pending login lifetime.
    pub fn state_ttl(&self) -> Duration {
        Duration::from_secs(self.login.state_ttl_secs)
    }

    /// Upstream HTTP settings.
    pub fn http(&self) -> HttpConfig {
        HttpConfig {
            connect_timeout: Duration::from_millis(self.limits.upstream_connect_timeout_ms),
            request_timeout: Duration::from_millis(self.limits.upstream_request_timeout_ms),
            ..HttpConfig::default()
        }
    }
}

/// Reads a tenants file: a YAML list of [`PlatformConfig`] (or a mapping with a `tenants` list).
pub fn load_tenants(path: &Path) -> Result<Vec<PlatformConfig>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        config_error(
            "tenants_file",
            format!("cannot read {}: {}", path.display(), e.kind()),
        )
    })?;
    parse_tenants(&text)
}

/// Parses a tenants document (see [`load_tenants`]).
pub fn parse_tenants(text: &str) -> Result<Vec<PlatformConfig>> {
    let value = parse_yaml_value(text, "tenants_file")?;
    let list = match value {
        Value::Array(_) => value,
        Value::Object(mut m) => m
            .remove("tenants")
            .ok_or_else(|| config_error("tenants_file", "expected a list or `tenants:`"))?,
        Value::Null => Value::Array(vec![]),
        _ => return Err(config_error("tenants_file", "expected a list")),
    };
    serde_json::from_value(list).map_err(|e| config_error("tenants_file", e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_parse() {
        let c = GatewayConfig::default();
        assert_eq!(c.listen.port(), 8080);
        assert!(c.cookies.secure);
        assert_eq!(c.issuer(), "http://127.0.0.1:8080");
        assert_eq!(c.log.format, LogFormat::Text);
        assert!(c.redis.url.is_none());
    }

    #[test]
    fn unknown_keys_and_bad_values_are_rejected() {
        let e = GatewayConfig::from_yaml("cookies: {secure: false, sceure: true}").unwrap_err();
        assert!(e.to_string().contains("sceure"), "{e}");
        let e = GatewayConfig::from_yaml("login: {state_ttl_secs: 0}").unwrap_err();
        assert!(e.to_string().contains("state_ttl_secs"), "{e}");
        let e = GatewayConfig::from_yaml("session: {signing_key_file: k.pem}").unwrap_err();
        assert!(e.to_string().contains("key_id"), "{e}");
        assert!(GatewayConfig::from_yaml("- 1").is_err());
    }

    #[test]
    fn redis_url_is_not_printed() {
        let c = GatewayConfig::from_yaml("redis: {url: 'redis://:hunter2@h:6379/0'}").unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn sdk_urls_override_or_disable_the_published_script() {
        let c = GatewayConfig::default();
        assert_eq!(
            c.h5.sdk_url("p", "https://cdn.example/p.js"),
            Some("https://cdn.example/p.js")
        );
        let Some(name) = Registry::names().first().copied() else {
            return; // a build without platforms
        };
        let yaml = format!("h5: {{sdk_urls: {{{name}: 'https://static.example/sdk.js'}}}}");
        let c = GatewayConfig::from_yaml(&yaml).unwrap();
        assert_eq!(
            c.h5.sdk_url(name, "x"),
            Some("https://static.example/sdk.js")
        );
        let c = GatewayConfig::from_yaml(&format!("h5: {{sdk_urls: {{{name}: null}}}}")).unwrap();
        assert_eq!(c.h5.sdk_url(name, "x"), None);
        let e = GatewayConfig::from_yaml("h5: {sdk_urls: {myspace: null}}").unwrap_err();
        assert!(e.to_string().contains("h5.sdk_urls.myspace"), "{e}");
        let e = GatewayConfig::from_yaml(&format!("h5: {{sdk_urls: {{{name}: 'ftp://x/'}}}}"))
            .unwrap_err();
        assert!(e.to_string().contains("http(s)"), "{e}");
        // The old per-platform keys are gone.
        assert!(GatewayConfig::from_yaml("h5: {feishu_jssdk: null}").is_err());
    }

    #[test]
    fn base_url_gets_a_trailing_slash() {
        let c = GatewayConfig::from_yaml("public_url: https://sso.example.com/login").unwrap();
        assert_eq!(c.base_url().as_str(), "https://sso.example.com/login/");
        assert_eq!(c.issuer(), "https://sso.example.com/login");
    }

    #[test]
    fn tenants_parse_as_list_or_mapping() {
        let one = "- {tenant: acme, platform: dingtalk, app_key: k, app_secret: s}\n";
        assert_eq!(parse_tenants(one).unwrap().len(), 1);
        let two = format!("tenants:\n  {}", one.trim());
        assert_eq!(parse_tenants(&two).unwrap().len(), 1);
        assert!(parse_tenants("- {tenant: acme}").is_err());
    }
}
