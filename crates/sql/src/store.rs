//! [`SqlConfigStore`]: the table, its migrations, the admin API and the loader.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use serde_json::{Map, Value};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AnyPool, AssertSqlSafe, Row, SqlSafeStr};
use unilogin_core::config::{ConfigLoader, LoadedEntry, PlatformConfig, SecretRef};
use unilogin_core::{AppKey, AppSecret, Error, PlatformName, Result, TenantId};
use url::Url;

use crate::cipher::SecretCipher;

/// The table's name.
pub const TABLE: &str = "unilogin_platform_config";

/// The database behind a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite (`sqlite:` URLs).
    Sqlite,
    /// PostgreSQL and compatible databases (`postgres:` / `postgresql:` URLs).
    Postgres,
    /// MySQL or MariaDB (`mysql:` / `mariadb:` URLs).
    MySql,
}

impl Backend {
    /// The backend a connection URL names.
    pub fn from_url(url: &str) -> Result<Self> {
        let scheme = url
            .split(':')
            .next()
            .unwrap_or_default()
            .to_ascii_lowercase();
        match scheme.as_str() {
            "sqlite" => Ok(Backend::Sqlite),
            "postgres" | "postgresql" => Ok(Backend::Postgres),
            "mysql" | "mariadb" => Ok(Backend::MySql),
            _ => Err(Error::config(
                None,
                None,
                "database_url",
                "must start with sqlite:, postgres:, postgresql:, mysql: or mariadb:",
            )),
        }
    }

    fn migrations(self) -> &'static str {
        match self {
            Backend::Sqlite => include_str!("../migrations/sqlite/0001_platform_config.sql"),
            Backend::Postgres => include_str!("../migrations/postgres/0001_platform_config.sql"),
            Backend::MySql => include_str!("../migrations/mysql/0001_platform_config.sql"),
        }
    }

    /// `?` placeholders in PostgreSQL's `$n` form where needed.
    fn sql(self, query: &str) -> Arc<str> {
        if self != Backend::Postgres {
            return Arc::from(query);
        }
        let mut out = String::with_capacity(query.len() + 16);
        let mut n = 0;
        for c in query.chars() {
            if c == '?' {
                n += 1;
                out.push('$');
                out.push_str(&n.to_string());
            } else {
                out.push(c);
            }
        }
        Arc::from(out)
    }
}

const COLUMNS: &str = "id, tenant_id, platform, protocol, enabled, app_key, app_secret, corp_id, agent_id, hosts, mapping, redirect_uris, options, sort, deprecated, creator, created_at, modifier, modified_at, revision";

struct Queries {
    select_live: Arc<str>,
    select_tenant: Arc<str>,
    select_one: Arc<str>,
    insert: Arc<str>,
    update: Arc<str>,
    soft_delete: Arc<str>,
}

impl Queries {
    fn new(b: Backend) -> Self {
        Self {
            select_live: b.sql(&format!(
                "SELECT {COLUMNS} FROM {TABLE} WHERE deleted_at = 0 ORDER BY tenant_id, sort, platform"
            )),
            select_tenant: b.sql(&format!(
                "SELECT {COLUMNS} FROM {TABLE} WHERE deleted_at = 0 AND tenant_id = ? ORDER BY sort, platform"
            )),
            select_one: b.sql(&format!(
                "SELECT {COLUMNS} FROM {TABLE} WHERE deleted_at = 0 AND tenant_id = ? AND platform = ?"
            )),
            insert: b.sql(&format!(
                "INSERT INTO {TABLE} (tenant_id, platform, protocol, enabled, app_key, app_secret, corp_id, agent_id, hosts, mapping, redirect_uris, options, sort, deprecated, creator, created_at, modifier, modified_at, revision, deleted_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, 0)"
            )),
            update: b.sql(&format!(
                "UPDATE {TABLE} SET protocol = ?, enabled = ?, app_key = ?, app_secret = ?, corp_id = ?, agent_id = ?, hosts = ?, mapping = ?, redirect_uris = ?, options = ?, sort = ?, deprecated = ?, modifier = ?, modified_at = ?, revision = revision + 1 \
                 WHERE id = ? AND revision = ? AND deleted_at = 0"
            )),
            soft_delete: b.sql(&format!(
                "UPDATE {TABLE} SET deleted_at = ?, modifier = ?, modified_at = ?, revision = revision + 1 WHERE id = ? AND revision = ? AND deleted_at = 0"
            )),
        }
    }
}

fn q(text: &Arc<str>) -> impl SqlSafeStr {
    AssertSqlSafe(text.clone())
}

