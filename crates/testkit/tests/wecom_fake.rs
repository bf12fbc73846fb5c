//! The WeCom fake behaves like `reference/platforms.md` §4 and `fixtures/wecom/*.json`: real
//! HTTP on loopback with reqwest, as a platform client would talk to it.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::redirect::Policy;
use serde_json::{Value, json};
use unilogin_testkit::wecom::{
    self, DEFAULT_AGENT_ID, DEFAULT_CORP_ID, DEFAULT_CORP_SECRET, DEMO_USER_ID, FakeApp, FakeWeCom,
    LEGACY_AGENT_ID, LEGACY_CORP_SECRET, OAuthScope, OTHER_CORP_ID, OUTSIDER_USER_ID,
    SECOND_AGENT_ID, SECOND_CORP_SECRET, endpoints as ep,
};
use unilogin_testkit::{EndpointRole, FakePlatform, Fault, FaultError, Times, UNMATCHED};

macro_rules! fixture {
    ($name:literal) => {
        serde_json::from_str::<Value>(include_str!(concat!("fixtures/wecom/", $name)))
            .expect("fixture is JSON")
    };
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

/// Same keys and the same JSON kinds as the fixture, recursively.
fn assert_same_shape(actual: &Value, expected: &Value, path: &str) {
    match (actual, expected) {
        (Value::Object(a), Value::Object(e)) => {
            let mut ak: Vec<_> = a.keys().collect();
            let mut ek: Vec<_> = e.keys().collect();
            ak.sort();
            ek.sort();
            assert_eq!(ak, ek, "keys differ at {path}");
            for (k, ev) in e {
                assert_same_shape(&a[k], ev, &format!("{path}.{k}"));
            }
        }
        (Value::Array(a), Value::Array(e)) => {
            if let (Some(af), Some(ef)) = (a.first(), e.first()) {
                assert_same_shape(af, ef, &format!("{path}[0]"));
            }
        }
        (a, e) => assert_eq!(
            std::mem::discriminant(a),
            std::mem::discriminant(e),
            "kind differs at {path}: {a} vs {e}"
        ),
    }
}

/// An error body: the fixture's errcode, and the message up to WeCom's `, hint:` tail.
fn assert_error(v: &Value, fixture: &Value) {
    assert_same_shape(v, fixture, "$");
    assert_eq!(v["errcode"], fixture["errcode"], "{v}");
    let head = |m: &Value| {
        m.as_str()
            .unwrap_or("")
            .split(", hint")
            .next()
            .map(str::to_owned)
    };
    assert_eq!(head(&v["errmsg"]), head(&fixture["errmsg"]), "{v}");
    assert!(v["errmsg"].as_str().unwrap().contains("more info at"));
}

async fn get(http: &reqwest::Client, fake: &FakeWeCom, path: &str, q: &[(&str, &str)]) -> Value {
    let resp = http
        .get(format!("{}{path}", fake.base_url()))
        .query(q)
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), StatusCode::OK);
    resp.json().await.expect("JSON")
}

async fn gettoken(http: &reqwest::Client, fake: &FakeWeCom, secret: &str) -> Value {
    get(
        http,
        fake,
        "/cgi-bin/gettoken",
        &[("corpid", DEFAULT_CORP_ID), ("corpsecret", secret)],
    )
    .await
}

async fn token(http: &reqwest::Client, fake: &FakeWeCom, secret: &str) -> String {
    gettoken(http, fake, secret).await["access_token"]
        .as_str()
        .expect("token")
        .to_owned()
}

async fn getuserinfo(http: &reqwest::Client, fake: &FakeWeCom, token: &str, code: &str) -> Value {
    get(
        http,
        fake,
        "/cgi-bin/auth/getuserinfo",
        &[("access_token", token), ("code", code)],
    )
    .await
}

