//! `mode: oidc`: a standard OAuth2 / OpenID Connect provider.

mod jwks;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use jsonwebtoken::Algorithm;
use reqwest::Method;
use reqwest::header::{ACCEPT, AUTHORIZATION};
use serde::Deserialize;
use serde_json::{Map, Value};
use unilogin_core::config::PlatformConfig;
use unilogin_core::envelope::{self, fail, message_at, str_at};
use unilogin_core::error::{BadBody, IdTokenProblem};
use unilogin_core::http::{HttpClient, UpstreamResponse};
use unilogin_core::platform::{AuthorizeRequest, Identity, Platform, UserToken, WebCallback};
use unilogin_core::token_cache::{FetchedToken, TokenKey};
use unilogin_core::{
    AccessToken, AppKey, AppSecret, AuthCode, Error, ErrorClass, PlatformName, RefreshToken,
    Result, TenantId, UpstreamCode, UpstreamCtx,
};
use url::Url;

use crate::{check_endpoint, endpoint_problem};
use jwks::{Expectations, JwksCache};

const CLIENT_HINT: &str = "the provider rejected the client: check app_key (client id), app_secret (client secret), options.token_auth_method and the redirect URI registered with the provider";
const SCOPE_HINT: &str = "the provider refused the requested scopes or grant: check options.scopes and the grant types enabled for the client";
const DISCOVERY_HINT: &str = "the discovery document does not belong to options.issuer (its `issuer` differs) or lacks a required endpoint: check options.issuer";

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

fn yes() -> bool {
    true
}
fn sixty() -> u64 {
    60
}
fn hour() -> u64 {
    3600
}
fn ten() -> u64 {
    10
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Scopes {
    One(String),
    Many(Vec<String>),
}

/// The `options` of an OIDC tenant (see docs/platforms/custom-oauth.md).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Options {
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
    token_auth_method: Option<String>,
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

/// How the client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AuthMethod {
    /// HTTP Basic with the form-urlencoded client id and secret (RFC 6749 §2.3.1).
    Basic,
    /// `client_id` and `client_secret` in the form body.
    Post,
    /// A public client: `client_id` only.
    None,
}

/// The provider's endpoints, configured or discovered.
#[derive(Debug, Clone)]
struct Endpoints {
    issuer: Option<String>,
    authorization: Url,
    token: Url,
    userinfo: Option<Url>,
    jwks: Option<Url>,
}

#[derive(Debug, Deserialize)]
struct Discovery {
    issuer: String,
    authorization_endpoint: Url,
    token_endpoint: Url,
    #[serde(default)]
    userinfo_endpoint: Option<Url>,
    #[serde(default)]
    jwks_uri: Option<Url>,
}

#[derive(Debug, Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    token_type: Option<String>,
    #[serde(default)]
    refresh_token: Option<String>,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    id_token: Option<String>,
    #[serde(default)]
    expires_in: Option<Value>,
}

impl TokenResponse {
    /// `expires_in` as a lifetime (a number or a numeric string; absent or `0`: unknown).
    fn lifetime(&self) -> Option<Duration> {
        self.expires_in
            .as_ref()
            .and_then(envelope::numeric)
            .filter(|s| *s > 0)
            .map(|s| Duration::from_secs(s as u64))
    }

    fn user_token(&self) -> UserToken {
        UserToken {
            access_token: AccessToken::new(self.access_token.clone()),
            refresh_token: self.refresh_token.clone().map(RefreshToken::new),
            expires_in: self.lifetime(),
            refresh_expires_in: None,
            scope: self.scope.clone(),
        }
    }
}

/// The handler of an OAuth2 / OIDC tenant (`mode: oidc`).
#[derive(Debug)]
pub struct Oidc {
    name: PlatformName,
    tenant: TenantId,
    client_id: AppKey,
    client_secret: AppSecret,
    http: HttpClient,
    issuer: Option<String>,
    /// Endpoints given in the configuration (override discovered ones).
    configured: Explicit,
    /// The endpoints when there is no issuer (nothing to discover).
    fixed: Option<Arc<Endpoints>>,
    auth: AuthMethod,
    scope: String,
    pkce: bool,
    authorize_params: Vec<(String, String)>,
    userinfo: Option<bool>,
    require_id_token: bool,
    algorithms: Vec<Algorithm>,
    leeway: u64,
    discovery_ttl: Duration,
    discovered: Mutex<Option<(Instant, Arc<Endpoints>)>>,
    jwks: JwksCache,
}

