//! Mapping engine: compiled JSONPath rules (with backup paths) from YAML into [`UserProfile`]s.
//!
//! Every platform returns the same person in a different JSON shape (DingTalk's `result.userid`,
//! Feishu's `data.user_id`, WeCom's top-level `userid`, an OIDC provider's `sub`), and the shapes
//! drift between API generations. Instead of hand-written field access in each platform crate,
//! each platform ships a small YAML rules file: for every [`UserProfile`] field, a primary
//! JSONPath, ordered backup paths, whether it is required, and a few fixed transforms. Tenants can
//! override single fields in their own configuration.
//!
//! Rules are compiled once ([`MappingRules::from_yaml`], [`MappingRules::with_overrides`]): every
//! path is parsed and every option checked then, so a typo fails when the configuration loads,
//! with an [`Error::Config`] naming the platform, the field, the path and the problem. A login
//! only evaluates the compiled form ([`MappingRules::map`]); the one error it can produce is an
//! [`Error::Mapping`] for a required field that none of its paths yields, naming the field and
//! every path tried.
//!
//! ```
//! use serde_json::json;
//! use unilogin_core::mapping::MappingRules;
//! use unilogin_core::{PlatformName, TenantId};
//!
//! let rules = MappingRules::from_yaml("dingtalk", r#"
//! dingtalk:
//!   user_id: { path: "$.result.userid", required: true }
//!   mobile:  { path: "$.result.mobile", backup: ["$.mobile"], transform: strip_country_code }
//!   department_ids: { path: "$.result.dept_id_list[*]", many: true }
//!   extra:
//!     badge: { path: "$.result.job_number" }
//! "#)?;
//!
//! let doc = json!({"result": {"userid": "user001", "dept_id_list": [1, 100], "job_number": "E1"},
//!                  "mobile": "+8613800000000"});
//! let profile = rules.map(&PlatformName::new("dingtalk")?, &TenantId::new("acme")?, &doc)?;
//! assert_eq!(profile.user_id, "user001");
//! assert_eq!(profile.mobile.as_deref(), Some("13800000000"));
//! assert_eq!(profile.department_ids, ["1", "100"]);
//! assert_eq!(profile.extra["badge"], json!("E1"));
//! assert_eq!(profile.name, None);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The format is described in full in `docs/configuration.md` ("Mapping rules").
//!
//! All JSONPath handling lives in the private `jsonpath` submodule, so the JSONPath engine can
//! be replaced without touching the rest.

mod eval;
mod jsonpath;
mod rules;
pub mod scopes;

pub use scopes::{ScopeRules, ScopeRulesError, is_valid_scope};

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{Error, Result};
use crate::types::{PlatformName, TenantId};

use rules::{Field, Kind, RuleSet};

/// A JSONPath compiled once, in the dialect of the mapping rules, for code that reads single
/// values out of configured paths (for example the custom-oauth crate's steps: success tests
/// and extracted tokens and ids). It keeps every JSONPath engine detail inside this module.
///
/// ```
/// use unilogin_core::mapping::JsonPath;
/// let path = JsonPath::compile("$.payload.user.id")?;
/// let doc = serde_json::json!({"payload": {"user": {"id": 42}}});
/// assert_eq!(path.first(&doc), Some(&serde_json::json!(42)));
/// assert!(JsonPath::compile("payload.user").is_err());
/// # Ok::<(), String>(())
/// ```
#[derive(Clone, Debug)]
pub struct JsonPath(jsonpath::CompiledPath);

impl JsonPath {
    /// Parses `path`; the error is a one-line description of what is wrong with it.
    pub fn compile(path: &str) -> std::result::Result<Self, String> {
        jsonpath::CompiledPath::compile(path).map(Self)
    }

    /// The first non-`null` value the path selects in `doc`, if any.
    pub fn first<'a>(&self, doc: &'a Value) -> Option<&'a Value> {
        let mut out = Vec::new();
        self.0.select_into(doc, &mut out).ok()?;
        out.into_iter().find(|v| !v.is_null())
    }

    /// The path as written (surrounding whitespace removed).
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }
}

