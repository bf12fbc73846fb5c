//! `dd.config` signatures and mini-app codes through `Sso`, against a scripted local server
//!: both ticket APIs, the object's exact shape,
//! caching, a token-invalid ticket fetch, rate limits and busy answers, configuration checks.
//!
//! The scripted server (`unilogin_testkit::scripted`) asserts the exact requests and answers
//! precise error sequences; the test-kit fakes' own conformance for the same endpoints is in
//! `crates/testkit/tests/jsapi_fake.rs` and the gateway's `tests/jsapi.rs`.

use serde_json::{Value, json};
use unilogin_core::config::{PlatformConfig, StaticConfig};
use unilogin_core::jsapi::{self, TicketKind};
use unilogin_core::{AuthCode, CodeKind, Error, Sso, TenantId};
use unilogin_dingtalk::NAME;
use unilogin_testkit::scripted::{Stub, route};

const PAGE: &str = "https://h5.example.com/app/index.html?corpId=ding1&x=%E4%B8%AD#/home";
const SIGNED_PAGE: &str = "https://h5.example.com/app/index.html?corpId=ding1&x=%E4%B8%AD";

fn tenant() -> TenantId {
    TenantId::new("acme").unwrap()
}

fn config(stub: &Stub, extra: Value) -> PlatformConfig {
    let mut config = json!({
        "tenant": "acme", "platform": "dingtalk", "app_key": "dingkey", "app_secret": "s3cret",
        "corp_id": "ding1", "agent_id": "42",
        "hosts": { "oapi": stub.base, "api": stub.base, "login": stub.base },
    });
    if let (Some(c), Value::Object(extra)) = (config.as_object_mut(), extra) {
        c.extend(extra);
    }
    serde_json::from_value(config).unwrap()
}

fn sso(stub: &Stub, extra: Value) -> Sso {
    Sso::builder(StaticConfig::new(vec![config(stub, extra)]))
        .build()
        .unwrap()
}

/// `gettoken` answering `tok-<n>`, `v1.0/oauth2/accessToken` answering `v1tok-<n>`.
fn token_routes() -> Vec<unilogin_testkit::scripted::Route> {
    vec![
        route("GET", "/gettoken", |_, n| {
            (
                200,
                json!({"errcode": 0, "errmsg": "ok", "access_token": format!("tok-{n}"), "expires_in": 7200}),
            )
        }),
        route("POST", "/v1.0/oauth2/accessToken", |_, n| {
            (
                200,
                json!({"accessToken": format!("v1tok-{n}"), "expireIn": 7200}),
            )
        }),
    ]
}

async fn dd_config(sso: &Sso) -> Result<unilogin_core::JsapiConfig, Error> {
    let apis = [
        "biz.contact.choose".to_string(),
        "device.notification.alert".to_string(),
    ];
    sso.jsapi_config(&tenant(), NAME, PAGE, TicketKind::Jsapi, &apis)
        .await
}

fn assert_dd_config(c: &unilogin_core::JsapiConfig, ticket: &str) {
    let s = &c.signed;
    assert_eq!(s.url.as_str(), SIGNED_PAGE);
    assert_eq!(
        s.signature,
        jsapi::sign(ticket, &s.nonce, s.timestamp, SIGNED_PAGE)
    );
    // Seconds.
    assert!(
        (1_600_000_000..10_000_000_000).contains(&s.timestamp),
        "{}",
        s.timestamp
    );
    assert_eq!(
        c.config,
        json!({
            "agentId": "42", "corpId": "ding1", "timeStamp": s.timestamp, "nonceStr": s.nonce,
            "signature": s.signature, "type": 0,
            "jsApiList": ["biz.contact.choose", "device.notification.alert"],
        })
    );
    let shown = format!("{c:?} {}", c.config);
    assert!(!shown.contains(ticket), "{shown}");
}

#[tokio::test]
async fn oapi_ticket_signs_dd_config_and_is_cached() {
    let mut routes = token_routes();
    routes.push(route("GET", "/get_jsapi_ticket", |_, n| {
        (200, json!({"errcode": 0, "errmsg": "ok", "ticket": format!("ticket-{n}"), "expires_in": 7200}))
    }));
    let stub = Stub::start(routes).await;
    let sso = sso(&stub, json!({}));
    for _ in 0..5 {
        assert_dd_config(&dd_config(&sso).await.unwrap(), "ticket-1");
    }
    let calls = stub.calls("/get_jsapi_ticket");
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].param("access_token").as_deref(), Some("tok-1"));
    assert_eq!(stub.count("/gettoken"), 1);
}

#[tokio::test]
async fn new_api_ticket_with_app_token_api_v1() {
    let mut routes = token_routes();
    routes.push(route("POST", "/v1.0/oauth2/jsapiTickets", |_, n| {
        (
            200,
            json!({"jsapiTicket": format!("nticket-{n}"), "expireIn": 7200}),
        )
    }));
    let stub = Stub::start(routes).await;
    let sso = sso(&stub, json!({"options": {"app_token_api": "v1"}}));
    assert_dd_config(&dd_config(&sso).await.unwrap(), "nticket-1");
    assert_dd_config(&dd_config(&sso).await.unwrap(), "nticket-1");
    let calls = stub.calls("/v1.0/oauth2/jsapiTickets");
    assert_eq!(calls.len(), 1);
    assert_eq!(
        calls[0].header("x-acs-dingtalk-access-token"),
        Some("v1tok-1")
    );
    assert_eq!(
        calls[0].param("access_token"),
        None,
        "the token goes in the header only"
    );
    assert_eq!(stub.count("/get_jsapi_ticket"), 0);
}

