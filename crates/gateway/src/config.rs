//! The gateway's own configuration ([`GatewayConfig`]), read from YAML and merged key by key over
//! the embedded defaults (`defaults.yaml`, printed by `unilogin-gateway --print-defaults`).
//!
//! Tenants' platform settings are not in this file. They come through the library's own
//! configuration sources: `tenants_file` names a YAML file in the documented format
//! (`tenants: {acme: {dingtalk: {...}}}`, see `docs/configuration.md`), or `tenants_database`
//! names the SQL store (`unilogin-sql`). Either is validated completely before the gateway
//! serves, and watched for changes (`reload`). See [`crate::tenants`].

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde_json::Value;
use unilogin::HttpConfig;
use unilogin::config::{SecretRef, SecretRefPolicy};
use unilogin::{Error, Registry, Result, TenantId};
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
    /// YAML file with the tenants' platform configurations (the documented format).
    pub tenants_file: Option<PathBuf>,
    /// The SQL store of the tenants' platform configurations (instead of `tenants_file`).
    pub tenants_database: DatabaseConfig,
    /// How tenant configuration changes are picked up.
    pub reload: ReloadConfig,
    /// Which secret references stored rows (SQL, admin API) may use.
    pub secret_refs: SecretRefsConfig,
    /// The admin HTTP API.
    pub admin: AdminConfig,
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
    /// Rate limits per client address, in all and per tenant (see docs/security.md).
    pub rate_limits: RateLimitsConfig,
    /// The operations listener and who may read `/metrics`.
    pub ops: OpsConfig,
    /// Accounts: the identity store linking platform identities to unilogin accounts.
    pub accounts: AccountsConfig,
    /// H5 login-free page settings.
    pub h5: H5Config,
    /// The platform event receiver (`/events/{tenant}/{platform}`, docs/events.md).
    pub events: EventsConfig,
    /// The signed webhook that tells the app about leavers and profile changes.
    pub webhook: WebhookConfig,
    /// The OpenID Provider (docs/oidc-provider.md).
    pub oidc_provider: OidcProviderConfig,
    /// Logging.
    pub log: LogConfig,
}

/// The OpenID Provider: OIDC applications sign in through the tenants' platform logins.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcProviderConfig {
    /// Serve the provider's endpoints.
    pub enabled: bool,
    /// Id-token signing keys, one per algorithm offered.
    pub signing_keys: Vec<SigningKeyFile>,
    /// Authorization code lifetime (s).
    pub code_ttl_secs: u64,
    /// Access token lifetime (s).
    pub access_token_ttl_secs: u64,
    /// Id token lifetime (s).
    pub id_token_ttl_secs: u64,
    /// Absolute refresh token lifetime (s).
    pub refresh_token_ttl_secs: u64,
    /// Idle refresh token lifetime (s).
    pub refresh_token_idle_secs: u64,
    /// How long a pending authorization waits for the login (s).
    pub request_ttl_secs: u64,
    /// Secret reference to the pairwise subject key; `None`: derived from the session keys.
    pub pairwise_secret: Option<String>,
    /// Back-channel logout deliveries.
    pub backchannel: BackchannelConfig,
}

/// One id-token signing key file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SigningKeyFile {
    /// `RS256`, `ES256` or `EdDSA`.
    pub alg: String,
    /// PKCS#8 PEM file (relative to the gateway configuration file).
    pub file: PathBuf,
    /// The key id published in the JWKS.
    pub key_id: String,
}

/// Back-channel logout deliveries.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackchannelConfig {
    /// Tries per delivery, the first included.
    pub attempts: u32,
    /// Wait before the first retry (ms); doubles up to `max_backoff_ms`.
    pub first_backoff_ms: u64,
    /// Longest wait between tries (ms).
    pub max_backoff_ms: u64,
    /// Deliveries waiting at most.
    pub queue: usize,
    /// Deliveries in flight at once.
    pub concurrency: usize,
}

