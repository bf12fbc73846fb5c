//! [`SqlIdentityStore`]: the identity store (accounts, and the identities linked to them) in
//! SQLite, PostgreSQL or MySQL/MariaDB, on the same `Any` pool and migrations as the
//! configuration table.
//!
//! Tables (migration 4): `unilogin_account` (`id`, `tenant_id`, `created_at`) and
//! `unilogin_identity` (one row per tenant, platform, subject kind and subject, unique; its
//! `account_id`, the vouched `email_key` / `mobile_key` in matching form, `linked_by`,
//! `linked_at`, `last_login_at`). Each operation is one transaction (`BEGIN IMMEDIATE` on
//! SQLite, so concurrent writers queue instead of failing); two first logins of the same
//! identity racing on different connections end with one account (the loser's insert meets
//! the unique key and it reads the winner's row).

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{Any, AnyPool, Row, Transaction};
use unilogin_core::identity::{
    FirstLogin, IdentityClaim, IdentityError, IdentityKey, IdentityStore, LinkedBy, LinkedIdentity,
    first_login, new_account_id,
};
use unilogin_core::mapping::{Subject, SubjectKind};
use unilogin_core::{AccountId, Error, PlatformName, Result, TenantId};

use crate::dialect::{Backend, q};

const IDENTITY: &str = "unilogin_identity";
const ACCOUNT: &str = "unilogin_account";

/// Every query's text, in one backend's dialect.
struct Queries {
    find: Arc<str>,
    touch: Arc<str>,
    by_email: Arc<str>,
    by_mobile: Arc<str>,
    account_exists: Arc<str>,
    insert_account: Arc<str>,
    insert_identity: Arc<str>,
    delete_identity: Arc<str>,
    move_identities: Arc<str>,
    delete_account: Arc<str>,
    list: Arc<str>,
}

impl Queries {
    fn new(b: Backend) -> Self {
        let key = "tenant_id = ? AND platform = ? AND subject_kind = ? AND subject = ?";
        Self {
            find: b.sql(&format!("SELECT account_id FROM {IDENTITY} WHERE {key}")),
            touch: b.sql(&format!(
                "UPDATE {IDENTITY} SET email_key = ?, mobile_key = ?, last_login_at = ? WHERE {key}"
            )),
            by_email: b.sql(&format!(
                "SELECT DISTINCT account_id FROM {IDENTITY} WHERE tenant_id = ? AND email_key = ?"
            )),
            by_mobile: b.sql(&format!(
                "SELECT DISTINCT account_id FROM {IDENTITY} WHERE tenant_id = ? AND mobile_key = ?"
            )),
            account_exists: b.sql(&format!(
                "SELECT id FROM {ACCOUNT} WHERE tenant_id = ? AND id = ?"
            )),
            insert_account: b.sql(&format!(
                "INSERT INTO {ACCOUNT} (id, tenant_id, created_at) VALUES (?, ?, ?)"
            )),
            insert_identity: b.sql(&format!(
                "INSERT INTO {IDENTITY} (tenant_id, platform, subject_kind, subject, account_id, email_key, mobile_key, linked_by, linked_at, last_login_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
            )),
            delete_identity: b.sql(&format!("DELETE FROM {IDENTITY} WHERE {key}")),
            move_identities: b.sql(&format!(
                "UPDATE {IDENTITY} SET account_id = ?, linked_by = ? WHERE tenant_id = ? AND account_id = ?"
            )),
            delete_account: b.sql(&format!(
                "DELETE FROM {ACCOUNT} WHERE tenant_id = ? AND id = ?"
            )),
            list: b.sql(&format!(
                "SELECT platform, subject_kind, subject, linked_by, linked_at, last_login_at FROM {IDENTITY} \
                 WHERE tenant_id = ? AND account_id = ?"
            )),
        }
    }
}

/// The identity store in a database: SQLite (embedded, the default for a single server:
/// [`SqlIdentityStore::sqlite`]), PostgreSQL or MySQL/MariaDB. See
/// [`unilogin_core::identity`] for what it does; every failure of the database is
/// [`Error::Store`] (`store: "sql"`), every refusal [`Error::Identity`]. Cheap to clone.
///
/// ```no_run
/// # async fn demo(profile: unilogin_core::UserProfile) -> unilogin_core::Result<()> {
/// use unilogin_core::identity::{IdentityStore, LinkRules};
/// use unilogin_sql::SqlIdentityStore;
///
/// let store = SqlIdentityStore::sqlite("accounts.db").await?;
/// store.migrate().await?;
/// let account = store.account_for(&profile, &LinkRules::default()).await?;
/// # let _ = account; Ok(()) }
/// ```
#[derive(Clone)]
pub struct SqlIdentityStore {
    pool: AnyPool,
    backend: Backend,
    queries: Arc<Queries>,
}

