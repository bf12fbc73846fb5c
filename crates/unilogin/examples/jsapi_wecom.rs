//! A WeCom H5 page signs itself twice — `wx.config` (the corp's identity, corp jsapi ticket) and
//! `wx.agentConfig` (the app's identity, agent-config ticket) — against the test-kit fake:
//! `cargo run -p unilogin --features wecom --example jsapi_wecom` (serves until Ctrl-C and
//! prints the page's URL; `-- --self-test` checks everything over HTTP and exits).
//!
//! The server side is [`Prepared::jsapi_config`](unilogin::Prepared::jsapi_config) with
//! [`TicketKind::Jsapi`](unilogin::TicketKind::Jsapi) or
//! [`TicketKind::AgentConfig`](unilogin::TicketKind::AgentConfig) (see `support/jsapi.rs`):
//! two tickets, each fetched once per app (WeCom allows 100 fetches an hour per app) with this
//! app's token. The answers are `{appId, timestamp, nonceStr, signature, jsApiList}` for
//! `wx.config` and `{corpid, agentid, timestamp, nonceStr, signature, jsApiList}` for
//! `wx.agentConfig`. The page:
//!
//! ```js
//! const url = encodeURIComponent(location.href.split('#')[0]);
//! const get = async (kind) => (await fetch('/jsapi-config?kind=' + kind + '&url=' + url)).json();
//! wx.config(await get('jsapi'));                 // carries beta: true
//! wx.error(function (e) { /* {errMsg: "config:invalid signature"} */ });
//! wx.ready(async function () {
//!   const agent = await get('agent_config');
//!   agent.success = function () { /* app-identity JSAPIs are usable */ };
//!   agent.fail = function (e) { /* wrong ticket kind or agentid */ };
//!   wx.agentConfig(agent);
//! });
//! ```
//!
//! On iOS, WeCom keeps the URL the page was **entered** with: an SPA that changed its path with
//! `pushState` must sign that first URL there. In production load `jweixin-1.2.0.js` and
//! `jwxwork-1.0.0.js` instead of the fake's SDK.

#[path = "support/jsapi.rs"]
mod jsapi;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    jsapi::Demo::main(jsapi::Which::WeCom).await
}
