//! The OpenID Provider's relying parties, from where the tenants come from, reloaded with them.
//!
//! | tenants from | clients from |
//! |---|---|
//! | `tenants_file` | its `oidc_clients` section (`{client_id: {…}}`) |
//! | `tenants_database.url` | the `unilogin_oidc_client` table (enabled rows), written by the admin API |
//! | [`tenants_yaml`](crate::GatewayBuilder::tenants_yaml) | its `oidc_clients` section |
//!
//! Every client is validated ([`Client::validate`]) before the gateway serves: one bad client
//! stops the start, naming it. Then the source's version (the file's content hash, the
//! table's change fingerprint) is polled with the tenants (`reload.poll_ms`); a change is read
//! and applied as a whole, and a change with a bad client is refused as a whole, keeping the
//! last good set (logged, counted in `/readyz`).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use unilogin::config::{YamlFile, YamlText, yaml_section};
use unilogin::{Error, Result};
use unilogin_provider::{Client, ClientSource};

use crate::config::GatewayConfig;

/// The YAML section holding the clients.
pub const SECTION: &str = "oidc_clients";

/// Where the clients are read from.
#[derive(Clone)]
enum Origin {
    File(YamlFile),
    Text(YamlText),
    #[cfg(feature = "sql")]
    Database(unilogin::sql::SqlConfigStore),
    /// Given in code ([`GatewayClients::fixed`]): never reloaded.
    Fixed,
}

impl fmt::Debug for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::File(_) => "file",
            Self::Text(_) => "yaml",
            #[cfg(feature = "sql")]
            Self::Database(_) => "database",
            Self::Fixed => "fixed",
        })
    }
}

/// How the client reloads went (for `/readyz`).
#[derive(Debug, Clone, Default)]
struct Status {
    version: Option<String>,
    last_error: Option<String>,
    failures: u64,
}

/// The configured clients, reloadable. Cheap lookups (a read lock and a hash map).
pub struct GatewayClients {
    origin: Origin,
    current: RwLock<Arc<HashMap<String, Arc<Client>>>>,
    status: Mutex<Status>,
}

impl fmt::Debug for GatewayClients {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GatewayClients")
            .field("origin", &self.origin)
            .field("clients", &self.read().len())
            .finish()
    }
}

fn problem(field: &str, reason: impl Into<String>) -> Error {
    Error::config(None, None, field, reason)
}

/// The clients of a JSON map `{client_id: {…}}` (the YAML section), each validated. Every
/// problem is returned, each naming its client.
pub fn parse_section(section: Option<Value>) -> std::result::Result<Vec<Client>, Vec<Error>> {
    let map = match section {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Object(m)) => m,
        Some(_) => {
            return Err(vec![problem(
                SECTION,
                "must be a map of client ids to clients",
            )]);
        }
    };
    let mut clients = Vec::new();
    let mut problems = Vec::new();
    for (id, body) in map {
        let field = format!("{SECTION}.{id}");
        let mut body = match body {
            Value::Object(b) => b,
            _ => {
                problems.push(problem(&field, "must be a map"));
                continue;
            }
        };
        if let Some(given) = body.get("client_id")
            && given.as_str() != Some(id.as_str())
        {
            problems.push(problem(
                &format!("{field}.client_id"),
                "differs from the key it is listed under (leave it out)",
            ));
            continue;
        }
        body.insert("client_id".into(), Value::String(id.clone()));
        match client_of(body) {
            Ok(c) => clients.push(c),
            Err(why) => problems.push(problem(&field, why)),
        }
    }
    if problems.is_empty() {
        Ok(clients)
    } else {
        Err(problems)
    }
}

