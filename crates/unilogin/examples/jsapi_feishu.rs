//! A Feishu H5 page signs itself for `h5sdk.config`, against the test-kit fake:
//! `cargo run -p unilogin --features feishu --example jsapi_feishu` (serves until Ctrl-C and
//! prints the page's URL; `-- --self-test` checks everything over HTTP and exits).
//!
//! The server side is [`Prepared::jsapi_config`](unilogin::Prepared::jsapi_config) (see
//! `support/jsapi.rs`): the jssdk ticket is fetched with the `tenant_access_token` and cached;
//! the answer is the object `h5sdk.config` wants — `appId`, `timestamp` (a **number** of
//! **milliseconds**: a string or seconds fail), `nonceStr`, `signature`, `jsApiList`. The page
//! adds its callbacks:
//!
//! ```js
//! const url = encodeURIComponent(location.href.split('#')[0]);
//! const cfg = await (await fetch('/jsapi-config?url=' + url)).json();
//! cfg.onFail = function (e) { /* signature or trusted-domain problem */ };
//! h5sdk.error(function (e) { /* … */ });          // before h5sdk.config
//! h5sdk.config(cfg);
//! h5sdk.ready(function () { /* tt.* JSAPIs are usable */ });
//! ```
//!
//! In production, load Feishu's `h5-js-sdk` instead of the fake's, and add the page's host to
//! the app's "H5 可信域名". `tt.requestAuthCode` (the login code) needs no `h5sdk.config`.

#[path = "support/jsapi.rs"]
mod jsapi;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    jsapi::Demo::main(jsapi::Which::Feishu).await
}
