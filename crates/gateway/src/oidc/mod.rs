//! The gateway as an OpenID Provider (`oidc_provider.enabled`, docs/oidc-provider.md): the
//! protocol is `unilogin-provider`'s; this module supplies its [`Host`] from the gateway's own
//! parts — the session cookie and revocation list, the platform logins of `routes::login`, the
//! state store's Redis connection for grants — and its clients from the tenant source
//! ([`clients`]).
//!
//! | route | what |
//! |---|---|
//! | `/.well-known/openid-configuration`, `/oidc/{authorize,token,userinfo,jwks,end_session,resume}` | the provider's ([`Provider::router`]) |
//! | `GET /oidc/login/{tenant}/{platform}?resume=…` | the platform chooser's links: starts that platform's login, back to the provider's resume URL |
//!
//! A login the provider asks for is an ordinary gateway login (H5 page inside the platform's
//! client, web/QR redirect outside) whose return URL is the provider's `/oidc/resume`; the
//! session it ends with is the gateway session, so one platform login signs a person in to the
//! gateway and every relying party. What the platform said of the person is kept with the
//! session ([`Provider::remember_login`]) for the claims of later authorizations.

pub mod clients;

use std::sync::{Arc, OnceLock, Weak};
use std::time::{Duration, UNIX_EPOCH};

use async_trait::async_trait;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use unilogin::{Error, PlatformName, Prepared, TenantId, UserProfile};
use unilogin_axum::session::{Claims, SessionKeys, SigningAlg};
use unilogin_provider::{
    Authenticated, GrantStore, Host, LoginRequest, MemoryGrantStore, Provider, ProviderError,
    Settings,
};
use url::Url;

use crate::app::{Gateway, Inner};
use crate::config::GatewayConfig;
use crate::cookies;
use crate::error::ApiError;
use crate::pages::{self, escape};

/// The provider's paths (the issuer's path is the gateway's root: the routes are mounted there).
pub const PATHS: [&str; 7] = [
    "/.well-known/openid-configuration",
    "/oidc/authorize",
    "/oidc/resume",
    "/oidc/token",
    "/oidc/userinfo",
    "/oidc/jwks",
    "/oidc/end_session",
];

/// The path of the provider's resume endpoint, below the issuer.
const RESUME_PATH: &str = "/oidc/resume";

/// The issuer: `public_url` without its trailing slash.
pub fn issuer_url(config: &GatewayConfig) -> Result<Url, Error> {
    let text = config.public_url.as_str().trim_end_matches('/').to_string();
    Url::parse(&text).map_err(|e| Error::config(None, None, "public_url", e.to_string()))
}

/// The [`Host`] over a gateway: set once the gateway exists (the provider is built first, so
/// the gateway can hold it; the host holds the gateway weakly — no cycle).
#[derive(Default)]
pub(crate) struct GatewayHost {
    gw: OnceLock<Weak<Inner>>,
}

impl GatewayHost {
    pub(crate) fn attach(&self, inner: &Arc<Inner>) {
        let _ = self.gw.set(Arc::downgrade(inner));
    }

    fn gateway(&self) -> Result<Gateway, ProviderError> {
        self.gw
            .get()
            .and_then(Weak::upgrade)
            .map(|inner| Gateway { inner })
            .ok_or_else(|| ProviderError::Server("the gateway is shutting down".into()))
    }
}

fn unavailable(e: &ApiError) -> ProviderError {
    ProviderError::TemporarilyUnavailable(e.message.clone())
}

fn response_of(e: ApiError) -> Response {
    e.html(true).into_response()
}

#[async_trait]
impl Host for GatewayHost {
    async fn session(&self, headers: &HeaderMap) -> Result<Option<Authenticated>, ProviderError> {
        let gw = self.gateway()?;
        let claims = match gw.authenticate(headers).await {
            Ok(c) => c,
            Err(e) if e.status == StatusCode::SERVICE_UNAVAILABLE => return Err(unavailable(&e)),
            Err(_) => return Ok(None),
        };
        let Some(provider) = gw.provider() else {
            return Ok(None);
        };
        // A gateway session whose login the provider did not see (issued before the provider
        // was enabled, or its record expired): no claims to release, so log in again.
        Ok(provider
            .recall_login(&claims.jti)
            .await?
            .filter(|a| a.subject == claims.sub))
    }

