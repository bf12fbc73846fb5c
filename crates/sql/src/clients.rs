//! The OpenID Provider's relying-party clients (table [`CLIENT_TABLE`](crate::CLIENT_TABLE)):
//! one row per client id holding the client document as a JSON object, validated by the
//! provider, not here. This module keeps what a table must guarantee whatever the document
//! says: a sane client id, a bounded JSON object, never a client secret in clear (only its
//! SHA-256, `client_secret_sha256`), a revision check that refuses a change that raced
//! another one, soft delete, an audit log entry per change (the hash shows as changed, never
//! its value) and a cheap change fingerprint ([`SqlConfigStore::clients_fingerprint`]) the
//! gateway polls to reload its clients only when one changed.

use std::fmt;
use std::sync::Arc;

use serde_json::{Map, Value, json};
use sqlx::Row;
use sqlx::any::AnyRow;

use crate::SqlConfigStore;
use crate::admin::{check_actor, now_ms};
use crate::dialect::{AUDIT_TABLE, Backend, CLIENT_TABLE, db_error, q};

/// The largest client document [`SqlConfigStore::create_client`] and
/// [`SqlConfigStore::update_client`] accept, in bytes of its JSON text (without `client_id`).
pub const MAX_CLIENT_BODY: usize = 16 * 1024;

/// The longest client id.
pub const MAX_CLIENT_ID: usize = 128;

/// The `platform` of the audit log entries of OIDC client changes (their `tenant` is empty and
/// their [`client_id`](crate::AuditEntry::client_id) names the client). List them with
/// `AuditQuery { platform: Some(PlatformName::new(CLIENT_AUDIT_PLATFORM)?), .. }`.
pub const CLIENT_AUDIT_PLATFORM: &str = "oidc_client";

/// The field holding the SHA-256 of the client secret (hex): compared, never shown.
const SECRET_HASH: &str = "client_secret_sha256";

/// The field that must never be stored.
const PLAIN_SECRET: &str = "client_secret";

