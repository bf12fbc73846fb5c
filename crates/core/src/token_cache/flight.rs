//! In-process flights: the cache's shared state ([`Inner`]), one refresh per key at a time in
//! this process (a detached task whose result every waiter receives), refresh-ahead, and the
//! L1 insertions. Cross-replica coordination is in [`super::coordination`].

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::budget::{Budget, spread_offset};
use super::key::PrehashedState;
use super::l1::{L1, Lookup};
use super::stats::Counters;
use super::*;
use crate::singleflight::SingleFlight;

pub(super) struct Config {
    pub(super) refresh_window: u64,
    pub(super) refresh_timeout: Duration,
    pub(super) expiry_margin: u64,
    pub(super) store_timeout: Duration,
    pub(super) store_cooldown: u64,
    pub(super) lease_ttl: Duration,
    pub(super) rate_limit_backoff: u64,
    /// Spread refresh starts across the window (on with a refresh budget).
    pub(super) spread: bool,
}

pub(super) type Outcome = Option<Result<AccessToken>>;

#[derive(Default)]
pub(super) struct KeyState {
    /// The running refresh: its id and the channel its result arrives on.
    pub(super) flight: Option<(u64, watch::Receiver<Outcome>)>,
    /// After a rate-limit error: no refresh before this time; callers get this error.
    pub(super) backoff: Option<(u64, Error)>,
}

/// Aligned so that the `Arc`'s reference counts (changed by every clone of the cache) do not
/// share a cache line with the fields every hit reads.
#[repr(align(128))]
pub(super) struct Inner {
    /// Identifies this cache in the per-thread L0 copies.
    pub(super) id: u64,
    pub(super) l1: L1,
    /// Hit counters of the threads whose L0 serves this cache.
    pub(super) l0_hits: Mutex<Vec<Arc<AtomicU64>>>,
    pub(super) flights: Mutex<HashMap<TokenKey, KeyState, PrehashedState>>,
    /// In-process flights of [`TokenCache::single_flight`].
    pub(super) shared: SingleFlight<TokenKey, AccessToken>,
    pub(super) store: Option<Arc<dyn TokenStore>>,
    pub(super) cfg: Config,
    pub(super) epoch: Instant,
    /// Paces ahead-of-expiry refreshes, when configured.
    pub(super) budget: Option<Budget>,
    pub(super) owner: String,
    pub(super) counters: Counters,
    pub(super) store_down_until: AtomicU64,
    pub(super) store_outage: AtomicBool,
    pub(super) next_flight: AtomicU64,
}

pub(super) fn ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

pub(super) fn with_jitter(base_ms: u64) -> u64 {
    base_ms.saturating_add(rand::random_range(0..=base_ms / 4))
}

impl Inner {
    pub(super) fn now_ms(&self) -> u64 {
        ms(Instant::now().saturating_duration_since(self.epoch))
    }

    /// How long a refresh-ahead claim lasts if its task never reports back (it always does,
    /// even on panic; this is a safety net).
    pub(super) fn claim_ms(&self) -> u64 {
        2 * (ms(self.cfg.refresh_timeout) + ms(self.cfg.lease_ttl) + ms(self.cfg.store_timeout))
            + 2000
    }

    pub(super) fn flights(&self) -> MutexGuard<'_, HashMap<TokenKey, KeyState, PrehashedState>> {
        // The map is consistent at every point a panic could occur, so poisoning is ignored.
        self.flights.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn insert_l1(&self, key: &TokenKey, token: AccessToken, ttl_ms: u64, now: u64) {
        let window = self.cfg.refresh_window.min(ttl_ms / 4);
        let expires_at = now.saturating_add(ttl_ms);
        let offset = if self.cfg.spread {
            spread_offset(key.as_str(), window)
        } else {
            0
        };
        self.l1
            .insert(key, token, expires_at, expires_at - window + offset, now);
    }