    async fn login(&self, request: LoginRequest) -> Result<Response, ProviderError> {
        let gw = self.gateway()?;
        // Inside one of the allowed platforms' clients, that platform: its in-app H5 login
        // runs without a click.
        let inside = || {
            let ua = request
                .headers
                .get(header::USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("");
            let client = unilogin::user_agent::ClientInfo::detect(ua);
            request
                .allowed_platforms
                .iter()
                .find(|p| client.is_inside(p.as_str()))
                .cloned()
        };
        match request.platform.clone().or_else(inside) {
            Some(platform) => Ok(start(
                &gw,
                &request.tenant,
                &platform,
                request.resume,
                &request.headers,
            )
            .await),
            None => Ok(chooser(&request)),
        }
    }

    async fn platforms(&self, tenant: &TenantId) -> Result<Vec<PlatformName>, ProviderError> {
        let gw = self.gateway()?;
        let source = gw.inner.sso.config_source();
        // One lookup per registered platform (a handful), never a walk over every tenant.
        let mut platforms = Vec::new();
        for registration in unilogin::Registry::all() {
            match source.get(tenant, registration.name).await {
                Ok(config) if config.enabled => platforms.push(config.platform.clone()),
                Ok(_)
                | Err(Error::UnknownTenant { .. })
                | Err(Error::PlatformNotConfigured { .. })
                | Err(Error::Disabled { .. }) => {}
                Err(e) => return Err(ProviderError::TemporarilyUnavailable(e.to_string())),
            }
        }
        platforms.sort();
        platforms.dedup();
        Ok(platforms)
    }

    async fn end_session(&self, headers: &HeaderMap) -> Result<HeaderMap, ProviderError> {
        let gw = self.gateway()?;
        let cfg = &gw.inner.config.cookies;
        let mut out = HeaderMap::new();
        if let Some(clear) = cookies::clear(cfg, &cfg.name(&cfg.session_name), "/") {
            out.insert(header::SET_COOKIE, clear);
        }
        // The session is revoked as `POST /logout` revokes it (one path).
        crate::routes::session::revoke_session(&gw, headers).await;
        Ok(out)
    }
}

/// Starts `platform`'s login for `tenant`, back to the provider's `resume` URL.
async fn start(
    gw: &Gateway,
    tenant: &TenantId,
    platform: &PlatformName,
    resume: Url,
    headers: &HeaderMap,
) -> Response {
    let prepared: Prepared = match gw.inner.sso.prepare(tenant, platform.as_str()).await {
        Ok(p) => p,
        Err(e) => return response_of(ApiError::from(e)),
    };
    match crate::routes::login::start_login(gw, &prepared, resume, headers).await {
        Ok(r) => r,
        Err(e) => response_of(e),
    }
}

/// The platform chooser: one link per allowed platform to `/oidc/login/{tenant}/{platform}`.
fn chooser(request: &LoginRequest) -> Response {
    let mut body = String::from("<h1>Sign in</h1>\n<ul>\n");
    for platform in &request.allowed_platforms {
        let mut href = format!("/oidc/login/{}/{}?resume=", request.tenant, platform);
        href.extend(url::form_urlencoded::byte_serialize(
            request.resume.as_str().as_bytes(),
        ));
        body.push_str(&format!(
            "<li><a class=\"login\" id=\"login-{p}\" href=\"{}\">{}</a></li>\n",
            escape(&href),
            escape(platform_label(platform.as_str())),
            p = escape(platform.as_str()),
        ));
    }
    body.push_str("</ul>\n");
    let mut r = pages::html(StatusCode::OK, "Sign in", &body);
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    r
}

/// The platform's name as its registration describes it (the text before the colon of its
/// description: "DingTalk (钉钉)"), else its id.
fn platform_label(platform: &str) -> &str {
    unilogin::Registry::get(platform)
        .ok()
        .and_then(|r| r.description.split(':').next())
        .filter(|l| !l.is_empty())
        .unwrap_or(platform)
}

/// Query of the chooser's links.
#[derive(Debug, Deserialize)]
pub struct ChooseQuery {
    /// The provider's resume URL.
    pub resume: String,
}

/// `GET /oidc/login/{tenant}/{platform}?resume=…`: a chooser link. `resume` must be this
/// gateway's own resume URL (nothing else: no open redirect), the platform one of the tenant's.
pub async fn choose(
    State(gw): State<Gateway>,
    Path((tenant, platform)): Path<(String, String)>,
    query: Result<Query<ChooseQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Response {
    let bad = |why: &str| response_of(ApiError::bad_request("bad_request", why.to_string()));
    let Ok(Query(query)) = query else {
        return bad("`resume` is required");
    };
    let (Ok(tenant), Ok(platform)) = (TenantId::new(&tenant), PlatformName::new(&platform)) else {
        return response_of(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such endpoint",
        ));
    };
    let Some(provider) = gw.provider() else {
        return response_of(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "no such endpoint",
        ));
    };
    let resume = match Url::parse(&query.resume) {
        Ok(u) if is_resume_url(provider, &u) => u,
        _ => return bad("`resume` is not this gateway's sign-in continuation"),
    };
    start(&gw, &tenant, &platform, resume, &headers).await
}

