//! The admin HTTP API (`admin.enabled`, off by default): list, read, create, update, disable,
//! enable and delete tenant platform configurations in the SQL store, and read the audit log
//! and the reload status. Built on the store's own admin API (`unilogin_sql::SqlConfigStore`):
//! every change is validated exactly like a load, checked against the secret reference
//! allow-list, recorded in the audit log, and applied on this replica before the answer (the
//! others pick it up at their next poll).
//!
//! - **Where**: its own listener (`admin.listen`, recommended on a private address), or under
//!   `admin.path_prefix` on the main listener.
//! - **Who**: `Authorization: Bearer <token>`, compared in constant time with each configured
//!   token (`admin.tokens[].token`, a secret reference). The token's `name` is the actor in the
//!   audit log; its `tenants`, when given, are the only tenants it sees or changes.
//! - **Secrets are write-only**: `app_secret` and the event credentials `events.token` /
//!   `events.key` are accepted (a value, stored encrypted, or an allow-listed `env:` / `file:`
//!   reference) and answered only as `"set"` / `"unset"`.
//!
//! The routes and their JSON are described in `docs/admin-api.md` (OpenAPI).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use unilogin::config::{SecretRef, SecretRefPolicy};
use unilogin::sql::{
    AuditEntry, AuditQuery, ConfigPatch, ConfigRow, EventInput, EventPatch, NewConfig, SecretInput,
    SqlConfigStore, StoredEvents, StoredSecret,
};
use unilogin::{AppKey, AppSecret, Error, PlatformName, Result, TenantId};
use url::Url;

use crate::config::GatewayConfig;
use crate::error::ApiError;
use crate::tenants::Tenants;

/// The routes, relative to `admin.path_prefix` (described in `docs/admin-api.md`).
pub const PATHS: [&str; 6] = [
    "/tenants",
    "/tenants/{tenant}/{platform}",
    "/tenants/{tenant}/{platform}/disable",
    "/tenants/{tenant}/{platform}/enable",
    "/audit",
    "/status",
];

/// One configured credential: who, the token's digest, which tenants.
struct Credential {
    name: String,
    digest: [u8; 32],
    tenants: Option<BTreeSet<TenantId>>,
}

/// The admin API's state: its credentials, the store it writes, the source it reloads.
pub struct Admin {
    credentials: Vec<Credential>,
    store: SqlConfigStore,
    tenants: Arc<Tenants>,
}

impl fmt::Debug for Admin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Admin")
            .field(
                "credentials",
                &self
                    .credentials
                    .iter()
                    .map(|c| c.name.as_str())
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

fn digest(token: &[u8]) -> [u8; 32] {
    Sha256::digest(token).into()
}

impl Admin {
    /// The admin API of `config` over the tenant source `tenants` (`None` when it is off).
    /// Resolves every token reference now (the operator's: any reference).
    pub fn from_config(
        config: &GatewayConfig,
        tenants: Option<&Arc<Tenants>>,
    ) -> Result<Option<Arc<Self>>> {
        if !config.admin.enabled {
            return Ok(None);
        }
        let Some(tenants) = tenants else {
            return Err(Error::config(
                None,
                None,
                "admin.enabled",
                "the admin API needs the gateway's own tenant source (tenants_database)",
            ));
        };
        let Some(store) = tenants.store().cloned() else {
            return Err(Error::config(
                None,
                None,
                "admin.enabled",
                "the admin API manages the SQL store: set tenants_database.url",
            ));
        };
        let mut credentials = Vec::new();
        for (i, t) in config.admin.tokens.iter().enumerate() {
            let field = format!("admin.tokens[{i}].token");
            let secret = SecretRef::parse(&t.token)
                .resolve_with(None, &SecretRefPolicy::any())
                .map_err(|why| Error::config(None, None, &field, why))?;
            if secret.expose().len() < 16 {
                return Err(Error::config(
                    None,
                    None,
                    &field,
                    "the token must be at least 16 characters (use a random one)",
                ));
            }
            let tenants = t
                .tenants
                .as_ref()
                .map(|list| list.iter().map(TenantId::new).collect())
                .transpose()
                .map_err(|e| {
                    Error::config(
                        None,
                        None,
                        format!("admin.tokens[{i}].tenants"),
                        e.to_string(),
                    )
                })?;
            credentials.push(Credential {
                name: t.name.clone(),
                digest: digest(secret.expose().as_bytes()),
                tenants,
            });
        }
        Ok(Some(Arc::new(Self {
            credentials,
            store,
            tenants: tenants.clone(),
        })))
    }

    /// The routes, relative to the prefix (mount them with `nest_service`, or serve them on
    /// their own listener under the prefix).
    pub fn router(self: &Arc<Self>, prefix: &str) -> Router {
        let [tenants, one, off, on, audit_log, state] = PATHS;
        let routes = Router::new()
            .route(tenants, get(list))
            .route(one, get(read).post(create).patch(update).delete(remove))
            .route(off, post(disable))
            .route(on, post(enable))
            .route(audit_log, get(audit))
            .route(state, get(status))
            .fallback(not_found)
            .with_state(self.clone());
        if prefix.is_empty() {
            routes
        } else {
            Router::new().nest(prefix, routes).fallback(not_found)
        }
    }

    /// The caller the request's bearer token names, or 401.
    fn authenticate(&self, headers: &HeaderMap) -> std::result::Result<Caller, ApiError> {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty());
        let Some(presented) = presented else {
            return Err(ApiError::unauthenticated(
                "the admin API needs `Authorization: Bearer <token>`",
            ));
        };
        let presented = digest(presented.as_bytes());
        // Every credential is compared, in constant time, whichever matches.
        let mut found: Option<&Credential> = None;
        for c in &self.credentials {
            if bool::from(c.digest.ct_eq(&presented)) && found.is_none() {
                found = Some(c);
            }
        }
        match found {
            Some(c) => Ok(Caller {
                name: c.name.clone(),
                tenants: c.tenants.clone(),
            }),
            None => {
                tracing::warn!("admin API: a request with an unknown token was refused");
                Err(ApiError::unauthenticated("unknown admin token"))
            }
        }
    }
}

