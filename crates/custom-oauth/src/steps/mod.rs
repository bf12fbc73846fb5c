//! `mode: steps`: a self-built platform described as three HTTP steps (the seed's
//! `accessTokenUrl` → `userIdInfoUrl` → `userDeilUrl`), with no code.

mod template;

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::Method;
use reqwest::header::{ACCEPT, HeaderName, HeaderValue};
use serde::Deserialize;
use serde_json::Value;
use unilogin_core::config::PlatformConfig;
use unilogin_core::envelope::{self, fail};
use unilogin_core::error::BadBody;
use unilogin_core::http::{HttpClient, UpstreamResponse};
use unilogin_core::mapping::JsonPath;
use unilogin_core::platform::{AuthorizeRequest, Identity, Platform, WebCallback};
use unilogin_core::token_cache::{FetchedToken, TokenKey};
use unilogin_core::{
    AccessToken, AppKey, AppSecret, AuthCode, Error, ErrorClass, PlatformName, Result, TenantId,
    UpstreamCode, UpstreamCtx,
};
use url::Url;

use crate::endpoint_problem;
use template::{Template, Var, Vars};

const SECRET_HINT: &str =
    "the platform rejected the app credentials at the app-token step: check app_key and app_secret";
const SETUP_HINT: &str = "the platform rejected the app's set-up: check the app's permissions and the server's egress IP in the platform's allow-list (IP whitelist)";

/// The three steps, in the order they run.
const STEP_NAMES: [&str; 3] = ["app_token", "user_id", "user_detail"];

fn default_lifetime() -> u64 {
    7200
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Options {
    steps: Vec<StepSpec>,
    #[serde(default)]
    authorize_url: Option<String>,
    #[serde(default = "default_lifetime")]
    token_lifetime_seconds: u64,
    #[serde(default)]
    errors: ErrorsSpec,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StepSpec {
    name: String,
    #[serde(default)]
    method: Option<String>,
    url: String,
    #[serde(default)]
    params_in: Option<String>,
    #[serde(default)]
    params: BTreeMap<String, String>,
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    success: Option<SuccessSpec>,
    #[serde(default)]
    extract: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SuccessSpec {
    path: String,
    equals: Value,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ErrorsSpec {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    token_invalid: Vec<Value>,
    #[serde(default)]
    invalid_code: Vec<Value>,
    #[serde(default)]
    not_in_tenant: Vec<Value>,
    #[serde(default)]
    rate_limited: Vec<Value>,
    #[serde(default)]
    transient: Vec<Value>,
    #[serde(default)]
    misconfigured: Vec<Value>,
}

/// Where a step's `params` go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placement {
    Query,
    Form,
    Json,
    Header,
}

/// One compiled step.
#[derive(Debug)]
struct Step {
    endpoint: &'static str,
    method: Method,
    url: Template,
    placement: Placement,
    params: Vec<(String, Template)>,
    headers: Vec<(HeaderName, Template)>,
    success: Option<(JsonPath, Value)>,
    extract: BTreeMap<String, JsonPath>,
}

/// How a tenant's platform reports errors.
#[derive(Debug, Default)]
struct Errors {
    code: Option<JsonPath>,
    message: Option<JsonPath>,
    classes: Vec<(String, ErrorClass)>,
}

/// The handler of a self-built platform tenant (`mode: steps`).
#[derive(Debug)]
pub struct Steps {
    name: PlatformName,
    tenant: TenantId,
    app_key: AppKey,
    app_secret: AppSecret,
    http: HttpClient,
    app_token: Step,
    user_id: Step,
    user_detail: Step,
    authorize: Option<Template>,
    lifetime: Duration,
    errors: Errors,
}

/// Which extracted values each step may (and must) name.
fn extract_keys(step: &str) -> (&'static [&'static str], &'static [&'static str]) {
    match step {
        "app_token" => (&["token", "expires_in"], &["token"]),
        "user_id" => (&["user_id", "union_id", "open_id", "org_id"], &["user_id"]),
        _ => (&[], &[]),
    }
}

fn allowed_vars(step: &str) -> &'static [Var] {
    match step {
        "app_token" => &[Var::AppKey, Var::AppSecret],
        "user_id" => &[Var::AppKey, Var::AppSecret, Var::Code, Var::AccessToken],
        _ => &[Var::AppKey, Var::AppSecret, Var::AccessToken, Var::UserId],
    }
}

