//! Counters of the token cache, for metrics.

use std::sync::atomic::{AtomicU64, Ordering};

/// A snapshot of the cache's counters (monotonic since the cache was built, except `entries`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct TokenCacheStats {
    /// `get` calls answered from memory.
    pub l1_hits: u64,
    /// Tokens taken from the shared store instead of the platform.
    pub l2_hits: u64,
    /// Calls of a refresher (upstream token requests).
    pub refreshes: u64,
    /// Refresher calls that failed or timed out.
    pub refresh_failures: u64,
    /// Times a caller or refresh waited for a refresh already running (in this process, or in
    /// another replica holding the store lease).
    pub lock_waits: u64,
    /// Failed or timed-out store operations.
    pub store_errors: u64,
    /// Refreshes-ahead the refresh budget deferred (the caller kept the still-valid token).
    pub budget_deferrals: u64,
    /// Tokens currently held in memory.
    pub entries: u64,
}

#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) l2_hits: AtomicU64,
    pub(crate) refreshes: AtomicU64,
    pub(crate) refresh_failures: AtomicU64,
    pub(crate) lock_waits: AtomicU64,
    pub(crate) store_errors: AtomicU64,
    pub(crate) budget_deferrals: AtomicU64,
}

impl Counters {
    pub(crate) fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self, l1_hits: u64, entries: u64) -> TokenCacheStats {
        TokenCacheStats {
            l1_hits,
            l2_hits: self.l2_hits.load(Ordering::Relaxed),
            refreshes: self.refreshes.load(Ordering::Relaxed),
            refresh_failures: self.refresh_failures.load(Ordering::Relaxed),
            lock_waits: self.lock_waits.load(Ordering::Relaxed),
            store_errors: self.store_errors.load(Ordering::Relaxed),
            budget_deferrals: self.budget_deferrals.load(Ordering::Relaxed),
            entries,
        }
    }
}
