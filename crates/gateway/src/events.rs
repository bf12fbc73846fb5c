//! Platform events, after the receiver ([`crate::routes::events`]) verified them: the
//! de-duplication store, the bounded queue of accepted work, and the workers that apply it —
//! the leaver lifecycle (revocation by subject, "issued before now", on the shared revocation
//! list) and the app's webhook ([`crate::webhook`]).
//!
//! The receiver's order keeps every accepted event: queue capacity is reserved first
//! ([`EventQueue::reserve`]), then the event id is recorded in the shared store
//! ([`EventDedupe::first_seen`]), then the work is sent on the reserved slot and the platform
//! acknowledged. A full queue or an unreachable store answers 503 before anything is recorded,
//! so the platform's retry is processed; a replay (the id was recorded) is acknowledged and
//! dropped.
//!
//! Nothing here logs a decrypted body: the work carries only the [`DirectoryChange`]s, whose
//! `Debug` hides the ids.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use tokio::sync::mpsc;
use unilogin::config::PlatformConfig;
use unilogin::events::{DirectoryChange, EventCodec, LeaveReason, PersonIds};
use unilogin::identity::{IdentityKey, IdentityStore};
use unilogin::mapping::{Subject, SubjectKind};
use unilogin::{Error, PlatformName, Result, TenantId};
use unilogin_axum::session::{RevocationList, account_key, subject_key};

use crate::metrics::Metrics;
use crate::webhook::{Notice, NoticeKind, Webhook};

/// Remembers which events were seen (SET-if-absent with a time to live). Shared by replicas
/// when it is Redis, so a replay to another replica is recognised too.
#[async_trait]
pub trait EventDedupe: Send + Sync + fmt::Debug {
    /// Records `key` for `keep_for`: `true` when it was not recorded yet (the event is new),
    /// `false` for a replay. `Err` ([`Error::Store`]) when the store cannot tell.
    async fn first_seen(&self, key: &str, keep_for: Duration) -> Result<bool>;
}

/// The in-process [`EventDedupe`] (one replica). Bounded: when full, the key recorded first is
/// forgotten first.
pub struct MemoryDedupe {
    inner: Mutex<DedupeEntries>,
    max_entries: usize,
}

#[derive(Default)]
struct DedupeEntries {
    map: HashMap<String, Instant>,
    order: VecDeque<(Instant, String)>,
}

impl fmt::Debug for MemoryDedupe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryDedupe")
            .field("max_entries", &self.max_entries)
            .finish_non_exhaustive()
    }
}

impl MemoryDedupe {
    /// A store remembering at most `max_entries` keys.
    pub fn new(max_entries: usize) -> Self {
        Self {
            inner: Mutex::new(DedupeEntries::default()),
            max_entries: max_entries.max(1),
        }
    }
}

#[async_trait]
impl EventDedupe for MemoryDedupe {
    async fn first_seen(&self, key: &str, keep_for: Duration) -> Result<bool> {
        let now = Instant::now();
        let mut e = self.inner.lock().map_err(|_| Error::Store {
            store: "memory",
            operation: "record event id",
            message: "lock poisoned".into(),
        })?;
        // Forget what has expired, and the oldest when full.
        while let Some((at, k)) = e.order.front().cloned() {
            let full = e.map.len() >= self.max_entries;
            if at > now && !full {
                break;
            }
            e.order.pop_front();
            if e.map.get(&k) == Some(&at) {
                e.map.remove(&k);
            }
        }
        if e.map.get(key).is_some_and(|at| *at > now) {
            return Ok(false);
        }
        let forget_at = now + keep_for;
        e.map.insert(key.to_string(), forget_at);
        e.order.push_back((forget_at, key.to_string()));
        Ok(true)
    }
}

/// Redis: `SET <prefix>lease:<key> 1 NX PX <keep_for>` (the token store's lease command, which
/// is exactly a SET-if-absent with a time to live).
#[cfg(feature = "redis")]
#[derive(Debug)]
pub struct RedisDedupe(pub unilogin_redis::RedisStore);

