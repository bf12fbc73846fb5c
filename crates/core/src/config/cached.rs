//! [`CachedSource`]: serves configurations from memory and reloads them from a
//! [`ConfigLoader`] (a YAML file, a database) without a restart.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

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
}

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
    rejected: Option<Error>,
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
        let source = Self {
            loader,
            snapshot: RwLock::new(Arc::new(Snapshot::default())),
            reloading: tokio::sync::Mutex::new(None),
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

    /// Reloads now (see the type's rules) and says what changed.
    pub async fn reload_now(&self) -> Result<ReloadReport> {
        let mut last_failure = self.reloading.lock().await;
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
                *last_failure = Some(text);
                return Err(e);
            }
        };
        let old = self.current();
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
            let slot = apply(previous, entry, &mut report, &key);
            slots.insert(key, slot);
        }
        for key in old.slots.keys() {
            if !slots.contains_key(key) {
                tracing::info!(tenant = %key.0, platform = %key.1, "configuration removed");
                report.removed.push(key.clone());
            }
        }
        *self
            .snapshot
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(Snapshot { slots });
        Ok(report)
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
) -> Slot {
    let last_good = previous.and_then(|p| p.good.clone());
    let candidate = entry.config.and_then(|mut cfg| {
        if cfg.tenant != entry.tenant || cfg.platform != entry.platform {
            return Err(Error::config(
                Some(&entry.tenant),
                Some(entry.platform.as_str()),
                "tenant",
                "the entry's tenant or platform does not match where it is stored",
            ));
        }
        cfg.enabled = cfg.enabled && entry.enabled;
        if let Some(good) = &last_good
            && **good == cfg
        {
            return Ok(None);
        }
        cfg.validate().map(|()| Some(cfg))
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
                tracing::info!(tenant = %key.0, platform = %key.1, enabled = cfg.enabled, "configuration added");
                report.added.push(key.clone());
            }
            Slot {
                good: Some(Arc::new(cfg)),
                rejected: None,
                disabled: !entry.enabled,
            }
        }
        Err(e) => {
            let repeated = previous
                .and_then(|p| p.rejected.as_ref())
                .is_some_and(|r| r.to_string() == e.to_string());
            if !repeated {
                tracing::warn!(
                    error = %e,
                    keeps_last_good = last_good.is_some(),
                    "configuration change rejected"
                );
            }
            report.rejected.push(e.clone());
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
                rejected: Some(e),
                disabled: !entry.enabled,
            }
        }
    }
}

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
            }) => Err(e.clone()),
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
