//! The Feishu fake behaves like `reference/platforms.md` §3 and `fixtures/feishu/*.json`: real
//! HTTP on loopback with reqwest, as a platform client would talk to it.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::redirect::Policy;
use serde_json::{Value, json};
use unilogin_testkit::feishu::{
    self, DEFAULT_APP_ID, DEFAULT_APP_SECRET, DEFAULT_TENANT_KEY, DEMO_USER_ID, FakeApp,
    FakeFeishu, LARK_TENANT_KEY, OTHER_TENANT_KEY, OUTSIDER_USER_ID, RATE_LIMIT_RESET_SECS,
    SCOPE_CONTACT_BASE, SCOPE_EMAIL, UserTokenApi, endpoints as ep,
};
use unilogin_testkit::{EndpointRole, FakePlatform, Fault, FaultError, Times, UNMATCHED};

macro_rules! fixture {
    ($name:literal) => {
        serde_json::from_str::<Value>(include_str!(concat!("fixtures/feishu/", $name)))
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

/// Same keys at every object level and same JSON kinds.
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

async fn body_json(resp: reqwest::Response) -> (StatusCode, Value) {
    let status = resp.status();
    let text = resp.text().await.expect("body");
    let value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
    (status, value)
}

async fn post(
    http: &reqwest::Client,
    fs: &FakeFeishu,
    path: &str,
    body: Value,
) -> (StatusCode, Value) {
    let resp = http
        .post(format!("{}{path}", fs.base_url()))
        .json(&body)
        .send()
        .await
        .expect("send");
    body_json(resp).await
}

async fn post_auth(
    http: &reqwest::Client,
    fs: &FakeFeishu,
    path: &str,
    token: &str,
    body: Value,
) -> (StatusCode, Value) {
    let resp = http
        .post(format!("{}{path}", fs.base_url()))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("send");
    body_json(resp).await
}

async fn get_auth(
    http: &reqwest::Client,
    fs: &FakeFeishu,
    path: &str,
    token: &str,
) -> (StatusCode, Value) {
    let resp = http
        .get(format!("{}{path}", fs.base_url()))
        .bearer_auth(token)
        .send()
        .await
        .expect("send");
    body_json(resp).await
}

const TENANT_TOKEN: &str = "/open-apis/auth/v3/tenant_access_token/internal";
const APP_TOKEN: &str = "/open-apis/auth/v3/app_access_token/internal";
const V2_TOKEN: &str = "/open-apis/authen/v2/oauth/token";
const OIDC_TOKEN: &str = "/open-apis/authen/v1/oidc/access_token";
const OIDC_REFRESH: &str = "/open-apis/authen/v1/oidc/refresh_access_token";
const V1_TOKEN: &str = "/open-apis/authen/v1/access_token";
const USER_INFO: &str = "/open-apis/authen/v1/user_info";

fn creds() -> Value {
    json!({"app_id": DEFAULT_APP_ID, "app_secret": DEFAULT_APP_SECRET})
}

async fn tenant_token(http: &reqwest::Client, fs: &FakeFeishu) -> (String, u64) {
    let (status, v) = post(http, fs, TENANT_TOKEN, creds()).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    (
        v["tenant_access_token"].as_str().expect("token").to_owned(),
        v["expire"].as_u64().expect("expire"),
    )
}

async fn v2_code(
    http: &reqwest::Client,
    fs: &FakeFeishu,
    code: &str,
    extra: Value,
) -> (StatusCode, Value) {
    let mut body = json!({"grant_type": "authorization_code", "client_id": DEFAULT_APP_ID,
                          "client_secret": DEFAULT_APP_SECRET, "code": code});
    if let (Some(b), Value::Object(e)) = (body.as_object_mut(), extra) {
        b.extend(e);
    }
    post(http, fs, V2_TOKEN, body).await
}

fn contact_path(open_id: &str) -> String {
    format!(
        "/open-apis/contact/v3/users/{open_id}?user_id_type=open_id&department_id_type=open_department_id"
    )
}

#[tokio::test]
async fn app_tokens_match_the_fixtures_and_share_one_value() {
    let fs = feishu::start().await;
    let http = client();
    let (status, t) = post(&http, &fs, TENANT_TOKEN, creds()).await;
    assert_eq!(status, StatusCode::OK);
    assert_same_shape(
        &t,
        &fixture!("auth_v3_tenant_access_token_internal.json"),
        "$",
    );
    let (_, a) = post(&http, &fs, APP_TOKEN, creds()).await;
    assert_same_shape(&a, &fixture!("auth_v3_app_access_token_internal.json"), "$");
    assert_eq!(a["app_access_token"], t["tenant_access_token"]);
    assert_eq!(a["tenant_access_token"], t["tenant_access_token"]);
    assert!(t["tenant_access_token"].as_str().unwrap().starts_with("t-"));
    assert_eq!(fs.calls(ep::TENANT_ACCESS_TOKEN), 1);
    assert_eq!(fs.calls(ep::APP_ACCESS_TOKEN), 1);
}

#[tokio::test]
async fn reissue_rule_same_token_then_a_new_one_while_the_old_stays_valid() {
    let fs = feishu::start().await;
    let http = client();
    let (first, expire) = tenant_token(&http, &fs).await;
    assert_eq!(expire, 7200);
    fs.advance_clock(Duration::from_secs(3600));
    let (again, left) = tenant_token(&http, &fs).await;
    assert_eq!(again, first, "same token while >= 30 min remain");
    assert!(
        (3598..=3600).contains(&left),
        "expire is the remaining time: {left}"
    );
    // 29 minutes left: a new token, and the old one still works until its own expiry.
    fs.advance_clock(Duration::from_secs(3600 - 29 * 60));
    let (second, expire) = tenant_token(&http, &fs).await;
    assert_ne!(second, first);
    assert_eq!(expire, 7200);
    let path = contact_path("ou_fakeopenid0001");
    let (status, v) = get_auth(&http, &fs, &path, &first).await;
    assert_eq!(
        (status, v["code"].as_i64()),
        (StatusCode::OK, Some(0)),
        "{v}"
    );
    fs.advance_clock(Duration::from_secs(29 * 60 + 1));
    let (status, v) = get_auth(&http, &fs, &path, &first).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_same_shape(
        &v,
        &fixture!("error_99991663_tenant_token_invalid.json"),
        "$",
    );
    assert_eq!(v["code"], 99991663);
    let (_, v) = get_auth(&http, &fs, &path, &second).await;
    assert_eq!(v["code"], 0);
}

#[tokio::test]
async fn token_endpoints_validate_credentials_and_encoding() {
    let fs = feishu::start().await;
    let http = client();
    let (s, v) = post(
        &http,
        &fs,
        TENANT_TOKEN,
        json!({"app_id": DEFAULT_APP_ID, "app_secret": "nope"}),
    )
    .await;
    assert_eq!(
        (s, v["code"].as_i64()),
        (StatusCode::BAD_REQUEST, Some(10014))
    );
    let (_, v) = post(
        &http,
        &fs,
        TENANT_TOKEN,
        json!({"app_id": "cli_unknown", "app_secret": "x"}),
    )
    .await;
    assert_eq!(v["code"], 10003);
    let (_, v) = post(&http, &fs, TENANT_TOKEN, json!({"app_id": DEFAULT_APP_ID})).await;
    assert_eq!(v["code"], 99992402);
    let resp = http
        .post(format!("{}{TENANT_TOKEN}", fs.base_url()))
        .form(&[
            ("app_id", DEFAULT_APP_ID),
            ("app_secret", DEFAULT_APP_SECRET),
        ])
        .send()
        .await
        .unwrap();
    let (s, v) = body_json(resp).await;
    assert_eq!(
        (s, v["code"].as_i64()),
        (StatusCode::BAD_REQUEST, Some(99992402))
    );
    let resp = http
        .get(format!("{}{TENANT_TOKEN}", fs.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let resp = http
        .get(format!("{}/open-apis/nope", fs.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(resp.text().await.unwrap(), "404 page not found");
    assert_eq!(fs.calls(UNMATCHED), 1);
}

#[tokio::test]
async fn v2_code_exchange_matches_the_fixtures_and_codes_are_single_use() {
    let fs = feishu::start().await;
    let http = client();
    let code = fs.approve_web_login(DEMO_USER_ID);
    let (s, v) = v2_code(&http, &fs, &code, json!({})).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_same_shape(&v, &fixture!("authen_v2_oauth_token.json"), "$");
    assert!(v["access_token"].as_str().unwrap().starts_with("u-"));
    assert!(v["refresh_token"].as_str().unwrap().starts_with("ur-"));
    let (s, e) = v2_code(&http, &fs, &code, json!({})).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_same_shape(&e, &fixture!("authen_v2_oauth_token_error.json"), "$");
    assert_eq!(e["error"], "invalid_grant");
    // H5 codes carry no offline_access: no refresh token. They expire after 5 minutes.
    let h5 = fs.issue_h5_code(DEMO_USER_ID);
    let (_, v) = v2_code(&http, &fs, &h5, json!({})).await;
    assert!(v.get("refresh_token").is_none(), "{v}");
    let late = fs.issue_h5_code(DEMO_USER_ID);
    fs.advance_clock(Duration::from_secs(301));
    let (s, e) = v2_code(&http, &fs, &late, json!({})).await;
    assert_eq!(
        (s, e["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    // tt.requestAccess codes live 3 minutes.
    let short = fs.issue_request_access_code(DEMO_USER_ID, "");
    fs.advance_clock(Duration::from_secs(181));
    let (_, e) = v2_code(&http, &fs, &short, json!({})).await;
    assert_eq!(e["error"], "invalid_grant");
    // Wrong client secret: invalid_client, and the code is not burnt.
    let code = fs.issue_h5_code(DEMO_USER_ID);
    let (s, e) = post(
        &http,
        &fs,
        V2_TOKEN,
        json!({"grant_type": "authorization_code",
        "client_id": DEFAULT_APP_ID, "client_secret": "wrong", "code": code}),
    )
    .await;
    assert_eq!(
        (s, e["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_client"))
    );
    let (s, _) = v2_code(&http, &fs, &code, json!({})).await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn refresh_tokens_are_single_use() {
    let fs = feishu::start().await;
    let http = client();
    let code = fs.approve_web_login(DEMO_USER_ID);
    let (_, v) = v2_code(&http, &fs, &code, json!({})).await;
    let old = v["refresh_token"].as_str().unwrap().to_owned();
    let refresh = |token: String| {
        json!({"grant_type": "refresh_token", "client_id": DEFAULT_APP_ID,
               "client_secret": DEFAULT_APP_SECRET, "refresh_token": token})
    };
    let (s, new) = post(&http, &fs, V2_TOKEN, refresh(old.clone())).await;
    assert_eq!(s, StatusCode::OK, "{new}");
    let new_refresh = new["refresh_token"].as_str().unwrap().to_owned();
    assert_ne!(new_refresh, old);
    assert_eq!(fs.live_refresh_tokens(), 1);
    let (s, e) = post(&http, &fs, V2_TOKEN, refresh(old)).await;
    assert_eq!(
        (s, e["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant"))
    );
    let (s, _) = post(&http, &fs, V2_TOKEN, refresh(new_refresh)).await;
    assert_eq!(s, StatusCode::OK);
}

#[tokio::test]
async fn authorize_page_binds_redirect_uri_and_pkce() {
    let fs = feishu::start().await;
    let http = client();
    let verifier = "dBjftJeZ4CK-P1bQ6jW6nmx5g3QMVJnGgsmiQNu8Z8g";
    let challenge = "YZCSp30zVtOSMXhjEQMywM6GtwfK-nzpcaTNnxvo49Q";
    let redirect = "https://app.example.com/cb";
    let page = http
        .get(format!("{}/open-apis/authen/v1/authorize", fs.base_url()))
        .query(&[
            ("client_id", DEFAULT_APP_ID),
            ("redirect_uri", redirect),
            ("scope", "offline_access"),
            ("state", "st8"),
            ("code_challenge", challenge),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("data-user-id=\"user001\"")
    );
    let resp = http
        .post(format!(
            "{}/open-apis/authen/v1/authorize/approve",
            fs.base_url()
        ))
        .form(&[
            ("client_id", DEFAULT_APP_ID),
            ("redirect_uri", redirect),
            ("scope", "offline_access"),
            ("state", "st8"),
            ("code_challenge", challenge),
            ("code_challenge_method", "S256"),
            ("user_id", DEMO_USER_ID),
            ("action", "approve"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::FOUND);
    let location = url::Url::parse(resp.headers()["location"].to_str().unwrap()).unwrap();
    let q: std::collections::HashMap<_, _> = location.query_pairs().into_owned().collect();
    assert_eq!(q["state"], "st8");
    let code = q["code"].clone();
    let (s, e) = v2_code(&http, &fs, &code, json!({"code_verifier": verifier})).await;
    assert_eq!(
        (s, e["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_grant")),
        "no redirect_uri"
    );
    let (_, e) = v2_code(
        &http,
        &fs,
        &code,
        json!({"redirect_uri": redirect, "code_verifier": "wrong"}),
    )
    .await;
    assert_eq!(e["error"], "invalid_grant", "wrong verifier");
    let (s, v) = v2_code(
        &http,
        &fs,
        &code,
        json!({"redirect_uri": redirect, "code_verifier": verifier}),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    // Unregistered redirect hosts and scopes the app lacks are refused by the page.
    for (k, v) in [
        ("redirect_uri", "https://evil.test/cb"),
        ("scope", "contact:unknown"),
    ] {
        let mut params = vec![("client_id", DEFAULT_APP_ID), ("redirect_uri", redirect)];
        params.retain(|(pk, _)| *pk != k);
        params.push((k, v));
        let resp = http
            .get(format!("{}/open-apis/authen/v1/authorize", fs.base_url()))
            .query(&params)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{k}={v}");
    }
}

#[tokio::test]
async fn v1_endpoints_need_the_app_token_before_the_code() {
    let fs = feishu::start().await;
    let http = client();
    let code = fs.issue_h5_code(DEMO_USER_ID);
    let body = json!({"grant_type": "authorization_code", "code": code});
    let (s, e) = post(&http, &fs, OIDC_TOKEN, body.clone()).await;
    assert_eq!(
        (s, e["code"].as_i64()),
        (StatusCode::BAD_REQUEST, Some(99991661))
    );
    let (_, e) = post_auth(&http, &fs, OIDC_TOKEN, "t-forged", body.clone()).await;
    assert_eq!(e["code"], 99991663);
    let (_, e) = post_auth(&http, &fs, OIDC_TOKEN, "garbage", body.clone()).await;
    assert_eq!(e["code"], 99991671);
    // The code survived the rejected requests.
    let (token, _) = tenant_token(&http, &fs).await;
    let (s, v) = post_auth(&http, &fs, OIDC_TOKEN, &token, body.clone()).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_same_shape(&v, &fixture!("authen_v1_oidc_access_token.json"), "$");
    let (_, e) = post_auth(&http, &fs, OIDC_TOKEN, &token, body).await;
    assert_eq!(e["code"], 20003);
    // Refresh (single use).
    let old = v["data"]["refresh_token"].as_str().unwrap().to_owned();
    let refresh = json!({"grant_type": "refresh_token", "refresh_token": old});
    let (s, r) = post_auth(&http, &fs, OIDC_REFRESH, &token, refresh.clone()).await;
    assert_eq!(s, StatusCode::OK, "{r}");
    assert_same_shape(&r, &fixture!("authen_v1_oidc_access_token.json"), "$");
    let (_, e) = post_auth(&http, &fs, OIDC_REFRESH, &token, refresh).await;
    assert_eq!(e["code"], 20026);
    // Legacy v1: token and user in `data`.
    let code = fs.issue_h5_code(DEMO_USER_ID);
    let (_, v) = post_auth(
        &http,
        &fs,
        V1_TOKEN,
        &token,
        json!({"grant_type": "authorization_code", "code": code}),
    )
    .await;
    assert_same_shape(&v, &fixture!("authen_v1_access_token.json"), "$");
    assert_eq!(v["data"]["tenant_key"], DEFAULT_TENANT_KEY);
}

async fn user_token_for(http: &reqwest::Client, fs: &FakeFeishu, user: &str) -> String {
    let code = fs.approve_web_login(user);
    let (_, v) = v2_code(http, fs, &code, json!({})).await;
    v["access_token"].as_str().expect("user token").to_owned()
}

#[tokio::test]
async fn user_info_matches_the_fixture_and_scopes_gate_fields() {
    let fs = feishu::start().await;
    let http = client();
    let token = user_token_for(&http, &fs, DEMO_USER_ID).await;
    let (s, v) = get_auth(&http, &fs, USER_INFO, &token).await;
    assert_eq!(s, StatusCode::OK);
    assert_same_shape(&v, &fixture!("authen_v1_user_info.json"), "$");
    let fx = fixture!("authen_v1_user_info.json");
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
    let (_, v) = get_auth(&http, &fs, USER_INFO, &token).await;
    assert!(
        v["data"].get("email").is_none() && v["data"].get("mobile").is_some(),
        "{v}"
    );
    // The outsider's tenant key is the other tenant's.
    let outsider = user_token_for(&http, &fs, OUTSIDER_USER_ID).await;
    let (_, v) = get_auth(&http, &fs, USER_INFO, &outsider).await;
    assert_eq!(v["data"]["tenant_key"], OTHER_TENANT_KEY);
    // Bad and expired user tokens.
    let (_, e) = get_auth(&http, &fs, USER_INFO, "u-forged").await;
    assert_eq!(e["code"], 99991668);
    fs.advance_clock(Duration::from_secs(7201));
    let (s, e) = get_auth(&http, &fs, USER_INFO, &token).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    assert_same_shape(&e, &fixture!("error_99991677_user_token_expired.json"), "$");
    assert_eq!(e["code"], 99991677);
}

#[tokio::test]
async fn contact_matches_the_fixture_and_only_shows_members() {
    let fs = feishu::start().await;
    let http = client();
    let (token, _) = tenant_token(&http, &fs).await;
    let (s, v) = get_auth(&http, &fs, &contact_path("ou_fakeopenid0001"), &token).await;
    assert_eq!(s, StatusCode::OK);
    assert_same_shape(&v, &fixture!("contact_v3_users_get.json"), "$");
    assert_eq!(
        v["data"]["user"]["department_ids"],
        json!(["od-fakedept0001"])
    );
    let (_, v) = get_auth(
        &http,
        &fs,
        "/open-apis/contact/v3/users/user001?user_id_type=user_id&department_id_type=department_id",
        &token,
    )
    .await;
    assert_eq!(v["data"]["user"]["department_ids"], json!(["1"]));
    let (_, e) = get_auth(&http, &fs, &contact_path("ou_fakeopenid0009"), &token).await;
    assert_eq!(e["code"], 41050, "outsider");
    let (_, e) = get_auth(
        &http,
        &fs,
        &contact_path("ou_fakeopenid0001"),
        "u-not-a-tenant-token",
    )
    .await;
    assert_eq!(e["code"], 99991671);
    fs.revoke_permission(SCOPE_CONTACT_BASE);
    let (_, e) = get_auth(&http, &fs, &contact_path("ou_fakeopenid0001"), &token).await;
    assert_eq!(e["code"], 99991672);
    fs.revoke_app_tokens();
    fs.add_app(FakeApp::new(
        DEFAULT_APP_ID,
        DEFAULT_APP_SECRET,
        DEFAULT_TENANT_KEY,
    ));
    let (_, e) = get_auth(&http, &fs, &contact_path("ou_fakeopenid0001"), &token).await;
    assert_eq!(e["code"], 99991663);
}

#[tokio::test]
async fn faults_render_in_feishu_shapes() {
    let fs = feishu::start().await;
    let http = client();
    let (token, _) = tenant_token(&http, &fs).await;
    let path = contact_path("ou_fakeopenid0001");
    fs.inject(ep::CONTACT_USER, Fault::RateLimited).unwrap();
    let resp = http
        .get(format!("{}{path}", fs.base_url()))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        resp.headers()["x-ogw-ratelimit-reset"],
        RATE_LIMIT_RESET_SECS.to_string().as_str()
    );
    let (_, v) = body_json(resp).await;
    assert_same_shape(&v, &fixture!("error_99991400_rate_limited.json"), "$");
    for (fault, code) in [
        (Fault::TokenInvalid, 99991663),
        (Fault::PermissionDenied, 99991672),
        (Fault::IpNotAllowed, 99991401),
        (Fault::code(99991676), 99991676),
    ] {
        fs.inject(ep::CONTACT_USER, fault).unwrap();
        let (_, v) = get_auth(&http, &fs, &path, &token).await;
        assert_eq!(v["code"], code);
    }
    fs.inject(ep::CONTACT_USER, Fault::SystemBusy).unwrap();
    let (s, v) = get_auth(&http, &fs, &path, &token).await;
    assert_eq!(
        (s, v["code"].as_i64()),
        (StatusCode::INTERNAL_SERVER_ERROR, Some(2200))
    );
    // A user-token endpoint reports the user-token code.
    let user = user_token_for(&http, &fs, DEMO_USER_ID).await;
    fs.inject(ep::USER_INFO, Fault::TokenInvalid).unwrap();
    let (_, v) = get_auth(&http, &fs, USER_INFO, &user).await;
    assert_eq!(v["code"], 99991668);
    // v2 faults use the OAuth2 shape; there is no access token to reject there.
    fs.inject(ep::OAUTH_TOKEN_V2, Fault::CodeInvalid).unwrap();
    let (_, e) = v2_code(&http, &fs, &fs.issue_h5_code(DEMO_USER_ID), json!({})).await;
    assert_same_shape(&e, &fixture!("authen_v2_oauth_token_error.json"), "$");
    assert!(matches!(
        fs.inject(ep::OAUTH_TOKEN_V2, Fault::TokenInvalid),
        Err(FaultError::Unsupported { .. })
    ));
    assert!(matches!(
        fs.inject(ep::TENANT_ACCESS_TOKEN, Fault::TokenInvalid),
        Err(FaultError::Unsupported { .. })
    ));
    assert!(fs.inject(ep::AUTHORIZE, Fault::RateLimited).is_err());
    assert!(fs.inject(ep::CONTACT_USER, Fault::code("text")).is_err());
    assert!(
        fs.inject_fault(ep::AUTHORIZE, Fault::HttpStatus(502), Times::Once)
            .is_ok()
    );
}

#[tokio::test]
async fn roles_follow_the_client_generation_and_lark_has_its_own_tenant() {
    let fs = feishu::start().await;
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
    let http = client();
    let token = user_token_for(&http, &lark, DEMO_USER_ID).await;
    let (_, v) = get_auth(&http, &lark, USER_INFO, &token).await;
    assert_eq!(v["data"]["tenant_key"], LARK_TENANT_KEY);
}
