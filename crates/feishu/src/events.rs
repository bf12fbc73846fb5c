//! Feishu / Lark event subscriptions: URL verification, Encrypt Key decryption, request
//! signatures, the Verification Token.
//!
//! `POST <url>` with a JSON body; in order: body size, method, JSON. With an **Encrypt Key**
//! the body must be `{"encrypt":"<base64>"}` ([`EventError::NotEncrypted`] otherwise); the
//! headers `X-Lark-Request-Timestamp`, `X-Lark-Request-Nonce`, `X-Lark-Signature` are checked
//! first: signature = hex SHA-256(timestamp ‖ nonce ‖ encrypt key ‖ raw body), constant-time;
//! then decryption: key = SHA-256(encrypt key), IV = the first 16 bytes of the ciphertext,
//! AES-256-CBC, PKCS#7 to 16. Like the official SDK, a request without signature headers is
//! accepted only when it decrypts to the URL verification. Without an Encrypt Key the body is
//! the plaintext and an `encrypt` field is [`EventError::UnexpectedEncryption`].
//!
//! The plaintext is then either the URL verification `{"type":"url_verification",
//! "challenge","token"}` (token checked, answered with `{"challenge": …}`), a schema 2.0
//! event (`header.event_id`, `header.event_type`, `header.token`, `header.create_time` in
//! milliseconds) or a v1 event (`uuid`, `event.type`, `token`, `ts` in seconds). The
//! Verification Token is compared in constant time. Events are acknowledged with
//! `{"msg":"success"}`.
//!
//! **Directory changes** ([`EventCodec::changes`]):
//!
//! | event | change |
//! |---|---|
//! | `contact.user.deleted_v3` | [`DirectoryChange::Left`] ([`LeaveReason::Left`]) |
//! | `contact.user.updated_v3` | `Left` when `object.status.is_resigned` or `is_exited`; `Left` ([`LeaveReason::Disabled`]) when `is_frozen`; else [`DirectoryChange::Updated`] |
//! | `contact.user.created_v3` | `Updated` |
//! | v1 `user_leave` | `Left` |
//! | v1 `user_status_change` | by `current_status`: `is_resigned` → `Left`, `is_frozen` → `Disabled`, else `Updated` |
//! | v1 `user_update`, `user_add` | `Updated` |
//! | anything else | none |
//!
//! Schema 2.0 ids are `event.object.{open_id, union_id, user_id}` (for a deletion, also
//! `event.old_object.open_id`), the organisation `header.tenant_key`; v1 ids are
//! `event.{open_id, union_id, employee_id}` (the user id) and `event.tenant_key`. A
//! lifecycle event without any id, or a `user_status_change` without `current_status`, is
//! [`EventError::MissingField`]. Status flags are read as JSON booleans only; anything else
//! counts as `false`.
//!
//! ```
//! use unilogin_core::events::{EventCodec, EventRequest, Inbound};
//! use unilogin_feishu::events::FeishuEvents;
//! let codec = FeishuEvents::new("vt_example", None)?;
//! let body = br#"{"challenge":"abc","token":"vt_example","type":"url_verification"}"#;
//! let Inbound::Handshake(h) = codec.open(&EventRequest::new("POST", body))? else { panic!() };
//! assert_eq!(h.reply.body(), br#"{"challenge":"abc"}"#);
//! # Ok::<(), unilogin_core::events::EventError>(())
//! ```

use serde_json::{Value, json};
use unilogin_core::AppSecret;
use unilogin_core::events::crypto::{
    aes256_cbc_decrypt, decode_base64, hex, pkcs7_unpad, sha256, verify_hex,
};
use unilogin_core::events::{
    DirectoryChange, Event, EventCodec, EventCredentials, EventError, EventRequest, Handshake,
    Inbound, LeaveReason, PayloadFormat, PersonIds, Plaintext, Reply, ct_eq_str, parse_timestamp,
};

use std::time::SystemTime;
use unilogin_core::PlatformName;
use unilogin_core::events::{InstallInfo, StoreAppChange};
use unilogin_core::isv::{OrgId, PushedTicket, TicketApp, from_unix_ms};

use crate::NAME;

/// Feishu's callback codec for one app (Verification Token, optional Encrypt Key).
#[derive(Clone)]
pub struct FeishuEvents {
    verification_token: AppSecret,
    encrypt_key: Option<(AppSecret, [u8; 32])>,
}

