//! The service-provider side of the WeCom fake (third-party apps, reference
//! `isv-jsapi-events.md` §1.3): suites, pushed `suite_ticket`s, the installation flow
//! (`create_auth` → `get_permanent_code`), the token chain (`get_suite_token`,
//! `get_corp_token`) and the third-party code exchange (`service/auth/getuserinfo3rd`).
//!
//! | endpoint name ([`super::endpoints`]) | method and path |
//! |---|---|
//! | `get_suite_token` | `POST /cgi-bin/service/get_suite_token` `{suite_id, suite_secret, suite_ticket}` |
//! | `get_corp_token` | `POST /cgi-bin/service/get_corp_token?suite_access_token=` `{auth_corpid, permanent_code}` |
//! | `get_permanent_code` | `POST /cgi-bin/service/get_permanent_code?suite_access_token=` `{auth_code}` |
//! | `getuserinfo3rd` | `GET /cgi-bin/service/auth/getuserinfo3rd?suite_access_token=&code=` |
//!
//! What it validates: the suite secret (40001 otherwise); the ticket is the newest pushed or the
//! one before it (40085 otherwise, "invalid suite_ticket"); suite tokens (7200 s; 40082 unknown,
//! 42009 expired); an installation's auth code is single use (40078 otherwise); the permanent
//! code is the corp's current one (40084 otherwise); a corp token is an ordinary app token of
//! that corp (`user/get`, tickets); third-party codes are single use, 5 minutes, bound to the
//! suite (40029 otherwise); a person outside the corp gets `{corpid, openid}`.

use std::sync::Arc;

use axum::extract::Request;
use axum::response::Response;
use serde_json::json;

use super::envelope::{error, ok};
use super::{APP_TOKEN_TTL, AppTokenMeta, FakeWeCom, WeCom};
use crate::events::{Delivery, EventCredentials, FakeEvent, PushError};
use crate::http::{self, Params, Reply, param};
use crate::store::{TokenRejection, random_id};

/// A suite registered with the fake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FakeSuite {
    /// `suite_id`.
    pub suite_id: String,
    /// `suite_secret`.
    pub secret: String,
    /// The pushed tickets, newest last (the fake accepts the last two).
    pub tickets: Vec<String>,
}

impl FakeSuite {
    /// A suite with no ticket pushed yet.
    pub fn new(suite_id: &str, secret: &str) -> Self {
        Self {
            suite_id: suite_id.to_owned(),
            secret: secret.to_owned(),
            tickets: Vec::new(),
        }
    }
}

/// The suite token's owner.
#[derive(Debug, Clone)]
pub(crate) struct SuiteTokenMeta {
    suite_id: String,
}

/// A pending installation: which suite, which corp.
#[derive(Debug, Clone)]
pub(crate) struct PendingAuth {
    suite_id: String,
    corp_id: String,
}

/// A third-party login code: the suite and the person.
#[derive(Debug, Clone)]
pub(crate) struct Code3rd {
    suite_id: String,
    user_id: String,
}

/// The agent id reported for a suite's app inside an authorising corp.
pub const SUITE_AGENT_ID: &str = "1000100";

fn suite_token(st: &WeCom, query: &Params) -> Result<SuiteTokenMeta, Response> {
    let token = param(query, "suite_access_token").ok_or_else(|| error(41001))?;
    st.suite_tokens.check(token).map_err(|r| match r {
        TokenRejection::Expired => error(42009),
        TokenRejection::Unknown | TokenRejection::Revoked => error(40082),
    })
}

async fn json_params(req: Request) -> Result<(Params, Params), Response> {
    let (parts, body) = req.into_parts();
    let query = http::query_params(&parts.uri);
    Ok((query, super::handlers::json_object(body).await?))
}

/// `POST /cgi-bin/service/get_suite_token`.
pub(crate) async fn get_suite_token(st: Arc<WeCom>, req: Request) -> Reply {
    let (_, p) = json_params(req).await?;
    let suite_id = param(&p, "suite_id").ok_or_else(|| error(41002))?;
    let secret = param(&p, "suite_secret").ok_or_else(|| error(41004))?;
    let ticket = param(&p, "suite_ticket").ok_or_else(|| error(40085))?;
    let suite = st.suites.get(suite_id).ok_or_else(|| error(40013))?;
    if suite.secret != secret {
        return Err(error(40001));
    }
    let recent = suite.tickets.iter().rev().take(2).any(|t| t == ticket);
    if !recent {
        return Err(error(40085));
    }
    let meta = SuiteTokenMeta {
        suite_id: suite.suite_id.clone(),
    };
    let token = st.suite_tokens.issue(meta, APP_TOKEN_TTL);
    Ok(ok(
        json!({"suite_access_token": token, "expires_in": APP_TOKEN_TTL.as_secs()}),
    ))
}

