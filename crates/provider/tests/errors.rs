//! Every refusal with its RFC error code: authorize (error page or redirect), token (RFC 6749
//! §5.2), code reuse and refresh reuse revoking what was issued, and secrets kept out of
//! answers and `Debug`.

mod support;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use support::*;
use unilogin_axum::session::RevocationList;
use unilogin_provider::{Client, ProviderError};

fn spa(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, String)> {
    let mut q: Vec<(&str, String)> = vec![
        ("client_id", "spa".into()),
        ("redirect_uri", "http://127.0.0.1:8400/cb".into()),
        ("response_type", "code".into()),
        ("scope", "openid".into()),
        ("state", "xyz".into()),
        ("code_challenge", challenge(VERIFIER)),
        ("code_challenge_method", "S256".into()),
    ];
    for (k, v) in extra {
        q.retain(|(qk, _)| qk != k);
        if !v.is_empty() {
            q.push((k, v.to_string()));
        }
    }
    q
}

async fn authorize_error(h: &mut Harness, q: &[(&str, String)]) -> (String, url::Url) {
    let pairs: Vec<(&str, &str)> = q.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let a = h.authorize(&pairs).await;
    assert!(a.status.is_redirection(), "{}: {}", a.status, a.body);
    let l = a.location();
    assert_eq!(
        l.as_str().split('?').next(),
        Some("http://127.0.0.1:8400/cb")
    );
    assert_eq!(param(&l, "iss").as_deref(), Some(ISSUER), "RFC 9207");
    assert_eq!(param(&l, "state").as_deref(), Some("xyz"));
    assert!(param(&l, "code").is_none());
    (param(&l, "error").unwrap(), l)
}

#[tokio::test]
async fn unknown_clients_and_redirect_uris_get_an_error_page_never_a_redirect() {
    let mut h = harness().await;
    for q in [
        spa(&[("redirect_uri", "https://evil.example/cb")]),
        spa(&[("redirect_uri", "http://127.0.0.1:8400/cb/")]),
        spa(&[("redirect_uri", "")]),
        spa(&[("client_id", "nobody")]),
        spa(&[("client_id", "")]),
    ] {
        let pairs: Vec<(&str, &str)> = q.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let a = h.authorize(&pairs).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{pairs:?}");
        assert!(a.headers.get(header::LOCATION).is_none());
        assert!(a.body.contains("invalid_request"));
        assert!(!a.body.contains("evil.example"));
    }
    // A repeated redirect_uri is not trusted either.
    let a = h
        .get("/sso/oidc/authorize?client_id=spa&redirect_uri=http%3A%2F%2F127.0.0.1%3A8400%2Fcb&redirect_uri=https%3A%2F%2Fevil.example%2F")
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.headers.get(header::LOCATION).is_none());
}

#[tokio::test]
async fn authorize_errors_redirect_with_their_codes_state_and_iss() {
    let mut h = harness().await;
    let cases: Vec<(Vec<(&str, String)>, &str)> = vec![
        (
            spa(&[("response_type", "token")]),
            "unsupported_response_type",
        ),
        (spa(&[("response_type", "")]), "invalid_request"),
        (spa(&[("scope", "profile email")]), "invalid_scope"),
        // Missing PKCE for a public client.
        (
            spa(&[("code_challenge", ""), ("code_challenge_method", "")]),
            "invalid_request",
        ),
        // plain is refused, and so is a challenge without a method (plain by default).
        (
            spa(&[("code_challenge_method", "plain")]),
            "invalid_request",
        ),
        (spa(&[("code_challenge_method", "")]), "invalid_request"),
        (spa(&[("code_challenge", "short")]), "invalid_request"),
        (spa(&[("prompt", "none login")]), "invalid_request"),
        (spa(&[("max_age", "-1")]), "invalid_request"),
        (spa(&[("response_mode", "fragment")]), "invalid_request"),
        (spa(&[("request", "eyJ")]), "request_not_supported"),
        (spa(&[("login_hint", "tenant:beta")]), "access_denied"),
        // prompt=none without a session.
        (spa(&[("prompt", "none")]), "login_required"),
    ];
    for (q, code) in cases {
        let (error, l) = authorize_error(&mut h, &q).await;
        assert_eq!(error, code, "{q:?} → {l}");
    }
    assert!(h.host.logins().is_empty(), "no login was started");
}

