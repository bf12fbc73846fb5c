//! DingTalk callback crypto: published and computed known answers, every refusal, redaction.

use std::time::{Duration, UNIX_EPOCH};

use proptest::prelude::*;
use serde_json::Value;
use unilogin_core::AppSecret;
use unilogin_core::events::crypto::MsgCrypt;
use unilogin_core::events::{
    EventCodec, EventCredentials, EventError, EventRequest, Inbound, MAX_BODY,
};
use unilogin_dingtalk::events::DingTalkEvents;

const TOKEN: &str = "tok_example";
const AES_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
const OWNER: &str = "dingexamplecorp";

fn codec() -> DingTalkEvents {
    DingTalkEvents::new(TOKEN, AES_KEY, OWNER).unwrap()
}

fn crypt() -> MsgCrypt {
    MsgCrypt::new(TOKEN, AES_KEY, OWNER).unwrap()
}

fn body(encrypt: &str) -> Vec<u8> {
    serde_json::json!({ "encrypt": encrypt })
        .to_string()
        .into_bytes()
}

/// An encrypted, signed request carrying `msg`, as DingTalk sends it.
fn signed(crypt: &MsgCrypt, msg: &str, ts: &str) -> (Vec<u8>, String) {
    let encrypt = crypt.encrypt(msg.as_bytes());
    (body(&encrypt), crypt.signature(ts, "nonce123", &encrypt))
}

fn open(codec: &DingTalkEvents, body: &[u8], sig: &str, ts: &str) -> Result<Inbound, EventError> {
    let req = EventRequest::new("POST", body)
        .query("msg_signature", sig)
        .query("timestamp", ts)
        .query("nonce", "nonce123");
    codec.open(&req)
}

/// Published: the official DingTalk-Callback-Crypto Python sample (`DingCallbackCrypto3.py`,
/// token `mryue`): a `check_url` push.
#[test]
fn official_sample_check_url_is_a_handshake_answered_with_encrypted_success() {
    let codec = DingTalkEvents::new(
        "mryue",
        "Yue0EfdN5900c1ce5cf6A152c63DDe1808a60c5ecd7",
        "ding6ccabc44d2c8d38b",
    )
    .unwrap();
    let encrypt = "0vJiX6vliEpwG3U45CtXqi+m8PXbQRARJ8p8BbDuD1EMTDf0jKpQ79QS93qEk7XHpP6u+oTTrd15NRPvNvmBKyDCYxxOK+HZeKju4yhELOFchzNukR+t8SB/qk4ROMu3";
    let body = body(encrypt);
    let req = EventRequest::new("POST", &body)
        .query("signature", "03044561471240d4a14bb09372dfcfd4fd0e40cb")
        .query("timeStamp", "1608001896814")
        .query("nonce", "WL4PK6yA");
    let Inbound::Handshake(h) = codec.open(&req).unwrap() else {
        panic!("check_url must be a handshake");
    };
    assert_eq!(
        h.timestamp,
        Some(UNIX_EPOCH + Duration::from_millis(1_608_001_896_814))
    );
    let reply: Value = serde_json::from_slice(h.reply.body()).unwrap();
    let (ts, nonce, enc) = (
        reply["timeStamp"].as_str().unwrap(),
        reply["nonce"].as_str().unwrap(),
        reply["encrypt"].as_str().unwrap(),
    );
    let crypt = MsgCrypt::new(
        "mryue",
        "Yue0EfdN5900c1ce5cf6A152c63DDe1808a60c5ecd7",
        "ding6ccabc44d2c8d38b",
    )
    .unwrap();
    crypt
        .verify(reply["msg_signature"].as_str().unwrap(), ts, nonce, enc)
        .unwrap();
    assert_eq!(crypt.decrypt(enc).unwrap(), b"success");
}

/// Published by an integrator (o2oa `TestMain.java`): a `getEncryptedMap("success")` output.
/// Signature and decryption pass; the plaintext is not an event, so it is refused as JSON.
#[test]
fn published_success_reply_verifies_and_decrypts_but_is_not_an_event() {
    let codec = DingTalkEvents::new(
        "o2oa",
        "Nzk5ZjFiODIxMzkyNGMyNWIyMmFiZWZkNjIzNjIxYTg",
        "ding21016b71e78da961",
    )
    .unwrap();
    let req = EventRequest::new(
        "POST",
        br#"{"encrypt":"QH/UQCL7dUGoPQZcBf2H2u/8ImJ+6tjDOSfHle3GmMoG/zopHbD8JpXVCBFGSUFmQ3bWXIuzwyXAZCeS2kptmA=="}"#,
    )
    .query("msg_signature", "502b261eda47a212db163c91322f7ddecb2e99cc")
    .query("timeStamp", "1603697312745")
    .query("nonce", "2dffdfdfdf2222");
    assert_eq!(codec.open(&req).unwrap_err(), EventError::BadJson);
}

