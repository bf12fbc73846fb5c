//! The self-built platform fake: nested envelope, form token request, app token in a header,
//! numeric ids, its error-code scheme and HTTP statuses, single-use codes, token expiry and
//! revocation, the sign-in page, every platform-neutral fault and the `FakePlatform` contract —
//! over real HTTP on loopback with reqwest, as a platform client talks to it.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::redirect::Policy;
use serde_json::{Value, json};
use unilogin_testkit::selfbuilt::{
    self, APP_CREDENTIALS_INVALID, BAD_REQUEST, CODE_INVALID, DEFAULT_APP_ID, DEFAULT_APP_SECRET,
    DEMO_USER_ID, FakeSelfBuilt, HOME_ORG, IP_NOT_ALLOWED, METHOD_NOT_ALLOWED, NOT_FOUND,
    OUTSIDER_USER_ID, PARTNER_ORG, PERMISSION_DENIED, RATE_LIMITED, RETRY_AFTER_SECS,
    SECOND_USER_ID, SYSTEM_BUSY, TOKEN_HEADER, TOKEN_INVALID, USER_NOT_FOUND, endpoints as ep,
};
use unilogin_testkit::{
    ANY_ENDPOINT, EndpointRole, FakePlatform, FakeUser, Fault, FaultError, Times, UNMATCHED,
};
use url::Url;

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client")
}

/// Status, `Retry-After` and the JSON body of a response.
struct Answer {
    status: StatusCode,
    retry_after: Option<String>,
    body: Value,
}

