//! An API protected by the unilogin guard: `GET /me` needs any valid session token,
//! `POST /admin/delete` also needs the `admin:write` scope.
//!
//! Behind a gateway (the session tokens it issues are verified against its JWKS):
//!
//! ```text
//! JWKS_URL=http://127.0.0.1:8080/.well-known/jwks.json ISSUER=http://127.0.0.1:8080 \
//! AUDIENCE=unilogin cargo run -p unilogin --example protected_api --features axum
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
    let addr = std::env::var("ADDR").unwrap_or_else(|_| "127.0.0.1:3001".into());
    let guard = match std::env::var("JWKS_URL") {
        Ok(jwks_url) => {
            let issuer = std::env::var("ISSUER")?;
            let audience = std::env::var("AUDIENCE")?;
            // Setup: where the issuer's keys are, who issues, who the tokens are for.
            Guard::jwks(jwks_url, issuer, audience).build()?
        }
        Err(_) => standalone_guard()?,
    };
    // Setup, continued: routes, the per-route scope, the guard around them.
    let app = Router::new()
        .route("/me", get(me))
        .route(
            "/admin/delete",
            post(delete).layer(RequireScopes::new(["admin:write"])),
        )
        .layer(guard);

    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("protected API on http://{}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}

/// A local key and issuer standing in for the gateway; prints two tokens to try.
fn standalone_guard() -> Result<Guard, Box<dyn std::error::Error>> {
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
    println!("USER_TOKEN={}", user.token);
    println!("ADMIN_TOKEN={}", admin.token);
    Ok(Guard::for_issuer(&issuer).build()?)
}
