//! The platform SDK: what every platform crate would otherwise write again.
//!
//! - [`Base`]: the handler's name, tenant and app key, its named hosts (defaults overridable
//!   per tenant, an unknown host name refused at load), endpoint contexts and URL joining, the
//!   shared HTTP client, the default app-token key.
//! - [`choice`], [`choice_opt`], [`choice_of`]: an option parsed into an enum, with a load-time error naming the tenant and
//!   the field.
//! - [`secret_rejected`]: at a token endpoint, "invalid credential" is a configuration error.
//!
//! ```
//! use unilogin_core::config::PlatformConfig;
//! use unilogin_core::http::{HttpClient, HttpConfig};
//! use unilogin_core::platform::sdk::{Base, choice};
//! use unilogin_core::registry::PlatformContext;
//!
//! #[derive(Debug, Clone, Copy, PartialEq)]
//! enum Api { V2, V1 }
//!
//! let config: PlatformConfig = serde_json::from_value(serde_json::json!({
//!     "tenant": "acme", "platform": "example", "app_key": "k", "app_secret": "s",
//!     "hosts": { "api": "http://127.0.0.1:9000/base" },
//!     "options": { "token_api": "v1" }
//! })).unwrap();
//! let http = HttpClient::new(&HttpConfig::default()).unwrap();
//! let ctx = PlatformContext { config: &config, http: &http };
//! let base = Base::new(&ctx, &[("api", "https://api.example.com/")]).unwrap();
//! assert_eq!(base.url("api", "v1/token").unwrap().as_str(), "http://127.0.0.1:9000/base/v1/token");
//! assert_eq!(choice(&config, "token_api", &[("v2", Api::V2), ("v1", Api::V1)]).unwrap(), Api::V1);
//! let err = choice(&config, "token_api", &[("v3", Api::V2)]).unwrap_err().to_string();
//! assert!(err.contains("acme") && err.contains("options.token_api"), "{err}");
//! ```

use std::fmt;
use std::sync::{Arc, OnceLock};

use reqwest::{Method, RequestBuilder};
use url::Url;

use crate::config::PlatformConfig;
use crate::error::{Error, Result, UpstreamCtx};
use crate::http::HttpClient;
use crate::isv::TicketStore;
use crate::registry::PlatformContext;
use crate::token_cache::{TokenCache, TokenKey};
use crate::types::{AccessToken, AppKey, PlatformName, TenantId};

/// A platform's named hosts and their defaults, e.g. `&[("oapi", "https://oapi.dingtalk.com/")]`.
pub type Hosts = &'static [(&'static str, &'static str)];