#[tokio::test]
async fn a_rejected_app_token_is_replaced_once_on_either_api() {
    let mut routes = token_routes();
    routes.push(route("GET", "/get_jsapi_ticket", |r, n| {
        match r.param("access_token").as_deref() {
            Some("tok-1") => (
                200,
                json!({"errcode": 40014, "errmsg": "invalid access_token"}),
            ),
            _ => (
                200,
                json!({"errcode": 0, "ticket": format!("ticket-{n}"), "expires_in": 7200}),
            ),
        }
    }));
    routes.push(route("POST", "/v1.0/oauth2/jsapiTickets", |r, n| {
        match r.header("x-acs-dingtalk-access-token") {
            Some("v1tok-1") => (
                401,
                json!({"code": "InvalidAuthentication", "message": "不合法的access_token"}),
            ),
            _ => (
                200,
                json!({"jsapiTicket": format!("nticket-{n}"), "expireIn": 7200}),
            ),
        }
    }));
    let stub = Stub::start(routes).await;
    assert_dd_config(
        &dd_config(&sso(&stub, json!({}))).await.unwrap(),
        "ticket-2",
    );
    assert_eq!(stub.count("/gettoken"), 2);
    let v1 = sso(&stub, json!({"options": {"app_token_api": "v1"}}));
    assert_dd_config(&dd_config(&v1).await.unwrap(), "nticket-2");
    assert_eq!(stub.count("/v1.0/oauth2/accessToken"), 2);
}

#[tokio::test]
async fn rate_limits_and_busy_answers_are_typed() {
    let mut routes = token_routes();
    routes.push(route("GET", "/get_jsapi_ticket", |_, _| {
        (
            200,
            json!({"errcode": 90018, "errmsg": "too many requests, ticket=leaky"}),
        )
    }));
    routes.push(route("POST", "/v1.0/oauth2/jsapiTickets", |_, _| {
        (500, json!({"code": "systemBusy", "message": "系统繁忙"}))
    }));
    let stub = Stub::start(routes).await;
    let e = dd_config(&sso(&stub, json!({}))).await.unwrap_err();
    assert!(matches!(e, Error::RateLimited { .. }), "{e:?}");
    let e = dd_config(&sso(&stub, json!({"options": {"app_token_api": "v1"}})))
        .await
        .unwrap_err();
    assert!(
        e.is_transient() && matches!(e, Error::Upstream { .. }),
        "{e:?}"
    );
    // A busy answer is not a rejected token: no second app token.
    assert_eq!(stub.count("/v1.0/oauth2/accessToken"), 1);
}

#[tokio::test]
async fn configuration_and_kinds_are_checked_before_a_ticket_is_fetched() {
    let mut routes = token_routes();
    routes.push(route("GET", "/get_jsapi_ticket", |_, n| {
        (
            200,
            json!({"errcode": 0, "ticket": format!("ticket-{n}"), "expires_in": 7200}),
        )
    }));
    let stub = Stub::start(routes).await;
    let e = dd_config(&sso(&stub, json!({"agent_id": null})))
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Config { field, .. } if field == "agent_id"),
        "{e:?}"
    );
    let e = sso(&stub, json!({}))
        .jsapi_config(&tenant(), NAME, PAGE, TicketKind::AgentConfig, &[])
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Unsupported { .. }), "{e:?}");
    let e = sso(&stub, json!({}))
        .jsapi_config(&tenant(), NAME, "h5.example.com/x", TicketKind::Jsapi, &[])
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InvalidPageUrl(_)), "{e:?}");
    assert_eq!(stub.count("/get_jsapi_ticket"), 0);
}

#[tokio::test]
async fn mini_app_codes_use_the_h5_exchange() {
    let routes = vec![
        route("GET", "/gettoken", |_, n| {
            (
                200,
                json!({"errcode": 0, "access_token": format!("tok-{n}"), "expires_in": 7200}),
            )
        }),
        route("POST", "/topapi/v2/user/getuserinfo", |r, _| {
            assert!(r.body.contains("\"code\":\"mini-code\""), "{}", r.body);
            (
                200,
                json!({"errcode": 0, "result": {"userid": "u42", "unionid": "un42"}}),
            )
        }),
        route("POST", "/topapi/v2/user/get", |_, _| {
            (
                200,
                json!({"errcode": 0, "result": {"userid": "u42", "unionid": "un42", "name": "Wang Wu"}}),
            )
        }),
    ];
    let stub = Stub::start(routes).await;
    let sso = sso(&stub, json!({}));
    let code = AuthCode::new("mini-code");
    let mini = sso
        .login_with_code_kind(&tenant(), NAME, CodeKind::MiniProgram, &code)
        .await
        .unwrap();
    let h5 = sso.login_with_code(&tenant(), NAME, &code).await.unwrap();
    assert_eq!(mini.profile.user_id.as_deref(), Some("u42"));
    assert_eq!(mini.profile.name.as_deref(), Some("Wang Wu"));
    assert_eq!(mini.profile.subject, h5.profile.subject);
    assert_eq!(stub.count("/topapi/v2/user/getuserinfo"), 2);
    // Without the H5 login, mini-app codes are refused before any call.
    let off = self::sso(&stub, json!({"options": {"h5": false}}));
    let e = off
        .login_with_code_kind(&tenant(), NAME, CodeKind::MiniProgram, &code)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Unsupported { .. }), "{e:?}");
    assert_eq!(stub.count("/topapi/v2/user/getuserinfo"), 2);
}
