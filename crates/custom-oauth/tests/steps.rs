//! `mode: steps` against the test kit's self-built platform fake (`unilogin_testkit::selfbuilt`),
//! whose shapes differ from the three known platforms: a nested
//! `{result: {status, payload | error: {code, message}}}` envelope, a form-encoded token request,
//! the app token sent in a request header, numeric user ids, HTTP statuses per error code.
//! The shared conformance suite runs against it too (`tests/tests/custom_oauth.rs`); these tests
//! cover what is specific to steps mode: the tenant configuration alone, its validation, error
//! classification through the configured code lists, and the authorize URL template. Every login
//! is a redirect login (`Sso::start_web_login`, then `Sso::finish_web_login`): a steps-mode code
//! is never redeemed without the state of the login it came back to.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Value, json};
use unilogin_core::config::{PlatformConfig, StaticConfig};
use unilogin_core::sso::Sso;
use unilogin_core::web_login::Callback;
use unilogin_core::{AuthCode, Error, Flow, Login};
use unilogin_testkit::selfbuilt::{
    self, DEFAULT_APP_ID, DEFAULT_APP_SECRET, DEMO_USER_ID, OUTSIDER_USER_ID, TENANT_CONFIG_JSON,
    endpoints as ep,
};
use unilogin_testkit::{FakePlatform, Fault, Times};
use url::Url;

mod common;
use common::{acme, documented_yaml};

use unilogin_custom_oauth as _;

fn sso(config: Value) -> Sso {
    let config: PlatformConfig = serde_json::from_value(config).unwrap();
    config
        .validate()
        .expect("the tenant configuration validates");
    Sso::builder(StaticConfig::new(vec![config]))
        .build()
        .unwrap()
}

const CALLBACK: &str = "https://app.acme.example/auth/callback";

/// A whole redirect login of `user`: start, the platform's approval, the callback.
async fn web_login(sso: &Sso, fake: &selfbuilt::FakeSelfBuilt, user: &str) -> Result<Login, Error> {
    let redirect = Url::parse(CALLBACK).unwrap();
    let start = sso
        .start_web_login(&acme(), "custom-oauth", Flow::Web, &redirect)
        .await?;
    let callback = Callback {
        code: AuthCode::new(fake.approve_web_login(user)),
        state: start.pending.state.clone(),
        iss: None,
    };
    sso.finish_web_login(&start.pending, &callback).await
}

#[tokio::test]
async fn steps_login_maps_the_user_and_caches_the_app_token() {
    let fake = selfbuilt::start().await;
    let sso = sso(fake.tenant_config());
    let login = web_login(&sso, &fake, DEMO_USER_ID).await.expect("login");
    let p = &login.profile;
    assert_eq!(
        p.user_id.as_deref(),
        Some("10086"),
        "a numeric id becomes the user id"
    );
    assert_eq!(p.union_id.as_deref(), Some("union-10086"));
    assert_eq!(p.name.as_deref(), Some("Zhang San"));
    assert_eq!(p.mobile.as_deref(), Some("13800000000"));
    assert_eq!(p.email.as_deref(), Some("user001@example.com"));
    assert_eq!(p.department_ids, ["1", "100"]);
    // A second login reuses the cached app token.
    web_login(&sso, &fake, DEMO_USER_ID)
        .await
        .expect("warm login");
    assert_eq!(fake.calls(ep::AUTH_TOKEN), 1);
    assert_eq!(fake.calls(ep::SSO_IDENTIFY), 2);
    assert_eq!(fake.calls(ep::USERS_GET), 2);
}

#[tokio::test]
async fn steps_org_id_and_user_not_found_codes_mean_not_in_tenant() {
    let fake = selfbuilt::start().await;
    // With corp_id, the extracted `org_id` stops an outsider before the detail call.
    let sso_with_org = sso(fake.tenant_config());
    let err = web_login(&sso_with_org, &fake, OUTSIDER_USER_ID)
        .await
        .expect_err("outsider");
    assert!(matches!(err, Error::NotInTenant { .. }), "{err:?}");
    assert_eq!(fake.calls(ep::USERS_GET), 0);
    // Without corp_id, the platform's 3004 at the detail step is classified by
    // `errors.not_in_tenant`.
    let mut config = fake.tenant_config();
    config.as_object_mut().unwrap().remove("corp_id");
    let err = web_login(&sso(config), &fake, OUTSIDER_USER_ID)
        .await
        .expect_err("outsider");
    assert!(matches!(err, Error::NotInTenant { .. }), "{err:?}");
    assert_eq!(fake.calls(ep::USERS_GET), 1);
}

