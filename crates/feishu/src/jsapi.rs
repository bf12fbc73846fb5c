//! `h5sdk.config`: the jssdk ticket (`jssdk/ticket/get` with the `tenant_access_token`) and the
//! configuration object Feishu's H5 JS SDK expects.

use serde_json::{Value, json};
use unilogin_core::envelope::{malformed, require_str, seconds_at};
use unilogin_core::jsapi::{Signed, TicketKind, config_object};
use unilogin_core::token_cache::FetchedToken;
use unilogin_core::{AccessToken, Result};

use crate::Feishu;

const TICKET_ENDPOINT: &str = "jssdk/ticket/get";

impl Feishu {
    /// A fresh jssdk ticket: `POST open-apis/jssdk/ticket/get` → `data.ticket`,
    /// `data.expire_in` (no `s`).
    pub(crate) async fn jssdk_ticket(&self, token: &AccessToken) -> Result<FetchedToken> {
        let ctx = self.base.ctx(TICKET_ENDPOINT);
        let request = self.post_json(TICKET_ENDPOINT, &json!({}))?;
        let response = self.open_call(&ctx, request, Some(token), false).await?;
        let ticket = AccessToken::new(require_str(&ctx, &response, "/data/ticket")?);
        let expires_in = seconds_at(&response.body, "/data/expire_in").ok_or_else(|| {
            malformed(&ctx, &response, "missing or non-positive `data.expire_in`")
        })?;
        Ok(FetchedToken::new(ticket, expires_in))
    }

    /// `h5sdk.config({appId, timestamp, nonceStr, signature, jsApiList})`, `timestamp` in
    /// milliseconds as a JSON number.
    pub(crate) fn h5sdk_config(
        &self,
        kind: TicketKind,
        signed: &Signed,
        js_api_list: &[String],
    ) -> Result<Value> {
        if kind != TicketKind::Jsapi {
            return Err(self.base.unsupported("agent-config tickets (WeCom only)"));
        }
        Ok(config_object([
            ("appId", self.base.app_key.as_str().into()),
            ("timestamp", signed.timestamp.into()),
            ("nonceStr", signed.nonce.as_str().into()),
            ("signature", signed.signature.as_str().into()),
            ("jsApiList", js_api_list.into()),
        ]))
    }
}
