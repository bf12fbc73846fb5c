//! Revocation deny-list: token ids revoked before their expiry.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::SystemTime;

use async_trait::async_trait;

/// A deny-list of token ids (`jti`). A logout or an admin revoke adds the id until the token
/// would have expired anyway; verifiers reject listed tokens.
///
/// Implementations must be safe to share between tasks. The in-process one is
/// [`MemoryRevocationList`]; a shared store (Redis) lets every replica see a revocation.
#[async_trait]
pub trait RevocationList: Send + Sync {
    /// Denies `jti` until `until` (the token's expiry). Revoking again keeps the later time.
    async fn revoke(&self, jti: &str, until: SystemTime);
    /// Whether `jti` is denied now. A list that cannot tell (its shared store is unreachable)
    /// answers `true`: it fails closed.
    async fn is_revoked(&self, jti: &str) -> bool;

    /// Like [`revoke`](Self::revoke), saying whether the revocation reached the shared list.
    /// `Err`: it is in force on this process only (and, for lists that queue, reaches the shared
    /// list once it answers again). The default: in-process lists always succeed.
    async fn revoke_checked(&self, jti: &str, until: SystemTime) -> Result<(), Unreachable> {
        self.revoke(jti, until).await;
        Ok(())
    }

    /// Like [`is_revoked`](Self::is_revoked), but `Err` when the list cannot tell, so a caller
    /// can answer "try again" (503) rather than "signed out" (401). The default: in-process lists
    /// always can tell.
    async fn check(&self, jti: &str) -> Result<bool, Unreachable> {
        Ok(self.is_revoked(jti).await)
    }
}

/// The shared revocation list cannot be reached (see [`RevocationList::check`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the shared revocation list is unreachable")]
pub struct Unreachable;

/// In-process [`RevocationList`]. Entries are dropped once their time has passed (expired
/// entries are swept as the list grows, so memory stays proportional to the live revocations).
///
/// ```
/// # tokio_test_block_on(async {
/// use std::time::{Duration, SystemTime};
/// use unilogin_axum::session::{MemoryRevocationList, RevocationList};
/// let list = MemoryRevocationList::new();
/// list.revoke("jti-1", SystemTime::now() + Duration::from_secs(60)).await;
/// assert!(list.is_revoked("jti-1").await);
/// assert!(!list.is_revoked("jti-2").await);
/// # });
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
#[derive(Debug, Default)]
pub struct MemoryRevocationList {
    inner: Mutex<Entries>,
}

#[derive(Debug, Default)]
struct Entries {
    until: HashMap<String, SystemTime>,
    /// Sweep expired entries when the map reaches this size.
    sweep_at: usize,
}

const MIN_SWEEP: usize = 1024;

impl MemoryRevocationList {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many entries are held (revoked ids not yet swept).
    pub fn len(&self) -> usize {
        self.lock().until.len()
    }

    /// Whether no id is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    // The map stays consistent whatever panicked while holding the lock (each operation is
    // a single insert, lookup or retain), so a poisoned lock is safe to keep using.
    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl RevocationList for MemoryRevocationList {
    async fn revoke(&self, jti: &str, until: SystemTime) {
        let now = SystemTime::now();
        if until <= now {
            return; // the token has expired already; nothing to deny
        }
        let mut e = self.lock();
        let slot = e.until.entry(jti.to_string()).or_insert(until);
        if *slot < until {
            *slot = until;
        }
        if e.until.len() >= e.sweep_at.max(MIN_SWEEP) {
            e.until.retain(|_, t| *t > now);
            e.sweep_at = (e.until.len() * 2).max(MIN_SWEEP);
        }
    }

    async fn is_revoked(&self, jti: &str) -> bool {
        self.lock()
            .until
            .get(jti)
            .is_some_and(|t| *t > SystemTime::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn revoked_until_time_then_not() {
        let list = MemoryRevocationList::new();
        let now = SystemTime::now();
        list.revoke("a", now + Duration::from_secs(60)).await;
        assert!(list.is_revoked("a").await);
        assert!(!list.is_revoked("b").await);
        // An entry whose time has passed no longer denies.
        list.lock()
            .until
            .insert("old".into(), now - Duration::from_secs(1));
        assert!(!list.is_revoked("old").await);
    }

    #[tokio::test]
    async fn already_expired_revocation_is_not_stored() {
        let list = MemoryRevocationList::new();
        list.revoke("x", SystemTime::now() - Duration::from_secs(5))
            .await;
        assert!(list.is_empty());
        assert!(!list.is_revoked("x").await);
    }

    #[tokio::test]
    async fn revoking_again_keeps_later_time() {
        let list = MemoryRevocationList::new();
        let now = SystemTime::now();
        list.revoke("a", now + Duration::from_secs(600)).await;
        list.revoke("a", now + Duration::from_secs(10)).await;
        assert_eq!(list.lock().until["a"], now + Duration::from_secs(600));
    }

    #[tokio::test]
    async fn expired_entries_are_swept_as_the_list_grows() {
        let list = MemoryRevocationList::new();
        let past = SystemTime::now() - Duration::from_secs(1);
        {
            let mut e = list.lock();
            for i in 0..MIN_SWEEP {
                e.until.insert(format!("old{i}"), past);
            }
        }
        list.revoke("live", SystemTime::now() + Duration::from_secs(60))
            .await;
        assert_eq!(list.len(), 1);
        assert!(list.is_revoked("live").await);
    }
}
