//! The platform event receiver over real HTTP (`POST /events/{tenant}/{platform}`): each
//! platform's handshake, a "user left" that revokes the person's session while a later session
//! works, replays acknowledged but applied once, every refusal with its status, the queue and
//! store failures answering 503, the signed webhook with its retries and delivery log, and no
//! decrypted byte in the log. DingTalk pushes come from the test kit's fake; Feishu and WeCom
//! requests are sealed with the test kit's independent platform crypto.

mod events_support;
mod support;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use events_support::{Hook, dingtalk_tenant, eventually, verify};
use serde_json::{Value, json};
use support::log_capture;
use support::{serve, tenant};
use unilogin_axum::session::{Claims, MemoryRevocationList, RevocationList, Unreachable};
use unilogin_gateway::events::EventDedupe;
use unilogin_testkit::dingtalk::{self, FakeDingTalk};
use unilogin_testkit::events::crypto;
use unilogin_testkit::events::{EventFault, FakeEvent};

/// A gateway over `fake` with tenant `acme` (events on) and `demo` (events off).
async fn gateway(
    fake: &Arc<FakeDingTalk>,
    yaml: &str,
    configure: impl FnOnce(unilogin_gateway::GatewayBuilder) -> unilogin_gateway::GatewayBuilder,
) -> support::Served {
    let f = fake.clone();
    serve(
        yaml,
        move |public| {
            vec![
                dingtalk_tenant(&f, "acme", public.as_str()),
                tenant(&f, "demo", true, public.as_str()),
            ]
        },
        configure,
    )
    .await
}

/// A complete PC login at `gw` for `user` of `tenant` (the fake's authorize → approve →
/// callback); the session token.
async fn login(gw: &support::Served, fake: &Arc<FakeDingTalk>, tenant: &str, user: &str) -> String {
    let t = support::TestGateway::adopt(gw, fake.clone());
    t.pc_login(tenant, user).await
}

