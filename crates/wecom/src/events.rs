//! WeCom callbacks (`WXBizMsgCrypt`): URL verification, encrypted XML messages and replies.
//!
//! - **URL verification**: `GET <url>?msg_signature&timestamp&nonce&echostr` → signature
//!   check over the echostr → decrypt → answer with the plaintext ([`Inbound::Handshake`]).
//! - **Events**: `POST <url>?msg_signature&timestamp&nonce`, XML body with `<Encrypt>` → XML
//!   parse → signature check over the `Encrypt` text → decrypt → receiver id check → XML parse
//!   of the plaintext (converted to JSON: one key per child element) → event type (`Event`,
//!   else `InfoType` for third-party instruction callbacks, else `MsgType`).
//!
//! The signature is SHA-1 of the sorted token, timestamp (seconds), nonce and ciphertext,
//! compared in constant time; the cipher is AES-256-CBC, key = base64(EncodingAESKey + "="),
//! IV = the key's first 16 bytes, PKCS#7 to 32; the receiver id is the corp id (self-built
//! apps) or the suite id (third-party instruction callbacks). Events are acknowledged with a
//! plain `success`; [`WeComEvents::encrypt_reply`] builds an encrypted passive reply.
//!
//! **Directory changes** ([`EventCodec::changes`]) come from `change_contact` (the `Event` of a
//! self-built app's event message, or the `InfoType` of a third-party instruction callback),
//! by `ChangeType`:
//!
//! | `ChangeType` | change |
//! |---|---|
//! | `delete_user` | [`DirectoryChange::Left`] ([`LeaveReason::Left`]) |
//! | `update_user` with `Status` 5 (left) | `Left` ([`LeaveReason::Left`]) |
//! | `update_user` with `Status` 2 (disabled) | `Left` ([`LeaveReason::Disabled`]) |
//! | `update_user` otherwise (also with `NewUserID`: the change is about the old `UserID`), `create_user` | [`DirectoryChange::Updated`] |
//! | department and tag changes, any other event | none |
//!
//! `UserID` becomes [`PersonIds::user_id`], `OpenUserID` [`PersonIds::open_id`], `AuthCorpId`
//! (third party) or else `ToUserName` (self-built) [`PersonIds::org_id`]. A user change
//! without `UserID` and `OpenUserID`, or a `change_contact` without `ChangeType`, is
//! [`EventError::MissingField`].
//!
//! ```
//! use unilogin_core::events::{EventCodec, EventRequest, Inbound};
//! use unilogin_wecom::events::WeComEvents;
//! // The WXBizMsgCrypt sample's URL verification.
//! let codec = WeComEvents::new("QDG6eK", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", "wx5823bf96d3bd56c7")?;
//! let request = EventRequest::new("GET", b"")
//!     .query("msg_signature", "5c45ff5e21c57e6ad56bac8758b79b1d9ac89fd3")
//!     .query("timestamp", "1409659589")
//!     .query("nonce", "263014780")
//!     .query("echostr", "P9nAzCzyDtyTWESHep1vC5X9xho/qYX3Zpb4yKa9SKld1DsH3Iyt3tP3zNdtp+4RPcs8TgAE7OaBO+FZXvnaqQ==");
//! let Inbound::Handshake(handshake) = codec.open(&request)? else { panic!("verification") };
//! assert_eq!(handshake.reply.body(), b"1616140317555161061");
//! # Ok::<(), unilogin_core::events::EventError>(())
//! ```

use std::time::{SystemTime, UNIX_EPOCH};

use quick_xml::Reader;
use quick_xml::escape::{escape, resolve_xml_entity};
use quick_xml::events::Event as Xml;
use serde_json::{Map, Value};
use unilogin_core::events::crypto::MsgCrypt;
use unilogin_core::events::{
    DirectoryChange, Event, EventCodec, EventCredentials, EventError, EventRequest, Handshake,
    Inbound, LeaveReason, PayloadFormat, PersonIds, Plaintext, Reply, StoreAppChange,
    parse_timestamp,
};
use unilogin_core::isv::{OrgId, PushedTicket, TicketApp};
use unilogin_core::{AppSecret, PlatformName};

