//! DingTalk HTTP event callbacks (事件订阅): verification, decryption, the encrypted `success`
//! reply.
//!
//! `POST <url>?msg_signature=…&timestamp=…&nonce=…` (also spelled `signature` / `timeStamp`),
//! body `{"encrypt":"<base64>"}`. In order: body size, method, parameters, body JSON,
//! signature (SHA-1 of the sorted token, timestamp, nonce and ciphertext; constant-time),
//! timestamp (milliseconds), decryption (AES-256-CBC, key = base64(`aes_key` + "="), IV = the
//! key's first 16 bytes, PKCS#7 to 32), length field, owner key (receiver id: the app key for
//! event subscriptions, the corp id for the legacy callback API, the suite key for third-party
//! apps), then the event JSON (`EventType`). `check_url` and the suite URL checks are
//! handshakes; every request is answered with the encrypted string `success`.
//!
//! **Directory changes** ([`EventCodec::changes`]), from the contact events (top-level fields,
//! PascalCase in the classic callbacks, camelCase in some event-subscription 2.0 pushes: both
//! are read):
//!
//! | `EventType` | change |
//! |---|---|
//! | `user_leave_org` | [`DirectoryChange::Left`] ([`LeaveReason::Left`]), one per `UserId` |
//! | `user_modify_org`, `user_add_org`, `user_active_org` | [`DirectoryChange::Updated`], one per `UserId` |
//! | anything else | none |
//!
//! `UserId` / `userId` is an array of user ids (a single string is accepted too) and becomes
//! [`PersonIds::user_id`]; `CorpId` / `corpId` becomes [`PersonIds::org_id`]. DingTalk has no
//! "disabled" event. A person who joins or activates their account gets `Updated` so that any
//! profile cached under a reused user id (a re-hire) is dropped; it revokes nothing.
//!
//! **Store-app changes** ([`EventCodec::store_app_changes`], see [`store_app_changes`]), for a
//! codec whose owner key is the suite key:
//!
//! | push | change |
//! |---|---|
//! | `SYNC_HTTP_PUSH_HIGH` / `_MEDIUM`, `bizData[]` item `biz_type` 2 (`suite_ticket`) | [`StoreAppChange::TicketPushed`], push time `gmt_modified` (else `gmt_create`), ms |
//! | `biz_type` 4 `org_suite_auth` / `org_suite_change` / `org_suite_relieve` | `Installed` / `AuthChanged` / `Uninstalled` |
//! | `biz_type` 7 `org_micro_app_stop` / `org_micro_app_remove` | `Uninstalled` (`_restore`, `_scope_update`: `AuthChanged`) |
//! | `biz_type` 16 `org_remove` (organisation dissolved) | `Uninstalled` |
//! | old `suite_ticket` (`SuiteTicket`, `TimeStamp`) | `TicketPushed` |
//! | old `tmp_auth_code` (with `AuthCorpId`) / `change_auth` / `suite_relieve` | `Installed` (temporary code) / `AuthChanged` / `Uninstalled` |
//!
//! `biz_data` is a JSON **string** (parsed a second time); the organisation is the item's
//! `corp_id`, else `auth_corp_info.corpid` inside it (old format: `AuthCorpId`).
//!
//! ```
//! use unilogin_core::events::{EventCodec, EventRequest, Inbound};
//! use unilogin_dingtalk::events::DingTalkEvents;
//! let codec = DingTalkEvents::new("tok_example", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", "dingexamplecorp")?;
//! let body = br#"{"encrypt":"5XltAAWvdfK97kdYilpWLDvFNLgY1KFiIXe61pQXlXXnW5VowxHFHeonjkpHsOXGVX2pvz3DMXlh0HGkWNIDHA=="}"#;
//! let request = EventRequest::new("POST", body)
//!     .query("msg_signature", "53040adcee37dfbe8258a63af6edfdcd40e32ab5")
//!     .query("timestamp", "1700000000000")
//!     .query("nonce", "nonce123");
//! let Inbound::Handshake(handshake) = codec.open(&request)? else { panic!("check_url") };
//! assert_eq!(handshake.reply.content_type, "application/json");
//! # Ok::<(), unilogin_core::events::EventError>(())
//! ```

