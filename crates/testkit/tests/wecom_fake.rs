//! The WeCom fake behaves like `reference/platforms.md` §4 and `fixtures/wecom/*.json`: real
//! HTTP on loopback with reqwest, as a platform client would talk to it.

mod common;

use std::time::Duration;

use common::{Http, assert_same_shape, fixture, json, location, send, started};
use reqwest::StatusCode;
use serde_json::{Value, json};
use unilogin_testkit::fixtures::wecom as fx;
use unilogin_testkit::wecom::{
    self, DEFAULT_AGENT_ID, DEFAULT_CORP_ID, DEFAULT_CORP_SECRET, DEMO_USER_ID, FakeApp,
    LEGACY_AGENT_ID, LEGACY_CORP_SECRET, OAuthScope, OTHER_CORP_ID, OUTSIDER_USER_ID,
    SECOND_AGENT_ID, SECOND_CORP_SECRET, endpoints as ep,
};
use unilogin_testkit::{EndpointRole, FakePlatform, Fault, FaultError, Times, UNMATCHED};
use url::Url;

const GETTOKEN: &str = "/cgi-bin/gettoken";
const GETUSERINFO: &str = "/cgi-bin/auth/getuserinfo";
const LEGACY_GETUSERINFO: &str = "/cgi-bin/user/getuserinfo";
const USER_GET: &str = "/cgi-bin/user/get";
const GETUSERDETAIL: &str = "/cgi-bin/auth/getuserdetail";
const OAUTH: &str = "/connect/oauth2/authorize";
const SSO: &str = "/wwlogin/sso/login";
const QR_CONNECT: &str = "/wwopen/sso/qrConnect";
const APPROVE: &str = "/wwlogin/sso/approve";

/// An error body: the fixture's errcode, and the message up to WeCom's `, hint:` tail.
fn assert_error(v: &Value, expected: &str) {
    let expected = fixture(expected);
    assert_same_shape(v, &expected);
    assert_eq!(v["errcode"], expected["errcode"], "{v}");
    let head = |m: &Value| {
        m.as_str()
            .unwrap_or("")
            .split(", hint")
            .next()
            .map(str::to_owned)
    };
    assert_eq!(head(&v["errmsg"]), head(&expected["errmsg"]), "{v}");
    assert!(v["errmsg"].as_str().unwrap().contains("more info at"));
}

/// A GET that WeCom answers with HTTP 200 and JSON (errors included).
async fn get(http: &Http, path: &str, q: &[(&str, &str)]) -> Value {
    let (status, v) = json(http.get(path).query(q)).await;
    assert_eq!(status, StatusCode::OK);
    v
}

async fn gettoken(http: &Http, secret: &str) -> Value {
    let q = [("corpid", DEFAULT_CORP_ID), ("corpsecret", secret)];
    get(http, GETTOKEN, &q).await
}

async fn token(http: &Http, secret: &str) -> String {
    gettoken(http, secret).await["access_token"]
        .as_str()
        .expect("token")
        .to_owned()
}

async fn getuserinfo(http: &Http, token: &str, code: &str) -> Value {
    get(
        http,
        GETUSERINFO,
        &[("access_token", token), ("code", code)],
    )
    .await
}

async fn user_get(http: &Http, token: &str, user: &str) -> Value {
    get(http, USER_GET, &[("access_token", token), ("userid", user)]).await
}

async fn getuserdetail(http: &Http, token: &str, body: &str) -> Value {
    let req = http.post(GETUSERDETAIL).query(&[("access_token", token)]);
    let req = req.header("content-type", "application/json");
    json(req.body(body.to_owned())).await.1
}

