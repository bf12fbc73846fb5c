//! # unilogin-axum
//!
//! Protect your own APIs with the sessions a unilogin gateway hands out — no hand-written JWT
//! code. (In the `unilogin` facade this crate is `unilogin::axum`, feature `axum`.)
//!
//! - [`session`]: the session tokens themselves. [`SessionKeys`](session::SessionKeys) holds
//!   Ed25519 signing keys with key ids, rotates them and publishes the public keys as a JWKS;
//!   [`SessionIssuer`](session::SessionIssuer) signs [`Claims`](session::Claims) for a
//!   [`UserProfile`](unilogin_core::UserProfile); [`ScopeRules`](session::ScopeRules) decides
//!   which scopes a person gets; a [`RevocationList`](session::RevocationList) denies tokens
//!   revoked before their expiry.
//! - [`guard`]: the verifying side. [`Guard`] is a tower layer that checks the bearer token of
//!   every request against the issuer's JWKS (or local keys), with `iss` / `aud` / `exp` / `nbf`,
//!   the tenant it serves and revocation, and exposes [`AuthUser`] to handlers;
//!   [`RequireScopes`] adds per-route scopes.
//!
//! ## Protecting an axum service in six lines
//!
//! ```no_run
//! use axum::{Router, routing::{get, post}};
//! use unilogin_axum::{AuthUser, Guard, RequireScopes};
//!
//! async fn me(user: AuthUser) -> String { format!("hello {}", user.user_id()) }
//! async fn delete(user: AuthUser) -> String { format!("deleted by {}", user.subject()) }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let guard = Guard::jwks("https://login.example.com/.well-known/jwks.json",
//!     "https://login.example.com", "example-apis")                                 // 1
//!     .tenant("acme")                                                               // 2
//!     .build()?;                                                                    // 3
//! let app = Router::new()
//!     .route("/me", get(me))                                                        // 4
//!     .route("/admin/delete", post(delete).layer(RequireScopes::new(["admin:write"]))) // 5
//!     .layer(guard);                                                                // 6
//! # let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! # axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```
//!
//! What the service then answers (RFC 6750):
//!
//! | request | response |
//! |---|---|
//! | no `Authorization` header, or another scheme | 401, `WWW-Authenticate: Bearer realm="example-apis"` |
//! | malformed, expired, not yet valid, bad signature, other issuer or audience, unknown key, revoked | 401, `WWW-Authenticate: Bearer realm="example-apis", error="invalid_token"` |
//! | valid, but without `admin:write` on `/admin/delete` | 403, `WWW-Authenticate: Bearer realm="example-apis", error="insufficient_scope", scope="admin:write"` |
//! | valid, but issued for another tenant than `acme` (whatever its scopes) | 403, `WWW-Authenticate: Bearer realm="example-apis", error="wrong_tenant"` |
//! | two `Authorization` headers | 400, `error="invalid_request"` |
//! | the issuer's JWKS cannot be fetched and the key is not cached | 503, `Retry-After: 5` |
//!
//! The response never says *why* a token was refused; the service's log does (a `tracing`
//! warning with the reason and the request's `x-request-id` or `traceparent` trace id).
//!
//! Every tenant's tokens share the gateway's issuer and audience, so the builder has no `build`
//! until it is told whose tokens the service takes: [`tenant`](GuardBuilder::tenant),
//! [`tenants`](GuardBuilder::tenants), or [`any_tenant`](GuardBuilder::any_tenant) for a
//! service that checks [`AuthUser::tenant`] itself ([`AuthUser::require_tenant`]). A JWKS URL
//! must be `https` (plain `http` only to a loopback host).
//!
//! Options on the builder: [`realm`](GuardBuilder::realm), clock skew
//! ([`leeway`](GuardBuilder::leeway), 30 s by default), a
//! [`revocation`](GuardBuilder::revocation) list, the JWKS
//! [`refetch interval`](GuardBuilder::jwks_refetch_interval) (an unknown key id refetches at
//! most once per 10 s by default; concurrent requests share one fetch) and
//! [`max age`](GuardBuilder::jwks_max_age). A service in the same process as the issuer uses
//! [`Guard::local`] or [`Guard::for_issuer`] instead (no HTTP).
//!
//! ## Signing sessions (the gateway's side)
//!
//! ```
//! use std::time::Duration;
//! use unilogin_axum::session::{ScopeRules, SessionIssuer, SessionKeys};
//!
//! let keys = SessionKeys::generate().unwrap();          // or SessionKeys::from_pkcs8_pem(pem, kid)
//! let issuer = SessionIssuer::new(keys, "https://login.example.com", "example-apis",
//!     Duration::from_secs(8 * 3600));
//! let rules = ScopeRules::from_value(&serde_json::json!({
//!     "default": ["user:read"],
//!     "rules": [{ "when": { "extra": { "admin": true } }, "grant": ["admin:write"] }]
//! })).unwrap();
//! # let profile = serde_json::from_value(serde_json::json!({
//! #     "platform": "dingtalk", "tenant": "acme", "user_id": "u1", "extra": { "admin": true } })).unwrap();
//! let session = issuer.issue(&profile, &rules.scopes_for(&profile)).unwrap();
//! assert_eq!(session.claims.scope, "user:read admin:write");
//! let jwks = issuer.keys().jwks();                       // serve at /.well-known/jwks.json
//! # assert_eq!(jwks["keys"][0]["kty"], "OKP");
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod guard;
pub mod session;

pub use guard::{AuthRejection, AuthUser, Guard, GuardBuilder, RequireScopes, Tenants};