/// One client document, read and validated; the reason names no secret (serde's messages
/// name fields and expected types, never the values of secret fields it cannot parse).
pub fn client_of(document: Map<String, Value>) -> std::result::Result<Client, String> {
    if document.contains_key("client_secret") {
        return Err(
            "give `client_secret_sha256` (hex SHA-256 of the secret), never the secret".into(),
        );
    }
    let client: Client = serde_json::from_value(Value::Object(document.clone())).map_err(|e| {
        // serde_json quotes the values it cannot read: keep its structure, not its data.
        let text = e.to_string();
        let text = match text.split_once(": ") {
            Some((what, _)) if what.starts_with("invalid value") => what.to_string(),
            Some(("invalid type", rest)) => {
                let kind = rest.split_whitespace().next().unwrap_or_default();
                let kind = kind.trim_end_matches(',');
                match rest.rsplit_once(", expected ") {
                    Some((_, expected)) => format!("invalid type: {kind}, expected {expected}"),
                    None => format!("invalid type: {kind}"),
                }
            }
            _ => text,
        };
        // A missing or unknown field is named by serde; a mistyped value is not.
        let named = ["missing field", "unknown field", "duplicate field"]
            .iter()
            .any(|p| text.starts_with(p));
        match faulty_field(&document) {
            Some(field) if !named => format!("`{field}`: {text}"),
            _ => text,
        }
    })?;
    client.validate().map_err(|e| e.to_string())?;
    Ok(client)
}

/// The first field of `document` whose value alone does not read as a client's: each is
/// tried in a minimal valid document.
fn faulty_field(document: &Map<String, Value>) -> Option<String> {
    document
        .iter()
        .filter(|(k, _)| k.as_str() != "client_id")
        .find_map(|(k, v)| {
            let mut probe = Map::new();
            probe.insert("client_id".into(), Value::from("probe"));
            probe.insert(
                "redirect_uris".into(),
                Value::from(vec!["https://probe.invalid/cb"]),
            );
            probe.insert("tenants".into(), Value::from(vec!["probe"]));
            probe.insert(k.clone(), v.clone());
            serde_json::from_value::<Client>(Value::Object(probe))
                .is_err()
                .then(|| k.clone())
        })
}

fn by_id(clients: Vec<Client>) -> std::result::Result<HashMap<String, Arc<Client>>, Vec<Error>> {
    let mut map = HashMap::with_capacity(clients.len());
    let mut problems = Vec::new();
    for c in clients {
        let id = c.client_id.clone();
        if map.insert(id.clone(), Arc::new(c)).is_some() {
            problems.push(problem(
                &format!("{SECTION}.{id}"),
                "configured twice (ids are case-sensitive)",
            ));
        }
    }
    if problems.is_empty() {
        Ok(map)
    } else {
        Err(problems)
    }
}

