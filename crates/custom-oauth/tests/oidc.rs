//! `mode: oidc` against a real OAuth2 / OIDC server: the `oauth2-mock-server` package from the
//! npm registry, run by `tests/oidc-server/server.mjs` on a free loopback port. The package is
//! installed once into Cargo's target directory (`cargo xtask ci` provisions it beforehand);
//! without Node.js and npm these tests fail with a message saying so.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;

use serde_json::{Value, json};
use unilogin_core::config::{PlatformConfig, StaticConfig};
use unilogin_core::error::{IdTokenProblem, StateProblem};
use unilogin_core::platform::IssuerPolicy;
use unilogin_core::registry::PlatformContext;
use unilogin_core::sso::Sso;
use unilogin_core::web_login::{Callback, PendingLogin, random_hex};
use unilogin_core::{AuthCode, Error, Flow, Login, PkceVerifier};
use url::Url;

mod common;
use common::{acme, documented_yaml};

/// The pinned package version (Node.js ^20.19 / ^22.12 / ^24).
const MOCK_VERSION: &str = "8.2.3";
const CLIENT_ID: &str = "unilogin-client";
const CLIENT_SECRET: &str = "fake_oidc_secret_0001";
const CALLBACK: &str = "https://app.acme.example/auth/callback";
const DEFAULT_SCOPE: &str = "openid profile email";

/// Where the package is installed: `<target>/tmp/oauth2-mock-server-<version>`.
fn install_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("oauth2-mock-server-{MOCK_VERSION}"))
}

fn ensure_installed() -> PathBuf {
    static LOCK: Mutex<()> = Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let dir = install_dir();
    let marker = dir.join("node_modules/oauth2-mock-server/package.json");
    if !marker.exists() {
        std::fs::create_dir_all(&dir).expect("creating the install directory");
        let status = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--prefix"])
            .arg(&dir)
            .arg(format!("oauth2-mock-server@{MOCK_VERSION}"))
            .status()
            .unwrap_or_else(|e| {
                panic!("these tests need Node.js and npm to run oauth2-mock-server ({e}); install them or run `cargo xtask ci`")
            });
        assert!(
            status.success(),
            "npm install oauth2-mock-server@{MOCK_VERSION} failed"
        );
    }
    dir.join("node_modules")
}

/// A running provider; killed (by its pid) when dropped.
struct Provider {
    child: Child,
    issuer: String,
    http: reqwest::Client,
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Provider {
    fn start() -> Self {
        let modules = ensure_installed();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oidc-server/server.mjs");
        let mut child = Command::new("node")
            .arg(script)
            .arg(modules)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("these tests need Node.js (`node`) on PATH");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("reading the server's first line");
        let hello: Value = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("server did not start: {e}: {line:?}"));
        Provider {
            child,
            issuer: hello["issuer"].as_str().expect("issuer").to_string(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
        }
    }

    async fn control(&self, route: &str, body: Value) {
        let r = self
            .http
            .post(format!("{}/__control/{route}", self.issuer))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "control {route}: {}", r.status());
    }

