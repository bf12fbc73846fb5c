//! The fakes push real, encrypted and signed events over HTTP; a receiver written here from the
//! reference (with the testkit's own crypto) checks them and answers as a correct receiver does.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use serde_json::Value;
use unilogin_testkit::events::crypto::{
    aes_key, feishu_open, feishu_signature, open_for, sorted_sha1,
};
use unilogin_testkit::events::{
    EventCredentials, EventFault, FakeEvent, OVERSIZED_EVENT_BODY, PushError,
};
use unilogin_testkit::{dingtalk, feishu, wecom};

type Params = std::collections::HashMap<String, String>;

#[derive(Clone)]
struct Rx {
    platform: &'static str,
    creds: EventCredentials,
    seen: Arc<Mutex<HashSet<String>>>,
    applied: Arc<Mutex<Vec<String>>>,
    /// Answer something a platform does not accept.
    broken: bool,
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("time")
        .as_secs()
}

fn fresh(ts_secs: u64) -> bool {
    now_secs().abs_diff(ts_secs) <= 300
}

fn refuse(why: &'static str) -> Response {
    (StatusCode::FORBIDDEN, why).into_response()
}

/// Apply once per signature (a replay is acknowledged but not applied twice).
fn apply(rx: &Rx, id: &str, plain: String) {
    if rx.seen.lock().expect("lock").insert(id.to_owned()) {
        rx.applied.lock().expect("lock").push(plain);
    }
}

async fn receive(
    State(rx): State<Rx>,
    Query(q): Query<Params>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if body.len() > OVERSIZED_EVENT_BODY {
        return (StatusCode::PAYLOAD_TOO_LARGE, "too large").into_response();
    }
    let key = rx.creds.aes_key.clone().unwrap_or_default();
    let q = |k: &str| q.get(k).cloned().unwrap_or_default();
    match rx.platform {
        "dingtalk" => {
            let key = aes_key(&key).expect("key");
            let Ok(v) = serde_json::from_slice::<Value>(&body) else {
                return refuse("json");
            };
            let enc = v["encrypt"].as_str().unwrap_or("").to_owned();
            let (ts, nonce, sig) = (q("timestamp"), q("nonce"), q("msg_signature"));
            if sorted_sha1(&[&rx.creds.token, &ts, &nonce, &enc]) != sig {
                return refuse("signature");
            }
            if !fresh(ts.parse::<u64>().unwrap_or(0) / 1000) {
                return refuse("stale");
            }
            let Ok(msg) = open_for(&key, &enc, &rx.creds.receiver_id) else {
                return refuse("decrypt");
            };
            apply(&rx, &sig, String::from_utf8_lossy(&msg).into_owned());
            if rx.broken {
                return "success".into_response();
            }
            let reply = dingtalk::success_reply(&rx.creds, &ts, &nonce).expect("reply");
            axum::Json(reply).into_response()
        }
        "feishu" => {
            let key = rx.creds.aes_key.clone().expect("encrypt key");
            let h = |k: &str| {
                headers
                    .get(k)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_owned()
            };
            let ts = h("x-lark-request-timestamp");
            if feishu_signature(&ts, &h("x-lark-request-nonce"), &key, &body)
                != h("x-lark-signature")
            {
                return refuse("signature");
            }
            if !fresh(ts.parse().unwrap_or(0)) {
                return refuse("stale");
            }
            let Ok(v) = serde_json::from_slice::<Value>(&body) else {
                return refuse("json");
            };
            let Ok(plain) = feishu_open(&key, v["encrypt"].as_str().unwrap_or("")) else {
                return refuse("decrypt");
            };
            let Ok(event) = serde_json::from_slice::<Value>(&plain) else {
                return refuse("plain json");
            };
            if event["type"] == "url_verification" {
                if event["token"] != rx.creds.token.as_str() {
                    return refuse("token");
                }
                let challenge = if rx.broken {
                    "other".into()
                } else {
                    event["challenge"].clone()
                };
                return axum::Json(serde_json::json!({"challenge": challenge})).into_response();
            }
            if event["header"]["token"] != rx.creds.token.as_str() {
                return refuse("token");
            }
            apply(
                &rx,
                event["header"]["event_id"].as_str().unwrap_or(""),
                String::from_utf8_lossy(&plain).into_owned(),
            );
            axum::Json(serde_json::json!({"msg": "success"})).into_response()
        }
        _ => {
            let key = aes_key(&key).expect("key");
            let (ts, nonce, sig) = (q("timestamp"), q("nonce"), q("msg_signature"));
            let text = String::from_utf8_lossy(&body).into_owned();
            let enc = match q("echostr") {
                e if !e.is_empty() => e,
                _ => text
                    .split("<Encrypt><![CDATA[")
                    .nth(1)
                    .and_then(|r| r.split("]]>").next())
                    .unwrap_or("")
                    .to_owned(),
            };
            if sorted_sha1(&[&rx.creds.token, &ts, &nonce, &enc]) != sig {
                return refuse("signature");
            }
            if !fresh(ts.parse().unwrap_or(0)) {
                return refuse("stale");
            }
            let Ok(msg) = open_for(&key, &enc, &rx.creds.receiver_id) else {
                return refuse("decrypt");
            };
            let msg = String::from_utf8_lossy(&msg).into_owned();
            if !q("echostr").is_empty() {
                return if rx.broken { format!("\"{msg}\"") } else { msg }.into_response();
            }
            apply(&rx, &sig, msg);
            if rx.broken { "ok" } else { "success" }.into_response()
        }
    }
}

