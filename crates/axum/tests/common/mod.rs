//! Loopback fixtures: a JWKS endpoint that counts its requests, and a guarded service.

#![allow(dead_code)] // each test binary uses a subset

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use unilogin_axum::session::{SessionIssuer, SessionKeys};
use unilogin_axum::{AuthUser, Guard, GuardBuilder, RequireScopes, Tenants};
use unilogin_core::UserProfile;

pub const ISS: &str = "https://login.test";
pub const AUD: &str = "test-apis";

/// The issuer's JWKS endpoint on loopback.
pub struct JwksServer {
    pub url: String,
    pub hits: Arc<AtomicUsize>,
}

impl JwksServer {
    pub fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

#[derive(Clone)]
struct JwksState {
    keys: SessionKeys,
    hits: Arc<AtomicUsize>,
    delay: Duration,
}

async fn jwks(State(s): State<JwksState>) -> Json<Value> {
    s.hits.fetch_add(1, Ordering::SeqCst);
    // A slow issuer, so concurrent unknown-kid requests really overlap with the fetch.
    tokio::time::sleep(s.delay).await;
    Json(s.keys.jwks())
}

pub async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, router).await.unwrap();
    });
    addr
}

/// Serves `keys.jwks()` at `/.well-known/jwks.json`, each answer delayed by `delay`.
pub async fn jwks_server(keys: SessionKeys, delay: Duration) -> JwksServer {
    let hits = Arc::new(AtomicUsize::new(0));
    let state = JwksState {
        keys,
        hits: hits.clone(),
        delay,
    };
    let app = Router::new()
        .route("/.well-known/jwks.json", get(jwks))
        .with_state(state);
    let addr = serve(app).await;
    JwksServer {
        url: format!("http://{addr}/.well-known/jwks.json"),
        hits,
    }
}

async fn me(user: AuthUser) -> Json<Value> {
    Json(json!({
        "sub": user.subject(),
        "tenant": user.tenant(),
        "platform": user.platform(),
        "uid": user.user_id(),
        "name": user.name(),
        "scopes": user.scopes().collect::<Vec<_>>(),
    }))
}

async fn admin_delete(user: AuthUser) -> String {
    format!("deleted by {}", user.user_id())
}

async fn reports(user: AuthUser) -> Result<&'static str, unilogin_axum::AuthRejection> {
    user.require("reports:read")?;
    Ok("reports")
}

async fn open(user: Option<AuthUser>) -> String {
    user.map_or_else(|| "anonymous".to_string(), |u| u.user_id().to_string())
}

/// `/me` (any valid token), `/admin/delete` (needs `admin:write` via the layer), `/reports`
/// (needs `reports:read` via `AuthUser::require`), and `/open` outside the guard.
pub fn app(guard: Guard) -> Router {
    let protected = Router::new()
        .route("/me", get(me))
        .route(
            "/admin/delete",
            post(admin_delete).layer(RequireScopes::new(["admin:write"])),
        )
        .route("/reports", get(reports))
        .layer(guard);
    Router::new()
        .route("/open", get(open))
        .route("/unguarded-me", get(me))
        .merge(protected)
}

pub async fn guarded(builder: GuardBuilder<Tenants>) -> (String, Guard) {
    let guard = builder.build().unwrap();
    let addr = serve(app(guard.clone())).await;
    (format!("http://{addr}"), guard)
}

pub fn issuer(keys: &SessionKeys) -> SessionIssuer {
    SessionIssuer::new(keys.clone(), ISS, AUD, Duration::from_secs(3600))
}

pub fn profile(v: Value) -> UserProfile {
    serde_json::from_value(v).unwrap()
}

pub fn alice() -> UserProfile {
    profile(json!({"platform": "dingtalk", "tenant": "acme", "user_id": "alice", "name": "Alice"}))
}

pub fn scopes(s: &[&str]) -> Vec<String> {
    s.iter().map(|s| s.to_string()).collect()
}

/// One shared HTTP client (building a rustls client is slow in debug builds). Pooling is off:
/// each test has its own runtime, and a pooled connection must not outlive the one that made it.
pub fn client() -> reqwest::Client {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    CLIENT
        .get_or_init(|| {
            reqwest::Client::builder()
                .no_proxy()
                .pool_max_idle_per_host(0)
                .build()
                .unwrap()
        })
        .clone()
}

/// GET `url` with `Authorization: Bearer token`.
pub async fn get_with(url: &str, token: &str) -> reqwest::Response {
    client().get(url).bearer_auth(token).send().await.unwrap()
}

pub fn www(r: &reqwest::Response) -> String {
    r.headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}