/// What every handler holds. Build it first in a platform's `build`, keep it in the handler,
/// return it from [`Platform::base`](super::Platform::base).
#[derive(Clone)]
pub struct Base {
    /// The platform's registered name.
    pub name: PlatformName,
    /// The tenant served.
    pub tenant: TenantId,
    /// The app key / app id / client id.
    pub app_key: AppKey,
    /// The shared HTTP client (timeouts, body limit, redirects off).
    pub http: HttpClient,
    hosts: Vec<(&'static str, Url)>,
    services: OnceLock<Services>,
}

/// What the [`Sso`](crate::sso::Sso) shares with the handlers it prepares, for platforms
/// whose app token is itself a chain of cached tokens (store apps, see [`crate::isv`]): the
/// token cache and the ticket store. Attached once, by [`Sso::prepare`](crate::sso::Sso::prepare),
/// right after the handler is built; a handler built outside an `Sso` has none
/// ([`Base::services`] is then an internal error).
#[derive(Clone)]
pub struct Services {
    /// The token cache every token of the chain is cached in.
    pub token_cache: TokenCache,
    /// Where pushed tickets are kept.
    pub tickets: Arc<dyn TicketStore>,
}

impl fmt::Debug for Services {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Services")
            .field("tickets", &self.tickets)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Base {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Base")
            .field("name", &self.name)
            .field("tenant", &self.tenant)
            .field("app_key", &self.app_key)
            .field(
                "hosts",
                &self
                    .hosts
                    .iter()
                    .map(|(n, u)| (*n, u.as_str()))
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// `url` with a path that ends in `/`, so that joining a relative path appends to it.
fn with_slash(mut url: Url) -> Url {
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    url
}

impl Base {
    /// The common parts of a handler for `ctx`, with the platform's named hosts: each is the
    /// tenant's override (`hosts.<name>`) or the default. An override of a host the platform
    /// does not have is a configuration error (a typo would otherwise reach the real platform).
    pub fn new(ctx: &PlatformContext<'_>, hosts: Hosts) -> Result<Self> {
        let config = ctx.config;
        if let Some(unknown) = config
            .hosts
            .keys()
            .find(|k| !hosts.iter().any(|(n, _)| n == k))
        {
            let known: Vec<&str> = hosts.iter().map(|(n, _)| *n).collect();
            return Err(config.error(
                &format!("hosts.{unknown}"),
                format!(
                    "not a host of this platform (its hosts: {})",
                    known.join(", ")
                ),
            ));
        }
        let hosts = hosts
            .iter()
            .map(|(name, default)| Ok((*name, with_slash(config.host(name, default)?))))
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            name: config.platform.clone(),
            tenant: config.tenant.clone(),
            app_key: config.app_key.clone(),
            http: ctx.http.clone(),
            hosts,
            services: OnceLock::new(),
        })
    }

    /// Attaches the shared [`Services`]; the first attachment wins (a handler serves one
    /// `Sso`). Returns whether this call attached them.
    pub fn attach(&self, services: Services) -> bool {
        self.services.set(services).is_ok()
    }

    /// The shared [`Services`], or [`Error::Internal`] for a handler used outside an
    /// [`Sso`](crate::sso::Sso).
    ///
    /// ```
    /// use unilogin_core::config::PlatformConfig;
    /// use unilogin_core::http::{HttpClient, HttpConfig};
    /// use unilogin_core::isv::MemoryTicketStore;
    /// use unilogin_core::platform::sdk::{Base, Services};
    /// use unilogin_core::registry::PlatformContext;
    /// use unilogin_core::token_cache::TokenCache;
    /// use std::sync::Arc;
    ///
    /// let config: PlatformConfig = serde_json::from_value(serde_json::json!({
    ///     "tenant": "acme", "platform": "example", "app_key": "k", "app_secret": "s",
    /// })).unwrap();
    /// let http = HttpClient::new(&HttpConfig::default()).unwrap();
    /// let base = Base::new(&PlatformContext { config: &config, http: &http }, &[]).unwrap();
    /// assert!(base.services().is_err());
    /// let services = Services { token_cache: TokenCache::new(), tickets: Arc::new(MemoryTicketStore::new()) };
    /// assert!(base.attach(services.clone()));
    /// assert!(!base.attach(services));
    /// assert!(base.services().is_ok());
    /// ```
    pub fn services(&self) -> Result<&Services> {
        self.services.get().ok_or_else(|| {
            Error::Internal(format!(
                "platform `{}`: handler used outside an Sso (no token cache / ticket store attached)",
                self.name
            ))
        })
    }

    /// The context of an upstream call to `endpoint`, for errors and logs.
    pub fn ctx(&self, endpoint: &'static str) -> UpstreamCtx {
        UpstreamCtx::new(Some(self.tenant.clone()), self.name.clone(), endpoint)
    }

    /// The base URL of host `host`.
    pub fn host(&self, host: &str) -> Result<&Url> {
        self.hosts
            .iter()
            .find(|(n, _)| *n == host)
            .map(|(_, u)| u)
            .ok_or_else(|| {
                Error::Internal(format!("platform `{}` has no host `{host}`", self.name))
            })
    }

    /// `path` (relative, no leading `/`) on host `host`.
    pub fn url(&self, host: &str, path: &str) -> Result<Url> {
        self.host(host)?.join(path).map_err(|e| {
            Error::config(
                Some(&self.tenant),
                Some(self.name.as_str()),
                format!("hosts.{host}"),
                e.to_string(),
            )
        })
    }

    /// A request to `path` on host `host`.
    pub fn request(&self, method: Method, host: &str, path: &str) -> Result<RequestBuilder> {
        Ok(self.http.request(method, self.url(host, path)?))
    }

    /// The app token's cache key: platform, tenant, app key and, where one app key holds
    /// several apps (WeCom's corpid), the app inside it.
    pub fn token_key(&self, agent: Option<&str>) -> TokenKey {
        TokenKey::new(&self.name, &self.tenant, self.app_key.as_str(), agent)
    }

    /// The app token a step was given; a handler with a token key is always given one, so
    /// `None` is an internal error.
    pub fn app_token<'a>(&self, token: Option<&'a AccessToken>) -> Result<&'a AccessToken> {
        token.ok_or_else(|| {
            Error::Internal(format!(
                "platform `{}`: step called without its app token",
                self.name
            ))
        })
    }

    /// The error of an operation this platform does not offer.
    pub fn unsupported(&self, operation: &'static str) -> Error {
        super::unsupported(&self.name, operation)
    }
}

