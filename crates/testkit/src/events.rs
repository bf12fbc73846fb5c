//! Fakes push real events: each platform fake holds per-app event-subscription credentials
//! ([`EventCredentials`]) and sends encrypted, signed callbacks to a URL over real HTTP, the way
//! the platform does (reference `isv-jsapi-events.md` §3), then judges the receiver's answer the
//! way the platform would ([`Delivery::verdict`]).
//!
//! ```no_run
//! use unilogin_testkit::dingtalk;
//! use unilogin_testkit::events::{EventFault, FakeEvent};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dt = dingtalk::start().await;
//! let url = "http://127.0.0.1:8080/events/acme/dingtalk";
//! let check = dt.push_event(url, FakeEvent::Verification, None).await?;
//! assert!(check.accepted(), "{:?}", check.verdict);
//! let left = dt.push_event(url, FakeEvent::UserLeft("user001".into()), None).await?;
//! let replay = dt.push_event(url, FakeEvent::UserLeft("user001".into()), Some(EventFault::Replay)).await?;
//! let refused = dt.push_event(url, FakeEvent::UserLeft("user001".into()), Some(EventFault::BadSignature)).await?;
//! assert!(!refused.accepted());
//! # let _ = (left, replay);
//! # Ok(())
//! # }
//! ```
//!
//! | [`FakeEvent`] | DingTalk (JSON, AES-256-CBC) | Feishu (schema 2.0) | WeCom (XML, `WXBizMsgCrypt`) |
//! |---|---|---|---|
//! | `Verification` | `POST` `{"EventType":"check_url"}` | `POST` `url_verification` challenge | `GET ?msg_signature&timestamp&nonce&echostr` |
//! | `UserLeft(id)` | `user_leave_org` (`UserId` array, `CorpId`) | `contact.user.deleted_v3` | `change_contact` / `delete_user` |
//! | `UserResigned(id)` | `user_leave_org` | `contact.user.updated_v3`, `object.status.is_resigned` | `update_user`, `Status` 5 |
//! | `UserDisabled(id)` | refused: DingTalk has no such event | `contact.user.updated_v3`, `object.status.is_frozen` | `update_user`, `Status` 2 |
//! | `UserUpdated(id)` | `user_modify_org` | `contact.user.updated_v3` (name changed) | `update_user` (`Name`) |
//! | `Custom(text)` | the JSON plaintext as given | the event JSON as given | the XML plaintext as given |
//!
//! What a receiver must answer (else [`Delivery::verdict`] is an `Err`): DingTalk — HTTP 200 JSON
//! `{msg_signature, encrypt, timeStamp, nonce}` whose signature checks and whose `encrypt`
//! decrypts to `success` with the receiver id; Feishu — HTTP 200 `{"challenge"}` echoing the
//! challenge for the verification, any 2xx otherwise; WeCom — HTTP 200 with the decrypted
//! `echostr` as the exact body for the verification, 2xx with `success`, an empty body or a
//! valid encrypted reply otherwise.
//!
//! Timestamps are **wall-clock** (receivers check them against real time), not the fake clock.
//!
//! The platform-side crypto here ([`crypto`]) is written independently of the library's codecs,
//! from the reference, and proven by the reference's worked examples, so a bug in the library's
//! codecs cannot hide in the fake.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::RngExt as _;

/// Bodies of [`EventFault::OversizedBody`] exceed this (256 KiB), the receivers' usual limit.
pub const OVERSIZED_EVENT_BODY: usize = 256 * 1024;

/// How far in the past [`EventFault::StaleTimestamp`] puts the timestamp.
pub const STALE_BY: Duration = Duration::from_secs(3600);

/// What to push.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FakeEvent {
    /// The platform's URL verification handshake.
    Verification,
    /// The person left the organisation / was deleted.
    UserLeft(String),
    /// The person resigned (Feishu `is_resigned`, WeCom `Status` 5; DingTalk `user_leave_org`).
    UserResigned(String),
    /// The person was disabled / frozen (Feishu `is_frozen`, WeCom `Status` 2).
    UserDisabled(String),
    /// The person's profile changed.
    UserUpdated(String),
    /// A plaintext of your own (JSON for DingTalk and Feishu, XML for WeCom).
    Custom(String),
}