use crate::NAME;

/// Deepest element nesting accepted (WeCom messages nest two or three levels).
const MAX_DEPTH: usize = 16;

/// WeCom's callback codec for one receiver (Token, EncodingAESKey, receive id).
#[derive(Debug, Clone)]
pub struct WeComEvents {
    crypt: MsgCrypt,
}

impl WeComEvents {
    /// `token` and `encoding_aes_key` (43 characters) from the console; `receiver_id` is the
    /// corp id, or the suite id of a third-party app. [`EventError::InvalidConfig`] when unusable.
    pub fn new(token: &str, encoding_aes_key: &str, receiver_id: &str) -> Result<Self, EventError> {
        Ok(Self {
            crypt: MsgCrypt::new(token, encoding_aes_key, receiver_id)?,
        })
    }

    /// From platform-neutral credentials (`token`, `key`, `receiver_id`, all required); the
    /// shape of [`unilogin_core::events::BuildCodec`].
    pub fn from_credentials(creds: &EventCredentials) -> Result<Box<dyn EventCodec>, EventError> {
        let missing = |what| EventError::InvalidConfig { what };
        let token = creds.token.as_ref().ok_or(missing("token required"))?;
        let key = creds
            .key
            .as_ref()
            .ok_or(missing("encoding aes key required"))?;
        let receiver = creds
            .receiver_id
            .as_deref()
            .ok_or(missing("receiver id required"))?;
        Ok(Box::new(Self::new(token.expose(), key.expose(), receiver)?))
    }

    /// The encrypted passive-reply XML for `msg` (an XML message), with a fresh timestamp and
    /// nonce.
    pub fn encrypt_reply(&self, msg: &str) -> Reply {
        let random: [u8; 16] = unilogin_core::web_login::random_hex(8)
            .into_bytes()
            .try_into()
            .expect("16 hex characters");
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let nonce = unilogin_core::web_login::random_hex(5);
        self.seal(msg, &random, &now.to_string(), &nonce)
    }

    /// Like [`encrypt_reply`](Self::encrypt_reply) with the given random prefix, timestamp and
    /// nonce (deterministic: for tests and fakes).
    pub fn seal(&self, msg: &str, random: &[u8; 16], timestamp: &str, nonce: &str) -> Reply {
        let encrypt = self.crypt.encrypt_with(msg.as_bytes(), random);
        let signature = self.crypt.signature(timestamp, nonce, &encrypt);
        let body = format!(
            "<xml><Encrypt><![CDATA[{encrypt}]]></Encrypt><MsgSignature><![CDATA[{signature}]]>\
             </MsgSignature><TimeStamp>{}</TimeStamp><Nonce>{}</Nonce></xml>",
            escape(timestamp),
            escape(nonce)
        );
        Reply::new("application/xml", body)
    }

    fn decrypt_text(&self, encrypt: &str) -> Result<String, EventError> {
        String::from_utf8(self.crypt.decrypt(encrypt)?).map_err(|_| EventError::BadUtf8)
    }
}

