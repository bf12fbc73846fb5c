//! Which scopes a person gets, from their [`UserProfile`], configured per tenant.

use std::collections::BTreeMap;

use super::UserProfile;
use serde::Deserialize;
use serde_json::Value;

/// Why scope rules were refused (the path of the offending part and what is wrong).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("scope rules: {0}")]
pub struct ScopeRulesError(pub String);

/// Whether `s` is a valid OAuth 2.0 scope token (RFC 6749 §3.3): one or more printable ASCII
/// characters other than space, `"` and `\`.
pub fn is_valid_scope(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b == 0x21 || (0x23..=0x5B).contains(&b) || (0x5D..=0x7E).contains(&b))
}

/// Scopes granted from a profile: a default set plus conditional grants. Built from the tenant
/// configuration's `session_scopes` with [`ScopeRules::from_value`].
///
/// The configuration (the tenant's `session_scopes`) is a default set for everyone plus rules
/// that grant more when every condition of their `when` holds:
///
/// ```yaml
/// default: [user:read]
/// rules:
///   - when: { extra: { admin: true } }          # DingTalk `admin: true`, mapped into extra
///     grant: [admin:read, admin:write]
///   - when: { extra: { roles: "财务" } }         # a role name inside a list field
///     grant: [finance:read]
///   - when: { department: ["1001", "1002"] }    # any of these department ids
///     grant: [reports:read]
///   - when: { platform: feishu, subject: on_42 }  # all conditions must hold
///     grant: [beta]
/// ```
///
/// A condition's value is a scalar or a list of scalars meaning "any of". A profile field that
/// is a list (`department_ids`, an `extra` array) matches when any element matches. Scalars
/// compare by their text, so `1001` matches `"1001"` and `true` matches `"true"`; `null` never
/// matches. `user_id` matches only profiles that have one; `subject` matches the subject's
/// value, whichever identifier the subject policy chose.
///
/// ```
/// use unilogin_core::mapping::ScopeRules;
/// let rules = ScopeRules::from_value(&serde_json::json!({
///     "default": ["user:read"],
///     "rules": [{ "when": { "extra": { "admin": true } }, "grant": ["admin:write"] }]
/// })).unwrap();
/// let profile = serde_json::from_value(serde_json::json!({
///     "platform": "dingtalk", "tenant": "acme", "user_id": "u1", "extra": { "admin": true }
/// })).unwrap();
/// assert_eq!(rules.scopes_for(&profile), ["user:read", "admin:write"]);
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ScopeRules {
    default: Vec<String>,
    rules: Vec<Rule>,
}

