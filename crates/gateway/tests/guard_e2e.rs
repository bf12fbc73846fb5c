//! End to end with unilogin-axum's guard (issue 11): a token from a real login at the sandbox
//! gateway is accepted by a separate axum service protected by `Guard::jwks` (pointed at the
//! gateway's `/.well-known/jwks.json`), scopes are enforced per route, and a logout at the
//! gateway is seen by the guard through a shared revocation list.

mod support;

use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use serde_json::Value;
use unilogin_axum::session::{MemoryRevocationList, RevocationList};
use unilogin_axum::{AuthUser, Guard, RequireScopes};
use unilogin_gateway::{Sandbox, SandboxOptions};

async fn profile(user: AuthUser) -> String {
    format!("{}|{}", user.subject(), user.name().unwrap_or(""))
}

async fn admin(user: AuthUser) -> String {
    format!("admin {}", user.user_id())
}

/// The downstream service: `/api/profile` for any signed-in user, `/api/admin` needs
/// `admin:write`. Returns its base URL.
async fn protected_api(guard: Guard) -> String {
    let app = Router::new()
        .route("/api/profile", get(profile))
        .route(
            "/api/admin",
            get(admin).layer(RequireScopes::new(["admin:write"])),
        )
        .layer(guard);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sandbox_login_token_passes_the_guard() {
    let sandbox = Sandbox::start(SandboxOptions::default()).await.unwrap();
    let base = sandbox.url.as_str().trim_end_matches('/').to_string();
    let issuer = sandbox.gateway.issuer();
    let guard = Guard::jwks(
        format!("{base}/.well-known/jwks.json"),
        issuer.issuer(),
        issuer.audience(),
    )
    .tenant("demo")
    .build()
    .unwrap();
    let api = protected_api(guard.clone()).await;
    let http = support::client();

    // A real H5 login at the gateway, with the code the platform fake's JSAPI stand-in gives.
    let code: Value = http
        .post(format!("{base}/sandbox/dingtalk/h5-code"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let login: Value = http
        .post(format!("{base}/auth/demo/dingtalk/code"))
        .json(&serde_json::json!({ "code": code["code"] }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = login["token"].as_str().unwrap();

    let r = http
        .get(format!("{api}/api/profile"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "demo:dingtalk:user001|Zhang San");
    // user001 holds `user:read` only: 403 with the scope needed.
    let r = http
        .get(format!("{api}/api/admin"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    let challenge = r.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.contains("insufficient_scope") && challenge.contains("admin:write"),
        "{challenge}"
    );
    // No token, or a tampered one: 401.
    let r = http.get(format!("{api}/api/profile")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let mut tampered = token.to_string();
    tampered.pop();
    tampered.push(if token.ends_with('A') { 'B' } else { 'A' });
    let r = http
        .get(format!("{api}/api/profile"))
        .bearer_auth(&tampered)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        guard.jwks_fetches(),
        1,
        "the JWKS is fetched once and cached"
    );
    sandbox.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_scope_and_gateway_logout_reach_the_guard() {
    let revocations: Arc<dyn RevocationList> = Arc::new(MemoryRevocationList::new());
    let shared = revocations.clone();
    let gw = support::start_with("", None, move |b| b.revocation_list(shared)).await;
    let issuer = gw.gateway.issuer();
    let guard = Guard::jwks(
        gw.url(".well-known/jwks.json"),
        issuer.issuer(),
        issuer.audience(),
    )
    .tenant("demo")
    .revocation(revocations)
    .build()
    .unwrap();
    let api = protected_api(guard).await;
    let http = support::client();

    // A PC login (authorize page → Approve → callback) of the admin user002.
    let token = gw.pc_login("demo", "user002").await;
    let r = http
        .get(format!("{api}/api/admin"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "admin user002");
    // Logout at the gateway: the guard refuses the token from then on.
    let r = http
        .post(gw.url("logout"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = http
        .get(format!("{api}/api/profile"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}
