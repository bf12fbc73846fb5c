//! Feishu's `h5sdk.config` check and the fake SDK's helper endpoints (see [`crate::jsapi`]);
//! the ticket and mini-program endpoints are in the handlers.

use std::sync::Arc;

use axum::extract::Request;
use serde_json::{Value, json};

use super::envelope::JSAPI_CONFIG_FAILED;
use super::{DEFAULT_APP_ID, DEMO_USER_ID, Feishu};
use crate::http::Reply;
use crate::jsapi::{
    self, JsapiKind, JsapiRefusal, RefusalReason, Sdk, code_answer, read_json, requested_user,
    signed_by_any, string,
};

fn refusal(reason: RefusalReason) -> JsapiRefusal {
    let message = format!("h5sdk config failed: {reason}");
    JsapiRefusal {
        reason,
        sdk_error: json!({"errorCode": JSAPI_CONFIG_FAILED, "errorMessage": message}),
    }
}

impl Feishu {
    /// Whose jssdk tickets a token of `app` (its `tenant_key` the token's) gets: a self-built
    /// app's own; a store app's per tenant (`app_id@tenant_key`), as its tenant tokens are.
    pub(crate) fn ticket_owner(&self, app: &super::FakeApp) -> String {
        if self.is_store_app(&app.app_id) {
            format!("{}@{}", app.app_id, app.tenant_key)
        } else {
            app.app_id.clone()
        }
    }

    /// `h5sdk.config({appId, timestamp, nonceStr, signature, jsApiList})` checked as Feishu
    /// does: a known `appId`, `timestamp` a JSON **number** (milliseconds), and the signature
    /// over one of that app's live tickets and the page URL without fragment. A store app's
    /// tickets are its tenants' own: the page runs inside the client of `tenant` (a store
    /// app's page outside any tenant has no ticket to be signed with).
    pub(crate) fn verify_jsapi(
        &self,
        kind: JsapiKind,
        config: &Value,
        page_url: &str,
        tenant: Option<&str>,
    ) -> Result<(), JsapiRefusal> {
        let check = || -> Result<(), RefusalReason> {
            if kind != JsapiKind::Config {
                return Err(RefusalReason::UnsupportedKind);
            }
            let app_id = string(config, "appId")?;
            let timestamp = match config.get("timestamp") {
                Some(Value::Number(n)) => n.to_string(),
                None | Some(Value::Null) => return Err(RefusalReason::MissingField("timestamp")),
                Some(_) => return Err(RefusalReason::WrongType("timestamp")),
            };
            let nonce = string(config, "nonceStr")?;
            string(config, "signature")?;
            let app = self
                .app(&app_id)
                .ok_or(RefusalReason::UnknownApp("appId"))?;
            let mut app = app;
            if let Some(tenant) = tenant {
                app.tenant_key = tenant.to_owned();
            }
            let tickets = self
                .tickets
                .live(&self.ticket_owner(&app), JsapiKind::Config);
            signed_by_any(&tickets, config, &nonce, &timestamp, page_url)
        };
        check().map_err(refusal)
    }
}

/// `GET /__fake/jsapi/feishu.js`.
pub(crate) async fn sdk(_st: Arc<Feishu>, req: Request) -> Reply {
    Ok(jsapi::sdk_script(Sdk::Feishu, &req, DEMO_USER_ID))
}

/// `POST /__fake/jsapi/verify`.
pub(crate) async fn verify(st: Arc<Feishu>, req: Request) -> Reply {
    jsapi::verify_endpoint(
        req,
        |kind, config, url| st.verify_jsapi(kind, config, url, None),
        || refusal(RefusalReason::UnsupportedKind),
    )
    .await
}

/// `POST /__fake/jsapi/code` `{user, appId, kind: requestAuthCode|requestAccess, scope?}`: what
/// `tt.requestAuthCode` (5 minutes) or `tt.requestAccess` (3 minutes, with `scope`) returns.
pub(crate) async fn code(st: Arc<Feishu>, req: Request) -> Reply {
    let (origin, body) = read_json(req).await?;
    let user_id = requested_user(&body, DEMO_USER_ID);
    let text = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let app_id = Some(text("appId"))
        .filter(|a| !a.is_empty())
        .unwrap_or_else(|| DEFAULT_APP_ID.to_owned());
    let short = text("kind") == "requestAccess";
    let outcome = if st.app(&app_id).is_none() {
        Err(json!({"errno": 103, "errString": "invalid appId"}))
    } else if st.users.get(&user_id).is_none() {
        Err(json!({"errno": 104, "errString": "user not logged in"}))
    } else {
        Ok(st.issue_code(short, &app_id, &user_id, &text("scope"), (None, None)))
    };
    Ok(code_answer(origin.as_ref(), outcome))
}