async fn user_get(http: &reqwest::Client, fake: &FakeWeCom, token: &str, user: &str) -> Value {
    get(
        http,
        fake,
        "/cgi-bin/user/get",
        &[("access_token", token), ("userid", user)],
    )
    .await
}

async fn getuserdetail(http: &reqwest::Client, fake: &FakeWeCom, token: &str, body: &str) -> Value {
    http.post(format!("{}/cgi-bin/auth/getuserdetail", fake.base_url()))
        .query(&[("access_token", token)])
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("JSON")
}

#[tokio::test]
async fn privateinfo_login_matches_the_fixtures() {
    let fake = wecom::start().await;
    let http = client();
    let t = gettoken(&http, &fake, DEFAULT_CORP_SECRET).await;
    assert_same_shape(&t, &fixture!("gettoken.json"), "$");
    assert_eq!(t["expires_in"], 7200);
    let token = t["access_token"].as_str().unwrap().to_owned();

    let code = fake.issue_oauth_code(
        Some(DEFAULT_AGENT_ID),
        DEMO_USER_ID,
        OAuthScope::PrivateInfo,
    );
    let info = getuserinfo(&http, &fake, &token, &code).await;
    assert_same_shape(&info, &fixture!("auth_getuserinfo_member.json"), "$");
    assert_eq!(info["userid"], DEMO_USER_ID);
    let ticket = info["user_ticket"].as_str().unwrap().to_owned();

    // A new app: user/get has no sensitive fields.
    let member = user_get(&http, &fake, &token, DEMO_USER_ID).await;
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

    let detail = getuserdetail(
        &http,
        &fake,
        &token,
        &json!({ "user_ticket": ticket }).to_string(),
    )
    .await;
    assert_eq!(detail, fixture!("auth_getuserdetail.json"));
    assert_eq!(fake.calls(ep::AUTH_GETUSERDETAIL), 1);
}

#[tokio::test]
async fn a_legacy_app_sees_the_fixture_member_document() {
    let fake = wecom::start().await;
    let http = client();
    let token = token(&http, &fake, LEGACY_CORP_SECRET).await;
    let member = user_get(&http, &fake, &token, DEMO_USER_ID).await;
    let fixture = fixture!("user_get.json");
    for (k, v) in fixture.as_object().unwrap() {
        let got = member
            .get(k)
            .unwrap_or_else(|| panic!("{k} missing in {member}"));
        match k.as_str() {
            // Fixture values the fixtures themselves disagree on, or that the fake does not model.
            "order" | "is_leader_in_dept" | "address" => {
                assert_same_shape(got, v, k);
            }
            _ => assert_eq!(got, v, "{k}"),
        }
    }
}

#[tokio::test]
async fn non_members_and_the_legacy_exchange_have_the_fixture_shapes() {
    let fake = wecom::start().await;
    let http = client();
    let token = token(&http, &fake, DEFAULT_CORP_SECRET).await;
    let code = fake.issue_h5_code(OUTSIDER_USER_ID);
    let info = getuserinfo(&http, &fake, &token, &code).await;
    assert_same_shape(&info, &fixture!("auth_getuserinfo_non_member.json"), "$");
    assert_eq!(info["openid"], "fake_openid_0001");
    // Outsiders are not members: user/get does not know them.
    let v = user_get(&http, &fake, &token, OUTSIDER_USER_ID).await;
    assert_eq!(v["errcode"], 60111);

    let code = fake.issue_h5_code(DEMO_USER_ID);
    let legacy = get(
        &http,
        &fake,
        "/cgi-bin/user/getuserinfo",
        &[("access_token", &token), ("code", &code)],
    )
    .await;
    assert_same_shape(&legacy, &fixture!("user_getuserinfo_legacy.json"), "$");
    assert_eq!(legacy["UserId"], DEMO_USER_ID);
    let code = fake.issue_h5_code(OUTSIDER_USER_ID);
    let legacy = get(
        &http,
        &fake,
        "/cgi-bin/user/getuserinfo",
        &[("access_token", &token), ("code", &code)],
    )
    .await;
    assert!(legacy.get("OpenId").is_some() && legacy.get("UserId").is_none());
}

