//! The library-level sandbox: every enabled platform's test-kit fake on loopback, a demo tenant
//! configured against them, and each platform's login flows run end to end for its demo user:
//! `cargo run -p unilogin --features full --example sandbox`.
//!
//! (`cargo xtask sandbox` runs the gateway's `--sandbox` mode, the same fakes behind an HTTP
//! service you can click through.)
//!
//! Per platform, the in-client login follows what its registration declares
//! (`Prepared::registration().in_client`): a JSAPI code (DingTalk, Feishu) is redeemed with
//! `Sso::login_with_code`; an in-client OAuth redirect (WeCom) is a `Flow::H5` redirect login;
//! a platform without one (custom-oauth) uses the web login inside the client too. The web/QR
//! login is always `start_web_login` → the platform's page → `Callback::from_query` →
//! `finish_web_login`.

mod support;

use std::sync::Arc;

use serde_json::{Value, json};
use unilogin::config::{PlatformConfig, StaticConfig};
use unilogin::web_login::Callback;
use unilogin::{AuthCode, Flow, InClient, Login, Sso, TenantId};
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

#[cfg(feature = "feishu")]
async fn feishu() -> Target {
    let fake = unilogin_testkit::feishu::start().await;
    let creds = fake.credentials();
    let base = fake.base_url().to_string();
    Target {
        config: json!({
            "tenant": "demo", "platform": "feishu",
            "app_key": creds.app_key, "app_secret": creds.app_secret, "corp_id": creds.corp_id,
            "hosts": { "open": base, "accounts": base },
            "redirect_uris": [CALLBACK],
        }),
        fake: Arc::new(fake),
    }
}

#[cfg(feature = "wecom")]
async fn wecom() -> Target {
    let fake = unilogin_testkit::wecom::start().await;
    let creds = fake.credentials();
    let base = fake.base_url().to_string();
    Target {
        config: json!({
            "tenant": "demo", "platform": "wecom",
            "app_key": creds.corp_id, "corp_id": creds.corp_id, "agent_id": creds.agent_id,
            "app_secret": creds.app_secret,
            "hosts": { "qyapi": base, "oauth": base, "login": base, "open": base },
            "redirect_uris": [CALLBACK],
        }),
        fake: Arc::new(fake),
    }
}

#[cfg(feature = "custom-oauth")]
async fn selfbuilt() -> Target {
    let fake = unilogin_testkit::selfbuilt::start().await;
    // The steps-mode configuration the test kit ships with the fake (see the `custom_oauth`
    // example for it written out).
    let mut config = fake.tenant_config();
    config["tenant"] = json!("demo");
    config["redirect_uris"] = json!([CALLBACK]);
    Target {
        config,
        fake: Arc::new(fake),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let targets: Vec<Target> = vec![
        #[cfg(feature = "dingtalk")]
        dingtalk().await,
        #[cfg(feature = "feishu")]
        feishu().await,
        #[cfg(feature = "wecom")]
        wecom().await,
        #[cfg(feature = "custom-oauth")]
        selfbuilt().await,
    ];
    let configs = targets
        .iter()
        .map(|t| serde_json::from_value::<PlatformConfig>(t.config.clone()))
        .collect::<Result<Vec<_>, _>>()?;
    let sso = Sso::builder(StaticConfig::validated(configs)?).build()?;
    let tenant = TenantId::new("demo")?;

    println!(
        "unilogin sandbox: {} platform fake(s) on loopback, tenant `demo`\n",
        targets.len()
    );
    for t in &targets {
        let platform = t.fake.name();
        let user = t.fake.demo_user_id();
        println!("== {platform} (fake at {})", t.fake.base_url());

        let prepared = sso.prepare(&tenant, platform).await?;
        match prepared.registration().in_client {
            InClient::Jsapi(jsapi) => {
                // The page inside the client calls the JSAPI (`dd.getAuthCode`, `tt.requestAccess`…)
                // and posts the code; here the fake issues it.
                let code = AuthCode::new(t.fake.issue_h5_code(&user));
                let login = prepared.login_with_code(&code).await?;
                println!(
                    "in-client (JSAPI `{}`): {}",
                    jsapi.global,
                    serde_json::to_string(&login.profile)?
                );
            }
            InClient::Redirect => {
                let login = redirect_login(&sso, &tenant, platform, Flow::H5, &user).await?;
                println!(
                    "in-client (OAuth redirect, Flow::H5): {}",
                    serde_json::to_string(&login.profile)?
                );
            }
            InClient::None => {
                println!("in-client: none of its own; the web login runs inside the client too");
            }
        }

        let login = redirect_login(&sso, &tenant, platform, Flow::Web, &user).await?;
        println!("web/QR login: {}", serde_json::to_string(&login.profile)?);
        println!("upstream calls so far: {}\n", t.fake.total_calls());
    }
    println!("token cache: {:?}", sso.token_cache().stats());
    Ok(())
}

/// A redirect login: start (the core makes state, PKCE verifier and nonce), the user approves
/// on the platform's page, the callback finishes it with the pending login.
async fn redirect_login(
    sso: &Sso,
    tenant: &TenantId,
    platform: &str,
    flow: Flow,
    user: &str,
) -> Result<Login, Box<dyn std::error::Error>> {
    let start = sso
        .start_web_login(tenant, platform, flow, &Url::parse(CALLBACK)?)
        .await?;
    let callback_url = support::approve(&start.url, user).await?;
    let callback = Callback::from_query(callback_url.query_pairs())?;
    Ok(sso.finish_web_login(&start.pending, &callback).await?)
}