#[derive(Debug, Clone, Default)]
struct Explicit {
    authorization: Option<Url>,
    token: Option<Url>,
    userinfo: Option<Url>,
    jwks: Option<Url>,
}

impl Oidc {
    /// Builds the handler from a tenant's configuration (`mode: oidc`), validating it.
    pub fn new(config: &PlatformConfig, http: HttpClient) -> Result<Self> {
        let options: Options = serde_json::from_value(Value::Object(config.options.clone()))
            .map_err(|e| config.error("options", format!("{e} (mode `oidc`)")))?;
        let issuer = options
            .issuer
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string);
        if let Some(issuer) = &issuer {
            let url = Url::parse(issuer)
                .map_err(|e| config.error("options.issuer", format!("not a URL: {e}")))?;
            check_endpoint(config, "options.issuer", &url)?;
            if url.query().is_some() {
                return Err(config.error("options.issuer", "must not contain a query"));
            }
        }
        let configured = Explicit {
            authorization: options.authorization_endpoint,
            token: options.token_endpoint,
            userinfo: options.userinfo_endpoint,
            jwks: options.jwks_uri,
        };
        for (field, url) in [
            ("options.authorization_endpoint", &configured.authorization),
            ("options.token_endpoint", &configured.token),
            ("options.userinfo_endpoint", &configured.userinfo),
            ("options.jwks_uri", &configured.jwks),
        ] {
            if let Some(url) = url {
                check_endpoint(config, field, url)?;
            }
        }
        let fixed = match &issuer {
            Some(_) => None,
            None => {
                let missing = |field: &str| {
                    config.error(
                        &format!("options.{field}"),
                        "required without options.issuer (nothing to discover)",
                    )
                };
                Some(Arc::new(Endpoints {
                    issuer: None,
                    authorization: configured
                        .authorization
                        .clone()
                        .ok_or_else(|| missing("authorization_endpoint"))?,
                    token: configured
                        .token
                        .clone()
                        .ok_or_else(|| missing("token_endpoint"))?,
                    userinfo: configured.userinfo.clone(),
                    jwks: configured.jwks.clone(),
                }))
            }
        };
        let auth = match options.token_auth_method.as_deref().map(str::trim) {
            None | Some("client_secret_basic") => AuthMethod::Basic,
            Some("client_secret_post") => AuthMethod::Post,
            Some("none") => AuthMethod::None,
            Some(other) => {
                return Err(config.error(
                    "options.token_auth_method",
                    format!(
                        "unknown client authentication method `{other}`: use `client_secret_basic`, `client_secret_post` or `none`"
                    ),
                ));
            }
        };
        let scopes: Vec<String> = match options.scopes {
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
        let openid = scopes.iter().any(|s| s == "openid");
        for key in options.authorize_params.keys() {
            if RESERVED.contains(&key.as_str()) {
                return Err(config.error(
                    &format!("options.authorize_params.{key}"),
                    "is set by the handler and cannot be overridden",
                ));
            }
        }
        let algorithms = match &options.id_token_algorithms {
            None => vec![Algorithm::RS256],
            Some(names) => names
                .iter()
                .map(|n| parse_algorithm(n.trim()))
                .collect::<std::result::Result<Vec<_>, _>>()
                .map_err(|reason| config.error("options.id_token_algorithms", reason))?,
        };
        if algorithms.is_empty() {
            return Err(config.error("options.id_token_algorithms", "must not be empty"));
        }
        let require_id_token = options
            .require_id_token
            .unwrap_or(openid && issuer.is_some());
        if require_id_token && issuer.is_none() {
            return Err(config.error(
                "options.require_id_token",
                "verifying an id_token needs options.issuer (its `iss` and JWKS)",
            ));
        }
        if options.userinfo == Some(true) && issuer.is_none() && configured.userinfo.is_none() {
            return Err(config.error(
                "options.userinfo_endpoint",
                "required when options.userinfo is true and there is no options.issuer",
            ));
        }
        if issuer.is_none() && configured.userinfo.is_none() {
            return Err(config.error(
                "options.userinfo_endpoint",
                "without options.issuer no id_token can be verified, so the user must come from the userinfo endpoint",
            ));
        }
        if options.userinfo == Some(false) && !require_id_token {
            return Err(config.error(
                "options.userinfo",
                "with userinfo off the user comes from the id_token: set options.require_id_token (and options.issuer)",
            ));
        }
        if config.app_secret.expose().trim().is_empty() && auth != AuthMethod::None {
            return Err(config.error(
                "app_secret",
                "required for a confidential client (client_secret_basic / client_secret_post); a public client sets options.token_auth_method: none and has no secret",
            ));
        }
        Ok(Self {
            name: config.platform.clone(),
            tenant: config.tenant.clone(),
            client_id: config.app_key.clone(),
            client_secret: config.app_secret.clone(),
            http,
            issuer,
            configured,
            fixed,
            auth,
            scope: scopes.join(" "),
            pkce: options.pkce,
            authorize_params: options.authorize_params.into_iter().collect(),
            userinfo: options.userinfo,
            require_id_token,
            algorithms,
            leeway: options.clock_skew_seconds.min(600),
            discovery_ttl: Duration::from_secs(options.discovery_ttl_seconds.max(1)),
            discovered: Mutex::new(None),
            jwks: JwksCache::new(
                Duration::from_secs(options.jwks_ttl_seconds.max(1)),
                Duration::from_secs(options.jwks_refetch_interval_seconds),
            ),
        })
    }

