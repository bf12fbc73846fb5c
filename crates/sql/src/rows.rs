//! The row types and the conversions between a row and a [`PlatformConfig`]: [`RawRow`] (the
//! columns as stored) → [`ConfigRow`] (the admin listing) or → [`PlatformConfig`] (what the
//! loader serves), and [`Values`] (what the admin API writes) → [`RawRow`].

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{Map, Value};
use sqlx::Row;
use sqlx::any::AnyRow;
use unilogin_core::config::{EventSettings, PlatformConfig, SecretRef, SecretRefPolicy, shared};
use unilogin_core::identity::IdentityPolicy;
use unilogin_core::mapping::ScopeRules;
use unilogin_core::{AppKey, AppSecret, Error, PlatformName, Result, TenantId};
use url::Url;

use crate::cipher::SecretCipher;

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

/// A row's event subscription, as the admin listing shows it: how the token and the key are
/// kept (never their values) and the receiver id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvents {
    /// How the callback token is kept (`None`: not set).
    pub token: Option<StoredSecret>,
    /// How the encryption key is kept (`None`: not set).
    pub key: Option<StoredSecret>,
    /// The receiver id (`None`: the app key).
    pub receiver_id: Option<String>,
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
    /// Session scope rules (JSON as stored; a string if the column is not valid JSON).
    pub session_scopes: Option<Value>,
    /// The identity policy (`identity`: subject and linking rules; JSON as stored, a string if
    /// the column is not valid JSON). Set with SQL; the admin API keeps it as it is.
    pub identity: Option<Value>,
    /// The event subscription (`None`: the configuration receives no events).
    pub events: Option<StoredEvents>,
    /// How a store app's permanent code is kept (`None`: the configuration has none).
    pub permanent_code: Option<StoredSecret>,
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
pub(crate) struct RawRow {
    pub(crate) id: i64,
    pub(crate) tenant: String,
    pub(crate) platform: String,
    pub(crate) mode: Option<String>,
    pub(crate) enabled: bool,
    pub(crate) app_key: String,
    pub(crate) app_secret: String,
    pub(crate) corp_id: Option<String>,
    pub(crate) agent_id: Option<String>,
    pub(crate) hosts: String,
    pub(crate) mapping: Option<String>,
    pub(crate) session_scopes: Option<String>,
    /// JSON text of the `identity` policy; NULL = the defaults.
    pub(crate) identity_policy: Option<String>,
    /// `events.token` as stored (encrypted or a reference); NULL = none.
    pub(crate) event_token: Option<String>,
    /// `events.key` as stored (encrypted or a reference); NULL = none.
    pub(crate) event_key: Option<String>,
    /// `events.receiver_id`; NULL = the app key.
    pub(crate) event_receiver_id: Option<String>,
    /// `permanent_code` as stored (encrypted or a reference); NULL = none.
    pub(crate) permanent_code: Option<String>,
    pub(crate) redirect_uris: String,
    pub(crate) options: String,
    pub(crate) sort: i64,
    pub(crate) deprecated: bool,
    pub(crate) creator: String,
    pub(crate) created_at: i64,
    pub(crate) modifier: Option<String>,
    pub(crate) modified_at: i64,
    pub(crate) revision: i64,
}

