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
//! [`Error::Mapping`] for a required field (or the subject, see [`subject`]) that none of its
//! paths yields, naming the field and every path tried. Every profile is then normalised the
//! same way, whatever the platform ([`normalize`]).
//!
//! ```
//! use serde_json::json;
//! use unilogin_core::mapping::MappingRules;
//! use unilogin_core::{PlatformName, TenantId};
//!
//! let rules = MappingRules::from_yaml("dingtalk", r#"
//! dingtalk:
//!   user_id: { path: "$.result.userid", required: true }
//!   mobile:  { path: "$.result.mobile", backup: ["$.mobile"] }
//!   department_ids: { path: "$.result.dept_id_list[*]", many: true }
//!   extra:
//!     badge: { path: "$.result.job_number" }
//! "#)?;
//!
//! let doc = json!({"result": {"userid": "user001", "dept_id_list": [1, 100], "job_number": "E1"},
//!                  "mobile": "+8613800000000"});
//! let profile = rules.map(&PlatformName::new("dingtalk")?, &TenantId::new("acme")?, &doc)?;
//! assert_eq!(profile.user_id.as_deref(), Some("user001"));
//! assert_eq!(profile.subject.value, "user001"); // the default subject: user_id
//! assert_eq!(profile.mobile.as_deref(), Some("13800000000"));
//! assert_eq!(profile.mobile_country_code.as_deref(), Some("86"));
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
pub mod normalize;
mod rules;
pub mod scopes;
pub mod subject;

pub use scopes::{ScopeRules, ScopeRulesError, is_valid_scope};
pub use subject::{Subject, SubjectKind, UnknownSubjectKind};

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

/// One person as every platform describes them, after mapping and normalisation.
///
/// - **Identifiers**: `user_id`, `union_id` and `open_id` are each present exactly when the
///   platform gave that identifier (none is invented, none stands in for another); `subject`
///   is the one the subject policy chose (see [`subject`]), always present.
/// - **Normalised** (every platform alike, see [`normalize`]): text fields are trimmed and
///   never `Some("")`; `mobile` is the national number in digits and `mobile_country_code` the
///   country calling code, however the platform wrote them; `email` is kept as given for
///   display, [`email_for_matching`](Self::email_for_matching) is its matching form.
///
/// Deserializing accepts profiles serialized before `subject` existed: their subject is their
/// `user_id`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(try_from = "ProfileWire")]
pub struct UserProfile {
    /// The platform that authenticated the person.
    pub platform: PlatformName,
    /// The tenant the login was for.
    pub tenant: TenantId,
    /// The identifier the subject policy chose, and its value (equal to that field).
    pub subject: Subject,
    /// The platform's id of the person inside the tenant's organisation (DingTalk / WeCom
    /// `userid`, Feishu `user_id`, OIDC `sub`), when the platform gave it.
    pub user_id: Option<String>,
    /// The id that is stable across apps of the same developer or organisation, where the
    /// platform has one (DingTalk `unionid`, Feishu `union_id`, WeCom `open_userid`).
    pub union_id: Option<String>,
    /// The id scoped to this one app, where the platform has one (DingTalk web `openId`, Feishu
    /// `open_id`).
    pub open_id: Option<String>,
    /// Display name.
    pub name: Option<String>,
    /// Mobile number: the national number, digits only (`13800000000`).
    pub mobile: Option<String>,
    /// The mobile's country calling code, digits only (`86`), wherever the platform reported
    /// it (a separate field, or inside the number).
    #[serde(default)]
    pub mobile_country_code: Option<String>,
    /// Whether the platform says it verified the mobile number, when it says.
    #[serde(default)]
    pub mobile_verified: Option<bool>,
    /// E-mail address, as the platform gave it (trimmed).
    pub email: Option<String>,
    /// Whether the platform says it verified the e-mail address (OIDC `email_verified`), when
    /// it says.
    #[serde(default)]
    pub email_verified: Option<bool>,
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

impl UserProfile {
    /// The identifier of `kind`, if the platform gave it.
    ///
    /// ```
    /// # use unilogin_core::mapping::{SubjectKind, UserProfile};
    /// let p: UserProfile = serde_json::from_value(serde_json::json!({
    ///     "platform": "feishu", "tenant": "acme",
    ///     "subject": {"kind": "union_id", "value": "on_1"}, "union_id": "on_1", "open_id": "ou_1"
    /// })).unwrap();
    /// assert_eq!(p.id(SubjectKind::OpenId), Some("ou_1"));
    /// assert_eq!(p.id(SubjectKind::UserId), None);
    /// assert_eq!(p.identifiers().count(), 2);
    /// ```
    pub fn id(&self, kind: SubjectKind) -> Option<&str> {
        match kind {
            SubjectKind::UserId => self.user_id.as_deref(),
            SubjectKind::UnionId => self.union_id.as_deref(),
            SubjectKind::OpenId => self.open_id.as_deref(),
        }
    }

