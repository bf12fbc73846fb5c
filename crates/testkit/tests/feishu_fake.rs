//! The Feishu fake behaves like `reference/platforms.md` §3 and `fixtures/feishu/*.json`: real
//! HTTP on loopback with reqwest, as a platform client would talk to it.

mod common;

use std::time::Duration;

use common::{Http, assert_same_shape, fixture, json, location, query, send, started};
use reqwest::StatusCode;
use serde_json::{Value, json};
use unilogin_testkit::feishu::{
    self, DEFAULT_APP_ID, DEFAULT_APP_SECRET, DEFAULT_TENANT_KEY, DEMO_USER_ID, FakeApp,
    FakeFeishu, LARK_TENANT_KEY, OTHER_TENANT_KEY, OUTSIDER_USER_ID, RATE_LIMIT_RESET_SECS,
    SCOPE_CONTACT_BASE, SCOPE_EMAIL, UserTokenApi, endpoints as ep,
};
use unilogin_testkit::fixtures::feishu as fx;
use unilogin_testkit::{EndpointRole, FakePlatform, Fault, FaultError, Times, UNMATCHED};

const TENANT_TOKEN: &str = "/open-apis/auth/v3/tenant_access_token/internal";
const APP_TOKEN: &str = "/open-apis/auth/v3/app_access_token/internal";
const V2_TOKEN: &str = "/open-apis/authen/v2/oauth/token";
const OIDC_TOKEN: &str = "/open-apis/authen/v1/oidc/access_token";
const OIDC_REFRESH: &str = "/open-apis/authen/v1/oidc/refresh_access_token";
const V1_TOKEN: &str = "/open-apis/authen/v1/access_token";
const USER_INFO: &str = "/open-apis/authen/v1/user_info";
const AUTHORIZE: &str = "/open-apis/authen/v1/authorize";
const APPROVE: &str = "/open-apis/authen/v1/authorize/approve";

/// A JSON POST.
async fn post(http: &Http, path: &str, body: Value) -> (StatusCode, Value) {
    json(http.post(path).json(&body)).await
}

/// A JSON POST with `Authorization: Bearer token`.
async fn post_auth(http: &Http, path: &str, token: &str, body: Value) -> (StatusCode, Value) {
    json(http.post(path).bearer_auth(token).json(&body)).await
}

/// A GET with `Authorization: Bearer token`.
async fn get_auth(http: &Http, path: &str, token: &str) -> (StatusCode, Value) {
    json(http.get(path).bearer_auth(token)).await
}

fn creds() -> Value {
    json!({"app_id": DEFAULT_APP_ID, "app_secret": DEFAULT_APP_SECRET})
}

async fn tenant_token(http: &Http) -> (String, u64) {
    let (status, v) = post(http, TENANT_TOKEN, creds()).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    (
        v["tenant_access_token"].as_str().expect("token").to_owned(),
        v["expire"].as_u64().expect("expire"),
    )
}

async fn v2_code(http: &Http, code: &str, extra: Value) -> (StatusCode, Value) {
    let body = json!({"grant_type": "authorization_code", "client_id": DEFAULT_APP_ID,
                      "client_secret": DEFAULT_APP_SECRET, "code": code});
    post(http, V2_TOKEN, unilogin_testkit::http::merged(body, extra)).await
}

/// `(status, error)` of an OAuth2-shaped answer.
fn oauth_error((status, e): (StatusCode, Value)) -> (StatusCode, Option<String>) {
    (status, e["error"].as_str().map(str::to_owned))
}

fn invalid_grant() -> (StatusCode, Option<String>) {
    (StatusCode::BAD_REQUEST, Some("invalid_grant".to_owned()))
}

fn contact_path(open_id: &str) -> String {
    format!(
        "/open-apis/contact/v3/users/{open_id}?user_id_type=open_id&department_id_type=open_department_id"
    )
}

