//! The DingTalk fake behaves like `reference/platforms.md` §2 and `fixtures/dingtalk/*.json`:
//! real HTTP on loopback with reqwest, as a platform client would talk to it.

mod common;

use std::time::{Duration, Instant};

use common::{
    Http, assert_reset, assert_same_shape, body_json, fixture, is_html, json, location, query,
    send, started, text, without,
};
use reqwest::StatusCode;
use serde_json::{Value, json};
use unilogin_testkit::dingtalk::{
    self, DEFAULT_APP_KEY, DEFAULT_APP_SECRET, DEFAULT_CORP_ID, DEMO_USER_ID, FakeApp,
    OUTSIDER_USER_ID, endpoints as ep,
};
use unilogin_testkit::fixtures::dingtalk as fx;
use unilogin_testkit::{
    ANY_ENDPOINT, EndpointRole, FIVE_MIB, FakePlatform, FakeUser, Fault, FaultError, Times,
    UNMATCHED,
};

const GETTOKEN: &str = "/gettoken";
const ACCESS_TOKEN: &str = "/v1.0/oauth2/accessToken";
const GETUSERINFO: &str = "/topapi/v2/user/getuserinfo";
const USER_GET: &str = "/topapi/v2/user/get";
const GETBYUNIONID: &str = "/topapi/user/getbyunionid";
const USER_ACCESS_TOKEN: &str = "/v1.0/oauth2/userAccessToken";
const USERS_ME: &str = "/v1.0/contact/users/me";
const AUTHORIZE: &str = "/oauth2/auth";
const APPROVE: &str = "/oauth2/approve";
const CREDS: [(&str, &str); 2] = [
    ("appkey", DEFAULT_APP_KEY),
    ("appsecret", DEFAULT_APP_SECRET),
];

