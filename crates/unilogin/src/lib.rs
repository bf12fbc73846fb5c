//! # unilogin
//!
//! The facade crate: re-exports [`unilogin_core`] and turns platform crates on with Cargo
//! features.
#![cfg_attr(docsrs, feature(doc_cfg))]

pub use unilogin_core::*;
