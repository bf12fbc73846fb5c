//! The WeCom handler through its public API: configuration, token key, authorize URLs,
//! registration and how the core runs its logins.

use serde_json::{Value, json};
use unilogin_core::config::{PlatformConfig, StaticConfig};
use unilogin_core::http::{HttpClient, HttpConfig};
use unilogin_core::platform::{AuthorizeRequest, InClient};
use unilogin_core::registry::PlatformContext;
use unilogin_core::{AuthCode, Error, Flow, Platform, Result, Sso, State, TenantId};
use unilogin_wecom::{NAME, WeCom};
use url::Url;

fn config(patch: Value) -> PlatformConfig {
    let mut c = json!({
        "tenant": "acme", "platform": "wecom",
        "app_key": "wwcorp", "corp_id": "wwcorp", "agent_id": "1000002",
        "app_secret": "s3cret-value",
    });
    if let (Some(c), Value::Object(p)) = (c.as_object_mut(), patch) {
        c.extend(p);
    }
    serde_json::from_value(c).expect("config")
}

fn wecom(patch: Value) -> Result<WeCom> {
    let http = HttpClient::new(&HttpConfig::default()).expect("client");
    WeCom::new(&PlatformContext {
        config: &config(patch),
        http: &http,
    })
}

fn field_of(e: Error) -> String {
    match e {
        Error::Config { field, .. } => field,
        other => panic!("expected a config error, got {other:?}"),
    }
}

#[test]
fn configuration_is_validated() {
    assert!(wecom(json!({})).is_ok());
    let bad = [
        (json!({"app_key": "1000002"}), "app_key"),
        (json!({"corp_id": null}), "corp_id"),
        (json!({"agent_id": null}), "agent_id"),
        (json!({"agent_id": "app-one"}), "agent_id"),
        (json!({"app_secret": ""}), "app_secret"),
        (
            json!({"options": {"scope": "snsapi_userinfo"}}),
            "options.scope",
        ),
        (
            json!({"options": {"web_login": "popup"}}),
            "options.web_login",
        ),
        (
            json!({"options": {"userinfo_api": "v3"}}),
            "options.userinfo_api",
        ),
        (json!({"options": {"lang": "fr"}}), "options.lang"),
        (json!({"options": {"scope": true}}), "options.scope"),
        (
            json!({"hosts": {"qyapii": "http://127.0.0.1:1/"}}),
            "hosts.qyapii",
        ),
    ];
    for (patch, field) in bad {
        let e = wecom(patch.clone()).expect_err("invalid");
        assert!(!e.to_string().contains("s3cret-value"));
        assert_eq!(field_of(e), field, "{patch}");
    }
}

#[test]
fn token_key_names_corp_and_agent() {
    let a = wecom(json!({})).unwrap().token_key().expect("an app token");
    let b = wecom(json!({"agent_id": "1000003", "app_secret": "other"}))
        .unwrap()
        .token_key()
        .expect("an app token");
    assert_eq!(a.as_str(), "wecom:acme:wwcorp:1000002");
    assert_ne!(a, b);
}

async fn url(w: &WeCom, flow: Flow, state: &str) -> Result<Url> {
    let redirect = Url::parse("https://app.example.com/cb?x=1").unwrap();
    let state = State::new(state);
    w.authorize_url(&AuthorizeRequest {
        flow,
        redirect_uri: &redirect,
        state: &state,
        nonce: "n",
        code_challenge: "c",
    })
    .await
}

#[tokio::test]
async fn h5_link_has_the_documented_shape() {
    let w = wecom(json!({})).unwrap();
    let u = url(&w, Flow::H5, "abc123").await.unwrap();
    assert_eq!(
        u.as_str(),
        "https://open.weixin.qq.com/connect/oauth2/authorize?appid=wwcorp\
         &redirect_uri=https%3A%2F%2Fapp.example.com%2Fcb%3Fx%3D1&response_type=code\
         &scope=snsapi_base&state=abc123&agentid=1000002#wechat_redirect"
    );
    let w = wecom(json!({"options": {"scope": "snsapi_privateinfo", "lang": "en"}})).unwrap();
    let u = url(&w, Flow::H5, &"Z".repeat(128)).await.unwrap();
    assert!(
        u.query_pairs()
            .any(|(k, v)| k == "scope" && v == "snsapi_privateinfo")
    );
    assert!(
        !u.query_pairs().any(|(k, _)| k == "lang"),
        "lang is for the web page"
    );
    for bad in ["a-b", "a b", "", "é", &"a".repeat(129)] {
        assert!(
            matches!(url(&w, Flow::H5, bad).await, Err(Error::Unsupported { .. })),
            "{bad:?}"
        );
    }
}

