//! The rules format: parsing a platform's section (from YAML or from tenant overrides) and
//! compiling it into [`RuleSet`], checking everything that can be checked before a login.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde_json::{Map, Value};

use super::jsonpath::CompiledPath;
use super::subject::SubjectKind;
use crate::error::{Error, Result};

/// The fixed fields of a [`UserProfile`](super::UserProfile) that rules can fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Field {
    UserId,
    UnionId,
    OpenId,
    Name,
    Mobile,
    MobileCountryCode,
    MobileVerified,
    Email,
    EmailVerified,
    Avatar,
    EmployeeNo,
    JobTitle,
    DepartmentIds,
    Active,
}

/// What a field holds, which decides how selected JSON values are converted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// One string (ids, names, contact data).
    Text,
    /// A list of strings (department ids).
    TextList,
    /// `true` / `false`.
    Bool,
    /// Any JSON value (custom `extra` fields).
    Json,
}

impl Field {
    pub(crate) const ALL: [Field; 14] = [
        Field::UserId,
        Field::UnionId,
        Field::OpenId,
        Field::Name,
        Field::Mobile,
        Field::MobileCountryCode,
        Field::MobileVerified,
        Field::Email,
        Field::EmailVerified,
        Field::Avatar,
        Field::EmployeeNo,
        Field::JobTitle,
        Field::DepartmentIds,
        Field::Active,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            Field::UserId => "user_id",
            Field::UnionId => "union_id",
            Field::OpenId => "open_id",
            Field::Name => "name",
            Field::Mobile => "mobile",
            Field::MobileCountryCode => "mobile_country_code",
            Field::MobileVerified => "mobile_verified",
            Field::Email => "email",
            Field::EmailVerified => "email_verified",
            Field::Avatar => "avatar",
            Field::EmployeeNo => "employee_no",
            Field::JobTitle => "job_title",
            Field::DepartmentIds => "department_ids",
            Field::Active => "active",
        }
    }

    fn from_name(name: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.name() == name)
    }

    pub(crate) fn kind(self) -> Kind {
        match self {
            Field::DepartmentIds => Kind::TextList,
            Field::Active | Field::MobileVerified | Field::EmailVerified => Kind::Bool,
            _ => Kind::Text,
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// The field that holds identifiers of `kind`.
    pub(crate) fn of_subject(kind: SubjectKind) -> Field {
        match kind {
            SubjectKind::UserId => Field::UserId,
            SubjectKind::UnionId => Field::UnionId,
            SubjectKind::OpenId => Field::OpenId,
        }
    }
}

/// The fixed set of value transforms, applied in the order written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transform {
    /// Remove leading and trailing whitespace.
    Trim,
    /// Lower-case the text.
    Lowercase,
    /// Turn a JSON number into its decimal text.
    NumberToString,
    /// Remove a leading `+86` / `0086` / `86-` country code from a phone number.
    StripCountryCode,
    /// Treat `""`, `[]` and `{}` as absent.
    EmptyToNone,
}

impl Transform {
    const ALL: [Transform; 5] = [
        Transform::Trim,
        Transform::Lowercase,
        Transform::NumberToString,
        Transform::StripCountryCode,
        Transform::EmptyToNone,
    ];

    fn name(self) -> &'static str {
        match self {
            Transform::Trim => "trim",
            Transform::Lowercase => "lowercase",
            Transform::NumberToString => "number_to_string",
            Transform::StripCountryCode => "strip_country_code",
            Transform::EmptyToNone => "empty_to_none",
        }
    }

    fn from_name(name: &str) -> Option<Transform> {
        Transform::ALL.into_iter().find(|t| t.name() == name)
    }
}

/// One compiled field rule: the primary path first, then the backups in order.
#[derive(Clone)]
pub(crate) struct Rule {
    pub(crate) paths: Box<[CompiledPath]>,
    pub(crate) required: bool,
    pub(crate) many: bool,
    pub(crate) transforms: Box<[Transform]>,
    pub(crate) matches: Option<Value>,
    /// `mobile` only: the rule asked for `strip_country_code`, which the engine's
    /// normalisation does for every mobile; this keeps its reading of a bare `86-` prefix.
    pub(crate) bare_cn: bool,
}