/// Parses XML into JSON: the root element's children become keys; an element with children
/// becomes an object, one with only text a string (trimmed; CDATA and entities resolved), a
/// repeated element an array. Attributes, comments and processing instructions are ignored; a
/// DOCTYPE, unbalanced tags, unknown entities or nesting deeper than 16 are
/// [`EventError::BadXml`]. Public for fuzzing.
pub fn xml_to_json(text: &str) -> Result<Map<String, Value>, EventError> {
    fn close(frame: Frame) -> (String, Value) {
        let value = match frame.children {
            Some(children) => Value::Object(children),
            None => Value::String(frame.text.trim().to_string()),
        };
        (frame.name, value)
    }
    let bad = |_| EventError::BadXml;
    let mut reader = Reader::from_str(text);
    let mut stack: Vec<Frame> = Vec::new();
    let mut root: Option<Map<String, Value>> = None;
    loop {
        let mut finished: Option<(String, Value)> = None;
        match reader.read_event().map_err(bad)? {
            Xml::Start(_) | Xml::Empty(_) if root.is_some() || stack.len() >= MAX_DEPTH => {
                return Err(EventError::BadXml);
            }
            Xml::Start(e) => stack.push(Frame {
                name: e.name().as_ref().to_string(),
                text: String::new(),
                children: None,
            }),
            Xml::Empty(e) => {
                finished = Some((e.name().as_ref().to_string(), Value::String(String::new())));
            }
            Xml::End(_) => finished = Some(close(stack.pop().ok_or(EventError::BadXml)?)),
            Xml::Text(t) => push_text(&mut stack, &t.xml10_content())?,
            Xml::CData(c) => push_text(&mut stack, &c.xml10_content())?,
            Xml::GeneralRef(r) => {
                let resolved = match r.resolve_char_ref().map_err(bad)? {
                    Some(c) => c.to_string(),
                    None => resolve_xml_entity(&r.xml10_content())
                        .ok_or(EventError::BadXml)?
                        .to_string(),
                };
                push_text(&mut stack, &resolved)?;
            }
            Xml::DocType(_) => return Err(EventError::BadXml),
            Xml::Decl(_) | Xml::PI(_) | Xml::Comment(_) => {}
            Xml::Eof => break,
        }
        if let Some((name, value)) = finished {
            match stack.last_mut() {
                Some(parent) => insert(parent.children.get_or_insert_with(Map::new), name, value),
                None => match value {
                    Value::Object(map) => root = Some(map),
                    _ => return Err(EventError::BadXml),
                },
            }
        }
    }
    match (stack.is_empty(), root) {
        (true, Some(root)) => Ok(root),
        _ => Err(EventError::BadXml),
    }
}

/// An open element while parsing.
struct Frame {
    name: String,
    text: String,
    children: Option<Map<String, Value>>,
}

fn push_text(stack: &mut [Frame], text: &str) -> Result<(), EventError> {
    match stack.last_mut() {
        Some(frame) => {
            frame.text.push_str(text);
            Ok(())
        }
        None if text.trim().is_empty() => Ok(()),
        None => Err(EventError::BadXml),
    }
}

fn insert(map: &mut Map<String, Value>, name: String, value: Value) {
    match map.get_mut(&name) {
        Some(Value::Array(items)) => items.push(value),
        Some(existing) => {
            let first = existing.take();
            *existing = Value::Array(vec![first, value]);
        }
        None => {
            map.insert(name, value);
        }
    }
}

/// Parses a decrypted WeCom message: XML with `Event`, `InfoType` or `MsgType`; the event id
/// is `MsgId` when present. Public for fuzzing and fakes.
pub fn parse_event(text: String) -> Result<(String, Option<String>, Plaintext), EventError> {
    let doc = xml_to_json(&text)?;
    let field = |k: &str| doc.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
    let event_type = field("Event")
        .or_else(|| field("InfoType"))
        .or_else(|| field("MsgType"))
        .ok_or(EventError::MissingField { name: "Event" })?
        .to_string();
    let event_id = field("MsgId").map(str::to_string);
    Ok((
        event_type,
        event_id,
        Plaintext::new(text, Value::Object(doc)),
    ))
}

