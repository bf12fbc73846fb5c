//! `wx.config` / `wx.agentConfig` signatures and `qy.login` mini-program codes through `Sso`,
//! against a scripted local server: both tickets and objects, caching, the error table on ticket
//! fetches, the mini-program exchange and its refusals, and the `session_key` never surfacing.
//!
//! The scripted server (`unilogin_testkit::scripted`) asserts the exact requests and answers
//! precise error sequences; the test-kit fakes' own conformance for the same endpoints is in
//! `crates/testkit/tests/jsapi_fake.rs` and the gateway's `tests/jsapi.rs`.

use serde_json::{Value, json};
use unilogin_core::config::{PlatformConfig, StaticConfig};
use unilogin_core::jsapi::{self, TicketKind};
use unilogin_core::{AuthCode, CodeKind, Error, Sso, TenantId};
use unilogin_testkit::scripted::{Route, Stub, route};
use unilogin_wecom::NAME;

const PAGE: &str = "https://h5.example.com/wecom/index.html?from=singlemessage&isappinstalled=0#/x";
const SIGNED_PAGE: &str =
    "https://h5.example.com/wecom/index.html?from=singlemessage&isappinstalled=0";
const SESSION_KEY: &str = "SESSION-KEY-NEVER-SHOWN";

fn tenant() -> TenantId {
    TenantId::new("acme").unwrap()
}

fn sso(stub: &Stub, options: Value) -> Sso {
    let config: PlatformConfig = serde_json::from_value(json!({
        "tenant": "acme", "platform": NAME, "app_key": "wwcorp", "corp_id": "wwcorp",
        "agent_id": "1000002", "app_secret": "s3cret", "options": options,
        "hosts": { "qyapi": stub.base, "oauth": stub.base, "login": stub.base, "open": stub.base },
    }))
    .unwrap();
    Sso::builder(StaticConfig::new(vec![config]))
        .build()
        .unwrap()
}

fn gettoken() -> Route {
    route("GET", "/cgi-bin/gettoken", |r, n| {
        assert_eq!(r.param("corpid").as_deref(), Some("wwcorp"));
        (
            200,
            json!({"errcode": 0, "errmsg": "ok", "access_token": format!("tok-{n}"), "expires_in": 7200}),
        )
    })
}

const CORP_TICKET: &str = "/cgi-bin/get_jsapi_ticket";
const AGENT_TICKET: &str = "/cgi-bin/ticket/get";

fn ticket_routes() -> Vec<Route> {
    vec![
        gettoken(),
        route("GET", CORP_TICKET, |_, n| {
            (
                200,
                json!({"errcode": 0, "errmsg": "ok", "ticket": format!("corp-{n}"), "expires_in": 7200}),
            )
        }),
        route("GET", AGENT_TICKET, |r, n| {
            assert_eq!(r.param("type").as_deref(), Some("agent_config"));
            (
                200,
                json!({"errcode": 0, "errmsg": "ok", "ticket": format!("agent-{n}"), "expires_in": 7200}),
            )
        }),
    ]
}

async fn signed(sso: &Sso, kind: TicketKind) -> Result<unilogin_core::JsapiConfig, Error> {
    let apis = ["selectEnterpriseContact".to_string()];
    sso.jsapi_config(&tenant(), NAME, PAGE, kind, &apis).await
}

#[tokio::test]
async fn wx_config_and_agent_config_use_their_own_tickets() {
    let stub = Stub::start(ticket_routes()).await;
    let sso = sso(&stub, json!({}));
    for _ in 0..3 {
        let c = signed(&sso, TicketKind::Jsapi).await.unwrap();
        let s = &c.signed;
        assert_eq!(s.url.as_str(), SIGNED_PAGE);
        assert_eq!(
            s.signature,
            jsapi::sign("corp-1", &s.nonce, s.timestamp, SIGNED_PAGE)
        );
        assert!(
            (1_600_000_000..10_000_000_000).contains(&s.timestamp),
            "seconds"
        );
        assert_eq!(
            c.config,
            json!({
                "beta": true, "appId": "wwcorp", "timestamp": s.timestamp, "nonceStr": s.nonce,
                "signature": s.signature, "jsApiList": ["selectEnterpriseContact"],
            })
        );
        let a = signed(&sso, TicketKind::AgentConfig).await.unwrap();
        let s = &a.signed;
        assert_eq!(
            s.signature,
            jsapi::sign("agent-1", &s.nonce, s.timestamp, SIGNED_PAGE)
        );
        assert_eq!(
            a.config,
            json!({
                "corpid": "wwcorp", "agentid": "1000002", "timestamp": s.timestamp,
                "nonceStr": s.nonce, "signature": s.signature,
                "jsApiList": ["selectEnterpriseContact"],
            })
        );
        let shown = format!("{c:?} {a:?} {} {}", c.config, a.config);
        assert!(
            !shown.contains("corp-1") && !shown.contains("agent-1"),
            "{shown}"
        );
    }
    // One fetch of each ticket, with the one app token.
    for path in [CORP_TICKET, AGENT_TICKET] {
        let calls = stub.calls(path);
        assert_eq!(calls.len(), 1, "{path}");
        assert_eq!(calls[0].param("access_token").as_deref(), Some("tok-1"));
    }
    assert_eq!(stub.count("/cgi-bin/gettoken"), 1);
}