/// The SQL store of tenant configurations (`unilogin-sql`).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `null`: no database. A file path (SQLite, created when missing; relative to the gateway
    /// configuration file), or a URL: `sqlite:…`, `postgres://…`, `mysql://…`.
    pub url: Option<String>,
    /// Secret reference (`env:NAME` / `file:PATH`) holding the AES keys of stored secrets
    /// (`id:hex64[,id:hex64…]`, the first encrypts). Unset: secrets cannot be stored as values.
    pub secret_keys: String,
    /// Create or upgrade the table at start.
    pub migrate: bool,
}

impl std::fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A URL may carry a password: show its scheme only.
        let url = self
            .url
            .as_deref()
            .map(|u| u.split_once(':').map_or("path", |(scheme, _)| scheme));
        f.debug_struct("DatabaseConfig")
            .field("url", &url)
            .field("secret_keys", &self.secret_keys)
            .field("migrate", &self.migrate)
            .finish()
    }
}

impl DatabaseConfig {
    /// The sqlx URL: a bare path becomes a SQLite URL that creates the file when missing.
    pub fn connect_url(&self) -> Option<String> {
        let url = self.url.as_deref()?;
        let is_url = ["sqlite:", "postgres:", "postgresql:", "mysql:", "mariadb:"]
            .iter()
            .any(|scheme| url.to_ascii_lowercase().starts_with(scheme));
        Some(if is_url {
            url.to_string()
        } else {
            format!("sqlite://{url}?mode=rwc")
        })
    }
}

/// How tenant configuration changes are picked up.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReloadConfig {
    /// How often the tenants file (size, time, content hash) or the database's change
    /// fingerprint is checked, in ms; a change is applied at once.
    pub poll_ms: u64,
    /// Every this many seconds the configuration is read again even without a visible change
    /// (picks up rotated `file:` secrets and rows edited by hand without a revision bump);
    /// 0: never. SIGHUP does the same at any time.
    pub full_secs: u64,
}

/// Which secret references stored rows (SQL, admin API) may use. The tenants file is written
/// by the operator and may reference anything; rows are written by whoever may write rows.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretRefsConfig {
    /// Environment variables rows may name with `env:NAME`.
    #[serde(default)]
    pub env: Vec<String>,
    /// Directories below which rows may name files with `file:PATH` (relative to the gateway
    /// configuration file).
    #[serde(default)]
    pub dirs: Vec<PathBuf>,
}

impl SecretRefsConfig {
    /// The allow-list as the library's policy.
    pub fn policy(&self) -> SecretRefPolicy {
        let mut p = SecretRefPolicy::none();
        for name in &self.env {
            p = p.allow_env(name.clone());
        }
        for dir in &self.dirs {
            p = p.allow_dir(dir.clone());
        }
        p
    }
}

/// The admin HTTP API (see `docs/admin-api.md`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminConfig {
    /// Off by default.
    pub enabled: bool,
    /// Its own listener (recommended: a private address); `null`: under `path_prefix` on the
    /// main listener.
    pub listen: Option<SocketAddr>,
    /// Path prefix of every admin route.
    pub path_prefix: String,
    /// Who may call it: each a name (recorded in the audit log), a bearer token given as a
    /// secret reference, and optionally the only tenants it may manage.
    #[serde(default)]
    pub tokens: Vec<AdminTokenConfig>,
}

/// One admin API credential.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminTokenConfig {
    /// Who this is (the audit log's actor).
    pub name: String,
    /// `env:NAME` or `file:PATH` holding the bearer token (never the token itself).
    pub token: String,
    /// The tenants this token may list and change; `null`: every tenant.
    #[serde(default)]
    pub tenants: Option<Vec<String>>,
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
    /// Time a client has to send its request headers before the connection is closed (ms).
    pub header_read_timeout_ms: u64,
    /// Time a client has to send a request body, once its headers arrived (ms): 408 after it.
    pub body_read_timeout_ms: u64,
    /// Open connections in all.
    pub max_connections: usize,
    /// Open connections per client address.
    pub max_connections_per_client: usize,
    /// Most request headers accepted, and their total size (bytes): 431 beyond.
    pub max_headers: usize,
    /// Total size of the request headers (bytes): 431 beyond.
    pub max_header_bytes: usize,
    /// Longest accepted request target (path and query, bytes): 414 beyond.
    pub max_uri_bytes: usize,
}