use std::time::{SystemTime, UNIX_EPOCH};

use unilogin_core::AppSecret;
use unilogin_core::PlatformName;
use unilogin_core::events::{InstallInfo, StoreAppChange};
use unilogin_core::isv::{OrgId, PushedTicket, TicketApp, from_unix_ms};

use serde_json::{Value, json};
use unilogin_core::events::crypto::MsgCrypt;
use unilogin_core::events::{
    DirectoryChange, Event, EventCodec, EventCredentials, EventError, EventRequest, Handshake,
    Inbound, LeaveReason, PayloadFormat, PersonIds, Plaintext, Reply, parse_timestamp,
};

use crate::NAME;

/// Event types that are URL checks, answered and never applied.
const HANDSHAKES: &[&str] = &[
    "check_url",
    "check_create_suite_url",
    "check_update_suite_url",
];

/// DingTalk's callback codec for one app (token, `aes_key`, owner key).
#[derive(Debug, Clone)]
pub struct DingTalkEvents {
    crypt: MsgCrypt,
}

impl DingTalkEvents {
    /// `token` and `aes_key` (43 characters) from the console; `receiver_id` is the owner key
    /// (app key, corp id or suite key). [`EventError::InvalidConfig`] when unusable.
    pub fn new(token: &str, aes_key: &str, receiver_id: &str) -> Result<Self, EventError> {
        Ok(Self {
            crypt: MsgCrypt::new(token, aes_key, receiver_id)?,
        })
    }

    /// From platform-neutral credentials (`token`, `key`, `receiver_id`, all required); the
    /// shape of [`unilogin_core::events::BuildCodec`].
    pub fn from_credentials(creds: &EventCredentials) -> Result<Box<dyn EventCodec>, EventError> {
        let missing = |what| EventError::InvalidConfig { what };
        let token = creds.token.as_ref().ok_or(missing("token required"))?;
        let key = creds.key.as_ref().ok_or(missing("aes key required"))?;
        let receiver = creds
            .receiver_id
            .as_deref()
            .ok_or(missing("receiver id required"))?;
        Ok(Box::new(Self::new(token.expose(), key.expose(), receiver)?))
    }

    /// The reply JSON carrying `msg` encrypted with `random`, signed at `timestamp` with
    /// `nonce` (deterministic; [`EventCodec::acknowledge`] uses fresh values).
    pub fn seal(&self, msg: &str, random: &[u8; 16], timestamp: &str, nonce: &str) -> Reply {
        let encrypt = self.crypt.encrypt_with(msg.as_bytes(), random);
        let body = json!({
            "msg_signature": self.crypt.signature(timestamp, nonce, &encrypt),
            "timeStamp": timestamp,
            "nonce": nonce,
            "encrypt": encrypt,
        });
        Reply::new("application/json", body.to_string())
    }

    fn success(&self) -> Reply {
        let random: [u8; 16] = unilogin_core::web_login::random_hex(8)
            .into_bytes()
            .try_into()
            .expect("16 hex characters");
        let nonce = unilogin_core::web_login::random_hex(8);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        self.seal("success", &random, &now.to_string(), &nonce)
    }
}

/// Parses a decrypted DingTalk event: a JSON object with `EventType`; the event id is
/// `eventId` (event subscription 2.0) when present. Public for fuzzing and fakes.
pub fn parse_event(plain: Vec<u8>) -> Result<(String, Option<String>, Plaintext), EventError> {
    let text = String::from_utf8(plain).map_err(|_| EventError::BadUtf8)?;
    let doc: Value = serde_json::from_str(&text).map_err(|_| EventError::BadJson)?;
    if !doc.is_object() {
        return Err(EventError::BadJson);
    }
    let event_type = doc
        .get("EventType")
        .and_then(Value::as_str)
        .ok_or(EventError::MissingField { name: "EventType" })?
        .to_string();
    let event_id = ["eventId", "EventId"]
        .iter()
        .find_map(|k| doc.get(*k).and_then(Value::as_str))
        .map(str::to_string);
    Ok((event_type, event_id, Plaintext::new(text, doc)))
}

