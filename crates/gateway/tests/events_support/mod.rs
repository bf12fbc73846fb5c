//! Shared by the event tests: tenants with event subscriptions, a webhook receiver that
//! records what it gets and answers as scripted, and the Standard Webhooks check a receiver
//! does.

#![allow(dead_code)]

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::{Value, json};
use unilogin_testkit::dingtalk::FakeDingTalk;

/// The webhook secret of the tests (Standard Webhooks form).
pub const WEBHOOK_SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// A DingTalk tenant entry over `fake` with its event subscription.
pub fn dingtalk_tenant(fake: &FakeDingTalk, tenant: &str, return_to: &str) -> Value {
    let mut entry = crate::support::tenant(fake, tenant, true, return_to);
    let ev = fake.event_credentials();
    entry["events"] = json!({ "token": ev.token, "key": ev.aes_key });
    entry
}

/// One request the webhook receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: String,
}

/// A webhook receiver on 127.0.0.1:0.
#[derive(Clone)]
pub struct Hook {
    pub url: String,
    pub seen: Arc<Mutex<Vec<Received>>>,
    script: Arc<Mutex<VecDeque<u16>>>,
}

impl Hook {
    /// Answers `statuses` in turn, then 200.
    pub async fn start(statuses: &[u16]) -> Self {
        let seen: Arc<Mutex<Vec<Received>>> = Arc::default();
        let script = Arc::new(Mutex::new(
            statuses.iter().copied().collect::<VecDeque<_>>(),
        ));
        let (s, sc) = (seen.clone(), script.clone());
        let app = Router::new().route(
            "/hook",
            post(move |headers: HeaderMap, body: String| {
                let (s, sc) = (s.clone(), sc.clone());
                async move {
                    s.lock().unwrap().push(Received { headers, body });
                    let status = sc.lock().unwrap().pop_front().unwrap_or(200);
                    StatusCode::from_u16(status).unwrap()
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self {
            url: format!("http://{addr}/hook"),
            seen,
            script,
        }
    }

    pub fn received(&self) -> Vec<Received> {
        self.seen.lock().unwrap().clone()
    }

    /// Waits until `n` requests arrived (or panics after `within`).
    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<Received> {
        let deadline = Instant::now() + within;
        loop {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "webhook got {} of {n} requests",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The gateway configuration that sends every tenant's notices here.
    pub fn yaml(&self) -> String {
        format!(
            "webhook: {{url: '{}', secret: '{WEBHOOK_SECRET}', initial_backoff_ms: 50, max_backoff_ms: 200, timeout_ms: 2000}}",
            self.url
        )
    }
}

/// What a Standard Webhooks receiver checks: the signature over `id.timestamp.body` with the
/// shared key, and a timestamp close to now. Returns the parsed body.
pub fn verify(r: &Received) -> Value {
    let id = r.headers["webhook-id"].to_str().unwrap();
    let ts: u64 = r.headers["webhook-timestamp"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(now.abs_diff(ts) < 60, "timestamp {ts} far from {now}");
    let key = {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD
            .decode(WEBHOOK_SECRET.strip_prefix("whsec_").unwrap())
            .unwrap()
    };
    let key = aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &key);
    let expected = {
        use base64::Engine;
        let tag = aws_lc_rs::hmac::sign(&key, format!("{id}.{ts}.{}", r.body).as_bytes());
        format!(
            "v1,{}",
            base64::engine::general_purpose::STANDARD.encode(tag.as_ref())
        )
    };
    let given = r.headers["webhook-signature"].to_str().unwrap();
    assert!(
        given.split(' ').any(|s| s == expected),
        "signature {given} is not {expected}"
    );
    serde_json::from_str(&r.body).unwrap()
}

/// Polls `check` until it is true (or panics after `within`); returns the time it took.
pub async fn eventually<F, Fut>(within: Duration, what: &str, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        if check().await {
            return started.elapsed();
        }
        assert!(started.elapsed() < within, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
