//! Cross-replica coordination through the shared [`TokenStore`]: take a token another replica
//! stored, or elect one replica (the store's lease) to do the work while the others poll;
//! bounded store calls that degrade to in-process work when the store fails.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::flight::{Inner, ms};
use super::stats::Counters;
use super::*;

/// What [`Inner::elect`] decided.
pub(super) enum Election<T> {
    /// A value from the store that the caller accepted.
    Found(T),
    /// This cache holds the lease: do the work, then release it.
    Leased,
    /// No store to coordinate through (it failed, or a holder outlived its lease): do the work.
    Alone,
}

impl Inner {
    pub(super) fn usable_store(&self) -> Option<&Arc<dyn TokenStore>> {
        let store = self.store.as_ref()?;
        (self.now_ms() >= self.store_down_until.load(Ordering::Relaxed)).then_some(store)
    }

    pub(super) async fn store_op<T>(
        &self,
        key: &TokenKey,
        op: impl Future<Output = Result<T>>,
    ) -> std::result::Result<T, ()> {
        match tokio::time::timeout(self.cfg.store_timeout, op).await {
            Ok(Ok(v)) => {
                if self.store_outage.load(Ordering::Relaxed)
                    && self.store_outage.swap(false, Ordering::AcqRel)
                {
                    tracing::info!("token store available again; using it for shared tokens");
                }
                Ok(v)
            }
            Ok(Err(e)) => {
                self.store_failed(&e);
                Err(())
            }
            Err(_) => {
                self.store_failed(&Error::Timeout {
                    ctx: key.error_ctx("token_store"),
                });
                Err(())
            }
        }
    }

    pub(super) fn store_failed(&self, e: &Error) {
        Counters::bump(&self.counters.store_errors);
        let until = self.now_ms().saturating_add(self.cfg.store_cooldown);
        self.store_down_until.fetch_max(until, Ordering::Relaxed);
        if !self.store_outage.swap(true, Ordering::AcqRel) {
            tracing::warn!(
                error = %e,
                retry_in_ms = self.cfg.store_cooldown,
                "token store unavailable; serving tokens from memory until it recovers"
            );
        }
    }

    /// L2, then the lease, then the refresher. Never fails because of the store.
    pub(super) async fn fetch<F, Fut>(
        &self,
        key: &TokenKey,
        refresher: F,
        current: Option<(AccessToken, u64)>,
    ) -> Result<AccessToken>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<FetchedToken>> + Send + 'static,
    {
        let Some(store) = self.usable_store().cloned() else {
            return self.refresh(key, refresher).await;
        };
        let take = |st: StoredToken| {
            self.acceptable(&st, current.as_ref())
                .then(|| self.adopt(key, st))
        };
        match self.elect(&store, key, take).await {
            Election::Found(token) => Ok(token),
            Election::Alone => self.refresh(key, refresher).await,
            Election::Leased => {
                let result = self.refresh(key, refresher).await;
                // After a rate-limit error the lease is kept until it lapses: it then throttles
                // the other replicas' attempts too.
                if !matches!(result, Err(Error::RateLimited { .. })) {
                    self.release(&store, key).await;
                }
                result
            }
        }
    }