#[tokio::test]
async fn a_session_of_another_tenant_does_not_serve_the_client() {
    let mut h = harness().await;
    let sid = h.host.sign_in(
        &profile("other", "dingtalk", "u9"),
        std::time::SystemTime::now(),
    );
    h.cookie = Some(format!("sess={sid}"));
    let (error, _) = authorize_error(&mut h, &spa(&[("prompt", "none")])).await;
    assert_eq!(error, "login_required");
    // Without prompt=none the host is asked to log in to the client's tenant.
    let q = spa(&[]);
    let pairs: Vec<(&str, &str)> = q.iter().map(|(k, v)| (*k, v.as_str())).collect();
    h.authorize_through(&pairs).await;
    let login = &h.host.logins()[0];
    assert_eq!(login.tenant.as_str(), "acme");
    assert!(login.force);
}

async fn token_error(a: &Answer) -> String {
    assert_eq!(a.header(header::CACHE_CONTROL).as_deref(), Some("no-store"));
    a.json()["error"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn token_errors_follow_rfc_6749_section_5_2() {
    let mut h = harness().await;
    let code = h.spa_code("openid").await;
    // Wrong redirect_uri: invalid_grant (and the code is spent).
    let a = h
        .post_form(
            "/sso/oidc/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", "http://127.0.0.1:8400/other"),
                ("client_id", "spa"),
                ("code_verifier", VERIFIER),
            ],
            None,
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(token_error(&a).await, "invalid_grant");

    // Wrong verifier.
    let code = h.spa_code("openid").await;
    let a = h
        .post_form(
            "/sso/oidc/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", "http://127.0.0.1:8400/cb"),
                ("client_id", "spa"),
                ("code_verifier", &"x".repeat(43)),
            ],
            None,
        )
        .await;
    assert_eq!(token_error(&a).await, "invalid_grant");

    // Missing verifier.
    let code = h.spa_code("openid").await;
    let a = h
        .post_form(
            "/sso/oidc/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", "http://127.0.0.1:8400/cb"),
                ("client_id", "spa"),
            ],
            None,
        )
        .await;
    assert_eq!(token_error(&a).await, "invalid_grant");

    // An unknown grant type, a missing one, an unknown code.
    let a = h
        .post_form(
            "/sso/oidc/token",
            &[("grant_type", "password"), ("client_id", "spa")],
            None,
        )
        .await;
    assert_eq!(token_error(&a).await, "unsupported_grant_type");
    let a = h
        .post_form("/sso/oidc/token", &[("client_id", "spa")], None)
        .await;
    assert_eq!(token_error(&a).await, "invalid_request");
    let a = h
        .post_form(
            "/sso/oidc/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", "never-issued"),
                ("redirect_uri", "http://127.0.0.1:8400/cb"),
                ("client_id", "spa"),
                ("code_verifier", VERIFIER),
            ],
            None,
        )
        .await;
    assert_eq!(token_error(&a).await, "invalid_grant");

    // JSON is not a form.
    let req = Request::post("/sso/oidc/token")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{}"))
        .unwrap();
    let a = h.send(req).await;
    assert_eq!(token_error(&a).await, "invalid_request");

    // A body over the limit is refused without being read whole.
    let big = "x".repeat(70 * 1024);
    let a = h
        .post_form("/sso/oidc/token", &[("grant_type", &big)], None)
        .await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn client_authentication_failures_are_401_invalid_client() {
    let mut h = harness().await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", "c"),
        ("redirect_uri", "https://rp.example/cb"),
    ];
    // Wrong secret over Basic: 401 with a Basic challenge.
    let a = h
        .post_form("/sso/oidc/token", &form, Some(("web", "wrong-secret")))
        .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(token_error(&a).await, "invalid_client");
    assert!(
        a.header(header::WWW_AUTHENTICATE)
            .unwrap()
            .starts_with("Basic")
    );
    assert!(!a.body.contains("wrong-secret"));
    // Unknown client.
    let a = h
        .post_form("/sso/oidc/token", &form, Some(("nobody", SECRET)))
        .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    // The right secret by the wrong method (post for a Basic client).
    let mut f = form.to_vec();
    f.push(("client_id", "web"));
    f.push(("client_secret", SECRET));
    let a = h.post_form("/sso/oidc/token", &f, None).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert!(a.header(header::WWW_AUTHENTICATE).is_none());
    // A confidential client without any secret.
    let mut f = form.to_vec();
    f.push(("client_id", "web"));
    let a = h.post_form("/sso/oidc/token", &f, None).await;
    assert_eq!(token_error(&a).await, "invalid_client");
    // A public client that sends a secret.
    let a = h
        .post_form(
            "/sso/oidc/token",
            &[
                ("grant_type", "authorization_code"),
                ("client_id", "spa"),
                ("client_secret", "x"),
            ],
            None,
        )
        .await;
    assert_eq!(token_error(&a).await, "invalid_client");
    // Two methods at once.
    let mut f = form.to_vec();
    f.push(("client_secret", SECRET));
    let a = h
        .post_form("/sso/oidc/token", &f, Some(("web", SECRET)))
        .await;
    assert_eq!(token_error(&a).await, "invalid_request");
}