/// Reverse proxy settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyConfig {
    /// The number of reverse proxies in front of the gateway that each append the address they
    /// saw to `X-Forwarded-For`: the client is the entry that many places from the right.
    /// `0`: the header is ignored and the TCP peer is the client.
    pub trusted_proxies: usize,
    /// Older spelling of `trusted_proxies: 1`.
    pub trust_forwarded_for: bool,
}

impl ProxyConfig {
    /// Proxies in front of the gateway (see [`ProxyConfig::trusted_proxies`]).
    pub fn hops(&self) -> usize {
        if self.trusted_proxies == 0 && self.trust_forwarded_for {
            1
        } else {
            self.trusted_proxies
        }
    }
}

/// A rate: `burst` at once, refilled at `per_minute`.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Rate {
    /// Sustained rate per minute.
    pub per_minute: u32,
    /// Requests allowed at once.
    pub burst: u32,
}

/// Rate limits (GCRA, by the `governor` crate). Client addresses are keyed per IPv4 address and
/// per IPv6 /64.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitsConfig {
    /// Login starts (`GET …/login`) per client address.
    pub login_per_client: Rate,
    /// Login starts of all clients together: bounds the pending logins the state store holds.
    pub login_global: Rate,
    /// Codes and callbacks (`POST …/code`, `GET …/callback`) per client address.
    pub code_per_client: Rate,
    /// Logins that reach a platform (code exchanges), per configured (tenant, platform).
    pub upstream_per_tenant: Rate,
    /// Code exchanges running at once per configured (tenant, platform).
    pub upstream_concurrency_per_tenant: usize,
    /// Every other request per client address.
    pub other_per_client: Rate,
    /// Platform event callbacks (`/events/…`) per client address.
    pub events_per_client: Rate,
}

/// The platform event receiver (docs/events.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsConfig {
    /// How far an event's timestamp may be from the gateway's clock, either side (s).
    pub window_secs: u64,
    /// How long an event id is remembered in the state store (s); longer than twice the window,
    /// so a replay within the window is always recognised.
    pub dedupe_ttl_secs: u64,
    /// Accepted events waiting to be applied; a full queue answers 503 (the platform retries).
    pub queue_capacity: usize,
    /// Tasks applying events at once.
    pub workers: usize,
    /// Largest event body (the platforms' limit, [`unilogin::events::MAX_BODY`], at most).
    pub max_body_bytes: usize,
    /// The tenant name of a store app's installed organisation, written on installation
    /// (docs/store-apps.md): `{tenant}` is the app entry's tenant, `{org}` the organisation.
    pub store_app_tenant: String,
}

impl EventsConfig {
    /// The timestamp window.
    pub fn window(&self) -> Duration {
        Duration::from_secs(self.window_secs)
    }

    /// How long event ids are remembered.
    pub fn dedupe_ttl(&self) -> Duration {
        Duration::from_secs(self.dedupe_ttl_secs)
    }
}

/// The app's webhook: where leavers and profile changes are sent, signed (Standard Webhooks).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// The default endpoint (https, or http on a loopback address); `null`: none.
    pub url: Option<Url>,
    /// The signing secret: `whsec_<base64>` (Standard Webhooks) or any other value (its bytes
    /// are the key), as a value or a secret reference (`env:NAME`, `file:PATH`).
    pub secret: Option<String>,
    /// Per tenant: another endpoint and secret (overrides `url` / `secret`).
    #[serde(default)]
    pub tenants: BTreeMap<String, WebhookTarget>,
    /// One attempt's time limit (ms).
    pub timeout_ms: u64,
    /// Attempts per delivery (the first included).
    pub max_attempts: u32,
    /// Back-off before the second attempt (ms), doubled each time, with jitter.
    pub initial_backoff_ms: u64,
    /// Longest back-off (ms).
    pub max_backoff_ms: u64,
    /// Deliveries waiting to be sent; when full, the oldest waiting delivery is dropped
    /// (counted in `unilogin_webhook_deliveries_total{outcome="dropped"}` and logged).
    pub queue_capacity: usize,
    /// Deliveries sent at once.
    pub concurrency: usize,
    /// Attempts kept in the delivery log.
    pub log_size: usize,
}

