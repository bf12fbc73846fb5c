//! JSAPI signatures (issue 20), against the test-kit DingTalk fake.
//!
//! Reports:
//! - `jsapi.ratio_vs_bare_signing` (goal ≥ 0.8): the signature endpoint's throughput on a
//!   ticket hit — `GET /auth/{tenant}/dingtalk/jsapi-config` of a real gateway (rate limits,
//!   origin check, `Sso::prepare`, app token and ticket from the token cache, signature, the
//!   `dd.config` object) over HTTP/1.1 keep-alive from 32 connections of this process — divided
//!   by the throughput of the bare signing function behind a minimal axum route (the ticket in
//!   hand: nonce + timestamp + `sign` + the same object), measured with the same client in the
//!   same run, interleaved, best of three each; `jsapi.endpoint_rps` reports the two rates;
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
//! `UNILOGIN_BENCH_QUICK=1` runs tiny iteration counts.

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
    let mut config = GatewayConfig::from_yaml(LIMITS).expect("gateway config");
    config.public_url = format!("http://{addr}/").parse().unwrap();
    let tenant_doc: PlatformConfig = serde_json::from_value(fake_tenant(fake)).unwrap();
    let gw = Gateway::builder(config)
        .config_source(StaticConfig::new(vec![tenant_doc]))
        .build()
        .expect("gateway");
    tokio::spawn(async move {
        let _ = gw.serve(listener, std::future::pending()).await;
    });
    let encoded: String = url::form_urlencoded::byte_serialize(PAGE.as_bytes()).collect();
    let endpoint = format!(
        "http://{addr}/auth/acme/dingtalk/jsapi-config?url={encoded}&apis=biz.contact.choose,device.notification.alert"
    );
    let (t, corp, agent, a) = (
        ticket.clone(),
        c.corp_id.clone(),
        c.agent_id.clone(),
        apis.clone(),
    );
    let minimal = axum::Router::new().route(
        "/jsapi-config",
        axum::routing::get(move || {
            let v = bare(t.expose(), &corp, &agent, &a);
            async move { axum::Json(v) }
        }),
    );
    let minimal = format!("http://{}/jsapi-config?url={encoded}", serve(minimal).await);
    // Interleaved, best of three each: the machine's load drifts between runs.
    let secs = Duration::from_secs(if quick() { 1 } else { 3 });
    let (mut gateway_rps, mut minimal_rps) = (0f64, 0f64);
    for _ in 0..if quick() { 1 } else { 3 } {
        gateway_rps = gateway_rps.max(http_rate(&endpoint, 32, secs).await);
        minimal_rps = minimal_rps.max(http_rate(&minimal, 32, secs).await);
    }
    assert_eq!(
        fake.jsapi_ticket_fetches(&c.app_key),
        2,
        "the gateway fetched its own, once"
    );
    vec![
        Metric::new(
            "jsapi.ratio_vs_bare_signing",
            gateway_rps / minimal_rps,
            "x",
            None,
            ">= 0.8",
        ),
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
