//! The YAML configuration: one document holding every tenant's platforms.
//!
//! ```yaml
//! tenants:
//!   acme:                         # tenant id
//!     dingtalk:                   # platform name (as registered)
//!       enabled: true             # default true; false stops new logins
//!       mode: null                # protocol / mode, where the platform has several
//!       app_key: dingxxxxxxxx
//!       app_secret: "env:ACME_DT_SECRET"   # or "file:secrets/acme-dt", or a literal
//!       corp_id: ding0123456789
//!       agent_id: "1000001"
//!       redirect_uris: ["https://app.acme.example/after-login"]
//!       hosts: { oapi: "https://oapi.dingtalk.com" }
//!       mapping: { employee_no: "$.result.job_number" }
//!       options: { app_token_api: oapi }
//!       events:                   # the event subscription (callbacks), when used
//!         token: "env:ACME_DT_EVENT_TOKEN"   # secret references like app_secret
//!         key: "file:secrets/acme-dt-aes"
//!         receiver_id: null       # default: app_key
//! ```
//!
//! The full schema, with an example per platform, is in `docs/configuration.md`
//! ("Tenant configuration (YAML)").

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use serde_json::{Map, Value};
use url::Url;

use super::cached::{ConfigLoader, LoadedEntry};
use super::{PlatformConfig, SecretRef, declares_public_client};
use crate::error::{Error, Result};
use crate::types::{AppKey, AppSecret, PlatformName, TenantId};

/// The largest configuration file read.
const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// The fields of one entry, in the order the documentation lists them.
const FIELDS: &[&str] = &[
    "enabled",
    "mode",
    "app_key",
    "app_secret",
    "corp_id",
    "agent_id",
    "permanent_code",
    "redirect_uris",
    "hosts",
    "mapping",
    "session_scopes",
    "identity",
    "options",
    "events",
];

/// The top-level keys of the document: `tenants` (read here) and `oidc_clients`, the relying
/// parties of the gateway's OpenID Provider (read by the gateway with [`yaml_section`]).
const TOP_LEVEL_KEYS: &[&str] = &["tenants", "oidc_clients"];

/// One top-level section of a configuration document other than `tenants` (`oidc_clients`),
/// as JSON; `None` when the document does not have it. The same YAML parser and size limit as
/// [`parse_yaml`], so a document both read agree on what it says.
///
/// ```
/// use unilogin_core::config::yaml_section;
/// let doc = "tenants: {}\noidc_clients:\n  grafana: {redirect_uris: [\"https://g.example/cb\"]}\n";
/// let clients = yaml_section(doc, "oidc_clients").unwrap().unwrap();
/// assert_eq!(clients["grafana"]["redirect_uris"][0], "https://g.example/cb");
/// assert!(yaml_section("tenants: {}", "oidc_clients").unwrap().is_none());
/// ```
pub fn yaml_section(text: &str, key: &str) -> Result<Option<Value>> {
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(whole_file_error(
            "(document)",
            format!("larger than {MAX_FILE_BYTES} bytes"),
        ));
    }
    let options = serde_saphyr::options! { with_snippet: false };
    let doc: Value = serde_saphyr::from_str_with_options(text, options).map_err(|e| {
        let one_line = e
            .to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        whole_file_error("(document)", format!("invalid YAML: {one_line}"))
    })?;
    Ok(match doc {
        Value::Object(mut top) => top.remove(key).filter(|v| !v.is_null()),
        _ => None,
    })
}

fn whole_file_error(field: &str, reason: impl Into<String>) -> Error {
    Error::config(None, None, field, reason)
}

