//! An API protected by the unilogin guard: `GET /me` needs any valid session token,
//! `POST /admin/delete` also needs the `admin:write` scope.
//!
//! Behind a gateway (the session tokens it issues are verified against its JWKS):
//!
//! ```text
//! JWKS_URL=http://127.0.0.1:8080/.well-known/jwks.json ISSUER=http://127.0.0.1:8080 \
//! AUDIENCE=unilogin TENANT=acme cargo run -p unilogin --example protected_api --features axum
//! ```
//!
//! Without `JWKS_URL` it runs on its own: it makes a signing key, prints two tokens (one with
//! `admin:write`, one without) and verifies with the key in-process. Then try:
//!
//! ```text
//! curl -i localhost:3001/me                                   # 401, WWW-Authenticate: Bearer
//! curl -i -H "Authorization: Bearer $USER_TOKEN" localhost:3001/me
//! curl -i -X POST -H "Authorization: Bearer $USER_TOKEN" localhost:3001/admin/delete   # 403
//! curl -i -X POST -H "Authorization: Bearer $ADMIN_TOKEN" localhost:3001/admin/delete  # 200
//! ```
//!
//! `-- --self-test` does exactly that by itself (standalone key, an ephemeral port) and exits
//! with the result: `cargo run -p unilogin --example protected_api --features axum -- --self-test`.

use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use unilogin::axum::session::{SessionIssuer, SessionKeys};
use unilogin::axum::{AuthUser, Guard, RequireScopes};

async fn me(user: AuthUser) -> String {
    format!(
        "hello {} of {} via {}; scopes: {}\n",
        user.name().unwrap_or(user.user_id()),
        user.tenant(),
        user.platform(),
        user.claims().scope
    )
}

async fn delete(user: AuthUser) -> String {
    format!("deleted, by {}\n", user.subject())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    if std::env::args().any(|a| a == "--self-test") {
        return self_test().await;
    }
    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:3001".into());
    let guard = match std::env::var("JWKS_URL") {
        Ok(jwks_url) => {
            let issuer = std::env::var("ISSUER")?;
            let audience = std::env::var("AUDIENCE")?;
            let tenant = std::env::var("TENANT")?;
            // Setup: where the issuer's keys are, who issues, who the tokens are for, and
            // whose tokens this API takes (other tenants' get 403 wrong_tenant).
            Guard::jwks(jwks_url, issuer, audience)
                .tenant(tenant)
                .build()?
        }
        Err(_) => {
            let (guard, user, admin) = standalone_guard()?;
            println!("USER_TOKEN={user}");
            println!("ADMIN_TOKEN={admin}");
            guard
        }
    };
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("protected API on http://{}", listener.local_addr()?);
    axum::serve(listener, app(guard)).await?;
    Ok(())
}

/// Setup, continued: routes, the per-route scope, the guard around them.
fn app(guard: Guard) -> Router {
    Router::new()
        .route("/me", get(me))
        .route(
            "/admin/delete",
            post(delete).layer(RequireScopes::new(["admin:write"])),
        )
        .layer(guard)
}

/// Serves the API on an ephemeral port and makes the requests of the module docs.
async fn self_test() -> Result<(), Box<dyn std::error::Error>> {
    let (guard, user, admin) = standalone_guard()?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let base = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app(guard)).await });
    let http = reqwest::Client::new();
    let cases = [
        (
            "GET /me without a token",
            http.get(format!("{base}/me")),
            401,
        ),
        (
            "GET /me as user",
            http.get(format!("{base}/me")).bearer_auth(&user),
            200,
        ),
        (
            "POST /admin/delete as user",
            http.post(format!("{base}/admin/delete")).bearer_auth(&user),
            403,
        ),
        (
            "POST /admin/delete as admin",
            http.post(format!("{base}/admin/delete"))
                .bearer_auth(&admin),
            200,
        ),
    ];
    for (what, request, expected) in cases {
        let response = request.send().await?;
        let status = response.status().as_u16();
        let body = response.text().await?;
        println!("{what}: {status} {}", body.trim());
        if status != expected {
            return Err(format!("{what}: expected {expected}, got {status}").into());
        }
    }
    Ok(())
}

/// A local key and issuer standing in for the gateway, and two tokens to try: one with
/// `user:read`, one also with `admin:write`.
fn standalone_guard() -> Result<(Guard, String, String), Box<dyn std::error::Error>> {
    let keys = SessionKeys::generate()?;
    let issuer = SessionIssuer::new(
        keys,
        "http://localhost",
        "example-apis",
        Duration::from_secs(3600),
    );
    let profile: unilogin::UserProfile = serde_json::from_value(serde_json::json!({
        "platform": "dingtalk", "tenant": "acme", "user_id": "u-1", "name": "Zhang San"
    }))?;
    let user = issuer.issue(&profile, &["user:read".into()])?;
    let admin = issuer.issue(&profile, &["user:read".into(), "admin:write".into()])?;
    let guard = Guard::for_issuer(&issuer).tenant("acme").build()?;
    Ok((guard, user.token, admin.token))
}
