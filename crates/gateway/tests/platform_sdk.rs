//! The gateway over the platform SDK: what a platform's registration says decides the in-client
//! path, codes are redeemed without state only for JSAPI platforms (a WeCom web-login code or a
//! custom-oauth code posted to `…/code` is refused before any upstream call), and session
//! scopes come from `session_scopes`, never from `options.scopes` (which OAuth2/OIDC tenants use
//! for their scopes).

mod support;

use serde_json::{Value, json};
use support::{Served, assert_error, cookie_value, query_of, serve};
use unilogin_testkit::FakePlatform as _;
use unilogin_testkit::{selfbuilt, wecom};
use url::Url;

const WECOM_UA: &str =
    "Mozilla/5.0 (iPhone; CPU iPhone OS 16_0) Mobile/15E148 wxwork/4.1.6 MicroMessenger/7.0.1";

fn session_scopes() -> Value {
    json!({
        "default": ["user:read"],
        "rules": [{ "when": { "user_id": ["10087", "user002"] }, "grant": ["admin:write"] }]
    })
}

fn wecom_tenant(fake: &wecom::FakeWeCom, public: &Url) -> Value {
    let creds = fake.credentials();
    let base = fake.base_url();
    json!({
        "tenant": "acme", "platform": "wecom",
        "app_key": creds.corp_id, "app_secret": creds.app_secret,
        "corp_id": creds.corp_id, "agent_id": creds.agent_id,
        "hosts": { "qyapi": base, "oauth": base, "login": base, "open": base },
        "redirect_uris": [public.as_str()],
        "session_scopes": session_scopes(),
    })
}

/// The self-built fake's `custom-oauth` (`mode: steps`) tenant, returning to the gateway.
fn steps_tenant(fake: &selfbuilt::FakeSelfBuilt, public: &Url) -> Value {
    let mut t = fake.tenant_config();
    t["redirect_uris"] = json!([public.as_str()]);
    t["session_scopes"] = session_scopes();
    t
}

async fn post_code(gw: &Served, path: &str, code: &str) -> reqwest::Response {
    gw.http
        .post(gw.url(path))
        .json(&json!({ "code": code }))
        .send()
        .await
        .unwrap()
}

fn login_url(gw: &Served, tenant: &str, platform: &str) -> String {
    let mut u = Url::parse(&gw.url(&format!("auth/{tenant}/{platform}/login"))).unwrap();
    u.query_pairs_mut()
        .append_pair("return_to", gw.base.as_str());
    u.to_string()
}

#[tokio::test]
async fn a_wecom_web_login_code_posted_to_code_is_refused_before_any_upstream_call() {
    let fake = wecom::start().await;
    let gw = serve("", |public| vec![wecom_tenant(&fake, public)], |b| b).await;
    for code in [
        fake.approve_web_login(wecom::DEMO_USER_ID),
        fake.issue_h5_code(wecom::DEMO_USER_ID),
    ] {
        let r = post_code(&gw, "auth/acme/wecom/code", &code).await;
        let body = assert_error(r, 400, "redirect_login_required", "redirect login").await;
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("/auth/{tenant}/wecom/login"),
            "{body}"
        );
    }
    assert_eq!(fake.total_calls(), 0, "nothing reached WeCom");
}

#[tokio::test]
async fn inside_the_wecom_client_the_login_is_a_redirect_login_with_state() {
    let fake = wecom::start().await;
    let gw = serve("", |public| vec![wecom_tenant(&fake, public)], |b| b).await;
    let r = gw
        .http
        .get(login_url(&gw, "acme", "wecom"))
        .header("user-agent", WECOM_UA)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert!(
        cookie_value(&r, "unilogin_login").is_some(),
        "binding cookie"
    );
    let to = Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    assert!(to.as_str().starts_with(fake.base_url()), "{to}");
    assert!(
        to.path().contains("oauth2/authorize"),
        "the in-client OAuth link: {to}"
    );
    assert_eq!(query_of(&to)["state"].len(), 64);
}

