//! Fuzz the three platforms' callback decryptors and event parsers.
//!
//! Input layout: `<selector byte> <field 0> \0 <field 1> \0 <field 2> \0 <rest>`. The selector
//! picks the platform (DingTalk, Feishu, WeCom) and the depth:
//! - `raw`: the fields as signature / timestamp / nonce (and echostr), `rest` as the body;
//!   nearly everything stops at the signature, which is the point: it must, without panicking;
//! - `signed`: field 0 as the ciphertext, correctly signed, so base64, AES, padding, length
//!   and receiver checks run on arbitrary input;
//! - `sealed`: `rest` as the plaintext, correctly encrypted and signed, so the JSON / XML
//!   event parsers run on arbitrary input; an opened event must carry exactly that plaintext.
//!
//! Every outcome is an `Inbound` or a typed `EventError`; nothing may panic. Opened events and
//! arbitrary JSON documents also go through the lifecycle interpreters (`changes`,
//! `directory_changes`): every change they return names a person; the DingTalk store-app
//! interpreter (`store_app_changes`) returns typed errors or changes of its own suite.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use unilogin_core::events::crypto::{MsgCrypt, aes256_cbc_encrypt, encode_base64, sha256};
use unilogin_core::events::{DirectoryChange, EventCodec, EventError, EventRequest, Inbound};
use unilogin_dingtalk::events::DingTalkEvents;
use unilogin_feishu::events::FeishuEvents;
use unilogin_wecom::events::{WeComEvents, xml_to_json};

const TOKEN: &str = "tok_fuzz";
const AES_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
const RECEIVER: &str = "corp_fuzz";
const FEISHU_KEY: &str = "fuzz encrypt key";

struct Codecs {
    crypt: MsgCrypt,
    dingtalk: DingTalkEvents,
    wecom: WeComEvents,
    feishu: FeishuEvents,
    feishu_plain: FeishuEvents,
}

fn codecs() -> &'static Codecs {
    static CODECS: OnceLock<Codecs> = OnceLock::new();
    CODECS.get_or_init(|| Codecs {
        crypt: MsgCrypt::new(TOKEN, AES_KEY, RECEIVER).expect("valid"),
        dingtalk: DingTalkEvents::new(TOKEN, AES_KEY, RECEIVER).expect("valid"),
        wecom: WeComEvents::new(TOKEN, AES_KEY, RECEIVER).expect("valid"),
        feishu: FeishuEvents::new(TOKEN, Some(FEISHU_KEY)).expect("valid"),
        feishu_plain: FeishuEvents::new(TOKEN, None).expect("valid"),
    })
}

fn check(result: Result<Inbound, EventError>) -> Option<Inbound> {
    match result {
        Ok(inbound) => Some(inbound),
        Err(e) => {
            assert!(!e.kind().is_empty());
            assert!(!e.to_string().contains(TOKEN), "an error names the token");
            None
        }
    }
}

