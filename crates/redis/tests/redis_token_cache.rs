//! The token cache on a real Redis: each test starts its own `redis-server` on a free loopback
//! port (install the Debian package `redis-server`, or run `cargo xtask ci`).

mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use redis::AsyncCommands;
use support::{RedisServer, Worker, key, token_endpoint};
use unilogin_core::token_cache::{FetchedToken, TokenCache, TokenStore};
use unilogin_core::{AccessToken, RefreshToken};
use unilogin_redis::RedisStore;

fn fixed(
    token: &'static str,
    secs: u64,
) -> impl FnOnce() -> std::future::Ready<unilogin_core::Result<FetchedToken>> + Send + 'static {
    move || {
        std::future::ready(Ok(FetchedToken::new(
            AccessToken::new(token),
            Duration::from_secs(secs),
        )))
    }
}

#[tokio::test]
async fn store_contract_on_real_redis() {
    let server = RedisServer::start();
    let store = RedisStore::builder(server.url())
        .prefix("t:")
        .build()
        .unwrap();
    let k = key("contract");
    assert_eq!(store.get(&k).await.unwrap(), None);
    store
        .set(&k, &AccessToken::new("one"), Duration::from_secs(30))
        .await
        .unwrap();
    let got = store.get(&k).await.unwrap().unwrap();
    assert_eq!(got.token.expose(), "one");
    assert!(
        got.ttl > Duration::from_secs(29) && got.ttl <= Duration::from_secs(30),
        "{:?}",
        got.ttl
    );
    // Compare-and-delete only deletes the expected token.
    assert!(
        !store
            .compare_and_delete(&k, &AccessToken::new("two"))
            .await
            .unwrap()
    );
    assert!(store.get(&k).await.unwrap().is_some());
    assert!(
        store
            .compare_and_delete(&k, &AccessToken::new("one"))
            .await
            .unwrap()
    );
    assert_eq!(store.get(&k).await.unwrap(), None);
    // Lease: exclusive, released by its owner only, lapses by itself.
    assert!(
        store
            .try_lease(&k, "a", Duration::from_millis(300))
            .await
            .unwrap()
    );
    assert!(
        !store
            .try_lease(&k, "b", Duration::from_secs(5))
            .await
            .unwrap()
    );
    assert!(!store.release_lease(&k, "b").await.unwrap());
    assert!(store.release_lease(&k, "a").await.unwrap());
    assert!(
        store
            .try_lease(&k, "b", Duration::from_millis(200))
            .await
            .unwrap()
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        store
            .try_lease(&k, "c", Duration::from_secs(5))
            .await
            .unwrap()
    );
    // Keys live under the prefix.
    let client = redis::Client::open(server.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let owner: Option<String> = conn.get(store.lease_key(&k)).await.unwrap();
    assert_eq!(owner.as_deref(), Some("c"));
    assert!(store.lease_key(&k).starts_with("t:lease:dingtalk:acme:"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_concurrent_gets_on_a_cold_key_refresh_once_with_redis() {
    let server = RedisServer::start();
    let endpoint = token_endpoint(Duration::from_millis(50), 7200).await;
    let store = Arc::new(RedisStore::open(server.url()).unwrap());
    let cache = TokenCache::builder().store(store).build();
    let http = reqwest::Client::new();
    let start = Arc::new(tokio::sync::Barrier::new(10_001));
    let mut tasks = Vec::new();
    for _ in 0..10_000 {
        let (cache, http, url, start) = (
            cache.clone(),
            http.clone(),
            endpoint.url.clone(),
            start.clone(),
        );
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            cache
                .get(&key("cold"), move || {
                    support::fetch_over_http(http, url, "cold".into())
                })
                .await
        }));
    }
    start.wait().await;
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap().expose(), "cold-tok-1");
    }
    assert_eq!(endpoint.calls.load(Ordering::SeqCst), 1);
}

