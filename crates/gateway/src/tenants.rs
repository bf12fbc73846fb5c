//! Where the gateway's tenants come from: the library's own configuration sources, chosen by
//! the gateway configuration, validated completely before serving and watched for changes.
//!
//! | configured | source |
//! |---|---|
//! | `tenants_file` | [`CachedSource`] over [`YamlFile`]: the documented format, `env:` / `file:` secrets resolved (any reference: the operator writes the file) |
//! | `tenants_database.url` | [`CachedSource`] over [`SqlConfigStore`](unilogin::sql::SqlConfigStore): SQLite by path, PostgreSQL / MySQL by URL; references only as `secret_refs` allows |
//! | [`GatewayBuilder::tenants_yaml`](crate::GatewayBuilder::tenants_yaml) | [`CachedSource`] over [`YamlText`] (the sandbox, tests): the same parser and checks |
//!
//! At start every entry is checked the way a login uses it ([`PlatformConfig::problems`]:
//! handler built through the registry, mapping rules compiled, hosts and redirect URIs parsed,
//! platform options checked) and the gateway refuses to start on any problem, listing all of
//! them ([`ConfigProblems`]). Then a watcher polls the source's version every `reload.poll_ms`
//! (file size, time and content hash; the database's change fingerprint), reloads on SIGHUP
//! ([`Tenants::trigger`]) and every `reload.full_secs`. A reload applies only what changed;
//! an invalid change keeps the entry's last good configuration, and a failed read keeps
//! everything — both visible in `/readyz`, the metrics and the log. The [`Sso`] then rebuilds
//! exactly the changed handles and evicts app tokens cached under rotated credentials
//! ([`Sso::apply_reload`]).
//!
//! [`PlatformConfig::problems`]: unilogin::config::PlatformConfig::problems

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use unilogin::config::{
    CachedSource, ConfigLoader, ConfigProblems, ConfigSource, OnReload, ReloadStatus,
    ReloaderHandle, YamlFile, YamlText,
};
use unilogin::{Error, Sso};

use crate::config::GatewayConfig;

/// What a watched source can tell about its reloads, whatever its loader.
#[async_trait::async_trait]
trait Watched: Send + Sync {
    fn status(&self) -> ReloadStatus;
    async fn check(&self) -> unilogin::Result<Option<unilogin::config::ReloadReport>>;
    fn watch(
        &self,
        every: Duration,
        trigger: Arc<Notify>,
        on_reload: OnReload,
    ) -> unilogin::Result<ReloaderHandle>;
}

#[async_trait::async_trait]
impl<L: ConfigLoader> Watched for Arc<CachedSource<L>> {
    fn status(&self) -> ReloadStatus {
        CachedSource::status(self)
    }

    async fn check(&self) -> unilogin::Result<Option<unilogin::config::ReloadReport>> {
        self.reload_if_changed(false).await
    }

    fn watch(
        &self,
        every: Duration,
        trigger: Arc<Notify>,
        on_reload: OnReload,
    ) -> unilogin::Result<ReloaderHandle> {
        self.spawn_watcher(every, Some(trigger), Some(on_reload))
    }
}

/// The gateway's tenant configuration: the source logins read, and its watcher.
pub struct Tenants {
    source: Arc<dyn ConfigSource>,
    watched: Box<dyn Watched>,
    kind: &'static str,
    trigger: Arc<Notify>,
    #[cfg(feature = "sql")]
    store: Option<unilogin::sql::SqlConfigStore>,
    watcher: std::sync::Mutex<Vec<ReloaderHandle>>,
    full_reload: std::sync::Mutex<Option<tokio::task::JoinHandle<()>>>,
    /// What every reload is handed to (the `Sso`'s handles), once watching.
    on_reload: std::sync::OnceLock<OnReload>,
}

impl fmt::Debug for Tenants {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tenants")
            .field("kind", &self.kind)
            .field("source", &self.source)
            .finish_non_exhaustive()
    }
}

impl Drop for Tenants {
    fn drop(&mut self) {
        if let Some(task) = self
            .full_reload
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take()
        {
            task.abort();
        }
    }
}

fn problems(e: Error) -> ConfigProblems {
    ConfigProblems(vec![e])
}

impl Tenants {
    fn new<L: ConfigLoader>(source: CachedSource<L>, kind: &'static str) -> Self {
        let source = Arc::new(source);
        Self {
            source: source.clone(),
            watched: Box::new(source),
            kind,
            trigger: Arc::new(Notify::new()),
            #[cfg(feature = "sql")]
            store: None,
            watcher: std::sync::Mutex::new(Vec::new()),
            full_reload: std::sync::Mutex::new(None),
            on_reload: std::sync::OnceLock::new(),
        }
    }