fn feishu_encrypt(plain: &[u8]) -> String {
    let iv = [3u8; 16];
    let mut raw = iv.to_vec();
    raw.extend(aes256_cbc_encrypt(
        &sha256(FEISHU_KEY.as_bytes()),
        &iv,
        plain,
        16,
    ));
    encode_base64(&raw)
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, data)) = data.split_first() else {
        return;
    };
    let mut parts = data.splitn(4, |&b| b == 0);
    let mut field = || String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
    let (f0, f1, f2) = (field(), field(), field());
    let rest_bytes: &[u8] = parts.next().unwrap_or_default();
    let c = codecs();
    let method = if selector & 0x80 == 0 { "POST" } else { "GET" };

    match selector % 9 {
        // Raw requests: fuzzed signature inputs and body.
        0 | 3 | 6 => {
            let req = EventRequest::new(method, rest_bytes)
                .query("msg_signature", &f0)
                .query("signature", &f0)
                .query("timestamp", &f1)
                .query("nonce", &f2)
                .query("echostr", &f0)
                .header("X-Lark-Signature", &f0)
                .header("X-Lark-Request-Timestamp", &f1)
                .header("X-Lark-Request-Nonce", &f2);
            let codec: &dyn EventCodec = match selector % 9 {
                0 => &c.dingtalk,
                3 => &c.wecom,
                _ => &c.feishu,
            };
            check(codec.open(&req));
            check(c.feishu_plain.open(&EventRequest::new("POST", rest_bytes)));
            let _ = xml_to_json(&String::from_utf8_lossy(rest_bytes));
        }
        // Correctly signed, fuzzed ciphertext.
        1 | 4 => {
            let sig = c.crypt.signature(&f1, &f2, &f0);
            let body = match selector % 9 {
                1 => serde_json::json!({ "encrypt": f0 }).to_string(),
                _ => format!("<xml><Encrypt><![CDATA[{f0}]]></Encrypt></xml>"),
            };
            let req = EventRequest::new(method, body.as_bytes())
                .query("msg_signature", &sig)
                .query("timestamp", &f1)
                .query("nonce", &f2)
                .query("echostr", &f0);
            let codec: &dyn EventCodec = if selector % 9 == 1 {
                &c.dingtalk
            } else {
                &c.wecom
            };
            check(codec.open(&req));
            let _ = c.crypt.decrypt(&f0);
        }
        7 => {
            let body = serde_json::json!({ "encrypt": f0 }).to_string();
            let sig = c
                .feishu
                .signature(&f1, &f2, body.as_bytes())
                .expect("has a key");
            let req = EventRequest::new("POST", body.as_bytes())
                .header("X-Lark-Signature", &sig)
                .header("X-Lark-Request-Timestamp", &f1)
                .header("X-Lark-Request-Nonce", &f2);
            check(c.feishu.open(&req));
            let _ = unilogin_feishu::events::decrypt(&sha256(FEISHU_KEY.as_bytes()), &f0);
        }
        // Correctly encrypted and signed, fuzzed plaintext.
        2 | 5 => {
            let encrypt = c.crypt.encrypt(rest_bytes);
            let sig = c.crypt.signature("1700000000", "n", &encrypt);
            let body = match selector % 9 {
                2 => serde_json::json!({ "encrypt": encrypt }).to_string(),
                _ => format!("<xml><Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"),
            };
            let req = EventRequest::new("POST", body.as_bytes())
                .query("msg_signature", &sig)
                .query("timestamp", "1700000000")
                .query("nonce", "n");
            let codec: &dyn EventCodec = if selector % 9 == 2 {
                &c.dingtalk
            } else {
                &c.wecom
            };
            if let Some(Inbound::Event(event)) = check(codec.open(&req)) {
                assert_eq!(
                    event.plaintext.expose().as_bytes(),
                    rest_bytes,
                    "the event carries its plaintext"
                );
                assert!(!event.event_type.is_empty());
                let _ = codec.acknowledge(&event);
                check_changes(codec, &event);
            }
        }
        _ => {
            let body = serde_json::json!({ "encrypt": feishu_encrypt(rest_bytes) }).to_string();
            let sig = c
                .feishu
                .signature("1700000000", "n", body.as_bytes())
                .expect("has a key");
            let req = EventRequest::new("POST", body.as_bytes())
                .header("X-Lark-Signature", &sig)
                .header("X-Lark-Request-Timestamp", "1700000000")
                .header("X-Lark-Request-Nonce", "n");
            if let Some(Inbound::Event(event)) = check(c.feishu.open(&req)) {
                assert_eq!(
                    event.plaintext.expose().as_bytes(),
                    rest_bytes,
                    "the event carries its plaintext"
                );
                check_changes(&c.feishu, &event);
            }
            // The lifecycle interpreters on arbitrary JSON documents of every event type.
            if let Ok(doc) = serde_json::from_slice::<serde_json::Value>(rest_bytes) {
                let ty = String::from_utf8_lossy(&[selector]).into_owned();
                for t in [ty.as_str(), "user_leave_org", "contact.user.updated_v3", "change_contact", "user_status_change"] {
                    for r in [
                        unilogin_dingtalk::events::directory_changes(t, &doc),
                        unilogin_feishu::events::directory_changes(t, &doc),
                        unilogin_wecom::events::directory_changes(t, &doc),
                    ] {
                        check_change_list(r);
                    }
                }
                // The store-app interpreter: typed errors, or changes of the codec's suite.
                for t in [
                    "SYNC_HTTP_PUSH_HIGH",
                    "suite_ticket",
                    "tmp_auth_code",
                    "change_auth",
                    "suite_relieve",
                ] {
                    let at = std::time::SystemTime::UNIX_EPOCH;
                    match unilogin_dingtalk::events::store_app_changes("suitefuzz", t, &doc, at) {
                        Ok(changes) => {
                            for change in changes {
                                assert_eq!(change.app().app_id().as_str(), "suitefuzz");
                                assert!(!change.kind().is_empty());
                            }
                        }
                        Err(e) => assert!(!e.kind().is_empty()),
                    }
                }
            }
        }
    }
});

/// The directory changes of an opened event: a list of changes that each name a person, or a
/// typed error.
fn check_changes(codec: &dyn EventCodec, event: &unilogin_core::events::Event) {
    check_change_list(codec.changes(event));
}

fn check_change_list(result: Result<Vec<DirectoryChange>, EventError>) {
    match result {
        Ok(changes) => {
            for change in changes {
                assert!(!change.ids().is_empty(), "a change names nobody");
                assert!(!change.kind().is_empty());
            }
        }
        Err(e) => assert!(!e.kind().is_empty()),
    }
}
