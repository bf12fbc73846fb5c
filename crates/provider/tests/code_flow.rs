//! The authorization code flow through the router: discovery, authorize → host login →
//! resume → token → id token (verified against the JWKS) → userinfo → refresh.

mod support;

use std::time::{Duration, SystemTime};

use axum::http::{StatusCode, header};
use support::*;
use unilogin_axum::session::SessionIssuer;

#[tokio::test]
async fn discovery_advertises_what_the_provider_does() {
    let mut h = harness().await;
    let a = h.get("/sso/.well-known/openid-configuration").await;
    assert_eq!(a.status, StatusCode::OK);
    let d = a.json();
    assert_eq!(d["issuer"], ISSUER);
    assert_eq!(
        d["authorization_endpoint"],
        format!("{ISSUER}/oidc/authorize")
    );
    assert_eq!(d["token_endpoint"], format!("{ISSUER}/oidc/token"));
    assert_eq!(d["userinfo_endpoint"], format!("{ISSUER}/oidc/userinfo"));
    assert_eq!(d["jwks_uri"], format!("{ISSUER}/oidc/jwks"));
    assert_eq!(
        d["end_session_endpoint"],
        format!("{ISSUER}/oidc/end_session")
    );
    assert_eq!(d["response_types_supported"], serde_json::json!(["code"]));
    assert_eq!(
        d["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(d["authorization_response_iss_parameter_supported"], true);
    assert_eq!(d["backchannel_logout_supported"], true);
    assert_eq!(d["backchannel_logout_session_supported"], true);
    assert_eq!(
        d["subject_types_supported"],
        serde_json::json!(["public", "pairwise"])
    );
    let algs = d["id_token_signing_alg_values_supported"]
        .as_array()
        .unwrap();
    for alg in ["RS256", "ES256", "EdDSA"] {
        assert!(algs.iter().any(|a| a == alg), "{alg} missing");
    }
    for field in [
        "scopes_supported",
        "claims_supported",
        "grant_types_supported",
        "token_endpoint_auth_methods_supported",
    ] {
        assert!(d[field].is_array(), "{field} missing");
    }
    // Every key set is published: current and staged keys of three algorithms.
    let jwks = h.jwks().await;
    assert_eq!(jwks.keys.len(), 6);
}

#[tokio::test]
async fn a_public_client_completes_the_code_flow_with_pkce() {
    let mut h = harness().await;
    let ch = challenge(VERIFIER);
    // First request: nobody signed in, so the host is asked to log in, then resume.
    let a = h
        .authorize(&[
            ("client_id", "spa"),
            ("redirect_uri", "http://127.0.0.1:8400/cb"),
            ("response_type", "code"),
            ("scope", "openid profile email unknown_scope"),
            ("state", "st-1"),
            ("nonce", "n-1"),
            ("code_challenge", &ch),
            ("code_challenge_method", "S256"),
        ])
        .await;
    assert!(a.status.is_redirection());
    let resume = a.location();
    assert_eq!(resume.path(), "/sso/oidc/resume");
    let logins = h.host.logins();
    assert_eq!(logins.len(), 1);
    assert_eq!(logins[0].tenant.as_str(), "acme");
    assert_eq!(logins[0].platform.as_ref().unwrap().as_str(), "dingtalk");
    assert!(!logins[0].force);
    let a = h.follow(&resume).await;
    let back = a.location();
    assert_eq!(back.host_str(), Some("127.0.0.1"));
    assert_eq!(back.path(), "/cb");
    assert_eq!(param(&back, "state").as_deref(), Some("st-1"));
    assert_eq!(param(&back, "iss").as_deref(), Some(ISSUER));
    let code = param(&back, "code").unwrap();
    assert_eq!(code.len(), 43, "256-bit code");

    let t = h.spa_token(&code).await;
    assert_eq!(t.status, StatusCode::OK, "{}", t.body);
    assert_eq!(t.header(header::CACHE_CONTROL).as_deref(), Some("no-store"));
    assert_eq!(t.header(header::PRAGMA).as_deref(), Some("no-cache"));
    let body = t.json();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 600);
    assert_eq!(
        body["scope"], "openid profile email",
        "unknown scopes are dropped"
    );
    assert!(
        body.get("refresh_token").is_none(),
        "no offline_access asked"
    );

    let jwks = h.jwks().await;
    let id = verify_jwt(body["id_token"].as_str().unwrap(), &jwks, "spa");
    let header = jsonwebtoken::decode_header(body["id_token"].as_str().unwrap()).unwrap();
    assert_eq!(
        header.alg,
        jsonwebtoken::Algorithm::RS256,
        "RS256 by default"
    );
    assert_eq!(id["sub"], "acme:dingtalk:u1");
    assert_eq!(id["nonce"], "n-1");
    assert_eq!(id["name"], "Zhang San");
    assert_eq!(id["email"], "zhang@example.com");
    assert_eq!(id["email_verified"], true);
    assert!(id.get("phone_number").is_none(), "phone scope not granted");
    assert!(id["sid"].as_str().unwrap().starts_with("sid-"));
    let auth_time = id["auth_time"].as_u64().unwrap();
    assert!(auth_time <= id["iat"].as_u64().unwrap());
    // at_hash: left half of SHA-256 of the access token.
    let access = body["access_token"].as_str().unwrap();
    let full = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, access.as_bytes());
    use base64::Engine as _;
    let at_hash = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&full.as_ref()[..16]);
    assert_eq!(id["at_hash"], at_hash);

    // The access token is a session token the guard verifies (aud = the client id).
    let verifier = SessionIssuer::new(
        h.access.keys().clone(),
        ISSUER,
        "spa",
        Duration::from_secs(600),
    );
    let claims = verifier.verify(access).unwrap();
    assert_eq!(claims.sub, "acme:dingtalk:u1");
    assert_eq!(claims.scope, "openid profile email");
    assert_eq!(
        (claims.tenant.as_str(), claims.platform.as_str()),
        ("acme", "dingtalk")
    );

    let u = h.userinfo(access).await;
    assert_eq!(u.status, StatusCode::OK, "{}", u.body);
    let u = u.json();
    assert_eq!(u["sub"], "acme:dingtalk:u1");
    assert_eq!(u["name"], "Zhang San");
    assert_eq!(u["email"], "zhang@example.com");
    assert!(u.get("tenant").is_none());

    // A second authorize with the session: no login, a code at once.
    let before = h.host.logins().len();
    let code2 = h.spa_code("openid").await;
    assert_eq!(h.host.logins().len(), before);
    assert_ne!(code2, code);
}