/// A way the push misbehaves (each is otherwise a correct push).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum EventFault {
    /// The signature does not match (Feishu: needs an encrypt key).
    BadSignature,
    /// Signed correctly, but the timestamp is [`STALE_BY`] old.
    StaleTimestamp,
    /// Send the identical request twice; [`Delivery::replay`] holds the second answer.
    Replay,
    /// Signed correctly over a ciphertext that decrypts to nothing valid (Feishu: needs an
    /// encrypt key).
    GarbageCiphertext,
    /// A correctly signed and encrypted body larger than [`OVERSIZED_EVENT_BODY`].
    OversizedBody,
    /// Encrypted with another receiver id (DingTalk owner key, WeCom receiveid); Feishu: another
    /// verification token.
    WrongReceiver,
}

/// One app's event-subscription settings. `Debug` hides the token and key.
#[derive(Clone, PartialEq, Eq)]
pub struct EventCredentials {
    /// DingTalk / WeCom `token`; Feishu Verification Token.
    pub token: String,
    /// DingTalk `aes_key` / WeCom `EncodingAESKey` (43 characters, required); Feishu Encrypt Key
    /// (`None`: events are sent in plaintext, without signature headers).
    pub aes_key: Option<String>,
    /// DingTalk owner key (AppKey for event subscriptions), WeCom receiveid (corpid); Feishu:
    /// the `app_id` in `header.app_id`.
    pub receiver_id: String,
}

impl fmt::Debug for EventCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventCredentials")
            .field("token", &"***")
            .field("aes_key", &self.aes_key.as_ref().map(|_| "***"))
            .field("receiver_id", &self.receiver_id)
            .finish()
    }
}

/// What the receiver answered, and whether the platform would accept that answer.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// HTTP status of the answer.
    pub status: u16,
    /// The answer's body as text (lossy UTF-8).
    pub body: String,
    /// `Ok` when the platform would take the answer as an acknowledgement; `Err` says why not.
    pub verdict: Result<(), String>,
    /// The answer to the identical second request ([`EventFault::Replay`]).
    pub replay: Option<Box<Delivery>>,
    /// The event id the push carried (Feishu `header.event_id`, DingTalk `eventId`), if any.
    pub event_id: Option<String>,
}

impl Delivery {
    /// Whether the platform would take the answer as an acknowledgement.
    pub fn accepted(&self) -> bool {
        self.verdict.is_ok()
    }
}

/// Why a push could not be made.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum PushError {
    /// The receiver could not be reached or the answer not read.
    Http(String),
    /// The URL is not an absolute http(s) URL.
    BadUrl,
    /// The credentials cannot be used (e.g. an AES key that is not 43 base64 characters).
    BadCredentials(&'static str),
    /// This platform cannot send this event or fault.
    Unsupported(&'static str),
}

impl fmt::Display for PushError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PushError::Http(e) => write!(f, "event push failed: {e}"),
            PushError::BadUrl => f.write_str("event push: not an absolute http(s) URL"),
            PushError::BadCredentials(why) => write!(f, "event push: bad credentials: {why}"),
            PushError::Unsupported(why) => write!(f, "event push not supported: {why}"),
        }
    }
}

impl std::error::Error for PushError {}

/// The event side of a platform fake, object-safe for platform-neutral suites
/// (`&dyn FakeEventSource`): implemented by [`FakeDingTalk`](crate::dingtalk::FakeDingTalk),
/// [`FakeFeishu`](crate::feishu::FakeFeishu) and [`FakeWeCom`](crate::wecom::FakeWeCom) for their
/// default (WeCom: current) app.
pub trait FakeEventSource: Send + Sync {
    /// The subscription the pushes use (what the receiver must be configured with).
    fn event_credentials(&self) -> EventCredentials;