impl Steps {
    /// Builds the handler from a tenant's configuration (`mode: steps`), validating every step:
    /// templates, placements, JSONPaths and extracted values.
    pub fn new(config: &PlatformConfig, http: HttpClient) -> Result<Self> {
        let options: Options = serde_json::from_value(Value::Object(config.options.clone()))
            .map_err(|e| config.error("options", format!("{e} (mode `steps`)")))?;
        if config.app_secret.expose().trim().is_empty() {
            return Err(config.error(
                "app_secret",
                "required in mode `steps` (public clients exist only in mode `oidc`)",
            ));
        }
        let mut compiled: BTreeMap<&'static str, Step> = BTreeMap::new();
        for (i, spec) in options.steps.iter().enumerate() {
            let Some(&name) = STEP_NAMES.iter().find(|n| **n == spec.name.trim()) else {
                return Err(config.error(
                    &format!("options.steps[{i}].name"),
                    format!(
                        "unknown step `{}`: the steps are {}",
                        spec.name,
                        STEP_NAMES.join(", ")
                    ),
                ));
            };
            if compiled.contains_key(name) {
                return Err(config.error(&format!("options.steps.{name}"), "listed twice"));
            }
            if STEP_NAMES[compiled.len()] != name {
                return Err(config.error(
                    &format!("options.steps.{name}"),
                    format!("out of order: the steps run as {}", STEP_NAMES.join(" → ")),
                ));
            }
            compiled.insert(name, compile_step(config, name, spec)?);
        }
        let mut take = |name: &str| {
            compiled.remove(name).ok_or_else(|| {
                config.error(
                    &format!("options.steps.{name}"),
                    format!(
                        "missing step `{name}` (the steps are {})",
                        STEP_NAMES.join(", ")
                    ),
                )
            })
        };
        let app_token = take("app_token")?;
        let user_id = take("user_id")?;
        let user_detail = take("user_detail")?;
        let authorize = match &options.authorize_url {
            None => None,
            Some(text) => {
                let t = Template::parse(text, &[Var::AppKey, Var::RedirectUri, Var::State])
                    .map_err(|r| config.error("options.authorize_url", r))?;
                check_rendered_url(config, "options.authorize_url", &t)?;
                Some(t)
            }
        };
        let errors = compile_errors(config, &options.errors)?;
        let handler = Self {
            name: config.platform.clone(),
            tenant: config.tenant.clone(),
            app_key: config.app_key.clone(),
            app_secret: config.app_secret.clone(),
            http,
            app_token,
            user_id,
            user_detail,
            authorize,
            lifetime: Duration::from_secs(options.token_lifetime_seconds.max(60)),
            errors,
        };
        handler.check_no_secret_in_clear(config)?;
        Ok(handler)
    }

    /// Secrets belong in placeholders: refuse a configuration that spells the secret out.
    fn check_no_secret_in_clear(&self, config: &PlatformConfig) -> Result<()> {
        let secret = self.app_secret.expose();
        if secret.len() < 4 {
            return Ok(());
        }
        for (name, step) in [
            ("app_token", &self.app_token),
            ("user_id", &self.user_id),
            ("user_detail", &self.user_detail),
        ] {
            let texts = std::iter::once(("url".to_string(), &step.url))
                .chain(step.params.iter().map(|(k, t)| (format!("params.{k}"), t)))
                .chain(
                    step.headers
                        .iter()
                        .map(|(k, t)| (format!("headers.{k}"), t)),
                );
            for (field, t) in texts {
                if t.literal_text().contains(secret) {
                    return Err(config.error(
                        &format!("options.steps.{name}.{field}"),
                        "contains the app secret in clear: write `{app_secret}` instead",
                    ));
                }
            }
        }
        Ok(())
    }

