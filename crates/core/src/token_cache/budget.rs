//! The refresh budget ([`TokenCacheBuilder::refresh_budget`](super::TokenCacheBuilder::refresh_budget)):
//! paces ahead-of-expiry refreshes with a GCRA limiter (`governor`, no background task) on the
//! cache's own clock (tokio's, so paused-time tests and benches see the same budget), and the
//! deterministic per-key spreading of refresh starts across the refresh window.
//!
//! A refresh that must happen (no valid token) never waits for the budget, but it is charged:
//! it takes a cell when there is one; when there is none it is recorded as an *overdraft* that
//! holds back ahead-of-expiry refreshes for one more cell interval each (capped at
//! [`MAX_OVERDRAFT_MS`]), so the upstream rate converges back to the budget.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};

use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use tokio::time::Instant;

/// The most overdraft (forced refreshes beyond the budget) carried forward, in ms.
pub(super) const MAX_OVERDRAFT_MS: u64 = 60_000;
/// Bounds of the random delay before a deferred refresh-ahead is tried again, in ms (the upper
/// one grows with the time the token has left, see [`Budget::retry_at`]).
const RETRY_MIN_MS: u64 = 1000;
const RETRY_MAX_MS: u64 = 30_000;

/// Time on the cache's clock: nanoseconds since its epoch (tokio's `Instant`).
#[derive(Clone, Copy, Debug)]
struct CacheClock(Instant);

impl Clock for CacheClock {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        let nanos = Instant::now().saturating_duration_since(self.0).as_nanos();
        Nanos::new(u64::try_from(nanos).unwrap_or(u64::MAX))
    }
}

type Limiter = RateLimiter<NotKeyed, InMemoryState, CacheClock, NoOpMiddleware<Nanos>>;

/// The budget of one cache.
pub(super) struct Budget {
    limiter: Limiter,
    /// Ahead-of-expiry refreshes are refused before this time (cache ms): the overdraft left
    /// by forced refreshes that found no cell.
    overdraft_until: AtomicU64,
    /// Milliseconds per cell (the emission interval), at least 1.
    cell_ms: u64,
    per_second: u32,
    burst: u32,
}

impl Budget {
    /// `per_second` cells per second with bursts of `burst` (both at least 1), on the clock
    /// whose zero is `epoch`.
    pub(super) fn new(per_second: u32, burst: u32, epoch: Instant) -> Self {
        let per_second = NonZeroU32::new(per_second).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::per_second(per_second).allow_burst(burst);
        Self {
            limiter: RateLimiter::direct_with_clock(quota, CacheClock(epoch)),
            overdraft_until: AtomicU64::new(0),
            cell_ms: (1000 / u64::from(per_second.get())).max(1),
            per_second: per_second.get(),
            burst: burst.get(),
        }
    }

    /// The configured rate and burst.
    pub(super) fn quota(&self) -> (u32, u32) {
        (self.per_second, self.burst)
    }

    /// Asks for one ahead-of-expiry refresh at `now` (cache ms): `true` takes a cell.
    pub(super) fn try_ahead(&self, now: u64) -> bool {
        if now < self.overdraft_until.load(Ordering::Acquire) {
            return false;
        }
        self.limiter.check().is_ok()
    }

    /// Charges a refresh that had to run (no valid token) at `now`: a cell if there is one,
    /// otherwise one cell interval of overdraft after the limiter's next free cell.
    pub(super) fn charge_forced(&self, now: u64) {
        let Err(not_until) = self.limiter.check() else {
            return;
        };
        let next_cell = not_until.earliest_possible().as_u64() / 1_000_000;
        let cap = now.saturating_add(MAX_OVERDRAFT_MS);
        let _ = self
            .overdraft_until
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |until| {
                Some(
                    until
                        .max(next_cell)
                        .max(now)
                        .saturating_add(self.cell_ms)
                        .min(cap),
                )
            });
    }

    /// When a refresh-ahead denied at `now` is tried again, for a token expiring at
    /// `expires_at`: after a random delay of 1 s up to 1 s + min(30 s, an eighth of the time
    /// left), and never later than halfway to the expiry, so several chances remain inside the
    /// window.
    pub(super) fn retry_at(&self, now: u64, expires_at: u64) -> u64 {
        let left = expires_at.saturating_sub(now);
        let spread = (left / 8).min(RETRY_MAX_MS);
        let delay = rand::random_range(RETRY_MIN_MS..=RETRY_MIN_MS + spread);
        now + delay.min(left / 2).max(1)
    }
}

