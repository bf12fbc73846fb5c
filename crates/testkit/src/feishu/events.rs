//! Feishu / Lark event subscriptions pushed by the fake (see [`crate::events`]): schema 2.0
//! JSON, `{"encrypt"}` with `SHA256(encrypt_key)` AES-256-CBC when an Encrypt Key is set, and
//! the `X-Lark-Request-Timestamp` / `-Nonce` / `-Signature` headers.

use serde_json::{Value, json};

use super::{DEFAULT_APP_ID, FakeFeishu, Feishu};
use crate::events::crypto::{feishu_seal, feishu_signature};
use crate::events::{
    Delivery, EventCredentials, EventFault, FakeEvent, Outgoing, PushError, corrupt, deliver,
    oversize_json, push_time, random_alnum, random_bytes, with_query,
};
use crate::store::random_id;

/// Default Verification Token of every app.
pub const DEFAULT_VERIFICATION_TOKEN: &str = "fake_fs_verification_token";
/// Default Encrypt Key of every app.
pub const DEFAULT_ENCRYPT_KEY: &str = "fake_fs_encrypt_key";

/// The default subscription of `app_id`.
pub(crate) fn default_credentials(app_id: &str) -> EventCredentials {
    EventCredentials {
        token: DEFAULT_VERIFICATION_TOKEN.to_owned(),
        aes_key: Some(DEFAULT_ENCRYPT_KEY.to_owned()),
        receiver_id: app_id.to_owned(),
    }
}

/// `(plaintext, challenge, event_id)`.
type Plain = (String, Option<String>, Option<String>);

impl Feishu {
    fn user_object(&self, user_id: &str, status: (bool, bool)) -> Value {
        let u = self.users.get(user_id);
        let get = |f: fn(&crate::users::FakeUser) -> String, default: String| {
            u.as_ref()
                .map(f)
                .filter(|s| !s.is_empty())
                .unwrap_or(default)
        };
        let (frozen, resigned) = status;
        json!({
            "open_id": get(|u| u.open_id.clone(), format!("ou_{user_id}")),
            "union_id": get(|u| u.union_id.clone(), format!("on_{user_id}")),
            "user_id": user_id,
            "name": get(|u| u.name.clone(), user_id.to_owned()),
            "email": get(|u| u.email.clone(), String::new()),
            "mobile": get(|u| u.mobile.clone(), String::new()),
            "employee_no": get(|u| u.job_number.clone(), String::new()),
            "department_ids": u.as_ref().map(|u| u.dept_ids.iter().map(|d| format!("od-{d}")).collect::<Vec<_>>()).unwrap_or_default(),
            "status": {"is_frozen": frozen, "is_resigned": resigned, "is_activated": true, "is_exited": false, "is_unjoin": false},
        })
    }

    fn plaintext(
        &self,
        app_id: &str,
        token: &str,
        event: &FakeEvent,
        ts: u128,
    ) -> Result<Plain, PushError> {
        let event_id = random_id("")[..32].to_owned();
        let tenant = self
            .app(app_id)
            .map(|a| a.tenant_key)
            .unwrap_or_else(|| self.home_tenant.clone());
        let envelope = |event_type: &str, body: Value| {
            json!({
                "schema": "2.0",
                "header": {
                    "event_id": event_id,
                    "event_type": event_type,
                    "create_time": (ts * 1000).to_string(),
                    "token": token,
                    "app_id": app_id,
                    "tenant_key": tenant,
                },
                "event": body,
            })
            .to_string()
        };
        let status_change = |uid: &str, frozen: bool, resigned: bool| {
            let old = json!({"status": {"is_frozen": false, "is_resigned": false, "is_activated": true, "is_exited": false, "is_unjoin": false}});
            envelope(
                "contact.user.updated_v3",
                json!({"object": self.user_object(uid, (frozen, resigned)), "old_object": old}),
            )
        };
        let id = Some(event_id.clone());
        Ok(match event {
            FakeEvent::Verification => {
                let challenge = random_alnum(16);
                let body =
                    json!({"challenge": challenge, "token": token, "type": "url_verification"});
                (body.to_string(), Some(challenge), None)
            }
            FakeEvent::UserLeft(uid) => {
                let object = self.user_object(uid, (false, true));
                let old = json!({"department_ids": object["department_ids"], "open_id": object["open_id"]});
                (
                    envelope(
                        "contact.user.deleted_v3",
                        json!({"object": object, "old_object": old}),
                    ),
                    None,
                    id,
                )
            }
            FakeEvent::UserResigned(uid) => (status_change(uid, false, true), None, id),
            FakeEvent::UserDisabled(uid) => (status_change(uid, true, false), None, id),
            FakeEvent::UserUpdated(uid) => {
                let mut object = self.user_object(uid, (false, false));
                let old_name = object["name"].clone();
                object["name"] = json!(format!("{} (updated)", old_name.as_str().unwrap_or(uid)));
                (
                    envelope(
                        "contact.user.updated_v3",
                        json!({"object": object, "old_object": {"name": old_name}}),
                    ),
                    None,
                    id,
                )
            }
            FakeEvent::Custom(text) => (text.clone(), None, None),
        })
    }
}

