//! `cargo xtask new-platform NAME`: scaffolds a platform crate and wires it into the facade.
//!
//! The generated crate is a complete, working handler for a platform with an
//! `{errcode, errmsg, ...}` envelope (token → code → user id → detail). A contributor adapts
//! its endpoints, envelope and error codes to the real platform; the registration, facade
//! feature, default rules and tests are already wired.

use std::path::{Path, PathBuf};

use toml_edit::{Array, DocumentMut, Item, Value, value};

use crate::Result;

/// Validates a platform name: lower-case ASCII letters, digits and `-`, starting with a letter.
pub fn validate_name(name: &str) -> Result {
    let ok = name.len() <= 32
        && name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.ends_with('-');
    if !ok {
        return Err(format!(
            "invalid platform name `{name}`: use lower-case letters, digits and `-`, starting with a letter"
        ));
    }
    if matches!(
        name,
        "core"
            | "unilogin"
            | "full"
            | "redis"
            | "sql"
            | "axum"
            | "testkit"
            | "gateway"
            | "benchkit"
    ) {
        return Err(format!("`{name}` is reserved"));
    }
    Ok(())
}

/// Creates `crates/NAME` and wires it into the workspace and the facade. Returns the files
/// created.
pub fn new_platform(root: &Path, name: &str) -> Result<Vec<PathBuf>> {
    validate_name(name)?;
    let dir = root.join("crates").join(name);
    if dir.exists() {
        return Err(format!("crates/{name} already exists"));
    }
    let ident = name.replace('-', "_");
    let type_name = camel(name);
    let files = [
        ("Cargo.toml", CARGO_TOML),
        ("src/lib.rs", LIB_RS),
        ("rules.yaml", RULES_YAML),
        ("tests/registration.rs", TEST_RS),
    ];
    let mut created = Vec::new();
    for (rel, template) in files {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| format!("creating {}: {e}", parent.display()))?;
        }
        let text = template
            .replace("{{name}}", name)
            .replace("{{ident}}", &ident)
            .replace("{{Type}}", &type_name);
        std::fs::write(&path, text).map_err(|e| format!("writing {}: {e}", path.display()))?;
        created.push(path);
    }
    edit_toml(&root.join("Cargo.toml"), |doc| {
        let members = doc["workspace"]["members"]
            .as_array_mut()
            .ok_or("workspace.members is not an array")?;
        let member = format!("crates/{name}");
        if !members.iter().any(|m| m.as_str() == Some(&member)) {
            members.push(member);
        }
        let deps = doc["workspace"]["dependencies"]
            .as_table_like_mut()
            .ok_or("workspace.dependencies is not a table")?;
        let mut dep = toml_edit::InlineTable::new();
        dep.insert("path", format!("crates/{name}").into());
        dep.insert("version", "0.1.0".into());
        deps.insert(
            &format!("unilogin-{name}"),
            Item::Value(Value::InlineTable(dep)),
        );
        Ok(())
    })?;
    edit_toml(&root.join("crates/unilogin/Cargo.toml"), |doc| {
        let mut dep = toml_edit::InlineTable::new();
        dep.insert("workspace", true.into());
        dep.insert("optional", true.into());
        doc["dependencies"][&format!("unilogin-{name}")] = Item::Value(Value::InlineTable(dep));
        let mut feature = Array::new();
        feature.push(format!("dep:unilogin-{name}"));
        doc["features"][name] = value(feature);
        if let Some(full) = doc["features"]["full"].as_array_mut() {
            full.push(name);
        }
        let platforms = doc["package"]["metadata"]["unilogin"]["platforms"]
            .as_array_mut()
            .ok_or("crates/unilogin/Cargo.toml lacks [package.metadata.unilogin] platforms")?;
        platforms.push(name);
        Ok(())
    })?;
    let facade = root.join("crates/unilogin/src/lib.rs");
    let mut lib = std::fs::read_to_string(&facade)
        .map_err(|e| format!("reading {}: {e}", facade.display()))?;
    lib.push_str(&format!(
        "\n/// The `{name}` platform (feature `{name}`).\n#[cfg(feature = \"{name}\")]\n#[cfg_attr(docsrs, doc(cfg(feature = \"{name}\")))]\npub use unilogin_{ident} as {ident};\n"
    ));
    std::fs::write(&facade, lib).map_err(|e| format!("writing {}: {e}", facade.display()))?;
    Ok(created)
}

fn edit_toml(path: &Path, f: impl FnOnce(&mut DocumentMut) -> Result) -> Result {
    let text =
        std::fs::read_to_string(path).map_err(|e| format!("reading {}: {e}", path.display()))?;
    let mut doc: DocumentMut = text
        .parse()
        .map_err(|e| format!("parsing {}: {e}", path.display()))?;
    f(&mut doc).map_err(|e| format!("{}: {e}", path.display()))?;
    std::fs::write(path, doc.to_string()).map_err(|e| format!("writing {}: {e}", path.display()))
}

