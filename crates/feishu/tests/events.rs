//! Feishu event subscription crypto: the documented decryption sample, computed answers for
//! the signature, every refusal, redaction.

use std::time::{Duration, UNIX_EPOCH};

use proptest::prelude::*;
use unilogin_core::AppSecret;
use unilogin_core::events::crypto::{aes256_cbc_encrypt, encode_base64, sha256};
use unilogin_core::events::{EventCodec, EventCredentials, EventError, EventRequest, Inbound};
use unilogin_feishu::events::{FeishuEvents, decrypt};

const KEY: &str = "example encrypt key";
const TOKEN: &str = "vt_example";
/// Reference §3.2 worked example: the encrypted URL verification (IV 00..0f).
const CHALLENGE_ENCRYPT: &str = "AAECAwQFBgcICQoLDA0OD6J/S/a7CWQrTuqu4Eqn6MMNIaG8HuxJO/jK+wPPBD40jLnFNTqT9rtgKUW8DUjM5wPBQ4e97dNZIOXtMQ6kk8BtItkXkPzdPlBvDiRHaHod";

fn codec() -> FeishuEvents {
    FeishuEvents::new(TOKEN, Some(KEY)).unwrap()
}

fn encrypt(key: &str, plain: &str) -> String {
    let iv = [7u8; 16];
    let mut raw = iv.to_vec();
    raw.extend(aes256_cbc_encrypt(
        &sha256(key.as_bytes()),
        &iv,
        plain.as_bytes(),
        16,
    ));
    encode_base64(&raw)
}

fn body(encrypt: &str) -> Vec<u8> {
    format!("{{\"encrypt\":\"{encrypt}\"}}").into_bytes()
}

fn signed<'a>(body: &'a [u8], sig: &'a str) -> EventRequest<'a> {
    EventRequest::new("POST", body)
        .header("X-Lark-Request-Timestamp", "1700000000")
        .header("X-Lark-Request-Nonce", "nonce123")
        .header("X-Lark-Signature", sig)
}

fn sig(body: &[u8]) -> String {
    codec().signature("1700000000", "nonce123", body).unwrap()
}

const DELETED: &str = r#"{"schema":"2.0","header":{"event_id":"5e3702a84e847582be8db7fb73283c02","event_type":"contact.user.deleted_v3","create_time":"1608725989000","token":"vt_example","app_id":"cli_a","tenant_key":"t1"},"event":{"object":{"open_id":"ou_secret_7","name":"Secret Name"}}}"#;

/// Published: the Feishu documentation's decryption sample (`test key` → `hello world`),
/// used by the official and many community SDKs.
#[test]
fn documented_sample_decrypts_to_hello_world() {
    let key = sha256(b"test key");
    assert_eq!(
        decrypt(&key, "P37w+VZImNgPEO1RBhJ6RtKl7n6zymIbEG1pReEzghk=").unwrap(),
        b"hello world"
    );
    let wrong = sha256(b"other key");
    assert!(decrypt(&wrong, "P37w+VZImNgPEO1RBhJ6RtKl7n6zymIbEG1pReEzghk=").is_err());
    assert_eq!(decrypt(&key, "AAAA"), Err(EventError::BadCiphertext));
    assert_eq!(decrypt(&key, "%%%"), Err(EventError::BadBase64));
}

/// Computed (reference §3.2, checked with Python `cryptography`/`hashlib`): the signature of
/// the encrypted URL verification, and its answer.
#[test]
fn signed_encrypted_url_verification_matches_the_worked_example() {
    let body = body(CHALLENGE_ENCRYPT);
    assert_eq!(
        sig(&body),
        "ef4003b1992865abd7ec22058037a2bee3e1804d7b602387c1da1036efcc67a8"
    );
    let sig = sig(&body);
    let Inbound::Handshake(h) = codec().open(&signed(&body, &sig)).unwrap() else {
        panic!()
    };
    assert_eq!(h.reply.body(), br#"{"challenge":"abc"}"#);
    assert_eq!(
        h.timestamp,
        Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000))
    );
    // Like the SDK, the URL verification is accepted without signature headers…
    let unsigned = EventRequest::new("POST", &body);
    assert!(matches!(codec().open(&unsigned), Ok(Inbound::Handshake(_))));
    // …but checked against the Verification Token.
    let other_token = FeishuEvents::new("another", Some(KEY)).unwrap();
    assert_eq!(
        other_token.open(&unsigned).unwrap_err(),
        EventError::WrongToken
    );
}