#[tokio::test]
async fn tokens_are_per_app_reused_while_live_and_expire() {
    let fake = wecom::start().await;
    let http = client();
    let a = token(&http, &fake, DEFAULT_CORP_SECRET).await;
    let b = token(&http, &fake, SECOND_CORP_SECRET).await;
    assert_ne!(a, b, "two apps of one corp must not share a token");
    assert_eq!(a, token(&http, &fake, DEFAULT_CORP_SECRET).await);
    fake.advance_clock(Duration::from_secs(7000));
    let t = gettoken(&http, &fake, DEFAULT_CORP_SECRET).await;
    assert_eq!(t["access_token"], a.as_str());
    assert!(t["expires_in"].as_u64().unwrap() <= 200, "{t}");
    fake.advance_clock(Duration::from_secs(201));
    let v = user_get(&http, &fake, &a, DEMO_USER_ID).await;
    assert_error(&v, &fixture!("error_42001_token_expired.json"));
    assert_ne!(a, token(&http, &fake, DEFAULT_CORP_SECRET).await);

    let v = user_get(&http, &fake, "fake_unknown_token", DEMO_USER_ID).await;
    assert_error(&v, &fixture!("error_40014_invalid_token.json"));
    let fresh = token(&http, &fake, DEFAULT_CORP_SECRET).await;
    fake.revoke_app_tokens();
    let v = user_get(&http, &fake, &fresh, DEMO_USER_ID).await;
    assert_eq!(v["errcode"], 40014);
    let v = get(
        &http,
        &fake,
        "/cgi-bin/user/get",
        &[("userid", DEMO_USER_ID)],
    )
    .await;
    assert_eq!(v["errcode"], 41001);
}

#[tokio::test]
async fn gettoken_validates_the_corp_and_the_secret() {
    let fake = wecom::start().await;
    fake.add_app(FakeApp::new(
        OTHER_CORP_ID,
        "1000002",
        "fake_other_corp_secret",
    ));
    let http = client();
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
        let v = get(&http, &fake, "/cgi-bin/gettoken", q).await;
        assert_eq!(v["errcode"], code, "{q:?}: {v}");
        assert!(v.get("access_token").is_none());
    }
}

#[tokio::test]
async fn codes_are_single_use_bound_to_the_app_and_expire() {
    let fake = wecom::start().await;
    let http = client();
    let a = token(&http, &fake, DEFAULT_CORP_SECRET).await;
    let b = token(&http, &fake, SECOND_CORP_SECRET).await;

    // Another app's code is refused without being burnt.
    let code = fake.issue_oauth_code(Some(SECOND_AGENT_ID), DEMO_USER_ID, OAuthScope::Base);
    let v = getuserinfo(&http, &fake, &a, &code).await;
    assert_error(&v, &fixture!("error_40029_invalid_code.json"));
    // A bad token does not burn it either.
    let v = getuserinfo(&http, &fake, "fake_bad", &code).await;
    assert_eq!(v["errcode"], 40014);
    assert_eq!(
        getuserinfo(&http, &fake, &b, &code).await["userid"],
        DEMO_USER_ID
    );
    assert_eq!(getuserinfo(&http, &fake, &b, &code).await["errcode"], 40029);

    // A link without agentid: any app of the corp, never a ticket.
    let code = fake.issue_oauth_code(None, DEMO_USER_ID, OAuthScope::PrivateInfo);
    let v = getuserinfo(&http, &fake, &a, &code).await;
    assert_eq!(v["userid"], DEMO_USER_ID);
    assert!(v.get("user_ticket").is_none());

    let code = fake.issue_h5_code(DEMO_USER_ID);
    fake.advance_clock(Duration::from_secs(301));
    let a = token(&http, &fake, DEFAULT_CORP_SECRET).await;
    assert_eq!(getuserinfo(&http, &fake, &a, &code).await["errcode"], 40029);
    assert_eq!(
        getuserinfo(&http, &fake, &a, "forged").await["errcode"],
        40029
    );
    let v = get(
        &http,
        &fake,
        "/cgi-bin/auth/getuserinfo",
        &[("access_token", &a)],
    )
    .await;
    assert_eq!(v["errcode"], 41008);
}

