//! `mode: oidc`: a standard OAuth2 / OpenID Connect provider.
//!
//! [`options`] types the tenant's options, [`discovery`] finds the endpoints, [`token`] talks
//! to the token endpoint, [`id_token`] and [`jwks`] verify the `id_token`; this file is the
//! handler: the authorize URL, the code exchange, the userinfo call and refreshing.

mod discovery;
mod id_token;
mod jwks;
mod options;
mod token;

use async_trait::async_trait;
use reqwest::Method;
use reqwest::header::ACCEPT;
use serde_json::Value;
use unilogin_core::envelope::{self, fail, message_at, str_at};
use unilogin_core::error::{BadBody, IdTokenProblem};
use unilogin_core::platform::{
    AuthorizeRequest, Base, Identity, IssuerPolicy, Platform, UserToken, WebCallback,
};
use unilogin_core::registry::PlatformContext;
use unilogin_core::token_cache::TokenKey;
use unilogin_core::{
    AccessToken, AppSecret, Error, ErrorClass, RefreshToken, Result, UpstreamCode,
};
use url::Url;

use discovery::{Endpoints, Provider};
use jwks::JwksCache;
use options::Options;
use token::SCOPE_HINT;

/// The handler of an OAuth2 / OIDC tenant (`mode: oidc`).
#[derive(Debug)]
pub struct Oidc {
    base: Base,
    client_secret: AppSecret,
    options: Options,
    provider: Provider,
    jwks: JwksCache,
}

impl Oidc {
    /// Builds the handler from a tenant's configuration (`mode: oidc`), validating it.
    pub fn new(ctx: &PlatformContext<'_>) -> Result<Self> {
        let base = crate::base(ctx)?;
        let options = Options::parse(ctx.config)?;
        Ok(Self {
            base,
            client_secret: ctx.config.app_secret.clone(),
            provider: Provider::new(&options),
            jwks: JwksCache::new(options.jwks_ttl, options.jwks_refetch_interval),
            options,
        })
    }

    async fn endpoints(&self) -> Result<std::sync::Arc<Endpoints>> {
        self.provider.endpoints(&self.base).await
    }

    /// The userinfo response, when the provider has the endpoint and the tenant wants it.
    async fn userinfo(&self, ep: &Endpoints, access_token: &str) -> Result<Option<Value>> {
        let wanted = self.options.userinfo.unwrap_or(true);
        let Some(url) = ep.userinfo.as_ref().filter(|_| wanted) else {
            if self.options.userinfo == Some(true) {
                return Err(Error::Misconfigured {
                    ctx: self.base.ctx("userinfo"),
                    code: UpstreamCode::Text("no_userinfo_endpoint".into()),
                    hint: "options.userinfo is true but the provider has no userinfo endpoint: set options.userinfo_endpoint".into(),
                });
            }
            return Ok(None);
        };
        let ctx = self.base.ctx("userinfo");
        let request = self
            .base
            .http
            .request(Method::GET, url.clone())
            .header(ACCEPT, "application/json")
            .bearer_auth(access_token);
        let response = self.base.http.send(&ctx, request).await?;
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
    fn base(&self) -> &Base {
        &self.base
    }

    /// None: an OAuth2 client authenticates at the token endpoint instead.
    fn token_key(&self) -> Option<TokenKey> {
        None
    }

    async fn user_detail(
        &self,
        _app_token: Option<&AccessToken>,
        identity: &Identity,
    ) -> Result<Value> {
        // Everything was read during the code step: the verified id_token claims, overridden by
        // the userinfo response.
        Ok(Value::Object(identity.documents.clone()))
    }

    async fn exchange_web_code(
        &self,
        _app_token: Option<&AccessToken>,
        callback: &WebCallback<'_>,
    ) -> Result<Identity> {
        let ep = self.endpoints().await?;
        let mut form = vec![
            ("grant_type", "authorization_code".to_string()),
            ("code", callback.code.expose().to_string()),
            ("redirect_uri", callback.redirect_uri.as_str().to_string()),
        ];
        if self.options.pkce {
            form.push(("code_verifier", callback.code_verifier.to_string()));
        }
        let token = self.token_request(&ep, form, false).await?;
        let claims = self
            .id_token_claims(
                &ep,
                &token,
                Some(callback.nonce),
                self.options.require_id_token,
            )
            .await?;
        let userinfo = self.userinfo(&ep, &token.access_token).await?;
        let mut doc = claims.clone().unwrap_or_default();
        if let Some(Value::Object(info)) = userinfo {
            if let Some(claims) = &claims
                && info.get("sub") != claims.get("sub")
            {
                return Err(Error::InvalidIdToken {
                    ctx: self.base.ctx("userinfo"),
                    problem: IdTokenProblem::Subject,
                });
            }
            doc.extend(info);
        }
        Ok(Identity {
            user_id: str_at(&Value::Object(doc.clone()), "/sub"),
            user_token: Some(token.user_token()),
            documents: doc,
            ..Identity::default()
        })
    }

    async fn authorize_url(&self, request: &AuthorizeRequest<'_>) -> Result<Url> {
        let ep = self.endpoints().await?;
        let mut url = ep.authorization.clone();
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("client_id", self.base.app_key.as_str())
                .append_pair("redirect_uri", request.redirect_uri.as_str())
                .append_pair("scope", &self.options.scope)
                .append_pair("state", request.state.expose())
                .append_pair("nonce", request.nonce);
            if self.options.pkce {
                q.append_pair("code_challenge", request.code_challenge)
                    .append_pair("code_challenge_method", "S256");
            }
            for (k, v) in &self.options.authorize_params {
                q.append_pair(k, v);
            }
        }
        Ok(url)
    }

    async fn authorization_issuer(&self) -> Result<Option<IssuerPolicy>> {
        Ok(self.endpoints().await?.issuer_policy())
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
}