/// The option `options.<name>` as one of `choices` (`(value, variant)`); absent means the
/// first. Anything else is a configuration error naming the tenant, the field and the choices.
pub fn choice<T: Copy>(config: &PlatformConfig, name: &str, choices: &[(&str, T)]) -> Result<T> {
    let Some(&(_, default)) = choices.first() else {
        return Err(Error::Internal(format!("option `{name}` has no choices")));
    };
    Ok(choice_opt(config, name, choices)?.unwrap_or(default))
}

/// The option `options.<name>` as one of `choices`, or `None` when absent (an option without
/// a default, such as a page language).
pub fn choice_opt<T: Copy>(
    config: &PlatformConfig,
    name: &str,
    choices: &[(&str, T)],
) -> Result<Option<T>> {
    let value = config.option_str(name)?;
    choice_of(config, &format!("options.{name}"), value, choices)
}

/// `value` (found at `field` of the configuration, for example `options.steps[2].method`) as
/// one of `choices`, or `None` when absent; anything else is a configuration error naming the
/// tenant, the field and the choices (the value is clipped: it may be a misplaced secret).
pub fn choice_of<T: Clone>(
    config: &PlatformConfig,
    field: &str,
    value: Option<&str>,
    choices: &[(&str, T)],
) -> Result<Option<T>> {
    let Some(v) = value else {
        return Ok(None);
    };
    choices
        .iter()
        .find(|(k, _)| *k == v)
        .map(|(_, t)| Some(t.clone()))
        .ok_or_else(|| {
            let names: Vec<String> = choices.iter().map(|(k, _)| format!("`{k}`")).collect();
            config.error(
                field,
                format!(
                    "`{}` is not one of {}",
                    v.chars().take(64).collect::<String>(),
                    names.join(", ")
                ),
            )
        })
}

/// Maps [`Error::TokenInvalid`] to [`Error::Misconfigured`] with `hint`: at a token endpoint
/// "invalid credential" means the configured secret is wrong, not that a token is stale.
///
/// ```
/// use unilogin_core::{Error, PlatformName, UpstreamCode, UpstreamCtx};
/// use unilogin_core::platform::sdk::secret_rejected;
/// let ctx = UpstreamCtx::new(None, PlatformName::new("x").unwrap(), "gettoken");
/// let e = secret_rejected("check app_secret")(Error::TokenInvalid { ctx, code: UpstreamCode::Number(40001) });
/// assert!(matches!(e, Error::Misconfigured { .. }));
/// ```
pub fn secret_rejected(hint: &'static str) -> impl Fn(Error) -> Error {
    move |e| match e {
        Error::TokenInvalid { ctx, code } => Error::Misconfigured {
            ctx,
            code,
            hint: hint.into(),
        },
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::HttpConfig;

    fn base(hosts: serde_json::Value) -> Result<Base> {
        let config: PlatformConfig = serde_json::from_value(serde_json::json!({
            "tenant": "acme", "platform": "example", "app_key": "k", "app_secret": "s",
            "hosts": hosts,
        }))
        .unwrap();
        let http = HttpClient::new(&HttpConfig::default()).unwrap();
        Base::new(
            &PlatformContext {
                config: &config,
                http: &http,
            },
            &[
                ("api", "https://api.example.com/"),
                ("login", "https://login.example.com"),
            ],
        )
    }

    #[test]
    fn hosts_default_override_and_refuse_unknown_names() {
        let b = base(serde_json::json!({})).unwrap();
        assert_eq!(
            b.url("api", "a/b").unwrap().as_str(),
            "https://api.example.com/a/b"
        );
        assert_eq!(
            b.url("login", "x").unwrap().as_str(),
            "https://login.example.com/x"
        );
        let b = base(serde_json::json!({"login": "http://127.0.0.1:1/p"})).unwrap();
        assert_eq!(
            b.url("login", "x").unwrap().as_str(),
            "http://127.0.0.1:1/p/x"
        );
        assert!(matches!(b.url("nope", "x"), Err(Error::Internal(_))));
        let e = base(serde_json::json!({"apii": "http://127.0.0.1:1/"})).unwrap_err();
        assert!(
            matches!(&e, Error::Config { field, .. } if field == "hosts.apii"),
            "{e:?}"
        );
        assert!(e.to_string().contains("api, login"), "{e}");
    }

    #[test]
    fn missing_app_token_is_internal_not_a_panic() {
        let b = base(serde_json::json!({})).unwrap();
        assert!(matches!(b.app_token(None), Err(Error::Internal(_))));
        let t = AccessToken::new("t");
        assert_eq!(b.app_token(Some(&t)).unwrap().expose(), "t");
    }
}