fn camel(name: &str) -> String {
    name.split('-')
        .map(|part| {
            let mut c = part.chars();
            match c.next() {
                Some(first) => first.to_ascii_uppercase().to_string() + c.as_str(),
                None => String::new(),
            }
        })
        .collect()
}

const CARGO_TOML: &str = r#"[package]
name = "unilogin-{{name}}"
description = "unilogin platform crate for {{name}}."
version.workspace = true
edition.workspace = true
rust-version.workspace = true
license.workspace = true
repository.workspace = true

[dependencies]
unilogin-core.workspace = true
async-trait.workspace = true
inventory.workspace = true
reqwest.workspace = true
serde.workspace = true
serde_json.workspace = true
url.workspace = true

[dev-dependencies]
tokio = { workspace = true, features = ["full"] }

[lints]
workspace = true
"#;

const RULES_YAML: &str = r#"{{name}}:
  user_id: { path: "$.userid", required: true }
  name: { path: "$.name" }
  mobile: { path: "$.mobile", transform: strip_country_code }
  email: { path: "$.email", transform: lowercase }
  avatar: { path: "$.avatar" }
  department_ids: { path: "$.department[*]", many: true }
"#;

const TEST_RS: &str = r#"//! The crate registers itself and builds a handler from a configuration.

use unilogin_core::config::PlatformConfig;
use unilogin_core::http::{HttpClient, HttpConfig};
use unilogin_core::registry::{PlatformContext, Registry};

// Name the crate so that it is linked and its registration collected.
use unilogin_{{ident}} as _;

#[test]
fn registers_and_builds() {
    assert!(Registry::names().contains(&"{{name}}"));
    let config: PlatformConfig = serde_json::from_value(serde_json::json!({
        "tenant": "acme", "platform": "{{name}}", "app_key": "key", "app_secret": "secret",
        "hosts": {"api": "http://127.0.0.1:9/"}
    }))
    .unwrap();
    let http = HttpClient::new(&HttpConfig::default()).unwrap();
    let handler = Registry::build(PlatformContext { config: &config, http: &http }).unwrap();
    assert_eq!(handler.name().as_str(), "{{name}}");
}
"#;

const LIB_RS: &str = r#"//! # unilogin-{{name}}
//!
//! Platform crate for `{{name}}`, generated by `cargo xtask new-platform`. It speaks an
//! `{errcode, errmsg, ...}` envelope: app token (`GET {api}/gettoken`), code → user id
//! (`GET {api}/user/getuserinfo`), user detail (`GET {api}/user/get`), and an OAuth2 authorize
//! page (`{login}/oauth2/authorize`). Adapt endpoints, envelope and error codes to the real
//! platform; keep the crate to the platform's knowledge (no caching, no field mapping).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use reqwest::Method;
use serde::Deserialize;
use serde_json::Value;
use unilogin_core::config::PlatformConfig;
use unilogin_core::http::HttpClient;
use unilogin_core::platform::{AuthorizeRequest, Identity, Platform, WebCallback};
use unilogin_core::registry::{PlatformContext, PlatformRegistration};
use unilogin_core::token_cache::{FetchedToken, TokenKey};
use unilogin_core::{
    AccessToken, AppKey, AppSecret, AuthCode, Error, ErrorClass, PlatformName, Result, TenantId,
    UpstreamCode, UpstreamCtx,
};
use url::Url;

/// The platform's registered name.
pub const NAME: &str = "{{name}}";

inventory::submit! {
    PlatformRegistration {
        name: NAME,
        description: "{{name}} (generated platform crate)",
        default_rules: include_str!("../rules.yaml"),
        user_agent_markers: &["{{name}}"],
        build: {{Type}}::build,
    }
}

/// The `{{name}}` handler for one tenant.
#[derive(Debug)]
pub struct {{Type}} {
    name: PlatformName,
    tenant: TenantId,
    app_key: AppKey,
    app_secret: AppSecret,
    api: Url,
    login: Url,
    http: HttpClient,
}

#[derive(Deserialize)]
struct Envelope {
    #[serde(default)]
    errcode: i64,
    #[serde(default)]
    errmsg: String,
}

impl {{Type}} {
    /// Builds the handler from a tenant's configuration.
    pub fn build(ctx: PlatformContext<'_>) -> Result<Arc<dyn Platform>> {
        Ok(Arc::new(Self::new(ctx.config, ctx.http.clone())?))
    }

