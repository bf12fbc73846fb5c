//! # unilogin-custom-oauth
//!
//! Any OAuth2 / OpenID Connect provider, and any self-built platform that follows the seed's
//! "app token → code → user id → user detail" shape, configured per tenant with no code.
//! Registered as platform `custom-oauth` (no in-client login of its own: [`InClient::None`],
//! so every code is redeemed by finishing the redirect login it belongs to); the tenant's `mode`
//! picks one of two handlers:
//!
//! - **`mode: oidc`** ([`Oidc`]): the standard authorization-code flow with PKCE (S256, on by
//!   default; the core's [`PendingLogin`](unilogin_core::web_login::PendingLogin) owns the
//!   verifier, the nonce and the state), `client_secret_basic` / `client_secret_post` / `none`
//!   client authentication (a public client, `options.token_auth_method: none`, has no
//!   `app_secret` at all and sends none; a confidential one without it is refused at load),
//!   OAuth scopes (`options.scopes`) and extra authorize parameters. With an `issuer`, the
//!   endpoints come from OIDC discovery (cached), the callback's `iss` is checked (RFC 9207,
//!   required when the provider advertises it), and a returned `id_token` is verified
//!   (signature against the provider's JWKS, refetched once when an unknown key id appears,
//!   `iss`, `aud`/`azp`, `exp`, `nbf`, `nonce`, `at_hash`) before its claims are used; the
//!   discovery document's `issuer` must be the configured one byte for byte; the userinfo
//!   endpoint is optional. RFC 6749 token-endpoint errors become typed errors, and user tokens
//!   can be refreshed. There is no app token ([`Platform::token_key`] is `None`).
//! - **`mode: steps`** ([`Steps`]): an ordered set of HTTP steps (`app_token`, `user_id`,
//!   `user_detail`), each with a method, a URL template (`{app_key}`, `{app_secret}`, `{code}`,
//!   `{access_token}`, `{user_id}`; values URL-encoded, and refused when they would change the
//!   path, such as a `{code}` of `..`), where its parameters go (query, form,
//!   JSON body or headers), a success test (a JSONPath and the value it must have) and the
//!   JSONPaths of the values the next step needs (token and expiry; user id, union id, open id
//!   and organisation id, which the `Sso` checks against `corp_id`). Codes come back to the
//!   `options.authorize_url` redirect. The app token goes through the core token cache like
//!   every other platform's. Which of the platform's error codes mean "token invalid"
//!   (invalidate and retry once), "code invalid", "not in tenant", "rate limited", "transient"
//!   or "misconfigured" is configuration too (`options.errors`). Secrets are only ever
//!   placeholders in the stored configuration. The test kit's `unilogin_testkit::selfbuilt`
//!   fake, with its bundled tenant configuration, is a complete example; it passes the shared
//!   conformance suite.
//!
//! Both end in the mapping engine with the tenant's rules. The defaults
//! ([`DEFAULT_RULES`]) read standard OIDC claims at the top level (`$.sub`, `$.email`, ...);
//! steps-mode tenants usually override them in their `mapping`. The full configuration
//! reference is `docs/platforms/custom-oauth.md`.

mod oidc;
mod steps;

use std::net::IpAddr;
use std::sync::Arc;

use unilogin_core::Result;
use unilogin_core::config::PlatformConfig;
use unilogin_core::platform::{Base, Hosts, InClient, Platform};
use unilogin_core::registry::{PlatformContext, PlatformRegistration};
use url::Url;

pub use oidc::Oidc;
pub use steps::Steps;

/// The platform's registered name.
pub const NAME: &str = "custom-oauth";

/// The default mapping rules (YAML): standard OIDC claims.
pub const DEFAULT_RULES: &str = include_str!("../rules.yaml");

/// No named hosts: every endpoint is a full URL in the tenant's `options`.
const HOSTS: Hosts = &[];

inventory::submit! {
    PlatformRegistration {
        name: NAME,
        description: "Any OAuth2/OIDC provider (PKCE, discovery, id_token) or self-built platform described as HTTP steps",
        default_rules: DEFAULT_RULES,
        user_agent_markers: &[],
        in_client: InClient::None,
        build,
        events: None,
    }
}

/// Builds the handler of a tenant's configuration: [`Oidc`] for `mode: oidc`, [`Steps`] for
/// `mode: steps`. Every configuration problem is reported here, naming the tenant and the field.
pub fn build(ctx: PlatformContext<'_>) -> Result<Arc<dyn Platform>> {
    let config = ctx.config;
    match config.mode.as_deref().map(str::trim) {
        Some("oidc") => Ok(Arc::new(Oidc::new(&ctx)?)),
        Some("steps") => Ok(Arc::new(Steps::new(&ctx)?)),
        Some(other) => {
            Err(config.error("mode", format!("`{other}` is not one of `oidc`, `steps`")))
        }
        None => Err(config.error("mode", "required: `oidc` or `steps`")),
    }
}

/// The handler's common parts. There are no named hosts, so any `hosts` override is refused.
fn base(ctx: &PlatformContext<'_>) -> Result<Base> {
    if let Some(name) = ctx.config.hosts.keys().next() {
        let reason = "custom-oauth has no named hosts: its endpoints are full URLs in `options`";
        return Err(ctx.config.error(&format!("hosts.{name}"), reason));
    }
    Base::new(ctx, HOSTS)
}

/// Checks a configured endpoint URL: `https`, or `http` to a loopback host only (tests, local
/// development), without user info or fragment.
fn check_endpoint(config: &PlatformConfig, field: &str, url: &Url) -> Result<()> {
    endpoint_problem(url).map_or(Ok(()), |reason| Err(config.error(field, reason)))
}

/// What is wrong with an endpoint URL, if anything (see [`check_endpoint`]).
fn endpoint_problem(url: &Url) -> Option<String> {
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
        None => return Some("must have a host".into()),
    };
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        "http" => {
            return Some("must use https (plain http is only accepted for loopback hosts)".into());
        }
        other => return Some(format!("unsupported scheme `{other}`")),
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Some("must not contain user info".into());
    }
    if url.fragment().is_some() {
        return Some("must not contain a fragment".into());
    }
    None
}