    /// Reads the configured source (`tenants_file`, `tenants_database`, or `yaml` when given)
    /// and validates every entry; `None` when no source is configured. Fails with every
    /// problem found.
    pub async fn open(
        config: &GatewayConfig,
        yaml: Option<YamlText>,
    ) -> Result<Option<Self>, ConfigProblems> {
        if let Some(text) = yaml {
            let source = CachedSource::new_checked(text).await?;
            return Ok(Some(Self::new(source, "yaml")));
        }
        if let Some(path) = &config.tenants_file {
            let source = CachedSource::new_checked(YamlFile::new(path.clone())).await?;
            return Ok(Some(Self::new(source, "file")));
        }
        if config.tenants_database.url.is_some() {
            return Self::open_database(config).await.map(Some);
        }
        Ok(None)
    }

    #[cfg(feature = "sql")]
    async fn open_database(config: &GatewayConfig) -> Result<Self, ConfigProblems> {
        let store = open_store(config).await.map_err(problems)?;
        let source = CachedSource::new_checked(store.clone()).await?;
        let mut tenants = Self::new(source, "database");
        tenants.store = Some(store);
        Ok(tenants)
    }

    #[cfg(not(feature = "sql"))]
    async fn open_database(_: &GatewayConfig) -> Result<Self, ConfigProblems> {
        Err(problems(Error::config(
            None,
            None,
            "tenants_database.url",
            "this gateway was built without the `sql` feature",
        )))
    }

    /// The source logins read.
    pub fn source(&self) -> &Arc<dyn ConfigSource> {
        &self.source
    }

    /// `file`, `database` or `yaml`.
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// How the reloads went.
    pub fn status(&self) -> ReloadStatus {
        self.watched.status()
    }

    /// The reload part of `/readyz`: `{status, rejected_entries, failures}`. `status` is `ok`,
    /// `rejected_entries` (some entries keep their last good configuration) or `failed` (the
    /// latest read failed; everything stays as it was). Counts only: the messages, which name
    /// tenants, are in the log and the admin API's status.
    pub fn readiness(&self) -> serde_json::Value {
        let s = self.status();
        let status = if s.last_error.is_some() {
            "failed"
        } else if s.rejected > 0 {
            "rejected_entries"
        } else {
            "ok"
        };
        serde_json::json!({
            "status": status,
            "source": self.kind,
            "entries": s.entries,
            "rejected_entries": s.rejected,
            "failures": s.failures,
        })
    }

    /// The SQL store, when the tenants live in one (what the admin API writes to).
    #[cfg(feature = "sql")]
    pub fn store(&self) -> Option<&unilogin::sql::SqlConfigStore> {
        self.store.as_ref()
    }

    /// Reads everything again at once, in the background (SIGHUP).
    pub fn trigger(&self) {
        self.trigger.notify_one();
    }

    /// Applies what changed in the source now, before returning (an admin change on this
    /// replica): only the changed entries are read when the source can tell which.
    pub async fn apply_changes_now(&self) {
        let outcome = match self.watched.check().await {
            Ok(None) => return,
            Ok(Some(report)) => Ok(report),
            Err(e) => Err(e),
        };
        if let Some(f) = self.on_reload.get() {
            f(&outcome);
        }
    }

    /// Starts watching (inside a tokio runtime): every reload is applied to `sso`'s prepared
    /// handles. Idempotent per [`Tenants`]: a second call replaces nothing.
    pub fn start_watching(&self, config: &GatewayConfig, sso: &Sso) -> unilogin::Result<()> {
        let mut watcher = self
            .watcher
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !watcher.is_empty() {
            return Ok(());
        }
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|_| Error::Internal("the tenant watcher needs a tokio runtime".into()))?;
        // The task is aborted when this value drops (its handle lives here), so holding the
        // `Sso` in it makes no cycle.
        let sso = sso.clone();
        let handle = runtime.clone();
        let on_reload: OnReload = Arc::new(move |outcome| {
            let Ok(report) = outcome else { return };
            if !report.has_changes() {
                return;
            }
            let sso = sso.clone();
            let report = report.clone();
            handle.spawn(async move { sso.apply_reload(&report).await });
        });
        let _ = self.on_reload.set(on_reload.clone());
        watcher.push(self.watched.watch(
            Duration::from_millis(config.reload.poll_ms),
            self.trigger.clone(),
            on_reload,
        )?);
        if config.reload.full_secs > 0 {
            let every = Duration::from_secs(config.reload.full_secs);
            let trigger = Arc::downgrade(&self.trigger);
            let task = runtime.spawn(async move {
                let mut tick = tokio::time::interval(every);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    let Some(t) = trigger.upgrade() else { break };
                    t.notify_one();
                }
            });
            *self
                .full_reload
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(task);
        }
        Ok(())
    }
}

