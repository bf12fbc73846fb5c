//! JSAPI signatures (issue 20), against the test-kit DingTalk fake.
//!
//! Reports:
//! - `jsapi.ratio_vs_bare_signing` (goal ≥ 0.8): the signature endpoint's throughput on a
//!   ticket hit — `GET /auth/{tenant}/dingtalk/jsapi-config` of a real gateway (rate limits,
//!   origin check, `Sso::prepare`, app token and ticket from the token cache, signature, the
//!   `dd.config` object) over HTTP/1.1 keep-alive from 32 connections of this process — divided
//!   by the throughput of the bare signing function behind a minimal axum route (the ticket in
//!   hand: nonce + timestamp + `sign` + the same object, at the same path, asked the same
//!   request target), measured with the same client and connection count in the same run:
//!   7 interleaved rounds of 2 s per server (the order alternating), the ratio of each round's
//!   neighbouring runs, and the median round's ratio reported (`jsapi.endpoint_rps`: the
//!   median rates);
//! - `jsapi.library_ratio_vs_bare_signing` and `jsapi.library_signs_per_s` (report): the same
//!   comparison in process, without HTTP — the library's per-request path (`Sso::prepare` +
//!   `Prepared::jsapi_config`) against the bare signing, on one thread, best of five: what the
//!   library adds per signature, in isolation;
//! - `jsapi.ticket_fetches_8proc` (goal 1): 8 OS processes (this executable re-run as workers),
//!   each with its own `Sso` and `TokenCache`, sharing one `redis-server` (started here) through
//!   `unilogin-redis`'s token store, all signing concurrently for the same app within one ticket
//!   lifetime: ticket fetches counted by the fake. The baseline is the same 8 processes with
//!   in-memory caches only (no shared store), in the same run.
//!
//! Needs `redis-server` on `PATH` (Debian package `redis-server`; `cargo xtask ci` installs it).
//! `UNILOGIN_BENCH_QUICK=1` runs tiny iteration counts. `JSAPI_BENCH_PROFILE` runs a fixed
//! number of requests instead, for a profiler (see [`profile`]).

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::net::TcpListener;
use unilogin::config::{PlatformConfig, StaticConfig};
use unilogin::jsapi::{TimestampUnit, nonce, sign};
use unilogin::token_cache::TokenCache;
use unilogin::{AccessToken, Sso, TenantId, TicketKind};
use unilogin_benchkit::{Metric, quick, write_metrics};
use unilogin_gateway::{Gateway, GatewayConfig};
use unilogin_testkit::dingtalk::{self, FakeDingTalk};
use unilogin_testkit::jsapi::JsapiKind;
use unilogin_testkit::redis_server::RedisServer;

const WORKER_ENV: &str = "UNILOGIN_JSAPI_BENCH_WORKER";
const PAGE: &str = "https://app.acme.example/h5/index?x=1&y=2";
const LIMITS: &str = "rate_limits:
  other_per_client: {per_minute: 6000000, burst: 1000000}
log: {filter: error}";

fn tenant_config(
    fake_base: &str,
    app_key: &str,
    app_secret: &str,
    corp: &str,
    agent: &str,
) -> Value {
    json!({
        "tenant": "acme", "platform": "dingtalk",
        "app_key": app_key, "app_secret": app_secret, "corp_id": corp, "agent_id": agent,
        "hosts": { "oapi": fake_base, "api": fake_base, "login": fake_base },
        "redirect_uris": ["https://app.acme.example/callback"],
    })
}

fn fake_tenant(fake: &FakeDingTalk) -> Value {
    let c = fake.credentials();
    tenant_config(
        fake.base_url(),
        &c.app_key,
        &c.app_secret,
        &c.corp_id,
        &c.agent_id,
    )
}

fn sso_over(config: Value, cache: TokenCache) -> Sso {
    let config: PlatformConfig = serde_json::from_value(config).expect("tenant");
    Sso::builder(StaticConfig::new(vec![config]))
        .token_cache(cache)
        .build()
        .expect("sso")
}

/// The bare signing with the ticket in hand: what a hand-written `dd.config` endpoint does.
fn bare(ticket: &str, corp: &str, agent: &str, apis: &[String]) -> Value {
    let nonce = nonce();
    let ts = TimestampUnit::Seconds.now();
    let signature = sign(ticket, &nonce, ts, PAGE);
    json!({
        "agentId": agent, "corpId": corp, "timeStamp": ts, "nonceStr": nonce,
        "signature": signature, "type": 0, "jsApiList": apis,
    })
}

