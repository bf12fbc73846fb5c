//! The gateway's OpenID Provider in its gateway (issue #23), beyond what the relying-party
//! libraries check (`oidc_provider_interop.rs`):
//!
//! - a leaver event ends the person's relying-party sessions: every client that registered a
//!   `backchannel_logout_uri` gets a signed logout token (Back-Channel Logout 1.0), and the
//!   refresh token and access token issued before stop working;
//! - two replicas over one Redis: a code minted on one is redeemed on the other, once; a
//!   refresh token rotated on one is refused as reused on the other;
//! - `prompt=none` without a session answers `login_required` to the client; with the gateway
//!   session of an earlier login, a second client gets a code without another platform login;
//! - a tenant with several platforms gets the chooser page, whose links start that platform's
//!   login and accept only the provider's own resume URL.

mod events_support;
mod oidc_op_support;
mod oidc_rp_support;
mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::routing::post;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{DecodingKey, Validation, decode, decode_header};
use oidc_op_support::{Op, approving, code_flow, start_default, start_op, token};
use serde_json::{Value, json};
use unilogin_provider::sha256_hex;
use unilogin_testkit::dingtalk::{self, DEMO_USER_ID};
use unilogin_testkit::events::FakeEvent;
use unilogin_testkit::redis_server::RedisServer;
use url::Url;

const SECRET: &str = "provider-test-client-secret-000001";
const REDIRECT: &str = "http://127.0.0.1:9/app/callback";

fn client(extra: Value) -> Value {
    let mut c = json!({
        "client_secret_sha256": sha256_hex(SECRET),
        "redirect_uris": [REDIRECT],
        "tenants": ["acme"],
        "refresh_without_offline_access": true,
    });
    if let (Some(c), Value::Object(extra)) = (c.as_object_mut(), extra) {
        c.extend(extra);
    }
    c
}

