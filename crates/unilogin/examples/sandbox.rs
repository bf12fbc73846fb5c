//! The offline sandbox: every enabled platform's test-kit fake on loopback, a demo tenant
//! configured against them, and both login flows run end to end for a demo user.
//!
//! `cargo xtask sandbox` (until the gateway's `--sandbox` mode takes over) or
//! `cargo run -p unilogin --features full --example sandbox`.

use std::sync::Arc;

use serde_json::{Value, json};
use unilogin::config::{PlatformConfig, StaticConfig};
use unilogin::platform::WebCallback;
use unilogin::sso::AuthorizeParams;
use unilogin::{AuthCode, Flow, Sso, State, TenantId};
use unilogin_testkit::FakePlatform;
use url::Url;

const CALLBACK: &str = "http://127.0.0.1:8080/auth/callback";

/// A running fake and the demo tenant's configuration pointing at it.
struct Target {
    fake: Arc<dyn FakePlatform>,
    config: Value,
}

#[cfg(feature = "dingtalk")]
async fn dingtalk() -> Target {
    let fake = unilogin_testkit::dingtalk::start().await;
    let creds = fake.credentials();
    let base = fake.base_url().to_string();
    Target {
        config: json!({
            "tenant": "demo", "platform": "dingtalk",
            "app_key": creds.app_key, "app_secret": creds.app_secret, "corp_id": creds.corp_id,
            "hosts": { "oapi": base, "api": base, "login": base },
            "redirect_uris": [CALLBACK],
        }),
        fake: Arc::new(fake),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let targets: Vec<Target> = vec![
        #[cfg(feature = "dingtalk")]
        dingtalk().await,
    ];
    let configs = targets
        .iter()
        .map(|t| serde_json::from_value::<PlatformConfig>(t.config.clone()))
        .collect::<Result<Vec<_>, _>>()?;
    let sso = Sso::builder(StaticConfig::new(configs)).build()?;
    let tenant = TenantId::new("demo")?;
    let callback = Url::parse(CALLBACK)?;

    println!(
        "unilogin sandbox: {} platform fake(s) on loopback, tenant `demo`\n",
        targets.len()
    );
    for t in &targets {
        let platform = t.fake.name();
        let user = t.fake.demo_user_id();
        println!("== {platform} (fake at {})", t.fake.base_url());

        let code = AuthCode::new(t.fake.issue_h5_code(&user));
        let login = sso.login_with_code(&tenant, platform, &code).await?;
        println!("H5 login-free: {}", serde_json::to_string(&login.profile)?);

        let state = State::new("sandboxState1234567890");
        let authorize = sso
            .authorize_url(
                &tenant,
                platform,
                AuthorizeParams {
                    flow: Flow::Web,
                    redirect_uri: &callback,
                    state: &state,
                    nonce: None,
                    code_challenge: None,
                },
            )
            .await?;
        println!("web/QR: browser goes to {authorize}");
        let code = AuthCode::new(t.fake.approve_web_login(&user));
        let login = sso
            .complete_web_login(
                &tenant,
                platform,
                WebCallback {
                    code: &code,
                    redirect_uri: &callback,
                    code_verifier: None,
                    nonce: None,
                },
            )
            .await?;
        println!("web login: {}", serde_json::to_string(&login.profile)?);
        println!("upstream calls so far: {}\n", t.fake.total_calls());
    }
    println!("token cache: {:?}", sso.token_cache().stats());
    Ok(())
}