/// The directory changes a decrypted WeCom message carries, from its document (the XML
/// converted by [`xml_to_json`]; see the [module documentation](self));
/// [`EventCodec::changes`] on its document. Public for fuzzing and fakes.
///
/// ```
/// use unilogin_core::events::{DirectoryChange, LeaveReason};
/// use unilogin_wecom::events::{directory_changes, xml_to_json};
/// let xml = "<xml><ToUserName><![CDATA[wwcorp]]></ToUserName><MsgType><![CDATA[event]]></MsgType>\
///     <Event><![CDATA[change_contact]]></Event><ChangeType>update_user</ChangeType>\
///     <UserID><![CDATA[zhangsan]]></UserID><Status>2</Status></xml>";
/// let doc = serde_json::Value::Object(xml_to_json(xml)?);
/// let changes = directory_changes("change_contact", &doc)?;
/// let [DirectoryChange::Left { ids, reason }] = changes.as_slice() else { panic!("left") };
/// assert_eq!(*reason, LeaveReason::Disabled);
/// assert_eq!((ids.user_id.as_deref(), ids.org_id.as_deref()), (Some("zhangsan"), Some("wwcorp")));
/// # Ok::<(), unilogin_core::events::EventError>(())
/// ```
pub fn directory_changes(
    event_type: &str,
    doc: &Value,
) -> Result<Vec<DirectoryChange>, EventError> {
    if event_type != "change_contact" {
        return Ok(Vec::new());
    }
    let field = |name: &str| {
        doc.get(name)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
    };
    let change_type = field("ChangeType").ok_or(EventError::MissingField { name: "ChangeType" })?;
    // `Some(reason)`: the person loses access; `None`: their profile changed.
    let leaves = match change_type {
        "delete_user" => Some(LeaveReason::Left),
        "update_user" => match field("Status") {
            Some("5") => Some(LeaveReason::Left),
            Some("2") => Some(LeaveReason::Disabled),
            _ => None,
        },
        "create_user" => None,
        _ => return Ok(Vec::new()),
    };
    let ids = PersonIds {
        user_id: field("UserID").map(str::to_string),
        union_id: None,
        open_id: field("OpenUserID").map(str::to_string),
        org_id: field("AuthCorpId")
            .or_else(|| field("ToUserName"))
            .map(str::to_string),
    };
    if ids.is_empty() {
        return Err(EventError::MissingField { name: "UserID" });
    }
    Ok(vec![match leaves {
        Some(reason) => DirectoryChange::Left { ids, reason },
        None => DirectoryChange::Updated { ids },
    }])
}

impl EventCodec for WeComEvents {
    fn platform(&self) -> &'static str {
        NAME
    }

    fn open(&self, request: &EventRequest<'_>) -> Result<Inbound, EventError> {
        let body = request.bounded_body()?;
        let post = match request.method() {
            "GET" => false,
            "POST" => true,
            _ => return Err(EventError::MethodNotAllowed),
        };
        let signature = request.require_query(&["msg_signature"])?;
        let timestamp = request.require_query(&["timestamp"])?;
        let nonce = request.require_query(&["nonce"])?;
        if !post {
            let echostr = request.require_query(&["echostr"])?;
            self.crypt.verify(signature, timestamp, nonce, echostr)?;
            let timestamp = Some(parse_timestamp(timestamp, false)?);
            let reply = Reply::new("text/plain", self.decrypt_text(echostr)?);
            return Ok(Inbound::Handshake(Handshake { reply, timestamp }));
        }
        let outer = xml_to_json(std::str::from_utf8(body).map_err(|_| EventError::BadUtf8)?)?;
        let encrypt = outer
            .get("Encrypt")
            .and_then(Value::as_str)
            .ok_or(EventError::MissingField { name: "Encrypt" })?;
        self.crypt.verify(signature, timestamp, nonce, encrypt)?;
        let timestamp = Some(parse_timestamp(timestamp, false)?);
        let (event_type, event_id, plaintext) = parse_event(self.decrypt_text(encrypt)?)?;
        Ok(Inbound::Event(Event {
            event_type,
            event_id,
            timestamp,
            format: PayloadFormat::Xml,
            plaintext,
        }))
    }

    fn acknowledge(&self, _event: &Event) -> Reply {
        Reply::new("text/plain", "success")
    }

    fn changes(&self, event: &Event) -> Result<Vec<DirectoryChange>, EventError> {
        directory_changes(&event.event_type, event.plaintext.expose_document())
    }

    fn store_app_changes(&self, event: &Event) -> Result<Vec<StoreAppChange>, EventError> {
        store_app_changes(
            self.crypt.receiver_id(),
            &event.event_type,
            event.plaintext.expose_document(),
            SystemTime::now(),
        )
    }
}