    fn ctx(&self, endpoint: &'static str) -> UpstreamCtx {
        UpstreamCtx::new(Some(self.tenant.clone()), self.name.clone(), endpoint)
    }

    /// Runs one step: builds the request from its templates, sends it, applies the success
    /// test and classifies a failure with the tenant's error table.
    async fn run(&self, step: &Step, vars: &Vars<'_>) -> Result<UpstreamResponse> {
        let ctx = self.ctx(step.endpoint);
        let unsendable = |what: &str| Error::InvalidCode {
            ctx: ctx.clone(),
            code: UpstreamCode::Text(format!("unsendable {what}")),
        };
        let url = step
            .url
            .render(vars, true)
            .map_err(|v| Error::Internal(format!("{}: no value for {{{v}}}", step.endpoint)))?;
        let mut url = Url::parse(&url).map_err(|_| unsendable("URL"))?;
        let mut params = Vec::with_capacity(step.params.len());
        for (k, t) in &step.params {
            let v = t
                .render(vars, false)
                .map_err(|v| Error::Internal(format!("{}: no value for {{{v}}}", step.endpoint)))?;
            params.push((k.as_str(), v));
        }
        if step.placement == Placement::Query {
            let mut q = url.query_pairs_mut();
            for (k, v) in &params {
                q.append_pair(k, v);
            }
        }
        let mut request = self
            .http
            .request(step.method.clone(), url)
            .header(ACCEPT, "application/json");
        for (name, t) in &step.headers {
            let v = t
                .render(vars, false)
                .map_err(|v| Error::Internal(format!("{}: no value for {{{v}}}", step.endpoint)))?;
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
        let response = self.http.send(&ctx, request).await?;
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
            .errors
            .message
            .as_ref()
            .and_then(|p| p.first(&response.body))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let mut class = self.classify(&code);
        if step.endpoint == "steps.app_token" && class == ErrorClass::TokenInvalid {
            // At the token step a refused credential is a configuration problem.
            class = ErrorClass::Misconfigured(SECRET_HINT);
        }
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
                ctx: self.ctx(step.endpoint),
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
            app_key: Some(self.app_key.as_str()),
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
        let response = self.run(&self.user_id, &vars).await?;
        Ok(Identity {
            user_id: Some(self.require(&self.user_id, "user_id", &response)?),
            union_id: self.extract_str(&self.user_id, "union_id", &response),
            open_id: self.extract_str(&self.user_id, "open_id", &response),
            org_id: self.extract_str(&self.user_id, "org_id", &response),
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

fn compile_step(config: &PlatformConfig, name: &'static str, spec: &StepSpec) -> Result<Step> {
    let field = |f: &str| format!("options.steps.{name}.{f}");
    let allowed = allowed_vars(name);
    let method = match spec
        .method
        .as_deref()
        .map(|m| m.trim().to_ascii_uppercase())
        .as_deref()
    {
        None | Some("GET") => Method::GET,
        Some("POST") => Method::POST,
        Some("PUT") => Method::PUT,
        Some("PATCH") => Method::PATCH,
        Some(other) => {
            return Err(config.error(
                &field("method"),
                format!("`{other}` is not one of GET, POST, PUT, PATCH"),
            ));
        }
    };
    let url = Template::parse(&spec.url, allowed).map_err(|r| config.error(&field("url"), r))?;
    check_rendered_url(config, &field("url"), &url)?;
    let placement = match spec.params_in.as_deref().map(str::trim) {
        None | Some("query") => Placement::Query,
        Some("form") => Placement::Form,
        Some("json") => Placement::Json,
        Some("header") => Placement::Header,
        Some(other) => {
            return Err(config.error(
                &field("params_in"),
                format!("`{other}` is not one of query, form, json, header"),
            ));
        }
    };
    if method == Method::GET && matches!(placement, Placement::Form | Placement::Json) {
        return Err(config.error(
            &field("params_in"),
            "a GET request has no body: use query or header, or method POST",
        ));
    }
    let mut params = Vec::new();
    for (k, v) in &spec.params {
        let f = field(&format!("params.{k}"));
        if k.trim().is_empty() {
            return Err(config.error(&f, "parameter names must not be blank"));
        }
        if placement == Placement::Header && HeaderName::from_bytes(k.as_bytes()).is_err() {
            return Err(config.error(&f, "not a valid HTTP header name"));
        }
        params.push((
            k.clone(),
            Template::parse(v, allowed).map_err(|r| config.error(&f, r))?,
        ));
    }
    let mut headers = Vec::new();
    for (k, v) in &spec.headers {
        let f = field(&format!("headers.{k}"));
        let name = HeaderName::from_bytes(k.as_bytes())
            .map_err(|_| config.error(&f, "not a valid HTTP header name"))?;
        headers.push((
            name,
            Template::parse(v, allowed).map_err(|r| config.error(&f, r))?,
        ));
    }
    let success = match &spec.success {
        None => None,
        Some(s) => Some((
            JsonPath::compile(&s.path)
                .map_err(|r| config.error(&field("success.path"), format!("{}: {r}", s.path)))?,
            s.equals.clone(),
        )),
    };
    let (known, required) = extract_keys(name);
    let mut extract = BTreeMap::new();
    for (k, path) in &spec.extract {
        let f = field(&format!("extract.{k}"));
        if !known.contains(&k.as_str()) {
            return Err(config.error(
                &f,
                if known.is_empty() {
                    format!("step `{name}` extracts nothing (its body is the user document)")
                } else {
                    format!(
                        "unknown value `{k}`: step `{name}` extracts {}",
                        known.join(", ")
                    )
                },
            ));
        }
        let compiled =
            JsonPath::compile(path).map_err(|r| config.error(&f, format!("{path}: {r}")))?;
        extract.insert(k.clone(), compiled);
    }
    for k in required {
        if !extract.contains_key(*k) {
            return Err(config.error(&field(&format!("extract.{k}")), "required"));
        }
    }
    Ok(Step {
        endpoint: match name {
            "app_token" => "steps.app_token",
            "user_id" => "steps.user_id",
            _ => "steps.user_detail",
        },
        method,
        url,
        placement,
        params,
        headers,
        success,
        extract,
    })
}

/// Renders a URL template with sample values and checks the result is an acceptable endpoint.
fn check_rendered_url(config: &PlatformConfig, field: &str, t: &Template) -> Result<()> {
    let sample = Vars {
        app_key: Some("k"),
        app_secret: Some("s"),
        code: Some("c"),
        access_token: Some("t"),
        user_id: Some("u"),
        redirect_uri: Some("r"),
        state: Some("s"),
    };
    let text = t
        .render(&sample, true)
        .map_err(|v| config.error(field, format!("no value for {{{v}}}")))?;
    let url =
        Url::parse(&text).map_err(|e| config.error(field, format!("not an absolute URL: {e}")))?;
    match endpoint_problem(&url) {
        Some(problem) => Err(config.error(field, problem)),
        None => Ok(()),
    }
}

fn compile_errors(config: &PlatformConfig, spec: &ErrorsSpec) -> Result<Errors> {
    let path = |f: &str, p: &Option<String>| -> Result<Option<JsonPath>> {
        p.as_deref()
            .map(|p| {
                JsonPath::compile(p)
                    .map_err(|r| config.error(&format!("options.errors.{f}"), format!("{p}: {r}")))
            })
            .transpose()
    };
    let mut classes = Vec::new();
    for (f, list, class) in [
        (
            "token_invalid",
            &spec.token_invalid,
            ErrorClass::TokenInvalid,
        ),
        ("invalid_code", &spec.invalid_code, ErrorClass::InvalidCode),
        (
            "not_in_tenant",
            &spec.not_in_tenant,
            ErrorClass::NotInTenant,
        ),
        ("rate_limited", &spec.rate_limited, ErrorClass::RateLimited),
        ("transient", &spec.transient, ErrorClass::Transient),
        (
            "misconfigured",
            &spec.misconfigured,
            ErrorClass::Misconfigured(SETUP_HINT),
        ),
    ] {
        for (i, v) in list.iter().enumerate() {
            let code = match v {
                Value::String(s) if !s.trim().is_empty() => s.trim().to_string(),
                Value::Number(n) if n.is_i64() => n.to_string(),
                _ => {
                    return Err(config.error(
                        &format!("options.errors.{f}[{i}]"),
                        "must be an integer or a non-empty string",
                    ));
                }
            };
            if classes.iter().any(|(c, _)| *c == code) {
                return Err(config.error(
                    &format!("options.errors.{f}[{i}]"),
                    format!("code `{code}` is listed in two classes"),
                ));
            }
            classes.push((code, class.clone()));
        }
    }
    Ok(Errors {
        code: path("code", &spec.code)?,
        message: path("message", &spec.message)?,
        classes,
    })
}

#[async_trait]
impl Platform for Steps {
    fn name(&self) -> &PlatformName {
        &self.name
    }

    fn tenant(&self) -> &TenantId {
        &self.tenant
    }

    fn token_key(&self) -> TokenKey {
        TokenKey::new(&self.name, &self.tenant, self.app_key.as_str(), None)
    }

    async fn fetch_app_token(&self) -> Result<FetchedToken> {
        let response = self.run(&self.app_token, &self.vars()).await?;
        let token = self.require(&self.app_token, "token", &response)?;
        let expires_in = self
            .app_token
            .extract
            .get("expires_in")
            .and_then(|p| p.first(&response.body))
            .and_then(envelope::numeric)
            .filter(|s| *s > 0)
            .map(|s| Duration::from_secs(s as u64))
            .unwrap_or(self.lifetime);
        Ok(FetchedToken {
            token: AccessToken::new(token),
            expires_in,
        })
    }

    async fn identify_h5(&self, app_token: &AccessToken, code: &AuthCode) -> Result<Identity> {
        self.identify(app_token, code).await
    }

    async fn exchange_web_code(
        &self,
        app_token: &AccessToken,
        callback: &WebCallback<'_>,
    ) -> Result<Identity> {
        self.identify(app_token, callback.code).await
    }

    async fn user_detail(&self, app_token: &AccessToken, identity: &Identity) -> Result<Value> {
        let Some(user_id) = identity.user_id.as_deref() else {
            return Err(Error::NotInTenant {
                ctx: self.ctx(self.user_detail.endpoint),
            });
        };
        let vars = Vars {
            access_token: Some(app_token.expose()),
            user_id: Some(user_id),
            ..self.vars()
        };
        Ok(self.run(&self.user_detail, &vars).await?.body)
    }

    fn authorize_url(&self, request: &AuthorizeRequest<'_>) -> Result<Url> {
        let Some(template) = &self.authorize else {
            return Err(Error::Unsupported {
                platform: self.name.clone(),
                operation: "an authorize URL without options.authorize_url",
            });
        };
        let vars = Vars {
            app_key: Some(self.app_key.as_str()),
            redirect_uri: Some(request.redirect_uri.as_str()),
            state: Some(request.state.expose()),
            ..Vars::default()
        };
        let text = template
            .render(&vars, true)
            .map_err(|v| Error::Internal(format!("authorize_url: no value for {{{v}}}")))?;
        Url::parse(&text).map_err(|e| {
            Error::config(
                Some(&self.tenant),
                Some(self.name.as_str()),
                "options.authorize_url",
                e.to_string(),
            )
        })
    }

    fn classify(&self, code: &UpstreamCode) -> ErrorClass {
        let text = match code {
            UpstreamCode::Number(n) => n.to_string(),
            UpstreamCode::Text(t) => t.clone(),
            UpstreamCode::WithSub(n, _) => n.to_string(),
            UpstreamCode::Http(status) => {
                return self
                    .errors
                    .classes
                    .iter()
                    .find(|(c, _)| *c == format!("HTTP {status}"))
                    .map(|(_, class)| class.clone())
                    .unwrap_or_else(|| envelope::class_of_status(*status));
            }
        };
        self.errors
            .classes
            .iter()
            .find(|(c, _)| *c == text)
            .map(|(_, class)| class.clone())
            .unwrap_or(ErrorClass::Other)
    }
}
