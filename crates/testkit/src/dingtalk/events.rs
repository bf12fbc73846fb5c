//! DingTalk HTTP callbacks pushed by the fake (see [`crate::events`]): `POST
//! URL?msg_signature&timestamp&nonce` with `{"encrypt"}`, AES-256-CBC with the owner key,
//! signature `sha1(sort(token, timestamp, nonce, encrypt))`, timestamps in milliseconds.

use serde_json::{Value, json};

use super::{DEFAULT_APP_KEY, DingTalk, FakeDingTalk};
use crate::events::crypto::{self, aes_key, open_for, seal, sorted_sha1};
use crate::events::{
    Delivery, EventCredentials, EventFault, FakeEvent, Outgoing, PushError, corrupt, deliver,
    oversize_json, push_time, random_alnum, random_bytes, with_query,
};
use crate::store::random_id;

/// Default event `token` of every app.
pub const DEFAULT_EVENT_TOKEN: &str = "fake_dt_event_token";
/// Default `aes_key` (43 characters) of every app.
pub const DEFAULT_EVENT_AES_KEY: &str = "fakeDingTalkEventAesKey0123456789abcdefghij";

/// The default subscription of `app_key` (its AppKey is the owner key).
pub(crate) fn default_credentials(app_key: &str) -> EventCredentials {
    EventCredentials {
        token: DEFAULT_EVENT_TOKEN.to_owned(),
        aes_key: Some(DEFAULT_EVENT_AES_KEY.to_owned()),
        receiver_id: app_key.to_owned(),
    }
}

impl DingTalk {
    fn plaintext(
        &self,
        app_key: &str,
        event: &FakeEvent,
        ts_ms: &str,
    ) -> Result<(String, Option<String>), PushError> {
        let corp = self
            .app(app_key)
            .map(|a| a.corp_id)
            .unwrap_or_else(|| self.home_corp.clone());
        let event_id = random_id("")[..24].to_owned();
        let contact = |kind: &str, user: &str| {
            json!({
                "EventType": kind,
                "CorpId": corp,
                "UserId": [user],
                "OptStaffId": super::SECOND_USER_ID,
                "TimeStamp": ts_ms,
                "eventId": event_id,
            })
            .to_string()
        };
        Ok(match event {
            FakeEvent::Verification => (json!({"EventType": "check_url"}).to_string(), None),
            FakeEvent::UserLeft(u) | FakeEvent::UserResigned(u) => {
                (contact("user_leave_org", u), Some(event_id.clone()))
            }
            FakeEvent::UserUpdated(u) => (contact("user_modify_org", u), Some(event_id.clone())),
            FakeEvent::UserDisabled(_) => {
                return Err(PushError::Unsupported(
                    "DingTalk has no \"user disabled\" event (a disabled user disappears from user/get)",
                ));
            }
            FakeEvent::Custom(text) => (text.clone(), None),
        })
    }
}

