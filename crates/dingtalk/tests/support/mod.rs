//! What both test files share: the fake, a tenant configuration pointing at it, handlers.

#![allow(dead_code)]

use std::sync::Arc;

use serde_json::{Value, json};
use unilogin_core::config::{PlatformConfig, StaticConfig};
use unilogin_core::http::{HttpClient, HttpConfig};
use unilogin_core::platform::{Identity, Platform, WebCallback};
use unilogin_core::registry::PlatformContext;
use unilogin_core::{AccessToken, AuthCode, Error, Result, Sso, TenantId};
use unilogin_dingtalk::DingTalk;
use unilogin_testkit::FakePlatform as _;
use unilogin_testkit::dingtalk::{DEMO_USER_ID, FakeDingTalk};
use url::Url;

pub const CALLBACK: &str = "https://app.example.com/auth/callback";

pub fn tenant() -> TenantId {
    TenantId::new("acme").unwrap()
}

/// The tenant's configuration with every host on `base` and `extra` merged at top level.
pub fn config_at(fake: &FakeDingTalk, base: &str, extra: Value) -> PlatformConfig {
    let creds = fake.credentials();
    let mut config = json!({
        "tenant": "acme",
        "platform": "dingtalk",
        "app_key": creds.app_key,
        "app_secret": creds.app_secret,
        "corp_id": creds.corp_id,
        "hosts": { "oapi": base, "api": base, "login": base },
        "redirect_uris": [CALLBACK],
    });
    if let (Some(c), Value::Object(extra)) = (config.as_object_mut(), extra) {
        c.extend(extra);
    }
    serde_json::from_value(config).unwrap()
}

pub fn config(fake: &FakeDingTalk, extra: Value) -> PlatformConfig {
    config_at(fake, fake.base_url(), extra)
}

pub fn build(config: &PlatformConfig) -> Result<Arc<dyn Platform>> {
    let http = HttpClient::new(&HttpConfig::default()).unwrap();
    DingTalk::build(PlatformContext {
        config,
        http: &http,
    })
}

pub fn handler(fake: &FakeDingTalk, extra: Value) -> Arc<dyn Platform> {
    build(&config(fake, extra)).unwrap()
}

pub fn sso(fake: &FakeDingTalk, extra: Value) -> Sso {
    Sso::builder(StaticConfig::new(vec![config(fake, extra)]))
        .build()
        .unwrap()
}

pub async fn app_token(h: &dyn Platform) -> AccessToken {
    h.fetch_app_token().await.expect("app token").token
}

/// Redeems a web code of the demo user freshly approved on the fake.
pub async fn web_exchange(fake: &FakeDingTalk, h: &dyn Platform) -> Result<Identity> {
    let token = app_token(h).await;
    let code = AuthCode::new(fake.approve_web_login(DEMO_USER_ID));
    let redirect = Url::parse(CALLBACK).unwrap();
    let callback = WebCallback {
        code: &code,
        redirect_uri: &redirect,
        code_verifier: "v",
        nonce: "n",
    };
    h.exchange_web_code(Some(&token), &callback).await
}

/// Whether `e` is a configuration error whose hint contains `needle`.
pub fn misconfigured(e: &Error, needle: &str) -> bool {
    matches!(e, Error::Misconfigured { hint, .. } if hint.contains(needle))
}
