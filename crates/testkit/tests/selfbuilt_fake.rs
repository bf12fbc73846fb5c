//! The self-built platform fake: nested envelope, form token request, app token in a header,
//! numeric ids, its error-code scheme and HTTP statuses, single-use codes, token expiry and
//! revocation, the sign-in page, every platform-neutral fault and the `FakePlatform` contract —
//! over real HTTP on loopback with reqwest, as a platform client talks to it.

mod common;

use std::time::Duration;

use common::{Http, assert_reset, location, query, send, started};
use reqwest::{RequestBuilder, StatusCode};
use serde_json::{Value, json};
use unilogin_testkit::selfbuilt::{
    self, APP_CREDENTIALS_INVALID, BAD_REQUEST, CODE_INVALID, DEFAULT_APP_ID, DEFAULT_APP_SECRET,
    DEMO_USER_ID, HOME_ORG, IP_NOT_ALLOWED, METHOD_NOT_ALLOWED, NOT_FOUND, OUTSIDER_USER_ID,
    PARTNER_ORG, PERMISSION_DENIED, RATE_LIMITED, RETRY_AFTER_SECS, SECOND_USER_ID, SYSTEM_BUSY,
    TOKEN_HEADER, TOKEN_INVALID, USER_NOT_FOUND, endpoints as ep,
};
use unilogin_testkit::{
    ANY_ENDPOINT, EndpointRole, FakePlatform, FakeUser, Fault, FaultError, Times, UNMATCHED,
};
use url::Url;

const AUTH_TOKEN: &str = "/open/v3/auth/token";
const IDENTIFY: &str = "/open/v3/sso/identify";
const AUTHORIZE: &str = "/open/v3/sso/authorize";
const APPROVE: &str = "/open/v3/sso/approve";
const CREDS: [(&str, &str); 2] = [("appId", DEFAULT_APP_ID), ("appSecret", DEFAULT_APP_SECRET)];

/// Status, `Retry-After` and the JSON body of a response.
struct Answer {
    status: StatusCode,
    retry_after: Option<String>,
    body: Value,
}

impl Answer {
    /// Send `req` and read the answer.
    async fn of(req: RequestBuilder) -> Self {
        let resp = send(req).await;
        let status = resp.status();
        let retry_after = resp
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = resp.json().await.expect("JSON body");
        Self {
            status,
            retry_after,
            body,
        }
    }

    fn payload(&self) -> &Value {
        assert_eq!(self.status, StatusCode::OK, "{}", self.body);
        assert_eq!(self.body["result"]["status"], "OK", "{}", self.body);
        assert!(self.body["requestId"].is_string(), "{}", self.body);
        &self.body["result"]["payload"]
    }

    /// Asserts the error envelope with `code` and the HTTP status the platform uses for it.
    fn assert_error(&self, code: i64) {
        let (result, body) = (&self.body["result"], &self.body);
        assert_eq!(result["status"], "ERROR", "{body}");
        assert_eq!(result["error"]["code"], json!(code), "{body}");
        let message = result["error"]["message"].as_str();
        assert!(message.is_some_and(|m| !m.is_empty()), "{body}");
        assert!(result.get("payload").is_none());
        assert_eq!(self.status.as_u16(), selfbuilt::status_of(code).as_u16());
    }
}

async fn token_with(http: &Http, form: &[(&str, &str)]) -> Answer {
    Answer::of(http.post(AUTH_TOKEN).form(form)).await
}

async fn token(http: &Http) -> String {
    let a = token_with(http, &CREDS).await;
    a.payload()["credential"]["value"]
        .as_str()
        .expect("token")
        .to_owned()
}

async fn identify(http: &Http, token: Option<&str>, code: &str) -> Answer {
    let mut req = http.get(IDENTIFY).query(&[("auth_code", code)]);
    if let Some(t) = token {
        req = req.header(TOKEN_HEADER, t);
    }
    Answer::of(req).await
}

