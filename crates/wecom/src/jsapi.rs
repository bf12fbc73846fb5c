//! `wx.config` and `wx.agentConfig`: the corp `jsapi_ticket` and the app's agent-config
//! ticket, fetched with the app's access token (corp + agent), and the objects WeCom's JS SDK
//! expects.

use std::time::Duration;

use reqwest::Method;
use serde_json::Value;
use unilogin_core::envelope::{require_str, seconds_at};
use unilogin_core::jsapi::{Signed, TicketKind, config_object};
use unilogin_core::token_cache::FetchedToken;
use unilogin_core::{AccessToken, Result};

use crate::WeCom;

/// The lifetime assumed when WeCom reports none.
const TICKET_TTL: Duration = Duration::from_secs(7200);

impl WeCom {
    /// A fresh ticket of `kind`: `cgi-bin/get_jsapi_ticket` (corp ticket, `wx.config`) or
    /// `cgi-bin/ticket/get?type=agent_config` (app ticket, `wx.agentConfig`).
    pub(crate) async fn ticket(
        &self,
        token: &AccessToken,
        kind: TicketKind,
    ) -> Result<FetchedToken> {
        let token = ("access_token", token.expose());
        let (path, response) = match kind {
            TicketKind::Jsapi => {
                let path = "cgi-bin/get_jsapi_ticket";
                (path, self.call(Method::GET, path, &[token], None).await?)
            }
            TicketKind::AgentConfig => {
                let path = "cgi-bin/ticket/get";
                let query = [token, ("type", "agent_config")];
                (path, self.call(Method::GET, path, &query, None).await?)
            }
        };
        Ok(FetchedToken {
            token: AccessToken::new(require_str(&self.base.ctx(path), &response, "/ticket")?),
            expires_in: seconds_at(&response.body, "/expires_in").unwrap_or(TICKET_TTL),
        })
    }

    /// `wx.config({beta: true, appId: corpid, timestamp, nonceStr, signature, jsApiList})` or
    /// `wx.agentConfig({corpid, agentid, timestamp, nonceStr, signature, jsApiList})`,
    /// timestamps in seconds.
    pub(crate) fn wx_config(
        &self,
        kind: TicketKind,
        signed: &Signed,
        js_api_list: &[String],
    ) -> Value {
        match kind {
            TicketKind::Jsapi => config_object([
                ("beta", true.into()),
                ("appId", self.corp_id().into()),
                ("timestamp", signed.timestamp.into()),
                ("nonceStr", signed.nonce.as_str().into()),
                ("signature", signed.signature.as_str().into()),
                ("jsApiList", js_api_list.into()),
            ]),
            TicketKind::AgentConfig => config_object([
                ("corpid", self.corp_id().into()),
                ("agentid", self.agent_id.as_str().into()),
                ("timestamp", signed.timestamp.into()),
                ("nonceStr", signed.nonce.as_str().into()),
                ("signature", signed.signature.as_str().into()),
                ("jsApiList", js_api_list.into()),
            ]),
        }
    }
}