/// A receiver of back-channel logout requests: records each form body's `logout_token`.
async fn logout_receiver() -> (String, Arc<Mutex<Vec<String>>>) {
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let s = seen.clone();
    let app = Router::new().route(
        "/backchannel",
        post(move |body: String| {
            let s = s.clone();
            async move {
                let token = url::form_urlencoded::parse(body.as_bytes())
                    .find(|(k, _)| k == "logout_token")
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default();
                s.lock().unwrap().push(token);
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (format!("http://{addr}/backchannel"), seen)
}

/// Verifies `jwt` against the provider's published JWKS; its claims.
async fn verify_with_jwks(op: &Op, jwt: &str, audience: &str) -> Value {
    let jwks: Value = reqwest::get(op.url("/oidc/jwks"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let header = decode_header(jwt).unwrap();
    let kid = header.kid.clone().expect("a kid");
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .unwrap_or_else(|| panic!("kid {kid} not published"));
    let key = DecodingKey::from_jwk(&serde_json::from_value(jwk.clone()).unwrap()).unwrap();
    let mut validation = Validation::new(header.alg);
    validation.set_audience(&[audience]);
    validation.set_issuer(&[op.issuer.as_str()]);
    validation.set_required_spec_claims(&["iss", "aud", "iat"]);
    decode::<Value>(jwt, &key, &validation)
        .unwrap_or_else(|e| panic!("logout token does not verify: {e}"))
        .claims
}

fn jwt_payload(jwt: &str) -> Value {
    let part = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leaver_is_logged_out_of_every_relying_party() {
    let (backchannel, seen) = logout_receiver().await;
    let fake = Arc::new(dingtalk::start().await);
    let f = fake.clone();
    let op = start_op(
        "",
        fake.clone(),
        move |base| vec![events_support::dingtalk_tenant(&f, "acme", base.as_str())],
        json!({ "grafana": client(json!({ "backchannel_logout_uri": backchannel })) }),
        |b| b,
    )
    .await;
    let browser = approving(DEMO_USER_ID);
    let (code, verifier) = code_flow(&op, &browser, "grafana", REDIRECT).await;
    let (status, tokens) = token(
        &op,
        ("grafana", SECRET),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    let id_token = jwt_payload(tokens["id_token"].as_str().unwrap());
    let sid = id_token["sid"].as_str().expect("a sid").to_string();
    let access = tokens["access_token"].as_str().unwrap().to_string();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_string();
    let userinfo = |token: String| {
        let url = op.url("/oidc/userinfo");
        async move {
            reqwest::Client::new()
                .get(url)
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(userinfo(access.clone()).await, 200);

    // The person leaves the organisation.
    let left = fake
        .push_event(
            &op.url("/events/acme/dingtalk"),
            FakeEvent::UserLeft(DEMO_USER_ID.into()),
            None,
        )
        .await
        .unwrap();
    assert!(left.accepted(), "{:?}", left.verdict);
    events_support::eventually(Duration::from_secs(5), "a logout token", || async {
        !seen.lock().unwrap().is_empty()
    })
    .await;

    let logout_token = seen.lock().unwrap()[0].clone();
    assert_eq!(
        decode_header(&logout_token).unwrap().typ.as_deref(),
        Some("logout+jwt")
    );
    let claims = verify_with_jwks(&op, &logout_token, "grafana").await;
    assert_eq!(
        claims["sub"],
        format!("acme:dingtalk:{DEMO_USER_ID}"),
        "{claims}"
    );
    assert_eq!(claims["sid"], sid.as_str(), "{claims}");
    assert!(
        claims["events"]
            .get("http://schemas.openid.net/event/backchannel-logout")
            .is_some(),
        "{claims}"
    );
    assert!(claims.get("nonce").is_none(), "{claims}");
    assert!(claims["jti"].as_str().is_some_and(|j| !j.is_empty()));

    // What was issued before is dead: the refresh token and the access token.
    let (status, body) = token(
        &op,
        ("grafana", SECRET),
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "{body}"
    );
    assert_eq!(userinfo(access).await, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_over_one_redis_share_codes_and_refresh_families() {
    let redis = RedisServer::start();
    // Every replica signs with the same keys: the session key and the id-token key files.
    let keys = format!("{}/../axum/tests/keys", env!("CARGO_MANIFEST_DIR"));
    let extra = format!(
        "redis: {{url: \"{}\"}}\noidc_provider:\n  enabled: true\n  signing_keys:\n    - {{alg: RS256, file: \"{keys}/rsa-pkcs8.pem\", key_id: rs-1}}\n    - {{alg: ES256, file: \"{keys}/p256-pkcs8.pem\", key_id: es-1}}\n",
        redis.url()
    );
    let session_keys = unilogin_axum::session::SessionKeys::generate().unwrap();
    let fake = Arc::new(dingtalk::start().await);
    let clients = json!({ "app": client(json!({})) });
    let start = |public: Option<String>| {
        let fake = fake.clone();
        let f = fake.clone();
        let keys = session_keys.clone();
        let clients = clients.clone();
        let extra = match public {
            Some(p) => format!("public_url: \"{p}\"\n{extra}"),
            None => extra.clone(),
        };
        async move {
            start_op(
                &extra,
                fake,
                move |base| vec![support::tenant(&f, "acme", true, base.as_str())],
                clients,
                move |b| b.session_keys(keys),
            )
            .await
        }
    };
    let a = start(None).await;
    // The second replica answers for the same public URL (as behind one load balancer).
    let b = start(Some(a.base.to_string())).await;
    // B's own address (its public URL is A's).
    let b_url = |path: &str| format!("http://{}{path}", b.bound);

    let browser = approving(DEMO_USER_ID);
    let post = |url: String, form: Vec<(&'static str, String)>| async move {
        let resp = reqwest::Client::new()
            .post(url)
            .basic_auth("app", Some(SECRET))
            .form(&form)
            .send()
            .await
            .unwrap();
        (resp.status().as_u16(), resp.json::<Value>().await.unwrap())
    };
    let exchange = |code: &str, verifier: &str| {
        vec![
            ("grant_type", "authorization_code".to_string()),
            ("code", code.to_string()),
            ("redirect_uri", REDIRECT.to_string()),
            ("code_verifier", verifier.to_string()),
        ]
    };
    let refresh = |t: &str| {
        vec![
            ("grant_type", "refresh_token".to_string()),
            ("refresh_token", t.to_string()),
        ]
    };

    // Minted on A, redeemed on B; the id token verifies with A's JWKS though B signed it.
    let (code, verifier) = code_flow(&a, &browser, "app", REDIRECT).await;
    let (status, tokens) = post(b_url("/oidc/token"), exchange(&code, &verifier)).await;
    assert_eq!(status, 200, "{tokens}");
    verify_with_jwks(&a, tokens["id_token"].as_str().unwrap(), "app").await;
    // Rotated on A; the old refresh token presented on B is reuse: the family is revoked.
    let old = tokens["refresh_token"].as_str().unwrap().to_string();
    let (status, rotated) = post(a.url("/oidc/token"), refresh(&old)).await;
    assert_eq!(status, 200, "{rotated}");
    let new = rotated["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    let (status, reuse) = post(b_url("/oidc/token"), refresh(&old)).await;
    assert_eq!(
        (status, reuse["error"].as_str()),
        (400, Some("invalid_grant")),
        "{reuse}"
    );
    let (status, family) = post(a.url("/oidc/token"), refresh(&new)).await;
    assert_eq!(
        (status, family["error"].as_str()),
        (400, Some("invalid_grant")),
        "{family}"
    );

    // A code is redeemed once across replicas, and redeeming it again revokes what it issued.
    let (code, verifier) = code_flow(&a, &browser, "app", REDIRECT).await;
    let (status, tokens) = post(b_url("/oidc/token"), exchange(&code, &verifier)).await;
    assert_eq!(status, 200, "{tokens}");
    let (status, again) = post(a.url("/oidc/token"), exchange(&code, &verifier)).await;
    assert_eq!(
        (status, again["error"].as_str()),
        (400, Some("invalid_grant")),
        "{again}"
    );
    let issued = tokens["refresh_token"].as_str().unwrap();
    let (status, revoked) = post(b_url("/oidc/token"), refresh(issued)).await;
    assert_eq!(
        (status, revoked["error"].as_str()),
        (400, Some("invalid_grant")),
        "{revoked}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompt_none_needs_a_session_and_a_session_serves_a_second_client() {
    let op = start_default(
        "",
        json!({
            "first": client(json!({})),
            "second": client(json!({ "redirect_uris": ["http://127.0.0.1:9/second/callback"] })),
        }),
    )
    .await;
    let http = support::client();
    // No session: `login_required` to the client, with its state and the issuer.
    let (_, challenge) = oidc_op_support::pkce();
    let mut url = oidc_op_support::authorize_url(&op, "first", REDIRECT, &challenge);
    url.query_pairs_mut().append_pair("prompt", "none");
    let resp = http.get(url).send().await.unwrap();
    assert_eq!(resp.status(), 303, "{resp:?}");
    let to = Url::parse(resp.headers()["location"].to_str().unwrap()).unwrap();
    assert!(to.as_str().starts_with(REDIRECT));
    let q: std::collections::HashMap<_, _> = to.query_pairs().into_owned().collect();
    assert_eq!(
        q.get("error").map(String::as_str),
        Some("login_required"),
        "{q:?}"
    );
    assert_eq!(q.get("state").map(String::as_str), Some("st-1"));
    assert_eq!(q.get("iss").map(String::as_str), Some(op.issuer.as_str()));

    // One platform login for the first client…
    let browser = approving(DEMO_USER_ID);
    code_flow(&op, &browser, "first", REDIRECT).await;
    // …and the second client, in the same browser, gets its code without one: with
    // `prompt=none` the provider could not have shown a login.
    let second = "http://127.0.0.1:9/second/callback";
    let (_, challenge) = oidc_op_support::pkce();
    let mut url = oidc_op_support::authorize_url(&op, "second", second, &challenge);
    url.query_pairs_mut().append_pair("prompt", "none");
    let outcome = browser.navigate(&url, &[second]).await.unwrap();
    let to = outcome.redirected();
    assert!(to.query_pairs().any(|(k, _)| k == "code"), "{to}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_with_several_platforms_gets_the_chooser() {
    let fake = Arc::new(dingtalk::start().await);
    let f = fake.clone();
    let op = start_op(
        "",
        fake,
        move |base| {
            // A second platform for the tenant (never called: the test follows DingTalk's link).
            let feishu = json!({
                "tenant": "acme", "platform": "feishu",
                "app_key": "cli_a1b2c3d4e5f6", "app_secret": "feishu-app-secret", "corp_id": "tk_acme",
                "redirect_uris": [base.as_str()],
            });
            vec![support::tenant(&f, "acme", true, base.as_str()), feishu]
        },
        json!({ "app": client(json!({})) }),
        |b| b,
    )
    .await;
    let http = support::client();
    let (_, challenge) = oidc_op_support::pkce();
    let url = oidc_op_support::authorize_url(&op, "app", REDIRECT, &challenge);
    let resp = http.get(url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let page = resp.text().await.unwrap();
    assert!(page.contains("id=\"login-dingtalk\""), "{page}");
    let href = page
        .split("id=\"login-dingtalk\" href=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .replace("&amp;", "&");
    // The link starts DingTalk's login.
    let resp = http.get(op.url(&href)).send().await.unwrap();
    assert_eq!(resp.status(), 303, "{href}");
    assert!(
        resp.headers()["location"]
            .to_str()
            .unwrap()
            .starts_with(op.fake.base_url().trim_end_matches('/'))
    );
    // Inside the DingTalk client, no chooser: DingTalk's H5 login-free page at once.
    let (_, challenge) = oidc_op_support::pkce();
    let url = oidc_op_support::authorize_url(&op, "app", REDIRECT, &challenge);
    let resp = http
        .get(url)
        .header(
            "user-agent",
            "Mozilla/5.0 (iPhone; CPU iPhone OS 16_0) Mobile/15E148 AliApp(DingTalk/7.0.40)",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let page = resp.text().await.unwrap();
    assert!(!page.contains("id=\"login-dingtalk\""), "{page}");
    assert!(page.contains("/auth/acme/dingtalk/code"), "{page}");
    // A resume URL that is not the provider's own is refused (no open redirect).
    let evil = format!(
        "/oidc/login/acme/dingtalk?resume={}",
        url::form_urlencoded::byte_serialize(b"https://evil.example/oidc/resume?req=x")
            .collect::<String>()
    );
    let resp = http.get(op.url(&evil)).send().await.unwrap();
    assert_eq!(resp.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_code_token_or_secret_reaches_the_log() {
    let log = support::log_capture();
    let op = start_default("", json!({ "app": client(json!({})) })).await;
    let browser = approving(DEMO_USER_ID);
    let (code, verifier) = code_flow(&op, &browser, "app", REDIRECT).await;
    let (status, tokens) = token(
        &op,
        ("app", SECRET),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    let refresh = tokens["refresh_token"].as_str().unwrap().to_string();
    let (status, rotated) = token(
        &op,
        ("app", SECRET),
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
    )
    .await;
    assert_eq!(status, 200, "{rotated}");
    // Refusals log too: a reused code, a wrong secret.
    let (status, _) = token(
        &op,
        ("app", SECRET),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = token(
        &op,
        ("app", "a-wrong-secret-that-must-not-be-logged"),
        &[("grant_type", "refresh_token"), ("refresh_token", "x.y")],
    )
    .await;
    assert_eq!(status, 401);
    let text = String::from_utf8_lossy(&log.lock().unwrap()).to_string();
    assert!(text.contains("/oidc/token"), "the requests were logged");
    let refresh_secret = refresh.split('.').nth(1).unwrap_or(&refresh).to_string();
    for (what, secret) in [
        ("code", code.as_str()),
        ("verifier", verifier.as_str()),
        ("access token", tokens["access_token"].as_str().unwrap()),
        ("id token", tokens["id_token"].as_str().unwrap()),
        ("refresh secret", refresh_secret.as_str()),
        (
            "rotated refresh",
            rotated["refresh_token"].as_str().unwrap(),
        ),
        ("client secret", SECRET),
        ("wrong secret", "a-wrong-secret-that-must-not-be-logged"),
    ] {
        assert!(!text.contains(secret), "the {what} reached the log");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorization_floods_and_secret_guessing_are_rate_limited_per_client() {
    let op = start_default(
        "rate_limits:\n  login_per_client: {per_minute: 1, burst: 3}\n  code_per_client: {per_minute: 1, burst: 3}\n",
        json!({ "app": client(json!({})) }),
    )
    .await;
    let http = support::client();
    let (_, challenge) = oidc_op_support::pkce();
    let url = oidc_op_support::authorize_url(&op, "app", REDIRECT, &challenge);
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(
            http.get(url.clone())
                .send()
                .await
                .unwrap()
                .status()
                .as_u16(),
        );
    }
    // Each accepted request stored a pending authorization and started a login: 3, then 429.
    assert_eq!(&statuses[..3], &[303, 303, 303], "{statuses:?}");
    assert_eq!(&statuses[3..], &[429, 429], "{statuses:?}");
    let mut statuses = Vec::new();
    for i in 0..5 {
        let guess = format!("guess-{i}");
        statuses.push(
            token(
                &op,
                ("app", guess.as_str()),
                &[("grant_type", "refresh_token"), ("refresh_token", "a.b")],
            )
            .await
            .0,
        );
    }
    assert_eq!(statuses, [401, 401, 401, 429, 429], "{statuses:?}");
}
