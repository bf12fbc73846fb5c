//! `mode: steps` against a loopback fake of a self-built platform whose shapes differ from the
//! three known platforms: a nested `{status:{code,msg}, payload:{...}}` envelope, the app token
//! sent in a request header, a numeric user id, a form-encoded token request.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use axum::extract::{Form, Path, Query, State};
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use unilogin_core::config::{PlatformConfig, StaticConfig};
use unilogin_core::platform::WebCallback;
use unilogin_core::sso::{AuthorizeParams, Sso};
use unilogin_core::{AuthCode, Error, Flow, State as LoginState, TenantId};
use url::Url;

use unilogin_custom_oauth as _;

const APP_KEY: &str = "acme-app";
const APP_SECRET: &str = "fake_steps_secret_0001";

#[derive(Default)]
struct Fake {
    tokens: HashSet<String>,
    issued: u64,
    codes: HashMap<String, u64>,
    calls: HashMap<&'static str, u64>,
}

type Shared = Arc<Mutex<Fake>>;

fn ok(payload: Value) -> Json<Value> {
    Json(json!({"status": {"code": 0, "msg": "ok"}, "payload": payload}))
}

fn err(code: i64, msg: &str) -> Json<Value> {
    Json(json!({"status": {"code": code, "msg": msg}}))
}

async fn token(State(s): State<Shared>, Form(f): Form<HashMap<String, String>>) -> Json<Value> {
    let mut s = s.lock().unwrap();
    *s.calls.entry("token").or_default() += 1;
    if f.get("appId").map(String::as_str) != Some(APP_KEY)
        || f.get("appSecret").map(String::as_str) != Some(APP_SECRET)
    {
        return err(40001, "invalid app credentials");
    }
    s.issued += 1;
    let t = format!("fake_app_token_{}", s.issued);
    s.tokens.insert(t.clone());
    ok(json!({"credential": {"value": t, "ttl": "3600"}}))
}

fn authorized(s: &Fake, headers: &HeaderMap) -> bool {
    headers
        .get("x-open-token")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| s.tokens.contains(t))
}

async fn identify(
    State(s): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Json<Value> {
    let mut s = s.lock().unwrap();
    *s.calls.entry("identify").or_default() += 1;
    if !authorized(&s, &headers) {
        return err(40101, "token expired");
    }
    match q.get("auth_code").and_then(|c| s.codes.remove(c)) {
        Some(id) => ok(json!({"user": {"id": id, "unionId": "union-10086"}})),
        None => err(40102, "code invalid"),
    }
}

async fn user(State(s): State<Shared>, headers: HeaderMap, Path(id): Path<String>) -> Json<Value> {
    let mut s = s.lock().unwrap();
    *s.calls.entry("user").or_default() += 1;
    if !authorized(&s, &headers) {
        return err(40101, "token expired");
    }
    if id != "10086" {
        return err(40404, "no such user");
    }
    ok(json!({"profile": {
        "id": 10086,
        "displayName": " Zhang San ",
        "contact": {"mobile": "+8613800000000", "mail": "User001@Example.com"},
        "org": {"deptIds": [7, 9]}
    }}))
}

struct Running {
    base: String,
    state: Shared,
}

impl Running {
    fn code(&self, id: u64) -> AuthCode {
        let code = format!("fake_code_{}", rand_suffix());
        self.state.lock().unwrap().codes.insert(code.clone(), id);
        AuthCode::new(code)
    }
    fn calls(&self, name: &str) -> u64 {
        self.state
            .lock()
            .unwrap()
            .calls
            .get(name)
            .copied()
            .unwrap_or(0)
    }
    fn revoke(&self) {
        self.state.lock().unwrap().tokens.clear();
    }
}

fn rand_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed).to_string()
}