/// How a secret is given to the admin API.
#[derive(Clone)]
pub enum SecretInput {
    /// The secret itself: stored encrypted with the current key of the store's
    /// [`SecretCipher`].
    Value(AppSecret),
    /// A reference resolved whenever the configuration loads: `env:NAME` or `file:PATH`.
    Reference(String),
}

impl fmt::Debug for SecretInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SecretInput::Value(_) => f.write_str("Value(***)"),
            SecretInput::Reference(r) => write!(f, "Reference({r:?})"),
        }
    }
}

/// How a stored secret is kept, as the admin listing shows it (never the value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredSecret {
    /// Encrypted with the key of this id.
    Encrypted {
        /// The key id.
        key_id: String,
    },
    /// A reference (`env:NAME` / `file:PATH`).
    Reference(String),
    /// Something the loader rejects (edited by hand).
    Invalid,
}

impl StoredSecret {
    fn of(stored: &str) -> Self {
        if let Some(id) = SecretCipher::key_id_of(stored) {
            StoredSecret::Encrypted {
                key_id: id.to_string(),
            }
        } else if SecretRef::parse(stored).is_reference() {
            StoredSecret::Reference(stored.to_string())
        } else {
            StoredSecret::Invalid
        }
    }
}

/// A new row for [`SqlConfigStore::create`]. Start from [`NewConfig::new`] and set what you need.
#[derive(Debug, Clone)]
pub struct NewConfig {
    /// The tenant.
    pub tenant: TenantId,
    /// The platform.
    pub platform: PlatformName,
    /// Whether new logins are allowed (default `true`).
    pub enabled: bool,
    /// Protocol / mode (column `protocol`).
    pub mode: Option<String>,
    /// App key / app id / client id.
    pub app_key: AppKey,
    /// The app secret.
    pub app_secret: SecretInput,
    /// Organisation id.
    pub corp_id: Option<String>,
    /// Agent id.
    pub agent_id: Option<String>,
    /// Host overrides.
    pub hosts: BTreeMap<String, Url>,
    /// Mapping-rule overrides.
    pub mapping: Option<Value>,
    /// Allowed redirect URIs.
    pub redirect_uris: Vec<String>,
    /// Platform options.
    pub options: Map<String, Value>,
    /// Display order within a tenant (default 0).
    pub sort: i64,
}

impl NewConfig {
    /// A row with the required fields and defaults for the rest.
    pub fn new(
        tenant: TenantId,
        platform: PlatformName,
        app_key: AppKey,
        app_secret: SecretInput,
    ) -> Self {
        Self {
            tenant,
            platform,
            enabled: true,
            mode: None,
            app_key,
            app_secret,
            corp_id: None,
            agent_id: None,
            hosts: BTreeMap::new(),
            mapping: None,
            redirect_uris: Vec::new(),
            options: Map::new(),
            sort: 0,
        }
    }
}

/// Changes for [`SqlConfigStore::update`]: `None` keeps a field; for nullable fields
/// `Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct ConfigPatch {
    /// Enabled flag.
    pub enabled: Option<bool>,
    /// Deprecated flag (a deprecated row stops new logins).
    pub deprecated: Option<bool>,
    /// Protocol / mode.
    pub mode: Option<Option<String>>,
    /// App key.
    pub app_key: Option<AppKey>,
    /// App secret (a rotation: the app's cached token is evicted at the next login).
    pub app_secret: Option<SecretInput>,
    /// Organisation id.
    pub corp_id: Option<Option<String>>,
    /// Agent id.
    pub agent_id: Option<Option<String>>,
    /// Host overrides (replaces the whole map).
    pub hosts: Option<BTreeMap<String, Url>>,
    /// Mapping overrides.
    pub mapping: Option<Option<Value>>,
    /// Redirect URIs (replaces the list).
    pub redirect_uris: Option<Vec<String>>,
    /// Options (replaces the map).
    pub options: Option<Map<String, Value>>,
    /// Sort order.
    pub sort: Option<i64>,
}