#[test]
fn signed_encrypted_v2_event_opens() {
    let body = body(&encrypt(KEY, DELETED));
    let sig = sig(&body);
    let Inbound::Event(event) = codec().open(&signed(&body, &sig)).unwrap() else {
        panic!()
    };
    assert_eq!(event.event_type, "contact.user.deleted_v3");
    assert_eq!(event.dedupe_key(), "id:5e3702a84e847582be8db7fb73283c02");
    assert_eq!(
        event.timestamp,
        Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000))
    );
    assert_eq!(
        event.plaintext.expose_document()["event"]["object"]["open_id"],
        "ou_secret_7"
    );
    assert_eq!(codec().acknowledge(&event).body(), br#"{"msg":"success"}"#);
    // An event (not the URL check) needs the signature headers.
    let unsigned = EventRequest::new("POST", &body);
    assert_eq!(
        codec().open(&unsigned).unwrap_err(),
        EventError::MissingParameter {
            name: "X-Lark-Signature"
        }
    );
}

#[test]
fn plain_mode_checks_the_token_and_reads_both_schemas() {
    let plain = FeishuEvents::new(TOKEN, None).unwrap();
    let Inbound::Event(e) = plain
        .open(&EventRequest::new("POST", DELETED.as_bytes()))
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(
        e.timestamp,
        Some(UNIX_EPOCH + Duration::from_millis(1_608_725_989_000))
    );
    let v1 = r#"{"uuid":"u-1","ts":"1502199207.7171419","token":"vt_example","type":"event_callback","event":{"type":"app_ticket","app_ticket":"x"}}"#;
    let Inbound::Event(e) = plain
        .open(&EventRequest::new("POST", v1.as_bytes()))
        .unwrap()
    else {
        panic!()
    };
    assert_eq!(
        (e.event_type.as_str(), e.event_id.as_deref()),
        ("app_ticket", Some("u-1"))
    );
    assert_eq!(
        e.timestamp,
        Some(UNIX_EPOCH + Duration::from_secs(1_502_199_207))
    );
    let wrong = DELETED.replace("vt_example", "vt_other");
    assert_eq!(
        plain
            .open(&EventRequest::new("POST", wrong.as_bytes()))
            .unwrap_err(),
        EventError::WrongToken
    );
    let no_token = r#"{"schema":"2.0","header":{"event_id":"1","event_type":"x"}}"#;
    assert_eq!(
        plain
            .open(&EventRequest::new("POST", no_token.as_bytes()))
            .unwrap_err(),
        EventError::WrongToken
    );
    let encrypted = body(CHALLENGE_ENCRYPT);
    assert_eq!(
        plain
            .open(&EventRequest::new("POST", &encrypted))
            .unwrap_err(),
        EventError::UnexpectedEncryption
    );
}