/// The spreading offset of `key_text` inside a refresh window of `window_ms`: a deterministic
/// point in its first half (the second half is left for refreshes the budget deferred and for
/// keys nobody asks for right away). Every replica computes the same offset for a key.
pub(super) fn spread_offset(key_text: &str, window_ms: u64) -> u64 {
    let span = window_ms / 2;
    if span == 0 {
        return 0;
    }
    // FNV-1a, then a SplitMix64 finaliser for uniform low bits.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key_text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^= h >> 31;
    h % (span + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn paces_ahead_refreshes_on_the_tokio_clock() {
        let epoch = Instant::now();
        let b = Budget::new(10, 2, epoch);
        assert!(b.try_ahead(0));
        assert!(b.try_ahead(0));
        assert!(!b.try_ahead(0), "burst of 2 exhausted");
        tokio::time::advance(Duration::from_millis(100)).await;
        assert!(b.try_ahead(100), "one cell per 100 ms");
        assert!(!b.try_ahead(100));
        // Over 10 s of paused time, at most burst + 10/s pass.
        let mut granted = 0;
        for _ in 0..1000 {
            tokio::time::advance(Duration::from_millis(10)).await;
            if b.try_ahead(0) {
                granted += 1;
            }
        }
        assert!((100..=102).contains(&granted), "{granted}");
    }

    #[tokio::test(start_paused = true)]
    async fn forced_refreshes_are_charged_and_overdraft_holds_back_ahead_ones() {
        let epoch = Instant::now();
        let b = Budget::new(10, 1, epoch);
        b.charge_forced(0); // takes the only cell
        b.charge_forced(0); // none left: overdraft after the next cell (100 ms) + 100 ms
        tokio::time::advance(Duration::from_millis(150)).await;
        assert!(!b.try_ahead(150), "the overdraft still holds");
        tokio::time::advance(Duration::from_millis(50)).await;
        assert!(b.try_ahead(200));
        // The overdraft is capped.
        for _ in 0..10_000 {
            b.charge_forced(200);
        }
        assert!(b.overdraft_until.load(Ordering::Relaxed) <= 200 + MAX_OVERDRAFT_MS);
    }

    #[test]
    fn retries_stay_inside_the_window_and_spread_is_deterministic() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let b = rt.block_on(async { Budget::new(20, 1, Instant::now()) });
        for _ in 0..1000 {
            let r = b.retry_at(10_000, 1_810_000);
            assert!((11_000..=41_000).contains(&r), "{r}");
            let near = b.retry_at(10_000, 10_600);
            assert!(near > 10_000 && near <= 10_300, "{near}");
        }
        let offsets: Vec<u64> = (0..10_000)
            .map(|i| spread_offset(&format!("dingtalk:v:suite#org:ding{i:08x}"), 1_800_000))
            .collect();
        assert!(offsets.iter().all(|&o| o <= 900_000));
        // Roughly uniform: every tenth of the span holds 7-13 % of the keys.
        let mut buckets = [0usize; 10];
        for o in &offsets {
            buckets[((*o * 10) / 900_001) as usize] += 1;
        }
        assert!(
            buckets.iter().all(|&n| (700..=1300).contains(&n)),
            "{buckets:?}"
        );
        assert_eq!(
            spread_offset("a#org:x", 1_800_000),
            spread_offset("a#org:x", 1_800_000)
        );
        assert_eq!(spread_offset("a", 1), 0);
    }
}
