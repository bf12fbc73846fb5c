//! Platform events: verified, decrypted callbacks behind one interface.
//!
//! A platform pushes events (a member left, a ticket, a URL check) to a callback URL. Each
//! platform signs and encrypts them its own way; a platform crate implements [`EventCodec`]
//! for its scheme and the receiver stays platform-neutral:
//!
//! 1. build an [`EventRequest`] from the HTTP request (method, percent-decoded query
//!    parameters, headers, the exact body bytes);
//! 2. [`EventCodec::open`] verifies and decrypts it into an [`Inbound`]: either a
//!    [`Handshake`] (the platform checking the URL: answer with its [`Reply`], apply nothing)
//!    or an [`Event`] (type name, event id, timestamp, the decrypted [`Plaintext`]);
//! 3. check the timestamp window ([`Event::check_window`], with the caller's clock) and
//!    de-duplicate on [`Event::dedupe_key`];
//! 4. answer with [`EventCodec::acknowledge`].
//!
//! Every failure is a typed [`EventError`] whose [`kind`](EventError::kind) is a fixed word; no
//! error, `Debug` or `Display` output carries a decrypted body, a key, a token or a signature.
//! The shared primitives (SHA-1 signatures, AES-256-CBC, PKCS#7 to 16 or 32 bytes) are in
//! [`crypto`].
//!
//! ```
//! use std::time::{Duration, UNIX_EPOCH};
//! use unilogin_core::events::{EventError, EventRequest, Plaintext, check_window};
//!
//! let request = EventRequest::new("POST", br#"{"encrypt":"..."}"#)
//!     .query("timestamp", "1700000000")
//!     .header("Content-Type", "application/json");
//! assert_eq!(request.query_param("timestamp").unwrap(), Some("1700000000"));
//! assert_eq!(request.header_value("content-type").unwrap(), Some("application/json"));
//!
//! let sent = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
//! let now = sent + Duration::from_secs(400);
//! let err = check_window(Some(sent), now, Duration::from_secs(300)).unwrap_err();
//! assert_eq!(err.kind(), "stale_timestamp");
//!
//! let plain = Plaintext::new("{\"UserId\":[\"secret-user\"]}".into(), serde_json::json!({}));
//! assert!(!format!("{plain:?}").contains("secret-user"));
//! ```

pub mod crypto;
mod directory;

pub use directory::{DirectoryChange, InstallInfo, LeaveReason, PersonIds, StoreAppChange};

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use subtle::ConstantTimeEq;

use crate::AppSecret;

/// The largest callback body a codec accepts (256 KiB); larger bodies are
/// [`EventError::BodyTooLarge`] before any parsing.
pub const MAX_BODY: usize = 256 * 1024;

/// The timestamp window a receiver should allow by default (5 minutes either side).
pub const DEFAULT_WINDOW: Duration = Duration::from_secs(300);

