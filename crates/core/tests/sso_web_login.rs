//! The core's orchestration against two test platforms registered here:
//!
//! - `test-oidc`: no app token (`token_key() == None`), an RFC 9207 issuer, redirect logins
//!   only (`InClient::None`);
//! - `test-jsapi`: an app token and a JSAPI in-client login.
//!
//! Covers: the token cache is never consulted without an app token and a "token invalid"
//! answer is then not retried; the core owns the web-login state (fresh state, S256 challenge
//! of the verifier it later sends, nonce); the state, target and `iss` are checked before the
//! code is spent; stateless codes are refused for non-JSAPI platforms before any upstream
//! call; `Prepared` is reused per configuration revision and `compiled` builds once.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::{Value, json};
use unilogin_core::config::{PlatformConfig, StaticConfig};
use unilogin_core::error::StateProblem;
use unilogin_core::platform::{
    AuthorizeRequest, Base, Identity, InClient, IssuerPolicy, JsapiLogin, Platform, WebCallback,
};
use unilogin_core::registry::{PlatformContext, PlatformRegistration};
use unilogin_core::sso::Sso;
use unilogin_core::token_cache::{FetchedToken, TokenKey};
use unilogin_core::web_login::{Callback, pkce_challenge};
use unilogin_core::{AccessToken, AuthCode, Error, Flow, Result, TenantId, UpstreamCode};
use url::Url;

const OIDC: &str = "test-oidc";
const JSAPI: &str = "test-jsapi";
const RULES_OIDC: &str = "test-oidc:\n  user_id: { path: \"$.sub\", required: true }\n";
const RULES_JSAPI: &str = "test-jsapi:\n  user_id: { path: \"$.sub\", required: true }\n";

/// What the test platforms saw (tests of one file run in parallel: each uses its own tenant).
#[derive(Default)]
struct Seen {
    fetches: AtomicU64,
    steps: AtomicU64,
    challenge: Mutex<Option<String>>,
    verifier: Mutex<Option<String>>,
}

/// What each tenant's test platform saw, by tenant.
type SeenByTenant = Mutex<Vec<(String, Arc<Seen>)>>;

static SEEN: SeenByTenant = Mutex::new(Vec::new());

fn seen(tenant: &str) -> Arc<Seen> {
    let mut all = SEEN.lock().unwrap();
    if let Some((_, s)) = all.iter().find(|(t, _)| t == tenant) {
        return s.clone();
    }
    let s = Arc::new(Seen::default());
    all.push((tenant.to_string(), s.clone()));
    s
}

#[derive(Debug)]
struct TestPlatform {
    base: Base,
    app_token: bool,
}

fn build(ctx: PlatformContext<'_>) -> Result<Arc<dyn Platform>> {
    Ok(Arc::new(TestPlatform {
        base: Base::new(&ctx, &[("idp", "https://idp.example/")])?,
        app_token: ctx.config.platform.as_str() == JSAPI,
    }))
}

inventory::submit! {
    PlatformRegistration {
        name: OIDC,
        description: "test platform without app tokens",
        default_rules: RULES_OIDC,
        user_agent_markers: &[],
        in_client: InClient::None,
        build,
        events: None,
    }
}

fn jsapi_params(config: &PlatformConfig) -> Value {
    json!({ "appId": config.app_key.as_str() })
}

inventory::submit! {
    PlatformRegistration {
        name: JSAPI,
        description: "test platform with a JSAPI login",
        default_rules: RULES_JSAPI,
        user_agent_markers: &["testjsapi"],
        in_client: InClient::Jsapi(JsapiLogin {
            sdk_url: "https://cdn.example/sdk.js",
            global: "tj",
            get_code: "function (p) { return tj.code(p.appId); }",
            params: jsapi_params,
        }),
        build,
        events: None,
    }
}

impl TestPlatform {
    fn seen(&self) -> Arc<Seen> {
        seen(self.base.tenant.as_str())
    }

    fn identity(&self, code: &AuthCode) -> Result<Identity> {
        self.seen().steps.fetch_add(1, Ordering::SeqCst);
        if code.expose() == "rejected" {
            return Err(Error::TokenInvalid {
                ctx: self.base.ctx("code"),
                code: UpstreamCode::Number(1),
            });
        }
        let mut documents = serde_json::Map::new();
        documents.insert("sub".into(), json!(format!("u-{}", code.expose())));
        Ok(Identity {
            documents,
            ..Identity::default()
        })
    }
}

