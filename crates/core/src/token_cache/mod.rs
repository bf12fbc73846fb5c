//! App access-token cache: L1 memory, L2 pluggable shared store, one refresh at a time.
//!
//! Every platform call needs an app access token (DingTalk `accessToken`, Feishu
//! `tenant_access_token`, WeCom `access_token`), which the platform rate-limits and which lives
//! about two hours. [`TokenCache::get`] returns a valid one:
//!
//! 1. **L1** (this process's memory, bounded, sharded, with a small per-thread copy of hot
//!    entries so that a hit writes no memory shared between cores): a hit costs tens of
//!    nanoseconds and never waits. Once a token enters its *refresh window* (default 5 minutes before the expiry the
//!    platform reported, at most a quarter of the lifetime), exactly one caller starts a refresh
//!    in the background and everybody keeps getting the still-valid token.
//! 2. Without a valid token, callers of the same key share **one refresh** that runs as a detached
//!    task, so a caller that is cancelled or times out does not take the others down with it.
//! 3. The refresh first looks in the **L2** [`TokenStore`] (Redis in `unilogin-redis`): a token
//!    another replica stored is taken with its *remaining* time to live. Otherwise it takes the
//!    store's **lease** for the key; the holder calls the platform, the other replicas poll L2
//!    for a bounded time and take over only if the holder dies (lease expiry). N replicas, one
//!    upstream call.
//! 4. If the store fails (refused, timeout), the cache logs one warning per outage, keeps going
//!    with L1 and in-process de-duplication (never failing a `get` because of the store), and
//!    tries the store again after a cooldown.
//!
//! Failures are never cached as values: waiters get the same [`Error`], and the next caller
//! tries again — except for [`Error::RateLimited`], after which the key backs off (the platform's
//! `retry_after`, plus jitter) and callers get the error, or the still-valid token, meanwhile.
//! Every refresh is bounded by a timeout. [`TokenCache::invalidate`] deletes a rejected token
//! only if it is still the stored one (compare-and-delete), so a late report about an old token
//! cannot erase the fresh one.
//!
//! Store apps with thousands of organisations (one key per organisation,
//! [`TokenKey::organisation`], see [`crate::isv`]) give the cache a
//! [refresh budget](TokenCacheBuilder::refresh_budget): refreshes-ahead are paced to a rate and
//! spread across the window, and no caller ever waits for the budget.
//!
//! [`TokenCache::single_flight`] uses the same machinery (in-process de-duplication, the
//! store's lease, polling, degradation) for work that must run once across replicas but is not
//! an app token: refreshing a user token whose refresh token is single use (Feishu).
//!
//! ```
//! use std::time::Duration;
//! use unilogin_core::token_cache::{FetchedToken, TokenCache, TokenKey};
//! use unilogin_core::{AccessToken, PlatformName, TenantId};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> unilogin_core::Result<()> {
//! let cache = TokenCache::new();
//! let (platform, tenant) = (PlatformName::new("dingtalk").unwrap(), TenantId::new("acme").unwrap());
//! let key = TokenKey::new(
//!     &platform,
//!     &tenant,
//!     "dingappkey",
//!     None,
//! );
//! let token = cache
//!     .get(&key, || async {
//!         // Call the platform's token endpoint here.
//!         Ok(FetchedToken::new(AccessToken::new("t-1"), Duration::from_secs(7200)))
//!     })
//!     .await?;
//! assert_eq!(token.expose(), "t-1");
//! assert_eq!(cache.stats().refreshes, 1);
//! # Ok(())
//! # }
//! ```

mod budget;
mod coordination;
mod flight;
mod key;
mod l0;
mod l1;
mod stats;
mod store;

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

pub use key::TokenKey;
pub use stats::TokenCacheStats;
pub use store::{MemoryStore, StoredToken, TokenStore};

use crate::error::{Error, Result};
use crate::singleflight::SingleFlight;
use crate::types::AccessToken;
use budget::Budget;
use flight::{Config, Inner, ms};
use l1::{L1, Lookup};
use stats::Counters;