/// DingTalk's check of a callback answer: HTTP 200 JSON `{msg_signature, encrypt, timeStamp,
/// nonce}`, signature valid, `encrypt` = `success` for `creds`.
fn judge(creds: &EventCredentials, key: &[u8; 32], status: u16, body: &str) -> Result<(), String> {
    if status != 200 {
        return Err(format!("HTTP {status}, DingTalk wants 200"));
    }
    let v: Value = serde_json::from_str(body).map_err(|_| "answer is not JSON".to_owned())?;
    let text = |k: &str| match v.get(k) {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    let (Some(sig), Some(enc), Some(ts), Some(nonce)) = (
        text("msg_signature"),
        text("encrypt"),
        text("timeStamp"),
        text("nonce"),
    ) else {
        return Err("answer lacks msg_signature / encrypt / timeStamp / nonce".to_owned());
    };
    if sorted_sha1(&[&creds.token, &ts, &nonce, &enc]) != sig {
        return Err("answer signature mismatch".to_owned());
    }
    match open_for(key, &enc, &creds.receiver_id) {
        Ok(msg) if msg == b"success" => Ok(()),
        Ok(_) => Err("answer does not decrypt to `success`".to_owned()),
        Err(e) => Err(format!("answer does not decrypt: {e}")),
    }
}

impl FakeDingTalk {
    /// The event subscription of the default app.
    pub fn event_credentials(&self) -> EventCredentials {
        self.event_credentials_for(DEFAULT_APP_KEY)
    }

    /// The event subscription of `app_key` (defaults: [`DEFAULT_EVENT_TOKEN`],
    /// [`DEFAULT_EVENT_AES_KEY`], owner key = the AppKey).
    pub fn event_credentials_for(&self, app_key: &str) -> EventCredentials {
        self.backend()
            .event_creds
            .get(app_key)
            .unwrap_or_else(|| default_credentials(app_key))
    }

    /// Replace the event subscription of `app_key`.
    pub fn set_event_credentials(&self, app_key: &str, creds: EventCredentials) {
        self.backend().event_creds.insert(app_key.to_owned(), creds);
    }

    /// Push `event` for the default app to `url` (see [`crate::events`]), misbehaving as
    /// `fault` says.
    pub async fn push_event(
        &self,
        url: &str,
        event: FakeEvent,
        fault: Option<EventFault>,
    ) -> Result<Delivery, PushError> {
        self.push_event_for(DEFAULT_APP_KEY, url, event, fault)
            .await
    }

    /// [`push_event`](Self::push_event) for the subscription of `app_key`.
    pub async fn push_event_for(
        &self,
        app_key: &str,
        url: &str,
        event: FakeEvent,
        fault: Option<EventFault>,
    ) -> Result<Delivery, PushError> {
        let creds = self.event_credentials_for(app_key);
        let key = creds
            .aes_key
            .as_deref()
            .ok_or(PushError::BadCredentials("DingTalk needs an aes_key"))
            .and_then(|k| {
                aes_key(k)
                    .map_err(|_| PushError::BadCredentials("aes_key must be 43 base64 characters"))
            })?;
        let ts = push_time(fault).as_millis().to_string();
        let (mut plain, event_id) = self.backend().plaintext(app_key, &event, &ts)?;
        if fault == Some(EventFault::OversizedBody) {
            plain = oversize_json(&plain);
        }
        let owner = if fault == Some(EventFault::WrongReceiver) {
            "wrong-receiver-id"
        } else {
            creds.receiver_id.as_str()
        };
        let encrypt = if fault == Some(EventFault::GarbageCiphertext) {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD.encode(random_bytes(64))
        } else {
            let random: [u8; 16] = random_alnum(16).as_bytes().try_into().unwrap_or([b'0'; 16]);
            seal(&key, &random, plain.as_bytes(), owner)
        };
        let nonce = random_alnum(8);
        let mut sig = sorted_sha1(&[&creds.token, &ts, &nonce, &encrypt]);
        if fault == Some(EventFault::BadSignature) {
            sig = corrupt(&sig);
        }
        let out = Outgoing {
            get: false,
            url: with_query(
                url,
                &[
                    ("msg_signature", &sig),
                    ("timestamp", &ts),
                    ("nonce", &nonce),
                ],
            )?,
            headers: Vec::new(),
            content_type: "application/json",
            body: json!({"encrypt": encrypt}).to_string().into_bytes(),
        };
        tracing::debug!(app_key, ?fault, "fake dingtalk: pushing an event");
        deliver(out, fault, event_id, |status, body| {
            judge(&creds, &key, status, body)
        })
        .await
    }
}

/// A DingTalk-style answer to a callback: the encrypted `success` for `creds` (what a correct
/// receiver sends), for tests of the fake itself.
pub fn success_reply(
    creds: &EventCredentials,
    timestamp: &str,
    nonce: &str,
) -> Result<Value, crypto::CryptoError> {
    let key = aes_key(creds.aes_key.as_deref().unwrap_or(""))?;
    let random: [u8; 16] = random_alnum(16).as_bytes().try_into().unwrap_or([b'0'; 16]);
    let encrypt = seal(&key, &random, b"success", &creds.receiver_id);
    let sig = sorted_sha1(&[&creds.token, timestamp, nonce, &encrypt]);
    Ok(json!({"msg_signature": sig, "encrypt": encrypt, "timeStamp": timestamp, "nonce": nonce}))
}