/// Parses a YAML configuration document into entries (each either a configuration with its
/// secret resolved, or the error naming tenant, platform and field). `base_dir` is where
/// relative `file:` secret paths start.
///
/// Fails as a whole only when the document itself is unusable: YAML syntax, no `tenants` map,
/// an invalid tenant id or platform name, a platform listed twice for a tenant.
///
/// ```
/// use unilogin_core::config::parse_yaml;
/// let entries = parse_yaml(r#"
/// tenants:
///   acme:
///     dingtalk: { app_key: dingabc, app_secret: s3cret, redirect_uris: ["https://a.example/cb"] }
///   globex:
///     dingtalk: { app_key: dingdef }
/// "#, None).unwrap();
/// assert_eq!(entries.len(), 2);
/// assert!(entries[0].config.is_ok());
/// let err = entries[1].config.as_ref().unwrap_err().to_string();
/// assert!(err.contains("globex") && err.contains("app_secret") && err.contains("missing"), "{err}");
/// ```
pub fn parse_yaml(text: &str, base_dir: Option<&Path>) -> Result<Vec<LoadedEntry>> {
    let options = serde_saphyr::options! { with_snippet: false };
    let doc: Value = serde_saphyr::from_str_with_options(text, options).map_err(|e| {
        let one_line = e
            .to_string()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        whole_file_error("(document)", format!("invalid YAML: {one_line}"))
    })?;
    let tenants = match &doc {
        Value::Null => return Ok(Vec::new()),
        Value::Object(top) => {
            if let Some(other) = top.keys().find(|k| !TOP_LEVEL_KEYS.contains(&k.as_str())) {
                return Err(whole_file_error(
                    other,
                    "unknown top-level key (expected `tenants`, and `oidc_clients` for the gateway's OpenID Provider)",
                ));
            }
            match top.get("tenants") {
                None | Some(Value::Null) => return Ok(Vec::new()),
                Some(Value::Object(t)) => t,
                Some(_) => return Err(whole_file_error("tenants", "must be a map of tenant ids")),
            }
        }
        _ => {
            return Err(whole_file_error(
                "(document)",
                "must be a map with the key `tenants`",
            ));
        }
    };
    let mut entries = Vec::new();
    for (tenant_name, platforms) in tenants {
        let tenant = TenantId::new(tenant_name)
            .map_err(|e| whole_file_error(&format!("tenants.{tenant_name}"), e.to_string()))?;
        let platforms = match platforms {
            Value::Null => continue,
            Value::Object(p) => p,
            _ => {
                return Err(whole_file_error(
                    &format!("tenants.{tenant}"),
                    "must be a map of platform names",
                ));
            }
        };
        let mut seen = BTreeMap::new();
        for (platform_name, body) in platforms {
            let platform = PlatformName::new(platform_name).map_err(|e| {
                whole_file_error(&format!("tenants.{tenant}.{platform_name}"), e.to_string())
            })?;
            if seen.insert(platform.clone(), ()).is_some() {
                return Err(whole_file_error(
                    &format!("tenants.{tenant}.{platform_name}"),
                    "platform listed twice (names are case-insensitive)",
                ));
            }
            let enabled = match body.get("enabled") {
                Some(Value::Bool(b)) => *b,
                // An unreadable flag counts as disabled: never enable by accident.
                Some(Value::Null) | None => true,
                Some(_) => false,
            };
            let config = entry(&tenant, &platform, body, base_dir);
            entries.push(LoadedEntry {
                tenant: tenant.clone(),
                platform,
                enabled,
                config,
            });
        }
    }
    Ok(entries)
}

