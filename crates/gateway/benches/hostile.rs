//! Hostile load (issue: harden the gateway): one client floods login starts and invented codes
//! while legitimate clients log in through the H5 code exchange, against a gateway on its
//! default limits (behind one trusted proxy, so clients are told apart by `X-Forwarded-For`).
//!
//! Reports:
//! - `hostile.legit_success_rate`: the share of legitimate logins that succeeded (goal 1.0);
//!   the baseline is the same legitimate load without the flood, measured in the same run;
//! - `hostile.flood_upstream_calls`: code exchanges the flood caused at the platform fake (goal:
//!   at most the per-client burst plus its refill over the run — the per-tenant cap bounds a
//!   flood from many addresses the same way);
//! - `hostile.rss_growth_mb`: the process's resident memory after the flood minus before it.
//!
//! `UNILOGIN_BENCH_QUICK=1` shrinks the run to a smoke test.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::net::TcpListener;
use unilogin::config::{PlatformConfig, StaticConfig};
use unilogin_benchkit::{Metric, quick, write_metrics};
use unilogin_gateway::{Gateway, GatewayConfig};
use unilogin_testkit::FakePlatform as _;
use unilogin_testkit::dingtalk::{self, FakeDingTalk};

fn rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0)
        .unwrap_or(f64::NAN)
}

fn code_calls(fake: &FakeDingTalk) -> u64 {
    fake.calls(dingtalk::endpoints::GETUSERINFO)
}

async fn start(fake: &FakeDingTalk) -> (String, tokio::sync::oneshot::Sender<()>) {
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let base = format!("http://{}/", listener.local_addr().unwrap());
    let mut config = GatewayConfig::from_yaml("proxy: {trusted_proxies: 1}\nlog: {filter: error}")
        .expect("config");
    config.public_url = base.parse().unwrap();
    config.cookies.secure = false;
    let creds = fake.credentials();
    let tenant: PlatformConfig = serde_json::from_value(json!({
        "tenant": "acme", "platform": "dingtalk",
        "app_key": creds.app_key, "app_secret": creds.app_secret, "corp_id": creds.corp_id,
        "hosts": { "oapi": fake.base_url(), "api": fake.base_url(), "login": fake.base_url() },
        "redirect_uris": [base.clone()],
    }))
    .unwrap();
    let gw = Gateway::builder(config)
        .config_source(StaticConfig::new(vec![tenant]))
        .build()
        .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let _ = gw
            .serve(listener, async move {
                let _ = stopped.await;
            })
            .await;
    });
    (base, stop)
}

/// Legitimate clients: each logs in once per round with a fresh code from the fake.
async fn legit(
    http: &reqwest::Client,
    base: &str,
    fake: &Arc<FakeDingTalk>,
    clients: u32,
    rounds: u32,
) -> (u64, u64) {
    let ok = Arc::new(AtomicU64::new(0));
    let all = Arc::new(AtomicU64::new(0));
    for _ in 0..rounds {
        let mut tasks = Vec::new();
        for c in 0..clients {
            let (http, base, fake) = (http.clone(), base.to_string(), fake.clone());
            let (ok, all) = (ok.clone(), all.clone());
            tasks.push(tokio::spawn(async move {
                let code = fake.issue_h5_code(&fake.demo_user_id());
                let r = http
                    .post(format!("{base}auth/acme/dingtalk/code"))
                    .header("x-forwarded-for", format!("192.0.2.{}", c + 1))
                    .json(&json!({ "code": code }))
                    .send()
                    .await;
                all.fetch_add(1, Ordering::Relaxed);
                if r.is_ok_and(|r| r.status().is_success()) {
                    ok.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
        // A person logs in now and then, not in a loop: one round per 3 s stays inside the
        // per-client limit (20 per minute).
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    (ok.load(Ordering::Relaxed), all.load(Ordering::Relaxed))
}

fn main() {
    let quick = quick();
    let (clients, rounds, flooders) = if quick { (4, 2, 4) } else { (20, 10, 32) };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let metrics = rt.block_on(async move {
        let fake = Arc::new(dingtalk::start().await);
        let (base, _stop) = start(&fake).await;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(256)
            .build()
            .unwrap();

        // Baseline: the legitimate load alone.
        let (base_ok, base_all) = legit(&http, &base, &fake, clients, rounds).await;

        // The flood: one client, many connections, login starts and invented codes.
        let before_calls = code_calls(&fake);
        let before_rss = rss_mb();
        let flooding = Arc::new(AtomicBool::new(true));
        let sent = Arc::new(AtomicU64::new(0));
        let mut flood = Vec::new();
        for f in 0..flooders {
            let (http, base) = (http.clone(), base.clone());
            let (flooding, sent) = (flooding.clone(), sent.clone());
            flood.push(tokio::spawn(async move {
                let mut i = 0u64;
                while flooding.load(Ordering::Relaxed) {
                    i += 1;
                    let req = if i.is_multiple_of(2) {
                        http.get(format!("{base}auth/acme/dingtalk/login?return_to={base}"))
                    } else {
                        http.post(format!("{base}auth/acme/dingtalk/code"))
                            .json(&json!({ "code": format!("invented{f}x{i}") }))
                    };
                    let _ = req
                        .header("x-forwarded-for", format!("203.0.113.{}, 198.51.100.66", f))
                        .send()
                        .await;
                    sent.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
        let started = Instant::now();
        let (ok, all) = legit(&http, &base, &fake, clients, rounds).await;
        flooding.store(false, Ordering::Relaxed);
        for t in flood {
            let _ = t.await;
        }
        let elapsed = started.elapsed();
        let after_rss = rss_mb();
        let legit_calls = ok;
        let flood_calls = code_calls(&fake)
            .saturating_sub(before_calls)
            .saturating_sub(legit_calls);
        // The bound: the per-client burst (5) plus its refill (20 per minute) over the run.
        let bound = 5.0 + 20.0 * elapsed.as_secs_f64() / 60.0;
        println!(
            "flood: {} requests in {:.1}s; legit {ok}/{all} (baseline {base_ok}/{base_all})",
            sent.load(Ordering::Relaxed),
            elapsed.as_secs_f64()
        );
        vec![
            Metric::new(
                "hostile.legit_success_rate",
                ok as f64 / all.max(1) as f64,
                "x",
                Some(base_ok as f64 / base_all.max(1) as f64),
                ">= 1.0",
            ),
            Metric::new(
                "hostile.flood_upstream_calls",
                flood_calls as f64,
                "count",
                None,
                &format!("<= {bound:.0} (per-client burst + refill over the run)"),
            ),
            Metric::new(
                "hostile.rss_growth_mb",
                after_rss - before_rss,
                "MB",
                Some(before_rss),
                "bounded (<= 64)",
            ),
            Metric::new(
                "hostile.flood_requests_per_s",
                sent.load(Ordering::Relaxed) as f64 / elapsed.as_secs_f64(),
                "1/s",
                None,
                "-",
            ),
        ]
    });
    write_metrics("hostile", &metrics).expect("writing metrics");
}