impl fmt::Debug for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let paths: Vec<&str> = self.paths.iter().map(CompiledPath::as_str).collect();
        let mut d = f.debug_struct("Rule");
        d.field("paths", &paths)
            .field("required", &self.required)
            .field("many", &self.many)
            .field("transforms", &self.transforms);
        if let Some(m) = &self.matches {
            d.field("matches", m);
        }
        d.finish()
    }
}

/// A platform's complete, compiled rule set.
#[derive(Debug, Clone)]
pub(crate) struct RuleSet {
    pub(crate) fields: [Option<Rule>; Field::ALL.len()],
    pub(crate) extra: BTreeMap<String, Rule>,
    pub(crate) raw: bool,
    /// The platform's default subject (`subject:` in its rules file; `user_id` if unset).
    pub(crate) subject: SubjectKind,
}

impl RuleSet {
    fn empty() -> Self {
        Self {
            fields: Default::default(),
            extra: BTreeMap::new(),
            raw: false,
            subject: SubjectKind::UserId,
        }
    }

    pub(crate) fn field(&self, f: Field) -> Option<&Rule> {
        self.fields[f.index()].as_ref()
    }
}

/// The serde shape of one rule written as a map.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSpec {
    path: String,
    #[serde(default)]
    backup: OneOrMany,
    #[serde(default)]
    required: Option<bool>,
    #[serde(default)]
    many: Option<bool>,
    #[serde(default)]
    transform: OneOrMany,
    #[serde(default)]
    matches: Option<Value>,
}

/// `backup` and `transform` accept one string or a list of strings.
#[derive(Deserialize, Default)]
#[serde(untagged)]
enum OneOrMany {
    #[default]
    None,
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::None => Vec::new(),
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

/// Names for error messages: `mapping.<platform>.<field>`.
struct Ctx<'a> {
    platform: &'a str,
}

impl Ctx<'_> {
    fn err(&self, field: &str, path: Option<&str>, problem: impl fmt::Display) -> Error {
        let reason = match path {
            Some(p) => format!("{p}: {problem}"),
            None => problem.to_string(),
        };
        Error::config(
            None,
            Some(self.platform),
            format!("mapping.{}.{field}", self.platform),
            reason,
        )
    }
}

/// Largest rules document accepted (a real one is a few KiB).
pub(crate) const MAX_RULES_BYTES: usize = 256 * 1024;
/// Most paths (primary + backups) in one rule.
const MAX_PATHS: usize = 16;
/// Most `extra` fields in one rule set.
const MAX_EXTRA: usize = 256;

/// Parses YAML text into a JSON value, with a one-line error.
pub(crate) fn parse_yaml(platform: &str, field: &str, yaml: &str) -> Result<Value> {
    let ctx = Ctx { platform };
    if yaml.len() > MAX_RULES_BYTES {
        return Err(ctx.err(
            field,
            None,
            format!("the rules are larger than {MAX_RULES_BYTES} bytes"),
        ));
    }
    let options = serde_saphyr::options! { with_snippet: false };
    serde_saphyr::from_str_with_options::<Value>(yaml, options).map_err(|e| {
        let msg = e.to_string();
        let one_line = msg.split_whitespace().collect::<Vec<_>>().join(" ");
        ctx.err(field, None, format!("invalid YAML: {one_line}"))
    })
}