/// Not a test on its own: the body of the child processes of
/// `eight_processes_sharing_redis_call_the_token_endpoint_once` (run with `--ignored` and the
/// worker environment). Without that environment it has nothing to do.
#[test]
#[ignore = "child process of eight_processes_sharing_redis_call_the_token_endpoint_once"]
fn worker_process() {
    if std::env::var_os(support::WORKER_ENV).is_some() {
        support::worker_main();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_processes_sharing_redis_call_the_token_endpoint_once() {
    let server = RedisServer::start();
    let endpoint = token_endpoint(Duration::from_millis(100), 7200).await;
    let (redis_url, token_url) = (server.url(), endpoint.url.clone());
    let rounds = tokio::task::spawn_blocking(move || {
        let args = [
            "worker_process",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ];
        let mut workers: Vec<Worker> = (0..8)
            .map(|_| Worker::spawn(&args, &redis_url, &token_url))
            .collect();
        let mut rounds = Vec::new();
        for round in 0..3 {
            let app = format!("cold{round}");
            for w in &mut workers {
                w.send(&format!("GET {app}"));
            }
            let replies: Vec<String> = workers.iter_mut().map(Worker::read_reply).collect();
            rounds.push((app, replies));
        }
        rounds
    })
    .await
    .unwrap();
    for (i, (app, replies)) in rounds.iter().enumerate() {
        for r in replies {
            // Everybody got the one token the single upstream call produced.
            assert!(r.starts_with(&format!("OK {app}-tok-")), "{r}");
            assert_eq!(r, &replies[0]);
        }
        let _ = i;
    }
    assert_eq!(
        endpoint.calls.load(Ordering::SeqCst),
        3,
        "one upstream call per cold key"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_during_load_fails_no_get_and_is_used_again_after_restart() {
    let mut server = RedisServer::start();
    let endpoint = token_endpoint(Duration::from_millis(20), 3).await;
    let store = Arc::new(
        RedisStore::builder(server.url())
            .op_timeout(Duration::from_millis(200))
            .build()
            .unwrap(),
    );
    let cache = TokenCache::builder()
        .store(store.clone())
        .store_cooldown(Duration::from_millis(300))
        .build();
    let http = reqwest::Client::new();
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let mut load = Vec::new();
    for _ in 0..4 {
        let (cache, http, url) = (cache.clone(), http.clone(), endpoint.url.clone());
        let (stop, ok, failed) = (stop.clone(), ok.clone(), failed.clone());
        load.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let (http, url) = (http.clone(), url.clone());
                match cache
                    .get(&key("load"), move || {
                        support::fetch_over_http(http, url, "load".into())
                    })
                    .await
                {
                    Ok(_) => ok.fetch_add(1, Ordering::Relaxed),
                    Err(e) => {
                        eprintln!("failed get: {e}");
                        failed.fetch_add(1, Ordering::Relaxed)
                    }
                };
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    server.kill();
    // Tokens live 3 s (2.7 s in the cache): refreshes happen while Redis is down.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let errors_during_outage = cache.stats().store_errors;
    server.restart();
    // Redis is used again: within a few token lifetimes the token the cache serves is in Redis.
    let client = redis::Client::open(server.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let mut shared = false;
    for _ in 0..80 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let in_redis: Option<String> = conn.get(store.token_key(&key("load"))).await.unwrap();
        let served = cache.get(&key("load"), fixed("unused", 1)).await.unwrap();
        if in_redis.as_deref() == Some(served.expose()) {
            shared = true;
            break;
        }
    }
    stop.store(true, Ordering::Relaxed);
    for t in load {
        t.await.unwrap();
    }
    let stats = cache.stats();
    assert!(
        shared,
        "the cache did not use Redis after it came back: {stats:?}"
    );
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    assert_eq!(failed, 0, "a get failed while Redis was down");
    assert!(ok > 500, "too little load: {ok}");
    let refreshes = endpoint.calls.load(Ordering::SeqCst);
    // About one refresh per 2 s of token life, not one per call.
    assert!(
        (2..=8).contains(&refreshes),
        "refreshes: {refreshes} for {ok} gets"
    );
    assert!(errors_during_outage >= 1, "{stats:?}");
}

#[tokio::test]
async fn an_old_token_invalidated_after_a_newer_one_was_stored_leaves_the_newer_one() {
    let server = RedisServer::start();
    let store = Arc::new(RedisStore::open(server.url()).unwrap());
    let a = TokenCache::builder().store(store.clone()).build();
    let b = TokenCache::builder().store(store.clone()).build();
    let k = key("race");
    let old = a.get(&k, fixed("old", 7200)).await.unwrap();
    assert_eq!(b.get(&k, fixed("unused", 7200)).await.unwrap(), old);
    b.invalidate(&k, &old).await;
    let new = b.get(&k, fixed("new", 7200)).await.unwrap();
    assert_eq!(new.expose(), "new");
    a.invalidate(&k, &old).await;
    assert_eq!(store.get(&k).await.unwrap().unwrap().token, new);
    assert_eq!(a.get(&k, fixed("unused", 7200)).await.unwrap(), new);
    assert_eq!(a.stats().l2_hits, 1);
}

#[tokio::test]
async fn an_unreachable_redis_never_fails_a_get() {
    // A port nobody listens on: connection refused.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let store = Arc::new(RedisStore::open(format!("redis://127.0.0.1:{port}/0")).unwrap());
    let cache = TokenCache::builder().store(store).build();
    let calls = Arc::new(AtomicU64::new(0));
    for _ in 0..50 {
        let calls = calls.clone();
        let t = cache
            .get(&key("down"), move || {
                calls.fetch_add(1, Ordering::SeqCst);
                std::future::ready(Ok(FetchedToken::new(
                    AccessToken::new("mem"),
                    Duration::from_secs(7200),
                )))
            })
            .await
            .unwrap();
        assert_eq!(t.expose(), "mem");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert!(cache.stats().store_errors >= 1);
}

/// `TokenCache::single_flight` (how `Sso::refresh_user_token` runs a single-use refresh once)
/// over two caches on two Redis connections — two replicas.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_flight_runs_once_across_two_caches_on_two_redis_connections() {
    let server = RedisServer::start();
    let replica = || {
        let store = RedisStore::open(server.url()).unwrap();
        TokenCache::builder().store(Arc::new(store)).build()
    };
    let replicas = [replica(), replica()];
    let keep = Duration::from_secs(30);
    let calls = Arc::new(AtomicU64::new(0));
    // The work of a replica: counts, takes `delay`, then succeeds with `value` or is refused.
    let work = |delay: u64, value: Option<&'static str>| {
        let calls = calls.clone();
        move || async move {
            calls.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(delay)).await;
            value.map(AccessToken::new).ok_or_else(|| {
                unilogin_core::Error::Internal("refused (expected by this test)".into())
            })
        }
    };
    let k = key("cli_a1").user_refresh(&RefreshToken::new("ur-secret-1"));
    let mut tasks = Vec::new();
    for i in 0..16 {
        let (cache, k, w) = (
            replicas[i % 2].clone(),
            k.clone(),
            work(200, Some("pair-1")),
        );
        tasks.push(tokio::spawn(async move {
            cache.single_flight(&k, keep, w).await
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap().expose(), "pair-1");
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "one execution for both replicas"
    );
    // Kept in Redis for `keep` under a key that does not reveal the refresh token; lease free.
    let probe = RedisStore::open(server.url()).unwrap();
    let stored = probe.get(&k).await.unwrap().unwrap();
    assert_eq!(stored.token.expose(), "pair-1");
    assert!(stored.ttl <= keep, "{:?}", stored.ttl);
    assert!(probe.try_lease(&k, "probe", keep).await.unwrap());
    assert!(probe.release_lease(&k, "probe").await.unwrap());
    let client = redis::Client::open(server.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = conn.keys("*").await.unwrap();
    assert!(
        !keys.is_empty() && keys.iter().all(|k| !k.contains("ur-secret")),
        "{keys:?}"
    );

    // A refused holder releases the lease at once and stores nothing: the waiting replica runs
    // the work itself, well before the lease would have lapsed.
    let k2 = key("cli_a1").user_refresh(&RefreshToken::new("ur-secret-2"));
    let holder = {
        let (cache, k2, w) = (replicas[0].clone(), k2.clone(), work(300, None));
        tokio::spawn(async move { cache.single_flight(&k2, keep, w).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let started = std::time::Instant::now();
    let waiter = replicas[1]
        .single_flight(&k2, keep, work(0, Some("pair-2")))
        .await;
    assert!(holder.await.unwrap().is_err());
    assert_eq!(waiter.unwrap().expose(), "pair-2");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    let waits: u64 = replicas.iter().map(|c| c.stats().lock_waits).sum();
    assert_eq!(
        waits, 2,
        "one replica waited on the other's lease, each time"
    );
}