#[async_trait]
impl Platform for TestPlatform {
    fn base(&self) -> &Base {
        &self.base
    }

    fn token_key(&self) -> Option<TokenKey> {
        self.app_token.then(|| self.base.token_key(None))
    }

    async fn fetch_app_token(&self) -> Result<FetchedToken> {
        self.seen().fetches.fetch_add(1, Ordering::SeqCst);
        assert!(
            self.app_token,
            "fetched an app token for a handler without one"
        );
        Ok(FetchedToken {
            token: AccessToken::new("app-token"),
            expires_in: std::time::Duration::from_secs(7200),
        })
    }

    async fn identify_h5(
        &self,
        app_token: Option<&AccessToken>,
        code: &AuthCode,
    ) -> Result<Identity> {
        assert_eq!(self.base.app_token(app_token)?.expose(), "app-token");
        self.identity(code)
    }

    async fn exchange_web_code(
        &self,
        app_token: Option<&AccessToken>,
        callback: &WebCallback<'_>,
    ) -> Result<Identity> {
        assert_eq!(app_token.is_some(), self.app_token);
        *self.seen().verifier.lock().unwrap() = Some(callback.code_verifier.to_string());
        self.identity(callback.code)
    }

    async fn user_detail(
        &self,
        app_token: Option<&AccessToken>,
        identity: &Identity,
    ) -> Result<Value> {
        assert_eq!(app_token.is_some(), self.app_token);
        Ok(Value::Object(identity.documents.clone()))
    }

    async fn authorize_url(&self, request: &AuthorizeRequest<'_>) -> Result<Url> {
        *self.seen().challenge.lock().unwrap() = Some(request.code_challenge.to_string());
        let mut url = self.base.url("idp", "authorize")?;
        url.query_pairs_mut()
            .append_pair("state", request.state.expose())
            .append_pair("code_challenge", request.code_challenge);
        Ok(url)
    }

    async fn authorization_issuer(&self) -> Result<Option<IssuerPolicy>> {
        Ok((!self.app_token).then(|| IssuerPolicy {
            issuer: "https://idp.example".into(),
            required: true,
        }))
    }
}

fn sso_for(tenant: &str, platform: &str) -> Sso {
    let config: PlatformConfig = serde_json::from_value(json!({
        "tenant": tenant, "platform": platform, "app_key": "client", "app_secret": "secret",
        "session_scopes": { "default": ["user:read"] },
    }))
    .unwrap();
    Sso::builder(StaticConfig::new(vec![config]))
        .build()
        .unwrap()
}

fn callback(code: &str, state: &str, iss: Option<&str>) -> Callback {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("code", code).append_pair("state", state);
    if let Some(iss) = iss {
        q.append_pair("iss", iss);
    }
    let q = q.finish();
    Callback::from_query(url::form_urlencoded::parse(q.as_bytes())).unwrap()
}

#[tokio::test]
async fn web_login_state_pkce_and_issuer_are_owned_by_the_core() {
    let (tenant, seen) = ("web", seen("web"));
    let sso = sso_for(tenant, OIDC);
    let t = TenantId::new(tenant).unwrap();
    let cb = Url::parse("https://app.example/cb").unwrap();
    let p = sso.prepare(&t, OIDC).await.unwrap();
    let start = p.start_web_login(Flow::Web, &cb).await.unwrap();
    let state = start.pending.state.expose().to_string();
    assert!(
        start
            .url
            .query_pairs()
            .any(|(k, v)| k == "state" && v == state)
    );
    let challenge = seen.challenge.lock().unwrap().clone().unwrap();
    assert_eq!(
        challenge,
        pkce_challenge(start.pending.pkce_verifier.expose())
    );

    // Refused before the code is spent: another state, another issuer, no issuer.
    let before = seen.steps.load(Ordering::SeqCst);
    for (cb, problem) in [
        (
            callback("c", "forged", Some("https://idp.example")),
            StateProblem::Unknown,
        ),
        (
            callback("c", &state, Some("https://evil.example")),
            StateProblem::WrongIssuer,
        ),
        (callback("c", &state, None), StateProblem::MissingIssuer),
    ] {
        let e = p.finish_web_login(&start.pending, &cb).await.unwrap_err();
        assert!(
            matches!(e, Error::State(ref got) if *got == problem),
            "{e:?}"
        );
    }
    // A pending login of another target.
    let other = sso_for(tenant, JSAPI);
    let q = other.prepare(&t, JSAPI).await.unwrap();
    let e = q
        .finish_web_login(&start.pending, &callback("c", &state, None))
        .await
        .unwrap_err();
    assert!(
        matches!(e, Error::State(StateProblem::WrongTarget)),
        "{e:?}"
    );
    assert_eq!(
        seen.steps.load(Ordering::SeqCst),
        before,
        "a code was spent"
    );

    let login = p
        .finish_web_login(
            &start.pending,
            &callback("c", &state, Some("https://idp.example")),
        )
        .await
        .unwrap();
    assert_eq!(login.profile.user_id.as_deref(), Some("u-c"));
    assert_eq!(login.flow, Flow::Web);
    assert_eq!(
        seen.verifier.lock().unwrap().as_deref(),
        Some(start.pending.pkce_verifier.expose())
    );
    assert_eq!(
        seen.fetches.load(Ordering::SeqCst),
        0,
        "an app token was fetched"
    );
}

