//! # unilogin
//!
//! Log people in through the workplace platforms — DingTalk (钉钉), Feishu / Lark (飞书),
//! WeCom (企业微信) — and any OAuth2/OIDC provider, in-app (H5 login-free) or from a browser
//! (web / QR OAuth2), and get one [`UserProfile`] whatever the platform.
//!
//! This facade re-exports what an application uses from [`unilogin_core`] and turns platform
//! crates on with Cargo features (none by default). Naming each enabled crate here is what
//! guarantees that its `inventory` registration is linked into your binary. What a *platform
//! author* builds on (the `Platform` trait, the registration, envelope and HTTP helpers) is
//! under [`platform_sdk`], out of an application's way.
//!
//! ```no_run
//! # async fn demo() -> unilogin::Result<()> {
//! use unilogin::{config::StaticConfig, sso::Sso, AuthCode, TenantId};
//! let sso = Sso::builder(StaticConfig::new(vec![/* per-tenant PlatformConfig */])).build()?;
//! let login = sso.login_with_code(&TenantId::new("acme")?, "dingtalk", &AuthCode::new("code")).await?;
//! println!("{:?}", login.profile);
//! # Ok(()) }
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]

pub use unilogin_core::events;
pub use unilogin_core::http::HttpConfig;
pub use unilogin_core::identity;
pub use unilogin_core::isv;
/// JSAPI signatures for pages inside the platforms' clients (`dd.config`, `h5sdk.config`,
/// `wx.config` / `wx.agentConfig`); see [`Prepared::jsapi_config`].
pub use unilogin_core::jsapi;
pub use unilogin_core::jsapi::{JsapiConfig, TicketKind};
pub use unilogin_core::platform::CodeKind;
pub use unilogin_core::platform::{Flow, InClient, JsapiLogin, UserToken};
pub use unilogin_core::registry::Registry;
pub use unilogin_core::{
    AccessToken, AccountId, AppKey, AppSecret, AuthCode, Error, InvalidId, Login, MappingRules,
    Nonce, PkceVerifier, PlatformName, Prepared, RefreshToken, Result, Sso, State, TenantId,
    UpstreamCode, UpstreamCtx, UserProfile, UserTicket, config, error, mapping, redirect, sso,
    token_cache, types, user_agent, web_login,
};

/// For platform authors: the contracts and helpers a platform crate is written with (see
/// `docs/adding-a-platform.md`). Applications do not need them.
pub mod platform_sdk {
    pub use unilogin_core::platform::sdk::{
        Base, Hosts, choice, choice_of, choice_opt, secret_rejected,
    };
    pub use unilogin_core::{ErrorClass, envelope, http, platform, registry, singleflight};
}

/// DingTalk (钉钉): H5 login-free and web/QR OAuth2 (feature `dingtalk`).
#[cfg(feature = "dingtalk")]
#[cfg_attr(docsrs, doc(cfg(feature = "dingtalk")))]
pub use unilogin_dingtalk as dingtalk;

/// Feishu / Lark (飞书): H5 login-free and web OAuth, v2 and v1 user tokens (feature `feishu`).
#[cfg(feature = "feishu")]
#[cfg_attr(docsrs, doc(cfg(feature = "feishu")))]
pub use unilogin_feishu as feishu;

/// WeCom (企业微信): in-client OAuth (H5) and web/QR login (feature `wecom`).
#[cfg(feature = "wecom")]
#[cfg_attr(docsrs, doc(cfg(feature = "wecom")))]
pub use unilogin_wecom as wecom;

/// Any OAuth2 / OpenID Connect provider (PKCE, discovery, verified id_token), or a self-built
/// platform described as HTTP steps, by configuration alone (feature `custom-oauth`).
#[cfg(feature = "custom-oauth")]
#[cfg_attr(docsrs, doc(cfg(feature = "custom-oauth")))]
pub use unilogin_custom_oauth as custom_oauth;

/// Per-tenant platform configuration in SQLite, PostgreSQL or MySQL/MariaDB: migrations,
/// encrypted secrets, admin API, reloading source (feature `sql`).
#[cfg(feature = "sql")]
#[cfg_attr(docsrs, doc(cfg(feature = "sql")))]
pub use unilogin_sql as sql;

/// Session tokens (Ed25519 JWT, JWKS, rotation, scopes, revocation) and the axum/tower guard
/// that protects your own APIs with them (feature `axum`).
#[cfg(feature = "axum")]
#[cfg_attr(docsrs, doc(cfg(feature = "axum")))]
pub use unilogin_axum as axum;

/// Redis L2 token store shared by replicas (feature `redis`).
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use unilogin_redis as redis;

/// The README's examples, compiled as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
