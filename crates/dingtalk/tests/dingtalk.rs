//! unilogin-dingtalk against the test-kit fake: its registration, both flows through `Sso`
//! with both app-token APIs, the authorize URL, configuration checks and the ban pages. The
//! error reference row by row is in `errors.rs`; the shared conformance suite is in `tests/`.

mod support;

use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use unilogin_core::platform::{AuthorizeRequest, Flow, Identity};
use unilogin_core::web_login::Callback;
use unilogin_core::{AuthCode, Error, Registry, State};
use unilogin_testkit::dingtalk::{
    self, DEFAULT_CORP_ID, DEMO_USER_ID, OUTSIDER_USER_ID, endpoints as ep,
};
use unilogin_testkit::{FakePlatform as _, Fault, Times};
use url::Url;

use support::*;

#[test]
fn the_registration_declares_the_jsapi_login() {
    let registration = Registry::get("dingtalk").unwrap();
    assert!(registration.in_client.redeems_without_state());
    let jsapi = registration.in_client.jsapi().expect("a JSAPI login");
    assert_eq!(jsapi.global, "dd");
    assert_eq!(
        jsapi.sdk_url,
        "https://g.alicdn.com/dingding/dingtalk-jsapi/3.0.25/dingtalk.open.js"
    );
    let js = jsapi.get_code;
    assert!(
        js.starts_with("function (p)") && js.contains("new Promise"),
        "{js}"
    );
    for needle in [
        "dd.ready(",
        "dd.getAuthCode({ corpId: p.corpId",
        "dd.runtime.permission.requestAuthCode({ corpId: p.corpId",
        "r.authCode || r.code",
    ] {
        assert!(js.contains(needle), "{needle} missing from {js}");
    }
    let config = |corp: Value| {
        serde_json::from_value(json!({
            "tenant": "acme", "platform": "dingtalk", "app_key": "k", "app_secret": "s",
            "corp_id": corp,
        }))
        .unwrap()
    };
    assert_eq!(
        (jsapi.params)(&config(json!("ding1"))),
        json!({"corpId": "ding1"})
    );
    assert_eq!(
        (jsapi.params)(&config(Value::Null)),
        json!({"corpId": null})
    );
    assert_eq!(registration.user_agent_markers, ["dingtalk"]);
}

/// H5, web, refresh through `Sso`, with either app-token API.
#[tokio::test]
async fn both_flows_and_refresh_with_either_app_token_api() {
    let fake = dingtalk::start().await;
    for api in ["oapi", "v1"] {
        let sso = sso(&fake, json!({ "options": { "app_token_api": api } }));
        let code = AuthCode::new(fake.issue_h5_code(DEMO_USER_ID));
        let login = sso
            .login_with_code(&tenant(), "dingtalk", &code)
            .await
            .unwrap();
        assert_eq!(
            login.profile.user_id.as_deref(),
            Some(DEMO_USER_ID),
            "{api}"
        );
        assert_eq!(login.flow, Flow::H5);

        let redirect = Url::parse(CALLBACK).unwrap();
        let start = sso
            .start_web_login(&tenant(), "dingtalk", Flow::Web, &redirect)
            .await
            .unwrap();
        let query = format!(
            "authCode={}&state={}",
            fake.approve_web_login(DEMO_USER_ID),
            start.pending.state.expose()
        );
        let callback = Callback::from_query(url::form_urlencoded::parse(query.as_bytes())).unwrap();
        let login = sso
            .finish_web_login(&start.pending, &callback)
            .await
            .unwrap();
        assert_eq!(
            login.profile.user_id.as_deref(),
            Some(DEMO_USER_ID),
            "{api}"
        );
        assert_eq!(login.profile.open_id.as_deref(), Some("openid-user001"));
        assert_eq!(login.profile.union_id.as_deref(), Some("unionid-user001"));
        let refresh = login
            .user_token
            .and_then(|t| t.refresh_token)
            .expect("refresh token");
        let fresh = sso
            .refresh_user_token(&tenant(), "dingtalk", &refresh)
            .await
            .unwrap();
        assert!(fresh.refresh_token.is_some() && fresh.expires_in.is_some());
    }
}