    /// Push `event` to `url`, misbehaving as `fault` says (see the module docs).
    fn push_event<'a>(
        &'a self,
        url: &'a str,
        event: FakeEvent,
        fault: Option<EventFault>,
    ) -> Pin<Box<dyn Future<Output = Result<Delivery, PushError>> + Send + 'a>>;
}

macro_rules! event_source {
    ($($fake:ty),*) => {$(
        impl FakeEventSource for $fake {
            fn event_credentials(&self) -> EventCredentials {
                <$fake>::event_credentials(self)
            }

            fn push_event<'a>(
                &'a self,
                url: &'a str,
                event: FakeEvent,
                fault: Option<EventFault>,
            ) -> Pin<Box<dyn Future<Output = Result<Delivery, PushError>> + Send + 'a>> {
                Box::pin(<$fake>::push_event(self, url, event, fault))
            }
        }
    )*};
}

event_source!(
    crate::dingtalk::FakeDingTalk,
    crate::feishu::FakeFeishu,
    crate::wecom::FakeWeCom
);

/// Seconds since the Unix epoch (wall clock).
pub(crate) fn unix_now() -> Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
}

/// The push's timestamp (stale when the fault asks for it).
pub(crate) fn push_time(fault: Option<EventFault>) -> Duration {
    let now = unix_now();
    if fault == Some(EventFault::StaleTimestamp) {
        now.saturating_sub(STALE_BY)
    } else {
        now
    }
}

/// `n` random ASCII alphanumerics.
pub(crate) fn random_alnum(n: usize) -> String {
    const SET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rng();
    (0..n)
        .map(|_| char::from(SET[rng.random_range(0..SET.len())]))
        .collect()
}

/// `n` random bytes.
pub(crate) fn random_bytes(n: usize) -> Vec<u8> {
    let mut rng = rand::rng();
    (0..n).map(|_| rng.random::<u8>()).collect()
}

/// A signature with its last hex digit changed.
pub(crate) fn corrupt(sig: &str) -> String {
    let mut s = sig.to_owned();
    let last = s.pop().unwrap_or('0');
    s.push(if last == '0' { '1' } else { '0' });
    s
}

/// An HTTP request a fake is about to send.
#[derive(Debug, Clone)]
pub(crate) struct Outgoing {
    pub(crate) get: bool,
    pub(crate) url: url::Url,
    pub(crate) headers: Vec<(&'static str, String)>,
    pub(crate) content_type: &'static str,
    pub(crate) body: Vec<u8>,
}

/// `base` with the query pairs added (keeping its own).
pub(crate) fn with_query(base: &str, pairs: &[(&str, &str)]) -> Result<url::Url, PushError> {
    let mut url = url::Url::parse(base).map_err(|_| PushError::BadUrl)?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(PushError::BadUrl);
    }
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in pairs {
            q.append_pair(k, v);
        }
    }
    Ok(url)
}

async fn send_once(client: &reqwest::Client, out: &Outgoing) -> Result<(u16, String), PushError> {
    let req = if out.get {
        client.get(out.url.clone())
    } else {
        client
            .post(out.url.clone())
            .header("content-type", out.content_type)
            .body(out.body.clone())
    };
    let req = out
        .headers
        .iter()
        .fold(req, |r, (k, v)| r.header(*k, v.as_str()));
    let resp = req
        .send()
        .await
        .map_err(|e| PushError::Http(e.to_string()))?;
    let status = resp.status().as_u16();
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| PushError::Http(e.to_string()))?;
    Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
}

