//! unilogin as an OpenID Provider: OIDC applications (Grafana, GitLab, oauth2-proxy, …) sign in
//! through the platform logins of a unilogin gateway.
//!
//! The crate is the protocol: OpenID Connect Core 1.0 (authorization code flow), Discovery
//! 1.0, RFC 6749 / RFC 7636 (PKCE, S256 only) / RFC 9207 (`iss` in the authorization
//! response), RP-Initiated Logout 1.0 and Back-Channel Logout 1.0. The service it runs in
//! supplies the rest through small traits:
//!
//! - [`Host`]: who is signed in on this browser, how to sign in (the platform login and
//!   back), how to sign out. The gateway implements it over its session cookie.
//! - [`ClientSource`]: the configured relying parties ([`Client`]), looked up per request so
//!   configuration can be reloaded; [`StaticClients`] is a fixed list.
//! - [`GrantStore`]: pending requests, codes, grants, refresh families and sessions;
//!   [`MemoryGrantStore`] in process, `unilogin_redis` (feature `provider`) across replicas.
//! - [`IdTokenKeys`]: the id-token signing keys, one set per algorithm; [`PemKey`] loads one
//!   fixed key.
//!
//! Access tokens are `unilogin-axum` session tokens (`aud` the client id, `scope` the granted
//! scopes), so the same guard protects APIs for gateway sessions and for OIDC clients, and the
//! same [`RevocationList`](unilogin_axum::session::RevocationList) revokes them.
//!
//! [`Provider::router`] serves the endpoints; see [`Provider`] for a complete setup.

mod claims;
mod client;
mod error;
mod host;
mod keys;
mod logout;
mod provider;
mod routes;
mod secret;
mod store;

pub use claims::{SUPPORTED_CLAIMS, SUPPORTED_SCOPES};
pub use client::{AuthMethod, Client, ClientSource, GrantType, StaticClients, SubjectType};
pub use error::{ProviderError, Result};
pub use host::{Authenticated, Host, LoginRequest};
pub use keys::{IdTokenAlg, IdTokenKeys, PemKey};
pub use logout::{BACKCHANNEL_LOGOUT_EVENT, BackchannelSettings};
pub use provider::{Provider, ProviderBuilder, Settings};
pub use secret::{Redacted, sha256_hex};
pub use store::{
    CodeGrant, CodeTaken, Grant, GrantStore, IssuedToken, LoginRecord, MemoryGrantStore,
    PendingAuthorization, Rotation, SessionRecord,
};