impl Answer {
    async fn of(resp: reqwest::Response) -> Self {
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
        assert_eq!(self.body["result"]["status"], "ERROR", "{}", self.body);
        assert_eq!(
            self.body["result"]["error"]["code"],
            json!(code),
            "{}",
            self.body
        );
        assert!(
            self.body["result"]["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{}",
            self.body
        );
        assert!(self.body["result"].get("payload").is_none());
        assert_eq!(self.status.as_u16(), selfbuilt::status_of(code).as_u16());
    }
}

async fn token_with(http: &reqwest::Client, fake: &FakeSelfBuilt, form: &[(&str, &str)]) -> Answer {
    let resp = http
        .post(format!("{}/open/v3/auth/token", fake.base_url()))
        .form(form)
        .send()
        .await
        .expect("request");
    Answer::of(resp).await
}

async fn token(http: &reqwest::Client, fake: &FakeSelfBuilt) -> String {
    let a = token_with(
        http,
        fake,
        &[("appId", DEFAULT_APP_ID), ("appSecret", DEFAULT_APP_SECRET)],
    )
    .await;
    a.payload()["credential"]["value"]
        .as_str()
        .expect("token")
        .to_owned()
}

async fn identify(
    http: &reqwest::Client,
    fake: &FakeSelfBuilt,
    token: Option<&str>,
    code: &str,
) -> Answer {
    let mut req = http
        .get(format!("{}/open/v3/sso/identify", fake.base_url()))
        .query(&[("auth_code", code)]);
    if let Some(t) = token {
        req = req.header(TOKEN_HEADER, t);
    }
    Answer::of(req.send().await.expect("request")).await
}

async fn user(http: &reqwest::Client, fake: &FakeSelfBuilt, token: &str, id: &str) -> Answer {
    let resp = http
        .get(format!("{}/open/v3/users/{id}", fake.base_url()))
        .header("X-Open-Token", token)
        .send()
        .await
        .expect("request");
    Answer::of(resp).await
}

#[tokio::test]
async fn a_login_has_the_nested_shapes_and_numeric_ids() {
    let fake = selfbuilt::start().await;
    let http = client();
    let a = token_with(
        &http,
        &fake,
        &[("appId", DEFAULT_APP_ID), ("appSecret", DEFAULT_APP_SECRET)],
    )
    .await;
    let credential = &a.payload()["credential"];
    assert_eq!(credential["ttl"], json!(7200));
    let t = credential["value"].as_str().unwrap().to_owned();

    let code = fake.issue_h5_code(DEMO_USER_ID);
    let who = identify(&http, &fake, Some(&t), &code).await;
    assert_eq!(
        who.payload()["user"],
        json!({"id": 10086, "unionId": "union-10086", "orgId": HOME_ORG})
    );

    let detail = user(&http, &fake, &t, DEMO_USER_ID).await;
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
    let second = user(&http, &fake, &t, SECOND_USER_ID).await;
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
    let fake = selfbuilt::start().await;
    let http = client();
    let url = format!("{}/open/v3/auth/token", fake.base_url());
    let json_body = http
        .post(&url)
        .json(&json!({"appId": DEFAULT_APP_ID, "appSecret": DEFAULT_APP_SECRET}))
        .send()
        .await
        .unwrap();
    Answer::of(json_body).await.assert_error(BAD_REQUEST);
    token_with(&http, &fake, &[("appId", DEFAULT_APP_ID)])
        .await
        .assert_error(BAD_REQUEST);
    token_with(
        &http,
        &fake,
        &[("appId", DEFAULT_APP_ID), ("appSecret", "wrong")],
    )
    .await
    .assert_error(APP_CREDENTIALS_INVALID);
    token_with(
        &http,
        &fake,
        &[("appId", "sb_app_other"), ("appSecret", DEFAULT_APP_SECRET)],
    )
    .await
    .assert_error(APP_CREDENTIALS_INVALID);
    let get = http.get(&url).send().await.unwrap();
    Answer::of(get).await.assert_error(METHOD_NOT_ALLOWED);
    // Every request issues a new token; the earlier one stays valid.
    let first = token(&http, &fake).await;
    let second = token(&http, &fake).await;
    assert_ne!(first, second);
    user(&http, &fake, &first, DEMO_USER_ID).await.payload();
    assert_eq!(fake.calls(ep::AUTH_TOKEN), 7, "rejected requests count too");
}

#[tokio::test]
async fn the_token_is_checked_first_and_expires_and_revokes() {
    let fake = selfbuilt::start().await;
    let http = client();
    let t = token(&http, &fake).await;
    let code = fake.issue_h5_code(DEMO_USER_ID);
    // No header, a token in the query instead of the header, an unknown token: 2002, and the
    // code is not burnt.
    identify(&http, &fake, None, &code)
        .await
        .assert_error(TOKEN_INVALID);
    let in_query = http
        .get(format!("{}/open/v3/sso/identify", fake.base_url()))
        .query(&[("auth_code", code.as_str()), ("access_token", t.as_str())])
        .send()
        .await
        .unwrap();
    Answer::of(in_query).await.assert_error(TOKEN_INVALID);
    identify(&http, &fake, Some("fake_sb_app_token_unknown"), &code)
        .await
        .assert_error(TOKEN_INVALID);
    identify(&http, &fake, Some(&t), &code).await.payload();

    fake.revoke_app_tokens();
    user(&http, &fake, &t, DEMO_USER_ID)
        .await
        .assert_error(TOKEN_INVALID);
    let fresh = token(&http, &fake).await;
    user(&http, &fake, &fresh, DEMO_USER_ID).await.payload();
    fake.advance_clock(Duration::from_secs(7201));
    user(&http, &fake, &fresh, DEMO_USER_ID)
        .await
        .assert_error(TOKEN_INVALID);
    let minted = fake.mint_app_token();
    user(&http, &fake, &minted, DEMO_USER_ID).await.payload();
}

#[tokio::test]
async fn codes_are_single_use_and_expire_after_five_minutes() {
    let fake = selfbuilt::start().await;
    let http = client();
    let t = token(&http, &fake).await;
    let code = fake.issue_h5_code(DEMO_USER_ID);
    identify(&http, &fake, Some(&t), &code).await.payload();
    identify(&http, &fake, Some(&t), &code)
        .await
        .assert_error(CODE_INVALID);
    let late = fake.approve_web_login(DEMO_USER_ID);
    fake.advance_clock(Duration::from_secs(301));
    let t = token(&http, &fake).await;
    identify(&http, &fake, Some(&t), &late)
        .await
        .assert_error(CODE_INVALID);
    identify(&http, &fake, Some(&t), "forged-code")
        .await
        .assert_error(CODE_INVALID);
    identify(&http, &fake, Some(&t), "")
        .await
        .assert_error(BAD_REQUEST);
    // Unknown people get a code that was never issued.
    let nobody = fake.issue_h5_code("99999");
    identify(&http, &fake, Some(&t), &nobody)
        .await
        .assert_error(CODE_INVALID);
}

#[tokio::test]
async fn outsiders_sign_in_but_are_not_members() {
    let fake = selfbuilt::start().await;
    let http = client();
    let t = token(&http, &fake).await;
    let code = fake.approve_web_login(OUTSIDER_USER_ID);
    let who = identify(&http, &fake, Some(&t), &code).await;
    assert_eq!(who.payload()["user"]["orgId"], PARTNER_ORG);
    assert_eq!(who.payload()["user"]["id"], json!(20001));
    user(&http, &fake, &t, OUTSIDER_USER_ID)
        .await
        .assert_error(USER_NOT_FOUND);
    user(&http, &fake, &t, "424242")
        .await
        .assert_error(USER_NOT_FOUND);
    // A person added by a test shows up, with a numeric id.
    fake.add_user(FakeUser::new("30003").name("Zhao Liu"));
    assert_eq!(
        user(&http, &fake, &t, "30003").await.payload()["profile"]["id"],
        json!(30003)
    );
    assert!(fake.remove_user("30003").is_some());
    user(&http, &fake, &t, "30003")
        .await
        .assert_error(USER_NOT_FOUND);
}

/// `GET` the sign-in page with `params`, replacing the value of `key` by `value`.
async fn page(
    http: &reqwest::Client,
    fake: &FakeSelfBuilt,
    params: &[(&str, &str)],
    (key, value): (&str, &str),
) -> reqwest::Response {
    let mut url = Url::parse(&format!("{}/open/v3/sso/authorize", fake.base_url())).unwrap();
    url.query_pairs_mut().extend_pairs(
        params
            .iter()
            .map(|(k, v)| (*k, if *k == key { value } else { *v })),
    );
    http.get(url).send().await.unwrap()
}

/// Posts the Approve form.
async fn approve(
    http: &reqwest::Client,
    fake: &FakeSelfBuilt,
    form: &[(&str, &str)],
) -> reqwest::Response {
    http.post(format!("{}/open/v3/sso/approve", fake.base_url()))
        .form(form)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_sign_in_page_validates_and_redirects_with_code_and_state() {
    let fake = selfbuilt::start().await;
    let http = client();
    let good = [
        ("app_id", DEFAULT_APP_ID),
        ("redirect_uri", "https://app.acme.example/auth/callback?x=1"),
        ("response_type", "code"),
        ("state", "st&ate/1"),
    ];
    let resp = page(&http, &fake, &good, ("", "")).await;
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
        let resp = page(&http, &fake, &good, bad).await;
        assert_eq!(resp.status(), StatusCode::BAD_REQUEST, "{bad:?}");
        assert!(resp.text().await.unwrap().contains("Sign-in error"));
    }
    fake.allow_redirect_host("evil.example");
    let resp = page(
        &http,
        &fake,
        &good,
        ("redirect_uri", "https://evil.example/cb"),
    )
    .await;
    assert_eq!(
        resp.status(),
        StatusCode::OK,
        "a registered host is accepted"
    );

    // Approve: 302 to the callback with the code and the state, and the code works.
    let mut form: Vec<(&str, &str)> = good.to_vec();
    form.push(("user_id", DEMO_USER_ID));
    let resp = approve(&http, &fake, &form).await;
    assert_eq!(resp.status(), StatusCode::FOUND);
    let location = Url::parse(resp.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(location.host_str(), Some("app.acme.example"));
    let q: std::collections::HashMap<String, String> =
        location.query_pairs().into_owned().collect();
    assert_eq!(q["x"], "1");
    assert_eq!(q["state"], "st&ate/1");
    let t = token(&http, &fake).await;
    let who = identify(&http, &fake, Some(&t), &q["code"]).await;
    assert_eq!(who.payload()["user"]["id"], json!(10086));
    // The form must be a form, for a known person.
    let not_form = http
        .post(format!("{}/open/v3/sso/approve", fake.base_url()))
        .json(&json!({"user_id": DEMO_USER_ID}))
        .send()
        .await
        .unwrap();
    assert_eq!(not_form.status(), StatusCode::BAD_REQUEST);
    form.pop();
    form.push(("user_id", "99999"));
    let unknown = approve(&http, &fake, &form).await;
    assert_eq!(unknown.status(), StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn platform_faults_render_in_the_nested_envelope() {
    let fake = selfbuilt::start().await;
    let http = client();
    let t = token(&http, &fake).await;
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
        let a = user(&http, &fake, &t, DEMO_USER_ID).await;
        a.assert_error(code);
        let expected_retry = (code == RATE_LIMITED).then(|| RETRY_AFTER_SECS.to_string());
        assert_eq!(a.retry_after, expected_retry, "{fault:?}");
    }
    // The API gateway's HTML ban page.
    fake.inject(ep::USERS_GET, Fault::RateLimitPage).unwrap();
    let resp = http
        .get(format!("{}/open/v3/users/{DEMO_USER_ID}", fake.base_url()))
        .header(TOKEN_HEADER, &t)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(
        resp.headers()["content-type"]
            .to_str()
            .unwrap()
            .contains("text/html")
    );
    assert_eq!(resp.headers()["retry-after"], "30");
    // A faulted exchange never consumes the code.
    let code = fake.issue_h5_code(DEMO_USER_ID);
    fake.inject(ep::SSO_IDENTIFY, Fault::TokenInvalid).unwrap();
    identify(&http, &fake, Some(&t), &code)
        .await
        .assert_error(TOKEN_INVALID);
    identify(&http, &fake, Some(&t), &code).await.payload();
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
    let fake = selfbuilt::start().await;
    let http = client();
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
        let resp = http
            .post(format!("{}/open/v3/auth/token", fake.base_url()))
            .form(&[("appId", DEFAULT_APP_ID), ("appSecret", DEFAULT_APP_SECRET)])
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::BAD_GATEWAY);
    }
    token(&http, &fake).await;
}

#[tokio::test]
async fn the_fake_platform_contract() {
    let fake = selfbuilt::start().await;
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
    let http = client();
    let resp = http
        .get(format!("{}/open/v3/nope", fake.base_url()))
        .send()
        .await
        .unwrap();
    Answer::of(resp).await.assert_error(NOT_FOUND);
    let resp = http
        .post(format!("{}/open/v3/users/{DEMO_USER_ID}", fake.base_url()))
        .send()
        .await
        .unwrap();
    Answer::of(resp).await.assert_error(METHOD_NOT_ALLOWED);
    assert_eq!(dynamic.calls(UNMATCHED), 1);
    assert_eq!(dynamic.calls(ep::USERS_GET), 1);
    assert_eq!(dynamic.total_calls(), 2);
    dynamic.reset_calls();
    assert_eq!(dynamic.total_calls(), 0);
}

#[tokio::test]
async fn the_bundled_tenant_config_points_at_the_fake() {
    let fake = selfbuilt::start().await;
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