    /// Builds the handler from a tenant's configuration.
    pub fn new(config: &PlatformConfig, http: HttpClient) -> Result<Self> {
        Ok(Self {
            name: config.platform.clone(),
            tenant: config.tenant.clone(),
            app_key: config.app_key.clone(),
            app_secret: config.app_secret.clone(),
            api: config.host("api", "https://api.{{name}}.example/")?,
            login: config.host("login", "https://login.{{name}}.example/")?,
            http,
        })
    }

    fn ctx(&self, endpoint: &'static str) -> UpstreamCtx {
        UpstreamCtx::new(Some(self.tenant.clone()), self.name.clone(), endpoint)
    }

    fn url(&self, path: &str) -> Result<Url> {
        self.api
            .join(path)
            .map_err(|e| Error::config(Some(&self.tenant), Some(NAME), "hosts.api", e.to_string()))
    }

    async fn call(&self, endpoint: &'static str, query: &[(&str, &str)]) -> Result<Value> {
        let ctx = self.ctx(endpoint);
        let request = self.http.request(Method::GET, self.url(endpoint)?).query(query);
        let response = self.http.send(&ctx, request).await?;
        let envelope: Envelope = response.decode(&ctx)?;
        if envelope.errcode != 0 {
            let code = UpstreamCode::Number(envelope.errcode);
            return Err(Error::from_class(self.classify(&code), ctx, code, envelope.errmsg, None));
        }
        Ok(response.body)
    }

    fn string_field(value: &Value, field: &str) -> Option<String> {
        match value.get(field) {
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        }
    }

    async fn identify(&self, app_token: &AccessToken, code: &AuthCode) -> Result<Identity> {
        let body = self
            .call("user/getuserinfo", &[("access_token", app_token.expose()), ("code", code.expose())])
            .await?;
        match Self::string_field(&body, "userid") {
            Some(user_id) => Ok(Identity { user_id: Some(user_id), ..Identity::default() }),
            None => Err(Error::NotInTenant { ctx: self.ctx("user/getuserinfo") }),
        }
    }
}

#[async_trait]
impl Platform for {{Type}} {
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
        let body = self
            .call("gettoken", &[("appkey", self.app_key.as_str()), ("appsecret", self.app_secret.expose())])
            .await?;
        let token = Self::string_field(&body, "access_token").ok_or_else(|| Error::BadResponse {
            ctx: self.ctx("gettoken"),
            status: 200,
            kind: unilogin_core::error::BadBody::Malformed,
            excerpt: "no access_token in a successful response".into(),
        })?;
        let expires_in = body.get("expires_in").and_then(Value::as_u64).unwrap_or(7200);
        Ok(FetchedToken { token: AccessToken::new(token), expires_in: Duration::from_secs(expires_in) })
    }

    async fn identify_h5(&self, app_token: &AccessToken, code: &AuthCode) -> Result<Identity> {
        self.identify(app_token, code).await
    }

    async fn exchange_web_code(&self, app_token: &AccessToken, callback: &WebCallback<'_>) -> Result<Identity> {
        self.identify(app_token, callback.code).await
    }

    async fn user_detail(&self, app_token: &AccessToken, identity: &Identity) -> Result<Value> {
        let user_id = identity.user_id.as_deref().ok_or_else(|| Error::NotInTenant { ctx: self.ctx("user/get") })?;
        self.call("user/get", &[("access_token", app_token.expose()), ("userid", user_id)]).await
    }

    fn authorize_url(&self, request: &AuthorizeRequest<'_>) -> Result<Url> {
        let mut url = self
            .login
            .join("oauth2/authorize")
            .map_err(|e| Error::config(Some(&self.tenant), Some(NAME), "hosts.login", e.to_string()))?;
        url.query_pairs_mut()
            .append_pair("client_id", self.app_key.as_str())
            .append_pair("response_type", "code")
            .append_pair("redirect_uri", request.redirect_uri.as_str())
            .append_pair("state", request.state.expose());
        Ok(url)
    }

    fn classify(&self, code: &UpstreamCode) -> ErrorClass {
        match code {
            UpstreamCode::Number(40014 | 42001) => ErrorClass::TokenInvalid,
            UpstreamCode::Number(40029 | 40078) => ErrorClass::InvalidCode,
            UpstreamCode::Number(45009) => ErrorClass::RateLimited,
            UpstreamCode::Number(-1) => ErrorClass::Transient,
            _ => ErrorClass::Other,
        }
    }
}
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(validate_name("demo").is_ok());
        assert!(validate_name("my-idp2").is_ok());
        for bad in [
            "",
            "Demo",
            "9x",
            "a_b",
            "x-",
            "core",
            "full",
            &"a".repeat(40),
        ] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
        assert_eq!(camel("my-idp"), "MyIdp");
    }
}
