//! The DingTalk fake behaves like `reference/platforms.md` §2 and `fixtures/dingtalk/*.json`:
//! real HTTP on loopback with reqwest, as a platform client would talk to it.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use reqwest::redirect::Policy;
use serde_json::{Value, json};
use unilogin_testkit::dingtalk::{
    self, DEFAULT_APP_KEY, DEFAULT_APP_SECRET, DEFAULT_CORP_ID, DEMO_USER_ID, FakeApp,
    FakeDingTalk, OUTSIDER_USER_ID, endpoints as ep,
};
use unilogin_testkit::{
    ANY_ENDPOINT, EndpointRole, FIVE_MIB, FakePlatform, FakeUser, Fault, FaultError, Times,
    UNMATCHED,
};

macro_rules! fixture {
    ($name:literal) => {
        serde_json::from_str::<Value>(include_str!(concat!("fixtures/dingtalk/", $name)))
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

/// Same keys at every object level and same JSON kinds (numbers, strings, bools, …).
fn assert_same_shape(actual: &Value, expected: &Value, path: &str) {
    match (actual, expected) {
        (Value::Object(a), Value::Object(e)) => {
            let ak: Vec<_> = a.keys().collect();
            let ek: Vec<_> = e.keys().collect();
            let mut ak_sorted = ak.clone();
            let mut ek_sorted = ek.clone();
            ak_sorted.sort();
            ek_sorted.sort();
            assert_eq!(ak_sorted, ek_sorted, "keys differ at {path}");
            for (k, ev) in e {
                assert_same_shape(&a[k], ev, &format!("{path}.{k}"));
            }
        }
        (Value::Array(a), Value::Array(e)) => {
            if let (Some(af), Some(ef)) = (a.first(), e.first()) {
                assert_same_shape(af, ef, &format!("{path}[0]"));
            }
        }
        (Value::Number(a), Value::Number(e)) => {
            assert_eq!(a.is_i64() || a.is_u64(), e.is_i64() || e.is_u64(), "{path}");
        }
        (a, e) => assert_eq!(
            std::mem::discriminant(a),
            std::mem::discriminant(e),
            "kind differs at {path}: {a} vs {e}"
        ),
    }
}

fn without(v: &Value, keys: &[&str]) -> Value {
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        for k in keys {
            o.remove(*k);
        }
    }
    v
}

async fn body_json(resp: reqwest::Response) -> (StatusCode, Value) {
    let status = resp.status();
    let text = resp.text().await.expect("body");
    let value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
    (status, value)
}

async fn gettoken(http: &reqwest::Client, dt: &FakeDingTalk) -> String {
    let resp = http
        .get(format!("{}/gettoken", dt.base_url()))
        .query(&[
            ("appkey", DEFAULT_APP_KEY),
            ("appsecret", DEFAULT_APP_SECRET),
        ])
        .send()
        .await
        .expect("send");
    let (status, v) = body_json(resp).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["errcode"], 0, "{v}");
    v["access_token"].as_str().expect("token").to_owned()
}

async fn oapi(
    http: &reqwest::Client,
    dt: &FakeDingTalk,
    path: &str,
    token: &str,
    body: Value,
) -> (StatusCode, Value) {
    let resp = http
        .post(format!("{}{path}", dt.base_url()))
        .query(&[("access_token", token)])
        .json(&body)
        .send()
        .await
        .expect("send");
    body_json(resp).await
}

async fn api(
    http: &reqwest::Client,
    dt: &FakeDingTalk,
    path: &str,
    body: Value,
) -> (StatusCode, Value) {
    let resp = http
        .post(format!("{}{path}", dt.base_url()))
        .json(&body)
        .send()
        .await
        .expect("send");
    body_json(resp).await
}

async fn exchange_web_code(
    http: &reqwest::Client,
    dt: &FakeDingTalk,
    code: &str,
) -> (StatusCode, Value) {
    api(
        http,
        dt,
        "/v1.0/oauth2/userAccessToken",
        json!({"clientId": DEFAULT_APP_KEY, "clientSecret": DEFAULT_APP_SECRET,
               "code": code, "grantType": "authorization_code"}),
    )
    .await
}

async fn users_me(
    http: &reqwest::Client,
    dt: &FakeDingTalk,
    token: Option<&str>,
) -> (StatusCode, Value) {
    let mut req = http.get(format!("{}/v1.0/contact/users/me", dt.base_url()));
    if let Some(t) = token {
        req = req.header("x-acs-dingtalk-access-token", t);
    }
    body_json(req.send().await.expect("send")).await
}

fn assert_oapi_error(v: &Value, fixture: &Value) {
    assert_same_shape(v, fixture, "$");
    assert_eq!(v["errcode"], fixture["errcode"], "{v}");
    assert_eq!(v["errmsg"], fixture["errmsg"], "{v}");
}

