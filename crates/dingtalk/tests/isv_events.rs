//! What DingTalk store-app pushes mean (`EventCodec::store_app_changes`): the reference's
//! `SYNC_HTTP_PUSH_HIGH` shapes (biz_data parsed twice) and the old suite-callback format,
//! typed errors, redaction.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use unilogin_core::events::crypto::MsgCrypt;
use unilogin_core::events::{
    Event, EventCodec, EventError, EventRequest, Inbound, PayloadFormat, Plaintext, StoreAppChange,
};
use unilogin_dingtalk::events::{DingTalkEvents, store_app_changes};

const TOKEN: &str = "tok_example";
const AES_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
const SUITE: &str = "suiteexample01";

fn codec() -> DingTalkEvents {
    DingTalkEvents::new(TOKEN, AES_KEY, SUITE).unwrap()
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

fn changes(doc: Value) -> Result<Vec<StoreAppChange>, EventError> {
    codec().store_app_changes(&event(doc))
}

/// One `bizData` item as in the reference (`biz_data` a JSON string).
fn sync(biz_type: u64, corp: &str, data: Value) -> Value {
    json!({"EventType": "SYNC_HTTP_PUSH_HIGH", "bizData": [{
        "gmt_create": 1608639648000u64, "biz_type": biz_type, "open_cursor": 0,
        "subscribe_id": "90001_0", "id": 7001, "gmt_modified": 1608639649000u64,
        "biz_id": "90001", "biz_data": data.to_string(), "corp_id": corp, "status": 0,
    }]})
}

fn ms(n: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(n)
}

/// The whole path: an encrypted push of a suite ticket opens and means `TicketPushed`, stamped
/// with `gmt_modified`, for the suite the codec's owner key names.
#[test]
fn an_encrypted_suite_ticket_push_is_a_pushed_ticket() {
    let crypt = MsgCrypt::new(TOKEN, AES_KEY, SUITE).unwrap();
    let data =
        json!({"syncAction": "suite_ticket", "suiteTicket": "s3cr3t-ticket", "syncSeq": "1"});
    let msg = sync(2, "dingisvcorp", data).to_string();
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
    let got = codec().store_app_changes(&event).unwrap();
    let [StoreAppChange::TicketPushed { app, ticket }] = &got[..] else {
        panic!("{got:?}")
    };
    assert_eq!(app.to_string(), format!("dingtalk:{SUITE}"));
    assert_eq!(ticket.value.expose(), "s3cr3t-ticket");
    assert_eq!(ticket.pushed_at, ms(1608639649000));
    assert!(!format!("{got:?}").contains("s3cr3t"), "{got:?}");
    // Not a directory change.
    assert!(codec().changes(&event).unwrap().is_empty());
}

#[test]
fn authorisation_pushes_are_installed_changed_and_uninstalled() {
    let auth = json!({
        "syncAction": "org_suite_auth",
        "auth_corp_info": {"corpid": "dingorg1", "corp_name": "Org One"},
        "auth_user_info": {"userId": "admin01"},
        "auth_info": {"agent": [{"agentid": 200001, "agent_name": "App", "appid": 1}]},
        "permanent_code": "perm-s3cr3t",
    });
    let got = changes(sync(4, "dingorg1", auth)).unwrap();
    let [StoreAppChange::Installed { org, info, .. }] = &got[..] else {
        panic!("{got:?}")
    };
    assert_eq!(org.as_str(), "dingorg1");
    assert_eq!(info.org_name.as_deref(), Some("Org One"));
    assert_eq!(info.agent_id.as_deref(), Some("200001"));
    assert_eq!(info.installer.as_deref(), Some("admin01"));
    assert_eq!(
        info.permanent_code.as_ref().unwrap().expose(),
        "perm-s3cr3t"
    );
    let shown = format!("{got:?}");
    assert!(
        !shown.contains("perm-s3cr3t") && !shown.contains("admin01"),
        "{shown}"
    );

    let kind = |biz_type, action: &str| {
        let got = changes(sync(biz_type, "dingorg1", json!({"syncAction": action}))).unwrap();
        assert_eq!(got.len(), 1, "{action}");
        assert_eq!(got[0].org().unwrap().as_str(), "dingorg1");
        got[0].kind()
    };
    assert_eq!(kind(4, "org_suite_change"), "auth_changed");
    assert_eq!(kind(4, "org_suite_relieve"), "uninstalled");
    assert_eq!(kind(7, "org_micro_app_stop"), "uninstalled");
    assert_eq!(kind(7, "org_micro_app_remove"), "uninstalled");
    assert_eq!(kind(7, "org_micro_app_restore"), "auth_changed");
    assert_eq!(kind(16, "org_remove"), "uninstalled");
    // Other biz types (contacts, 13) are not store-app changes.
    let contact = sync(13, "dingorg1", json!({"syncAction": "user_leave_org"}));
    assert!(changes(contact).unwrap().is_empty());
}

#[test]
fn the_corp_id_may_come_from_auth_corp_info_only() {
    let doc = json!({"EventType": "SYNC_HTTP_PUSH_HIGH", "bizData": [{
        "biz_type": 4, "biz_data": "{\"syncAction\":\"org_suite_relieve\",\"auth_corp_info\":{\"corpid\":\"dingorg9\"}}",
    }]});
    let got = changes(doc).unwrap();
    assert_eq!(got[0].org().unwrap().as_str(), "dingorg9");
}

#[test]
fn the_old_suite_callback_format() {
    let ticket = json!({"EventType": "suite_ticket", "SuiteKey": SUITE, "SuiteTicket": "old-ticket", "TimeStamp": "1418984194106"});
    let got = changes(ticket).unwrap();
    let [StoreAppChange::TicketPushed { ticket, .. }] = &got[..] else {
        panic!("{got:?}")
    };
    assert_eq!(ticket.value.expose(), "old-ticket");
    assert_eq!(ticket.pushed_at, ms(1418984194106));
    let old = |t: &str| json!({"EventType": t, "SuiteKey": SUITE, "AuthCorpId": "dingorg2", "TimeStamp": "1418984194106"});
    assert_eq!(
        changes(old("change_auth")).unwrap()[0].kind(),
        "auth_changed"
    );
    assert_eq!(
        changes(old("suite_relieve")).unwrap()[0].kind(),
        "uninstalled"
    );
    let mut tmp = old("tmp_auth_code");
    tmp["AuthCode"] = json!("tmp-s3cr3t");
    let got = changes(tmp).unwrap();
    let [StoreAppChange::Installed { info, .. }] = &got[..] else {
        panic!("{got:?}")
    };
    assert_eq!(info.temporary_code.as_ref().unwrap().expose(), "tmp-s3cr3t");
    assert!(!format!("{got:?}").contains("tmp-s3cr3t"));
    // Without AuthCorpId the organisation is unknown until get_permanent_code: nothing.
    let bare = json!({"EventType": "tmp_auth_code", "SuiteKey": SUITE, "AuthCode": "x"});
    assert!(changes(bare).unwrap().is_empty());
}

#[test]
fn malformed_pushes_are_typed_errors_never_panics() {
    let missing = |doc: Value| changes(doc).unwrap_err();
    assert_eq!(
        missing(json!({"EventType": "SYNC_HTTP_PUSH_HIGH"})),
        EventError::MissingField { name: "bizData" }
    );
    let not_json = json!({"EventType": "SYNC_HTTP_PUSH_HIGH", "bizData": [{"biz_type": 2, "biz_data": "{nope"}]});
    assert_eq!(missing(not_json), EventError::BadJson);
    let no_ticket = sync(2, "c", json!({"syncAction": "suite_ticket"}));
    assert_eq!(
        missing(no_ticket),
        EventError::MissingField {
            name: "suiteTicket"
        }
    );
    let no_time = json!({"EventType": "SYNC_HTTP_PUSH_HIGH", "bizData": [{"biz_type": 2,
        "biz_data": "{\"syncAction\":\"suite_ticket\",\"suiteTicket\":\"t\"}"}]});
    assert_eq!(
        missing(no_time),
        EventError::MissingField { name: "gmt_create" }
    );
    let no_corp = json!({"EventType": "SYNC_HTTP_PUSH_HIGH", "bizData": [{"biz_type": 4,
        "biz_data": "{\"syncAction\":\"org_suite_relieve\"}"}]});
    assert_eq!(
        missing(no_corp),
        EventError::MissingField { name: "corp_id" }
    );
    let old = json!({"EventType": "suite_ticket", "SuiteTicket": "t"});
    assert_eq!(missing(old), EventError::MissingField { name: "TimeStamp" });
    // A contact event is no store-app change.
    let leave = json!({"EventType": "user_leave_org", "UserId": ["u"]});
    assert!(changes(leave).unwrap().is_empty());
    // An owner key that cannot be a suite key is a configuration error, not a panic.
    let doc = sync(
        2,
        "c",
        json!({"syncAction": "suite_ticket", "suiteTicket": "t"}),
    );
    let err = store_app_changes("not a key", "SYNC_HTTP_PUSH_HIGH", &doc, SystemTime::now());
    assert!(
        matches!(err, Err(EventError::InvalidConfig { .. })),
        "{err:?}"
    );
}
