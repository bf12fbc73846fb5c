//! The `options` of a steps-mode tenant, compiled once when the handler is built: the three
//! steps (templates, placements, success tests, extracted values), the authorize URL and the
//! error-code table. Every problem names its field (`options.steps.user_id.extract.user_id`).

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::Method;
use reqwest::header::HeaderName;
use serde::Deserialize;
use serde_json::Value;
use unilogin_core::Result;
use unilogin_core::config::PlatformConfig;
use unilogin_core::mapping::JsonPath;
use unilogin_core::platform::sdk::choice_of;
use url::Url;

use super::errors::{Errors, ErrorsSpec};
use super::template::{RenderError, Template, Var, Vars};
use crate::endpoint_problem;

/// The three steps, in the order they run.
const STEP_NAMES: [&str; 3] = ["app_token", "user_id", "user_detail"];

const fn default_lifetime() -> u64 {
    7200
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
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

/// Where a step's `params` go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Placement {
    Query,
    Form,
    Json,
    Header,
}

/// One compiled step.
#[derive(Debug)]
pub(super) struct Step {
    pub endpoint: &'static str,
    pub method: Method,
    pub url: Template,
    pub placement: Placement,
    pub params: Vec<(String, Template)>,
    pub headers: Vec<(HeaderName, Template)>,
    pub success: Option<(JsonPath, Value)>,
    pub extract: BTreeMap<String, JsonPath>,
}

/// The compiled options.
#[derive(Debug)]
pub(super) struct Options {
    pub app_token: Step,
    pub user_id: Step,
    pub user_detail: Step,
    pub authorize: Template,
    pub lifetime: Duration,
    pub errors: Errors,
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

impl Options {
    /// Compiles the options of `config`, validating every step.
    pub(super) fn parse(config: &PlatformConfig) -> Result<Self> {
        let raw: Raw = serde_json::from_value(Value::Object(config.options.clone()))
            .map_err(|e| config.error("options", format!("{e} (mode `steps`)")))?;
        if config.app_secret.expose().trim().is_empty() {
            return Err(config.error(
                "app_secret",
                "required in mode `steps` (public clients exist only in mode `oidc`)",
            ));
        }
        let mut compiled: BTreeMap<&'static str, Step> = BTreeMap::new();
        for (i, spec) in raw.steps.iter().enumerate() {
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
                let reason = format!(
                    "missing step `{name}` (the steps are {})",
                    STEP_NAMES.join(", ")
                );
                config.error(&format!("options.steps.{name}"), reason)
            })
        };
        let (app_token, user_id, user_detail) =
            (take("app_token")?, take("user_id")?, take("user_detail")?);
        // A steps-mode code is redeemed only by finishing the redirect login it came back to.
        let text = raw.authorize_url.as_deref().ok_or_else(|| {
            config.error(
                "options.authorize_url",
                "required: steps-mode codes are redeemed only through the redirect login (the platform's page sends the code back with the state)",
            )
        })?;
        let authorize = Template::parse_url(text, &[Var::AppKey, Var::RedirectUri, Var::State])
            .map_err(|r| config.error("options.authorize_url", r))?;
        check_rendered_url(config, "options.authorize_url", &authorize)?;
        let options = Self {
            app_token,
            user_id,
            user_detail,
            authorize,
            lifetime: Duration::from_secs(raw.token_lifetime_seconds.max(60)),
            errors: Errors::parse(config, &raw.errors)?,
        };
        options.check_no_secret_in_clear(config)?;
        Ok(options)
    }

    /// Secrets belong in placeholders: refuse a configuration that spells the secret out.
    fn check_no_secret_in_clear(&self, config: &PlatformConfig) -> Result<()> {
        let secret = config.app_secret.expose();
        if secret.len() < 4 {
            return Ok(());
        }
        for (name, step) in [
            ("app_token", &self.app_token),
            ("user_id", &self.user_id),
            ("user_detail", &self.user_detail),
        ] {
            let params = step.params.iter().map(|(k, t)| (format!("params.{k}"), t));
            let headers = step
                .headers
                .iter()
                .map(|(k, t)| (format!("headers.{k}"), t));
            let texts = std::iter::once(("url".to_string(), &step.url))
                .chain(params)
                .chain(headers);
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
}

/// The field `field` (below `options`, so not [`choice`](unilogin_core::platform::sdk::choice))
/// as one of `choices` (trimmed; absent means the first), through the SDK's `choice_of`.
fn one_of<T: Clone>(
    config: &PlatformConfig,
    field: &str,
    value: Option<&str>,
    choices: &[(&str, T)],
) -> Result<T> {
    let chosen = choice_of(config, field, value.map(str::trim), choices)?;
    chosen
        .or_else(|| choices.first().map(|(_, t)| t.clone()))
        .ok_or_else(|| config.error(field, "no choices"))
}

fn compile_step(config: &PlatformConfig, name: &'static str, spec: &StepSpec) -> Result<Step> {
    let field = |f: &str| format!("options.steps.{name}.{f}");
    let allowed = allowed_vars(name);
    let methods = [
        ("GET", Method::GET),
        ("POST", Method::POST),
        ("PUT", Method::PUT),
        ("PATCH", Method::PATCH),
    ];
    let method = spec.method.as_deref().map(str::to_ascii_uppercase);
    let method = one_of(config, &field("method"), method.as_deref(), &methods)?;
    let url =
        Template::parse_url(&spec.url, allowed).map_err(|r| config.error(&field("url"), r))?;
    check_rendered_url(config, &field("url"), &url)?;
    let placements = [
        ("query", Placement::Query),
        ("form", Placement::Form),
        ("json", Placement::Json),
        ("header", Placement::Header),
    ];
    let placement = one_of(
        config,
        &field("params_in"),
        spec.params_in.as_deref(),
        &placements,
    )?;
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
    let path = |f: &str, p: &str| {
        JsonPath::compile(p).map_err(|r| config.error(&field(f), format!("{p}: {r}")))
    };
    let success = match &spec.success {
        None => None,
        Some(s) => Some((path("success.path", &s.path)?, s.equals.clone())),
    };
    let (known, required) = extract_keys(name);
    let mut extract = BTreeMap::new();
    for (k, p) in &spec.extract {
        if !known.contains(&k.as_str()) {
            let reason = if known.is_empty() {
                format!("step `{name}` extracts nothing (its body is the user document)")
            } else {
                format!(
                    "unknown value `{k}`: step `{name}` extracts {}",
                    known.join(", ")
                )
            };
            return Err(config.error(&field(&format!("extract.{k}")), reason));
        }
        extract.insert(k.clone(), path(&format!("extract.{k}"), p)?);
    }
    if let Some(k) = required.iter().find(|k| !extract.contains_key(**k)) {
        return Err(config.error(&field(&format!("extract.{k}")), "required"));
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
    let text = t.render(&sample).map_err(|e| match e {
        RenderError::Missing(v) => config.error(field, format!("no value for {{{v}}}")),
        RenderError::UnsafeInPath(v) => config.error(field, format!("unsafe sample for {{{v}}}")),
    })?;
    let url =
        Url::parse(&text).map_err(|e| config.error(field, format!("not an absolute URL: {e}")))?;
    endpoint_problem(&url).map_or(Ok(()), |problem| Err(config.error(field, problem)))
}