#[tokio::test]
async fn a_code_presented_twice_revokes_the_tokens_it_issued() {
    let mut h = harness().await;
    let l = h
        .authorize_through(&[
            ("client_id", "web"),
            ("redirect_uri", "https://rp.example/cb"),
            ("response_type", "code"),
            ("scope", "openid offline_access"),
        ])
        .await;
    let code = param(&l, "code").unwrap();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", "https://rp.example/cb"),
    ];
    let first = h
        .post_form("/sso/oidc/token", &form, Some(("web", SECRET)))
        .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let body = first.json();
    let access = body["access_token"].as_str().unwrap().to_string();
    let refresh = body["refresh_token"].as_str().unwrap().to_string();
    assert_eq!(h.userinfo(&access).await.status, StatusCode::OK);

    let second = h
        .post_form("/sso/oidc/token", &form, Some(("web", SECRET)))
        .await;
    assert_eq!(second.status, StatusCode::BAD_REQUEST);
    assert_eq!(token_error(&second).await, "invalid_grant");
    // The access token is on the revocation list (what the guard checks) and userinfo
    // refuses it; the refresh token no longer works.
    let claims = unilogin_axum::session::SessionIssuer::new(
        h.access.keys().clone(),
        ISSUER,
        "web",
        std::time::Duration::from_secs(600),
    )
    .verify(&access)
    .unwrap();
    assert!(h.revocations.is_revoked(&claims.jti).await);
    assert_eq!(h.userinfo(&access).await.status, StatusCode::UNAUTHORIZED);
    let a = h
        .post_form(
            "/sso/oidc/token",
            &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
            Some(("web", SECRET)),
        )
        .await;
    assert_eq!(token_error(&a).await, "invalid_grant");
}

#[tokio::test]
async fn a_reused_refresh_token_revokes_the_family() {
    let mut h = harness().await;
    let body = h.web_tokens("openid offline_access").await;
    let r1 = body["refresh_token"].as_str().unwrap().to_string();
    let a = h
        .post_form(
            "/sso/oidc/token",
            &[("grant_type", "refresh_token"), ("refresh_token", &r1)],
            Some(("web", SECRET)),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let b = a.json();
    let r2 = b["refresh_token"].as_str().unwrap().to_string();
    let access2 = b["access_token"].as_str().unwrap().to_string();
    // r1 again: reuse. The family is revoked: r2 and the access tokens stop working.
    let a = h
        .post_form(
            "/sso/oidc/token",
            &[("grant_type", "refresh_token"), ("refresh_token", &r1)],
            Some(("web", SECRET)),
        )
        .await;
    assert_eq!(token_error(&a).await, "invalid_grant");
    let a = h
        .post_form(
            "/sso/oidc/token",
            &[("grant_type", "refresh_token"), ("refresh_token", &r2)],
            Some(("web", SECRET)),
        )
        .await;
    assert_eq!(token_error(&a).await, "invalid_grant");
    assert_eq!(h.userinfo(&access2).await.status, StatusCode::UNAUTHORIZED);
    let first_access = body["access_token"].as_str().unwrap();
    assert_eq!(
        h.userinfo(first_access).await.status,
        StatusCode::UNAUTHORIZED
    );
    // A forged secret for a live family is plain invalid_grant (nothing to revoke).
    let mut h2 = harness().await;
    let body = h2.web_tokens("openid offline_access").await;
    let r = body["refresh_token"].as_str().unwrap();
    let (family, _) = r.split_once('.').unwrap();
    let forged = format!("{family}.forged");
    let a = h2
        .post_form(
            "/sso/oidc/token",
            &[("grant_type", "refresh_token"), ("refresh_token", &forged)],
            Some(("web", SECRET)),
        )
        .await;
    assert_eq!(token_error(&a).await, "invalid_grant");
    let a = h2
        .post_form(
            "/sso/oidc/token",
            &[("grant_type", "refresh_token"), ("refresh_token", r)],
            Some(("web", SECRET)),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "the family survives a forgery");
    // Another client cannot use it.
    let a = h2
        .post_form(
            "/sso/oidc/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", a.json()["refresh_token"].as_str().unwrap()),
                ("client_id", "spa"),
            ],
            None,
        )
        .await;
    assert_eq!(token_error(&a).await, "invalid_grant");
}