fn entry(
    tenant: &TenantId,
    platform: &PlatformName,
    body: &Value,
    base_dir: Option<&Path>,
) -> Result<PlatformConfig> {
    let err = |field: &str, reason: String| {
        Error::config(Some(tenant), Some(platform.as_str()), field, reason)
    };
    let Value::Object(map) = body else {
        return Err(err("(entry)", "must be a map of settings".into()));
    };
    if let Some(unknown) = map.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(err(
            unknown,
            format!("unknown field; expected one of {}", FIELDS.join(", ")),
        ));
    }
    let get = |name: &str| map.get(name).filter(|v| !v.is_null());
    let opt_string = |name: &str| -> Result<Option<String>> {
        match get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            // Ids such as agent ids are often written as numbers.
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(_) => Err(err(name, "must be a string".into())),
        }
    };
    let enabled = match get("enabled") {
        None => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(err("enabled", "must be true or false".into())),
    };
    let app_key = match opt_string("app_key")? {
        None => return Err(err("app_key", "missing".into())),
        Some(k) => AppKey::new(&k).map_err(|e| err("app_key", e.to_string()))?,
    };
    let public_client = match get("options") {
        Some(Value::Object(o)) => declares_public_client(o),
        _ => false,
    };
    let app_secret = match get("app_secret") {
        None if public_client => AppSecret::new(""),
        None => {
            return Err(err(
                "app_secret",
                "missing (only a public OAuth client, `options.token_auth_method: none`, goes without)"
                    .into(),
            ));
        }
        // Never echo the value: it may be the secret itself.
        Some(Value::String(s)) => SecretRef::parse(s)
            .resolve(base_dir)
            .map_err(|reason| err("app_secret", reason))?,
        Some(_) => {
            return Err(err(
                "app_secret",
                "must be a string (a value, `env:NAME` or `file:PATH`)".into(),
            ));
        }
    };
    let permanent_code = match get("permanent_code") {
        None => None,
        // Never echo the value: it may be the secret itself.
        Some(Value::String(s)) => Some(
            SecretRef::parse(s)
                .resolve(base_dir)
                .map_err(|reason| err("permanent_code", reason))?,
        ),
        Some(_) => {
            return Err(err(
                "permanent_code",
                "must be a string (a value, `env:NAME` or `file:PATH`)".into(),
            ));
        }
    };
    let redirect_uris = match get("redirect_uris") {
        None => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::String(s) => Ok(s.clone()),
                _ => Err(err(
                    &format!("redirect_uris[{i}]"),
                    "must be a string".into(),
                )),
            })
            .collect::<Result<_>>()?,
        Some(_) => return Err(err("redirect_uris", "must be a list of URIs".into())),
    };
    let hosts = match get("hosts") {
        None => BTreeMap::new(),
        Some(Value::Object(h)) => h
            .iter()
            .map(|(name, v)| {
                let field = format!("hosts.{name}");
                let Value::String(s) = v else {
                    return Err(err(&field, "must be a URL string".into()));
                };
                Url::parse(s)
                    .map(|u| (name.clone(), u))
                    .map_err(|e| err(&field, format!("not an absolute URL: {e}")))
            })
            .collect::<Result<_>>()?,
        Some(_) => return Err(err("hosts", "must be a map of host name to URL".into())),
    };
    let options = match get("options") {
        None => Map::new(),
        Some(Value::Object(o)) => o.clone(),
        Some(_) => return Err(err("options", "must be a map".into())),
    };
    let session_scopes = match get("session_scopes") {
        None => None,
        Some(v) => Some(
            crate::mapping::ScopeRules::from_value(v)
                .map(|rules| super::shared::scope_rules(v, rules))
                .map_err(|e| err("session_scopes", e.0))?,
        ),
    };
    let identity = match get("identity") {
        None => crate::identity::IdentityPolicy::default(),
        Some(v) => <crate::identity::IdentityPolicy as serde::Deserialize>::deserialize(v)
            .map_err(|e| err("identity", e.to_string()))?,
    };
    let events = match get("events") {
        None => None,
        Some(v) => Some(event_settings(v, base_dir, &err)?),
    };
    Ok(PlatformConfig {
        events,
        session_scopes,
        identity,
        tenant: tenant.clone(),
        platform: platform.clone(),
        enabled,
        mode: opt_string("mode")?,
        app_key,
        app_secret,
        corp_id: opt_string("corp_id")?,
        agent_id: opt_string("agent_id")?,
        permanent_code,
        hosts: super::shared::hosts(hosts),
        mapping: get("mapping").cloned().map(super::shared::value),
        redirect_uris,
        options,
    })
}