    /// Every identifier the platform gave, with its kind.
    pub fn identifiers(&self) -> impl Iterator<Item = (SubjectKind, &str)> {
        SubjectKind::ALL
            .into_iter()
            .filter_map(|k| self.id(k).map(|v| (k, v)))
    }

    /// The e-mail address in its matching form: trimmed and lower-cased (`email` keeps the
    /// case the platform gave, for display).
    ///
    /// ```
    /// # use unilogin_core::mapping::UserProfile;
    /// let p: UserProfile = serde_json::from_value(serde_json::json!({
    ///     "platform": "dingtalk", "tenant": "acme", "user_id": "u1", "email": "Zhang.San@Example.COM"
    /// })).unwrap();
    /// assert_eq!(p.email.as_deref(), Some("Zhang.San@Example.COM"));
    /// assert_eq!(p.email_for_matching().as_deref(), Some("zhang.san@example.com"));
    /// ```
    pub fn email_for_matching(&self) -> Option<String> {
        let e = self.email.as_deref()?.trim();
        (!e.is_empty()).then(|| e.to_lowercase())
    }

    /// The mobile number in E.164 form (`+8613800000000`), when its country code is known and
    /// the number is digits.
    ///
    /// ```
    /// # use unilogin_core::mapping::UserProfile;
    /// let p: UserProfile = serde_json::from_value(serde_json::json!({
    ///     "platform": "dingtalk", "tenant": "acme", "user_id": "u1",
    ///     "mobile": "13800000000", "mobile_country_code": "86"
    /// })).unwrap();
    /// assert_eq!(p.mobile_e164().as_deref(), Some("+8613800000000"));
    /// ```
    pub fn mobile_e164(&self) -> Option<String> {
        let number = self.mobile.as_deref()?;
        let cc = self.mobile_country_code.as_deref()?;
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        (digits(number) && digits(cc)).then(|| format!("+{cc}{number}"))
    }
}

/// The serialized form, which may predate `subject`.
#[derive(Deserialize)]
struct ProfileWire {
    platform: PlatformName,
    tenant: TenantId,
    #[serde(default)]
    subject: Option<Subject>,
    #[serde(default)]
    user_id: Option<String>,
    #[serde(default)]
    union_id: Option<String>,
    #[serde(default)]
    open_id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    mobile: Option<String>,
    #[serde(default)]
    mobile_country_code: Option<String>,
    #[serde(default)]
    mobile_verified: Option<bool>,
    #[serde(default)]
    email: Option<String>,
    #[serde(default)]
    email_verified: Option<bool>,
    #[serde(default)]
    avatar: Option<String>,
    #[serde(default)]
    employee_no: Option<String>,
    #[serde(default)]
    job_title: Option<String>,
    #[serde(default)]
    department_ids: Vec<String>,
    #[serde(default)]
    active: Option<bool>,
    #[serde(default)]
    extra: BTreeMap<String, Value>,
    #[serde(default)]
    raw: Option<Value>,
}

impl TryFrom<ProfileWire> for UserProfile {
    type Error = String;

