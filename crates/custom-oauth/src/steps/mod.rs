//! `mode: steps`: a self-built platform described as three HTTP steps (the seed's
//! `accessTokenUrl` → `userIdInfoUrl` → `userDeilUrl`), with no code. [`options`] compiles the
//! tenant's steps; this file runs them.

mod errors;
mod options;
mod template;

use std::time::Duration;

use async_trait::async_trait;
use reqwest::header::{ACCEPT, HeaderName, HeaderValue};
use serde_json::Value;
use unilogin_core::envelope::{self, fail};
use unilogin_core::error::BadBody;
use unilogin_core::http::UpstreamResponse;
use unilogin_core::mapping::JsonPath;
use unilogin_core::platform::sdk::secret_rejected;
use unilogin_core::platform::{AuthorizeRequest, Base, Identity, Platform, WebCallback};
use unilogin_core::registry::PlatformContext;
use unilogin_core::token_cache::FetchedToken;
use unilogin_core::{AccessToken, AppSecret, AuthCode, Error, Result, UpstreamCode, UpstreamCtx};
use url::Url;

use options::{Options, Placement, Step};
use template::{RenderError, Template, Vars};

const SECRET_HINT: &str =
    "the platform rejected the app credentials at the app-token step: check app_key and app_secret";

/// The handler of a self-built platform tenant (`mode: steps`).
#[derive(Debug)]
pub struct Steps {
    base: Base,
    app_secret: AppSecret,
    options: Options,
}

impl Steps {
    /// Builds the handler from a tenant's configuration (`mode: steps`), validating every step:
    /// templates, placements, JSONPaths and extracted values.
    pub fn new(ctx: &PlatformContext<'_>) -> Result<Self> {
        Ok(Self {
            base: crate::base(ctx)?,
            app_secret: ctx.config.app_secret.clone(),
            options: Options::parse(ctx.config)?,
        })
    }

    /// Runs one step: builds the request from its templates, sends it, applies the success
    /// test and classifies a failure with the tenant's error table.
    async fn run(&self, step: &Step, vars: &Vars<'_>) -> Result<UpstreamResponse> {
        let ctx = self.base.ctx(step.endpoint);
        let unsendable = |what: &str| Error::InvalidCode {
            ctx: ctx.clone(),
            code: UpstreamCode::Text(format!("unsendable {what}")),
        };
        let rendered = |t: &Template| {
            t.render(vars).map_err(|e| match e {
                RenderError::Missing(v) => {
                    Error::Internal(format!("{}: no value for {{{v}}}", step.endpoint))
                }
                // `..` as a code (or a user id from the platform) must not move a request that
                // may carry the app token or secret to another path: refused before sending.
                RenderError::UnsafeInPath(v) => unsendable(&format!("{{{v}}} in the URL path")),
            })
        };
        let mut url = Url::parse(&rendered(&step.url)?).map_err(|_| unsendable("URL"))?;
        let mut params = Vec::with_capacity(step.params.len());
        for (k, t) in &step.params {
            let v = rendered(t)?;
            params.push((k.as_str(), v));
        }
        if step.placement == Placement::Query && !params.is_empty() {
            let mut q = url.query_pairs_mut();
            for (k, v) in &params {
                q.append_pair(k, v);
            }
        }
        let mut request = self
            .base
            .http
            .request(step.method.clone(), url)
            .header(ACCEPT, "application/json");
        for (name, t) in &step.headers {
            let v = rendered(t)?;
            let value = HeaderValue::from_str(&v).map_err(|_| unsendable("header value"))?;
            request = request.header(name.clone(), value);
        }
        request = match step.placement {
            Placement::Query => request,
            Placement::Form => request.form(&params),
            Placement::Json => request.json(
                &params
                    .iter()
                    .map(|(k, v)| ((*k).to_string(), Value::String(v.clone())))
                    .collect::<serde_json::Map<_, _>>(),
            ),
            Placement::Header => {
                for (k, v) in &params {
                    let name = HeaderName::from_bytes(k.as_bytes())
                        .map_err(|_| unsendable("header name"))?;
                    let value = HeaderValue::from_str(v).map_err(|_| unsendable("header value"))?;
                    request = request.header(name, value);
                }
                request
            }
        };
        let response = self.base.http.send(&ctx, request).await?;
        let passed = response.is_success()
            && match &step.success {
                None => true,
                Some((path, expected)) => path
                    .first(&response.body)
                    .is_some_and(|v| same(v, expected)),
            };
        if passed {
            return Ok(response);
        }
        Err(self.failure(&ctx, step, &response))
    }

