//! The leaver lifecycle across replicas: two gateways share one Redis (a private
//! `redis-server` process) and a `unilogin-axum` guard shares its revocation list. A "user left"
//! pushed to replica A makes the person's session refused on replica B and by the guard, while a
//! later session works; the same event delivered to both replicas is applied once; with Redis
//! down the receiver fails closed (503, the platform retries).

mod events_support;
mod support;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::routing::get;
use events_support::{Hook, dingtalk_tenant, eventually, verify};
use serde_json::{Value, json};
use unilogin_axum::session::{RevocationList, SessionKeys};
use unilogin_axum::{AuthUser, Guard};
use unilogin_testkit::dingtalk::{self, FakeDingTalk};
use unilogin_testkit::events::FakeEvent;
use unilogin_testkit::redis_server::RedisServer;

struct Setup {
    a: support::TestGateway,
    b: support::TestGateway,
    _served: (support::Served, support::Served),
    api: String,
    hook: Hook,
}

async fn replica(
    yaml: &str,
    fake: &Arc<FakeDingTalk>,
    keys: SessionKeys,
) -> (support::Served, support::TestGateway) {
    let f = fake.clone();
    let served = support::serve(
        yaml,
        move |public| vec![dingtalk_tenant(&f, "acme", public.as_str())],
        move |b| b.session_keys(keys),
    )
    .await;
    let t = support::TestGateway::adopt(&served, fake.clone());
    (served, t)
}

async fn whoami(user: AuthUser) -> String {
    user.subject().to_string()
}

async fn setup(redis: &RedisServer) -> Setup {
    let fake = Arc::new(dingtalk::start().await);
    let hook = Hook::start(&[]).await;
    let keys = SessionKeys::generate().unwrap();
    let yaml = format!(
        "redis: {{url: '{}', prefix: 'evtest:'}}\n{}",
        redis.url(),
        hook.yaml()
    );
    let (sa, a) = replica(&yaml, &fake, keys.clone()).await;
    let yaml_b = format!("{yaml}\npublic_url: '{}'", a.base);
    let (sb, b) = replica(&yaml_b, &fake, keys).await;
    // The app's guard, on the same revocation list (Redis).
    let list: Arc<dyn RevocationList> = Arc::new(
        unilogin_redis::RedisStore::builder(redis.url())
            .prefix("evtest:")
            .build()
            .unwrap()
            .revocation_list(),
    );
    let issuer = a.gateway.issuer();
    let guard = Guard::jwks(
        a.url(".well-known/jwks.json"),
        issuer.issuer(),
        issuer.audience(),
    )
    .tenant("acme")
    .revocation(list)
    .build()
    .unwrap();
    let app = Router::new().route("/api/me", get(whoami)).layer(guard);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let api = format!("http://{}/api/me", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Setup {
        a,
        b,
        _served: (sa, sb),
        api,
        hook,
    }
}

async fn status(http: &reqwest::Client, url: &str, token: &str) -> u16 {
    http.get(url)
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leaver_is_refused_on_the_other_replica_and_by_the_guard() {
    let redis = RedisServer::start();
    let s = setup(&redis).await;
    let http = support::client();
    let token = s.a.pc_login("acme", "user001").await;
    let me_b = s.b.url("me");
    assert_eq!(status(&http, &me_b, &token).await, 200);
    assert_eq!(status(&http, &s.api, &token).await, 200);

    let d =
        s.a.fake
            .push_event(
                &s.a.url("events/acme/dingtalk"),
                FakeEvent::UserLeft("user001".into()),
                None,
            )
            .await
            .unwrap();
    assert!(d.accepted(), "{:?}", d.verdict);
    eventually(Duration::from_secs(2), "refused on replica B", || async {
        status(&http, &me_b, &token).await == 401
    })
    .await;
    eventually(Duration::from_secs(2), "refused by the guard", || async {
        status(&http, &s.api, &token).await == 401
    })
    .await;
    // A session from a login after the event is accepted everywhere.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let later = s.b.pc_login("acme", "user001").await;
    assert_eq!(status(&http, &s.a.url("me"), &later).await, 200);
    assert_eq!(status(&http, &s.api, &later).await, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_event_delivered_to_both_replicas_is_applied_once() {
    let redis = RedisServer::start();
    let s = setup(&redis).await;
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis()
        .to_string();
    // The same event (same id) sent to A, then retried by the platform to B.
    let event = json!({
        "EventType": "user_leave_org", "CorpId": "dingcorp", "UserId": ["user002"],
        "TimeStamp": now_ms, "eventId": "evt-shared-1",
    })
    .to_string();
    for gw in [&s.a, &s.b] {
        let d = gw
            .fake
            .push_event(
                &gw.url("events/acme/dingtalk"),
                FakeEvent::Custom(event.clone()),
                None,
            )
            .await
            .unwrap();
        assert!(d.accepted(), "{:?}", d.verdict);
    }
    let got = s.hook.wait_for(1, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(s.hook.received().len(), 1, "applied twice");
    let body: Value = verify(&got[0]);
    assert_eq!(body["user_id"], "user002");
    assert_eq!(body["org_id"], "dingcorp");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_down_events_fail_closed() {
    let mut redis = RedisServer::start();
    let s = setup(&redis).await;
    redis.kill();
    let d =
        s.a.fake
            .push_event(
                &s.a.url("events/acme/dingtalk"),
                FakeEvent::UserLeft("user001".into()),
                None,
            )
            .await
            .unwrap();
    assert_eq!(d.status, 503, "{}", d.body);
    let body: Value = serde_json::from_str(&d.body).unwrap();
    assert_eq!(body["error"], "store_unavailable");
    assert!(s.hook.received().is_empty());
}
