//! RP-initiated logout and back-channel logout delivered to a real loopback receiver.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{StatusCode, header};
use serde_json::Value;
use support::*;
use unilogin_provider::BACKCHANNEL_LOGOUT_EVENT;

/// A receiver that answers 500 to the first `fail` deliveries, then 200, keeping every
/// `logout_token` it got.
struct Receiver {
    url: String,
    tokens: Arc<Mutex<Vec<String>>>,
    calls: Arc<AtomicUsize>,
}

async fn receiver(fail: usize) -> Receiver {
    let tokens = Arc::new(Mutex::new(Vec::new()));
    let calls = Arc::new(AtomicUsize::new(0));
    let (t, c) = (tokens.clone(), calls.clone());
    let app = axum::Router::new().route(
        "/backchannel",
        axum::routing::post(
            move |axum::Form(form): axum::Form<std::collections::HashMap<String, String>>| {
                let (t, c) = (t.clone(), c.clone());
                async move {
                    let n = c.fetch_add(1, Ordering::SeqCst);
                    t.lock()
                        .unwrap()
                        .push(form.get("logout_token").cloned().unwrap_or_default());
                    if n < fail {
                        StatusCode::INTERNAL_SERVER_ERROR
                    } else {
                        StatusCode::OK
                    }
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Receiver {
        url: format!("http://{addr}/backchannel"),
        tokens,
        calls,
    }
}

async fn wait_for(calls: &AtomicUsize, n: usize) {
    for _ in 0..200 {
        if calls.load(Ordering::SeqCst) >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("only {} of {n} deliveries", calls.load(Ordering::SeqCst));
}

fn check_logout_token(token: &str, jwks: &jsonwebtoken::jwk::JwkSet, sid: &str) -> Value {
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.typ.as_deref(), Some("logout+jwt"));
    let claims = verify_jwt(token, jwks, "web");
    assert_eq!(claims["sid"], sid);
    assert_eq!(claims["sub"], "acme:dingtalk:u1");
    assert!(claims["jti"].is_string());
    assert!(claims["iat"].is_u64());
    assert!(claims.get("nonce").is_none());
    assert_eq!(
        claims["events"],
        serde_json::json!({ BACKCHANNEL_LOGOUT_EVENT: {} })
    );
    claims
}

#[tokio::test]
async fn end_session_logs_out_and_delivers_a_logout_token_retrying_after_a_500() {
    let rx = receiver(1).await;
    let mut h = harness_with(&["dingtalk"], Some(&rx.url), settings()).await;
    let body = h.web_tokens("openid offline_access").await;
    let id_token = body["id_token"].as_str().unwrap().to_string();
    let refresh = body["refresh_token"].as_str().unwrap().to_string();
    let access = body["access_token"].as_str().unwrap().to_string();
    let sid = verify_jwt(&id_token, &h.jwks().await, "web")["sid"]
        .as_str()
        .unwrap()
        .to_string();

    let a = h
        .post_form(
            "/sso/oidc/end_session",
            &[
                ("id_token_hint", &id_token),
                ("post_logout_redirect_uri", "https://rp.example/bye"),
                ("state", "bye-1"),
            ],
            None,
        )
        .await;
    assert!(a.status.is_redirection(), "{}: {}", a.status, a.body);
    let l = a.location();
    assert_eq!(l.as_str().split('?').next(), Some("https://rp.example/bye"));
    assert_eq!(param(&l, "state").as_deref(), Some("bye-1"));
    assert!(a.header(header::SET_COOKIE).unwrap().contains("Max-Age=0"));
    assert!(h.cookie.is_none(), "the host session cookie is cleared");
    assert_eq!(h.host.state.lock().unwrap().ended.len(), 1);

    // First delivery 500, then retried and accepted.
    wait_for(&rx.calls, 2).await;
    let tokens = rx.tokens.lock().unwrap().clone();
    assert_eq!(tokens.len(), 2);
    assert_eq!(tokens[0], tokens[1], "the same token is retried");
    check_logout_token(&tokens[1], &h.jwks().await, &sid);

    // The grant is revoked: refresh and userinfo fail.
    let r = h
        .post_form(
            "/sso/oidc/token",
            &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
            Some(("web", SECRET)),
        )
        .await;
    assert_eq!(r.json()["error"], "invalid_grant");
    assert_eq!(h.userinfo(&access).await.status, StatusCode::UNAUTHORIZED);
    // No more deliveries after the success.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(rx.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn end_session_refuses_unregistered_redirects_and_foreign_hints() {
    let mut h = harness().await;
    let body = h.web_tokens("openid").await;
    let id_token = body["id_token"].as_str().unwrap().to_string();
    let a = h
        .post_form(
            "/sso/oidc/end_session",
            &[
                ("id_token_hint", &id_token),
                ("post_logout_redirect_uri", "https://evil.example/"),
            ],
            None,
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.headers.get(header::LOCATION).is_none());
    // Without a hint or client_id a redirect URI cannot be checked.
    let a = h
        .get("/sso/oidc/end_session?post_logout_redirect_uri=https%3A%2F%2Frp.example%2Fbye")
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    // A hint with a broken signature.
    let mut forged = id_token.clone();
    forged.push('A');
    let a = h
        .post_form("/sso/oidc/end_session", &[("id_token_hint", &forged)], None)
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    // client_id disagreeing with the hint.
    let a = h
        .post_form(
            "/sso/oidc/end_session",
            &[("id_token_hint", &id_token), ("client_id", "spa")],
            None,
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    // Nothing was ended by the refusals.
    assert!(h.host.state.lock().unwrap().ended.is_empty());
    // Plain logout without parameters: a signed-out page.
    let a = h.get("/sso/oidc/end_session").await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(a.body.contains("signed out"));
}

#[tokio::test]
async fn logout_subject_ends_every_session_of_a_leaver() {
    let rx = receiver(0).await;
    let mut h = harness_with(&["dingtalk"], Some(&rx.url), settings()).await;
    // Two browsers, two sessions of the same person.
    let first = h.web_tokens("openid offline_access").await;
    h.cookie = None;
    let second = h.web_tokens("openid offline_access").await;
    let n = h.provider.logout_subject("acme:dingtalk:u1").await.unwrap();
    assert_eq!(n, 2);
    wait_for(&rx.calls, 2).await;
    let jwks = h.jwks().await;
    let mut sids: Vec<String> = rx
        .tokens
        .lock()
        .unwrap()
        .iter()
        .map(|t| {
            verify_jwt(t, &jwks, "web")["sid"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    sids.sort();
    sids.dedup();
    assert_eq!(sids.len(), 2);
    for body in [first, second] {
        let r = h
            .post_form(
                "/sso/oidc/token",
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", body["refresh_token"].as_str().unwrap()),
                ],
                Some(("web", SECRET)),
            )
            .await;
        assert_eq!(r.json()["error"], "invalid_grant");
    }
    assert_eq!(
        h.provider.logout_subject("acme:dingtalk:u1").await.unwrap(),
        0
    );
}
