//! The audit log (table [`AUDIT_TABLE`](crate::AUDIT_TABLE)): one entry per change made
//! through the admin API, written in the same transaction as the change — who, when, which
//! action, the row's revision after it, and what changed field by field. Secrets never enter
//! it: a changed `app_secret`, `events.token` or `events.key` is recorded as `"changed"` (or
//! `"set"` / `"removed"`), whatever it was changed to. Changes to OIDC clients are entries
//! too: empty tenant, platform [`CLIENT_AUDIT_PLATFORM`](crate::CLIENT_AUDIT_PLATFORM),
//! [`AuditEntry::client_id`] set, `client_secret_sha256` shown as `"set"` / `"changed"` /
//! `"removed"`.

use serde_json::{Map, Value, json};
use sqlx::Row;
use sqlx::any::AnyRow;
use unilogin_core::{PlatformName, Result, TenantId};

use crate::SqlConfigStore;
use crate::dialect::{AUDIT_TABLE, db_error, q};
use crate::rows::RawRow;

/// One audit log entry.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    /// Entry id (increasing).
    pub id: i64,
    /// When, in milliseconds since the Unix epoch (UTC).
    pub at_ms: i64,
    /// Who made the change (the actor given to the admin call).
    pub actor: String,
    /// The tenant (empty for a change to an OIDC client: clients are not a tenant's).
    pub tenant: String,
    /// The platform ([`CLIENT_AUDIT_PLATFORM`](crate::CLIENT_AUDIT_PLATFORM) for a change to
    /// an OIDC client).
    pub platform: String,
    /// The OIDC client a change was made to (`None` for a platform configuration change).
    pub client_id: Option<String>,
    /// `create`, `update`, `enable`, `disable`, `deprecate`, `undeprecate`, `delete` or
    /// `reencrypt`.
    pub action: String,
    /// The row's revision after the change.
    pub revision: i64,
    /// What changed: `{field: {"from": old, "to": new}}` for ordinary fields (the receiver id
    /// as `events.receiver_id`), `{"app_secret": "set" | "changed" | "re-encrypted"}` for the
    /// secret, and `{"events.token" | "events.key": "set" | "changed" | "removed" |
    /// "re-encrypted"}` for the event credentials.
    pub changes: Value,
}

/// Which entries [`SqlConfigStore::audit`] lists: newest first.
#[derive(Debug, Clone)]
pub struct AuditQuery {
    /// Only these tenants (`None`: every tenant).
    pub tenants: Option<Vec<TenantId>>,
    /// Only this platform.
    pub platform: Option<PlatformName>,
    /// Only entries older than this id (paging: the last id of the previous page).
    pub before_id: Option<i64>,
    /// At most this many entries (capped at 1,000).
    pub limit: u32,
}

impl Default for AuditQuery {
    fn default() -> Self {
        Self {
            tenants: None,
            platform: None,
            before_id: None,
            limit: 100,
        }
    }
}

/// The largest page [`SqlConfigStore::audit`] returns.
pub const MAX_AUDIT_PAGE: u32 = 1000;

fn json_text(text: Option<&str>) -> Value {
    match text {
        None => Value::Null,
        Some(t) if t.trim().is_empty() => Value::Null,
        Some(t) => serde_json::from_str(t).unwrap_or_else(|_| Value::String(t.to_string())),
    }
}

/// The non-secret fields of a row as JSON values, by field name.
fn fields(row: &RawRow) -> Vec<(&'static str, Value)> {
    vec![
        ("mode", json!(row.mode)),
        ("enabled", json!(row.enabled)),
        ("deprecated", json!(row.deprecated)),
        ("app_key", json!(row.app_key)),
        ("corp_id", json!(row.corp_id)),
        ("agent_id", json!(row.agent_id)),
        ("hosts", json_text(Some(&row.hosts))),
        ("mapping", json_text(row.mapping.as_deref())),
        ("session_scopes", json_text(row.session_scopes.as_deref())),
        ("events.receiver_id", json!(row.event_receiver_id)),
        ("redirect_uris", json_text(Some(&row.redirect_uris))),
        ("options", json_text(Some(&row.options))),
        ("sort", json!(row.sort)),
    ]
}