/// Computed (reference §3.1.4, checked with Python `cryptography`): the `success` reply.
#[test]
fn seal_matches_the_worked_example() {
    let reply = codec().seal("success", b"RANDOM0123456789", "1700000000000", "nonce123");
    let v: Value = serde_json::from_slice(reply.body()).unwrap();
    assert_eq!(
        v["encrypt"],
        "5XltAAWvdfK97kdYilpWLI53tIKyxs8VXM4cOclvPwpUBmffohR0kZ+FJA3Uz4TKIXDYzwDC4gD2uPVcwQLvbw=="
    );
    assert_eq!(
        v["msg_signature"],
        "91b45f11a56f5ef74aaa821cb5468a861b6b5f1a"
    );
    assert_eq!(v["timeStamp"], "1700000000000");
    assert_eq!(v["nonce"], "nonce123");
}

#[test]
fn user_leave_org_opens_as_an_event_with_its_fields() {
    let msg = r#"{"EventType":"user_leave_org","CorpId":"dingexamplecorp","UserId":["0146"],"TimeStamp":"1645077203219","eventId":"ev-1"}"#;
    let (body, sig) = signed(&crypt(), msg, "1700000000000");
    let Inbound::Event(event) = open(&codec(), &body, &sig, "1700000000000").unwrap() else {
        panic!("an event");
    };
    assert_eq!(event.event_type, "user_leave_org");
    assert_eq!(event.event_id.as_deref(), Some("ev-1"));
    assert_eq!(event.dedupe_key(), "id:ev-1");
    assert_eq!(event.plaintext.expose(), msg);
    assert_eq!(event.plaintext.expose_document()["UserId"][0], "0146");
    let sent = UNIX_EPOCH + Duration::from_millis(1_700_000_000_000);
    event
        .check_window(sent + Duration::from_secs(60), Duration::from_secs(300))
        .unwrap();
    assert_eq!(
        event.check_window(sent + Duration::from_secs(301), Duration::from_secs(300)),
        Err(EventError::StaleTimestamp)
    );
    // The acknowledgement is the encrypted `success`, signed.
    let ack: Value = serde_json::from_slice(codec().acknowledge(&event).body()).unwrap();
    let enc = ack["encrypt"].as_str().unwrap();
    let (ts, nonce) = (
        ack["timeStamp"].as_str().unwrap(),
        ack["nonce"].as_str().unwrap(),
    );
    crypt()
        .verify(ack["msg_signature"].as_str().unwrap(), ts, nonce, enc)
        .unwrap();
    assert_eq!(crypt().decrypt(enc).unwrap(), b"success");
    assert!(
        ts.parse::<u64>().unwrap() > 1_700_000_000_000,
        "milliseconds, now"
    );
}