    fn failure(&self, ctx: &UpstreamCtx, step: &Step, response: &UpstreamResponse) -> Error {
        let code_path = self
            .options
            .errors
            .code
            .as_ref()
            .or(step.success.as_ref().map(|(p, _)| p));
        let code = code_path
            .and_then(|p| p.first(&response.body))
            .and_then(|v| match v {
                Value::Number(n) => n.as_i64().map(UpstreamCode::Number),
                Value::String(s) if !s.is_empty() => Some(UpstreamCode::Text(s.clone())),
                Value::Bool(b) => Some(UpstreamCode::Text(b.to_string())),
                _ => None,
            })
            .unwrap_or(UpstreamCode::Http(response.status));
        let message = self
            .options
            .errors
            .message
            .as_ref()
            .and_then(|p| p.first(&response.body))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let class = self.options.errors.class_of(&code);
        let retry_after = response.header_seconds("retry-after");
        fail(ctx, &class, code, message, retry_after)
    }

    fn extract_str(&self, step: &Step, key: &str, response: &UpstreamResponse) -> Option<String> {
        let v = step.extract.get(key)?.first(&response.body)?;
        match v {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }

    fn require(&self, step: &Step, key: &str, response: &UpstreamResponse) -> Result<String> {
        self.extract_str(step, key, response)
            .ok_or_else(|| Error::BadResponse {
                ctx: self.base.ctx(step.endpoint),
                status: response.status,
                kind: BadBody::Malformed,
                excerpt: format!(
                    "extract.{key} (`{}`) found no value",
                    step.extract
                        .get(key)
                        .map(JsonPath::as_str)
                        .unwrap_or_default()
                ),
            })
    }

    fn vars(&self) -> Vars<'_> {
        Vars {
            app_key: Some(self.base.app_key.as_str()),
            app_secret: Some(self.app_secret.expose()),
            ..Vars::default()
        }
    }

    async fn identify(&self, app_token: &AccessToken, code: &AuthCode) -> Result<Identity> {
        let vars = Vars {
            code: Some(code.expose()),
            access_token: Some(app_token.expose()),
            ..self.vars()
        };
        let step = &self.options.user_id;
        let response = self.run(step, &vars).await?;
        Ok(Identity {
            user_id: Some(self.require(step, "user_id", &response)?),
            union_id: self.extract_str(step, "union_id", &response),
            open_id: self.extract_str(step, "open_id", &response),
            org_id: self.extract_str(step, "org_id", &response),
            ..Identity::default()
        })
    }
}

/// Whether a selected value satisfies the success test: equal JSON, or equal as text (`0` and
/// `"0"`, `true` and `"true"`).
fn same(found: &Value, expected: &Value) -> bool {
    if found == expected {
        return true;
    }
    let text = |v: &Value| match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    matches!((text(found), text(expected)), (Some(a), Some(b)) if a == b)
}

#[async_trait]
impl Platform for Steps {
    fn base(&self) -> &Base {
        &self.base
    }

    async fn fetch_app_token(&self) -> Result<FetchedToken> {
        let step = &self.options.app_token;
        // At the token step a refused credential is a configuration problem.
        let response = self
            .run(step, &self.vars())
            .await
            .map_err(secret_rejected(SECRET_HINT))?;
        let token = self.require(step, "token", &response)?;
        let expires_in = step
            .extract
            .get("expires_in")
            .and_then(|p| p.first(&response.body))
            .and_then(envelope::numeric)
            .filter(|s| *s > 0)
            .map_or(self.options.lifetime, |s| Duration::from_secs(s as u64));
        Ok(FetchedToken {
            token: AccessToken::new(token),
            expires_in,
        })
    }

    async fn exchange_web_code(
        &self,
        app_token: Option<&AccessToken>,
        callback: &WebCallback<'_>,
    ) -> Result<Identity> {
        self.identify(self.base.app_token(app_token)?, callback.code)
            .await
    }

    async fn user_detail(
        &self,
        app_token: Option<&AccessToken>,
        identity: &Identity,
    ) -> Result<Value> {
        let step = &self.options.user_detail;
        let Some(user_id) = identity.user_id.as_deref() else {
            return Err(Error::NotInTenant {
                ctx: self.base.ctx(step.endpoint),
            });
        };
        let vars = Vars {
            access_token: Some(self.base.app_token(app_token)?.expose()),
            user_id: Some(user_id),
            ..self.vars()
        };
        Ok(self.run(step, &vars).await?.body)
    }

    async fn authorize_url(&self, request: &AuthorizeRequest<'_>) -> Result<Url> {
        let vars = Vars {
            app_key: Some(self.base.app_key.as_str()),
            redirect_uri: Some(request.redirect_uri.as_str()),
            state: Some(request.state.expose()),
            ..Vars::default()
        };
        let text = self.options.authorize.render(&vars).map_err(|e| {
            let (RenderError::Missing(v) | RenderError::UnsafeInPath(v)) = e;
            Error::Internal(format!("authorize_url: no usable value for {{{v}}}"))
        })?;
        Url::parse(&text).map_err(|e| {
            let (tenant, name) = (&self.base.tenant, self.base.name.as_str());
            Error::config(
                Some(tenant),
                Some(name),
                "options.authorize_url",
                e.to_string(),
            )
        })
    }
}