async fn gettoken(http: &Http) -> String {
    let (status, v) = json(http.get(GETTOKEN).query(&CREDS)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(v["errcode"], 0, "{v}");
    v["access_token"].as_str().expect("token").to_owned()
}

/// An oapi POST with `?access_token=` and a JSON body.
async fn oapi(http: &Http, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
    json(
        http.post(path)
            .query(&[("access_token", token)])
            .json(&body),
    )
    .await
}

/// `topapi/v2/user/get` for `user`.
async fn user_get(http: &Http, token: &str, user: &str) -> (StatusCode, Value) {
    oapi(http, USER_GET, token, json!({ "userid": user })).await
}

/// An api POST with a JSON body.
async fn api(http: &Http, path: &str, body: Value) -> (StatusCode, Value) {
    json(http.post(path).json(&body)).await
}

async fn exchange_web_code(http: &Http, code: &str) -> (StatusCode, Value) {
    let body = json!({"clientId": DEFAULT_APP_KEY, "clientSecret": DEFAULT_APP_SECRET,
                      "code": code, "grantType": "authorization_code"});
    api(http, USER_ACCESS_TOKEN, body).await
}

async fn users_me(http: &Http, token: Option<&str>) -> (StatusCode, Value) {
    let mut req = http.get(USERS_ME);
    if let Some(t) = token {
        req = req.header("x-acs-dingtalk-access-token", t);
    }
    json(req).await
}

fn assert_oapi_error(v: &Value, expected: &str) {
    let expected = fixture(expected);
    assert_same_shape(v, &expected);
    assert_eq!(v["errcode"], expected["errcode"], "{v}");
    assert_eq!(v["errmsg"], expected["errmsg"], "{v}");
}

#[tokio::test]
async fn h5_login_happy_path_has_fixture_shapes_and_counts_calls() {
    let (dt, http) = started(dingtalk::start()).await;
    let code = dt.issue_h5_code(DEMO_USER_ID);

    let token = gettoken(&http).await;
    let (_, v) = json(http.get(GETTOKEN).query(&CREDS)).await;
    assert_same_shape(&v, &fixture(fx::OAPI_GETTOKEN));
    assert_eq!(v["expires_in"], 7200);

    let (status, info) = oapi(&http, GETUSERINFO, &token, json!({"code": code})).await;
    assert_eq!(status, StatusCode::OK);
    let expected = fixture(fx::TOPAPI_V2_USER_GETUSERINFO);
    assert_same_shape(&info, &expected);
    assert_eq!(
        without(&info["result"], &["device_id"]),
        without(&expected["result"], &["device_id"])
    );

    let body = json!({"userid": info["result"]["userid"], "language": "zh_CN"});
    let (status, detail) = oapi(&http, USER_GET, &token, body).await;
    assert_eq!(status, StatusCode::OK);
    let expected = fixture(fx::TOPAPI_V2_USER_GET);
    assert_same_shape(&detail, &expected);
    let per_dept = ["dept_order_list", "leader_in_dept"];
    assert_eq!(
        without(&detail["result"], &per_dept),
        without(&expected["result"], &per_dept)
    );
    for key in per_dept {
        let list = detail["result"][key].as_array().expect("list");
        let first = &expected["result"][key][0];
        assert!(list.contains(first), "{key}: {list:?}");
    }

    assert_eq!(dt.calls(ep::GETTOKEN), 2);
    assert_eq!(dt.calls(ep::GETUSERINFO), 1);
    assert_eq!(dt.calls(ep::USER_GET), 1);
    assert_eq!(dt.total_calls(), 4);
    assert_reset(&dt);
}

#[tokio::test]
async fn web_login_through_the_authorize_page_matches_fixtures() {
    let (dt, http) = started(dingtalk::start()).await;
    let state = "a b&c=d/é?";
    let redirect = "http://127.0.0.1:9/callback?x=1";
    let page = send(http.client.get(dt.authorize_url(redirect, state))).await;
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

    let form = [
        ("client_id", DEFAULT_APP_KEY),
        ("redirect_uri", redirect),
        ("scope", "openid corpid"),
        ("state", state),
        ("user_id", DEMO_USER_ID),
        ("action", "approve"),
    ];
    let resp = send(http.post(APPROVE).form(&form)).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    let url = location(&resp);
    assert_eq!(url.path(), "/callback");
    let q = query(&url);
    assert_eq!(q["x"], "1");
    assert_eq!(q["state"], state, "state echoed unchanged");

    let (status, tok) = exchange_web_code(&http, &q["authCode"]).await;
    assert_eq!(status, StatusCode::OK, "{tok}");
    assert_same_shape(&tok, &fixture(fx::V1_OAUTH2_USER_ACCESS_TOKEN));
    assert_eq!(tok["corpId"], DEFAULT_CORP_ID);
    assert_eq!(tok["expireIn"], 7200);

    let (status, me) = users_me(&http, tok["accessToken"].as_str()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me, fixture(fx::V1_CONTACT_USERS_ME));

    let app_token = gettoken(&http).await;
    let body = json!({"unionid": me["unionId"]});
    let (_, by_union) = oapi(&http, GETBYUNIONID, &app_token, body).await;
    let expected = fixture(fx::TOPAPI_USER_GETBYUNIONID);
    assert_same_shape(&by_union, &expected);
    assert_eq!(by_union["result"], expected["result"]);

    // Deny sends the user back with an error and the state.
    let deny = [
        ("client_id", DEFAULT_APP_KEY),
        ("redirect_uri", "https://app.example.com/cb"),
        ("scope", "openid"),
        ("state", "s1"),
        ("action", "deny"),
    ];
    let resp = send(http.post(APPROVE).form(&deny)).await;
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        resp.headers()["location"],
        "https://app.example.com/cb?error=access_denied&state=s1"
    );
}

#[tokio::test]
async fn authorize_page_rejects_bad_parameters_with_an_html_error() {
    let (dt, http) = started(dingtalk::start()).await;
    let good = [
        ("client_id", DEFAULT_APP_KEY),
        ("response_type", "code"),
        ("redirect_uri", "https://sso.example.com/cb"),
        ("scope", "openid"),
        ("state", "st"),
        ("prompt", "login consent"),
    ];
    let resp = send(http.get(AUTHORIZE).query(&good)).await;
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
        let resp = send(http.get(AUTHORIZE).query(&params)).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{name}={value:?}");
        assert!(is_html(&resp));
    }
    // The approve endpoint validates the same way and only takes browser forms.
    let body = json!({"client_id": DEFAULT_APP_KEY});
    let resp = send(http.post(APPROVE).json(&body)).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    let form = [
        ("client_id", DEFAULT_APP_KEY),
        ("redirect_uri", "https://evil.test/cb"),
        ("scope", "openid"),
        ("user_id", DEMO_USER_ID),
    ];
    let resp = send(http.post(APPROVE).form(&form)).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(dt.calls(ep::AUTHORIZE), 10);
    assert_eq!(dt.calls(ep::APPROVE), 2);
}