    /// The cross-replica election shared by app tokens and [`TokenCache::single_flight`]: a
    /// value in the store that `take` accepts is the answer; otherwise whoever takes the store's
    /// lease for `key` does the work, and the others poll the store (backing off from
    /// [`POLL_FIRST`] to [`POLL_MAX`]) until `take` accepts what the holder stored or the lease
    /// is theirs (the holder released it or died). A store failure, or a lease held past its
    /// lifetime, leaves the caller on its own.
    pub(super) async fn elect<T>(
        &self,
        store: &Arc<dyn TokenStore>,
        key: &TokenKey,
        mut take: impl FnMut(StoredToken) -> Option<T>,
    ) -> Election<T> {
        let lease = self.cfg.lease_ttl;
        let mut deadline = None;
        let mut pause = POLL_FIRST;
        loop {
            match self.take_stored(store, key, &mut take).await {
                Ok(Some(v)) => return Election::Found(v),
                Ok(None) => {}
                Err(()) => return Election::Alone,
            }
            match self
                .store_op(key, store.try_lease(key, &self.owner, lease))
                .await
            {
                Ok(true) => {
                    // The previous holder may have stored a value between our read and our lease.
                    if let Ok(Some(v)) = self.take_stored(store, key, &mut take).await {
                        self.release(store, key).await;
                        return Election::Found(v);
                    }
                    return Election::Leased;
                }
                Ok(false) => {}
                Err(()) => return Election::Alone,
            }
            // Another replica holds the lease: wait for its value, or for its lease to lapse.
            let deadline = *deadline.get_or_insert_with(|| {
                Counters::bump(&self.counters.lock_waits);
                self.now_ms() + ms(lease) + 1000
            });
            if self.now_ms() >= deadline {
                tracing::warn!(key = %key, "token refresh lease held past its lifetime; refreshing without it");
                return Election::Alone;
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(POLL_MAX);
            if self.usable_store().is_none() {
                return Election::Alone;
            }
        }
    }

    /// The value stored under `key` if `take` accepts it; `Err` if the store failed.
    pub(super) async fn take_stored<T>(
        &self,
        store: &Arc<dyn TokenStore>,
        key: &TokenKey,
        take: &mut impl FnMut(StoredToken) -> Option<T>,
    ) -> std::result::Result<Option<T>, ()> {
        Ok(self.store_op(key, store.get(key)).await?.and_then(take))
    }

    /// Releases this cache's lease of `key` (if the store is usable; a lease left behind lapses).
    pub(super) async fn release(&self, store: &Arc<dyn TokenStore>, key: &TokenKey) {
        if self.usable_store().is_some() {
            let _ = self
                .store_op(key, store.release_lease(key, &self.owner))
                .await;
        }
    }

    /// `work` bounded by the refresh timeout ([`Error::Timeout`] at `token_cache.refresh`).
    pub(super) async fn bounded<T>(
        &self,
        key: &TokenKey,
        work: impl Future<Output = Result<T>>,
    ) -> Result<T> {
        match tokio::time::timeout(self.cfg.refresh_timeout, work).await {
            Ok(r) => r,
            Err(_) => Err(Error::Timeout {
                ctx: key.error_ctx("token_cache.refresh"),
            }),
        }
    }

    /// The body of [`TokenCache::single_flight`], run once per key in this process.
    pub(super) async fn run_shared<F, Fut>(
        &self,
        key: &TokenKey,
        keep: Duration,
        work: F,
    ) -> Result<AccessToken>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<AccessToken>>,
    {
        let Some(store) = self.usable_store().cloned() else {
            return self.bounded(key, work()).await;
        };
        let election = self.elect(&store, key, |st| Some(st.token)).await;
        let leased = match election {
            Election::Found(value) => return Ok(value),
            Election::Leased => true,
            Election::Alone => false,
        };
        let result = self.bounded(key, work()).await;
        if let Ok(value) = &result
            && !keep.is_zero()
            && self.usable_store().is_some()
        {
            let _ = self.store_op(key, store.set(key, value, keep)).await;
        }
        // Released whatever the outcome: after a failure a waiting replica tries itself (and
        // gets the platform's own answer); failures are never shared through the store.
        if leased {
            self.release(&store, key).await;
        }
        result
    }

    /// Calls the refresher (bounded by the refresh timeout) and stores its token.
    pub(super) async fn refresh<F, Fut>(&self, key: &TokenKey, refresher: F) -> Result<AccessToken>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<FetchedToken>> + Send + 'static,
    {
        Counters::bump(&self.counters.refreshes);
        let fetched = match self.bounded(key, refresher()).await {
            Ok(f) => f,
            Err(e) => {
                Counters::bump(&self.counters.refresh_failures);
                tracing::debug!(key = %key, error = %e, "token refresh failed");
                return Err(e);
            }
        };
        let lifetime = ms(fetched.expires_in);
        let ttl = lifetime - self.cfg.expiry_margin.min(lifetime / 10);
        if ttl == 0 {
            // Already expired by the platform's own account: hand it out, cache nothing.
            return Ok(fetched.token);
        }
        self.insert_l1(key, fetched.token.clone(), ttl, self.now_ms());
        if let Some(store) = self.usable_store() {
            let _ = self
                .store_op(
                    key,
                    store.set(key, &fetched.token, Duration::from_millis(ttl)),
                )
                .await;
        }
        Ok(fetched.token)
    }

    /// Whether a stored token is worth taking: for a cold key, any token with a little life left;
    /// during refresh-ahead, only one that outlives the current token (someone refreshed it).
    pub(super) fn acceptable(
        &self,
        st: &StoredToken,
        current: Option<&(AccessToken, u64)>,
    ) -> bool {
        let ttl = ms(st.ttl);
        match current {
            None => ttl >= MIN_USABLE_MS,
            Some((token, expires_at)) => {
                &st.token != token && self.now_ms().saturating_add(ttl) > *expires_at
            }
        }
    }

    pub(super) fn adopt(&self, key: &TokenKey, st: StoredToken) -> AccessToken {
        Counters::bump(&self.counters.l2_hits);
        self.insert_l1(key, st.token.clone(), ms(st.ttl), self.now_ms());
        st.token
    }
}