fn text_version(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl Origin {
    /// The source's version now.
    async fn version(&self) -> Result<Option<String>> {
        match self {
            Self::File(f) => {
                let f = f.clone();
                tokio::task::spawn_blocking(move || f.current_version().map(Some))
                    .await
                    .map_err(|e| Error::Internal(format!("checking the clients: {e}")))?
            }
            Self::Text(t) => Ok(Some(text_version(&t.text()))),
            #[cfg(feature = "sql")]
            Self::Database(store) => store
                .clients_fingerprint()
                .await
                .map(Some)
                .map_err(Error::from),
            Self::Fixed => Ok(None),
        }
    }

    /// Every client, read and validated.
    async fn load(&self) -> std::result::Result<Vec<Client>, Vec<Error>> {
        match self {
            Self::File(f) => {
                let f = f.clone();
                let text = tokio::task::spawn_blocking(move || f.read_text())
                    .await
                    .map_err(|e| vec![Error::Internal(format!("reading the clients: {e}"))])?
                    .map_err(|e| vec![e])?;
                parse_section(yaml_section(&text, SECTION).map_err(|e| vec![e])?)
            }
            Self::Text(t) => parse_section(yaml_section(&t.text(), SECTION).map_err(|e| vec![e])?),
            #[cfg(feature = "sql")]
            Self::Database(store) => {
                let rows = store
                    .list_clients()
                    .await
                    .map_err(|e| vec![Error::from(e)])?;
                let mut clients = Vec::new();
                let mut problems = Vec::new();
                for row in rows.into_iter().filter(|r| r.enabled) {
                    match client_of(row.document()) {
                        Ok(c) => clients.push(c),
                        Err(why) => problems.push(problem(
                            &format!("{}.{}", unilogin::sql::CLIENT_TABLE, row.client_id),
                            why,
                        )),
                    }
                }
                if problems.is_empty() {
                    Ok(clients)
                } else {
                    Err(problems)
                }
            }
            Self::Fixed => Ok(Vec::new()),
        }
    }
}

impl GatewayClients {
    /// The clients of the gateway's tenant source (see the module docs), read and validated
    /// now: every problem is returned.
    pub async fn open(
        config: &GatewayConfig,
        yaml: Option<&YamlText>,
        #[cfg(feature = "sql")] store: Option<&unilogin::sql::SqlConfigStore>,
    ) -> std::result::Result<Self, Vec<Error>> {
        #[cfg(feature = "sql")]
        let database = store.cloned().map(Origin::Database);
        #[cfg(not(feature = "sql"))]
        let database: Option<Origin> = None;
        let origin = match (yaml, &config.tenants_file) {
            (Some(t), _) => Origin::Text(t.clone()),
            (None, Some(path)) => Origin::File(YamlFile::new(path.clone())),
            (None, None) => database.unwrap_or(Origin::Fixed),
        };
        let version = origin.version().await.map_err(|e| vec![e])?;
        let clients = by_id(origin.load().await?)?;
        Ok(Self {
            origin,
            current: RwLock::new(Arc::new(clients)),
            status: Mutex::new(Status {
                version,
                ..Status::default()
            }),
        })
    }

    /// A fixed set of clients, never reloaded (programs that configure the gateway in code).
    pub fn fixed(clients: Vec<Client>) -> std::result::Result<Self, Vec<Error>> {
        for c in &clients {
            c.validate().map_err(|e| {
                vec![problem(
                    &format!("{SECTION}.{}", c.client_id),
                    e.to_string(),
                )]
            })?;
        }
        Ok(Self {
            origin: Origin::Fixed,
            current: RwLock::new(Arc::new(by_id(clients)?)),
            status: Mutex::new(Status::default()),
        })
    }

    fn read(&self) -> Arc<HashMap<String, Arc<Client>>> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn status(&self) -> std::sync::MutexGuard<'_, Status> {
        self.status.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reads the clients again when the source's version moved (or always, with `force`).
    /// `Ok(true)`: the set was read again and is in force. A set with any bad client is refused whole and the
    /// last good one stays (the error says why, and is kept for `/readyz`).
    pub async fn reload_if_changed(&self, force: bool) -> Result<bool> {
        let version = match self.origin.version().await {
            Ok(v) => v,
            Err(e) => return Err(self.failed(e.to_string())),
        };
        if version.is_none() || (!force && version == self.status().version) {
            return Ok(false);
        }
        let loaded = self.origin.load().await.and_then(by_id);
        match loaded {
            Ok(clients) => {
                let count = clients.len();
                *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(clients);
                let mut s = self.status();
                s.version = version;
                s.last_error = None;
                tracing::info!(clients = count, "OIDC clients reloaded");
                Ok(true)
            }
            Err(problems) => {
                let text = problems
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ");
                // The same version is not read again until it changes (or a forced reload).
                self.status().version = version;
                Err(self.failed(text))
            }
        }
    }

    fn failed(&self, why: String) -> Error {
        tracing::warn!(problem = %why, "OIDC clients not reloaded: the last good set stays");
        let mut s = self.status();
        s.failures += 1;
        s.last_error = Some(why.clone());
        problem(SECTION, why)
    }

    /// Polls the source every `every` until the returned task is aborted (or `self` dropped).
    pub fn spawn_watcher(self: &Arc<Self>, every: Duration) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(this) = weak.upgrade() else { break };
                let _ = this.reload_if_changed(false).await;
            }
        })
    }

    /// The clients part of `/readyz`: `{status, clients, failures}` (`ok` or `failed`: the
    /// latest change was refused and the last good set serves).
    pub fn readiness(&self) -> Value {
        let s = self.status().clone();
        serde_json::json!({
            "status": if s.last_error.is_some() { "failed" } else { "ok" },
            "source": format!("{:?}", self.origin),
            "clients": self.read().len(),
            "failures": s.failures,
        })
    }
}

impl ClientSource for GatewayClients {
    fn client(&self, id: &str) -> Option<Arc<Client>> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
            .cloned()
    }

    fn all(&self) -> Vec<Arc<Client>> {
        self.read().values().cloned().collect()
    }
}
