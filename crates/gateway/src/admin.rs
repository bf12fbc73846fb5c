//! The admin HTTP API (`admin.enabled`, off by default): list, read, create, update, disable,
//! enable and delete tenant platform configurations in the SQL store, and read the audit log
//! and the reload status; and the OpenID Provider's clients (`oidc_clients`) kept in the same
//! store. Built on the store's own admin API (`unilogin_sql::SqlConfigStore`):
//! every change is validated exactly like a load, checked against the secret reference
//! allow-list, recorded in the audit log, and applied on this replica before the answer (the
//! others pick it up at their next poll).
//!
//! - **Where**: its own listener (`admin.listen`, recommended on a private address), or under
//!   `admin.path_prefix` on the main listener.
//! - **Who**: `Authorization: Bearer <token>`, compared in constant time with each configured
//!   token (`admin.tokens[].token`, a secret reference). The token's `name` is the actor in the
//!   audit log; its `tenants`, when given, are the only tenants it sees or changes.
//! - **Secrets are write-only**: `app_secret`, a store app's `permanent_code` and the event
//!   credentials `events.token` / `events.key` are accepted (a value, stored encrypted, or an allow-listed `env:` / `file:`
//!   reference) and answered only as `"set"` / `"unset"`. An OIDC client's `client_secret` is
//!   hashed (SHA-256) before it is stored and answered as `"set"` / `"unset"`; the hash never
//!   leaves the store.
//! - **Clients**: a client document is validated like a `oidc_clients` entry of a tenants file
//!   before it is stored, and applied on this replica before the answer. A token limited to some
//!   tenants sees and changes only clients whose `tenants` are all among them.
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
    AuditEntry, AuditQuery, ClientError, ConfigPatch, ConfigRow, EventInput, EventPatch, NewConfig,
    SecretInput, SqlConfigStore, StoredClient, StoredEvents, StoredSecret,
};
use unilogin::{AppKey, AppSecret, Error, PlatformName, Result, TenantId};
use url::Url;

use crate::config::GatewayConfig;
use crate::error::ApiError;
use crate::oidc::clients::GatewayClients;
use crate::tenants::Tenants;

/// The routes, relative to `admin.path_prefix` (described in `docs/admin-api.md`).
pub const PATHS: [&str; 10] = [
    "/tenants",
    "/tenants/{tenant}/{platform}",
    "/tenants/{tenant}/{platform}/disable",
    "/tenants/{tenant}/{platform}/enable",
    "/audit",
    "/status",
    "/oidc-clients",
    "/oidc-clients/{client_id}",
    "/oidc-clients/{client_id}/disable",
    "/oidc-clients/{client_id}/enable",
];

/// One configured credential: who, the token's digest, which tenants.
struct Credential {
    name: String,
    digest: [u8; 32],
    tenants: Option<BTreeSet<TenantId>>,
}