    fn ctx(&self, endpoint: &'static str) -> UpstreamCtx {
        UpstreamCtx::new(Some(self.tenant.clone()), self.name.clone(), endpoint)
    }

    fn cached_endpoints(&self) -> Result<Option<(Instant, Arc<Endpoints>)>> {
        Ok(self
            .discovered
            .lock()
            .map_err(|_| Error::Internal("discovery cache lock poisoned".into()))?
            .clone())
    }

    /// The endpoints: configured, or discovered (cached for `discovery_ttl`; a failed refresh
    /// keeps using the previous document).
    async fn endpoints(&self) -> Result<Arc<Endpoints>> {
        if let Some(fixed) = &self.fixed {
            return Ok(fixed.clone());
        }
        let cached = self.cached_endpoints()?;
        if let Some((at, ep)) = &cached
            && at.elapsed() < self.discovery_ttl
        {
            return Ok(ep.clone());
        }
        match self.discover().await {
            Ok(ep) => {
                let ep = Arc::new(ep);
                *self
                    .discovered
                    .lock()
                    .map_err(|_| Error::Internal("discovery cache lock poisoned".into()))? =
                    Some((Instant::now(), ep.clone()));
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

    async fn discover(&self) -> Result<Endpoints> {
        let ctx = self.ctx("discovery");
        let issuer = self
            .issuer
            .as_deref()
            .ok_or_else(|| Error::Internal("discovery without an issuer".into()))?;
        let url = Url::parse(&format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        ))
        .map_err(|e| {
            Error::config(
                Some(&self.tenant),
                Some(self.name.as_str()),
                "options.issuer",
                e.to_string(),
            )
        })?;
        let response = self
            .http
            .send(
                &ctx,
                self.http
                    .request(Method::GET, url)
                    .header(ACCEPT, "application/json"),
            )
            .await?;
        if !response.is_success() {
            return Err(http_error(&ctx, &response));
        }
        let doc: Discovery = response.decode(&ctx)?;
        let misconfigured = |what: String| Error::Misconfigured {
            ctx: ctx.clone(),
            code: UpstreamCode::Text(what),
            hint: DISCOVERY_HINT.into(),
        };
        if doc.issuer.trim_end_matches('/') != issuer.trim_end_matches('/') {
            return Err(misconfigured("issuer_mismatch".into()));
        }
        for url in [
            Some(&doc.authorization_endpoint),
            Some(&doc.token_endpoint),
            doc.userinfo_endpoint.as_ref(),
            doc.jwks_uri.as_ref(),
        ]
        .into_iter()
        .flatten()
        {
            if let Some(problem) = endpoint_problem(url) {
                return Err(misconfigured(format!("endpoint {problem}")));
            }
        }
        let c = &self.configured;
        Ok(Endpoints {
            issuer: Some(doc.issuer),
            authorization: c
                .authorization
                .clone()
                .unwrap_or(doc.authorization_endpoint),
            token: c.token.clone().unwrap_or(doc.token_endpoint),
            userinfo: c.userinfo.clone().or(doc.userinfo_endpoint),
            jwks: c.jwks.clone().or(doc.jwks_uri),
        })
    }

    /// Calls the token endpoint with a grant; RFC 6749 §5.2 errors become typed errors.
    async fn token_request(
        &self,
        ep: &Endpoints,
        mut form: Vec<(&'static str, String)>,
        refreshing: bool,
    ) -> Result<TokenResponse> {
        let ctx = self.ctx("token");
        let mut request = self
            .http
            .request(Method::POST, ep.token.clone())
            .header(ACCEPT, "application/json");
        match self.auth {
            AuthMethod::Basic => {
                let user = form_urlencode(self.client_id.as_str());
                let pass = form_urlencode(self.client_secret.expose());
                let basic = STANDARD.encode(format!("{user}:{pass}"));
                request = request.header(AUTHORIZATION, format!("Basic {basic}"));
            }
            AuthMethod::Post => {
                form.push(("client_id", self.client_id.as_str().to_string()));
                form.push(("client_secret", self.client_secret.expose().to_string()));
            }
            AuthMethod::None => form.push(("client_id", self.client_id.as_str().to_string())),
        }
        let response = self.http.send(&ctx, request.form(&form)).await?;
        if response.is_success() && response.body.get("access_token").is_some() {
            let token: TokenResponse = response.decode(&ctx)?;
            if let Some(kind) = &token.token_type
                && !kind.eq_ignore_ascii_case("bearer")
            {
                return Err(Error::BadResponse {
                    ctx,
                    status: response.status,
                    kind: BadBody::Malformed,
                    excerpt: format!("token_type `{}` is not Bearer", truncate(kind)),
                });
            }
            return Ok(token);
        }
        match str_at(&response.body, "/error") {
            Some(code) => {
                let class = rfc6749_class(&code, refreshing);
                Err(fail(
                    &ctx,
                    &class,
                    UpstreamCode::Text(code),
                    message_at(&response.body, "/error_description"),
                    response.header_seconds("retry-after"),
                ))
            }
            None if response.is_success() => Err(Error::BadResponse {
                ctx,
                status: response.status,
                kind: BadBody::Malformed,
                excerpt: "no access_token and no error in the token response".into(),
            }),
            None => Err(http_error(&ctx, &response)),
        }
    }

    /// Verifies the `id_token` when one came and verification is possible.
    async fn id_token_claims(
        &self,
        ep: &Endpoints,
        token: &TokenResponse,
        nonce: Option<&str>,
        required: bool,
    ) -> Result<Option<Map<String, Value>>> {
        let ctx = self.ctx("token");
        let Some(id_token) = token.id_token.as_deref().filter(|t| !t.is_empty()) else {
            if required {
                return Err(Error::InvalidIdToken {
                    ctx,
                    problem: IdTokenProblem::Malformed,
                });
            }
            return Ok(None);
        };
        let (Some(issuer), Some(jwks)) = (&ep.issuer, &ep.jwks) else {
            if self.require_id_token {
                return Err(Error::Misconfigured {
                    ctx,
                    code: UpstreamCode::Text("no_jwks_uri".into()),
                    hint: "an id_token is required but the provider publishes no jwks_uri: set options.jwks_uri".into(),
                });
            }
            tracing::debug!("id_token not verifiable without issuer and jwks_uri; ignoring it");
            return Ok(None);
        };
        let expect = Expectations {
            issuer,
            client_id: self.client_id.as_str(),
            nonce,
            algorithms: &self.algorithms,
            leeway: self.leeway,
        };
        self.jwks
            .verify(&self.http, &ctx, jwks, id_token, &expect)
            .await
            .map(Some)
    }

    async fn userinfo(&self, ep: &Endpoints, access_token: &str) -> Result<Option<Value>> {
        let wanted = self.userinfo.unwrap_or(true);
        let Some(url) = ep.userinfo.as_ref().filter(|_| wanted) else {
            if self.userinfo == Some(true) {
                return Err(Error::Misconfigured {
                    ctx: self.ctx("userinfo"),
                    code: UpstreamCode::Text("no_userinfo_endpoint".into()),
                    hint: "options.userinfo is true but the provider has no userinfo endpoint: set options.userinfo_endpoint".into(),
                });
            }
            return Ok(None);
        };
        let ctx = self.ctx("userinfo");
        let request = self
            .http
            .request(Method::GET, url.clone())
            .header(ACCEPT, "application/json")
            .bearer_auth(access_token);
        let response = self.http.send(&ctx, request).await?;
        if !response.is_success() {
            let class = match response.status {
                401 => ErrorClass::UserTokenInvalid,
                403 => ErrorClass::Misconfigured(SCOPE_HINT),
                s => envelope::class_of_status(s),
            };
            let code = str_at(&response.body, "/error")
                .map(UpstreamCode::Text)
                .unwrap_or(UpstreamCode::Http(response.status));
            return Err(fail(
                &ctx,
                &class,
                code,
                message_at(&response.body, "/error_description"),
                response.header_seconds("retry-after"),
            ));
        }
        if !response.body.is_object() {
            return Err(Error::BadResponse {
                ctx,
                status: response.status,
                kind: BadBody::Malformed,
                excerpt: "userinfo is not a JSON object".into(),
            });
        }
        Ok(Some(response.body))
    }
}

#[async_trait]
impl Platform for Oidc {
    fn name(&self) -> &PlatformName {
        &self.name
    }

    fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    fn token_key(&self) -> TokenKey {
        TokenKey::new(&self.name, &self.tenant, self.client_id.as_str(), None)
    }

    fn needs_app_token(&self) -> bool {
        false
    }

    async fn fetch_app_token(&self) -> Result<FetchedToken> {
        Err(Error::Unsupported {
            platform: self.name.clone(),
            operation: "app tokens (an OAuth2 client authenticates at the token endpoint)",
        })
    }

    async fn prepare_authorize(&self) -> Result<()> {
        self.endpoints().await.map(|_| ())
    }

    async fn identify_h5(&self, _app_token: &AccessToken, _code: &AuthCode) -> Result<Identity> {
        Err(Error::Unsupported {
            platform: self.name.clone(),
            operation: "H5 codes in mode `oidc` (use the web flow: authorize_url, then complete_web_login)",
        })
    }

    async fn exchange_web_code(
        &self,
        _app_token: &AccessToken,
        callback: &WebCallback<'_>,
    ) -> Result<Identity> {
        let ep = self.endpoints().await?;
        let mut form = vec![
            ("grant_type", "authorization_code".to_string()),
            ("code", callback.code.expose().to_string()),
            ("redirect_uri", callback.redirect_uri.as_str().to_string()),
        ];
        match callback.code_verifier {
            Some(verifier) => form.push(("code_verifier", verifier.to_string())),
            None if self.pkce => {
                return Err(Error::config(
                    Some(&self.tenant),
                    Some(self.name.as_str()),
                    "options.pkce",
                    "PKCE is on: pass the code_verifier generated with the challenge (see pkce_pair)",
                ));
            }
            None => {}
        }
        let token = self.token_request(&ep, form, false).await?;
        let claims = self
            .id_token_claims(&ep, &token, callback.nonce, self.require_id_token)
            .await?;
        let userinfo = self.userinfo(&ep, &token.access_token).await?;
        let mut doc = claims.clone().unwrap_or_default();
        if let Some(Value::Object(info)) = userinfo {
            if let Some(claims) = &claims
                && info.get("sub") != claims.get("sub")
            {
                return Err(Error::InvalidIdToken {
                    ctx: self.ctx("userinfo"),
                    problem: IdTokenProblem::Subject,
                });
            }
            doc.extend(info);
        }
        let user_token = token.user_token();
        Ok(Identity {
            user_id: str_at(&Value::Object(doc.clone()), "/sub"),
            user_token: Some(user_token),
            documents: doc,
            ..Identity::default()
        })
    }

    async fn user_detail(&self, _app_token: &AccessToken, identity: &Identity) -> Result<Value> {
        // Everything was read during the code step: the verified id_token claims, overridden by
        // the userinfo response.
        Ok(Value::Object(identity.documents.clone()))
    }

    fn authorize_url(&self, request: &AuthorizeRequest<'_>) -> Result<Url> {
        let ep = match &self.fixed {
            Some(ep) => ep.clone(),
            None => match self.cached_endpoints()? {
                Some((_, ep)) => ep,
                None => {
                    return Err(Error::Internal(
                        "OIDC discovery not loaded: call Platform::prepare_authorize first (Sso::authorize_url does)".into(),
                    ));
                }
            },
        };
        let mut url = ep.authorization.clone();
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("client_id", self.client_id.as_str())
                .append_pair("redirect_uri", request.redirect_uri.as_str())
                .append_pair("scope", &self.scope)
                .append_pair("state", request.state.expose());
            match request.code_challenge {
                Some(challenge) => {
                    q.append_pair("code_challenge", challenge)
                        .append_pair("code_challenge_method", "S256");
                }
                None if self.pkce => {
                    return Err(Error::config(
                        Some(&self.tenant),
                        Some(self.name.as_str()),
                        "options.pkce",
                        "PKCE is on: pass a code_challenge (see pkce_pair)",
                    ));
                }
                None => {}
            }
            if let Some(nonce) = request.nonce {
                q.append_pair("nonce", nonce);
            }
            for (k, v) in &self.authorize_params {
                q.append_pair(k, v);
            }
        }
        Ok(url)
    }

    async fn refresh_user_token(&self, refresh_token: &RefreshToken) -> Result<UserToken> {
        let ep = self.endpoints().await?;
        let form = vec![
            ("grant_type", "refresh_token".to_string()),
            ("refresh_token", refresh_token.expose().to_string()),
        ];
        let token = self.token_request(&ep, form, true).await?;
        // A refreshed id_token is verified like the first one (without a nonce: none was sent),
        // so a forged one is never handed out; it is optional on refresh.
        self.id_token_claims(&ep, &token, None, false).await?;
        let mut user_token = token.user_token();
        // RFC 6749 §6: without a new refresh token, the old one stays valid.
        if user_token.refresh_token.is_none() {
            user_token.refresh_token = Some(refresh_token.clone());
        }
        Ok(user_token)
    }

    fn classify(&self, code: &UpstreamCode) -> ErrorClass {
        match code {
            UpstreamCode::Text(t) => rfc6749_class(t, false),
            UpstreamCode::Http(status) => envelope::class_of_status(*status),
            _ => ErrorClass::Other,
        }
    }
}

/// The class of an RFC 6749 §5.2 `error` (and the common extensions).
fn rfc6749_class(code: &str, refreshing: bool) -> ErrorClass {
    match code {
        "invalid_grant" if refreshing => ErrorClass::UserTokenInvalid,
        "invalid_grant" => ErrorClass::InvalidCode,
        "invalid_client" | "unauthorized_client" => ErrorClass::Misconfigured(CLIENT_HINT),
        "invalid_scope" | "unsupported_grant_type" | "access_denied" => {
            ErrorClass::Misconfigured(SCOPE_HINT)
        }
        "temporarily_unavailable" | "server_error" => ErrorClass::Transient,
        "slow_down" => ErrorClass::RateLimited,
        _ => ErrorClass::Other,
    }
}

/// The error of a non-2xx response without an OAuth2 `error` member.
pub(crate) fn http_error(ctx: &UpstreamCtx, response: &UpstreamResponse) -> Error {
    fail(
        ctx,
        &envelope::class_of_status(response.status),
        UpstreamCode::Http(response.status),
        message_at(&response.body, "/error_description"),
        response.header_seconds("retry-after"),
    )
}

fn parse_algorithm(name: &str) -> std::result::Result<Algorithm, String> {
    Ok(match name {
        "RS256" => Algorithm::RS256,
        "RS384" => Algorithm::RS384,
        "RS512" => Algorithm::RS512,
        "PS256" => Algorithm::PS256,
        "PS384" => Algorithm::PS384,
        "PS512" => Algorithm::PS512,
        "ES256" => Algorithm::ES256,
        "ES384" => Algorithm::ES384,
        "EdDSA" => Algorithm::EdDSA,
        other => {
            return Err(format!(
                "`{other}` is not an accepted id_token algorithm (asymmetric only: RS256/384/512, PS256/384/512, ES256/384, EdDSA)"
            ));
        }
    })
}

/// `application/x-www-form-urlencoded` encoding of one value (RFC 6749 §2.3.1 applies it to
/// the client id and secret before HTTP Basic).
fn form_urlencode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

fn truncate(s: &str) -> String {
    s.chars().take(32).collect()
}