#[cfg(feature = "redis")]
#[async_trait]
impl EventDedupe for RedisDedupe {
    async fn first_seen(&self, key: &str, keep_for: Duration) -> Result<bool> {
        use unilogin::token_cache::{TokenKey, TokenStore};
        let platform = PlatformName::new("events").map_err(|e| Error::Internal(e.to_string()))?;
        let tenant = TenantId::new("events").map_err(|e| Error::Internal(e.to_string()))?;
        let key = TokenKey::new(&platform, &tenant, key, None);
        self.0.try_lease(&key, "1", keep_for).await
    }
}

/// The de-duplication key of an event of `platform` for `tenant`.
pub fn dedupe_key(tenant: &str, platform: &str, event_key: &str) -> String {
    format!("{tenant}:{platform}:{event_key}")
}

/// Accepted work: the changes one event carries.
#[derive(Debug)]
pub struct Job {
    /// The tenant.
    pub tenant: TenantId,
    /// The platform (registered name).
    pub platform: &'static str,
    /// What the event means for people.
    pub changes: Vec<DirectoryChange>,
    /// What it means for a store app: a pushed ticket, an installation changing.
    pub store_app: Vec<unilogin::events::StoreAppChange>,
    /// When the platform's request arrived.
    pub received: Instant,
}

/// The bounded queue between the receiver and the workers.
#[derive(Debug, Clone)]
pub struct EventQueue {
    sender: mpsc::Sender<Job>,
}

/// A reserved place in the [`EventQueue`] (see [`EventQueue::reserve`]).
pub struct Slot<'a>(mpsc::Permit<'a, Job>);

impl Slot<'_> {
    /// Sends the job on the reserved place (never fails, never waits).
    pub fn send(self, job: Job) {
        self.0.send(job);
    }
}

impl EventQueue {
    /// A place for one job, or `None` when the queue is full (the receiver answers 503).
    pub fn reserve(&self) -> Option<Slot<'_>> {
        self.sender.try_reserve().ok().map(Slot)
    }

    /// Jobs waiting.
    pub fn len(&self) -> usize {
        self.sender.max_capacity() - self.sender.capacity()
    }

    /// Whether no job is waiting.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Everything the receiver and the workers share.
pub struct Events {
    pub(crate) queue: EventQueue,
    pub(crate) dedupe: Arc<dyn EventDedupe>,
    pub(crate) window: Duration,
    pub(crate) dedupe_ttl: Duration,
    codecs: Mutex<HashMap<(TenantId, &'static str), CachedCodec>>,
}

type CachedCodec = (Arc<PlatformConfig>, Arc<dyn EventCodec>);

impl fmt::Debug for Events {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Events")
            .field("queued", &self.queue.len())
            .field("dedupe", &self.dedupe)
            .finish_non_exhaustive()
    }
}

impl Events {
    /// The codec of `config` (built once per configuration revision; the configuration was
    /// validated on load, so building it again succeeds). `None`: no `events` configured.
    pub(crate) fn codec(
        &self,
        config: &Arc<PlatformConfig>,
        platform: &'static str,
    ) -> Result<Option<Arc<dyn EventCodec>>> {
        if config.events.is_none() {
            return Ok(None);
        }
        let key = (config.tenant.clone(), platform);
        let lock = || {
            self.codecs
                .lock()
                .map_err(|_| Error::Internal("event codec cache lock poisoned".into()))
        };
        if let Some((cfg, codec)) = lock()?.get(&key)
            && Arc::ptr_eq(cfg, config)
        {
            return Ok(Some(codec.clone()));
        }
        let Some(codec) = config.event_codec()? else {
            return Ok(None);
        };
        let codec: Arc<dyn EventCodec> = Arc::from(codec);
        lock()?.insert(key, (config.clone(), codec.clone()));
        Ok(Some(codec))
    }
}

/// What the workers need (not the whole gateway: the workers end when the gateway is dropped).
pub(crate) struct Applier {
    pub(crate) revocations: Arc<dyn RevocationList>,
    pub(crate) identities: Option<Arc<dyn IdentityStore>>,
    pub(crate) webhook: Arc<Webhook>,
    pub(crate) metrics: Metrics,
    pub(crate) session_ttl: Duration,
    /// The OpenID Provider, whose grants and relying-party sessions a leaver loses too.
    pub(crate) provider: Option<unilogin_provider::Provider>,
    /// Where store apps' pushed tickets are kept (the `Sso`'s).
    pub(crate) tickets: Arc<dyn unilogin::isv::TicketStore>,
    /// Store apps' installations: organisation entries written, uninstalled ones closed.
    pub(crate) installations: crate::store_apps::Installations,
}