#[tokio::test]
async fn outsider_logs_in_on_the_web_but_is_not_a_member() {
    let (dt, http) = started(dingtalk::start()).await;
    let code = dt.approve_web_login(OUTSIDER_USER_ID);
    let (status, tok) = exchange_web_code(&http, &code).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(tok["corpId"], dingtalk::OTHER_CORP_ID);
    let (_, me) = users_me(&http, tok["accessToken"].as_str()).await;
    assert_eq!(me["unionId"], "unionid-outsider001");

    let app_token = gettoken(&http).await;
    let body = json!({"unionid": me["unionId"]});
    let (status, v) = oapi(&http, GETBYUNIONID, &app_token, body).await;
    assert_eq!(status, StatusCode::OK);
    assert_oapi_error(&v, fx::ERROR_60121_USER_NOT_FOUND);
    let (_, v) = user_get(&http, &app_token, OUTSIDER_USER_ID).await;
    assert_eq!(v["errcode"], 60121);
    // An in-app code of another organisation is not valid for this app.
    let h5 = dt.issue_h5_code(OUTSIDER_USER_ID);
    let (_, v) = oapi(&http, GETUSERINFO, &app_token, json!({"code": h5})).await;
    assert_oapi_error(&v, fx::ERROR_40078_INVALID_CODE);
}

#[tokio::test]
async fn h5_code_is_single_use_and_expires_after_five_minutes() {
    let (dt, http) = started(dingtalk::start()).await;
    let token = dt.mint_app_token();
    let exchange = |code: String| oapi(&http, GETUSERINFO, &token, json!({ "code": code }));
    let code = dt.issue_h5_code(DEMO_USER_ID);
    assert_eq!(exchange(code.clone()).await.1["errcode"], 0);
    let (_, v) = exchange(code).await;
    assert_oapi_error(&v, fx::ERROR_40078_INVALID_CODE);

    let almost = dt.issue_h5_code(DEMO_USER_ID);
    let late = dt.issue_h5_code(DEMO_USER_ID);
    dt.advance_clock(Duration::from_secs(299));
    let (_, v) = exchange(almost).await;
    assert_eq!(v["errcode"], 0, "a code is valid just under 5 minutes");
    dt.advance_clock(Duration::from_secs(1));
    let (_, v) = exchange(late).await;
    assert_eq!(v["errcode"], 40078, "a code expires at 5 minutes");
    // Unknown users and made-up codes get the same answer; so does a missing code (40035).
    let (_, v) = exchange(dt.issue_h5_code("nobody")).await;
    assert_eq!(v["errcode"], 40078);
    let (_, v) = oapi(&http, GETUSERINFO, &token, json!({})).await;
    assert_eq!(v["errcode"], 40035);
}

#[tokio::test]
async fn a_rejected_token_does_not_burn_the_code() {
    let (dt, http) = started(dingtalk::start()).await;
    let code = dt.issue_h5_code(DEMO_USER_ID);
    let body = json!({ "code": code });
    let (status, v) = oapi(&http, GETUSERINFO, "fake_dt_app_token_bogus", body.clone()).await;
    assert_eq!(status, StatusCode::OK);
    assert_oapi_error(&v, fx::ERROR_40014_INVALID_TOKEN);
    // No token at all is the same answer.
    let (_, v) = json(http.post(GETUSERINFO).json(&body)).await;
    assert_eq!(v["errcode"], 40014);
    // A faulted request does not reach the code either.
    dt.inject(ep::GETUSERINFO, Fault::TokenInvalid)
        .expect("inject");
    let token = gettoken(&http).await;
    let (_, v) = oapi(&http, GETUSERINFO, &token, body.clone()).await;
    assert_eq!(v["errcode"], 40014);
    let (_, v) = oapi(&http, GETUSERINFO, &token, body).await;
    assert_eq!(v["errcode"], 0, "code still usable: {v}");
    assert_eq!(dt.calls(ep::GETUSERINFO), 4);
}

#[tokio::test]
async fn oapi_accepts_form_bodies_too() {
    let (_dt, http) = started(dingtalk::start()).await;
    let token = gettoken(&http).await;
    let req = http
        .post(USER_GET)
        .query(&[("access_token", token.as_str())]);
    let (_, v) = json(req.form(&[("userid", DEMO_USER_ID)])).await;
    assert_eq!(v["result"]["userid"], DEMO_USER_ID);
}

