//! A shared, adjustable clock for the fakes.
//!
//! Codes expire after five minutes and tokens after two hours; tests must not sleep that long.
//! Every fake reads time only through a [`FakeClock`], and [`FakeClock::advance`] moves it forward
//! instantly. The clock is monotonic (built on [`Instant`]) and only ever moves forward.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A monotonic clock that tests can move forward. Cheap to clone; clones share the offset.
#[derive(Debug, Clone)]
pub struct FakeClock {
    start: Instant,
    /// Offset added to the real elapsed time, in nanoseconds.
    offset_nanos: Arc<AtomicU64>,
}

impl Default for FakeClock {
    fn default() -> Self {
        Self::new()
    }
}

impl FakeClock {
    /// A clock that starts at the real current instant with no offset.
    pub fn new() -> Self {
        Self {
            start: Instant::now(),
            offset_nanos: Arc::new(AtomicU64::new(0)),
        }
    }

    /// The fake "now": real time plus every [`advance`](Self::advance) so far.
    pub fn now(&self) -> Instant {
        let offset = Duration::from_nanos(self.offset_nanos.load(Ordering::SeqCst));
        // `Instant + Duration` only overflows after centuries of offset; fall back to the real
        // instant rather than panicking.
        Instant::now()
            .checked_add(offset)
            .unwrap_or_else(Instant::now)
    }

    /// Time since the clock was created, including offsets.
    pub fn elapsed(&self) -> Duration {
        self.now().saturating_duration_since(self.start)
    }

    /// Total offset applied so far.
    pub fn offset(&self) -> Duration {
        Duration::from_nanos(self.offset_nanos.load(Ordering::SeqCst))
    }

    /// Move the clock forward by `by` (saturating at ~584 years of total offset).
    pub fn advance(&self, by: Duration) {
        let add = u64::try_from(by.as_nanos()).unwrap_or(u64::MAX);
        let mut current = self.offset_nanos.load(Ordering::SeqCst);
        loop {
            let next = current.saturating_add(add);
            match self.offset_nanos.compare_exchange(
                current,
                next,
                Ordering::SeqCst,
                Ordering::SeqCst,
            ) {
                Ok(_) => return,
                Err(actual) => current = actual,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advance_moves_now_forward_and_is_shared_by_clones() {
        let clock = FakeClock::new();
        let clone = clock.clone();
        let before = clock.now();
        clone.advance(Duration::from_secs(7200));
        assert!(clock.now() >= before + Duration::from_secs(7200));
        assert_eq!(clock.offset(), Duration::from_secs(7200));
        assert!(clock.elapsed() >= Duration::from_secs(7200));
    }

    #[test]
    fn advance_saturates_instead_of_overflowing() {
        let clock = FakeClock::new();
        clock.advance(Duration::MAX);
        clock.advance(Duration::MAX);
        assert_eq!(clock.offset(), Duration::from_nanos(u64::MAX));
        // now() must not panic even with an absurd offset.
        let _ = clock.now();
    }
}
