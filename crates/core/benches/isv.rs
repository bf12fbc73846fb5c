//! Store-app (ISV) scale benchmark: 10,000 installed organisations whose corp tokens all expire
//! within one minute, callers hitting random organisations throughout, a refresh budget, and a
//! fake upstream that records the time of every refresh. Measured with the budget and, as the
//! baseline, with the same load and no budget (the cache as it was before: every token refreshed
//! at the start of its window, when its next caller comes).
//!
//! **Time.** Everything runs on tokio's *paused* clock (a current-thread runtime started
//! paused): the cache's clock, its timers, the budget's GCRA clock and the fake upstream's
//! 50 ms latency all read it, and it only moves when every task is idle. So the seconds below
//! are real protocol seconds (2-hour tokens, a 30-minute window, a budget per second), not a
//! scaled-down model, and a caller "waited" exactly when its `get` was not ready on its first
//! poll.
//!
//! **Load.** At t = 0..60 s the 10,000 tokens are fetched, evenly spread over that minute (so
//! they all expire between 7,190 s and 7,250 s: lifetime 7,200 s minus the 10 s margin). This
//! fill is not measured. From 5,000 s (before the first window opens at 5,392 s) to 7,400 s
//! (after every original expiry), callers arrive at `UNILOGIN_ISV_CALLERS` per second (default
//! 200, so each organisation is asked for about every 50 s) for organisations drawn uniformly at
//! random (a fixed-seed xorshift). Between 60 s and 5,000 s nothing would happen but hits, so the
//! clock jumps.
//!
//! Metrics (see docs/performance.md):
//! - `isv.callers_waited`: callers whose `get` had to wait for a fetch (goal 0);
//! - `isv.peak_refresh_rate_over_budget`: the most upstream refreshes in any one-second span
//!   (sliding), divided by the budget (goal <= 1; `UNILOGIN_ISV_BUDGET`, default 20/s, burst 1);
//! - `isv.bytes_per_org`: live heap bytes per organisation with all 10,000 cached, minus the
//!   token strings themselves (counting allocator), budget on (goal <= 1,024).
//!
//! `UNILOGIN_BENCH_QUICK=1` changes nothing: under the paused clock the whole run (both loads,
//! 2 x 480,000 callers) takes a few seconds of real time, so quick mode measures the same load.
//! `UNILOGIN_ISV_CALLERS` and `UNILOGIN_ISV_BUDGET` change the caller rate and the budget.

use std::alloc::System;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};
use tokio::time::Instant;
use unilogin_benchkit::{Metric, quick, write_metrics};
use unilogin_core::isv::{OrgId, TicketApp};
use unilogin_core::token_cache::{FetchedToken, TokenCache, TokenKey};
use unilogin_core::{AccessToken, PlatformName, Result, TenantId};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const ORGS: usize = 10_000;
const LIFETIME: Duration = Duration::from_secs(7200);
const WINDOW: Duration = Duration::from_secs(30 * 60);
const UPSTREAM_LATENCY: Duration = Duration::from_millis(50);
const FILL: Duration = Duration::from_secs(60);
const CALLERS_FROM: Duration = Duration::from_secs(5000);
const CALLERS_UNTIL: Duration = Duration::from_secs(7400);

fn env_u32(name: &str, default: u32) -> u32 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&v| v > 0)
        .unwrap_or(default)
}

fn org_keys() -> Vec<TokenKey> {
    let app = TicketApp::new(
        PlatformName::new("dingtalk").unwrap(),
        "suite4xxxxxxxxxxxxxx",
    )
    .expect("app id");
    let suite = app.suite_key(&TenantId::new("vendor").unwrap());
    (0..ORGS)
        .map(|i| suite.organisation(&OrgId::new(format!("ding{i:016x}")).unwrap()))
        .collect()
}

/// A 40-byte token, like DingTalk's.
fn token(org: usize, generation: u64) -> String {
    format!("{generation:08}{org:0>32}")
}

/// The fake upstream: records the (paused) time of each refresh, answers after the latency.
#[derive(Clone)]
struct Upstream {
    t0: Instant,
    log: Arc<Mutex<Vec<u64>>>,
}

impl Upstream {
    fn refresher(
        &self,
        org: usize,
    ) -> impl FnOnce() -> Pin<Box<dyn Future<Output = Result<FetchedToken>> + Send>> + Send + 'static
    {
        let this = self.clone();
        move || {
            Box::pin(async move {
                let at = this.t0.elapsed().as_millis() as u64;
                this.log.lock().unwrap().push(at);
                tokio::time::sleep(UPSTREAM_LATENCY).await;
                Ok(FetchedToken::new(
                    AccessToken::new(token(org, at)),
                    LIFETIME,
                ))
            })
        }
    }
}

struct Outcome {
    callers: u64,
    waited: u64,
    refreshes: usize,
    peak_per_s: usize,
    deferrals: u64,
}

/// The most events of `times` (ms, any order) inside any span of 1,000 ms.
fn peak_per_second(times: &mut [u64]) -> usize {
    times.sort_unstable();
    let (mut best, mut lo) = (0, 0);
    for hi in 0..times.len() {
        while times[hi] - times[lo] >= 1000 {
            lo += 1;
        }
        best = best.max(hi - lo + 1);
    }
    best
}

