//! WeCom (`WXBizMsgCrypt`) callback crypto: the SDK's published samples, computed answers,
//! every refusal, XML handling, redaction.

use std::time::{Duration, UNIX_EPOCH};

use proptest::prelude::*;
use unilogin_core::AppSecret;
use unilogin_core::events::crypto::MsgCrypt;
use unilogin_core::events::{
    EventCodec, EventCredentials, EventError, EventRequest, Inbound, PayloadFormat,
};
use unilogin_wecom::events::{WeComEvents, xml_to_json};

// The WXBizMsgCrypt SDK samples (Sample.py / Sample.java / Sample.cs).
const SDK_TOKEN: &str = "QDG6eK";
const SDK_KEY: &str = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C";
const SDK_CORP: &str = "wx5823bf96d3bd56c7";
const SDK_POST_ENCRYPT: &str = "RypEvHKD8QQKFhvQ6QleEB4J58tiPdvo+rtK1I9qca6aM/wvqnLSV5zEPeusUiX5L5X/0lWfrf0QADHHhGd3QczcdCUpj911L3vg3W/sYYvuJTs3TUUkSUXxaccAS0qhxchrRYt66wiSpGLYL42aM6A8dTT+6k4aSknmPj48kzJs8qLjvd4Xgpue06DOdnLxAUHzM6+kDZ+HMZfJYuR+LtwGc2hgf5gsijff0ekUNXZiqATP7PF5mZxZ3Izoun1s4zG4LUMnvw2r+KqCKIw+3IQH03v+BCA9nMELNqbSf6tiWSrXJB3LAVGUcallcrw8V2t9EL4EhzJWrQUax5wLVMNS0+rUPA3k22Ncx4XXZS9o0MBH27Bo6BpNelZpS+/uh9KsNlY6bHCmJU9p8g7m3fVKn28H3KDYA5Pl/T8Z1ptDAVe0lXdQ2YoyyH2uyPIGHBZZIs2pDBS8R07+qN+E7Q==";

const TOKEN: &str = "tok_example";
const AES_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
const CORP: &str = "wwexamplecorp";

fn sdk() -> WeComEvents {
    WeComEvents::new(SDK_TOKEN, SDK_KEY, SDK_CORP).unwrap()
}

fn codec() -> WeComEvents {
    WeComEvents::new(TOKEN, AES_KEY, CORP).unwrap()
}

fn crypt() -> MsgCrypt {
    MsgCrypt::new(TOKEN, AES_KEY, CORP).unwrap()
}

fn envelope(encrypt: &str) -> Vec<u8> {
    format!(
        "<xml><ToUserName><![CDATA[{CORP}]]></ToUserName><Encrypt><![CDATA[{encrypt}]]></Encrypt><AgentID><![CDATA[218]]></AgentID></xml>"
    )
    .into_bytes()
}

fn post(codec: &WeComEvents, body: &[u8], sig: &str, ts: &str) -> Result<Inbound, EventError> {
    let req = EventRequest::new("POST", body)
        .query("msg_signature", sig)
        .query("timestamp", ts)
        .query("nonce", "nonce123");
    codec.open(&req)
}

fn signed_post(crypt: &MsgCrypt, msg: &str) -> (Vec<u8>, String) {
    let encrypt = crypt.encrypt(msg.as_bytes());
    (
        envelope(&encrypt),
        crypt.signature("1700000000", "nonce123", &encrypt),
    )
}

/// Published: the SDK sample's URL verification (GET with echostr).
#[test]
fn sdk_sample_url_verification_answers_the_plain_echostr() {
    let req = EventRequest::new("GET", b"")
        .query("msg_signature", "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3")
        .query("timestamp", "1409659589")
        .query("nonce", "263014780")
        .query(
            "echostr",
            "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ==",
        );
    let Inbound::Handshake(h) = sdk().open(&req).unwrap() else {
        panic!("handshake")
    };
    assert_eq!(h.reply.body(), b"1616140317555161061");
    assert_eq!(h.reply.content_type, "text/plain");
    assert_eq!(
        h.timestamp,
        Some(UNIX_EPOCH + Duration::from_secs(1_409_659_589))
    );
    // The same request for another corp fails the receiver check.
    let other = WeComEvents::new(SDK_TOKEN, SDK_KEY, "wwsomeoneelse").unwrap();
    assert_eq!(other.open(&req).unwrap_err(), EventError::WrongReceiver);
}

/// Published: the SDK sample's encrypted POST (a text message, AgentID 218).
#[test]
fn sdk_sample_post_decrypts_to_the_text_message() {
    let body = format!(
        "<xml><ToUserName><![CDATA[{SDK_CORP}]]></ToUserName><Encrypt><![CDATA[{SDK_POST_ENCRYPT}]]></Encrypt><AgentID><![CDATA[218]]></AgentID></xml>"
    );
    let req = EventRequest::new("POST", body.as_bytes())
        .query("msg_signature", "477715d11cdb4164915debcba66cb864d751f3e6")
        .query("timestamp", "1409659813")
        .query("nonce", "1372623149");
    let Inbound::Event(event) = sdk().open(&req).unwrap() else {
        panic!("event")
    };
    assert_eq!(event.format, PayloadFormat::Xml);
    assert_eq!(event.event_type, "text");
    assert_eq!(event.event_id.as_deref(), Some("4561255354251345929"));
    let doc = event.plaintext.expose_document();
    assert_eq!(doc["Content"], "hello");
    assert_eq!(doc["FromUserName"], "mycreate");
    assert_eq!(doc["AgentID"], "218");
    assert!(event.plaintext.expose().starts_with("<xml><ToUserName>"));
    assert_eq!(sdk().acknowledge(&event).body(), b"success");
}