#[tokio::test]
async fn privateinfo_login_matches_the_fixtures() {
    let (fake, http) = started(wecom::start()).await;
    let t = gettoken(&http, DEFAULT_CORP_SECRET).await;
    assert_same_shape(&t, &fixture(fx::GETTOKEN));
    assert_eq!(t["expires_in"], 7200);
    let token = t["access_token"].as_str().unwrap().to_owned();

    let agent = Some(DEFAULT_AGENT_ID);
    let code = fake.issue_oauth_code(agent, DEMO_USER_ID, OAuthScope::PrivateInfo);
    let info = getuserinfo(&http, &token, &code).await;
    assert_same_shape(&info, &fixture(fx::AUTH_GETUSERINFO_MEMBER));
    assert_eq!(info["userid"], DEMO_USER_ID);
    let ticket = info["user_ticket"].as_str().unwrap().to_owned();

    // A new app: user/get has no sensitive fields.
    let member = user_get(&http, &token, DEMO_USER_ID).await;
    for absent in [
        "mobile",
        "email",
        "avatar",
        "thumb_avatar",
        "gender",
        "biz_mail",
        "address",
    ] {
        assert!(member.get(absent).is_none(), "{absent} in {member}");
    }
    assert_eq!(member["name"], "Zhang San");

    let body = json!({ "user_ticket": ticket }).to_string();
    let detail = getuserdetail(&http, &token, &body).await;
    assert_eq!(detail, fixture(fx::AUTH_GETUSERDETAIL));
    assert_eq!(fake.calls(ep::AUTH_GETUSERDETAIL), 1);
}

#[tokio::test]
async fn a_legacy_app_sees_the_fixture_member_document() {
    let (_fake, http) = started(wecom::start()).await;
    let token = token(&http, LEGACY_CORP_SECRET).await;
    let member = user_get(&http, &token, DEMO_USER_ID).await;
    let fixture = fixture(fx::USER_GET);
    for (k, v) in fixture.as_object().unwrap() {
        let got = member
            .get(k)
            .unwrap_or_else(|| panic!("{k} missing in {member}"));
        match k.as_str() {
            // Fixture values the fixtures themselves disagree on, or that the fake does not model.
            "order" | "is_leader_in_dept" | "address" => assert_same_shape(got, v),
            _ => assert_eq!(got, v, "{k}"),
        }
    }
}

#[tokio::test]
async fn non_members_and_the_legacy_exchange_have_the_fixture_shapes() {
    let (fake, http) = started(wecom::start()).await;
    let token = token(&http, DEFAULT_CORP_SECRET).await;
    let code = fake.issue_h5_code(OUTSIDER_USER_ID);
    let info = getuserinfo(&http, &token, &code).await;
    assert_same_shape(&info, &fixture(fx::AUTH_GETUSERINFO_NON_MEMBER));
    assert_eq!(info["openid"], "fake_openid_0001");
    // Outsiders are not members: user/get does not know them.
    let v = user_get(&http, &token, OUTSIDER_USER_ID).await;
    assert_eq!(v["errcode"], 60111);

    let code = fake.issue_h5_code(DEMO_USER_ID);
    let q = [("access_token", token.as_str()), ("code", &code)];
    let v = get(&http, LEGACY_GETUSERINFO, &q).await;
    assert_same_shape(&v, &fixture(fx::USER_GETUSERINFO_LEGACY));
    assert_eq!(v["UserId"], DEMO_USER_ID);
    let code = fake.issue_h5_code(OUTSIDER_USER_ID);
    let q = [("access_token", token.as_str()), ("code", &code)];
    let v = get(&http, LEGACY_GETUSERINFO, &q).await;
    assert!(v.get("OpenId").is_some() && v.get("UserId").is_none());
}