/// A bad incoming callback, or a bad event configuration. No variant carries request data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EventError {
    /// The HTTP method is not one the platform uses for this callback.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The body is larger than [`MAX_BODY`].
    #[error("body larger than {limit} bytes")]
    BodyTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// A required query parameter or header is missing.
    #[error("missing parameter `{name}`")]
    MissingParameter {
        /// The parameter's name.
        name: &'static str,
    },
    /// A parameter appears twice, or is malformed.
    #[error("bad parameter `{name}`")]
    BadParameter {
        /// The parameter's name.
        name: &'static str,
    },
    /// The signature does not match.
    #[error("signature mismatch")]
    BadSignature,
    /// The request has no timestamp where the window check needs one.
    #[error("missing timestamp")]
    MissingTimestamp,
    /// The timestamp is not a number.
    #[error("malformed timestamp")]
    BadTimestamp,
    /// The timestamp is outside the allowed window.
    #[error("timestamp outside the allowed window")]
    StaleTimestamp,
    /// The ciphertext is not valid base64.
    #[error("ciphertext is not valid base64")]
    BadBase64,
    /// The ciphertext has an impossible length (empty, or not whole AES blocks).
    #[error("ciphertext has an invalid length")]
    BadCiphertext,
    /// The PKCS#7 padding is malformed (usually: the wrong key).
    #[error("bad padding")]
    BadPadding,
    /// The length field of the decrypted message points outside it.
    #[error("message length field out of range")]
    BadLength,
    /// The decrypted message names another receiver (corp id, suite id or app key).
    #[error("message is for another receiver")]
    WrongReceiver,
    /// The verification token in the message does not match.
    #[error("verification token mismatch")]
    WrongToken,
    /// The body is encrypted but no decryption key is configured.
    #[error("encrypted body but no encryption key configured")]
    UnexpectedEncryption,
    /// A decryption key is configured but the body is not encrypted.
    #[error("plain body but an encryption key is configured")]
    NotEncrypted,
    /// The (decrypted) payload is not UTF-8.
    #[error("payload is not UTF-8")]
    BadUtf8,
    /// The (decrypted) payload is not the expected JSON.
    #[error("payload is not valid JSON")]
    BadJson,
    /// The (decrypted) payload is not the expected XML.
    #[error("payload is not valid XML")]
    BadXml,
    /// A field the platform always sends is missing from the payload.
    #[error("payload has no `{name}`")]
    MissingField {
        /// The field's name.
        name: &'static str,
    },
    /// The event credentials are unusable (empty token, AES key of the wrong length…).
    #[error("invalid event configuration: {what}")]
    InvalidConfig {
        /// What is wrong, in fixed words.
        what: &'static str,
    },
}

impl EventError {
    /// A stable machine-readable word for metrics and error bodies.
    ///
    /// ```
    /// use unilogin_core::events::EventError;
    /// assert_eq!(EventError::BadSignature.kind(), "bad_signature");
    /// assert_eq!(EventError::BodyTooLarge { limit: 1 }.kind(), "body_too_large");
    /// ```
    pub fn kind(&self) -> &'static str {
        match self {
            Self::MethodNotAllowed => "method_not_allowed",
            Self::BodyTooLarge { .. } => "body_too_large",
            Self::MissingParameter { .. } => "missing_parameter",
            Self::BadParameter { .. } => "bad_parameter",
            Self::BadSignature => "bad_signature",
            Self::MissingTimestamp => "missing_timestamp",
            Self::BadTimestamp => "bad_timestamp",
            Self::StaleTimestamp => "stale_timestamp",
            Self::BadBase64 => "bad_base64",
            Self::BadCiphertext => "bad_ciphertext",
            Self::BadPadding => "bad_padding",
            Self::BadLength => "bad_length",
            Self::WrongReceiver => "wrong_receiver",
            Self::WrongToken => "wrong_token",
            Self::UnexpectedEncryption => "unexpected_encryption",
            Self::NotEncrypted => "not_encrypted",
            Self::BadUtf8 => "bad_utf8",
            Self::BadJson => "bad_json",
            Self::BadXml => "bad_xml",
            Self::MissingField { .. } => "missing_field",
            Self::InvalidConfig { .. } => "invalid_config",
        }
    }

    /// The HTTP status a receiver should answer with: 405, 413, 401 (signature, token,
    /// receiver, timestamp window), 500 (our configuration), else 400.
    ///
    /// ```
    /// use unilogin_core::events::EventError;
    /// assert_eq!(EventError::BadSignature.http_status(), 401);
    /// assert_eq!(EventError::BadPadding.http_status(), 400);
    /// ```
    pub fn http_status(&self) -> u16 {
        match self {
            Self::MethodNotAllowed => 405,
            Self::BodyTooLarge { .. } => 413,
            Self::BadSignature | Self::WrongToken | Self::WrongReceiver | Self::StaleTimestamp => {
                401
            }
            Self::InvalidConfig { .. } | Self::UnexpectedEncryption => 500,
            _ => 400,
        }
    }
}

impl From<EventError> for crate::Error {
    fn from(e: EventError) -> Self {
        match e {
            EventError::InvalidConfig { what } => {
                crate::Error::config(None, None, "events", what.to_string())
            }
            other => crate::Error::InvalidCallback {
                reason: other.kind(),
            },
        }
    }
}