/// Computed (reference §3.3, checked with Python `cryptography`).
#[test]
fn seal_matches_the_worked_example() {
    let msg = "<xml><ToUserName><![CDATA[wwexamplecorp]]></ToUserName></xml>";
    let reply = codec().seal(msg, b"RANDOM0123456789", "1700000000", "nonce123");
    let xml = std::str::from_utf8(reply.body()).unwrap();
    let doc = xml_to_json(xml).unwrap();
    let enc = "5XltAAWvdfK97kdYilpWLGiEpEl+nOWfWWmmg1hHZiWXKxjoLAavkpoF5roBiLMPOK6FXafHdtcMp9HTiAo9NzBxEnSYj9DLIUvS2m3DrN8NHJ48JOZoTSrgqHupKfnD";
    assert_eq!(doc["Encrypt"], enc);
    assert_eq!(
        doc["MsgSignature"],
        "b04474acadd1d179ddbb895da9753f23ce652f64"
    );
    assert_eq!(doc["TimeStamp"], "1700000000");
    assert_eq!(doc["Nonce"], "nonce123");
    // A fresh encrypted reply opens with the same credentials.
    let fresh = codec().encrypt_reply(msg);
    let doc = xml_to_json(std::str::from_utf8(fresh.body()).unwrap()).unwrap();
    let (e, ts, n) = (
        doc["Encrypt"].as_str().unwrap(),
        doc["TimeStamp"].as_str().unwrap(),
        doc["Nonce"].as_str().unwrap(),
    );
    crypt()
        .verify(doc["MsgSignature"].as_str().unwrap(), ts, n, e)
        .unwrap();
    assert_eq!(crypt().decrypt(e).unwrap(), msg.as_bytes());
}

#[test]
fn change_contact_delete_user_and_third_party_info_type() {
    let msg = "<xml><ToUserName><![CDATA[wwexamplecorp]]></ToUserName><FromUserName><![CDATA[sys]]></FromUserName>\
        <CreateTime>1700000000</CreateTime><MsgType><![CDATA[event]]></MsgType><Event><![CDATA[change_contact]]></Event>\
        <ChangeType>delete_user</ChangeType><UserID><![CDATA[zhangsan]]></UserID></xml>";
    let (body, sig) = signed_post(&crypt(), msg);
    let Inbound::Event(event) = post(&codec(), &body, &sig, "1700000000").unwrap() else {
        panic!()
    };
    assert_eq!(event.event_type, "change_contact");
    assert_eq!(event.event_id, None);
    assert!(event.dedupe_key().starts_with("sha256:"));
    assert_eq!(
        event.plaintext.expose_document()["ChangeType"],
        "delete_user"
    );
    assert_eq!(event.plaintext.expose_document()["UserID"], "zhangsan");
    let now = UNIX_EPOCH + Duration::from_secs(1_700_000_100);
    event.check_window(now, Duration::from_secs(300)).unwrap();
    // Third-party instruction callback: InfoType, receiver = suite id.
    let suite = MsgCrypt::new(TOKEN, AES_KEY, "wwsuite1").unwrap();
    let msg = "<xml><SuiteId><![CDATA[wwsuite1]]></SuiteId><InfoType><![CDATA[suite_ticket]]></InfoType><TimeStamp>1700000000</TimeStamp><SuiteTicket><![CDATA[t]]></SuiteTicket></xml>";
    let (body, sig) = signed_post(&suite, msg);
    let suite_codec = WeComEvents::new(TOKEN, AES_KEY, "wwsuite1").unwrap();
    let Inbound::Event(event) = post(&suite_codec, &body, &sig, "1700000000").unwrap() else {
        panic!()
    };
    assert_eq!(event.event_type, "suite_ticket");
}