#[tokio::test]
async fn tokens_are_per_app_reused_while_live_and_expire() {
    let (fake, http) = started(wecom::start()).await;
    let a = token(&http, DEFAULT_CORP_SECRET).await;
    let b = token(&http, SECOND_CORP_SECRET).await;
    assert_ne!(a, b, "two apps of one corp must not share a token");
    assert_eq!(a, token(&http, DEFAULT_CORP_SECRET).await);
    fake.advance_clock(Duration::from_secs(7000));
    let t = gettoken(&http, DEFAULT_CORP_SECRET).await;
    assert_eq!(t["access_token"], a.as_str());
    assert!(t["expires_in"].as_u64().unwrap() <= 200, "{t}");
    fake.advance_clock(Duration::from_secs(201));
    let v = user_get(&http, &a, DEMO_USER_ID).await;
    assert_error(&v, fx::ERROR_42001_TOKEN_EXPIRED);
    assert_ne!(a, token(&http, DEFAULT_CORP_SECRET).await);

    let v = user_get(&http, "fake_unknown_token", DEMO_USER_ID).await;
    assert_error(&v, fx::ERROR_40014_INVALID_TOKEN);
    let fresh = token(&http, DEFAULT_CORP_SECRET).await;
    fake.revoke_app_tokens();
    assert_eq!(
        user_get(&http, &fresh, DEMO_USER_ID).await["errcode"],
        40014
    );
    let v = get(&http, USER_GET, &[("userid", DEMO_USER_ID)]).await;
    assert_eq!(v["errcode"], 41001);
}

#[tokio::test]
async fn gettoken_validates_the_corp_and_the_secret() {
    let (fake, http) = started(wecom::start()).await;
    let other = FakeApp::new(OTHER_CORP_ID, "1000002", "fake_other_corp_secret");
    fake.add_app(other);
    let cases: [(&[(&str, &str)], i64); 5] = [
        (&[("corpsecret", DEFAULT_CORP_SECRET)], 41002),
        (&[("corpid", DEFAULT_CORP_ID)], 41004),
        (&[("corpid", "wwnosuchcorp"), ("corpsecret", "x")], 40013),
        (
            &[("corpid", DEFAULT_CORP_ID), ("corpsecret", "wrong")],
            40001,
        ),
        (
            &[
                ("corpid", DEFAULT_CORP_ID),
                ("corpsecret", "fake_other_corp_secret"),
            ],
            40091,
        ),
    ];
    for (q, code) in cases {
        let v = get(&http, GETTOKEN, q).await;
        assert_eq!(v["errcode"], code, "{q:?}: {v}");
        assert!(v.get("access_token").is_none());
    }
}

#[tokio::test]
async fn codes_are_single_use_bound_to_the_app_and_expire() {
    let (fake, http) = started(wecom::start()).await;
    let a = token(&http, DEFAULT_CORP_SECRET).await;
    let b = token(&http, SECOND_CORP_SECRET).await;

    // Another app's code is refused without being burnt.
    let code = fake.issue_oauth_code(Some(SECOND_AGENT_ID), DEMO_USER_ID, OAuthScope::Base);
    let v = getuserinfo(&http, &a, &code).await;
    assert_error(&v, fx::ERROR_40029_INVALID_CODE);
    // A bad token does not burn it either.
    assert_eq!(
        getuserinfo(&http, "fake_bad", &code).await["errcode"],
        40014
    );
    let v = getuserinfo(&http, &b, &code).await;
    assert_eq!(v["userid"], DEMO_USER_ID);
    assert_eq!(getuserinfo(&http, &b, &code).await["errcode"], 40029);

    // A link without agentid: any app of the corp, never a ticket.
    let code = fake.issue_oauth_code(None, DEMO_USER_ID, OAuthScope::PrivateInfo);
    let v = getuserinfo(&http, &a, &code).await;
    assert_eq!(v["userid"], DEMO_USER_ID);
    assert!(v.get("user_ticket").is_none());

    let code = fake.issue_h5_code(DEMO_USER_ID);
    fake.advance_clock(Duration::from_secs(301));
    let a = token(&http, DEFAULT_CORP_SECRET).await;
    assert_eq!(getuserinfo(&http, &a, &code).await["errcode"], 40029);
    assert_eq!(getuserinfo(&http, &a, "forged").await["errcode"], 40029);
    let v = get(&http, GETUSERINFO, &[("access_token", &a)]).await;
    assert_eq!(v["errcode"], 41008);
}