#[tokio::test]
async fn user_tickets_expire_belong_to_one_app_and_need_a_json_body() {
    let fake = wecom::start().await;
    let http = client();
    let a = token(&http, &fake, DEFAULT_CORP_SECRET).await;
    let b = token(&http, &fake, SECOND_CORP_SECRET).await;
    let code = fake.issue_oauth_code(
        Some(DEFAULT_AGENT_ID),
        DEMO_USER_ID,
        OAuthScope::PrivateInfo,
    );
    let ticket = getuserinfo(&http, &fake, &a, &code).await["user_ticket"]
        .as_str()
        .unwrap()
        .to_owned();
    let body = json!({ "user_ticket": ticket }).to_string();
    assert_eq!(
        getuserdetail(&http, &fake, &b, &body).await["errcode"],
        84015
    );
    assert_eq!(
        getuserdetail(&http, &fake, &a, "user_ticket=x").await["errcode"],
        47001
    );
    assert_eq!(
        getuserdetail(&http, &fake, &a, "{}").await["errcode"],
        84015
    );
    // Reusable while it lives.
    assert_eq!(getuserdetail(&http, &fake, &a, &body).await["errcode"], 0);
    assert_eq!(getuserdetail(&http, &fake, &a, &body).await["errcode"], 0);
    fake.advance_clock(Duration::from_secs(1801));
    let a = token(&http, &fake, DEFAULT_CORP_SECRET).await;
    let v = getuserdetail(&http, &fake, &a, &body).await;
    assert_error(&v, &fixture!("error_84014_user_ticket_expired.json"));

    // The admin did not enable the sensitive fields: only `userid`.
    let mut app = fake.app(DEFAULT_CORP_ID, DEFAULT_AGENT_ID).unwrap();
    app.sensitive_fields = false;
    fake.add_app(app);
    let code = fake.issue_oauth_code(
        Some(DEFAULT_AGENT_ID),
        DEMO_USER_ID,
        OAuthScope::PrivateInfo,
    );
    let ticket = getuserinfo(&http, &fake, &a, &code).await["user_ticket"].clone();
    let v = getuserdetail(
        &http,
        &fake,
        &a,
        &json!({ "user_ticket": ticket }).to_string(),
    )
    .await;
    assert_eq!(
        v,
        json!({"errcode": 0, "errmsg": "ok", "userid": DEMO_USER_ID})
    );
}

/// Opens a page and submits its demo-user Approve form; returns the 303 target or the error
/// page (status, body).
async fn approve_via(
    fake: &FakeWeCom,
    path: &str,
    q: &[(&str, &str)],
) -> Result<url::Url, (u16, String)> {
    let http = client();
    let resp = http
        .get(format!("{}{path}", fake.base_url()))
        .query(q)
        .send()
        .await
        .unwrap();
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
    let resp = http
        .post(format!("{}/wwlogin/sso/approve", fake.base_url()))
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    Ok(url::Url::parse(resp.headers()["location"].to_str().unwrap()).unwrap())
}

fn code_of(url: &url::Url) -> String {
    url.query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned()
}

