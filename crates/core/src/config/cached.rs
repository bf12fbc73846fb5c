//! [`CachedSource`]: serves configurations from memory and reloads them from a
//! [`ConfigLoader`] (a YAML file, a database) without a restart.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;

use super::{ConfigSource, PlatformConfig};
use crate::error::{Error, Result};
use crate::types::{PlatformName, TenantId};

/// One (tenant, platform) entry as a loader read it, before validation.
#[derive(Debug, Clone)]
pub struct LoadedEntry {
    /// The tenant.
    pub tenant: TenantId,
    /// The platform.
    pub platform: PlatformName,
    /// Whether the stored entry allows new logins (enabled and not deprecated). Known even when
    /// the rest of the entry is invalid, so that disabling always takes effect.
    pub enabled: bool,
    /// The configuration, or why it could not be read (naming tenant, platform and field).
    pub config: Result<PlatformConfig>,
}

/// Reads every configuration entry from where they are kept.
#[async_trait]
pub trait ConfigLoader: Send + Sync + fmt::Debug + 'static {
    /// Reads all entries afresh. An `Err` means the whole read failed (file unreadable, YAML
    /// syntax error, database unreachable): the cache then keeps everything it has. A problem
    /// with one entry is reported in that entry's [`LoadedEntry::config`] instead.
    async fn load(&self) -> Result<Vec<LoadedEntry>>;

    /// A cheap token that changes whenever what [`load`](Self::load) returns may have changed
    /// (a file's size, modification time and content hash; a database's change counter), so a
    /// watcher ([`CachedSource::spawn_watcher`]) reloads only then. `None`: the loader cannot
    /// tell, and every watch tick reloads. The default is `None`.
    async fn version(&self) -> Result<Option<String>> {
        Ok(None)
    }

    /// A position in the stored configuration's history from which [`changes`](Self::changes)
    /// can tell what was written later (a database: the latest modification time). Read
    /// *before* a full [`load`](Self::load). `None` (the default): the loader has no history,
    /// and every change means a full load.
    async fn cursor(&self) -> Result<Option<String>> {
        Ok(None)
    }

    /// What was written since `cursor` (from [`cursor`](Self::cursor) or an earlier
    /// [`Changes::cursor`]): the entries written since, read afresh, and the ones deleted.
    /// `None` (the default): cannot tell, load everything. A loader may return entries that
    /// did not change (they are compared and left alone).
    async fn changes(&self, cursor: &str) -> Result<Option<Changes>> {
        let _ = cursor;
        Ok(None)
    }
}

/// What a loader says was written since a cursor ([`ConfigLoader::changes`]).
#[derive(Debug, Clone, Default)]
pub struct Changes {
    /// Entries written since the cursor (new or changed), read afresh.
    pub entries: Vec<LoadedEntry>,
    /// Entries deleted since the cursor.
    pub removed: Vec<(TenantId, PlatformName)>,
    /// Where the next [`ConfigLoader::changes`] continues.
    pub cursor: String,
}

/// How the last reloads of a [`CachedSource`] went ([`CachedSource::status`]).
#[derive(Debug, Clone, Default)]
pub struct ReloadStatus {
    /// Reloads attempted (the first load included).
    pub reloads: u64,
    /// Reloads that failed as a whole (nothing changed), or whose version check failed.
    pub failures: u64,
    /// Why the latest reload failed as a whole, while it stays failed (never a secret).
    pub last_error: Option<String>,
    /// When the configuration was last read successfully.
    pub last_success: Option<SystemTime>,
    /// Entries whose stored content is currently rejected (each keeps its last good
    /// configuration, if it had one).
    pub rejected: usize,
    /// The rejected entries' first problems, up to [`MAX_REPORTED`] of them.
    pub rejected_errors: Vec<Error>,
    /// Entries served.
    pub entries: usize,
}

impl ReloadStatus {
    /// Whether the latest reload read everything and accepted every entry.
    pub fn is_clean(&self) -> bool {
        self.last_error.is_none() && self.rejected == 0
    }
}

/// How many rejected entries' errors [`ReloadStatus::rejected_errors`] keeps.
pub const MAX_REPORTED: usize = 100;

/// Called after every reload a watcher makes, with its outcome.
pub type OnReload = Arc<dyn Fn(&Result<ReloadReport>) + Send + Sync>;