#[tokio::test]
async fn without_an_app_token_a_token_rejection_is_not_retried() {
    let (tenant, seen) = ("noretry", seen("noretry"));
    let sso = sso_for(tenant, OIDC);
    let t = TenantId::new(tenant).unwrap();
    let cb = Url::parse("https://app.example/cb").unwrap();
    let start = sso.start_web_login(&t, OIDC, Flow::Web, &cb).await.unwrap();
    let state = start.pending.state.expose().to_string();
    let before = seen.steps.load(Ordering::SeqCst);
    let e = sso
        .finish_web_login(
            &start.pending,
            &callback("rejected", &state, Some("https://idp.example")),
        )
        .await
        .unwrap_err();
    assert!(e.is_token_invalid(), "{e:?}");
    assert_eq!(seen.steps.load(Ordering::SeqCst) - before, 1, "retried");
}

#[tokio::test]
async fn stateless_codes_are_refused_unless_the_platform_declares_a_jsapi() {
    let (tenant, seen) = ("stateless", seen("stateless"));
    let t = TenantId::new(tenant).unwrap();
    let e = sso_for(tenant, OIDC)
        .login_with_code(&t, OIDC, &AuthCode::new("web-code"))
        .await
        .unwrap_err();
    assert!(matches!(e, Error::RedirectLoginRequired { .. }), "{e:?}");
    assert_eq!(e.kind(), "redirect_login_required");
    assert_eq!(seen.steps.load(Ordering::SeqCst), 0, "a code was spent");

    let login = sso_for(tenant, JSAPI)
        .login_with_code(&t, JSAPI, &AuthCode::new("jsapi-code"))
        .await
        .unwrap();
    assert_eq!(login.profile.user_id.as_deref(), Some("u-jsapi-code"));
    assert_eq!(seen.fetches.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn prepared_is_reused_per_revision_and_compiles_once() {
    let sso = sso_for("prepared", JSAPI);
    let t = TenantId::new("prepared").unwrap();
    let a = sso.prepare(&t, "TEST-JSAPI").await.unwrap();
    let b = sso.prepare(&t, JSAPI).await.unwrap();
    assert!(Arc::ptr_eq(a.handler(), b.handler()));
    assert_eq!(a.platform().as_str(), JSAPI);
    let builds = AtomicU64::new(0);
    for p in [&a, &b] {
        let scopes = p
            .compiled(|config| {
                builds.fetch_add(1, Ordering::SeqCst);
                Ok(config.session_scopes.clone().unwrap_or_default())
            })
            .unwrap();
        let profile = serde_json::from_value(json!({
            "platform": JSAPI, "tenant": "prepared", "user_id": "u1"
        }))
        .unwrap();
        assert_eq!(scopes.scopes_for(&profile), ["user:read"]);
    }
    assert_eq!(builds.load(Ordering::SeqCst), 1);
    let failed: Result<Arc<u8>> = a.compiled(|c| Err(c.error("x", "bad")));
    assert!(failed.is_err());
    let jsapi = a.registration().in_client.jsapi().unwrap();
    assert_eq!((jsapi.params)(a.config()), json!({ "appId": "client" }));
    assert!(a.check_return_to("https://evil.example/").is_err());
}