/// One live row, as the admin API lists it. Never holds a secret.
#[derive(Debug, Clone)]
pub struct ConfigRow {
    /// Row id.
    pub id: i64,
    /// Tenant id as stored.
    pub tenant: String,
    /// Platform as stored.
    pub platform: String,
    /// Protocol / mode.
    pub mode: Option<String>,
    /// Enabled flag.
    pub enabled: bool,
    /// Deprecated flag.
    pub deprecated: bool,
    /// App key.
    pub app_key: String,
    /// How the secret is kept.
    pub secret: StoredSecret,
    /// Organisation id.
    pub corp_id: Option<String>,
    /// Agent id.
    pub agent_id: Option<String>,
    /// Host overrides (JSON as stored; a string if the column is not valid JSON).
    pub hosts: Value,
    /// Mapping overrides.
    pub mapping: Option<Value>,
    /// Redirect URIs (JSON as stored).
    pub redirect_uris: Value,
    /// Options (JSON as stored).
    pub options: Value,
    /// Sort order.
    pub sort: i64,
    /// Who created the row.
    pub creator: String,
    /// When, in milliseconds since the Unix epoch (UTC).
    pub created_at_ms: i64,
    /// Who last changed it.
    pub modifier: Option<String>,
    /// When, in milliseconds since the Unix epoch (UTC).
    pub modified_at_ms: i64,
    /// Incremented by every change.
    pub revision: i64,
}

/// The raw columns of a row.
struct RawRow {
    id: i64,
    tenant: String,
    platform: String,
    mode: Option<String>,
    enabled: bool,
    app_key: String,
    app_secret: String,
    corp_id: Option<String>,
    agent_id: Option<String>,
    hosts: String,
    mapping: Option<String>,
    redirect_uris: String,
    options: String,
    sort: i64,
    deprecated: bool,
    creator: String,
    created_at: i64,
    modifier: Option<String>,
    modified_at: i64,
    revision: i64,
}

impl RawRow {
    fn read(row: &AnyRow) -> std::result::Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            tenant: row.try_get("tenant_id")?,
            platform: row.try_get("platform")?,
            mode: row.try_get("protocol")?,
            enabled: row.try_get::<i64, _>("enabled")? != 0,
            app_key: row.try_get("app_key")?,
            app_secret: row.try_get("app_secret")?,
            corp_id: row.try_get("corp_id")?,
            agent_id: row.try_get("agent_id")?,
            hosts: row.try_get("hosts")?,
            mapping: row.try_get("mapping")?,
            redirect_uris: row.try_get("redirect_uris")?,
            options: row.try_get("options")?,
            sort: row.try_get("sort")?,
            deprecated: row.try_get::<i64, _>("deprecated")? != 0,
            creator: row.try_get("creator")?,
            created_at: row.try_get("created_at")?,
            modifier: row.try_get("modifier")?,
            modified_at: row.try_get("modified_at")?,
            revision: row.try_get("revision")?,
        })
    }

    fn listing(&self) -> ConfigRow {
        let json = |text: &str| {
            serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()))
        };
        ConfigRow {
            id: self.id,
            tenant: self.tenant.clone(),
            platform: self.platform.clone(),
            mode: self.mode.clone(),
            enabled: self.enabled,
            deprecated: self.deprecated,
            app_key: self.app_key.clone(),
            secret: StoredSecret::of(&self.app_secret),
            corp_id: self.corp_id.clone(),
            agent_id: self.agent_id.clone(),
            hosts: json(&self.hosts),
            mapping: self.mapping.as_deref().map(json),
            redirect_uris: json(&self.redirect_uris),
            options: json(&self.options),
            sort: self.sort,
            creator: self.creator.clone(),
            created_at_ms: self.created_at,
            modifier: self.modifier.clone(),
            modified_at_ms: self.modified_at,
            revision: self.revision,
        }
    }

    /// The configuration this row describes, secret resolved (not yet validated).
    fn config(
        &self,
        tenant: &TenantId,
        platform: &PlatformName,
        cipher: &SecretCipher,
    ) -> Result<PlatformConfig> {
        let err = |field: &str, reason: String| {
            Error::config(Some(tenant), Some(platform.as_str()), field, reason)
        };
        let app_key = AppKey::new(&self.app_key).map_err(|e| err("app_key", e.to_string()))?;
        let app_secret = if SecretCipher::is_encrypted(&self.app_secret) {
            cipher.decrypt(&self.app_secret, tenant, platform)?
        } else {
            let reference = SecretRef::parse(&self.app_secret);
            if !reference.is_reference() {
                return Err(err(
                    "app_secret",
                    "the column holds neither an encrypted value (`enc:v1:...`) nor a reference (`env:` / `file:`); plain secrets are never stored".into(),
                ));
            }
            reference
                .resolve(None)
                .map_err(|reason| err("app_secret", reason))?
        };
        let hosts = match serde_json::from_str::<Value>(&self.hosts) {
            Ok(Value::Object(map)) => map
                .into_iter()
                .map(|(name, v)| {
                    let field = format!("hosts.{name}");
                    let Value::String(s) = v else {
                        return Err(err(&field, "must be a URL string".into()));
                    };
                    Url::parse(&s)
                        .map(|u| (name, u))
                        .map_err(|e| err(&field, format!("not an absolute URL: {e}")))
                })
                .collect::<Result<_>>()?,
            Ok(_) => return Err(err("hosts", "must be a JSON object".into())),
            Err(e) => return Err(err("hosts", format!("invalid JSON: {e}"))),
        };
        let mapping = match &self.mapping {
            None => None,
            Some(text) if text.trim().is_empty() => None,
            Some(text) => Some(
                serde_json::from_str::<Value>(text)
                    .map_err(|e| err("mapping", format!("invalid JSON: {e}")))?,
            ),
        };
        let redirect_uris = match serde_json::from_str::<Value>(&self.redirect_uris) {
            Ok(Value::Array(items)) => items
                .into_iter()
                .enumerate()
                .map(|(i, v)| match v {
                    Value::String(s) => Ok(s),
                    _ => Err(err(
                        &format!("redirect_uris[{i}]"),
                        "must be a string".into(),
                    )),
                })
                .collect::<Result<_>>()?,
            Ok(_) => return Err(err("redirect_uris", "must be a JSON array".into())),
            Err(e) => return Err(err("redirect_uris", format!("invalid JSON: {e}"))),
        };
        let options = match serde_json::from_str::<Value>(&self.options) {
            Ok(Value::Object(map)) => map,
            Ok(_) => return Err(err("options", "must be a JSON object".into())),
            Err(e) => return Err(err("options", format!("invalid JSON: {e}"))),
        };
        Ok(PlatformConfig {
            tenant: tenant.clone(),
            platform: platform.clone(),
            enabled: self.enabled && !self.deprecated,
            mode: self.mode.clone(),
            app_key,
            app_secret,
            corp_id: self.corp_id.clone(),
            agent_id: self.agent_id.clone(),
            hosts,
            mapping,
            redirect_uris,
            options,
        })
    }
}