impl RawRow {
    pub(crate) fn read(row: &AnyRow) -> std::result::Result<Self, sqlx::Error> {
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
            session_scopes: row.try_get("session_scopes")?,
            identity_policy: row.try_get("identity_policy")?,
            event_token: row.try_get("event_token")?,
            event_key: row.try_get("event_key")?,
            event_receiver_id: row.try_get("event_receiver_id")?,
            permanent_code: row.try_get("permanent_code")?,
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

    pub(crate) fn listing(&self) -> ConfigRow {
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
            session_scopes: self.session_scopes.as_deref().map(json),
            identity: self.identity_policy.as_deref().map(json),
            events: self.has_events().then(|| StoredEvents {
                token: self.event_token.as_deref().map(StoredSecret::of),
                key: self.event_key.as_deref().map(StoredSecret::of),
                receiver_id: self.event_receiver_id.clone(),
            }),
            permanent_code: self.permanent_code.as_deref().map(StoredSecret::of),
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

    /// Whether the row has an event subscription (any of its event columns is set).
    pub(crate) fn has_events(&self) -> bool {
        self.event_token.is_some() || self.event_key.is_some() || self.event_receiver_id.is_some()
    }

    /// The configuration this row describes, secret resolved (not yet validated).
    pub(crate) fn config(
        &self,
        tenant: &TenantId,
        platform: &PlatformName,
        cipher: &SecretCipher,
        refs: &SecretRefPolicy,
    ) -> Result<PlatformConfig> {
        let err = |field: &str, reason: String| {
            Error::config(Some(tenant), Some(platform.as_str()), field, reason)
        };
        let app_key = AppKey::new(&self.app_key).map_err(|e| err("app_key", e.to_string()))?;
        // Every stored secret the same way: decrypted, or a reference resolved under the
        // allow-list; anything else is refused naming the field.
        let secret = |stored: &str, field: &str| -> Result<AppSecret> {
            if SecretCipher::is_encrypted(stored) {
                return cipher.decrypt_field(stored, tenant, platform, field);
            }
            let reference = SecretRef::parse(stored);
            if !reference.is_reference() {
                return Err(err(
                    field,
                    "the column holds neither an encrypted value (`enc:v1:...`) nor a reference (`env:` / `file:`); plain secrets are never stored".into(),
                ));
            }
            reference
                .resolve_with(None, refs)
                .map_err(|reason| err(field, reason))
        };
        let app_secret = secret(&self.app_secret, "app_secret")?;
        let permanent_code = self
            .permanent_code
            .as_deref()
            .map(|s| secret(s, "permanent_code"))
            .transpose()?;
        let events = if self.has_events() {
            if self
                .event_receiver_id
                .as_deref()
                .is_some_and(|r| r.trim().is_empty())
            {
                return Err(err(
                    "events.receiver_id",
                    "must not be blank (leave it out: the app key is the default)".into(),
                ));
            }
            Some(EventSettings {
                token: self
                    .event_token
                    .as_deref()
                    .map(|s| secret(s, "events.token"))
                    .transpose()?,
                key: self
                    .event_key
                    .as_deref()
                    .map(|s| secret(s, "events.key"))
                    .transpose()?,
                receiver_id: self.event_receiver_id.clone(),
            })
        } else {
            None
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
        // As in the YAML source: absent, empty or `null` means no scope rules.
        let session_scopes = match &self.session_scopes {
            None => None,
            Some(text) if text.trim().is_empty() => None,
            Some(text) => match serde_json::from_str::<Value>(text) {
                Ok(Value::Null) => None,
                Ok(v) => Some(
                    ScopeRules::from_value(&v)
                        .map(|rules| shared::scope_rules(&v, rules))
                        .map_err(|e| err("session_scopes", e.0))?,
                ),
                Err(e) => return Err(err("session_scopes", format!("invalid JSON: {e}"))),
            },
        };
        // Absent, empty or `null`: the platform's default subject, no linking.
        let identity = match &self.identity_policy {
            None => IdentityPolicy::default(),
            Some(text) if text.trim().is_empty() => IdentityPolicy::default(),
            Some(text) => match serde_json::from_str::<Value>(text) {
                Ok(Value::Null) => IdentityPolicy::default(),
                Ok(v) => {
                    IdentityPolicy::deserialize(&v).map_err(|e| err("identity", e.to_string()))?
                }
                Err(e) => return Err(err("identity", format!("invalid JSON: {e}"))),
            },
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
            permanent_code,
            // Shared by content with every other row that has the same.
            hosts: shared::hosts(hosts),
            mapping: mapping.map(shared::value),
            redirect_uris,
            session_scopes,
            identity,
            options,
            events,
        })
    }
}

/// Column values to write (everything but identity and audit columns).
pub(crate) struct Values {
    pub(crate) mode: Option<String>,
    pub(crate) enabled: bool,
    pub(crate) deprecated: bool,
    pub(crate) app_key: AppKey,
    pub(crate) app_secret: String,
    pub(crate) corp_id: Option<String>,
    pub(crate) agent_id: Option<String>,
    pub(crate) hosts: BTreeMap<String, Url>,
    pub(crate) mapping: Option<Value>,
    pub(crate) session_scopes: Option<Value>,
    /// `events.token` in its stored form (encrypted or a checked reference).
    pub(crate) event_token: Option<String>,
    /// `events.key` in its stored form.
    pub(crate) event_key: Option<String>,
    pub(crate) event_receiver_id: Option<String>,
    /// `permanent_code` in its stored form.
    pub(crate) permanent_code: Option<String>,
    pub(crate) redirect_uris: Vec<String>,
    pub(crate) options: Map<String, Value>,
    pub(crate) sort: i64,
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

    pub(crate) fn raw(&self, tenant: &TenantId, platform: &PlatformName) -> RawRow {
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
            // JSON `null` means no rules: stored as SQL NULL.
            session_scopes: self
                .session_scopes
                .as_ref()
                .filter(|v| !v.is_null())
                .map(Value::to_string),
            // Not written by the admin API (an update keeps the stored value).
            identity_policy: None,
            event_token: self.event_token.clone(),
            event_key: self.event_key.clone(),
            event_receiver_id: self.event_receiver_id.clone(),
            permanent_code: self.permanent_code.clone(),
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