/// Who is calling, and which tenants they may manage.
struct Caller {
    name: String,
    tenants: Option<BTreeSet<TenantId>>,
}

impl Caller {
    fn may(&self, tenant: &TenantId) -> bool {
        self.tenants.as_ref().is_none_or(|t| t.contains(tenant))
    }

    fn require(&self, tenant: &TenantId) -> std::result::Result<(), ApiError> {
        if self.may(tenant) {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("this admin token may not manage tenant `{tenant}`"),
            ))
        }
    }
}

/// A library error as an admin API answer: validation problems are the caller's (400, with
/// the secret-free message), a missing row 404, a race or duplicate 409.
fn admin_error(e: Error) -> ApiError {
    match &e {
        Error::Config { field, reason, .. }
            if field == "revision" || reason.starts_with("already configured") =>
        {
            ApiError::new(StatusCode::CONFLICT, "conflict", e.to_string())
        }
        Error::Config { .. } => ApiError::bad_request("invalid_config", e.to_string()),
        Error::PlatformNotConfigured { .. } => {
            ApiError::new(StatusCode::NOT_FOUND, "not_found", e.to_string())
        }
        _ => ApiError::from(e),
    }
}

fn target(tenant: &str, platform: &str) -> std::result::Result<(TenantId, PlatformName), ApiError> {
    let tenant = TenantId::new(tenant)
        .map_err(|e| ApiError::bad_request("bad_request", format!("tenant: {e}")))?;
    let platform = PlatformName::new(platform)
        .map_err(|e| ApiError::bad_request("bad_request", format!("platform: {e}")))?;
    // Only platforms of this binary: a row for another could never serve a login here.
    let registered = unilogin::Registry::get(platform.as_str())
        .map_err(|e| ApiError::bad_request("unknown_platform", e.to_string()))?;
    let platform = PlatformName::new(registered.name)
        .map_err(|e| ApiError::bad_request("bad_request", e.to_string()))?;
    Ok((tenant, platform))
}

/// How a stored secret is shown: `"set"` with its storage (`"encrypted"` / `"reference"`), or
/// `"invalid"` (never the value, nor a reference's target).
fn secret_json(stored: &StoredSecret) -> (&'static str, Value) {
    match stored {
        StoredSecret::Encrypted { .. } => ("set", json!("encrypted")),
        StoredSecret::Reference(_) => ("set", json!("reference")),
        StoredSecret::Invalid => ("invalid", Value::Null),
    }
}