/// Send `out` (twice for [`EventFault::Replay`]) and judge each answer with `judge`.
pub(crate) async fn deliver(
    out: Outgoing,
    fault: Option<EventFault>,
    event_id: Option<String>,
    judge: impl Fn(u16, &str) -> Result<(), String>,
) -> Result<Delivery, PushError> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|e| PushError::Http(e.to_string()))?;
    let (status, body) = send_once(&client, &out).await?;
    let mut delivery = Delivery {
        status,
        verdict: judge(status, &body),
        body,
        replay: None,
        event_id: event_id.clone(),
    };
    if fault == Some(EventFault::Replay) {
        let (status, body) = send_once(&client, &out).await?;
        delivery.replay = Some(Box::new(Delivery {
            status,
            verdict: judge(status, &body),
            body,
            replay: None,
            event_id,
        }));
    }
    Ok(delivery)
}

/// Pad `plaintext` (JSON object text or XML) with an ignorable field so the encrypted body
/// exceeds [`OVERSIZED_EVENT_BODY`].
pub(crate) fn oversize_json(plaintext: &str) -> String {
    let pad = "x".repeat(OVERSIZED_EVENT_BODY);
    match plaintext.rfind('}') {
        Some(i) => format!("{},\"Padding\":\"{pad}\"}}", &plaintext[..i]),
        None => format!("{plaintext}{pad}"),
    }
}

/// Like [`oversize_json`] for an XML plaintext.
pub(crate) fn oversize_xml(plaintext: &str) -> String {
    let pad = "x".repeat(OVERSIZED_EVENT_BODY);
    match plaintext.rfind("</xml>") {
        Some(i) => format!(
            "{}<Padding><![CDATA[{pad}]]></Padding></xml>",
            &plaintext[..i]
        ),
        None => format!("{plaintext}{pad}"),
    }
}

/// The platforms' callback crypto, written from the reference (§3) independently of the
/// library's codecs.
pub mod crypto {
    use aes::Aes256;
    use aes::cipher::block_padding::NoPadding;
    use aes::cipher::{BlockModeDecrypt, BlockModeEncrypt, KeyIvInit};
    use base64::Engine as _;
    use base64::engine::DecodePaddingMode;
    use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
    use sha1::{Digest as _, Sha1};
    use sha2::{Digest as _, Sha256};

    use crate::jsapi::hex;

    /// Why a payload could not be opened.
    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    #[non_exhaustive]
    pub enum CryptoError {
        /// The AES key is not 43 base64 characters decoding to 32 bytes.
        BadKey,
        /// Not base64.
        BadBase64,
        /// Empty or not whole AES blocks.
        BadLength,
        /// The PKCS#7 padding is wrong.
        BadPadding,
        /// The message length field points past the plaintext.
        BadLayout,
        /// The receiver id / owner key differs.
        WrongReceiver,
    }