#[tokio::test]
async fn pages_validate_their_parameters_and_redirect_with_code_and_state() {
    let fake = wecom::start().await;
    let http = client();
    let cb = "https://app.acme.example/cb";
    let oauth = |scope: &'static str, state: &'static str, agent: Option<&'static str>| {
        let mut q = vec![
            ("appid", DEFAULT_CORP_ID),
            ("redirect_uri", cb),
            ("response_type", "code"),
            ("scope", scope),
            ("state", state),
        ];
        if let Some(a) = agent {
            q.push(("agentid", a));
        }
        q
    };
    let target = approve_via(
        &fake,
        "/connect/oauth2/authorize",
        &oauth("snsapi_privateinfo", "abc123", Some(DEFAULT_AGENT_ID)),
    )
    .await
    .expect("approved");
    assert!(target.as_str().starts_with(cb));
    assert!(
        target
            .query_pairs()
            .any(|(k, v)| k == "state" && v == "abc123")
    );
    let a = token(&http, &fake, DEFAULT_CORP_SECRET).await;
    let info = getuserinfo(&http, &fake, &a, &code_of(&target)).await;
    assert!(info.get("user_ticket").is_some(), "{info}");

    // privateinfo without agentid is silently snsapi_base.
    let target = approve_via(
        &fake,
        "/connect/oauth2/authorize",
        &oauth("snsapi_privateinfo", "s", None),
    )
    .await
    .expect("approved");
    let info = getuserinfo(&http, &fake, &a, &code_of(&target)).await;
    assert!(info.get("user_ticket").is_none(), "{info}");

    let (status, html) = approve_via(
        &fake,
        "/connect/oauth2/authorize",
        &oauth("snsapi_base", "has-dash", None),
    )
    .await
    .expect_err("bad state");
    assert_eq!(status, 400);
    assert!(html.contains("84025"), "{html}");
    let (status, _) = approve_via(
        &fake,
        "/connect/oauth2/authorize",
        &oauth("snsapi_login", "s", None),
    )
    .await
    .expect_err("bad scope");
    assert_eq!(status, 400);

    let sso = |login_type: &'static str, agent: Option<&'static str>| {
        let mut q = vec![
            ("login_type", login_type),
            ("appid", DEFAULT_CORP_ID),
            ("redirect_uri", cb),
            ("state", "any-state_OK"),
        ];
        if let Some(a) = agent {
            q.push(("agentid", a));
        }
        q
    };
    let target = approve_via(
        &fake,
        "/wwlogin/sso/login",
        &sso("CorpApp", Some(SECOND_AGENT_ID)),
    )
    .await
    .expect("web login");
    assert!(
        target
            .query_pairs()
            .any(|(k, v)| k == "state" && v == "any-state_OK")
    );
    let b = token(&http, &fake, SECOND_CORP_SECRET).await;
    let info = getuserinfo(&http, &fake, &b, &code_of(&target)).await;
    assert_eq!(info["userid"], DEMO_USER_ID);
    assert!(
        info.get("user_ticket").is_none(),
        "web logins never get a ticket"
    );
    assert!(
        approve_via(&fake, "/wwlogin/sso/login", &sso("CorpApp", None))
            .await
            .is_err()
    );
    assert!(
        approve_via(
            &fake,
            "/wwlogin/sso/login",
            &sso("Personal", Some(DEFAULT_AGENT_ID))
        )
        .await
        .is_err()
    );
    assert!(
        approve_via(&fake, "/wwlogin/sso/login", &sso("CorpApp", Some("999")))
            .await
            .is_err()
    );

    let qr = [
        ("appid", DEFAULT_CORP_ID),
        ("agentid", LEGACY_AGENT_ID),
        ("redirect_uri", cb),
        ("state", "s"),
    ];
    let target = approve_via(&fake, "/wwopen/sso/qrConnect", &qr)
        .await
        .expect("qr");
    let l = token(&http, &fake, LEGACY_CORP_SECRET).await;
    assert_eq!(
        getuserinfo(&http, &fake, &l, &code_of(&target)).await["userid"],
        DEMO_USER_ID
    );
}