async fn user(http: &Http, token: &str, id: &str) -> Answer {
    let req = http.get(&format!("/open/v3/users/{id}"));
    Answer::of(req.header("X-Open-Token", token)).await
}

#[tokio::test]
async fn a_login_has_the_nested_shapes_and_numeric_ids() {
    let (fake, http) = started(selfbuilt::start()).await;
    let a = token_with(&http, &CREDS).await;
    let credential = &a.payload()["credential"];
    assert_eq!(credential["ttl"], json!(7200));
    let t = credential["value"].as_str().unwrap().to_owned();

    let code = fake.issue_h5_code(DEMO_USER_ID);
    let who = identify(&http, Some(&t), &code).await;
    assert_eq!(
        who.payload()["user"],
        json!({"id": 10086, "unionId": "union-10086", "orgId": HOME_ORG})
    );

    let detail = user(&http, &t, DEMO_USER_ID).await;
    let p = &detail.payload()["profile"];
    assert_eq!(p["id"], json!(10086), "ids are numbers");
    assert_eq!(p["displayName"], "Zhang San");
    assert_eq!(p["contact"]["mobile"], "+8613800000000");
    assert_eq!(p["contact"]["mail"], "User001@Example.com");
    assert_eq!(p["org"]["deptIds"], json!([1, 100]));
    assert_eq!(p["employeeNo"], "E0001");
    assert_eq!(p["position"], "Engineer");
    assert_eq!(p["status"], "ACTIVE");
    // Fields the person lacks are left out, not empty.
    let second = user(&http, &t, SECOND_USER_ID).await;
    let p = &second.payload()["profile"];
    assert!(
        p.get("avatarUrl").is_none() && p["contact"].get("mail").is_none(),
        "{p}"
    );
    assert_eq!(fake.calls(ep::AUTH_TOKEN), 1);
    assert_eq!(fake.calls(ep::SSO_IDENTIFY), 1);
    assert_eq!(fake.calls(ep::USERS_GET), 2);
}

#[tokio::test]
async fn the_token_endpoint_wants_a_form_and_the_right_credentials() {
    let (fake, http) = started(selfbuilt::start()).await;
    let body = json!({"appId": DEFAULT_APP_ID, "appSecret": DEFAULT_APP_SECRET});
    Answer::of(http.post(AUTH_TOKEN).json(&body))
        .await
        .assert_error(BAD_REQUEST);
    for (form, code) in [
        (&CREDS[..1], BAD_REQUEST),
        (
            &[("appId", DEFAULT_APP_ID), ("appSecret", "wrong")],
            APP_CREDENTIALS_INVALID,
        ),
        (
            &[("appId", "sb_app_other"), ("appSecret", DEFAULT_APP_SECRET)],
            APP_CREDENTIALS_INVALID,
        ),
    ] {
        token_with(&http, form).await.assert_error(code);
    }
    Answer::of(http.get(AUTH_TOKEN))
        .await
        .assert_error(METHOD_NOT_ALLOWED);
    // Every request issues a new token; the earlier one stays valid.
    let first = token(&http).await;
    let second = token(&http).await;
    assert_ne!(first, second);
    user(&http, &first, DEMO_USER_ID).await.payload();
    assert_eq!(fake.calls(ep::AUTH_TOKEN), 7, "rejected requests count too");
}