/// A token as a platform's token endpoint returned it.
#[derive(Debug, Clone)]
pub struct FetchedToken {
    /// The token.
    pub token: AccessToken,
    /// Its lifetime as the platform reported it (`expires_in`, `expireIn`, `expire`).
    pub expires_in: Duration,
}

impl FetchedToken {
    /// Builds a fetched token.
    pub fn new(token: AccessToken, expires_in: Duration) -> Self {
        Self { token, expires_in }
    }
}

/// Ids of cache instances (for the per-thread L0).
static NEXT_CACHE_ID: AtomicU64 = AtomicU64::new(1);

/// Defaults, see [`TokenCacheBuilder`].
const DEFAULT_REFRESH_WINDOW: Duration = Duration::from_secs(300);
const DEFAULT_MAX_ENTRIES: usize = 100_000;
const DEFAULT_REFRESH_TIMEOUT: Duration = Duration::from_secs(10);
const DEFAULT_EXPIRY_MARGIN: Duration = Duration::from_secs(10);
const DEFAULT_STORE_TIMEOUT: Duration = Duration::from_millis(500);
const DEFAULT_STORE_COOLDOWN: Duration = Duration::from_secs(5);
const DEFAULT_RATE_LIMIT_BACKOFF: Duration = Duration::from_secs(10);
/// Delay before another refresh-ahead after one failed for a reason other than rate limiting.
const REFRESH_RETRY: Duration = Duration::from_secs(1);
/// A token from the store with less than this left is treated as absent.
const MIN_USABLE_MS: u64 = 1000;
/// Polling of the store while another replica holds the lease.
const POLL_FIRST: Duration = Duration::from_millis(20);
const POLL_MAX: Duration = Duration::from_millis(250);

/// Builds a [`TokenCache`]. Every setting has a default; see each method.
#[derive(Debug, Clone)]
pub struct TokenCacheBuilder {
    store: Option<Arc<dyn TokenStore>>,
    refresh_window: Duration,
    max_entries: usize,
    refresh_timeout: Duration,
    expiry_margin: Duration,
    store_timeout: Duration,
    store_cooldown: Duration,
    lease_ttl: Option<Duration>,
    rate_limit_backoff: Duration,
    refresh_budget: Option<(u32, u32)>,
}

impl Default for TokenCacheBuilder {
    fn default() -> Self {
        Self {
            store: None,
            refresh_window: DEFAULT_REFRESH_WINDOW,
            max_entries: DEFAULT_MAX_ENTRIES,
            refresh_timeout: DEFAULT_REFRESH_TIMEOUT,
            expiry_margin: DEFAULT_EXPIRY_MARGIN,
            store_timeout: DEFAULT_STORE_TIMEOUT,
            store_cooldown: DEFAULT_STORE_COOLDOWN,
            lease_ttl: None,
            rate_limit_backoff: DEFAULT_RATE_LIMIT_BACKOFF,
            refresh_budget: None,
        }
    }
}