#[tokio::test]
async fn a_client_without_a_grant_type_is_unauthorized_client() {
    use std::sync::Arc;
    let host = MemoryHost::new(&["dingtalk"]);
    let c: Client = client(serde_json::json!({
        "client_id": "nr", "redirect_uris": ["https://rp.example/cb"], "tenants": ["acme"],
        "client_secret_sha256": unilogin_provider::sha256_hex(SECRET),
        "grant_types": ["authorization_code"],
    }));
    let provider = unilogin_provider::Provider::builder(
        ISSUER.parse().unwrap(),
        Arc::new(unilogin_provider::StaticClients::new(vec![c]).unwrap()),
        Arc::new(unilogin_provider::MemoryGrantStore::new()),
        Arc::new(host),
        unilogin_axum::session::SessionIssuer::new(
            unilogin_axum::session::SessionKeys::generate().unwrap(),
            ISSUER,
            "gw",
            std::time::Duration::from_secs(60),
        ),
        Arc::new(unilogin_axum::session::MemoryRevocationList::new()),
    )
    .id_token_keys(unilogin_axum::session::SessionKeys::generate().unwrap())
    .build()
    .unwrap();
    use tower::ServiceExt;
    let body = "grant_type=refresh_token&refresh_token=a.b";
    let req = Request::post("/sso/oidc/token")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(
            header::AUTHORIZATION,
            format!(
                "Basic {}",
                base64::Engine::encode(
                    &base64::engine::general_purpose::STANDARD,
                    format!("nr:{SECRET}")
                )
            ),
        )
        .body(Body::from(body))
        .unwrap();
    let r = provider.router().oneshot(req).await.unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    let bytes = http_body_util::BodyExt::collect(r.into_body())
        .await
        .unwrap()
        .to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(v["error"], "unauthorized_client");
}

#[tokio::test]
async fn secrets_stay_out_of_debug_and_error_text() {
    let c = &clients(None)[1];
    let dbg = format!("{c:?}");
    assert!(!dbg.contains(&unilogin_provider::sha256_hex(SECRET)));
    assert!(dbg.contains("web"));
    let pending = unilogin_provider::PendingAuthorization {
        client_id: "spa".into(),
        redirect_uri: "http://127.0.0.1:8400/cb".into(),
        scopes: vec!["openid".into()],
        state: Some("state-secret-1".into()),
        nonce: Some("nonce-secret-1".into()),
        code_challenge: Some("challenge-secret-1".into()),
        tenant: "acme".into(),
        platform: None,
        max_age: None,
        fresh_after_ms: None,
        require_auth_time: false,
    };
    let dbg = format!("{pending:?}");
    for s in ["state-secret-1", "nonce-secret-1", "challenge-secret-1"] {
        assert!(!dbg.contains(s), "{dbg}");
    }
    // A refused code never comes back in the answer or its description.
    let mut h = harness().await;
    let code = h.spa_code("openid").await;
    h.spa_token(&code).await;
    let again = h.spa_token(&code).await;
    assert!(!again.body.contains(&code));
    let e = ProviderError::InvalidGrant("the code was used before".into());
    assert!(!e.to_string().contains(&code));
    // The login request handed to the host does not print its headers (cookies).
    let mut login = h.host.logins()[0].clone();
    login
        .headers
        .insert(header::COOKIE, "sess=cookie-secret-1".parse().unwrap());
    assert!(!format!("{login:?}").contains("cookie-secret-1"));
}