    fn try_from(w: ProfileWire) -> std::result::Result<Self, String> {
        let subject = match w.subject {
            Some(s) => s,
            None => Subject {
                kind: SubjectKind::UserId,
                value: w
                    .user_id
                    .clone()
                    .ok_or("a profile needs a `subject` (or, as before subjects, a `user_id`)")?,
            },
        };
        let profile = UserProfile {
            platform: w.platform,
            tenant: w.tenant,
            subject,
            user_id: w.user_id,
            union_id: w.union_id,
            open_id: w.open_id,
            name: w.name,
            mobile: w.mobile,
            mobile_country_code: w.mobile_country_code,
            mobile_verified: w.mobile_verified,
            email: w.email,
            email_verified: w.email_verified,
            avatar: w.avatar,
            employee_no: w.employee_no,
            job_title: w.job_title,
            department_ids: w.department_ids,
            active: w.active,
            extra: w.extra,
            raw: w.raw,
        };
        if profile.id(profile.subject.kind) != Some(profile.subject.value.as_str()) {
            return Err(format!(
                "the subject is `{}` but the profile's `{}` is not its value",
                profile.subject.kind, profile.subject.kind
            ));
        }
        Ok(profile)
    }
}

/// Identifiers the code step already learnt (the platform's answer to the code), used for
/// the identifier fields the detail document does not give.
#[derive(Debug, Clone, Copy, Default)]
pub struct KnownIds<'a> {
    /// `user_id`.
    pub user_id: Option<&'a str>,
    /// `union_id`.
    pub union_id: Option<&'a str>,
    /// `open_id`.
    pub open_id: Option<&'a str>,
}