/// Column values to write (everything but identity and audit columns).
struct Values {
    mode: Option<String>,
    enabled: bool,
    deprecated: bool,
    app_key: AppKey,
    app_secret: String,
    corp_id: Option<String>,
    agent_id: Option<String>,
    hosts: BTreeMap<String, Url>,
    mapping: Option<Value>,
    redirect_uris: Vec<String>,
    options: Map<String, Value>,
    sort: i64,
}

impl Values {
    fn hosts_json(&self) -> String {
        let map: Map<String, Value> = self
            .hosts
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.to_string())))
            .collect();
        Value::Object(map).to_string()
    }

    fn raw(&self, tenant: &TenantId, platform: &PlatformName) -> RawRow {
        RawRow {
            id: 0,
            tenant: tenant.to_string(),
            platform: platform.to_string(),
            mode: self.mode.clone(),
            enabled: self.enabled,
            app_key: self.app_key.to_string(),
            app_secret: self.app_secret.clone(),
            corp_id: self.corp_id.clone(),
            agent_id: self.agent_id.clone(),
            hosts: self.hosts_json(),
            mapping: self.mapping.as_ref().map(Value::to_string),
            redirect_uris: Value::from(self.redirect_uris.clone()).to_string(),
            options: Value::Object(self.options.clone()).to_string(),
            sort: self.sort,
            deprecated: self.deprecated,
            creator: String::new(),
            created_at: 0,
            modifier: None,
            modified_at: 0,
            revision: 0,
        }
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn check_actor(actor: &str) -> Result<()> {
    if actor.trim().is_empty() || actor.chars().count() > 100 {
        return Err(Error::config(
            None,
            None,
            "actor",
            "must be 1 to 100 characters (it is recorded as creator/modifier)",
        ));
    }
    Ok(())
}

/// The platform configuration table in SQLite, PostgreSQL or MySQL/MariaDB, through sqlx's
/// `Any` driver (one implementation, one set of queries, one migration per dialect).
///
/// - [`migrate`](Self::migrate) creates the table (sqlx migrations, tracked in
///   `_sqlx_migrations`);
/// - the admin API ([`create`](Self::create), [`update`](Self::update),
///   [`set_enabled`](Self::set_enabled), [`set_deprecated`](Self::set_deprecated),
///   [`delete`](Self::delete), [`list`](Self::list), [`get`](Self::get),
///   [`reencrypt`](Self::reencrypt)) validates every change the way the loader will, records
///   who made it, and refuses a change that raced another one;
/// - as a [`ConfigLoader`], wrapped in a [`CachedSource`](unilogin_core::config::CachedSource)
///   (see [`SqlConfigSource`](crate::SqlConfigSource)), it serves logins from memory and
///   reloads on demand or periodically.
///
/// Cheap to clone (the pool is shared).
#[derive(Clone)]
pub struct SqlConfigStore {
    pool: AnyPool,
    backend: Backend,
    cipher: Arc<SecretCipher>,
    queries: Arc<Queries>,
}

impl fmt::Debug for SqlConfigStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlConfigStore")
            .field("backend", &self.backend)
            .field("cipher", &self.cipher)
            .finish_non_exhaustive()
    }
}