/// Compiles the section of one platform. With `base`, the section is an override: every field it
/// names replaces (or, with `null`, removes) the base's rule for that field; `extra` is merged
/// name by name; everything else is kept from `base`.
pub(crate) fn compile_section(
    platform: &str,
    section: &Value,
    base: Option<&RuleSet>,
) -> Result<RuleSet> {
    let ctx = Ctx { platform };
    let mut set = base.cloned().unwrap_or_else(RuleSet::empty);
    let map = match section {
        Value::Object(map) => map,
        Value::Null if base.is_some() => return Ok(set),
        other => {
            return Err(trim_field(ctx.err(
                "",
                None,
                format!(
                    "expected a map of field -> rule, found {}",
                    describe_type(other)
                ),
            )));
        }
    };
    for (key, value) in map {
        match key.as_str() {
            "extra" => compile_extra(&ctx, value, &mut set)?,
            "subject" if base.is_some() => {
                return Err(ctx.err(
                    "subject",
                    None,
                    "the subject is chosen with the configuration's `identity.subject`, not in mapping overrides",
                ));
            }
            "subject" => {
                set.subject = match value {
                    Value::String(s) => s.parse().map_err(|e| ctx.err("subject", None, e))?,
                    other => {
                        return Err(ctx.err(
                            "subject",
                            None,
                            format!(
                                "expected user_id, union_id or open_id, found {}",
                                describe_type(other)
                            ),
                        ));
                    }
                };
            }
            "raw" => match value {
                Value::Bool(b) => set.raw = *b,
                Value::Null => set.raw = false,
                other => {
                    return Err(ctx.err(
                        "raw",
                        None,
                        format!("expected true or false, found {}", describe_type(other)),
                    ));
                }
            },
            name => {
                let Some(field) = Field::from_name(name) else {
                    let known: Vec<&str> = Field::ALL.iter().map(|f| f.name()).collect();
                    return Err(ctx.err(
                        name,
                        first_path(value),
                        format!(
                            "unknown field; known fields are {}, extra (custom fields), raw and subject",
                            known.join(", ")
                        ),
                    ));
                };
                set.fields[field.index()] = if value.is_null() {
                    None
                } else {
                    Some(compile_rule(&ctx, name, field.kind(), Some(field), value)?)
                };
            }
        }
    }
    check_subject_rule(platform, &set, set.subject)?;
    Ok(set)
}

/// The subject's field must have a rule: every profile needs its subject.
pub(crate) fn check_subject_rule(
    platform: &str,
    set: &RuleSet,
    subject: SubjectKind,
) -> Result<()> {
    let field = Field::of_subject(subject);
    if set.field(field).is_none() {
        let ctx = Ctx { platform };
        return Err(ctx.err(
            field.name(),
            None,
            format!("a rule is required: `{subject}` is the subject, which every profile needs"),
        ));
    }
    Ok(())
}

fn compile_extra(ctx: &Ctx<'_>, value: &Value, set: &mut RuleSet) -> Result<()> {
    let map = match value {
        Value::Null => {
            set.extra.clear();
            return Ok(());
        }
        Value::Object(map) => map,
        other => {
            return Err(ctx.err(
                "extra",
                None,
                format!(
                    "expected a map of name -> rule, found {}",
                    describe_type(other)
                ),
            ));
        }
    };
    for (name, rule) in map {
        let label = format!("extra.{name}");
        if name.is_empty()
            || name.len() > 64
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        {
            return Err(ctx.err(
                &label,
                first_path(rule),
                "an extra field name must be 1 to 64 ASCII letters, digits, `_`, `-` or `.`",
            ));
        }
        if rule.is_null() {
            set.extra.remove(name);
        } else {
            let compiled = compile_rule(ctx, &label, Kind::Json, None, rule)?;
            set.extra.insert(name.clone(), compiled);
        }
    }
    if set.extra.len() > MAX_EXTRA {
        return Err(ctx.err("extra", None, format!("more than {MAX_EXTRA} extra fields")));
    }
    Ok(())
}

fn first_path(rule: &Value) -> Option<&str> {
    match rule {
        Value::String(s) => Some(s),
        Value::Object(m) => m.get("path").and_then(Value::as_str),
        _ => None,
    }
}