#[tokio::test]
async fn userinfo_accepts_a_form_token_and_refuses_a_bad_one() {
    let mut h = harness().await;
    let code = h.spa_code("openid profile").await;
    let body = h.spa_token(&code).await.json();
    let access = body["access_token"].as_str().unwrap().to_string();
    let a = h
        .post_form("/sso/oidc/userinfo", &[("access_token", &access)], None)
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(a.json()["sub"], "acme:dingtalk:u1");
    let bad = h.userinfo(&format!("{access}x")).await;
    assert_eq!(bad.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        bad.header(header::WWW_AUTHENTICATE).as_deref(),
        Some("Bearer error=\"invalid_token\"")
    );
    let none = h.get("/sso/oidc/userinfo").await;
    assert_eq!(none.status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        none.header(header::WWW_AUTHENTICATE).as_deref(),
        Some("Bearer")
    );
    // Header and form together are a bad request.
    let req = axum::http::Request::post("/sso/oidc/userinfo")
        .header(header::AUTHORIZATION, format!("Bearer {access}"))
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(axum::body::Body::from(format!("access_token={access}")))
        .unwrap();
    let both = h.send(req).await;
    assert_eq!(both.status, StatusCode::BAD_REQUEST);
    assert!(!both.body.contains(&access));
    // A token of another issuer's keys is refused.
    let other = SessionIssuer::new(
        unilogin_axum::session::SessionKeys::generate().unwrap(),
        ISSUER,
        "spa",
        Duration::from_secs(600),
    );
    let p = profile("acme", "dingtalk", "u1");
    let foreign = other.issue(&p, &["openid".to_string()]).unwrap().token;
    assert_eq!(h.userinfo(&foreign).await.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn refresh_rotates_and_narrows_scope() {
    let mut h = harness().await;
    let body = h
        .web_tokens("openid profile email offline_access unilogin")
        .await;
    let r1 = body["refresh_token"].as_str().unwrap().to_string();
    let id = verify_jwt(body["id_token"].as_str().unwrap(), &h.jwks().await, "web");
    assert_eq!(id["tenant"], "acme");
    assert_eq!(id["departments"], serde_json::json!(["10", "20"]));
    assert_eq!(id["nonce"], "n-web");

    let a = h
        .post_form(
            "/sso/oidc/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &r1),
                ("scope", "openid profile"),
            ],
            Some(("web", SECRET)),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    let b = a.json();
    assert_eq!(b["scope"], "openid profile");
    let r2 = b["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(r1, r2, "rotated");
    let id2 = verify_jwt(b["id_token"].as_str().unwrap(), &h.jwks().await, "web");
    assert_eq!(id2["auth_time"], id["auth_time"], "the original login time");
    assert!(id2.get("nonce").is_none());
    assert!(id2.get("email").is_none(), "narrowed");
    let u = h.userinfo(b["access_token"].as_str().unwrap()).await.json();
    assert_eq!(u["name"], "Zhang San");
    assert!(
        u.get("email").is_none(),
        "userinfo follows the token's scope"
    );

    // A scope the grant does not have cannot be added.
    let a = h
        .post_form(
            "/sso/oidc/token",
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", &r2),
                ("scope", "openid phone"),
            ],
            Some(("web", SECRET)),
        )
        .await;
    assert_eq!(a.json()["error"], "invalid_scope");
}

#[tokio::test]
async fn max_age_and_prompt_login_force_a_fresh_login() {
    let mut h = harness().await;
    // A session from an hour ago.
    let old = SystemTime::now() - Duration::from_secs(3600);
    let p = profile("acme", "dingtalk", "u1");
    let sid = h.host.sign_in(&p, old);
    h.cookie = Some(format!("sess={sid}"));
    let ch = challenge(VERIFIER);
    let base = [
        ("client_id", "spa"),
        ("redirect_uri", "http://127.0.0.1:8400/cb"),
        ("response_type", "code"),
        ("scope", "openid"),
        ("code_challenge", ch.as_str()),
        ("code_challenge_method", "S256"),
    ];
    // max_age=7200: the session is young enough, no login.
    let mut q = base.to_vec();
    q.push(("max_age", "7200"));
    let l = h.authorize_through(&q).await;
    assert!(param(&l, "code").is_some());
    assert!(h.host.logins().is_empty());

    // max_age=60: a forced login; the id token's auth_time is the new one.
    let mut q = base.to_vec();
    q.push(("max_age", "60"));
    let l = h.authorize_through(&q).await;
    let logins = h.host.logins();
    assert_eq!(logins.len(), 1);
    assert!(logins[0].force);
    let code = param(&l, "code").unwrap();
    let body = h.spa_token(&code).await.json();
    let id = verify_jwt(body["id_token"].as_str().unwrap(), &h.jwks().await, "spa");
    let auth_time = id["auth_time"].as_u64().unwrap();
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(now - auth_time < 60, "auth_time is the fresh login");

    // prompt=login with a fresh session: still a login.
    let mut q = base.to_vec();
    q.push(("prompt", "login"));
    let l = h.authorize_through(&q).await;
    assert!(param(&l, "code").is_some());
    assert_eq!(h.host.logins().len(), 2);
    assert!(h.host.logins()[1].force);
}

#[tokio::test]
async fn a_resumed_login_that_is_not_fresh_is_login_required() {
    let mut h = harness().await;
    let old = SystemTime::now() - Duration::from_secs(3600);
    let sid = h.host.sign_in(&profile("acme", "dingtalk", "u1"), old);
    h.cookie = Some(format!("sess={sid}"));
    let ch = challenge(VERIFIER);
    let a = h
        .authorize(&[
            ("client_id", "spa"),
            ("redirect_uri", "http://127.0.0.1:8400/cb"),
            ("response_type", "code"),
            ("scope", "openid"),
            ("state", "s9"),
            ("code_challenge", &ch),
            ("code_challenge_method", "S256"),
            ("prompt", "login"),
        ])
        .await;
    let resume = a.location();
    // The browser comes back with the old session (the host did not log in again).
    h.cookie = Some(format!("sess={sid}"));
    let back = h.follow(&resume).await.location();
    assert_eq!(param(&back, "error").as_deref(), Some("login_required"));
    assert_eq!(param(&back, "state").as_deref(), Some("s9"));
    // The pending request was taken: the resume link works once.
    let again = h.follow(&resume).await;
    assert_eq!(again.status, StatusCode::BAD_REQUEST);
    assert!(again.headers.get(header::LOCATION).is_none());
}

#[tokio::test]
async fn login_hint_selects_the_platform_and_several_platforms_need_a_choice() {
    let mut h = harness_with(&["dingtalk", "feishu"], None, settings()).await;
    let ch = challenge(VERIFIER);
    let base = [
        ("client_id", "spa"),
        ("redirect_uri", "http://127.0.0.1:8400/cb"),
        ("response_type", "code"),
        ("scope", "openid unilogin"),
        ("code_challenge", ch.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let mut q = base.to_vec();
    q.push(("login_hint", "platform:feishu zhang"));
    let l = h.authorize_through(&q).await;
    let login = &h.host.logins()[0];
    assert_eq!(login.platform.as_ref().unwrap().as_str(), "feishu");
    assert_eq!(login.login_hint.as_deref(), Some("zhang"));
    assert_eq!(login.allowed_platforms.len(), 2);
    let body = h.spa_token(&param(&l, "code").unwrap()).await.json();
    let id = verify_jwt(body["id_token"].as_str().unwrap(), &h.jwks().await, "spa");
    assert_eq!(id["platform"], "feishu");
    assert_eq!(id["sub"], "acme:feishu:u1");

    // Without a hint and without a session the host shows its chooser (platform None).
    h.cookie = None;
    h.authorize_through(&base).await;
    assert!(h.host.logins()[1].platform.is_none());
}

#[tokio::test]
async fn pairwise_subjects_differ_per_sector_and_algorithms_follow_the_client() {
    let mut h = harness().await;
    // Sign in once, via spa.
    h.spa_code("openid").await;
    // post: pairwise, ES256, client_secret_post, a.example.
    let l = h
        .authorize_through(&[
            ("client_id", "post"),
            ("redirect_uri", "https://a.example/cb"),
            ("response_type", "code"),
            ("scope", "openid"),
        ])
        .await;
    let t = h
        .post_form(
            "/sso/oidc/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", &param(&l, "code").unwrap()),
                ("redirect_uri", "https://a.example/cb"),
                ("client_id", "post"),
                ("client_secret", SECRET),
            ],
            None,
        )
        .await;
    assert_eq!(t.status, StatusCode::OK, "{}", t.body);
    let a = t.json();
    assert!(
        a["refresh_token"].is_string(),
        "refresh_without_offline_access"
    );
    let token_a = a["id_token"].as_str().unwrap();
    assert_eq!(
        jsonwebtoken::decode_header(token_a).unwrap().alg,
        jsonwebtoken::Algorithm::ES256
    );
    let sub_a = verify_jwt(token_a, &h.jwks().await, "post")["sub"].clone();

    // pair2: pairwise, EdDSA, b.example.
    let ch = challenge(VERIFIER);
    let l = h
        .authorize_through(&[
            ("client_id", "pair2"),
            ("redirect_uri", "https://b.example/cb"),
            ("response_type", "code"),
            ("scope", "openid"),
            ("code_challenge", &ch),
            ("code_challenge_method", "S256"),
        ])
        .await;
    let t = h
        .post_form(
            "/sso/oidc/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", &param(&l, "code").unwrap()),
                ("redirect_uri", "https://b.example/cb"),
                ("client_id", "pair2"),
                ("code_verifier", VERIFIER),
            ],
            None,
        )
        .await;
    let b = t.json();
    let token_b = b["id_token"].as_str().unwrap();
    assert_eq!(
        jsonwebtoken::decode_header(token_b).unwrap().alg,
        jsonwebtoken::Algorithm::EdDSA
    );
    let sub_b = verify_jwt(token_b, &h.jwks().await, "pair2")["sub"].clone();
    assert_ne!(sub_a, sub_b);
    assert_ne!(sub_a, "acme:dingtalk:u1");
    assert!(!sub_a.as_str().unwrap().contains("u1"));
    // Userinfo says the same pairwise sub.
    let u = h.userinfo(b["access_token"].as_str().unwrap()).await.json();
    assert_eq!(u["sub"], sub_b);
}

#[tokio::test]
async fn authorize_accepts_a_form_post() {
    let mut h = harness().await;
    h.spa_code("openid").await; // signed in
    let ch = challenge(VERIFIER);
    let a = h
        .post_form(
            "/sso/oidc/authorize",
            &[
                ("client_id", "spa"),
                ("redirect_uri", "http://127.0.0.1:8400/cb"),
                ("response_type", "code"),
                ("scope", "openid"),
                ("state", "post-state"),
                ("code_challenge", &ch),
                ("code_challenge_method", "S256"),
            ],
            None,
        )
        .await;
    let l = a.location();
    assert_eq!(param(&l, "state").as_deref(), Some("post-state"));
    let code = param(&l, "code").unwrap();
    assert_eq!(h.spa_token(&code).await.status, StatusCode::OK);
}
