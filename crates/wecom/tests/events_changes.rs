//! What WeCom `change_contact` events mean for the directory (`EventCodec::changes`): each
//! `ChangeType` and `Status`, self-built and third-party messages, typed errors, redaction.

use unilogin_core::events::crypto::MsgCrypt;
use unilogin_core::events::{
    DirectoryChange, EventCodec, EventError, EventRequest, Inbound, LeaveReason, PersonIds,
};
use unilogin_wecom::events::{WeComEvents, parse_event};

const TOKEN: &str = "tok_example";
const AES_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
const CORP: &str = "wwexamplecorp";

fn codec() -> WeComEvents {
    WeComEvents::new(TOKEN, AES_KEY, CORP).unwrap()
}

/// The changes of a decrypted message `xml` (parsed as the codec parses it).
fn changes(xml: &str) -> Result<Vec<DirectoryChange>, EventError> {
    let (event_type, event_id, plaintext) = parse_event(xml.to_string())?;
    let event = unilogin_core::events::Event {
        event_type,
        event_id,
        timestamp: None,
        format: unilogin_core::events::PayloadFormat::Xml,
        plaintext,
    };
    codec().changes(&event)
}

/// A self-built app's `change_contact` event message with `fields`.
fn self_built(fields: &str) -> String {
    format!(
        "<xml><ToUserName><![CDATA[{CORP}]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>\
         <CreateTime>1403610513</CreateTime><MsgType><![CDATA[event]]></MsgType>\
         <Event><![CDATA[change_contact]]></Event>{fields}</xml>"
    )
}

fn user(id: &str) -> PersonIds {
    PersonIds {
        user_id: Some(id.into()),
        org_id: Some(CORP.into()),
        ..PersonIds::default()
    }
}

/// The whole path: an encrypted, signed `delete_user` push.
#[test]
fn an_encrypted_delete_user_push_means_the_user_left() {
    let crypt = MsgCrypt::new(TOKEN, AES_KEY, CORP).unwrap();
    let msg = self_built(
        "<ChangeType><![CDATA[delete_user]]></ChangeType><UserID><![CDATA[zhangsan]]></UserID>",
    );
    let encrypt = crypt.encrypt(msg.as_bytes());
    let body = format!(
        "<xml><ToUserName><![CDATA[{CORP}]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt><AgentID><![CDATA[218]]></AgentID></xml>"
    );
    let sig = crypt.signature("1700000000", "nonce123", &encrypt);
    let req = EventRequest::new("POST", body.as_bytes())
        .query("msg_signature", &sig)
        .query("timestamp", "1700000000")
        .query("nonce", "nonce123");
    let Inbound::Event(event) = codec().open(&req).unwrap() else {
        panic!("an event")
    };
    assert_eq!(
        codec().changes(&event).unwrap(),
        [DirectoryChange::Left {
            ids: user("zhangsan"),
            reason: LeaveReason::Left
        }]
    );
}

#[test]
fn each_status_of_update_user() {
    let cases = [
        ("5", Some(LeaveReason::Left)),
        ("2", Some(LeaveReason::Disabled)),
        ("1", None),
        ("4", None),
        (" 2 ", Some(LeaveReason::Disabled)),
    ];
    for (status, expected) in cases {
        let xml = self_built(&format!(
            "<ChangeType><![CDATA[update_user]]></ChangeType><UserID><![CDATA[zhangsan]]></UserID>\
             <Status>{status}</Status>"
        ));
        let want = match expected {
            Some(reason) => DirectoryChange::Left {
                ids: user("zhangsan"),
                reason,
            },
            None => DirectoryChange::Updated {
                ids: user("zhangsan"),
            },
        };
        assert_eq!(changes(&xml).unwrap(), [want], "Status {status}");
    }
    // No Status: only other fields changed.
    let xml = self_built(
        "<ChangeType>update_user</ChangeType><UserID>zhangsan</UserID><Position>boss</Position>",
    );
    assert_eq!(
        changes(&xml).unwrap(),
        [DirectoryChange::Updated {
            ids: user("zhangsan")
        }]
    );
}

