//! DingTalk H5 login-free (免登) against the test-kit fake:
//! `cargo run -p unilogin --features dingtalk --example dingtalk_h5`.
//!
//! In production the page inside the DingTalk client calls `dd.getAuthCode({corpId})` and posts
//! the `authCode` to your server, which redeems it with `Sso::login_with_code` (a JSAPI code
//! never travels in a URL, so no state is involved: DingTalk's registration declares
//! `InClient::Jsapi`). Here the fake issues the codes.

use unilogin::config::{PlatformConfig, StaticConfig};
use unilogin::{AuthCode, Sso, TenantId};
use unilogin_testkit::{EndpointRole, FakePlatform};

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
    let tenant = TenantId::new("acme")?;

    let code = fake.issue_h5_code("user001");
    let login = sso
        .login_with_code(&tenant, "dingtalk", &AuthCode::new(code))
        .await?;
    println!("{}", serde_json::to_string_pretty(&login.profile)?);
    println!("first login: {} upstream calls", fake.total_calls());

    // A second person: the app token comes from the cache, only the code and detail calls go out.
    fake.reset_calls();
    let code = fake.issue_h5_code("user002");
    let login = sso
        .login_with_code(&tenant, "dingtalk", &AuthCode::new(code))
        .await?;
    let token_calls: u64 = fake
        .endpoints_for(EndpointRole::AppToken)
        .iter()
        .map(|e| fake.calls(e))
        .sum();
    println!(
        "second login ({}): {} upstream calls, {token_calls} of them for the app token",
        login.profile.subject,
        fake.total_calls()
    );
    if token_calls != 0 {
        return Err("the second login should have reused the cached app token".into());
    }
    Ok(())
}
