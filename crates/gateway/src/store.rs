//! Pending web logins: the single-use `state` of each login, bound to the browser that started
//! it, kept in a [`StateStore`] (memory by default, Redis when replicas must share it).
//!
//! A state is **consumed atomically**: [`StateStore::take`] returns the record once and leaves a
//! `used` tombstone until the record would have been forgotten anyway, so a replayed state is
//! reported as reused (not unknown) and two concurrent callbacks cannot both succeed.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use unilogin::{Error, Flow, Result};

/// What the gateway remembers about a pending web login.
#[derive(Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LoginState {
    /// The tenant the login was started for.
    pub tenant: String,
    /// The platform the login was started for.
    pub platform: String,
    /// The flow (web/QR, or in-client OAuth for platforms that use a redirect).
    pub flow: Flow,
    /// The validated return URL.
    pub return_to: String,
    /// The browser-binding cookie value the state belongs to.
    pub binding: String,
    /// When the state stops being accepted (Unix milliseconds).
    pub expires_at_ms: u64,
    /// The PKCE verifier whose S256 challenge went to the authorize URL.
    #[serde(default)]
    pub code_verifier: Option<String>,
    /// The OIDC nonce sent to the authorize URL.
    #[serde(default)]
    pub nonce: Option<String>,
}

impl fmt::Debug for LoginState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginState")
            .field("tenant", &self.tenant)
            .field("platform", &self.platform)
            .field("flow", &self.flow)
            .field("return_to", &self.return_to)
            .field("binding", &"***")
            .field("expires_at_ms", &self.expires_at_ms)
            .field("code_verifier", &self.code_verifier.as_ref().map(|_| "***"))
            .field("nonce", &self.nonce)
            .finish()
    }
}

/// The result of consuming a state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Taken {
    /// The state was pending; it is now consumed.
    Found(LoginState),
    /// The state was consumed before.
    Used,
    /// The store never saw this state, or forgot it.
    Missing,
}

/// Where pending logins live.
#[async_trait]
pub trait StateStore: Send + Sync + fmt::Debug {
    /// Stores a pending login under `state`, remembered for `keep_for` (longer than its
    /// validity, so that expired and replayed states can be told apart from forged ones).
    async fn put(&self, state: &str, record: &LoginState, keep_for: Duration) -> Result<()>;

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

enum Slot {
    Pending(LoginState),
    Used,
}

struct Entry {
    slot: Slot,
    forget_at: Instant,
}

/// The in-process [`StateStore`] (one replica). Bounded: expired entries are swept as new ones
/// arrive, and a full store refuses new logins instead of growing.
pub struct MemoryStateStore {
    entries: Mutex<HashMap<String, Entry>>,
    max_entries: usize,
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
            entries: Mutex::new(HashMap::new()),
            max_entries: max_entries.max(1),
        }
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, HashMap<String, Entry>>> {
        self.entries
            .lock()
            .map_err(|_| Error::Internal("state store lock poisoned".into()))
    }

    /// Entries currently held (pending and tombstones).
    pub fn len(&self) -> usize {
        self.entries.lock().map(|m| m.len()).unwrap_or(0)
    }

    /// Whether the store holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[async_trait]
impl StateStore for MemoryStateStore {
    async fn put(&self, state: &str, record: &LoginState, keep_for: Duration) -> Result<()> {
        let now = Instant::now();
        let mut map = self.lock()?;
        if map.len() >= self.max_entries {
            map.retain(|_, e| e.forget_at > now);
            if map.len() >= self.max_entries {
                return Err(Error::Internal(format!(
                    "pending login store is full ({} entries)",
                    self.max_entries
                )));
            }
        }
        map.insert(
            state.to_string(),
            Entry {
                slot: Slot::Pending(record.clone()),
                forget_at: now + keep_for,
            },
        );
        Ok(())
    }

    async fn take(&self, state: &str) -> Result<Taken> {
        let now = Instant::now();
        let mut map = self.lock()?;
        let Some(entry) = map.get_mut(state) else {
            return Ok(Taken::Missing);
        };
        if entry.forget_at <= now {
            map.remove(state);
            return Ok(Taken::Missing);
        }
        match std::mem::replace(&mut entry.slot, Slot::Used) {
            Slot::Pending(record) => Ok(Taken::Found(record)),
            Slot::Used => Ok(Taken::Used),
        }
    }

    async fn ping(&self) -> Result<()> {
        self.lock().map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> LoginState {
        LoginState {
            tenant: "acme".into(),
            platform: "dingtalk".into(),
            flow: Flow::Web,
            return_to: "https://app.example/".into(),
            binding: "b1nd".into(),
            expires_at_ms: now_ms() + 60_000,
            code_verifier: Some("v3rifier".into()),
            nonce: None,
        }
    }

    #[tokio::test]
    async fn take_is_single_use() {
        let s = MemoryStateStore::new(10);
        // One record: `record()` reads the clock, and two calls can straddle a millisecond.
        let r = record();
        s.put("st", &r, Duration::from_secs(60)).await.unwrap();
        assert_eq!(s.take("st").await.unwrap(), Taken::Found(r));
        assert_eq!(s.take("st").await.unwrap(), Taken::Used);
        assert_eq!(s.take("other").await.unwrap(), Taken::Missing);
    }

    #[tokio::test]
    async fn forgotten_after_keep_for_and_bounded() {
        let s = MemoryStateStore::new(2);
        s.put("a", &record(), Duration::from_millis(1))
            .await
            .unwrap();
        s.put("b", &record(), Duration::from_secs(60))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(5)).await;
        // Full, but `a` is forgettable: it is swept to make room.
        s.put("c", &record(), Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(s.take("a").await.unwrap(), Taken::Missing);
        let e = s
            .put("d", &record(), Duration::from_secs(60))
            .await
            .unwrap_err();
        assert!(e.to_string().contains("full"), "{e}");
    }

    #[test]
    fn debug_hides_binding() {
        let s = format!("{:?}", record());
        assert!(!s.contains("b1nd") && !s.contains("v3rifier"), "{s}");
    }
}