#[tokio::test]
async fn a_custom_oauth_code_posted_to_code_is_refused_before_any_upstream_call() {
    let fake = selfbuilt::start().await;
    // An OIDC tenant whose provider is a closed port: a refusal, not a transport error, shows
    // that nothing was even attempted (no discovery, no token request).
    let oidc = |public: &Url| {
        json!({
            "tenant": "oidc", "platform": "custom-oauth", "mode": "oidc",
            "app_key": "client", "app_secret": "secret",
            "redirect_uris": [public.as_str()],
            "options": {
                "authorization_endpoint": "http://127.0.0.1:9/authorize",
                "token_endpoint": "http://127.0.0.1:9/token",
                "userinfo_endpoint": "http://127.0.0.1:9/userinfo",
                "scopes": ["openid", "profile", "email"],
            },
        })
    };
    let gw = serve(
        "ops: {metrics_token: metrics-token-for-tests}",
        |public| vec![steps_tenant(&fake, public), oidc(public)],
        |b| b,
    )
    .await;
    let code = fake.approve_web_login(selfbuilt::DEMO_USER_ID);
    let r = post_code(&gw, "auth/acme/custom-oauth/code", &code).await;
    assert_error(r, 400, "redirect_login_required", "custom-oauth").await;
    let r = post_code(&gw, "auth/oidc/custom-oauth/code", "any-code").await;
    assert_error(r, 400, "redirect_login_required", "custom-oauth").await;
    assert_eq!(fake.total_calls(), 0, "nothing reached the provider");
    // The metric names the refusal.
    let text = gw
        .http
        .get(gw.url("metrics"))
        .bearer_auth("metrics-token-for-tests")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        text.contains(
            "unilogin_logins_total{tenant=\"acme\",platform=\"custom-oauth\",flow=\"h5\",outcome=\"redirect_login_required\"} 1"
        ),
        "{text}"
    );
}

#[tokio::test]
async fn a_steps_tenant_logs_in_through_the_gateway_with_session_scopes() {
    let fake = selfbuilt::start().await;
    let gw = serve("", |public| vec![steps_tenant(&fake, public)], |b| b).await;
    let r = gw
        .http
        .get(login_url(&gw, "acme", "custom-oauth"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "{:?}", r.text().await);
    let binding = cookie_value(&r, "unilogin_login").unwrap();
    let authorize = Url::parse(r.headers()["location"].to_str().unwrap()).unwrap();
    // The fake's Approve button: the authorize parameters and the user.
    let mut form: Vec<(String, String)> = authorize.query_pairs().into_owned().collect();
    form.push(("user_id".into(), selfbuilt::SECOND_USER_ID.into()));
    let r = gw
        .http
        .post(format!("{}/open/v3/sso/approve", fake.base_url()))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302);
    let callback = r.headers()["location"].to_str().unwrap().to_string();
    assert!(
        callback.starts_with(&gw.url("auth/acme/custom-oauth/callback")),
        "{callback}"
    );
    let r = gw
        .http
        .get(&callback)
        .header("cookie", format!("unilogin_login={binding}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "{:?}", r.text().await);
    let token = cookie_value(&r, "unilogin_session").unwrap();
    let me: Value = gw
        .http
        .get(gw.url("me"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["uid"], selfbuilt::SECOND_USER_ID);
    assert_eq!(me["scope"], "user:read admin:write");
}

#[tokio::test]
async fn session_scope_rules_left_in_options_scopes_grant_nothing() {
    let fake = unilogin_testkit::dingtalk::start().await;
    let gw = serve(
        "",
        |public| {
            let mut t = support::tenant(&fake, "acme", true, public.as_str());
            let rules = t.as_object_mut().unwrap().remove("session_scopes").unwrap();
            t["options"] = json!({ "scopes": rules });
            vec![t]
        },
        |b| b,
    )
    .await;
    let code = fake.issue_h5_code("user002");
    let r = post_code(&gw, "auth/acme/dingtalk/code", &code).await;
    assert_eq!(r.status(), 200, "{:?}", r.text().await);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["scope"], "", "{body}");
}

#[tokio::test]
async fn the_sandbox_h5_page_asks_the_fake_for_a_code_and_loads_no_sdk() {
    let sandbox = unilogin_gateway::Sandbox::start(unilogin_gateway::SandboxOptions::default())
        .await
        .unwrap();
    let http = support::client();
    let mut jsapi = 0;
    for p in &sandbox.platforms {
        let name = p.fake.name();
        let registration = unilogin::Registry::get(name).unwrap();
        let Some(j) = registration.in_client.jsapi() else {
            continue;
        };
        jsapi += 1;
        let ua = format!(
            "Mozilla/5.0 (Linux; Android 12) Mobile {}",
            registration.user_agent_markers[0]
        );
        let page = http
            .get(sandbox.login_link(name))
            .header("user-agent", ua)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(page.contains(&format!("/sandbox/{name}/h5-code")), "{page}");
        assert!(page.contains(j.get_code), "{page}");
        assert!(!page.contains(j.sdk_url), "offline: {page}");
    }
    assert!(jsapi > 0, "the sandbox has a JSAPI platform");
    sandbox.stop().await;
}
