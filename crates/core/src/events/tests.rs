use std::time::{Duration, UNIX_EPOCH};

use proptest::prelude::*;

use super::crypto::{self, MsgCrypt};
use super::*;

const KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";

fn crypt() -> MsgCrypt {
    MsgCrypt::new("tok_example", KEY, "dingexamplecorp").unwrap()
}

/// Reference worked example (isv-jsapi-events.md §3.1.4), recomputed independently with
/// Python `cryptography` while writing this test.
#[test]
fn msg_crypt_matches_the_worked_example() {
    let c = crypt();
    let encrypt = c.encrypt_with(br#"{"EventType":"check_url"}"#, b"RANDOM0123456789");
    assert_eq!(
        encrypt,
        "5XltAAWvdfK97kdYilpWLDvFNLgY1KFiIXe61pQXlXXnW5VowxHFHeonjkpHsOXGVX2pvz3DMXlh0HGkWNIDHA=="
    );
    assert_eq!(
        c.signature("1700000000000", "nonce123", &encrypt),
        "53040adcee37dfbe8258a63af6edfdcd40e32ab5"
    );
    assert_eq!(
        c.decrypt(&encrypt).unwrap(),
        br#"{"EventType":"check_url"}"#
    );
}

#[test]
fn signature_is_checked_in_either_case_and_refused_when_altered() {
    let c = crypt();
    let sig = c.signature("1", "n", "e");
    c.verify(&sig, "1", "n", "e").unwrap();
    c.verify(&sig.to_uppercase(), "1", "n", "e").unwrap();
    assert_eq!(c.verify(&sig, "2", "n", "e"), Err(EventError::BadSignature));
    assert_eq!(
        c.verify(&sig[1..], "1", "n", "e"),
        Err(EventError::BadSignature)
    );
    assert_eq!(c.verify("", "1", "n", "e"), Err(EventError::BadSignature));
}

#[test]
fn decrypt_reports_each_kind_of_bad_input() {
    let c = crypt();
    assert_eq!(c.decrypt("not base64!"), Err(EventError::BadBase64));
    assert_eq!(c.decrypt(""), Err(EventError::BadCiphertext));
    assert_eq!(
        c.decrypt(&crypto::encode_base64(&[0; 17])),
        Err(EventError::BadCiphertext)
    );
    let other = MsgCrypt::new("tok_example", KEY, "someone-else").unwrap();
    assert_eq!(
        c.decrypt(&other.encrypt(b"x")),
        Err(EventError::WrongReceiver)
    );
    // A length field pointing past the end: random(16) + len 0xffff + nothing.
    let key: [u8; 32] = crypto::decode_base64(&format!("{KEY}=")).unwrap()[..]
        .try_into()
        .unwrap();
    let iv: [u8; 16] = key[..16].try_into().unwrap();
    let mut plain = b"RANDOM0123456789".to_vec();
    plain.extend_from_slice(&0xffffu32.to_be_bytes());
    let long = crypto::encode_base64(&crypto::aes256_cbc_encrypt(&key, &iv, &plain, 32));
    assert_eq!(c.decrypt(&long), Err(EventError::BadLength));
    // Too short for the length field.
    let short = crypto::encode_base64(&crypto::aes256_cbc_encrypt(&key, &iv, b"abc", 32));
    assert_eq!(c.decrypt(&short), Err(EventError::BadLength));
    // Garbage blocks: the padding check fails (or, rarely, the length check).
    let garbage = crypto::encode_base64(&[0x5a; 64]);
    assert!(matches!(
        c.decrypt(&garbage),
        Err(EventError::BadPadding | EventError::BadLength | EventError::WrongReceiver)
    ));
}

#[test]
fn pkcs7_accepts_1_to_block_and_checks_every_byte() {
    for block in [16u8, 32] {
        for len in 0..70 {
            let mut buf = vec![7u8; len];
            crypto::pkcs7_pad(&mut buf, block);
            assert_eq!(buf.len() % usize::from(block), 0);
            assert!(buf.len() > len);
            crypto::pkcs7_unpad(&mut buf, block).unwrap();
            assert_eq!(buf, vec![7u8; len]);
        }
    }
    let mut bad = vec![1, 2, 3, 3];
    assert_eq!(
        crypto::pkcs7_unpad(&mut bad, 32),
        Err(EventError::BadPadding)
    );
    let mut zero = vec![0; 16];
    assert_eq!(
        crypto::pkcs7_unpad(&mut zero, 16),
        Err(EventError::BadPadding)
    );
    let mut over = vec![17; 17];
    assert_eq!(
        crypto::pkcs7_unpad(&mut over, 16),
        Err(EventError::BadPadding)
    );
    assert_eq!(
        crypto::pkcs7_unpad(&mut vec![], 16),
        Err(EventError::BadPadding)
    );
}

#[test]
fn bad_keys_are_configuration_errors() {
    for (token, key, receiver) in [
        ("", KEY, "r"),
        ("t", KEY, ""),
        ("t", "short", "r"),
        ("t", "!bcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", "r"),
    ] {
        let err = MsgCrypt::new(token, key, receiver).unwrap_err();
        assert_eq!(err.kind(), "invalid_config");
        assert_eq!(err.http_status(), 500);
    }
}

#[test]
fn nothing_secret_is_printed() {
    let c = crypt();
    let debug = format!("{c:?}");
    assert!(!debug.contains("tok_example") && !debug.contains("abcdefghij"));
    let p = Plaintext::new("secret-body".into(), serde_json::json!({"a": "secret-doc"}));
    assert_eq!(format!("{p:?}"), "Plaintext(*** 11 bytes)");
    let r = Reply::new("text/plain", "secret-echo");
    assert!(!format!("{r:?}").contains("secret-echo"));
    let req = EventRequest::new("POST", b"secret-body").query("msg_signature", "secret-sig");
    let debug = format!("{req:?}");
    assert!(!debug.contains("secret-body") && !debug.contains("secret-sig"));
    assert!(debug.contains("msg_signature"));
}

#[test]
fn request_lookups_refuse_duplicates_and_bound_the_body() {
    let req = EventRequest::new("POST", b"")
        .query("a", "1")
        .query("a", "2")
        .header("X-One", "v");
    assert_eq!(
        req.query_param("a"),
        Err(EventError::BadParameter { name: "a" })
    );
    assert_eq!(req.header_value("x-one"), Ok(Some("v")));
    assert_eq!(
        req.require_query(&["missing", "alt"]),
        Err(EventError::MissingParameter { name: "missing" })
    );
    let big = vec![b'x'; MAX_BODY + 1];
    assert_eq!(
        EventRequest::new("POST", &big).bounded_body(),
        Err(EventError::BodyTooLarge { limit: MAX_BODY })
    );
    assert_eq!(
        EventRequest::new("POST", &big[1..])
            .bounded_body()
            .map(<[u8]>::len),
        Ok(MAX_BODY)
    );
}

#[test]
fn window_check_uses_the_given_clock() {
    let sent = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let w = Duration::from_secs(300);
    check_window(Some(sent), sent + w, w).unwrap();
    check_window(Some(sent), sent - w, w).unwrap();
    assert_eq!(
        check_window(Some(sent), sent + w + Duration::from_millis(1), w),
        Err(EventError::StaleTimestamp)
    );
    assert_eq!(
        check_window(Some(sent + w * 2), sent, w),
        Err(EventError::StaleTimestamp)
    );
    assert_eq!(
        check_window(None, sent, w),
        Err(EventError::MissingTimestamp)
    );
}

#[test]
fn timestamps_parse_strictly() {
    assert_eq!(
        parse_timestamp("1700000000", false).unwrap(),
        UNIX_EPOCH + Duration::from_secs(1_700_000_000)
    );
    assert_eq!(
        parse_timestamp("1502199207.7171419", false).unwrap(),
        UNIX_EPOCH + Duration::from_secs(1_502_199_207)
    );
    for bad in ["", "-1", "1e9", " 1", "99999999999999999", "."] {
        assert_eq!(
            parse_timestamp(bad, true),
            Err(EventError::BadTimestamp),
            "{bad}"
        );
    }
}

#[test]
fn dedupe_key_falls_back_to_the_plaintext_digest() {
    let event = |id: Option<&str>, text: &str| Event {
        event_type: "t".into(),
        event_id: id.map(str::to_string),
        timestamp: None,
        format: PayloadFormat::Json,
        plaintext: Plaintext::new(text.into(), serde_json::Value::Null),
    };
    assert_eq!(event(Some("e1"), "x").dedupe_key(), "id:e1");
    let a = event(None, "{\"a\":1}").dedupe_key();
    assert!(a.starts_with("sha256:") && a.len() == 7 + 64);
    assert_eq!(a, event(None, "{\"a\":1}").dedupe_key());
    assert_ne!(a, event(None, "{\"a\":2}").dedupe_key());
}

#[test]
fn errors_convert_to_the_core_error() {
    let e: crate::Error = EventError::BadSignature.into();
    assert_eq!(e.kind(), "invalid_callback");
    let e: crate::Error = EventError::InvalidConfig { what: "x" }.into();
    assert_eq!(e.kind(), "config");
}

proptest! {
    #[test]
    fn random_ciphertexts_never_panic(s in ".{0,200}", bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let c = crypt();
        let _ = c.decrypt(&s);
        let _ = c.decrypt(&crypto::encode_base64(&bytes));
        let _ = c.verify(&s, &s, &s, &s);
        let mut v = bytes.clone();
        let _ = crypto::pkcs7_unpad(&mut v, 32);
        let _ = parse_timestamp(&s, true);
    }

    #[test]
    fn encrypt_then_decrypt_is_the_identity(msg in proptest::collection::vec(any::<u8>(), 0..300)) {
        let c = crypt();
        prop_assert_eq!(c.decrypt(&c.encrypt(&msg)).unwrap(), msg);
    }
}
