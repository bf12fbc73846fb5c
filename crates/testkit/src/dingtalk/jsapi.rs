//! DingTalk jsapi tickets (`POST /v1.0/oauth2/jsapiTickets`, `GET /get_jsapi_ticket`), the
//! `dd.config` check and the fake SDK's helper endpoints (see [`crate::jsapi`]).

use std::sync::Arc;

use axum::extract::Request;
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::envelope::{API_INVALID_AUTHENTICATION, api_error, oapi_error};
use super::{DEMO_USER_ID, DingTalk};
use crate::fake::Backend as _;
use crate::http::{self, Reply, param};
use crate::jsapi::{
    self, JsapiKind, JsapiRefusal, RefusalReason, Sdk, code_answer, read_json, requested_user,
    scalar, signed_by_any, string,
};

/// The `errorCode` DingTalk's `dd.error` receives for a refused `dd.config` (签名校验失败).
pub const SIGNATURE_MISMATCH: &str = "52013";

/// The error object `dd.error` receives.
fn refusal(reason: RefusalReason) -> JsapiRefusal {
    let message = match &reason {
        RefusalReason::SignatureMismatch => "签名校验失败".to_owned(),
        other => format!("签名校验失败: {other}"),
    };
    JsapiRefusal {
        reason,
        sdk_error: json!({"errorCode": SIGNATURE_MISMATCH, "errorMessage": message}),
    }
}

impl DingTalk {
    /// `dd.config({agentId, corpId, timeStamp, nonceStr, signature, …})` checked as DingTalk
    /// does: the app named by `corpId` + `agentId`, the camel-case `timeStamp` (string or
    /// number), and the signature over one of that app's live tickets and the page URL.
    pub(crate) fn verify_jsapi(
        &self,
        kind: JsapiKind,
        config: &Value,
        page_url: &str,
    ) -> Result<(), JsapiRefusal> {
        let check = || -> Result<(), RefusalReason> {
            if kind != JsapiKind::Config {
                return Err(RefusalReason::UnsupportedKind);
            }
            let agent_id = scalar(config, "agentId")?;
            let corp_id = string(config, "corpId")?;
            let timestamp = scalar(config, "timeStamp")?;
            let nonce = string(config, "nonceStr")?;
            string(config, "signature")?;
            if !self.apps.any(|a| a.corp_id == corp_id) {
                return Err(RefusalReason::UnknownApp("corpId"));
            }
            let app = self
                .apps
                .find(|a| a.corp_id == corp_id && a.agent_id == agent_id)
                .ok_or(RefusalReason::UnknownApp("agentId"))?;
            let tickets = self.tickets.live(&app.app_key, JsapiKind::Config);
            signed_by_any(&tickets, config, &nonce, &timestamp, page_url)
        };
        check().map_err(refusal)
    }
}

/// `POST /v1.0/oauth2/jsapiTickets`, header `x-acs-dingtalk-access-token` →
/// `{"jsapiTicket","expireIn"}`; a bad token → HTTP 400 `InvalidAuthentication`.
pub(crate) async fn jsapi_tickets(st: Arc<DingTalk>, req: Request) -> Reply {
    let meta = http::header_str(req.headers(), "x-acs-dingtalk-access-token")
        .filter(|t| !t.is_empty())
        .and_then(|t| st.app_tokens.check(t).ok())
        .ok_or_else(|| api_error(API_INVALID_AUTHENTICATION))?;
    let (ticket, left) = st.tickets.fetch(&meta.app_key, JsapiKind::Config);
    Ok(http::json(
        StatusCode::OK,
        &json!({"jsapiTicket": ticket, "expireIn": left.as_secs().max(1)}),
    ))
}

/// `GET /get_jsapi_ticket?access_token=` → `{"errcode":0,"errmsg":"ok","ticket","expires_in"}`;
/// a bad token → errcode 40014.
pub(crate) async fn get_jsapi_ticket(st: Arc<DingTalk>, req: Request) -> Reply {
    let q = http::query_params(req.uri());
    let meta = param(&q, "access_token")
        .and_then(|t| st.app_tokens.check(t).ok())
        .ok_or_else(|| oapi_error(40014))?;
    let (ticket, left) = st.tickets.fetch(&meta.app_key, JsapiKind::Config);
    Ok(http::json(
        StatusCode::OK,
        &json!({"errcode": 0, "errmsg": "ok", "ticket": ticket, "expires_in": left.as_secs().max(1)}),
    ))
}

/// `GET /__fake/jsapi/dingtalk.js`.
pub(crate) async fn sdk(_st: Arc<DingTalk>, req: Request) -> Reply {
    Ok(jsapi::sdk_script(Sdk::DingTalk, &req, DEMO_USER_ID))
}

/// `POST /__fake/jsapi/verify`.
pub(crate) async fn verify(st: Arc<DingTalk>, req: Request) -> Reply {
    jsapi::verify_endpoint(
        req,
        |kind, config, url| st.verify_jsapi(kind, config, url),
        || refusal(RefusalReason::UnsupportedKind),
    )
    .await
}

/// `POST /__fake/jsapi/code` `{user, corpId}`: what `dd.getAuthCode({corpId})` returns for the
/// client's user — an H5 code, or a failure when `corpId` is not the user's organisation.
pub(crate) async fn code(st: Arc<DingTalk>, req: Request) -> Reply {
    let (origin, body) = read_json(req).await?;
    let user_id = requested_user(&body, DEMO_USER_ID);
    let corp_id = body.get("corpId").and_then(Value::as_str).unwrap_or("");
    let outcome = match st.users.get(&user_id) {
        Some(user) if user.org_or(&st.home_corp) == corp_id => Ok(st.issue_h5_code(&user_id)),
        Some(_) => Err(json!({"errorCode": "7", "errorMessage": "corpId 与当前组织不匹配"})),
        None => Err(json!({"errorCode": "-1", "errorMessage": "用户未登录"})),
    };
    Ok(code_answer(origin.as_ref(), outcome))
}
