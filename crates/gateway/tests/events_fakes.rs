//! Every platform's fake pushes real events to the gateway's receiver (test kit
//! `push_event`): its URL verification, "user left" (replayed: applied once), "user disabled",
//! "user updated", and each fault refused with its status — the same expectations for
//! DingTalk, Feishu and WeCom.

mod events_support;
mod support;

use std::sync::Arc;
use std::time::Duration;

use events_support::{Hook, eventually, verify};
use serde_json::{Value, json};
use unilogin_axum::session::{MemoryRevocationList, RevocationList};
use unilogin_testkit::events::{Delivery, EventFault, FakeEvent, PushError};
use unilogin_testkit::{dingtalk, feishu, wecom};

enum Fake {
    DingTalk(dingtalk::FakeDingTalk),
    Feishu(feishu::FakeFeishu),
    WeCom(wecom::FakeWeCom),
}

impl Fake {
    fn name(&self) -> &'static str {
        match self {
            Fake::DingTalk(_) => "dingtalk",
            Fake::Feishu(_) => "feishu",
            Fake::WeCom(_) => "wecom",
        }
    }

    /// The tenant entry `acme` of this platform, with the fake's event subscription.
    fn tenant(&self) -> Value {
        let (creds, ev) = match self {
            Fake::DingTalk(f) => (f.credentials(), f.event_credentials()),
            Fake::Feishu(f) => (f.credentials(), f.event_credentials()),
            Fake::WeCom(f) => (f.credentials(), f.event_credentials()),
        };
        let mut entry = json!({
            "tenant": "acme", "platform": self.name(),
            "app_key": creds.app_key, "app_secret": creds.app_secret, "corp_id": creds.corp_id,
            "events": { "token": ev.token, "key": ev.aes_key },
        });
        if let Fake::WeCom(_) = self {
            entry["agent_id"] = json!(creds.agent_id);
        }
        entry
    }

    async fn push(
        &self,
        url: &str,
        event: FakeEvent,
        fault: Option<EventFault>,
    ) -> Result<Delivery, PushError> {
        match self {
            Fake::DingTalk(f) => f.push_event(url, event, fault).await,
            Fake::Feishu(f) => f.push_event(url, event, fault).await,
            Fake::WeCom(f) => f.push_event(url, event, fault).await,
        }
    }
}

async fn exercise(fake: Fake) {
    let p = fake.name();
    let list = Arc::new(MemoryRevocationList::new());
    let shared: Arc<dyn RevocationList> = list.clone();
    let hook = Hook::start(&[]).await;
    let entry = fake.tenant();
    let gw = support::serve(
        &hook.yaml(),
        move |_| vec![entry],
        move |b| b.revocation_list(shared),
    )
    .await;
    let url = gw.url(&format!("events/acme/{p}"));

    let d = fake
        .push(&url, FakeEvent::Verification, None)
        .await
        .unwrap();
    assert!(d.accepted(), "{p} verification: {:?} {}", d.verdict, d.body);

    let d = fake
        .push(
            &url,
            FakeEvent::UserLeft("user001".into()),
            Some(EventFault::Replay),
        )
        .await
        .unwrap();
    assert!(d.accepted(), "{p} left: {:?} {}", d.verdict, d.body);
    let replay = d.replay.expect("the replay's answer");
    assert!(replay.accepted(), "{p} replay: {:?}", replay.verdict);
    let subject = format!("acme:{p}:user001");
    eventually(Duration::from_secs(2), "the leaver revoked", || async {
        list.subject_revoked_before(&subject).is_some()
    })
    .await;
    let got = hook.wait_for(1, Duration::from_secs(5)).await;
    let notice = verify(&got[0]);
    assert_eq!(
        (notice["type"].as_str(), notice["user_id"].as_str()),
        (Some("user.left"), Some("user001")),
        "{p}: {notice}"
    );

    let mut expected = vec!["user.left"];
    match fake
        .push(&url, FakeEvent::UserDisabled("user002".into()), None)
        .await
    {
        Ok(d) => {
            assert!(d.accepted(), "{p} disabled: {:?}", d.verdict);
            expected.push("user.disabled");
        }
        // DingTalk has no such event.
        Err(PushError::Unsupported(_)) => assert_eq!(p, "dingtalk"),
        Err(e) => panic!("{p}: {e}"),
    }
    let d = fake
        .push(&url, FakeEvent::UserUpdated("user003".into()), None)
        .await
        .unwrap();
    assert!(d.accepted(), "{p} updated: {:?}", d.verdict);
    expected.push("user.updated");
    let got = hook.wait_for(expected.len(), Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut types: Vec<String> = hook
        .received()
        .iter()
        .map(|r| verify(r)["type"].as_str().unwrap().to_string())
        .collect();
    types.sort();
    expected.sort();
    assert_eq!(
        types,
        expected,
        "{p}: one notice per change ({} got)",
        got.len()
    );
    // Updates revoke nothing.
    assert!(
        list.subject_revoked_before(&format!("acme:{p}:user003"))
            .is_none()
    );

    for (fault, status) in [
        (EventFault::BadSignature, 401),
        (EventFault::StaleTimestamp, 401),
        (EventFault::GarbageCiphertext, 400),
        (EventFault::WrongReceiver, 401),
        (EventFault::OversizedBody, 413),
    ] {
        let d = fake
            .push(&url, FakeEvent::UserLeft("user004".into()), Some(fault))
            .await
            .unwrap();
        assert_eq!(d.status, status, "{p} {fault:?}: {}", d.body);
    }
    assert!(
        list.subject_revoked_before(&format!("acme:{p}:user004"))
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dingtalk_fake_events() {
    exercise(Fake::DingTalk(dingtalk::start().await)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn feishu_fake_events() {
    exercise(Fake::Feishu(feishu::start().await)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wecom_fake_events() {
    exercise(Fake::WeCom(wecom::start().await)).await;
}
