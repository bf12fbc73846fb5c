//! Feishu / Lark web OAuth against the test-kit fake:
//! `cargo run -p unilogin --features feishu --example feishu_web`.
//!
//! In production the browser is sent to the authorize URL on `accounts.feishu.cn` (or
//! `accounts.larksuite.com`), the user approves, and Feishu redirects to your callback with
//! `code` and `state`. Here the fake serves the authorize page and this program presses its
//! Approve button the way a browser would.

mod support;

use unilogin::config::{PlatformConfig, StaticConfig};
use unilogin::web_login::Callback;
use unilogin::{Flow, Sso, TenantId};
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

    // 1. Your login route: start the login and send the browser to `start.url`. The core made
    //    the state, PKCE verifier and nonce; keep `start.pending` server-side (keyed by its
    //    state, single use) until the browser comes back.
    let start = sso
        .start_web_login(&tenant, "feishu", Flow::Web, &Url::parse(CALLBACK)?)
        .await?;
    // The URL carries the state: never log it whole.
    let (origin, path) = (start.url.origin().ascii_serialization(), start.url.path());
    println!("browser goes to {origin}{path}?…");
    let pending = start.pending;

    // 2. The user approves on the authorize page (here: the fake's, as a browser would).
    let callback_url = support::approve(&start.url, "user001").await?;

    // 3. Your callback route: parse the query, look the pending login up by its state, finish.
    //    The core checks the state before the code is spent.
    let callback = Callback::from_query(callback_url.query_pairs())?;
    let login = sso.finish_web_login(&pending, &callback).await?;
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