impl std::fmt::Debug for FeishuEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeishuEvents")
            .field("verification_token", &self.verification_token)
            .field("encrypt_key", &self.encrypt_key.as_ref().map(|_| "***"))
            .finish()
    }
}

impl FeishuEvents {
    /// The app's Verification Token (required) and Encrypt Key (recommended: without it
    /// requests are neither signed nor encrypted, and only the token authenticates them).
    pub fn new(verification_token: &str, encrypt_key: Option<&str>) -> Result<Self, EventError> {
        if verification_token.is_empty() {
            return Err(EventError::InvalidConfig {
                what: "empty verification token",
            });
        }
        let encrypt_key = match encrypt_key {
            Some("") => {
                return Err(EventError::InvalidConfig {
                    what: "empty encrypt key",
                });
            }
            Some(k) => Some((AppSecret::new(k), sha256(k.as_bytes()))),
            None => None,
        };
        Ok(Self {
            verification_token: AppSecret::new(verification_token),
            encrypt_key,
        })
    }

    /// From platform-neutral credentials (`token` required, `key` optional); the shape of
    /// [`unilogin_core::events::BuildCodec`].
    pub fn from_credentials(creds: &EventCredentials) -> Result<Box<dyn EventCodec>, EventError> {
        let token = creds.token.as_ref().ok_or(EventError::InvalidConfig {
            what: "verification token required",
        })?;
        let key = creds.key.as_ref().map(AppSecret::expose);
        Ok(Box::new(Self::new(token.expose(), key)?))
    }

    /// The `X-Lark-Signature` of `body` at `timestamp` with `nonce` (needs an Encrypt Key).
    pub fn signature(&self, timestamp: &str, nonce: &str, body: &[u8]) -> Option<String> {
        let (key, _) = self.encrypt_key.as_ref()?;
        let mut input = Vec::with_capacity(timestamp.len() + nonce.len() + key.len() + body.len());
        for part in [
            timestamp.as_bytes(),
            nonce.as_bytes(),
            key.expose().as_bytes(),
            body,
        ] {
            input.extend_from_slice(part);
        }
        Some(hex(&sha256(&input)))
    }

    fn token_matches(&self, token: Option<&str>) -> Result<(), EventError> {
        match token {
            Some(t) if ct_eq_str(t, self.verification_token.expose()) => Ok(()),
            _ => Err(EventError::WrongToken),
        }
    }
}

/// Decrypts a Feishu `encrypt` value with the SHA-256 of the Encrypt Key. Public for fuzzing.
pub fn decrypt(key: &[u8; 32], encrypt: &str) -> Result<Vec<u8>, EventError> {
    let raw = decode_base64(encrypt)?;
    if raw.len() < 32 {
        return Err(EventError::BadCiphertext);
    }
    let (iv, data) = raw.split_at(16);
    let iv: [u8; 16] = iv.try_into().map_err(|_| EventError::BadCiphertext)?;
    let mut plain = aes256_cbc_decrypt(key, &iv, data)?;
    pkcs7_unpad(&mut plain, 16)?;
    Ok(plain)
}

/// A parsed Feishu payload.
#[derive(Debug)]
pub enum Parsed {
    /// The URL verification, with its challenge and token.
    Challenge {
        /// The challenge to echo.
        challenge: String,
        /// The token it carries.
        token: Option<String>,
    },
    /// An event (type, id, token, `create_time`/`ts`) and its plaintext.
    Event {
        /// `header.event_type` or `event.type`.
        event_type: String,
        /// `header.event_id` or `uuid`.
        event_id: Option<String>,
        /// `header.token` or `token`.
        token: Option<String>,
        /// `header.create_time` (ms) or `ts` (s), when parseable.
        created: Option<std::time::SystemTime>,
        /// The payload.
        plaintext: Plaintext,
    },
}

