//! Behaviour tests of the token cache (memory and [`MemoryStore`]; the Redis-backed ones live in
//! `unilogin-redis`).

use std::future::Future;
use std::pin::{Pin, pin};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::Semaphore;

use super::*;
use crate::error::{UpstreamCode, UpstreamCtx};
use crate::types::{PlatformName, TenantId};

type Refresh = Pin<Box<dyn Future<Output = Result<FetchedToken>> + Send>>;

fn key(app: &str) -> TokenKey {
    TokenKey::new(
        &PlatformName::new("dingtalk").unwrap(),
        &TenantId::new("acme").unwrap(),
        app,
        None,
    )
}

/// A refresher that counts its calls, optionally waits for a permit, then returns `token`.
fn refresher(
    calls: &Arc<AtomicUsize>,
    gate: Option<&Arc<Semaphore>>,
    token: &str,
    lifetime_secs: u64,
) -> impl FnOnce() -> Refresh + Send + 'static {
    let calls = calls.clone();
    let gate = gate.cloned();
    let token = token.to_string();
    move || {
        Box::pin(async move {
            calls.fetch_add(1, Ordering::SeqCst);
            if let Some(gate) = gate {
                let _permit = gate
                    .acquire()
                    .await
                    .map_err(|_| Error::Internal("gate".into()))?;
            }
            Ok(FetchedToken::new(
                AccessToken::new(token),
                Duration::from_secs(lifetime_secs),
            ))
        })
    }
}

fn failing(calls: &Arc<AtomicUsize>, err: Error) -> impl FnOnce() -> Refresh + Send + 'static {
    let calls = calls.clone();
    move || {
        Box::pin(async move {
            calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(10)).await;
            Err(err)
        })
    }
}

fn ctx() -> UpstreamCtx {
    UpstreamCtx::new(None, PlatformName::new("dingtalk").unwrap(), "gettoken")
}

/// Polls `fut` exactly once: `Some` if it completed without waiting.
fn poll_once<F: Future>(fut: F) -> Option<F::Output> {
    let mut fut = pin!(fut);
    match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => Some(v),
        Poll::Pending => None,
    }
}

async fn settle() {
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_concurrent_gets_on_a_cold_key_call_the_refresher_once() {
    let cache = TokenCache::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let k = key("cold");
    let start = Arc::new(tokio::sync::Barrier::new(10_001));
    let mut tasks = Vec::with_capacity(10_000);
    for _ in 0..10_000 {
        let (cache, k, calls, start) = (cache.clone(), k.clone(), calls.clone(), start.clone());
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            let slow = move || -> Refresh {
                Box::pin(async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    Ok(FetchedToken::new(
                        AccessToken::new("tok"),
                        Duration::from_secs(7200),
                    ))
                })
            };
            cache.get(&k, slow).await
        }));
    }
    start.wait().await;
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap().expose(), "tok");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let s = cache.stats();
    assert_eq!(s.refreshes, 1);
    assert_eq!(s.entries, 1);
}

#[tokio::test(start_paused = true)]
async fn inside_the_refresh_window_nobody_waits_and_one_refresh_starts() {
    let cache = TokenCache::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let k = key("ahead");
    let t1 = cache
        .get(&k, refresher(&calls, None, "t1", 7200))
        .await
        .unwrap();
    assert_eq!(t1.expose(), "t1");
    // Lifetime 7200 s - 10 s margin; window 300 s: refresh-ahead from 6890 s, expiry at 7190 s.
    tokio::time::advance(Duration::from_secs(6880)).await;
    let gate = Arc::new(Semaphore::new(0));
    for _ in 0..100 {
        let got = poll_once(cache.get(&k, refresher(&calls, Some(&gate), "t2", 7200)));
        assert_eq!(got.unwrap().unwrap().expose(), "t1");
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "no refresh before the window"
    );
    tokio::time::advance(Duration::from_secs(20)).await;
    for _ in 0..1000 {
        // Every call completes on its first poll: nobody waits while the token is valid.
        let got = poll_once(cache.get(&k, refresher(&calls, Some(&gate), "t2", 7200)));
        assert_eq!(got.expect("a caller waited").unwrap().expose(), "t1");
        tokio::task::yield_now().await;
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "exactly one background refresh"
    );
    gate.add_permits(1);
    settle().await;
    let got = poll_once(cache.get(&k, refresher(&calls, None, "t3", 7200)));
    assert_eq!(got.unwrap().unwrap().expose(), "t2");
    // Past the old expiry the new token is served without another refresh.
    tokio::time::advance(Duration::from_secs(400)).await;
    let got = cache
        .get(&k, refresher(&calls, None, "t3", 7200))
        .await
        .unwrap();
    assert_eq!(got.expose(), "t2");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(cache.stats().lock_waits, 0);
}