/// One tenant's webhook endpoint.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookTarget {
    /// The endpoint (https, or http on a loopback address).
    pub url: Url,
    /// The signing secret (as [`WebhookConfig::secret`]).
    pub secret: String,
}

/// A URL shown without its path, query or user info (they may carry tokens).
fn url_origin(url: &Url) -> String {
    url.origin().ascii_serialization()
}

impl std::fmt::Debug for WebhookTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookTarget")
            .field("url", &url_origin(&self.url))
            .field("secret", &"***")
            .finish()
    }
}

impl std::fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("url", &self.url.as_ref().map(url_origin))
            .field("secret", &self.secret.as_ref().map(|_| "***"))
            .field("tenants", &self.tenants)
            .field("max_attempts", &self.max_attempts)
            .field("queue_capacity", &self.queue_capacity)
            .finish_non_exhaustive()
    }
}

/// Whether `url` may receive webhooks: https, or http to a loopback address (`localhost`,
/// `127.0.0.0/8`, `::1`), without user info. The same rule as the guard's JWKS URL.
///
/// ```
/// use unilogin_gateway::config::webhook_url_allowed;
/// let ok = |s: &str| webhook_url_allowed(&url::Url::parse(s).unwrap()).is_ok();
/// assert!(ok("https://app.example/hooks") && ok("http://127.0.0.1:9000/h"));
/// assert!(!ok("http://app.example/hooks") && !ok("https://u:p@app.example/"));
/// ```
pub fn webhook_url_allowed(url: &Url) -> std::result::Result<(), &'static str> {
    if !url.username().is_empty() || url.password().is_some() {
        return Err("must not contain user info");
    }
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => return Err("must have a host"),
    };
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err("must be an https URL (http only to a loopback address)"),
    }
}

/// The operations listener and who may read `/metrics`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpsConfig {
    /// A second listener serving `/metrics`, `/healthz` and `/readyz` to anyone who reaches it
    /// (keep it on a private network). `null`: none.
    pub listen: Option<SocketAddr>,
    /// A bearer token that lets `/metrics` be read on the public listener, as a secret
    /// reference (`env:NAME`, `file:PATH`) or a value. `null`: `/metrics` answers 404 there.
    pub metrics_token: Option<String>,
}

impl Rate {
    /// The `governor` quota, or why the rate is unusable.
    pub fn quota(&self) -> std::result::Result<governor::Quota, &'static str> {
        let burst = std::num::NonZeroU32::new(self.burst).ok_or("`burst` must be positive")?;
        let per_minute =
            std::num::NonZeroU32::new(self.per_minute).ok_or("`per_minute` must be positive")?;
        Ok(governor::Quota::per_minute(per_minute).allow_burst(burst))
    }
}

/// The identity store (account linking, docs/configuration.md "Identities and accounts").
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccountsConfig {
    /// `null`: no accounts (sessions carry no `account`). A file path (SQLite, created when
    /// missing; relative to the gateway configuration file), or a URL: `sqlite:…`,
    /// `postgres://…`, `mysql://…`.
    pub url: Option<String>,
    /// Create or upgrade the tables at start.
    pub migrate: bool,
}

impl AccountsConfig {
    /// The sqlx URL (a bare path becomes a SQLite URL), as for `tenants_database`.
    pub fn connect_url(&self) -> Option<String> {
        DatabaseConfig {
            url: self.url.clone(),
            secret_keys: String::new(),
            migrate: self.migrate,
        }
        .connect_url()
    }
}

impl std::fmt::Debug for AccountsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let url = self
            .url
            .as_deref()
            .map(|u| u.split_once(':').map_or("path", |(scheme, _)| scheme));
        f.debug_struct("AccountsConfig")
            .field("url", &url)
            .field("migrate", &self.migrate)
            .finish()
    }
}