/// Parses a decrypted (or plain) Feishu payload. Public for fuzzing.
pub fn parse_payload(text: String) -> Result<Parsed, EventError> {
    let doc: Value = serde_json::from_str(&text).map_err(|_| EventError::BadJson)?;
    let s = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
    if doc.get("type").and_then(Value::as_str) == Some("url_verification") {
        let challenge =
            s(doc.get("challenge")).ok_or(EventError::MissingField { name: "challenge" })?;
        let token = s(doc.get("token"));
        return Ok(Parsed::Challenge { challenge, token });
    }
    let (event_type, event_id, token, created) = match doc.get("header") {
        Some(h) => (
            s(h.get("event_type")),
            s(h.get("event_id")),
            s(h.get("token")),
            s(h.get("create_time")).and_then(|t| parse_timestamp(&t, true).ok()),
        ),
        None => (
            s(doc.pointer("/event/type")),
            s(doc.get("uuid")),
            s(doc.get("token")),
            s(doc.get("ts")).and_then(|t| parse_timestamp(&t, false).ok()),
        ),
    };
    let event_type = event_type.ok_or(EventError::MissingField { name: "event_type" })?;
    let event_id = Some(event_id.ok_or(EventError::MissingField { name: "event_id" })?);
    let plaintext = Plaintext::new(text, doc);
    Ok(Parsed::Event {
        event_type,
        event_id,
        token,
        created,
        plaintext,
    })
}

/// The directory changes a decrypted Feishu event document carries (see the
/// [module documentation](self)); [`EventCodec::changes`] on its document. Public for fuzzing
/// and fakes.
///
/// ```
/// use unilogin_core::events::{DirectoryChange, LeaveReason};
/// use unilogin_feishu::events::directory_changes;
/// let doc = serde_json::json!({
///     "schema": "2.0",
///     "header": {"event_type": "contact.user.updated_v3", "tenant_key": "tk1"},
///     "event": {"object": {"open_id": "ou_1", "status": {"is_frozen": true}}, "old_object": {}},
/// });
/// let changes = directory_changes("contact.user.updated_v3", &doc)?;
/// let [DirectoryChange::Left { ids, reason }] = changes.as_slice() else { panic!("left") };
/// assert_eq!(*reason, LeaveReason::Disabled);
/// assert_eq!((ids.open_id.as_deref(), ids.org_id.as_deref()), (Some("ou_1"), Some("tk1")));
/// # Ok::<(), unilogin_core::events::EventError>(())
/// ```
pub fn directory_changes(
    event_type: &str,
    doc: &Value,
) -> Result<Vec<DirectoryChange>, EventError> {
    // `Some(reason)`: the person loses access; `None`: their profile changed.
    let (leaves, ids) = if doc.get("header").is_some() {
        let object = doc.pointer("/event/object");
        let flag = |name: &str| {
            object
                .and_then(|o| o.get("status"))
                .and_then(|s| s.get(name))
                .and_then(Value::as_bool)
                == Some(true)
        };
        let leaves = match event_type {
            "contact.user.deleted_v3" => Some(LeaveReason::Left),
            "contact.user.updated_v3" if flag("is_resigned") || flag("is_exited") => {
                Some(LeaveReason::Left)
            }
            "contact.user.updated_v3" if flag("is_frozen") => Some(LeaveReason::Disabled),
            "contact.user.updated_v3" | "contact.user.created_v3" => None,
            _ => return Ok(Vec::new()),
        };
        let old = doc.pointer("/event/old_object");
        let id = |name: &str| {
            text(object.and_then(|o| o.get(name))).or_else(|| text(old.and_then(|o| o.get(name))))
        };
        let ids = PersonIds {
            user_id: id("user_id"),
            union_id: id("union_id"),
            open_id: id("open_id"),
            org_id: text(doc.pointer("/header/tenant_key")),
        };
        (leaves, ids)
    } else {
        let event = doc.get("event");
        let field = |name: &str| text(event.and_then(|e| e.get(name)));
        let leaves = match event_type {
            "user_leave" => Some(LeaveReason::Left),
            "user_update" | "user_add" => None,
            "user_status_change" => {
                let status = event
                    .and_then(|e| e.get("current_status"))
                    .filter(|s| s.is_object())
                    .ok_or(EventError::MissingField {
                        name: "current_status",
                    })?;
                let flag = |name: &str| status.get(name).and_then(Value::as_bool) == Some(true);
                if flag("is_resigned") {
                    Some(LeaveReason::Left)
                } else if flag("is_frozen") {
                    Some(LeaveReason::Disabled)
                } else {
                    None
                }
            }
            _ => return Ok(Vec::new()),
        };
        let ids = PersonIds {
            user_id: field("employee_id").or_else(|| field("user_id")),
            union_id: field("union_id"),
            open_id: field("open_id"),
            org_id: field("tenant_key"),
        };
        (leaves, ids)
    };
    if ids.is_empty() {
        return Err(EventError::MissingField { name: "open_id" });
    }
    Ok(vec![match leaves {
        Some(reason) => DirectoryChange::Left { ids, reason },
        None => DirectoryChange::Updated { ids },
    }])
}

