//! `dd.config`: the JSAPI ticket (`v1.0/oauth2/jsapiTickets`, or `oapi` `get_jsapi_ticket`)
//! and the configuration object DingTalk's JS SDK expects.

use std::time::Duration;

use reqwest::Method;
use serde_json::Value;
use unilogin_core::envelope::{require_str, seconds_at};
use unilogin_core::jsapi::{Signed, TicketKind, config_object};
use unilogin_core::token_cache::FetchedToken;
use unilogin_core::{AccessToken, Error, Result};

use crate::DingTalk;
use crate::api::By;

/// The lifetime assumed when DingTalk reports none.
const TICKET_TTL: Duration = Duration::from_secs(7200);

impl DingTalk {
    /// The `agentId` and `corpId` `dd.config` needs, or a configuration error naming the
    /// missing one.
    fn dd_config_ids(&self) -> Result<(&str, &str)> {
        let missing = |field: &str| {
            Error::config(
                Some(&self.base.tenant),
                Some(self.base.name.as_str()),
                field,
                "required to sign dd.config (JSAPI signatures)",
            )
        };
        let agent = self
            .agent_id
            .as_deref()
            .ok_or_else(|| missing("agent_id"))?;
        let corp = self.corp_id.as_deref().ok_or_else(|| missing("corp_id"))?;
        Ok((agent, corp))
    }

    /// A fresh JSAPI ticket with the app token: `v1.0/oauth2/jsapiTickets` with
    /// `app_token_api: v1`, `get_jsapi_ticket` otherwise.
    pub(crate) async fn jsapi_ticket(&self, token: &AccessToken) -> Result<FetchedToken> {
        self.dd_config_ids()?;
        let (ctx, response, ticket_at, ttl_at) = if self.app_token_v1 {
            let ctx = self.base.ctx("v1.0/oauth2/jsapiTickets");
            let request = self.base.request(Method::POST, "api", ctx.endpoint)?;
            let request = request.header("x-acs-dingtalk-access-token", token.expose());
            let response = self.api(&ctx, request, By::App).await?;
            (ctx, response, "/jsapiTicket", "/expireIn")
        } else {
            let ctx = self.base.ctx("get_jsapi_ticket");
            let request = self.base.request(Method::GET, "oapi", ctx.endpoint)?;
            let request = request.query(&[("access_token", token.expose())]);
            let response = self.oapi(&ctx, request).await?;
            (ctx, response, "/ticket", "/expires_in")
        };
        Ok(FetchedToken {
            token: AccessToken::new(require_str(&ctx, &response, ticket_at)?),
            expires_in: seconds_at(&response.body, ttl_at).unwrap_or(TICKET_TTL),
        })
    }

    /// `dd.config({agentId, corpId, timeStamp, nonceStr, signature, type: 0, jsApiList})`.
    pub(crate) fn dd_config(
        &self,
        kind: TicketKind,
        signed: &Signed,
        js_api_list: &[String],
    ) -> Result<Value> {
        if kind != TicketKind::Jsapi {
            return Err(self.base.unsupported("agent-config tickets (WeCom only)"));
        }
        let (agent_id, corp_id) = self.dd_config_ids()?;
        Ok(config_object([
            ("agentId", agent_id.into()),
            ("corpId", corp_id.into()),
            ("timeStamp", signed.timestamp.into()),
            ("nonceStr", signed.nonce.as_str().into()),
            ("signature", signed.signature.as_str().into()),
            ("type", 0u8.into()),
            ("jsApiList", js_api_list.into()),
        ]))
    }
}