/// DingTalk's JSAPI codes are the only ones redeemed without state: a web login's code posted
/// to the H5 exchange is refused by `getuserinfo` (it is another kind of code).
#[tokio::test]
async fn a_web_code_is_not_redeemed_as_an_h5_code() {
    let fake = dingtalk::start().await;
    let sso = sso(&fake, json!({}));
    let code = AuthCode::new(fake.approve_web_login(DEMO_USER_ID));
    let err = sso
        .login_with_code(&tenant(), "dingtalk", &code)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidCode { .. }), "{err:?}");
}

/// A web login of someone from another organisation never yields a profile.
#[tokio::test]
async fn an_outsider_is_not_in_the_tenant() {
    let fake = dingtalk::start().await;
    let sso = sso(&fake, json!({}));
    let redirect = Url::parse(CALLBACK).unwrap();
    let start = sso
        .start_web_login(&tenant(), "dingtalk", Flow::Web, &redirect)
        .await
        .unwrap();
    let callback = Callback {
        code: AuthCode::new(fake.approve_web_login(OUTSIDER_USER_ID)),
        state: start.pending.state.clone(),
        iss: None,
    };
    let err = sso
        .finish_web_login(&start.pending, &callback)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotInTenant { .. }), "{err:?}");
    // Without corp_id (a web-only configuration) the membership check falls to
    // getbyunionid's 60121.
    let h = handler(
        &fake,
        json!({ "corp_id": null, "options": { "h5": false } }),
    );
    let token = app_token(h.as_ref()).await;
    let identity = Identity {
        union_id: Some(format!("unionid-{OUTSIDER_USER_ID}")),
        ..Identity::default()
    };
    let err = h.user_detail(Some(&token), &identity).await.unwrap_err();
    assert!(matches!(err, Error::NotInTenant { .. }), "{err:?}");
    let err = h
        .user_detail(Some(&token), &Identity::default())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotInTenant { .. }), "{err:?}");
}

#[tokio::test]
async fn the_authorize_url_carries_the_options() {
    let fake = dingtalk::start().await;
    let redirect = Url::parse(CALLBACK).unwrap();
    let state = State::new("st4te");
    let request = |flow| AuthorizeRequest {
        flow,
        redirect_uri: &redirect,
        state: &state,
        nonce: "n",
        code_challenge: "c",
    };
    let pairs = |url: Url| {
        url.query_pairs()
            .into_owned()
            .collect::<Vec<(String, String)>>()
    };
    let url = handler(&fake, json!({}))
        .authorize_url(&request(Flow::Web))
        .await
        .unwrap();
    assert_eq!(url.path(), "/oauth2/auth");
    let key = fake.credentials().app_key;
    let want = [
        ("redirect_uri", CALLBACK),
        ("response_type", "code"),
        ("client_id", key.as_str()),
        ("scope", "openid"),
        ("state", "st4te"),
        ("prompt", "consent"),
    ];
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    assert_eq!(pairs(url), want);

    let options = json!({ "options": { "scope": "openid corpid", "restrict_to_corp": true } });
    let url = handler(&fake, options)
        .authorize_url(&request(Flow::Web))
        .await
        .unwrap();
    let got = pairs(url);
    assert!(
        got.contains(&("scope".into(), "openid corpid".into())),
        "{got:?}"
    );
    assert!(
        got.contains(&("corpId".into(), DEFAULT_CORP_ID.into())),
        "{got:?}"
    );

    // `corpId` works only with the `corpid` scope: restricting implies it, and refuses `openid`.
    let url = handler(&fake, json!({ "options": { "restrict_to_corp": true } }))
        .authorize_url(&request(Flow::Web))
        .await
        .unwrap();
    let got = pairs(url);
    assert!(
        got.contains(&("scope".into(), "openid corpid".into())),
        "{got:?}"
    );
    let config = config(
        &fake,
        json!({ "options": { "scope": "openid", "restrict_to_corp": true } }),
    );
    let err = config.validate().unwrap_err();
    assert!(
        matches!(&err, Error::Config { field, .. } if field == "options.restrict_to_corp"),
        "{err:?}"
    );

    let err = handler(&fake, json!({}))
        .authorize_url(&request(Flow::H5))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unsupported { .. }), "{err:?}");
}