/// The admin API's state: its credentials, the store it writes, the sources it reloads.
pub struct Admin {
    credentials: Vec<Credential>,
    store: SqlConfigStore,
    tenants: Arc<Tenants>,
    /// The OpenID Provider's clients (when `oidc_provider.enabled`), reloaded after a change.
    clients: Option<Arc<GatewayClients>>,
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
    /// The admin API of `config` over the tenant source `tenants` and the OpenID Provider's
    /// `clients` (when the provider is on), or `None` when it is off. Resolves every token
    /// reference now (the operator's: any reference).
    pub fn from_config(
        config: &GatewayConfig,
        tenants: Option<&Arc<Tenants>>,
        clients: Option<&Arc<GatewayClients>>,
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
            clients: clients.cloned(),
        })))
    }

    /// The routes, relative to the prefix (mount them with `nest_service`, or serve them on
    /// their own listener under the prefix).
    pub fn router(self: &Arc<Self>, prefix: &str) -> Router {
        let [
            tenants,
            one,
            off,
            on,
            audit_log,
            state,
            clients,
            client,
            client_off,
            client_on,
        ] = PATHS;
        let routes = Router::new()
            .route(tenants, get(list))
            .route(one, get(read).post(create).patch(update).delete(remove))
            .route(off, post(disable))
            .route(on, post(enable))
            .route(audit_log, get(audit))
            .route(state, get(status))
            .route(clients, get(list_clients))
            .route(
                client,
                get(read_client)
                    .post(create_client)
                    .put(update_client)
                    .delete(remove_client),
            )
            .route(client_off, post(disable_client))
            .route(client_on, post(enable_client))
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
        "permanent_code": row.permanent_code.as_ref().map_or("unset", |s| secret_json(s).0),
        "permanent_code_storage": row.permanent_code.as_ref().map_or(Value::Null, |s| secret_json(s).1),
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
        "client_id": e.client_id,
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
    permanent_code: Option<String>,
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
    #[serde(default, deserialize_with = "nullable")]
    permanent_code: Option<Option<String>>,
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
    row.permanent_code = b.permanent_code.as_deref().map(secret_input);
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
        permanent_code: b.permanent_code.map(|p| p.as_deref().map(secret_input)),
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

/// The field of a stored client document holding the secret's SHA-256 (never answered).
const SECRET_HASH: &str = "client_secret_sha256";

/// The shortest `client_secret` accepted (it is stored as an unsalted SHA-256: use a random
/// one).
const MIN_CLIENT_SECRET: usize = 16;

/// A client store error as an admin API answer: a missing client 404, a duplicate or a stale
/// revision 409, a database failure 5xx (details in the log), any other refusal 400 naming the
/// field. The messages never hold a document's value.
fn client_error(e: ClientError) -> ApiError {
    match &e {
        ClientError::NotFound { .. } => {
            ApiError::new(StatusCode::NOT_FOUND, "not_found", e.to_string())
        }
        ClientError::AlreadyExists { .. } | ClientError::Conflict { .. } => {
            ApiError::new(StatusCode::CONFLICT, "conflict", e.to_string())
        }
        ClientError::Database(_) => ApiError::from(Error::from(e)),
        _ => ApiError::bad_request("invalid_config", e.to_string()),
    }
}

/// 400 `invalid_config` about client `id`.
fn invalid_client(id: &str, why: impl fmt::Display) -> ApiError {
    ApiError::bad_request("invalid_config", format!("OIDC client `{id}`: {why}"))
}

/// The tenants a stored client document names (`None`: not a list of valid tenant ids).
fn stored_tenants(body: &Map<String, Value>) -> Option<Vec<TenantId>> {
    body.get("tenants")?
        .as_array()?
        .iter()
        .map(|t| t.as_str().and_then(|t| TenantId::new(t).ok()))
        .collect()
}

impl Caller {
    /// Whether this caller may see and change a client serving `tenants`: a token without
    /// tenant limits any client, a limited one only a client whose tenants are all its own.
    fn may_client(&self, tenants: Option<&[TenantId]>) -> bool {
        match (&self.tenants, tenants) {
            (None, _) => true,
            (Some(allowed), Some(t)) => !t.is_empty() && t.iter().all(|t| allowed.contains(t)),
            (Some(_), None) => false,
        }
    }

    fn require_client(
        &self,
        id: &str,
        tenants: Option<&[TenantId]>,
    ) -> std::result::Result<(), ApiError> {
        if self.may_client(tenants) {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!(
                    "this admin token may not manage OIDC client `{id}`: it serves tenants the token does not manage"
                ),
            ))
        }
    }
}

/// A client as the API shows it: its document without `client_id` and without the secret's
/// hash, `client_secret` as `"set"` / `"unset"`, and the row's bookkeeping.
fn client_json(c: &StoredClient) -> Value {
    let mut document = c.body.clone();
    document.remove("client_id");
    let secret = match document.remove(SECRET_HASH) {
        Some(Value::String(_)) => "set",
        _ => "unset",
    };
    json!({
        "client_id": c.client_id,
        "enabled": c.enabled,
        "client_secret": secret,
        "document": document,
        "revision": c.revision,
        "created_by": c.creator,
        "created_at_ms": c.created_at_ms,
        "modified_by": c.modifier,
        "modified_at_ms": c.modified_at_ms,
    })
}

/// A client answer, with its revision as the `ETag` (give it back in `If-Match`).
fn client_answer(c: &StoredClient, status: StatusCode) -> Response {
    let mut r = no_store(client_json(c));
    *r.status_mut() = status;
    if let Ok(tag) = header::HeaderValue::from_str(&format!("\"{}\"", c.revision)) {
        r.headers_mut().insert(header::ETAG, tag);
    }
    r
}

/// What a request does to the client's secret.
enum SecretChange {
    /// Neither `client_secret` nor `client_secret_sha256`: an update keeps the stored hash (a
    /// new client has no secret).
    Keep,
    /// `client_secret: null`: no secret any more (a public client).
    Remove,
    /// `client_secret` (its hash) or `client_secret_sha256` given: this hash (or `null`).
    Set(Value),
}

/// A client document of a request, not yet validated.
struct ClientBody {
    document: Map<String, Value>,
    secret: SecretChange,
    revision: Option<i64>,
}