async fn receiver(platform: &'static str, creds: EventCredentials, broken: bool) -> (String, Rx) {
    let rx = Rx {
        platform,
        creds,
        seen: Arc::default(),
        applied: Arc::default(),
        broken,
    };
    let app = Router::new()
        .route("/events/acme/{platform}", any(receive))
        .layer(axum::extract::DefaultBodyLimit::max(8 * 1024 * 1024))
        .with_state(rx.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (
        format!("http://{addr}/events/acme/{platform}?tenant=acme"),
        rx,
    )
}

/// Every fault makes a correct receiver refuse, except a replay (acknowledged twice, applied
/// once).
macro_rules! fault_matrix {
    ($fake:expr, $url:expr, $rx:expr, $event:expr, $faults:expr) => {
        for fault in $faults {
            let before = $rx.applied.lock().expect("lock").len();
            let d = $fake
                .push_event(&$url, $event, Some(fault))
                .await
                .expect("push");
            if fault == EventFault::Replay {
                assert!(d.accepted(), "{fault:?}: {:?}", d.verdict);
                let replay = d.replay.as_ref().expect("second answer");
                assert!(replay.accepted(), "{fault:?} replay: {:?}", replay.verdict);
                assert_eq!(
                    $rx.applied.lock().expect("lock").len(),
                    before + 1,
                    "applied once"
                );
            } else {
                assert!(
                    !d.accepted(),
                    "{fault:?} was accepted: {} {}",
                    d.status,
                    d.body
                );
                assert!(d.replay.is_none());
                assert_eq!(
                    $rx.applied.lock().expect("lock").len(),
                    before,
                    "{fault:?} applied"
                );
                if fault == EventFault::OversizedBody {
                    assert_eq!(d.status, 413);
                }
            }
        }
    };
}

const ALL_FAULTS: [EventFault; 6] = [
    EventFault::BadSignature,
    EventFault::StaleTimestamp,
    EventFault::Replay,
    EventFault::GarbageCiphertext,
    EventFault::OversizedBody,
    EventFault::WrongReceiver,
];

#[tokio::test]
async fn dingtalk_pushes_check_url_and_leavers() {
    let dt = dingtalk::start().await;
    let creds = dt.event_credentials();
    assert_eq!(creds.receiver_id, dingtalk::DEFAULT_APP_KEY);
    let (url, rx) = receiver("dingtalk", creds, false).await;
    let d = dt
        .push_event(&url, FakeEvent::Verification, None)
        .await
        .expect("push");
    assert!(d.accepted(), "{:?} {}", d.verdict, d.body);
    let d = dt
        .push_event(&url, FakeEvent::UserLeft("user001".into()), None)
        .await
        .expect("push");
    assert!(d.accepted() && d.event_id.is_some(), "{:?}", d.verdict);
    let applied = rx.applied.lock().expect("lock").clone();
    assert_eq!(applied[0], r#"{"EventType":"check_url"}"#);
    let left: Value = serde_json::from_str(&applied[1]).expect("json");
    assert_eq!(left["EventType"], "user_leave_org");
    assert_eq!(left["UserId"], serde_json::json!(["user001"]));
    assert_eq!(left["CorpId"], dingtalk::DEFAULT_CORP_ID);
    let d = dt
        .push_event(&url, FakeEvent::UserUpdated("user002".into()), None)
        .await
        .expect("push");
    assert!(d.accepted());
    assert!(rx.applied.lock().expect("lock")[2].contains("user_modify_org"));
    assert_eq!(
        dt.push_event(&url, FakeEvent::UserDisabled("user001".into()), None)
            .await
            .err()
            .map(|e| matches!(e, PushError::Unsupported(_))),
        Some(true)
    );
    fault_matrix!(
        dt,
        url,
        rx,
        FakeEvent::UserLeft("user001".into()),
        ALL_FAULTS
    );

    // A receiver that answers plain `success` is not acknowledged by DingTalk.
    let (bad_url, _) = receiver("dingtalk", dt.event_credentials(), true).await;
    let d = dt
        .push_event(&bad_url, FakeEvent::Verification, None)
        .await
        .expect("push");
    assert!(!d.accepted(), "{}", d.body);
    assert!(matches!(
        dt.push_event("not a url", FakeEvent::Verification, None)
            .await,
        Err(PushError::BadUrl)
    ));
}

#[tokio::test]
async fn feishu_pushes_challenge_and_contact_events() {
    let fs = feishu::start().await;
    let creds = fs.event_credentials();
    let (url, rx) = receiver("feishu", creds.clone(), false).await;
    let d = fs
        .push_event(&url, FakeEvent::Verification, None)
        .await
        .expect("push");
    assert!(d.accepted(), "{:?} {}", d.verdict, d.body);
    for (event, kind) in [
        (
            FakeEvent::UserLeft("user001".into()),
            "contact.user.deleted_v3",
        ),
        (
            FakeEvent::UserResigned("user001".into()),
            "contact.user.updated_v3",
        ),
        (
            FakeEvent::UserDisabled("user002".into()),
            "contact.user.updated_v3",
        ),
    ] {
        let d = fs.push_event(&url, event, None).await.expect("push");
        assert!(d.accepted(), "{:?}", d.verdict);
        let last: Value =
            serde_json::from_str(rx.applied.lock().expect("lock").last().expect("applied"))
                .expect("json");
        assert_eq!(last["schema"], "2.0");
        assert_eq!(last["header"]["event_type"], kind);
        assert_eq!(last["header"]["event_id"].as_str(), d.event_id.as_deref());
        assert_eq!(last["header"]["app_id"], feishu::DEFAULT_APP_ID);
    }
    let applied = rx.applied.lock().expect("lock").clone();
    let resigned: Value = serde_json::from_str(&applied[1]).expect("json");
    assert_eq!(resigned["event"]["object"]["status"]["is_resigned"], true);
    let frozen: Value = serde_json::from_str(&applied[2]).expect("json");
    assert_eq!(frozen["event"]["object"]["status"]["is_frozen"], true);
    assert_eq!(frozen["event"]["object"]["open_id"], "ou_fakeopenid0002");
    fault_matrix!(
        fs,
        url,
        rx,
        FakeEvent::UserLeft("user001".into()),
        ALL_FAULTS
    );

    let (bad_url, _) = receiver("feishu", creds, true).await;
    assert!(
        !fs.push_event(&bad_url, FakeEvent::Verification, None)
            .await
            .expect("push")
            .accepted()
    );
    fs.set_event_credentials(
        feishu::DEFAULT_APP_ID,
        EventCredentials {
            aes_key: None,
            ..fs.event_credentials()
        },
    );
    assert!(matches!(
        fs.push_event(
            &url,
            FakeEvent::Verification,
            Some(EventFault::BadSignature)
        )
        .await,
        Err(PushError::Unsupported(_))
    ));
}

#[tokio::test]
async fn wecom_pushes_echostr_and_change_contact() {
    let wc = wecom::start().await;
    let creds = wc.event_credentials();
    assert_eq!(creds.receiver_id, wecom::DEFAULT_CORP_ID);
    let (url, rx) = receiver("wecom", creds.clone(), false).await;
    let d = wc
        .push_event(&url, FakeEvent::Verification, None)
        .await
        .expect("push");
    assert!(d.accepted(), "{:?} {}", d.verdict, d.body);
    for (event, needle) in [
        (
            FakeEvent::UserLeft("user001".into()),
            "<ChangeType><![CDATA[delete_user]]></ChangeType><UserID><![CDATA[user001]]></UserID>",
        ),
        (
            FakeEvent::UserDisabled("user002".into()),
            "<Status>2</Status>",
        ),
        (
            FakeEvent::UserResigned("user002".into()),
            "<Status>5</Status>",
        ),
        (
            FakeEvent::UserUpdated("user001".into()),
            "<Name><![CDATA[Zhang San (updated)]]></Name>",
        ),
    ] {
        let d = wc.push_event(&url, event, None).await.expect("push");
        assert!(d.accepted(), "{:?}", d.verdict);
        let last = rx
            .applied
            .lock()
            .expect("lock")
            .last()
            .cloned()
            .expect("applied");
        assert!(
            last.contains(needle) && last.contains("<Event><![CDATA[change_contact]]></Event>"),
            "{last}"
        );
    }
    fault_matrix!(
        wc,
        url,
        rx,
        FakeEvent::UserLeft("user001".into()),
        ALL_FAULTS
    );
    // The verification handshake suffers the faults too.
    fault_matrix!(
        wc,
        url,
        rx,
        FakeEvent::Verification,
        [
            EventFault::BadSignature,
            EventFault::StaleTimestamp,
            EventFault::GarbageCiphertext,
            EventFault::WrongReceiver
        ]
    );

    let (bad_url, _) = receiver("wecom", creds.clone(), true).await;
    assert!(
        !wc.push_event(&bad_url, FakeEvent::Verification, None)
            .await
            .expect("push")
            .accepted(),
        "quoted echostr"
    );
    assert!(
        !wc.push_event(&bad_url, FakeEvent::UserLeft("u".into()), None)
            .await
            .expect("push")
            .accepted(),
        "`ok` is not `success`"
    );
    let reply = wecom::encrypted_reply(&creds, "<xml></xml>", "1700000000", "n").expect("reply");
    assert!(reply.contains("<MsgSignature><![CDATA["));
}

#[tokio::test]
async fn every_fake_is_an_event_source() {
    use unilogin_testkit::events::FakeEventSource;
    let (dt, fs, wc) = (
        dingtalk::start().await,
        feishu::start().await,
        wecom::start().await,
    );
    let sources: [(&'static str, &dyn FakeEventSource); 3] =
        [("dingtalk", &dt), ("feishu", &fs), ("wecom", &wc)];
    for (platform, source) in sources {
        let (url, rx) = receiver(platform, source.event_credentials(), false).await;
        for event in [
            FakeEvent::Verification,
            FakeEvent::UserLeft("user001".into()),
        ] {
            let d = source.push_event(&url, event, None).await.expect("push");
            assert!(d.accepted(), "{platform}: {:?}", d.verdict);
        }
        let bad = source
            .push_event(
                &url,
                FakeEvent::UserLeft("user001".into()),
                Some(EventFault::BadSignature),
            )
            .await
            .expect("push");
        assert_eq!(bad.status, 403, "{platform}");
        assert!(
            rx.applied
                .lock()
                .expect("lock")
                .iter()
                .any(|p| p.contains("user001")),
            "{platform}"
        );
    }
}
