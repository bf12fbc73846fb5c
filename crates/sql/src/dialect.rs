//! What differs between the databases: the [`Backend`] a URL names, its migrations, and the
//! SQL text of every query with that backend's placeholders. Also connecting and migrating,
//! the two steps that start from a backend.

use std::sync::Arc;

use sqlx::any::AnyPoolOptions;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AnyPool, AssertSqlSafe, SqlSafeStr};
use unilogin_core::{Error, Result};

use crate::SqlConfigStore;
use crate::cipher::SecretCipher;

/// The table's name.
pub const TABLE: &str = "unilogin_platform_config";

/// The audit log's table name.
pub const AUDIT_TABLE: &str = "unilogin_config_audit";

/// The OpenID Provider's relying-party client table (see [`SqlConfigStore::create_client`]).
pub const CLIENT_TABLE: &str = "unilogin_oidc_client";

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

/// One migration: version, description, and its SQL for SQLite, PostgreSQL and MySQL.
/// Append only: an applied migration is never edited (sqlx checks its checksum).
type MigrationFiles = (i64, &'static str, [&'static str; 3]);

const MIGRATIONS: &[MigrationFiles] = &[
    (
        1,
        "platform config",
        [
            include_str!("../migrations/sqlite/0001_platform_config.sql"),
            include_str!("../migrations/postgres/0001_platform_config.sql"),
            include_str!("../migrations/mysql/0001_platform_config.sql"),
        ],
    ),
    (
        2,
        "session scopes",
        [
            include_str!("../migrations/sqlite/0002_session_scopes.sql"),
            include_str!("../migrations/postgres/0002_session_scopes.sql"),
            include_str!("../migrations/mysql/0002_session_scopes.sql"),
        ],
    ),
    (
        3,
        "config audit",
        [
            include_str!("../migrations/sqlite/0003_config_audit.sql"),
            include_str!("../migrations/postgres/0003_config_audit.sql"),
            include_str!("../migrations/mysql/0003_config_audit.sql"),
        ],
    ),
    (
        4,
        "identity policy, accounts and identities",
        [
            include_str!("../migrations/sqlite/0004_identity.sql"),
            include_str!("../migrations/postgres/0004_identity.sql"),
            include_str!("../migrations/mysql/0004_identity.sql"),
        ],
    ),
    (
        5,
        "event credentials",
        [
            include_str!("../migrations/sqlite/0005_event_credentials.sql"),
            include_str!("../migrations/postgres/0005_event_credentials.sql"),
            include_str!("../migrations/mysql/0005_event_credentials.sql"),
        ],
    ),
    (
        6,
        "oidc clients",
        [
            include_str!("../migrations/sqlite/0006_oidc_clients.sql"),
            include_str!("../migrations/postgres/0006_oidc_clients.sql"),
            include_str!("../migrations/mysql/0006_oidc_clients.sql"),
        ],
    ),
    (
        7,
        "store-app permanent code",
        [
            include_str!("../migrations/sqlite/0007_permanent_code.sql"),
            include_str!("../migrations/postgres/0007_permanent_code.sql"),
            include_str!("../migrations/mysql/0007_permanent_code.sql"),
        ],
    ),
];

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

    /// This backend's migrations, in order (every table of the crate: configuration and
    /// identities share one migration history).
    pub(crate) fn migrations(self) -> Vec<Migration> {
        let dialect = match self {
            Backend::Sqlite => 0,
            Backend::Postgres => 1,
            Backend::MySql => 2,
        };
        MIGRATIONS
            .iter()
            .map(|(version, description, sql)| {
                Migration::new(
                    *version,
                    (*description).into(),
                    MigrationType::Simple,
                    sql[dialect].into_sql_str(),
                    false,
                )
            })
            .collect()
    }

    /// `?` placeholders in PostgreSQL's `$n` form where needed.
    pub(crate) fn sql(self, query: &str) -> Arc<str> {
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

/// The columns every `SELECT` reads, in [`RawRow::read`](crate::rows::RawRow::read)'s terms.
const COLUMNS: &str = "id, tenant_id, platform, protocol, enabled, app_key, app_secret, corp_id, agent_id, hosts, mapping, session_scopes, identity_policy, event_token, event_key, event_receiver_id, permanent_code, redirect_uris, options, sort, deprecated, creator, created_at, modifier, modified_at, revision";

/// Every query's text, in one backend's dialect.
pub(crate) struct Queries {
    pub(crate) select_live: Arc<str>,
    pub(crate) select_tenant: Arc<str>,
    pub(crate) select_one: Arc<str>,
    /// Binds the columns it names, in order (`revision` and `deleted_at` are fixed).
    pub(crate) insert: Arc<str>,
    /// Binds: [`UPDATED`]'s columns, then id and expected revision.
    pub(crate) update: Arc<str>,
    /// Binds: deleted_at, modifier, modified_at, id, expected revision.
    pub(crate) soft_delete: Arc<str>,
    /// Binds: at, actor, tenant, platform, action, revision, changes.
    pub(crate) insert_audit: Arc<str>,
    /// Reads the change fingerprint: row count, sum of revisions, latest modification.
    pub(crate) fingerprint: Arc<str>,
    /// Every row, live or deleted, modified at or after `?`, with `deleted_at`.
    pub(crate) select_since: Arc<str>,
    /// How many rows (live or deleted) were created at or after `?`.
    pub(crate) count_created_since: Arc<str>,
    /// The OIDC client table's queries.
    pub(crate) clients: crate::clients::ClientQueries,
}

impl Queries {
    pub(crate) fn new(b: Backend) -> Self {
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
                "INSERT INTO {TABLE} (tenant_id, platform, protocol, enabled, app_key, app_secret, corp_id, agent_id, hosts, mapping, session_scopes, event_token, event_key, event_receiver_id, permanent_code, redirect_uris, options, sort, deprecated, creator, created_at, modifier, modified_at, revision, deleted_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, 0)"
            )),
            update: b.sql(&format!("UPDATE {TABLE} SET {UPDATED}, revision = revision + 1 WHERE id = ? AND revision = ? AND deleted_at = 0")),
            soft_delete: b.sql(&format!(
                "UPDATE {TABLE} SET deleted_at = ?, modifier = ?, modified_at = ?, revision = revision + 1 WHERE id = ? AND revision = ? AND deleted_at = 0"
            )),
            insert_audit: b.sql(&format!(
                "INSERT INTO {AUDIT_TABLE} (at, actor, tenant_id, platform, action, revision, changes) VALUES (?, ?, ?, ?, ?, ?, ?)"
            )),
            count_created_since: b.sql(&format!(
                "SELECT COUNT(*) AS n FROM {TABLE} WHERE created_at >= ?"
            )),
            select_since: b.sql(&format!(
                "SELECT {COLUMNS}, deleted_at FROM {TABLE} WHERE modified_at >= ? ORDER BY id"
            )),
            // CAST: the sum's type differs by database (NUMERIC in PostgreSQL, DECIMAL in MySQL).
            fingerprint: b.sql(&format!(
                "SELECT COUNT(*) AS n, CAST(COALESCE(SUM(revision), 0) AS {int}) AS revisions, CAST(COALESCE(MAX(modified_at), 0) AS {int}) AS modified FROM {TABLE}",
                int = match b {
                    Backend::MySql => "SIGNED",
                    _ => "BIGINT",
                }
            )),
            clients: crate::clients::ClientQueries::new(b),
        }
    }
}