/// The stored event credentials of a row (encrypted values or references), by field name:
/// compared, never recorded.
fn event_secrets(row: &RawRow) -> [(&'static str, Option<&str>); 3] {
    [
        ("events.token", row.event_token.as_deref()),
        ("events.key", row.event_key.as_deref()),
        ("permanent_code", row.permanent_code.as_deref()),
    ]
}

/// What changed from `before` to `after` (`None`: the row did not exist / no longer exists).
pub(crate) fn diff(before: Option<&RawRow>, after: Option<&RawRow>) -> Value {
    let mut out = Map::new();
    match (before, after) {
        (None, Some(new)) => {
            for (name, value) in fields(new) {
                if !value.is_null() {
                    out.insert(name.into(), json!({ "to": value }));
                }
            }
            out.insert("app_secret".into(), json!("set"));
            for (name, value) in event_secrets(new) {
                if value.is_some() {
                    out.insert(name.into(), json!("set"));
                }
            }
        }
        (Some(old), Some(new)) => {
            for ((name, a), (_, b)) in fields(old).into_iter().zip(fields(new)) {
                if a != b {
                    out.insert(name.into(), json!({ "from": a, "to": b }));
                }
            }
            if old.app_secret != new.app_secret {
                out.insert("app_secret".into(), json!("changed"));
            }
            for ((name, a), (_, b)) in event_secrets(old).into_iter().zip(event_secrets(new)) {
                let what = match (a, b) {
                    (None, Some(_)) => "set",
                    (Some(_), None) => "removed",
                    (Some(a), Some(b)) if a != b => "changed",
                    _ => continue,
                };
                out.insert(name.into(), json!(what));
            }
        }
        (Some(_), None) | (None, None) => {}
    }
    Value::Object(out)
}

impl AuditEntry {
    fn read(row: &AnyRow) -> std::result::Result<Self, sqlx::Error> {
        let changes: String = row.try_get("changes")?;
        Ok(Self {
            id: row.try_get("id")?,
            at_ms: row.try_get("at")?,
            actor: row.try_get("actor")?,
            tenant: row.try_get("tenant_id")?,
            platform: row.try_get("platform")?,
            client_id: row.try_get("client_id")?,
            action: row.try_get("action")?,
            revision: row.try_get("revision")?,
            changes: serde_json::from_str(&changes).unwrap_or(Value::String(changes)),
        })
    }
}

impl SqlConfigStore {
    /// Audit log entries, newest first (see [`AuditQuery`]).
    pub async fn audit(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>> {
        let mut conditions = Vec::new();
        if let Some(tenants) = &query.tenants {
            if tenants.is_empty() {
                return Ok(Vec::new());
            }
            conditions.push(format!(
                "tenant_id IN ({})",
                vec!["?"; tenants.len()].join(", ")
            ));
        }
        if query.platform.is_some() {
            conditions.push("platform = ?".into());
        }
        if query.before_id.is_some() {
            conditions.push("id < ?".into());
        }
        let filter = if conditions.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conditions.join(" AND "))
        };
        let limit = query.limit.clamp(1, MAX_AUDIT_PAGE);
        // Only placeholders and constants go into the text; values are bound.
        let text = self.backend.sql(&format!(
            "SELECT id, at, actor, tenant_id, platform, client_id, action, revision, changes FROM {AUDIT_TABLE} {filter} ORDER BY id DESC LIMIT {limit}"
        ));
        let mut select = sqlx::query(q(&text));
        for t in query.tenants.iter().flatten() {
            select = select.bind(t.as_str().to_string());
        }
        if let Some(p) = &query.platform {
            select = select.bind(p.as_str().to_string());
        }
        if let Some(id) = query.before_id {
            select = select.bind(id);
        }
        let rows = select
            .fetch_all(&self.pool)
            .await
            .map_err(|e| db_error(self.backend, "reading the audit log", &e))?;
        rows.iter()
            .map(AuditEntry::read)
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| db_error(self.backend, "reading the audit log", &e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(secret: &str, uris: &str) -> RawRow {
        RawRow {
            id: 1,
            tenant: "acme".into(),
            platform: "dingtalk".into(),
            mode: None,
            enabled: true,
            app_key: "k".into(),
            app_secret: secret.into(),
            corp_id: None,
            agent_id: None,
            hosts: "{}".into(),
            mapping: None,
            session_scopes: None,
            identity_policy: None,
            event_token: None,
            event_key: None,
            event_receiver_id: None,
            permanent_code: None,
            redirect_uris: uris.into(),
            options: "{}".into(),
            sort: 0,
            deprecated: false,
            creator: String::new(),
            created_at: 0,
            modifier: None,
            modified_at: 0,
            revision: 1,
        }
    }

    #[test]
    fn diffs_name_fields_and_never_hold_the_secret() {
        let a = row("enc:v1:k1:aa:bb", r#"["https://a.example/"]"#);
        let b = row("enc:v1:k1:cc:dd", r#"["https://b.example/"]"#);
        let d = diff(Some(&a), Some(&b));
        assert_eq!(d["app_secret"], "changed");
        assert_eq!(d["redirect_uris"]["from"][0], "https://a.example/");
        assert_eq!(d["redirect_uris"]["to"][0], "https://b.example/");
        assert_eq!(d.as_object().unwrap().len(), 2, "{d}");
        let created = diff(None, Some(&a)).to_string();
        assert!(created.contains("\"app_secret\":\"set\""), "{created}");
        assert!(!created.contains("enc:v1") && !d.to_string().contains("enc:v1"));
        assert_eq!(diff(Some(&a), None), json!({}));
    }

    #[test]
    fn a_permanent_code_is_audited_without_its_value() {
        let a = row("enc:v1:k1:aa:bb", "[]");
        let mut b = row("enc:v1:k1:aa:bb", "[]");
        b.permanent_code = Some("enc:v1:k1:33:permanent-ciphertext".into());
        let set = diff(Some(&a), Some(&b));
        assert_eq!(set, json!({ "permanent_code": "set" }));
        let mut c = row("enc:v1:k1:aa:bb", "[]");
        c.permanent_code = Some("enc:v1:k1:44:other-ciphertext".into());
        assert_eq!(
            diff(Some(&b), Some(&c)),
            json!({ "permanent_code": "changed" })
        );
        assert_eq!(
            diff(Some(&c), Some(&a)),
            json!({ "permanent_code": "removed" })
        );
        assert!(!diff(None, Some(&c)).to_string().contains("ciphertext"));
    }

    #[test]
    fn event_credentials_are_audited_without_values() {
        let a = row("enc:v1:k1:aa:bb", "[]");
        let mut b = row("enc:v1:k1:aa:bb", "[]");
        b.event_token = Some("enc:v1:k1:11:token-ciphertext".into());
        b.event_key = Some("env:ACME_EVENT_KEY".into());
        b.event_receiver_id = Some("suite-1".into());
        let set = diff(Some(&a), Some(&b));
        assert_eq!(set["events.token"], "set");
        assert_eq!(set["events.key"], "set");
        assert_eq!(
            set["events.receiver_id"],
            json!({"from": null, "to": "suite-1"})
        );
        assert!(set.get("app_secret").is_none(), "{set}");
        let mut c = row("enc:v1:k1:aa:bb", "[]");
        c.event_token = Some("enc:v1:k1:22:other-ciphertext".into());
        c.event_receiver_id = Some("suite-1".into());
        let changed = diff(Some(&b), Some(&c));
        assert_eq!(changed["events.token"], "changed");
        assert_eq!(changed["events.key"], "removed");
        assert_eq!(changed.as_object().unwrap().len(), 2, "{changed}");
        let created = diff(None, Some(&b));
        assert_eq!(created["events.token"], "set");
        assert_eq!(created["events.receiver_id"], json!({"to": "suite-1"}));
        for text in [set.to_string(), changed.to_string(), created.to_string()] {
            assert!(
                !text.contains("ciphertext") && !text.contains("ACME_EVENT_KEY"),
                "{text}"
            );
        }
    }
}
