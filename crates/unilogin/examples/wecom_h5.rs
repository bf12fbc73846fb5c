//! WeCom in-client login against the test-kit fake:
//! `cargo run -p unilogin --features wecom --example wecom_h5`.
//!
//! WeCom has no JSAPI that yields a login code: a page opened inside the WeCom client sends the
//! browser to an OAuth link (`…#wechat_redirect`), and WeCom comes back to your callback with
//! `?code=…&state=…`. So the in-client login is a **redirect login with `Flow::H5`**, exactly
//! like a web login: start it (the core makes the state), keep the pending login server-side,
//! and finish it on the callback. `Sso::login_with_code` refuses WeCom codes
//! (`Error::RedirectLoginRequired`): a code that travels in a URL is only redeemed with its state.
//!
//! Here the fake plays the WeCom client: we open the link's page on it and approve as the demo
//! member. With `scope = snsapi_privateinfo` the profile also carries mobile, e-mail and avatar
//! (read with the `user_ticket`), which apps created after 2022-06-20 get no other way.

mod support;

use unilogin::config::{PlatformConfig, StaticConfig};
use unilogin::web_login::Callback;
use unilogin::{AuthCode, Error, Flow, Sso, TenantId};
use unilogin_testkit::FakePlatform as _;
use url::Url;

const CALLBACK: &str = "https://app.acme.example/wecom/callback";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let fake = unilogin_testkit::wecom::start().await;
    let creds = fake.credentials();
    let base = fake.base_url();
    let config: PlatformConfig = serde_json::from_value(serde_json::json!({
        "tenant": "acme",
        "platform": "wecom",
        "app_key": creds.corp_id,          // WeCom's app identifier is the corpid
        "corp_id": creds.corp_id,
        "agent_id": creds.agent_id,
        "app_secret": creds.app_secret,    // this app's own Secret
        "hosts": { "qyapi": base, "oauth": base, "login": base, "open": base },
        "redirect_uris": [CALLBACK],
        "options": { "scope": "snsapi_privateinfo" },
    }))?;
    let sso = Sso::builder(StaticConfig::new(vec![config])).build()?;
    let tenant = TenantId::new("acme")?;

    // 1. The page inside WeCom asks your server for the link: start an H5 redirect login and
    //    keep `start.pending` server-side (keyed by its state, single use).
    let start = sso
        .start_web_login(&tenant, "wecom", Flow::H5, &Url::parse(CALLBACK)?)
        .await?;
    // The URL carries the state: never log it whole.
    let (origin, path) = (start.url.origin().ascii_serialization(), start.url.path());
    println!("in-client OAuth link: {origin}{path}?…");

    // 2. WeCom (the fake) shows the member, who approves; it redirects back with code + state.
    let callback_url = support::approve(&start.url, "user001").await?;
    fake.reset_calls(); // count only the server-side calls below

    // 3. Your callback handler: parse the query and finish the pending login (state checked
    //    before the code is spent).
    let callback = Callback::from_query(callback_url.query_pairs())?;
    let login = sso.finish_web_login(&start.pending, &callback).await?;
    println!("{}", serde_json::to_string_pretty(&login.profile)?);
    println!(
        "flow: {}; upstream calls: {} (gettoken, auth/getuserinfo, user/get, auth/getuserdetail; \
         the next login reuses the cached app token)",
        login.flow,
        fake.total_calls()
    );

    // A WeCom code posted without its state is refused before any upstream call.
    match sso
        .login_with_code(&tenant, "wecom", &AuthCode::new("a-code-from-a-url"))
        .await
    {
        Err(Error::RedirectLoginRequired { .. }) => {
            println!("login_with_code(wecom): refused, RedirectLoginRequired (as it should be)");
        }
        other => return Err(format!("expected RedirectLoginRequired, got {other:?}").into()),
    }
    Ok(())
}
