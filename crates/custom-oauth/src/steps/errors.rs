//! How a steps-mode platform reports errors (`options.errors`): where a failed response
//! carries its code and message, and which codes belong to which class.

use serde::Deserialize;
use serde_json::Value;
use unilogin_core::config::PlatformConfig;
use unilogin_core::envelope;
use unilogin_core::mapping::JsonPath;
use unilogin_core::{ErrorClass, Result, UpstreamCode};

const SETUP_HINT: &str = "the platform rejected the app's set-up: check the app's permissions and the server's egress IP in the platform's allow-list (IP whitelist)";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ErrorsSpec {
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

/// How a tenant's platform reports errors.
#[derive(Debug, Default)]
pub(super) struct Errors {
    pub code: Option<JsonPath>,
    pub message: Option<JsonPath>,
    classes: Vec<(String, ErrorClass)>,
}

impl Errors {
    /// Compiles `options.errors`: its JSONPaths and its code lists (a code in one list only).
    pub(super) fn parse(config: &PlatformConfig, spec: &ErrorsSpec) -> Result<Self> {
        let path = |f: &str, p: &Option<String>| -> Result<Option<JsonPath>> {
            p.as_deref()
                .map(|p| {
                    JsonPath::compile(p).map_err(|r| {
                        config.error(&format!("options.errors.{f}"), format!("{p}: {r}"))
                    })
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
                let field = format!("options.errors.{f}[{i}]");
                let code = match v {
                    Value::String(s) if !s.trim().is_empty() => s.trim().to_string(),
                    Value::Number(n) if n.is_i64() => n.to_string(),
                    _ => {
                        return Err(
                            config.error(&field, "must be an integer or a non-empty string")
                        );
                    }
                };
                if classes.iter().any(|(c, _)| *c == code) {
                    return Err(
                        config.error(&field, format!("code `{code}` is listed in two classes"))
                    );
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

    /// The class of a platform code: the configured list it is in; a body without a code
    /// (`HTTP <status>`) falls back to the status class.
    pub(super) fn class_of(&self, code: &UpstreamCode) -> ErrorClass {
        let text = match code {
            UpstreamCode::Number(n) | UpstreamCode::WithSub(n, _) => n.to_string(),
            UpstreamCode::Text(t) => t.clone(),
            UpstreamCode::Http(status) => format!("HTTP {status}"),
        };
        let found = self.classes.iter().find(|(c, _)| *c == text);
        match (found, code) {
            (Some((_, class)), _) => class.clone(),
            (None, UpstreamCode::Http(status)) => envelope::class_of_status(*status),
            (None, _) => ErrorClass::Other,
        }
    }
}