/// Feishu's check of the answer: the challenge echoed for the verification, 2xx otherwise.
fn judge(challenge: Option<&str>, status: u16, body: &str) -> Result<(), String> {
    if !(200..300).contains(&status) {
        return Err(format!("HTTP {status}: Feishu retries non-2xx answers"));
    }
    let Some(expected) = challenge else {
        return Ok(());
    };
    if status != 200 {
        return Err(format!("HTTP {status}: the verification wants 200"));
    }
    let v: Value =
        serde_json::from_str(body).map_err(|_| "verification answer is not JSON".to_owned())?;
    match v.get("challenge").and_then(Value::as_str) {
        Some(c) if c == expected => Ok(()),
        Some(_) => Err("verification answer echoes another challenge".to_owned()),
        None => Err("verification answer lacks `challenge`".to_owned()),
    }
}

impl FakeFeishu {
    /// The event subscription of the default app.
    pub fn event_credentials(&self) -> EventCredentials {
        self.event_credentials_for(DEFAULT_APP_ID)
    }

    /// The event subscription of `app_id` (defaults: [`DEFAULT_VERIFICATION_TOKEN`],
    /// [`DEFAULT_ENCRYPT_KEY`], `receiver_id` = the app id).
    pub fn event_credentials_for(&self, app_id: &str) -> EventCredentials {
        self.backend().event_credentials(app_id)
    }

    /// Replace the event subscription of `app_id` (`aes_key: None`: plaintext events).
    pub fn set_event_credentials(&self, app_id: &str, creds: EventCredentials) {
        self.backend().event_creds.insert(app_id.to_owned(), creds);
    }

    /// Push `event` for the default app to `url` (see [`crate::events`]).
    pub async fn push_event(
        &self,
        url: &str,
        event: FakeEvent,
        fault: Option<EventFault>,
    ) -> Result<Delivery, PushError> {
        self.push_event_for(DEFAULT_APP_ID, url, event, fault).await
    }

    /// [`push_event`](Self::push_event) for the subscription of `app_id`.
    pub async fn push_event_for(
        &self,
        app_id: &str,
        url: &str,
        event: FakeEvent,
        fault: Option<EventFault>,
    ) -> Result<Delivery, PushError> {
        self.backend().push_for(app_id, url, event, fault).await
    }
}

impl Feishu {
    /// The event subscription of `app_id` (see [`FakeFeishu::event_credentials_for`]).
    pub(crate) fn event_credentials(&self, app_id: &str) -> EventCredentials {
        self.event_creds
            .get(app_id)
            .unwrap_or_else(|| default_credentials(app_id))
    }

    /// [`FakeFeishu::push_event_for`], from the backend (a push the fake starts itself).
    pub(crate) async fn push_for(
        &self,
        app_id: &str,
        url: &str,
        event: FakeEvent,
        fault: Option<EventFault>,
    ) -> Result<Delivery, PushError> {
        let creds = self.event_credentials(app_id);
        let key = creds.aes_key.clone();
        if key.is_none()
            && matches!(
                fault,
                Some(EventFault::BadSignature | EventFault::GarbageCiphertext)
            )
        {
            return Err(PushError::Unsupported(
                "without an Encrypt Key Feishu neither signs nor encrypts",
            ));
        }
        let token = if fault == Some(EventFault::WrongReceiver) {
            "wrong-verification-token".to_owned()
        } else {
            creds.token.clone()
        };
        let ts = push_time(fault).as_secs();
        let (mut plain, challenge, event_id) =
            self.plaintext(&creds.receiver_id, &token, &event, u128::from(ts))?;
        if fault == Some(EventFault::OversizedBody) {
            plain = oversize_json(&plain);
        }
        let mut headers = Vec::new();
        let body = match &key {
            Some(k) => {
                let encrypt = if fault == Some(EventFault::GarbageCiphertext) {
                    use base64::Engine as _;
                    base64::engine::general_purpose::STANDARD.encode(random_bytes(64))
                } else {
                    let iv: [u8; 16] = random_bytes(16).try_into().unwrap_or([0; 16]);
                    feishu_seal(k, &iv, plain.as_bytes())
                };
                let body = json!({"encrypt": encrypt}).to_string().into_bytes();
                let nonce = random_alnum(16);
                let ts = ts.to_string();
                let mut sig = feishu_signature(&ts, &nonce, k, &body);
                if fault == Some(EventFault::BadSignature) {
                    sig = corrupt(&sig);
                }
                headers.push(("X-Lark-Request-Timestamp", ts));
                headers.push(("X-Lark-Request-Nonce", nonce));
                headers.push(("X-Lark-Signature", sig));
                body
            }
            None => plain.into_bytes(),
        };
        let out = Outgoing {
            get: false,
            url: with_query(url, &[])?,
            headers,
            content_type: "application/json; charset=utf-8",
            body,
        };
        tracing::debug!(app_id, ?fault, "fake feishu: pushing an event");
        deliver(out, fault, event_id, |status, body| {
            judge(challenge.as_deref(), status, body)
        })
        .await
    }
}