/// The columns an update writes, in bind order.
const UPDATED: &str = "protocol = ?, enabled = ?, app_key = ?, app_secret = ?, corp_id = ?, agent_id = ?, hosts = ?, mapping = ?, session_scopes = ?, event_token = ?, event_key = ?, event_receiver_id = ?, permanent_code = ?, redirect_uris = ?, options = ?, sort = ?, deprecated = ?, modifier = ?, modified_at = ?";

/// A query's text for sqlx (every text here is built from constants, never from input).
pub(crate) fn q(text: &Arc<str>) -> impl SqlSafeStr {
    AssertSqlSafe(text.clone())
}

/// A database failure, naming the backend and what was being done.
pub(crate) fn db_error(backend: Backend, doing: &str, e: &sqlx::Error) -> Error {
    Error::Internal(format!(
        "configuration database ({backend:?}): {doing}: {e}"
    ))
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
            refs: Arc::new(unilogin_core::config::SecretRefPolicy::none()),
        }
    }

    /// Applies the pending migrations (idempotent).
    pub async fn migrate(&self) -> Result<()> {
        let migrator = Migrator::with_migrations(self.backend.migrations());
        migrator.run(&self.pool).await.map_err(|e| {
            Error::Internal(format!(
                "configuration database ({:?}): migrating: {e}",
                self.backend
            ))
        })
    }
}