/// One person as every platform describes them, after mapping.
///
/// Fields the platform (or the granted permissions) did not provide are `None` / empty, never
/// empty strings standing in for values.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct UserProfile {
    /// The platform that authenticated the person.
    pub platform: PlatformName,
    /// The tenant the login was for.
    pub tenant: TenantId,
    /// The platform's id of the person inside the tenant's organisation (DingTalk / WeCom
    /// `userid`, Feishu `user_id`, OIDC `sub`).
    pub user_id: String,
    /// The id that is stable across apps of the same developer or organisation, where the
    /// platform has one (DingTalk `unionid`, Feishu `union_id`, WeCom `open_userid`).
    pub union_id: Option<String>,
    /// The id scoped to this one app, where the platform has one (DingTalk web `openId`, Feishu
    /// `open_id`).
    pub open_id: Option<String>,
    /// Display name.
    pub name: Option<String>,
    /// Mobile number (the default rules strip a `+86` / `0086` country code).
    pub mobile: Option<String>,
    /// E-mail address.
    pub email: Option<String>,
    /// Avatar URL.
    pub avatar: Option<String>,
    /// Employee number / job number.
    pub employee_no: Option<String>,
    /// Job title / position.
    pub job_title: Option<String>,
    /// Department ids, as text (numeric ids are converted).
    #[serde(default)]
    pub department_ids: Vec<String>,
    /// Whether the account is active in the organisation, when the platform says.
    pub active: Option<bool>,
    /// Custom fields declared under `extra` in the rules; absent values are left out.
    #[serde(default)]
    pub extra: BTreeMap<String, Value>,
    /// The platform's user document, when the rules ask for it with `raw: true`.
    #[serde(default)]
    pub raw: Option<Value>,
}

/// A platform's compiled mapping rules.
///
/// Built once from YAML ([`from_yaml`](Self::from_yaml)), optionally refined per tenant
/// ([`with_overrides`](Self::with_overrides)), then used for every login
/// ([`map`](Self::map)). `Send + Sync`; cloning is cheap (the compiled rules are shared).
#[derive(Clone, Debug)]
pub struct MappingRules {
    platform: Arc<str>,
    rules: Arc<RuleSet>,
}

impl MappingRules {
    /// Compiles the rules under the top-level key `platform` of `yaml`.
    ///
    /// Other top-level keys are ignored, so one file may hold the rules of several platforms.
    /// Any problem (YAML syntax, a missing section, an unknown field or option, an invalid path,
    /// an unknown transform, an option that does not fit the field) is an [`Error::Config`]
    /// whose `field` is `mapping.<platform>.<field>` and whose `reason` starts with the path.
    ///
    /// ```
    /// use unilogin_core::{Error, mapping::MappingRules};
    ///
    /// let err = MappingRules::from_yaml("wecom", "wecom:\n  user_id: \"$.userid[\"\n").unwrap_err();
    /// let Error::Config { field, reason, .. } = err else { panic!() };
    /// assert_eq!(field, "mapping.wecom.user_id");
    /// assert!(reason.starts_with("$.userid[: invalid JSONPath"), "{reason}");
    /// ```
    pub fn from_yaml(platform: &str, yaml: &str) -> Result<Self> {
        let platform = checked_platform(platform)?;
        let doc = rules::parse_yaml(&platform, "", yaml).map_err(rules::trim_field)?;
        let Value::Object(top) = &doc else {
            return Err(section_error(
                &platform,
                format!(
                    "expected a map with the top-level key `{platform}`, found {}",
                    rules::describe_type(&doc)
                ),
            ));
        };
        let Some((_, section)) = top.iter().find(|(k, _)| k.eq_ignore_ascii_case(&platform)) else {
            let found: Vec<&str> = top.keys().map(String::as_str).collect();
            return Err(section_error(
                &platform,
                format!(
                    "no top-level `{platform}:` section (found: [{}])",
                    found.join(", ")
                ),
            ));
        };
        let set = rules::compile_section(&platform, section, None)?;
        Ok(Self {
            platform: Arc::from(platform.as_str()),
            rules: Arc::new(set),
        })
    }