/// What one reload changed.
#[derive(Debug, Clone, Default)]
pub struct ReloadReport {
    /// Entries that are new and valid.
    pub added: Vec<(TenantId, PlatformName)>,
    /// Entries whose configuration changed and is valid: new logins use it.
    pub changed: Vec<(TenantId, PlatformName)>,
    /// Entries that disappeared (deleted): they no longer serve logins.
    pub removed: Vec<(TenantId, PlatformName)>,
    /// Entries whose new content was rejected; the last good configuration (if any) stays.
    pub rejected: Vec<Error>,
    /// Entries read again without a change.
    pub unchanged: usize,
}

impl ReloadReport {
    /// Whether the reload changed what logins see.
    pub fn has_changes(&self) -> bool {
        !(self.added.is_empty() && self.changed.is_empty() && self.removed.is_empty())
    }
}

type Key = (TenantId, PlatformName);

#[derive(Debug, Clone)]
struct Slot {
    /// What logins get: the last good configuration.
    good: Option<Arc<PlatformConfig>>,
    /// The latest rejected version's error, while it stays rejected.
    rejected: Option<Box<Error>>,
    /// The stored entry is disabled (used when there is no good configuration to disable).
    disabled: bool,
}

#[derive(Debug, Default)]
struct Snapshot {
    slots: BTreeMap<Key, Slot>,
}

/// A [`ConfigSource`] that serves from memory what a [`ConfigLoader`] read, and reloads it on
/// [`reload`](ConfigSource::reload) or periodically ([`spawn_reloader`](Self::spawn_reloader)).
///
/// Rules of a reload, entry by entry:
/// - a changed entry is validated ([`PlatformConfig::validate`]); if valid it serves new logins
///   from then on, as a new `Arc` (so [`Sso`](crate::sso::Sso) rebuilds its handler), otherwise
///   it is rejected, logged (`tracing` warn, once per distinct error) and the last good
///   configuration stays in force; an entry with no good version answers `get` with its error;
/// - an unchanged entry keeps its `Arc`;
/// - a disabled or deprecated entry stops new logins even when the rest of its change is
///   invalid (the last good configuration is kept, disabled);
/// - an entry that is gone stops serving;
/// - when the whole read fails, nothing changes (logged, and returned by `reload`).
///
/// Reads never wait for a reload: `get` clones an `Arc` from the current snapshot.
pub struct CachedSource<L> {
    loader: L,
    snapshot: RwLock<Arc<Snapshot>>,
    reloading: tokio::sync::Mutex<Option<String>>,
    status: RwLock<ReloadStatus>,
    /// The loader's version at the last reload (see [`ConfigLoader::version`]).
    version: std::sync::Mutex<Option<String>>,
    /// The loader's cursor at the last reload (see [`ConfigLoader::cursor`]).
    cursor: std::sync::Mutex<Option<String>>,
}

impl<L: fmt::Debug> fmt::Debug for CachedSource<L> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CachedSource")
            .field("loader", &self.loader)
            .field("entries", &self.current().slots.len())
            .finish()
    }
}

impl<L> CachedSource<L> {
    /// The loader.
    pub fn loader(&self) -> &L {
        &self.loader
    }

