//! The gateway's tenant configuration at scale: 100,000 tenants in PostgreSQL (a server this
//! benchmark starts, as `unilogin-sql`'s tests do), read through the gateway's own path
//! (`tenants_database`, `GatewayBuilder::open`).
//!
//! | metric | what |
//! |---|---|
//! | `config.startup_validation_s` | `open()`: read every row, resolve secrets, validate every entry the way a login uses it (handler built, rules compiled) |
//! | `config.bytes_per_tenant` | live heap after `open()` minus before, per configured tenant |
//! | `config.bytes_per_active_tenant` | live heap added per tenant by its first login: handler built, rules compiled, app token cached, metric handles |
//! | `config.cold_login_overhead_ms` | p50 of a tenant's first H5 login minus p50 of a warm tenant's login |
//! | `config.reload_propagation_ms` | one row changed (through the store's admin API) until a second replica serves it, p50 of 5 (default `reload.poll_ms`) |
//!
//! Heap is counted by a counting global allocator in this binary. The DingTalk fake runs in a
//! child process (this binary with `UNILOGIN_CONFIG_BENCH_ROLE=fake`): it remembers every code
//! and token it issued, which must not count. `UNILOGIN_BENCH_QUICK=1`: 2,000 tenants.

#[path = "../../sql/tests/common/mod.rs"]
mod db;

use std::alloc::System;
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use stats_alloc::{INSTRUMENTED_SYSTEM, StatsAlloc};
use unilogin::sql::{ConfigPatch, SecretCipher, SqlConfigStore};
use unilogin::{AppSecret, PlatformName, TenantId};
use unilogin_benchkit::{Metric, percentile, quick, write_metrics};
use unilogin_gateway::{Gateway, GatewayConfig};
use unilogin_testkit::FakePlatform as _;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const ROLE_ENV: &str = "UNILOGIN_CONFIG_BENCH_ROLE";
const USER: &str = "user001";