#[test]
fn every_bad_input_is_a_typed_error() {
    let c = codec();
    let good = body(&encrypt(KEY, DELETED));
    let s = sig(&good);
    let mut tampered = good.clone();
    tampered.push(b' ');
    assert_eq!(
        c.open(&signed(&tampered, &s)).unwrap_err(),
        EventError::BadSignature
    );
    assert_eq!(
        c.open(&signed(&good, &"0".repeat(64))).unwrap_err(),
        EventError::BadSignature
    );
    assert_eq!(
        c.open(&EventRequest::new("GET", &good)).unwrap_err(),
        EventError::MethodNotAllowed
    );
    let no_nonce = EventRequest::new("POST", &good)
        .header("X-Lark-Signature", &s)
        .header("X-Lark-Request-Timestamp", "1");
    assert_eq!(
        c.open(&no_nonce).unwrap_err(),
        EventError::MissingParameter {
            name: "X-Lark-Request-Nonce"
        }
    );
    assert_eq!(
        c.open(&signed(DELETED.as_bytes(), &s)).unwrap_err(),
        EventError::NotEncrypted
    );
    assert_eq!(
        c.open(&signed(b"nope", &s)).unwrap_err(),
        EventError::BadJson
    );
    let huge = vec![b' '; unilogin_core::events::MAX_BODY + 1];
    assert_eq!(
        c.open(&signed(&huge, &s)).unwrap_err().kind(),
        "body_too_large"
    );
    let check = |body: Vec<u8>| c.open(&signed(&body, &sig(&body))).unwrap_err();
    assert_eq!(check(body("@@@")), EventError::BadBase64);
    assert_eq!(
        check(body("AAAAAAAAAAAAAAAAAAAAAA==")),
        EventError::BadCiphertext
    );
    assert_eq!(
        check(br#"{"encrypt":5}"#.to_vec()),
        EventError::MissingField { name: "encrypt" }
    );
    assert_eq!(check(body(&encrypt(KEY, "not json"))), EventError::BadJson);
    let no_id = r#"{"schema":"2.0","header":{"event_type":"x","token":"vt_example"}}"#;
    assert_eq!(
        check(body(&encrypt(KEY, no_id))),
        EventError::MissingField { name: "event_id" }
    );
    assert!(matches!(
        check(body(&encrypt("another key", DELETED))),
        EventError::BadPadding | EventError::BadUtf8 | EventError::BadJson
    ));
    let soon_sig = codec().signature("soon", "nonce123", &good).unwrap();
    let bad_ts = EventRequest::new("POST", &good)
        .header("X-Lark-Request-Timestamp", "soon")
        .header("X-Lark-Request-Nonce", "nonce123")
        .header("X-Lark-Signature", &soon_sig);
    assert_eq!(c.open(&bad_ts).unwrap_err(), EventError::BadTimestamp);
    let twice = signed(&good, &s).header("x-lark-signature", "again");
    assert_eq!(
        c.open(&twice).unwrap_err(),
        EventError::BadParameter {
            name: "X-Lark-Signature"
        }
    );
}

#[test]
fn credentials_build_the_codec_and_secrets_never_print() {
    let creds = EventCredentials {
        token: Some(AppSecret::new(TOKEN)),
        key: Some(AppSecret::new(KEY)),
        receiver_id: None,
    };
    let built = FeishuEvents::from_credentials(&creds).unwrap();
    assert_eq!(built.platform(), "feishu");
    assert_eq!(
        FeishuEvents::from_credentials(&EventCredentials::default())
            .unwrap_err()
            .kind(),
        "invalid_config"
    );
    assert_eq!(
        FeishuEvents::new(TOKEN, Some("")).unwrap_err().kind(),
        "invalid_config"
    );
    let body = body(&encrypt(KEY, DELETED));
    let s = sig(&body);
    let inbound = built.open(&signed(&body, &s)).unwrap();
    let err = built.open(&signed(&body, "x")).unwrap_err();
    let printed = format!("{built:?} {:?} {inbound:?} {err} {err:?}", codec());
    for secret in [TOKEN, KEY, "ou_secret_7", "Secret Name", s.as_str()] {
        assert!(!printed.contains(secret), "{secret} leaked");
    }
}

proptest! {
    #[test]
    fn random_requests_never_panic(sig in ".{0,70}", body in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = codec().open(&signed(&body, &sig));
        let _ = FeishuEvents::new(TOKEN, None).unwrap().open(&EventRequest::new("POST", &body));
    }

    #[test]
    fn random_signed_plaintexts_never_panic(plain in ".{0,300}") {
        let body = body(&encrypt(KEY, &plain));
        let s = sig(&body);
        let _ = codec().open(&signed(&body, &s));
    }
}
