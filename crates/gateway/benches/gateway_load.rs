//! Load benchmark of the gateway's H5 login-free exchange (`POST /auth/{t}/{p}/code`), next to a
//! minimal hand-written reqwest client doing the same upstream calls against the same fake in the
//! same run, plus the gateway's memory under sustained high concurrency.
//!
//! Layout, one OS process each, so that each one's memory and CPU are its own:
//! - **the gateway**: the shipped `unilogin-gateway` binary (its release build, its allocator,
//!   `info` logging), started with a configuration file and a tenants file as in production.
//!   Its resident set is read from `/proc/<pid>/status`.
//! - **the DingTalk fakes**: this binary re-run with `UNILOGIN_GW_BENCH_ROLE=fake:<latency ms>`.
//!   A fake remembers every code it issued, so it must not share a process with what is measured.
//!   Codes are issued in batches before they are used, outside the timed part.
//! - **the minimal proxy** (`UNILOGIN_GW_BENCH_ROLE=proxy`): a hand-written axum service making
//!   the same two upstream calls and nothing else.
//! - **the load generator and the raw client**: this process.
//!
//! Two upstreams:
//! - **realistic**: the fake answers each user call after [`UPSTREAM_LATENCY`] (the real
//!   platforms are a network hop away; 20 ms is the low end seen from a mainland data centre,
//!   which is the hard case for the ratio). The issue's metrics come from this run:
//!   `gateway.logins_per_s` (baseline: the raw client), `gateway.ratio_vs_raw_client`,
//!   `gateway.p99_ms` (baseline: the raw client's p99), and `gateway.rss_growth_mb` (the gateway's
//!   VmRSS after a sustained run at 1,000 concurrent logins minus before it, after a warm-up).
//! - **zero latency** (loopback, CPU-bound on a shared machine): the same comparison, reported
//!   as `gateway.cpu_bound.ratio_vs_raw_client`, plus `gateway.cpu_bound.ratio_vs_minimal_proxy`.
//!   Every login through a service costs one HTTP exchange more than the raw client's, so the
//!   minimal proxy is the floor any service can reach there; the second ratio is what the
//!   gateway's own work (config, token cache, mapping, session signing, metrics, logs) costs.
//!
//! `UNILOGIN_BENCH_QUICK=1` shrinks everything to a smoke run.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use unilogin_benchkit::{Metric, percentile, quick, write_metrics};
use unilogin_testkit::FakePlatform as _;
use unilogin_testkit::dingtalk::endpoints::{GETUSERINFO, USER_GET};
use unilogin_testkit::{Fault, Times};

/// Which child this process is: `fake:<latency ms>` or `proxy`.
const ROLE_ENV: &str = "UNILOGIN_GW_BENCH_ROLE";
/// The proxy's upstream base URL and app token.
const PROXY_BASE_ENV: &str = "UNILOGIN_GW_BENCH_PROXY_BASE";
const PROXY_TOKEN_ENV: &str = "UNILOGIN_GW_BENCH_PROXY_TOKEN";
/// The shipped gateway binary, built by cargo for this benchmark.
const GATEWAY_BIN: &str = env!("CARGO_BIN_EXE_unilogin-gateway");
const USER: &str = "user001";
/// How long the realistic fake takes to answer each user call.
const UPSTREAM_LATENCY: Duration = Duration::from_millis(20);

struct Plan {
    cpu_logins: usize,
    cpu_concurrency: usize,
    realistic_logins: usize,
    realistic_concurrency: usize,
    soak_concurrency: usize,
    soak_warmup: Duration,
    soak: Duration,
}