#[tokio::test]
async fn the_configuration_is_checked_when_the_handler_is_built() {
    let fake = dingtalk::start().await;
    for (extra, field) in [
        (
            json!({ "options": { "app_token_api": "v2" } }),
            "options.app_token_api",
        ),
        (json!({ "options": { "scope": "corpid" } }), "options.scope"),
        (
            json!({ "options": { "restrict_to_corp": true, "h5": false }, "corp_id": "" }),
            "options.restrict_to_corp",
        ),
        (
            json!({ "options": { "restrict_to_corp": "yes" } }),
            "options.restrict_to_corp",
        ),
        (json!({ "app_secret": "" }), "app_secret"),
        // H5 (the default) needs the corpId for dd.getAuthCode.
        (json!({ "corp_id": null }), "corp_id"),
        (json!({ "options": { "h5": "no" } }), "options.h5"),
        (
            json!({ "hosts": { "oapi": fake.base_url(), "opai": fake.base_url() } }),
            "hosts.opai",
        ),
    ] {
        let err = build(&config(&fake, extra.clone())).unwrap_err();
        assert!(
            matches!(&err, Error::Config { field: f, .. } if f == field),
            "{extra}: {err:?}"
        );
    }
}

/// A web/QR-only configuration (`options.h5: false`, no `corp_id`) builds, serves web logins
/// and refuses H5 codes before any upstream call.
#[tokio::test]
async fn h5_needs_the_corp_id_and_can_be_turned_off() {
    let fake = dingtalk::start().await;
    let err = build(&config(&fake, json!({ "corp_id": null }))).unwrap_err();
    assert!(
        matches!(&err, Error::Config { field, reason, .. } if field == "corp_id" && reason.contains("dd.getAuthCode")),
        "{err:?}"
    );
    let web_only = handler(
        &fake,
        json!({ "corp_id": null, "options": { "h5": false } }),
    );
    let token = app_token(web_only.as_ref()).await;
    fake.reset_calls();
    let code = AuthCode::new(fake.issue_h5_code(DEMO_USER_ID));
    let err = web_only.identify_h5(Some(&token), &code).await.unwrap_err();
    assert!(matches!(err, Error::Unsupported { .. }), "{err:?}");
    assert_eq!(fake.total_calls(), 0, "refused before any call");
    web_exchange(&fake, web_only.as_ref())
        .await
        .expect("the web login works");
}

/// The per-IP ban: an HTML page (below HTTP 500) or `{"punish": …, "wait": minutes}` is a rate
/// limit with the ban's length; a proxy's 5xx HTML page is not.
#[tokio::test]
async fn ban_pages_are_rate_limits() {
    let fake = dingtalk::start().await;
    let h = handler(&fake, json!({}));
    let token = app_token(h.as_ref()).await;
    let identity = Identity {
        user_id: Some(DEMO_USER_ID.into()),
        ..Identity::default()
    };
    fake.inject_fault(ep::USER_GET, Fault::RateLimitPage, Times::Once)
        .unwrap();
    let err = h.user_detail(Some(&token), &identity).await.unwrap_err();
    assert!(matches!(err, Error::RateLimited { .. }), "{err:?}");
    assert_eq!(err.retry_after(), Some(Duration::from_secs(300)));
    fake.inject_fault(ep::USER_GET, Fault::HtmlErrorPage, Times::Once)
        .unwrap();
    let err = h.user_detail(Some(&token), &identity).await.unwrap_err();
    assert!(
        !matches!(err, Error::RateLimited { .. }) && err.is_transient(),
        "{err:?}"
    );

    for (body, minutes) in [
        (r#"{"status":1111,"wait":10,"punish":"deny"}"#, 10),
        (r#"{"status":1111,"punish":"deny"}"#, 5),
        (r#"{"status":1111,"wait":0,"punish":"deny"}"#, 1),
    ] {
        let h = build(&config_at(&fake, &stub(body).await, json!({}))).unwrap();
        let err = h.fetch_app_token().await.unwrap_err();
        assert!(matches!(err, Error::RateLimited { .. }), "{body}: {err:?}");
        assert_eq!(
            err.retry_after(),
            Some(Duration::from_secs(minutes * 60)),
            "{body}"
        );
    }
}

/// A server answering every request with HTTP 200 and `body`.
async fn stub(body: &'static str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut request = [0u8; 4096];
            let _ = socket.read(&mut request).await;
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = socket.write_all(response.as_bytes()).await;
            let _ = socket.shutdown().await;
        }
    });
    format!("http://{addr}/")
}
