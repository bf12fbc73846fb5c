//! The platform registry, collected at link time with [`inventory`].
//!
//! Each platform crate submits one [`PlatformRegistration`]:
//!
//! ```ignore
//! inventory::submit! {
//!     unilogin_core::registry::PlatformRegistration {
//!         name: "dingtalk",
//!         description: "DingTalk (钉钉): H5 login-free and web/QR OAuth2",
//!         default_rules: include_str!("../rules.yaml"),
//!         user_agent_markers: &["dingtalk"],
//!         in_client: InClient::Jsapi(JSAPI_LOGIN),
//!         build: DingTalk::build,
//!         events: Some(DingTalkEvents::from_credentials),
//!     }
//! }
//! ```
//!
//! The registry is process-global and read-only: there is nothing to initialise and nothing to
//! forget. A platform crate only registers if it is linked into the binary; the `unilogin` facade
//! names every enabled platform crate so that it always is.

use std::sync::Arc;

use crate::config::PlatformConfig;
use crate::error::{Error, Result};
use crate::http::HttpClient;
use crate::platform::{InClient, Platform};

/// What a handler is built from.
#[derive(Debug, Clone, Copy)]
pub struct PlatformContext<'a> {
    /// The tenant's configuration for this platform.
    pub config: &'a PlatformConfig,
    /// The shared HTTP client (timeouts, body limit, redirects off).
    pub http: &'a HttpClient,
}

/// One platform, as a platform crate registers it.
#[derive(Debug)]
pub struct PlatformRegistration {
    /// Lower-case platform name, unique in the registry.
    pub name: &'static str,
    /// One line for listings.
    pub description: &'static str,
    /// The platform's default mapping rules (YAML whose top-level key is `name`).
    pub default_rules: &'static str,
    /// Lower-case substrings of a `User-Agent` that mean "inside this platform's client".
    pub user_agent_markers: &'static [&'static str],
    /// How a page inside the platform's client obtains a login code, and so whether codes may
    /// be redeemed without state.
    pub in_client: InClient,
    /// Builds a handler for one tenant's configuration, validating it.
    pub build: fn(PlatformContext<'_>) -> Result<Arc<dyn Platform>>,
    /// Builds the platform's event-callback codec from a tenant's event credentials, when the
    /// platform pushes events (see [`crate::events`]); `None` when it has no callbacks.
    pub events: Option<crate::events::BuildCodec>,
}

inventory::collect!(PlatformRegistration);

/// The registered platforms.
///
/// ```
/// use unilogin_core::registry::Registry;
/// let err = Registry::get("no-such-platform").unwrap_err();
/// assert!(err.to_string().contains("unknown platform `no-such-platform`"));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Registry;

impl Registry {
    /// The registration for `name` (case-insensitive), or [`Error::UnknownPlatform`] listing
    /// the registered names.
    pub fn get(name: &str) -> Result<&'static PlatformRegistration> {
        inventory::iter::<PlatformRegistration>
            .into_iter()
            .find(|r| r.name.eq_ignore_ascii_case(name))
            .ok_or_else(|| Error::UnknownPlatform {
                name: name.chars().take(64).collect(),
                registered: Self::names(),
            })
    }

    /// The registered platform names, sorted, without duplicates.
    pub fn names() -> Vec<&'static str> {
        let mut names: Vec<&'static str> = inventory::iter::<PlatformRegistration>
            .into_iter()
            .map(|r| r.name)
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    }

    /// All registrations, sorted by name.
    pub fn all() -> Vec<&'static PlatformRegistration> {
        let mut all: Vec<_> = inventory::iter::<PlatformRegistration>
            .into_iter()
            .collect();
        all.sort_by_key(|r| r.name);
        all.dedup_by_key(|r| r.name);
        all
    }

    /// Builds the handler for a tenant's configuration of a platform.
    pub fn build(ctx: PlatformContext<'_>) -> Result<Arc<dyn Platform>> {
        let registration = Self::get(ctx.config.platform.as_str())?;
        (registration.build)(ctx)
    }
}
