//! Two gateway instances sharing one Redis (a private `redis-server` process) behave as one
//! service behind a load balancer: a login started on one finishes on the other, a state is
//! consumed once across both, a logout on one revokes the token on the other, and the app
//! token is fetched from the platform once for both.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use support::{assert_error, cookie_value, start_with};
use unilogin_axum::session::SessionKeys;
use unilogin_testkit::FakePlatform as _;
use unilogin_testkit::dingtalk::{self, endpoints};
use unilogin_testkit::redis_server::RedisServer;
use url::Url;

/// Two replicas over one Redis and one DingTalk fake, signing with the same key, sharing the
/// public URL of the first.
async fn replicas(redis: &RedisServer) -> (support::TestGateway, support::TestGateway) {
    let fake = Arc::new(dingtalk::start().await);
    let keys = SessionKeys::generate().unwrap();
    let yaml = format!("redis: {{url: '{}', prefix: 'gwtest:'}}", redis.url());
    let k = keys.clone();
    let a = start_with(&yaml, Some(fake.clone()), move |b| b.session_keys(k)).await;
    let yaml_b = format!("{yaml}\npublic_url: '{}'", a.base);
    let b = start_with(&yaml_b, Some(fake), move |b| b.session_keys(keys)).await;
    (a, b)
}

fn on(gw: &support::TestGateway, url: &Url) -> Url {
    let mut moved = url.clone();
    moved.set_port(gw.base.port()).unwrap();
    moved
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_started_on_one_replica_finishes_on_the_other() {
    let redis = RedisServer::start();
    let (a, b) = replicas(&redis).await;

    let started = a.start_login("demo", None).await;
    let cb = a.approve(&started, "user001").await;
    // The load balancer sends the callback to replica B.
    let resp = b.callback(&on(&b, &cb), Some(&started.binding)).await;
    assert_eq!(resp.status(), 303, "{:?}", resp.text().await);
    assert_eq!(resp.headers()["location"], a.base.as_str());
    let token = cookie_value(&resp, "unilogin_session").unwrap();
    // Replaying it on A: consumed once across replicas.
    let resp = a.callback(&cb, Some(&started.binding)).await;
    assert_error(resp, 400, "state", "already used").await;
    // Both replicas accept the session.
    assert_eq!(a.me(&token).await.status(), 200);
    assert_eq!(b.me(&token).await.status(), 200);

    // An H5 login on A after the web login on B: the app token came from Redis.
    let code = a.fake.issue_h5_code("user002");
    assert_eq!(a.post_code("demo", &code).await.status(), 200);
    assert_eq!(
        a.fake.calls(endpoints::GETTOKEN) + a.fake.calls(endpoints::OAUTH2_ACCESS_TOKEN),
        1,
        "one upstream app-token request for both replicas"
    );

    // Logout on B revokes the token on A too.
    let r = b
        .http
        .post(b.url("logout"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = a.me(&token).await;
    assert_error(r, 401, "unauthenticated", "invalid").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_callbacks_with_one_state_succeed_once() {
    let redis = RedisServer::start();
    let (a, b) = replicas(&redis).await;
    let started = a.start_login("demo", None).await;
    let cb = a.approve(&started, "user001").await;
    let cb_b = on(&b, &cb);
    let (ra, rb) = tokio::join!(
        a.callback(&cb, Some(&started.binding)),
        b.callback(&cb_b, Some(&started.binding)),
    );
    let mut statuses = [ra.status().as_u16(), rb.status().as_u16()];
    statuses.sort_unstable();
    assert_eq!(statuses, [303, 400]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_makes_the_replica_unready_and_fails_closed() {
    let mut redis = RedisServer::start();
    let (a, _b) = replicas(&redis).await;
    let token = a.pc_login("demo", "user001").await;
    let r = a.http.get(a.url("readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    redis.kill();
    let r = a.http.get(a.url("readyz")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["status"], "not_ready");
    // No pending login can be stored: 503, not a login without state.
    let r = a
        .http
        .get(a.login_url("demo", a.base.as_str()))
        .send()
        .await
        .unwrap();
    assert_error(r, 503, "store_unavailable", "unavailable").await;
    // The deny-list cannot be read: sessions are refused rather than trusted — as "try again"
    // (503), not as "signed out" (401).
    let r = a.me(&token).await;
    assert_eq!(r.headers()["retry-after"], "1");
    assert_error(r, 503, "store_unavailable", "try again").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocations_survive_a_redis_outage() {
    let mut redis = RedisServer::start();
    let (a, b) = replicas(&redis).await;
    let token = a.pc_login("demo", "user001").await;
    assert_eq!(b.me(&token).await.status(), 200);
    redis.kill();
    // Logout during the outage: in force here at once, queued for the others, and said so.
    let r = a
        .http
        .post(a.url("logout"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    let cleared = r.headers().get_all("set-cookie").iter().count();
    assert_error(r, 503, "store_unavailable", "queued").await;
    assert_eq!(cleared, 1, "the session cookie is cleared");
    assert_eq!(a.me(&token).await.status(), 401, "revoked on this replica");
    assert_eq!(
        b.me(&token).await.status(),
        503,
        "the other replica cannot tell: fails closed"
    );
    // Redis is back (empty: no persistence in this test): the queue is replayed.
    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let s = b.me(&token).await.status();
        if s == 401 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the queued revocation never reached Redis ({s})"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // And it is durable there: a fresh replica refuses the token too.
    let (c, _) = replicas(&redis).await;
    assert_eq!(c.me(&token).await.status(), 401);
}