async fn me(gw: &support::Served, token: &str) -> u16 {
    gw.http
        .get(gw.url("me"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dingtalk_leaver_loses_the_session_and_the_app_is_told_once() {
    let fake = Arc::new(dingtalk::start().await);
    let hook = Hook::start(&[]).await;
    let gw = gateway(&fake, &hook.yaml(), |b| b).await;
    let url = gw.url("events/acme/dingtalk");

    // The console's URL check.
    let check = fake
        .push_event(&url, FakeEvent::Verification, None)
        .await
        .unwrap();
    assert!(check.accepted(), "{:?}", check.verdict);

    let token = login(&gw, &fake, "acme", "user001").await;
    let other = login(&gw, &fake, "acme", "user002").await;
    assert_eq!(me(&gw, &token).await, 200);

    // user001 leaves; the push is replayed (the platform retried): acknowledged twice.
    let left = fake
        .push_event(
            &url,
            FakeEvent::UserLeft("user001".into()),
            Some(EventFault::Replay),
        )
        .await
        .unwrap();
    assert!(left.accepted(), "{:?}", left.verdict);
    let replay = left.replay.as_ref().expect("the replay's answer");
    assert!(replay.accepted(), "{:?}", replay.verdict);

    eventually(
        Duration::from_secs(2),
        "the leaver's session refused",
        || async { me(&gw, &token).await == 401 },
    )
    .await;
    // Another person's session is untouched.
    assert_eq!(me(&gw, &other).await, 200);

    // Applied once: one notice, signed, with the ids and nothing else.
    let got = hook.wait_for(1, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(hook.received().len(), 1, "the replay was applied again");
    let body = verify(&got[0]);
    assert_eq!(body["type"], "user.left");
    assert_eq!(body["tenant"], "acme");
    assert_eq!(body["platform"], "dingtalk");
    assert_eq!(body["user_id"], "user001");
    assert!(body["occurred_at"].as_str().unwrap().ends_with('Z'));
    let keys: Vec<&String> = body.as_object().unwrap().keys().collect();
    for k in &keys {
        assert!(
            [
                "type",
                "tenant",
                "platform",
                "user_id",
                "union_id",
                "open_id",
                "org_id",
                "occurred_at"
            ]
            .contains(&k.as_str()),
            "unexpected field {k} in {body}"
        );
    }
    assert!(
        got[0].headers["webhook-id"]
            .to_str()
            .unwrap()
            .starts_with("msg_")
    );

    // A session issued after the event works ("issued before" is whole seconds).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let later = login(&gw, &fake, "acme", "user001").await;
    assert_eq!(me(&gw, &later).await, 200);

    // The metrics count it.
    let text = gw.gateway.metrics().render().unwrap();
    assert!(
        text.contains(r#"unilogin_events_total{platform="dingtalk",outcome="replay"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"unilogin_webhook_deliveries_total{outcome="delivered"} 1"#),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_pushes_are_refused_with_their_status() {
    let fake = Arc::new(dingtalk::start().await);
    let gw = gateway(&fake, "", |b| b).await;
    let url = gw.url("events/acme/dingtalk");
    for (fault, status) in [
        (EventFault::BadSignature, 401),
        (EventFault::StaleTimestamp, 401),
        (EventFault::GarbageCiphertext, 400),
        (EventFault::WrongReceiver, 401),
        (EventFault::OversizedBody, 413),
    ] {
        let d = fake
            .push_event(&url, FakeEvent::UserLeft("user001".into()), Some(fault))
            .await
            .unwrap();
        assert_eq!(d.status, status, "{fault:?}: {}", d.body);
        assert!(!d.accepted(), "{fault:?}");
    }
    let d = fake
        .push_event(
            &url,
            FakeEvent::UserLeft("user001".into()),
            Some(EventFault::StaleTimestamp),
        )
        .await
        .unwrap();
    let body: Value = serde_json::from_str(&d.body).unwrap();
    assert_eq!(body["error"], "stale_timestamp", "{body}");
    // Nothing was applied.
    let text = gw.gateway.metrics().render().unwrap();
    assert!(!text.contains(r#"outcome="accepted""#), "{text}");

    // Unknown tenant, unknown platform, a tenant without `events`: the same 404.
    for path in [
        "events/nope/dingtalk",
        "events/acme/nosuch",
        "events/demo/dingtalk",
    ] {
        let r = gw.http.post(gw.url(path)).body("{}").send().await.unwrap();
        assert_eq!(r.status(), 404, "{path}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], "not_found");
    }
}

/// A revocation list whose subject revocations wait for a go-ahead (a slow shared store).
struct Gated {
    inner: MemoryRevocationList,
    gate: tokio::sync::Semaphore,
}

#[async_trait]
impl RevocationList for Gated {
    async fn revoke(&self, jti: &str, until: SystemTime) {
        self.inner.revoke(jti, until).await;
    }
    async fn is_revoked(&self, jti: &str) -> bool {
        self.inner.is_revoked(jti).await
    }
    async fn revoke_subject(
        &self,
        subject: &str,
        before: SystemTime,
        until: SystemTime,
    ) -> Result<(), Unreachable> {
        self.gate.acquire().await.unwrap().forget();
        self.inner.revoke_subject(subject, before, until).await
    }
    async fn check_claims(&self, claims: &Claims) -> Result<bool, Unreachable> {
        self.inner.check_claims(claims).await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_answers_503_and_the_retry_is_applied() {
    let fake = Arc::new(dingtalk::start().await);
    let list = Arc::new(Gated {
        inner: MemoryRevocationList::new(),
        gate: tokio::sync::Semaphore::new(0),
    });
    let shared: Arc<dyn RevocationList> = list.clone();
    let gw = gateway(&fake, "events: {queue_capacity: 1, workers: 1}", move |b| {
        b.revocation_list(shared)
    })
    .await;
    let url = gw.url("events/acme/dingtalk");
    let push = |user: &str| {
        let (fake, url, user) = (fake.clone(), url.clone(), user.to_string());
        async move {
            fake.push_event(&url, FakeEvent::UserLeft(user), None)
                .await
                .unwrap()
        }
    };
    // The worker takes the first and waits on the store; the second waits in the queue.
    assert!(push("user001").await.accepted());
    eventually(
        Duration::from_secs(2),
        "the worker took the first",
        || async { gw.gateway.events_queued() == 0 },
    )
    .await;
    assert!(push("user002").await.accepted());
    let full = push("user003").await;
    assert_eq!(full.status, 503, "{}", full.body);
    let body: Value = serde_json::from_str(&full.body).unwrap();
    assert_eq!(body["error"], "queue_full");
    // Nothing was recorded for the refused one: once there is room, its retry is applied.
    list.gate.add_permits(100);
    eventually(Duration::from_secs(2), "the queue drained", || async {
        gw.gateway.events_queued() == 0
    })
    .await;
    assert!(push("user003").await.accepted());
    eventually(Duration::from_secs(2), "user003 revoked", || async {
        list.inner
            .subject_revoked_before("acme:dingtalk:user003")
            .is_some()
    })
    .await;
}

#[derive(Debug)]
struct Unreachable503;

#[async_trait]
impl EventDedupe for Unreachable503 {
    async fn first_seen(&self, _: &str, _: Duration) -> unilogin::Result<bool> {
        Err(unilogin::Error::Store {
            store: "test",
            operation: "record event id",
            message: "down".into(),
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_dedupe_store_fails_closed_with_503() {
    let fake = Arc::new(dingtalk::start().await);
    let list = Arc::new(MemoryRevocationList::new());
    let shared: Arc<dyn RevocationList> = list.clone();
    let gw = gateway(&fake, "", move |b| {
        b.event_dedupe(Arc::new(Unreachable503))
            .revocation_list(shared)
    })
    .await;
    let d = fake
        .push_event(
            &gw.url("events/acme/dingtalk"),
            FakeEvent::UserLeft("user001".into()),
            None,
        )
        .await
        .unwrap();
    assert_eq!(d.status, 503, "{}", d.body);
    let body: Value = serde_json::from_str(&d.body).unwrap();
    assert_eq!(body["error"], "store_unavailable");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        list.subject_revoked_before("acme:dingtalk:user001")
            .is_none()
    );
    // A handshake needs no store.
    let check = fake
        .push_event(
            &gw.url("events/acme/dingtalk"),
            FakeEvent::Verification,
            None,
        )
        .await
        .unwrap();
    assert!(check.accepted(), "{:?}", check.verdict);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_is_retried_after_a_500_and_logged() {
    let fake = Arc::new(dingtalk::start().await);
    let hook = Hook::start(&[500, 503]).await;
    let ops_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let yaml = format!("{}\nops: {{listen: '127.0.0.1:{ops_port}'}}", hook.yaml());
    let gw = gateway(&fake, &yaml, |b| b).await;
    let d = fake
        .push_event(
            &gw.url("events/acme/dingtalk"),
            FakeEvent::UserUpdated("user002".into()),
            None,
        )
        .await
        .unwrap();
    assert!(d.accepted(), "{:?}", d.verdict);
    let got = hook.wait_for(3, Duration::from_secs(5)).await;
    // Every attempt carries the same id, each correctly signed.
    let ids: Vec<_> = got
        .iter()
        .map(|r| r.headers["webhook-id"].clone())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] == w[1]), "{ids:?}");
    for r in &got {
        assert_eq!(verify(r)["type"], "user.updated");
    }
    eventually(Duration::from_secs(2), "the delivery logged", || async {
        gw.gateway.webhook().deliveries().len() == 3
    })
    .await;
    let log = gw.gateway.webhook().deliveries();
    let summary: Vec<_> = log
        .iter()
        .map(|a| (a.attempt, a.status, a.outcome))
        .collect();
    assert_eq!(
        summary,
        [
            (1, Some(500), "retrying"),
            (2, Some(503), "retrying"),
            (3, Some(200), "delivered")
        ]
    );
    // The same log on the operations listener.
    let r = gw
        .http
        .get(format!("http://127.0.0.1:{ops_port}/webhook/deliveries"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["items"].as_array().unwrap().len(), 3, "{body}");
    assert_eq!(body["items"][2]["outcome"], "delivered");
    assert_eq!(body["items"][0]["type"], "user.updated");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_4xx_is_final_and_other_failures_give_up_after_max_attempts() {
    let fake = Arc::new(dingtalk::start().await);
    let hook = Hook::start(&[400, 500, 500]).await;
    let yaml = hook
        .yaml()
        .replace("timeout_ms: 2000", "timeout_ms: 2000, max_attempts: 2");
    let gw = gateway(&fake, &yaml, |b| b).await;
    let url = gw.url("events/acme/dingtalk");
    for user in ["user001", "user002"] {
        assert!(
            fake.push_event(&url, FakeEvent::UserUpdated(user.into()), None)
                .await
                .unwrap()
                .accepted()
        );
        hook.wait_for(
            if user == "user001" { 1 } else { 3 },
            Duration::from_secs(5),
        )
        .await;
    }
    eventually(Duration::from_secs(2), "three attempts logged", || async {
        gw.gateway.webhook().deliveries().len() == 3
    })
    .await;
    let outcomes: Vec<_> = gw
        .gateway
        .webhook()
        .deliveries()
        .iter()
        .map(|a| (a.status, a.outcome))
        .collect();
    assert_eq!(
        outcomes,
        [
            (Some(400), "failed"),
            (Some(500), "retrying"),
            (Some(500), "failed")
        ]
    );
    let text = gw.gateway.metrics().render().unwrap();
    assert!(
        text.contains(r#"unilogin_webhook_deliveries_total{outcome="failed"} 2"#),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nothing_decrypted_or_secret_is_logged() {
    let logs = log_capture();
    let fake = Arc::new(dingtalk::start().await);
    let hook = Hook::start(&[500]).await;
    let gw = gateway(&fake, &hook.yaml(), |b| b).await;
    let url = gw.url("events/acme/dingtalk");
    let marker = "DECRYPTED-MARKER-7f3a";
    let custom = json!({
        "EventType": "user_leave_org", "CorpId": marker, "UserId": [format!("{marker}-user")],
        "TimeStamp": (SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis()).to_string(),
        "eventId": format!("{marker}-id"),
    });
    let d = fake
        .push_event(&url, FakeEvent::Custom(custom.to_string()), None)
        .await
        .unwrap();
    assert!(d.accepted(), "{:?}", d.verdict);
    for fault in [EventFault::BadSignature, EventFault::GarbageCiphertext] {
        let _ = fake
            .push_event(&url, FakeEvent::UserLeft(marker.into()), Some(fault))
            .await
            .unwrap();
    }
    hook.wait_for(2, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let text = String::from_utf8_lossy(&logs.lock().unwrap()).to_string();
    assert!(text.contains("event accepted"), "the capture works: {text}");
    let creds = fake.event_credentials();
    for secret in [
        marker,
        creds.token.as_str(),
        creds.aes_key.as_deref().unwrap(),
        events_support::WEBHOOK_SECRET,
    ] {
        assert!(!text.contains(secret), "{secret} logged:\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_is_rate_limited_per_client() {
    let fake = Arc::new(dingtalk::start().await);
    let yaml = "rate_limits: {events_per_client: {per_minute: 60, burst: 2}}";
    let gw = gateway(&fake, yaml, |b| b).await;
    let url = gw.url("events/acme/dingtalk");
    let mut statuses = Vec::new();
    for _ in 0..3 {
        let d = fake
            .push_event(&url, FakeEvent::Verification, None)
            .await
            .unwrap();
        statuses.push(d.status);
    }
    assert_eq!(statuses, [200, 200, 429]);
}

// ---- WeCom and Feishu, sealed with the test kit's platform-side crypto ----

const WECOM_TOKEN: &str = "wecom_event_token";
const WECOM_AES: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
const FEISHU_TOKEN: &str = "feishu_verification_token";
const FEISHU_KEY: &str = "feishu encrypt key";

fn unix_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A gateway with the documented WeCom and Feishu tenants, events on, and `list` shared.
async fn wecom_feishu(list: Arc<MemoryRevocationList>, yaml: &str) -> (support::Served, String) {
    let corp = "wwexamplecorp".to_string();
    let wecom = json!({
        "tenant": "acme", "platform": "wecom", "app_key": corp, "corp_id": corp,
        "agent_id": "1000002", "app_secret": "wecom-app-secret",
        "events": { "token": WECOM_TOKEN, "key": WECOM_AES },
    });
    let feishu = json!({
        "tenant": "acme", "platform": "feishu", "app_key": "cli_x", "app_secret": "feishu-secret", "corp_id": "tk",
        "events": { "token": FEISHU_TOKEN, "key": FEISHU_KEY },
    });
    let shared: Arc<dyn RevocationList> = list;
    let gw = serve(
        yaml,
        move |_| vec![wecom, feishu],
        move |b| b.revocation_list(shared),
    )
    .await;
    (gw, corp)
}

fn wecom_query(encrypt: &str, ts: u64) -> Vec<(String, String)> {
    let nonce = "n0nce42";
    let ts = ts.to_string();
    let sig = crypto::sorted_sha1(&[WECOM_TOKEN, &ts, nonce, encrypt]);
    vec![
        ("msg_signature".into(), sig),
        ("timestamp".into(), ts),
        ("nonce".into(), nonce.into()),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wecom_url_check_and_leaver() {
    let list = Arc::new(MemoryRevocationList::new());
    let hook = Hook::start(&[]).await;
    let (gw, corp) = wecom_feishu(list.clone(), &hook.yaml()).await;
    let key = crypto::aes_key(WECOM_AES).unwrap();
    let url = gw.url("events/acme/wecom");

    // GET verification: answer the decrypted echostr, exactly.
    let echostr = crypto::seal(&key, b"0123456789012345", b"echo-1234567", &corp);
    let mut q = wecom_query(&echostr, unix_secs());
    q.push(("echostr".into(), echostr));
    let r = gw.http.get(&url).query(&q).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "echo-1234567");

    // POST change_contact / delete_user.
    let xml = format!(
        "<xml><ToUserName><![CDATA[{corp}]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>\
         <CreateTime>{}</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[change_contact]]></Event>\
         <ChangeType><![CDATA[delete_user]]></ChangeType><UserID><![CDATA[zhangsan]]></UserID></xml>",
        unix_secs()
    );
    let encrypt = crypto::seal(&key, b"abcdefghijklmnop", xml.as_bytes(), &corp);
    let body = format!(
        "<xml><ToUserName><![CDATA[{corp}]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt><AgentID><![CDATA[1000002]]></AgentID></xml>"
    );
    let post = |body: String, ts: u64| {
        let q = wecom_query(&encrypt, ts);
        gw.http.post(&url).query(&q).body(body).send()
    };
    let r = post(body.clone(), unix_secs()).await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "success");
    eventually(Duration::from_secs(2), "zhangsan revoked", || async {
        list.subject_revoked_before("acme:wecom:zhangsan").is_some()
    })
    .await;
    let got = hook.wait_for(1, Duration::from_secs(5)).await;
    assert_eq!(verify(&got[0])["type"], "user.left");
    // The same event again (no event id: de-duplicated on the plaintext's digest).
    let r = post(body.clone(), unix_secs()).await.unwrap();
    assert_eq!(r.status(), 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(hook.received().len(), 1);
    // A stale signed timestamp, and a wrong signature.
    let r = post(body.clone(), unix_secs() - 3600).await.unwrap();
    assert_eq!(r.status(), 401);
    let r = gw
        .http
        .post(&url)
        .query(&[
            ("msg_signature", "00"),
            ("timestamp", &unix_secs().to_string()),
            ("nonce", "n"),
        ])
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feishu_challenge_and_leaver() {
    let list = Arc::new(MemoryRevocationList::new());
    let hook = Hook::start(&[]).await;
    let (gw, _) = wecom_feishu(list.clone(), &hook.yaml()).await;
    let url = gw.url("events/acme/feishu");
    let send = |plain: Value, ts: u64, sign: bool| {
        let encrypt = crypto::feishu_seal(FEISHU_KEY, &[7u8; 16], plain.to_string().as_bytes());
        let body = json!({ "encrypt": encrypt }).to_string();
        let ts = ts.to_string();
        let mut sig = crypto::feishu_signature(&ts, "nonce9", FEISHU_KEY, body.as_bytes());
        if !sign {
            sig = "0".repeat(64);
        }
        gw.http
            .post(&url)
            .header("content-type", "application/json")
            .header("X-Lark-Request-Timestamp", ts)
            .header("X-Lark-Request-Nonce", "nonce9")
            .header("X-Lark-Signature", sig)
            .body(body)
            .send()
    };
    let r = send(
        json!({"challenge": "ch-42", "token": FEISHU_TOKEN, "type": "url_verification"}),
        unix_secs(),
        true,
    )
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["challenge"], "ch-42");

    let deleted = json!({
        "schema": "2.0",
        "header": {"event_id": "ev-1", "event_type": "contact.user.deleted_v3",
            "create_time": (unix_secs() * 1000).to_string(), "token": FEISHU_TOKEN,
            "app_id": "cli_x", "tenant_key": "tk"},
        "event": {"object": {"open_id": "ou_1", "union_id": "on_1", "user_id": "u_1"},
            "old_object": {"open_id": "ou_1", "department_ids": []}}
    });
    let r = send(deleted.clone(), unix_secs(), true).await.unwrap();
    assert_eq!(r.status(), 200);
    for id in ["u_1", "on_1", "ou_1"] {
        let key = format!("acme:feishu:{id}");
        eventually(Duration::from_secs(2), "feishu ids revoked", || async {
            list.subject_revoked_before(&key).is_some()
        })
        .await;
    }
    let got = hook.wait_for(1, Duration::from_secs(5)).await;
    let notice = verify(&got[0]);
    assert_eq!(
        (notice["user_id"].as_str(), notice["open_id"].as_str()),
        (Some("u_1"), Some("ou_1"))
    );
    // Replayed (same event id) → acknowledged, not applied; bad signature → 401.
    let r = send(deleted.clone(), unix_secs(), true).await.unwrap();
    assert_eq!(r.status(), 200);
    let r = send(deleted, unix_secs(), false).await.unwrap();
    assert_eq!(r.status(), 401);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(hook.received().len(), 1);
}