/// The directory changes a decrypted DingTalk event document carries (see the
/// [module documentation](self)); [`EventCodec::changes`] on its document. Public for fuzzing
/// and fakes.
///
/// ```
/// use unilogin_core::events::{DirectoryChange, LeaveReason};
/// use unilogin_dingtalk::events::directory_changes;
/// let doc = serde_json::json!({
///     "EventType": "user_leave_org", "CorpId": "dingcorp", "UserId": ["0146", "0147"],
/// });
/// let changes = directory_changes("user_leave_org", &doc)?;
/// assert_eq!(changes.len(), 2);
/// let DirectoryChange::Left { ids, reason } = &changes[0] else { panic!("left") };
/// assert_eq!((ids.user_id.as_deref(), ids.org_id.as_deref()), (Some("0146"), Some("dingcorp")));
/// assert_eq!(*reason, LeaveReason::Left);
/// assert!(directory_changes("org_dept_create", &doc)?.is_empty());
/// # Ok::<(), unilogin_core::events::EventError>(())
/// ```
pub fn directory_changes(
    event_type: &str,
    doc: &Value,
) -> Result<Vec<DirectoryChange>, EventError> {
    let leave = match event_type {
        "user_leave_org" => true,
        "user_modify_org" | "user_add_org" | "user_active_org" => false,
        _ => return Ok(Vec::new()),
    };
    let field = |names: [&str; 2]| names.iter().find_map(|n| doc.get(*n));
    let org_id = field(["CorpId", "corpId"])
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let users: Vec<String> = match field(["UserId", "userId"]) {
        Some(Value::Array(items)) => items.iter().filter_map(id_text).collect(),
        Some(one) => id_text(one).into_iter().collect(),
        None => Vec::new(),
    };
    if users.is_empty() {
        return Err(EventError::MissingField { name: "UserId" });
    }
    Ok(users
        .into_iter()
        .map(|user_id| {
            let ids = PersonIds {
                user_id: Some(user_id),
                org_id: org_id.clone(),
                ..PersonIds::default()
            };
            if leave {
                DirectoryChange::Left {
                    ids,
                    reason: LeaveReason::Left,
                }
            } else {
                DirectoryChange::Updated { ids }
            }
        })
        .collect())
}

/// A user id: a non-empty string, or a number written as its decimal text.
fn id_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

impl EventCodec for DingTalkEvents {
    fn platform(&self) -> &'static str {
        NAME
    }

    fn open(&self, request: &EventRequest<'_>) -> Result<Inbound, EventError> {
        let body = request.bounded_body()?;
        if request.method() != "POST" {
            return Err(EventError::MethodNotAllowed);
        }
        let signature = request.require_query(&["msg_signature", "signature"])?;
        let timestamp = request.require_query(&["timestamp", "timeStamp"])?;
        let nonce = request.require_query(&["nonce"])?;
        let outer: Value = serde_json::from_slice(body).map_err(|_| EventError::BadJson)?;
        let encrypt = outer
            .get("encrypt")
            .and_then(Value::as_str)
            .ok_or(EventError::MissingField { name: "encrypt" })?;
        self.crypt.verify(signature, timestamp, nonce, encrypt)?;
        let timestamp = Some(parse_timestamp(timestamp, true)?);
        let (event_type, event_id, plaintext) = parse_event(self.crypt.decrypt(encrypt)?)?;
        if HANDSHAKES.contains(&event_type.as_str()) {
            let reply = self.success();
            return Ok(Inbound::Handshake(Handshake { reply, timestamp }));
        }
        Ok(Inbound::Event(Event {
            event_type,
            event_id,
            timestamp,
            format: PayloadFormat::Json,
            plaintext,
        }))
    }

    fn acknowledge(&self, _event: &Event) -> Reply {
        self.success()
    }

    fn changes(&self, event: &Event) -> Result<Vec<DirectoryChange>, EventError> {
        directory_changes(&event.event_type, event.plaintext.expose_document())
    }

    fn store_app_changes(&self, event: &Event) -> Result<Vec<StoreAppChange>, EventError> {
        let doc = event.plaintext.expose_document();
        store_app_changes(
            self.crypt.receiver_id(),
            &event.event_type,
            doc,
            SystemTime::now(),
        )
    }
}

