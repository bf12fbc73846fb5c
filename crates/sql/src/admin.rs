//! The admin API of [`SqlConfigStore`]: create, update, enable/disable, deprecate, delete,
//! get/list and re-encrypt. Every change is validated exactly like a load, records its actor,
//! is refused if it raced another change (the `revision` check), and writes an audit log entry
//! in the same transaction (see [`SqlConfigStore::audit`]). Secret references are checked
//! against the store's allow-list ([`SqlConfigStore::with_secret_refs`]).

use std::collections::BTreeMap;
use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value, json};
use unilogin_core::config::SecretRef;
use unilogin_core::{AppKey, AppSecret, Error, PlatformName, Result, TenantId};
use url::Url;

use crate::SqlConfigStore;
use crate::cipher::SecretCipher;
use crate::dialect::{db_error, q};
use crate::rows::{ConfigRow, RawRow, Values};

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

/// A row's event subscription for [`SqlConfigStore::create`]: the credentials the platform's
/// console shows for the callback URL (see
/// [`EventSettings`](unilogin_core::config::EventSettings)). The token and the key are stored
/// like the app secret: encrypted, or as an allow-listed reference. At least one field must be
/// given.
///
/// ```
/// use unilogin_core::AppSecret;
/// use unilogin_sql::{EventInput, SecretInput};
/// let events = EventInput {
///     token: Some(SecretInput::Value(AppSecret::new("tok3n"))),
///     key: Some(SecretInput::Reference("env:ACME_DT_AES_KEY".into())),
///     receiver_id: None,
/// };
/// assert!(!format!("{events:?}").contains("tok3n"));
/// ```
#[derive(Debug, Clone, Default)]
pub struct EventInput {
    /// The callback token (DingTalk token, Feishu Verification Token, WeCom Token).
    pub token: Option<SecretInput>,
    /// The encryption key (DingTalk aes_key, Feishu Encrypt Key, WeCom EncodingAESKey).
    pub key: Option<SecretInput>,
    /// Who the messages are for; `None`: the app key.
    pub receiver_id: Option<String>,
}

/// Changes to a row's event subscription, field by field, for [`ConfigPatch::events`]: `None`
/// keeps a field, `Some(None)` clears it. A patch that leaves no field set is refused (remove
/// the subscription with `events: Some(None)` instead).
#[derive(Debug, Clone, Default)]
pub struct EventPatch {
    /// The callback token.
    pub token: Option<Option<SecretInput>>,
    /// The encryption key.
    pub key: Option<Option<SecretInput>>,
    /// The receiver id.
    pub receiver_id: Option<Option<String>>,
}