#[tokio::test]
async fn an_untrusted_redirect_domain_fails_the_exchange_with_50001() {
    let fake = wecom::start().await;
    let http = client();
    let q = [
        ("appid", DEFAULT_CORP_ID),
        ("redirect_uri", "https://evil.invalid/cb"),
        ("response_type", "code"),
        ("scope", "snsapi_base"),
        ("agentid", DEFAULT_AGENT_ID),
    ];
    let target = approve_via(&fake, "/connect/oauth2/authorize", &q)
        .await
        .expect("page");
    let a = token(&http, &fake, DEFAULT_CORP_SECRET).await;
    let v = getuserinfo(&http, &fake, &a, &code_of(&target)).await;
    assert_error(&v, &fixture!("error_50001_redirect_domain.json"));
}

#[tokio::test]
async fn faults_render_in_wecom_envelopes() {
    let fake = wecom::start().await;
    let http = client();
    let cases = [
        (
            Fault::IpNotAllowed,
            fixture!("error_60020_ip_not_allowed.json"),
        ),
        (
            Fault::RateLimited,
            fixture!("error_45009_rate_limited.json"),
        ),
        (
            Fault::RateLimitPage,
            fixture!("error_45009_rate_limited.json"),
        ),
        (
            Fault::TokenInvalid,
            fixture!("error_40014_invalid_token.json"),
        ),
        (
            Fault::CodeInvalid,
            fixture!("error_40029_invalid_code.json"),
        ),
        (
            Fault::code(42001),
            fixture!("error_42001_token_expired.json"),
        ),
    ];
    for (fault, fx) in cases {
        fake.inject(ep::GETTOKEN, fault.clone()).unwrap();
        let v = gettoken(&http, &fake, DEFAULT_CORP_SECRET).await;
        assert_error(&v, &fx);
    }
    fake.inject(ep::USER_GET, Fault::PermissionDenied).unwrap();
    let t = token(&http, &fake, DEFAULT_CORP_SECRET).await;
    assert_eq!(
        user_get(&http, &fake, &t, DEMO_USER_ID).await["errcode"],
        48002
    );
    fake.inject(ep::USER_GET, Fault::SystemBusy).unwrap();
    assert_eq!(
        user_get(&http, &fake, &t, DEMO_USER_ID).await["errcode"],
        -1
    );

    assert!(matches!(
        fake.inject(ep::USER_GET, Fault::code("InvalidAuthentication")),
        Err(FaultError::Unsupported { .. })
    ));
    assert!(matches!(
        fake.inject(ep::USER_GET, Fault::code_with_sub(88, 40014)),
        Err(FaultError::Unsupported { .. })
    ));
    assert!(matches!(
        fake.inject(ep::SSO_LOGIN, Fault::TokenInvalid),
        Err(FaultError::Unsupported { .. })
    ));
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
        assert_eq!(getuserinfo(&http, &fake, &t, &code).await["errcode"], 45009);
    }
    assert_eq!(
        getuserinfo(&http, &fake, &t, &code).await["userid"],
        DEMO_USER_ID
    );
}

#[tokio::test]
async fn wrong_methods_and_unknown_paths_are_answered_and_counted() {
    let fake = wecom::start().await;
    let http = client();
    let v: Value = http
        .post(format!("{}/cgi-bin/gettoken", fake.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["errcode"], 43001);
    let v: Value = http
        .get(format!("{}/cgi-bin/auth/getuserdetail", fake.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["errcode"], 43002);
    let resp = http
        .get(format!("{}/cgi-bin/nope", fake.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(fake.calls(ep::GETTOKEN), 1);
    assert_eq!(fake.calls(ep::AUTH_GETUSERDETAIL), 1);
    assert_eq!(fake.calls(UNMATCHED), 1);
}

#[tokio::test]
async fn the_fake_platform_contract() {
    let fake = wecom::start().await;
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