#[tokio::test]
async fn steps_error_codes_are_classified_by_the_configured_lists() {
    let fake = selfbuilt::start().await;
    let sso = sso(fake.tenant_config());
    web_login(&sso, &fake, DEMO_USER_ID)
        .await
        .expect("cold login");
    // Rate limited: the code in `errors.rate_limited`, with the platform's Retry-After.
    fake.inject(ep::USERS_GET, Fault::RateLimited).unwrap();
    let err = web_login(&sso, &fake, DEMO_USER_ID)
        .await
        .expect_err("rate limited");
    match &err {
        Error::RateLimited {
            code, retry_after, ..
        } => {
            assert_eq!(code.to_string(), "4029");
            assert_eq!(*retry_after, Some(Duration::from_secs(30)));
        }
        other => panic!("expected RateLimited, got {other:?}"),
    }
    // A code in no list is a plain upstream error carrying the code and message.
    fake.inject(ep::USERS_GET, Fault::code(4242)).unwrap();
    let err = web_login(&sso, &fake, DEMO_USER_ID)
        .await
        .expect_err("unclassified");
    assert!(
        matches!(&err, Error::Upstream { code, .. } if code.to_string() == "4242"),
        "{err:?}"
    );
    // Moving a code to another list changes its class, with no code change: 4242 as
    // token-invalid is retried once with a fresh token.
    let mut config = fake.tenant_config();
    config["options"]["errors"]["token_invalid"] = json!([2002, 4242]);
    let reclassified = self::sso(config);
    web_login(&reclassified, &fake, DEMO_USER_ID)
        .await
        .expect("cold login");
    fake.reset_calls();
    fake.inject_fault(ep::USERS_GET, Fault::code(4242), Times::Once)
        .unwrap();
    web_login(&reclassified, &fake, DEMO_USER_ID)
        .await
        .expect("retried with a fresh token");
    assert_eq!(fake.calls(ep::AUTH_TOKEN), 1);
    assert_eq!(fake.calls(ep::USERS_GET), 2);
}

#[tokio::test]
async fn steps_used_code_is_invalid_code() {
    let fake = selfbuilt::start().await;
    let sso = sso(fake.tenant_config());
    let redirect = Url::parse(CALLBACK).unwrap();
    let start = sso
        .start_web_login(&acme(), "custom-oauth", Flow::Web, &redirect)
        .await
        .unwrap();
    let callback = Callback {
        code: AuthCode::new(fake.approve_web_login(DEMO_USER_ID)),
        state: start.pending.state.clone(),
        iss: None,
    };
    sso.finish_web_login(&start.pending, &callback)
        .await
        .expect("first use");
    // Keeping the pending login single-use is the caller's part; the platform refuses the code.
    let err = sso
        .finish_web_login(&start.pending, &callback)
        .await
        .expect_err("reuse");
    assert!(
        matches!(&err, Error::InvalidCode { code, .. } if code.to_string() == "3001"),
        "{err:?}"
    );
}

#[tokio::test]
async fn steps_wrong_secret_is_a_configuration_error_without_the_secret() {
    let fake = selfbuilt::start().await;
    let mut cfg = fake.tenant_config();
    cfg["app_secret"] = json!("fake_wrong_secret_999");
    let err = web_login(&sso(cfg), &fake, DEMO_USER_ID)
        .await
        .expect_err("wrong secret");
    assert!(matches!(err, Error::Misconfigured { .. }), "{err:?}");
    let text = format!("{err} {err:?}");
    assert!(!text.contains("fake_wrong_secret_999"), "{text}");
    assert!(text.contains("2001"), "{text}");
}