#[tokio::test]
async fn user_tickets_expire_belong_to_one_app_and_need_a_json_body() {
    let (fake, http) = started(wecom::start()).await;
    let a = token(&http, DEFAULT_CORP_SECRET).await;
    let b = token(&http, SECOND_CORP_SECRET).await;
    let private_code = || {
        let agent = Some(DEFAULT_AGENT_ID);
        fake.issue_oauth_code(agent, DEMO_USER_ID, OAuthScope::PrivateInfo)
    };
    let ticket = getuserinfo(&http, &a, &private_code()).await["user_ticket"].clone();
    let body = json!({ "user_ticket": ticket }).to_string();
    let (own, other, ticket_body) = (a.as_str(), b.as_str(), body.as_str());
    for (token, body, errcode) in [
        (other, ticket_body, 84015),
        (own, "user_ticket=x", 47001),
        (own, "{}", 84015),
        // Reusable while it lives.
        (own, ticket_body, 0),
        (own, ticket_body, 0),
    ] {
        let v = getuserdetail(&http, token, body).await;
        assert_eq!(v["errcode"], errcode, "{body}");
    }
    fake.advance_clock(Duration::from_secs(1801));
    let a = token(&http, DEFAULT_CORP_SECRET).await;
    let v = getuserdetail(&http, &a, &body).await;
    assert_error(&v, fx::ERROR_84014_USER_TICKET_EXPIRED);

    // The admin did not enable the sensitive fields: only `userid`.
    let mut app = fake.app(DEFAULT_CORP_ID, DEFAULT_AGENT_ID).unwrap();
    app.sensitive_fields = false;
    fake.add_app(app);
    let ticket = getuserinfo(&http, &a, &private_code()).await["user_ticket"].clone();
    let body = json!({ "user_ticket": ticket }).to_string();
    assert_eq!(
        getuserdetail(&http, &a, &body).await,
        json!({"errcode": 0, "errmsg": "ok", "userid": DEMO_USER_ID})
    );
}

/// Opens a page and submits its demo-user Approve form; returns the 303 target or the error
/// page (status, body).
async fn approve_via(http: &Http, path: &str, q: &[(&str, &str)]) -> Result<Url, (u16, String)> {
    let resp = send(http.get(path).query(q)).await;
    let status = resp.status().as_u16();
    let html = resp.text().await.unwrap();
    if status != 200 {
        return Err((status, html));
    }
    let start = html
        .find(&format!("data-user-id=\"{DEMO_USER_ID}\""))
        .expect("listed");
    let end = start + html[start..].find("</form>").unwrap();
    let fields: Vec<(String, String)> = html[start..end]
        .split("<input type=\"hidden\" ")
        .skip(1)
        .map(|i| {
            let attr = |n: &str| {
                i.split(&format!("{n}=\""))
                    .nth(1)
                    .unwrap()
                    .split('"')
                    .next()
                    .unwrap()
                    .replace("&amp;", "&")
            };
            (attr("name"), attr("value"))
        })
        .collect();
    let resp = send(http.post(APPROVE).form(&fields)).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    Ok(location(&resp))
}

fn code_of(url: &Url) -> String {
    url.query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned()
}

fn has_state(url: &Url, state: &str) -> bool {
    url.query_pairs().any(|(k, v)| k == "state" && v == state)
}