#[tokio::test]
async fn ticket_errors_follow_the_error_table() {
    let stub = Stub::start(vec![
        gettoken(),
        route("GET", CORP_TICKET, |r, n| {
            match r.param("access_token").as_deref() {
                Some("tok-1") => (
                    200,
                    json!({"errcode": 42001, "errmsg": "access_token expired"}),
                ),
                _ => (
                    200,
                    json!({"errcode": 0, "ticket": format!("corp-{n}"), "expires_in": 7200}),
                ),
            }
        }),
        route("GET", AGENT_TICKET, |_, n| match n {
            1 => (
                200,
                json!({"errcode": 45009, "errmsg": "api freq out of limit"}),
            ),
            _ => (200, json!({"errcode": -1, "errmsg": "system busy"})),
        }),
    ])
    .await;
    let sso = sso(&stub, json!({}));
    // 42001: the app token is replaced once and the ticket fetched with the new one.
    let c = signed(&sso, TicketKind::Jsapi).await.unwrap();
    let s = &c.signed;
    assert_eq!(
        s.signature,
        jsapi::sign("corp-2", &s.nonce, s.timestamp, SIGNED_PAGE)
    );
    assert_eq!(stub.count("/cgi-bin/gettoken"), 2);
    let e = signed(&sso, TicketKind::AgentConfig).await.unwrap_err();
    assert!(matches!(e, Error::RateLimited { .. }), "{e:?}");
    // The cache backs off after a rate limit: the next caller gets the error without a call.
    let e = signed(&sso, TicketKind::AgentConfig).await.unwrap_err();
    assert!(matches!(e, Error::RateLimited { .. }), "{e:?}");
    assert_eq!(stub.count(AGENT_TICKET), 1);
    assert_eq!(stub.count("/cgi-bin/gettoken"), 2);
    // System busy (another replica's cache): transient, not a rejected token.
    let e = signed(&self::sso(&stub, json!({})), TicketKind::AgentConfig)
        .await
        .unwrap_err();
    assert!(
        e.is_transient() && matches!(e, Error::Upstream { .. }),
        "{e:?}"
    );
    assert_eq!(stub.count("/cgi-bin/gettoken"), 3);
}

const JSCODE: &str = "/cgi-bin/miniprogram/jscode2session";

fn mini_routes() -> Vec<Route> {
    vec![
        gettoken(),
        route("GET", JSCODE, |r, _| {
            assert_eq!(r.param("access_token").as_deref(), Some("tok-1"));
            assert_eq!(r.param("grant_type").as_deref(), Some("authorization_code"));
            match r.param("js_code").as_deref() {
                Some("good") => (
                    200,
                    json!({"errcode": 0, "errmsg": "ok", "corpid": "wwcorp", "userid": "zhangsan", "session_key": SESSION_KEY}),
                ),
                Some("other-corp") => (
                    200,
                    json!({"errcode": 0, "corpid": "wwother", "userid": "lisi", "session_key": SESSION_KEY}),
                ),
                Some("malformed") => (
                    200,
                    json!({"errcode": 0, "corpid": "wwcorp", "session_key": SESSION_KEY}),
                ),
                _ => (200, json!({"errcode": 40029, "errmsg": "invalid code"})),
            }
        }),
        route("GET", "/cgi-bin/user/get", |r, _| {
            assert_eq!(r.param("userid").as_deref(), Some("zhangsan"));
            (
                200,
                json!({"errcode": 0, "userid": "zhangsan", "name": "Zhang San", "status": 1}),
            )
        }),
    ]
}

async fn mini_login(sso: &Sso, code: &str) -> Result<unilogin_core::Login, Error> {
    sso.login_with_code_kind(&tenant(), NAME, CodeKind::MiniProgram, &AuthCode::new(code))
        .await
}

#[tokio::test]
async fn qy_login_codes_go_through_jscode2session() {
    let stub = Stub::start(mini_routes()).await;
    let sso = sso(&stub, json!({"mini_program": true}));
    let login = mini_login(&sso, "good").await.unwrap();
    assert_eq!(login.profile.user_id.as_deref(), Some("zhangsan"));
    assert_eq!(login.profile.name.as_deref(), Some("Zhang San"));
    assert!(!format!("{login:?}").contains(SESSION_KEY));
    // Another corp's member, a bad code, a malformed answer.
    let e = mini_login(&sso, "other-corp").await.unwrap_err();
    assert!(matches!(e, Error::NotInTenant { .. }), "{e:?}");
    let e = mini_login(&sso, "reused").await.unwrap_err();
    assert!(matches!(e, Error::InvalidCode { .. }), "{e:?}");
    let e = mini_login(&sso, "malformed").await.unwrap_err();
    let shown = format!("{e} {e:?}");
    assert!(
        shown.contains("userid") && !shown.contains(SESSION_KEY),
        "{shown}"
    );
    assert_eq!(stub.count("/cgi-bin/user/get"), 1);

    // Redirect codes stay redirect-only; mini-program codes need the option.
    let e = sso
        .login_with_code(&tenant(), NAME, &AuthCode::new("good"))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::RedirectLoginRequired { .. }), "{e:?}");
    let off = self::sso(&stub, json!({}));
    let e = mini_login(&off, "good").await.unwrap_err();
    assert!(matches!(e, Error::Unsupported { .. }), "{e:?}");
    assert_eq!(stub.count(JSCODE), 4);
}