    /// How the last reloads went: failures, rejected entries, when it last worked.
    pub fn status(&self) -> ReloadStatus {
        self.status
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn update_status(&self, f: impl FnOnce(&mut ReloadStatus)) {
        f(&mut self.status.write().unwrap_or_else(PoisonError::into_inner));
    }

    fn current(&self) -> Arc<Snapshot> {
        self.snapshot
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl<L: ConfigLoader> CachedSource<L> {
    /// Loads everything once. Fails only if the whole read fails; invalid entries are logged,
    /// reported by [`ConfigSource::get`] and listed in the returned report.
    pub async fn new(loader: L) -> Result<(Self, ReloadReport)> {
        let version = loader.version().await.ok().flatten();
        let source = Self {
            loader,
            snapshot: RwLock::new(Arc::new(Snapshot::default())),
            reloading: tokio::sync::Mutex::new(None),
            status: RwLock::new(ReloadStatus::default()),
            version: std::sync::Mutex::new(version),
            cursor: std::sync::Mutex::new(None),
        };
        let report = source.reload_now().await?;
        Ok((source, report))
    }

    /// Loads everything once and fails on the first invalid entry too: use it at start-up when a
    /// configuration mistake must stop the process.
    pub async fn new_strict(loader: L) -> Result<Self> {
        let (source, report) = Self::new(loader).await?;
        match report.rejected.into_iter().next() {
            Some(e) => Err(e),
            None => Ok(source),
        }
    }

    /// Loads everything once, like [`new`](Self::new), and refuses when anything is wrong,
    /// with **every** problem: the whole read's error, or each rejected entry's problems (all
    /// of them, each naming tenant, platform and field). Use it at start-up and for
    /// configuration checks that must list everything at once.
    pub async fn new_checked(loader: L) -> std::result::Result<Self, ConfigProblems> {
        let (source, report) = Self::new(loader)
            .await
            .map_err(|e| ConfigProblems(vec![e]))?;
        if report.rejected.is_empty() {
            Ok(source)
        } else {
            Err(ConfigProblems(report.rejected))
        }
    }

    /// Reloads now (see the type's rules) and says what changed.
    pub async fn reload_now(&self) -> Result<ReloadReport> {
        let mut last_failure = self.reloading.lock().await;
        // Read before the load: whatever is written during it is seen by the next `changes`.
        let cursor = self.loader.cursor().await.ok().flatten();
        let entries = match self.loader.load().await {
            Ok(entries) => {
                if last_failure.take().is_some() {
                    tracing::info!("configuration can be read again");
                }
                entries
            }
            Err(e) => {
                let text = e.to_string();
                if last_failure.as_deref() != Some(text.as_str()) {
                    tracing::warn!(error = %e, "reading the configuration failed; keeping the last good configuration");
                }
                *last_failure = Some(text.clone());
                self.update_status(|s| {
                    s.reloads += 1;
                    s.failures += 1;
                    s.last_error = Some(text);
                });
                return Err(e);
            }
        };
        let old = self.current();
        // The first load logs a summary, not a line per entry.
        let initial = old.slots.is_empty();
        let mut report = ReloadReport::default();
        let mut slots = BTreeMap::new();
        for entry in entries {
            let key = (entry.tenant.clone(), entry.platform.clone());
            if slots.contains_key(&key) {
                let e = Error::config(
                    Some(&entry.tenant),
                    Some(entry.platform.as_str()),
                    "platform",
                    "configured more than once; the later entry is ignored",
                );
                tracing::warn!(error = %e, "configuration entry rejected");
                report.rejected.push(e);
                continue;
            }
            let previous = old.slots.get(&key);
            let slot = apply(previous, entry, &mut report, &key, initial);
            slots.insert(key, slot);
        }
        for key in old.slots.keys() {
            if !slots.contains_key(key) {
                tracing::info!(tenant = %key.0, platform = %key.1, "configuration removed");
                report.removed.push(key.clone());
            }
        }
        if initial {
            tracing::info!(
                entries = slots.len(),
                rejected = report.rejected.len(),
                "configuration loaded"
            );
        }
        self.install(slots, cursor);
        Ok(report)
    }

    /// Serves `slots` from now on and records a successful reload.
    fn install(&self, slots: BTreeMap<Key, Slot>, cursor: Option<String>) {
        let rejected: Vec<&Error> = slots
            .values()
            .filter_map(|s| s.rejected.as_deref())
            .collect();
        let (rejected_count, rejected_errors) = (
            rejected.len(),
            rejected
                .into_iter()
                .take(MAX_REPORTED)
                .cloned()
                .collect::<Vec<_>>(),
        );
        let entries = slots.len();
        *self
            .snapshot
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(Snapshot { slots });
        *self.cursor.lock().unwrap_or_else(PoisonError::into_inner) = cursor;
        self.update_status(|s| {
            s.reloads += 1;
            s.last_error = None;
            s.last_success = Some(SystemTime::now());
            s.rejected = rejected_count;
            s.rejected_errors = rejected_errors;
            s.entries = entries;
        });
    }

    /// Applies only what the loader says was written since the last reload
    /// ([`ConfigLoader::changes`]), entry by entry under the same rules as a full reload.
    /// `Ok(None)`: the loader cannot tell (or nothing turned up although the version moved),
    /// so a full reload is needed.
    async fn reload_changes(&self) -> Result<Option<ReloadReport>> {
        let _guard = self.reloading.lock().await;
        let Some(cursor) = self
            .cursor
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
        else {
            return Ok(None);
        };
        let Some(changes) = self.loader.changes(&cursor).await? else {
            return Ok(None);
        };
        if changes.entries.is_empty() && changes.removed.is_empty() {
            // The version moved without a visible row (an edit that bumped nothing we read):
            // read everything.
            return Ok(None);
        }
        let old = self.current();
        let mut slots = old.slots.clone();
        let mut report = ReloadReport::default();
        let mut written = std::collections::BTreeSet::new();
        for entry in changes.entries {
            let key = (entry.tenant.clone(), entry.platform.clone());
            if !written.insert(key.clone()) {
                continue;
            }
            let slot = apply(old.slots.get(&key), entry, &mut report, &key, false);
            slots.insert(key, slot);
        }
        for key in changes.removed {
            if !written.contains(&key) && slots.remove(&key).is_some() {
                tracing::info!(tenant = %key.0, platform = %key.1, "configuration removed");
                report.removed.push(key);
            }
        }
        self.install(slots, Some(changes.cursor));
        Ok(Some(report))
    }

    /// Reloads if the loader's [`version`](ConfigLoader::version) changed since the last
    /// reload (always when the loader cannot tell, or when `force`). `Ok(None)`: nothing to do.
    pub async fn reload_if_changed(&self, force: bool) -> Result<Option<ReloadReport>> {
        let version = match self.loader.version().await {
            Ok(v) => v,
            Err(e) => {
                let text = e.to_string();
                let repeated = self.status().last_error.as_deref() == Some(text.as_str());
                if !repeated {
                    tracing::warn!(error = %e, "checking the configuration for changes failed; keeping the last good configuration");
                }
                self.update_status(|s| {
                    s.failures += 1;
                    s.last_error = Some(text);
                });
                return Err(e);
            }
        };
        let seen = self
            .version
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if !force && version.is_some() && version == seen && self.status().last_error.is_none() {
            return Ok(None);
        }
        // A failed partial read falls back to a full one, which reports the failure.
        let partial = if force {
            None
        } else {
            self.reload_changes().await.unwrap_or(None)
        };
        let report = match partial {
            Some(report) => report,
            None => self.reload_now().await?,
        };
        // The version read before the load: a change made during it is seen at the next check.
        *self.version.lock().unwrap_or_else(PoisonError::into_inner) = version;
        Ok(Some(report))
    }

    /// Watches the configuration in a background task (on the current tokio runtime) until the
    /// returned handle is dropped: every `every` it asks the loader for its
    /// [`version`](ConfigLoader::version) and reloads when that changed; a notification on
    /// `trigger` (a signal handler, an admin action) reloads at once. `on_reload` sees every
    /// reload's outcome. Failures are logged (once per distinct error) and the last good
    /// configuration stays.
    pub fn spawn_watcher(
        self: &Arc<Self>,
        every: Duration,
        trigger: Option<Arc<tokio::sync::Notify>>,
        on_reload: Option<OnReload>,
    ) -> Result<ReloaderHandle> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            Error::Internal("spawn_watcher must be called inside a tokio runtime".into())
        })?;
        let weak = Arc::downgrade(self);
        let every = every.max(Duration::from_millis(10));
        let trigger = trigger.unwrap_or_default();
        let task = runtime.spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                let force = tokio::select! {
                    _ = tick.tick() => false,
                    () = trigger.notified() => true,
                };
                let Some(source) = weak.upgrade() else { break };
                // Errors were logged where they happened.
                let outcome = match source.reload_if_changed(force).await {
                    Ok(None) => continue,
                    Ok(Some(report)) => Ok(report),
                    Err(e) => Err(e),
                };
                if let Some(f) = &on_reload {
                    f(&outcome);
                }
            }
        });
        Ok(ReloaderHandle { task })
    }

    /// Reloads every `every` in a background task (on the current tokio runtime) until the
    /// returned handle is dropped. Failures are logged (once per distinct error) and the last
    /// good configuration stays.
    pub fn spawn_reloader(self: &Arc<Self>, every: Duration) -> Result<ReloaderHandle> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| {
            Error::Internal("spawn_reloader must be called inside a tokio runtime".into())
        })?;
        let weak = Arc::downgrade(self);
        let every = every.max(Duration::from_millis(10));
        let task = runtime.spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            tick.tick().await;
            loop {
                tick.tick().await;
                let Some(source) = weak.upgrade() else { break };
                // Errors were logged by `reload_now`.
                let _ = source.reload_now().await;
            }
        });
        Ok(ReloaderHandle { task })
    }
}