#[tokio::test]
async fn steps_web_flow_builds_the_authorize_url_and_exchanges_the_code() {
    let fake = selfbuilt::start().await;
    let sso = sso(fake.tenant_config());
    let redirect = Url::parse("https://app.acme.example/cb?x=1").unwrap();
    let start = sso
        .start_web_login(&acme(), "custom-oauth", Flow::Web, &redirect)
        .await
        .unwrap();
    let url = &start.url;
    assert!(url.as_str().starts_with(fake.base_url()), "{url}");
    let q: HashMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(q["app_id"], DEFAULT_APP_ID);
    assert_eq!(q["redirect_uri"], redirect.as_str());
    assert_eq!(q["state"], start.pending.state.expose());
    assert_eq!(q["response_type"], "code");
    assert!(!url.as_str().contains(DEFAULT_APP_SECRET));
    // The platform's own page accepts the URL (parameters validated by the fake), and its
    // Approve form sends the browser back with the code and the state.
    let page = reqwest::get(url.clone()).await.unwrap();
    assert_eq!(page.status(), reqwest::StatusCode::OK);
    let mut form: Vec<(String, String)> = q.into_iter().collect();
    form.push(("user_id".into(), DEMO_USER_ID.into()));
    let approved = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("{}/open/v3/sso/approve", fake.base_url()))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(approved.status(), reqwest::StatusCode::FOUND);
    let back = Url::parse(approved.headers()["location"].to_str().unwrap()).unwrap();
    assert!(
        back.as_str()
            .starts_with("https://app.acme.example/cb?x=1&"),
        "{back}"
    );
    let callback = Callback::from_query(back.query_pairs()).unwrap();
    let login = sso
        .finish_web_login(&start.pending, &callback)
        .await
        .expect("web login");
    assert_eq!(login.profile.user_id.as_deref(), Some("10086"));
    assert_eq!(login.flow, Flow::Web);
    assert!(
        login.user_token.is_none(),
        "steps mode issues no user token"
    );
}

#[tokio::test]
async fn steps_codes_are_never_redeemed_without_their_redirect_login() {
    let fake = selfbuilt::start().await;
    let sso = sso(fake.tenant_config());
    let code = AuthCode::new(fake.issue_h5_code(DEMO_USER_ID));
    let err = sso
        .login_with_code(&acme(), "custom-oauth", &code)
        .await
        .expect_err("a posted code");
    assert!(
        matches!(err, Error::RedirectLoginRequired { .. }),
        "{err:?}"
    );
    for endpoint in [ep::AUTH_TOKEN, ep::SSO_IDENTIFY, ep::USERS_GET] {
        assert_eq!(fake.calls(endpoint), 0, "{endpoint}: no upstream call");
    }
}

#[tokio::test]
async fn the_documented_steps_config_logs_in_as_written() {
    use unilogin_core::config::{CachedSource, YamlText};
    let fake = selfbuilt::start().await;
    // Only the host and the secret reference differ from the documentation.
    let yaml = documented_yaml("mode: steps")
        .replace("https://open.selfbuilt.example", fake.base_url())
        .replace("env:ACME_OPEN_SECRET", DEFAULT_APP_SECRET);
    let (source, report) = CachedSource::new(YamlText::new(yaml)).await.unwrap();
    assert!(report.rejected.is_empty(), "{report:?}");
    let sso = Sso::builder(source).build().unwrap();
    let login = web_login(&sso, &fake, DEMO_USER_ID)
        .await
        .expect("login with the documented configuration");
    let p = &login.profile;
    assert_eq!(p.user_id.as_deref(), Some("10086"));
    assert_eq!(p.email.as_deref(), Some("user001@example.com"));
    assert_eq!(p.job_title.as_deref(), Some("Engineer"));
    assert_eq!(p.department_ids, ["1", "100"]);
    let err = web_login(&sso, &fake, OUTSIDER_USER_ID)
        .await
        .expect_err("outsider");
    assert!(matches!(err, Error::NotInTenant { .. }), "{err:?}");
}

/// Builds the handler of a configuration and returns the error text.
fn load_error(cfg: Value) -> String {
    let config: PlatformConfig = serde_json::from_value(cfg).unwrap();
    let http = unilogin_core::http::HttpClient::new(&Default::default()).unwrap();
    let err = unilogin_custom_oauth::build(unilogin_core::registry::PlatformContext {
        config: &config,
        http: &http,
    })
    .expect_err("configuration must be rejected");
    assert!(matches!(err, Error::Config { .. }), "{err:?}");
    err.to_string()
}