/// Why a client change or read was refused. Never holds a body value: a mistyped secret or
/// hash does not come back in an error.
///
/// ```
/// use unilogin_sql::ClientError;
/// let e = ClientError::PlainSecret;
/// assert!(e.to_string().contains("store client_secret_sha256, never the secret"));
/// // Into the workspace's error type (a configuration error naming the field):
/// let core: unilogin_core::Error = e.into();
/// assert!(matches!(core, unilogin_core::Error::Config { .. }));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClientError {
    /// The client id is not 1 to 128 of `A-Z a-z 0-9 . _ ~ -`.
    InvalidId {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The document has a `client_secret` field.
    PlainSecret,
    /// `client_secret_sha256` is neither null nor 64 hexadecimal digits.
    BadSecretHash,
    /// The document's `client_id` differs from the id the client is stored under.
    IdMismatch {
        /// The id the client is stored under.
        client_id: String,
    },
    /// The document's JSON text is longer than [`MAX_CLIENT_BODY`].
    TooLarge {
        /// Its length in bytes.
        bytes: usize,
    },
    /// The actor is not 1 to 100 characters.
    InvalidActor,
    /// No live client has this id.
    NotFound {
        /// The id asked for.
        client_id: String,
    },
    /// A live client has this id already.
    AlreadyExists {
        /// The id.
        client_id: String,
    },
    /// The client changed since the revision the change was based on: read it again and retry.
    Conflict {
        /// The id.
        client_id: String,
        /// The revision the change expected.
        expected: i64,
        /// The revision found (`None`: the client was deleted meanwhile).
        found: Option<i64>,
    },
    /// The stored document is not a JSON object (the row was edited by other means).
    StoredBody {
        /// The id.
        client_id: String,
    },
    /// The database failed.
    Database(String),
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::InvalidId { reason } => write!(f, "OIDC client id {reason}"),
            ClientError::PlainSecret => f.write_str(
                "OIDC client: `client_secret` refused: store client_secret_sha256, never the secret",
            ),
            ClientError::BadSecretHash => f.write_str(
                "OIDC client: `client_secret_sha256` must be the SHA-256 of the secret as 64 hexadecimal digits (or null)",
            ),
            ClientError::IdMismatch { client_id } => write!(
                f,
                "OIDC client `{client_id}`: the document's `client_id` names another client"
            ),
            ClientError::TooLarge { bytes } => write!(
                f,
                "OIDC client: the document is {bytes} bytes of JSON, more than the {MAX_CLIENT_BODY} allowed"
            ),
            ClientError::InvalidActor => f.write_str(
                "actor must be 1 to 100 characters (it is recorded as creator/modifier)",
            ),
            ClientError::NotFound { client_id } => {
                write!(f, "no OIDC client `{client_id}`")
            }
            ClientError::AlreadyExists { client_id } => write!(
                f,
                "OIDC client `{client_id}` exists already (update it, or delete it first)"
            ),
            ClientError::Conflict {
                client_id,
                expected,
                found,
            } => {
                write!(
                    f,
                    "OIDC client `{client_id}` changed (expected revision {expected}, "
                )?;
                match found {
                    Some(found) => write!(f, "found {found}")?,
                    None => f.write_str("it was deleted")?,
                }
                f.write_str("); read it again and retry")
            }
            ClientError::StoredBody { client_id } => write!(
                f,
                "OIDC client `{client_id}`: the stored document is not a JSON object"
            ),
            ClientError::Database(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for ClientError {}

impl From<ClientError> for unilogin_core::Error {
    /// A configuration error naming the field (`revision` for a conflict, like a platform
    /// configuration's), or an internal error for a database failure.
    fn from(e: ClientError) -> Self {
        let field = match &e {
            ClientError::InvalidId { .. }
            | ClientError::IdMismatch { .. }
            | ClientError::NotFound { .. }
            | ClientError::AlreadyExists { .. } => "client_id",
            ClientError::PlainSecret => PLAIN_SECRET,
            ClientError::BadSecretHash => SECRET_HASH,
            ClientError::TooLarge { .. } | ClientError::StoredBody { .. } => "body",
            ClientError::InvalidActor => "actor",
            ClientError::Conflict { .. } => "revision",
            ClientError::Database(message) => {
                return unilogin_core::Error::Internal(message.clone());
            }
        };
        unilogin_core::Error::config(None, Some(CLIENT_AUDIT_PLATFORM), field, e.to_string())
    }
}

fn database(backend: Backend, doing: &str, e: &sqlx::Error) -> ClientError {
    ClientError::Database(db_error(backend, doing, e).to_string())
}

/// One live OIDC client, as stored. Its `Debug` shows `client_secret_sha256` as `***`.
///
/// ```
/// # use serde_json::{Map, json};
/// # use unilogin_sql::StoredClient;
/// let mut body = Map::new();
/// body.insert("client_secret_sha256".into(), json!("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"));
/// body.insert("redirect_uris".into(), json!(["https://grafana.example/login/generic_oauth"]));
/// let client = StoredClient {
///     client_id: "grafana".into(),
///     body,
///     enabled: true,
///     revision: 1,
///     creator: "alice".into(),
///     created_at_ms: 0,
///     modifier: None,
///     modified_at_ms: 0,
/// };
/// assert!(!format!("{client:?}").contains("9f86d081"));
/// assert_eq!(client.document()["client_id"], "grafana");
/// ```
#[derive(Clone, PartialEq)]
pub struct StoredClient {
    /// The client id.
    pub client_id: String,
    /// The client document without `client_id` (see [`document`](Self::document)).
    pub body: Map<String, Value>,
    /// Whether the client may sign people in.
    pub enabled: bool,
    /// Incremented by every change; give it back to [`SqlConfigStore::update_client`].
    pub revision: i64,
    /// Who created the client.
    pub creator: String,
    /// When, in milliseconds since the Unix epoch (UTC).
    pub created_at_ms: i64,
    /// Who last changed it.
    pub modifier: Option<String>,
    /// When, in milliseconds since the Unix epoch (UTC).
    pub modified_at_ms: i64,
}

impl StoredClient {
    /// The whole client document: the body with `client_id` (what the provider's `Client`
    /// deserializes from).
    pub fn document(&self) -> Map<String, Value> {
        let mut document = self.body.clone();
        document.insert("client_id".into(), Value::String(self.client_id.clone()));
        document
    }

    fn read(row: &AnyRow, backend: Backend) -> Result<Self, ClientError> {
        let get = |e: sqlx::Error| database(backend, "reading OIDC clients", &e);
        let client_id: String = row.try_get("client_id").map_err(get)?;
        let body: String = row.try_get("body").map_err(get)?;
        let Ok(Value::Object(body)) = serde_json::from_str::<Value>(&body) else {
            return Err(ClientError::StoredBody { client_id });
        };
        Ok(Self {
            client_id,
            body,
            enabled: row.try_get::<i64, _>("enabled").map_err(get)? != 0,
            revision: row.try_get("revision").map_err(get)?,
            creator: row.try_get("creator").map_err(get)?,
            created_at_ms: row.try_get("created_at").map_err(get)?,
            modifier: row.try_get("modifier").map_err(get)?,
            modified_at_ms: row.try_get("modified_at").map_err(get)?,
        })
    }
}

impl fmt::Debug for StoredClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut body = self.body.clone();
        if let Some(hash) = body.get_mut(SECRET_HASH)
            && !hash.is_null()
        {
            *hash = Value::String("***".into());
        }
        f.debug_struct("StoredClient")
            .field("client_id", &self.client_id)
            .field("body", &Value::Object(body))
            .field("enabled", &self.enabled)
            .field("revision", &self.revision)
            .field("creator", &self.creator)
            .field("created_at_ms", &self.created_at_ms)
            .field("modifier", &self.modifier)
            .field("modified_at_ms", &self.modified_at_ms)
            .finish()
    }
}

