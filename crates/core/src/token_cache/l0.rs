//! L0: a small per-thread copy of hot L1 entries, so that a hit writes no memory shared with
//! other threads.
//!
//! An L1 hit takes the shard's read lock and clones the token's `Arc`: both write a cache line
//! other cores also write, which caps multi-core scaling. A thread's L0 holds its *own* copy of
//! each token it recently served (a separate allocation, so its reference count is private) and
//! answers while the L1 change counter (epoch) is unchanged and the token is outside its refresh
//! window; any L1 change (refresh, invalidation, eviction) makes every thread's L0 stale at once.
//! Hits inside the refresh window always go to L1, which elects the one background refresh.
//!
//! Memory: at most [`MAX_ENTRIES`] tokens per thread, for the one cache the thread used last.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::TokenKey;
use super::key::PrehashedState;
use crate::types::AccessToken;

/// Per-thread bound; on overflow the thread's L0 starts over.
pub(crate) const MAX_ENTRIES: usize = 1024;

struct Entry {
    token: AccessToken,
    refresh_at: u64,
}

struct L0 {
    cache_id: u64,
    epoch: u64,
    hits: Arc<AtomicU64>,
    map: HashMap<TokenKey, Entry, PrehashedState>,
}

thread_local! {
    static L0: RefCell<Option<L0>> = const { RefCell::new(None) };
}

/// The thread's copy of `key`'s token, if it is still current (`epoch`) and outside its refresh
/// window at `now`.
pub(crate) fn get(cache_id: u64, epoch: u64, key: &TokenKey, now: u64) -> Option<AccessToken> {
    L0.try_with(|l0| {
        let l0 = l0.try_borrow().ok()?;
        let l0 = l0.as_ref()?;
        if l0.cache_id != cache_id || l0.epoch != epoch {
            return None;
        }
        let e = l0.map.get(key)?;
        if now >= e.refresh_at {
            return None;
        }
        // Relaxed add on a counter only this thread writes: no shared cache line.
        l0.hits.fetch_add(1, Ordering::Relaxed);
        Some(e.token.clone())
    })
    .ok()
    .flatten()
}

/// Remembers `token` for `key`, read from L1 at `epoch`. `register` is called with the thread's
/// hit counter when this thread's L0 starts serving `cache_id`.
pub(crate) fn put(
    cache_id: u64,
    epoch: u64,
    key: &TokenKey,
    token: &AccessToken,
    refresh_at: u64,
    register: impl FnOnce(Arc<AtomicU64>),
) {
    let _ = L0.try_with(|l0| {
        let Ok(mut l0) = l0.try_borrow_mut() else {
            return;
        };
        let l0 = match &mut *l0 {
            Some(l0) if l0.cache_id == cache_id => l0,
            slot => {
                let hits = Arc::new(AtomicU64::new(0));
                register(hits.clone());
                slot.insert(L0 {
                    cache_id,
                    epoch,
                    hits,
                    map: HashMap::default(),
                })
            }
        };
        if l0.epoch != epoch || l0.map.len() >= MAX_ENTRIES {
            l0.map.clear();
            l0.epoch = epoch;
        }
        l0.map.insert(
            key.clone(),
            Entry {
                // A private allocation: clones of it never touch another thread's cache line.
                token: AccessToken::new(token.expose()),
                refresh_at,
            },
        );
    });
}