/// Reads the body of a create or update of client `id`: `client_id` (only if it is `id`) is
/// dropped, `revision` taken out when `with_revision`, and `client_secret` taken out and
/// hashed. No message names a value.
fn client_body(
    id: &str,
    headers: &HeaderMap,
    body: &Bytes,
    with_revision: bool,
) -> std::result::Result<ClientBody, ApiError> {
    let mut document: Map<String, Value> = json_body(headers, body)?;
    if let Some(given) = document.remove("client_id")
        && given.as_str() != Some(id)
    {
        return Err(invalid_client(
            id,
            "`client_id` differs from the path's (leave it out)",
        ));
    }
    let revision = match with_revision.then(|| document.remove("revision")).flatten() {
        None => None,
        Some(v) => Some(v.as_i64().ok_or_else(|| {
            ApiError::bad_request("bad_request", "`revision` must be an integer")
        })?),
    };
    let hash_given = document.contains_key(SECRET_HASH);
    let secret = match document.remove("client_secret") {
        None if hash_given => SecretChange::Set(document.remove(SECRET_HASH).unwrap_or_default()),
        None => SecretChange::Keep,
        Some(_) if hash_given => {
            return Err(invalid_client(
                id,
                "give `client_secret` or `client_secret_sha256`, not both",
            ));
        }
        Some(Value::Null) => SecretChange::Remove,
        Some(Value::String(s)) if s.chars().count() >= MIN_CLIENT_SECRET => {
            SecretChange::Set(Value::String(unilogin_provider::sha256_hex(&s)))
        }
        Some(Value::String(_)) => {
            return Err(invalid_client(
                id,
                format!(
                    "`client_secret` must be at least {MIN_CLIENT_SECRET} characters (use a random one)"
                ),
            ));
        }
        Some(_) => {
            return Err(invalid_client(
                id,
                "`client_secret` must be a string or null",
            ));
        }
    };
    Ok(ClientBody {
        document,
        secret,
        revision,
    })
}

impl ClientBody {
    /// The document to store (the secret applied over `current`'s hash, if any) and the
    /// client it is, validated like a tenants file's `oidc_clients` entry.
    fn into_document(
        self,
        id: &str,
        current: Option<&StoredClient>,
    ) -> std::result::Result<(Map<String, Value>, unilogin_provider::Client), ApiError> {
        let mut document = self.document;
        let hash = match self.secret {
            SecretChange::Keep => current.and_then(|c| c.body.get(SECRET_HASH).cloned()),
            SecretChange::Remove => None,
            SecretChange::Set(h) => Some(h),
        };
        if let Some(h) = hash.filter(|h| !h.is_null()) {
            document.insert(SECRET_HASH.into(), h);
        }
        let mut full = document.clone();
        full.insert("client_id".into(), Value::String(id.to_string()));
        let client =
            crate::oidc::clients::client_of(full).map_err(|why| invalid_client(id, why))?;
        Ok((document, client))
    }
}

/// The revision an update is based on: `If-Match: "<revision>"` or the body's `revision`
/// (both: they must agree); neither is `428`.
fn expected_revision(
    headers: &HeaderMap,
    in_body: Option<i64>,
) -> std::result::Result<i64, ApiError> {
    let in_header = match headers.get(header::IF_MATCH) {
        None => None,
        Some(v) => {
            let text = v.to_str().unwrap_or_default().trim();
            let text = text.strip_prefix("W/").unwrap_or(text);
            let text = text
                .strip_prefix('"')
                .and_then(|t| t.strip_suffix('"'))
                .unwrap_or(text);
            Some(text.parse::<i64>().map_err(|_| {
                ApiError::bad_request(
                    "bad_request",
                    "If-Match must be the client's revision (its ETag, e.g. `\"3\"`)",
                )
            })?)
        }
    };
    match (in_header, in_body) {
        (Some(h), Some(b)) if h != b => Err(ApiError::bad_request(
            "bad_request",
            "If-Match and `revision` name different revisions",
        )),
        (Some(r), _) | (None, Some(r)) => Ok(r),
        (None, None) => Err(ApiError::new(
            StatusCode::PRECONDITION_REQUIRED,
            "precondition_required",
            "give the revision the change is based on: `If-Match: \"<revision>\"` or a `revision` field",
        )),
    }
}

impl Admin {
    /// The live client `id`, or 404.
    async fn client(&self, id: &str) -> std::result::Result<StoredClient, ApiError> {
        self.store
            .get_client(id)
            .await
            .map_err(client_error)?
            .ok_or_else(|| {
                client_error(ClientError::NotFound {
                    client_id: id.to_string(),
                })
            })
    }