fn apply(
    previous: Option<&Slot>,
    entry: LoadedEntry,
    report: &mut ReloadReport,
    key: &Key,
    initial: bool,
) -> Slot {
    let last_good = previous.and_then(|p| p.good.clone());
    let candidate = entry.config.map_err(|e| vec![e]).and_then(|mut cfg| {
        if cfg.tenant != entry.tenant || cfg.platform != entry.platform {
            return Err(vec![Error::config(
                Some(&entry.tenant),
                Some(entry.platform.as_str()),
                "tenant",
                "the entry's tenant or platform does not match where it is stored",
            )]);
        }
        cfg.enabled = cfg.enabled && entry.enabled;
        if let Some(good) = &last_good
            && **good == cfg
        {
            return Ok(None);
        }
        let problems = cfg.problems();
        if problems.is_empty() {
            Ok(Some(cfg))
        } else {
            Err(problems)
        }
    });
    match candidate {
        Ok(None) => {
            report.unchanged += 1;
            Slot {
                good: last_good,
                rejected: None,
                disabled: !entry.enabled,
            }
        }
        Ok(Some(cfg)) => {
            if last_good.is_some() {
                tracing::info!(tenant = %key.0, platform = %key.1, enabled = cfg.enabled, "configuration changed");
                report.changed.push(key.clone());
            } else {
                if !initial {
                    tracing::info!(tenant = %key.0, platform = %key.1, enabled = cfg.enabled, "configuration added");
                }
                report.added.push(key.clone());
            }
            Slot {
                good: Some(Arc::new(cfg)),
                rejected: None,
                disabled: !entry.enabled,
            }
        }
        Err(problems) => {
            let first = problems
                .first()
                .cloned()
                .unwrap_or_else(|| Error::Internal("rejected without a reason".into()));
            let repeated = previous
                .and_then(|p| p.rejected.as_ref())
                .is_some_and(|r| r.to_string() == first.to_string());
            if !repeated {
                for e in &problems {
                    tracing::warn!(
                        error = %e,
                        keeps_last_good = last_good.is_some(),
                        "configuration change rejected"
                    );
                }
            }
            report.rejected.extend(problems);
            // Disabling always takes effect, even together with an invalid change.
            let good = match last_good {
                Some(g) if !entry.enabled && g.enabled => {
                    let mut disabled = PlatformConfig::clone(&g);
                    disabled.enabled = false;
                    Some(Arc::new(disabled))
                }
                other => other,
            };
            Slot {
                good,
                rejected: Some(Box::new(first)),
                disabled: !entry.enabled,
            }
        }
    }
}