fn text(v: Option<&Value>) -> Option<String> {
    v.and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

impl EventCodec for FeishuEvents {
    fn platform(&self) -> &'static str {
        NAME
    }

    fn open(&self, request: &EventRequest<'_>) -> Result<Inbound, EventError> {
        let body = request.bounded_body()?;
        if request.method() != "POST" {
            return Err(EventError::MethodNotAllowed);
        }
        let outer: Value = serde_json::from_slice(body).map_err(|_| EventError::BadJson)?;
        let encrypt = outer.get("encrypt");
        let mut signed_at = None;
        let text = match (&self.encrypt_key, encrypt) {
            (None, Some(_)) => return Err(EventError::UnexpectedEncryption),
            (None, None) => String::from_utf8(body.to_vec()).map_err(|_| EventError::BadUtf8)?,
            (Some(_), None) => return Err(EventError::NotEncrypted),
            (Some((_, key)), Some(encrypt)) => {
                let encrypt = encrypt
                    .as_str()
                    .ok_or(EventError::MissingField { name: "encrypt" })?;
                let sig = request.header_value("X-Lark-Signature")?;
                if let Some(sig) = sig {
                    let ts = request.header_value("X-Lark-Request-Timestamp")?;
                    let ts = ts.ok_or(EventError::MissingParameter {
                        name: "X-Lark-Request-Timestamp",
                    })?;
                    let nonce = request.header_value("X-Lark-Request-Nonce")?;
                    let nonce = nonce.ok_or(EventError::MissingParameter {
                        name: "X-Lark-Request-Nonce",
                    })?;
                    let expected = self
                        .signature(ts, nonce, body)
                        .ok_or(EventError::BadSignature)?;
                    verify_hex(&expected, sig)?;
                    signed_at = Some(parse_timestamp(ts, false)?);
                }
                let text =
                    String::from_utf8(decrypt(key, encrypt)?).map_err(|_| EventError::BadUtf8)?;
                if sig.is_none()
                    && !matches!(parse_payload(text.clone())?, Parsed::Challenge { .. })
                {
                    return Err(EventError::MissingParameter {
                        name: "X-Lark-Signature",
                    });
                }
                text
            }
        };
        match parse_payload(text)? {
            Parsed::Challenge { challenge, token } => {
                self.token_matches(token.as_deref())?;
                let reply = Reply::new(
                    "application/json",
                    json!({ "challenge": challenge }).to_string(),
                );
                Ok(Inbound::Handshake(Handshake {
                    reply,
                    timestamp: signed_at,
                }))
            }
            Parsed::Event {
                event_type,
                event_id,
                token,
                created,
                plaintext,
            } => {
                self.token_matches(token.as_deref())?;
                Ok(Inbound::Event(Event {
                    event_type,
                    event_id,
                    timestamp: signed_at.or(created),
                    format: PayloadFormat::Json,
                    plaintext,
                }))
            }
        }
    }

    fn acknowledge(&self, _event: &Event) -> Reply {
        Reply::new("application/json", r#"{"msg":"success"}"#)
    }

    fn changes(&self, event: &Event) -> Result<Vec<DirectoryChange>, EventError> {
        directory_changes(&event.event_type, event.plaintext.expose_document())
    }

    fn store_app_changes(&self, event: &Event) -> Result<Vec<StoreAppChange>, EventError> {
        store_app_changes(
            &event.event_type,
            event.plaintext.expose_document(),
            SystemTime::now(),
        )
    }
}

/// The store-app changes a decrypted Feishu v1 event document carries, received at
/// `received_at`. Public for fuzzing and fakes.
///
/// | v1 `event.type` | change |
/// |---|---|
/// | `app_ticket` | [`StoreAppChange::TicketPushed`] (`event.app_id`, `event.app_ticket`; push time `ts`, seconds with a fraction) |
/// | `app_open` | [`StoreAppChange::Installed`] (`event.tenant_key`; installer `installer.open_id`, else `installer_employee.open_id`) |
/// | `app_status_change`, `status` `start_by_tenant` | `Installed` (installer `operator.open_id`) |
/// | `app_status_change`, `status` `stop_by_tenant` / `stop_by_platform` | [`StoreAppChange::Uninstalled`] |
/// | `app_uninstalled` | `Uninstalled` |
/// | anything else | none |
///
/// A missing `app_id`, `app_ticket`, `tenant_key` or `status`, or one that is not an id, is
/// [`EventError::MissingField`].
///
/// ```
/// use std::time::{Duration, SystemTime, UNIX_EPOCH};
/// use unilogin_core::events::StoreAppChange;
/// use unilogin_feishu::events::store_app_changes;
/// let doc = serde_json::json!({"ts": "1602491118.218", "uuid": "u1", "token": "vt",
///     "type": "event_callback",
///     "event": {"app_id": "cli_store", "app_ticket": "tk-1", "type": "app_ticket"}});
/// let changes = store_app_changes("app_ticket", &doc, SystemTime::now())?;
/// let [StoreAppChange::TicketPushed { app, ticket }] = &changes[..] else { panic!("ticket") };
/// assert_eq!(app.app_id().as_str(), "cli_store");
/// assert_eq!(ticket.value.expose(), "tk-1");
/// assert_eq!(ticket.pushed_at, UNIX_EPOCH + Duration::from_millis(1_602_491_118_218));
/// # Ok::<(), unilogin_core::events::EventError>(())
/// ```
pub fn store_app_changes(
    event_type: &str,
    doc: &Value,
    received_at: SystemTime,
) -> Result<Vec<StoreAppChange>, EventError> {
    let event = doc.get("event");
    let field = |name: &str| text(event.and_then(|e| e.get(name)));
    let opened = |name: &str| text(event.and_then(|e| e.pointer(&format!("/{name}/open_id"))));
    if !matches!(
        event_type,
        "app_ticket" | "app_open" | "app_status_change" | "app_uninstalled"
    ) {
        return Ok(Vec::new());
    }
    let app_id = field("app_id").ok_or(EventError::MissingField { name: "app_id" })?;
    let platform = PlatformName::new(NAME).map_err(|_| EventError::InvalidConfig {
        what: "platform name",
    })?;
    let app = TicketApp::new(platform, app_id)
        .map_err(|_| EventError::MissingField { name: "app_id" })?;
    let org = || {
        field("tenant_key")
            .and_then(|t| OrgId::new(t).ok())
            .ok_or(EventError::MissingField { name: "tenant_key" })
    };
    let installed = |org: OrgId, installer: Option<String>| StoreAppChange::Installed {
        app: app.clone(),
        org,
        info: InstallInfo {
            installer,
            ..InstallInfo::default()
        },
    };
    Ok(vec![match event_type {
        "app_ticket" => {
            let value =
                field("app_ticket").ok_or(EventError::MissingField { name: "app_ticket" })?;
            let pushed_at = text(doc.get("ts"))
                .and_then(|ts| parse_seconds(&ts))
                .unwrap_or(received_at);
            let ticket = PushedTicket::new(value, pushed_at, received_at)
                .map_err(|_| EventError::MissingField { name: "app_ticket" })?;
            StoreAppChange::TicketPushed { app, ticket }
        }
        "app_open" => installed(
            org()?,
            opened("installer").or_else(|| opened("installer_employee")),
        ),
        "app_uninstalled" => StoreAppChange::Uninstalled { app, org: org()? },
        _ => match field("status").as_deref() {
            Some("start_by_tenant") => installed(org()?, opened("operator")),
            Some("stop_by_tenant" | "stop_by_platform") => {
                StoreAppChange::Uninstalled { app, org: org()? }
            }
            Some(_) => return Ok(Vec::new()),
            None => return Err(EventError::MissingField { name: "status" }),
        },
    }])
}

/// `ts` of a v1 event: seconds since the epoch with an optional fraction (`1602491118.218`).
fn parse_seconds(ts: &str) -> Option<SystemTime> {
    let (whole, fraction) = ts.split_once('.').unwrap_or((ts, ""));
    let secs: u64 = whole.parse().ok()?;
    let digits: String = fraction.chars().take(3).collect();
    if !digits.chars().all(|c| c.is_ascii_digit()) || !fraction.chars().all(|c| c.is_ascii_digit())
    {
        return None;
    }
    let ms: u64 = format!("{digits:0<3}").parse().ok()?;
    Some(from_unix_ms(secs.checked_mul(1000)?.checked_add(ms)?))
}