#[test]
fn config_errors_name_tenant_step_and_field() {
    let base = "https://open.selfbuilt.example";
    let with = |f: &dyn Fn(&mut Value)| {
        let mut c: Value = serde_json::from_str(TENANT_CONFIG_JSON).unwrap();
        f(&mut c);
        load_error(c)
    };
    let cases: Vec<(String, &[&str])> = vec![
        (
            with(&|c| {
                c["options"]["steps"].as_array_mut().unwrap().remove(2);
            }),
            &["acme", "options.steps.user_detail", "missing step"],
        ),
        (
            with(&|c| c["options"]["steps"][2]["url"] = json!(format!("{base}/u/{{userid}}"))),
            &[
                "acme",
                "options.steps.user_detail.url",
                "unknown placeholder `{userid}`",
            ],
        ),
        (
            with(&|c| c["options"]["steps"][0]["params"]["appId"] = json!("{code}")),
            &[
                "acme",
                "options.steps.app_token.params.appId",
                "not available here",
            ],
        ),
        (
            with(&|c| {
                c["options"]["steps"][1]["extract"]["user_id"] = json!("$.result.payload.user[")
            }),
            &[
                "acme",
                "options.steps.user_id.extract.user_id",
                "invalid JSONPath",
            ],
        ),
        (
            with(&|c| c["options"]["steps"][0]["success"]["path"] = json!("result.status")),
            &[
                "acme",
                "options.steps.app_token.success.path",
                "must start with `$`",
            ],
        ),
        (
            with(&|c| c["options"]["steps"][0]["params_in"] = json!("body")),
            &["acme", "options.steps.app_token.params_in", "`body`"],
        ),
        (
            with(&|c| c["options"]["steps"][0]["params"]["appSecret"] = json!(DEFAULT_APP_SECRET)),
            &[
                "acme",
                "options.steps.app_token.params.appSecret",
                "in clear",
            ],
        ),
        (
            with(&|c| {
                c["options"]["steps"][0]["extract"]
                    .as_object_mut()
                    .unwrap()
                    .remove("token");
            }),
            &["acme", "options.steps.app_token.extract.token", "required"],
        ),
        (
            with(&|c| c["options"]["steps"][1]["url"] = json!("http://sso.example.com/x?c={code}")),
            &["acme", "options.steps.user_id.url", "https"],
        ),
        (
            with(&|c| {
                c["options"]
                    .as_object_mut()
                    .unwrap()
                    .remove("authorize_url");
            }),
            &[
                "acme",
                "options.authorize_url",
                "required",
                "redirect login",
            ],
        ),
        (
            with(&|c| c["hosts"] = json!({"api": "https://open.selfbuilt.example"})),
            &["acme", "hosts.api", "no named hosts"],
        ),
        (
            with(&|c| c["mode"] = json!("saml")),
            &["acme", "mode", "`saml`"],
        ),
        (
            with(&|c| c["options"]["steps"][0]["method"] = json!("GET")),
            &["acme", "options.steps.app_token.params_in", "GET"],
        ),
        (
            with(&|c| c["options"]["errors"]["rate_limited"] = json!([4029, 2002])),
            &[
                "acme",
                "options.errors.rate_limited[1]",
                "listed in two classes",
            ],
        ),
        (
            with(&|c| c["options"]["errors"]["transient"] = json!([5000, 1.5])),
            &["acme", "options.errors.transient[1]", "integer"],
        ),
        (
            with(&|c| c["options"]["errors"]["code"] = json!("$.result.error[")),
            &["acme", "options.errors.code", "invalid JSONPath"],
        ),
        (
            with(&|c| c["options"]["errors"]["token_invalid_codes"] = json!([2002])),
            &["acme", "options", "unknown field `token_invalid_codes`"],
        ),
        (
            with(&|c| {
                c.as_object_mut().unwrap().remove("app_secret");
            }),
            &["acme", "app_secret", "required in mode `steps`"],
        ),
        (
            with(&|c| c["options"]["token_auth_method"] = json!("none")),
            &["acme", "options", "unknown field `token_auth_method`"],
        ),
    ];
    for (text, wants) in cases {
        for want in wants {
            assert!(text.contains(want), "`{want}` missing from: {text}");
        }
        assert!(!text.contains(DEFAULT_APP_SECRET), "secret in: {text}");
    }
}