/// A fresh fake, a tenant token, and the demo person's contact path.
async fn contact_setup() -> (FakeFeishu, Http, String, String) {
    let (fs, http) = started(feishu::start()).await;
    let (token, _) = tenant_token(&http).await;
    (fs, http, token, contact_path("ou_fakeopenid0001"))
}

async fn user_token_for(http: &Http, fs: &FakeFeishu, user: &str) -> String {
    let code = fs.approve_web_login(user);
    let (_, v) = v2_code(http, &code, json!({})).await;
    v["access_token"].as_str().expect("user token").to_owned()
}

#[tokio::test]
async fn app_tokens_match_the_fixtures_and_share_one_value() {
    let (fs, http) = started(feishu::start()).await;
    let (status, t) = post(&http, TENANT_TOKEN, creds()).await;
    assert_eq!(status, StatusCode::OK);
    assert_same_shape(&t, &fixture(fx::AUTH_V3_TENANT_ACCESS_TOKEN_INTERNAL));
    let (_, a) = post(&http, APP_TOKEN, creds()).await;
    assert_same_shape(&a, &fixture(fx::AUTH_V3_APP_ACCESS_TOKEN_INTERNAL));
    assert_eq!(a["app_access_token"], t["tenant_access_token"]);
    assert_eq!(a["tenant_access_token"], t["tenant_access_token"]);
    assert!(t["tenant_access_token"].as_str().unwrap().starts_with("t-"));
    assert_eq!(fs.calls(ep::TENANT_ACCESS_TOKEN), 1);
    assert_eq!(fs.calls(ep::APP_ACCESS_TOKEN), 1);
}

#[tokio::test]
async fn reissue_rule_same_token_then_a_new_one_while_the_old_stays_valid() {
    let (fs, http) = started(feishu::start()).await;
    let (first, expire) = tenant_token(&http).await;
    assert_eq!(expire, 7200);
    fs.advance_clock(Duration::from_secs(3600));
    let (again, left) = tenant_token(&http).await;
    assert_eq!(again, first, "same token while >= 30 min remain");
    assert!(
        (3598..=3600).contains(&left),
        "expire is the remaining time: {left}"
    );
    // 29 minutes left: a new token, and the old one still works until its own expiry.
    fs.advance_clock(Duration::from_secs(3600 - 29 * 60));
    let (second, expire) = tenant_token(&http).await;
    assert_ne!(second, first);
    assert_eq!(expire, 7200);
    let path = contact_path("ou_fakeopenid0001");
    let (status, v) = get_auth(&http, &path, &first).await;
    assert_eq!(
        (status, v["code"].as_i64()),
        (StatusCode::OK, Some(0)),
        "{v}"
    );
    fs.advance_clock(Duration::from_secs(29 * 60 + 1));
    let (status, v) = get_auth(&http, &path, &first).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_same_shape(&v, &fixture(fx::ERROR_99991663_TENANT_TOKEN_INVALID));
    assert_eq!(v["code"], 99991663);
    let (_, v) = get_auth(&http, &path, &second).await;
    assert_eq!(v["code"], 0);
}

#[tokio::test]
async fn token_endpoints_validate_credentials_and_encoding() {
    let (fs, http) = started(feishu::start()).await;
    let wrong = json!({"app_id": DEFAULT_APP_ID, "app_secret": "nope"});
    let (s, v) = post(&http, TENANT_TOKEN, wrong).await;
    assert_eq!(
        (s, v["code"].as_i64()),
        (StatusCode::BAD_REQUEST, Some(10014))
    );
    let unknown = json!({"app_id": "cli_unknown", "app_secret": "x"});
    assert_eq!(post(&http, TENANT_TOKEN, unknown).await.1["code"], 10003);
    let partial = json!({ "app_id": DEFAULT_APP_ID });
    assert_eq!(post(&http, TENANT_TOKEN, partial).await.1["code"], 99992402);
    let form = [
        ("app_id", DEFAULT_APP_ID),
        ("app_secret", DEFAULT_APP_SECRET),
    ];
    let (s, v) = json(http.post(TENANT_TOKEN).form(&form)).await;
    assert_eq!(
        (s, v["code"].as_i64()),
        (StatusCode::BAD_REQUEST, Some(99992402))
    );
    let resp = send(http.get(TENANT_TOKEN)).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let resp = send(http.get("/open-apis/nope")).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(resp.text().await.unwrap(), "404 page not found");
    assert_eq!(fs.calls(UNMATCHED), 1);
}