/// `POST /cgi-bin/service/get_corp_token?suite_access_token=`.
pub(crate) async fn get_corp_token(st: Arc<WeCom>, req: Request) -> Reply {
    let (query, p) = json_params(req).await?;
    let suite = suite_token(&st, &query)?;
    let corp = param(&p, "auth_corpid").ok_or_else(|| error(41002))?;
    let code = param(&p, "permanent_code").ok_or_else(|| error(40084))?;
    let current = st.installs.get(&(suite.suite_id.clone(), corp.to_owned()));
    if current.as_deref() != Some(code) {
        return Err(error(40084));
    }
    let meta = AppTokenMeta {
        corp_id: corp.to_owned(),
        agent_id: SUITE_AGENT_ID.to_owned(),
    };
    let token = st.app_tokens.issue(meta, APP_TOKEN_TTL);
    Ok(ok(
        json!({"access_token": token, "expires_in": APP_TOKEN_TTL.as_secs()}),
    ))
}

/// `POST /cgi-bin/service/get_permanent_code?suite_access_token=`.
pub(crate) async fn get_permanent_code(st: Arc<WeCom>, req: Request) -> Reply {
    let (query, p) = json_params(req).await?;
    let suite = suite_token(&st, &query)?;
    let code = param(&p, "auth_code").ok_or_else(|| error(40078))?;
    let pending = st
        .auth_codes
        .consume_if(code, |g| g.suite_id == suite.suite_id)
        .ok_or_else(|| error(40078))?;
    let permanent = random_id("fake_wecom_permanent_code_");
    st.installs.insert(
        (pending.suite_id.clone(), pending.corp_id.clone()),
        permanent.clone(),
    );
    let meta = AppTokenMeta {
        corp_id: pending.corp_id.clone(),
        agent_id: SUITE_AGENT_ID.to_owned(),
    };
    let token = st.app_tokens.issue(meta, APP_TOKEN_TTL);
    Ok(ok(json!({
        "access_token": token, "expires_in": APP_TOKEN_TTL.as_secs(),
        "permanent_code": permanent,
        "auth_corp_info": {"corpid": pending.corp_id, "corp_name": format!("Corp {}", pending.corp_id)},
        "auth_info": {"agent": [{"agentid": SUITE_AGENT_ID.parse::<u64>().unwrap_or(0), "name": "Fake suite app"}]},
        "auth_user_info": {"userid": "installer01", "open_userid": "woinstaller01", "name": "Installer"},
    })))
}

/// `GET /cgi-bin/service/auth/getuserinfo3rd?suite_access_token=&code=`.
pub(crate) async fn getuserinfo3rd(st: Arc<WeCom>, req: Request) -> Reply {
    let q = http::query_params(req.uri());
    let suite = suite_token(&st, &q)?;
    let code = param(&q, "code").ok_or_else(|| error(41008))?;
    let grant = st
        .codes_3rd
        .consume_if(code, |g| g.suite_id == suite.suite_id)
        .ok_or_else(|| error(40029))?;
    let user = st.users.get(&grant.user_id).ok_or_else(|| error(40029))?;
    let corp = user.org_or(&st.home_corp);
    let installed = st
        .installs
        .get(&(suite.suite_id.clone(), corp.to_owned()))
        .is_some();
    if !installed {
        return Ok(ok(
            json!({"corpid": corp, "openid": format!("openid-{}", user.user_id)}),
        ));
    }
    Ok(ok(json!({
        "corpid": corp, "userid": user.user_id,
        "open_userid": format!("wo{}", user.user_id),
    })))
}

fn cdata(name: &str, value: &str) -> String {
    format!("<{name}><![CDATA[{value}]]></{name}>")
}

impl FakeWeCom {
    /// Register a suite; its instruction callbacks are signed with the default token and
    /// EncodingAESKey, receiveid = the suite_id.
    pub fn add_suite(&self, suite: FakeSuite) {
        let st = self.backend();
        st.event_creds.insert(
            suite.suite_id.clone(),
            EventCredentials {
                token: super::DEFAULT_EVENT_TOKEN.to_owned(),
                aes_key: Some(super::DEFAULT_ENCODING_AES_KEY.to_owned()),
                receiver_id: suite.suite_id.clone(),
            },
        );
        st.suites.insert(suite.suite_id.clone(), suite);
    }

