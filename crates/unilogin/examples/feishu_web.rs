//! Feishu / Lark web OAuth against the test-kit fake:
//! `cargo run -p unilogin --features feishu --example feishu_web`.
//!
//! In production the browser is sent to the authorize URL on `accounts.feishu.cn` (or
//! `accounts.larksuite.com`), the user approves, and Feishu redirects to your callback with
//! `code` and `state`. Here the fake serves the authorize page and this program presses its
//! Approve button the way a browser would.

use unilogin::config::{PlatformConfig, StaticConfig};
use unilogin::platform::WebCallback;
use unilogin::sso::AuthorizeParams;
use unilogin::{AuthCode, Flow, Sso, State, TenantId};
use unilogin_testkit::FakePlatform as _;
use url::Url;

const CALLBACK: &str = "https://app.example.com/auth/feishu/callback";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let fake = unilogin_testkit::feishu::start().await;
    let creds = fake.credentials();
    let config: PlatformConfig = serde_json::from_value(serde_json::json!({
        "tenant": "acme",
        "platform": "feishu",
        "app_key": creds.app_key,
        "app_secret": creds.app_secret,
        // The organisation's tenant_key: people from other tenants are refused.
        "corp_id": creds.corp_id,
        "hosts": { "open": fake.base_url(), "accounts": fake.base_url() },
        "redirect_uris": [CALLBACK],
        // offline_access: Feishu also returns a (single-use) refresh token.
        "options": { "region": "feishu", "scope": "offline_access" },
    }))?;
    let sso = Sso::builder(StaticConfig::new(vec![config])).build()?;
    let tenant = TenantId::new("acme")?;

    // 1. Send the browser to the authorize page (keep `state` in the user's session).
    let redirect = Url::parse(CALLBACK)?;
    let state = State::new("a-random-state-you-stored-for-this-browser");
    let authorize = sso
        .authorize_url(
            &tenant,
            "feishu",
            AuthorizeParams {
                flow: Flow::Web,
                redirect_uri: &redirect,
                state: &state,
                nonce: None,
                code_challenge: None,
            },
        )
        .await?;
    println!("authorize URL: {authorize}");

    // 2. The user approves (what the browser does on the fake's page).
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let page = http.get(authorize.clone()).send().await?;
    println!("authorize page: HTTP {}", page.status());
    let mut form: Vec<(String, String)> = authorize.query_pairs().into_owned().collect();
    form.push(("user_id".into(), "user001".into()));
    form.push(("action".into(), "approve".into()));
    let approved = http
        .post(format!(
            "{}/open-apis/authen/v1/authorize/approve",
            fake.base_url()
        ))
        .form(&form)
        .send()
        .await?;
    let location = approved
        .headers()
        .get("location")
        .ok_or("the authorize page did not redirect")?
        .to_str()?;
    let callback = Url::parse(location)?;
    let param = |name: &str| {
        callback
            .query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    if param("state").as_deref() != Some(state.expose()) {
        return Err("state mismatch: refuse the callback".into());
    }
    let code = AuthCode::new(param("code").ok_or("no code in the callback")?);

    // 3. Your callback handler completes the login.
    let login = sso
        .complete_web_login(
            &tenant,
            "feishu",
            WebCallback {
                code: &code,
                redirect_uri: &redirect,
                code_verifier: None,
                nonce: None,
            },
        )
        .await?;
    println!("{}", serde_json::to_string_pretty(&login.profile)?);

    // 4. Later: refresh the user's token (the refresh token is single use; keep the new one).
    if let Some(refresh) = login.user_token.and_then(|t| t.refresh_token) {
        let renewed = sso.refresh_user_token(&tenant, "feishu", &refresh).await?;
        println!(
            "refreshed the user token; new refresh token issued: {}",
            renewed.refresh_token.is_some()
        );
    }
    println!("upstream calls: {}", fake.total_calls());
    Ok(())
}
