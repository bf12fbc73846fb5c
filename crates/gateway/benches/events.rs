//! Leaver propagation (issue 21): two gateway replicas share one Redis (a private
//! `redis-server`), and an app's `unilogin-axum` guard shares their revocation list. For each of
//! 100 people with a live session, the DingTalk fake pushes "user left" to replica A; the clock
//! runs from the push until the person's session is refused both on replica B (`GET /me`) and
//! by the guard (first refused request on each, polled every 2 ms).
//!
//! Reports:
//! - `events.leaver_propagation_p99_ms` (goal ≤ 2000): p99 over the leavers of the later of the
//!   two refusals; the baseline is the same measurement for a logout at replica A (the
//!   revocation of one token id through the same shared list), in the same run;
//! - `events.leaver_propagation_replica_p99_ms`, `events.leaver_propagation_guard_p99_ms`;
//! - `events.ack_p99_ms` (goal ≤ 1000, WeCom's deadline): the platform's wait for the answer.
//!
//! Needs `redis-server` on `PATH`. `UNILOGIN_BENCH_QUICK=1` runs 10 leavers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use unilogin::config::{PlatformConfig, StaticConfig};
use unilogin_axum::session::{RevocationList, SessionKeys};
use unilogin_axum::{AuthUser, Guard};
use unilogin_benchkit::{Metric, percentile, quick, write_metrics};
use unilogin_gateway::{Gateway, GatewayConfig};
use unilogin_testkit::dingtalk::{self, FakeDingTalk};
use unilogin_testkit::events::FakeEvent;
use unilogin_testkit::redis_server::RedisServer;
use unilogin_testkit::{FakePlatform as _, FakeUser};

const LIMITS: &str = "rate_limits:
  login_per_client: {per_minute: 600000, burst: 100000}
  login_global: {per_minute: 600000, burst: 100000}
  code_per_client: {per_minute: 600000, burst: 100000}
  upstream_per_tenant: {per_minute: 600000, burst: 100000}
  other_per_client: {per_minute: 600000, burst: 100000}
  events_per_client: {per_minute: 600000, burst: 100000}
log: {filter: error}";

/// A replica on 127.0.0.1:0; its base URL.
async fn replica(
    redis: &RedisServer,
    fake: &FakeDingTalk,
    keys: SessionKeys,
    public: Option<&str>,
) -> (Gateway, String) {
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let base = format!("http://{}/", listener.local_addr().unwrap());
    let mut config = GatewayConfig::from_yaml(&format!(
        "redis: {{url: '{}', prefix: 'bench:'}}\n{LIMITS}",
        redis.url()
    ))
    .expect("config");
    config.public_url = public.unwrap_or(&base).parse().unwrap();
    config.cookies.secure = false;
    let creds = fake.credentials();
    let ev = fake.event_credentials();
    let tenant: PlatformConfig = serde_json::from_value(json!({
        "tenant": "acme", "platform": "dingtalk",
        "app_key": creds.app_key, "app_secret": creds.app_secret, "corp_id": creds.corp_id,
        "hosts": { "oapi": fake.base_url(), "api": fake.base_url(), "login": fake.base_url() },
        "redirect_uris": [base.clone()],
        "events": { "token": ev.token, "key": ev.aes_key },
    }))
    .unwrap();
    tenant.validate().expect("a valid tenant");
    let gw = Gateway::builder(config)
        .config_source(StaticConfig::new(vec![tenant]))
        .session_keys(keys)
        .build()
        .expect("gateway");
    let served = gw.clone();
    tokio::spawn(async move {
        let _ = served.serve(listener, std::future::pending()).await;
    });
    (gw, base)
}

async fn whoami(user: AuthUser) -> String {
    user.subject().to_string()
}

async fn status(http: &reqwest::Client, url: &str, token: &str) -> u16 {
    match http.get(url).bearer_auth(token).send().await {
        Ok(r) => r.status().as_u16(),
        Err(_) => 0,
    }
}