#[tokio::test]
async fn the_token_is_checked_first_and_expires_and_revokes() {
    let (fake, http) = started(selfbuilt::start()).await;
    let t = token(&http).await;
    let code = fake.issue_h5_code(DEMO_USER_ID);
    // No header, a token in the query instead of the header, an unknown token: 2002, and the
    // code is not burnt.
    identify(&http, None, &code)
        .await
        .assert_error(TOKEN_INVALID);
    let in_query = [("auth_code", code.as_str()), ("access_token", t.as_str())];
    Answer::of(http.get(IDENTIFY).query(&in_query))
        .await
        .assert_error(TOKEN_INVALID);
    identify(&http, Some("fake_sb_app_token_unknown"), &code)
        .await
        .assert_error(TOKEN_INVALID);
    identify(&http, Some(&t), &code).await.payload();

    fake.revoke_app_tokens();
    user(&http, &t, DEMO_USER_ID)
        .await
        .assert_error(TOKEN_INVALID);
    let fresh = token(&http).await;
    user(&http, &fresh, DEMO_USER_ID).await.payload();
    fake.advance_clock(Duration::from_secs(7201));
    user(&http, &fresh, DEMO_USER_ID)
        .await
        .assert_error(TOKEN_INVALID);
    let minted = fake.mint_app_token();
    user(&http, &minted, DEMO_USER_ID).await.payload();
}

#[tokio::test]
async fn codes_are_single_use_and_expire_after_five_minutes() {
    let (fake, http) = started(selfbuilt::start()).await;
    let t = token(&http).await;
    let code = fake.issue_h5_code(DEMO_USER_ID);
    identify(&http, Some(&t), &code).await.payload();
    identify(&http, Some(&t), &code)
        .await
        .assert_error(CODE_INVALID);
    let late = fake.approve_web_login(DEMO_USER_ID);
    fake.advance_clock(Duration::from_secs(301));
    let t = token(&http).await;
    // Unknown people get a code that was never issued.
    let nobody = fake.issue_h5_code("99999");
    for (code, error) in [
        (late.as_str(), CODE_INVALID),
        ("forged-code", CODE_INVALID),
        ("", BAD_REQUEST),
        (&nobody, CODE_INVALID),
    ] {
        identify(&http, Some(&t), code).await.assert_error(error);
    }
}

#[tokio::test]
async fn outsiders_sign_in_but_are_not_members() {
    let (fake, http) = started(selfbuilt::start()).await;
    let t = token(&http).await;
    let code = fake.approve_web_login(OUTSIDER_USER_ID);
    let who = identify(&http, Some(&t), &code).await;
    assert_eq!(who.payload()["user"]["orgId"], PARTNER_ORG);
    assert_eq!(who.payload()["user"]["id"], json!(20001));
    for id in [OUTSIDER_USER_ID, "424242"] {
        user(&http, &t, id).await.assert_error(USER_NOT_FOUND);
    }
    // A person added by a test shows up, with a numeric id.
    fake.add_user(FakeUser::new("30003").name("Zhao Liu"));
    let added = user(&http, &t, "30003").await;
    assert_eq!(added.payload()["profile"]["id"], json!(30003));
    assert!(fake.remove_user("30003").is_some());
    user(&http, &t, "30003").await.assert_error(USER_NOT_FOUND);
}

/// `GET` the sign-in page with `params`, replacing the value of `key` by `value`.
async fn page(
    http: &Http,
    params: &[(&str, &str)],
    (key, value): (&str, &str),
) -> reqwest::Response {
    let mut url = Url::parse(&http.url(AUTHORIZE)).unwrap();
    url.query_pairs_mut().extend_pairs(
        params
            .iter()
            .map(|(k, v)| (*k, if *k == key { value } else { *v })),
    );
    send(http.client.get(url)).await
}