impl fmt::Debug for SqlIdentityStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlIdentityStore")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

/// A database failure of the identity store.
fn store_error(operation: &'static str, e: &sqlx::Error) -> Error {
    Error::Store {
        store: "sql",
        operation,
        message: e.to_string(),
    }
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A stored id read back: an [`AccountId`], or a store error if the row was edited into
/// something that is not one.
fn account_of(raw: String) -> Result<AccountId> {
    AccountId::new(&raw).map_err(|e| Error::Store {
        store: "sql",
        operation: "reading an identity",
        message: format!("invalid stored account id: {e}"),
    })
}

type Tx = Transaction<'static, Any>;

impl SqlIdentityStore {
    /// Connects to `url` (`sqlite:…`, `postgres://…`, `mysql://…`). Does not create the
    /// tables: call [`migrate`](Self::migrate).
    pub async fn connect(url: &str) -> Result<Self> {
        let backend = Backend::from_url(url)?;
        sqlx::any::install_default_drivers();
        let pool = AnyPoolOptions::new()
            .max_connections(4)
            .connect(url)
            .await
            .map_err(|e| store_error("connecting", &e))?;
        Ok(Self::with_pool(pool, backend))
    }

    /// An embedded SQLite database in the file at `path` (created if missing).
    pub async fn sqlite(path: impl AsRef<std::path::Path>) -> Result<Self> {
        Self::connect(&format!("sqlite://{}?mode=rwc", path.as_ref().display())).await
    }

    /// Wraps an existing pool (its backend must be `backend`), for example the one of a
    /// [`SqlConfigStore`](crate::SqlConfigStore) (see
    /// [`SqlConfigStore::identity_store`](crate::SqlConfigStore::identity_store)).
    pub fn with_pool(pool: AnyPool, backend: Backend) -> Self {
        Self {
            pool,
            backend,
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

    /// Applies the crate's pending migrations (the configuration table's too: one history).
    pub async fn migrate(&self) -> Result<()> {
        let migrator = sqlx::migrate::Migrator::with_migrations(self.backend.migrations());
        migrator.run(&self.pool).await.map_err(|e| Error::Store {
            store: "sql",
            operation: "migrating",
            message: e.to_string(),
        })
    }

    /// A write transaction: `BEGIN IMMEDIATE` on SQLite (writers wait for each other instead
    /// of failing when a read lock would have to be upgraded).
    async fn begin(&self, operation: &'static str) -> Result<Tx> {
        let tx = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            _ => self.pool.begin().await,
        };
        tx.map_err(|e| store_error(operation, &e))
    }

    async fn commit(tx: Tx, operation: &'static str) -> Result<()> {
        tx.commit().await.map_err(|e| store_error(operation, &e))
    }

    async fn find_in(&self, tx: &mut Tx, key: &IdentityKey) -> Result<Option<AccountId>> {
        let row = sqlx::query(q(&self.queries.find))
            .bind(key.tenant.as_str())
            .bind(key.platform.as_str())
            .bind(key.subject.kind.as_str())
            .bind(key.subject.value.as_str())
            .fetch_optional(&mut **tx)
            .await
            .map_err(|e| store_error("reading an identity", &e))?;
        row.map(|r| {
            r.try_get::<String, _>("account_id")
                .map_err(|e| store_error("reading an identity", &e))
                .and_then(account_of)
        })
        .transpose()
    }

    async fn accounts_with(
        &self,
        tx: &mut Tx,
        query: &Arc<str>,
        tenant: &TenantId,
        value: Option<&String>,
    ) -> Result<Vec<AccountId>> {
        let Some(value) = value else {
            return Ok(Vec::new());
        };
        let rows = sqlx::query(q(query))
            .bind(tenant.as_str())
            .bind(value.as_str())
            .fetch_all(&mut **tx)
            .await
            .map_err(|e| store_error("matching identities", &e))?;
        rows.iter()
            .map(|r| {
                r.try_get::<String, _>("account_id")
                    .map_err(|e| store_error("matching identities", &e))
                    .and_then(account_of)
            })
            .collect()
    }

    async fn has_account(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        account: &AccountId,
    ) -> Result<bool> {
        let row = sqlx::query(q(&self.queries.account_exists))
            .bind(tenant.as_str())
            .bind(account.as_str())
            .fetch_optional(&mut **tx)
            .await
            .map_err(|e| store_error("reading an account", &e))?;
        Ok(row.is_some())
    }

    async fn require_account(
        &self,
        tx: &mut Tx,
        tenant: &TenantId,
        account: &AccountId,
    ) -> Result<()> {
        if self.has_account(tx, tenant, account).await? {
            return Ok(());
        }
        Err(Error::Identity(IdentityError::UnknownAccount {
            tenant: tenant.clone(),
            account: account.clone(),
        }))
    }

    /// Inserts the claim's identity for `account`. A unique-key violation (another
    /// connection inserted the same identity meanwhile) is `Ok(false)`.
    async fn insert_identity(
        &self,
        tx: &mut Tx,
        claim: &IdentityClaim,
        account: &AccountId,
        linked_by: LinkedBy,
        last_login: i64,
    ) -> Result<bool> {
        let key = &claim.key;
        let done = sqlx::query(q(&self.queries.insert_identity))
            .bind(key.tenant.as_str())
            .bind(key.platform.as_str())
            .bind(key.subject.kind.as_str())
            .bind(key.subject.value.as_str())
            .bind(account.as_str())
            .bind(claim.email.clone())
            .bind(claim.mobile.clone())
            .bind(linked_by.as_str())
            .bind(now_ms())
            .bind(last_login)
            .execute(&mut **tx)
            .await;
        match done {
            Ok(_) => Ok(true),
            Err(e) if is_unique_violation(&e) => Ok(false),
            Err(e) => Err(store_error("linking an identity", &e)),
        }
    }

    /// One attempt of [`IdentityStore::resolve`]; `None`: lost a race, try again.
    async fn try_resolve(&self, claim: &IdentityClaim) -> Result<Option<AccountId>> {
        let key = &claim.key;
        let mut tx = self.begin("resolving an identity").await?;
        if let Some(account) = self.find_in(&mut tx, key).await? {
            sqlx::query(q(&self.queries.touch))
                .bind(claim.email.clone())
                .bind(claim.mobile.clone())
                .bind(now_ms())
                .bind(key.tenant.as_str())
                .bind(key.platform.as_str())
                .bind(key.subject.kind.as_str())
                .bind(key.subject.value.as_str())
                .execute(&mut *tx)
                .await
                .map_err(|e| store_error("recording a login", &e))?;
            Self::commit(tx, "recording a login").await?;
            return Ok(Some(account));
        }
        let qs = &self.queries;
        let by_email = self
            .accounts_with(&mut tx, &qs.by_email, &key.tenant, claim.email.as_ref())
            .await?;
        let by_mobile = self
            .accounts_with(&mut tx, &qs.by_mobile, &key.tenant, claim.mobile.as_ref())
            .await?;
        let (account, linked_by) = match first_login(claim, &by_email, &by_mobile)? {
            FirstLogin::Link(account, by) => (account, by),
            FirstLogin::Create => {
                let account = new_account_id()?;
                sqlx::query(q(&qs.insert_account))
                    .bind(account.as_str())
                    .bind(key.tenant.as_str())
                    .bind(now_ms())
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| store_error("creating an account", &e))?;
                (account, LinkedBy::Created)
            }
        };
        if !self
            .insert_identity(&mut tx, claim, &account, linked_by, now_ms())
            .await?
        {
            // Dropping the transaction rolls it back (and the account it created).
            return Ok(None);
        }
        Self::commit(tx, "linking an identity").await?;
        Ok(Some(account))
    }
}

#[async_trait]
impl IdentityStore for SqlIdentityStore {
    async fn resolve(&self, claim: &IdentityClaim) -> Result<AccountId> {
        // A lost race leaves the winner's row; the second attempt finds it.
        for _ in 0..3 {
            if let Some(account) = self.try_resolve(claim).await? {
                return Ok(account);
            }
        }
        Err(Error::Store {
            store: "sql",
            operation: "resolving an identity",
            message: "the identity kept changing under concurrent logins".into(),
        })
    }

    async fn link(&self, account: &AccountId, claim: &IdentityClaim) -> Result<()> {
        let mut tx = self.begin("linking an identity").await?;
        self.require_account(&mut tx, &claim.key.tenant, account)
            .await?;
        let already = |current: AccountId| {
            if &current == account {
                Ok(())
            } else {
                Err(Error::Identity(IdentityError::AlreadyLinked {
                    key: claim.key.clone(),
                    account: current,
                }))
            }
        };
        if let Some(current) = self.find_in(&mut tx, &claim.key).await? {
            return already(current);
        }
        if self
            .insert_identity(&mut tx, claim, account, LinkedBy::Api, 0)
            .await?
        {
            return Self::commit(tx, "linking an identity").await;
        }
        drop(tx);
        // Linked meanwhile by another connection: report what it is linked to now.
        match self.find(&claim.key).await? {
            Some(current) => already(current),
            None => Err(Error::Store {
                store: "sql",
                operation: "linking an identity",
                message: "the identity changed concurrently".into(),
            }),
        }
    }

    async fn unlink(&self, key: &IdentityKey) -> Result<AccountId> {
        let mut tx = self.begin("unlinking an identity").await?;
        let Some(account) = self.find_in(&mut tx, key).await? else {
            return Err(Error::Identity(IdentityError::NotLinked {
                key: key.clone(),
            }));
        };
        sqlx::query(q(&self.queries.delete_identity))
            .bind(key.tenant.as_str())
            .bind(key.platform.as_str())
            .bind(key.subject.kind.as_str())
            .bind(key.subject.value.as_str())
            .execute(&mut *tx)
            .await
            .map_err(|e| store_error("unlinking an identity", &e))?;
        Self::commit(tx, "unlinking an identity").await?;
        Ok(account)
    }

    async fn merge(&self, tenant: &TenantId, from: &AccountId, into: &AccountId) -> Result<usize> {
        let mut tx = self.begin("merging accounts").await?;
        self.require_account(&mut tx, tenant, from).await?;
        self.require_account(&mut tx, tenant, into).await?;
        if from == into {
            return Err(Error::Identity(IdentityError::SameAccount {
                tenant: tenant.clone(),
                account: from.clone(),
            }));
        }
        let moved = sqlx::query(q(&self.queries.move_identities))
            .bind(into.as_str())
            .bind(LinkedBy::Merge.as_str())
            .bind(tenant.as_str())
            .bind(from.as_str())
            .execute(&mut *tx)
            .await
            .map_err(|e| store_error("merging accounts", &e))?
            .rows_affected();
        sqlx::query(q(&self.queries.delete_account))
            .bind(tenant.as_str())
            .bind(from.as_str())
            .execute(&mut *tx)
            .await
            .map_err(|e| store_error("merging accounts", &e))?;
        Self::commit(tx, "merging accounts").await?;
        Ok(usize::try_from(moved).unwrap_or(usize::MAX))
    }

    async fn find(&self, key: &IdentityKey) -> Result<Option<AccountId>> {
        let row = sqlx::query(q(&self.queries.find))
            .bind(key.tenant.as_str())
            .bind(key.platform.as_str())
            .bind(key.subject.kind.as_str())
            .bind(key.subject.value.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| store_error("reading an identity", &e))?;
        row.map(|r| {
            r.try_get::<String, _>("account_id")
                .map_err(|e| store_error("reading an identity", &e))
                .and_then(account_of)
        })
        .transpose()
    }

    async fn identities(
        &self,
        tenant: &TenantId,
        account: &AccountId,
    ) -> Result<Vec<LinkedIdentity>> {
        let mut tx = self.begin("listing identities").await?;
        self.require_account(&mut tx, tenant, account).await?;
        let rows = sqlx::query(q(&self.queries.list))
            .bind(tenant.as_str())
            .bind(account.as_str())
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| store_error("listing identities", &e))?;
        Self::commit(tx, "listing identities").await?;
        let mut out = rows
            .iter()
            .map(|r| linked(r, tenant, account))
            .collect::<Result<Vec<_>>>()?;
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }
}

/// One listed row.
fn linked(row: &AnyRow, tenant: &TenantId, account: &AccountId) -> Result<LinkedIdentity> {
    let bad = |what: &str| Error::Store {
        store: "sql",
        operation: "listing identities",
        message: format!("invalid stored {what}"),
    };
    let get = |name: &str| {
        row.try_get::<String, _>(name)
            .map_err(|e| store_error("listing identities", &e))
    };
    let time = |name: &str| {
        row.try_get::<i64, _>(name)
            .map_err(|e| store_error("listing identities", &e))
    };
    let platform = PlatformName::new(get("platform")?).map_err(|_| bad("platform"))?;
    let kind: SubjectKind = get("subject_kind")?
        .parse()
        .map_err(|_| bad("subject kind"))?;
    let linked_by = LinkedBy::parse(&get("linked_by")?).ok_or_else(|| bad("link kind"))?;
    Ok(LinkedIdentity {
        key: IdentityKey {
            tenant: tenant.clone(),
            platform,
            subject: Subject {
                kind,
                value: get("subject")?,
            },
        },
        account: account.clone(),
        linked_by,
        linked_at_ms: time("linked_at")?,
        last_login_ms: time("last_login_at")?,
    })
}