impl TokenCacheBuilder {
    /// The shared L2 store (none by default: memory only).
    pub fn store(mut self, store: Arc<dyn TokenStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// How long before expiry the background refresh starts (default 5 minutes). For short-lived
    /// tokens the window is capped at a quarter of the token's lifetime.
    pub fn refresh_window(mut self, window: Duration) -> Self {
        self.refresh_window = window;
        self
    }

    /// Maximum number of tokens kept in memory (default 100,000); beyond it a least recently
    /// used one is evicted (CLOCK approximation, within the inserting key's shard).
    pub fn max_entries(mut self, max_entries: usize) -> Self {
        self.max_entries = max_entries.clamp(1, (u32::MAX / 2) as usize);
        self
    }

    /// Upper bound of one refresher call (default 10 s); a hung call fails with
    /// [`Error::Timeout`] at endpoint `token_cache.refresh`.
    pub fn refresh_timeout(mut self, timeout: Duration) -> Self {
        self.refresh_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// How much earlier than the platform's reported expiry a token stops being served
    /// (default 10 s, at most a tenth of the lifetime): covers the time the response took to
    /// arrive.
    pub fn expiry_margin(mut self, margin: Duration) -> Self {
        self.expiry_margin = margin;
        self
    }

    /// Upper bound of one store operation (default 500 ms) on top of the store's own timeouts.
    pub fn store_timeout(mut self, timeout: Duration) -> Self {
        self.store_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// After a store failure, how long the cache works from memory only before trying the store
    /// again (default 5 s).
    pub fn store_cooldown(mut self, cooldown: Duration) -> Self {
        self.store_cooldown = cooldown;
        self
    }

    /// Lifetime of the cross-replica refresh lease (default: refresh timeout + 5 s). Replicas that
    /// do not hold it wait at most this long (plus a second) for the holder's token.
    pub fn lease_ttl(mut self, ttl: Duration) -> Self {
        self.lease_ttl = Some(ttl.max(Duration::from_millis(1)));
        self
    }

    /// Back-off after a rate-limit error that carried no `retry_after` (default 10 s). Jitter of
    /// up to a quarter is added either way.
    pub fn rate_limit_backoff(mut self, backoff: Duration) -> Self {
        self.rate_limit_backoff = backoff;
        self
    }

    /// Paces this cache's **ahead-of-expiry** refreshes to `per_second` upstream calls per
    /// second with bursts of `burst` (GCRA, `governor`; both at least 1; none by default), and
    /// spreads the start of each token's refresh across its refresh window. Made for store apps
    /// with thousands of organisations (see [`crate::isv`]), whose corp / tenant tokens would
    /// otherwise all come due in the same minute.
    ///
    /// - **Nobody waits for the budget.** A refresh-ahead the budget refuses is deferred: the
    ///   caller gets the still-valid token and the refresh is tried again later (after 1 s plus
    ///   random jitter of up to 30 s, never later than halfway to the expiry), inside the window.
    /// - A caller with **no valid token** is served at once, budget or not; its refresh is
    ///   charged (a cell, or, when none is left, an overdraft that holds back the next
    ///   ahead-of-expiry refreshes; at most a minute of it is carried).
    /// - **Spreading**: with a budget, each token enters its refresh window at a point of the
    ///   window's first half derived from a hash of its key (the same on every replica), so
    ///   tokens fetched together do not come due together; the second half is left for
    ///   deferred refreshes.
    /// - The budget is **per cache** (per replica): with N replicas sharing a store, the upstream
    ///   sees at most N times it (less when replicas take each other's tokens from the store).
    ///   A refresh-ahead that finds a newer token in the store still spends its cell.
    /// - Size the window for the load: refreshing `n` tokens takes `n / per_second` seconds, so
    ///   set [`refresh_window`](Self::refresh_window) to at least twice that (it is capped at a
    ///   quarter of each token's lifetime: 30 minutes for 2-hour tokens covers 10,000
    ///   organisations at 20 per second). With `burst` 1 the rate in any one-second span never
    ///   exceeds `per_second`; a larger burst allows up to `burst - 1` more.
    ///
    /// There is no per-key background refresher: a token nobody asks for during its whole
    /// window expires, and its next caller waits for one fetch (never for the budget).
    /// Keeping one would cost a timer and a boxed refresher holding the organisation's
    /// credentials per key, and spend the budget on organisations nobody is using.
    ///
    /// ```
    /// use std::time::Duration;
    /// use unilogin_core::token_cache::TokenCache;
    /// let cache = TokenCache::builder()
    ///     .refresh_window(Duration::from_secs(30 * 60))
    ///     .refresh_budget(20, 1)
    ///     .build();
    /// assert_eq!(cache.refresh_budget(), Some((20, 1)));
    /// assert_eq!(TokenCache::new().refresh_budget(), None);
    /// ```
    pub fn refresh_budget(mut self, per_second: u32, burst: u32) -> Self {
        self.refresh_budget = Some((per_second.max(1), burst.max(1)));
        self
    }

    /// Builds the cache.
    pub fn build(self) -> TokenCache {
        let lease_ttl = self
            .lease_ttl
            .unwrap_or(self.refresh_timeout + Duration::from_secs(5));
        let cfg = Config {
            refresh_window: ms(self.refresh_window),
            refresh_timeout: self.refresh_timeout,
            expiry_margin: ms(self.expiry_margin),
            store_timeout: self.store_timeout,
            store_cooldown: ms(self.store_cooldown),
            lease_ttl,
            rate_limit_backoff: ms(self.rate_limit_backoff),
            spread: self.refresh_budget.is_some(),
        };
        let epoch = Instant::now();
        let owner = format!(
            "{:016x}{:016x}-{}",
            rand::random::<u64>(),
            rand::random::<u64>(),
            std::process::id()
        );
        TokenCache {
            inner: Arc::new(Inner {
                id: NEXT_CACHE_ID.fetch_add(1, Ordering::Relaxed),
                l1: L1::new(self.max_entries),
                l0_hits: Mutex::new(Vec::new()),
                flights: Mutex::new(HashMap::default()),
                shared: SingleFlight::new(),
                store: self.store,
                cfg,
                epoch,
                budget: self
                    .refresh_budget
                    .map(|(per_second, burst)| Budget::new(per_second, burst, epoch)),
                owner,
                counters: Counters::default(),
                store_down_until: AtomicU64::new(0),
                store_outage: AtomicBool::new(false),
                next_flight: AtomicU64::new(1),
            }),
        }
    }
}

/// The app access-token cache. Cheap to clone; clones share everything.
///
/// See the [module documentation](self) for the behaviour.
#[derive(Clone)]
pub struct TokenCache {
    inner: Arc<Inner>,
}

impl Default for TokenCache {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCache")
            .field("store", &self.inner.store)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl TokenCache {
    /// A memory-only cache with default settings.
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// A builder for a cache with a store or other settings.
    pub fn builder() -> TokenCacheBuilder {
        TokenCacheBuilder::default()
    }

    /// A valid access token for `key`, calling `refresher` (the platform's token request) only
    /// when neither memory nor the store has one and this caller is the one elected to refresh.
    ///
    /// Call it from within a tokio runtime (with timers enabled): refreshes run as detached tasks
    /// there. Outside one, a memory hit still works, and anything else fails with
    /// [`Error::Internal`].
    pub async fn get<F, Fut>(&self, key: &TokenKey, refresher: F) -> Result<AccessToken>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<FetchedToken>> + Send + 'static,
    {
        let inner = &self.inner;
        let now = inner.now_ms();
        let epoch = inner.l1.epoch();
        if let Some(token) = l0::get(inner.id, epoch, key, now) {
            return Ok(token);
        }
        match inner.l1.lookup(key, now, Some(now + inner.claim_ms())) {
            Lookup::Hit {
                token,
                claimed,
                refresh_at,
            } => {
                if claimed {
                    Inner::start_refresh_ahead(inner, key, refresher, now);
                } else if now < refresh_at {
                    l0::put(inner.id, epoch, key, &token, refresh_at, |hits| {
                        inner
                            .l0_hits
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .push(hits);
                    });
                }
                Ok(token)
            }
            Lookup::Miss => Inner::get_slow(inner, key, refresher).await,
        }
    }

    /// Forgets `rejected` for `key` — in memory and in the store — but only if it is still the
    /// cached token (compare-and-delete): a newer token stored meanwhile stays. Call it when the
    /// platform answers "invalid access token"; the next [`get`](Self::get) refreshes.
    pub async fn invalidate(&self, key: &TokenKey, rejected: &AccessToken) {
        let inner = &self.inner;
        inner.l1.remove_if(key, rejected);
        if let Some(store) = inner.usable_store() {
            let _ = inner
                .store_op(key, store.compare_and_delete(key, rejected))
                .await;
        }
    }

    /// Forgets whatever token is cached for `key` — in memory and in the store —
    /// unconditionally. Call it when the app's credentials change (a rotated secret): a token
    /// obtained with the old secret must not keep serving. The next [`get`](Self::get)
    /// refreshes. A refresh already running when this is called may still store its token.
    pub async fn evict(&self, key: &TokenKey) {
        let inner = &self.inner;
        if let Some((token, _)) = inner.l1.peek(key) {
            inner.l1.remove_if(key, &token);
        }
        if let Some(store) = inner.usable_store()
            && let Ok(Some(stored)) = inner.store_op(key, store.get(key)).await
        {
            let _ = inner
                .store_op(key, store.compare_and_delete(key, &stored.token))
                .await;
        }
    }

    /// Runs `work` **once** for `key` across this process and every replica sharing the store,
    /// and gives every concurrent caller its result. Made for work that must not run twice, such
    /// as refreshing a user token with a single-use refresh token (key:
    /// [`TokenKey::user_refresh`]); [`Sso::refresh_user_token`](crate::sso::Sso::refresh_user_token)
    /// uses it for every platform.
    ///
    /// 1. Callers in this process share one execution ([`SingleFlight`]), which runs as a
    ///    detached task: a cancelled caller cancels neither the work nor the lease handling.
    /// 2. With a usable store, a value stored under `key` (another replica's result) is returned
    ///    as is. Otherwise the replica that takes the store's lease for `key` runs `work`,
    ///    stores its value under `key` for `keep` and releases the lease; the others poll the
    ///    store with the same back-off as app-token refreshes until the value appears, or take
    ///    the lease and run `work` themselves once the holder released it (its work failed) or
    ///    its lease lapsed (it died).
    /// 3. Failures are never stored: callers of this process share the error, waiting replicas
    ///    run `work` themselves.
    /// 4. A store that fails or times out (or none at all) leaves only the in-process
    ///    de-duplication; it never fails the call.
    ///
    /// The value is opaque to the store (kept like an access token, in clear text: protect the
    /// store accordingly) and, once the work finished, is served to callers for `keep` more:
    /// a replica that asks slightly late gets the same value instead of running the work again.
    /// `keep` of zero stores nothing, so only concurrent callers of one process share. `work` is
    /// bounded by the cache's refresh timeout ([`Error::Timeout`]); the counters `lock_waits`
    /// and `store_errors` include these calls, `refreshes` does not.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use std::time::Duration;
    /// use unilogin_core::token_cache::{MemoryStore, TokenCache, TokenKey};
    /// use unilogin_core::{AccessToken, PlatformName, RefreshToken, TenantId};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> unilogin_core::Result<()> {
    /// let store = Arc::new(MemoryStore::new());
    /// let (a, b) = (
    ///     TokenCache::builder().store(store.clone()).build(),
    ///     TokenCache::builder().store(store).build(),
    /// );
    /// let app = TokenKey::new(
    ///     &PlatformName::new("feishu").unwrap(),
    ///     &TenantId::new("acme").unwrap(),
    ///     "cli_a1",
    ///     None,
    /// );
    /// let key = app.user_refresh(&RefreshToken::new("ur-1"));
    /// let keep = Duration::from_secs(30);
    /// let first = a
    ///     .single_flight(&key, keep, || async { Ok(AccessToken::new("new pair")) })
    ///     .await?;
    /// // Another replica asking for the same key gets the value without running its work.
    /// let second = b
    ///     .single_flight(&key, keep, || async { Ok(AccessToken::new("a second refresh")) })
    ///     .await?;
    /// assert_eq!((first.expose(), second.expose()), ("new pair", "new pair"));
    /// # Ok(())
    /// # }
    /// ```
    pub async fn single_flight<F, Fut>(
        &self,
        key: &TokenKey,
        keep: Duration,
        work: F,
    ) -> Result<AccessToken>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<AccessToken>> + Send + 'static,
    {
        let inner = self.inner.clone();
        let shared_key = key.clone();
        self.inner
            .shared
            .run(key.clone(), move || async move {
                inner.run_shared(&shared_key, keep, work).await
            })
            .await
    }

    /// The refresh budget as configured (`per_second`, `burst`), if any (see
    /// [`TokenCacheBuilder::refresh_budget`]).
    pub fn refresh_budget(&self) -> Option<(u32, u32)> {
        self.inner.budget.as_ref().map(Budget::quota)
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> TokenCacheStats {
        let inner = &self.inner;
        let l0_hits: u64 = inner
            .l0_hits
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|h| h.load(Ordering::Relaxed))
            .sum();
        inner
            .counters
            .snapshot(inner.l1.hits() + l0_hits, inner.l1.len() as u64)
    }
}

#[cfg(test)]
mod tests;
