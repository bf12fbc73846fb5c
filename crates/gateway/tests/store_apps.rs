//! Store (third-party) apps in the gateway (issue #22): the suite ticket DingTalk pushes to the
//! event receiver reaches the ticket store — in memory, or in Redis where every replica (and a
//! restarted one) finds it — and the installed organisations' logins, refused with
//! `ticket_missing` before it arrived, work once it has.

mod support;

use std::sync::Arc;

use serde_json::{Value, json};
use unilogin_testkit::dingtalk::{self, FakeDingTalk, FakeSuite};
use unilogin_testkit::redis_server::RedisServer;
use unilogin_testkit::{FakePlatform as _, FakeUser};

const SUITE_KEY: &str = "suitefakekey0001";
const SUITE_SECRET: &str = "fake_dt_suite_secret_0001";
const ORG: &str = "dingisvorg000a";
const USER: &str = "isvuser_a";

async fn fake() -> Arc<FakeDingTalk> {
    let fake = dingtalk::start().await;
    fake.add_suite(FakeSuite::new(SUITE_KEY, SUITE_SECRET, "90001"));
    fake.install_suite(SUITE_KEY, ORG);
    fake.add_user(FakeUser::new(USER).name(USER).in_org(ORG));
    Arc::new(fake)
}

/// The installed organisation's tenant entry, receiving the suite's events.
fn entry(fake: &FakeDingTalk, return_to: &str) -> Value {
    let base = fake.base_url();
    let events = fake.event_credentials_for(SUITE_KEY);
    json!({
        "tenant": "org-a", "platform": "dingtalk", "mode": "isv",
        "app_key": SUITE_KEY, "app_secret": SUITE_SECRET, "corp_id": ORG,
        "hosts": { "oapi": base, "api": base, "login": base },
        "redirect_uris": [return_to],
        "events": { "token": events.token, "key": events.aes_key, "receiver_id": events.receiver_id },
    })
}

async fn h5_login(served: &support::Served, fake: &FakeDingTalk) -> (u16, Value) {
    let resp = served
        .http
        .post(served.url("/auth/org-a/dingtalk/code"))
        .json(&json!({ "code": fake.issue_h5_code(USER) }))
        .send()
        .await
        .unwrap();
    (
        resp.status().as_u16(),
        resp.json().await.unwrap_or(Value::Null),
    )
}

async fn push_ticket(served: &support::Served, fake: &FakeDingTalk) {
    let (delivery, _) = fake
        .push_suite_ticket(SUITE_KEY, &served.url("/events/org-a/dingtalk"))
        .await
        .unwrap();
    assert!(delivery.accepted(), "{:?}", delivery.verdict);
}

async fn eventually_logs_in(served: &support::Served, fake: &FakeDingTalk) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let (status, body) = h5_login(served, fake).await;
        if status == 200 {
            return body;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still refused: {status} {body}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pushed_suite_ticket_opens_the_installed_organisations_logins() {
    let fake = fake().await;
    let f = fake.clone();
    let served = support::serve("", move |p| vec![entry(&f, p.as_str())], |b| b).await;
    // No ticket yet: a typed refusal, and nothing was asked of the platform for it.
    let (status, body) = h5_login(&served, &fake).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (503, Some("ticket_missing")),
        "{body}"
    );
    push_ticket(&served, &fake).await;
    let body = eventually_logs_in(&served, &fake).await;
    assert_eq!(body["profile"]["user_id"], USER, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_the_ticket_serves_every_replica_and_survives_a_restart() {
    let redis = RedisServer::start();
    let fake = fake().await;
    let yaml = format!("redis: {{url: \"{}\"}}\n", redis.url());
    let f = fake.clone();
    let a = support::serve(&yaml, move |p| vec![entry(&f, p.as_str())], |b| b).await;
    push_ticket(&a, &fake).await;
    eventually_logs_in(&a, &fake).await;
    drop(a);
    // A replica started afterwards (nothing pushed to it) finds the ticket in Redis.
    let f = fake.clone();
    let b = support::serve(&yaml, move |p| vec![entry(&f, p.as_str())], |b| b).await;
    let (status, body) = h5_login(&b, &fake).await;
    assert_eq!(status, 200, "{body}");
}

/// The sandbox serves a store app: its app entry received a suite ticket at start, the
/// installed organisation's people log in, a person of another organisation does not, and the
/// app entry logs no one in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandbox_serves_a_store_app_tenant() {
    use unilogin_gateway::sandbox::{STORE_ORG, STORE_TENANT, STORE_USER, Sandbox, SandboxOptions};
    let sandbox = Sandbox::start(SandboxOptions::default()).await.unwrap();
    let fake = sandbox.fake("dingtalk").unwrap().clone();
    let http = reqwest::Client::new();
    let login = |tenant: String, user: &'static str| {
        let (http, fake) = (http.clone(), fake.clone());
        let url = sandbox
            .url
            .join(&format!("auth/{tenant}/dingtalk/code"))
            .unwrap();
        async move {
            let r = http
                .post(url)
                .json(&json!({ "code": fake.issue_h5_code(user) }))
                .send()
                .await
                .unwrap();
            (
                r.status().as_u16(),
                r.json::<Value>().await.unwrap_or(Value::Null),
            )
        }
    };
    let org_tenant = format!("{STORE_TENANT}-{STORE_ORG}");
    let (status, body) = login(org_tenant.clone(), STORE_USER).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["profile"]["user_id"], STORE_USER, "{body}");
    assert_eq!(body["profile"]["tenant"], org_tenant.as_str(), "{body}");
    // The demo organisation's user is not a member of the installing organisation: its code
    // does not redeem with that organisation's corp token (DingTalk answers 40078).
    let (status, body) = login(org_tenant, "user001").await;
    assert!(
        matches!(
            (status, body["error"].as_str()),
            (400, Some("invalid_code")) | (403, Some("not_in_tenant"))
        ),
        "{status} {body}"
    );

    let (status, body) = login(STORE_TENANT.to_string(), STORE_USER).await;
    assert!((400..500).contains(&status), "{status} {body}");
    assert!(sandbox.instructions().contains(STORE_TENANT));
    sandbox.stop().await;
}