/// Starts the queue and `workers` tasks applying its jobs (inside a tokio runtime).
pub(crate) fn start(
    capacity: usize,
    workers: usize,
    dedupe: Arc<dyn EventDedupe>,
    window: Duration,
    dedupe_ttl: Duration,
    applier: Applier,
) -> Events {
    let (sender, receiver) = mpsc::channel(capacity.max(1));
    let receiver = Arc::new(tokio::sync::Mutex::new(receiver));
    let applier = Arc::new(applier);
    for _ in 0..workers.max(1) {
        let receiver = receiver.clone();
        let applier = applier.clone();
        tokio::spawn(async move {
            loop {
                let job = receiver.lock().await.recv().await;
                let Some(job) = job else { break };
                applier.apply(job).await;
            }
        });
    }
    Events {
        queue: EventQueue { sender },
        dedupe,
        window,
        dedupe_ttl,
        codecs: Mutex::new(HashMap::new()),
    }
}

/// The identities an event's ids may be linked under (user id, union id, open id).
fn identity_keys(tenant: &TenantId, platform: &PlatformName, ids: &PersonIds) -> Vec<IdentityKey> {
    [
        (SubjectKind::UserId, &ids.user_id),
        (SubjectKind::UnionId, &ids.union_id),
        (SubjectKind::OpenId, &ids.open_id),
    ]
    .into_iter()
    .filter_map(|(kind, v)| {
        v.as_ref().map(|value| IdentityKey {
            tenant: tenant.clone(),
            platform: platform.clone(),
            subject: Subject {
                kind,
                value: value.clone(),
            },
        })
    })
    .collect()
}

impl Applier {
    /// Store-app changes: a pushed ticket is offered to the ticket store (the newest of each
    /// app is kept); installation changes go to [`crate::store_apps`].
    async fn apply_store_app(&self, job: &Job) {
        use unilogin::events::StoreAppChange;
        for change in &job.store_app {
            match change {
                StoreAppChange::TicketPushed { app, ticket } => {
                    match self.tickets.offer(app, ticket.clone()).await {
                        Ok(offered) => tracing::info!(
                            tenant = %job.tenant,
                            platform = job.platform,
                            app = %app,
                            ?offered,
                            "store-app ticket received"
                        ),
                        Err(e) => tracing::warn!(
                            tenant = %job.tenant,
                            platform = job.platform,
                            app = %app,
                            error = %e,
                            "store-app ticket not stored; the platform pushes it again"
                        ),
                    }
                }
                other => {
                    self.installations
                        .apply(&job.tenant, job.platform, other)
                        .await
                }
            }
        }
    }

    async fn apply(&self, job: Job) {
        self.apply_store_app(&job).await;
        for change in &job.changes {
            match change {
                DirectoryChange::Left { ids, reason } => {
                    self.revoke(&job, ids).await;
                    let kind = match reason {
                        LeaveReason::Disabled => NoticeKind::Disabled,
                        _ => NoticeKind::Left,
                    };
                    self.notify(&job, kind, ids);
                }
                DirectoryChange::Updated { ids } => {
                    // The gateway caches no profile data (sessions carry their claims until they
                    // expire; the identity store keeps links, not profiles): the app is told.
                    self.notify(&job, NoticeKind::Updated, ids);
                }
                _ => {}
            }
            self.metrics
                .event_applied(job.platform, change.kind(), job.received.elapsed());
        }
    }