/// The client table's queries, in one backend's dialect.
pub(crate) struct ClientQueries {
    select_live: Arc<str>,
    select_one: Arc<str>,
    /// The row of an id, live or deleted, with `deleted_at`.
    select_any: Arc<str>,
    /// Binds: client_id, body, enabled, creator, created_at, modifier, modified_at.
    insert: Arc<str>,
    /// Brings a deleted row back to life. Binds: body, enabled, creator, created_at, modifier,
    /// modified_at, client_id, expected revision.
    revive: Arc<str>,
    /// Binds: body, enabled, modifier, modified_at, client_id, expected revision.
    update: Arc<str>,
    /// Binds: deleted_at, modifier, modified_at, client_id, expected revision.
    soft_delete: Arc<str>,
    /// Binds: at, actor, tenant, platform, client_id, action, revision, changes.
    insert_audit: Arc<str>,
    fingerprint: Arc<str>,
}

const COLUMNS: &str =
    "client_id, body, enabled, revision, creator, created_at, modifier, modified_at";

impl ClientQueries {
    pub(crate) fn new(b: Backend) -> Self {
        Self {
            select_live: b.sql(&format!(
                "SELECT {COLUMNS} FROM {CLIENT_TABLE} WHERE deleted_at = 0"
            )),
            select_one: b.sql(&format!(
                "SELECT {COLUMNS} FROM {CLIENT_TABLE} WHERE client_id = ? AND deleted_at = 0"
            )),
            select_any: b.sql(&format!(
                "SELECT {COLUMNS}, deleted_at FROM {CLIENT_TABLE} WHERE client_id = ?"
            )),
            insert: b.sql(&format!(
                "INSERT INTO {CLIENT_TABLE} (client_id, body, enabled, creator, created_at, modifier, modified_at, revision, deleted_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, 1, 0)"
            )),
            revive: b.sql(&format!(
                "UPDATE {CLIENT_TABLE} SET body = ?, enabled = ?, creator = ?, created_at = ?, modifier = ?, modified_at = ?, deleted_at = 0, revision = revision + 1 \
                 WHERE client_id = ? AND revision = ? AND deleted_at <> 0"
            )),
            update: b.sql(&format!(
                "UPDATE {CLIENT_TABLE} SET body = ?, enabled = ?, modifier = ?, modified_at = ?, revision = revision + 1 \
                 WHERE client_id = ? AND revision = ? AND deleted_at = 0"
            )),
            soft_delete: b.sql(&format!(
                "UPDATE {CLIENT_TABLE} SET deleted_at = ?, modifier = ?, modified_at = ?, revision = revision + 1 \
                 WHERE client_id = ? AND revision = ? AND deleted_at = 0"
            )),
            insert_audit: b.sql(&format!(
                "INSERT INTO {AUDIT_TABLE} (at, actor, tenant_id, platform, client_id, action, revision, changes) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
            )),
            // CAST: the sum's type differs by database (NUMERIC in PostgreSQL, DECIMAL in MySQL).
            fingerprint: b.sql(&format!(
                "SELECT COUNT(*) AS n, CAST(COALESCE(SUM(revision), 0) AS {int}) AS revisions, CAST(COALESCE(MAX(modified_at), 0) AS {int}) AS modified FROM {CLIENT_TABLE}",
                int = match b {
                    Backend::MySql => "SIGNED",
                    _ => "BIGINT",
                }
            )),
        }
    }
}