#[tokio::test]
async fn the_sign_in_page_validates_and_redirects_with_code_and_state() {
    let (fake, http) = started(selfbuilt::start()).await;
    let good = [
        ("app_id", DEFAULT_APP_ID),
        ("redirect_uri", "https://app.acme.example/auth/callback?x=1"),
        ("response_type", "code"),
        ("state", "st&ate/1"),
    ];
    let resp = page(&http, &good, ("", "")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let html = resp.text().await.unwrap();
    assert!(
        html.contains("data-user-id=\"10086\"") && html.contains("action=\"/open/v3/sso/approve\""),
        "{html}"
    );
    for bad in [
        ("app_id", "sb_app_other"),
        ("response_type", "token"),
        ("redirect_uri", "https://evil.example/cb"),
        ("redirect_uri", "not a url"),
    ] {
        let resp = page(&http, &good, bad).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{bad:?}");
        assert!(resp.text().await.unwrap().contains("Sign-in error"));
    }
    fake.allow_redirect_host("evil.example");
    let resp = page(&http, &good, ("redirect_uri", "https://evil.example/cb")).await;
    assert_eq!(
        resp.status(),
        StatusCode::OK,
        "a registered host is accepted"
    );

    // Approve: 302 to the callback with the code and the state, and the code works.
    let mut form: Vec<(&str, &str)> = good.to_vec();
    form.push(("user_id", DEMO_USER_ID));
    let resp = send(http.post(APPROVE).form(&form)).await;
    assert_eq!(resp.status(), StatusCode::FOUND);
    let location = location(&resp);
    assert_eq!(location.host_str(), Some("app.acme.example"));
    let q = query(&location);
    assert_eq!(q["x"], "1");
    assert_eq!(q["state"], "st&ate/1");
    let t = token(&http).await;
    let who = identify(&http, Some(&t), &q["code"]).await;
    assert_eq!(who.payload()["user"]["id"], json!(10086));
    // The form must be a form, for a known person.
    let not_form = send(http.post(APPROVE).json(&json!({"user_id": DEMO_USER_ID}))).await;
    assert_eq!(not_form.status(), StatusCode::BAD_REQUEST);
    form.pop();
    form.push(("user_id", "99999"));
    let unknown = send(http.post(APPROVE).form(&form)).await;
    assert_eq!(unknown.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn platform_faults_render_in_the_nested_envelope() {
    let (fake, http) = started(selfbuilt::start()).await;
    let t = token(&http).await;
    for (fault, code) in [
        (Fault::TokenInvalid, TOKEN_INVALID),
        (Fault::CodeInvalid, CODE_INVALID),
        (Fault::RateLimited, RATE_LIMITED),
        (Fault::PermissionDenied, PERMISSION_DENIED),
        (Fault::IpNotAllowed, IP_NOT_ALLOWED),
        (Fault::SystemBusy, SYSTEM_BUSY),
        (Fault::code(4242), 4242),
    ] {
        fake.inject(ep::USERS_GET, fault.clone()).unwrap();
        let a = user(&http, &t, DEMO_USER_ID).await;
        a.assert_error(code);
        let expected_retry = (code == RATE_LIMITED).then(|| RETRY_AFTER_SECS.to_string());
        assert_eq!(a.retry_after, expected_retry, "{fault:?}");
    }
    // The API gateway's HTML ban page.
    fake.inject(ep::USERS_GET, Fault::RateLimitPage).unwrap();
    let req = http.get(&format!("/open/v3/users/{DEMO_USER_ID}"));
    let resp = send(req.header(TOKEN_HEADER, &t)).await;
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(common::is_html(&resp));
    assert_eq!(resp.headers()["retry-after"], "30");
    // A faulted exchange never consumes the code.
    let code = fake.issue_h5_code(DEMO_USER_ID);
    fake.inject(ep::SSO_IDENTIFY, Fault::TokenInvalid).unwrap();
    identify(&http, Some(&t), &code)
        .await
        .assert_error(TOKEN_INVALID);
    identify(&http, Some(&t), &code).await.payload();
    // What the envelope cannot carry is refused at injection.
    for (endpoint, fault) in [
        (ep::USERS_GET, Fault::code("InvalidAuthentication")),
        (ep::USERS_GET, Fault::code(0)),
        (ep::USERS_GET, Fault::code_with_sub(88, 40014)),
        (ep::SSO_AUTHORIZE, Fault::TokenInvalid),
    ] {
        assert!(
            matches!(
                fake.inject(endpoint, fault.clone()),
                Err(FaultError::Unsupported { .. })
            ),
            "{endpoint} {fault:?}"
        );
    }
    assert!(matches!(
        fake.inject("no_such_endpoint", Fault::Hang),
        Err(FaultError::UnknownEndpoint(_))
    ));
}

#[tokio::test]
async fn every_platform_neutral_fault_can_be_armed_on_every_api_endpoint() {
    let (fake, http) = started(selfbuilt::start()).await;
    for role in [
        EndpointRole::AppToken,
        EndpointRole::H5CodeExchange,
        EndpointRole::UserDetail,
    ] {
        for endpoint in fake.endpoints_for(role) {
            for fault in Fault::catalog() {
                fake.inject_fault(endpoint, fault.clone(), Times::Once)
                    .unwrap_or_else(|e| panic!("{endpoint} {fault:?}: {e}"));
            }
            fake.clear_faults();
        }
    }
    // Transport faults are shared infrastructure; one of them end to end.
    fake.inject_fault(ANY_ENDPOINT, Fault::HttpStatus(502), Times::N(2))
        .unwrap();
    for _ in 0..2 {
        let resp = send(http.post(AUTH_TOKEN).form(&CREDS)).await;
        assert_eq!(resp.status(), StatusCode::BAD_GATEWAY);
    }
    token(&http).await;
}

#[tokio::test]
async fn the_fake_platform_contract() {
    let (fake, http) = started(selfbuilt::start()).await;
    let dynamic: &dyn FakePlatform = &fake;
    assert_eq!(dynamic.name(), "custom-oauth");
    let creds = dynamic.credentials();
    assert_eq!(creds.app_key, DEFAULT_APP_ID);
    assert_eq!(creds.corp_id, HOME_ORG);
    assert!(!format!("{creds:?}").contains(DEFAULT_APP_SECRET));
    assert_eq!(dynamic.demo_user_id(), DEMO_USER_ID);
    assert_eq!(
        dynamic.outsider_user_id().as_deref(),
        Some(OUTSIDER_USER_ID)
    );
    assert_eq!(
        dynamic.endpoints(),
        [
            ep::AUTH_TOKEN,
            ep::SSO_IDENTIFY,
            ep::USERS_GET,
            ep::SSO_AUTHORIZE,
            ep::SSO_APPROVE
        ]
    );
    for role in [
        EndpointRole::AppToken,
        EndpointRole::H5CodeExchange,
        EndpointRole::WebCodeExchange,
        EndpointRole::UserDetail,
        EndpointRole::Authorize,
    ] {
        assert_eq!(dynamic.endpoints_for(role).len(), 1, "{role:?}");
    }
    assert!(dynamic.endpoints_for(EndpointRole::Membership).is_empty());

    // Unknown paths and wrong methods are answered in the envelope and counted.
    Answer::of(http.get("/open/v3/nope"))
        .await
        .assert_error(NOT_FOUND);
    Answer::of(http.post(&format!("/open/v3/users/{DEMO_USER_ID}")))
        .await
        .assert_error(METHOD_NOT_ALLOWED);
    assert_eq!(dynamic.calls(UNMATCHED), 1);
    assert_eq!(dynamic.calls(ep::USERS_GET), 1);
    assert_eq!(dynamic.total_calls(), 2);
    assert_reset(dynamic);
}

#[tokio::test]
async fn the_bundled_tenant_config_points_at_the_fake() {
    let (fake, _) = started(selfbuilt::start()).await;
    let config = fake.tenant_config();
    let text = config.to_string();
    assert!(!text.contains("open.selfbuilt.example"), "{text}");
    let steps = config["options"]["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 3);
    for step in steps {
        let url = step["url"].as_str().unwrap();
        assert!(url.starts_with(fake.base_url()), "{url}");
    }
    assert_eq!(config["app_key"], fake.credentials().app_key);
    assert_eq!(config["app_secret"], fake.credentials().app_secret);
}