/// An incoming callback request, platform-neutral. Query values must already be
/// percent-decoded; the body must be the exact bytes received (signatures cover them).
#[derive(Clone)]
pub struct EventRequest<'a> {
    method: &'a str,
    query: Vec<(&'a str, &'a str)>,
    headers: Vec<(&'a str, &'a str)>,
    body: &'a [u8],
}

impl<'a> EventRequest<'a> {
    /// A request with `method` (`"GET"`, `"POST"`) and the raw `body`.
    pub fn new(method: &'a str, body: &'a [u8]) -> Self {
        Self {
            method,
            query: Vec::new(),
            headers: Vec::new(),
            body,
        }
    }

    /// Adds a (percent-decoded) query parameter.
    pub fn query(mut self, name: &'a str, value: &'a str) -> Self {
        self.query.push((name, value));
        self
    }

    /// Adds a header (names compare case-insensitively).
    pub fn header(mut self, name: &'a str, value: &'a str) -> Self {
        self.headers.push((name, value));
        self
    }

    /// The HTTP method.
    pub fn method(&self) -> &str {
        self.method
    }

    /// The body bytes.
    pub fn body(&self) -> &'a [u8] {
        self.body
    }

    /// The query parameter `name`: `None` when absent, [`EventError::BadParameter`] when it
    /// appears more than once (an ambiguous signature input is refused, never guessed).
    pub fn query_param(&self, name: &'static str) -> Result<Option<&'a str>, EventError> {
        unique(self.query.iter().filter(|(n, _)| *n == name), name)
    }

    /// The header `name` (case-insensitive), refused when repeated like
    /// [`query_param`](Self::query_param).
    pub fn header_value(&self, name: &'static str) -> Result<Option<&'a str>, EventError> {
        let matching = self
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name));
        unique(matching, name)
    }

    /// The first present of several spellings of one parameter (`msg_signature` / `signature`).
    pub fn query_any(&self, names: &[&'static str]) -> Result<Option<&'a str>, EventError> {
        for name in names {
            if let Some(v) = self.query_param(name)? {
                return Ok(Some(v));
            }
        }
        Ok(None)
    }

    /// Like [`query_any`](Self::query_any), [`EventError::MissingParameter`] (named after the
    /// first spelling) when none is present.
    pub fn require_query(&self, names: &[&'static str]) -> Result<&'a str, EventError> {
        self.query_any(names)?
            .ok_or(EventError::MissingParameter { name: names[0] })
    }

    /// The body, refused with [`EventError::BodyTooLarge`] above [`MAX_BODY`].
    pub fn bounded_body(&self) -> Result<&'a [u8], EventError> {
        if self.body.len() > MAX_BODY {
            return Err(EventError::BodyTooLarge { limit: MAX_BODY });
        }
        Ok(self.body)
    }
}

fn unique<'a, 'b>(
    mut it: impl Iterator<Item = &'b (&'a str, &'a str)>,
    name: &'static str,
) -> Result<Option<&'a str>, EventError>
where
    'a: 'b,
{
    let first = it.next().map(|(_, v)| *v);
    if it.next().is_some() {
        return Err(EventError::BadParameter { name });
    }
    Ok(first)
}

impl fmt::Debug for EventRequest<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = |v: &[(&str, &str)]| v.iter().map(|(n, _)| n.to_string()).collect::<Vec<_>>();
        f.debug_struct("EventRequest")
            .field("method", &self.method)
            .field("query", &names(&self.query))
            .field("headers", &names(&self.headers))
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// The outcome of opening a callback.
#[derive(Debug)]
pub enum Inbound {
    /// The platform is checking the URL: answer with the reply, apply nothing.
    Handshake(Handshake),
    /// A verified, decrypted event.
    Event(Event),
}

impl Inbound {
    /// The request's timestamp, when the platform sent one.
    pub fn timestamp(&self) -> Option<SystemTime> {
        match self {
            Self::Handshake(h) => h.timestamp,
            Self::Event(e) => e.timestamp,
        }
    }
}

/// A URL-verification handshake.
#[derive(Debug)]
pub struct Handshake {
    /// What to answer.
    pub reply: Reply,
    /// The request's timestamp, when it has one.
    pub timestamp: Option<SystemTime>,
}

/// How an event's plaintext is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadFormat {
    /// JSON (DingTalk, Feishu).
    Json,
    /// XML (WeCom); [`Plaintext::expose_document`] holds it converted to JSON.
    Xml,
}

/// A verified, decrypted event.
#[derive(Debug)]
pub struct Event {
    /// The platform's event type name (`user_leave_org`, `contact.user.deleted_v3`,
    /// `change_contact`…).
    pub event_type: String,
    /// The platform's event id, when it sends one.
    pub event_id: Option<String>,
    /// The request's timestamp (the signed one where the platform signs one).
    pub timestamp: Option<SystemTime>,
    /// How the plaintext is written.
    pub format: PayloadFormat,
    /// The decrypted payload (redacted in `Debug`).
    pub plaintext: Plaintext,
}

impl Event {
    /// The key to de-duplicate on: `id:<event id>`, or, when the platform sends none,
    /// `sha256:<hex digest of the plaintext>` (a retried or replayed event has the same one).
    ///
    /// ```
    /// # use unilogin_core::events::{Event, PayloadFormat, Plaintext};
    /// let event = Event { event_type: "t".into(), event_id: Some("e1".into()), timestamp: None,
    ///     format: PayloadFormat::Json, plaintext: Plaintext::new("{}".into(), serde_json::json!({})) };
    /// assert_eq!(event.dedupe_key(), "id:e1");
    /// ```
    pub fn dedupe_key(&self) -> String {
        match &self.event_id {
            Some(id) => format!("id:{id}"),
            None => format!(
                "sha256:{}",
                crypto::hex(&crypto::sha256(self.plaintext.expose().as_bytes()))
            ),
        }
    }

    /// [`check_window`] on this event's timestamp.
    pub fn check_window(&self, now: SystemTime, window: Duration) -> Result<(), EventError> {
        check_window(self.timestamp, now, window)
    }
}

/// Whether `timestamp` is within `window` of `now` (either side):
/// [`EventError::MissingTimestamp`] without one, [`EventError::StaleTimestamp`] outside.
pub fn check_window(
    timestamp: Option<SystemTime>,
    now: SystemTime,
    window: Duration,
) -> Result<(), EventError> {
    let ts = timestamp.ok_or(EventError::MissingTimestamp)?;
    let skew = match now.duration_since(ts) {
        Ok(d) => d,
        Err(e) => e.duration(),
    };
    if skew > window {
        return Err(EventError::StaleTimestamp);
    }
    Ok(())
}

/// Parses a decimal timestamp (`1700000000` seconds, or milliseconds when `millis`); a
/// fractional part (Feishu v1 `ts`) is ignored.
///
/// ```
/// use std::time::{Duration, UNIX_EPOCH};
/// use unilogin_core::events::parse_timestamp;
/// assert_eq!(parse_timestamp("1700000000000", true).unwrap(), UNIX_EPOCH + Duration::from_secs(1_700_000_000));
/// assert_eq!(parse_timestamp("12x", false).unwrap_err().kind(), "bad_timestamp");
/// ```
pub fn parse_timestamp(value: &str, millis: bool) -> Result<SystemTime, EventError> {
    let whole = value.split_once('.').map_or(value, |(w, _)| w);
    if whole.is_empty() || whole.len() > 16 || !whole.bytes().all(|b| b.is_ascii_digit()) {
        return Err(EventError::BadTimestamp);
    }
    let n: u64 = whole.parse().map_err(|_| EventError::BadTimestamp)?;
    let d = if millis {
        Duration::from_millis(n)
    } else {
        Duration::from_secs(n)
    };
    UNIX_EPOCH.checked_add(d).ok_or(EventError::BadTimestamp)
}

/// A decrypted payload: the text and its parsed document. `Debug` shows only the length; read
/// it with [`expose`](Self::expose) or [`expose_document`](Self::expose_document).
pub struct Plaintext {
    text: String,
    document: Value,
}

impl Plaintext {
    /// Wraps a decrypted `text` and its parsed `document`.
    pub fn new(text: String, document: Value) -> Self {
        Self { text, document }
    }

    /// The decrypted text (JSON or XML).
    pub fn expose(&self) -> &str {
        &self.text
    }

    /// The parsed document (XML converted to JSON: one key per child element).
    pub fn expose_document(&self) -> &Value {
        &self.document
    }
}

impl fmt::Debug for Plaintext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Plaintext(*** {} bytes)", self.text.len())
    }
}

