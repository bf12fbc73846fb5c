//! The `options` of an OIDC tenant, typed and checked once when the handler is built (see
//! docs/platforms/custom-oauth.md).

use std::collections::BTreeMap;
use std::time::Duration;

use jsonwebtoken::Algorithm;
use serde::Deserialize;
use serde_json::Value;
use unilogin_core::Result;
use unilogin_core::config::PlatformConfig;
use unilogin_core::platform::sdk::choice;
use url::Url;

use crate::check_endpoint;

/// Parameters the handler sets itself; `authorize_params` may not override them.
const RESERVED: &[&str] = &[
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "nonce",
    "code_challenge",
    "code_challenge_method",
];

/// The accepted `id_token` signing algorithms: asymmetric only.
const ALGORITHMS: &[(&str, Algorithm)] = &[
    ("RS256", Algorithm::RS256),
    ("RS384", Algorithm::RS384),
    ("RS512", Algorithm::RS512),
    ("PS256", Algorithm::PS256),
    ("PS384", Algorithm::PS384),
    ("PS512", Algorithm::PS512),
    ("ES256", Algorithm::ES256),
    ("ES384", Algorithm::ES384),
    ("EdDSA", Algorithm::EdDSA),
];

/// How the client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AuthMethod {
    /// HTTP Basic with the form-urlencoded client id and secret (RFC 6749 §2.3.1).
    Basic,
    /// `client_id` and `client_secret` in the form body.
    Post,
    /// A public client: `client_id` only.
    None,
}

/// Endpoints given in the configuration (they override discovered ones).
#[derive(Debug, Clone, Default)]
pub(super) struct Explicit {
    pub authorization: Option<Url>,
    pub token: Option<Url>,
    pub userinfo: Option<Url>,
    pub jwks: Option<Url>,
}

/// The checked options.
#[derive(Debug)]
pub(super) struct Options {
    pub issuer: Option<String>,
    pub endpoints: Explicit,
    pub auth: AuthMethod,
    /// The OAuth scopes, space-separated.
    pub scope: String,
    pub pkce: bool,
    pub authorize_params: Vec<(String, String)>,
    pub userinfo: Option<bool>,
    pub require_id_token: bool,
    pub algorithms: Vec<Algorithm>,
    pub leeway: u64,
    pub discovery_ttl: Duration,
    pub jwks_ttl: Duration,
    pub jwks_refetch_interval: Duration,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Scopes {
    One(String),
    Many(Vec<String>),
}

const fn yes() -> bool {
    true
}
const fn sixty() -> u64 {
    60
}
const fn hour() -> u64 {
    3600
}
const fn ten() -> u64 {
    10
}

/// The options as written (`token_auth_method` is read with [`choice`]).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    #[serde(default)]
    issuer: Option<String>,
    #[serde(default)]
    authorization_endpoint: Option<Url>,
    #[serde(default)]
    token_endpoint: Option<Url>,
    #[serde(default)]
    userinfo_endpoint: Option<Url>,
    #[serde(default)]
    jwks_uri: Option<Url>,
    #[serde(default)]
    scopes: Option<Scopes>,
    #[serde(default = "yes")]
    pkce: bool,
    #[serde(default)]
    authorize_params: BTreeMap<String, String>,
    #[serde(default)]
    userinfo: Option<bool>,
    #[serde(default)]
    require_id_token: Option<bool>,
    #[serde(default)]
    id_token_algorithms: Option<Vec<String>>,
    #[serde(default = "sixty")]
    clock_skew_seconds: u64,
    #[serde(default = "hour")]
    discovery_ttl_seconds: u64,
    #[serde(default = "hour")]
    jwks_ttl_seconds: u64,
    #[serde(default = "ten")]
    jwks_refetch_interval_seconds: u64,
}