/// Connects the SQL store the configuration names (migrating it when `migrate`), with the
/// secret keys and the reference allow-list of the configuration.
#[cfg(feature = "sql")]
pub async fn open_store(config: &GatewayConfig) -> unilogin::Result<unilogin::sql::SqlConfigStore> {
    use unilogin::config::{SecretRef, SecretRefPolicy};
    use unilogin::sql::{SecretCipher, SqlConfigStore};
    let db = &config.tenants_database;
    let Some(url) = db.connect_url() else {
        return Err(Error::config(
            None,
            None,
            "tenants_database.url",
            "no database configured",
        ));
    };
    // The keys are the operator's: any reference. An unset variable means "no keys".
    let keys = SecretRef::parse(&db.secret_keys);
    let cipher = match keys.resolve_with(None, &SecretRefPolicy::any()) {
        Ok(spec) => SecretCipher::parse(spec.expose()).map_err(|e| match e {
            Error::Config { reason, .. } => {
                Error::config(None, None, "tenants_database.secret_keys", reason)
            }
            other => other,
        })?,
        Err(reason) if matches!(keys, SecretRef::Env(_)) && reason.contains("is not set") => {
            SecretCipher::none()
        }
        Err(reason) => {
            return Err(Error::config(
                None,
                None,
                "tenants_database.secret_keys",
                reason,
            ));
        }
    };
    let store = SqlConfigStore::connect(&url, cipher)
        .await?
        .with_secret_refs(config.secret_refs.policy());
    if db.migrate {
        store.migrate().await?;
    }
    Ok(store)
}

/// What `unilogin-gateway check-config` does: reads the configured tenant source and checks
/// every entry exactly as a start would. `Ok(n)`: `n` entries, all valid.
/// The database is read, never migrated (a missing table is reported).
pub async fn check(config: &GatewayConfig) -> Result<usize, ConfigProblems> {
    let mut config = config.clone();
    config.tenants_database.migrate = false;
    match Tenants::open(&config, None).await? {
        Some(t) => Ok(t.status().entries),
        None => Ok(0),
    }
}

type ConfigCell = Arc<std::sync::OnceLock<Arc<Tenants>>>;

/// Reports the tenant configuration's reloads at every scrape (see [`crate::metrics`]).
pub(crate) struct ConfigCollector {
    tenants: ConfigCell,
}

impl ConfigCollector {
    pub(crate) fn new(cell: &ConfigCell) -> Self {
        Self {
            tenants: cell.clone(),
        }
    }
}

impl fmt::Debug for ConfigCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ConfigCollector")
    }
}

impl prometheus_client::collector::Collector for ConfigCollector {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::DescriptorEncoder<'_>,
    ) -> Result<(), fmt::Error> {
        use prometheus_client::encoding::EncodeMetric;
        use prometheus_client::metrics::counter::ConstCounter;
        use prometheus_client::metrics::gauge::ConstGauge;
        let Some(tenants) = self.tenants.get() else {
            return Ok(());
        };
        let s = tenants.status();
        for (name, help, value) in [
            (
                "unilogin_config_reloads",
                "Reads of the tenant configuration (the first one included).",
                s.reloads,
            ),
            (
                "unilogin_config_reload_failures",
                "Tenant configuration reads that failed as a whole; the last good configuration stayed.",
                s.failures,
            ),
        ] {
            let c = ConstCounter::new(value);
            let m = encoder.encode_descriptor(name, help, None, c.metric_type())?;
            c.encode(m)?;
        }
        let gauge = |n: usize| ConstGauge::new(i64::try_from(n).unwrap_or(i64::MAX));
        for (name, help, g) in [
            (
                "unilogin_config_entries",
                "Tenant platform configurations served.",
                gauge(s.entries),
            ),
            (
                "unilogin_config_rejected_entries",
                "Tenant platform configurations whose stored content is rejected (each keeps its last good configuration).",
                gauge(s.rejected),
            ),
            (
                "unilogin_config_last_reload_ok",
                "1 when the latest read of the tenant configuration worked and accepted every entry.",
                gauge(usize::from(s.is_clean())),
            ),
        ] {
            let m = encoder.encode_descriptor(name, help, None, g.metric_type())?;
            g.encode(m)?;
        }
        Ok(())
    }
}
