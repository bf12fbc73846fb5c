//! WeCom jsapi tickets (`get_jsapi_ticket`, `ticket/get?type=agent_config`) with their hourly
//! quotas, mini-program `jscode2session`, the `wx.config` / `wx.agentConfig` checks and the fake
//! SDK's helper endpoints (see [`crate::jsapi`]).

use std::sync::Arc;

use axum::extract::Request;
use serde_json::{Value, json};

use super::envelope::{RATE_LIMITED, error, ok};
use super::handlers::app_token;
use super::{DEMO_USER_ID, WeCom};
use crate::http::{self, Reply, param};
use crate::jsapi::{
    self, JsapiKind, JsapiRefusal, RefusalReason, Sdk, code_answer, read_json, scalar,
    signed_by_any, string,
};

/// Corp jsapi tickets a corp may fetch per hour.
pub const CORP_TICKETS_PER_CORP_HOUR: usize = 400;
/// Corp jsapi tickets one app may fetch per hour.
pub const CORP_TICKETS_PER_APP_HOUR: usize = 100;
/// Agent-config tickets one app may fetch per hour.
pub const AGENT_TICKETS_PER_APP_HOUR: usize = 100;
/// errcode for a bad `type` / `grant_type` argument (illustrative).
pub const INVALID_ARGS: i64 = 40097;

/// The ticket-book key of an app: `corpid/agentid`.
pub(crate) fn ticket_owner(corp_id: &str, agent_id: &str) -> String {
    format!("{corp_id}/{agent_id}")
}

fn refusal(kind: JsapiKind, reason: RefusalReason) -> JsapiRefusal {
    let what = match &reason {
        RefusalReason::SignatureMismatch => "invalid signature".to_owned(),
        RefusalReason::UnknownApp("appId" | "corpid") => "invalid corpid".to_owned(),
        RefusalReason::UnknownApp(_) => "invalid agentid".to_owned(),
        RefusalReason::UnsupportedKind => "not supported".to_owned(),
        other => format!("fail, {other}"),
    };
    JsapiRefusal {
        reason,
        sdk_error: json!({"errMsg": format!("{}:{what}", kind.as_str())}),
    }
}

impl WeCom {
    /// `wx.config({appId: corpid, timestamp, nonceStr, signature})` against the corp tickets of
    /// any app of the corp, or `wx.agentConfig({corpid, agentid, …})` against the agent tickets
    /// of that app.
    pub(crate) fn verify_jsapi(
        &self,
        kind: JsapiKind,
        config: &Value,
        page_url: &str,
    ) -> Result<(), JsapiRefusal> {
        let check = || -> Result<(), RefusalReason> {
            let corp_field = match kind {
                JsapiKind::Config => "appId",
                JsapiKind::AgentConfig => "corpid",
            };
            let corp_id = string(config, corp_field)?;
            let agent_id = match kind {
                JsapiKind::Config => None,
                JsapiKind::AgentConfig => Some(scalar(config, "agentid")?),
            };
            let timestamp = scalar(config, "timestamp")?;
            let nonce = string(config, "nonceStr")?;
            string(config, "signature")?;
            if !self.corp_known(&corp_id) {
                return Err(RefusalReason::UnknownApp(corp_field));
            }
            let tickets = match &agent_id {
                None => {
                    let prefix = format!("{corp_id}/");
                    self.jsapi_tickets
                        .live_of(JsapiKind::Config, |a| a.starts_with(&prefix))
                }
                Some(agent) => {
                    self.app(&corp_id, agent)
                        .ok_or(RefusalReason::UnknownApp("agentid"))?;
                    self.jsapi_tickets
                        .live(&ticket_owner(&corp_id, agent), JsapiKind::AgentConfig)
                }
            };
            signed_by_any(&tickets, config, &nonce, &timestamp, page_url)
        };
        check().map_err(|r| refusal(kind, r))
    }