impl SqlConfigStore {
    /// Connects to `url` (`sqlite:…`, `postgres://…`, `mysql://…`), with `cipher` for secrets.
    /// Does not create the table: call [`migrate`](Self::migrate).
    pub async fn connect(url: &str, cipher: SecretCipher) -> Result<Self> {
        let backend = Backend::from_url(url)?;
        sqlx::any::install_default_drivers();
        let pool = AnyPoolOptions::new()
            .max_connections(4)
            .connect(url)
            .await
            .map_err(|e| db_error(backend, "connecting", &e))?;
        Ok(Self::with_pool(pool, backend, cipher))
    }

    /// Wraps an existing pool (its backend must be `backend`).
    pub fn with_pool(pool: AnyPool, backend: Backend, cipher: SecretCipher) -> Self {
        Self {
            pool,
            backend,
            cipher: Arc::new(cipher),
            queries: Arc::new(Queries::new(backend)),
        }
    }

    /// The backend.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The pool (for health checks or your own queries).
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Applies the pending migrations (idempotent).
    pub async fn migrate(&self) -> Result<()> {
        let migrator = Migrator::with_migrations(vec![Migration::new(
            1,
            "platform config".into(),
            MigrationType::Simple,
            self.backend.migrations().into_sql_str(),
            false,
        )]);
        migrator.run(&self.pool).await.map_err(|e| {
            Error::Internal(format!(
                "configuration database ({:?}): migrating: {e}",
                self.backend
            ))
        })
    }

    async fn fetch_raw(
        &self,
        tenant: &TenantId,
        platform: &PlatformName,
    ) -> Result<Option<RawRow>> {
        let row = sqlx::query(q(&self.queries.select_one))
            .bind(tenant.as_str())
            .bind(platform.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| db_error(self.backend, "reading", &e))?;
        row.as_ref()
            .map(RawRow::read)
            .transpose()
            .map_err(|e| db_error(self.backend, "reading", &e))
    }

    fn stored_secret(
        &self,
        input: &SecretInput,
        tenant: &TenantId,
        platform: &PlatformName,
    ) -> Result<String> {
        match input {
            SecretInput::Value(secret) => self.cipher.encrypt(secret, tenant, platform),
            SecretInput::Reference(r) => {
                if SecretRef::parse(r).is_reference() {
                    Ok(r.clone())
                } else {
                    Err(Error::config(
                        Some(tenant),
                        Some(platform.as_str()),
                        "app_secret",
                        "a reference must be `env:NAME` or `file:PATH` (give the secret itself as SecretInput::Value)",
                    ))
                }
            }
        }
    }

    /// Validates what `values` would load as, exactly as the loader will.
    fn check(&self, tenant: &TenantId, platform: &PlatformName, values: &Values) -> Result<()> {
        values
            .raw(tenant, platform)
            .config(tenant, platform, &self.cipher)?
            .validate()
    }