fn live_bytes() -> i64 {
    let s = GLOBAL.stats();
    s.bytes_allocated as i64 - s.bytes_deallocated as i64
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// The fake child: a DingTalk fake plus `POST /issue?n=N` handing out N fresh H5 codes.
fn fake_main() {
    runtime().block_on(async {
        let fake = std::sync::Arc::new(unilogin_testkit::dingtalk::start().await);
        let issuer = fake.clone();
        let app = axum::Router::new().route(
            "/issue",
            axum::routing::post(
                move |axum::extract::Query(q): axum::extract::Query<
                    std::collections::HashMap<String, usize>,
                >| {
                    let fake = issuer.clone();
                    async move {
                        let n = q.get("n").copied().unwrap_or(1).min(100_000);
                        axum::Json((0..n).map(|_| fake.issue_h5_code(USER)).collect::<Vec<_>>())
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
            "@@ {} http://{addr}/issue {} {} {}",
            fake.base_url(),
            c.app_key,
            c.app_secret,
            c.corp_id
        );
        std::io::stdout().flush().expect("flush");
        tokio::task::spawn_blocking(|| {
            let mut line = String::new();
            while std::io::stdin().read_line(&mut line).is_ok_and(|n| n > 0) {
                line.clear();
            }
        })
        .await
        .expect("stdin watcher");
    });
}

struct FakeChild {
    child: Child,
    base: String,
    issue: String,
    app_key: String,
    app_secret: String,
    corp_id: String,
}

impl Drop for FakeChild {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn_fake() -> FakeChild {
    let child = Command::new(std::env::current_exe().expect("own executable"))
        .env(ROLE_ENV, "fake")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn the fake");
    // Owned (and so killed and waited for) before anything can fail.
    let mut fake = FakeChild {
        child,
        base: String::new(),
        issue: String::new(),
        app_key: String::new(),
        app_secret: String::new(),
        corp_id: String::new(),
    };
    let mut out = BufReader::new(fake.child.stdout.take().expect("stdout"));
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            out.read_line(&mut line).unwrap_or(0) > 0,
            "the fake exited before announcing itself"
        );
        if let Some(rest) = line.trim().strip_prefix("@@ ") {
            let f: Vec<String> = rest.split(' ').map(str::to_string).collect();
            fake.base = f[0].clone();
            fake.issue = f[1].clone();
            fake.app_key = f[2].clone();
            fake.app_secret = f[3].clone();
            fake.corp_id = f[4].clone();
            return fake;
        }
    }
}

fn tenant_id(i: usize) -> String {
    format!("t{i:06}")
}

/// Inserts `n` tenants' DingTalk rows in batches (the way a migration from another system
/// would), every secret encrypted for its own tenant. All rows carry the same mapping
/// overrides and session scope rules, as most tenants of a deployment do.
async fn load_rows(store: &SqlConfigStore, cipher: &SecretCipher, fake: &FakeChild, n: usize) {
    let platform = PlatformName::new("dingtalk").unwrap();
    let secret = AppSecret::new(fake.app_secret.as_str());
    let hosts = json!({ "oapi": fake.base, "api": fake.base, "login": fake.base }).to_string();
    let mapping =
        json!({ "employee_no": { "path": "$.result.job_number", "backup": ["$.result.userid"] } })
            .to_string();
    let scopes = json!({ "default": ["user:read"], "rules": [{ "when": { "user_id": ["boss"] }, "grant": ["admin:write"] }] })
        .to_string();
    // Rows written over the last weeks, as in a live deployment.
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let first = now_ms - 30 * 86_400_000;
    for start in (0..n).step_by(1000) {
        let mut values = Vec::new();
        for i in start..(start + 1000).min(n) {
            let t = tenant_id(i);
            let enc = cipher
                .encrypt(&secret, &TenantId::new(&t).unwrap(), &platform)
                .unwrap();
            let uris = json!([format!("https://{t}.example/after-login")]).to_string();
            let at = first + i as i64 * 20_000;
            values.push(format!(
                "('{t}', 'dingtalk', NULL, 1, '{key}', '{enc}', '{corp}', NULL, '{hosts}', '{mapping}', '{scopes}', '{uris}', '{{}}', 0, 0, 'bench', {at}, NULL, {at}, 1, 0)",
                key = fake.app_key,
                corp = fake.corp_id,
            ));
        }
        let sql = format!(
            "INSERT INTO unilogin_platform_config (tenant_id, platform, protocol, enabled, app_key, app_secret, corp_id, agent_id, hosts, mapping, session_scopes, redirect_uris, options, sort, deprecated, creator, created_at, modifier, modified_at, revision, deleted_at) VALUES {}",
            values.join(", ")
        );
        sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
            .execute(store.pool())
            .await
            .expect("insert rows");
    }
}

fn gateway_config(url: &str, keys: &str) -> GatewayConfig {
    let mut c = GatewayConfig::from_yaml(&format!(
        "tenants_database: {{url: '{url}', secret_keys: 'file:{keys}'}}\n\
         log: {{filter: warn}}\n\
         rate_limits: {{login_per_client: {{per_minute: 1000000, burst: 100000}}, code_per_client: {{per_minute: 1000000, burst: 100000}}, other_per_client: {{per_minute: 1000000, burst: 100000}}, upstream_per_tenant: {{per_minute: 1000000, burst: 100000}}}}\n"
    ))
    .expect("gateway config");
    c.cookies.secure = false;
    c
}

async fn serve(gw: &Gateway) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let server = gw.clone();
    tokio::spawn(async move {
        let _ = server.serve(listener, std::future::pending()).await;
    });
    base
}

/// One H5 login of `tenant`; its latency.
async fn login(http: &reqwest::Client, base: &str, tenant: &str, code: &str) -> Duration {
    let started = Instant::now();
    let r = http
        .post(format!("{base}/auth/{tenant}/dingtalk/code"))
        .json(&json!({ "code": code }))
        .send()
        .await
        .expect("login");
    let status = r.status();
    let body = r.text().await.unwrap_or_default();
    assert!(status.is_success(), "{tenant}: {status} {body}");
    started.elapsed()
}

fn main() {
    if std::env::var(ROLE_ENV).as_deref() == Ok("fake") {
        return fake_main();
    }
    let n = if quick() { 2_000 } else { 100_000 };
    let active = if quick() { 200 } else { 2_000 };
    let rt = runtime();
    let metrics = rt.block_on(async move {
        let fake = spawn_fake();
        let http = reqwest::Client::new();
        let url = db::fresh_database(db::Kind::Postgres).await;
        let spec = format!("k1:{}", SecretCipher::generate_key_hex());
        let dir =
            std::env::temp_dir().join(format!("unilogin-config-bench-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let keys = dir.join("keys");
        std::fs::write(&keys, &spec).expect("keys");
        let cipher = SecretCipher::parse(&spec).expect("cipher");
        let store = SqlConfigStore::connect(&url, cipher.clone())
            .await
            .expect("connect");
        store.migrate().await.expect("migrate");
        let t = Instant::now();
        load_rows(&store, &cipher, &fake, n).await;
        println!("loaded {n} rows in {:.1?}", t.elapsed());
        let config = gateway_config(&url, &keys.display().to_string());

        // Start-up: every row read, resolved and validated.
        let before = live_bytes();
        let t = Instant::now();
        let gw = Gateway::builder(config.clone())
            .open()
            .await
            .unwrap_or_else(|p| panic!("{p}"));
        let startup = t.elapsed();
        let idle = (live_bytes() - before) as f64 / n as f64;
        assert_eq!(gw.tenants().unwrap().status().entries, n);
        println!("open: {startup:.2?}, {idle:.0} B per configured tenant");
        let base = serve(&gw).await;

        // A warm tenant, then the first login of `active` cold tenants and a second (warm)
        // login of each.
        let codes: Vec<String> = http
            .post(&fake.issue)
            .query(&[("n", 2 * active + 20)])
            .send()
            .await
            .expect("codes")
            .json()
            .await
            .expect("codes json");
        let mut codes = codes.into_iter();
        for _ in 0..10 {
            login(&http, &base, &tenant_id(n - 1), &codes.next().unwrap()).await;
        }
        let before = live_bytes();
        let mut cold = Vec::with_capacity(active);
        for i in 0..active {
            cold.push(login(&http, &base, &tenant_id(i), &codes.next().unwrap()).await);
        }
        let per_active = (live_bytes() - before) as f64 / active as f64;
        let mut warm = Vec::with_capacity(active);
        for i in 0..active {
            warm.push(login(&http, &base, &tenant_id(i), &codes.next().unwrap()).await);
        }
        let cold_p50 = percentile(&mut cold, 50.0);
        let warm_p50 = percentile(&mut warm, 50.0);
        let overhead_ms = (cold_p50.as_secs_f64() - warm_p50.as_secs_f64()) * 1000.0;
        println!(
            "{per_active:.0} B per active tenant; cold p50 {cold_p50:?}, warm p50 {warm_p50:?}"
        );

        // A second replica; one changed row at a time until it serves the change.
        let replica = Gateway::builder(config)
            .open()
            .await
            .unwrap_or_else(|p| panic!("{p}"));
        let mut propagation = Vec::new();
        let platform = PlatformName::new("dingtalk").unwrap();
        for round in 0..5 {
            let tenant = TenantId::new(tenant_id(round * 7 + 3)).unwrap();
            let uri = format!("https://{tenant}.example/changed-{round}");
            let t = Instant::now();
            store
                .update(
                    &tenant,
                    &platform,
                    ConfigPatch {
                        redirect_uris: Some(vec![uri.clone()]),
                        ..ConfigPatch::default()
                    },
                    "bench",
                )
                .await
                .expect("update");
            loop {
                let seen = replica
                    .sso()
                    .config_source()
                    .get(&tenant, "dingtalk")
                    .await
                    .map(|c| c.redirect_uris.contains(&uri))
                    .unwrap_or(false);
                if seen {
                    break;
                }
                assert!(t.elapsed() < Duration::from_secs(60), "never propagated");
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            propagation.push(t.elapsed());
        }
        let mut sorted = propagation.clone();
        let p50 = percentile(&mut sorted, 50.0);
        println!("propagation: {propagation:?}");
        let _ = std::fs::remove_dir_all(&dir);
        drop(fake);
        vec![
            Metric::new(
                "config.startup_validation_s",
                startup.as_secs_f64(),
                "s",
                None,
                &format!("report ({n} tenants)"),
            ),
            Metric::new("config.bytes_per_tenant", idle, "bytes", None, "<= 4096"),
            Metric::new(
                "config.bytes_per_active_tenant",
                per_active,
                "bytes",
                None,
                "<= 8192",
            ),
            Metric::new(
                "config.cold_login_overhead_ms",
                overhead_ms,
                "ms",
                Some(warm_p50.as_secs_f64() * 1000.0),
                "<= 1",
            ),
            Metric::new(
                "config.reload_propagation_ms",
                p50.as_secs_f64() * 1000.0,
                "ms",
                None,
                "<= 2000",
            ),
        ]
    });
    write_metrics("config_scale", &metrics).expect("write metrics");
}