/// What to answer a callback with (always HTTP 200). `Debug` shows only the length.
#[derive(Clone, PartialEq, Eq)]
pub struct Reply {
    /// The `Content-Type`.
    pub content_type: &'static str,
    body: Vec<u8>,
}

impl Reply {
    /// A reply of `content_type` with `body`.
    pub fn new(content_type: &'static str, body: impl Into<Vec<u8>>) -> Self {
        Self {
            content_type,
            body: body.into(),
        }
    }

    /// The body bytes.
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The body bytes, owned.
    pub fn into_body(self) -> Vec<u8> {
        self.body
    }
}

impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Reply({}, *** {} bytes)",
            self.content_type,
            self.body.len()
        )
    }
}

/// A platform's callback scheme: verify, decrypt, parse, and acknowledge.
///
/// ```
/// use unilogin_core::events::{EventCodec, EventError, EventRequest, Event, Inbound, Reply};
/// #[derive(Debug)]
/// struct Refuse;
/// impl EventCodec for Refuse {
///     fn platform(&self) -> &'static str { "none" }
///     fn open(&self, _: &EventRequest<'_>) -> Result<Inbound, EventError> {
///         Err(EventError::BadSignature)
///     }
///     fn acknowledge(&self, _: &Event) -> Reply { Reply::new("text/plain", "success") }
/// }
/// let codec: Box<dyn EventCodec> = Box::new(Refuse);
/// assert!(codec.open(&EventRequest::new("POST", b"")).is_err());
/// ```
pub trait EventCodec: Send + Sync + fmt::Debug {
    /// The platform's registered name.
    fn platform(&self) -> &'static str;

