//! A DingTalk H5 page signs itself for `dd.config`, against the test-kit fake:
//! `cargo run -p unilogin --features dingtalk --example jsapi_dingtalk` (serves until Ctrl-C and
//! prints the page's URL; `-- --self-test` checks everything over HTTP and exits).
//!
//! The server side is one call, [`Prepared::jsapi_config`](unilogin::Prepared::jsapi_config)
//! (see `support/jsapi.rs`): the app token and the jsapi ticket come from the token cache
//! (fetched once, refreshed ahead of expiry), the page URL is signed exactly as the page sent
//! it, and the answer is the object `dd.config` wants — `agentId`, `corpId`, `timeStamp`
//! (camel-case `S`), `nonceStr`, `signature`, `jsApiList` — never the ticket. The page:
//!
//! ```js
//! const url = encodeURIComponent(location.href.split('#')[0]);
//! const cfg = await (await fetch('/jsapi-config?url=' + url)).json();
//! dd.config(cfg);                                  // before dd.ready / dd.error
//! dd.error(function (e) { /* 52013: the URL signed is not location.href */ });
//! dd.ready(function () { /* JSAPIs of cfg.jsApiList are usable */ });
//! ```
//!
//! In production, load DingTalk's SDK (`dingtalk.open.js`) instead of the fake's, and sign only
//! pages on the origins your tenant allows. `dd.getAuthCode` (the login code) needs no `dd.config`.

#[path = "support/jsapi.rs"]
mod jsapi;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    jsapi::Demo::main(jsapi::Which::DingTalk).await
}