fn compile_rule(
    ctx: &Ctx<'_>,
    label: &str,
    kind: Kind,
    field: Option<Field>,
    value: &Value,
) -> Result<Rule> {
    let spec = match value {
        Value::String(path) => RuleSpec {
            path: path.clone(),
            backup: OneOrMany::None,
            required: None,
            many: None,
            transform: OneOrMany::None,
            matches: None,
        },
        Value::Object(map) => parse_spec(map).map_err(|e| ctx.err(label, first_path(value), e))?,
        other => {
            return Err(ctx.err(
                label,
                None,
                format!(
                    "expected a path or a map {{ path, backup, required, many, transform, matches }}, found {}",
                    describe_type(other)
                ),
            ));
        }
    };
    let primary = spec.path.trim().to_string();
    let here = |problem: String| ctx.err(label, Some(&primary), problem);

    let backups = spec.backup.into_vec();
    if backups.len() + 1 > MAX_PATHS {
        return Err(here(format!(
            "at most {} backup paths are allowed",
            MAX_PATHS - 1
        )));
    }
    let mut paths = Vec::with_capacity(1 + backups.len());
    for p in std::iter::once(&spec.path).chain(backups.iter()) {
        let compiled = CompiledPath::compile(p).map_err(|e| ctx.err(label, Some(p.trim()), e))?;
        paths.push(compiled);
    }

    let mut transforms = Vec::new();
    for name in spec.transform.into_vec() {
        let Some(t) = Transform::from_name(name.trim()) else {
            let known: Vec<&str> = Transform::ALL.iter().map(|t| t.name()).collect();
            return Err(here(format!(
                "unknown transform `{name}`; the transforms are {}",
                known.join(", ")
            )));
        };
        if kind == Kind::Bool
            && matches!(t, Transform::StripCountryCode | Transform::NumberToString)
        {
            return Err(here(format!(
                "transform `{}` does not apply to `{label}`, which is true/false",
                t.name()
            )));
        }
        transforms.push(t);
    }

    let many = match (kind, spec.many) {
        (Kind::TextList, Some(false)) => {
            return Err(here(format!(
                "`{label}` is a list; `many: false` is not allowed"
            )));
        }
        (Kind::TextList, _) => true,
        (Kind::Text | Kind::Bool, Some(true)) => {
            return Err(here(format!(
                "`{label}` holds one value; `many: true` is not allowed"
            )));
        }
        (Kind::Text | Kind::Bool, _) => false,
        (Kind::Json, m) => m.unwrap_or(false),
    };

    if spec.matches.is_some() {
        match kind {
            Kind::Bool => {}
            Kind::Json if !many => {}
            Kind::Json => {
                return Err(here(
                    "`matches` gives one true/false value and cannot be combined with `many`"
                        .to_string(),
                ));
            }
            Kind::Text | Kind::TextList => {
                return Err(here(format!(
                    "`matches` gives true/false and only applies to `active` and extra fields, not `{label}`"
                )));
            }
        }
    }
    let required = spec.required.unwrap_or(false);
    // On `mobile` the engine splits every country code off (into `mobile_country_code`), so
    // `strip_country_code` there only keeps its one extra reading: a bare `86-` prefix.
    let bare_cn = field == Some(Field::Mobile) && transforms.contains(&Transform::StripCountryCode);
    if bare_cn {
        transforms.retain(|t| *t != Transform::StripCountryCode);
    }

    Ok(Rule {
        paths: paths.into_boxed_slice(),
        required,
        many,
        transforms: transforms.into_boxed_slice(),
        matches: spec.matches,
        bare_cn,
    })
}

fn parse_spec(map: &Map<String, Value>) -> std::result::Result<RuleSpec, String> {
    // `OneOrMany` is untagged, whose serde error says nothing useful; check those keys first.
    for key in ["backup", "transform"] {
        match map.get(key) {
            None | Some(Value::Null | Value::String(_)) => {}
            Some(Value::Array(items)) => {
                if let Some(bad) = items.iter().find(|v| !v.is_string()) {
                    return Err(format!(
                        "`{key}` must list strings, found {}",
                        describe_type(bad)
                    ));
                }
            }
            Some(other) => {
                return Err(format!(
                    "`{key}` must be a string or a list of strings, found {}",
                    describe_type(other)
                ));
            }
        }
    }
    let mut map = map.clone();
    // An explicit `null` means "not given" for the optional keys.
    map.retain(|k, v| !(v.is_null() && k != "path"));
    serde_json::from_value::<RuleSpec>(Value::Object(map)).map_err(|e| e.to_string())
}

pub(crate) fn describe_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

/// Errors about a document or section as a whole: `mapping.<platform>.` -> `mapping.<platform>`.
pub(crate) fn trim_field(mut e: Error) -> Error {
    if let Error::Config { field, .. } = &mut e
        && field.ends_with('.')
    {
        field.pop();
    }
    e
}