    /// The suite's instruction-callback settings (receiveid = suite_id).
    pub fn suite_event_credentials(&self, suite_id: &str) -> EventCredentials {
        self.event_credentials_for(suite_id)
    }

    /// Mark `corp_id` as having authorised `suite_id` with `permanent_code` (set-up without
    /// the installation flow).
    pub fn install_suite(&self, suite_id: &str, corp_id: &str, permanent_code: &str) {
        self.backend().installs.insert(
            (suite_id.to_owned(), corp_id.to_owned()),
            permanent_code.to_owned(),
        );
    }

    /// A third-party login code of `user_id` for `suite_id` (what the OAuth link or the
    /// `ServiceApp` web login returns).
    pub fn issue_3rd_code(&self, suite_id: &str, user_id: &str) -> String {
        self.backend().codes_3rd.issue(Code3rd {
            suite_id: suite_id.to_owned(),
            user_id: user_id.to_owned(),
        })
    }

    async fn push_instruction(
        &self,
        suite_id: &str,
        url: &str,
        xml: String,
    ) -> Result<Delivery, PushError> {
        self.push_event_for(suite_id, url, FakeEvent::Custom(xml), None)
            .await
    }

    /// Push a new `suite_ticket` of `suite_id` to `url`; the ticket.
    pub async fn push_suite_ticket(
        &self,
        suite_id: &str,
        url: &str,
    ) -> Result<(Delivery, String), PushError> {
        let ticket = random_id("fake_wecom_suite_ticket_");
        let st = self.backend();
        let Some(mut suite) = st.suites.get(suite_id) else {
            return Err(PushError::BadCredentials("unknown suite"));
        };
        suite.tickets.push(ticket.clone());
        st.suites.insert(suite_id.to_owned(), suite);
        let ts = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let xml = format!(
            "<xml>{}{}<TimeStamp>{ts}</TimeStamp>{}</xml>",
            cdata("SuiteId", suite_id),
            cdata("InfoType", "suite_ticket"),
            cdata("SuiteTicket", &ticket),
        );
        Ok((self.push_instruction(suite_id, url, xml).await?, ticket))
    }

    /// `corp_id` authorises `suite_id`: push `create_auth` with a fresh single-use `AuthCode`
    /// to `url` (redeemed at `get_permanent_code`).
    pub async fn push_create_auth(
        &self,
        suite_id: &str,
        corp_id: &str,
        url: &str,
    ) -> Result<Delivery, PushError> {
        let code = self.backend().auth_codes.issue(PendingAuth {
            suite_id: suite_id.to_owned(),
            corp_id: corp_id.to_owned(),
        });
        let xml = format!(
            "<xml>{}{}<TimeStamp>1403610513</TimeStamp>{}{}</xml>",
            cdata("SuiteId", suite_id),
            cdata("InfoType", "create_auth"),
            cdata("AuthCode", &code),
            cdata("State", ""),
        );
        self.push_instruction(suite_id, url, xml).await
    }

    /// `corp_id` removes `suite_id`: its permanent code stops working; push `cancel_auth`.
    pub async fn push_cancel_auth(
        &self,
        suite_id: &str,
        corp_id: &str,
        url: &str,
    ) -> Result<Delivery, PushError> {
        self.backend()
            .installs
            .remove(&(suite_id.to_owned(), corp_id.to_owned()));
        let xml = format!(
            "<xml>{}{}<TimeStamp>1403610513</TimeStamp>{}</xml>",
            cdata("SuiteId", suite_id),
            cdata("InfoType", "cancel_auth"),
            cdata("AuthCorpId", corp_id),
        );
        self.push_instruction(suite_id, url, xml).await
    }

    /// Revoke `corp_id`'s live access tokens (the corp tokens a suite's permanent code bought
    /// included; a call with one is then refused as an invalid token); suite tokens and other
    /// corps' tokens stay. Returns how many were live.
    pub fn revoke_corp_tokens(&self, corp_id: &str) -> usize {
        self.backend()
            .app_tokens
            .revoke_where(|m| m.corp_id == corp_id)
    }

    /// The permanent code `corp_id` holds for `suite_id`, if installed.
    pub fn permanent_code_of(&self, suite_id: &str, corp_id: &str) -> Option<String> {
        self.backend()
            .installs
            .get(&(suite_id.to_owned(), corp_id.to_owned()))
    }
}