/// Every problem of a configuration, each naming tenant, platform and field where it has them
/// (see [`CachedSource::new_checked`]). `Display` writes one problem per line.
#[derive(Debug, Clone)]
pub struct ConfigProblems(pub Vec<Error>);

impl fmt::Display for ConfigProblems {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.0.len();
        write!(
            f,
            "{n} configuration problem{}:",
            if n == 1 { "" } else { "s" }
        )?;
        for e in &self.0 {
            write!(f, "\n  - {e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigProblems {}

#[async_trait]
impl<L: ConfigLoader> ConfigSource for CachedSource<L> {
    async fn get(&self, tenant: &TenantId, platform: &str) -> Result<Arc<PlatformConfig>> {
        let snapshot = self.current();
        let not_configured = || Error::PlatformNotConfigured {
            tenant: tenant.clone(),
            platform: platform.chars().take(64).collect(),
        };
        let Ok(name) = PlatformName::new(platform) else {
            return Err(if snapshot.slots.keys().any(|(t, _)| t == tenant) {
                not_configured()
            } else {
                Error::UnknownTenant {
                    tenant: tenant.to_string(),
                }
            });
        };
        let key = (tenant.clone(), name.clone());
        match snapshot.slots.get(&key) {
            Some(Slot { good: Some(g), .. }) => Ok(g.clone()),
            Some(Slot { disabled: true, .. }) => Err(Error::Disabled {
                tenant: tenant.clone(),
                platform: name,
            }),
            Some(Slot {
                rejected: Some(e), ..
            }) => Err(Error::clone(e)),
            Some(_) => Err(not_configured()),
            None if snapshot.slots.keys().any(|(t, _)| t == tenant) => Err(not_configured()),
            None => Err(Error::UnknownTenant {
                tenant: tenant.to_string(),
            }),
        }
    }

    async fn list(&self) -> Result<Vec<Arc<PlatformConfig>>> {
        Ok(self
            .current()
            .slots
            .values()
            .filter_map(|s| s.good.clone())
            .collect())
    }

    async fn reload(&self) -> Result<ReloadReport> {
        self.reload_now().await
    }
}

/// Stops the background reloader of [`CachedSource::spawn_reloader`] when dropped.
#[derive(Debug)]
pub struct ReloaderHandle {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for ReloaderHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}