#[tokio::test]
async fn pages_validate_their_parameters_and_redirect_with_code_and_state() {
    let (_fake, http) = started(wecom::start()).await;
    let cb = "https://app.acme.example/cb";
    let oauth = |scope: &'static str, state: &'static str, agent: Option<&'static str>| {
        let mut q = vec![
            ("appid", DEFAULT_CORP_ID),
            ("redirect_uri", cb),
            ("response_type", "code"),
            ("scope", scope),
            ("state", state),
        ];
        q.extend(agent.map(|a| ("agentid", a)));
        q
    };
    let q = oauth("snsapi_privateinfo", "abc123", Some(DEFAULT_AGENT_ID));
    let target = approve_via(&http, OAUTH, &q).await.expect("approved");
    assert!(target.as_str().starts_with(cb));
    assert!(has_state(&target, "abc123"));
    let a = token(&http, DEFAULT_CORP_SECRET).await;
    let info = getuserinfo(&http, &a, &code_of(&target)).await;
    assert!(info.get("user_ticket").is_some(), "{info}");

    // privateinfo without agentid is silently snsapi_base.
    let q = oauth("snsapi_privateinfo", "s", None);
    let target = approve_via(&http, OAUTH, &q).await.expect("approved");
    let info = getuserinfo(&http, &a, &code_of(&target)).await;
    assert!(info.get("user_ticket").is_none(), "{info}");

    let q = oauth("snsapi_base", "has-dash", None);
    let (status, html) = approve_via(&http, OAUTH, &q).await.expect_err("bad state");
    assert_eq!(status, 400);
    assert!(html.contains("84025"), "{html}");
    let q = oauth("snsapi_login", "s", None);
    let (status, _) = approve_via(&http, OAUTH, &q).await.expect_err("bad scope");
    assert_eq!(status, 400);

    let sso = |login_type: &'static str, agent: Option<&'static str>| {
        let mut q = vec![
            ("login_type", login_type),
            ("appid", DEFAULT_CORP_ID),
            ("redirect_uri", cb),
            ("state", "any-state_OK"),
        ];
        q.extend(agent.map(|a| ("agentid", a)));
        q
    };
    let q = sso("CorpApp", Some(SECOND_AGENT_ID));
    let target = approve_via(&http, SSO, &q).await.expect("web login");
    assert!(has_state(&target, "any-state_OK"));
    let b = token(&http, SECOND_CORP_SECRET).await;
    let info = getuserinfo(&http, &b, &code_of(&target)).await;
    assert_eq!(info["userid"], DEMO_USER_ID);
    assert!(
        info.get("user_ticket").is_none(),
        "web logins never get a ticket"
    );
    for q in [
        sso("CorpApp", None),
        sso("Personal", Some(DEFAULT_AGENT_ID)),
        sso("CorpApp", Some("999")),
    ] {
        assert!(approve_via(&http, SSO, &q).await.is_err(), "{q:?}");
    }

    let qr = [
        ("appid", DEFAULT_CORP_ID),
        ("agentid", LEGACY_AGENT_ID),
        ("redirect_uri", cb),
        ("state", "s"),
    ];
    let target = approve_via(&http, QR_CONNECT, &qr).await.expect("qr");
    let l = token(&http, LEGACY_CORP_SECRET).await;
    let info = getuserinfo(&http, &l, &code_of(&target)).await;
    assert_eq!(info["userid"], DEMO_USER_ID);
}

#[tokio::test]
async fn an_untrusted_redirect_domain_fails_the_exchange_with_50001() {
    let (_fake, http) = started(wecom::start()).await;
    let q = [
        ("appid", DEFAULT_CORP_ID),
        ("redirect_uri", "https://evil.invalid/cb"),
        ("response_type", "code"),
        ("scope", "snsapi_base"),
        ("agentid", DEFAULT_AGENT_ID),
    ];
    let target = approve_via(&http, OAUTH, &q).await.expect("page");
    let a = token(&http, DEFAULT_CORP_SECRET).await;
    let v = getuserinfo(&http, &a, &code_of(&target)).await;
    assert_error(&v, fx::ERROR_50001_REDIRECT_DOMAIN);
}

