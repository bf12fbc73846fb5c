//! What DingTalk contact events mean for the directory (`EventCodec::changes`): leavers,
//! profile changes, both casings, typed errors, redaction.

use serde_json::{Value, json};
use unilogin_core::events::crypto::MsgCrypt;
use unilogin_core::events::{
    DirectoryChange, Event, EventCodec, EventError, EventRequest, Inbound, LeaveReason,
    PayloadFormat, PersonIds, Plaintext,
};
use unilogin_dingtalk::events::DingTalkEvents;

const TOKEN: &str = "tok_example";
const AES_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
const OWNER: &str = "dingexamplecorp";

fn codec() -> DingTalkEvents {
    DingTalkEvents::new(TOKEN, AES_KEY, OWNER).unwrap()
}

fn event(doc: Value) -> Event {
    Event {
        event_type: doc["EventType"].as_str().unwrap().to_string(),
        event_id: None,
        timestamp: None,
        format: PayloadFormat::Json,
        plaintext: Plaintext::new(doc.to_string(), doc),
    }
}

fn changes(doc: Value) -> Result<Vec<DirectoryChange>, EventError> {
    codec().changes(&event(doc))
}

fn user(id: &str, org: Option<&str>) -> PersonIds {
    PersonIds {
        user_id: Some(id.into()),
        org_id: org.map(str::to_string),
        ..PersonIds::default()
    }
}

fn left(id: &str, org: Option<&str>) -> DirectoryChange {
    DirectoryChange::Left {
        ids: user(id, org),
        reason: LeaveReason::Left,
    }
}

/// The whole path: an encrypted, signed `user_leave_org` push opens into an event whose
/// changes name every user who left.
#[test]
fn an_encrypted_user_leave_org_push_means_each_user_left() {
    let crypt = MsgCrypt::new(TOKEN, AES_KEY, OWNER).unwrap();
    let msg = r#"{"EventType":"user_leave_org","CorpId":"ding5f1c","UserId":["0146","manager4521"],"OptStaffId":"x","TimeStamp":"1645077203219"}"#;
    let encrypt = crypt.encrypt(msg.as_bytes());
    let body = json!({ "encrypt": encrypt }).to_string().into_bytes();
    let sig = crypt.signature("1700000000000", "nonce123", &encrypt);
    let req = EventRequest::new("POST", &body)
        .query("msg_signature", &sig)
        .query("timestamp", "1700000000000")
        .query("nonce", "nonce123");
    let Inbound::Event(event) = codec().open(&req).unwrap() else {
        panic!("an event")
    };
    assert_eq!(
        codec().changes(&event).unwrap(),
        [
            left("0146", Some("ding5f1c")),
            left("manager4521", Some("ding5f1c"))
        ]
    );
}

#[test]
fn both_casings_and_a_single_string_are_read() {
    // Classic callback: PascalCase, an array.
    let classic = json!({"EventType": "user_leave_org", "CorpId": "dingc", "UserId": ["0146"]});
    assert_eq!(changes(classic).unwrap(), [left("0146", Some("dingc"))]);
    // Event subscription 2.0 pushes seen with camelCase fields.
    let camel = json!({
        "EventType": "user_leave_org", "corpId": "dingc", "userId": ["0146"],
        "timeStamp": "1645077203219", "eventId": "e1",
    });
    assert_eq!(changes(camel).unwrap(), [left("0146", Some("dingc"))]);
    // One id as a string, a numeric id, no corp id.
    let single = json!({"EventType": "user_leave_org", "UserId": "0146"});
    assert_eq!(changes(single).unwrap(), [left("0146", None)]);
    let numeric = json!({"EventType": "user_leave_org", "UserId": [1234]});
    assert_eq!(changes(numeric).unwrap(), [left("1234", None)]);
}

#[test]
fn modifications_joins_and_activations_are_profile_changes() {
    for kind in ["user_modify_org", "user_add_org", "user_active_org"] {
        let doc = json!({"EventType": kind, "CorpId": "dingc", "UserId": ["a", "b"]});
        assert_eq!(
            changes(doc).unwrap(),
            [
                DirectoryChange::Updated {
                    ids: user("a", Some("dingc"))
                },
                DirectoryChange::Updated {
                    ids: user("b", Some("dingc"))
                },
            ],
            "{kind}"
        );
    }
}

#[test]
fn other_events_change_nothing() {
    for kind in [
        "org_dept_create",
        "org_dept_remove",
        "org_admin_add",
        "label_user_change",
        "suite_ticket",
        "org_remove",
    ] {
        let doc = json!({"EventType": kind, "CorpId": "dingc", "UserId": ["0146"]});
        assert_eq!(changes(doc).unwrap(), [], "{kind}");
    }
}

#[test]
fn a_lifecycle_event_without_user_ids_is_a_missing_field() {
    let missing = EventError::MissingField { name: "UserId" };
    for doc in [
        json!({"EventType": "user_leave_org", "CorpId": "dingc"}),
        json!({"EventType": "user_leave_org", "UserId": []}),
        json!({"EventType": "user_leave_org", "UserId": [""]}),
        json!({"EventType": "user_leave_org", "UserId": [null, {"x": 1}]}),
        json!({"EventType": "user_modify_org", "UserId": ""}),
        json!({"EventType": "user_modify_org", "UserId": true}),
    ] {
        assert_eq!(changes(doc.clone()), Err(missing.clone()), "{doc}");
    }
    assert_eq!(missing.kind(), "missing_field");
}

#[test]
fn ids_never_reach_debug() {
    let doc = json!({"EventType": "user_leave_org", "CorpId": "dingsecretcorp", "UserId": ["secretuser42"]});
    let out = format!("{:?}", changes(doc).unwrap());
    assert!(out.contains("Left"), "{out}");
    assert!(
        !out.contains("secretuser42") && !out.contains("dingsecretcorp"),
        "{out}"
    );
}