#[tokio::test]
async fn wrong_credentials_are_rejected_on_both_generations() {
    let (dt, http) = started(dingtalk::start()).await;
    for (key, secret) in [(DEFAULT_APP_KEY, "wrong"), ("unknown", DEFAULT_APP_SECRET)] {
        let creds = [("appkey", key), ("appsecret", secret)];
        let (status, v) = json(http.get(GETTOKEN).query(&creds)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(v["errcode"], 40096, "what the live API answers");
        assert_eq!(v["errmsg"], "不合法的appKey或appSecret");
        assert!(v.get("access_token").is_none());
    }
    let (_, v) = json(http.get(GETTOKEN).query(&CREDS[..1])).await;
    assert_eq!(v["errcode"], 40035);

    let body = json!({"appKey": DEFAULT_APP_KEY, "appSecret": "wrong"});
    let (status, v) = api(&http, ACCESS_TOKEN, body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(v["code"], dingtalk::API_INVALID_CLIENT);
    assert!(v["requestid"].is_string() && v["message"].is_string());

    // A bad client secret on the code exchange does not burn the code.
    let code = dt.approve_web_login(DEMO_USER_ID);
    let body = json!({"clientId": DEFAULT_APP_KEY, "clientSecret": "wrong", "code": code,
                      "grantType": "authorization_code"});
    let (status, v) = api(&http, USER_ACCESS_TOKEN, body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(v["code"], dingtalk::API_INVALID_CLIENT);
    let (status, _) = exchange_web_code(&http, &code).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn app_tokens_are_reused_while_live_expire_after_7200s_and_both_endpoints_share_them() {
    let (dt, http) = started(dingtalk::start()).await;
    let t1 = gettoken(&http).await;
    let t2 = gettoken(&http).await;
    assert_eq!(t1, t2, "re-fetching within validity returns the same token");
    let body = json!({"appKey": DEFAULT_APP_KEY, "appSecret": DEFAULT_APP_SECRET});
    let (status, v) = api(&http, ACCESS_TOKEN, body).await;
    assert_eq!(status, StatusCode::OK);
    assert_same_shape(&v, &fixture(fx::V1_OAUTH2_ACCESS_TOKEN));
    assert_eq!(v["accessToken"], t1.as_str());

    dt.advance_clock(Duration::from_secs(7199));
    assert_eq!(user_get(&http, &t1, DEMO_USER_ID).await.1["errcode"], 0);
    dt.advance_clock(Duration::from_secs(1));
    let (_, v) = user_get(&http, &t1, DEMO_USER_ID).await;
    assert_oapi_error(&v, fx::ERROR_40014_INVALID_TOKEN);
    let t3 = gettoken(&http).await;
    assert_ne!(t3, t1);

    // Tokens are per app: a second app of the same organisation gets its own.
    dt.add_app(FakeApp::new(
        "dingsecondapp",
        "second-secret",
        DEFAULT_CORP_ID,
    ));
    let creds = [("appkey", "dingsecondapp"), ("appsecret", "second-secret")];
    let (_, v) = json(http.get(GETTOKEN).query(&creds)).await;
    assert_ne!(v["access_token"], t3.as_str());
}

#[tokio::test]
async fn revoked_app_tokens_are_rejected_and_replaced() {
    let (dt, http) = started(dingtalk::start()).await;
    let old = gettoken(&http).await;
    dt.revoke_app_tokens();
    let by_union = json!({"unionid": "unionid-user001"});
    let (_, v) = oapi(&http, GETBYUNIONID, &old, by_union.clone()).await;
    assert_oapi_error(&v, fx::ERROR_40014_INVALID_TOKEN);
    let body = json!({"appKey": DEFAULT_APP_KEY, "appSecret": DEFAULT_APP_SECRET});
    let (_, v) = api(&http, ACCESS_TOKEN, body).await;
    let new = v["accessToken"].as_str().expect("token");
    assert_ne!(new, old);
    let (_, v) = oapi(&http, GETBYUNIONID, new, by_union).await;
    assert_eq!(
        v["result"]["userid"], DEMO_USER_ID,
        "v1 app token works on oapi"
    );
}

#[tokio::test]
async fn api_endpoints_reject_form_bodies_and_missing_fields_with_http_400() {
    let (_dt, http) = started(dingtalk::start()).await;
    for path in [ACCESS_TOKEN, USER_ACCESS_TOKEN] {
        let form = [
            ("appKey", DEFAULT_APP_KEY),
            ("appSecret", DEFAULT_APP_SECRET),
        ];
        let (status, v) = json(http.post(path).form(&form)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(v["code"], "Missingbody");
        assert_eq!(v["message"], "body is mandatory for this action.");
        assert!(v["requestid"].is_string());
    }
    let body = json!({ "appKey": DEFAULT_APP_KEY });
    let (status, v) = api(&http, ACCESS_TOKEN, body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(v["code"], "MissingappSecret");
    for (grant, code) in [
        ("authorization_code", "Missingcode"),
        ("password", "InvalidParameter"),
    ] {
        let body = json!({"clientId": DEFAULT_APP_KEY, "clientSecret": DEFAULT_APP_SECRET,
                          "grantType": grant});
        let (status, v) = api(&http, USER_ACCESS_TOKEN, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(v["code"], code);
    }
}

#[tokio::test]
async fn users_me_needs_the_header_with_a_user_token() {
    let (dt, http) = started(dingtalk::start()).await;
    let expected = fixture(fx::V1_ERROR_INVALID_AUTHENTICATION);
    let app_token = gettoken(&http).await;
    for token in [None, Some(""), Some("nonsense"), Some(app_token.as_str())] {
        let (status, v) = users_me(&http, token).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{token:?}");
        assert_same_shape(&v, &expected);
        assert_eq!(v["code"], expected["code"]);
    }
    // The token in the query string (oapi style) is not how this API authenticates.
    let code = dt.approve_web_login(DEMO_USER_ID);
    let (_, tok) = exchange_web_code(&http, &code).await;
    let user_token = tok["accessToken"].as_str().expect("token");
    let resp = send(http.get(USERS_ME).query(&[("access_token", user_token)])).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    dt.advance_clock(Duration::from_secs(7200));
    let (status, _) = users_me(&http, Some(user_token)).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "user tokens expire after 7200 s"
    );
}

#[tokio::test]
async fn web_codes_are_single_use_bound_to_the_client_and_expire() {
    let (dt, http) = started(dingtalk::start()).await;
    dt.add_app(FakeApp::new(
        "dingotherapp",
        "other-secret",
        DEFAULT_CORP_ID,
    ));
    let code = dt.approve_web_login(DEMO_USER_ID);
    let body = json!({"clientId": "dingotherapp", "clientSecret": "other-secret", "code": code,
                      "grantType": "authorization_code"});
    let (status, v) = api(&http, USER_ACCESS_TOKEN, body).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(v["code"], dingtalk::API_INVALID_AUTH_CODE);
    let (status, _) = exchange_web_code(&http, &code).await;
    assert_eq!(
        status,
        StatusCode::OK,
        "another client's attempt did not burn it"
    );
    let (status, v) = exchange_web_code(&http, &code).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(v["code"], dingtalk::API_INVALID_AUTH_CODE);

    let code = dt.approve_web_login(DEMO_USER_ID);
    dt.advance_clock(Duration::from_secs(300));
    let (status, _) = exchange_web_code(&http, &code).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // Without the corpid scope there is no corpId.
    let code = dt.approve_web_login_with(DEFAULT_APP_KEY, DEMO_USER_ID, "openid");
    let (_, v) = exchange_web_code(&http, &code).await;
    assert!(v.get("corpId").is_none(), "{v}");
}

#[tokio::test]
async fn refresh_tokens_issue_new_tokens_for_30_days() {
    let (dt, http) = started(dingtalk::start()).await;
    let code = dt.approve_web_login(DEMO_USER_ID);
    let (_, first) = exchange_web_code(&http, &code).await;
    let refresh = |token: &str| {
        let body = json!({"clientId": DEFAULT_APP_KEY, "clientSecret": DEFAULT_APP_SECRET,
                          "refreshToken": token, "grantType": "refresh_token"});
        api(&http, USER_ACCESS_TOKEN, body)
    };
    dt.advance_clock(Duration::from_secs(7200));
    let (status, second) = refresh(first["refreshToken"].as_str().expect("rt")).await;
    assert_eq!(status, StatusCode::OK, "{second}");
    assert_same_shape(&second, &fixture(fx::V1_OAUTH2_USER_ACCESS_TOKEN));
    assert_ne!(second["accessToken"], first["accessToken"]);
    let (status, me) = users_me(&http, second["accessToken"].as_str()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(me["unionId"], "unionid-user001");

    let (status, v) = refresh("fake_dt_refresh_bogus").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(v["code"], dingtalk::API_INVALID_REFRESH_TOKEN);
    dt.advance_clock(Duration::from_secs(30 * 24 * 3600));
    let (status, _) = refresh(second["refreshToken"].as_str().expect("rt")).await;
    assert_eq!(
        status,
        StatusCode::BAD_REQUEST,
        "refresh tokens live 30 days"
    );
}

#[tokio::test]
async fn wrong_methods_and_unknown_paths_are_answered_and_counted() {
    let (dt, http) = started(dingtalk::start()).await;
    let (status, v) = json(http.get(USER_GET)).await;
    assert_eq!(
        (status, v["errcode"].clone()),
        (StatusCode::OK, json!(43002))
    );
    assert_eq!(json(http.post(GETTOKEN)).await.1["errcode"], 43001);
    let (status, v) = json(http.get(USER_ACCESS_TOKEN)).await;
    assert_eq!(
        (status, v["code"].clone()),
        (StatusCode::NOT_FOUND, json!("InvalidAction.NotFound"))
    );
    let resp = send(http.get("/v1.0/nothing")).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let (status, v) = json(http.get("/topapi/nothing")).await;
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
    let (dt, http) = started(dingtalk::start()).await;
    let token = dt.mint_app_token();
    let detail = || user_get(&http, &token, DEMO_USER_ID);

    dt.inject(ep::USER_GET, Fault::code(60020)).expect("inject");
    let (status, v) = detail().await;
    assert_eq!(status, StatusCode::OK);
    assert_oapi_error(&v, fx::ERROR_60020_IP_WHITELIST);

    dt.inject(ep::USER_GET, Fault::code_with_sub(88, 60011))
        .expect("inject");
    let (_, v) = detail().await;
    let expected = fixture(fx::ERROR_88_SUBCODE);
    assert_same_shape(&v, &expected);
    assert_eq!(
        without(&v, &["request_id"]),
        without(&expected, &["request_id"])
    );

    dt.inject(ep::USER_GET, Fault::PermissionDenied)
        .expect("inject");
    assert_eq!(detail().await.1["sub_code"], "60011");
    dt.inject(ep::USER_GET, Fault::code_with_sub(88, 40014))
        .expect("inject");
    assert_eq!(detail().await.1["sub_code"], "40014");
    for (fault, errcode) in [
        (Fault::TokenInvalid, 40014),
        (Fault::CodeInvalid, 40078),
        (Fault::RateLimited, 90002),
        (Fault::IpNotAllowed, 60020),
        (Fault::SystemBusy, -1),
        (Fault::code(42001), 42001),
    ] {
        dt.inject(ep::USER_GET, fault.clone()).expect("inject");
        let (status, v) = detail().await;
        assert_eq!(
            (status, v["errcode"].clone()),
            (StatusCode::OK, json!(errcode)),
            "{fault:?}"
        );
        assert!(v["errmsg"].is_string());
    }
    assert_eq!(detail().await.1["errcode"], 0, "faults were one-shot");

    let code = dt.approve_web_login(DEMO_USER_ID);
    let (_, tok) = exchange_web_code(&http, &code).await;
    let user_token = tok["accessToken"].as_str();
    dt.inject(ep::USERS_ME, Fault::PermissionDenied)
        .expect("inject");
    let (status, v) = users_me(&http, user_token).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let expected = fixture(fx::V1_ERROR_PERMISSION_DENIED);
    assert_same_shape(&v, &expected);
    assert_eq!(
        without(&v, &["requestid"]),
        without(&expected, &["requestid"])
    );
    let forbidden = "Forbidden.AccessDenied.IpNotInWhiteList";
    for (fault, status, code) in [
        (Fault::TokenInvalid, 400, "InvalidAuthentication"),
        (
            Fault::code("InvalidAuthentication"),
            400,
            "InvalidAuthentication",
        ),
        (
            Fault::RateLimited,
            403,
            "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi",
        ),
        (Fault::IpNotAllowed, 403, forbidden),
        (Fault::SystemBusy, 503, "ServiceUnavailable"),
        (
            Fault::code("InvalidAction.NotFound"),
            404,
            "InvalidAction.NotFound",
        ),
    ] {
        dt.inject(ep::USERS_ME, fault.clone()).expect("inject");
        let (s, v) = users_me(&http, user_token).await;
        assert_eq!(
            (s.as_u16(), v["code"].clone()),
            (status, json!(code)),
            "{fault:?}"
        );
    }

    // Mistakes surface at injection time.
    for (endpoint, fault) in [
        (ep::GETTOKEN, Fault::code("InvalidAuthentication")),
        (ep::USERS_ME, Fault::code(40014)),
        (ep::USERS_ME, Fault::code_with_sub(88, 1)),
        (ep::AUTHORIZE, Fault::TokenInvalid),
        (ep::GETTOKEN, Fault::HttpStatus(42)),
        (ep::GETTOKEN, Fault::code(0)),
    ] {
        assert!(
            matches!(
                dt.inject(endpoint, fault.clone()),
                Err(FaultError::Unsupported { .. })
            ),
            "{endpoint} {fault:?}"
        );
    }
    assert_eq!(
        dt.inject("nope", Fault::Hang),
        Err(FaultError::UnknownEndpoint("nope".into()))
    );
    assert_eq!(dt.harness().pending_faults(), 0);
}

#[tokio::test]
async fn rate_limits_come_as_90002_403_qps_limit_and_the_html_ban_page() {
    let (dt, http) = started(dingtalk::start()).await;
    dt.inject(ep::GETTOKEN, Fault::RateLimited).expect("inject");
    let (_, v) = json(http.get(GETTOKEN).query(&CREDS)).await;
    assert_eq!(v["errcode"], 90002);

    // The v1.0 API throttles with HTTP 403 (not 429) and a `Forbidden.AccessDenied.Qp?Limit*` code.
    let creds = json!({"appKey": DEFAULT_APP_KEY, "appSecret": DEFAULT_APP_SECRET});
    dt.inject(ep::OAUTH2_ACCESS_TOKEN, Fault::RateLimited)
        .expect("inject");
    let (status, v) = api(&http, ACCESS_TOKEN, creds.clone()).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(v["code"], dingtalk::API_THROTTLED);
    assert_eq!(v["code"], "Forbidden.AccessDenied.QpsLimitForAppkeyAndApi");
    assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()), "{v}");
    assert!(
        v["requestid"].as_str().is_some_and(|r| !r.is_empty()),
        "{v}"
    );
    let mut keys: Vec<_> = v.as_object().expect("object").keys().cloned().collect();
    keys.sort();
    assert_eq!(keys, ["code", "message", "requestid"]);
    for code in [
        "Forbidden.AccessDenied.QpsLimitForApi",
        "Forbidden.AccessDenied.QpmLimitForAppkeyAndApi",
    ] {
        dt.inject(ep::OAUTH2_ACCESS_TOKEN, Fault::code(code))
            .expect("inject");
        let (status, v) = api(&http, ACCESS_TOKEN, creds.clone()).await;
        assert_eq!(
            (status, v["code"].as_str()),
            (StatusCode::FORBIDDEN, Some(code))
        );
    }
    let (status, v) = api(&http, ACCESS_TOKEN, creds).await;
    assert_eq!(status, StatusCode::OK, "faults were one-shot: {v}");

    for endpoint in [ep::USER_GET, ep::AUTHORIZE] {
        dt.inject(endpoint, Fault::RateLimitPage).expect("inject");
    }
    let token = dt.mint_app_token();
    let req = http
        .post(USER_GET)
        .query(&[("access_token", token.as_str())]);
    let resp = send(req.json(&json!({ "userid": DEMO_USER_ID }))).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(is_html(&resp));
    let body = resp.text().await.expect("body");
    assert!(serde_json::from_str::<Value>(&body).is_err() && body.contains("<html>"));
    let url = dt.authorize_url("http://localhost/cb", "s");
    let (_, page) = text(http.client.get(url)).await;
    assert!(page.contains("访问过于频繁"));
}

#[tokio::test]
async fn transport_faults_break_responses_the_way_networks_do() {
    let (dt, http) = started(dingtalk::start()).await;
    let get = || send(http.get(GETTOKEN).query(&CREDS));

    dt.inject(ep::GETTOKEN, Fault::HttpStatus(503))
        .expect("inject");
    assert_eq!(get().await.status(), StatusCode::SERVICE_UNAVAILABLE);

    dt.inject(ep::GETTOKEN, Fault::HtmlErrorPage)
        .expect("inject");
    let resp = get().await;
    assert_eq!(resp.status(), StatusCode::BAD_GATEWAY);
    assert!(resp.text().await.expect("body").contains("<html>"));

    dt.inject(ep::GETTOKEN, Fault::TruncatedBody)
        .expect("inject");
    let resp = get().await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body = resp.text().await.expect("body");
    assert!(
        body.starts_with("{\"") && serde_json::from_str::<Value>(&body).is_err(),
        "{body}"
    );

    dt.inject(ep::GETTOKEN, Fault::OversizedBody(FIVE_MIB))
        .expect("inject");
    let resp = get().await;
    assert_eq!(resp.content_length(), Some(FIVE_MIB as u64));
    assert_eq!(resp.bytes().await.expect("body").len(), FIVE_MIB);

    dt.inject(ep::GETTOKEN, Fault::GarbageBody).expect("inject");
    let bytes = get().await.bytes().await.expect("body");
    assert!(std::str::from_utf8(&bytes).is_err());

    dt.inject(ep::GETTOKEN, Fault::Delay(Duration::from_millis(300)))
        .expect("inject");
    let started = Instant::now();
    let (_, v) = body_json(get().await).await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(v["errcode"], 0, "a delayed answer is still the real answer");

    dt.inject(ep::GETTOKEN, Fault::Hang).expect("inject");
    let err = http
        .get(GETTOKEN)
        .query(&CREDS)
        .timeout(Duration::from_millis(300))
        .send()
        .await
        .expect_err("hung");
    assert!(err.is_timeout(), "{err}");

    let (_, v) = body_json(get().await).await;
    assert_eq!(v["errcode"], 0, "every fault was one-shot");
    assert_eq!(dt.calls(ep::GETTOKEN), 8);
}

#[tokio::test]
async fn a_truncated_code_exchange_still_consumed_the_code() {
    let (dt, http) = started(dingtalk::start()).await;
    let token = dt.mint_app_token();
    let code = dt.issue_h5_code(DEMO_USER_ID);
    dt.inject(ep::GETUSERINFO, Fault::TruncatedBody)
        .expect("inject");
    let req = http
        .post(GETUSERINFO)
        .query(&[("access_token", token.as_str())]);
    let (_, body) = text(req.json(&json!({ "code": code }))).await;
    assert!(serde_json::from_str::<Value>(&body).is_err());
    let (_, v) = oapi(&http, GETUSERINFO, &token, json!({ "code": code })).await;
    assert_eq!(v["errcode"], 40078);
}

#[tokio::test]
async fn faults_repeat_n_times_always_and_on_any_endpoint_until_cleared() {
    let (dt, http) = started(dingtalk::start()).await;
    let token = dt.mint_app_token();
    let detail = || user_get(&http, &token, DEMO_USER_ID);
    dt.inject_fault(ep::USER_GET, Fault::SystemBusy, Times::N(2))
        .expect("inject");
    assert_eq!(detail().await.1["errcode"], -1);
    assert_eq!(detail().await.1["errcode"], -1);
    assert_eq!(detail().await.1["errcode"], 0);

    dt.inject_fault(ANY_ENDPOINT, Fault::HttpStatus(500), Times::Always)
        .expect("inject");
    for _ in 0..3 {
        let resp = send(http.get(USERS_ME)).await;
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
    let (dt, http) = started(dingtalk::start()).await;
    dt.add_user(FakeUser::new("bare").name("Bare Person"));
    let token = dt.mint_app_token();
    let (_, v) = user_get(&http, &token, "bare").await;
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
    let (_, tok) = exchange_web_code(&http, &code).await;
    let (_, me) = users_me(&http, tok["accessToken"].as_str()).await;
    assert_eq!(
        me,
        json!({"nick": "Bare Person", "openId": "openid-bare", "unionId": "unionid-bare", "visitor": false})
    );
    assert!(dt.remove_user("bare").is_some());
    let (_, v) = user_get(&http, &token, "bare").await;
    assert_eq!(v["errcode"], 60121);
}

#[tokio::test]
async fn the_fake_platform_trait_object_drives_the_fake() {
    let (dt, http) = started(dingtalk::start()).await;
    let p: &dyn FakePlatform = &dt;
    assert_eq!(p.name(), "dingtalk");
    assert_eq!(p.endpoints().len(), 18); // 14 internal-app endpoints + 4 store-app token endpoints
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
    let token = gettoken(&http).await;
    let body = json!({ "code": code });
    let (_, v) = oapi(&http, GETUSERINFO, &token, body.clone()).await;
    assert_eq!(v["errcode"], 40078);
    let (_, v) = oapi(&http, GETUSERINFO, &token, body).await;
    assert_eq!(v["result"]["userid"], "u9");
    assert_eq!(p.calls(ep::GETUSERINFO), 2);
    assert_eq!(p.total_calls(), 3);
    p.revoke_app_tokens();
    assert_eq!(user_get(&http, &token, "u9").await.1["errcode"], 40014);
    p.advance_clock(Duration::from_secs(301));
    let (status, _) = exchange_web_code(&http, &p.approve_web_login("u9")).await;
    assert_eq!(status, StatusCode::OK);
    assert_reset(p);
}

#[tokio::test]
async fn fakes_are_isolated_and_stop_when_dropped_or_shut_down() {
    let (a, http_a) = started(dingtalk::start()).await;
    let (b, http_b) = started(dingtalk::start()).await;
    assert_ne!(a.base_url(), b.base_url());
    let token_a = gettoken(&http_a).await;
    let (_, v) = user_get(&http_b, &token_a, DEMO_USER_ID).await;
    assert_eq!(
        v["errcode"], 40014,
        "tokens of one fake mean nothing to another"
    );
    assert_eq!(b.calls(ep::GETTOKEN), 0);

    // A hung request is released by shutdown, which completes promptly.
    b.inject(ep::GETTOKEN, Fault::Hang).expect("inject");
    let hung = tokio::spawn({
        let req = http_b.get(GETTOKEN);
        async move { req.send().await.map(|r| r.status()) }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let started = Instant::now();
    b.shutdown().await;
    assert!(started.elapsed() < Duration::from_secs(5));
    let outcome = hung.await.expect("join");
    assert!(
        outcome
            .map(|s| s == StatusCode::SERVICE_UNAVAILABLE)
            .unwrap_or(true)
    );
    assert!(http_b.get(GETTOKEN).send().await.is_err());

    let a_url = a.base_url().to_owned();
    drop(a);
    let mut stopped = false;
    for _ in 0..50 {
        let fresh = Http::new(&a_url);
        if fresh.get(GETTOKEN).send().await.is_err() {
            stopped = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(stopped, "dropped fake still answers");
}