impl Options {
    /// Reads and checks the options of `config`; every problem names its field.
    pub(super) fn parse(config: &PlatformConfig) -> Result<Self> {
        let auth = choice(
            config,
            "token_auth_method",
            &[
                ("client_secret_basic", AuthMethod::Basic),
                ("client_secret_post", AuthMethod::Post),
                ("none", AuthMethod::None),
            ],
        )?;
        let mut rest = config.options.clone();
        rest.remove("token_auth_method");
        let raw: Raw = serde_json::from_value(Value::Object(rest))
            .map_err(|e| config.error("options", format!("{e} (mode `oidc`)")))?;
        let issuer = issuer(config, raw.issuer.as_deref())?;
        let endpoints = Explicit {
            authorization: raw.authorization_endpoint,
            token: raw.token_endpoint,
            userinfo: raw.userinfo_endpoint,
            jwks: raw.jwks_uri,
        };
        for (field, url) in [
            ("options.authorization_endpoint", &endpoints.authorization),
            ("options.token_endpoint", &endpoints.token),
            ("options.userinfo_endpoint", &endpoints.userinfo),
            ("options.jwks_uri", &endpoints.jwks),
        ] {
            if let Some(url) = url {
                check_endpoint(config, field, url)?;
            }
        }
        if issuer.is_none() {
            for (field, url) in [
                ("options.authorization_endpoint", &endpoints.authorization),
                ("options.token_endpoint", &endpoints.token),
            ] {
                if url.is_none() {
                    let reason = "required without options.issuer (nothing to discover)";
                    return Err(config.error(field, reason));
                }
            }
        }
        let scopes: Vec<String> = match raw.scopes {
            None => vec!["openid".into(), "profile".into(), "email".into()],
            Some(Scopes::One(s)) => s.split_whitespace().map(str::to_string).collect(),
            Some(Scopes::Many(v)) => v.into_iter().map(|s| s.trim().to_string()).collect(),
        };
        if scopes.is_empty() || scopes.iter().any(|s| s.is_empty() || s.contains(' ')) {
            return Err(config.error(
                "options.scopes",
                "must be a non-empty list of scopes without spaces",
            ));
        }
        if let Some(key) = raw
            .authorize_params
            .keys()
            .find(|k| RESERVED.contains(&k.as_str()))
        {
            return Err(config.error(
                &format!("options.authorize_params.{key}"),
                "is set by the handler and cannot be overridden",
            ));
        }
        let algorithms = algorithms(config, raw.id_token_algorithms.as_deref())?;
        let openid = scopes.iter().any(|s| s == "openid");
        let require_id_token = raw.require_id_token.unwrap_or(openid && issuer.is_some());
        let options = Self {
            issuer,
            endpoints,
            auth,
            scope: scopes.join(" "),
            pkce: raw.pkce,
            authorize_params: raw.authorize_params.into_iter().collect(),
            userinfo: raw.userinfo,
            require_id_token,
            algorithms,
            leeway: raw.clock_skew_seconds.min(600),
            discovery_ttl: Duration::from_secs(raw.discovery_ttl_seconds.max(1)),
            jwks_ttl: Duration::from_secs(raw.jwks_ttl_seconds.max(1)),
            jwks_refetch_interval: Duration::from_secs(raw.jwks_refetch_interval_seconds),
        };
        options.check_sources(config)?;
        Ok(options)
    }

    /// Checks that the user can come from somewhere (a verifiable id_token or userinfo) and
    /// that a confidential client has its secret.
    fn check_sources(&self, config: &PlatformConfig) -> Result<()> {
        let no_issuer = self.issuer.is_none();
        let problem = if self.require_id_token && no_issuer {
            Some((
                "options.require_id_token",
                "verifying an id_token needs options.issuer (its `iss` and JWKS)",
            ))
        } else if self.userinfo == Some(true) && no_issuer && self.endpoints.userinfo.is_none() {
            Some((
                "options.userinfo_endpoint",
                "required when options.userinfo is true and there is no options.issuer",
            ))
        } else if no_issuer && self.endpoints.userinfo.is_none() {
            Some((
                "options.userinfo_endpoint",
                "without options.issuer no id_token can be verified, so the user must come from the userinfo endpoint",
            ))
        } else if self.userinfo == Some(false) && !self.require_id_token {
            Some((
                "options.userinfo",
                "with userinfo off the user comes from the id_token: set options.require_id_token (and options.issuer)",
            ))
        } else if config.app_secret.expose().trim().is_empty() && self.auth != AuthMethod::None {
            Some((
                "app_secret",
                "required for a confidential client (client_secret_basic / client_secret_post); a public client sets options.token_auth_method: none and has no secret",
            ))
        } else {
            None
        };
        problem.map_or(Ok(()), |(field, reason)| Err(config.error(field, reason)))
    }
}

/// `options.issuer`, trimmed: an endpoint URL without a query.
fn issuer(config: &PlatformConfig, raw: Option<&str>) -> Result<Option<String>> {
    let Some(issuer) = raw.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let url = Url::parse(issuer)
        .map_err(|e| config.error("options.issuer", format!("not a URL: {e}")))?;
    check_endpoint(config, "options.issuer", &url)?;
    if url.query().is_some() {
        return Err(config.error("options.issuer", "must not contain a query"));
    }
    Ok(Some(issuer.to_string()))
}

/// `options.id_token_algorithms` (default `[RS256]`).
fn algorithms(config: &PlatformConfig, names: Option<&[String]>) -> Result<Vec<Algorithm>> {
    let Some(names) = names else {
        return Ok(vec![Algorithm::RS256]);
    };
    if names.is_empty() {
        return Err(config.error("options.id_token_algorithms", "must not be empty"));
    }
    names
        .iter()
        .map(|name| {
            let name = name.trim();
            ALGORITHMS
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, a)| *a)
                .ok_or_else(|| {
                    config.error(
                        "options.id_token_algorithms",
                        format!(
                            "`{name}` is not an accepted id_token algorithm (asymmetric only: RS256/384/512, PS256/384/512, ES256/384, EdDSA)"
                        ),
                    )
                })
        })
        .collect()
}