impl std::fmt::Debug for OpsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpsConfig")
            .field("listen", &self.listen)
            .field("metrics_token", &self.metrics_token.as_ref().map(|_| "***"))
            .finish()
    }
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
    /// Per platform name: the Subresource Integrity value (`sha256-…`, `sha384-…`, `sha512-…`)
    /// of the SDK script the page loads; the browser refuses a script that does not match.
    #[serde(default)]
    pub sdk_integrity: BTreeMap<String, String>,
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
        for k in &mut config.oidc_provider.signing_keys {
            resolve(&mut k.file);
        }
        for p in &mut config.secret_refs.dirs {
            resolve(p);
        }
        let bare_path = config
            .tenants_database
            .url
            .as_deref()
            .is_some_and(|u| config.tenants_database.connect_url().as_deref() != Some(u));
        if let Some(url) = config.tenants_database.url.as_mut()
            && bare_path
            && Path::new(url.as_str()).is_relative()
        {
            // A bare SQLite path.
            *url = base.join(url.as_str()).display().to_string();
        }
        let accounts_bare = config
            .accounts
            .url
            .as_deref()
            .is_some_and(|u| config.accounts.connect_url().as_deref() != Some(u));
        if let Some(url) = config.accounts.url.as_mut()
            && accounts_bare
            && Path::new(url.as_str()).is_relative()
        {
            *url = base.join(url.as_str()).display().to_string();
        }
        for t in &mut config.admin.tokens {
            if let Some(path) = t.token.strip_prefix("file:")
                && Path::new(path).is_relative()
            {
                t.token = format!("file:{}", base.join(path).display());
            }
        }
        if let Some(path) = config.tenants_database.secret_keys.strip_prefix("file:")
            && Path::new(path).is_relative()
        {
            config.tenants_database.secret_keys = format!("file:{}", base.join(path).display());
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
        let r = &self.rate_limits;
        for (field, rate) in [
            ("rate_limits.login_per_client", &r.login_per_client),
            ("rate_limits.login_global", &r.login_global),
            ("rate_limits.code_per_client", &r.code_per_client),
            ("rate_limits.upstream_per_tenant", &r.upstream_per_tenant),
            ("rate_limits.other_per_client", &r.other_per_client),
            ("rate_limits.events_per_client", &r.events_per_client),
        ] {
            rate.quota().map_err(|why| config_error(field, why))?;
        }
        if r.upstream_concurrency_per_tenant == 0 {
            return Err(config_error(
                "rate_limits.upstream_concurrency_per_tenant",
                "must be positive",
            ));
        }
        let l = &self.limits;
        for (field, v) in [
            ("limits.max_connections", l.max_connections),
            (
                "limits.max_connections_per_client",
                l.max_connections_per_client,
            ),
            ("limits.max_headers", l.max_headers),
            ("limits.max_header_bytes", l.max_header_bytes),
            ("limits.max_uri_bytes", l.max_uri_bytes),
        ] {
            if v == 0 {
                return Err(config_error(field, "must be positive"));
            }
        }
        for (field, v) in [
            ("limits.header_read_timeout_ms", l.header_read_timeout_ms),
            ("limits.body_read_timeout_ms", l.body_read_timeout_ms),
        ] {
            if v == 0 {
                return Err(config_error(field, "must be positive"));
            }
        }
        self.validate_tenant_source()?;
        self.validate_admin()?;
        self.validate_events()?;
        self.validate_oidc_provider()?;
        for (name, sri) in &self.h5.sdk_integrity {
            let field = format!("h5.sdk_integrity.{name}");
            Registry::get(name).map_err(|e| config_error(&field, e.to_string()))?;
            let ok = ["sha256-", "sha384-", "sha512-"]
                .iter()
                .any(|p| sri.strip_prefix(p).is_some_and(|b| !b.is_empty()))
                && sri
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'+' | b'/' | b'='));
            if !ok {
                return Err(config_error(
                    &field,
                    "must be `sha256-…`, `sha384-…` or `sha512-…` (base64)",
                ));
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

    fn validate_tenant_source(&self) -> Result<()> {
        if self.tenants_file.is_some() && self.tenants_database.url.is_some() {
            return Err(config_error(
                "tenants_database.url",
                "give either tenants_file or tenants_database.url, not both",
            ));
        }
        if self
            .tenants_database
            .url
            .as_deref()
            .is_some_and(|u| u.trim().is_empty())
        {
            return Err(config_error(
                "tenants_database.url",
                "must not be blank (null for none)",
            ));
        }
        if !SecretRef::parse(&self.tenants_database.secret_keys).is_reference() {
            return Err(config_error(
                "tenants_database.secret_keys",
                "must be a secret reference (`env:NAME` or `file:PATH`), never the keys themselves",
            ));
        }
        if self.reload.poll_ms < 50 {
            return Err(config_error("reload.poll_ms", "must be at least 50"));
        }
        for (i, name) in self.secret_refs.env.iter().enumerate() {
            if name.is_empty()
                || name.starts_with(|c: char| c.is_ascii_digit())
                || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            {
                return Err(config_error(
                    &format!("secret_refs.env[{i}]"),
                    "must be an environment variable name (letters, digits and `_`)",
                ));
            }
        }
        for (i, dir) in self.secret_refs.dirs.iter().enumerate() {
            if dir.as_os_str().is_empty() || dir == Path::new("/") {
                return Err(config_error(
                    &format!("secret_refs.dirs[{i}]"),
                    "must be a directory that holds only tenant secrets (not empty, not `/`)",
                ));
            }
        }
        Ok(())
    }

    fn validate_oidc_provider(&self) -> Result<()> {
        let o = &self.oidc_provider;
        for (field, v) in [
            ("oidc_provider.code_ttl_secs", o.code_ttl_secs),
            (
                "oidc_provider.access_token_ttl_secs",
                o.access_token_ttl_secs,
            ),
            ("oidc_provider.id_token_ttl_secs", o.id_token_ttl_secs),
            (
                "oidc_provider.refresh_token_ttl_secs",
                o.refresh_token_ttl_secs,
            ),
            (
                "oidc_provider.refresh_token_idle_secs",
                o.refresh_token_idle_secs,
            ),
            ("oidc_provider.request_ttl_secs", o.request_ttl_secs),
            (
                "oidc_provider.backchannel.attempts",
                u64::from(o.backchannel.attempts),
            ),
            (
                "oidc_provider.backchannel.queue",
                o.backchannel.queue as u64,
            ),
            (
                "oidc_provider.backchannel.concurrency",
                o.backchannel.concurrency as u64,
            ),
        ] {
            if v == 0 {
                return Err(config_error(field, "must be positive"));
            }
        }
        // RFC 6749 §4.1.2 recommends at most 10 minutes for a code.
        if o.code_ttl_secs > 600 {
            return Err(config_error(
                "oidc_provider.code_ttl_secs",
                "at most 600 (RFC 6749 §4.1.2: codes are short-lived)",
            ));
        }
        if o.refresh_token_idle_secs > o.refresh_token_ttl_secs {
            return Err(config_error(
                "oidc_provider.refresh_token_idle_secs",
                "must not exceed refresh_token_ttl_secs",
            ));
        }
        let mut algs = BTreeMap::new();
        for (i, k) in o.signing_keys.iter().enumerate() {
            let field = format!("oidc_provider.signing_keys[{i}]");
            if !matches!(k.alg.as_str(), "RS256" | "ES256" | "EdDSA") {
                return Err(config_error(
                    &format!("{field}.alg"),
                    "must be RS256, ES256 or EdDSA",
                ));
            }
            if algs.insert(k.alg.clone(), ()).is_some() {
                return Err(config_error(
                    &format!("{field}.alg"),
                    "one key per algorithm (rotate by replacing the file and its key_id)",
                ));
            }
            if k.key_id.is_empty() || k.key_id.len() > 64 {
                return Err(config_error(
                    &format!("{field}.key_id"),
                    "must be 1 to 64 characters",
                ));
            }
        }
        if let Some(secret) = &o.pairwise_secret
            && !SecretRef::parse(secret).is_reference()
        {
            return Err(config_error(
                "oidc_provider.pairwise_secret",
                "must be a secret reference (`env:NAME` or `file:PATH`), never the key itself",
            ));
        }
        if o.enabled && self.public_url.path() != "/" {
            return Err(config_error(
                "public_url",
                "the OpenID Provider's issuer (public_url) must be the root of its host (no path): give the gateway a host of its own",
            ));
        }
        if o.enabled && (self.public_url.fragment().is_some() || self.public_url.query().is_some())
        {
            return Err(config_error(
                "public_url",
                "the OpenID Provider's issuer (public_url) must have no query or fragment",
            ));
        }
        Ok(())
    }

    fn validate_events(&self) -> Result<()> {
        let e = &self.events;
        if e.window_secs == 0 {
            return Err(config_error("events.window_secs", "must be positive"));
        }
        if e.dedupe_ttl_secs <= e.window_secs.saturating_mul(2) {
            return Err(config_error(
                "events.dedupe_ttl_secs",
                "must be longer than twice events.window_secs (a replay within the window must be recognised)",
            ));
        }
        for (field, v) in [
            ("events.queue_capacity", e.queue_capacity),
            ("events.workers", e.workers),
            ("webhook.queue_capacity", self.webhook.queue_capacity),
            ("webhook.concurrency", self.webhook.concurrency),
            ("webhook.log_size", self.webhook.log_size),
        ] {
            if v == 0 {
                return Err(config_error(field, "must be positive"));
            }
        }
        if !e.store_app_tenant.contains("{org}") {
            return Err(config_error(
                "events.store_app_tenant",
                "must contain `{org}` (one entry per installed organisation)",
            ));
        }
        let probe = e
            .store_app_tenant
            .replace("{tenant}", "t")
            .replace("{org}", "o");
        if TenantId::new(&probe).is_err() {
            return Err(config_error(
                "events.store_app_tenant",
                "only `{tenant}`, `{org}`, ASCII letters, digits, `-`, `_` and `.`",
            ));
        }
        if e.max_body_bytes == 0 || e.max_body_bytes > unilogin::events::MAX_BODY {
            return Err(config_error(
                "events.max_body_bytes",
                format!(
                    "must be between 1 and {} (the platforms' limit)",
                    unilogin::events::MAX_BODY
                ),
            ));
        }
        let w = &self.webhook;
        if w.max_attempts == 0 || w.max_attempts > 20 {
            return Err(config_error(
                "webhook.max_attempts",
                "must be between 1 and 20",
            ));
        }
        if w.timeout_ms == 0 || w.initial_backoff_ms == 0 || w.max_backoff_ms < w.initial_backoff_ms
        {
            return Err(config_error(
                "webhook.timeout_ms",
                "timeouts and back-offs must be positive, max_backoff_ms at least initial_backoff_ms",
            ));
        }
        match (&w.url, &w.secret) {
            (Some(url), Some(_)) => {
                webhook_url_allowed(url).map_err(|why| config_error("webhook.url", why))?;
            }
            (None, None) => {}
            (Some(_), None) => {
                return Err(config_error("webhook.secret", "required with webhook.url"));
            }
            (None, Some(_)) => {
                return Err(config_error("webhook.url", "required with webhook.secret"));
            }
        }
        for (tenant, target) in &w.tenants {
            TenantId::new(tenant)
                .map_err(|e| config_error(&format!("webhook.tenants.{tenant}"), e.to_string()))?;
            webhook_url_allowed(&target.url)
                .map_err(|why| config_error(&format!("webhook.tenants.{tenant}.url"), why))?;
        }
        Ok(())
    }

    fn validate_admin(&self) -> Result<()> {
        let admin = &self.admin;
        let prefix = &admin.path_prefix;
        if !prefix.starts_with('/')
            || prefix.len() < 2
            || prefix.ends_with('/')
            || !prefix[1..].split('/').all(|seg| {
                !seg.is_empty()
                    && seg
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            })
        {
            return Err(config_error(
                "admin.path_prefix",
                "must look like `/admin` (segments of letters, digits, `-`, `_`; no trailing slash)",
            ));
        }
        if [
            "/auth",
            "/me",
            "/logout",
            "/healthz",
            "/readyz",
            "/metrics",
            "/sandbox",
            "/events",
            "/.well-known",
        ]
        .iter()
        .any(|taken| prefix == taken || prefix.starts_with(&format!("{taken}/")))
        {
            return Err(config_error(
                "admin.path_prefix",
                "collides with the gateway's own routes",
            ));
        }
        if !admin.enabled {
            return Ok(());
        }
        if self.tenants_database.url.is_none() {
            return Err(config_error(
                "admin.enabled",
                "the admin API manages the SQL store: set tenants_database.url (a tenants file is managed by editing it)",
            ));
        }
        if admin.tokens.is_empty() {
            return Err(config_error(
                "admin.tokens",
                "at least one token is required when the admin API is enabled",
            ));
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, t) in admin.tokens.iter().enumerate() {
            let field = format!("admin.tokens[{i}]");
            if t.name.trim().is_empty()
                || t.name.chars().count() > 100
                || t.name.chars().any(char::is_control)
            {
                return Err(config_error(
                    &format!("{field}.name"),
                    "must be 1 to 100 printable characters",
                ));
            }
            if !names.insert(t.name.as_str()) {
                return Err(config_error(&format!("{field}.name"), "listed twice"));
            }
            if !SecretRef::parse(&t.token).is_reference() {
                return Err(config_error(
                    &format!("{field}.token"),
                    "must be a secret reference (`env:NAME` or `file:PATH`), never the token itself",
                ));
            }
            if let Some(tenants) = &t.tenants {
                for (j, tenant) in tenants.iter().enumerate() {
                    TenantId::new(tenant).map_err(|e| {
                        config_error(&format!("{field}.tenants[{j}]"), e.to_string())
                    })?;
                }
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
    fn tenant_source_and_admin_settings_are_checked() {
        let e = GatewayConfig::from_yaml("tenants_file: t.yaml\ntenants_database: {url: t.db}")
            .unwrap_err();
        assert!(e.to_string().contains("not both"), "{e}");
        let e = GatewayConfig::from_yaml("tenants_database: {secret_keys: 'k1:abcd'}").unwrap_err();
        assert!(e.to_string().contains("secret_keys"), "{e}");
        let e = GatewayConfig::from_yaml("admin: {enabled: true}").unwrap_err();
        assert!(e.to_string().contains("tenants_database.url"), "{e}");
        let db = "tenants_database: {url: t.db}\n";
        let e = GatewayConfig::from_yaml(&format!("{db}admin: {{enabled: true}}")).unwrap_err();
        assert!(e.to_string().contains("admin.tokens"), "{e}");
        let e = GatewayConfig::from_yaml(&format!(
            "{db}admin: {{enabled: true, tokens: [{{name: ops, token: hunter2}}]}}"
        ))
        .unwrap_err();
        assert!(e.to_string().contains("admin.tokens[0].token"), "{e}");
        assert!(!e.to_string().contains("hunter2"), "{e}");
        let e = GatewayConfig::from_yaml("admin: {path_prefix: /auth/x}").unwrap_err();
        assert!(e.to_string().contains("collides"), "{e}");
        let e = GatewayConfig::from_yaml("admin: {path_prefix: 'admin/'}").unwrap_err();
        assert!(e.to_string().contains("admin.path_prefix"), "{e}");
        let e = GatewayConfig::from_yaml("secret_refs: {env: ['A-B']}").unwrap_err();
        assert!(e.to_string().contains("secret_refs.env[0]"), "{e}");
        let ok = GatewayConfig::from_yaml(&format!(
            "{db}admin: {{enabled: true, tokens: [{{name: ops, token: 'env:OPS_TOKEN', tenants: [acme]}}]}}"
        ))
        .unwrap();
        assert_eq!(
            ok.admin.tokens[0].tenants.as_deref(),
            Some(&["acme".to_string()][..])
        );
        assert_eq!(
            ok.tenants_database.connect_url().unwrap(),
            "sqlite://t.db?mode=rwc"
        );
        let pg =
            GatewayConfig::from_yaml("tenants_database: {url: 'postgres://u:pw@h/db'}").unwrap();
        assert_eq!(
            pg.tenants_database.connect_url().unwrap(),
            "postgres://u:pw@h/db"
        );
        assert!(!format!("{pg:?}").contains("pw@"), "{pg:?}");
    }
}