#[test]
fn every_bad_input_is_a_typed_error() {
    let c = codec();
    let (good, sig) = signed(&crypt(), r#"{"EventType":"user_add_org"}"#, "1700000000000");
    let mut bad_sig = sig.clone();
    bad_sig.replace_range(..1, if sig.starts_with('0') { "1" } else { "0" });
    assert_eq!(
        open(&c, &good, &bad_sig, "1700000000000").unwrap_err(),
        EventError::BadSignature
    );
    // The timestamp is signed: changing it breaks the signature.
    assert_eq!(
        open(&c, &good, &sig, "1700000000001").unwrap_err(),
        EventError::BadSignature
    );
    assert_eq!(
        c.open(&EventRequest::new("GET", &good)).unwrap_err(),
        EventError::MethodNotAllowed
    );
    let no_nonce = EventRequest::new("POST", &good)
        .query("msg_signature", &sig)
        .query("timestamp", "1700000000000");
    assert_eq!(
        c.open(&no_nonce).unwrap_err(),
        EventError::MissingParameter { name: "nonce" }
    );
    let twice = EventRequest::new("POST", &good)
        .query("msg_signature", &sig)
        .query("msg_signature", &sig)
        .query("timestamp", "1700000000000")
        .query("nonce", "nonce123");
    assert_eq!(
        c.open(&twice).unwrap_err(),
        EventError::BadParameter {
            name: "msg_signature"
        }
    );
    assert_eq!(
        open(&c, b"{not json", &sig, "1").unwrap_err(),
        EventError::BadJson
    );
    assert_eq!(
        open(&c, b"{\"other\":1}", &sig, "1").unwrap_err(),
        EventError::MissingField { name: "encrypt" }
    );
    let huge = vec![b' '; MAX_BODY + 1];
    assert_eq!(
        open(&c, &huge, &sig, "1").unwrap_err(),
        EventError::BodyTooLarge { limit: MAX_BODY }
    );
    // Signed but malformed pieces.
    let sign = |enc: &str, ts: &str| (body(enc), crypt().signature(ts, "nonce123", enc));
    let (b, s) = sign(&crypt().encrypt(b"{}"), "17000x");
    assert_eq!(
        open(&c, &b, &s, "17000x").unwrap_err(),
        EventError::BadTimestamp
    );
    let (b, s) = sign("***", "1");
    assert_eq!(open(&c, &b, &s, "1").unwrap_err(), EventError::BadBase64);
    let (b, s) = sign("AAAA", "1");
    assert_eq!(
        open(&c, &b, &s, "1").unwrap_err(),
        EventError::BadCiphertext
    );
    let other = MsgCrypt::new(TOKEN, AES_KEY, "dingothercorp").unwrap();
    let (b, s) = signed(&other, r#"{"EventType":"x"}"#, "1");
    assert_eq!(
        open(&c, &b, &s, "1").unwrap_err(),
        EventError::WrongReceiver
    );
    let (b, s) = signed(&crypt(), r#"{"NoType":1}"#, "1");
    assert_eq!(
        open(&c, &b, &s, "1").unwrap_err(),
        EventError::MissingField { name: "EventType" }
    );
    let (b, s) = signed(&crypt(), "[1,2]", "1");
    assert_eq!(open(&c, &b, &s, "1").unwrap_err(), EventError::BadJson);
    // Another app's key: the signature (same token) passes, the padding does not.
    let wrong_key =
        MsgCrypt::new(TOKEN, "ZYXWVUTSRQPONMLKJIHGFEDCBA9876543210zyxwvut", OWNER).unwrap();
    let (b, s) = signed(&wrong_key, r#"{"EventType":"x"}"#, "1");
    assert!(matches!(
        open(&c, &b, &s, "1").unwrap_err(),
        EventError::BadPadding | EventError::BadLength | EventError::WrongReceiver
    ));
}

#[test]
fn credentials_build_the_codec_or_say_what_is_missing() {
    let mut creds = EventCredentials {
        token: Some(AppSecret::new(TOKEN)),
        key: Some(AppSecret::new(AES_KEY)),
        receiver_id: Some(OWNER.into()),
    };
    let built = DingTalkEvents::from_credentials(&creds).unwrap();
    assert_eq!(built.platform(), "dingtalk");
    let (b, s) = signed(&crypt(), r#"{"EventType":"check_url"}"#, "1");
    let req = EventRequest::new("POST", &b)
        .query("msg_signature", &s)
        .query("timestamp", "1")
        .query("nonce", "nonce123");
    assert!(matches!(built.open(&req), Ok(Inbound::Handshake(_))));
    creds.receiver_id = None;
    assert_eq!(
        DingTalkEvents::from_credentials(&creds).unwrap_err().kind(),
        "invalid_config"
    );
    assert_eq!(
        DingTalkEvents::new(TOKEN, "short", OWNER)
            .unwrap_err()
            .kind(),
        "invalid_config"
    );
}

#[test]
fn nothing_secret_reaches_debug_or_errors() {
    let c = codec();
    let msg = r#"{"EventType":"user_leave_org","UserId":["secret-user-0146"]}"#;
    let (b, s) = signed(&crypt(), msg, "1");
    let inbound = open(&c, &b, &s, "1").unwrap();
    let printed = format!("{c:?} {inbound:?}");
    let Inbound::Event(event) = inbound else {
        panic!()
    };
    let ack = c.acknowledge(&event);
    let printed = format!("{printed} {ack:?} {:?}", ack.clone());
    let err = open(&c, &b, "0000", "1").unwrap_err();
    let printed = format!("{printed} {err} {err:?}");
    for secret in [TOKEN, AES_KEY, "secret-user-0146", s.as_str(), "abcdefghij"] {
        assert!(!printed.contains(secret), "{secret} leaked");
    }
    assert!(
        printed.contains("user_leave_org"),
        "the event type is printable"
    );
}

proptest! {
    #[test]
    fn random_requests_never_panic(
        method in "GET|POST|PUT",
        sig in ".{0,50}", ts in ".{0,20}",
        body in proptest::collection::vec(any::<u8>(), 0..400),
    ) {
        let req = EventRequest::new(&method, &body)
            .query("msg_signature", &sig).query("timestamp", &ts).query("nonce", "n");
        prop_assert!(codec().open(&req).is_err());
    }

    #[test]
    fn random_signed_plaintexts_never_panic(msg in proptest::collection::vec(any::<u8>(), 0..300)) {
        let encrypt = crypt().encrypt(&msg);
        let sig = crypt().signature("1", "nonce123", &encrypt);
        let _ = open(&codec(), &body(&encrypt), &sig, "1");
    }
}