    /// These rules with a tenant's overrides merged in, field by field.
    ///
    /// `overrides` uses the same schema as the platform's section of the YAML file, without the
    /// platform key: a map of field -> rule (or a string holding that map as YAML or JSON, as it
    /// may be stored in a tenant's configuration). A field named in `overrides` replaces the
    /// whole rule of that field; `null` removes an optional field; `extra` is merged name by
    /// name (`null` removes one extra field); `raw` replaces the flag; fields not named keep
    /// the default rule. `null` overrides change nothing. Errors are reported as in
    /// [`from_yaml`](Self::from_yaml).
    ///
    /// ```
    /// use serde_json::json;
    /// use unilogin_core::mapping::MappingRules;
    /// use unilogin_core::{PlatformName, TenantId};
    ///
    /// let defaults = MappingRules::from_yaml("feishu", r#"
    /// feishu:
    ///   user_id: { path: "$.data.user_id", required: true }
    ///   name: "$.data.name"
    /// "#)?;
    /// let tenant = defaults.with_overrides(&json!({
    ///     "name": {"path": "$.data.en_name", "backup": ["$.data.name"]},
    ///     "extra": {"tenant_key": "$.data.tenant_key"}
    /// }))?;
    /// let doc = json!({"data": {"user_id": "u1", "name": "张三", "en_name": "San Zhang", "tenant_key": "t1"}});
    /// let p = tenant.map(&PlatformName::new("feishu")?, &TenantId::new("acme")?, &doc)?;
    /// assert_eq!(p.name.as_deref(), Some("San Zhang"));
    /// assert_eq!(p.extra["tenant_key"], json!("t1"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_overrides(&self, overrides: &Value) -> Result<Self> {
        let parsed;
        let section = match overrides {
            Value::String(text) => {
                parsed = rules::parse_yaml(&self.platform, "", text).map_err(rules::trim_field)?;
                &parsed
            }
            other => other,
        };
        let set = rules::compile_section(&self.platform, section, Some(&self.rules))?;
        Ok(Self {
            platform: Arc::clone(&self.platform),
            rules: Arc::new(set),
        })
    }

    /// The platform name these rules were loaded for (lower case).
    pub fn platform(&self) -> &str {
        &self.platform
    }

    /// Maps `doc`, the platform's user document, into a [`UserProfile`] for `platform` and
    /// `tenant` (recorded in the profile as given).
    ///
    /// Each field takes the value of its first path that yields one. A required field that no
    /// path yields is an [`Error::Mapping`] naming the tenant, the field and every path tried
    /// with what it found; all missing required fields are reported at once. Optional fields
    /// that yield nothing are `None` / empty.
    pub fn map(
        &self,
        platform: &PlatformName,
        tenant: &TenantId,
        doc: &Value,
    ) -> Result<UserProfile> {
        let set = &*self.rules;
        let mut missing: Vec<String> = Vec::new();
        // One scratch buffer for the selected values of every path of this profile.
        let mut buf: Vec<&Value> = Vec::with_capacity(8);
        let mut text = |field: Field| -> Option<String> {
            let rule = set.field(field)?;
            let v = eval::eval_text(rule, doc, &mut buf);
            if v.is_none() && rule.required {
                missing.push(describe_missing(field.name(), rule, field.kind(), doc));
            }
            v
        };
        let user_id = text(Field::UserId);
        let union_id = text(Field::UnionId);
        let open_id = text(Field::OpenId);
        let name = text(Field::Name);
        let mobile = text(Field::Mobile);
        let email = text(Field::Email);
        let avatar = text(Field::Avatar);
        let employee_no = text(Field::EmployeeNo);
        let job_title = text(Field::JobTitle);

        let department_ids = match set.field(Field::DepartmentIds) {
            Some(rule) => eval::eval_text_list(rule, doc, &mut buf).unwrap_or_else(|| {
                if rule.required {
                    missing.push(describe_missing(
                        Field::DepartmentIds.name(),
                        rule,
                        Kind::TextList,
                        doc,
                    ));
                }
                Vec::new()
            }),
            None => Vec::new(),
        };
        let active = set.field(Field::Active).and_then(|rule| {
            let v = eval::eval_bool(rule, doc, &mut buf);
            if v.is_none() && rule.required {
                missing.push(describe_missing(
                    Field::Active.name(),
                    rule,
                    Kind::Bool,
                    doc,
                ));
            }
            v
        });
        let mut extra = BTreeMap::new();
        for (key, rule) in &set.extra {
            match eval::eval_json(rule, doc, &mut buf) {
                Some(v) => {
                    extra.insert(key.clone(), v);
                }
                None if rule.required => {
                    missing.push(describe_missing(
                        &format!("extra.{key}"),
                        rule,
                        Kind::Json,
                        doc,
                    ));
                }
                None => {}
            }
        }

        let user_id = match user_id {
            Some(id) if missing.is_empty() => id,
            _ => {
                return Err(Error::Mapping {
                    platform: platform.to_string(),
                    message: format!("tenant `{tenant}`: {}", missing.join("; ")),
                });
            }
        };
        Ok(UserProfile {
            platform: platform.clone(),
            tenant: tenant.clone(),
            user_id,
            union_id,
            open_id,
            name,
            mobile,
            email,
            avatar,
            employee_no,
            job_title,
            department_ids,
            active,
            extra,
            raw: set.raw.then(|| doc.clone()),
        })
    }
}

fn describe_missing(field: &str, rule: &rules::Rule, kind: Kind, doc: &Value) -> String {
    let tried = eval::explain(rule, kind, doc);
    tracing::debug!(field, tried = %tried, "required profile field missing");
    format!("required field `{field}` not found; tried {tried}")
}

fn checked_platform(platform: &str) -> Result<String> {
    PlatformName::new(platform)
        .map(|p| p.as_str().to_string())
        .map_err(|e| Error::config(None, Some(platform), "mapping", e.to_string()))
}

fn section_error(platform: &str, reason: String) -> Error {
    Error::config(None, Some(platform), format!("mapping.{platform}"), reason)
}

#[cfg(test)]
mod tests;