/// The `events` map of an entry: `token` and `key` resolved like `app_secret`.
fn event_settings(
    value: &Value,
    base_dir: Option<&Path>,
    err: &dyn Fn(&str, String) -> Error,
) -> Result<super::EventSettings> {
    const EVENT_FIELDS: &[&str] = &["token", "key", "receiver_id"];
    let Value::Object(map) = value else {
        return Err(err(
            "events",
            "must be a map (token, key, receiver_id)".into(),
        ));
    };
    if let Some(unknown) = map.keys().find(|k| !EVENT_FIELDS.contains(&k.as_str())) {
        return Err(err(
            &format!("events.{unknown}"),
            format!("unknown field; expected one of {}", EVENT_FIELDS.join(", ")),
        ));
    }
    let secret = |name: &str| -> Result<Option<AppSecret>> {
        let field = format!("events.{name}");
        match map.get(name) {
            None | Some(Value::Null) => Ok(None),
            // Never echo the value: it may be the secret itself.
            Some(Value::String(s)) => SecretRef::parse(s)
                .resolve(base_dir)
                .map(Some)
                .map_err(|reason| err(&field, reason)),
            Some(_) => Err(err(
                &field,
                "must be a string (a value, `env:NAME` or `file:PATH`)".into(),
            )),
        }
    };
    let receiver_id = match map.get("receiver_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(_) => return Err(err("events.receiver_id", "must be a string".into())),
    };
    Ok(super::EventSettings {
        token: secret("token")?,
        key: secret("key")?,
        receiver_id,
    })
}

/// A YAML configuration file, read afresh on every load (wrap it in a
/// [`CachedSource`](super::CachedSource) to serve and reload it).
///
/// Reloading is explicit ([`ConfigSource::reload`](super::ConfigSource::reload)) or periodic
/// ([`CachedSource::spawn_reloader`](super::CachedSource::spawn_reloader)): each reload reads
/// the file and its `file:` secrets again and applies only what changed, so a secret rotated in
/// a mounted secret file is picked up as well as an edit of the YAML itself. Write the file
/// atomically (write a temporary file, then rename it over the old one) so a reload never sees
/// half a file; a half-written file is rejected anyway and the last good configuration stays.
///
/// ```no_run
/// # async fn demo() -> unilogin_core::Result<()> {
/// use std::sync::Arc;
/// use std::time::Duration;
/// use unilogin_core::config::{CachedSource, YamlFile};
/// let (source, _report) = CachedSource::new(YamlFile::new("tenants.yaml")).await?;
/// let source = Arc::new(source);
/// let _reloader = source.spawn_reloader(Duration::from_secs(10))?;
/// let sso = unilogin_core::Sso::builder(source.clone()).build()?;
/// # let _ = sso; Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct YamlFile {
    path: PathBuf,
    /// The last size, modification time and content hash seen by [`ConfigLoader::version`].
    seen: std::sync::Arc<std::sync::Mutex<Option<(u64, std::time::SystemTime, String)>>>,
}