/// Checks a client id: 1 to 128 of `A-Z a-z 0-9 . _ ~ -` (RFC 3986 unreserved characters).
fn check_id(client_id: &str) -> Result<(), ClientError> {
    if client_id.is_empty() {
        return Err(ClientError::InvalidId {
            reason: "must not be empty",
        });
    }
    if client_id.len() > MAX_CLIENT_ID {
        return Err(ClientError::InvalidId {
            reason: "must be at most 128 characters",
        });
    }
    if !client_id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'~' | b'-'))
    {
        return Err(ClientError::InvalidId {
            reason: "may only hold ASCII letters, digits, `.`, `_`, `~` and `-`",
        });
    }
    Ok(())
}

/// Checks a client document and returns it as stored, with its JSON text: no
/// `client_secret`, a well-formed `client_secret_sha256` if any, a `client_id` (dropped) only
/// if it is `client_id`, and at most [`MAX_CLIENT_BODY`] bytes without it.
fn check_body(
    client_id: &str,
    mut body: Map<String, Value>,
) -> Result<(Map<String, Value>, String), ClientError> {
    if body.contains_key(PLAIN_SECRET) {
        return Err(ClientError::PlainSecret);
    }
    match body.get(SECRET_HASH) {
        None | Some(Value::Null) => {}
        Some(Value::String(hash))
            if hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()) => {}
        Some(_) => return Err(ClientError::BadSecretHash),
    }
    match body.remove("client_id") {
        None => {}
        Some(Value::String(id)) if id == client_id => {}
        Some(_) => {
            return Err(ClientError::IdMismatch {
                client_id: client_id.to_string(),
            });
        }
    }
    let text = Value::Object(body.clone()).to_string();
    if text.len() > MAX_CLIENT_BODY {
        return Err(ClientError::TooLarge { bytes: text.len() });
    }
    Ok((body, text))
}

fn check_author(actor: &str) -> Result<(), ClientError> {
    check_actor(actor).map_err(|_| ClientError::InvalidActor)
}

/// What changed from `before` to `after` (documents and enabled flags; `None`: the client did
/// not exist / no longer exists), field by field: `{field: {"from": old, "to": new}}`,
/// `{"to": new}` for a new client, and `client_secret_sha256` as `"set"`, `"changed"` or
/// `"removed"`.
fn diff(
    before: Option<(&Map<String, Value>, bool)>,
    after: Option<(&Map<String, Value>, bool)>,
) -> Value {
    let mut out = Map::new();
    match (before, after) {
        (None, Some((new, enabled))) => {
            out.insert("enabled".into(), json!({ "to": enabled }));
            for (name, value) in new.iter().filter(|(_, v)| !v.is_null()) {
                let shown = if name == SECRET_HASH {
                    json!("set")
                } else {
                    json!({ "to": value })
                };
                out.insert(name.clone(), shown);
            }
        }
        (Some((old, was)), Some((new, enabled))) => {
            if was != enabled {
                out.insert("enabled".into(), json!({ "from": was, "to": enabled }));
            }
            let names: std::collections::BTreeSet<&String> = old.keys().chain(new.keys()).collect();
            for name in names {
                let a = old.get(name).unwrap_or(&Value::Null);
                let b = new.get(name).unwrap_or(&Value::Null);
                if a == b {
                    continue;
                }
                if name == SECRET_HASH {
                    let what = match (a.is_null(), b.is_null()) {
                        (true, _) => "set",
                        (_, true) => "removed",
                        _ => "changed",
                    };
                    out.insert(name.clone(), json!(what));
                } else {
                    out.insert(name.clone(), json!({ "from": a, "to": b }));
                }
            }
        }
        (Some(_), None) | (None, None) => {}
    }
    Value::Object(out)
}

/// A row of the client table, live or deleted.
struct AnyClient {
    client: StoredClient,
    deleted: bool,
}