#[tokio::test(start_paused = true)]
async fn a_refresh_still_running_at_expiry_is_shared_by_the_callers_that_need_it() {
    let cache = TokenCache::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let k = key("boundary");
    cache
        .get(&k, refresher(&calls, None, "t1", 7200))
        .await
        .unwrap();
    // Refresh-ahead starts 5 s before the expiry at 7190 s (the refresh timeout is 10 s).
    tokio::time::advance(Duration::from_secs(7185)).await;
    let gate = Arc::new(Semaphore::new(0));
    // Starts the (slow) background refresh.
    let got = poll_once(cache.get(&k, refresher(&calls, Some(&gate), "t2", 7200)));
    assert_eq!(got.unwrap().unwrap().expose(), "t1");
    settle().await;
    tokio::time::advance(Duration::from_secs(6)).await; // past the expiry at 7190 s
    let e = poll_once(cache.get(&k, refresher(&calls, None, "t3", 7200)));
    assert!(
        e.is_none(),
        "without a valid token a caller waits for the running refresh"
    );
    let mut waiters = Vec::new();
    for _ in 0..50 {
        let (cache, k, calls, gate) = (cache.clone(), k.clone(), calls.clone(), gate.clone());
        waiters.push(tokio::spawn(async move {
            cache
                .get(&k, refresher(&calls, Some(&gate), "t3", 7200))
                .await
        }));
    }
    settle().await;
    gate.add_permits(100);
    for w in waiters {
        assert_eq!(w.await.unwrap().unwrap().expose(), "t2");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert_eq!(cache.stats().lock_waits, 51);
}

#[tokio::test(start_paused = true)]
async fn cancelling_the_first_caller_does_not_cancel_the_refresh() {
    let cache = TokenCache::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let gate = Arc::new(Semaphore::new(0));
    let k = key("cancel");
    let first = {
        let (cache, k, calls, gate) = (cache.clone(), k.clone(), calls.clone(), gate.clone());
        tokio::spawn(async move {
            cache
                .get(&k, refresher(&calls, Some(&gate), "t1", 7200))
                .await
        })
    };
    settle().await;
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let mut others = Vec::new();
    for _ in 0..20 {
        let (cache, k, calls) = (cache.clone(), k.clone(), calls.clone());
        others.push(tokio::spawn(async move {
            cache.get(&k, refresher(&calls, None, "other", 7200)).await
        }));
    }
    settle().await;
    first.abort();
    assert!(first.await.unwrap_err().is_cancelled());
    // A caller that gives up through a timeout is the same as a cancelled one.
    let timed_out = tokio::time::timeout(
        Duration::from_millis(5),
        cache.get(&k, refresher(&calls, None, "x", 1)),
    )
    .await;
    assert!(timed_out.is_err());
    gate.add_permits(1);
    for o in others {
        assert_eq!(o.await.unwrap().unwrap().expose(), "t1");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn a_failed_refresh_reaches_every_waiter_and_is_not_cached() {
    let cache = TokenCache::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let k = key("fail");
    let err = Error::Upstream {
        ctx: ctx(),
        code: UpstreamCode::Number(-1),
        message: "system busy".into(),
        transient: true,
    };
    let mut waiters = Vec::new();
    for _ in 0..10 {
        let (cache, k, calls, err) = (cache.clone(), k.clone(), calls.clone(), err.clone());
        waiters.push(tokio::spawn(async move {
            cache.get(&k, failing(&calls, err)).await
        }));
    }
    for w in waiters {
        let e = w.await.unwrap().unwrap_err();
        assert_eq!(e.kind(), "upstream");
        assert!(e.to_string().contains("system busy"), "{e}");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    // Not cached: the very next caller refreshes again and succeeds.
    let t = cache
        .get(&k, refresher(&calls, None, "ok", 7200))
        .await
        .unwrap();
    assert_eq!(t.expose(), "ok");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    let s = cache.stats();
    assert_eq!((s.refreshes, s.refresh_failures), (2, 1));
}

#[tokio::test(start_paused = true)]
async fn rate_limits_back_off_for_retry_after_plus_jitter() {
    let cache = TokenCache::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let k = key("limited");
    let limited = Error::RateLimited {
        ctx: ctx(),
        code: UpstreamCode::Number(90018),
        retry_after: Some(Duration::from_secs(20)),
    };
    let e = cache
        .get(&k, failing(&calls, limited.clone()))
        .await
        .unwrap_err();
    assert_eq!(e.kind(), "rate_limited");
    // Within the back-off, callers get the error without the refresher being called.
    for _ in 0..5 {
        tokio::time::advance(Duration::from_secs(3)).await;
        let e = cache
            .get(&k, refresher(&calls, None, "t", 7200))
            .await
            .unwrap_err();
        assert_eq!(e.kind(), "rate_limited");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    // 20 s + at most 25 % jitter.
    tokio::time::advance(Duration::from_secs(11)).await;
    let t = cache
        .get(&k, refresher(&calls, None, "t", 7200))
        .await
        .unwrap();
    assert_eq!(t.expose(), "t");
    assert_eq!(calls.load(Ordering::SeqCst), 2);

    // During refresh-ahead, a rate limit keeps the valid token flowing and holds off retries.
    tokio::time::advance(Duration::from_secs(6900)).await;
    let got = poll_once(cache.get(&k, failing(&calls, limited.clone()))).unwrap();
    assert_eq!(got.unwrap().expose(), "t");
    settle().await;
    tokio::time::advance(Duration::from_millis(20)).await;
    settle().await;
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    for _ in 0..10 {
        tokio::time::advance(Duration::from_secs(1)).await;
        let got = poll_once(cache.get(&k, refresher(&calls, None, "t2", 7200))).unwrap();
        assert_eq!(got.unwrap().expose(), "t");
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        3,
        "no retry inside the back-off"
    );
    tokio::time::advance(Duration::from_secs(20)).await;
    let got = poll_once(cache.get(&k, refresher(&calls, None, "t2", 7200))).unwrap();
    assert_eq!(got.unwrap().expose(), "t");
    settle().await;
    assert_eq!(calls.load(Ordering::SeqCst), 4);
    assert_eq!(
        cache
            .get(&k, refresher(&calls, None, "t3", 7200))
            .await
            .unwrap()
            .expose(),
        "t2"
    );
}

#[tokio::test(start_paused = true)]
async fn a_hung_refresh_times_out_with_a_typed_error() {
    let cache = TokenCache::builder()
        .refresh_timeout(Duration::from_secs(3))
        .build();
    let k = key("hung");
    let started = tokio::time::Instant::now();
    let e = cache
        .get(&k, std::future::pending::<Result<FetchedToken>>)
        .await
        .unwrap_err();
    match &e {
        Error::Timeout { ctx } => {
            assert_eq!(ctx.endpoint, "token_cache.refresh");
            assert_eq!(ctx.platform.as_str(), "dingtalk");
            assert_eq!(ctx.tenant.as_ref().unwrap().as_str(), "acme");
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
    assert_eq!(started.elapsed(), Duration::from_secs(3));
    assert_eq!(cache.stats().refresh_failures, 1);
}

#[tokio::test(start_paused = true)]
async fn lifetime_comes_from_expires_in_and_the_window_scales_down() {
    let cache = TokenCache::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let k = key("short");
    cache
        .get(&k, refresher(&calls, None, "t1", 60))
        .await
        .unwrap();
    // 60 s lifetime: 6 s margin, 54 s ttl, window 13.5 s: refresh-ahead from 40.5 s.
    tokio::time::advance(Duration::from_secs(40)).await;
    cache
        .get(&k, refresher(&calls, None, "t2", 60))
        .await
        .unwrap();
    settle().await;
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    tokio::time::advance(Duration::from_secs(1)).await;
    let t = cache
        .get(&k, refresher(&calls, None, "t2", 60))
        .await
        .unwrap();
    assert_eq!(t.expose(), "t1");
    settle().await;
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    let t = cache
        .get(&k, refresher(&calls, None, "t3", 60))
        .await
        .unwrap();
    assert_eq!(t.expose(), "t2");
}

#[tokio::test(start_paused = true)]
async fn l1_filled_from_the_store_takes_the_remaining_ttl() {
    let store = Arc::new(MemoryStore::new());
    let cache = TokenCache::builder().store(store.clone()).build();
    let calls = Arc::new(AtomicUsize::new(0));
    let k = key("l2");
    store
        .set(&k, &AccessToken::new("from-l2"), Duration::from_secs(100))
        .await
        .unwrap();
    let t = cache
        .get(&k, refresher(&calls, None, "fresh", 7200))
        .await
        .unwrap();
    assert_eq!(t.expose(), "from-l2");
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    assert_eq!(cache.stats().l2_hits, 1);
    tokio::time::advance(Duration::from_secs(99)).await;
    let t = cache
        .get(&k, refresher(&calls, None, "fresh", 7200))
        .await
        .unwrap();
    assert_eq!(t.expose(), "from-l2");
    // The seed would keep serving it for two hours; it expired in the store at 100 s.
    tokio::time::advance(Duration::from_secs(2)).await;
    let t = cache
        .get(&k, refresher(&calls, None, "fresh", 7200))
        .await
        .unwrap();
    assert_eq!(t.expose(), "fresh");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let stored = store.get(&k).await.unwrap().unwrap();
    assert_eq!(stored.token.expose(), "fresh");
    assert_eq!(stored.ttl, Duration::from_secs(7190));
}

#[tokio::test(start_paused = true)]
async fn invalidating_an_old_token_leaves_the_newer_one() {
    let store = Arc::new(MemoryStore::new());
    let a = TokenCache::builder().store(store.clone()).build();
    let b = TokenCache::builder().store(store.clone()).build();
    let calls = Arc::new(AtomicUsize::new(0));
    let k = key("race");
    let old = a
        .get(&k, refresher(&calls, None, "old", 7200))
        .await
        .unwrap();
    assert_eq!(
        b.get(&k, refresher(&calls, None, "x", 7200)).await.unwrap(),
        old
    );
    // B sees the rejection first and refreshes.
    b.invalidate(&k, &old).await;
    let new = b
        .get(&k, refresher(&calls, None, "new", 7200))
        .await
        .unwrap();
    assert_eq!(new.expose(), "new");
    // A reports the same old token late: the new one must survive, in the store and in B.
    a.invalidate(&k, &old).await;
    assert_eq!(store.get(&k).await.unwrap().unwrap().token, new);
    assert_eq!(
        a.get(&k, refresher(&calls, None, "x", 7200)).await.unwrap(),
        new
    );
    assert_eq!(
        b.get(&k, refresher(&calls, None, "x", 7200)).await.unwrap(),
        new
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    // Invalidating a token that is not the cached one does nothing in L1 either.
    b.invalidate(&k, &AccessToken::new("unrelated")).await;
    assert_eq!(
        poll_once(b.get(&k, refresher(&calls, None, "x", 1)))
            .unwrap()
            .unwrap(),
        new
    );
}

#[tokio::test(start_paused = true)]
async fn eight_caches_sharing_a_store_refresh_once() {
    let store = Arc::new(MemoryStore::new());
    let calls = Arc::new(AtomicUsize::new(0));
    let k = key("replicas");
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let cache = TokenCache::builder().store(store.clone()).build();
        let (k, calls) = (k.clone(), calls.clone());
        tasks.push(tokio::spawn(async move {
            let slow = move || -> Refresh {
                Box::pin(async move {
                    calls.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    Ok(FetchedToken::new(
                        AccessToken::new("shared"),
                        Duration::from_secs(7200),
                    ))
                })
            };
            let t = cache.get(&k, slow).await;
            (t, cache.stats())
        }));
    }
    let mut waits = 0;
    for t in tasks {
        let (t, stats) = t.await.unwrap();
        assert_eq!(t.unwrap().expose(), "shared");
        waits += stats.lock_waits;
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(waits, 7);
}

#[tokio::test(start_paused = true)]
async fn a_dead_lease_holder_is_taken_over_after_the_lease_lapses() {
    let store = Arc::new(MemoryStore::new());
    let k = key("orphan");
    assert!(
        store
            .try_lease(&k, "dead-replica", Duration::from_secs(4))
            .await
            .unwrap()
    );
    let cache = TokenCache::builder()
        .store(store.clone())
        .lease_ttl(Duration::from_secs(4))
        .build();
    let calls = Arc::new(AtomicUsize::new(0));
    let started = tokio::time::Instant::now();
    let t = cache
        .get(&k, refresher(&calls, None, "mine", 7200))
        .await
        .unwrap();
    assert_eq!(t.expose(), "mine");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(4) && waited < Duration::from_secs(5),
        "{waited:?}"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    // The lease was released after the refresh.
    assert!(
        store
            .try_lease(&k, "other", Duration::from_secs(1))
            .await
            .unwrap()
    );
}

/// A store that can be switched off, counting its calls.
#[derive(Debug, Default)]
struct FlakyStore {
    inner: MemoryStore,
    down: AtomicBool,
    calls: AtomicUsize,
}

impl FlakyStore {
    fn check(&self) -> Result<()> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if self.down.load(Ordering::SeqCst) {
            return Err(Error::Transport {
                ctx: ctx().at("token_store"),
                message: "connection refused".into(),
            });
        }
        Ok(())
    }
}

#[async_trait]
impl TokenStore for FlakyStore {
    async fn get(&self, key: &TokenKey) -> Result<Option<StoredToken>> {
        self.check()?;
        self.inner.get(key).await
    }
    async fn set(&self, key: &TokenKey, token: &AccessToken, ttl: Duration) -> Result<()> {
        self.check()?;
        self.inner.set(key, token, ttl).await
    }
    async fn compare_and_delete(&self, key: &TokenKey, expected: &AccessToken) -> Result<bool> {
        self.check()?;
        self.inner.compare_and_delete(key, expected).await
    }
    async fn try_lease(&self, key: &TokenKey, owner: &str, ttl: Duration) -> Result<bool> {
        self.check()?;
        self.inner.try_lease(key, owner, ttl).await
    }
    async fn release_lease(&self, key: &TokenKey, owner: &str) -> Result<bool> {
        self.check()?;
        self.inner.release_lease(key, owner).await
    }
}

#[tokio::test(start_paused = true)]
async fn a_failing_store_degrades_to_memory_and_recovers() {
    let store = Arc::new(FlakyStore::default());
    store.down.store(true, Ordering::SeqCst);
    let cache = TokenCache::builder()
        .store(store.clone())
        .store_cooldown(Duration::from_secs(5))
        .build();
    let calls = Arc::new(AtomicUsize::new(0));
    let k = key("degraded");
    for _ in 0..100 {
        let t = cache
            .get(&k, refresher(&calls, None, "t1", 7200))
            .await
            .unwrap();
        assert_eq!(t.expose(), "t1");
    }
    // One refresh, not one per call; the store was tried once, then left alone.
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(store.calls.load(Ordering::SeqCst), 1);
    assert_eq!(cache.stats().store_errors, 1);
    // The store comes back; after the cooldown a refresh writes to it again.
    store.down.store(false, Ordering::SeqCst);
    tokio::time::advance(Duration::from_secs(6)).await;
    cache.invalidate(&k, &AccessToken::new("t1")).await;
    let t = cache
        .get(&k, refresher(&calls, None, "t2", 7200))
        .await
        .unwrap();
    assert_eq!(t.expose(), "t2");
    assert_eq!(
        store.inner.get(&k).await.unwrap().unwrap().token.expose(),
        "t2"
    );
    assert_eq!(cache.stats().store_errors, 1);
}

#[tokio::test(start_paused = true)]
async fn a_panicking_refresher_fails_its_waiters_but_not_the_key() {
    let cache = TokenCache::new();
    let k = key("panic");
    let e = cache
        .get(&k, || async { panic!("refresher bug") })
        .await
        .unwrap_err();
    assert_eq!(e.kind(), "internal");
    let calls = Arc::new(AtomicUsize::new(0));
    let t = cache
        .get(&k, refresher(&calls, None, "t", 7200))
        .await
        .unwrap();
    assert_eq!(t.expose(), "t");
}

#[tokio::test(start_paused = true)]
async fn memory_stays_bounded() {
    let cache = TokenCache::builder().max_entries(64).build();
    let calls = Arc::new(AtomicUsize::new(0));
    for i in 0..1000 {
        cache
            .get(&key(&format!("app{i}")), refresher(&calls, None, "t", 7200))
            .await
            .unwrap();
    }
    let entries = cache.stats().entries;
    assert!((60..=64).contains(&entries), "{entries}");
    // The most recent key is still cached.
    assert!(poll_once(cache.get(&key("app999"), refresher(&calls, None, "x", 1))).is_some());
}

#[test]
fn outside_a_tokio_runtime_get_fails_instead_of_panicking() {
    let cache = TokenCache::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let got = poll_once(cache.get(&key("no-rt"), refresher(&calls, None, "t", 7200)));
    let e = got.expect("completes at once").unwrap_err();
    assert_eq!(e.kind(), "internal");
    assert!(e.to_string().contains("tokio runtime"), "{e}");
    assert_eq!(calls.load(Ordering::SeqCst), 0);
}

#[tokio::test(start_paused = true)]
async fn per_thread_copies_never_outlive_an_invalidation_or_a_refresh() {
    let a = TokenCache::new();
    let b = TokenCache::new();
    let calls = Arc::new(AtomicUsize::new(0));
    let k = key("l0");
    for _ in 0..3 {
        // Miss, L1 hit (copies into this thread's L0), L0 hit — alternating two caches.
        assert_eq!(
            a.get(&k, refresher(&calls, None, "a1", 7200))
                .await
                .unwrap()
                .expose(),
            "a1"
        );
        assert_eq!(
            b.get(&k, refresher(&calls, None, "b1", 7200))
                .await
                .unwrap()
                .expose(),
            "b1"
        );
    }
    for _ in 0..3 {
        assert_eq!(
            a.get(&k, refresher(&calls, None, "x", 7200))
                .await
                .unwrap()
                .expose(),
            "a1"
        );
    }
    assert_eq!(a.stats().l1_hits, 5);
    a.invalidate(&k, &AccessToken::new("a1")).await;
    assert_eq!(
        a.get(&k, refresher(&calls, None, "a2", 7200))
            .await
            .unwrap()
            .expose(),
        "a2"
    );
    assert_eq!(
        a.get(&k, refresher(&calls, None, "x", 7200))
            .await
            .unwrap()
            .expose(),
        "a2"
    );
    assert_eq!(
        a.get(&k, refresher(&calls, None, "x", 7200))
            .await
            .unwrap()
            .expose(),
        "a2"
    );
    assert_eq!(
        b.get(&k, refresher(&calls, None, "x", 7200))
            .await
            .unwrap()
            .expose(),
        "b1"
    );
    // Another key's refresh also makes the copies stale; they are re-read, still correct.
    a.get(&key("other"), refresher(&calls, None, "o", 7200))
        .await
        .unwrap();
    assert_eq!(
        a.get(&k, refresher(&calls, None, "x", 7200))
            .await
            .unwrap()
            .expose(),
        "a2"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 4);
}

type Work = Pin<Box<dyn Future<Output = Result<AccessToken>> + Send>>;

/// Work for `single_flight` that counts its calls, takes `delay`, then returns `result`.
fn work(
    calls: &Arc<AtomicUsize>,
    delay: Duration,
    result: Result<&str>,
) -> impl FnOnce() -> Work + Send + 'static {
    let calls = calls.clone();
    let result = result.map(AccessToken::new);
    move || {
        Box::pin(async move {
            calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(delay).await;
            result
        })
    }
}

fn refresh_key() -> TokenKey {
    key("cli_a1").user_refresh(&crate::types::RefreshToken::new("ur-single-use"))
}

const KEEP: Duration = Duration::from_secs(30);

#[tokio::test(start_paused = true)]
async fn single_flight_runs_once_across_two_replicas_sharing_a_store() {
    let store = Arc::new(MemoryStore::new());
    let replicas = [
        TokenCache::builder().store(store.clone()).build(),
        TokenCache::builder().store(store.clone()).build(),
    ];
    let calls = Arc::new(AtomicUsize::new(0));
    let k = refresh_key();
    let mut tasks = Vec::new();
    for i in 0..16 {
        let cache = replicas[i % 2].clone();
        let (k, w) = (
            k.clone(),
            work(&calls, Duration::from_millis(300), Ok("v1")),
        );
        tasks.push(tokio::spawn(async move {
            cache.single_flight(&k, KEEP, w).await
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap().expose(), "v1");
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "one execution for 16 callers"
    );
    // One replica waited on the other's lease (in-process joins are not lease waits).
    let waits: u64 = replicas.iter().map(|c| c.stats().lock_waits).sum();
    assert_eq!(waits, 1);
    // The value is kept for `keep`, the lease is free again, and app-token stats are untouched.
    let stored = store.get(&k).await.unwrap().unwrap();
    assert_eq!(stored.token.expose(), "v1");
    assert!(stored.ttl <= KEEP, "{:?}", stored.ttl);
    assert!(
        store
            .try_lease(&k, "probe", Duration::from_secs(1))
            .await
            .unwrap()
    );
    store.release_lease(&k, "probe").await.unwrap();
    assert_eq!(
        replicas[0].stats().refreshes + replicas[1].stats().refreshes,
        0
    );
    // A late caller within `keep` gets the same value; after it, the work runs again.
    let late = replicas[1]
        .single_flight(&k, KEEP, work(&calls, Duration::ZERO, Ok("v2")))
        .await
        .unwrap();
    assert_eq!((late.expose(), calls.load(Ordering::SeqCst)), ("v1", 1));
    tokio::time::advance(KEEP).await;
    let again = replicas[1]
        .single_flight(&k, KEEP, work(&calls, Duration::ZERO, Ok("v2")))
        .await
        .unwrap();
    assert_eq!((again.expose(), calls.load(Ordering::SeqCst)), ("v2", 2));
    // Another key is independent.
    let other = key("cli_a1").user_refresh(&crate::types::RefreshToken::new("ur-other"));
    let v = replicas[0]
        .single_flight(&other, KEEP, work(&calls, Duration::ZERO, Ok("v3")))
        .await
        .unwrap();
    assert_eq!((v.expose(), calls.load(Ordering::SeqCst)), ("v3", 3));
}

#[tokio::test(start_paused = true)]
async fn single_flight_with_a_failing_store_still_runs_once_per_process() {
    let store = Arc::new(FlakyStore::default());
    store.down.store(true, Ordering::SeqCst);
    let cache = TokenCache::builder().store(store.clone()).build();
    let calls = Arc::new(AtomicUsize::new(0));
    let k = refresh_key();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (cache, k) = (cache.clone(), k.clone());
        let w = work(&calls, Duration::from_millis(300), Ok("local"));
        tasks.push(tokio::spawn(async move {
            cache.single_flight(&k, KEEP, w).await
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap().expose(), "local");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(cache.stats().store_errors, 1, "tried once, then left alone");
    assert_eq!(store.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(start_paused = true)]
async fn a_failed_single_flight_releases_the_lease_and_a_waiting_replica_runs_the_work() {
    let store = Arc::new(MemoryStore::new());
    let a = TokenCache::builder().store(store.clone()).build();
    let b = TokenCache::builder().store(store.clone()).build();
    let (a_calls, b_calls) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let k = refresh_key();
    let refused = Error::ReauthRequired {
        ctx: ctx(),
        code: UpstreamCode::Number(20026),
    };
    let first = {
        let (a, k) = (a.clone(), k.clone());
        let w = work(&a_calls, Duration::from_millis(300), Err(refused));
        tokio::spawn(async move { a.single_flight(&k, KEEP, w).await })
    };
    tokio::time::sleep(Duration::from_millis(10)).await;
    let started = tokio::time::Instant::now();
    let second = b
        .single_flight(&k, KEEP, work(&b_calls, Duration::ZERO, Ok("b")))
        .await;
    assert!(
        matches!(first.await.unwrap(), Err(Error::ReauthRequired { .. })),
        "the holder gets its own failure"
    );
    assert_eq!(
        second.unwrap().expose(),
        "b",
        "the waiter ran the work itself"
    );
    assert_eq!(a_calls.load(Ordering::SeqCst), 1);
    assert_eq!(b_calls.load(Ordering::SeqCst), 1);
    assert_eq!(b.stats().lock_waits, 1, "b waited on a's lease");
    // b took over as soon as a released, long before a's lease would have lapsed.
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}

// ---- Store apps: token chains (suite + per-organisation keys) and the refresh budget. ----

fn org_key(suite: &TokenKey, org: &str) -> TokenKey {
    suite.organisation(&crate::isv::OrgId::new(org).unwrap())
}

#[tokio::test(start_paused = true)]
async fn invalidating_one_level_of_a_token_chain_leaves_the_other_untouched() {
    let store = Arc::new(MemoryStore::new());
    let cache = TokenCache::builder().store(store.clone()).build();
    let calls = Arc::new(AtomicUsize::new(0));
    let suite = key("suite1");
    let (org1, org2) = (org_key(&suite, "corp1"), org_key(&suite, "corp2"));
    let get = |k: &TokenKey, t: &'static str| {
        let (cache, k, r) = (cache.clone(), k.clone(), refresher(&calls, None, t, 7200));
        async move { cache.get(&k, r).await }
    };
    let s1 = get(&suite, "suite-1").await.unwrap();
    let o1 = get(&org1, "org1-1").await.unwrap();
    let o2 = get(&org2, "org2-1").await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 3);

    // The platform rejects organisation 1's token: only that key refreshes.
    cache.invalidate(&org1, &o1).await;
    assert!(store.get(&org1).await.unwrap().is_none());
    assert_eq!(store.get(&suite).await.unwrap().unwrap().token, s1);
    assert_eq!(store.get(&org2).await.unwrap().unwrap().token, o2);
    assert_eq!(get(&org1, "org1-2").await.unwrap().expose(), "org1-2");
    assert_eq!(get(&suite, "x").await.unwrap(), s1);
    assert_eq!(get(&org2, "x").await.unwrap(), o2);
    assert_eq!(calls.load(Ordering::SeqCst), 4);

    // The suite token is rejected: no organisation's token is evicted.
    cache.invalidate(&suite, &s1).await;
    assert!(store.get(&suite).await.unwrap().is_none());
    for (k, want) in [(&org1, "org1-2"), (&org2, "org2-1")] {
        let got = poll_once(get(k, "x")).expect("an org token was evicted");
        assert_eq!(got.unwrap().expose(), want);
        assert_eq!(store.get(k).await.unwrap().unwrap().token.expose(), want);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 4);
    assert_eq!(get(&suite, "suite-2").await.unwrap().expose(), "suite-2");
    assert_eq!(calls.load(Ordering::SeqCst), 5);
}

/// A refresher that records the (paused) time of each call, in ms since `t0`, with its name.
fn timed(
    log: &Arc<Mutex<Vec<(u64, String)>>>,
    t0: tokio::time::Instant,
    token: &str,
    lifetime_secs: u64,
) -> impl FnOnce() -> Refresh + Send + 'static {
    let log = log.clone();
    let token = token.to_string();
    move || {
        Box::pin(async move {
            let at = t0.elapsed().as_millis() as u64;
            log.lock().unwrap().push((at, token.clone()));
            Ok(FetchedToken::new(
                AccessToken::new(token),
                Duration::from_secs(lifetime_secs),
            ))
        })
    }
}

#[tokio::test(start_paused = true)]
async fn the_budget_defers_refreshes_ahead_but_never_makes_a_caller_wait() {
    let t0 = tokio::time::Instant::now();
    let cache = TokenCache::builder().refresh_budget(1, 1).build();
    let log = Arc::new(Mutex::new(Vec::new()));
    let keys: Vec<TokenKey> = (0..3)
        .map(|i| org_key(&key("suite"), &format!("c{i}")))
        .collect();
    for k in &keys {
        cache.get(k, timed(&log, t0, "old", 40)).await.unwrap();
    }
    // Lifetime 40 s - 4 s margin = 36 s; window 9 s (a quarter), spread over its first half:
    // from 31.5 s every key is inside its window, and it expires at 36 s.
    tokio::time::advance(Duration::from_millis(31_600)).await;
    log.lock().unwrap().clear();
    for k in &keys {
        let got = poll_once(cache.get(k, timed(&log, t0, "new", 40))).expect("a caller waited");
        assert_eq!(got.unwrap().expose(), "old");
    }
    settle().await;
    // One cell at once (the fill above was charged), the others deferred.
    assert!(cache.stats().budget_deferrals >= 2, "{:?}", cache.stats());
    // A caller with no token at all is served at once, budget or not.
    let cold = org_key(&key("suite"), "cold");
    let before = t0.elapsed();
    let got = cache.get(&cold, timed(&log, t0, "cold", 40)).await.unwrap();
    assert_eq!(got.expose(), "cold");
    assert_eq!(t0.elapsed(), before, "the cold caller was held back");
    // Keep asking until just before the expiry: every key is refreshed in time, nobody waits.
    while t0.elapsed() < Duration::from_millis(35_900) {
        for k in &keys {
            let got = poll_once(cache.get(k, timed(&log, t0, "new", 40))).expect("a caller waited");
            assert!(got.is_ok());
        }
        settle().await;
        tokio::time::advance(Duration::from_millis(100)).await;
    }
    for k in &keys {
        let got = poll_once(cache.get(k, timed(&log, t0, "x", 40))).unwrap();
        assert_eq!(
            got.unwrap().expose(),
            "new",
            "{k:?} was not refreshed ahead"
        );
    }
    // Deferred refreshes leave no per-key state behind (10,000 organisations must stay cheap).
    assert!(cache.inner.flights().is_empty());
    let log = log.lock().unwrap().clone();
    let ahead: Vec<u64> = log
        .iter()
        .filter(|(_, t)| t == "new")
        .map(|(at, _)| *at)
        .collect();
    assert_eq!(ahead.len(), 3, "{log:?}");
    // Paced at one per second, the forced refresh included.
    let mut all: Vec<u64> = log.iter().map(|(at, _)| *at).collect();
    all.sort_unstable();
    for pair in all.windows(3) {
        assert!(
            pair[2] - pair[0] >= 1000,
            "more than budget + burst in a second: {log:?}"
        );
    }
    for pair in ahead.windows(2) {
        assert!(pair[1] - pair[0] >= 999, "{log:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn with_a_budget_refresh_starts_spread_across_the_window() {
    async fn first_refreshes(budget: bool) -> Vec<u64> {
        let t0 = tokio::time::Instant::now();
        let mut b = TokenCache::builder().refresh_window(Duration::from_secs(1800));
        if budget {
            b = b.refresh_budget(1000, 200);
        }
        let cache = b.build();
        let log = Arc::new(Mutex::new(Vec::new()));
        let keys: Vec<TokenKey> = (0..200)
            .map(|i| org_key(&key("suite"), &format!("corp{i}")))
            .collect();
        for k in &keys {
            cache.get(k, timed(&log, t0, "old", 7200)).await.unwrap();
        }
        log.lock().unwrap().clear();
        // Touch every key every 5 s until the tokens' expiry (7190 s).
        tokio::time::advance(Duration::from_secs(5000)).await;
        while t0.elapsed() < Duration::from_secs(7185) {
            for k in &keys {
                let got = poll_once(cache.get(k, timed(&log, t0, "new", 7200)));
                assert!(got.expect("a caller waited").is_ok());
            }
            settle().await;
            tokio::time::advance(Duration::from_secs(5)).await;
        }
        let log = log.lock().unwrap();
        assert_eq!(log.len(), 200, "one refresh per key");
        log.iter().map(|(at, _)| *at / 1000).collect()
    }
    let plain = first_refreshes(false).await;
    let spread = first_refreshes(true).await;
    // Without a budget all 200 start together at the window's start (7190 - 1797.5 s).
    let (lo, hi) = (plain.iter().min().unwrap(), plain.iter().max().unwrap());
    assert!(hi - lo <= 5, "{lo}..{hi}");
    // With one, they spread over the window's first half (about 900 s).
    let (lo, hi) = (spread.iter().min().unwrap(), spread.iter().max().unwrap());
    assert!(*lo >= 5390 && *hi <= 5390 + 905, "{lo}..{hi}");
    assert!(hi - lo >= 700, "not spread: {lo}..{hi}");
    let mut per_minute = std::collections::HashMap::new();
    for s in &spread {
        *per_minute.entry(s / 60).or_insert(0) += 1;
    }
    assert!(per_minute.values().all(|&n| n <= 40), "{per_minute:?}");
}
