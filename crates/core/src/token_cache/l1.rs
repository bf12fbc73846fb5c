//! L1: the bounded in-process map from [`TokenKey`] to token.
//!
//! Sharded `RwLock`s (cache-line padded) so that hits on different keys from different threads
//! never touch the same memory; each shard is a slab of slots indexed by a hash map, evicted with
//! the CLOCK (second chance) policy, which approximates LRU without writing on every hit. Times
//! are milliseconds on the cache's own monotonic clock.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{PoisonError, RwLock};

use super::TokenKey;
use super::key::PrehashedState;
use crate::types::AccessToken;

/// What a lookup found.
pub(crate) enum Lookup {
    /// A valid token. `claimed` is true for exactly one caller per refresh attempt once the token
    /// is inside its refresh window: that caller starts the background refresh.
    Hit {
        token: AccessToken,
        claimed: bool,
        /// When the token enters its refresh window.
        refresh_at: u64,
    },
    /// No valid token.
    Miss,
}

struct Entry {
    key: TokenKey,
    token: AccessToken,
    expires_at: u64,
    refresh_at: u64,
}

struct Slot {
    entry: Option<Entry>,
    /// CLOCK reference bit: set on hit (only if clear, so steady-state hits do not write).
    referenced: AtomicBool,
    /// Earliest time another refresh-ahead may be claimed for this entry.
    next_attempt: AtomicU64,
}

#[derive(Default)]
struct ShardInner {
    index: HashMap<TokenKey, u32, PrehashedState>,
    slots: Vec<Slot>,
    free: Vec<u32>,
    hand: usize,
}

#[repr(align(128))]
struct Shard {
    inner: RwLock<ShardInner>,
    hits: AtomicU64,
}

/// The L1 map.
pub(crate) struct L1 {
    shards: Box<[Shard]>,
    mask: u64,
    max_entries: usize,
    len: AtomicUsize,
    /// Bumped after every change of any entry; per-thread copies (see `l0`) are valid only
    /// while it is unchanged.
    epoch: Epoch,
}

#[repr(align(128))]
struct Epoch(AtomicU64);

impl L1 {
    /// A map holding at most `max_entries` tokens (the bound is global; when it is reached the
    /// inserting shard evicts one of its own entries).
    pub(crate) fn new(max_entries: usize) -> Self {
        let max_entries = max_entries.max(1);
        let shards = (max_entries / 16).clamp(1, 64).next_power_of_two().min(64);
        let shards: Box<[Shard]> = (0..shards)
            .map(|_| Shard {
                inner: RwLock::new(ShardInner::default()),
                hits: AtomicU64::new(0),
            })
            .collect();
        Self {
            mask: (shards.len() - 1) as u64,
            shards,
            max_entries,
            len: AtomicUsize::new(0),
            epoch: Epoch(AtomicU64::new(0)),
        }
    }

    fn shard(&self, key: &TokenKey) -> &Shard {
        // High bits pick the shard; the hash map inside uses the low bits.
        let i = ((key.hash64() >> 40) & self.mask) as usize;
        &self.shards[i]
    }

