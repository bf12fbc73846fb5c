//! WeCom callbacks pushed by the fake (`WXBizMsgCrypt`, see [`crate::events`]): the `GET
//! ?msg_signature&timestamp&nonce&echostr` verification, and encrypted XML events `POST
//! ?msg_signature&timestamp&nonce` with the receiveid (corpid), timestamps in seconds.

use super::{FakeWeCom, WeCom};
use crate::events::crypto::{aes_key, open_for, seal, sorted_sha1};
use crate::events::{
    Delivery, EventCredentials, EventFault, FakeEvent, Outgoing, PushError, corrupt, deliver,
    oversize_xml, push_time, random_alnum, random_bytes, with_query,
};

/// Default callback `Token` of every app.
pub const DEFAULT_EVENT_TOKEN: &str = "fake_wecom_event_token";
/// Default `EncodingAESKey` (43 characters) of every app.
pub const DEFAULT_ENCODING_AES_KEY: &str = "fakeWeComEncodingAesKey0123456789abcdefghij";

/// The default subscription of an app of `corp_id` (receiveid = corpid).
pub(crate) fn default_credentials(corp_id: &str) -> EventCredentials {
    EventCredentials {
        token: DEFAULT_EVENT_TOKEN.to_owned(),
        aes_key: Some(DEFAULT_ENCODING_AES_KEY.to_owned()),
        receiver_id: corp_id.to_owned(),
    }
}

fn cdata(name: &str, value: &str) -> String {
    format!(
        "<{name}><![CDATA[{}]]></{name}>",
        value.replace("]]>", "]]]]><![CDATA[>")
    )
}

/// The text of `<name>` in a flat XML document (CDATA or plain).
fn xml_text(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&close)?;
    let inner = &xml[start..end];
    Some(
        inner
            .strip_prefix("<![CDATA[")
            .and_then(|s| s.strip_suffix("]]>"))
            .unwrap_or(inner)
            .to_owned(),
    )
}

impl WeCom {
    fn contact_xml(
        &self,
        corp_id: &str,
        ts: u64,
        change: &str,
        user_id: &str,
        extra: &str,
    ) -> String {
        format!(
            "<xml>{}{}<CreateTime>{ts}</CreateTime>{}{}{}{}{extra}</xml>",
            cdata("ToUserName", corp_id),
            cdata("FromUserName", "sys"),
            cdata("MsgType", "event"),
            cdata("Event", "change_contact"),
            cdata("ChangeType", change),
            cdata("UserID", user_id),
        )
    }

    fn plaintext(&self, corp_id: &str, event: &FakeEvent, ts: u64) -> String {
        match event {
            FakeEvent::Verification => {
                let n = u64::from_str_radix(&crate::store::random_id("")[..15], 16).unwrap_or(1);
                n.to_string()
            }
            FakeEvent::UserLeft(u) => self.contact_xml(corp_id, ts, "delete_user", u, ""),
            FakeEvent::UserResigned(u) => {
                self.contact_xml(corp_id, ts, "update_user", u, "<Status>5</Status>")
            }
            FakeEvent::UserDisabled(u) => {
                self.contact_xml(corp_id, ts, "update_user", u, "<Status>2</Status>")
            }
            FakeEvent::UserUpdated(u) => {
                let name = self
                    .users
                    .get(u)
                    .map(|p| p.name)
                    .unwrap_or_else(|| u.clone());
                self.contact_xml(
                    corp_id,
                    ts,
                    "update_user",
                    u,
                    &cdata("Name", &format!("{name} (updated)")),
                )
            }
            FakeEvent::Custom(text) => text.clone(),
        }
    }
}

/// WeCom's check of an event answer: 2xx with `success`, an empty body, or a valid encrypted
/// reply.
fn judge_event(
    creds: &EventCredentials,
    key: &[u8; 32],
    status: u16,
    body: &str,
) -> Result<(), String> {
    if !(200..300).contains(&status) {
        return Err(format!("HTTP {status}: WeCom retries non-2xx answers"));
    }
    let text = body.trim();
    if text.is_empty() || text == "success" {
        return Ok(());
    }
    let (Some(enc), Some(sig), Some(ts), Some(nonce)) = (
        xml_text(text, "Encrypt"),
        xml_text(text, "MsgSignature"),
        xml_text(text, "TimeStamp"),
        xml_text(text, "Nonce"),
    ) else {
        return Err("answer is neither `success`, empty, nor an encrypted reply".to_owned());
    };
    if sorted_sha1(&[&creds.token, &ts, &nonce, &enc]) != sig {
        return Err("encrypted reply: signature mismatch".to_owned());
    }
    open_for(key, &enc, &creds.receiver_id)
        .map(|_| ())
        .map_err(|e| format!("encrypted reply does not decrypt: {e}"))
}

impl FakeWeCom {
    /// The callback settings of the current app ([`use_app`](Self::use_app)).
    pub fn event_credentials(&self) -> EventCredentials {
        self.event_credentials_for(&self.backend().current_agent())
    }

    /// The callback settings of the app `agent_id` of the home corp (defaults:
    /// [`DEFAULT_EVENT_TOKEN`], [`DEFAULT_ENCODING_AES_KEY`], receiveid = corpid).
    pub fn event_credentials_for(&self, agent_id: &str) -> EventCredentials {
        let st = self.backend();
        st.event_creds
            .get(agent_id)
            .unwrap_or_else(|| default_credentials(&st.home_corp))
    }

