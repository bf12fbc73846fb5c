//! WeCom in-client login (H5 login-free) against the test-kit fake:
//! `cargo run -p unilogin --features wecom --example wecom_h5`.
//!
//! In production the page opened inside WeCom sends the browser to the OAuth link that
//! `Sso::authorize_url(.., Flow::H5, ..)` builds; WeCom redirects back to your callback with
//! `?code=…&state=…`, and your server checks the state and calls `Sso::login_with_code`. Here the
//! fake plays WeCom: we open the link's page on it, approve as the demo member and read the code
//! from the redirect. With `scope = snsapi_privateinfo` the profile also carries mobile, e-mail
//! and avatar (read with the `user_ticket`), which apps created after 2022-06-20 get no other way.

use unilogin::config::{PlatformConfig, StaticConfig};
use unilogin::sso::AuthorizeParams;
use unilogin::{AuthCode, Flow, Sso, State, TenantId};
use unilogin_testkit::FakePlatform as _;
use url::Url;

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
        "redirect_uris": ["https://app.acme.example/wecom/callback"],
        "options": { "scope": "snsapi_privateinfo" },
    }))?;
    let sso = Sso::builder(StaticConfig::new(vec![config])).build()?;
    let tenant = TenantId::new("acme")?;

    // 1. The link the page inside WeCom opens (state: letters and digits only).
    let callback = Url::parse("https://app.acme.example/wecom/callback")?;
    let state = State::new("example0state1");
    let link = sso
        .authorize_url(
            &tenant,
            "wecom",
            AuthorizeParams {
                flow: Flow::H5,
                redirect_uri: &callback,
                state: &state,
                nonce: None,
                code_challenge: None,
            },
        )
        .await?;
    println!("in-client OAuth link: {link}");

    // 2. WeCom (the fake) redirects back with a code; the demo member approves.
    let code = approve_on_fake(&link).await?;
    fake.reset_calls(); // count only the server-side calls below

    // 3. Your callback handler: check `state`, then exchange the code.
    let login = sso
        .login_with_code(&tenant, "wecom", &AuthCode::new(code))
        .await?;
    println!("{}", serde_json::to_string_pretty(&login.profile)?);
    println!(
        "upstream calls: {} (gettoken, auth/getuserinfo, user/get, auth/getuserdetail; the next \
         login reuses the cached app token)",
        fake.total_calls()
    );
    Ok(())
}

/// Opens the link's page on the fake, submits the demo member's Approve form and returns the
/// `code` of the redirect (what the WeCom client does for a signed-in member).
async fn approve_on_fake(link: &Url) -> Result<String, Box<dyn std::error::Error>> {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let mut page = link.clone();
    page.set_fragment(None); // `#wechat_redirect` is for the client, never sent to a server
    let html = http.get(page.clone()).send().await?.text().await?;
    let start = html
        .find("data-user-id=\"user001\"")
        .ok_or("demo member not listed")?;
    let end = start + html[start..].find("</form>").ok_or("no form")?;
    let mut fields = Vec::new();
    for input in html[start..end].split("<input type=\"hidden\" ").skip(1) {
        let attr = |name: &str| {
            input
                .split(&format!("{name}=\""))
                .nth(1)
                .and_then(|v| v.split('"').next())
                .map(|v| v.replace("&amp;", "&"))
        };
        if let (Some(name), Some(value)) = (attr("name"), attr("value")) {
            fields.push((name, value));
        }
    }
    let response = http
        .post(page.join("/wwlogin/sso/approve")?)
        .form(&fields)
        .send()
        .await?;
    let location = response
        .headers()
        .get("location")
        .ok_or("no redirect")?
        .to_str()?;
    let code = Url::parse(location)?
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .ok_or("no code in the redirect")?;
    Ok(code)
}