    async fn stats(&self) -> Value {
        self.http
            .get(format!("{}/__control/stats", self.issuer))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    async fn count(&self, route: &str) -> u64 {
        self.stats().await["counts"][route].as_u64().unwrap_or(0)
    }

    fn config(&self, options: Value) -> Value {
        let mut opts = json!({ "issuer": self.issuer });
        for (k, v) in options.as_object().unwrap() {
            opts[k] = v.clone();
        }
        json!({
            "tenant": "acme", "platform": "custom-oauth", "mode": "oidc",
            "app_key": CLIENT_ID, "app_secret": CLIENT_SECRET,
            "redirect_uris": [CALLBACK],
            "options": opts,
        })
    }

    fn sso(&self, options: Value) -> Sso {
        let config: PlatformConfig = serde_json::from_value(self.config(options)).unwrap();
        Sso::builder(StaticConfig::new(vec![config]))
            .build()
            .unwrap()
    }

    /// Runs a whole web login: authorize URL, the provider's redirect (no browser), callback.
    async fn login(&self, sso: &Sso) -> Result<Login, Error> {
        self.login_with(sso, DEFAULT_SCOPE, |_| {}).await
    }

    /// [`login`](Self::login) expecting `scope` on the authorize URL, with `tweak` applied to
    /// the pending login before the callback is finished.
    async fn login_with(
        &self,
        sso: &Sso,
        scope: &str,
        tweak: impl FnOnce(&mut PendingLogin),
    ) -> Result<Login, Error> {
        let (mut pending, callback) = self.authorize(sso, scope).await?;
        tweak(&mut pending);
        sso.finish_web_login(&pending, &callback).await
    }

    /// Starts a login and follows the provider's redirect back: the pending login and the
    /// callback, checked to carry the PKCE challenge, the nonce, the scope and the state.
    async fn authorize(&self, sso: &Sso, scope: &str) -> Result<(PendingLogin, Callback), Error> {
        let redirect = Url::parse(CALLBACK).unwrap();
        let start = sso
            .start_web_login(&acme(), "custom-oauth", Flow::Web, &redirect)
            .await?;
        let q: HashMap<String, String> = start.url.query_pairs().into_owned().collect();
        assert_eq!(q["code_challenge_method"], "S256");
        assert_eq!(q["code_challenge"], start.pending.code_challenge());
        assert_eq!(q["nonce"], start.pending.nonce.expose());
        assert_eq!(q["state"], start.pending.state.expose());
        assert_eq!(q["scope"], scope);
        assert_eq!(q["client_id"], CLIENT_ID);
        let location = self.follow(&start.url).await;
        let callback = Callback::from_query(location.query_pairs()).expect("a callback");
        Ok((start.pending, callback))
    }

    /// The provider's redirect for an authorize URL.
    async fn follow(&self, url: &Url) -> Url {
        let response = self.http.get(url.clone()).send().await.unwrap();
        assert!(response.status().is_redirection(), "{}", response.status());
        Url::parse(response.headers()["location"].to_str().unwrap()).unwrap()
    }
}

/// A predicate on an error.
type Check = fn(&Error) -> bool;

fn problem(e: &Error) -> Option<IdTokenProblem> {
    match e {
        Error::InvalidIdToken { problem, .. } => Some(*problem),
        _ => None,
    }
}

#[tokio::test]
async fn code_flow_with_pkce_discovery_id_token_and_refresh() {
    let provider = Provider::start();
    let sso = provider.sso(json!({}));
    let (pending, callback) = provider.authorize(&sso, DEFAULT_SCOPE).await.unwrap();
    let login = sso
        .finish_web_login(&pending, &callback)
        .await
        .expect("login");
    let p = &login.profile;
    assert_eq!(p.user_id.as_deref(), Some("johndoe"));
    assert_eq!(p.name.as_deref(), Some("Zhang San"));
    assert_eq!(p.email.as_deref(), Some("user001@example.com"));
    assert_eq!(p.mobile.as_deref(), Some("13800000000"));
    assert_eq!(p.extra["preferred_username"], json!("zhangsan"));
    // The token request authenticated with HTTP Basic and carried the PKCE verifier.
    let last = &provider.stats().await["lastToken"];
    let basic = last["authorization"].as_str().unwrap();
    assert!(basic.starts_with("Basic "), "{basic}");
    assert_eq!(
        last["body"]["code_verifier"],
        json!(pending.pkce_verifier.expose())
    );
    assert!(last["body"].get("client_secret").is_none());
    assert_eq!(last["body"]["redirect_uri"], json!(CALLBACK));

    // A second login reuses the cached discovery document and key set.
    provider.login(&sso).await.expect("second login");
    assert_eq!(provider.count("/.well-known/openid-configuration").await, 1);
    assert_eq!(provider.count("/jwks").await, 1);

    // Refresh: a new access token; the refreshed id_token is verified too.
    let token = login.user_token.expect("user token");
    let refresh = token.refresh_token.expect("refresh token");
    let fresh = sso
        .refresh_user_token(&acme(), "custom-oauth", &refresh)
        .await
        .expect("refresh");
    assert!(!fresh.access_token.expose().is_empty());
    assert!(fresh.refresh_token.is_some());
    assert_eq!(
        provider.stats().await["lastToken"]["body"]["grant_type"],
        json!("refresh_token")
    );
    provider
        .control("next-id-token", json!({"tamper": true}))
        .await;
    let err = sso
        .refresh_user_token(&acme(), "custom-oauth", &refresh)
        .await
        .expect_err("forged id_token on refresh");
    assert_eq!(problem(&err), Some(IdTokenProblem::Signature), "{err:?}");
}

#[tokio::test]
async fn client_secret_post_sends_the_secret_in_the_body() {
    let provider = Provider::start();
    let sso = provider.sso(json!({"token_auth_method": "client_secret_post"}));
    provider.login(&sso).await.expect("login");
    let last = &provider.stats().await["lastToken"];
    assert!(last["authorization"].is_null());
    assert_eq!(last["body"]["client_id"], json!(CLIENT_ID));
    assert_eq!(last["body"]["client_secret"], json!(CLIENT_SECRET));
}

#[tokio::test]
async fn a_public_client_has_no_secret_and_sends_none() {
    let provider = Provider::start();
    let mut config = provider.config(json!({"token_auth_method": "none"}));
    config.as_object_mut().unwrap().remove("app_secret");
    let config: PlatformConfig = serde_json::from_value(config).unwrap();
    config
        .validate()
        .expect("a public client validates without app_secret");
    assert!(config.app_secret.is_empty());
    let sso = Sso::builder(StaticConfig::new(vec![config]))
        .build()
        .unwrap();
    let login = provider.login(&sso).await.expect("public client login");
    assert_eq!(login.profile.user_id.as_deref(), Some("johndoe"));
    // No client authentication at all: no Basic header, no client_secret; the client id and
    // the PKCE verifier identify the request.
    let last = &provider.stats().await["lastToken"];
    assert!(last["authorization"].is_null(), "{last}");
    assert!(last["body"].get("client_secret").is_none(), "{last}");
    assert_eq!(last["body"]["client_id"], json!(CLIENT_ID));
    assert!(
        last["body"]["code_verifier"]
            .as_str()
            .is_some_and(|v| (43..=128).contains(&v.len()))
    );
}

/// An `Sso` over a documented configuration, the provider's issuer in place of the example's.
async fn documented_sso(provider: &Provider, yaml: &str) -> Sso {
    use unilogin_core::config::{CachedSource, YamlText};
    let yaml = yaml.replace("https://idp.acme.example/realms/staff", &provider.issuer);
    let (source, report) = CachedSource::new(YamlText::new(yaml)).await.unwrap();
    assert!(report.rejected.is_empty(), "{report:?}");
    Sso::builder(source).build().unwrap()
}

#[tokio::test]
async fn the_documented_confidential_client_config_logs_in_as_written() {
    let yaml = documented_yaml("token_auth_method: client_secret_basic");
    assert!(
        yaml.contains("scopes: [openid, profile, email, phone]"),
        "{yaml}"
    );
    let provider = Provider::start();
    // Only the issuer and the secret reference differ from the documentation; `options.scopes`
    // are the OAuth scopes (session scope rules are the top-level `session_scopes`).
    let yaml = yaml.replace("env:ACME_OIDC_CLIENT_SECRET", CLIENT_SECRET);
    let sso = documented_sso(&provider, &yaml).await;
    let redirect = Url::parse(CALLBACK).unwrap();
    let start = sso
        .start_web_login(&acme(), "custom-oauth", Flow::Web, &redirect)
        .await
        .unwrap();
    let q: HashMap<String, String> = start.url.query_pairs().into_owned().collect();
    assert_eq!(
        (q["prompt"].as_str(), q["ui_locales"].as_str()),
        ("login", "zh-CN")
    );
    let login = provider
        .login_with(&sso, "openid profile email phone", |_| {})
        .await
        .expect("login with the documented configuration");
    assert_eq!(login.profile.user_id.as_deref(), Some("johndoe"));
    assert_eq!(login.profile.email.as_deref(), Some("user001@example.com"));
    let last = &provider.stats().await["lastToken"];
    assert!(
        last["authorization"]
            .as_str()
            .is_some_and(|a| a.starts_with("Basic "))
    );
}

#[tokio::test]
async fn the_documented_public_client_config_logs_in_as_written() {
    let yaml = documented_yaml("token_auth_method: none ");
    assert!(!yaml.contains("app_secret:"), "{yaml}");
    let provider = Provider::start();
    // Only the issuer and the client id differ from the documentation.
    let yaml = yaml.replace("acme-spa", CLIENT_ID);
    let sso = documented_sso(&provider, &yaml).await;
    let login = provider.login(&sso).await.expect("public client login");
    assert_eq!(login.profile.user_id.as_deref(), Some("johndoe"));
    let last = &provider.stats().await["lastToken"];
    assert!(last["authorization"].is_null() && last["body"].get("client_secret").is_none());
}

#[tokio::test]
async fn a_confidential_client_without_secret_is_refused_at_load() {
    use unilogin_core::config::{CachedSource, ConfigSource, YamlText};
    // YAML: the entry is rejected naming tenant, platform and field; the public one loads.
    let yaml = "tenants:\n  acme:\n    custom-oauth:\n      mode: oidc\n      app_key: web-client\n      \
                options: { issuer: \"https://idp.example.com\", token_auth_method: client_secret_post }\n  \
                globex:\n    custom-oauth:\n      mode: oidc\n      app_key: spa-client\n      \
                options: { issuer: \"https://idp.example.com\", token_auth_method: none }\n";
    let (source, report) = CachedSource::new(YamlText::new(yaml)).await.unwrap();
    assert_eq!(report.rejected.len(), 1, "{report:?}");
    let err = source
        .get(&acme(), "custom-oauth")
        .await
        .expect_err("confidential client without a secret");
    let text = err.to_string();
    for want in ["acme", "custom-oauth", "app_secret", "missing"] {
        assert!(text.contains(want), "`{want}` missing from {text}");
    }
    let globex = unilogin_core::TenantId::new("globex").unwrap();
    let public = source
        .get(&globex, "custom-oauth")
        .await
        .expect("public client");
    assert!(public.app_secret.is_empty());

    // Deserialized directly (no YAML), the handler itself refuses it, for every confidential
    // method, naming the field.
    let http = unilogin_core::http::HttpClient::new(&Default::default()).unwrap();
    for method in [
        None,
        Some("client_secret_basic"),
        Some("client_secret_post"),
    ] {
        let mut options = json!({"issuer": "https://idp.example.com"});
        if let Some(m) = method {
            options["token_auth_method"] = json!(m);
        }
        let config: PlatformConfig = serde_json::from_value(json!({
            "tenant": "acme", "platform": "custom-oauth", "mode": "oidc",
            "app_key": CLIENT_ID, "options": options,
        }))
        .unwrap();
        for text in [
            config.validate().unwrap_err().to_string(),
            unilogin_custom_oauth::build(unilogin_core::registry::PlatformContext {
                config: &config,
                http: &http,
            })
            .map(|_| ())
            .unwrap_err()
            .to_string(),
        ] {
            assert!(
                text.contains("acme") && text.contains("app_secret"),
                "{method:?}: {text}"
            );
        }
    }
}

#[tokio::test]
async fn a_wrong_pkce_verifier_is_refused_by_the_provider() {
    let provider = Provider::start();
    let sso = provider.sso(json!({}));
    let err = provider
        .login_with(&sso, DEFAULT_SCOPE, |p| {
            p.pkce_verifier = PkceVerifier::new(random_hex(32))
        })
        .await
        .expect_err("wrong verifier");
    assert!(
        matches!(&err, Error::Upstream { code, .. } if code.to_string() == "invalid_request"),
        "{err:?}"
    );
}

#[tokio::test]
async fn tampered_expired_wrong_audience_and_wrong_nonce_id_tokens_are_rejected() {
    let provider = Provider::start();
    let sso = provider.sso(json!({}));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let cases = [
        (json!({"tamper": true}), IdTokenProblem::Signature),
        (
            json!({"payload": {"exp": now - 3600, "iat": now - 7200}}),
            IdTokenProblem::Expired,
        ),
        (
            json!({"payload": {"aud": "another-client"}}),
            IdTokenProblem::Audience,
        ),
        (
            json!({"payload": {"nonce": "not-the-nonce-we-sent"}}),
            IdTokenProblem::Nonce,
        ),
        (
            json!({"payload": {"iss": "https://evil.example"}}),
            IdTokenProblem::Issuer,
        ),
        (
            json!({"payload": {"azp": "another-client"}}),
            IdTokenProblem::Audience,
        ),
    ];
    for (steer, expected) in cases {
        provider.control("next-id-token", steer.clone()).await;
        let err = provider.login(&sso).await.expect_err("must be rejected");
        assert_eq!(problem(&err), Some(expected), "{steer}: {err:?}");
        let text = format!("{err} {err:?}");
        assert!(
            !text.contains(CLIENT_SECRET) && !text.contains("eyJ"),
            "{text}"
        );
    }
    // The provider behaves again: the next login works.
    provider.login(&sso).await.expect("clean login");
}

#[tokio::test]
async fn rotated_keys_are_refetched_once_and_unknown_keys_are_bounded() {
    let provider = Provider::start();
    let sso = provider.sso(json!({}));
    provider.login(&sso).await.expect("first login");
    assert_eq!(provider.count("/jwks").await, 1);
    provider.control("rotate", json!({})).await;
    provider
        .login(&sso)
        .await
        .expect("login after key rotation");
    assert_eq!(
        provider.count("/jwks").await,
        2,
        "one refetch for the new key id"
    );
    // A key id the provider never published: rejected, and no JWKS request storm.
    for _ in 0..3 {
        provider
            .control(
                "next-id-token",
                json!({"header": {"kid": "never-published"}}),
            )
            .await;
        let err = provider.login(&sso).await.expect_err("unknown key");
        assert_eq!(problem(&err), Some(IdTokenProblem::UnknownKey), "{err:?}");
    }
    assert_eq!(
        provider.count("/jwks").await,
        2,
        "refetches are rate limited"
    );
}

#[tokio::test]
async fn rfc6749_token_errors_are_typed() {
    let provider = Provider::start();
    let sso = provider.sso(json!({}));
    let cases: Vec<(Value, Check)> = vec![
        (
            json!({"status": 400, "body": {"error": "invalid_grant"}}),
            |e| matches!(e, Error::InvalidCode { .. }),
        ),
        (
            json!({"status": 401, "body": {"error": "invalid_client"}}),
            |e| matches!(e, Error::Misconfigured { .. }),
        ),
        (
            json!({"status": 400, "body": {"error": "invalid_scope"}}),
            |e| matches!(e, Error::Misconfigured { .. }),
        ),
        (
            json!({"status": 503, "body": {"error": "temporarily_unavailable"}}),
            |e| e.is_transient(),
        ),
    ];
    for (response, expected) in cases {
        provider
            .control("next-token-response", response.clone())
            .await;
        let err = provider.login(&sso).await.expect_err("token error");
        assert!(expected(&err), "{response}: {err:?}");
    }
    let login = provider.login(&sso).await.expect("login");
    let refresh = login.user_token.unwrap().refresh_token.unwrap();
    provider
        .control(
            "next-token-response",
            json!({"status": 400, "body": {"error": "invalid_grant"}}),
        )
        .await;
    let err = sso
        .refresh_user_token(&acme(), "custom-oauth", &refresh)
        .await
        .expect_err("expired refresh token");
    assert!(matches!(err, Error::ReauthRequired { .. }), "{err:?}");
}

#[tokio::test]
async fn userinfo_for_another_subject_is_rejected_and_a_foreign_issuer_is_refused() {
    let provider = Provider::start();
    let sso = provider.sso(json!({}));
    provider
        .control("userinfo", json!({"sub": "mallory", "name": "Mallory"}))
        .await;
    let err = provider.login(&sso).await.expect_err("subject mismatch");
    assert_eq!(problem(&err), Some(IdTokenProblem::Subject), "{err:?}");

    let mut config = provider.config(json!({}));
    config["options"]["issuer"] = json!(format!("{}/tenant-b", provider.issuer));
    let config: PlatformConfig = serde_json::from_value(config).unwrap();
    let sso = Sso::builder(StaticConfig::new(vec![config]))
        .build()
        .unwrap();
    let err = provider
        .login(&sso)
        .await
        .expect_err("discovery of another issuer");
    assert!(
        matches!(
            err,
            Error::Misconfigured { .. } | Error::BadResponse { .. } | Error::Upstream { .. }
        ),
        "{err:?}"
    );
}

#[test]
fn oidc_config_errors_name_the_field() {
    let http = unilogin_core::http::HttpClient::new(&Default::default()).unwrap();
    let load = |options: Value| {
        let config: PlatformConfig = serde_json::from_value(json!({
            "tenant": "acme", "platform": "custom-oauth", "mode": "oidc",
            "app_key": CLIENT_ID, "app_secret": CLIENT_SECRET, "options": options,
        }))
        .unwrap();
        unilogin_custom_oauth::build(unilogin_core::registry::PlatformContext {
            config: &config,
            http: &http,
        })
        .map(|_| ())
        .map_err(|e| e.to_string())
    };
    let issuer = "https://idp.example.com";
    assert!(load(json!({"issuer": issuer})).is_ok());
    for (options, wants) in [
        (
            json!({"issuer": issuer, "token_auth_method": "private_key_jwt"}),
            ["acme", "options.token_auth_method", "private_key_jwt"],
        ),
        (
            json!({"issuer": "http://idp.example.com"}),
            ["acme", "options.issuer", "https"],
        ),
        (
            json!({"token_endpoint": "https://idp.example.com/token"}),
            ["acme", "options.authorization_endpoint", "required"],
        ),
        (
            json!({"issuer": issuer, "authorize_params": {"state": "x"}}),
            [
                "acme",
                "options.authorize_params.state",
                "cannot be overridden",
            ],
        ),
        (
            json!({"issuer": issuer, "id_token_algorithms": ["HS256"]}),
            ["acme", "options.id_token_algorithms", "HS256"],
        ),
        (
            json!({"issuer": issuer, "scope": "openid"}),
            ["acme", "options", "unknown field `scope`"],
        ),
    ] {
        let e = load(options.clone()).expect_err("must be rejected");
        for want in wants {
            assert!(e.contains(want), "`{want}` missing from {e} ({options})");
        }
    }
}

/// The handler of a configuration, built as the registry builds it.
fn handler(config: Value) -> std::sync::Arc<dyn unilogin_core::Platform> {
    let config: PlatformConfig = serde_json::from_value(config).unwrap();
    let http = unilogin_core::http::HttpClient::new(&Default::default()).unwrap();
    unilogin_custom_oauth::build(PlatformContext {
        config: &config,
        http: &http,
    })
    .expect("the configuration builds")
}

/// A fresh login (discovering afresh) refused for its callback's `iss`, before the code is spent.
async fn refused_for_iss(provider: &Provider, problem: StateProblem) {
    let tokens = provider.count("/token").await;
    let err = provider
        .login(&provider.sso(json!({})))
        .await
        .expect_err("refused for its iss");
    assert!(matches!(err, Error::State(p) if p == problem), "{err:?}");
    assert_eq!(
        provider.count("/token").await,
        tokens,
        "the code was not spent"
    );
}

#[tokio::test]
async fn rfc9207_iss_is_checked_before_the_code_is_spent() {
    let provider = Provider::start();
    let policy = |required| {
        Some(IssuerPolicy {
            issuer: provider.issuer.clone(),
            required,
        })
    };
    let discovered = || async {
        let handler = handler(provider.config(json!({})));
        handler.authorization_issuer().await.unwrap()
    };
    // Not advertised: the discovered issuer, not required. A callback without `iss` passes,
    // one naming another issuer is refused.
    assert_eq!(discovered().await, policy(false));
    provider
        .login(&provider.sso(json!({})))
        .await
        .expect("no iss, not advertised");
    let evil = json!({"send": "https://evil.example"});
    provider.control("iss", evil).await;
    refused_for_iss(&provider, StateProblem::WrongIssuer).await;

    // Advertised: the callback must carry exactly the issuer.
    provider.control("iss", json!({"advertise": true})).await;
    assert_eq!(discovered().await, policy(true));
    refused_for_iss(&provider, StateProblem::MissingIssuer).await;
    let exact = json!({"advertise": true, "send": true});
    provider.control("iss", exact).await;
    let login = provider
        .login(&provider.sso(json!({})))
        .await
        .expect("iss sent");
    assert_eq!(login.profile.user_id.as_deref(), Some("johndoe"));
    let slash = json!({"advertise": true, "send": format!("{}/", provider.issuer)});
    provider.control("iss", slash).await;
    refused_for_iss(&provider, StateProblem::WrongIssuer).await;
}

#[tokio::test]
async fn without_an_issuer_there_is_no_iss_policy_and_no_app_token() {
    let h = handler(json!({
        "tenant": "acme", "platform": "custom-oauth", "mode": "oidc",
        "app_key": CLIENT_ID, "app_secret": CLIENT_SECRET,
        "options": {
            "authorization_endpoint": "https://idp.example.com/authorize",
            "token_endpoint": "https://idp.example.com/token",
            "userinfo_endpoint": "https://idp.example.com/userinfo",
        },
    }));
    assert_eq!(h.authorization_issuer().await.unwrap(), None);
    assert!(h.token_key().is_none(), "an OAuth2 client has no app token");
}

#[tokio::test]
async fn pkce_off_sends_neither_challenge_nor_verifier() {
    let provider = Provider::start();
    let sso = provider.sso(json!({"pkce": false}));
    let redirect = Url::parse(CALLBACK).unwrap();
    let start = sso
        .start_web_login(&acme(), "custom-oauth", Flow::Web, &redirect)
        .await
        .unwrap();
    let q: HashMap<String, String> = start.url.query_pairs().into_owned().collect();
    assert!(!q.contains_key("code_challenge") && !q.contains_key("code_challenge_method"));
    assert_eq!(q["nonce"], start.pending.nonce.expose());
    let location = provider.follow(&start.url).await;
    let callback = Callback::from_query(location.query_pairs()).unwrap();
    let login = sso
        .finish_web_login(&start.pending, &callback)
        .await
        .expect("login without PKCE");
    assert_eq!(login.profile.user_id.as_deref(), Some("johndoe"));
    let last = &provider.stats().await["lastToken"];
    assert!(last["body"].get("code_verifier").is_none(), "{last}");
}

#[tokio::test]
async fn codes_are_redeemed_only_through_the_redirect_login() {
    let provider = Provider::start();
    let sso = provider.sso(json!({}));
    let err = sso
        .login_with_code(&acme(), "custom-oauth", &AuthCode::new("posted-code"))
        .await
        .expect_err("a posted code");
    assert!(
        matches!(err, Error::RedirectLoginRequired { .. }),
        "{err:?}"
    );
    // The callback's state must be the pending login's.
    let (pending, callback) = provider.authorize(&sso, DEFAULT_SCOPE).await.unwrap();
    let forged = Callback {
        code: callback.code.clone(),
        state: unilogin_core::State::new(random_hex(32)),
        iss: None,
    };
    let err = sso
        .finish_web_login(&pending, &forged)
        .await
        .expect_err("forged state");
    assert!(
        matches!(err, Error::State(StateProblem::Unknown)),
        "{err:?}"
    );
    assert_eq!(provider.count("/token").await, 0);
    sso.finish_web_login(&pending, &callback)
        .await
        .expect("the real callback");
}

#[tokio::test]
async fn a_discovery_issuer_that_differs_by_a_trailing_slash_is_refused_naming_both() {
    let provider = Provider::start();
    let configured = format!("{}/", provider.issuer);
    let sso = provider.sso(json!({ "issuer": configured }));
    let err = provider
        .login(&sso)
        .await
        .expect_err("the document's issuer has no trailing slash");
    match &err {
        Error::Misconfigured { code, hint, .. } => {
            assert_eq!(code.to_string(), "issuer_mismatch");
            let quoted = |s: &str| format!("{s:?}");
            assert!(
                hint.contains(&quoted(&configured)) && hint.contains(&quoted(&provider.issuer)),
                "{hint}"
            );
        }
        other => panic!("expected Misconfigured issuer_mismatch, got {other:?}"),
    }
    assert_eq!(provider.count("/token").await, 0, "no code was spent");
    // The exact issuer logs in.
    provider
        .login(&provider.sso(json!({})))
        .await
        .expect("exact issuer");
}

#[tokio::test]
async fn several_audiences_need_an_azp_naming_this_client() {
    let provider = Provider::start();
    let sso = provider.sso(json!({}));
    let both = json!([CLIENT_ID, "another-client"]);
    for (payload, expected) in [
        (json!({"aud": both}), Some(IdTokenProblem::Audience)),
        (
            json!({"aud": both, "azp": "another-client"}),
            Some(IdTokenProblem::Audience),
        ),
        (json!({"aud": both, "azp": CLIENT_ID}), None),
        (json!({"aud": [CLIENT_ID]}), None),
    ] {
        let steer = json!({ "payload": payload });
        provider.control("next-id-token", steer.clone()).await;
        let result = provider.login(&sso).await;
        assert_eq!(
            result.as_ref().err().and_then(problem),
            expected,
            "{steer}: {result:?}"
        );
        if expected.is_none() {
            assert!(result.is_ok(), "{steer}: {result:?}");
        }
    }
}

#[tokio::test]
async fn at_hash_must_match_the_access_token_when_present() {
    let provider = Provider::start();
    let mut config = provider.config(json!({}));
    config["mapping"] = json!({"extra": {"at_hash": {"path": "$.at_hash"}}});
    let config: PlatformConfig = serde_json::from_value(config).unwrap();
    let sso = Sso::builder(StaticConfig::new(vec![config]))
        .build()
        .unwrap();
    // The provider's correct at_hash passes (and was there to be checked).
    provider
        .control("next-id-token", json!({"at_hash": true}))
        .await;
    let login = provider.login(&sso).await.expect("correct at_hash");
    let at_hash = login.profile.extra["at_hash"].as_str().unwrap_or_default();
    assert_eq!(at_hash.len(), 22, "{:?}", login.profile.extra);
    // One for another access token (or garbage) is refused.
    let wrong = [json!("77QmUPtjPfzWtF2AnpK9RQ"), json!(""), json!(42)];
    for at_hash in wrong {
        let steer = json!({"payload": {"at_hash": at_hash}});
        provider.control("next-id-token", steer.clone()).await;
        let err = provider.login(&sso).await.expect_err("wrong at_hash");
        assert_eq!(
            problem(&err),
            Some(IdTokenProblem::AccessTokenHash),
            "{steer}: {err:?}"
        );
    }
    // On refresh too.
    let refresh = login.user_token.unwrap().refresh_token.unwrap();
    provider
        .control("next-id-token", json!({"at_hash": true}))
        .await;
    sso.refresh_user_token(&acme(), "custom-oauth", &refresh)
        .await
        .expect("refresh with a correct at_hash");
    let steer = json!({"payload": {"at_hash": "AAAAAAAAAAAAAAAAAAAAAA"}});
    provider.control("next-id-token", steer).await;
    let err = sso
        .refresh_user_token(&acme(), "custom-oauth", &refresh)
        .await
        .expect_err("wrong at_hash on refresh");
    assert_eq!(problem(&err), Some(IdTokenProblem::AccessTokenHash));
}

#[tokio::test]
async fn a_token_response_that_does_not_decode_shows_no_part_of_the_access_token() {
    let provider = Provider::start();
    let sso = provider.sso(json!({}));
    // `scope` as an array (not RFC 6749's string) fails to decode; the token is long enough that
    // a 160-character cut would land inside it.
    let token = format!("eyJhbGciOiJSUzI1NiJ9{}", "Qw3rTy7uIo9pAs2dFg5h".repeat(10));
    let body = json!({
        "access_token": token, "token_type": "Bearer", "expires_in": 3600,
        "scope": ["openid", "profile"], "refresh_token": "rt-Zx8Cv7Bn6Mm5Ll4Kk3",
    });
    provider
        .control("next-token-response", json!({"status": 200, "body": body}))
        .await;
    let err = provider.login(&sso).await.expect_err("malformed response");
    assert!(matches!(err, Error::BadResponse { .. }), "{err:?}");
    for text in [err.to_string(), format!("{err:?}")] {
        for secret in [token.as_str(), "rt-Zx8Cv7Bn6Mm5Ll4Kk3"] {
            let leaked = (0..=secret.len() - 8).find(|&i| text.contains(&secret[i..i + 8]));
            assert_eq!(leaked, None, "part of a token appears in {text}");
        }
    }
}
