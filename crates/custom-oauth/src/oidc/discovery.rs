//! Where the provider's endpoints come from: the configuration, or OIDC discovery (cached for
//! `discovery_ttl`; a failed refresh keeps using the previous document). Discovery also tells
//! whether the provider puts `iss` on its authorization responses (RFC 9207).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::Method;
use reqwest::header::ACCEPT;
use serde::Deserialize;
use serde_json::Value;
use unilogin_core::platform::{Base, IssuerPolicy};
use unilogin_core::{Error, Result, UpstreamCode};
use url::Url;

use super::options::{Explicit, Options};
use super::token::http_error;
use crate::endpoint_problem;

const DISCOVERY_HINT: &str = "the discovery document lacks a required endpoint or names an unacceptable one: check options.issuer";

/// The hint of an issuer mismatch, naming both issuers (each cut to 200 characters, quoted).
fn issuer_mismatch_hint(configured: &str, discovered: &str) -> String {
    let cut = |s: &str| s.chars().take(200).collect::<String>();
    format!(
        "the discovery document's issuer {:?} is not options.issuer {:?} byte for byte (OIDC Discovery 4.3; a trailing `/` counts): set options.issuer to the provider's issuer exactly",
        cut(discovered),
        cut(configured)
    )
}

/// The provider's endpoints, configured or discovered.
#[derive(Debug, Clone)]
pub(super) struct Endpoints {
    /// The discovered issuer (`None` without discovery).
    pub issuer: Option<String>,
    /// `authorization_response_iss_parameter_supported` (RFC 9207).
    pub iss_parameter: bool,
    pub authorization: Url,
    pub token: Url,
    pub userinfo: Option<Url>,
    pub jwks: Option<Url>,
}

impl Endpoints {
    /// What the callback's `iss` must be, when the provider has an issuer.
    pub(super) fn issuer_policy(&self) -> Option<IssuerPolicy> {
        self.issuer.clone().map(|issuer| IssuerPolicy {
            issuer,
            required: self.iss_parameter,
        })
    }
}

#[derive(Debug, Deserialize)]
struct Document {
    issuer: String,
    authorization_endpoint: Url,
    token_endpoint: Url,
    #[serde(default)]
    userinfo_endpoint: Option<Url>,
    #[serde(default)]
    jwks_uri: Option<Url>,
    #[serde(default)]
    authorization_response_iss_parameter_supported: Option<Value>,
}

/// A discovered document and when it was fetched.
type Cached = Option<(Instant, Arc<Endpoints>)>;

/// The endpoints of one tenant's provider.
#[derive(Debug)]
pub(super) struct Provider {
    issuer: Option<String>,
    explicit: Explicit,
    /// The endpoints when there is no issuer (nothing to discover).
    fixed: Option<Arc<Endpoints>>,
    ttl: Duration,
    discovered: Mutex<Cached>,
}

impl Provider {
    pub(super) fn new(options: &Options) -> Self {
        let e = &options.endpoints;
        let fixed = match (&options.issuer, &e.authorization, &e.token) {
            (None, Some(authorization), Some(token)) => Some(Arc::new(Endpoints {
                issuer: None,
                iss_parameter: false,
                authorization: authorization.clone(),
                token: token.clone(),
                userinfo: e.userinfo.clone(),
                jwks: e.jwks.clone(),
            })),
            _ => None,
        };
        Self {
            issuer: options.issuer.clone(),
            explicit: e.clone(),
            fixed,
            ttl: options.discovery_ttl,
            discovered: Mutex::new(None),
        }
    }

    fn cached(&self) -> Result<std::sync::MutexGuard<'_, Cached>> {
        self.discovered
            .lock()
            .map_err(|_| Error::Internal("discovery cache lock poisoned".into()))
    }

    /// The endpoints: configured, or discovered.
    pub(super) async fn endpoints(&self, base: &Base) -> Result<Arc<Endpoints>> {
        if let Some(fixed) = &self.fixed {
            return Ok(fixed.clone());
        }
        let cached = self.cached()?.clone();
        if let Some((at, ep)) = &cached
            && at.elapsed() < self.ttl
        {
            return Ok(ep.clone());
        }
        match self.discover(base).await {
            Ok(ep) => {
                let ep = Arc::new(ep);
                *self.cached()? = Some((Instant::now(), ep.clone()));
                Ok(ep)
            }
            Err(e) => match cached {
                Some((_, stale)) => {
                    tracing::warn!(error = %e, "OIDC discovery refresh failed; keeping the previous document");
                    Ok(stale)
                }
                None => Err(e),
            },
        }
    }

    async fn discover(&self, base: &Base) -> Result<Endpoints> {
        let ctx = base.ctx("discovery");
        let issuer = self
            .issuer
            .as_deref()
            .ok_or_else(|| Error::Internal("discovery without an issuer".into()))?;
        let url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let url = Url::parse(&url).map_err(|e| {
            Error::config(
                Some(&base.tenant),
                Some(base.name.as_str()),
                "options.issuer",
                e.to_string(),
            )
        })?;
        let request = base
            .http
            .request(Method::GET, url)
            .header(ACCEPT, "application/json");
        let response = base.http.send(&ctx, request).await?;
        if !response.is_success() {
            return Err(http_error(&ctx, &response));
        }
        let doc: Document = response.decode(&ctx)?;
        let misconfigured = |what: String| Error::Misconfigured {
            ctx: ctx.clone(),
            code: UpstreamCode::Text(what),
            hint: DISCOVERY_HINT.into(),
        };
        // OIDC Discovery 4.3: the document's issuer is the configured one, byte for byte (a
        // trailing `/` is a different issuer, and id_tokens carry it exactly).
        if doc.issuer != issuer {
            return Err(Error::Misconfigured {
                ctx: ctx.clone(),
                code: UpstreamCode::Text("issuer_mismatch".into()),
                hint: issuer_mismatch_hint(issuer, &doc.issuer),
            });
        }
        let urls = [Some(&doc.authorization_endpoint), Some(&doc.token_endpoint)];
        let optional = [doc.userinfo_endpoint.as_ref(), doc.jwks_uri.as_ref()];
        if let Some(problem) = urls
            .into_iter()
            .chain(optional)
            .flatten()
            .find_map(endpoint_problem)
        {
            return Err(misconfigured(format!("endpoint {problem}")));
        }
        let c = &self.explicit;
        Ok(Endpoints {
            issuer: Some(doc.issuer),
            iss_parameter: doc.authorization_response_iss_parameter_supported
                == Some(Value::Bool(true)),
            authorization: c
                .authorization
                .clone()
                .unwrap_or(doc.authorization_endpoint),
            token: c.token.clone().unwrap_or(doc.token_endpoint),
            userinfo: c.userinfo.clone().or(doc.userinfo_endpoint),
            jwks: c.jwks.clone().or(doc.jwks_uri),
        })
    }
}