/// Signatures per second of `n` runs of `f`, best of five.
async fn best_rate<F, Fut>(n: u32, mut f: F) -> f64
where
    F: FnMut() -> Fut,
    Fut: Future<Output = ()>,
{
    let mut best = 0f64;
    for _ in 0..5 {
        let t = Instant::now();
        for _ in 0..n {
            f().await;
        }
        best = best.max(f64::from(n) / t.elapsed().as_secs_f64());
    }
    best
}

/// Interleaved rounds of the HTTP comparison.
const ROUNDS: usize = 7;
/// Keep-alive connections of the client, the same for both servers.
const CONNECTIONS: usize = 32;

/// The median of `v` (the mean of the middle two for an even count).
fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len().is_multiple_of(2) {
        (v[mid - 1] + v[mid]) / 2.0
    } else {
        v[mid]
    }
}

/// Requests per second of `GET url` from `conns` keep-alive connections for `secs`.
async fn http_rate(url: &str, conns: usize, secs: Duration) -> f64 {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(conns)
        .build()
        .unwrap();
    // Warm the pool and the caches.
    for _ in 0..conns {
        let r = http.get(url).send().await.unwrap();
        assert_eq!(r.status(), 200, "{url}");
        let _ = r.bytes().await;
    }
    let done = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + secs;
    let started = Instant::now();
    let tasks: Vec<_> = (0..conns)
        .map(|_| {
            let (http, url, done) = (http.clone(), url.to_string(), done.clone());
            tokio::spawn(async move {
                while Instant::now() < until {
                    let r = http.get(&url).send().await.unwrap();
                    assert_eq!(r.status(), 200);
                    let _ = r.bytes().await;
                    done.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

async fn serve(app: axum::Router) -> SocketAddr {
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

/// The gateway's endpoint (path and query) measured, and the minimal server's.
const GATEWAY_PATH: &str = "/auth/acme/dingtalk/jsapi-config?url=https%3A%2F%2Fapp.acme.example%2Fh5%2Findex%3Fx%3D1%26y%3D2&apis=biz.contact.choose,device.notification.alert";
/// The same request target: the client's work (URL parsing, request bytes) is the same for
/// both, and the minimal server ignores the query (its page and list are fixed).
const MINIMAL_PATH: &str = GATEWAY_PATH;

/// A gateway serving the fake's tenant at `addr`, with the bench's rate limits.
fn gateway_for(fake: &FakeDingTalk, addr: SocketAddr) -> Gateway {
    let mut config = GatewayConfig::from_yaml(LIMITS).expect("gateway config");
    config.public_url = format!("http://{addr}/").parse().unwrap();
    let tenant_doc: PlatformConfig = serde_json::from_value(fake_tenant(fake)).unwrap();
    Gateway::builder(config)
        .config_source(StaticConfig::new(vec![tenant_doc]))
        .build()
        .expect("gateway")
}

/// The minimal hand-written server: the bare signing with the fake's live ticket in hand.
fn minimal_router(fake: &FakeDingTalk, ticket: &AccessToken, apis: &[String]) -> axum::Router {
    let c = fake.credentials();
    let (t, corp, agent, a) = (
        ticket.clone(),
        c.corp_id.clone(),
        c.agent_id.clone(),
        apis.to_vec(),
    );
    axum::Router::new().route(
        "/auth/acme/dingtalk/jsapi-config",
        axum::routing::get(move || {
            let v = bare(t.expose(), &corp, &agent, &a);
            async move { axum::Json(v) }
        }),
    )
}

/// `JSAPI_BENCH_PROFILE=gateway|minimal|http-gateway|http-minimal` (with
/// `JSAPI_BENCH_REQUESTS`, default 10,000): sends that many requests to one server — in
/// process through its router without sockets, or (`http-`) over one loopback keep-alive
/// connection — and exits: a deterministic driver for `valgrind --tool=callgrind`
/// (instructions per request; run it with two request counts and subtract the setup).
async fn profile(which: &str) {
    let fake = dingtalk::start().await;
    let n: u32 = std::env::var("JSAPI_BENCH_REQUESTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let apis = vec![
        "biz.contact.choose".to_string(),
        "device.notification.alert".to_string(),
    ];
    let over_http = which.strip_prefix("http-");
    let (router, path) = match over_http.unwrap_or(which) {
        "gateway" if over_http.is_some() => {
            let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
                .await
                .unwrap();
            let addr = listener.local_addr().unwrap();
            let gw = gateway_for(&fake, addr);
            tokio::spawn(async move {
                let _ = gw.serve(listener, std::future::pending()).await;
            });
            (None, format!("http://{addr}{GATEWAY_PATH}"))
        }
        "gateway" => (
            Some(gateway_for(&fake, SocketAddr::from(([127, 0, 0, 1], 8080))).router()),
            GATEWAY_PATH.to_string(),
        ),
        "minimal" => {
            // The ticket exists once the library fetched one.
            let sso = sso_over(fake_tenant(&fake), TokenCache::new());
            let tenant = TenantId::new("acme").unwrap();
            let p = sso.prepare(&tenant, "dingtalk").await.unwrap();
            p.jsapi_config(PAGE, TicketKind::Jsapi, &apis)
                .await
                .unwrap();
            let ticket = fake
                .live_jsapi_ticket(&fake.credentials().app_key)
                .expect("a live ticket");
            let router = minimal_router(&fake, &AccessToken::new(ticket), &apis);
            if over_http.is_some() {
                (
                    None,
                    format!("http://{}{MINIMAL_PATH}", serve(router).await),
                )
            } else {
                (Some(router), MINIMAL_PATH.to_string())
            }
        }
        other => panic!("JSAPI_BENCH_PROFILE={other}: [http-]gateway or [http-]minimal"),
    };
    let mut bytes = 0usize;
    let Some(router) = router else {
        // Over loopback HTTP, one keep-alive connection: the client's work counts too.
        let http = reqwest::Client::new();
        for _ in 0..n {
            let r = http.get(&path).send().await.unwrap();
            assert_eq!(r.status(), 200);
            bytes += r.bytes().await.unwrap().len();
        }
        println!("{which}: {n} requests, {bytes} response bytes");
        return;
    };
    let peer = axum::extract::ConnectInfo(SocketAddr::from(([127, 0, 0, 1], 50_000)));
    for _ in 0..n {
        let mut req = axum::http::Request::get(&path)
            .header("host", "127.0.0.1:8080")
            .header("accept", "*/*")
            .body(axum::body::Body::empty())
            .unwrap();
        req.extensions_mut().insert(peer);
        let r = tower::ServiceExt::oneshot(router.clone(), req)
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        bytes += axum::body::to_bytes(r.into_body(), 4096)
            .await
            .unwrap()
            .len();
    }
    println!("{which}: {n} requests, {bytes} response bytes");
}

/// In-process: the library's path against the bare signing, and the endpoint over HTTP.
async fn throughput(fake: &FakeDingTalk) -> Vec<Metric> {
    let sso = sso_over(fake_tenant(fake), TokenCache::new());
    let tenant = TenantId::new("acme").unwrap();
    let apis = vec![
        "biz.contact.choose".to_string(),
        "device.notification.alert".to_string(),
    ];
    // Warm: the app token and the ticket are cached (the path measured is a ticket hit).
    let first = sso
        .prepare(&tenant, "dingtalk")
        .await
        .unwrap()
        .jsapi_config(PAGE, TicketKind::Jsapi, &apis)
        .await
        .unwrap();
    fake.verify_jsapi_config(JsapiKind::Config, &first.config, PAGE)
        .expect("the fake accepts the library's config");
    let c = fake.credentials();
    let ticket = AccessToken::new(fake.live_jsapi_ticket(&c.app_key).expect("a live ticket"));
    let reference = bare(ticket.expose(), &c.corp_id, &c.agent_id, &apis);
    fake.verify_jsapi_config(JsapiKind::Config, &reference, PAGE)
        .expect("the fake accepts the bare config");
    assert_eq!(
        first.config.as_object().unwrap().keys().collect::<Vec<_>>(),
        reference.as_object().unwrap().keys().collect::<Vec<_>>(),
        "the baseline builds the same object"
    );
    let n = if quick() { 2_000 } else { 100_000 };
    let library = best_rate(n, || async {
        let p = sso.prepare(&tenant, "dingtalk").await.unwrap();
        let signed = p
            .jsapi_config(PAGE, TicketKind::Jsapi, &apis)
            .await
            .unwrap();
        std::hint::black_box(signed);
    })
    .await;
    let bare_rate = best_rate(n, || async {
        std::hint::black_box(bare(ticket.expose(), &c.corp_id, &c.agent_id, &apis));
    })
    .await;
    // Where the library's time goes (printed, not reported): the parts it adds.
    let prepare = best_rate(n, || async {
        std::hint::black_box(sso.prepare(&tenant, "dingtalk").await.unwrap());
    })
    .await;
    let parse = best_rate(n, || async {
        std::hint::black_box(unilogin::jsapi::PageUrl::parse(PAGE).unwrap());
    })
    .await;
    let p = sso.prepare(&tenant, "dingtalk").await.unwrap();
    let app_key = p.handler().token_key().expect("an app token key");
    let some_token = AccessToken::new("an-app-token-of-typical-length-0123456789abcdef");
    let ticket_key = best_rate(n, || async {
        std::hint::black_box(app_key.ticket(TicketKind::Jsapi, &some_token));
    })
    .await;
    println!(
        "per signature: library {:.0} ns, bare {:.0} ns; of the library's: Sso::prepare {:.0} ns, \
         PageUrl::parse {:.0} ns, TokenKey::ticket {:.0} ns",
        1e9 / library,
        1e9 / bare_rate,
        1e9 / prepare,
        1e9 / parse,
        1e9 / ticket_key
    );
    let fetches = fake.jsapi_ticket_fetches(&c.app_key);
    assert_eq!(fetches, 1, "one ticket fetch for every signature");

    // Over HTTP: the gateway's endpoint, and a minimal hand-written server (bare signing).
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let gw = gateway_for(fake, addr);
    tokio::spawn(async move {
        let _ = gw.serve(listener, std::future::pending()).await;
    });
    let endpoint = format!("http://{addr}{GATEWAY_PATH}");
    let minimal = minimal_router(fake, &ticket, &apis);
    let minimal = format!("http://{}{MINIMAL_PATH}", serve(minimal).await);
    // Interleaved rounds, each a gateway run next to a minimal run (which goes first
    // alternates): the machine is shared and its load drifts, so each round's ratio compares
    // neighbours, and the median round is reported (the rates: medians too).
    let secs = Duration::from_secs(if quick() { 1 } else { 2 });
    let rounds = if quick() { 1 } else { ROUNDS };
    let (mut gateway_runs, mut minimal_runs, mut ratios) = (vec![], vec![], vec![]);
    for round in 0..rounds {
        let (g, m) = if round.is_multiple_of(2) {
            let g = http_rate(&endpoint, CONNECTIONS, secs).await;
            (g, http_rate(&minimal, CONNECTIONS, secs).await)
        } else {
            let m = http_rate(&minimal, CONNECTIONS, secs).await;
            (http_rate(&endpoint, CONNECTIONS, secs).await, m)
        };
        println!(
            "round {round}: gateway {g:.0}/s, minimal {m:.0}/s, ratio {:.3}",
            g / m
        );
        gateway_runs.push(g);
        minimal_runs.push(m);
        ratios.push(g / m);
    }
    let (gateway_rps, minimal_rps) = (median(gateway_runs), median(minimal_runs));
    let ratio = median(ratios);
    assert_eq!(
        fake.jsapi_ticket_fetches(&c.app_key),
        2,
        "the gateway fetched its own, once"
    );
    vec![
        Metric::new("jsapi.ratio_vs_bare_signing", ratio, "x", None, ">= 0.8"),
        Metric::new(
            "jsapi.library_ratio_vs_bare_signing",
            library / bare_rate,
            "x",
            None,
            "report (in process, no HTTP)",
        ),
        Metric::new(
            "jsapi.library_signs_per_s",
            library,
            "1/s",
            Some(bare_rate),
            "report (baseline: bare signing)",
        ),
        Metric::new(
            "jsapi.endpoint_rps",
            gateway_rps,
            "1/s",
            Some(minimal_rps),
            "report (baseline: minimal axum server, bare signing)",
        ),
    ]
}

/// A worker process: announces `READY`, signs on `GO`, answers `OK <count> <config>`.
struct Worker {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Worker {
    fn spawn(tenant: &Value, redis: Option<&str>, signatures: u32) -> Self {
        let exe = std::env::current_exe().expect("the bench executable");
        let mut cmd = Command::new(exe);
        cmd.env(WORKER_ENV, tenant.to_string())
            .env("JSAPI_BENCH_SIGNATURES", signatures.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(url) = redis {
            cmd.env("JSAPI_BENCH_REDIS", url);
        }
        let mut child = cmd.spawn().expect("spawn a worker");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Self {
            child,
            stdin,
            stdout,
        }
    }

    fn line(&mut self) -> String {
        let mut s = String::new();
        self.stdout.read_line(&mut s).expect("a worker's answer");
        s.trim_end().to_string()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Ticket fetches when 8 processes (shared Redis or not) sign at once for the same app.
fn fetches_8proc(fake: &FakeDingTalk, redis: Option<&str>, signatures: u32) -> u64 {
    fake.reset_jsapi_ticket_fetches();
    let tenant = fake_tenant(fake);
    let mut workers: Vec<Worker> = (0..8)
        .map(|_| Worker::spawn(&tenant, redis, signatures))
        .collect();
    for w in &mut workers {
        assert_eq!(w.line(), "READY");
    }
    for w in &mut workers {
        writeln!(w.stdin, "GO").expect("start a worker");
    }
    for w in &mut workers {
        let answer = w.line();
        let rest = answer
            .strip_prefix("OK ")
            .unwrap_or_else(|| panic!("worker: {answer}"));
        let (count, config) = rest.split_once(' ').expect("OK <count> <config>");
        assert_eq!(count.parse::<u32>().unwrap(), signatures);
        let config: Value = serde_json::from_str(config).expect("a config object");
        fake.verify_jsapi_config(JsapiKind::Config, &config, PAGE)
            .unwrap_or_else(|e| panic!("a worker's config was refused: {}", e.reason));
    }
    fake.jsapi_ticket_fetches(&fake.credentials().app_key)
}

fn worker_main(tenant: &str) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let signatures: u32 = std::env::var("JSAPI_BENCH_SIGNATURES")
            .unwrap()
            .parse()
            .unwrap();
        let cache = match std::env::var("JSAPI_BENCH_REDIS") {
            Ok(url) => {
                let store = unilogin_redis::RedisStore::builder(url)
                    .prefix("jsapi-bench:")
                    .build()
                    .expect("redis store");
                TokenCache::builder().store(Arc::new(store)).build()
            }
            Err(_) => TokenCache::new(),
        };
        let sso = Arc::new(sso_over(serde_json::from_str(tenant).unwrap(), cache));
        let mut out = std::io::stdout();
        writeln!(out, "READY").unwrap();
        out.flush().unwrap();
        let mut go = String::new();
        std::io::stdin().read_line(&mut go).unwrap();
        let tenant = TenantId::new("acme").unwrap();
        let tasks: Vec<_> = (0..16)
            .map(|i| {
                let (sso, tenant) = (sso.clone(), tenant.clone());
                tokio::spawn(async move {
                    let mut last = Value::Null;
                    for _ in (i..signatures).step_by(16) {
                        let p = sso.prepare(&tenant, "dingtalk").await.expect("prepare");
                        last = p
                            .jsapi_config(PAGE, TicketKind::Jsapi, &[])
                            .await
                            .expect("a signature")
                            .config;
                    }
                    last
                })
            })
            .collect();
        let mut config = Value::Null;
        for t in tasks {
            let last = t.await.unwrap();
            if !last.is_null() {
                config = last;
            }
        }
        writeln!(out, "OK {signatures} {config}").unwrap();
        out.flush().unwrap();
    });
}

fn main() {
    if let Ok(tenant) = std::env::var(WORKER_ENV) {
        worker_main(&tenant);
        return;
    }
    if let Ok(which) = std::env::var("JSAPI_BENCH_PROFILE") {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(profile(&which));
        return;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut metrics = Vec::new();
    rt.block_on(async {
        let fake = dingtalk::start().await;
        metrics.extend(throughput(&fake).await);
    });
    // A fresh fake for the processes (its own ticket book and counters), served by `rt`.
    let fake = rt.block_on(dingtalk::start());
    let redis = RedisServer::start();
    let signatures = if quick() { 50 } else { 2_000 };
    let alone = fetches_8proc(&fake, None, signatures);
    let shared = fetches_8proc(&fake, Some(&redis.url()), signatures);
    metrics.push(Metric::new(
        "jsapi.ticket_fetches_8proc",
        shared as f64,
        "count",
        Some(alone as f64),
        "== 1 (baseline: 8 processes without a shared store)",
    ));
    drop(redis);
    write_metrics("jsapi", &metrics).expect("write metrics");
}
