//! Pending redirect logins: the core's [`PendingLogin`] (state, PKCE verifier, nonce, target)
//! plus what the gateway adds (return URL, browser binding, expiry), kept in a
//! [`LoginStateStore`] under the login's `state` — memory by default, Redis when replicas must
//! share it (`unilogin_redis::RedisStateStore`, adapted below).
//!
//! A state is **consumed atomically**: [`LoginStateStore::take`] returns the record once and
//! leaves a `used` tombstone until the record would have been forgotten anyway, so a replayed
//! state is reported as reused (not unknown) and two concurrent callbacks cannot both succeed.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use unilogin::web_login::PendingLogin;
use unilogin::{Error, Result};
use url::Url;

/// What the gateway remembers about a pending redirect login. Serialize it only into a
/// server-side store: it holds the state and PKCE verifier in clear.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PendingRecord {
    /// The core's pending login (tenant, platform, flow, redirect URI, state, verifier, nonce).
    pub login: PendingLogin,
    /// The validated return URL.
    pub return_to: Url,
    /// The browser-binding cookie value the state belongs to.
    pub binding: String,
    /// When the state stops being accepted (Unix milliseconds).
    pub expires_at_ms: u64,
}

impl fmt::Debug for PendingRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingRecord")
            .field("login", &self.login)
            .field("return_to", &self.return_to.as_str())
            .field("binding", &"***")
            .field("expires_at_ms", &self.expires_at_ms)
            .finish()
    }
}

/// The result of consuming a state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Taken {
    /// The state was pending; it is now consumed.
    Found(Box<PendingRecord>),
    /// The state was consumed before.
    Used,
    /// The store never saw this state, or forgot it.
    Missing,
}

/// Where pending logins live. Failures are [`Error::Store`] (the login then fails closed).
#[async_trait]
pub trait LoginStateStore: Send + Sync + fmt::Debug {
    /// Stores a pending login under `state`, remembered for `keep_for` (longer than its
    /// validity, so that expired and replayed states can be told apart from forged ones).
    async fn put(&self, state: &str, record: &PendingRecord, keep_for: Duration) -> Result<()>;

    /// Atomically consumes `state`.
    async fn take(&self, state: &str) -> Result<Taken>;

    /// Checks that the store answers (for `/readyz`).
    async fn ping(&self) -> Result<()>;
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn memory_error(operation: &'static str, message: impl Into<String>) -> Error {
    Error::Store {
        store: "memory",
        operation,
        message: message.into(),
    }
}

enum Slot {
    Pending(Box<PendingRecord>),
    Used,
}

struct Entry {
    slot: Slot,
    forget_at: Instant,
}

/// The in-process [`LoginStateStore`] (one replica). Bounded, and every operation O(1): entries
/// are forgotten in the order they were stored (their keep-for is the same), and a full store
/// evicts its oldest entry to make room — a new login never fails for lack of space. Rate limits
/// (`rate_limits.login_global`) keep floods from reaching the bound (see docs/security.md).
pub struct MemoryStateStore {
    inner: Mutex<Entries>,
    max_entries: usize,
}

#[derive(Default)]
struct Entries {
    map: HashMap<String, Entry>,
    /// Keys in the order they were stored, with the time each was stored to be forgotten.
    order: VecDeque<(Instant, String)>,
    evicted: u64,
}

impl Entries {
    /// Drops the oldest key from the order, and from the map if it still holds that entry.
    fn pop_oldest(&mut self) -> bool {
        let Some((forget_at, key)) = self.order.pop_front() else {
            return false;
        };
        if self.map.get(&key).is_some_and(|e| e.forget_at == forget_at) {
            self.map.remove(&key);
        }
        true
    }
}

impl fmt::Debug for MemoryStateStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryStateStore")
            .field("max_entries", &self.max_entries)
            .finish_non_exhaustive()
    }
}

impl MemoryStateStore {
    /// A store holding at most `max_entries` pending or used states.
    pub fn new(max_entries: usize) -> Self {
        Self {
            inner: Mutex::new(Entries::default()),
            max_entries: max_entries.max(1),
        }
    }

    fn lock(&self, operation: &'static str) -> Result<std::sync::MutexGuard<'_, Entries>> {
        self.inner
            .lock()
            .map_err(|_| memory_error(operation, "lock poisoned"))
    }

    /// Entries currently held (pending and tombstones).
    pub fn len(&self) -> usize {
        self.inner.lock().map(|m| m.map.len()).unwrap_or(0)
    }

    /// Whether the store holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Entries evicted to make room before their time.
    pub fn evicted(&self) -> u64 {
        self.inner.lock().map(|m| m.evicted).unwrap_or(0)
    }
}

#[async_trait]
impl LoginStateStore for MemoryStateStore {
    async fn put(&self, state: &str, record: &PendingRecord, keep_for: Duration) -> Result<()> {
        let now = Instant::now();
        let mut e = self.lock("put")?;
        while e.order.front().is_some_and(|(at, _)| *at <= now) {
            e.pop_oldest();
        }
        // Order entries of re-stored keys linger until they reach the front: bound them too.
        while e.map.len() >= self.max_entries || e.order.len() >= self.max_entries * 2 {
            let full = e.map.len() >= self.max_entries;
            if !e.pop_oldest() {
                break;
            }
            if full {
                e.evicted += 1;
            }
        }
        let forget_at = now + keep_for;
        e.order.push_back((forget_at, state.to_string()));
        e.map.insert(
            state.to_string(),
            Entry {
                slot: Slot::Pending(Box::new(record.clone())),
                forget_at,
            },
        );
        Ok(())
    }