/// The event subscription as the API shows it: `null` when there is none; otherwise the
/// token and key as `"set"` / `"unset"` / `"invalid"` with their storage, and the receiver id.
fn events_json(events: Option<&StoredEvents>) -> Value {
    let Some(events) = events else {
        return Value::Null;
    };
    let secret = |s: &Option<StoredSecret>| s.as_ref().map_or(("unset", Value::Null), secret_json);
    let (token, token_storage) = secret(&events.token);
    let (key, key_storage) = secret(&events.key);
    json!({
        "token": token,
        "token_storage": token_storage,
        "key": key,
        "key_storage": key_storage,
        "receiver_id": events.receiver_id,
    })
}

/// A row as the API shows it: every field but the secrets, which are `"set"` or `"unset"`.
fn row_json(row: &ConfigRow) -> Value {
    let public_client = row
        .options
        .get("token_auth_method")
        .and_then(Value::as_str)
        .is_some_and(|m| m.trim() == "none");
    let (secret, storage) = if public_client {
        ("unset", Value::Null)
    } else {
        secret_json(&row.secret)
    };
    json!({
        "tenant": row.tenant,
        "platform": row.platform,
        "enabled": row.enabled,
        "deprecated": row.deprecated,
        "mode": row.mode,
        "app_key": row.app_key,
        "app_secret": secret,
        "app_secret_storage": storage,
        "corp_id": row.corp_id,
        "agent_id": row.agent_id,
        "redirect_uris": row.redirect_uris,
        "hosts": row.hosts,
        "mapping": row.mapping,
        "session_scopes": row.session_scopes,
        "options": row.options,
        "events": events_json(row.events.as_ref()),
        "sort": row.sort,
        "revision": row.revision,
        "created_by": row.creator,
        "created_at_ms": row.created_at_ms,
        "modified_by": row.modifier,
        "modified_at_ms": row.modified_at_ms,
    })
}

fn audit_json(e: &AuditEntry) -> Value {
    json!({
        "id": e.id,
        "at_ms": e.at_ms,
        "actor": e.actor,
        "tenant": e.tenant,
        "platform": e.platform,
        "action": e.action,
        "revision": e.revision,
        "changes": e.changes,
    })
}

/// Reads a JSON body. Error messages name the problem's place and kind, never the values
/// (a mistyped secret must not come back in an error).
fn json_body<T: DeserializeOwned>(
    headers: &HeaderMap,
    body: &Bytes,
) -> std::result::Result<T, ApiError> {
    let json_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"));
    if !json_type {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send `Content-Type: application/json`",
        ));
    }
    serde_json::from_slice(body).map_err(|e| {
        let text = e.to_string();
        let what = if text.starts_with("unknown field") || text.starts_with("missing field") {
            text.split(" at line")
                .next()
                .unwrap_or_default()
                .to_string()
        } else {
            format!("{:?} error", e.classify()).to_lowercase()
        };
        ApiError::bad_request(
            "bad_request",
            format!(
                "invalid JSON body ({what} at line {} column {})",
                e.line(),
                e.column()
            ),
        )
    })
}

/// `app_secret` as written: `env:NAME` / `file:PATH` are references (checked against the
/// allow-list by the store), anything else the value itself (`plain:` escapes a value that
/// starts with `env:` or `file:`).
fn secret_input(raw: &str) -> SecretInput {
    match SecretRef::parse(raw) {
        SecretRef::Plain(value) => SecretInput::Value(value),
        _ => SecretInput::Reference(raw.to_string()),
    }
}

/// An id written as a string or a number (agent ids often are numbers).
fn id_text<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<String>, D::Error> {
    match Option::<Value>::deserialize(d)? {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(serde::de::Error::custom("must be a string or a number")),
    }
}

/// `Some(None)` for an explicit `null`, `None` when absent.
fn nullable<'de, D: serde::Deserializer<'de>, T: Deserialize<'de>>(
    d: D,
) -> std::result::Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(d).map(Some)
}

fn nullable_id<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<Option<Option<String>>, D::Error> {
    id_text(d).map(Some)
}

/// `events` of a create body: the fields of a tenants-file entry's `events` (token and key
/// written like `app_secret`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventsBody {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    key: Option<String>,
    #[serde(default, deserialize_with = "id_text")]
    receiver_id: Option<String>,
}

impl EventsBody {
    fn input(self) -> EventInput {
        EventInput {
            token: self.token.as_deref().map(secret_input),
            key: self.key.as_deref().map(secret_input),
            receiver_id: self.receiver_id,
        }
    }
}