/// The store-app changes of a decrypted third-party instruction callback (`InfoType`) for the
/// suite `suite_id` (the codec's receiver id), received at `received_at`:
///
/// | `InfoType` | change |
/// |---|---|
/// | `suite_ticket` | [`StoreAppChange::TicketPushed`] (`SuiteTicket`, pushed at `TimeStamp`, seconds) |
/// | `create_auth`, `reset_permanent_code` | [`StoreAppChange::InstallCode`] (`AuthCode`, redeemed with `get_permanent_code`) |
/// | `change_auth` | [`StoreAppChange::AuthChanged`] (`AuthCorpId`) |
/// | `cancel_auth` | [`StoreAppChange::Uninstalled`] (`AuthCorpId`) |
///
/// A callback of another suite (`SuiteId` present and not `suite_id`) is
/// [`EventError::InvalidConfig`]; any other `InfoType` carries none. Public for fuzzing and
/// fakes.
///
/// ```
/// use std::time::{Duration, SystemTime, UNIX_EPOCH};
/// use unilogin_core::events::StoreAppChange;
/// use unilogin_wecom::events::store_app_changes;
/// let doc = serde_json::json!({"SuiteId": "wwsuite1", "InfoType": "suite_ticket",
///     "TimeStamp": "1403610513", "SuiteTicket": "t-1"});
/// let changes = store_app_changes("wwsuite1", "suite_ticket", &doc, SystemTime::now())?;
/// let [StoreAppChange::TicketPushed { app, ticket }] = &changes[..] else { panic!("ticket") };
/// assert_eq!(app.app_id().as_str(), "wwsuite1");
/// assert_eq!(ticket.value.expose(), "t-1");
/// assert_eq!(ticket.pushed_at, UNIX_EPOCH + Duration::from_secs(1_403_610_513));
/// let doc = serde_json::json!({"SuiteId": "wwsuite1", "InfoType": "create_auth",
///     "TimeStamp": "1403610513", "AuthCode": "code-1"});
/// let changes = store_app_changes("wwsuite1", "create_auth", &doc, SystemTime::now())?;
/// assert!(matches!(&changes[..], [StoreAppChange::InstallCode { .. }]));
/// assert!(!format!("{changes:?}").contains("code-1"));
/// # Ok::<(), unilogin_core::events::EventError>(())
/// ```
pub fn store_app_changes(
    suite_id: &str,
    info_type: &str,
    doc: &Value,
    received_at: SystemTime,
) -> Result<Vec<StoreAppChange>, EventError> {
    const KNOWN: &[&str] = &[
        "suite_ticket",
        "create_auth",
        "reset_permanent_code",
        "change_auth",
        "cancel_auth",
    ];
    if !KNOWN.contains(&info_type) {
        return Ok(Vec::new());
    }
    let text = |name: &str| {
        doc.get(name)
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|v| !v.is_empty())
    };
    if text("SuiteId").is_some_and(|id| id != suite_id) {
        return Err(EventError::InvalidConfig {
            what: "an instruction callback of another suite",
        });
    }
    let app = PlatformName::new(NAME)
        .ok()
        .and_then(|p| TicketApp::new(p, suite_id).ok())
        .ok_or(EventError::InvalidConfig {
            what: "the receiver id is not a suite id",
        })?;
    let org = || {
        text("AuthCorpId")
            .and_then(|c| OrgId::new(c).ok())
            .ok_or(EventError::MissingField { name: "AuthCorpId" })
    };
    let change = match info_type {
        "suite_ticket" => {
            let value = text("SuiteTicket").ok_or(EventError::MissingField {
                name: "SuiteTicket",
            })?;
            let secs = text("TimeStamp")
                .and_then(|t| t.parse::<u64>().ok())
                .ok_or(EventError::MissingField { name: "TimeStamp" })?;
            let pushed_at = UNIX_EPOCH + std::time::Duration::from_secs(secs);
            let ticket = PushedTicket::new(value, pushed_at, received_at).map_err(|_| {
                EventError::MissingField {
                    name: "SuiteTicket",
                }
            })?;
            StoreAppChange::TicketPushed { app, ticket }
        }
        "create_auth" | "reset_permanent_code" => {
            let code = text("AuthCode").ok_or(EventError::MissingField { name: "AuthCode" })?;
            StoreAppChange::InstallCode {
                app,
                code: AppSecret::new(code),
            }
        }
        "change_auth" => StoreAppChange::AuthChanged { app, org: org()? },
        _ => StoreAppChange::Uninstalled { app, org: org()? },
    };
    Ok(vec![change])
}
