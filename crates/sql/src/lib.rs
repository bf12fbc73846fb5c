//! # unilogin-sql
//!
//! Per-tenant platform configuration kept in a database — SQLite, PostgreSQL (and
//! PostgreSQL-based databases) or MySQL/MariaDB — through one implementation on sqlx's `Any`
//! driver.
//!
//! - **Table** `unilogin_platform_config`, created by [`SqlConfigStore::migrate`] (sqlx
//!   migrations, one per dialect): one live row per (tenant, platform) with proper columns for
//!   the credentials and flags, JSON text for host overrides, mapping overrides, session scope
//!   rules, redirect URIs and options, audit columns (`creator`, `created_at`, `modifier`, `modified_at`), `sort`, a
//!   `deprecated` flag, a `revision` counter and soft delete (`deleted_at`). The layout is
//!   described in `docs/configuration.md` ("SQL table").
//! - **Secrets** are never stored in clear: the `app_secret` column, and the event
//!   subscription's `event_token` and `event_key`, hold either an AES-256-GCM ciphertext made
//!   by [`SecretCipher`] (key from [`KEYS_ENV`], key id in the value so keys rotate) or a
//!   reference (`env:NAME`, `file:PATH`) resolved at load.
//! - **Admin API** on [`SqlConfigStore`]: create, update, enable/disable, deprecate, delete,
//!   list, re-encrypt.
//! - **Serving logins**: [`SqlConfigSource`] (a [`CachedSource`] over the store) answers from
//!   memory and reloads on [`ConfigSource::reload`] or periodically
//!   ([`CachedSource::spawn_reloader`]); an invalid row is rejected and logged and the last
//!   good configuration stays.
//! - **OIDC clients**: the OpenID Provider's relying parties in table `unilogin_oidc_client`
//!   ([`SqlConfigStore::create_client`] and the rest; documents checked for size and for never
//!   holding a plain secret, audited, polled through [`SqlConfigStore::clients_fingerprint`]).
//! - **Identities**: [`SqlIdentityStore`], the account-linking store of
//!   [`unilogin_core::identity`] (tables `unilogin_account` and `unilogin_identity`, same
//!   migrations; SQLite embedded by default with [`SqlIdentityStore::sqlite`]).
//!
//! ```no_run
//! # async fn demo() -> unilogin_core::Result<()> {
//! use std::sync::Arc;
//! use std::time::Duration;
//! use unilogin_core::config::{CachedSource, ConfigSource};
//! use unilogin_core::{AppKey, AppSecret, PlatformName, TenantId};
//! use unilogin_sql::{NewConfig, SecretCipher, SecretInput, SqlConfigStore};
//!
//! let store = SqlConfigStore::connect("postgres://app@127.0.0.1/app", SecretCipher::from_env()?).await?;
//! store.migrate().await?;
//! let mut row = NewConfig::new(
//!     TenantId::new("acme")?,
//!     PlatformName::new("dingtalk")?,
//!     AppKey::new("dingxxxx")?,
//!     SecretInput::Value(AppSecret::new("the-app-secret")),
//! );
//! row.redirect_uris = vec!["https://app.acme.example/after-login".into()];
//! store.create(row, "admin@acme").await?;
//!
//! let (source, _report) = CachedSource::new(store.clone()).await?;
//! let source = Arc::new(source);
//! let _reloader = source.spawn_reloader(Duration::from_secs(30))?;
//! let sso = unilogin_core::Sso::builder(source.clone()).build()?;
//! // After an admin change, apply it here at once (other replicas pick it up on their poll):
//! source.reload().await?;
//! # let _ = sso; Ok(()) }
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]

mod admin;
mod audit;
mod cipher;
mod clients;
mod dialect;
mod identity;
mod loader;
mod rows;

use std::fmt;
use std::sync::Arc;

use sqlx::AnyPool;
use unilogin_core::config::{CachedSource, SecretRefPolicy};

pub use admin::{ConfigPatch, EventInput, EventPatch, NewConfig, SecretInput};
pub use audit::{AuditEntry, AuditQuery};
pub use cipher::{KEYS_ENV, SecretCipher};
pub use clients::{
    CLIENT_AUDIT_PLATFORM, ClientError, MAX_CLIENT_BODY, MAX_CLIENT_ID, StoredClient,
};
pub use dialect::{AUDIT_TABLE, Backend, CLIENT_TABLE, TABLE};
pub use identity::SqlIdentityStore;
pub use rows::{ConfigRow, StoredEvents, StoredSecret};
#[doc(no_inline)]
pub use unilogin_core::config::ConfigSource;

/// The database-backed [`ConfigSource`]: the store's rows served from memory, reloadable.
pub type SqlConfigSource = CachedSource<SqlConfigStore>;

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
/// - as a [`ConfigLoader`](unilogin_core::config::ConfigLoader), wrapped in a [`CachedSource`]
///   (see [`SqlConfigSource`]), it serves logins from memory and reloads on demand or
///   periodically.
///
/// Cheap to clone (the pool is shared).
///
/// The code is split by concern: `dialect` (backends, migrations, SQL text, connecting),
/// `rows` (row types and row ↔ [`PlatformConfig`](unilogin_core::config::PlatformConfig)),
/// `admin` (the admin API) and `loader` (the reads and the `ConfigLoader`).
#[derive(Clone)]
pub struct SqlConfigStore {
    pool: AnyPool,
    backend: Backend,
    cipher: Arc<SecretCipher>,
    queries: Arc<dialect::Queries>,
    refs: Arc<SecretRefPolicy>,
}

impl fmt::Debug for SqlConfigStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlConfigStore")
            .field("backend", &self.backend)
            .field("cipher", &self.cipher)
            .field("secret_refs", &self.refs)
            .finish_non_exhaustive()
    }
}

impl SqlConfigStore {
    /// The backend.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The pool (for health checks or your own queries).
    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The identity store on this store's database and pool (its tables come with the same
    /// [`migrate`](Self::migrate)).
    pub fn identity_store(&self) -> SqlIdentityStore {
        SqlIdentityStore::with_pool(self.pool.clone(), self.backend)
    }

    /// Which secret references (`env:NAME`, `file:PATH`) rows may use: none by default.
    ///
    /// Writing a row is not the same privilege as running the server: a row holding
    /// `app_secret: env:SESSION_KEY` or `file:/proc/self/environ` would otherwise make the
    /// server read its own secrets and send them to the token endpoint the row names. The
    /// admin API refuses such a row, and the loader rejects one written into the table by
    /// other means (its last good configuration stays). Allow-list what operators provision,
    /// for example `SecretRefPolicy::none().allow_dir("/run/secrets/tenants")`.
    pub fn with_secret_refs(mut self, policy: SecretRefPolicy) -> Self {
        self.refs = Arc::new(policy);
        self
    }

    /// The secret reference allow-list (see [`with_secret_refs`](Self::with_secret_refs)).
    pub fn secret_refs(&self) -> &SecretRefPolicy {
        &self.refs
    }
}