impl YamlFile {
    /// A loader for the file at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            seen: std::sync::Arc::default(),
        }
    }

    /// The file's version: a hash of its content, computed again only when its size or
    /// modification time changed (so polling it is a `stat`).
    fn fingerprint(&self) -> Result<String> {
        use sha2::{Digest, Sha256};
        let shown = self.path.display();
        let fail = |reason: String| whole_file_error("(file)", format!("`{shown}`: {reason}"));
        let meta = std::fs::metadata(&self.path).map_err(|e| fail(format!("cannot stat: {e}")))?;
        let modified = meta
            .modified()
            .map_err(|e| fail(format!("no modification time: {e}")))?;
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((len, at, hash)) = seen.as_ref()
            && *len == meta.len()
            && *at == modified
        {
            return Ok(hash.clone());
        }
        if meta.len() > MAX_FILE_BYTES {
            return Err(fail(format!("larger than {MAX_FILE_BYTES} bytes")));
        }
        let bytes = std::fs::read(&self.path).map_err(|e| fail(format!("cannot read: {e}")))?;
        let hash: String = Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        *seen = Some((meta.len(), modified, hash.clone()));
        Ok(hash)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's text (at most the size limit of a configuration file), for the sections
    /// other than `tenants` ([`yaml_section`]).
    pub fn read_text(&self) -> Result<String> {
        Self::text_of(&self.path)
    }

    /// The file's version, as [`ConfigLoader::version`] gives it (content hash; the file is
    /// read again only when its size or modification time changed).
    pub fn current_version(&self) -> Result<String> {
        self.fingerprint()
    }

    fn text_of(path: &Path) -> Result<String> {
        use std::io::Read;
        let shown = path.display();
        let fail = |reason: String| whole_file_error("(file)", format!("`{shown}`: {reason}"));
        let file = std::fs::File::open(path).map_err(|e| fail(format!("cannot open: {e}")))?;
        let mut text = String::new();
        file.take(MAX_FILE_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(|e| fail(format!("cannot read: {e}")))?;
        if text.len() as u64 > MAX_FILE_BYTES {
            return Err(fail(format!("larger than {MAX_FILE_BYTES} bytes")));
        }
        Ok(text)
    }

    fn read(path: &Path) -> Result<Vec<LoadedEntry>> {
        let text = Self::text_of(path)?;
        let base = path.parent().filter(|p| !p.as_os_str().is_empty());
        parse_yaml(&text, base)
    }
}

#[async_trait]
impl ConfigLoader for YamlFile {
    async fn load(&self) -> Result<Vec<LoadedEntry>> {
        let path = self.path.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => rt
                .spawn_blocking(move || Self::read(&path))
                .await
                .map_err(|e| Error::Internal(format!("reading the configuration file: {e}")))?,
            Err(_) => Self::read(&path),
        }
    }

    async fn version(&self) -> Result<Option<String>> {
        let this = self.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => rt
                .spawn_blocking(move || this.fingerprint().map(Some))
                .await
                .map_err(|e| Error::Internal(format!("checking the configuration file: {e}")))?,
            Err(_) => this.fingerprint().map(Some),
        }
    }
}

/// A YAML configuration held in memory (embedded defaults, tests). `file:` paths are relative
/// to the working directory.
#[derive(Clone)]
pub struct YamlText {
    text: std::sync::Arc<std::sync::RwLock<String>>,
    /// Incremented by every [`set`](Self::set) (the loader's version).
    generation: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl std::fmt::Debug for YamlText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("YamlText").finish_non_exhaustive()
    }
}

impl YamlText {
    /// A loader serving `text`.
    pub fn new(text: impl Into<String>) -> Self {
        Self {
            text: std::sync::Arc::new(std::sync::RwLock::new(text.into())),
            generation: std::sync::Arc::default(),
        }
    }

    /// The text it serves now.
    pub fn text(&self) -> String {
        self.text
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// Replaces the text; the next reload of a [`CachedSource`](super::CachedSource) built on a
    /// clone of this loader applies it.
    pub fn set(&self, text: impl Into<String>) {
        *self
            .text
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = text.into();
        self.generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }
}

#[async_trait]
impl ConfigLoader for YamlText {
    async fn load(&self) -> Result<Vec<LoadedEntry>> {
        let text = self
            .text
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        parse_yaml(&text, None)
    }

    async fn version(&self) -> Result<Option<String>> {
        Ok(Some(
            self.generation
                .load(std::sync::atomic::Ordering::SeqCst)
                .to_string(),
        ))
    }
}