/// The store-app changes a decrypted DingTalk event document carries, for the suite
/// `suite_key` (the codec's owner key), received at `received_at` (see the
/// [module documentation](self)). Public for fuzzing and fakes.
///
/// ```
/// use std::time::{Duration, SystemTime, UNIX_EPOCH};
/// use unilogin_core::events::StoreAppChange;
/// use unilogin_dingtalk::events::store_app_changes;
/// let doc = serde_json::json!({"EventType": "SYNC_HTTP_PUSH_HIGH", "bizData": [{
///     "gmt_create": 1608639648000u64, "biz_type": 2, "subscribe_id": "123_0", "id": 7001,
///     "gmt_modified": 1608639648000u64, "biz_id": "123", "corp_id": "dingisvcorp", "status": 0,
///     "biz_data": "{\"syncAction\":\"suite_ticket\",\"suiteTicket\":\"t-1\",\"syncSeq\":\"s\"}",
/// }]});
/// let changes = store_app_changes("suiteabc", "SYNC_HTTP_PUSH_HIGH", &doc, SystemTime::now())?;
/// let [StoreAppChange::TicketPushed { app, ticket }] = &changes[..] else { panic!("ticket") };
/// assert_eq!(app.app_id().as_str(), "suiteabc");
/// assert_eq!(ticket.value.expose(), "t-1");
/// assert_eq!(ticket.pushed_at, UNIX_EPOCH + Duration::from_millis(1_608_639_648_000));
/// # Ok::<(), unilogin_core::events::EventError>(())
/// ```
pub fn store_app_changes(
    suite_key: &str,
    event_type: &str,
    doc: &Value,
    received_at: SystemTime,
) -> Result<Vec<StoreAppChange>, EventError> {
    const OLD: &[&str] = &[
        "suite_ticket",
        "tmp_auth_code",
        "change_auth",
        "suite_relieve",
    ];
    let sync = matches!(event_type, "SYNC_HTTP_PUSH_HIGH" | "SYNC_HTTP_PUSH_MEDIUM");
    if !sync && !OLD.contains(&event_type) {
        return Ok(Vec::new());
    }
    let app = PlatformName::new(NAME)
        .ok()
        .and_then(|p| TicketApp::new(p, suite_key).ok())
        .ok_or(EventError::InvalidConfig {
            what: "the owner key is not a suite key",
        })?;
    if !sync {
        return old_change(app, event_type, doc, received_at).map(|c| c.into_iter().collect());
    }
    let items = doc
        .get("bizData")
        .and_then(Value::as_array)
        .ok_or(EventError::MissingField { name: "bizData" })?;
    let mut changes = Vec::new();
    for item in items {
        if let Some(change) = sync_change(&app, item, received_at)? {
            changes.push(change);
        }
    }
    Ok(changes)
}

