//! Load benchmark of the gateway's H5 login-free exchange (`POST /auth/{t}/{p}/code`), next to a
//! minimal hand-written reqwest client doing the same upstream calls against the same fake in the
//! same run, plus the gateway's memory under sustained high concurrency.
//!
//! Layout: the DingTalk fake runs in a **child process** (this binary re-run with
//! `UNILOGIN_GW_BENCH_FAKE=1`), because the fake remembers every code it ever issued: in-process
//! it would make the RSS of the gateway look like it grows. The gateway and the load generator
//! run in this process. Codes are issued by the fake process in batches before they are used, so
//! issuing them is outside the timed part of both subjects.
//!
//! Metrics: `gateway.logins_per_s` (baseline: the raw client), `gateway.ratio_vs_raw_client`,
//! `gateway.p99_ms` (baseline: the raw client's p99), `gateway.rss_growth_mb` (VmRSS after a
//! sustained run at high concurrency minus before it, after an equal warm-up).
//! `UNILOGIN_BENCH_QUICK=1` shrinks everything to a smoke run.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use unilogin::config::{PlatformConfig, StaticConfig};
use unilogin_benchkit::{Metric, percentile, quick, write_metrics};
use unilogin_gateway::{Gateway, GatewayConfig};

const FAKE_ENV: &str = "UNILOGIN_GW_BENCH_FAKE";
const USER: &str = "user001";

struct Plan {
    throughput_logins: usize,
    throughput_concurrency: usize,
    soak_concurrency: usize,
    soak_warmup: Duration,
    soak: Duration,
}

fn plan() -> Plan {
    if quick() {
        Plan {
            throughput_logins: 200,
            throughput_concurrency: 16,
            soak_concurrency: 50,
            soak_warmup: Duration::from_millis(500),
            soak: Duration::from_secs(1),
        }
    } else {
        Plan {
            throughput_logins: 6000,
            throughput_concurrency: 64,
            soak_concurrency: 1000,
            soak_warmup: Duration::from_secs(10),
            soak: Duration::from_secs(60),
        }
    }
}

/// The child process: the DingTalk fake, plus `POST /issue?n=N` handing out N fresh H5 codes.
fn fake_main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let fake = Arc::new(unilogin_testkit::dingtalk::start().await);
        let issuer = fake.clone();
        let app = axum::Router::new().route(
            "/issue",
            axum::routing::post(
                move |axum::extract::Query(q): axum::extract::Query<
                    std::collections::HashMap<String, usize>,
                >| {
                    let fake = issuer.clone();
                    async move {
                        let n = q.get("n").copied().unwrap_or(1).min(10_000);
                        let codes: Vec<String> = (0..n).map(|_| fake.issue_h5_code(USER)).collect();
                        axum::Json(codes)
                    }
                },
            ),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let c = fake.credentials();
        println!(
            "@@ {} http://{addr} {} {} {}",
            fake.base_url(),
            c.app_key,
            c.app_secret,
            c.corp_id
        );
        std::io::stdout().flush().expect("flush");
        // Run until the parent closes our stdin (or dies).
        tokio::task::spawn_blocking(|| {
            let mut line = String::new();
            while std::io::stdin()
                .read_line(&mut line)
                .map(|n| n > 0)
                .unwrap_or(false)
            {
                line.clear();
            }
        })
        .await
        .expect("stdin watcher");
    });
}

struct FakeProcess {
    child: std::process::Child,
    base: String,
    issue_url: String,
    app_key: String,
    app_secret: String,
    corp_id: String,
}