fn run(budget: Option<u32>, callers_per_s: u32) -> Outcome {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let t0 = Instant::now();
        let mut builder = TokenCache::builder().refresh_window(WINDOW);
        if let Some(per_second) = budget {
            builder = builder.refresh_budget(per_second, 1);
        }
        let cache = builder.build();
        let keys = Arc::new(org_keys());
        let upstream = Upstream {
            t0,
            log: Arc::new(Mutex::new(Vec::new())),
        };
        // The common start: every token fetched within the first minute.
        let step = FILL / ORGS as u32;
        let mut fills = Vec::with_capacity(ORGS);
        for (org, key) in keys.iter().enumerate() {
            tokio::time::sleep_until(t0 + step * org as u32).await;
            let (cache, key, refresh) = (cache.clone(), key.clone(), upstream.refresher(org));
            fills.push(tokio::spawn(async move { cache.get(&key, refresh).await }));
        }
        for fill in fills {
            fill.await.expect("fill task").expect("fill");
        }
        let mut fill_log = upstream.log.lock().unwrap().clone();
        fill_log.sort_unstable();
        assert_eq!(fill_log.len(), ORGS);
        assert!(
            fill_log[ORGS - 1] - fill_log[0] < 60_000,
            "the fill took over a minute"
        );
        upstream.log.lock().unwrap().clear();
        let deferrals_before = cache.stats().budget_deferrals;
        tokio::time::sleep_until(t0 + CALLERS_FROM).await;

        let waited = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let mut callers = 0u64;
        let mut rng: u64 = 0x9e37_79b9_7f4a_7c15;
        let tick = Duration::from_millis(10);
        let per_tick = (callers_per_s / 100).max(1);
        let mut next = t0 + CALLERS_FROM;
        while next < t0 + CALLERS_UNTIL {
            for _ in 0..per_tick {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                let org = (rng % ORGS as u64) as usize;
                let (cache, key, refresh) =
                    (cache.clone(), keys[org].clone(), upstream.refresher(org));
                let mut call = Box::pin(async move { cache.get(&key, refresh).await });
                callers += 1;
                match call.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
                    Poll::Ready(r) => {
                        r.expect("get");
                    }
                    Poll::Pending => {
                        waited.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        tokio::spawn(async move {
                            call.await.expect("get");
                        });
                    }
                }
            }
            next += tick;
            tokio::time::sleep_until(next).await;
        }
        // Let refreshes still in flight land.
        tokio::time::sleep(Duration::from_secs(1)).await;
        let mut log = upstream.log.lock().unwrap().clone();
        Outcome {
            callers,
            waited: waited.load(std::sync::atomic::Ordering::Relaxed),
            refreshes: log.len(),
            peak_per_s: peak_per_second(&mut log),
            deferrals: cache.stats().budget_deferrals - deferrals_before,
        }
    })
}

fn live_bytes() -> isize {
    let s = GLOBAL.stats();
    s.bytes_allocated as isize - s.bytes_deallocated as isize
}

/// Live heap bytes per organisation with every organisation's token cached (budget on), minus
/// the token strings.
fn bytes_per_org(budget: u32) -> f64 {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("runtime");
    let before = live_bytes();
    let cache = TokenCache::builder()
        .refresh_window(WINDOW)
        .refresh_budget(budget, 1)
        .build();
    let token_bytes: usize = (0..ORGS).map(|i| token(i, 0).len()).sum();
    rt.block_on(async {
        for (org, key) in org_keys().into_iter().enumerate() {
            let t = token(org, 0);
            cache
                .get(&key, move || {
                    std::future::ready(Ok(FetchedToken::new(AccessToken::new(t), LIFETIME)))
                })
                .await
                .expect("fill");
        }
    });
    assert_eq!(cache.stats().entries as usize, ORGS);
    let used = live_bytes() - before;
    drop(cache);
    (used as f64 - token_bytes as f64) / ORGS as f64
}

fn main() {
    let budget = env_u32("UNILOGIN_ISV_BUDGET", 20);
    // Quick mode measures the same load: it already takes seconds (see the module docs).
    if quick() {
        println!("quick mode: the same load (it takes seconds under the paused clock)");
    }
    let callers = env_u32("UNILOGIN_ISV_CALLERS", 200);
    let bytes = bytes_per_org(budget);
    let ours = run(Some(budget), callers);
    let base = run(None, callers);
    for (name, o) in [("budget", &ours), ("no budget", &base)] {
        println!(
            "{name}: {} callers ({callers}/s), {} waited, {} refreshes, peak {} in 1 s, {} deferrals",
            o.callers, o.waited, o.refreshes, o.peak_per_s, o.deferrals
        );
    }
    let b = f64::from(budget);
    let metrics = [
        Metric::new(
            "isv.callers_waited",
            ours.waited as f64,
            "count",
            Some(base.waited as f64),
            "0",
        ),
        Metric::new(
            "isv.peak_refresh_rate_over_budget",
            ours.peak_per_s as f64 / b,
            "x",
            Some(base.peak_per_s as f64 / b),
            "<= 1",
        ),
        Metric::new("isv.bytes_per_org", bytes, "bytes", None, "<= 1024"),
        Metric::new(
            "isv.refreshes",
            ours.refreshes as f64,
            "count",
            Some(base.refreshes as f64),
            "10000",
        ),
    ];
    write_metrics("isv", &metrics).expect("write metrics");
}