    /// Revokes every subject key of the person, "issued before now".
    async fn revoke(&self, job: &Job, ids: &PersonIds) {
        let tenant = job.tenant.as_str();
        let mut subjects: Vec<String> = ids
            .iter()
            .map(|id| subject_key(tenant, job.platform, id))
            .collect();
        if let Some(store) = &self.identities {
            match PlatformName::new(job.platform) {
                Ok(platform) => {
                    for key in identity_keys(&job.tenant, &platform, ids) {
                        match store.find(&key).await {
                            Ok(Some(account)) => subjects.push(account_key(account.as_str())),
                            Ok(None) => {}
                            Err(e) => tracing::warn!(
                                tenant,
                                platform = job.platform,
                                error = %e,
                                "leaver's account not looked up (identity store); their platform sessions are revoked"
                            ),
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "platform name not usable for accounts"),
            }
        }
        subjects.sort();
        subjects.dedup();
        let now = SystemTime::now();
        let until = now + self.session_ttl;
        let mut shared = true;
        for subject in &subjects {
            if self
                .revocations
                .revoke_subject(subject, now, until)
                .await
                .is_err()
            {
                shared = false;
            }
        }
        if let Some(provider) = &self.provider {
            // Refresh grants revoked, and back-channel logout to every relying party that got
            // tokens in the leaver's sessions.
            for subject in &subjects {
                if let Err(e) = provider.logout_subject(subject).await {
                    shared = false;
                    tracing::warn!(tenant, platform = job.platform, error = %e, "leaver's OpenID Provider sessions not all ended");
                }
            }
        }
        if shared {
            tracing::info!(
                tenant,
                platform = job.platform,
                subjects = subjects.len(),
                "leaver's sessions revoked"
            );
        } else {
            self.metrics.event_revocation_unshared(job.platform);
            tracing::warn!(
                tenant,
                platform = job.platform,
                subjects = subjects.len(),
                "leaver's sessions revoked on this replica only; queued for the shared list"
            );
        }
    }

    fn notify(&self, job: &Job, kind: NoticeKind, ids: &PersonIds) {
        self.webhook.enqueue(Notice {
            kind,
            tenant: job.tenant.to_string(),
            platform: job.platform.to_string(),
            ids: ids.clone(),
            occurred_at: SystemTime::now(),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_dedupe_sees_a_key_once_until_it_expires() {
        let d = MemoryDedupe::new(10);
        assert!(d.first_seen("a", Duration::from_millis(30)).await.unwrap());
        assert!(!d.first_seen("a", Duration::from_millis(30)).await.unwrap());
        assert!(d.first_seen("b", Duration::from_secs(60)).await.unwrap());
        tokio::time::sleep(Duration::from_millis(40)).await;
        assert!(d.first_seen("a", Duration::from_secs(60)).await.unwrap());
        assert!(!d.first_seen("b", Duration::from_secs(60)).await.unwrap());
    }

    #[tokio::test]
    async fn memory_dedupe_is_bounded_oldest_first() {
        let d = MemoryDedupe::new(3);
        for k in ["a", "b", "c", "d"] {
            assert!(d.first_seen(k, Duration::from_secs(60)).await.unwrap());
        }
        assert_eq!(d.inner.lock().unwrap().map.len(), 3);
        // `a` was forgotten to make room; `d` is remembered.
        assert!(!d.first_seen("d", Duration::from_secs(60)).await.unwrap());
        assert!(d.first_seen("a", Duration::from_secs(60)).await.unwrap());
    }

    #[tokio::test]
    async fn the_queue_refuses_when_full_and_frees_on_receive() {
        let (sender, mut receiver) = mpsc::channel(1);
        let q = EventQueue { sender };
        let job = || Job {
            tenant: TenantId::new("acme").unwrap(),
            platform: "p",
            changes: vec![],
            store_app: vec![],
            received: Instant::now(),
        };
        q.reserve().unwrap().send(job());
        assert_eq!(q.len(), 1);
        assert!(q.reserve().is_none());
        receiver.recv().await.unwrap();
        assert!(q.reserve().is_some());
    }

    #[test]
    fn identity_keys_cover_every_id_kind() {
        let ids = PersonIds {
            user_id: Some("u".into()),
            union_id: None,
            open_id: Some("o".into()),
            org_id: Some("corp".into()),
        };
        let keys = identity_keys(
            &TenantId::new("acme").unwrap(),
            &PlatformName::new("p").unwrap(),
            &ids,
        );
        let kinds: Vec<_> = keys.iter().map(|k| k.subject.kind).collect();
        assert_eq!(kinds, [SubjectKind::UserId, SubjectKind::OpenId]);
        assert_eq!(keys[1].subject.value, "o");
    }
}
