//! `h5sdk.config` signatures and `tt.login` mini-program codes through `Sso`, against a
//! scripted local server: the object's exact shape, millisecond timestamps, caching, a token-invalid ticket
//! fetch, `tokenLoginValidate`'s tokens, fields and error codes, and the `session_key` never
//! surfacing.
//!
//! The scripted server (`unilogin_testkit::scripted`) asserts the exact requests and answers
//! precise error sequences; the test-kit fakes' own conformance for the same endpoints is in
//! `crates/testkit/tests/jsapi_fake.rs` and the gateway's `tests/jsapi.rs`.

use serde_json::{Value, json};
use unilogin_core::config::{PlatformConfig, StaticConfig};
use unilogin_core::jsapi::{self, TicketKind};
use unilogin_core::{AuthCode, CodeKind, Error, Sso, TenantId};
use unilogin_feishu::NAME;
use unilogin_testkit::scripted::{Route, Stub, route};

const PAGE: &str = "https://h5.example.com/app/?a=1&b=%2F#/tab";
const SIGNED_PAGE: &str = "https://h5.example.com/app/?a=1&b=%2F";
const SESSION_KEY: &str = "SESSION-KEY-NEVER-SHOWN";

fn tenant() -> TenantId {
    TenantId::new("acme").unwrap()
}

fn sso(stub: &Stub, options: Value) -> Sso {
    let config: PlatformConfig = serde_json::from_value(json!({
        "tenant": "acme", "platform": NAME, "app_key": "cli_a1", "app_secret": "s3cret",
        "corp_id": "tk_acme", "options": options,
        "hosts": { "open": stub.base, "accounts": stub.base },
    }))
    .unwrap();
    Sso::builder(StaticConfig::new(vec![config]))
        .build()
        .unwrap()
}

/// Tenant tokens `t-<n>`, app tokens `a-<n>`.
fn token_routes() -> Vec<Route> {
    vec![
        route(
            "POST",
            "/open-apis/auth/v3/tenant_access_token/internal",
            |_, n| {
                (
                    200,
                    json!({"code": 0, "msg": "ok", "tenant_access_token": format!("t-{n}"), "expire": 7200}),
                )
            },
        ),
        route(
            "POST",
            "/open-apis/auth/v3/app_access_token/internal",
            |_, n| {
                (
                    200,
                    json!({"code": 0, "msg": "ok", "app_access_token": format!("a-{n}"), "expire": 7200}),
                )
            },
        ),
    ]
}

const TICKET: &str = "/open-apis/jssdk/ticket/get";

async fn h5sdk_config(sso: &Sso) -> Result<unilogin_core::JsapiConfig, Error> {
    sso.jsapi_config(
        &tenant(),
        NAME,
        PAGE,
        TicketKind::Jsapi,
        &["getUserInfo".to_string()],
    )
    .await
}

#[tokio::test]
async fn jssdk_ticket_signs_h5sdk_config_in_milliseconds() {
    let mut routes = token_routes();
    routes.push(route("POST", TICKET, |_, n| {
        (200, json!({"code": 0, "msg": "ok", "data": {"ticket": format!("ticket-{n}"), "expire_in": 7200}}))
    }));
    let stub = Stub::start(routes).await;
    let sso = sso(&stub, json!({}));
    for _ in 0..3 {
        let c = h5sdk_config(&sso).await.unwrap();
        let s = &c.signed;
        assert_eq!(s.url.as_str(), SIGNED_PAGE);
        assert_eq!(
            s.signature,
            jsapi::sign("ticket-1", &s.nonce, s.timestamp, SIGNED_PAGE)
        );
        assert!(
            s.timestamp > 1_600_000_000_000,
            "milliseconds: {}",
            s.timestamp
        );
        assert_eq!(
            c.config,
            json!({
                "appId": "cli_a1", "timestamp": s.timestamp, "nonceStr": s.nonce,
                "signature": s.signature, "jsApiList": ["getUserInfo"],
            })
        );
        assert!(
            c.config["timestamp"].is_u64(),
            "a JSON number, never a string"
        );
        assert!(!format!("{c:?}").contains("ticket-1"));
    }
    let calls = stub.calls(TICKET);
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].header("authorization"), Some("Bearer t-1"));
    assert_eq!(
        stub.count("/open-apis/auth/v3/app_access_token/internal"),
        0
    );
}

#[tokio::test]
async fn ticket_errors_follow_the_error_table() {
    let mut routes = token_routes();
    routes.push(route("POST", TICKET, |r, n| {
        match r.header("authorization") {
            Some("Bearer t-1") => (
                400,
                json!({"code": 99991663, "msg": "Invalid access token"}),
            ),
            Some("Bearer t-2") => (
                429,
                json!({"code": 99991400, "msg": "request trigger frequency limit"}),
            ),
            _ => (
                200,
                json!({"code": 0, "data": {"ticket": format!("ticket-{n}"), "expire_in": 7200}}),
            ),
        }
    }));
    let stub = Stub::start(routes).await;
    let sso = sso(&stub, json!({}));
    // t-1 rejected → t-2 (once), which is rate limited: the error, no third token.
    let e = h5sdk_config(&sso).await.unwrap_err();
    assert!(matches!(e, Error::RateLimited { .. }), "{e:?}");
    assert_eq!(
        stub.count("/open-apis/auth/v3/tenant_access_token/internal"),
        2
    );
    assert_eq!(stub.count(TICKET), 2);
    let e = sso
        .jsapi_config(&tenant(), NAME, PAGE, TicketKind::AgentConfig, &[])
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Unsupported { .. }), "{e:?}");
}

