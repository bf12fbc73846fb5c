//! What the provider needs from the service it runs in (the gateway): who is signed in on this
//! browser, how to sign someone in, and how to sign them out.
//!
//! The provider never talks to a platform itself. When an authorization request needs a login,
//! it stores the request, asks the [`Host`] to take the browser through the platform login
//! ([`Host::login`]) and back to `resume` (`/oidc/resume?req=…`), where it reads the fresh
//! session with [`Host::session`] and continues.

use std::fmt;
use std::time::SystemTime;

use async_trait::async_trait;
use axum::http::HeaderMap;
use axum::response::Response;
use unilogin_core::{PlatformName, TenantId, UserProfile};
use url::Url;

use crate::error::Result;

/// The person signed in on this browser, as the host's session says.
#[derive(Clone, Debug)]
pub struct Authenticated {
    /// Their profile from the platform login.
    pub profile: UserProfile,
    /// The tenant of the login.
    pub tenant: TenantId,
    /// The platform of the login.
    pub platform: PlatformName,
    /// The session subject (`tenant:platform:uid`, the session token's `sub`).
    pub subject: String,
    /// The linked unilogin account, when the host keeps accounts.
    pub account: Option<String>,
    /// When the person actually logged in at the platform (OIDC `auth_time`).
    pub auth_time: SystemTime,
    /// The host session's id (OIDC `sid`): what logout ends.
    pub sid: String,
}

/// What [`Host::login`] is asked to do. `Debug` leaves out the headers (they carry cookies).
#[derive(Clone)]
pub struct LoginRequest {
    /// The tenant to sign in to.
    pub tenant: TenantId,
    /// The platform, when one is chosen (by `login_hint=platform:NAME`, or because the tenant
    /// or the client allows just one); `None`: show the platform chooser.
    pub platform: Option<PlatformName>,
    /// The platforms the person may choose from (the tenant's, narrowed by the client).
    pub allowed_platforms: Vec<PlatformName>,
    /// Where to send the browser after the login (the provider's resume URL).
    pub resume: Url,
    /// Log in again even when a session exists (`prompt=login`, `max_age` exceeded).
    pub force: bool,
    /// The `login_hint` as given (after the platform selector was taken out of it).
    pub login_hint: Option<String>,
    /// The browser request's headers.
    pub headers: HeaderMap,
}

impl fmt::Debug for LoginRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginRequest")
            .field("tenant", &self.tenant)
            .field("platform", &self.platform)
            .field("allowed_platforms", &self.allowed_platforms)
            // The resume URL's query names the pending request: left out.
            .field("resume", &self.resume.path())
            .field("force", &self.force)
            .field("login_hint", &self.login_hint)
            .finish_non_exhaustive()
    }
}

/// The service the provider runs in. The gateway implements it over its session cookie and
/// its login routes.
#[async_trait]
pub trait Host: Send + Sync + 'static {
    /// The person signed in on the browser that sent `headers`, if any.
    async fn session(&self, headers: &HeaderMap) -> Result<Option<Authenticated>>;

    /// A response that takes the browser through the platform login (or a chooser page when
    /// `request.platform` is `None`) and then to `request.resume`.
    async fn login(&self, request: LoginRequest) -> Result<Response>;

    /// The platforms configured (and enabled) for `tenant`.
    async fn platforms(&self, tenant: &TenantId) -> Result<Vec<PlatformName>>;

    /// Ends the host session of the browser that sent `headers` (revokes the session token)
    /// and returns the response headers that clear it in the browser (a `Set-Cookie` removing
    /// the session cookie), which the provider adds to its answer. The provider then notifies
    /// relying parties.
    async fn end_session(&self, headers: &HeaderMap) -> Result<HeaderMap>;
}