    /// Verifies and decrypts a callback. Signatures are checked (constant-time) before
    /// anything is decrypted.
    fn open(&self, request: &EventRequest<'_>) -> Result<Inbound, EventError>;

    /// The reply that acknowledges `event` (encrypted where the platform wants it).
    fn acknowledge(&self, event: &Event) -> Reply;

    /// What `event` means for the directory: the people who left or were disabled, the
    /// profiles that changed. Events of other types have none (an empty list); an event of a
    /// lifecycle type that lacks the fields the platform always sends is an error.
    fn changes(&self, event: &Event) -> Result<Vec<DirectoryChange>, EventError> {
        let _ = event;
        Ok(Vec::new())
    }

    /// What `event` means for store apps (see [`crate::isv`]): a pushed ticket, an
    /// organisation installing, re-authorising or removing the app. Events of other types have
    /// none (an empty list, the default); an event of a lifecycle type that lacks the fields
    /// the platform always sends is an error.
    fn store_app_changes(&self, event: &Event) -> Result<Vec<StoreAppChange>, EventError> {
        let _ = event;
        Ok(Vec::new())
    }
}

/// The credentials of a platform's event subscription, platform-neutral: each platform's
/// `from_credentials` says which it needs. `Debug` never shows the secrets.
#[derive(Debug, Clone, Default)]
pub struct EventCredentials {
    /// The callback token (DingTalk token, WeCom Token, Feishu Verification Token).
    pub token: Option<AppSecret>,
    /// The encryption key (DingTalk `aes_key`, WeCom EncodingAESKey, Feishu Encrypt Key).
    pub key: Option<AppSecret>,
    /// Who the messages are for (DingTalk app key / corp id / suite key, WeCom corp id /
    /// suite id); unused by Feishu.
    pub receiver_id: Option<String>,
}

/// How a platform builds its codec from credentials (one per platform crate).
pub type BuildCodec = fn(&EventCredentials) -> Result<Box<dyn EventCodec>, EventError>;

/// Constant-time equality of two strings (lengths may leak, contents do not).
pub fn ct_eq_str(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

#[cfg(test)]
mod tests;