    /// Creates the row of `config.tenant` / `config.platform`. Fails if one is live already, or
    /// if the configuration does not validate.
    pub async fn create(&self, config: NewConfig, actor: &str) -> Result<ConfigRow> {
        check_actor(actor)?;
        let (tenant, platform) = (config.tenant.clone(), config.platform.clone());
        let values = Values {
            app_secret: self.stored_secret(&config.app_secret, &tenant, &platform)?,
            mode: config.mode,
            enabled: config.enabled,
            deprecated: false,
            app_key: config.app_key,
            corp_id: config.corp_id,
            agent_id: config.agent_id,
            hosts: config.hosts,
            mapping: config.mapping,
            redirect_uris: config.redirect_uris,
            options: config.options,
            sort: config.sort,
        };
        self.check(&tenant, &platform, &values)?;
        if self.fetch_raw(&tenant, &platform).await?.is_some() {
            return Err(already(&tenant, &platform));
        }
        let raw = values.raw(&tenant, &platform);
        let now = now_ms();
        let result = sqlx::query(q(&self.queries.insert))
            .bind(raw.tenant)
            .bind(raw.platform)
            .bind(raw.mode)
            .bind(i64::from(raw.enabled))
            .bind(raw.app_key)
            .bind(raw.app_secret)
            .bind(raw.corp_id)
            .bind(raw.agent_id)
            .bind(raw.hosts)
            .bind(raw.mapping)
            .bind(raw.redirect_uris)
            .bind(raw.options)
            .bind(raw.sort)
            .bind(0_i64)
            .bind(actor.to_string())
            .bind(now)
            .bind(Some(actor.to_string()))
            .bind(now)
            .execute(&self.pool)
            .await;
        if let Err(e) = result {
            // The unique index settles a race with a concurrent create.
            if let sqlx::Error::Database(db) = &e
                && db.is_unique_violation()
            {
                return Err(already(&tenant, &platform));
            }
            return Err(db_error(self.backend, "creating", &e));
        }
        self.require(&tenant, &platform).await
    }

    async fn require(&self, tenant: &TenantId, platform: &PlatformName) -> Result<ConfigRow> {
        self.get(tenant, platform)
            .await?
            .ok_or_else(|| not_found(tenant, platform))
    }

    /// Applies `patch` to the live row of `tenant` / `platform`, validating the result. Fails
    /// with a conflict error if the row changed meanwhile (retry), and with
    /// [`Error::PlatformNotConfigured`] if there is no live row.
    pub async fn update(
        &self,
        tenant: &TenantId,
        platform: &PlatformName,
        patch: ConfigPatch,
        actor: &str,
    ) -> Result<ConfigRow> {
        check_actor(actor)?;
        let current = self
            .fetch_raw(tenant, platform)
            .await?
            .ok_or_else(|| not_found(tenant, platform))?;
        let switch_only = patch.mode.is_none()
            && patch.app_key.is_none()
            && patch.app_secret.is_none()
            && patch.corp_id.is_none()
            && patch.agent_id.is_none()
            && patch.hosts.is_none()
            && patch.mapping.is_none()
            && patch.redirect_uris.is_none()
            && patch.options.is_none()
            && patch.sort.is_none();
        let parse_json = |text: &str| serde_json::from_str::<Value>(text).ok();
        let hosts = match patch.hosts {
            Some(h) => h,
            None => match parse_json(&current.hosts) {
                Some(Value::Object(map)) => map
                    .into_iter()
                    .filter_map(|(k, v)| Some((k, Url::parse(v.as_str()?).ok()?)))
                    .collect(),
                _ => BTreeMap::new(),
            },
        };
        let values = Values {
            mode: patch.mode.unwrap_or_else(|| current.mode.clone()),
            enabled: patch.enabled.unwrap_or(current.enabled),
            deprecated: patch.deprecated.unwrap_or(current.deprecated),
            app_key: match patch.app_key {
                Some(k) => k,
                None => AppKey::new(&current.app_key).map_err(|e| {
                    Error::config(
                        Some(tenant),
                        Some(platform.as_str()),
                        "app_key",
                        e.to_string(),
                    )
                })?,
            },
            app_secret: match &patch.app_secret {
                Some(input) => self.stored_secret(input, tenant, platform)?,
                None => current.app_secret.clone(),
            },
            corp_id: patch.corp_id.unwrap_or_else(|| current.corp_id.clone()),
            agent_id: patch.agent_id.unwrap_or_else(|| current.agent_id.clone()),
            hosts,
            mapping: match patch.mapping {
                Some(m) => m,
                None => current.mapping.as_deref().and_then(parse_json),
            },
            redirect_uris: match patch.redirect_uris {
                Some(r) => r,
                None => match parse_json(&current.redirect_uris) {
                    Some(Value::Array(items)) => items
                        .into_iter()
                        .filter_map(|v| v.as_str().map(str::to_string))
                        .collect(),
                    _ => Vec::new(),
                },
            },
            options: match patch.options {
                Some(o) => o,
                None => match parse_json(&current.options) {
                    Some(Value::Object(map)) => map,
                    _ => Map::new(),
                },
            },
            sort: patch.sort.unwrap_or(current.sort),
        };
        // Disabling or deprecating alone never needs the rest to be valid: it must always work.
        let only_switching_off = switch_only && (!values.enabled || values.deprecated);
        if let Err(e) = self.check(tenant, platform, &values)
            && !only_switching_off
        {
            return Err(e);
        }
        self.write(tenant, platform, &current, &values, actor).await
    }