impl From<EventInput> for EventPatch {
    /// Sets every field as `input` has it (a field left out is cleared).
    fn from(input: EventInput) -> Self {
        Self {
            token: Some(input.token),
            key: Some(input.key),
            receiver_id: Some(input.receiver_id),
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
    /// Session scope rules, `{default: [..], rules: [{when: {..}, grant: [..]}]}` (checked with
    /// [`ScopeRules::from_value`](unilogin_core::mapping::ScopeRules::from_value)).
    pub session_scopes: Option<Value>,
    /// Allowed redirect URIs.
    pub redirect_uris: Vec<String>,
    /// Platform options.
    pub options: Map<String, Value>,
    /// The event subscription (default: none).
    pub events: Option<EventInput>,
    /// A store app's permanent code for the installing organisation (default: none).
    pub permanent_code: Option<SecretInput>,
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
            session_scopes: None,
            redirect_uris: Vec::new(),
            options: Map::new(),
            events: None,
            permanent_code: None,
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
    /// Session scope rules (replaces them as a whole).
    pub session_scopes: Option<Option<Value>>,
    /// Redirect URIs (replaces the list).
    pub redirect_uris: Option<Vec<String>>,
    /// Options (replaces the map).
    pub options: Option<Map<String, Value>>,
    /// The event subscription: `Some(None)` removes it, `Some(Some(patch))` changes it field
    /// by field (starting from no subscription when the row has none).
    pub events: Option<Option<EventPatch>>,
    /// The store-app permanent code: `Some(None)` removes it.
    pub permanent_code: Option<Option<SecretInput>>,
    /// Sort order.
    pub sort: Option<i64>,
}

impl ConfigPatch {
    /// Whether the patch touches nothing but the enabled / deprecated flags.
    fn switches_only(&self) -> bool {
        self.mode.is_none()
            && self.app_key.is_none()
            && self.app_secret.is_none()
            && self.corp_id.is_none()
            && self.agent_id.is_none()
            && self.hosts.is_none()
            && self.mapping.is_none()
            && self.session_scopes.is_none()
            && self.redirect_uris.is_none()
            && self.options.is_none()
            && self.events.is_none()
            && self.permanent_code.is_none()
            && self.sort.is_none()
    }
}

impl SqlConfigStore {
    /// Creates the row of `config.tenant` / `config.platform`. Fails if one is live already, or
    /// if the configuration does not validate.
    pub async fn create(&self, config: NewConfig, actor: &str) -> Result<ConfigRow> {
        check_actor(actor)?;
        let (tenant, platform) = (config.tenant.clone(), config.platform.clone());
        let events = config.events.map(EventPatch::from);
        let (event_token, event_key, event_receiver_id) =
            self.patched_events(&tenant, &platform, None, events)?;
        let values = Values {
            app_secret: self.stored_secret(&config.app_secret, &tenant, &platform, "app_secret")?,
            event_token,
            event_key,
            event_receiver_id,
            permanent_code: config
                .permanent_code
                .as_ref()
                .map(|input| self.stored_secret(input, &tenant, &platform, "permanent_code"))
                .transpose()?,
            mode: config.mode,
            enabled: config.enabled,
            deprecated: false,
            app_key: config.app_key,
            corp_id: config.corp_id,
            agent_id: config.agent_id,
            hosts: config.hosts,
            mapping: config.mapping,
            session_scopes: config.session_scopes,
            redirect_uris: config.redirect_uris,
            options: config.options,
            sort: config.sort,
        };
        self.check(&tenant, &platform, &values)?;
        if self.fetch_raw(&tenant, &platform).await?.is_some() {
            return Err(already(&tenant, &platform));
        }
        let raw = values.raw(&tenant, &platform);
        let changes = crate::audit::diff(None, Some(&raw));
        let now = now_ms();
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(|e| db_error(self.backend, "creating", &e))?;
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
            .bind(raw.session_scopes)
            .bind(raw.event_token)
            .bind(raw.event_key)
            .bind(raw.event_receiver_id)
            .bind(raw.permanent_code)
            .bind(raw.redirect_uris)
            .bind(raw.options)
            .bind(raw.sort)
            .bind(0_i64)
            .bind(actor.to_string())
            .bind(now)
            .bind(Some(actor.to_string()))
            .bind(now)
            .execute(&mut *tx)
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
        self.record(&mut tx, actor, &tenant, &platform, "create", 1, &changes)
            .await?;
        tx.commit()
            .await
            .map_err(|e| db_error(self.backend, "creating", &e))?;
        self.require(&tenant, &platform).await
    }

    /// Writes one audit log entry inside `tx`.
    #[allow(clippy::too_many_arguments)]
    async fn record(
        &self,
        tx: &mut sqlx::Transaction<'_, sqlx::Any>,
        actor: &str,
        tenant: &TenantId,
        platform: &PlatformName,
        action: &str,
        revision: i64,
        changes: &Value,
    ) -> Result<()> {
        sqlx::query(q(&self.queries.insert_audit))
            .bind(now_ms())
            .bind(actor.to_string())
            .bind(tenant.as_str().to_string())
            .bind(platform.as_str().to_string())
            .bind(action.to_string())
            .bind(revision)
            .bind(changes.to_string())
            .execute(&mut **tx)
            .await
            .map_err(|e| db_error(self.backend, "writing the audit log", &e))?;
        Ok(())
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
        let switch_only = patch.switches_only();
        let action = match (&patch.enabled, &patch.deprecated) {
            (Some(true), None) if switch_only => "enable",
            (Some(false), None) if switch_only => "disable",
            (None, Some(true)) if switch_only => "deprecate",
            (None, Some(false)) if switch_only => "undeprecate",
            _ => "update",
        };
        let values = self.patched(tenant, platform, &current, patch)?;
        // Disabling or deprecating alone never needs the rest to be valid: it must always work.
        let only_switching_off = switch_only && (!values.enabled || values.deprecated);
        if let Err(e) = self.check(tenant, platform, &values)
            && !only_switching_off
        {
            return Err(e);
        }
        let raw = values.raw(tenant, platform);
        let changes = crate::audit::diff(Some(&current), Some(&raw));
        self.write(tenant, platform, &current, raw, actor, action, &changes)
            .await?;
        self.require(tenant, platform).await
    }

    /// `current` with `patch` applied.
    fn patched(
        &self,
        tenant: &TenantId,
        platform: &PlatformName,
        current: &RawRow,
        patch: ConfigPatch,
    ) -> Result<Values> {
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
        let (event_token, event_key, event_receiver_id) = match patch.events {
            None => (
                current.event_token.clone(),
                current.event_key.clone(),
                current.event_receiver_id.clone(),
            ),
            Some(events) => self.patched_events(tenant, platform, Some(current), events)?,
        };
        let permanent_code = match &patch.permanent_code {
            None => current.permanent_code.clone(),
            Some(None) => None,
            Some(Some(input)) => {
                Some(self.stored_secret(input, tenant, platform, "permanent_code")?)
            }
        };
        Ok(Values {
            event_token,
            event_key,
            event_receiver_id,
            permanent_code,
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
                Some(input) => self.stored_secret(input, tenant, platform, "app_secret")?,
                None => current.app_secret.clone(),
            },
            corp_id: patch.corp_id.unwrap_or_else(|| current.corp_id.clone()),
            agent_id: patch.agent_id.unwrap_or_else(|| current.agent_id.clone()),
            hosts,
            mapping: match patch.mapping {
                Some(m) => m,
                None => current.mapping.as_deref().and_then(parse_json),
            },
            session_scopes: match patch.session_scopes {
                Some(s) => s,
                None => current.session_scopes.as_deref().and_then(parse_json),
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
        })
    }

    /// The event columns (token, key, receiver id) after `patch` over `current`'s (none when
    /// `current` is `None`): secrets in their stored form, references checked. `None` removes
    /// the subscription; a patch that leaves nothing set is refused.
    fn patched_events(
        &self,
        tenant: &TenantId,
        platform: &PlatformName,
        current: Option<&RawRow>,
        patch: Option<EventPatch>,
    ) -> Result<(Option<String>, Option<String>, Option<String>)> {
        let Some(patch) = patch else {
            return Ok((None, None, None));
        };
        let secret = |input: Option<Option<SecretInput>>,
                      kept: Option<&String>,
                      field: &str|
         -> Result<Option<String>> {
            match input {
                None => Ok(kept.cloned()),
                Some(None) => Ok(None),
                Some(Some(input)) => self
                    .stored_secret(&input, tenant, platform, field)
                    .map(Some),
            }
        };
        let token = secret(
            patch.token,
            current.and_then(|c| c.event_token.as_ref()),
            "events.token",
        )?;
        let key = secret(
            patch.key,
            current.and_then(|c| c.event_key.as_ref()),
            "events.key",
        )?;
        let receiver_id = match patch.receiver_id {
            None => current.and_then(|c| c.event_receiver_id.clone()),
            Some(r) => r,
        };
        if token.is_none() && key.is_none() && receiver_id.is_none() {
            return Err(Error::config(
                Some(tenant),
                Some(platform.as_str()),
                "events",
                "give at least one of token, key, receiver_id (remove the subscription with `events: null`)",
            ));
        }
        Ok((token, key, receiver_id))
    }

    /// Writes `raw` over `current` if its revision is unchanged (else a conflict error), and
    /// the audit entry of `action` with `changes`, in one transaction.
    #[allow(clippy::too_many_arguments)]
    async fn write(
        &self,
        tenant: &TenantId,
        platform: &PlatformName,
        current: &RawRow,
        raw: RawRow,
        actor: &str,
        action: &str,
        changes: &Value,
    ) -> Result<()> {
        let doing = "updating";
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(|e| db_error(self.backend, doing, &e))?;
        let done = sqlx::query(q(&self.queries.update))
            .bind(raw.mode)
            .bind(i64::from(raw.enabled))
            .bind(raw.app_key)
            .bind(raw.app_secret)
            .bind(raw.corp_id)
            .bind(raw.agent_id)
            .bind(raw.hosts)
            .bind(raw.mapping)
            .bind(raw.session_scopes)
            .bind(raw.event_token)
            .bind(raw.event_key)
            .bind(raw.event_receiver_id)
            .bind(raw.permanent_code)
            .bind(raw.redirect_uris)
            .bind(raw.options)
            .bind(raw.sort)
            .bind(i64::from(raw.deprecated))
            .bind(Some(actor.to_string()))
            .bind(now_ms())
            .bind(current.id)
            .bind(current.revision)
            .execute(&mut *tx)
            .await
            .map_err(|e| db_error(self.backend, doing, &e))?;
        if done.rows_affected() != 1 {
            return Err(conflict(tenant, platform));
        }
        self.record(
            &mut tx,
            actor,
            tenant,
            platform,
            action,
            current.revision + 1,
            changes,
        )
        .await?;
        tx.commit()
            .await
            .map_err(|e| db_error(self.backend, doing, &e))
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
        let mut tx = self
            .pool
            .begin()
            .await
            .map_err(|e| db_error(self.backend, "deleting", &e))?;
        let done = sqlx::query(q(&self.queries.soft_delete))
            .bind(now)
            .bind(Some(actor.to_string()))
            .bind(now)
            .bind(current.id)
            .bind(current.revision)
            .execute(&mut *tx)
            .await
            .map_err(|e| db_error(self.backend, "deleting", &e))?;
        if done.rows_affected() != 1 {
            return Err(conflict(tenant, platform));
        }
        let changes = crate::audit::diff(Some(&current), None);
        self.record(
            &mut tx,
            actor,
            tenant,
            platform,
            "delete",
            current.revision + 1,
            &changes,
        )
        .await?;
        tx.commit()
            .await
            .map_err(|e| db_error(self.backend, "deleting", &e))
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

    /// Re-encrypts every encrypted secret (app secret, event token and key) that is not under
    /// the current key (after a key rotation), returning how many rows changed. Values that do not decrypt are reported as
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
            // Every encrypted column of the row that is under an older key.
            let stale = |stored: Option<&str>| {
                stored
                    .and_then(SecretCipher::key_id_of)
                    .is_some_and(|id| id != current_id)
            };
            let stored = [
                Some(raw.app_secret.as_str()),
                raw.event_token.as_deref(),
                raw.event_key.as_deref(),
                raw.permanent_code.as_deref(),
            ];
            if !stored.into_iter().any(stale) {
                continue;
            }
            let (Ok(tenant), Ok(platform)) =
                (TenantId::new(&raw.tenant), PlatformName::new(&raw.platform))
            else {
                continue;
            };
            let mut changes = Map::new();
            let mut reencrypted = |field: &str, stored: Option<&str>| -> Result<Option<String>> {
                match stored {
                    Some(value) if stale(Some(value)) => {
                        let secret = self
                            .cipher
                            .decrypt_field(value, &tenant, &platform, field)?;
                        changes.insert(field.to_string(), json!("re-encrypted"));
                        self.cipher
                            .encrypt_field(&secret, &tenant, &platform, field)
                            .map(Some)
                    }
                    other => Ok(other.map(str::to_string)),
                }
            };
            let app_secret = reencrypted("app_secret", Some(&raw.app_secret))?
                .unwrap_or_else(|| raw.app_secret.clone());
            let event_token = reencrypted("events.token", raw.event_token.as_deref())?;
            let event_key = reencrypted("events.key", raw.event_key.as_deref())?;
            let permanent_code = reencrypted("permanent_code", raw.permanent_code.as_deref())?;
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
                app_secret,
                corp_id: raw.corp_id.clone(),
                agent_id: raw.agent_id.clone(),
                hosts: BTreeMap::new(),
                mapping: None,
                session_scopes: None,
                event_token,
                event_key,
                event_receiver_id: raw.event_receiver_id.clone(),
                permanent_code,
                redirect_uris: Vec::new(),
                options: Map::new(),
                sort: raw.sort,
            };
            // Keep the JSON columns byte for byte.
            let mut new_raw = values.raw(&tenant, &platform);
            new_raw.hosts.clone_from(&raw.hosts);
            new_raw.mapping.clone_from(&raw.mapping);
            new_raw.session_scopes.clone_from(&raw.session_scopes);
            new_raw.redirect_uris.clone_from(&raw.redirect_uris);
            new_raw.options.clone_from(&raw.options);
            self.write(
                &tenant,
                &platform,
                &raw,
                new_raw,
                actor,
                "reencrypt",
                &Value::Object(changes),
            )
            .await?;
            changed += 1;
        }
        Ok(changed)
    }