#[tokio::test]
async fn web_urls_have_the_documented_shape() {
    let w = wecom(json!({"options": {"lang": "en"}})).unwrap();
    let u = url(&w, Flow::Web, "st-1").await.unwrap();
    assert_eq!(
        u.as_str(),
        "https://login.work.weixin.qq.com/wwlogin/sso/login?login_type=CorpApp\
         &appid=wwcorp&agentid=1000002&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcb%3Fx%3D1\
         &state=st-1&lang=en"
    );
    let w = wecom(json!({"options": {"web_login": "qrconnect", "lang": "zh"}})).unwrap();
    let u = url(&w, Flow::Web, "st-1").await.unwrap();
    assert_eq!(
        u.as_str(),
        "https://open.work.weixin.qq.com/wwopen/sso/qrConnect?appid=wwcorp&agentid=1000002\
         &redirect_uri=https%3A%2F%2Fapp.example.com%2Fcb%3Fx%3D1&state=st-1"
    );
    let w = wecom(json!({"hosts": {"login": "http://127.0.0.1:9/base"}})).unwrap();
    let u = url(&w, Flow::Web, "st-1").await.unwrap();
    assert!(
        u.as_str()
            .starts_with("http://127.0.0.1:9/base/wwlogin/sso/login?"),
        "{u}"
    );
}

#[test]
fn registration_is_collected_with_its_rules() {
    let r = unilogin_core::Registry::get("wecom").expect("registered");
    assert_eq!(r.user_agent_markers, ["wxwork"]);
    assert!(matches!(r.in_client, InClient::Redirect));
    unilogin_core::MappingRules::from_yaml(NAME, r.default_rules).expect("rules compile");
    let ua = "Mozilla/5.0 (iPhone; CPU iPhone OS 16_0 like Mac OS X) Mobile/15E148 \
              wxwork/4.1.6 MicroMessenger/7.0.1 Language/zh";
    let info = unilogin_core::user_agent::ClientInfo::detect(ua);
    assert!(info.is_inside("wecom") && info.mobile);
}

/// H5 is a redirect login: the core starts it with a state WeCom accepts, and refuses to
/// redeem a posted WeCom code without its state, before any upstream call.
#[tokio::test]
async fn h5_login_is_a_redirect_login() {
    let mut c = config(json!({"hosts": {"qyapi": "http://127.0.0.1:9/"}}));
    c.redirect_uris = vec!["https://app.example.com/cb".into()];
    let sso = Sso::builder(StaticConfig::new(vec![c])).build().unwrap();
    let tenant = TenantId::new("acme").unwrap();
    let redirect = Url::parse("https://app.example.com/cb").unwrap();
    let start = sso
        .start_web_login(&tenant, "wecom", Flow::H5, &redirect)
        .await
        .expect("in-client link");
    assert_eq!(start.url.fragment(), Some("wechat_redirect"));
    let state = start.pending.state.expose();
    assert!(unilogin_wecom::is_valid_h5_state(state));
    assert!(
        start
            .url
            .query_pairs()
            .any(|(k, v)| k == "state" && v == state)
    );
    assert_eq!(start.pending.flow, Flow::H5);

    let err = sso
        .login_with_code(&tenant, "wecom", &AuthCode::new("posted"))
        .await
        .expect_err("no stateless WeCom codes");
    assert!(
        matches!(err, Error::RedirectLoginRequired { .. }),
        "{err:?}"
    );

    let w = wecom(json!({})).unwrap();
    let err = w
        .identify_h5(None, &AuthCode::new("c"))
        .await
        .expect_err("no JSAPI");
    assert!(matches!(err, Error::Unsupported { .. }), "{err:?}");
}