    async fn write(
        &self,
        tenant: &TenantId,
        platform: &PlatformName,
        current: &RawRow,
        values: &Values,
        actor: &str,
    ) -> Result<ConfigRow> {
        let raw = values.raw(tenant, platform);
        let done = sqlx::query(q(&self.queries.update))
            .bind(raw.mode)
            .bind(i64::from(raw.enabled))
            .bind(raw.app_key)
            .bind(raw.app_secret)
            .bind(raw.corp_id)
            .bind(raw.agent_id)
            .bind(raw.hosts)
            .bind(raw.mapping)
            .bind(raw.redirect_uris)
            .bind(raw.options)
            .bind(raw.sort)
            .bind(i64::from(raw.deprecated))
            .bind(Some(actor.to_string()))
            .bind(now_ms())
            .bind(current.id)
            .bind(current.revision)
            .execute(&self.pool)
            .await
            .map_err(|e| db_error(self.backend, "updating", &e))?;
        if done.rows_affected() != 1 {
            return Err(conflict(tenant, platform));
        }
        self.require(tenant, platform).await
    }

    /// Enables or disables the row (a disabled row stops new logins at the next reload).
    pub async fn set_enabled(
        &self,
        tenant: &TenantId,
        platform: &PlatformName,
        enabled: bool,
        actor: &str,
    ) -> Result<ConfigRow> {
        let patch = ConfigPatch {
            enabled: Some(enabled),
            ..ConfigPatch::default()
        };
        self.update(tenant, platform, patch, actor).await
    }

    /// Disables the row.
    pub async fn disable(
        &self,
        tenant: &TenantId,
        platform: &PlatformName,
        actor: &str,
    ) -> Result<ConfigRow> {
        self.set_enabled(tenant, platform, false, actor).await
    }

    /// Marks the row deprecated (the seed's `deprecate_tag`): it stops new logins like a
    /// disabled row and says the configuration is on its way out.
    pub async fn set_deprecated(
        &self,
        tenant: &TenantId,
        platform: &PlatformName,
        deprecated: bool,
        actor: &str,
    ) -> Result<ConfigRow> {
        let patch = ConfigPatch {
            deprecated: Some(deprecated),
            ..ConfigPatch::default()
        };
        self.update(tenant, platform, patch, actor).await
    }

    /// Soft-deletes the row (kept for audit with `deleted_at` set; a new row for the same
    /// tenant and platform may be created afterwards).
    pub async fn delete(
        &self,
        tenant: &TenantId,
        platform: &PlatformName,
        actor: &str,
    ) -> Result<()> {
        check_actor(actor)?;
        let current = self
            .fetch_raw(tenant, platform)
            .await?
            .ok_or_else(|| not_found(tenant, platform))?;
        let now = now_ms();
        let done = sqlx::query(q(&self.queries.soft_delete))
            .bind(now)
            .bind(Some(actor.to_string()))
            .bind(now)
            .bind(current.id)
            .bind(current.revision)
            .execute(&self.pool)
            .await
            .map_err(|e| db_error(self.backend, "deleting", &e))?;
        if done.rows_affected() != 1 {
            return Err(conflict(tenant, platform));
        }
        Ok(())
    }

    /// The live row of `tenant` / `platform`.
    pub async fn get(
        &self,
        tenant: &TenantId,
        platform: &PlatformName,
    ) -> Result<Option<ConfigRow>> {
        Ok(self.fetch_raw(tenant, platform).await?.map(|r| r.listing()))
    }

    /// Live rows, of one tenant or of all, ordered by tenant, `sort`, platform.
    pub async fn list(&self, tenant: Option<&TenantId>) -> Result<Vec<ConfigRow>> {
        Ok(self
            .fetch_all_raw(tenant)
            .await?
            .iter()
            .map(RawRow::listing)
            .collect())
    }

