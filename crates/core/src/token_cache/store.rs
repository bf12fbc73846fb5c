//! [`TokenStore`]: the shared second level (L2) of the token cache, plus the refresh lease that
//! makes N replicas call the platform once.
//!
//! The cache treats every store error as "the store is unavailable": it logs once per outage,
//! keeps serving from memory with in-process de-duplication, and tries the store again after a
//! cooldown. A store implementation should therefore fail fast (short timeouts) rather than
//! retry for long.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use super::TokenKey;
use crate::error::{Error, Result};
use crate::types::AccessToken;

/// A token read from a store, with the time it still has to live there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredToken {
    /// The token.
    pub token: AccessToken,
    /// Its remaining time to live in the store.
    pub ttl: Duration,
}

/// A shared store for app access tokens (Redis in `unilogin-redis`, [`MemoryStore`] in process).
///
/// Implementations must be safe to call concurrently from many tasks and processes. Every method
/// should be bounded by a short timeout; errors make the cache fall back to memory for a while.
#[async_trait]
pub trait TokenStore: Send + Sync + fmt::Debug {
    /// The token stored under `key` and its remaining time to live, or `None` if there is none
    /// (or it has no known expiry).
    async fn get(&self, key: &TokenKey) -> Result<Option<StoredToken>>;

    /// Stores `token` under `key` for `ttl`, replacing any previous token.
    async fn set(&self, key: &TokenKey, token: &AccessToken, ttl: Duration) -> Result<()>;

    /// Deletes the token under `key` only if it is still `expected`. Returns whether it deleted.
    async fn compare_and_delete(&self, key: &TokenKey, expected: &AccessToken) -> Result<bool>;

    /// Tries to take the refresh lease of `key` for `ttl` as `owner`. Returns `true` if taken;
    /// `false` if another owner holds it.
    async fn try_lease(&self, key: &TokenKey, owner: &str, ttl: Duration) -> Result<bool>;

    /// Releases the lease of `key` if `owner` still holds it. Returns whether it released.
    async fn release_lease(&self, key: &TokenKey, owner: &str) -> Result<bool>;
}

#[derive(Default)]
struct MemoryState {
    tokens: HashMap<String, (AccessToken, Instant)>,
    leases: HashMap<String, (String, Instant)>,
}

/// A [`TokenStore`] in this process's memory: lets several [`TokenCache`](super::TokenCache)
/// instances in one process share tokens and leases (tests, multi-runtime programs). It follows
/// the tokio clock, so paused-time tests work.
///
/// ```
/// use std::sync::Arc;
/// use unilogin_core::token_cache::{MemoryStore, TokenCache};
/// let store = Arc::new(MemoryStore::new());
/// let a = TokenCache::builder().store(store.clone()).build();
/// let b = TokenCache::builder().store(store).build();
/// # let _ = (a, b);
/// ```
#[derive(Default)]
pub struct MemoryStore {
    state: Mutex<MemoryState>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, MemoryState>> {
        self.state
            .lock()
            .map_err(|_| Error::Internal("memory token store lock poisoned".into()))
    }
}

impl fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.state.lock().map(|s| s.tokens.len()).unwrap_or(0);
        f.debug_struct("MemoryStore").field("tokens", &n).finish()
    }
}

#[async_trait]
impl TokenStore for MemoryStore {
    async fn get(&self, key: &TokenKey) -> Result<Option<StoredToken>> {
        let now = Instant::now();
        let mut s = self.lock()?;
        match s.tokens.get(key.as_str()) {
            Some((token, until)) if *until > now => Ok(Some(StoredToken {
                token: token.clone(),
                ttl: *until - now,
            })),
            Some(_) => {
                s.tokens.remove(key.as_str());
                Ok(None)
            }
            None => Ok(None),
        }
    }

    async fn set(&self, key: &TokenKey, token: &AccessToken, ttl: Duration) -> Result<()> {
        let until = Instant::now() + ttl;
        self.lock()?
            .tokens
            .insert(key.as_str().to_string(), (token.clone(), until));
        Ok(())
    }

    async fn compare_and_delete(&self, key: &TokenKey, expected: &AccessToken) -> Result<bool> {
        let mut s = self.lock()?;
        if s.tokens
            .get(key.as_str())
            .is_some_and(|(t, _)| t == expected)
        {
            s.tokens.remove(key.as_str());
            return Ok(true);
        }
        Ok(false)
    }

    async fn try_lease(&self, key: &TokenKey, owner: &str, ttl: Duration) -> Result<bool> {
        let now = Instant::now();
        let mut s = self.lock()?;
        if s.leases
            .get(key.as_str())
            .is_some_and(|(_, until)| *until > now)
        {
            return Ok(false);
        }
        s.leases
            .insert(key.as_str().to_string(), (owner.to_string(), now + ttl));
        Ok(true)
    }

    async fn release_lease(&self, key: &TokenKey, owner: &str) -> Result<bool> {
        let now = Instant::now();
        let mut s = self.lock()?;
        if s.leases
            .get(key.as_str())
            .is_some_and(|(o, until)| o == owner && *until > now)
        {
            s.leases.remove(key.as_str());
            return Ok(true);
        }
        Ok(false)
    }
}