/// `events` of a patch body: any subset of the fields; `null` clears one.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventsPatchBody {
    #[serde(default, deserialize_with = "nullable")]
    token: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    key: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable_id")]
    receiver_id: Option<Option<String>>,
}

impl EventsPatchBody {
    fn patch(self) -> EventPatch {
        let secret = |v: Option<Option<String>>| v.map(|v| v.as_deref().map(secret_input));
        EventPatch {
            token: secret(self.token),
            key: secret(self.key),
            receiver_id: self.receiver_id,
        }
    }
}

/// The body of `POST …/tenants/{tenant}/{platform}`: the fields of a tenants-file entry.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateBody {
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    mode: Option<String>,
    app_key: String,
    #[serde(default)]
    app_secret: Option<String>,
    #[serde(default, deserialize_with = "id_text")]
    corp_id: Option<String>,
    #[serde(default, deserialize_with = "id_text")]
    agent_id: Option<String>,
    #[serde(default)]
    redirect_uris: Vec<String>,
    #[serde(default)]
    hosts: BTreeMap<String, Url>,
    #[serde(default)]
    mapping: Option<Value>,
    #[serde(default)]
    session_scopes: Option<Value>,
    #[serde(default)]
    options: Map<String, Value>,
    #[serde(default)]
    events: Option<EventsBody>,
    #[serde(default)]
    sort: i64,
}

/// The body of `PATCH …`: any subset of the fields; `null` clears a nullable one.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PatchBody {
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    deprecated: Option<bool>,
    #[serde(default, deserialize_with = "nullable")]
    mode: Option<Option<String>>,
    #[serde(default)]
    app_key: Option<String>,
    #[serde(default)]
    app_secret: Option<String>,
    #[serde(default, deserialize_with = "nullable_id")]
    corp_id: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable_id")]
    agent_id: Option<Option<String>>,
    #[serde(default)]
    redirect_uris: Option<Vec<String>>,
    #[serde(default)]
    hosts: Option<BTreeMap<String, Url>>,
    #[serde(default, deserialize_with = "nullable")]
    mapping: Option<Option<Value>>,
    #[serde(default, deserialize_with = "nullable")]
    session_scopes: Option<Option<Value>>,
    #[serde(default)]
    options: Option<Map<String, Value>>,
    #[serde(default, deserialize_with = "nullable")]
    events: Option<Option<EventsPatchBody>>,
    #[serde(default)]
    sort: Option<i64>,
}

fn app_key(raw: &str, tenant: &TenantId, platform: &PlatformName) -> Result<AppKey> {
    AppKey::new(raw).map_err(|e| {
        Error::config(
            Some(tenant),
            Some(platform.as_str()),
            "app_key",
            e.to_string(),
        )
    })
}

/// A `?tenant=` query parameter: absent, or a valid tenant id (400 otherwise).
fn tenant_param(raw: Option<&str>) -> std::result::Result<Option<TenantId>, ApiError> {
    raw.map(TenantId::new)
        .transpose()
        .map_err(|e| ApiError::bad_request("bad_request", format!("tenant: {e}")))
}

/// `?tenant=` of the list.
#[derive(Deserialize)]
struct ListQuery {
    tenant: Option<String>,
}