fn plan() -> Plan {
    if quick() {
        Plan {
            cpu_logins: 200,
            cpu_concurrency: 16,
            realistic_logins: 100,
            realistic_concurrency: 16,
            soak_concurrency: 50,
            soak_warmup: Duration::from_millis(500),
            soak: Duration::from_secs(1),
        }
    } else {
        Plan {
            cpu_logins: 6000,
            cpu_concurrency: 64,
            realistic_logins: 4000,
            realistic_concurrency: 64,
            soak_concurrency: 1000,
            // The resident set climbs to its working level during the first one to two minutes
            // of this load (connection buffers of 2,000 sockets, allocator pages), then stays
            // there (a 200 s run: 122-126 MiB from 55 s on), while the live heap is flat from
            // the first seconds (heaptrack, docs/performance.md). The measured minute starts
            // after that.
            soak_warmup: Duration::from_secs(120),
            soak: Duration::from_secs(60),
        }
    }
}

fn child_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// Serves `app` on loopback; returns its address.
async fn serve(app: axum::Router) -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

/// Prints the child's announcement line, then runs until the parent closes our stdin (or dies).
async fn announce_and_wait(fields: &[&str]) {
    println!("@@ {}", fields.join(" "));
    std::io::stdout().flush().expect("flush");
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
}

/// The fake child: a DingTalk fake whose user calls answer after `latency`, plus
/// `POST /issue?n=N` handing out N fresh H5 codes.
fn fake_main(latency: Duration) {
    child_runtime().block_on(async {
        let fake = Arc::new(unilogin_testkit::dingtalk::start().await);
        if !latency.is_zero() {
            for endpoint in [GETUSERINFO, USER_GET] {
                fake.inject_fault(endpoint, Fault::Delay(latency), Times::Always)
                    .expect("delay fault");
            }
        }
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
        let addr = serve(app).await;
        let c = fake.credentials();
        let issue = format!("http://{addr}");
        announce_and_wait(&[
            fake.base_url(),
            &issue,
            &c.app_key,
            &c.app_secret,
            &c.corp_id,
        ])
        .await;
    });
}

/// The proxy child: `POST /code` runs [`RawClient::login`] and answers the detail document.
fn proxy_main() {
    let base = std::env::var(PROXY_BASE_ENV).expect("proxy base");
    let token = std::env::var(PROXY_TOKEN_ENV).expect("proxy token");
    child_runtime().block_on(async move {
        let raw = RawClient {
            http: reqwest::Client::new(),
            base,
            token,
        };
        let app = axum::Router::new().route(
            "/code",
            axum::routing::post(move |axum::Json(body): axum::Json<Value>| {
                let raw = raw.clone();
                async move {
                    let code = body["code"].as_str().unwrap_or_default().to_string();
                    match raw.login(&code).await {
                        Ok(detail) => Ok(axum::Json(detail)),
                        Err(e) => Err((axum::http::StatusCode::BAD_GATEWAY, e)),
                    }
                }
            }),
        );
        let addr = serve(app).await;
        announce_and_wait(&[&format!("http://{addr}/code")]).await;
    });
}

/// A child process; killed and reaped on drop.
struct ChildProcess {
    child: Child,
}

impl Drop for ChildProcess {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Spawns this binary in `role` and reads its `@@ …` announcement (`n` fields).
fn spawn_role(role: &str, envs: &[(&str, &str)], n: usize) -> (ChildProcess, Vec<String>) {
    let mut cmd = Command::new(std::env::current_exe().expect("own executable"));
    cmd.env(ROLE_ENV, role)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let mut child = ChildProcess {
        child: cmd.spawn().expect("spawn a child process"),
    };
    let mut out = BufReader::new(child.child.stdout.take().expect("stdout"));
    let mut line = String::new();
    loop {
        line.clear();
        if out.read_line(&mut line).unwrap_or(0) == 0 {
            panic!("the {role} process exited before announcing its address");
        }
        if let Some(rest) = line.trim().strip_prefix("@@ ") {
            let fields: Vec<String> = rest.split(' ').map(str::to_string).collect();
            if fields.len() == n {
                return (child, fields);
            }
        }
    }
}

/// A DingTalk fake in its own process.
struct FakeProcess {
    _child: ChildProcess,
    base: String,
    issue_url: String,
    app_key: String,
    app_secret: String,
    corp_id: String,
}

fn spawn_fake(latency: Duration) -> FakeProcess {
    let (child, p) = spawn_role(&format!("fake:{}", latency.as_millis()), &[], 5);
    FakeProcess {
        _child: child,
        base: p[0].clone(),
        issue_url: format!("{}/issue", p[1]),
        app_key: p[2].clone(),
        app_secret: p[3].clone(),
        corp_id: p[4].clone(),
    }
}

impl FakeProcess {
    async fn issue(&self, http: &reqwest::Client, n: usize) -> Vec<String> {
        http.post(&self.issue_url)
            .query(&[("n", n)])
            .send()
            .await
            .expect("issue codes")
            .json()
            .await
            .expect("codes")
    }