/// One `bizData[]` item.
fn sync_change(
    app: &TicketApp,
    item: &Value,
    received_at: SystemTime,
) -> Result<Option<StoreAppChange>, EventError> {
    let biz_type = item.get("biz_type").and_then(number);
    let raw = item
        .get("biz_data")
        .ok_or(EventError::MissingField { name: "biz_data" })?;
    // A JSON string holding JSON (an object is accepted too).
    let data: Value = match raw {
        Value::String(text) => serde_json::from_str(text).map_err(|_| EventError::BadJson)?,
        Value::Object(_) => raw.clone(),
        _ => return Err(EventError::BadJson),
    };
    let action = data.get("syncAction").and_then(Value::as_str).unwrap_or("");
    let org = || {
        let corp = text_at(item, "/corp_id").or_else(|| text_at(&data, "/auth_corp_info/corpid"));
        org_id(corp.as_deref())
    };
    let app = app.clone();
    Ok(Some(match (biz_type, action) {
        (Some(2), _) | (_, "suite_ticket") => {
            let value = text_at(&data, "/suiteTicket").ok_or(EventError::MissingField {
                name: "suiteTicket",
            })?;
            let ms = ["gmt_modified", "gmt_create"]
                .iter()
                .find_map(|k| item.get(*k).and_then(number))
                .ok_or(EventError::MissingField { name: "gmt_create" })?;
            let ticket = PushedTicket::new(value, from_unix_ms(ms), received_at).map_err(|_| {
                EventError::MissingField {
                    name: "suiteTicket",
                }
            })?;
            StoreAppChange::TicketPushed { app, ticket }
        }
        (_, "org_suite_auth") => StoreAppChange::Installed {
            app,
            org: org()?,
            info: install_info(&data),
        },
        (_, "org_suite_change" | "org_micro_app_restore" | "org_micro_app_scope_update") => {
            StoreAppChange::AuthChanged { app, org: org()? }
        }
        (_, "org_suite_relieve" | "org_micro_app_stop" | "org_micro_app_remove" | "org_remove") => {
            StoreAppChange::Uninstalled { app, org: org()? }
        }
        _ => return Ok(None),
    }))
}

/// What `org_suite_auth`'s `biz_data` says about the installation.
fn install_info(data: &Value) -> InstallInfo {
    InstallInfo {
        org_name: text_at(data, "/auth_corp_info/corp_name"),
        agent_id: text_at(data, "/auth_info/agent/0/agentid"),
        installer: text_at(data, "/auth_user_info/userId"),
        permanent_code: text_at(data, "/permanent_code").map(AppSecret::new),
        temporary_code: None,
    }
}

/// The old suite-callback format (`EventType` `suite_ticket`, `tmp_auth_code`, …).
fn old_change(
    app: TicketApp,
    event_type: &str,
    doc: &Value,
    received_at: SystemTime,
) -> Result<Option<StoreAppChange>, EventError> {
    let corp = || org_id(text_at(doc, "/AuthCorpId").as_deref());
    Ok(Some(match event_type {
        "suite_ticket" => {
            let value = text_at(doc, "/SuiteTicket").ok_or(EventError::MissingField {
                name: "SuiteTicket",
            })?;
            let ms = doc
                .get("TimeStamp")
                .and_then(number)
                .ok_or(EventError::MissingField { name: "TimeStamp" })?;
            let ticket = PushedTicket::new(value, from_unix_ms(ms), received_at).map_err(|_| {
                EventError::MissingField {
                    name: "SuiteTicket",
                }
            })?;
            StoreAppChange::TicketPushed { app, ticket }
        }
        // The old push carries no corpId unless DingTalk adds `AuthCorpId`: the organisation is
        // known only after `get_permanent_code`, which this codec does not call.
        "tmp_auth_code" if doc.get("AuthCorpId").is_none() => return Ok(None),
        "tmp_auth_code" => StoreAppChange::Installed {
            app,
            org: corp()?,
            info: InstallInfo {
                temporary_code: text_at(doc, "/AuthCode").map(AppSecret::new),
                ..InstallInfo::default()
            },
        },
        "change_auth" => StoreAppChange::AuthChanged { app, org: corp()? },
        "suite_relieve" => StoreAppChange::Uninstalled { app, org: corp()? },
        _ => return Ok(None),
    }))
}

fn org_id(corp: Option<&str>) -> Result<OrgId, EventError> {
    corp.and_then(|c| OrgId::new(c).ok())
        .ok_or(EventError::MissingField { name: "corp_id" })
}

/// A non-empty string, or a number as its decimal text, at `pointer`.
fn text_at(doc: &Value, pointer: &str) -> Option<String> {
    doc.pointer(pointer).and_then(id_text)
}

/// A non-negative integer, or a string of digits.
fn number(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) if !s.is_empty() && s.len() <= 20 => s.parse().ok(),
        _ => None,
    }
}