impl Drop for FakeProcess {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_fake() -> FakeProcess {
    let mut child = Command::new(std::env::current_exe().expect("own executable"))
        .env(FAKE_ENV, "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn the fake process");
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    let announced = loop {
        line.clear();
        if out.read_line(&mut line).unwrap_or(0) == 0 {
            break None;
        }
        if let Some(rest) = line.trim().strip_prefix("@@ ") {
            let p: Vec<String> = rest.split(' ').map(str::to_string).collect();
            if p.len() == 5 {
                break Some(p);
            }
        }
    };
    let Some(p) = announced else {
        let _ = child.kill();
        let _ = child.wait();
        panic!("the fake process exited before announcing its address");
    };
    FakeProcess {
        base: p[0].clone(),
        issue_url: format!("{}/issue", p[1]),
        app_key: p[2].clone(),
        app_secret: p[3].clone(),
        corp_id: p[4].clone(),
        child,
    }
}

async fn issue(http: &reqwest::Client, fake: &FakeProcess, n: usize) -> Vec<String> {
    http.post(&fake.issue_url)
        .query(&[("n", n)])
        .send()
        .await
        .expect("issue codes")
        .json()
        .await
        .expect("codes")
}

/// One login by a subject: gateway or raw client.
#[derive(Clone)]
enum Subject {
    Gateway {
        http: reqwest::Client,
        url: String,
    },
    Raw {
        http: reqwest::Client,
        base: String,
        token: String,
    },
}

impl Subject {
    async fn login(&self, code: &str) -> Result<(), String> {
        match self {
            Subject::Gateway { http, url } => {
                let r = http
                    .post(url)
                    .json(&json!({ "code": code }))
                    .send()
                    .await
                    .map_err(|e| format!("gateway request: {e}"))?;
                let status = r.status();
                let body = r.bytes().await.map_err(|e| format!("gateway body: {e}"))?;
                if status.is_success() {
                    Ok(())
                } else {
                    Err(format!(
                        "gateway {status}: {}",
                        String::from_utf8_lossy(&body)
                    ))
                }
            }
            Subject::Raw { http, base, token } => {
                let info: Value = http
                    .post(format!("{base}/topapi/v2/user/getuserinfo"))
                    .query(&[("access_token", token)])
                    .json(&json!({ "code": code }))
                    .send()
                    .await
                    .map_err(|e| format!("getuserinfo: {e}"))?
                    .json()
                    .await
                    .map_err(|e| format!("getuserinfo body: {e}"))?;
                let userid = info["result"]["userid"]
                    .as_str()
                    .ok_or_else(|| format!("getuserinfo: {info}"))?;
                let detail: Value = http
                    .post(format!("{base}/topapi/v2/user/get"))
                    .query(&[("access_token", token)])
                    .json(&json!({ "userid": userid, "language": "zh_CN" }))
                    .send()
                    .await
                    .map_err(|e| format!("user/get: {e}"))?
                    .json()
                    .await
                    .map_err(|e| format!("user/get body: {e}"))?;
                if detail["errcode"] == 0 {
                    Ok(())
                } else {
                    Err(format!("user/get: {detail}"))
                }
            }
        }
    }
}

/// `codes.len()` logins with `concurrency` workers; returns (logins/s, per-login latencies).
async fn throughput(
    subject: &Subject,
    codes: Vec<String>,
    concurrency: usize,
) -> (f64, Vec<Duration>) {
    let codes = Arc::new(codes);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (codes, next, subject) = (codes.clone(), next.clone(), subject.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(code) = codes.get(i) else { break };
                let t = Instant::now();
                if let Err(e) = subject.login(code).await {
                    panic!("a benchmark login failed: {e}");
                }
                lat.push(t.elapsed());
            }
            lat
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.expect("worker"));
    }
    let secs = started.elapsed().as_secs_f64();
    (all.len() as f64 / secs, all)
}

/// Logins for `duration` with `concurrency` workers, each fetching codes in batches.
async fn soak(
    subject: &Subject,
    fake: &Arc<FakeProcess>,
    concurrency: usize,
    duration: Duration,
) -> (usize, usize) {
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let issuer = reqwest::Client::new();
    let failures = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (stop, done, subject, fake, issuer, failures) = (
            stop.clone(),
            done.clone(),
            subject.clone(),
            fake.clone(),
            issuer.clone(),
            failures.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut codes: Vec<String> = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                if codes.is_empty() {
                    codes = issue(&issuer, &fake, 50).await;
                }
                let Some(code) = codes.pop() else { continue };
                match subject.login(&code).await {
                    Ok(()) => {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(e) => {
                        if failures.fetch_add(1, Ordering::Relaxed) < 3 {
                            eprintln!("soak login failed: {e}");
                        }
                    }
                }
            }
        }));
    }
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.expect("worker");
    }
    (
        done.load(Ordering::Relaxed),
        failures.load(Ordering::Relaxed),
    )
}

/// Resident set size of this process in MiB (`VmRSS` of /proc/self/status).
fn rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