/// Whether `url` is the provider's resume endpoint with one `req` and nothing else.
fn is_resume_url(provider: &Provider, url: &Url) -> bool {
    let Ok(expected) = Url::parse(&provider.endpoint(RESUME_PATH)) else {
        return false;
    };
    let mut pairs = url.query_pairs();
    let one_req = matches!(pairs.next(), Some((k, v)) if k == "req" && !v.is_empty() && v.len() <= 128)
        && pairs.next().is_none();
    url.origin() == expected.origin()
        && url.path() == expected.path()
        && url.fragment().is_none()
        && url.username().is_empty()
        && one_req
}

impl Gateway {
    /// The OpenID Provider, when enabled.
    pub fn provider(&self) -> Option<&Provider> {
        self.inner.provider.as_ref().map(|(p, _)| p)
    }

    /// Keeps the profile of a login that ended in `session` for the provider, so relying
    /// parties signing in during this session get its claims. A store failure is logged:
    /// the gateway login stands, a later authorization logs in again.
    pub(crate) async fn remember_for_provider(&self, profile: &UserProfile, session: &Claims) {
        let Some(provider) = self.provider() else {
            return;
        };
        let (Ok(tenant), Ok(platform)) = (
            TenantId::new(&session.tenant),
            PlatformName::new(&session.platform),
        ) else {
            return;
        };
        let login = Authenticated {
            profile: profile.clone(),
            tenant,
            platform,
            subject: session.sub.clone(),
            account: session.account.clone(),
            auth_time: UNIX_EPOCH + Duration::from_secs(session.iat),
            sid: session.jti.clone(),
        };
        let ttl = Duration::from_secs(session.exp.saturating_sub(session.iat).max(1));
        if let Err(e) = provider.remember_login(&login, ttl).await {
            tracing::warn!(error = %e, "login not recorded for the OpenID Provider; relying parties will ask for a new login");
        }
    }
}

/// The id-token keys: the configured files, and a generated key for every algorithm without one.
fn id_token_keys(config: &GatewayConfig) -> Result<Vec<SessionKeys>, Error> {
    let o = &config.oidc_provider;
    let mut keys = Vec::new();
    for (i, k) in o.signing_keys.iter().enumerate() {
        let field = format!("oidc_provider.signing_keys[{i}].file");
        let pem = std::fs::read_to_string(&k.file).map_err(|e| {
            Error::config(
                None,
                None,
                &field,
                format!("cannot read {}: {}", k.file.display(), e.kind()),
            )
        })?;
        let key = SessionKeys::from_pkcs8_pem(&pem, &k.key_id)
            .map_err(|e| Error::config(None, None, &field, e.to_string()))?;
        if key.alg().as_str() != k.alg {
            return Err(Error::config(
                None,
                None,
                &field,
                format!("holds a {} key, not {}", key.alg(), k.alg),
            ));
        }
        keys.push(key);
    }
    for alg in [SigningAlg::Rs256, SigningAlg::Es256, SigningAlg::EdDSA] {
        if keys.iter().all(|k| k.alg() != alg) {
            if config.redis.url.is_some() {
                tracing::warn!(
                    alg = %alg,
                    "no oidc_provider.signing_keys file for this algorithm: a key was generated, \
                     which other replicas do not share (give every replica the same key files)"
                );
            }
            keys.push(SessionKeys::generate_alg(alg).map_err(Error::from)?);
        }
    }
    Ok(keys)
}