#[tokio::test]
async fn h5_login_happy_path_has_fixture_shapes_and_counts_calls() {
    let dt = dingtalk::start().await;
    let http = client();
    let code = dt.issue_h5_code(DEMO_USER_ID);

    let token = gettoken(&http, &dt).await;
    let resp = http
        .get(format!("{}/gettoken", dt.base_url()))
        .query(&[
            ("appkey", DEFAULT_APP_KEY),
            ("appsecret", DEFAULT_APP_SECRET),
        ])
        .send()
        .await
        .expect("send");
    let (_, v) = body_json(resp).await;
    assert_same_shape(&v, &fixture!("oapi_gettoken.json"), "$");
    assert_eq!(v["expires_in"], 7200);

    let (status, info) = oapi(
        &http,
        &dt,
        "/topapi/v2/user/getuserinfo",
        &token,
        json!({"code": code}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let expected = fixture!("topapi_v2_user_getuserinfo.json");
    assert_same_shape(&info, &expected, "$");
    assert_eq!(
        without(&info["result"], &["device_id"]),
        without(&expected["result"], &["device_id"])
    );

    let (status, detail) = oapi(
        &http,
        &dt,
        "/topapi/v2/user/get",
        &token,
        json!({"userid": info["result"]["userid"], "language": "zh_CN"}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let expected = fixture!("topapi_v2_user_get.json");
    assert_same_shape(&detail, &expected, "$");
    let per_dept = ["dept_order_list", "leader_in_dept"];
    assert_eq!(
        without(&detail["result"], &per_dept),
        without(&expected["result"], &per_dept)
    );
    for key in per_dept {
        let list = detail["result"][key].as_array().expect("list");
        assert!(
            list.contains(&expected["result"][key][0]),
            "{key}: {list:?}"
        );
    }

    assert_eq!(dt.calls(ep::GETTOKEN), 2);
    assert_eq!(dt.calls(ep::GETUSERINFO), 1);
    assert_eq!(dt.calls(ep::USER_GET), 1);
    assert_eq!(dt.total_calls(), 4);
    dt.reset_calls();
    assert_eq!(dt.total_calls(), 0);
}

#[tokio::test]
async fn web_login_through_the_authorize_page_matches_fixtures() {
    let dt = dingtalk::start().await;
    let http = client();
    let state = "a b&c=d/é?";
    let page = http
        .get(dt.authorize_url("http://127.0.0.1:9/callback?x=1", state))
        .send()
        .await
        .expect("send");
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.expect("html");
    assert!(
        html.contains("Zhang San") && html.contains("Approve"),
        "{html}"
    );
    assert!(
        html.contains("value=\"outsider001\""),
        "outsiders can log in on the web"
    );

    let resp = http
        .post(format!("{}/oauth2/approve", dt.base_url()))
        .form(&[
            ("client_id", DEFAULT_APP_KEY),
            ("redirect_uri", "http://127.0.0.1:9/callback?x=1"),
            ("scope", "openid corpid"),
            ("state", state),
            ("user_id", DEMO_USER_ID),
            ("action", "approve"),
        ])
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let location = resp.headers()["location"]
        .to_str()
        .expect("ascii")
        .to_owned();
    let url = url::Url::parse(&location).expect("absolute");
    assert_eq!(url.path(), "/callback");
    let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(q["x"], "1");
    assert_eq!(q["state"], state, "state echoed unchanged");
    let code = &q["authCode"];

    let (status, tok) = exchange_web_code(&http, &dt, code).await;
    assert_eq!(status, StatusCode::OK, "{tok}");
    assert_same_shape(&tok, &fixture!("v1_oauth2_userAccessToken.json"), "$");
    assert_eq!(tok["corpId"], DEFAULT_CORP_ID);
    assert_eq!(tok["expireIn"], 7200);

    let (status, me) = users_me(&http, &dt, tok["accessToken"].as_str()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me, fixture!("v1_contact_users_me.json"));

    let app_token = gettoken(&http, &dt).await;
    let (_, by_union) = oapi(
        &http,
        &dt,
        "/topapi/user/getbyunionid",
        &app_token,
        json!({"unionid": me["unionId"]}),
    )
    .await;
    let expected = fixture!("topapi_user_getbyunionid.json");
    assert_same_shape(&by_union, &expected, "$");
    assert_eq!(by_union["result"], expected["result"]);

    // Deny sends the user back with an error and the state.
    let resp = http
        .post(format!("{}/oauth2/approve", dt.base_url()))
        .form(&[
            ("client_id", DEFAULT_APP_KEY),
            ("redirect_uri", "https://app.example.com/cb"),
            ("scope", "openid"),
            ("state", "s1"),
            ("action", "deny"),
        ])
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        resp.headers()["location"],
        "https://app.example.com/cb?error=access_denied&state=s1"
    );
}

#[tokio::test]
async fn authorize_page_rejects_bad_parameters_with_an_html_error() {
    let dt = dingtalk::start().await;
    let http = client();
    let good = [
        ("client_id", DEFAULT_APP_KEY),
        ("response_type", "code"),
        ("redirect_uri", "https://sso.example.com/cb"),
        ("scope", "openid"),
        ("state", "st"),
        ("prompt", "login consent"),
    ];
    let resp = http
        .get(format!("{}/oauth2/auth", dt.base_url()))
        .query(&good)
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), StatusCode::OK);

    let bad: [(&str, Option<&str>); 9] = [
        ("client_id", Some("unknown")),
        ("client_id", None),
        ("response_type", Some("token")),
        ("redirect_uri", Some("https://evil.test/cb")),
        ("redirect_uri", Some("not a url")),
        ("scope", Some("openid snsapi_login")),
        ("scope", Some("corpid")),
        ("prompt", None),
        ("prompt", Some("login")),
    ];
    for (name, value) in bad {
        let params: Vec<(&str, &str)> = good
            .iter()
            .filter_map(|(k, v)| {
                if *k == name {
                    value.map(|nv| (*k, nv))
                } else {
                    Some((*k, *v))
                }
            })
            .collect();
        let resp = http
            .get(format!("{}/oauth2/auth", dt.base_url()))
            .query(&params)
            .send()
            .await
            .expect("send");
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{name}={value:?}");
        assert!(
            resp.headers()["content-type"]
                .to_str()
                .unwrap_or("")
                .starts_with("text/html")
        );
    }
    // The approve endpoint validates the same way and only takes browser forms.
    let resp = http
        .post(format!("{}/oauth2/approve", dt.base_url()))
        .json(&json!({"client_id": DEFAULT_APP_KEY}))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let resp = http
        .post(format!("{}/oauth2/approve", dt.base_url()))
        .form(&[
            ("client_id", DEFAULT_APP_KEY),
            ("redirect_uri", "https://evil.test/cb"),
            ("scope", "openid"),
            ("user_id", DEMO_USER_ID),
        ])
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(dt.calls(ep::AUTHORIZE), 10);
    assert_eq!(dt.calls(ep::APPROVE), 2);
}

#[tokio::test]
async fn outsider_logs_in_on_the_web_but_is_not_a_member() {
    let dt = dingtalk::start().await;
    let http = client();
    let code = dt.approve_web_login(OUTSIDER_USER_ID);
    let (status, tok) = exchange_web_code(&http, &dt, &code).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(tok["corpId"], dingtalk::OTHER_CORP_ID);
    let (_, me) = users_me(&http, &dt, tok["accessToken"].as_str()).await;
    assert_eq!(me["unionId"], "unionid-outsider001");

    let app_token = gettoken(&http, &dt).await;
    let (status, v) = oapi(
        &http,
        &dt,
        "/topapi/user/getbyunionid",
        &app_token,
        json!({"unionid": me["unionId"]}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_oapi_error(&v, &fixture!("error_60121_user_not_found.json"));
    let (_, v) = oapi(
        &http,
        &dt,
        "/topapi/v2/user/get",
        &app_token,
        json!({"userid": OUTSIDER_USER_ID}),
    )
    .await;
    assert_eq!(v["errcode"], 60121);
    // An in-app code of another organisation is not valid for this app.
    let h5 = dt.issue_h5_code(OUTSIDER_USER_ID);
    let (_, v) = oapi(
        &http,
        &dt,
        "/topapi/v2/user/getuserinfo",
        &app_token,
        json!({"code": h5}),
    )
    .await;
    assert_oapi_error(&v, &fixture!("error_40078_invalid_code.json"));
}

#[tokio::test]
async fn h5_code_is_single_use_and_expires_after_five_minutes() {
    let dt = dingtalk::start().await;
    let http = client();
    let token = dt.mint_app_token();
    let code = dt.issue_h5_code(DEMO_USER_ID);
    let path = "/topapi/v2/user/getuserinfo";
    let (_, v) = oapi(&http, &dt, path, &token, json!({"code": code})).await;
    assert_eq!(v["errcode"], 0);
    let (_, v) = oapi(&http, &dt, path, &token, json!({"code": code})).await;
    assert_oapi_error(&v, &fixture!("error_40078_invalid_code.json"));

    let almost = dt.issue_h5_code(DEMO_USER_ID);
    let late = dt.issue_h5_code(DEMO_USER_ID);
    dt.advance_clock(Duration::from_secs(299));
    let (_, v) = oapi(&http, &dt, path, &token, json!({"code": almost})).await;
    assert_eq!(v["errcode"], 0, "a code is valid just under 5 minutes");
    dt.advance_clock(Duration::from_secs(1));
    let (_, v) = oapi(&http, &dt, path, &token, json!({"code": late})).await;
    assert_eq!(v["errcode"], 40078, "a code expires at 5 minutes");
    // Unknown users and made-up codes get the same answer; so does a missing code (40035).
    let (_, v) = oapi(
        &http,
        &dt,
        path,
        &token,
        json!({"code": dt.issue_h5_code("nobody")}),
    )
    .await;
    assert_eq!(v["errcode"], 40078);
    let (_, v) = oapi(&http, &dt, path, &token, json!({})).await;
    assert_eq!(v["errcode"], 40035);
}

#[tokio::test]
async fn a_rejected_token_does_not_burn_the_code() {
    let dt = dingtalk::start().await;
    let http = client();
    let code = dt.issue_h5_code(DEMO_USER_ID);
    let path = "/topapi/v2/user/getuserinfo";
    let (status, v) = oapi(
        &http,
        &dt,
        path,
        "fake_dt_app_token_bogus",
        json!({"code": code}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_oapi_error(&v, &fixture!("error_40014_invalid_token.json"));
    // No token at all is the same answer.
    let resp = http
        .post(format!("{}{path}", dt.base_url()))
        .json(&json!({"code": code}))
        .send()
        .await
        .expect("send");
    assert_eq!(body_json(resp).await.1["errcode"], 40014);
    // A faulted request does not reach the code either.
    dt.inject(ep::GETUSERINFO, Fault::TokenInvalid)
        .expect("inject");
    let token = gettoken(&http, &dt).await;
    let (_, v) = oapi(&http, &dt, path, &token, json!({"code": code})).await;
    assert_eq!(v["errcode"], 40014);
    let (_, v) = oapi(&http, &dt, path, &token, json!({"code": code})).await;
    assert_eq!(v["errcode"], 0, "code still usable: {v}");
    assert_eq!(dt.calls(ep::GETUSERINFO), 4);
}

#[tokio::test]
async fn oapi_accepts_form_bodies_too() {
    let dt = dingtalk::start().await;
    let http = client();
    let token = gettoken(&http, &dt).await;
    let resp = http
        .post(format!("{}/topapi/v2/user/get", dt.base_url()))
        .query(&[("access_token", token.as_str())])
        .form(&[("userid", DEMO_USER_ID)])
        .send()
        .await
        .expect("send");
    let (_, v) = body_json(resp).await;
    assert_eq!(v["result"]["userid"], DEMO_USER_ID);
}

#[tokio::test]
async fn wrong_credentials_are_rejected_on_both_generations() {
    let dt = dingtalk::start().await;
    let http = client();
    for (key, secret) in [(DEFAULT_APP_KEY, "wrong"), ("unknown", DEFAULT_APP_SECRET)] {
        let resp = http
            .get(format!("{}/gettoken", dt.base_url()))
            .query(&[("appkey", key), ("appsecret", secret)])
            .send()
            .await
            .expect("send");
        let (status, v) = body_json(resp).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(v["errcode"], 40001);
        assert!(v.get("access_token").is_none());
    }
    let resp = http
        .get(format!("{}/gettoken", dt.base_url()))
        .query(&[("appkey", DEFAULT_APP_KEY)])
        .send()
        .await
        .expect("send");
    assert_eq!(body_json(resp).await.1["errcode"], 40035);

    let (status, v) = api(
        &http,
        &dt,
        "/v1.0/oauth2/accessToken",
        json!({"appKey": DEFAULT_APP_KEY, "appSecret": "wrong"}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(v["code"], dingtalk::API_INVALID_CLIENT);
    assert!(v["requestid"].is_string() && v["message"].is_string());

    // A bad client secret on the code exchange does not burn the code.
    let code = dt.approve_web_login(DEMO_USER_ID);
    let (status, v) = api(
        &http,
        &dt,
        "/v1.0/oauth2/userAccessToken",
        json!({"clientId": DEFAULT_APP_KEY, "clientSecret": "wrong", "code": code, "grantType": "authorization_code"}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(v["code"], dingtalk::API_INVALID_CLIENT);
    let (status, _) = exchange_web_code(&http, &dt, &code).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn app_tokens_are_reused_while_live_expire_after_7200s_and_both_endpoints_share_them() {
    let dt = dingtalk::start().await;
    let http = client();
    let t1 = gettoken(&http, &dt).await;
    let t2 = gettoken(&http, &dt).await;
    assert_eq!(t1, t2, "re-fetching within validity returns the same token");
    let (status, v) = api(
        &http,
        &dt,
        "/v1.0/oauth2/accessToken",
        json!({"appKey": DEFAULT_APP_KEY, "appSecret": DEFAULT_APP_SECRET}),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_same_shape(&v, &fixture!("v1_oauth2_accessToken.json"), "$");
    assert_eq!(v["accessToken"], t1.as_str());

    dt.advance_clock(Duration::from_secs(7199));
    let (_, v) = oapi(
        &http,
        &dt,
        "/topapi/v2/user/get",
        &t1,
        json!({"userid": DEMO_USER_ID}),
    )
    .await;
    assert_eq!(v["errcode"], 0);
    dt.advance_clock(Duration::from_secs(1));
    let (_, v) = oapi(
        &http,
        &dt,
        "/topapi/v2/user/get",
        &t1,
        json!({"userid": DEMO_USER_ID}),
    )
    .await;
    assert_oapi_error(&v, &fixture!("error_40014_invalid_token.json"));
    let t3 = gettoken(&http, &dt).await;
    assert_ne!(t3, t1);

    // Tokens are per app: a second app of the same organisation gets its own.
    dt.add_app(FakeApp::new(
        "dingsecondapp",
        "second-secret",
        DEFAULT_CORP_ID,
    ));
    let resp = http
        .get(format!("{}/gettoken", dt.base_url()))
        .query(&[("appkey", "dingsecondapp"), ("appsecret", "second-secret")])
        .send()
        .await
        .expect("send");
    let (_, v) = body_json(resp).await;
    assert_ne!(v["access_token"], t3.as_str());
}

#[tokio::test]
async fn revoked_app_tokens_are_rejected_and_replaced() {
    let dt = dingtalk::start().await;
    let http = client();
    let old = gettoken(&http, &dt).await;
    dt.revoke_app_tokens();
    let (_, v) = oapi(
        &http,
        &dt,
        "/topapi/user/getbyunionid",
        &old,
        json!({"unionid": "unionid-user001"}),
    )
    .await;
    assert_oapi_error(&v, &fixture!("error_40014_invalid_token.json"));
    let (_, v) = api(
        &http,
        &dt,
        "/v1.0/oauth2/accessToken",
        json!({"appKey": DEFAULT_APP_KEY, "appSecret": DEFAULT_APP_SECRET}),
    )
    .await;
    let new = v["accessToken"].as_str().expect("token");
    assert_ne!(new, old);
    let (_, v) = oapi(
        &http,
        &dt,
        "/topapi/user/getbyunionid",
        new,
        json!({"unionid": "unionid-user001"}),
    )
    .await;
    assert_eq!(
        v["result"]["userid"], DEMO_USER_ID,
        "v1 app token works on oapi"
    );
}

#[tokio::test]
async fn api_endpoints_reject_form_bodies_and_missing_fields_with_http_400() {
    let dt = dingtalk::start().await;
    let http = client();
    for path in ["/v1.0/oauth2/accessToken", "/v1.0/oauth2/userAccessToken"] {
        let resp = http
            .post(format!("{}{path}", dt.base_url()))
            .form(&[
                ("appKey", DEFAULT_APP_KEY),
                ("appSecret", DEFAULT_APP_SECRET),
            ])
            .send()
            .await
            .expect("send");
        let (status, v) = body_json(resp).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(v["code"], "Missingbody");
        assert_eq!(v["message"], "body is mandatory for this action.");
        assert!(v["requestid"].is_string());
    }
    let (status, v) = api(
        &http,
        &dt,
        "/v1.0/oauth2/accessToken",
        json!({"appKey": DEFAULT_APP_KEY}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(v["code"], "MissingappSecret");
    let (status, v) = api(&http, &dt, "/v1.0/oauth2/userAccessToken", json!({"clientId": DEFAULT_APP_KEY, "clientSecret": DEFAULT_APP_SECRET, "grantType": "authorization_code"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(v["code"], "Missingcode");
    let (status, v) = api(&http, &dt, "/v1.0/oauth2/userAccessToken", json!({"clientId": DEFAULT_APP_KEY, "clientSecret": DEFAULT_APP_SECRET, "grantType": "password"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(v["code"], "InvalidParameter");
}

#[tokio::test]
async fn users_me_needs_the_header_with_a_user_token() {
    let dt = dingtalk::start().await;
    let http = client();
    let expected = fixture!("v1_error_invalid_authentication.json");
    let app_token = gettoken(&http, &dt).await;
    for token in [None, Some(""), Some("nonsense"), Some(app_token.as_str())] {
        let (status, v) = users_me(&http, &dt, token).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{token:?}");
        assert_same_shape(&v, &expected, "$");
        assert_eq!(v["code"], expected["code"]);
    }
    // The token in the query string (oapi style) is not how this API authenticates.
    let code = dt.approve_web_login(DEMO_USER_ID);
    let (_, tok) = exchange_web_code(&http, &dt, &code).await;
    let user_token = tok["accessToken"].as_str().expect("token");
    let resp = http
        .get(format!("{}/v1.0/contact/users/me", dt.base_url()))
        .query(&[("access_token", user_token)])
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    dt.advance_clock(Duration::from_secs(7200));
    let (status, _) = users_me(&http, &dt, Some(user_token)).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "user tokens expire after 7200 s"
    );
}

#[tokio::test]
async fn web_codes_are_single_use_bound_to_the_client_and_expire() {
    let dt = dingtalk::start().await;
    let http = client();
    dt.add_app(FakeApp::new(
        "dingotherapp",
        "other-secret",
        DEFAULT_CORP_ID,
    ));
    let code = dt.approve_web_login(DEMO_USER_ID);
    let (status, v) = api(
        &http,
        &dt,
        "/v1.0/oauth2/userAccessToken",
        json!({"clientId": "dingotherapp", "clientSecret": "other-secret", "code": code, "grantType": "authorization_code"}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(v["code"], dingtalk::API_INVALID_AUTH_CODE);
    let (status, _) = exchange_web_code(&http, &dt, &code).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "another client's attempt did not burn it"
    );
    let (status, v) = exchange_web_code(&http, &dt, &code).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(v["code"], dingtalk::API_INVALID_AUTH_CODE);

    let code = dt.approve_web_login(DEMO_USER_ID);
    dt.advance_clock(Duration::from_secs(300));
    let (status, _) = exchange_web_code(&http, &dt, &code).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // Without the corpid scope there is no corpId.
    let code = dt.approve_web_login_with(DEFAULT_APP_KEY, DEMO_USER_ID, "openid");
    let (_, v) = exchange_web_code(&http, &dt, &code).await;
    assert!(v.get("corpId").is_none(), "{v}");
}

#[tokio::test]
async fn refresh_tokens_issue_new_tokens_for_30_days() {
    let dt = dingtalk::start().await;
    let http = client();
    let code = dt.approve_web_login(DEMO_USER_ID);
    let (_, first) = exchange_web_code(&http, &dt, &code).await;
    let refresh = |token: &str| {
        json!({"clientId": DEFAULT_APP_KEY, "clientSecret": DEFAULT_APP_SECRET,
               "refreshToken": token, "grantType": "refresh_token"})
    };
    dt.advance_clock(Duration::from_secs(7200));
    let (status, second) = api(
        &http,
        &dt,
        "/v1.0/oauth2/userAccessToken",
        refresh(first["refreshToken"].as_str().expect("rt")),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_same_shape(&second, &fixture!("v1_oauth2_userAccessToken.json"), "$");
    assert_ne!(second["accessToken"], first["accessToken"]);
    let (status, me) = users_me(&http, &dt, second["accessToken"].as_str()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["unionId"], "unionid-user001");

    let (status, v) = api(
        &http,
        &dt,
        "/v1.0/oauth2/userAccessToken",
        refresh("fake_dt_refresh_bogus"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(v["code"], dingtalk::API_INVALID_REFRESH_TOKEN);
    dt.advance_clock(Duration::from_secs(30 * 24 * 3600));
    let (status, _) = api(
        &http,
        &dt,
        "/v1.0/oauth2/userAccessToken",
        refresh(second["refreshToken"].as_str().expect("rt")),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "refresh tokens live 30 days"
    );
}

#[tokio::test]
async fn wrong_methods_and_unknown_paths_are_answered_and_counted() {
    let dt = dingtalk::start().await;
    let http = client();
    let resp = http
        .get(format!("{}/topapi/v2/user/get", dt.base_url()))
        .send()
        .await
        .expect("send");
    let (status, v) = body_json(resp).await;
    assert_eq!(
        (status, v["errcode"].clone()),
        (StatusCode::OK, json!(43002))
    );
    let resp = http
        .post(format!("{}/gettoken", dt.base_url()))
        .send()
        .await
        .expect("send");
    assert_eq!(body_json(resp).await.1["errcode"], 43001);
    let resp = http
        .get(format!("{}/v1.0/oauth2/userAccessToken", dt.base_url()))
        .send()
        .await
        .expect("send");
    let (status, v) = body_json(resp).await;
    assert_eq!(
        (status, v["code"].clone()),
        (StatusCode::NOT_FOUND, json!("InvalidAction.NotFound"))
    );
    let resp = http
        .get(format!("{}/v1.0/nothing", dt.base_url()))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let resp = http
        .get(format!("{}/topapi/nothing", dt.base_url()))
        .send()
        .await
        .expect("send");
    let (status, v) = body_json(resp).await;
    assert_eq!(
        (status, v["errcode"].clone()),
        (StatusCode::NOT_FOUND, json!(404))
    );
    assert_eq!(dt.calls(ep::USER_GET), 1);
    assert_eq!(dt.calls(ep::GETTOKEN), 1);
    assert_eq!(dt.calls(ep::USER_ACCESS_TOKEN), 1);
    assert_eq!(dt.calls(UNMATCHED), 2);
    assert_eq!(dt.total_calls(), 5);
}

#[tokio::test]
async fn injected_codes_render_in_the_endpoint_envelope() {
    let dt = dingtalk::start().await;
    let http = client();
    let token = dt.mint_app_token();
    let detail = |t: &str| {
        let t = t.to_owned();
        let (http, dt) = (&http, &dt);
        async move {
            oapi(
                http,
                dt,
                "/topapi/v2/user/get",
                &t,
                json!({"userid": DEMO_USER_ID}),
            )
            .await
        }
    };

    dt.inject(ep::USER_GET, Fault::code(60020)).expect("inject");
    let (status, v) = detail(&token).await;
    assert_eq!(status, StatusCode::OK);
    assert_oapi_error(&v, &fixture!("error_60020_ip_whitelist.json"));

    dt.inject(ep::USER_GET, Fault::code_with_sub(88, 60011))
        .expect("inject");
    let (_, v) = detail(&token).await;
    let expected = fixture!("error_88_subcode.json");
    assert_same_shape(&v, &expected, "$");
    assert_eq!(
        without(&v, &["request_id"]),
        without(&expected, &["request_id"])
    );

    dt.inject(ep::USER_GET, Fault::PermissionDenied)
        .expect("inject");
    assert_eq!(detail(&token).await.1["sub_code"], "60011");
    dt.inject(ep::USER_GET, Fault::code_with_sub(88, 40014))
        .expect("inject");
    assert_eq!(detail(&token).await.1["sub_code"], "40014");
    for (fault, errcode) in [
        (Fault::TokenInvalid, 40014),
        (Fault::CodeInvalid, 40078),
        (Fault::RateLimited, 90002),
        (Fault::IpNotAllowed, 60020),
        (Fault::SystemBusy, -1),
        (Fault::code(42001), 42001),
    ] {
        dt.inject(ep::USER_GET, fault.clone()).expect("inject");
        let (status, v) = detail(&token).await;
        assert_eq!(
            (status, v["errcode"].clone()),
            (StatusCode::OK, json!(errcode)),
            "{fault:?}"
        );
        assert!(v["errmsg"].is_string());
    }
    assert_eq!(detail(&token).await.1["errcode"], 0, "faults were one-shot");

    let code = dt.approve_web_login(DEMO_USER_ID);
    let (_, tok) = exchange_web_code(&http, &dt, &code).await;
    let user_token = tok["accessToken"].as_str().expect("token");
    dt.inject(ep::USERS_ME, Fault::PermissionDenied)
        .expect("inject");
    let (status, v) = users_me(&http, &dt, Some(user_token)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let expected = fixture!("v1_error_permission_denied.json");
    assert_same_shape(&v, &expected, "$");
    assert_eq!(
        without(&v, &["requestid"]),
        without(&expected, &["requestid"])
    );
    for (fault, status, code) in [
        (Fault::TokenInvalid, 400, "InvalidAuthentication"),
        (
            Fault::code("InvalidAuthentication"),
            400,
            "InvalidAuthentication",
        ),
        (Fault::RateLimited, 429, "Throttling"),
        (
            Fault::IpNotAllowed,
            403,
            "Forbidden.AccessDenied.IpNotInWhiteList",
        ),
        (Fault::SystemBusy, 503, "ServiceUnavailable"),
        (
            Fault::code("InvalidAction.NotFound"),
            404,
            "InvalidAction.NotFound",
        ),
    ] {
        dt.inject(ep::USERS_ME, fault.clone()).expect("inject");
        let (s, v) = users_me(&http, &dt, Some(user_token)).await;
        assert_eq!(
            (s.as_u16(), v["code"].clone()),
            (status, json!(code)),
            "{fault:?}"
        );
    }

    // Mistakes surface at injection time.
    assert!(matches!(
        dt.inject(ep::GETTOKEN, Fault::code("InvalidAuthentication")),
        Err(FaultError::Unsupported { .. })
    ));
    assert!(matches!(
        dt.inject(ep::USERS_ME, Fault::code(40014)),
        Err(FaultError::Unsupported { .. })
    ));
    assert!(matches!(
        dt.inject(ep::USERS_ME, Fault::code_with_sub(88, 1)),
        Err(FaultError::Unsupported { .. })
    ));
    assert!(matches!(
        dt.inject(ep::AUTHORIZE, Fault::TokenInvalid),
        Err(FaultError::Unsupported { .. })
    ));
    assert!(matches!(
        dt.inject(ep::GETTOKEN, Fault::HttpStatus(42)),
        Err(FaultError::Unsupported { .. })
    ));
    assert!(matches!(
        dt.inject(ep::GETTOKEN, Fault::code(0)),
        Err(FaultError::Unsupported { .. })
    ));
    assert_eq!(
        dt.inject("nope", Fault::Hang),
        Err(FaultError::UnknownEndpoint("nope".into()))
    );
    assert_eq!(dt.harness().pending_faults(), 0);
}

#[tokio::test]
async fn rate_limits_come_as_90002_429_and_the_html_ban_page() {
    let dt = dingtalk::start().await;
    let http = client();
    dt.inject(ep::GETTOKEN, Fault::RateLimited).expect("inject");
    let resp = http
        .get(format!("{}/gettoken", dt.base_url()))
        .query(&[
            ("appkey", DEFAULT_APP_KEY),
            ("appsecret", DEFAULT_APP_SECRET),
        ])
        .send()
        .await
        .expect("send");
    assert_eq!(body_json(resp).await.1["errcode"], 90002);

    for endpoint in [ep::USER_GET, ep::AUTHORIZE] {
        dt.inject(endpoint, Fault::RateLimitPage).expect("inject");
    }
    let token = dt.mint_app_token();
    let resp = http
        .post(format!("{}/topapi/v2/user/get", dt.base_url()))
        .query(&[("access_token", token.as_str())])
        .json(&json!({"userid": DEMO_USER_ID}))
        .send()
        .await
        .expect("send");
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap_or("")
            .starts_with("text/html")
    );
    let body = resp.text().await.expect("body");
    assert!(serde_json::from_str::<Value>(&body).is_err() && body.contains("<html>"));
    let resp = http
        .get(dt.authorize_url("http://localhost/cb", "s"))
        .send()
        .await
        .expect("send");
    assert!(resp.text().await.expect("body").contains("访问过于频繁"));
}

#[tokio::test]
async fn transport_faults_break_responses_the_way_networks_do() {
    let dt = dingtalk::start().await;
    let http = client();
    let url = format!("{}/gettoken", dt.base_url());
    let query = [
        ("appkey", DEFAULT_APP_KEY),
        ("appsecret", DEFAULT_APP_SECRET),
    ];
    let get = || http.get(&url).query(&query).send();

    dt.inject(ep::GETTOKEN, Fault::HttpStatus(503))
        .expect("inject");
    assert_eq!(
        get().await.expect("send").status(),
        StatusCode::SERVICE_UNAVAILABLE
    );

    dt.inject(ep::GETTOKEN, Fault::HtmlErrorPage)
        .expect("inject");
    let resp = get().await.expect("send");
    assert_eq!(resp.status(), StatusCode::BAD_GATEWAY);
    assert!(resp.text().await.expect("body").contains("<html>"));

    dt.inject(ep::GETTOKEN, Fault::TruncatedBody)
        .expect("inject");
    let resp = get().await.expect("send");
    assert_eq!(resp.status(), StatusCode::OK);
    let body = resp.text().await.expect("body");
    assert!(
        body.starts_with("{\"") && serde_json::from_str::<Value>(&body).is_err(),
        "{body}"
    );

    dt.inject(ep::GETTOKEN, Fault::OversizedBody(FIVE_MIB))
        .expect("inject");
    let resp = get().await.expect("send");
    assert_eq!(resp.content_length(), Some(FIVE_MIB as u64));
    assert_eq!(resp.bytes().await.expect("body").len(), FIVE_MIB);

    dt.inject(ep::GETTOKEN, Fault::GarbageBody).expect("inject");
    let bytes = get().await.expect("send").bytes().await.expect("body");
    assert!(std::str::from_utf8(&bytes).is_err());

    dt.inject(ep::GETTOKEN, Fault::Delay(Duration::from_millis(300)))
        .expect("inject");
    let started = Instant::now();
    let (_, v) = body_json(get().await.expect("send")).await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(v["errcode"], 0, "a delayed answer is still the real answer");

    dt.inject(ep::GETTOKEN, Fault::Hang).expect("inject");
    let err = http
        .get(&url)
        .query(&query)
        .timeout(Duration::from_millis(300))
        .send()
        .await
        .expect_err("hung");
    assert!(err.is_timeout(), "{err}");

    let (_, v) = body_json(get().await.expect("send")).await;
    assert_eq!(v["errcode"], 0, "every fault was one-shot");
    assert_eq!(dt.calls(ep::GETTOKEN), 8);
}

#[tokio::test]
async fn a_truncated_code_exchange_still_consumed_the_code() {
    let dt = dingtalk::start().await;
    let http = client();
    let token = dt.mint_app_token();
    let code = dt.issue_h5_code(DEMO_USER_ID);
    dt.inject(ep::GETUSERINFO, Fault::TruncatedBody)
        .expect("inject");
    let resp = http
        .post(format!("{}/topapi/v2/user/getuserinfo", dt.base_url()))
        .query(&[("access_token", token.as_str())])
        .json(&json!({"code": code}))
        .send()
        .await
        .expect("send");
    assert!(serde_json::from_str::<Value>(&resp.text().await.expect("body")).is_err());
    let (_, v) = oapi(
        &http,
        &dt,
        "/topapi/v2/user/getuserinfo",
        &token,
        json!({"code": code}),
    )
    .await;
    assert_eq!(v["errcode"], 40078);
}

#[tokio::test]
async fn faults_repeat_n_times_always_and_on_any_endpoint_until_cleared() {
    let dt = dingtalk::start().await;
    let http = client();
    let token = dt.mint_app_token();
    let detail = || {
        oapi(
            &http,
            &dt,
            "/topapi/v2/user/get",
            &token,
            json!({"userid": DEMO_USER_ID}),
        )
    };
    dt.inject_fault(ep::USER_GET, Fault::SystemBusy, Times::N(2))
        .expect("inject");
    assert_eq!(detail().await.1["errcode"], -1);
    assert_eq!(detail().await.1["errcode"], -1);
    assert_eq!(detail().await.1["errcode"], 0);

    dt.inject_fault(ANY_ENDPOINT, Fault::HttpStatus(500), Times::Always)
        .expect("inject");
    for _ in 0..3 {
        let resp = http
            .get(format!("{}/v1.0/contact/users/me", dt.base_url()))
            .send()
            .await
            .expect("send");
        assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
    dt.clear_faults();
    assert_eq!(detail().await.1["errcode"], 0);
    assert!(
        matches!(
            dt.inject_fault(ANY_ENDPOINT, Fault::code(40014), Times::Once),
            Err(FaultError::Unsupported { .. })
        ),
        "a numeric code cannot apply to api endpoints"
    );
}

#[tokio::test]
async fn added_users_render_without_the_fields_they_lack() {
    let dt = dingtalk::start().await;
    let http = client();
    dt.add_user(FakeUser::new("bare").name("Bare Person"));
    let token = dt.mint_app_token();
    let (_, v) = oapi(
        &http,
        &dt,
        "/topapi/v2/user/get",
        &token,
        json!({"userid": "bare"}),
    )
    .await;
    let r = &v["result"];
    assert_eq!(r["name"], "Bare Person");
    for absent in [
        "mobile",
        "state_code",
        "email",
        "avatar",
        "org_email",
        "hired_date",
        "title",
    ] {
        assert!(r.get(absent).is_none(), "{absent} should be absent: {r}");
    }
    assert_eq!(r["dept_id_list"], json!([1]));
    let code = dt.approve_web_login("bare");
    let (_, tok) = exchange_web_code(&http, &dt, &code).await;
    let (_, me) = users_me(&http, &dt, tok["accessToken"].as_str()).await;
    assert_eq!(
        me,
        json!({"nick": "Bare Person", "openId": "openid-bare", "unionId": "unionid-bare", "visitor": false})
    );
    assert!(dt.remove_user("bare").is_some());
    let (_, v) = oapi(
        &http,
        &dt,
        "/topapi/v2/user/get",
        &token,
        json!({"userid": "bare"}),
    )
    .await;
    assert_eq!(v["errcode"], 60121);
}

#[tokio::test]
async fn the_fake_platform_trait_object_drives_the_fake() {
    let dt = dingtalk::start().await;
    let http = client();
    let p: &dyn FakePlatform = &dt;
    assert_eq!(p.name(), "dingtalk");
    assert_eq!(p.endpoints().len(), 9);
    for role in [
        EndpointRole::AppToken,
        EndpointRole::H5CodeExchange,
        EndpointRole::UserDetail,
        EndpointRole::Membership,
        EndpointRole::Authorize,
        EndpointRole::WebCodeExchange,
        EndpointRole::WebUserInfo,
    ] {
        let names = p.endpoints_for(role);
        assert!(
            !names.is_empty() && names.iter().all(|n| p.endpoints().contains(n)),
            "{role:?}"
        );
    }
    let creds = p.credentials();
    assert_eq!(
        (creds.app_key.as_str(), creds.corp_id.as_str()),
        (DEFAULT_APP_KEY, DEFAULT_CORP_ID)
    );
    assert_eq!(creds.agent_id, dingtalk::DEFAULT_AGENT_ID);
    assert_eq!(p.demo_user_id(), DEMO_USER_ID);
    assert_eq!(p.outsider_user_id().as_deref(), Some(OUTSIDER_USER_ID));

    p.add_user(FakeUser::new("u9"));
    let code = p.issue_h5_code("u9");
    p.inject(ep::GETUSERINFO, Fault::CodeInvalid)
        .expect("inject");
    let token = gettoken(&http, &dt).await;
    let (_, v) = oapi(
        &http,
        &dt,
        "/topapi/v2/user/getuserinfo",
        &token,
        json!({"code": code}),
    )
    .await;
    assert_eq!(v["errcode"], 40078);
    let (_, v) = oapi(
        &http,
        &dt,
        "/topapi/v2/user/getuserinfo",
        &token,
        json!({"code": code}),
    )
    .await;
    assert_eq!(v["result"]["userid"], "u9");
    assert_eq!(p.calls(ep::GETUSERINFO), 2);
    assert_eq!(p.total_calls(), 3);
    p.revoke_app_tokens();
    let (_, v) = oapi(
        &http,
        &dt,
        "/topapi/v2/user/get",
        &token,
        json!({"userid": "u9"}),
    )
    .await;
    assert_eq!(v["errcode"], 40014);
    p.advance_clock(Duration::from_secs(301));
    let (status, _) = exchange_web_code(&http, &dt, &p.approve_web_login("u9")).await;
    assert_eq!(status, StatusCode::OK);
    p.reset_calls();
    assert_eq!(p.total_calls(), 0);
}

#[tokio::test]
async fn fakes_are_isolated_and_stop_when_dropped_or_shut_down() {
    let a = dingtalk::start().await;
    let b = dingtalk::start().await;
    assert_ne!(a.base_url(), b.base_url());
    let http = client();
    let token_a = gettoken(&http, &a).await;
    let (_, v) = oapi(
        &http,
        &b,
        "/topapi/v2/user/get",
        &token_a,
        json!({"userid": DEMO_USER_ID}),
    )
    .await;
    assert_eq!(
        v["errcode"], 40014,
        "tokens of one fake mean nothing to another"
    );
    assert_eq!(b.calls(ep::GETTOKEN), 0);

    // A hung request is released by shutdown, which completes promptly.
    b.inject(ep::GETTOKEN, Fault::Hang).expect("inject");
    let hung = tokio::spawn({
        let http = http.clone();
        let url = format!("{}/gettoken", b.base_url());
        async move { http.get(url).send().await.map(|r| r.status()) }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let b_url = b.base_url().to_owned();
    let started = Instant::now();
    b.shutdown().await;
    assert!(started.elapsed() < Duration::from_secs(5));
    let outcome = hung.await.expect("join");
    assert!(
        outcome
            .map(|s| s == StatusCode::SERVICE_UNAVAILABLE)
            .unwrap_or(true)
    );
    assert!(http.get(format!("{b_url}/gettoken")).send().await.is_err());

    let a_url = a.base_url().to_owned();
    drop(a);
    let mut stopped = false;
    for _ in 0..50 {
        let fresh = client();
        if fresh.get(format!("{a_url}/gettoken")).send().await.is_err() {
            stopped = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(stopped, "dropped fake still answers");
}