#[tokio::test]
async fn v2_code_exchange_matches_the_fixtures_and_codes_are_single_use() {
    let (fs, http) = started(feishu::start()).await;
    let code = fs.approve_web_login(DEMO_USER_ID);
    let (s, v) = v2_code(&http, &code, json!({})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_same_shape(&v, &fixture(fx::AUTHEN_V2_OAUTH_TOKEN));
    assert!(v["access_token"].as_str().unwrap().starts_with("u-"));
    assert!(v["refresh_token"].as_str().unwrap().starts_with("ur-"));
    let (s, e) = v2_code(&http, &code, json!({})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_same_shape(&e, &fixture(fx::AUTHEN_V2_OAUTH_TOKEN_ERROR));
    assert_eq!(e["error"], "invalid_grant");
    // H5 codes carry no offline_access: no refresh token. They expire after 5 minutes.
    let h5 = fs.issue_h5_code(DEMO_USER_ID);
    let (_, v) = v2_code(&http, &h5, json!({})).await;
    assert!(v.get("refresh_token").is_none(), "{v}");
    let late = fs.issue_h5_code(DEMO_USER_ID);
    fs.advance_clock(Duration::from_secs(301));
    let answer = v2_code(&http, &late, json!({})).await;
    assert_eq!(oauth_error(answer), invalid_grant());
    // tt.requestAccess codes live 3 minutes.
    let short = fs.issue_request_access_code(DEMO_USER_ID, "");
    fs.advance_clock(Duration::from_secs(181));
    let (_, e) = v2_code(&http, &short, json!({})).await;
    assert_eq!(e["error"], "invalid_grant");
    // Wrong client secret: invalid_client, and the code is not burnt.
    let code = fs.issue_h5_code(DEMO_USER_ID);
    let wrong = json!({ "client_secret": "wrong" });
    let answer = v2_code(&http, &code, wrong).await;
    assert_eq!(
        oauth_error(answer),
        (StatusCode::UNAUTHORIZED, Some("invalid_client".to_owned()))
    );
    let (s, _) = v2_code(&http, &code, json!({})).await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn refresh_tokens_are_single_use() {
    let (fs, http) = started(feishu::start()).await;
    let code = fs.approve_web_login(DEMO_USER_ID);
    let (_, v) = v2_code(&http, &code, json!({})).await;
    let old = v["refresh_token"].as_str().unwrap().to_owned();
    let refresh = |token: String| {
        let body = json!({"grant_type": "refresh_token", "client_id": DEFAULT_APP_ID,
                          "client_secret": DEFAULT_APP_SECRET, "refresh_token": token});
        post(&http, V2_TOKEN, body)
    };
    let (s, new) = refresh(old.clone()).await;
    assert_eq!(s, StatusCode::OK, "{new}");
    let new_refresh = new["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(new_refresh, old);
    assert_eq!(fs.live_refresh_tokens(), 1);
    assert_eq!(oauth_error(refresh(old).await), invalid_grant());
    let (s, _) = refresh(new_refresh).await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn authorize_page_binds_redirect_uri_and_pkce() {
    let (_fs, http) = started(feishu::start()).await;
    let verifier = "dBjftJeZ4CK-P1bQ6jW6nmx5g3QMVJnGgsmiQNu8Z8g";
    let challenge = "YZCSp30zVtOSMXhjEQMywM6GtwfK-nzpcaTNnxvo49Q";
    let redirect = "https://app.example.com/cb";
    let mut params = vec![
        ("client_id", DEFAULT_APP_ID),
        ("redirect_uri", redirect),
        ("scope", "offline_access"),
        ("state", "st8"),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ];
    let page = send(http.get(AUTHORIZE).query(&params)).await;
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("data-user-id=\"user001\""), "{html}");
    params.extend([("user_id", DEMO_USER_ID), ("action", "approve")]);
    let resp = send(http.post(APPROVE).form(&params)).await;
    assert_eq!(resp.status(), StatusCode::FOUND);
    let q = query(&location(&resp));
    assert_eq!(q["state"], "st8");
    let code = &q["code"];
    let no_redirect = json!({ "code_verifier": verifier });
    let answer = v2_code(&http, code, no_redirect).await;
    assert_eq!(oauth_error(answer), invalid_grant(), "no redirect_uri");
    let wrong_verifier = json!({"redirect_uri": redirect, "code_verifier": "wrong"});
    let (_, e) = v2_code(&http, code, wrong_verifier).await;
    assert_eq!(e["error"], "invalid_grant", "wrong verifier");
    let both = json!({"redirect_uri": redirect, "code_verifier": verifier});
    let (s, v) = v2_code(&http, code, both).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // Unregistered redirect hosts and scopes the app lacks are refused by the page.
    for (k, v) in [
        ("redirect_uri", "https://evil.test/cb"),
        ("scope", "contact:unknown"),
    ] {
        let mut params = vec![("client_id", DEFAULT_APP_ID), ("redirect_uri", redirect)];
        params.retain(|(pk, _)| *pk != k);
        params.push((k, v));
        let resp = send(http.get(AUTHORIZE).query(&params)).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{k}={v}");
    }
}

#[tokio::test]
async fn v1_endpoints_need_the_app_token_before_the_code() {
    let (fs, http) = started(feishu::start()).await;
    let code = fs.issue_h5_code(DEMO_USER_ID);
    let body = json!({"grant_type": "authorization_code", "code": code});
    let (s, e) = post(&http, OIDC_TOKEN, body.clone()).await;
    assert_eq!(
        (s, e["code"].as_i64()),
        (StatusCode::BAD_REQUEST, Some(99991661))
    );
    for (token, code) in [("t-forged", 99991663), ("garbage", 99991671)] {
        let (_, e) = post_auth(&http, OIDC_TOKEN, token, body.clone()).await;
        assert_eq!(e["code"], code, "{token}");
    }
    // A token obtained only as a tenant token: these endpoints take the app access token.
    let (tenant, _) = tenant_token(&http).await;
    let (_, e) = post_auth(&http, OIDC_TOKEN, &tenant, body.clone()).await;
    assert_eq!(e["code"], 99991664, "{e}");
    // The code survived the rejected requests; the same value asked for as an app token works.
    let (_, a) = post(&http, APP_TOKEN, creds()).await;
    let token = a["app_access_token"].as_str().unwrap().to_owned();
    assert_eq!(
        token, tenant,
        "one value for a self-built app, as in the fixture"
    );
    let (s, v) = post_auth(&http, OIDC_TOKEN, &token, body.clone()).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_same_shape(&v, &fixture(fx::AUTHEN_V1_OIDC_ACCESS_TOKEN));
    let (_, e) = post_auth(&http, OIDC_TOKEN, &token, body).await;
    assert_eq!(e["code"], 20003);
    // Refresh (single use).
    let old = v["data"]["refresh_token"].as_str().unwrap().to_owned();
    let refresh = json!({"grant_type": "refresh_token", "refresh_token": old});
    let (s, r) = post_auth(&http, OIDC_REFRESH, &token, refresh.clone()).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_same_shape(&r, &fixture(fx::AUTHEN_V1_OIDC_ACCESS_TOKEN));
    let (_, e) = post_auth(&http, OIDC_REFRESH, &token, refresh).await;
    assert_eq!(e["code"], 20026);
    // Legacy v1: token and user in `data`.
    let code = fs.issue_h5_code(DEMO_USER_ID);
    let body = json!({"grant_type": "authorization_code", "code": code});
    let (_, v) = post_auth(&http, V1_TOKEN, &token, body).await;
    assert_same_shape(&v, &fixture(fx::AUTHEN_V1_ACCESS_TOKEN));
    assert_eq!(v["data"]["tenant_key"], DEFAULT_TENANT_KEY);
}

#[tokio::test]
async fn user_info_matches_the_fixture_and_scopes_gate_fields() {
    let (fs, http) = started(feishu::start()).await;
    let token = user_token_for(&http, &fs, DEMO_USER_ID).await;
    let (s, v) = get_auth(&http, USER_INFO, &token).await;
    assert_eq!(s, StatusCode::OK);
    let fx = fixture(fx::AUTHEN_V1_USER_INFO);
    assert_same_shape(&v, &fx);
    for k in [
        "name",
        "open_id",
        "union_id",
        "email",
        "user_id",
        "mobile",
        "tenant_key",
        "employee_no",
        "avatar_url",
        "avatar_thumb",
    ] {
        assert_eq!(v["data"][k], fx["data"][k], "{k}");
    }
    // Without the e-mail permission the field is absent.
    fs.revoke_permission(SCOPE_EMAIL);
    let (_, v) = get_auth(&http, USER_INFO, &token).await;
    assert!(
        v["data"].get("email").is_none() && v["data"].get("mobile").is_some(),
        "{v}"
    );
    // The outsider's tenant key is the other tenant's.
    let outsider = user_token_for(&http, &fs, OUTSIDER_USER_ID).await;
    let (_, v) = get_auth(&http, USER_INFO, &outsider).await;
    assert_eq!(v["data"]["tenant_key"], OTHER_TENANT_KEY);
    // Bad and expired user tokens.
    let (_, e) = get_auth(&http, USER_INFO, "u-forged").await;
    assert_eq!(e["code"], 99991668);
    fs.advance_clock(Duration::from_secs(7201));
    let (s, e) = get_auth(&http, USER_INFO, &token).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_same_shape(&e, &fixture(fx::ERROR_99991677_USER_TOKEN_EXPIRED));
    assert_eq!(e["code"], 99991677);
}

#[tokio::test]
async fn contact_matches_the_fixture_and_only_shows_members() {
    let (fs, http, token, demo) = contact_setup().await;
    let (s, v) = get_auth(&http, &demo, &token).await;
    assert_eq!(s, StatusCode::OK);
    assert_same_shape(&v, &fixture(fx::CONTACT_V3_USERS_GET));
    assert_eq!(
        v["data"]["user"]["department_ids"],
        json!(["od-fakedept0001"])
    );
    let by_user_id =
        "/open-apis/contact/v3/users/user001?user_id_type=user_id&department_id_type=department_id";
    let (_, v) = get_auth(&http, by_user_id, &token).await;
    assert_eq!(v["data"]["user"]["department_ids"], json!(["1"]));
    let (_, e) = get_auth(&http, &contact_path("ou_fakeopenid0009"), &token).await;
    assert_eq!(e["code"], 41050, "outsider");
    let (_, e) = get_auth(&http, &demo, "u-not-a-tenant-token").await;
    assert_eq!(e["code"], 99991671);
    fs.revoke_permission(SCOPE_CONTACT_BASE);
    let (_, e) = get_auth(&http, &demo, &token).await;
    assert_eq!(e["code"], 99991672);
    fs.revoke_app_tokens();
    fs.add_app(FakeApp::new(
        DEFAULT_APP_ID,
        DEFAULT_APP_SECRET,
        DEFAULT_TENANT_KEY,
    ));
    let (_, e) = get_auth(&http, &demo, &token).await;
    assert_eq!(e["code"], 99991663);
}

#[tokio::test]
async fn faults_render_in_feishu_shapes() {
    let (fs, http, token, path) = contact_setup().await;
    fs.inject(ep::CONTACT_USER, Fault::RateLimited).unwrap();
    let resp = send(http.get(&path).bearer_auth(&token)).await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        resp.headers()["x-ogw-ratelimit-reset"],
        RATE_LIMIT_RESET_SECS.to_string().as_str()
    );
    let (_, v) = common::body_json(resp).await;
    assert_same_shape(&v, &fixture(fx::ERROR_99991400_RATE_LIMITED));
    for (fault, code) in [
        (Fault::TokenInvalid, 99991663),
        (Fault::PermissionDenied, 99991672),
        (Fault::IpNotAllowed, 99991401),
        (Fault::code(99991676), 99991676),
    ] {
        fs.inject(ep::CONTACT_USER, fault).unwrap();
        let (_, v) = get_auth(&http, &path, &token).await;
        assert_eq!(v["code"], code);
    }
    fs.inject(ep::CONTACT_USER, Fault::SystemBusy).unwrap();
    let (s, v) = get_auth(&http, &path, &token).await;
    assert_eq!(
        (s, v["code"].as_i64()),
        (StatusCode::INTERNAL_SERVER_ERROR, Some(2200))
    );
    // A user-token endpoint reports the user-token code.
    let user = user_token_for(&http, &fs, DEMO_USER_ID).await;
    fs.inject(ep::USER_INFO, Fault::TokenInvalid).unwrap();
    let (_, v) = get_auth(&http, USER_INFO, &user).await;
    assert_eq!(v["code"], 99991668);
    // v2 faults use the OAuth2 shape; there is no access token to reject there.
    fs.inject(ep::OAUTH_TOKEN_V2, Fault::CodeInvalid).unwrap();
    let (_, e) = v2_code(&http, &fs.issue_h5_code(DEMO_USER_ID), json!({})).await;
    assert_same_shape(&e, &fixture(fx::AUTHEN_V2_OAUTH_TOKEN_ERROR));
    for endpoint in [ep::OAUTH_TOKEN_V2, ep::TENANT_ACCESS_TOKEN] {
        assert!(matches!(
            fs.inject(endpoint, Fault::TokenInvalid),
            Err(FaultError::Unsupported { .. })
        ));
    }
    assert!(fs.inject(ep::AUTHORIZE, Fault::RateLimited).is_err());
    assert!(fs.inject(ep::CONTACT_USER, Fault::code("text")).is_err());
    assert!(
        fs.inject_fault(ep::AUTHORIZE, Fault::HttpStatus(502), Times::Once)
            .is_ok()
    );
}

#[tokio::test]
async fn roles_follow_the_client_generation_and_lark_has_its_own_tenant() {
    let (fs, _) = started(feishu::start()).await;
    assert_eq!(
        fs.endpoints_for(EndpointRole::H5CodeExchange),
        vec![ep::OAUTH_TOKEN_V2]
    );
    fs.set_user_token_api(UserTokenApi::V1Oidc);
    assert_eq!(
        fs.endpoints_for(EndpointRole::WebCodeExchange),
        vec![ep::OIDC_ACCESS_TOKEN]
    );
    assert_eq!(
        fs.endpoints_for(EndpointRole::UserDetail),
        vec![ep::CONTACT_USER]
    );
    assert!(fs.endpoints_for(EndpointRole::Membership).is_empty());
    assert_eq!(fs.credentials().corp_id, DEFAULT_TENANT_KEY);
    assert!(!format!("{:?}", fs.credentials()).contains(DEFAULT_APP_SECRET));
    let lark = feishu::start_lark().await;
    assert_eq!(lark.credentials().corp_id, LARK_TENANT_KEY);
    let http = Http::new(lark.base_url());
    let token = user_token_for(&http, &lark, DEMO_USER_ID).await;
    let (_, v) = get_auth(&http, USER_INFO, &token).await;
    assert_eq!(v["data"]["tenant_key"], LARK_TENANT_KEY);
}