    /// Looks `key` up at time `now`. With `claim_until`, claims the refresh-ahead for at most one
    /// caller, holding the claim until then (released earlier by [`L1::defer_refresh`] or a new
    /// insert).
    pub(crate) fn lookup(&self, key: &TokenKey, now: u64, claim_until: Option<u64>) -> Lookup {
        let shard = self.shard(key);
        let inner = shard.inner.read().unwrap_or_else(PoisonError::into_inner);
        let Some(&i) = inner.index.get(key) else {
            return Lookup::Miss;
        };
        let Some(slot) = inner.slots.get(i as usize) else {
            return Lookup::Miss;
        };
        let Some(entry) = &slot.entry else {
            return Lookup::Miss;
        };
        if now >= entry.expires_at {
            return Lookup::Miss;
        }
        if !slot.referenced.load(Ordering::Relaxed) {
            slot.referenced.store(true, Ordering::Relaxed);
        }
        shard.hits.fetch_add(1, Ordering::Relaxed);
        let mut claimed = false;
        if let Some(claim_until) = claim_until.filter(|_| now >= entry.refresh_at) {
            let next = slot.next_attempt.load(Ordering::Acquire);
            claimed = now >= next
                && slot
                    .next_attempt
                    .compare_exchange(next, claim_until, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok();
        }
        Lookup::Hit {
            token: entry.token.clone(),
            claimed,
            refresh_at: entry.refresh_at,
        }
    }

    /// The current entry of `key` even if expired: token and expiry.
    pub(crate) fn peek(&self, key: &TokenKey) -> Option<(AccessToken, u64)> {
        let inner = self
            .shard(key)
            .inner
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        let i = *inner.index.get(key)?;
        let e = inner.slots.get(i as usize)?.entry.as_ref()?;
        Some((e.token.clone(), e.expires_at))
    }

    /// Sets the earliest time of the next refresh-ahead of `key`'s current entry.
    pub(crate) fn defer_refresh(&self, key: &TokenKey, until: u64) {
        let inner = self
            .shard(key)
            .inner
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(slot) = inner
            .index
            .get(key)
            .and_then(|&i| inner.slots.get(i as usize))
        {
            slot.next_attempt.store(until, Ordering::Release);
        }
    }

    /// Inserts or replaces the token of `key`, evicting another entry if the shard is full.
    pub(crate) fn insert(
        &self,
        key: &TokenKey,
        token: AccessToken,
        expires_at: u64,
        refresh_at: u64,
        now: u64,
    ) {
        let mut inner = self
            .shard(key)
            .inner
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let entry = Entry {
            key: key.clone(),
            token,
            expires_at,
            refresh_at,
        };
        if let Some(&i) = inner.index.get(key)
            && let Some(slot) = inner.slots.get_mut(i as usize)
        {
            *slot = Slot::new(entry);
            self.bump();
            return;
        }
        let full = self.len.load(Ordering::Relaxed) >= self.max_entries;
        let i = if full && !inner.index.is_empty() {
            inner.evict(now)
        } else {
            self.len.fetch_add(1, Ordering::Relaxed);
            if let Some(i) = inner.free.pop() {
                i as usize
            } else {
                let len = inner.slots.len();
                if len == inner.slots.capacity() {
                    // Grow by a quarter: amortized O(1) pushes with little unused capacity.
                    inner.slots.reserve_exact((len / 4).max(4));
                }
                inner.slots.push(Slot::empty());
                len
            }
        };
        let ShardInner { index, slots, .. } = &mut *inner;
        if let Some(slot) = slots.get_mut(i) {
            *slot = Slot::new(entry);
            // Slot indices fit in u32: a shard holds at most `max_entries` (+ a few racing
            // inserts) slots, and `TokenCacheBuilder::max_entries` caps that at `u32::MAX / 2`.
            index.insert(key.clone(), i as u32);
        }
        self.bump();
    }

    /// Removes `key`'s entry if its token is `token`. Returns whether it removed.
    pub(crate) fn remove_if(&self, key: &TokenKey, token: &AccessToken) -> bool {
        let mut inner = self
            .shard(key)
            .inner
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let Some(&i) = inner.index.get(key) else {
            return false;
        };
        let matches = inner
            .slots
            .get(i as usize)
            .and_then(|s| s.entry.as_ref())
            .is_some_and(|e| &e.token == token);
        if matches {
            inner.index.remove(key);
            if let Some(slot) = inner.slots.get_mut(i as usize) {
                slot.entry = None;
            }
            inner.free.push(i);
            self.len.fetch_sub(1, Ordering::Relaxed);
            self.bump();
        }
        matches
    }

    /// The change counter (read before a lookup whose result is copied into a per-thread cache).
    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.0.load(Ordering::Acquire)
    }

    fn bump(&self) {
        self.epoch.0.fetch_add(1, Ordering::Release);
    }

    /// Number of entries.
    pub(crate) fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// Total hits.
    pub(crate) fn hits(&self) -> u64 {
        self.shards
            .iter()
            .map(|s| s.hits.load(Ordering::Relaxed))
            .sum()
    }
}

impl Slot {
    fn new(entry: Entry) -> Self {
        Self {
            entry: Some(entry),
            referenced: AtomicBool::new(true),
            next_attempt: AtomicU64::new(0),
        }
    }

    fn empty() -> Self {
        Self {
            entry: None,
            referenced: AtomicBool::new(false),
            next_attempt: AtomicU64::new(0),
        }
    }
}