/// Polls until `url` refuses `token` (401); the time since `from`.
async fn refused_after(http: &reqwest::Client, url: &str, token: &str, from: Instant) -> Duration {
    let deadline = from + Duration::from_secs(30);
    loop {
        if status(http, url, token).await == 401 {
            return from.elapsed();
        }
        assert!(Instant::now() < deadline, "never refused at {url}");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n = if quick() { 10 } else { 100 };
    let redis = RedisServer::start();
    let fake = Arc::new(dingtalk::start().await);
    let keys = SessionKeys::generate().unwrap();
    let (a, base_a) = replica(&redis, &fake, keys.clone(), None).await;
    let (_b, base_b) = replica(&redis, &fake, keys, Some(&base_a)).await;
    let list: Arc<dyn RevocationList> = Arc::new(
        unilogin_redis::RedisStore::builder(redis.url())
            .prefix("bench:")
            .build()
            .unwrap()
            .revocation_list(),
    );
    let issuer = a.issuer();
    let guard = Guard::jwks(
        format!("{base_a}.well-known/jwks.json"),
        issuer.issuer(),
        issuer.audience(),
    )
    .tenant("acme")
    .revocation(list)
    .build()
    .unwrap();
    let app = Router::new().route("/api/me", get(whoami)).layer(guard);
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = format!("http://{}/api/me", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let http = reqwest::Client::new();
    let me_b = format!("{base_b}me");

    // Two sessions per person (H5 code exchanges at A): one for the leaver run, one for the
    // logout baseline.
    let mut tokens = Vec::new();
    for i in 0..n {
        let user = format!("leaver{i:03}");
        fake.add_user(FakeUser::new(&user));
        let mut pair = Vec::new();
        for _ in 0..2 {
            let code = fake.issue_h5_code(&user);
            let r: Value = http
                .post(format!("{base_a}auth/acme/dingtalk/code"))
                .json(&json!({ "code": code }))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            pair.push(r["token"].as_str().expect("a session token").to_string());
        }
        assert_eq!(status(&http, &me_b, &pair[0]).await, 200);
        assert_eq!(status(&http, &api, &pair[0]).await, 200);
        tokens.push((user, pair));
    }

    // Baseline: a logout at A, seen by B and by the guard.
    let mut baseline = Vec::new();
    for (_, pair) in &tokens {
        let t0 = Instant::now();
        let r = http
            .post(format!("{base_a}logout"))
            .bearer_auth(&pair[1])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let on_b = refused_after(&http, &me_b, &pair[1], t0).await;
        let on_guard = refused_after(&http, &api, &pair[1], t0).await;
        baseline.push(on_b.max(on_guard));
    }

    // The leavers.
    let events_url = format!("{base_a}events/acme/dingtalk");
    let (mut both, mut on_replica, mut on_guard, mut acks) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (user, pair) in &tokens {
        let t0 = Instant::now();
        let d = fake
            .push_event(&events_url, FakeEvent::UserLeft(user.clone()), None)
            .await
            .unwrap();
        acks.push(t0.elapsed());
        assert!(d.accepted(), "{:?}", d.verdict);
        let b = refused_after(&http, &me_b, &pair[0], t0).await;
        let g = refused_after(&http, &api, &pair[0], t0).await;
        on_replica.push(b);
        on_guard.push(g);
        both.push(b.max(g));
    }

    let p99 = |v: &mut Vec<Duration>| ms(percentile(v, 99.0));
    let metrics = [
        Metric::new(
            "events.leaver_propagation_p99_ms",
            p99(&mut both),
            "ms",
            Some(p99(&mut baseline)),
            "<= 2000",
        ),
        Metric::new(
            "events.leaver_propagation_replica_p99_ms",
            p99(&mut on_replica),
            "ms",
            None,
            "<= 2000",
        ),
        Metric::new(
            "events.leaver_propagation_guard_p99_ms",
            p99(&mut on_guard),
            "ms",
            None,
            "<= 2000",
        ),
        Metric::new("events.ack_p99_ms", p99(&mut acks), "ms", None, "<= 1000"),
    ];
    write_metrics("events", &metrics).expect("writing metrics");
}