#[test]
fn every_bad_input_is_a_typed_error() {
    let c = codec();
    let (body, sig) = signed_post(&crypt(), "<xml><Event>x</Event></xml>");
    assert_eq!(
        post(&c, &body, "0".repeat(40).as_str(), "1700000000").unwrap_err(),
        EventError::BadSignature
    );
    assert_eq!(
        post(&c, &body, &sig, "1700000001").unwrap_err(),
        EventError::BadSignature
    );
    assert_eq!(
        c.open(&EventRequest::new("PUT", &body)).unwrap_err(),
        EventError::MethodNotAllowed
    );
    let no_echo = EventRequest::new("GET", b"")
        .query("msg_signature", "s")
        .query("timestamp", "1")
        .query("nonce", "n");
    assert_eq!(
        c.open(&no_echo).unwrap_err(),
        EventError::MissingParameter { name: "echostr" }
    );
    assert_eq!(
        post(&c, b"<xml><Encrypt>", &sig, "1").unwrap_err(),
        EventError::BadXml
    );
    assert_eq!(
        post(&c, b"<xml></xml>", &sig, "1").unwrap_err(),
        EventError::BadXml
    );
    assert_eq!(
        post(&c, b"<xml><A>1</A></xml>", &sig, "1").unwrap_err(),
        EventError::MissingField { name: "Encrypt" }
    );
    assert_eq!(
        post(&c, &[0xff, 0xfe], &sig, "1").unwrap_err(),
        EventError::BadUtf8
    );
    let sign = |msg: &str| signed_post(&crypt(), msg);
    let (b, s) = sign("not xml at all <");
    assert_eq!(
        post(&c, &b, &s, "1700000000").unwrap_err(),
        EventError::BadXml
    );
    let (b, s) = sign("<xml><ToUserName>x</ToUserName></xml>");
    assert_eq!(
        post(&c, &b, &s, "1700000000").unwrap_err(),
        EventError::MissingField { name: "Event" }
    );
    let (b, s) = sign("<xml><Event>x</Event></xml>");
    assert_eq!(post(&c, &b, &s, "1700000000").map(|_| ()), Ok(()));
    let other = MsgCrypt::new(TOKEN, AES_KEY, "wwother").unwrap();
    let (b, s) = signed_post(&other, "<xml><Event>x</Event></xml>");
    assert_eq!(
        post(&c, &b, &s, "1700000000").unwrap_err(),
        EventError::WrongReceiver
    );
    let enc = "AAAA";
    let s = crypt().signature("1700000000", "nonce123", enc);
    assert_eq!(
        post(&c, &envelope(enc), &s, "1700000000").unwrap_err(),
        EventError::BadCiphertext
    );
    let s = crypt().signature("x", "nonce123", "AAAA");
    assert_eq!(
        post(&c, &envelope("AAAA"), &s, "x").unwrap_err(),
        EventError::BadTimestamp
    );
}

#[test]
fn xml_is_parsed_strictly_and_converted_predictably() {
    let doc = xml_to_json("<?xml version=\"1.0\"?><xml><!-- c --><A>x &amp; &#x41;</A><B><C>1</C><C>2</C></B><D/><E>  <![CDATA[ v ]]> </E></xml>").unwrap();
    assert_eq!(doc["A"], "x & A");
    assert_eq!(doc["B"]["C"], serde_json::json!(["1", "2"]));
    assert_eq!(doc["D"], "");
    assert_eq!(doc["E"], "v");
    for bad in [
        "<!DOCTYPE x [<!ENTITY e \"boom\">]><xml><A>&e;</A></xml>",
        "<xml><A>&unknown;</A></xml>",
        "<xml><A></B></xml>",
        "<xml/><xml/>",
        "text<xml><A/></xml>",
        "",
        &format!("<xml>{}{}</xml>", "<a>".repeat(20), "</a>".repeat(20)),
    ] {
        assert_eq!(xml_to_json(bad), Err(EventError::BadXml), "{bad}");
    }
}

#[test]
fn credentials_build_the_codec_and_secrets_never_print() {
    let creds = EventCredentials {
        token: Some(AppSecret::new(TOKEN)),
        key: Some(AppSecret::new(AES_KEY)),
        receiver_id: Some(CORP.into()),
    };
    let built = WeComEvents::from_credentials(&creds).unwrap();
    assert_eq!(built.platform(), "wecom");
    let missing = EventCredentials { key: None, ..creds };
    assert_eq!(
        WeComEvents::from_credentials(&missing).unwrap_err().kind(),
        "invalid_config"
    );

    let (b, s) = signed_post(
        &crypt(),
        "<xml><Event>change_contact</Event><UserID>secret-user-9</UserID></xml>",
    );
    let inbound = post(&codec(), &b, &s, "1700000000").unwrap();
    let err = post(&codec(), &b, "bad", "1700000000").unwrap_err();
    let printed = format!("{built:?} {inbound:?} {err} {err:?}");
    for secret in [TOKEN, AES_KEY, "secret-user-9", s.as_str()] {
        assert!(!printed.contains(secret), "{secret} leaked");
    }
}

proptest! {
    #[test]
    fn random_requests_never_panic(
        get in any::<bool>(), field in ".{0,80}",
        body in proptest::collection::vec(any::<u8>(), 0..400),
    ) {
        let req = EventRequest::new(if get { "GET" } else { "POST" }, &body)
            .query("msg_signature", &field).query("timestamp", "1").query("nonce", "n")
            .query("echostr", &field);
        prop_assert!(codec().open(&req).is_err());
        let _ = xml_to_json(&String::from_utf8_lossy(&body));
    }

    #[test]
    fn random_signed_plaintexts_never_panic(msg in ".{0,300}") {
        let (b, s) = signed_post(&crypt(), &msg);
        let _ = post(&codec(), &b, &s, "1700000000");
    }
}