async fn list(
    State(admin): State<Arc<Admin>>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> std::result::Result<Response, ApiError> {
    let caller = admin.authenticate(&headers)?;
    let tenant = tenant_param(q.tenant.as_deref())?;
    if let Some(t) = &tenant {
        caller.require(t)?;
    }
    let rows = admin
        .store
        .list(tenant.as_ref())
        .await
        .map_err(admin_error)?;
    let items: Vec<Value> = rows
        .iter()
        .filter(|r| TenantId::new(&r.tenant).is_ok_and(|t| caller.may(&t)))
        .map(row_json)
        .collect();
    Ok(no_store(json!({ "items": items })))
}

async fn read(
    State(admin): State<Arc<Admin>>,
    headers: HeaderMap,
    Path((tenant, platform)): Path<(String, String)>,
) -> std::result::Result<Response, ApiError> {
    let caller = admin.authenticate(&headers)?;
    let (tenant, platform) = target(&tenant, &platform)?;
    caller.require(&tenant)?;
    match admin
        .store
        .get(&tenant, &platform)
        .await
        .map_err(admin_error)?
    {
        Some(row) => Ok(no_store(row_json(&row))),
        None => Err(admin_error(Error::PlatformNotConfigured {
            tenant,
            platform: platform.to_string(),
        })),
    }
}

async fn create(
    State(admin): State<Arc<Admin>>,
    headers: HeaderMap,
    Path((tenant, platform)): Path<(String, String)>,
    body: Bytes,
) -> std::result::Result<Response, ApiError> {
    let caller = admin.authenticate(&headers)?;
    let (tenant, platform) = target(&tenant, &platform)?;
    caller.require(&tenant)?;
    let b: CreateBody = json_body(&headers, &body)?;
    let public_client = b
        .options
        .get("token_auth_method")
        .and_then(Value::as_str)
        .is_some_and(|m| m.trim() == "none");
    let secret = match b.app_secret.as_deref() {
        Some(raw) => secret_input(raw),
        None if public_client => SecretInput::Value(AppSecret::new("")),
        None => {
            return Err(admin_error(Error::config(
                Some(&tenant),
                Some(platform.as_str()),
                "app_secret",
                "missing (only a public OAuth client, `options.token_auth_method: none`, goes without)",
            )));
        }
    };
    let key = app_key(&b.app_key, &tenant, &platform).map_err(admin_error)?;
    let mut row = NewConfig::new(tenant.clone(), platform.clone(), key, secret);
    row.enabled = b.enabled.unwrap_or(true);
    row.mode = b.mode;
    row.corp_id = b.corp_id;
    row.agent_id = b.agent_id;
    row.redirect_uris = b.redirect_uris;
    row.hosts = b.hosts;
    row.mapping = b.mapping;
    row.session_scopes = b.session_scopes;
    row.options = b.options;
    row.events = b.events.map(EventsBody::input);
    row.sort = b.sort;
    let created = admin
        .store
        .create(row, &caller.name)
        .await
        .map_err(admin_error)?;
    admin.tenants.apply_changes_now().await;
    tracing::info!(actor = %caller.name, tenant = %tenant, platform = %platform, "admin: configuration created");
    let mut r = no_store(row_json(&created));
    *r.status_mut() = StatusCode::CREATED;
    Ok(r)
}

async fn update(
    State(admin): State<Arc<Admin>>,
    headers: HeaderMap,
    Path((tenant, platform)): Path<(String, String)>,
    body: Bytes,
) -> std::result::Result<Response, ApiError> {
    let caller = admin.authenticate(&headers)?;
    let (tenant, platform) = target(&tenant, &platform)?;
    caller.require(&tenant)?;
    let b: PatchBody = json_body(&headers, &body)?;
    let patch = ConfigPatch {
        enabled: b.enabled,
        deprecated: b.deprecated,
        mode: b.mode,
        app_key: b
            .app_key
            .as_deref()
            .map(|k| app_key(k, &tenant, &platform))
            .transpose()
            .map_err(admin_error)?,
        app_secret: b.app_secret.as_deref().map(secret_input),
        corp_id: b.corp_id,
        agent_id: b.agent_id,
        hosts: b.hosts,
        mapping: b.mapping,
        session_scopes: b.session_scopes,
        redirect_uris: b.redirect_uris,
        options: b.options,
        events: b.events.map(|e| e.map(EventsPatchBody::patch)),
        sort: b.sort,
    };
    let updated = admin
        .store
        .update(&tenant, &platform, patch, &caller.name)
        .await
        .map_err(admin_error)?;
    admin.tenants.apply_changes_now().await;
    tracing::info!(actor = %caller.name, tenant = %tenant, platform = %platform, "admin: configuration updated");
    Ok(no_store(row_json(&updated)))
}

async fn switch(
    admin: &Admin,
    headers: &HeaderMap,
    tenant: &str,
    platform: &str,
    enabled: bool,
) -> std::result::Result<Response, ApiError> {
    let caller = admin.authenticate(headers)?;
    let (tenant, platform) = target(tenant, platform)?;
    caller.require(&tenant)?;
    let row = admin
        .store
        .set_enabled(&tenant, &platform, enabled, &caller.name)
        .await
        .map_err(admin_error)?;
    admin.tenants.apply_changes_now().await;
    tracing::info!(actor = %caller.name, tenant = %tenant, platform = %platform, enabled, "admin: configuration switched");
    Ok(no_store(row_json(&row)))
}

async fn disable(
    State(admin): State<Arc<Admin>>,
    headers: HeaderMap,
    Path((tenant, platform)): Path<(String, String)>,
) -> std::result::Result<Response, ApiError> {
    switch(&admin, &headers, &tenant, &platform, false).await
}

async fn enable(
    State(admin): State<Arc<Admin>>,
    headers: HeaderMap,
    Path((tenant, platform)): Path<(String, String)>,
) -> std::result::Result<Response, ApiError> {
    switch(&admin, &headers, &tenant, &platform, true).await
}

async fn remove(
    State(admin): State<Arc<Admin>>,
    headers: HeaderMap,
    Path((tenant, platform)): Path<(String, String)>,
) -> std::result::Result<Response, ApiError> {
    let caller = admin.authenticate(&headers)?;
    let (tenant, platform) = target(&tenant, &platform)?;
    caller.require(&tenant)?;
    admin
        .store
        .delete(&tenant, &platform, &caller.name)
        .await
        .map_err(admin_error)?;
    admin.tenants.apply_changes_now().await;
    tracing::info!(actor = %caller.name, tenant = %tenant, platform = %platform, "admin: configuration deleted");
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `?tenant=&platform=&before=&limit=` of the audit log.
#[derive(Deserialize)]
struct AuditParams {
    tenant: Option<String>,
    platform: Option<String>,
    before: Option<i64>,
    limit: Option<u32>,
}

async fn audit(
    State(admin): State<Arc<Admin>>,
    headers: HeaderMap,
    Query(p): Query<AuditParams>,
) -> std::result::Result<Response, ApiError> {
    let caller = admin.authenticate(&headers)?;
    let tenant = tenant_param(p.tenant.as_deref())?;
    let tenants = match (tenant, &caller.tenants) {
        (Some(t), _) => {
            caller.require(&t)?;
            Some(vec![t])
        }
        (None, Some(allowed)) => Some(allowed.iter().cloned().collect()),
        (None, None) => None,
    };
    let platform = p
        .platform
        .as_deref()
        .map(PlatformName::new)
        .transpose()
        .map_err(|e| ApiError::bad_request("bad_request", format!("platform: {e}")))?;
    let query = AuditQuery {
        tenants,
        platform,
        before_id: p.before,
        limit: p.limit.unwrap_or(100),
    };
    let entries = admin.store.audit(&query).await.map_err(admin_error)?;
    let next = (entries.len() as u64 == u64::from(query.limit.clamp(1, 1000)))
        .then(|| entries.last().map(|e| e.id))
        .flatten();
    Ok(no_store(json!({
        "items": entries.iter().map(audit_json).collect::<Vec<_>>(),
        "next_before": next,
    })))
}

async fn status(
    State(admin): State<Arc<Admin>>,
    headers: HeaderMap,
) -> std::result::Result<Response, ApiError> {
    let caller = admin.authenticate(&headers)?;
    let s = admin.tenants.status();
    let visible = |e: &&Error| match e {
        Error::Config {
            tenant: Some(t), ..
        } => caller.may(t),
        _ => caller.tenants.is_none(),
    };
    let unix_ms = |t: std::time::SystemTime| {
        t.duration_since(std::time::UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .ok()
    };
    Ok(no_store(json!({
        "source": admin.tenants.kind(),
        "entries": s.entries,
        "reloads": s.reloads,
        "failures": s.failures,
        "last_success_ms": s.last_success.and_then(unix_ms),
        "last_error": if caller.tenants.is_none() { s.last_error.clone() } else { None },
        "rejected": s.rejected,
        "rejected_errors": s.rejected_errors.iter().filter(visible).map(ToString::to_string).collect::<Vec<_>>(),
    })))
}

async fn not_found() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such admin endpoint")
}

fn no_store(body: Value) -> Response {
    crate::routes::no_store(axum::Json(body).into_response())
}

/// Mounts the admin API under `admin.path_prefix` on the main router, unless it has its own
/// listener (`admin.listen`) or is off.
pub(crate) fn mount(
    gw: &crate::app::Gateway,
    router: Router<crate::app::Gateway>,
) -> Router<crate::app::Gateway> {
    match (&gw.inner.admin, gw.inner.config.admin.listen) {
        (Some(admin), None) => {
            router.nest_service(&gw.inner.config.admin.path_prefix, admin.router(""))
        }
        _ => router,
    }
}