#[tokio::test]
async fn faults_render_in_wecom_envelopes() {
    let (fake, http) = started(wecom::start()).await;
    for (fault, expected) in [
        (Fault::IpNotAllowed, fx::ERROR_60020_IP_NOT_ALLOWED),
        (Fault::RateLimited, fx::ERROR_45009_RATE_LIMITED),
        (Fault::RateLimitPage, fx::ERROR_45009_RATE_LIMITED),
        (Fault::TokenInvalid, fx::ERROR_40014_INVALID_TOKEN),
        (Fault::CodeInvalid, fx::ERROR_40029_INVALID_CODE),
        (Fault::code(42001), fx::ERROR_42001_TOKEN_EXPIRED),
    ] {
        fake.inject(ep::GETTOKEN, fault.clone()).unwrap();
        let v = gettoken(&http, DEFAULT_CORP_SECRET).await;
        assert_error(&v, expected);
    }
    let t = token(&http, DEFAULT_CORP_SECRET).await;
    for (fault, errcode) in [(Fault::PermissionDenied, 48002), (Fault::SystemBusy, -1)] {
        fake.inject(ep::USER_GET, fault).unwrap();
        let v = user_get(&http, &t, DEMO_USER_ID).await;
        assert_eq!(v["errcode"], errcode);
    }

    for (endpoint, fault) in [
        (ep::USER_GET, Fault::code("InvalidAuthentication")),
        (ep::USER_GET, Fault::code_with_sub(88, 40014)),
        (ep::SSO_LOGIN, Fault::TokenInvalid),
    ] {
        assert!(matches!(
            fake.inject(endpoint, fault),
            Err(FaultError::Unsupported { .. })
        ));
    }
    assert!(fake.inject(ep::SSO_LOGIN, Fault::HttpStatus(502)).is_ok());
    assert!(matches!(
        fake.inject("nope", Fault::Hang),
        Err(FaultError::UnknownEndpoint(_))
    ));

    // A faulted request never reaches the endpoint: the code survives.
    fake.clear_faults();
    let code = fake.issue_h5_code(DEMO_USER_ID);
    fake.inject_fault(ep::AUTH_GETUSERINFO, Fault::RateLimited, Times::N(2))
        .unwrap();
    for _ in 0..2 {
        assert_eq!(getuserinfo(&http, &t, &code).await["errcode"], 45009);
    }
    let v = getuserinfo(&http, &t, &code).await;
    assert_eq!(v["userid"], DEMO_USER_ID);
}

#[tokio::test]
async fn wrong_methods_and_unknown_paths_are_answered_and_counted() {
    let (fake, http) = started(wecom::start()).await;
    assert_eq!(json(http.post(GETTOKEN)).await.1["errcode"], 43001);
    assert_eq!(json(http.get(GETUSERDETAIL)).await.1["errcode"], 43002);
    let resp = send(http.get("/cgi-bin/nope")).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(fake.calls(ep::GETTOKEN), 1);
    assert_eq!(fake.calls(ep::AUTH_GETUSERDETAIL), 1);
    assert_eq!(fake.calls(UNMATCHED), 1);
}

#[tokio::test]
async fn the_fake_platform_contract() {
    let (fake, _) = started(wecom::start()).await;
    let p: &dyn FakePlatform = &fake;
    assert_eq!(p.name(), "wecom");
    let creds = p.credentials();
    assert_eq!(creds.app_key, DEFAULT_CORP_ID);
    assert_eq!(creds.corp_id, DEFAULT_CORP_ID);
    assert_eq!(creds.agent_id, DEFAULT_AGENT_ID);
    assert!(!format!("{creds:?}").contains(DEFAULT_CORP_SECRET));
    assert_eq!(p.endpoints_for(EndpointRole::AppToken), [ep::GETTOKEN]);
    assert_eq!(p.endpoints_for(EndpointRole::UserDetail), [ep::USER_GET]);
    assert!(p.endpoints_for(EndpointRole::WebUserInfo).is_empty());
    assert!(fake.use_app(LEGACY_AGENT_ID));
    assert_eq!(p.credentials().app_secret, LEGACY_CORP_SECRET);
    assert!(!fake.use_app("42"));
    assert_eq!(p.credentials().agent_id, LEGACY_AGENT_ID);
    // Every endpoint name is unique and addressable.
    for e in p.endpoints() {
        assert!(fake.inject(e, Fault::Hang).is_ok(), "{e}");
    }
    assert!(!format!("{:?}", FakeApp::default_app()).contains(DEFAULT_CORP_SECRET));
}