/// The pairwise-subject key: the configured secret, else one derived from the session keys.
fn pairwise_secret(config: &GatewayConfig, session_keys: &SessionKeys) -> Result<[u8; 32], Error> {
    use sha2::{Digest, Sha256};
    match &config.oidc_provider.pairwise_secret {
        Some(reference) => {
            let secret = unilogin::config::SecretRef::parse(reference)
                .resolve(None)
                .map_err(|why| Error::config(None, None, "oidc_provider.pairwise_secret", why))?;
            if secret.expose().len() < 32 {
                return Err(Error::config(
                    None,
                    None,
                    "oidc_provider.pairwise_secret",
                    "must be at least 32 bytes",
                ));
            }
            Ok(Sha256::digest(secret.expose().as_bytes()).into())
        }
        None => Ok(
            Sha256::digest(session_keys.derive_secret("unilogin-gateway oidc pairwise v1")).into(),
        ),
    }
}

/// Everything the provider is built from, once the gateway's parts exist.
pub(crate) struct ProviderParts<'a> {
    pub(crate) config: &'a GatewayConfig,
    pub(crate) clients: Arc<clients::GatewayClients>,
    pub(crate) grants: Option<Arc<dyn GrantStore>>,
    pub(crate) session_keys: &'a SessionKeys,
    pub(crate) access: unilogin_axum::session::SessionIssuer,
    pub(crate) revocations: Arc<dyn unilogin_axum::session::RevocationList>,
}

/// Builds the provider and its host (attach the host to the gateway once it exists).
pub(crate) fn build(parts: ProviderParts<'_>) -> Result<(Provider, Arc<GatewayHost>), Error> {
    let config = parts.config;
    let o = &config.oidc_provider;
    let host = Arc::new(GatewayHost::default());
    let grants = parts
        .grants
        .unwrap_or_else(|| Arc::new(MemoryGrantStore::with_capacity(config.login.max_pending)));
    let mut settings = Settings::default();
    settings.code_ttl = Duration::from_secs(o.code_ttl_secs);
    settings.access_ttl = Duration::from_secs(o.access_token_ttl_secs);
    settings.id_token_ttl = Duration::from_secs(o.id_token_ttl_secs);
    settings.refresh_ttl = Duration::from_secs(o.refresh_token_ttl_secs);
    settings.refresh_idle = Duration::from_secs(o.refresh_token_idle_secs);
    settings.request_ttl = Duration::from_secs(o.request_ttl_secs);
    settings.backchannel.attempts = o.backchannel.attempts;
    settings.backchannel.first_backoff = Duration::from_millis(o.backchannel.first_backoff_ms);
    settings.backchannel.max_backoff = Duration::from_millis(o.backchannel.max_backoff_ms);
    settings.backchannel.queue = o.backchannel.queue;
    settings.backchannel.concurrency = o.backchannel.concurrency;
    let mut builder = Provider::builder(
        issuer_url(config)?,
        parts.clients,
        grants,
        host.clone(),
        parts.access,
        parts.revocations,
    )
    .settings(settings)
    .pairwise_secret(pairwise_secret(config, parts.session_keys)?);
    for keys in id_token_keys(config)? {
        builder = builder.id_token_keys(keys);
    }
    let provider = builder
        .build()
        .map_err(|e| Error::config(None, None, "oidc_provider", e.to_string()))?;
    Ok((provider, host))
}