    /// A ticket fetch by the app of the request's token, within the hourly quotas (45009).
    fn ticket_fetch(&self, req: &Request, kind: JsapiKind) -> Reply {
        let q = http::query_params(req.uri());
        let app = app_token(self, &q)?;
        if kind == JsapiKind::AgentConfig && param(&q, "type") != Some("agent_config") {
            return Err(error(INVALID_ARGS));
        }
        let owner = ticket_owner(&app.corp_id, &app.agent_id);
        let per_app = self.jsapi_tickets.fetched_last_hour(kind, |a| a == owner);
        let over = match kind {
            JsapiKind::Config => {
                let prefix = format!("{}/", app.corp_id);
                per_app >= CORP_TICKETS_PER_APP_HOUR
                    || self
                        .jsapi_tickets
                        .fetched_last_hour(kind, |a| a.starts_with(&prefix))
                        >= CORP_TICKETS_PER_CORP_HOUR
            }
            JsapiKind::AgentConfig => per_app >= AGENT_TICKETS_PER_APP_HOUR,
        };
        if over {
            return Err(error(RATE_LIMITED));
        }
        let (ticket, left) = self.jsapi_tickets.fetch(&owner, kind);
        Ok(ok(
            json!({"ticket": ticket, "expires_in": left.as_secs().max(1)}),
        ))
    }
}

/// `GET /cgi-bin/get_jsapi_ticket?access_token=` → `{errcode, errmsg, ticket, expires_in}`.
pub(crate) async fn get_jsapi_ticket(st: Arc<WeCom>, req: Request) -> Reply {
    st.ticket_fetch(&req, JsapiKind::Config)
}

/// `GET /cgi-bin/ticket/get?access_token=&type=agent_config` → the same shape.
pub(crate) async fn ticket_get(st: Arc<WeCom>, req: Request) -> Reply {
    st.ticket_fetch(&req, JsapiKind::AgentConfig)
}

/// `GET /cgi-bin/miniprogram/jscode2session?access_token=&js_code=&grant_type=authorization_code`
/// → `{errcode, errmsg, corpid, userid, session_key}`; a code of another app, used or expired →
/// 40029.
pub(crate) async fn jscode2session(st: Arc<WeCom>, req: Request) -> Reply {
    let q = http::query_params(req.uri());
    let app = app_token(&st, &q)?;
    let code = param(&q, "js_code").ok_or_else(|| error(41008))?;
    if param(&q, "grant_type") != Some("authorization_code") {
        return Err(error(INVALID_ARGS));
    }
    let grant = st
        .mina_codes
        .consume_if(code, |g| {
            g.corp_id == app.corp_id && g.agent_id == app.agent_id
        })
        .ok_or_else(|| error(40029))?;
    let user = st
        .member(&grant.user_id, &app.corp_id)
        .ok_or_else(|| error(40029))?;
    Ok(ok(json!({
        "corpid": app.corp_id,
        "userid": user.user_id,
        "session_key": crate::store::random_id(""),
    })))
}

/// `GET /__fake/jsapi/wecom.js`.
pub(crate) async fn sdk(_st: Arc<WeCom>, req: Request) -> Reply {
    Ok(jsapi::sdk_script(Sdk::WeCom, &req, DEMO_USER_ID))
}

/// `POST /__fake/jsapi/verify`.
pub(crate) async fn verify(st: Arc<WeCom>, req: Request) -> Reply {
    jsapi::verify_endpoint(
        req,
        |kind, config, url| st.verify_jsapi(kind, config, url),
        || refusal(JsapiKind::Config, RefusalReason::UnsupportedKind),
    )
    .await
}

/// `POST /__fake/jsapi/code`: WeCom's in-client login goes through the OAuth link, not a JSAPI,
/// so the fake SDK never calls this; it answers `ok:false`.
pub(crate) async fn code(_st: Arc<WeCom>, req: Request) -> Reply {
    let (origin, _) = read_json(req).await?;
    Ok(code_answer(
        origin.as_ref(),
        Err(json!({"errMsg": "login:fail, WeCom H5 pages log in through the OAuth link"})),
    ))
}