    async fn require(&self, tenant: &TenantId, platform: &PlatformName) -> Result<ConfigRow> {
        self.get(tenant, platform)
            .await?
            .ok_or_else(|| not_found(tenant, platform))
    }

    /// The stored form of the secret of field `field` (`app_secret`, `events.token`,
    /// `events.key`): encrypted under the current key, or a reference checked against the
    /// allow-list. Errors name `field` and never hold the secret.
    fn stored_secret(
        &self,
        input: &SecretInput,
        tenant: &TenantId,
        platform: &PlatformName,
        field: &str,
    ) -> Result<String> {
        match input {
            SecretInput::Value(secret) => {
                self.cipher.encrypt_field(secret, tenant, platform, field)
            }
            SecretInput::Reference(r) => {
                let reference = SecretRef::parse(r);
                if reference.is_reference() {
                    self.refs.check(&reference, None).map_err(|reason| {
                        Error::config(Some(tenant), Some(platform.as_str()), field, reason)
                    })?;
                    Ok(r.clone())
                } else {
                    Err(Error::config(
                        Some(tenant),
                        Some(platform.as_str()),
                        field,
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
            .config(tenant, platform, &self.cipher, &self.refs)?
            .validate()
    }
}

pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

pub(crate) fn check_actor(actor: &str) -> Result<()> {
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