const MINA: &str = "/open-apis/mina/v2/tokenLoginValidate";

fn mina_routes(
    mina: impl Fn(&unilogin_testkit::scripted::Seen, usize) -> (u16, Value) + Send + Sync + 'static,
) -> Vec<Route> {
    let mut routes = token_routes();
    routes.push(route("POST", MINA, mina));
    routes.push(route("GET", "/open-apis/contact/v3/users/ou_1", |r, _| {
        assert_eq!(r.header("authorization"), Some("Bearer t-1"));
        (
            200,
            json!({"code": 0, "data": {"user": {
                "open_id": "ou_1", "union_id": "on_real", "user_id": "u1", "name": "Li Si",
            }}}),
        )
    }));
    routes
}

fn mina_ok(code: &str) -> Value {
    json!({"code": 0, "msg": "success", "data": {
        "open_id": "ou_1", "employee_id": "u1", "union_id": "on_deprecated",
        "session_key": SESSION_KEY, "tenant_key": "tk_acme", "access_token": format!("u-{code}"),
        "expires_in": 4_102_444_800u64, "refresh_token": "ur-1",
    }})
}

async fn mini_login(sso: &Sso, code: &str) -> Result<unilogin_core::Login, Error> {
    sso.login_with_code_kind(&tenant(), NAME, CodeKind::MiniProgram, &AuthCode::new(code))
        .await
}

#[tokio::test]
async fn tt_login_codes_are_validated_with_the_app_access_token() {
    let stub = Stub::start(mina_routes(|r, _| {
        assert_eq!(r.header("authorization"), Some("Bearer a-1"));
        let code = serde_json::from_str::<Value>(&r.body).unwrap()["code"].clone();
        (200, mina_ok(code.as_str().unwrap()))
    }))
    .await;
    let sso = sso(&stub, json!({"mini_program": true}));
    let login = mini_login(&sso, "c1").await.unwrap();
    // The real union id, from the directory; never the deprecated one.
    assert_eq!(login.profile.union_id.as_deref(), Some("on_real"));
    assert_eq!(login.profile.open_id.as_deref(), Some("ou_1"));
    assert_eq!(login.profile.user_id.as_deref(), Some("u1"));
    assert_eq!(login.profile.name.as_deref(), Some("Li Si"));
    let token = login.user_token.clone().expect("the user's token");
    assert_eq!(token.access_token.expose(), "u-c1");
    assert_eq!(token.refresh_token.unwrap().expose(), "ur-1");
    // `expires_in` was an absolute time (2100-01-01): decades left, not 130 years.
    let left = token.expires_in.unwrap().as_secs();
    assert!(
        left < 4_102_444_800 - 1_700_000_000 && left > 365 * 86_400,
        "{left}"
    );
    assert!(!format!("{login:?}").contains(SESSION_KEY));
    let calls = stub.calls(MINA);
    assert_eq!(
        serde_json::from_str::<Value>(&calls[0].body).unwrap(),
        json!({"code": "c1"})
    );
    // The app token is cached for the next code.
    mini_login(&sso, "c2").await.unwrap();
    assert_eq!(
        stub.count("/open-apis/auth/v3/app_access_token/internal"),
        1
    );

    // Without `options.mini_program`, refused before any call.
    let off = self::sso(&stub, json!({}));
    let e = mini_login(&off, "c3").await.unwrap_err();
    assert!(matches!(e, Error::Unsupported { .. }), "{e:?}");
    assert_eq!(stub.count(MINA), 2);
}

#[tokio::test]
async fn tt_login_error_codes() {
    let stub = Stub::start(mina_routes(|r, _| {
        let code: Value = serde_json::from_str(&r.body).unwrap();
        match (code["code"].as_str().unwrap(), r.header("authorization")) {
            ("stale", Some("Bearer a-1")) => {
                (200, json!({"code": 10202, "msg": "access token invalid"}))
            }
            ("stale", _) => (200, mina_ok("stale")),
            ("reused", _) => (200, json!({"code": 10213, "msg": "code is invalid"})),
            ("hidden", _) => (200, json!({"code": 10228, "msg": "no visibility"})),
            (_, _) => (
                200,
                json!({"code": 0, "data": {"session_key": SESSION_KEY, "tenant_key": "tk_acme"}}),
            ),
        }
    }))
    .await;
    let sso = sso(&stub, json!({"mini_program": true}));
    // 10202: the app token is replaced and the code tried once more.
    mini_login(&sso, "stale").await.unwrap();
    assert_eq!(
        stub.count("/open-apis/auth/v3/app_access_token/internal"),
        2
    );
    let e = mini_login(&sso, "reused").await.unwrap_err();
    assert!(matches!(e, Error::InvalidCode { .. }), "{e:?}");
    let e = mini_login(&sso, "hidden").await.unwrap_err();
    assert!(matches!(e, Error::Misconfigured { .. }), "{e:?}");
    // A malformed answer: the error names what is missing, never the session key.
    let e = mini_login(&sso, "malformed").await.unwrap_err();
    assert!(matches!(e, Error::BadResponse { .. }), "{e:?}");
    let shown = format!("{e} {e:?}");
    assert!(
        shown.contains("open_id") && !shown.contains(SESSION_KEY),
        "{shown}"
    );
}
