//! Two gateway replicas sharing one Redis (a private `redis-server` process) sign JSAPI
//! configurations with one ticket: many concurrent `GET …/jsapi-config` requests spread over
//! both replicas make the DingTalk fake hand out the ticket once, and every answer verifies.

mod support;

use std::sync::Arc;

use serde_json::{Value, json};
use support::serve;
use unilogin_testkit::dingtalk;
use unilogin_testkit::jsapi::JsapiKind;
use unilogin_testkit::redis_server::RedisServer;

const PAGE: &str = "https://app.acme.example/h5/index?x=1";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_sharing_redis_fetch_the_ticket_once() {
    let redis = RedisServer::start();
    let fake = Arc::new(dingtalk::start().await);
    let c = fake.credentials();
    let base = fake.base_url().to_string();
    let tenant = json!({
        "tenant": "acme", "platform": "dingtalk",
        "app_key": c.app_key, "app_secret": c.app_secret,
        "corp_id": c.corp_id, "agent_id": c.agent_id,
        "hosts": { "oapi": base, "api": base, "login": base },
        "redirect_uris": ["https://app.acme.example/callback"],
    });
    let yaml = format!(
        "redis: {{url: 'redis://127.0.0.1:{}/0', prefix: 'jsapi-test:'}}",
        redis.port
    );
    let (t1, t2) = (tenant.clone(), tenant);
    let a = Arc::new(serve(&yaml, move |_| vec![t1], |b| b).await);
    let b = Arc::new(serve(&yaml, move |_| vec![t2], |b| b).await);
    let mut tasks = Vec::new();
    for i in 0..40 {
        let gw = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            let mut url = url::Url::parse(&gw.url("auth/acme/dingtalk/jsapi-config")).unwrap();
            url.query_pairs_mut().append_pair("url", PAGE);
            let r = gw.http.get(url).send().await.unwrap();
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.unwrap()
        }));
    }
    for t in tasks {
        let config = t.await.unwrap();
        fake.verify_jsapi_config(JsapiKind::Config, &config, PAGE)
            .unwrap_or_else(|e| panic!("{}: {config}", e.reason));
    }
    assert_eq!(
        fake.jsapi_ticket_fetches(&c.app_key),
        1,
        "one ticket for both replicas"
    );
}