fn main() {
    if std::env::var_os(FAKE_ENV).is_some() {
        fake_main();
        return;
    }
    let plan = plan();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let metrics = rt.block_on(async move {
        let fake = Arc::new(spawn_fake());
        let tenant: PlatformConfig = serde_json::from_value(json!({
            "tenant": "demo", "platform": "dingtalk",
            "app_key": fake.app_key, "app_secret": fake.app_secret, "corp_id": fake.corp_id,
            "hosts": { "oapi": fake.base, "api": fake.base, "login": fake.base },
            "redirect_uris": ["http://127.0.0.1/"],
        }))
        .expect("tenant");
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let config = GatewayConfig::from_yaml(&format!(
            "public_url: 'http://{addr}/'\ncookies: {{secure: false}}"
        ))
        .expect("config");
        let gateway = Gateway::builder(config)
            .config_source(StaticConfig::new(vec![tenant]))
            .build()
            .expect("gateway");
        tokio::spawn(async move {
            let _ = gateway.serve(listener, std::future::pending()).await;
        });

        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(2048)
            .build()
            .expect("client");
        let gw = Subject::Gateway {
            http: http.clone(),
            url: format!("http://{addr}/auth/demo/dingtalk/code"),
        };
        let token: Value = http
            .get(format!("{}/gettoken", fake.base))
            .query(&[("appkey", &fake.app_key), ("appsecret", &fake.app_secret)])
            .send()
            .await
            .expect("gettoken")
            .json()
            .await
            .expect("gettoken json");
        let raw = Subject::Raw {
            http: http.clone(),
            base: fake.base.clone(),
            token: token["access_token"].as_str().expect("token").to_string(),
        };

        // Warm both paths (connections, the gateway's app token and handler).
        for s in [&gw, &raw] {
            let codes = issue(&http, &fake, 32).await;
            throughput(s, codes, 8).await;
        }
        // Alternate the subjects twice and keep each one's best run, so that neither is
        // favoured by running first or by a noisy moment on a shared machine.
        let n = plan.throughput_logins;
        let (mut best_gw, mut best_raw) = ((0.0, Vec::new()), (0.0, Vec::new()));
        for _ in 0..2 {
            let codes = issue(&http, &fake, n).await;
            let r = throughput(&gw, codes, plan.throughput_concurrency).await;
            if r.0 > best_gw.0 {
                best_gw = r;
            }
            let codes = issue(&http, &fake, n).await;
            let r = throughput(&raw, codes, plan.throughput_concurrency).await;
            if r.0 > best_raw.0 {
                best_raw = r;
            }
        }
        let (gw_rate, mut gw_lat) = best_gw;
        let (raw_rate, mut raw_lat) = best_raw;
        let gw_p99 = percentile(&mut gw_lat, 99.0).as_secs_f64() * 1000.0;
        let raw_p99 = percentile(&mut raw_lat, 99.0).as_secs_f64() * 1000.0;
        println!(
            "throughput: gateway {gw_rate:.0}/s (p99 {gw_p99:.1} ms), raw client {raw_rate:.0}/s (p99 {raw_p99:.1} ms), {n} logins at concurrency {}",
            plan.throughput_concurrency
        );

        // Memory: warm up at the soak concurrency, then a sustained run of the same shape.
        soak(&gw, &fake, plan.soak_concurrency, plan.soak_warmup).await;
        let before = rss_mb();
        let (logins, failed) = soak(&gw, &fake, plan.soak_concurrency, plan.soak).await;
        let after = rss_mb();
        println!(
            "soak: {logins} logins ({failed} failed) in {:?} at concurrency {}; RSS {before:.1} MiB -> {after:.1} MiB",
            plan.soak, plan.soak_concurrency
        );
        vec![
            Metric::new("gateway.logins_per_s", gw_rate, "1/s", Some(raw_rate), ">= 0.9 x raw client"),
            Metric::new("gateway.ratio_vs_raw_client", gw_rate / raw_rate, "x", None, ">= 0.9"),
            Metric::new("gateway.p99_ms", gw_p99, "ms", Some(raw_p99), "report"),
            Metric::new("gateway.rss_growth_mb", after - before, "MB", None, "flat (<= 20 over the sustained run)"),
        ]
    });
    write_metrics("gateway", &metrics).expect("write metrics");
}
