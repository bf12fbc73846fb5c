//! DingTalk H5 login-free against the test-kit fake:
//! `cargo run -p unilogin --features dingtalk --example dingtalk_h5`.
//!
//! In production the page inside the DingTalk client calls `dd.getAuthCode({corpId})` and posts
//! the `authCode` to your server; here the fake issues the code.

use unilogin::config::{PlatformConfig, StaticConfig};
use unilogin::{AuthCode, Sso, TenantId};
use unilogin_testkit::FakePlatform as _;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let fake = unilogin_testkit::dingtalk::start().await;
    let creds = fake.credentials();
    let config: PlatformConfig = serde_json::from_value(serde_json::json!({
        "tenant": "acme",
        "platform": "dingtalk",
        "app_key": creds.app_key,
        "app_secret": creds.app_secret,
        "corp_id": creds.corp_id,
        "hosts": { "oapi": fake.base_url(), "api": fake.base_url(), "login": fake.base_url() },
    }))?;
    let sso = Sso::builder(StaticConfig::new(vec![config])).build()?;

    let code = fake.issue_h5_code("user001");
    let login = sso
        .login_with_code(&TenantId::new("acme")?, "dingtalk", &AuthCode::new(code))
        .await?;
    println!("{}", serde_json::to_string_pretty(&login.profile)?);
    println!(
        "upstream calls: {} (a second login would reuse the cached app token)",
        fake.total_calls()
    );
    Ok(())
}