    impl std::fmt::Display for CryptoError {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(match self {
                CryptoError::BadKey => "bad AES key",
                CryptoError::BadBase64 => "not base64",
                CryptoError::BadLength => "ciphertext is not whole AES blocks",
                CryptoError::BadPadding => "bad padding",
                CryptoError::BadLayout => "bad message layout",
                CryptoError::WrongReceiver => "receiver id mismatch",
            })
        }
    }

    impl std::error::Error for CryptoError {}

    /// The SDKs decode the 43-character key with `"="` appended and ignore the 2 spare bits.
    const LENIENT: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new()
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );

    /// `base64decode(aes_key + "=")`: the 32-byte key of DingTalk and WeCom.
    pub fn aes_key(encoding_aes_key: &str) -> Result<[u8; 32], CryptoError> {
        if encoding_aes_key.len() != 43 {
            return Err(CryptoError::BadKey);
        }
        let bytes = LENIENT
            .decode(format!("{encoding_aes_key}="))
            .map_err(|_| CryptoError::BadKey)?;
        bytes.try_into().map_err(|_| CryptoError::BadKey)
    }

    fn cbc_encrypt(key: &[u8; 32], iv: &[u8; 16], mut buf: Vec<u8>) -> Vec<u8> {
        let len = buf.len();
        // Callers pad to whole blocks, so this cannot fail; an empty result would be refused by
        // any receiver.
        match cbc::Encryptor::<Aes256>::new(key.into(), iv.into())
            .encrypt_padded::<NoPadding>(&mut buf, len)
        {
            Ok(_) => buf,
            Err(_) => Vec::new(),
        }
    }

    fn cbc_decrypt(key: &[u8; 32], iv: &[u8; 16], data: &[u8]) -> Result<Vec<u8>, CryptoError> {
        if data.is_empty() || !data.len().is_multiple_of(16) {
            return Err(CryptoError::BadLength);
        }
        let mut buf = data.to_vec();
        cbc::Decryptor::<Aes256>::new(key.into(), iv.into())
            .decrypt_padded::<NoPadding>(&mut buf)
            .map_err(|_| CryptoError::BadLength)?;
        Ok(buf)
    }

    fn pad(buf: &mut Vec<u8>, block: usize) {
        let n = block - buf.len() % block;
        buf.extend(std::iter::repeat_n(n as u8, n));
    }

    fn unpad(mut buf: Vec<u8>, block: usize) -> Result<Vec<u8>, CryptoError> {
        let n = usize::from(*buf.last().ok_or(CryptoError::BadPadding)?);
        if n == 0
            || n > block
            || n > buf.len()
            || buf[buf.len() - n..].iter().any(|&b| usize::from(b) != n)
        {
            return Err(CryptoError::BadPadding);
        }
        buf.truncate(buf.len() - n);
        Ok(buf)
    }

    /// DingTalk / WeCom: `base64(AES-256-CBC(random16 ‖ be32(len) ‖ msg ‖ receiver, PKCS#7/32))`
    /// with IV = `key[0..16]`.
    pub fn seal(key: &[u8; 32], random: &[u8; 16], msg: &[u8], receiver: &str) -> String {
        let mut buf = Vec::with_capacity(20 + msg.len() + receiver.len() + 32);
        buf.extend_from_slice(random);
        buf.extend_from_slice(&(msg.len() as u32).to_be_bytes());
        buf.extend_from_slice(msg);
        buf.extend_from_slice(receiver.as_bytes());
        pad(&mut buf, 32);
        let mut iv = [0u8; 16];
        iv.copy_from_slice(&key[..16]);
        STANDARD.encode(cbc_encrypt(key, &iv, buf))
    }

    /// The inverse of [`seal`]: `(msg, receiver)`; padding 1..=32 accepted.
    pub fn open(key: &[u8; 32], encrypt: &str) -> Result<(Vec<u8>, String), CryptoError> {
        let raw = STANDARD
            .decode(encrypt.trim())
            .map_err(|_| CryptoError::BadBase64)?;
        let mut iv = [0u8; 16];
        iv.copy_from_slice(&key[..16]);
        let plain = unpad(cbc_decrypt(key, &iv, &raw)?, 32)?;
        if plain.len() < 20 {
            return Err(CryptoError::BadLayout);
        }
        let len = u32::from_be_bytes([plain[16], plain[17], plain[18], plain[19]]) as usize;
        let end = 20usize
            .checked_add(len)
            .filter(|e| *e <= plain.len())
            .ok_or(CryptoError::BadLayout)?;
        let receiver =
            String::from_utf8(plain[end..].to_vec()).map_err(|_| CryptoError::BadLayout)?;
        Ok((plain[20..end].to_vec(), receiver))
    }

    /// [`open`] that also checks the receiver id.
    pub fn open_for(key: &[u8; 32], encrypt: &str, receiver: &str) -> Result<Vec<u8>, CryptoError> {
        let (msg, found) = open(key, encrypt)?;
        if found == receiver {
            Ok(msg)
        } else {
            Err(CryptoError::WrongReceiver)
        }
    }

    /// DingTalk / WeCom signature: lowercase hex `SHA1(concat(sort(parts)))`.
    pub fn sorted_sha1(parts: &[&str]) -> String {
        let mut sorted = parts.to_vec();
        sorted.sort_unstable();
        hex(&Sha1::digest(sorted.concat().as_bytes()))
    }

    /// Feishu: `key = SHA256(encrypt_key)`; `base64(iv ‖ AES-256-CBC(plaintext, PKCS#7/16))`.
    pub fn feishu_seal(encrypt_key: &str, iv: &[u8; 16], plaintext: &[u8]) -> String {
        let key: [u8; 32] = Sha256::digest(encrypt_key.as_bytes()).into();
        let mut buf = plaintext.to_vec();
        pad(&mut buf, 16);
        let mut out = iv.to_vec();
        out.extend(cbc_encrypt(&key, iv, buf));
        STANDARD.encode(out)
    }

    /// The inverse of [`feishu_seal`].
    pub fn feishu_open(encrypt_key: &str, encrypt: &str) -> Result<Vec<u8>, CryptoError> {
        let key: [u8; 32] = Sha256::digest(encrypt_key.as_bytes()).into();
        let raw = STANDARD
            .decode(encrypt.trim())
            .map_err(|_| CryptoError::BadBase64)?;
        if raw.len() < 32 {
            return Err(CryptoError::BadLength);
        }
        let mut iv = [0u8; 16];
        iv.copy_from_slice(&raw[..16]);
        unpad(cbc_decrypt(&key, &iv, &raw[16..])?, 16)
    }

    /// Feishu `X-Lark-Signature`: lowercase hex `SHA256(timestamp + nonce + encrypt_key + body)`.
    pub fn feishu_signature(
        timestamp: &str,
        nonce: &str,
        encrypt_key: &str,
        body: &[u8],
    ) -> String {
        let mut h = Sha256::new();
        h.update(timestamp.as_bytes());
        h.update(nonce.as_bytes());
        h.update(encrypt_key.as_bytes());
        h.update(body);
        hex(&h.finalize())
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        const AES: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
        const RANDOM: &[u8; 16] = b"RANDOM0123456789";

        #[test]
        fn dingtalk_worked_example() {
            let key = aes_key(AES).expect("key");
            let enc = seal(
                &key,
                RANDOM,
                br#"{"EventType":"check_url"}"#,
                "dingexamplecorp",
            );
            assert_eq!(
                enc,
                "5XltAAWvdfK97kdYilpWLDvFNLgY1KFiIXe61pQXlXXnW5VowxHFHeonjkpHsOXGVX2pvz3DMXlh0HGkWNIDHA=="
            );
            assert_eq!(
                sorted_sha1(&["tok_example", "1700000000000", "nonce123", &enc]),
                "53040adcee37dfbe8258a63af6edfdcd40e32ab5"
            );
            let reply = seal(&key, RANDOM, b"success", "dingexamplecorp");
            assert_eq!(
                reply,
                "5XltAAWvdfK97kdYilpWLI53tIKyxs8VXM4cOclvPwpUBmffohR0kZ+FJA3Uz4TKIXDYzwDC4gD2uPVcwQLvbw=="
            );
            assert_eq!(
                sorted_sha1(&["tok_example", "1700000000000", "nonce123", &reply]),
                "91b45f11a56f5ef74aaa821cb5468a861b6b5f1a"
            );
            assert_eq!(
                open_for(&key, &reply, "dingexamplecorp"),
                Ok(b"success".to_vec())
            );
            assert_eq!(
                open_for(&key, &reply, "other"),
                Err(CryptoError::WrongReceiver)
            );
        }

        #[test]
        fn wecom_worked_example() {
            let key = aes_key(AES).expect("key");
            let msg = "<xml><ToUserName><![CDATA[wwexamplecorp]]></ToUserName></xml>";
            let enc = seal(&key, RANDOM, msg.as_bytes(), "wwexamplecorp");
            assert_eq!(
                enc,
                "5XltAAWvdfK97kdYilpWLGiEpEl+nOWfWWmmg1hHZiWXKxjoLAavkpoF5roBiLMPOK6FXafHdtcMp9HTiAo9NzBxEnSYj9DLIUvS2m3DrN8NHJ48JOZoTSrgqHupKfnD"
            );
            assert_eq!(
                sorted_sha1(&["tok_example", "1700000000", "nonce123", &enc]),
                "b04474acadd1d179ddbb895da9753f23ce652f64"
            );
            assert_eq!(
                open(&key, &enc),
                Ok((msg.as_bytes().to_vec(), "wwexamplecorp".to_owned()))
            );
        }

        #[test]
        fn feishu_worked_example() {
            let iv: [u8; 16] = core::array::from_fn(|i| i as u8);
            let plain = r#"{"challenge":"abc","token":"vt_example","type":"url_verification"}"#;
            let enc = feishu_seal("example encrypt key", &iv, plain.as_bytes());
            assert_eq!(
                enc,
                "AAECAwQFBgcICQoLDA0OD6J/S/a7CWQrTuqu4Eqn6MMNIaG8HuxJO/jK+wPPBD40jLnFNTqT9rtgKUW8DUjM5wPBQ4e97dNZIOXtMQ6kk8BtItkXkPzdPlBvDiRHaHod"
            );
            let body = format!("{{\"encrypt\":\"{enc}\"}}");
            assert_eq!(
                feishu_signature(
                    "1700000000",
                    "nonce123",
                    "example encrypt key",
                    body.as_bytes()
                ),
                "ef4003b1992865abd7ec22058037a2bee3e1804d7b602387c1da1036efcc67a8"
            );
            assert_eq!(
                feishu_open("example encrypt key", &enc),
                Ok(plain.as_bytes().to_vec())
            );
        }

        #[test]
        fn bad_inputs_are_typed_errors() {
            assert_eq!(aes_key("short"), Err(CryptoError::BadKey));
            assert_eq!(aes_key(&"!".repeat(43)), Err(CryptoError::BadKey));
            let key = aes_key(AES).expect("key");
            assert_eq!(open(&key, "***"), Err(CryptoError::BadBase64));
            assert_eq!(open(&key, "AAAA"), Err(CryptoError::BadLength));
            assert_eq!(
                open(&key, ""),
                Err(CryptoError::BadBase64).or(Err(CryptoError::BadLength))
            );
            assert_eq!(feishu_open("k", "AAAA"), Err(CryptoError::BadLength));
            // A pad of 16 is accepted on the 32-byte layout (the Rust sample pads to 16).
            let mut buf = RANDOM.to_vec();
            buf.extend_from_slice(&2u32.to_be_bytes());
            buf.extend_from_slice(b"okR");
            pad(&mut buf, 16);
            let mut iv = [0u8; 16];
            iv.copy_from_slice(&key[..16]);
            let enc = STANDARD.encode(cbc_encrypt(&key, &iv, buf));
            assert_eq!(open(&key, &enc), Ok((b"ok".to_vec(), "R".to_owned())));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_debug_hides_secrets() {
        let c = EventCredentials {
            token: "tok_secret".into(),
            aes_key: Some("aes_secret".into()),
            receiver_id: "corp".into(),
        };
        let d = format!("{c:?}");
        assert!(
            !d.contains("tok_secret") && !d.contains("aes_secret") && d.contains("corp"),
            "{d}"
        );
    }

    #[test]
    fn helpers() {
        assert_eq!(corrupt("abc0"), "abc1");
        assert_eq!(corrupt("abc9"), "abc0");
        assert_eq!(random_alnum(16).len(), 16);
        assert!(oversize_json("{\"a\":1}").len() > OVERSIZED_EVENT_BODY);
        assert!(oversize_json("{\"a\":1}").starts_with("{\"a\":1,\"Padding\":\"x"));
        assert!(oversize_xml("<xml><A>1</A></xml>").ends_with("]]></Padding></xml>"));
        let stale = push_time(Some(EventFault::StaleTimestamp));
        assert!(unix_now() - stale >= STALE_BY);
        assert!(with_query("ftp://x/", &[]).is_err());
        let u = with_query("http://h/cb?a=1", &[("b", "2 3")]).expect("url");
        assert_eq!(u.as_str(), "http://h/cb?a=1&b=2+3");
    }
}