    /// The tenant config of this fake, under `tenant`.
    /// `(tenant, entry)`: the tenant's DingTalk entry of a tenants document.
    fn tenant(&self, tenant: &str) -> (String, Value) {
        (
            tenant.to_string(),
            json!({
                "app_key": self.app_key, "app_secret": self.app_secret, "corp_id": self.corp_id,
                "hosts": { "oapi": self.base, "api": self.base, "login": self.base },
                "redirect_uris": ["http://127.0.0.1/"],
            }),
        )
    }

    /// A raw client of this fake, holding an app token fetched once.
    async fn raw_client(&self, http: &reqwest::Client) -> RawClient {
        let token: Value = http
            .get(format!("{}/gettoken", self.base))
            .query(&[("appkey", &self.app_key), ("appsecret", &self.app_secret)])
            .send()
            .await
            .expect("gettoken")
            .json()
            .await
            .expect("gettoken json");
        RawClient {
            http: http.clone(),
            base: self.base.clone(),
            token: token["access_token"].as_str().expect("token").to_string(),
        }
    }
}

/// The shipped gateway binary in its own process, configured by files as in production.
struct GatewayProcess {
    child: ChildProcess,
    base: String,
    dir: PathBuf,
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl GatewayProcess {
    /// Starts `unilogin-gateway --config …` serving `tenants` and waits until `/healthz` answers.
    async fn start(tenants: &[(String, Value)]) -> GatewayProcess {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let dir = std::env::temp_dir().join(format!("unilogin-gw-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("bench dir");
        // The documented format (`tenants: {<tenant>: {dingtalk: {...}}}`); JSON is YAML.
        let doc: serde_json::Map<String, Value> = tenants
            .iter()
            .map(|(t, e)| (t.clone(), json!({ "dingtalk": e })))
            .collect();
        std::fs::write(
            dir.join("tenants.yaml"),
            json!({ "tenants": doc }).to_string(),
        )
        .expect("tenants file");
        std::fs::write(
            dir.join("gateway.yaml"),
            format!(
                "listen: '127.0.0.1:{port}'\npublic_url: 'http://127.0.0.1:{port}/'\n\
                 tenants_file: tenants.yaml\ncookies: {{secure: false}}\n"
            ),
        )
        .expect("gateway config");
        // `UNILOGIN_GW_BENCH_WRAP="heaptrack -o FILE"` (say) runs the gateway under a profiler.
        let wrap = std::env::var("UNILOGIN_GW_BENCH_WRAP").unwrap_or_default();
        let mut argv: Vec<&str> = wrap.split_whitespace().collect();
        argv.push(GATEWAY_BIN);
        let child = Command::new(argv[0])
            .args(&argv[1..])
            .arg("--config")
            .arg(dir.join("gateway.yaml"))
            // Production logging (`info`, a line per login), written where nobody reads it.
            .env_remove("RUST_LOG")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn unilogin-gateway");
        let gateway = GatewayProcess {
            child: ChildProcess { child },
            base: format!("http://127.0.0.1:{port}"),
            dir,
        };
        let health = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let up = health
                .get(format!("{}/healthz", gateway.base))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if up {
                return gateway;
            }
            assert!(Instant::now() < deadline, "the gateway did not come up");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Resident set size of the gateway process in MiB.
    fn rss_mb(&self) -> f64 {
        rss_mb(self.child.child.id())
    }
}

/// The minimal hand-written client: the two upstream calls of an H5 login, nothing else.
#[derive(Clone)]
struct RawClient {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl RawClient {
    /// `POST {base}{path}?access_token=…` with a JSON body; the JSON answer.
    async fn call(&self, path: &str, body: Value) -> Result<Value, String> {
        self.http
            .post(format!("{}{path}", self.base))
            .query(&[("access_token", &self.token)])
            .json(&body)
            .send()
            .await
            .map_err(|e| format!("{path}: {e}"))?
            .json()
            .await
            .map_err(|e| format!("{path} body: {e}"))
    }

    /// The user's detail document for `code`.
    async fn login(&self, code: &str) -> Result<Value, String> {
        let info = self
            .call("/topapi/v2/user/getuserinfo", json!({ "code": code }))
            .await?;
        let userid = info["result"]["userid"]
            .as_str()
            .ok_or_else(|| format!("getuserinfo: {info}"))?;
        let detail = self
            .call(
                "/topapi/v2/user/get",
                json!({ "userid": userid, "language": "zh_CN" }),
            )
            .await?;
        if detail["errcode"] == 0 {
            Ok(detail)
        } else {
            Err(format!("user/get: {detail}"))
        }
    }
}

/// One login by a subject: a service taking `POST {code}` (gateway or minimal proxy), or the
/// raw client.
#[derive(Clone)]
enum Subject {
    Service { http: reqwest::Client, url: String },
    Raw(RawClient),
}

impl Subject {
    async fn login(&self, code: &str) -> Result<(), String> {
        match self {
            Subject::Service { http, url } => {
                let r = http
                    .post(url)
                    .json(&json!({ "code": code }))
                    .send()
                    .await
                    .map_err(|e| format!("{url}: {e}"))?;
                let status = r.status();
                let body = r.bytes().await.map_err(|e| format!("{url} body: {e}"))?;
                if status.is_success() {
                    Ok(())
                } else {
                    Err(format!(
                        "{url} {status}: {}",
                        String::from_utf8_lossy(&body)
                    ))
                }
            }
            Subject::Raw(raw) => raw.login(code).await.map(drop),
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

/// Best rate and the p99 of that run, per subject.
struct Outcome {
    rate: f64,
    p99_ms: f64,
}

/// Runs every subject `rounds` times, alternating, and keeps each one's best run, so that none
/// is favoured by running first or by a noisy moment on a shared machine.
async fn compare(
    subjects: &[&Subject],
    fake: &FakeProcess,
    http: &reqwest::Client,
    logins: usize,
    concurrency: usize,
    rounds: usize,
) -> Vec<Outcome> {
    // Warm every path (connections, the gateway's app token and handler).
    for s in subjects {
        let codes = fake.issue(http, 32).await;
        throughput(s, codes, 8).await;
    }
    let mut best: Vec<(f64, Vec<Duration>)> = subjects.iter().map(|_| (0.0, Vec::new())).collect();
    // The best of `rounds` interleaved rounds per subject: on a shared machine a round can be
    // slowed by anything else running, and the best is what the code can do.
    for _ in 0..rounds {
        for (s, best) in subjects.iter().zip(best.iter_mut()) {
            let codes = fake.issue(http, logins).await;
            let r = throughput(s, codes, concurrency).await;
            if r.0 > best.0 {
                *best = r;
            }
        }
    }
    best.into_iter()
        .map(|(rate, mut lat)| Outcome {
            rate,
            p99_ms: percentile(&mut lat, 99.0).as_secs_f64() * 1000.0,
        })
        .collect()
}

/// What a soak measured.
struct Soak {
    rss_idle: f64,
    /// Least-squares trend of the RSS over the measured run, in MB per run.
    trend_mb: f64,
    warmup_logins: usize,
    logins: usize,
    failed: usize,
    rss_before: f64,
    rss_after: f64,
}

/// Median of a few RSS samples of the gateway taken a quarter second apart, while the load keeps
/// running.
async fn rss_now(gateway: &GatewayProcess) -> f64 {
    let mut samples = Vec::new();
    for _ in 0..5 {
        samples.push(gateway.rss_mb());
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

/// Logins with `concurrency` workers, each fetching codes in batches: `warmup`, then `duration`
/// more during which the gateway's RSS is sampled every second, all while every worker is busy,
/// so the samples compare the same steady state (stopping the workers between them would
/// measure connection teardown instead).
async fn soak(
    gateway: &GatewayProcess,
    subject: &Subject,
    fake: &Arc<FakeProcess>,
    concurrency: usize,
    warmup: Duration,
    duration: Duration,
) -> Soak {
    let rss_idle = gateway.rss_mb();
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
                    codes = fake.issue(&issuer, 50).await;
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
    tokio::time::sleep(warmup).await;
    let rss_before = rss_now(gateway).await;
    let warmup_logins = done.load(Ordering::Relaxed);
    // One sample a second over the measured run. The resident set of a busy server moves up
    // and down by a few MB as buffers are taken and given back; what tells a leak from that
    // is the trend, so growth is the least-squares slope of the samples times the duration.
    let started = Instant::now();
    let mut samples: Vec<(f64, f64)> = Vec::new();
    let steps = duration.as_secs().max(2);
    for i in 1..=steps {
        tokio::time::sleep_until((started + duration * i as u32 / steps as u32).into()).await;
        samples.push((started.elapsed().as_secs_f64(), gateway.rss_mb()));
    }
    let trend_mb = slope(&samples) * duration.as_secs_f64();
    let shown: Vec<String> = samples
        .iter()
        .step_by((samples.len() / 10).max(1))
        .map(|(_, mb)| format!("{mb:.1}"))
        .collect();
    println!("gateway RSS (MiB) during the run: {}", shown.join(" "));
    let rss_after = rss_now(gateway).await;
    let logins = done.load(Ordering::Relaxed) - warmup_logins;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.expect("worker");
    }
    Soak {
        rss_idle,
        trend_mb,
        warmup_logins,
        logins,
        failed: failures.load(Ordering::Relaxed),
        rss_before,
        rss_after,
    }
}

/// Least-squares slope of `y` over `x`.
fn slope(points: &[(f64, f64)]) -> f64 {
    let n = points.len() as f64;
    let (mx, my) = points
        .iter()
        .fold((0.0, 0.0), |(a, b), (x, y)| (a + x / n, b + y / n));
    let (num, den) = points.iter().fold((0.0, 0.0), |(num, den), (x, y)| {
        (num + (x - mx) * (y - my), den + (x - mx) * (x - mx))
    });
    if den == 0.0 { 0.0 } else { num / den }
}

/// Resident set size of process `pid` in MiB (`VmRSS` of /proc/<pid>/status).
fn rss_mb(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

fn main() {
    match std::env::var(ROLE_ENV).as_deref() {
        Ok("proxy") => return proxy_main(),
        Ok(role) => {
            let ms = role
                .strip_prefix("fake:")
                .and_then(|v| v.parse().ok())
                .unwrap_or_else(|| panic!("unknown {ROLE_ENV} `{role}`"));
            return fake_main(Duration::from_millis(ms));
        }
        Err(_) => {}
    }
    let plan = plan();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let metrics = rt.block_on(async move {
        let instant = Arc::new(spawn_fake(Duration::ZERO));
        let realistic = Arc::new(spawn_fake(UPSTREAM_LATENCY));
        let gateway =
            GatewayProcess::start(&[instant.tenant("instant"), realistic.tenant("realistic")]).await;

        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(2048)
            .build()
            .expect("client");
        let service = |url: String| Subject::Service {
            http: http.clone(),
            url,
        };
        let gw_instant = service(format!("{}/auth/instant/dingtalk/code", gateway.base));
        let gw_realistic = service(format!("{}/auth/realistic/dingtalk/code", gateway.base));
        let raw_instant = instant.raw_client(&http).await;
        let (_proxy_process, proxy_url) = spawn_role(
            "proxy",
            &[
                (PROXY_BASE_ENV, raw_instant.base.as_str()),
                (PROXY_TOKEN_ENV, raw_instant.token.as_str()),
            ],
            1,
        );
        let proxy = service(proxy_url[0].clone());
        let raw_instant = Subject::Raw(raw_instant);
        let raw_realistic = Subject::Raw(realistic.raw_client(&http).await);

        let cpu = compare(
            &[&gw_instant, &raw_instant, &proxy],
            &instant,
            &http,
            plan.cpu_logins,
            plan.cpu_concurrency,
            5,
        )
        .await;
        println!(
            "zero latency: gateway {:.0}/s, raw client {:.0}/s, minimal proxy {:.0}/s ({} logins at concurrency {})",
            cpu[0].rate, cpu[1].rate, cpu[2].rate, plan.cpu_logins, plan.cpu_concurrency
        );
        let real = compare(
            &[&gw_realistic, &raw_realistic],
            &realistic,
            &http,
            plan.realistic_logins,
            plan.realistic_concurrency,
            2,
        )
        .await;
        println!(
            "{UPSTREAM_LATENCY:?} upstream: gateway {:.0}/s (p99 {:.1} ms), raw client {:.0}/s (p99 {:.1} ms) ({} logins at concurrency {})",
            real[0].rate, real[0].p99_ms, real[1].rate, real[1].p99_ms, plan.realistic_logins, plan.realistic_concurrency
        );

        // Memory: a warm-up at the soak concurrency, then a sustained run of the same shape.
        let m = soak(&gateway, &gw_realistic, &realistic, plan.soak_concurrency, plan.soak_warmup, plan.soak).await;
        println!(
            "soak at concurrency {}: {} warm-up logins in {:?}, then {} logins in {:?} ({} failed); gateway RSS {:.1} MiB idle, {:.1} MiB -> {:.1} MiB",
            plan.soak_concurrency, m.warmup_logins, plan.soak_warmup, m.logins, plan.soak, m.failed, m.rss_idle, m.rss_before, m.rss_after
        );
        vec![
            Metric::new("gateway.logins_per_s", real[0].rate, "1/s", Some(real[1].rate), ">= 0.9 x raw client"),
            Metric::new("gateway.ratio_vs_raw_client", real[0].rate / real[1].rate, "x", None, ">= 0.9"),
            Metric::new("gateway.p99_ms", real[0].p99_ms, "ms", Some(real[1].p99_ms), "report"),
            Metric::new("gateway.rss_growth_mb", m.trend_mb, "MB", None, "flat (trend <= 5 over the sustained run)"),
            Metric::new("gateway.rss_end_minus_start_mb", m.rss_after - m.rss_before, "MB", None, "report"),
            Metric::new("gateway.rss_steady_mb", m.rss_after, "MB", Some(m.rss_idle), "report (baseline: idle)"),
            Metric::new("gateway.soak_failed_logins", m.failed as f64, "logins", Some(m.logins as f64), "0"),
            Metric::new("gateway.cpu_bound.ratio_vs_raw_client", cpu[0].rate / cpu[1].rate, "x", None, "report"),
            Metric::new("gateway.cpu_bound.ratio_vs_minimal_proxy", cpu[0].rate / cpu[2].rate, "x", None, ">= 0.85"),
        ]
    });
    write_metrics("gateway", &metrics).expect("write metrics");
}