async fn start() -> Running {
    let state: Shared = Arc::default();
    let app = Router::new()
        .route("/open/v3/auth/token", post(token))
        .route("/open/v3/sso/identify", get(identify))
        .route("/open/v3/users/{id}", get(user))
        .with_state(state.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Running { base, state }
}

fn config(base: &str) -> Value {
    json!({
        "tenant": "acme",
        "platform": "custom-oauth",
        "mode": "steps",
        "app_key": APP_KEY,
        "app_secret": APP_SECRET,
        "redirect_uris": ["https://app.acme.example/cb"],
        "options": {
            "authorize_url": format!("{base}/open/v3/sso/authorize?app={{app_key}}&redirect={{redirect_uri}}&state={{state}}"),
            "errors": {
                "code": "$.status.code",
                "message": "$.status.msg",
                "token_invalid": [40101],
                "invalid_code": [40102],
                "not_in_tenant": ["40404"],
                "misconfigured": [40001]
            },
            "steps": [
                {
                    "name": "app_token", "method": "POST",
                    "url": format!("{base}/open/v3/auth/token"),
                    "params_in": "form",
                    "params": {"appId": "{app_key}", "appSecret": "{app_secret}"},
                    "success": {"path": "$.status.code", "equals": 0},
                    "extract": {"token": "$.payload.credential.value", "expires_in": "$.payload.credential.ttl"}
                },
                {
                    "name": "user_id",
                    "url": format!("{base}/open/v3/sso/identify?auth_code={{code}}"),
                    "params_in": "header",
                    "params": {"X-Open-Token": "{access_token}"},
                    "success": {"path": "$.status.code", "equals": "0"},
                    "extract": {"user_id": "$.payload.user.id", "union_id": "$.payload.user.unionId"}
                },
                {
                    "name": "user_detail",
                    "url": format!("{base}/open/v3/users/{{user_id}}"),
                    "headers": {"X-Open-Token": "{access_token}"},
                    "success": {"path": "$.status.code", "equals": 0}
                }
            ]
        },
        "mapping": {
            "user_id": {"path": "$.payload.profile.id", "required": true},
            "name": {"path": "$.payload.profile.displayName", "transform": "trim"},
            "mobile": {"path": "$.payload.profile.contact.mobile", "transform": "strip_country_code"},
            "email": {"path": "$.payload.profile.contact.mail", "transform": "lowercase"},
            "department_ids": {"path": "$.payload.profile.org.deptIds[*]", "many": true}
        }
    })
}

fn sso(config: Value) -> Sso {
    let config: PlatformConfig = serde_json::from_value(config).unwrap();
    Sso::builder(StaticConfig::new(vec![config]))
        .build()
        .unwrap()
}

fn acme() -> TenantId {
    TenantId::new("acme").unwrap()
}

#[tokio::test]
async fn steps_login_maps_the_user_and_caches_the_app_token() {
    let fake = start().await;
    let sso = sso(config(&fake.base));
    let login = sso
        .login_with_code(&acme(), "custom-oauth", &fake.code(10086))
        .await
        .expect("login");
    let p = &login.profile;
    assert_eq!(p.user_id, "10086");
    assert_eq!(p.union_id.as_deref(), Some("union-10086"));
    assert_eq!(p.name.as_deref(), Some("Zhang San"));
    assert_eq!(p.mobile.as_deref(), Some("13800000000"));
    assert_eq!(p.email.as_deref(), Some("user001@example.com"));
    assert_eq!(p.department_ids, ["7", "9"]);
    // A second login reuses the cached app token.
    sso.login_with_code(&acme(), "custom-oauth", &fake.code(10086))
        .await
        .expect("warm login");
    assert_eq!(fake.calls("token"), 1);
    assert_eq!(fake.calls("identify"), 2);
    assert_eq!(fake.calls("user"), 2);
}

#[tokio::test]
async fn steps_revoked_app_token_is_replaced_once() {
    let fake = start().await;
    let sso = sso(config(&fake.base));
    sso.login_with_code(&acme(), "custom-oauth", &fake.code(10086))
        .await
        .expect("cold login");
    fake.revoke();
    sso.login_with_code(&acme(), "custom-oauth", &fake.code(10086))
        .await
        .expect("login after revocation");
    assert_eq!(fake.calls("token"), 2, "exactly one new app token");
    assert_eq!(fake.calls("identify"), 3, "one rejected call and one retry");
}

#[tokio::test]
async fn steps_used_code_is_invalid_code_and_unknown_user_not_in_tenant() {
    let fake = start().await;
    let sso = sso(config(&fake.base));
    let code = fake.code(10086);
    sso.login_with_code(&acme(), "custom-oauth", &code)
        .await
        .expect("first use");
    let err = sso
        .login_with_code(&acme(), "custom-oauth", &code)
        .await
        .expect_err("reuse");
    assert!(matches!(err, Error::InvalidCode { .. }), "{err:?}");
    let err = sso
        .login_with_code(&acme(), "custom-oauth", &fake.code(1))
        .await
        .expect_err("unknown user");
    assert!(matches!(err, Error::NotInTenant { .. }), "{err:?}");
}

#[tokio::test]
async fn steps_wrong_secret_is_a_configuration_error_without_the_secret() {
    let fake = start().await;
    let mut cfg = config(&fake.base);
    cfg["app_secret"] = json!("fake_wrong_secret_999");
    let err = sso(cfg)
        .login_with_code(&acme(), "custom-oauth", &fake.code(10086))
        .await
        .expect_err("wrong secret");
    assert!(matches!(err, Error::Misconfigured { .. }), "{err:?}");
    let text = format!("{err} {err:?}");
    assert!(!text.contains("fake_wrong_secret_999"), "{text}");
    assert!(text.contains("40001"), "{text}");
}

#[tokio::test]
async fn steps_web_flow_builds_the_authorize_url_and_exchanges_the_code() {
    let fake = start().await;
    let sso = sso(config(&fake.base));
    let redirect = Url::parse("https://app.acme.example/cb?x=1").unwrap();
    let state = LoginState::new("st&ate/1");
    let url = sso
        .authorize_url(
            &acme(),
            "custom-oauth",
            AuthorizeParams {
                flow: Flow::Web,
                redirect_uri: &redirect,
                state: &state,
                nonce: None,
                code_challenge: None,
            },
        )
        .await
        .unwrap();
    let q: HashMap<String, String> = url.query_pairs().into_owned().collect();
    assert_eq!(q["app"], APP_KEY);
    assert_eq!(q["redirect"], redirect.as_str());
    assert_eq!(q["state"], "st&ate/1");
    assert!(!url.as_str().contains(APP_SECRET));
    let code = fake.code(10086);
    let login = sso
        .complete_web_login(
            &acme(),
            "custom-oauth",
            WebCallback {
                code: &code,
                redirect_uri: &redirect,
                code_verifier: None,
                nonce: None,
            },
        )
        .await
        .expect("web login");
    assert_eq!(login.profile.user_id, "10086");
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
    let base = "http://127.0.0.1:9";
    let with = |f: &dyn Fn(&mut Value)| {
        let mut c = config(base);
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
            with(&|c| c["options"]["steps"][1]["extract"]["user_id"] = json!("$.payload.user[")),
            &[
                "acme",
                "options.steps.user_id.extract.user_id",
                "invalid JSONPath",
            ],
        ),
        (
            with(&|c| c["options"]["steps"][0]["success"]["path"] = json!("status.code")),
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
            with(&|c| c["options"]["steps"][0]["params"]["appSecret"] = json!(APP_SECRET)),
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
            with(&|c| c["mode"] = json!("saml")),
            &["acme", "mode", "`saml`"],
        ),
        (
            with(&|c| c["options"]["steps"][0]["method"] = json!("GET")),
            &["acme", "options.steps.app_token.params_in", "GET"],
        ),
    ];
    for (text, wants) in cases {
        for want in wants {
            assert!(text.contains(want), "`{want}` missing from: {text}");
        }
        assert!(!text.contains(APP_SECRET), "secret in: {text}");
    }
}