#[derive(Debug, Clone, PartialEq)]
struct Rule {
    conditions: Vec<Condition>,
    grant: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
enum Condition {
    Platform(Vec<String>),
    UserId(Vec<String>),
    Subject(Vec<String>),
    Department(Vec<String>),
    JobTitle(Vec<String>),
    Extra(String, Vec<String>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRules {
    #[serde(default)]
    default: Vec<String>,
    #[serde(default)]
    rules: Vec<RawRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    when: RawWhen,
    grant: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWhen {
    platform: Option<Value>,
    user_id: Option<Value>,
    subject: Option<Value>,
    department: Option<Value>,
    job_title: Option<Value>,
    #[serde(default)]
    extra: BTreeMap<String, Value>,
}

impl<'de> Deserialize<'de> for ScopeRules {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        Self::from_value(&v).map_err(serde::de::Error::custom)
    }
}

impl ScopeRules {
    /// Parses `{default: [..], rules: [{when: {..}, grant: [..]}]}`. `null` means no scopes.
    /// Unknown keys, empty conditions, empty grants, non-scalar condition values and invalid
    /// scope tokens are errors, so a typo cannot silently grant nothing (or everything).
    pub fn from_value(v: &Value) -> Result<Self, ScopeRulesError> {
        if v.is_null() {
            return Ok(Self::default());
        }
        let raw = RawRules::deserialize(v).map_err(|e| ScopeRulesError(e.to_string()))?;
        let default = check_scopes("default", raw.default)?;
        let mut rules = Vec::with_capacity(raw.rules.len());
        for (i, r) in raw.rules.into_iter().enumerate() {
            let at = format!("rules[{i}]");
            let mut conditions = Vec::new();
            let w = r.when;
            if let Some(v) = w.platform {
                let names = expected(&format!("{at}.when.platform"), &v)?;
                conditions.push(Condition::Platform(
                    names.into_iter().map(|n| n.to_ascii_lowercase()).collect(),
                ));
            }
            if let Some(v) = w.user_id {
                conditions.push(Condition::UserId(expected(
                    &format!("{at}.when.user_id"),
                    &v,
                )?));
            }
            if let Some(v) = w.subject {
                conditions.push(Condition::Subject(expected(
                    &format!("{at}.when.subject"),
                    &v,
                )?));
            }
            if let Some(v) = w.department {
                conditions.push(Condition::Department(expected(
                    &format!("{at}.when.department"),
                    &v,
                )?));
            }
            if let Some(v) = w.job_title {
                conditions.push(Condition::JobTitle(expected(
                    &format!("{at}.when.job_title"),
                    &v,
                )?));
            }
            for (field, v) in w.extra {
                let values = expected(&format!("{at}.when.extra.{field}"), &v)?;
                conditions.push(Condition::Extra(field, values));
            }
            if conditions.is_empty() {
                return Err(ScopeRulesError(format!(
                    "{at}.when has no condition (put scopes for everyone in `default`)"
                )));
            }
            let grant = check_scopes(&format!("{at}.grant"), r.grant)?;
            if grant.is_empty() {
                return Err(ScopeRulesError(format!("{at}.grant is empty")));
            }
            rules.push(Rule { conditions, grant });
        }
        Ok(Self { default, rules })
    }

    /// The scopes for `profile`: the default set, then every matching rule's grants, in
    /// configuration order without duplicates.
    pub fn scopes_for(&self, profile: &UserProfile) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        let mut add = |s: &String| {
            if !out.contains(s) {
                out.push(s.clone());
            }
        };
        self.default.iter().for_each(&mut add);
        for rule in &self.rules {
            if rule.conditions.iter().all(|c| c.matches(profile)) {
                rule.grant.iter().for_each(&mut add);
            }
        }
        out
    }

    /// Whether no scope at all is configured.
    pub fn is_empty(&self) -> bool {
        self.default.is_empty() && self.rules.is_empty()
    }
}

impl Condition {
    fn matches(&self, p: &UserProfile) -> bool {
        match self {
            Condition::Platform(names) => names.iter().any(|n| n == p.platform.as_str()),
            Condition::UserId(ids) => p.user_id.as_ref().is_some_and(|id| ids.contains(id)),
            Condition::Subject(ids) => ids.contains(&p.subject.value),
            Condition::Department(ids) => p.department_ids.iter().any(|d| ids.contains(d)),
            Condition::JobTitle(titles) => p
                .job_title
                .as_ref()
                .is_some_and(|t| titles.iter().any(|x| x == t)),
            Condition::Extra(field, values) => match p.extra.get(field) {
                Some(Value::Array(items)) => items
                    .iter()
                    .filter_map(scalar_text)
                    .any(|t| values.contains(&t)),
                Some(v) => scalar_text(v).is_some_and(|t| values.contains(&t)),
                None => false,
            },
        }
    }
}

fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A condition's expected values: a scalar or a non-empty list of scalars.
fn expected(at: &str, v: &Value) -> Result<Vec<String>, ScopeRulesError> {
    let not_scalar = || {
        ScopeRulesError(format!(
            "{at}: expected a string, number, boolean or a list of them"
        ))
    };
    match v {
        Value::Array(items) if !items.is_empty() => items
            .iter()
            .map(|i| scalar_text(i).ok_or_else(not_scalar))
            .collect(),
        Value::Array(_) => Err(ScopeRulesError(format!("{at}: empty list"))),
        v => scalar_text(v).map(|t| vec![t]).ok_or_else(not_scalar),
    }
}

fn check_scopes(at: &str, scopes: Vec<String>) -> Result<Vec<String>, ScopeRulesError> {
    let mut out: Vec<String> = Vec::with_capacity(scopes.len());
    for s in scopes {
        if !is_valid_scope(&s) {
            return Err(ScopeRulesError(format!(
                "{at}: {s:?} is not a valid scope (printable ASCII without space, '\"' or '\\')"
            )));
        }
        if !out.contains(&s) {
            out.push(s);
        }
    }
    Ok(out)
}