    /// Applies a client change on this replica now (the others read it at their next poll).
    /// A set refused as a whole (another client made invalid by other means) is logged and
    /// shown in `/readyz`; the change stays stored.
    async fn apply_clients(&self) {
        if let Some(clients) = &self.clients
            && let Err(e) = clients.reload_if_changed(true).await
        {
            tracing::warn!(error = %e, "admin: OIDC client change stored, but the clients were not reloaded");
        }
    }
}

async fn list_clients(
    State(admin): State<Arc<Admin>>,
    headers: HeaderMap,
) -> std::result::Result<Response, ApiError> {
    let caller = admin.authenticate(&headers)?;
    let rows = admin.store.list_clients().await.map_err(client_error)?;
    let items: Vec<Value> = rows
        .iter()
        .filter(|c| caller.may_client(stored_tenants(&c.body).as_deref()))
        .map(client_json)
        .collect();
    Ok(no_store(json!({ "items": items })))
}

async fn read_client(
    State(admin): State<Arc<Admin>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> std::result::Result<Response, ApiError> {
    let caller = admin.authenticate(&headers)?;
    let current = admin.client(&id).await?;
    caller.require_client(&id, stored_tenants(&current.body).as_deref())?;
    Ok(client_answer(&current, StatusCode::OK))
}

async fn create_client(
    State(admin): State<Arc<Admin>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> std::result::Result<Response, ApiError> {
    let caller = admin.authenticate(&headers)?;
    let (document, client) = client_body(&id, &headers, &body, false)?.into_document(&id, None)?;
    caller.require_client(&id, Some(&client.tenants))?;
    let created = admin
        .store
        .create_client(&id, document, &caller.name)
        .await
        .map_err(client_error)?;
    admin.apply_clients().await;
    tracing::info!(actor = %caller.name, client_id = %id, "admin: OIDC client created");
    Ok(client_answer(&created, StatusCode::CREATED))
}

async fn update_client(
    State(admin): State<Arc<Admin>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> std::result::Result<Response, ApiError> {
    let caller = admin.authenticate(&headers)?;
    let b = client_body(&id, &headers, &body, true)?;
    let expected = expected_revision(&headers, b.revision)?;
    let current = admin.client(&id).await?;
    caller.require_client(&id, stored_tenants(&current.body).as_deref())?;
    let (document, client) = b.into_document(&id, Some(&current))?;
    caller.require_client(&id, Some(&client.tenants))?;
    let updated = admin
        .store
        .update_client(&id, document, expected, &caller.name)
        .await
        .map_err(client_error)?;
    admin.apply_clients().await;
    tracing::info!(actor = %caller.name, client_id = %id, "admin: OIDC client updated");
    Ok(client_answer(&updated, StatusCode::OK))
}

async fn switch_client(
    admin: &Admin,
    headers: &HeaderMap,
    id: &str,
    enabled: bool,
) -> std::result::Result<Response, ApiError> {
    let caller = admin.authenticate(headers)?;
    let current = admin.client(id).await?;
    caller.require_client(id, stored_tenants(&current.body).as_deref())?;
    if enabled {
        // Only a valid client comes back: one invalid client would stop every reload.
        crate::oidc::clients::client_of(current.document())
            .map_err(|why| invalid_client(id, why))?;
    }
    let row = admin
        .store
        .set_client_enabled(id, enabled, &caller.name)
        .await
        .map_err(client_error)?;
    admin.apply_clients().await;
    tracing::info!(actor = %caller.name, client_id = %id, enabled, "admin: OIDC client switched");
    Ok(client_answer(&row, StatusCode::OK))
}

async fn disable_client(
    State(admin): State<Arc<Admin>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> std::result::Result<Response, ApiError> {
    switch_client(&admin, &headers, &id, false).await
}

async fn enable_client(
    State(admin): State<Arc<Admin>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> std::result::Result<Response, ApiError> {
    switch_client(&admin, &headers, &id, true).await
}

async fn remove_client(
    State(admin): State<Arc<Admin>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> std::result::Result<Response, ApiError> {
    let caller = admin.authenticate(&headers)?;
    let current = admin.client(&id).await?;
    caller.require_client(&id, stored_tenants(&current.body).as_deref())?;
    admin
        .store
        .delete_client(&id, &caller.name)
        .await
        .map_err(client_error)?;
    admin.apply_clients().await;
    tracing::info!(actor = %caller.name, client_id = %id, "admin: OIDC client deleted");
    Ok(StatusCode::NO_CONTENT.into_response())
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