    async fn fetch_all_raw(&self, tenant: Option<&TenantId>) -> Result<Vec<RawRow>> {
        let rows = match tenant {
            Some(t) => {
                sqlx::query(q(&self.queries.select_tenant))
                    .bind(t.as_str())
                    .fetch_all(&self.pool)
                    .await
            }
            None => {
                sqlx::query(q(&self.queries.select_live))
                    .fetch_all(&self.pool)
                    .await
            }
        }
        .map_err(|e| db_error(self.backend, "reading", &e))?;
        rows.iter()
            .map(RawRow::read)
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| db_error(self.backend, "reading", &e))
    }

    /// Re-encrypts every encrypted secret that is not under the current key (after a key
    /// rotation), returning how many rows changed. Values that do not decrypt are reported as
    /// the error (nothing after them is changed).
    pub async fn reencrypt(&self, actor: &str) -> Result<usize> {
        check_actor(actor)?;
        let Some(current_id) = self.cipher.current_key_id() else {
            return Err(Error::config(
                None,
                None,
                crate::KEYS_ENV,
                "no key configured",
            ));
        };
        let mut changed = 0;
        for raw in self.fetch_all_raw(None).await? {
            let Some(id) = SecretCipher::key_id_of(&raw.app_secret) else {
                continue;
            };
            if id == current_id {
                continue;
            }
            let (Ok(tenant), Ok(platform)) =
                (TenantId::new(&raw.tenant), PlatformName::new(&raw.platform))
            else {
                continue;
            };
            let secret = self.cipher.decrypt(&raw.app_secret, &tenant, &platform)?;
            let values = Values {
                mode: raw.mode.clone(),
                enabled: raw.enabled,
                deprecated: raw.deprecated,
                app_key: AppKey::new(&raw.app_key).map_err(|e| {
                    Error::config(
                        Some(&tenant),
                        Some(platform.as_str()),
                        "app_key",
                        e.to_string(),
                    )
                })?,
                app_secret: self.cipher.encrypt(&secret, &tenant, &platform)?,
                corp_id: raw.corp_id.clone(),
                agent_id: raw.agent_id.clone(),
                hosts: BTreeMap::new(),
                mapping: None,
                redirect_uris: Vec::new(),
                options: Map::new(),
                sort: raw.sort,
            };
            // Keep the JSON columns byte for byte.
            let mut new_raw = values.raw(&tenant, &platform);
            new_raw.hosts.clone_from(&raw.hosts);
            new_raw.mapping.clone_from(&raw.mapping);
            new_raw.redirect_uris.clone_from(&raw.redirect_uris);
            new_raw.options.clone_from(&raw.options);
            let done = sqlx::query(q(&self.queries.update))
                .bind(new_raw.mode)
                .bind(i64::from(new_raw.enabled))
                .bind(new_raw.app_key)
                .bind(new_raw.app_secret)
                .bind(new_raw.corp_id)
                .bind(new_raw.agent_id)
                .bind(new_raw.hosts)
                .bind(new_raw.mapping)
                .bind(new_raw.redirect_uris)
                .bind(new_raw.options)
                .bind(new_raw.sort)
                .bind(i64::from(new_raw.deprecated))
                .bind(Some(actor.to_string()))
                .bind(now_ms())
                .bind(raw.id)
                .bind(raw.revision)
                .execute(&self.pool)
                .await
                .map_err(|e| db_error(self.backend, "re-encrypting", &e))?;
            if done.rows_affected() != 1 {
                return Err(conflict(&tenant, &platform));
            }
            changed += 1;
        }
        Ok(changed)
    }
}

#[async_trait]
impl ConfigLoader for SqlConfigStore {
    async fn load(&self) -> Result<Vec<LoadedEntry>> {
        let rows = self.fetch_all_raw(None).await?;
        let mut entries = Vec::with_capacity(rows.len());
        for raw in rows {
            let (Ok(tenant), Ok(platform)) =
                (TenantId::new(&raw.tenant), PlatformName::new(&raw.platform))
            else {
                tracing::warn!(
                    row = raw.id,
                    "configuration row skipped: invalid tenant id or platform name"
                );
                continue;
            };
            let config = raw.config(&tenant, &platform, &self.cipher);
            entries.push(LoadedEntry {
                tenant,
                platform,
                enabled: raw.enabled && !raw.deprecated,
                config,
            });
        }
        Ok(entries)
    }
}

fn db_error(backend: Backend, doing: &str, e: &sqlx::Error) -> Error {
    Error::Internal(format!(
        "configuration database ({backend:?}): {doing}: {e}"
    ))
}

fn not_found(tenant: &TenantId, platform: &PlatformName) -> Error {
    Error::PlatformNotConfigured {
        tenant: tenant.clone(),
        platform: platform.to_string(),
    }
}

fn already(tenant: &TenantId, platform: &PlatformName) -> Error {
    Error::config(
        Some(tenant),
        Some(platform.as_str()),
        "platform",
        "already configured for this tenant (update it, or delete it first)",
    )
}

fn conflict(tenant: &TenantId, platform: &PlatformName) -> Error {
    Error::config(
        Some(tenant),
        Some(platform.as_str()),
        "revision",
        "the row changed while this change was being made; read it again and retry",
    )
}
