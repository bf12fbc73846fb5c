//! Session tokens and an axum/tower guard for the APIs behind a unilogin gateway.
//!
//! (Crate documentation is completed below.)
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod guard;
pub mod session;

pub use guard::{AuthRejection, AuthUser, Guard, GuardBuilder, RequireScopes};