    pub(super) fn start_refresh_ahead<F, Fut>(
        this: &Arc<Self>,
        key: &TokenKey,
        refresher: F,
        now: u64,
    ) where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<FetchedToken>> + Send + 'static,
    {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            this.l1
                .defer_refresh(key, now + with_jitter(ms(REFRESH_RETRY)));
            return;
        };
        let current = this.l1.peek(key);
        let mut flights = this.flights();
        let state = flights.entry(key.clone()).or_default();
        if let Some((until, _)) = &state.backoff {
            if now < *until {
                this.l1.defer_refresh(key, *until);
                return;
            }
            state.backoff = None;
        }
        if state.flight.is_some() {
            return;
        }
        if let Some(budget) = &this.budget
            && !budget.try_ahead(now)
        {
            // Leave no per-key state behind for a refresh that did not start.
            if state.backoff.is_none() {
                flights.remove(key);
            }
            drop(flights);
            Counters::bump(&this.counters.budget_deferrals);
            let expires_at = current.as_ref().map_or(now, |(_, e)| *e);
            this.l1.defer_refresh(key, budget.retry_at(now, expires_at));
            return;
        }
        let (tx, rx) = watch::channel(None);
        let id = this.next_flight.fetch_add(1, Ordering::Relaxed);
        state.flight = Some((id, rx));
        drop(flights);
        let fut = Self::run_flight(this.clone(), key.clone(), id, refresher, current, tx);
        drop(handle.spawn(fut));
    }

    pub(super) async fn get_slow<F, Fut>(
        this: &Arc<Self>,
        key: &TokenKey,
        refresher: F,
    ) -> Result<AccessToken>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<FetchedToken>> + Send + 'static,
    {
        let Ok(handle) = tokio::runtime::Handle::try_current() else {
            return match this.l1.lookup(key, this.now_ms(), None) {
                Lookup::Hit { token, .. } => Ok(token),
                Lookup::Miss => Err(Error::Internal(
                    "TokenCache::get needs a tokio runtime to refresh a token".into(),
                )),
            };
        };
        let mut rx = {
            let mut flights = this.flights();
            let now = this.now_ms();
            // A refresh may have finished between the L1 miss and taking the lock.
            if let Lookup::Hit { token, .. } = this.l1.lookup(key, now, None) {
                return Ok(token);
            }
            let state = flights.entry(key.clone()).or_default();
            if let Some((until, err)) = &state.backoff {
                if now < *until {
                    return Err(err.clone());
                }
                state.backoff = None;
            }
            if let Some((_, rx)) = &state.flight {
                Counters::bump(&this.counters.lock_waits);
                rx.clone()
            } else {
                // Served at once whatever the budget says, but charged to it.
                if let Some(budget) = &this.budget {
                    budget.charge_forced(now);
                }
                let (tx, rx) = watch::channel(None);
                let id = this.next_flight.fetch_add(1, Ordering::Relaxed);
                state.flight = Some((id, rx.clone()));
                let fut = Self::run_flight(this.clone(), key.clone(), id, refresher, None, tx);
                drop(handle.spawn(fut));
                rx
            }
        };
        let outcome = match rx.wait_for(Option::is_some).await {
            Ok(v) => v.clone(),
            Err(_) => None,
        };
        outcome.unwrap_or_else(|| {
            Err(Error::Internal(
                "token refresh task ended without a result".into(),
            ))
        })
    }

    /// One refresh of `key`, run detached: fetch, publish the outcome, clean up.
    pub(super) async fn run_flight<F, Fut>(
        this: Arc<Self>,
        key: TokenKey,
        id: u64,
        refresher: F,
        current: Option<(AccessToken, u64)>,
        tx: watch::Sender<Outcome>,
    ) where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<FetchedToken>> + Send + 'static,
    {
        let mut guard = FlightGuard {
            inner: &this,
            key: &key,
            id,
            done: false,
        };
        let result = this.fetch(&key, refresher, current).await;
        let now = this.now_ms();
        let backoff = match &result {
            Ok(_) => None,
            Err(e @ Error::RateLimited { retry_after, .. }) => {
                let base = retry_after.map_or(this.cfg.rate_limit_backoff, ms);
                let until = now.saturating_add(with_jitter(base.max(1)));
                this.l1.defer_refresh(&key, until);
                Some((until, e.clone()))
            }
            Err(_) => {
                this.l1
                    .defer_refresh(&key, now + with_jitter(ms(REFRESH_RETRY)));
                None
            }
        };
        {
            let mut flights = this.flights();
            if let Some(state) = flights.get_mut(&key) {
                if state.flight.as_ref().is_some_and(|(f, _)| *f == id) {
                    state.flight = None;
                }
                let backing_off = backoff.is_some();
                if backing_off {
                    state.backoff = backoff;
                }
                if state.flight.is_none() && state.backoff.is_none() {
                    flights.remove(&key);
                }
                if backing_off && flights.len() > 1024 {
                    // Forget lapsed back-offs of keys nobody asked for since.
                    flights.retain(|_, s| {
                        s.flight.is_some() || s.backoff.as_ref().is_some_and(|(u, _)| *u > now)
                    });
                }
            }
        }
        guard.done = true;
        tx.send_replace(Some(result));
    }
}

/// Cleans up after a refresh task that ended without publishing (a panicking refresher): the
/// key must not stay "refreshing" forever.
pub(super) struct FlightGuard<'a> {
    pub(super) inner: &'a Inner,
    pub(super) key: &'a TokenKey,
    pub(super) id: u64,
    pub(super) done: bool,
}

impl Drop for FlightGuard<'_> {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let now = self.inner.now_ms();
        self.inner
            .l1
            .defer_refresh(self.key, now + with_jitter(ms(REFRESH_RETRY)));
        let mut flights = self.inner.flights();
        if let Some(state) = flights.get_mut(self.key) {
            if state.flight.as_ref().is_some_and(|(f, _)| *f == self.id) {
                state.flight = None;
            }
            if state.backoff.is_none() {
                flights.remove(self.key);
            }
        }
    }
}
