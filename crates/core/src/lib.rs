//! # unilogin-core
//!
//! The contracts every unilogin crate builds on: the [`Platform`] trait each
//! platform crate implements, the [`Registry`] that collects them with
//! `inventory`, the one [`Error`] type, the app-token cache ([`token_cache`]) and the mapping
//! engine ([`mapping`]) that turns any platform's user document into a
//! [`UserProfile`].
//!
//! The core never knows a platform's name: everything platform-specific arrives through the
//! trait and the registry.

pub mod config;
pub mod envelope;
pub mod error;
pub mod events;
pub mod http;
pub mod identity;
pub mod isv;
pub mod jsapi;
pub mod mapping;
pub mod platform;
pub mod redirect;
pub mod registry;
pub mod singleflight;
pub mod sso;
pub mod token_cache;
pub mod types;
pub mod user_agent;
pub mod web_login;

pub use error::{Error, ErrorClass, Result, UpstreamCode, UpstreamCtx};
pub use jsapi::{JsapiConfig, TicketKind};
pub use mapping::{MappingRules, UserProfile};
pub use platform::{CodeKind, Flow, Identity, Platform};
pub use registry::{PlatformRegistration, Registry};
pub use sso::{Login, Prepared, Sso};
pub use types::{
    AccessToken, AccountId, AppKey, AppSecret, AuthCode, InvalidId, Nonce, PkceVerifier,
    PlatformName, RefreshToken, State, TenantId, UserTicket,
};