    async fn take(&self, state: &str) -> Result<Taken> {
        let now = Instant::now();
        let mut e = self.lock("take")?;
        let Some(entry) = e.map.get_mut(state) else {
            return Ok(Taken::Missing);
        };
        if entry.forget_at <= now {
            e.map.remove(state);
            return Ok(Taken::Missing);
        }
        match std::mem::replace(&mut entry.slot, Slot::Used) {
            Slot::Pending(record) => Ok(Taken::Found(record)),
            Slot::Used => Ok(Taken::Used),
        }
    }

    async fn ping(&self) -> Result<()> {
        self.lock("ping").map(|_| ())
    }
}

/// Redis: the records as JSON in unilogin-redis's single-use store.
#[cfg(feature = "redis")]
#[async_trait]
impl LoginStateStore for unilogin_redis::RedisStateStore {
    async fn put(&self, state: &str, record: &PendingRecord, keep_for: Duration) -> Result<()> {
        let json = serde_json::to_string(record)
            .map_err(|e| Error::Internal(format!("encoding a pending login: {e}")))?;
        unilogin_redis::RedisStateStore::put(self, state, &json, keep_for).await
    }

    async fn take(&self, state: &str) -> Result<Taken> {
        use unilogin_redis::Taken as Raw;
        Ok(
            match unilogin_redis::RedisStateStore::take(self, state).await? {
                Raw::Found(json) => match serde_json::from_str(&json) {
                    Ok(record) => Taken::Found(Box::new(record)),
                    Err(_) => {
                        tracing::warn!(
                            "undecodable pending login in Redis; treating it as unknown"
                        );
                        Taken::Missing
                    }
                },
                Raw::Used => Taken::Used,
                Raw::Missing => Taken::Missing,
            },
        )
    }

    async fn ping(&self) -> Result<()> {
        unilogin_redis::RedisStateStore::ping(self).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use unilogin::{Flow, PlatformName, TenantId};

    fn record() -> PendingRecord {
        PendingRecord {
            login: PendingLogin::new(
                TenantId::new("acme").unwrap(),
                PlatformName::new("some-platform").unwrap(),
                Flow::Web,
                Url::parse("https://sso.example/auth/acme/some-platform/callback").unwrap(),
            ),
            return_to: Url::parse("https://app.example/").unwrap(),
            binding: "b1nd".into(),
            expires_at_ms: now_ms() + 60_000,
        }
    }

    #[tokio::test]
    async fn take_is_single_use() {
        let s = MemoryStateStore::new(10);
        let r = record();
        s.put("st", &r, Duration::from_secs(60)).await.unwrap();
        assert_eq!(s.take("st").await.unwrap(), Taken::Found(Box::new(r)));
        assert_eq!(s.take("st").await.unwrap(), Taken::Used);
        assert_eq!(s.take("other").await.unwrap(), Taken::Missing);
    }

    #[tokio::test]
    async fn forgotten_after_keep_for_and_bounded_oldest_first() {
        let s = MemoryStateStore::new(2);
        s.put("a", &record(), Duration::from_millis(1))
            .await
            .unwrap();
        s.put("b", &record(), Duration::from_secs(60))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        // `a` is past its time: forgotten to make room, nothing evicted.
        s.put("c", &record(), Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(s.take("a").await.unwrap(), Taken::Missing);
        assert_eq!(s.evicted(), 0);
        // Full: the oldest (`b`) gives way; the newest logins always get in.
        s.put("d", &record(), Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s.evicted(), 1);
        assert_eq!(s.take("b").await.unwrap(), Taken::Missing);
        assert!(matches!(s.take("c").await.unwrap(), Taken::Found(_)));
        assert!(matches!(s.take("d").await.unwrap(), Taken::Found(_)));
    }

    #[tokio::test]
    async fn a_flood_costs_constant_work_and_bounded_memory() {
        let s = MemoryStateStore::new(1000);
        for i in 0..20_000 {
            s.put(&format!("k{i}"), &record(), Duration::from_secs(600))
                .await
                .unwrap();
        }
        assert_eq!(s.len(), 1000);
        let order = s.inner.lock().unwrap().order.len();
        assert!(order <= 2000, "{order}");
        // The newest are kept.
        assert!(matches!(s.take("k19999").await.unwrap(), Taken::Found(_)));
        assert_eq!(s.take("k0").await.unwrap(), Taken::Missing);
    }

    #[test]
    fn debug_hides_secrets_and_json_round_trips() {
        let r = record();
        let s = format!("{r:?}");
        for secret in [
            "b1nd",
            r.login.state.expose(),
            r.login.pkce_verifier.expose(),
        ] {
            assert!(!s.contains(secret), "{s}");
        }
        let back: PendingRecord =
            serde_json::from_str(&serde_json::to_string(&r).unwrap()).unwrap();
        assert_eq!(back, r);
    }
}