impl ShardInner {
    /// Frees one occupied slot with the CLOCK policy (expired entries go at once) and returns
    /// its index. Called only when the shard holds at least one entry. Free slots are skipped:
    /// they are on the free list.
    fn evict(&mut self, now: u64) -> usize {
        let n = self.slots.len();
        // Two sweeps always find a victim: the first clears every reference bit it passes.
        let mut victim = None;
        for _ in 0..(2 * n) {
            let i = self.hand % n;
            self.hand = (i + 1) % n;
            let slot = &mut self.slots[i];
            let take = match &slot.entry {
                None => false,
                Some(e) if now >= e.expires_at => true,
                Some(_) => !std::mem::replace(slot.referenced.get_mut(), false),
            };
            if take {
                victim = Some(i);
                break;
            }
        }
        // Not reachable with an occupied slot (see above); stay total anyway.
        let i = victim
            .or_else(|| self.slots.iter().position(|s| s.entry.is_some()))
            .unwrap_or(0);
        if let Some(e) = self.slots.get_mut(i).and_then(|s| s.entry.take()) {
            self.index.remove(&e.key);
        }
        i
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{PlatformName, TenantId};

    fn key(i: usize) -> TokenKey {
        TokenKey::new(
            &PlatformName::new("p").unwrap(),
            &TenantId::new("t").unwrap(),
            &format!("app{i}"),
            None,
        )
    }

    #[test]
    fn bounded_and_clock_keeps_recently_used() {
        let l1 = L1::new(4);
        for i in 0..4 {
            l1.insert(&key(i), AccessToken::new(format!("t{i}")), 1000, 900, 0);
        }
        assert_eq!(l1.len(), 4);
        // First eviction sweep clears all bits and takes slot 0; then touch 1 so 2 goes next.
        l1.insert(&key(4), AccessToken::new("t4"), 1000, 900, 0);
        assert!(matches!(l1.lookup(&key(0), 1, None), Lookup::Miss));
        assert!(matches!(l1.lookup(&key(1), 1, None), Lookup::Hit { .. }));
        l1.insert(&key(5), AccessToken::new("t5"), 1000, 900, 1);
        assert_eq!(l1.len(), 4);
        assert!(matches!(l1.lookup(&key(1), 1, None), Lookup::Hit { .. }));
        assert!(matches!(l1.lookup(&key(2), 1, None), Lookup::Miss));
        for i in [3, 4, 5] {
            assert!(
                matches!(l1.lookup(&key(i), 1, None), Lookup::Hit { .. }),
                "{i}"
            );
        }
    }

    #[test]
    fn expired_entries_go_first() {
        let l1 = L1::new(2);
        l1.insert(&key(0), AccessToken::new("a"), 1000, 900, 0);
        l1.insert(&key(1), AccessToken::new("b"), 10, 5, 0);
        l1.insert(&key(2), AccessToken::new("c"), 1000, 900, 20);
        assert!(matches!(l1.lookup(&key(0), 20, None), Lookup::Hit { .. }));
        assert!(matches!(l1.lookup(&key(2), 20, None), Lookup::Hit { .. }));
    }

    #[test]
    fn one_claim_per_window_and_compare_remove() {
        let l1 = L1::new(10);
        let k = key(0);
        l1.insert(&k, AccessToken::new("a"), 1000, 500, 0);
        let claims = |now| match l1.lookup(&k, now, Some(2000)) {
            Lookup::Hit { claimed, .. } => claimed,
            Lookup::Miss => panic!("miss"),
        };
        assert!(!claims(100));
        assert!(claims(600));
        assert!(!claims(601));
        l1.defer_refresh(&k, 700);
        assert!(!claims(650));
        assert!(claims(700));
        assert!(!l1.remove_if(&k, &AccessToken::new("other")));
        assert!(l1.remove_if(&k, &AccessToken::new("a")));
        assert!(matches!(l1.lookup(&k, 1, None), Lookup::Miss));
        assert_eq!(l1.len(), 0);
    }

    #[test]
    fn freed_slots_are_reused_and_the_bound_holds() {
        let l1 = L1::new(2);
        l1.insert(&key(0), AccessToken::new("a"), 1000, 900, 0);
        l1.insert(&key(1), AccessToken::new("b"), 1000, 900, 0);
        assert!(l1.remove_if(&key(0), &AccessToken::new("a")));
        l1.insert(&key(2), AccessToken::new("c"), 1000, 900, 0);
        assert_eq!(l1.len(), 2);
        l1.insert(&key(3), AccessToken::new("d"), 1000, 900, 0);
        assert_eq!(l1.len(), 2);
        let live = (0..4)
            .filter(|&i| matches!(l1.lookup(&key(i), 1, None), Lookup::Hit { .. }))
            .count();
        assert_eq!(live, 2);
        assert!(matches!(l1.lookup(&key(3), 1, None), Lookup::Hit { .. }));
    }
}