impl SqlConfigStore {
    /// Creates OIDC client `client_id` with the client document `body` (validated by the
    /// provider; here: no `client_secret`, a `client_secret_sha256` of 64 hex digits if any,
    /// a `client_id` field only if it is `client_id`, at most [`MAX_CLIENT_BODY`] bytes),
    /// enabled. A deleted client's id may be used again: the row comes back with its revision
    /// counting on, so a revision read before the delete never applies to it.
    ///
    /// ```no_run
    /// # async fn demo(store: unilogin_sql::SqlConfigStore) -> Result<(), unilogin_sql::ClientError> {
    /// use serde_json::{Map, json};
    /// let mut body = Map::new();
    /// body.insert("redirect_uris".into(), json!(["https://grafana.example/login/generic_oauth"]));
    /// body.insert("client_secret_sha256".into(), json!("9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"));
    /// let created = store.create_client("grafana", body, "admin@example").await?;
    /// assert_eq!(created.revision, 1);
    /// # Ok(()) }
    /// ```
    pub async fn create_client(
        &self,
        client_id: &str,
        body: Map<String, Value>,
        actor: &str,
    ) -> Result<StoredClient, ClientError> {
        check_id(client_id)?;
        check_author(actor)?;
        let (stored, text) = check_body(client_id, body)?;
        let queries = &self.queries.clients;
        let existing = self.fetch_any_client(client_id).await?;
        let revision = match &existing {
            Some(row) if !row.deleted => {
                return Err(ClientError::AlreadyExists {
                    client_id: client_id.to_string(),
                });
            }
            Some(row) => row.client.revision + 1,
            None => 1,
        };
        let doing = "creating an OIDC client";
        let now = now_ms();
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(|e| database(self.backend, doing, &e))?;
        match &existing {
            Some(row) => {
                let done = sqlx::query(q(&queries.revive))
                    .bind(text)
                    .bind(1_i64)
                    .bind(actor.to_string())
                    .bind(now)
                    .bind(Some(actor.to_string()))
                    .bind(now)
                    .bind(client_id.to_string())
                    .bind(row.client.revision)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| database(self.backend, doing, &e))?;
                if done.rows_affected() != 1 {
                    // Re-created (or changed) by someone else meanwhile.
                    return Err(ClientError::AlreadyExists {
                        client_id: client_id.to_string(),
                    });
                }
            }
            None => {
                let result = sqlx::query(q(&queries.insert))
                    .bind(client_id.to_string())
                    .bind(text)
                    .bind(1_i64)
                    .bind(actor.to_string())
                    .bind(now)
                    .bind(Some(actor.to_string()))
                    .bind(now)
                    .execute(&mut *tx)
                    .await;
                if let Err(e) = result {
                    // The primary key settles a race with a concurrent create.
                    if let sqlx::Error::Database(db) = &e
                        && db.is_unique_violation()
                    {
                        return Err(ClientError::AlreadyExists {
                            client_id: client_id.to_string(),
                        });
                    }
                    return Err(database(self.backend, doing, &e));
                }
            }
        }
        let changes = diff(None, Some((&stored, true)));
        self.record_client(&mut tx, actor, client_id, "create", revision, &changes)
            .await?;
        tx.commit()
            .await
            .map_err(|e| database(self.backend, doing, &e))?;
        self.require_client(client_id).await
    }

    /// Replaces the document of client `client_id` with `body` (checked as for
    /// [`create_client`](Self::create_client); the enabled flag is kept). Refused with
    /// [`ClientError::Conflict`] if the client's revision is not `expected_revision` (it
    /// changed since it was read: read it again and retry).
    pub async fn update_client(
        &self,
        client_id: &str,
        body: Map<String, Value>,
        expected_revision: i64,
        actor: &str,
    ) -> Result<StoredClient, ClientError> {
        check_id(client_id)?;
        check_author(actor)?;
        let (stored, text) = check_body(client_id, body)?;
        let current = self.require_client(client_id).await?;
        if current.revision != expected_revision {
            return Err(ClientError::Conflict {
                client_id: client_id.to_string(),
                expected: expected_revision,
                found: Some(current.revision),
            });
        }
        let changes = diff(
            Some((&current.body, current.enabled)),
            Some((&stored, current.enabled)),
        );
        self.write_client(&current, text, current.enabled, actor, "update", &changes)
            .await?;
        self.require_client(client_id).await
    }

    /// Enables or disables client `client_id` (a disabled client signs nobody in; the
    /// provider drops it at its next reload). Setting the flag it has already changes nothing
    /// (no new revision, no audit entry).
    pub async fn set_client_enabled(
        &self,
        client_id: &str,
        enabled: bool,
        actor: &str,
    ) -> Result<StoredClient, ClientError> {
        check_id(client_id)?;
        check_author(actor)?;
        let current = self.require_client(client_id).await?;
        if current.enabled == enabled {
            return Ok(current);
        }
        let text = Value::Object(current.body.clone()).to_string();
        let changes = json!({ "enabled": { "from": current.enabled, "to": enabled } });
        let action = if enabled { "enable" } else { "disable" };
        self.write_client(&current, text, enabled, actor, action, &changes)
            .await?;
        self.require_client(client_id).await
    }

    /// Soft-deletes client `client_id` (kept with `deleted_at` set; the id may be created
    /// again).
    pub async fn delete_client(&self, client_id: &str, actor: &str) -> Result<(), ClientError> {
        check_id(client_id)?;
        check_author(actor)?;
        let current = self.require_client(client_id).await?;
        let doing = "deleting an OIDC client";
        let now = now_ms();
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(|e| database(self.backend, doing, &e))?;
        let done = sqlx::query(q(&self.queries.clients.soft_delete))
            .bind(now)
            .bind(Some(actor.to_string()))
            .bind(now)
            .bind(client_id.to_string())
            .bind(current.revision)
            .execute(&mut *tx)
            .await
            .map_err(|e| database(self.backend, doing, &e))?;
        if done.rows_affected() != 1 {
            drop(tx);
            return Err(self.conflict(&current).await);
        }
        self.record_client(
            &mut tx,
            actor,
            client_id,
            "delete",
            current.revision + 1,
            &json!({}),
        )
        .await?;
        tx.commit()
            .await
            .map_err(|e| database(self.backend, doing, &e))
    }

    /// The live client `client_id` (enabled or not).
    pub async fn get_client(&self, client_id: &str) -> Result<Option<StoredClient>, ClientError> {
        check_id(client_id)?;
        let row = sqlx::query(q(&self.queries.clients.select_one))
            .bind(client_id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| database(self.backend, "reading OIDC clients", &e))?;
        row.as_ref()
            .map(|r| StoredClient::read(r, self.backend))
            .transpose()
    }

    /// Every live client, enabled and disabled, ordered by client id (bytewise). A row whose
    /// document is not a JSON object (edited by other means) is skipped with a warning naming
    /// the client: it signs nobody in until it is fixed.
    pub async fn list_clients(&self) -> Result<Vec<StoredClient>, ClientError> {
        let rows = sqlx::query(q(&self.queries.clients.select_live))
            .fetch_all(&self.pool)
            .await
            .map_err(|e| database(self.backend, "reading OIDC clients", &e))?;
        let mut clients = Vec::with_capacity(rows.len());
        for row in &rows {
            match StoredClient::read(row, self.backend) {
                Ok(client) => clients.push(client),
                Err(ClientError::StoredBody { client_id }) => tracing::warn!(
                    client_id = %client_id,
                    "OIDC client skipped: its stored document is not a JSON object"
                ),
                Err(e) => return Err(e),
            }
        }
        clients.sort_by(|a, b| a.client_id.cmp(&b.client_id));
        Ok(clients)
    }

    /// The client table's change fingerprint, `"<rows>:<sum of revisions>:<latest
    /// modified_at>"` (deleted rows included): one cheap query whose answer moves with every
    /// change made through this API (each bumps a revision), and with a row inserted, deleted
    /// or edited by hand that bumps `revision` or `modified_at`. Poll it and reload the
    /// clients only when it differs from the last one seen.
    pub async fn clients_fingerprint(&self) -> Result<String, ClientError> {
        let doing = "checking OIDC clients for changes";
        let row = sqlx::query(q(&self.queries.clients.fingerprint))
            .fetch_one(&self.pool)
            .await
            .map_err(|e| database(self.backend, doing, &e))?;
        let read = |name: &str| {
            row.try_get::<i64, _>(name)
                .map_err(|e| database(self.backend, doing, &e))
        };
        Ok(format!(
            "{}:{}:{}",
            read("n")?,
            read("revisions")?,
            read("modified")?
        ))
    }

    async fn require_client(&self, client_id: &str) -> Result<StoredClient, ClientError> {
        self.get_client(client_id)
            .await?
            .ok_or_else(|| ClientError::NotFound {
                client_id: client_id.to_string(),
            })
    }

    async fn fetch_any_client(&self, client_id: &str) -> Result<Option<AnyClient>, ClientError> {
        let doing = "reading OIDC clients";
        let row = sqlx::query(q(&self.queries.clients.select_any))
            .bind(client_id.to_string())
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| database(self.backend, doing, &e))?;
        let Some(row) = row else {
            return Ok(None);
        };
        let deleted = row
            .try_get::<i64, _>("deleted_at")
            .map_err(|e| database(self.backend, doing, &e))?
            != 0;
        let client = match StoredClient::read(&row, self.backend) {
            Ok(client) => client,
            // A deleted row's old document does not matter; a live one's is an error.
            Err(ClientError::StoredBody { .. }) if deleted => StoredClient {
                client_id: client_id.to_string(),
                body: Map::new(),
                enabled: false,
                revision: row
                    .try_get("revision")
                    .map_err(|e| database(self.backend, doing, &e))?,
                creator: String::new(),
                created_at_ms: 0,
                modifier: None,
                modified_at_ms: 0,
            },
            Err(e) => return Err(e),
        };
        Ok(Some(AnyClient { client, deleted }))
    }

    /// The conflict error for a write based on `current` that matched no row.
    async fn conflict(&self, current: &StoredClient) -> ClientError {
        match self.get_client(&current.client_id).await {
            Ok(now) => ClientError::Conflict {
                client_id: current.client_id.clone(),
                expected: current.revision,
                found: now.map(|c| c.revision),
            },
            Err(e) => e,
        }
    }

    /// Writes `text` and `enabled` over `current` if its revision is unchanged (else a
    /// conflict), and the audit entry of `action` with `changes`, in one transaction.
    async fn write_client(
        &self,
        current: &StoredClient,
        text: String,
        enabled: bool,
        actor: &str,
        action: &str,
        changes: &Value,
    ) -> Result<(), ClientError> {
        let doing = "updating an OIDC client";
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(|e| database(self.backend, doing, &e))?;
        let done = sqlx::query(q(&self.queries.clients.update))
            .bind(text)
            .bind(i64::from(enabled))
            .bind(Some(actor.to_string()))
            .bind(now_ms())
            .bind(current.client_id.clone())
            .bind(current.revision)
            .execute(&mut *tx)
            .await
            .map_err(|e| database(self.backend, doing, &e))?;
        if done.rows_affected() != 1 {
            drop(tx);
            return Err(self.conflict(current).await);
        }
        self.record_client(
            &mut tx,
            actor,
            &current.client_id,
            action,
            current.revision + 1,
            changes,
        )
        .await?;
        tx.commit()
            .await
            .map_err(|e| database(self.backend, doing, &e))
    }

    /// Writes one audit log entry for a client change inside `tx`.
    async fn record_client(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        actor: &str,
        client_id: &str,
        action: &str,
        revision: i64,
        changes: &Value,
    ) -> Result<(), ClientError> {
        sqlx::query(q(&self.queries.clients.insert_audit))
            .bind(now_ms())
            .bind(actor.to_string())
            .bind(String::new())
            .bind(CLIENT_AUDIT_PLATFORM.to_string())
            .bind(Some(client_id.to_string()))
            .bind(action.to_string())
            .bind(revision)
            .bind(changes.to_string())
            .execute(&mut **tx)
            .await
            .map_err(|e| database(self.backend, "writing the audit log", &e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH_A: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
    const HASH_B: &str = "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752";

    fn body(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            other => panic!("not an object: {other}"),
        }
    }

    #[test]
    fn client_ids_are_unreserved_tokens_of_at_most_128() {
        for good in ["grafana", "a", "GitLab-1.2_x~y", &"x".repeat(128)] {
            assert_eq!(check_id(good), Ok(()), "{good}");
        }
        for bad in ["", "a b", "a/b", "grafana\n", "é", "a:b", &"x".repeat(129)] {
            assert!(
                matches!(check_id(bad), Err(ClientError::InvalidId { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_plain_secret_is_refused_without_echoing_it() {
        let e = check_body(
            "grafana",
            body(json!({"client_secret": "hunter2-plain", "redirect_uris": []})),
        )
        .unwrap_err();
        assert_eq!(e, ClientError::PlainSecret);
        let text = e.to_string();
        assert!(
            text.contains("store client_secret_sha256, never the secret"),
            "{text}"
        );
        assert!(!text.contains("hunter2"), "{text}");
        // Even a null one: the field has no business in the table.
        assert_eq!(
            check_body("grafana", body(json!({"client_secret": null}))),
            Err(ClientError::PlainSecret)
        );
        let core: unilogin_core::Error = e.into();
        assert!(
            matches!(&core, unilogin_core::Error::Config { field, .. } if field == "client_secret"),
            "{core:?}"
        );
    }

    #[test]
    fn the_secret_hash_must_look_like_one() {
        assert!(check_body("c", body(json!({ SECRET_HASH: HASH_A }))).is_ok());
        assert!(check_body("c", body(json!({ SECRET_HASH: HASH_A.to_uppercase() }))).is_ok());
        assert!(check_body("c", body(json!({ SECRET_HASH: null }))).is_ok());
        for bad in [
            json!("the-secret-itself"),
            json!(&HASH_A[1..]),
            json!(format!("{}zz", &HASH_A[2..])),
            json!(42),
        ] {
            let e = check_body("c", body(json!({ SECRET_HASH: bad.clone() }))).unwrap_err();
            assert_eq!(e, ClientError::BadSecretHash, "{bad}");
            assert!(!e.to_string().contains("the-secret-itself"));
        }
    }

    #[test]
    fn client_id_in_the_body_must_match_and_is_not_stored() {
        let (stored, text) = check_body(
            "grafana",
            body(json!({"client_id": "grafana", "scopes": ["openid"]})),
        )
        .unwrap();
        assert_eq!(text, r#"{"scopes":["openid"]}"#);
        assert!(!stored.contains_key("client_id"));
        assert_eq!(
            check_body("grafana", body(json!({"client_id": "gitlab"}))),
            Err(ClientError::IdMismatch {
                client_id: "grafana".into()
            })
        );
        assert!(matches!(
            check_body("grafana", body(json!({"client_id": 7}))),
            Err(ClientError::IdMismatch { .. })
        ));
    }

    #[test]
    fn documents_are_bounded_at_16_kib() {
        assert_eq!(MAX_CLIENT_BODY, 16_384);
        // `{"pad":"…"}` is 10 bytes of JSON around the padding.
        let fits = body(json!({"pad": "x".repeat(MAX_CLIENT_BODY - 10)}));
        assert_eq!(check_body("c", fits).unwrap().1.len(), MAX_CLIENT_BODY);
        let over = body(json!({"pad": "x".repeat(MAX_CLIENT_BODY - 9)}));
        assert_eq!(
            check_body("c", over),
            Err(ClientError::TooLarge {
                bytes: MAX_CLIENT_BODY + 1
            })
        );
    }

    #[test]
    fn debug_redacts_the_secret_hash() {
        let client = StoredClient {
            client_id: "grafana".into(),
            body: body(json!({ SECRET_HASH: HASH_A, "scopes": ["openid"] })),
            enabled: true,
            revision: 3,
            creator: "alice".into(),
            created_at_ms: 1,
            modifier: Some("bob".into()),
            modified_at_ms: 2,
        };
        let text = format!("{client:?}");
        assert!(!text.contains(&HASH_A[..16]), "{text}");
        assert!(text.contains("***") && text.contains("openid") && text.contains("grafana"));
        // The value itself is untouched.
        assert_eq!(client.body[SECRET_HASH], HASH_A);
        assert_eq!(client.document()["client_id"], "grafana");
        assert!(!client.body.contains_key("client_id"));
    }

    #[test]
    fn diffs_show_the_hash_as_changed_never_its_value() {
        let a = body(json!({ SECRET_HASH: HASH_A, "scopes": ["openid"] }));
        let b = body(json!({ SECRET_HASH: HASH_B, "scopes": ["openid", "email"] }));
        let created = diff(None, Some((&a, true)));
        assert_eq!(created[SECRET_HASH], "set");
        assert_eq!(created["scopes"], json!({"to": ["openid"]}));
        assert_eq!(created["enabled"], json!({"to": true}));
        let changed = diff(Some((&a, true)), Some((&b, true)));
        assert_eq!(changed[SECRET_HASH], "changed");
        assert_eq!(
            changed["scopes"],
            json!({"from": ["openid"], "to": ["openid", "email"]})
        );
        assert_eq!(changed.as_object().unwrap().len(), 2, "{changed}");
        let public = body(json!({"scopes": ["openid"]}));
        let removed = diff(Some((&a, true)), Some((&public, false)));
        assert_eq!(removed[SECRET_HASH], "removed");
        assert_eq!(removed["enabled"], json!({"from": true, "to": false}));
        assert_eq!(
            diff(Some((&public, true)), Some((&a, true)))[SECRET_HASH],
            "set"
        );
        assert_eq!(diff(Some((&a, true)), Some((&a, true))), json!({}));
        for text in [created, changed, removed].map(|v| v.to_string()) {
            assert!(
                !text.contains(&HASH_A[..16]) && !text.contains(&HASH_B[..16]),
                "{text}"
            );
        }
    }

    #[test]
    fn core_errors_keep_conflicts_recognisable() {
        let e: unilogin_core::Error = ClientError::Conflict {
            client_id: "grafana".into(),
            expected: 1,
            found: Some(2),
        }
        .into();
        assert!(
            matches!(&e, unilogin_core::Error::Config { field, .. } if field == "revision"),
            "{e:?}"
        );
        assert!(
            e.to_string().contains("expected revision 1, found 2"),
            "{e}"
        );
        let e: unilogin_core::Error = ClientError::Database("down".into()).into();
        assert!(matches!(e, unilogin_core::Error::Internal(_)));
    }
}