#[test]
fn a_new_user_id_is_an_update_of_the_old_one_and_creation_an_update() {
    let xml = self_built(
        "<ChangeType>update_user</ChangeType><UserID>zhangsan</UserID><NewUserID>zhangsan2</NewUserID>",
    );
    assert_eq!(
        changes(&xml).unwrap(),
        [DirectoryChange::Updated {
            ids: user("zhangsan")
        }]
    );
    let xml =
        self_built("<ChangeType>create_user</ChangeType><UserID>lisi</UserID><Status>1</Status>");
    assert_eq!(
        changes(&xml).unwrap(),
        [DirectoryChange::Updated { ids: user("lisi") }]
    );
}

#[test]
fn a_third_party_instruction_callback_names_the_authorising_corp_and_open_user_id() {
    let xml = "<xml><SuiteId><![CDATA[ww4asffe9xxx4c0f4c]]></SuiteId><AuthCorpId><![CDATA[wxf8b4f85fxx794xxx]]></AuthCorpId>\
               <InfoType><![CDATA[change_contact]]></InfoType><TimeStamp>1403610513</TimeStamp>\
               <ChangeType><![CDATA[delete_user]]></ChangeType><UserID><![CDATA[zhangsan]]></UserID>\
               <OpenUserID><![CDATA[woAJ2GCAAAXtWyujaWJHDDGi0mACAAAA]]></OpenUserID></xml>";
    assert_eq!(
        changes(xml).unwrap(),
        [DirectoryChange::Left {
            ids: PersonIds {
                user_id: Some("zhangsan".into()),
                union_id: None,
                open_id: Some("woAJ2GCAAAXtWyujaWJHDDGi0mACAAAA".into()),
                org_id: Some("wxf8b4f85fxx794xxx".into()),
            },
            reason: LeaveReason::Left
        }]
    );
    // The open user id alone is enough.
    let xml = "<xml><AuthCorpId>wxcorp</AuthCorpId><InfoType>change_contact</InfoType>\
               <ChangeType>update_user</ChangeType><OpenUserID>woAJ</OpenUserID><Status>5</Status></xml>";
    let got = changes(xml).unwrap();
    let [DirectoryChange::Left { ids, reason }] = got.as_slice() else {
        panic!("left")
    };
    assert_eq!(*reason, LeaveReason::Left);
    assert_eq!(
        (ids.open_id.as_deref(), ids.user_id.as_deref()),
        (Some("woAJ"), None)
    );
}

#[test]
fn other_changes_and_events_change_nothing() {
    for fields in [
        "<ChangeType>create_party</ChangeType><Id>2</Id>",
        "<ChangeType>delete_party</ChangeType><Id>2</Id>",
        "<ChangeType>update_tag</ChangeType><TagId>1</TagId><AddUserItems>zhangsan</AddUserItems>",
    ] {
        assert_eq!(changes(&self_built(fields)).unwrap(), [], "{fields}");
    }
    let other = format!(
        "<xml><ToUserName>{CORP}</ToUserName><MsgType>event</MsgType><Event>enter_agent</Event><UserID>zhangsan</UserID></xml>"
    );
    assert_eq!(changes(&other).unwrap(), []);
    let ticket = "<xml><SuiteId>s</SuiteId><InfoType>suite_ticket</InfoType><SuiteTicket>t</SuiteTicket></xml>";
    assert_eq!(changes(ticket).unwrap(), []);
}

#[test]
fn missing_fields_are_typed_errors() {
    assert_eq!(
        changes(&self_built("<UserID>zhangsan</UserID>")),
        Err(EventError::MissingField { name: "ChangeType" })
    );
    for fields in [
        "<ChangeType>delete_user</ChangeType>",
        "<ChangeType>delete_user</ChangeType><UserID></UserID><OpenUserID/>",
        "<ChangeType>update_user</ChangeType><Status>5</Status>",
    ] {
        assert_eq!(
            changes(&self_built(fields)),
            Err(EventError::MissingField { name: "UserID" }),
            "{fields}"
        );
    }
}

#[test]
fn ids_never_reach_debug() {
    let xml = self_built(
        "<ChangeType>update_user</ChangeType><UserID>secretuser42</UserID><OpenUserID>secretopen</OpenUserID><Status>2</Status>",
    );
    let out = format!("{:?}", changes(&xml).unwrap());
    assert!(out.contains("Disabled"), "{out}");
    for s in ["secretuser42", "secretopen", CORP] {
        assert!(!out.contains(s), "{out}");
    }
}