impl KnownIds<'_> {
    fn get(&self, kind: SubjectKind) -> Option<&str> {
        match kind {
            SubjectKind::UserId => self.user_id,
            SubjectKind::UnionId => self.union_id,
            SubjectKind::OpenId => self.open_id,
        }
        .map(str::trim)
        .filter(|v| !v.is_empty())
    }
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
    /// The tenant's choice ([`with_subject`](Self::with_subject)), else the rules' default.
    subject: SubjectKind,
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
            subject: set.subject,
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
        rules::check_subject_rule(&self.platform, &set, self.subject)?;
        Ok(Self {
            platform: Arc::clone(&self.platform),
            rules: Arc::new(set),
            subject: self.subject,
        })
    }

    /// These rules with `subject` as the subject policy (a tenant's `identity.subject`);
    /// `None` keeps the platform's default. The compiled rules are shared, not copied. The
    /// subject's field must have a rule, else an [`Error::Config`] for `identity.subject`.
    ///
    /// ```
    /// use serde_json::json;
    /// use unilogin_core::mapping::{MappingRules, SubjectKind};
    /// use unilogin_core::{PlatformName, TenantId};
    ///
    /// let rules = MappingRules::from_yaml("feishu", r#"
    /// feishu:
    ///   subject: union_id
    ///   user_id: "$.data.user_id"
    ///   union_id: "$.data.union_id"
    ///   open_id: "$.data.open_id"
    /// "#)?;
    /// assert_eq!(rules.subject(), SubjectKind::UnionId);
    /// // Without the employee-id permission Feishu sends no user_id: the login still succeeds.
    /// let doc = json!({"data": {"union_id": "on_1", "open_id": "ou_1"}});
    /// let (feishu, acme) = (PlatformName::new("feishu")?, TenantId::new("acme")?);
    /// let p = rules.map(&feishu, &acme, &doc)?;
    /// assert_eq!((p.subject.kind, p.subject.value.as_str()), (SubjectKind::UnionId, "on_1"));
    /// assert_eq!(p.user_id, None);
    /// // A tenant that chose user_id gets a mapping error instead, never another id.
    /// let strict = rules.with_subject(Some(SubjectKind::UserId))?;
    /// let err = strict.map(&feishu, &acme, &doc).unwrap_err().to_string();
    /// assert!(err.contains("required field `user_id` not found"), "{err}");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn with_subject(&self, subject: Option<SubjectKind>) -> Result<Self> {
        let Some(subject) = subject else {
            return Ok(self.clone());
        };
        if self.rules.field(Field::of_subject(subject)).is_none() {
            return Err(Error::config(
                None,
                Some(&self.platform),
                "identity.subject",
                format!(
                    "`{subject}` cannot be the subject: the mapping rules of `{}` have no `{subject}` rule",
                    self.platform
                ),
            ));
        }
        Ok(Self {
            platform: Arc::clone(&self.platform),
            rules: Arc::clone(&self.rules),
            subject,
        })
    }

    /// The subject policy these rules apply.
    pub fn subject(&self) -> SubjectKind {
        self.subject
    }

    /// The platform name these rules were loaded for (lower case).
    pub fn platform(&self) -> &str {
        &self.platform
    }

    /// Maps `doc`, the platform's user document, into a [`UserProfile`] for `platform` and
    /// `tenant` (recorded in the profile as given), then normalises it (see [`normalize`]).
    ///
    /// Each field takes the value of its first path that yields one. The subject's field and
    /// every field marked `required` must yield a value: otherwise an [`Error::Mapping`] names
    /// the tenant, the field and every path tried with what it found; all missing fields are
    /// reported at once. Optional fields that yield nothing are `None` / empty.
    pub fn map(
        &self,
        platform: &PlatformName,
        tenant: &TenantId,
        doc: &Value,
    ) -> Result<UserProfile> {
        self.map_with(platform, tenant, doc, KnownIds::default())
    }

    /// [`map`](Self::map), with the identifiers the code step learnt (`known`) for the
    /// identifier fields that `doc` does not give.
    pub fn map_with(
        &self,
        platform: &PlatformName,
        tenant: &TenantId,
        doc: &Value,
        known: KnownIds<'_>,
    ) -> Result<UserProfile> {
        let set = &*self.rules;
        let subject_field = Field::of_subject(self.subject);
        let mut missing: Vec<String> = Vec::new();
        // One scratch buffer for the selected values of every path of this profile.
        let mut buf: Vec<&Value> = Vec::with_capacity(8);
        let mut text = |field: Field| -> Option<String> {
            let rule = set.field(field)?;
            eval::eval_text(rule, doc, &mut buf)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let mut id = |kind: SubjectKind| {
            text(Field::of_subject(kind)).or_else(|| known.get(kind).map(str::to_string))
        };
        let user_id = id(SubjectKind::UserId);
        let union_id = id(SubjectKind::UnionId);
        let open_id = id(SubjectKind::OpenId);
        let name = text(Field::Name);
        let mobile_raw = text(Field::Mobile);
        let country_code = text(Field::MobileCountryCode).and_then(|c| normalize::country_code(&c));
        let email = text(Field::Email);
        let avatar = text(Field::Avatar);
        let employee_no = text(Field::EmployeeNo);
        let job_title = text(Field::JobTitle);
        let values = [
            (Field::UserId, user_id.is_some()),
            (Field::UnionId, union_id.is_some()),
            (Field::OpenId, open_id.is_some()),
            (Field::Name, name.is_some()),
            (Field::Mobile, mobile_raw.is_some()),
            (Field::MobileCountryCode, country_code.is_some()),
            (Field::Email, email.is_some()),
            (Field::Avatar, avatar.is_some()),
            (Field::EmployeeNo, employee_no.is_some()),
            (Field::JobTitle, job_title.is_some()),
        ];
        for (field, present) in values {
            let Some(rule) = set.field(field) else {
                continue;
            };
            if !present && (rule.required || field == subject_field) {
                missing.push(describe_missing(field.name(), rule, field.kind(), doc));
            }
        }
        if set.field(subject_field).is_none() {
            // `with_subject` and the compiler refuse this; kept as an error, never a panic.
            missing.push(format!("no rule for the subject `{}`", self.subject));
        }
        let (mobile, mobile_country_code) = match mobile_raw {
            Some(raw) => {
                let bare_cn = set.field(Field::Mobile).is_some_and(|r| r.bare_cn);
                let m = normalize::mobile(&raw, country_code, bare_cn);
                (Some(m.number), m.country_code)
            }
            None => (None, country_code),
        };

        let department_ids = match set.field(Field::DepartmentIds) {
            Some(rule) => eval::eval_text_list(rule, doc, &mut buf)
                .map(|ids| {
                    ids.into_iter()
                        .map(|d| d.trim().to_string())
                        .filter(|d| !d.is_empty())
                        .collect::<Vec<_>>()
                })
                .filter(|ids| !ids.is_empty())
                .unwrap_or_else(|| {
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
        let mut flag = |field: Field| {
            set.field(field).and_then(|rule| {
                let v = eval::eval_bool(rule, doc, &mut buf);
                if v.is_none() && rule.required {
                    missing.push(describe_missing(field.name(), rule, Kind::Bool, doc));
                }
                v
            })
        };
        let active = flag(Field::Active);
        let mobile_verified = flag(Field::MobileVerified);
        let email_verified = flag(Field::EmailVerified);
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

        let subject_value = match self.subject {
            SubjectKind::UserId => user_id.clone(),
            SubjectKind::UnionId => union_id.clone(),
            SubjectKind::OpenId => open_id.clone(),
        };
        let subject = match subject_value {
            Some(value) if missing.is_empty() => Subject {
                kind: self.subject,
                value,
            },
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
            subject,
            user_id,
            union_id,
            open_id,
            name,
            mobile,
            mobile_country_code,
            mobile_verified,
            email,
            email_verified,
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