    /// Replace the callback settings of the app `agent_id`.
    pub fn set_event_credentials(&self, agent_id: &str, creds: EventCredentials) {
        self.backend()
            .event_creds
            .insert(agent_id.to_owned(), creds);
    }

    /// Push `event` for the current app to `url` (see [`crate::events`]).
    pub async fn push_event(
        &self,
        url: &str,
        event: FakeEvent,
        fault: Option<EventFault>,
    ) -> Result<Delivery, PushError> {
        let agent = self.backend().current_agent();
        self.push_event_for(&agent, url, event, fault).await
    }

    /// [`push_event`](Self::push_event) for the app `agent_id`.
    pub async fn push_event_for(
        &self,
        agent_id: &str,
        url: &str,
        event: FakeEvent,
        fault: Option<EventFault>,
    ) -> Result<Delivery, PushError> {
        let st = self.backend();
        let creds = self.event_credentials_for(agent_id);
        let key = creds
            .aes_key
            .as_deref()
            .ok_or(PushError::BadCredentials("WeCom needs an EncodingAESKey"))
            .and_then(|k| {
                aes_key(k).map_err(|_| {
                    PushError::BadCredentials("EncodingAESKey must be 43 base64 characters")
                })
            })?;
        let verification = event == FakeEvent::Verification;
        if verification && fault == Some(EventFault::OversizedBody) {
            return Err(PushError::Unsupported(
                "the WeCom verification is a GET without a body",
            ));
        }
        let ts = push_time(fault).as_secs();
        let mut plain = st.plaintext(&st.home_corp, &event, ts);
        if fault == Some(EventFault::OversizedBody) {
            plain = oversize_xml(&plain);
        }
        let receiver = if fault == Some(EventFault::WrongReceiver) {
            "wrong-receiver-id"
        } else {
            creds.receiver_id.as_str()
        };
        let encrypt = if fault == Some(EventFault::GarbageCiphertext) {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD.encode(random_bytes(64))
        } else {
            let digits: String = random_bytes(16)
                .iter()
                .map(|b| char::from(b'0' + b % 10))
                .collect();
            let random: [u8; 16] = digits.as_bytes().try_into().unwrap_or([b'0'; 16]);
            seal(&key, &random, plain.as_bytes(), receiver)
        };
        let ts = ts.to_string();
        let nonce = random_alnum(10);
        let mut sig = sorted_sha1(&[&creds.token, &ts, &nonce, &encrypt]);
        if fault == Some(EventFault::BadSignature) {
            sig = corrupt(&sig);
        }
        let mut query = vec![
            ("msg_signature", sig.as_str()),
            ("timestamp", ts.as_str()),
            ("nonce", nonce.as_str()),
        ];
        if verification {
            query.push(("echostr", encrypt.as_str()));
        }
        let body = if verification {
            Vec::new()
        } else {
            format!(
                "<xml>{}{}{}</xml>",
                cdata("ToUserName", &st.home_corp),
                cdata("Encrypt", &encrypt),
                cdata("AgentID", agent_id)
            )
            .into_bytes()
        };
        let out = Outgoing {
            get: verification,
            url: with_query(url, &query)?,
            headers: Vec::new(),
            content_type: "text/xml; charset=utf-8",
            body,
        };
        tracing::debug!(agent_id, ?fault, "fake wecom: pushing an event");
        deliver(out, fault, None, |status, body| {
            if verification {
                if status == 200 && body == plain {
                    Ok(())
                } else {
                    Err(format!(
                        "HTTP {status}: the verification wants the decrypted echostr, exactly"
                    ))
                }
            } else {
                judge_event(&creds, &key, status, body)
            }
        })
        .await
    }
}

/// A WeCom encrypted passive reply of `msg` for `creds` (what a receiver may answer), for tests.
pub fn encrypted_reply(
    creds: &EventCredentials,
    msg: &str,
    timestamp: &str,
    nonce: &str,
) -> Option<String> {
    let key = aes_key(creds.aes_key.as_deref()?).ok()?;
    let random: [u8; 16] = random_alnum(16).as_bytes().try_into().ok()?;
    let enc = seal(&key, &random, msg.as_bytes(), &creds.receiver_id);
    let sig = sorted_sha1(&[&creds.token, timestamp, nonce, &enc]);
    Some(format!(
        "<xml>{}{}<TimeStamp>{timestamp}</TimeStamp>{}</xml>",
        cdata("Encrypt", &enc),
        cdata("MsgSignature", &sig),
        cdata("Nonce", nonce)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_helpers() {
        assert_eq!(
            xml_text("<xml><A><![CDATA[x]]></A><B>2</B></xml>", "A").as_deref(),
            Some("x")
        );
        assert_eq!(xml_text("<xml><B>2</B></xml>", "B").as_deref(), Some("2"));
        assert_eq!(xml_text("<xml></xml>", "B"), None);
        assert_eq!(cdata("A", "a]]>b"), "<A><![CDATA[a]]]]><![CDATA[>b]]></A>");
    }
}
