//! # The default-rules mapping checks
//!
//! Every platform crate's `tests/mapping.rs` maps the test kit's reference documents
//! (`unilogin_testkit::fixtures`) with the crate's `DEFAULT_RULES` and checks the profiles field
//! by field. The file keeps only what is its own (its fixtures, expected profiles and
//! [`Case`]s); the engine the cases go through, the profile helpers and the checks every
//! platform shares live here, each check a function taking the platform's name and its rules
//! text:
//!
//! - [`fixtures_map`]: every case maps to its expected profile, or fails with its message;
//! - [`never_yield_empty_strings`]: no string field of a mapped profile is `Some("")`;
//! - [`rules_file_holds_exactly_its_platform`]: the rules file loads for its platform only;
//! - [`registration_carries_rules`]: the platform's registration ships these rules.

use std::collections::BTreeMap;

use serde_json::Value;
use unilogin_core::mapping::{MappingRules, Subject, SubjectKind, UserProfile};
use unilogin_core::{Error, PlatformName, Registry};

use crate::tenant;

/// The platforms with a default rules file; each file must load for its own platform only.
pub const PLATFORMS: [&str; 4] = ["dingtalk", "feishu", "wecom", "custom-oauth"];

/// What a [`Case`] must map to.
pub enum Want {
    /// This profile, field by field.
    Profile(Box<UserProfile>),
    /// A mapping error whose message contains all of these.
    Missing(&'static [&'static str]),
}

/// One document and what the default rules must make of it.
pub struct Case {
    /// Names the case in failure messages.
    pub name: &'static str,
    /// The document as the platform crate hands it to the engine.
    pub doc: Value,
    /// The expected outcome.
    pub want: Want,
}

/// A fixture's text parsed as JSON.
pub fn fixture(text: &str) -> Value {
    serde_json::from_str(text).expect("fixture is JSON")
}

/// `base` with the top-level key `key` set to `value`.
pub fn with(mut base: Value, key: &str, value: Value) -> Value {
    base.as_object_mut()
        .expect("object document")
        .insert(key.to_string(), value);
    base
}

/// The platform `name` as a [`PlatformName`].
pub fn platform(name: &str) -> PlatformName {
    PlatformName::new(name).unwrap()
}

/// The platform's default rules, loaded from `rules` (its `DEFAULT_RULES`).
pub fn rules(name: &str, rules: &str) -> MappingRules {
    MappingRules::from_yaml(name, rules)
        .unwrap_or_else(|e| panic!("{name}: default rules do not load: {e}"))
}

/// A profile of platform `name` with only the identity filled (`user_id`, which is also the
/// subject); cases fill the rest.
pub fn blank(name: &str, user_id: &str) -> UserProfile {
    UserProfile {
        platform: platform(name),
        tenant: tenant(),
        subject: Subject {
            kind: SubjectKind::UserId,
            value: user_id.to_string(),
        },
        user_id: Some(user_id.to_string()),
        union_id: None,
        open_id: None,
        name: None,
        mobile: None,
        mobile_country_code: None,
        mobile_verified: None,
        email: None,
        email_verified: None,
        avatar: None,
        employee_no: None,
        job_title: None,
        department_ids: Vec::new(),
        active: None,
        extra: BTreeMap::new(),
        raw: None,
    }
}

/// `profile` with `kind` as its subject (its value taken from the profile's field of that
/// kind, which the case must fill).
pub fn with_subject(mut profile: UserProfile, kind: SubjectKind) -> UserProfile {
    let value = profile
        .id(kind)
        .unwrap_or_else(|| panic!("the expected profile has no {kind}"))
        .to_string();
    profile.subject = Subject { kind, value };
    profile
}

/// `Some(v)`, owned.
pub fn s(v: &str) -> Option<String> {
    Some(v.to_string())
}

/// A profile's `extra` map from its pairs.
pub fn extra(pairs: &[(&str, Value)]) -> BTreeMap<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

/// Asserts that `got` is `want`, naming the first field (or `extra` key) that differs.
pub fn assert_fields(case: &str, got: &UserProfile, want: &UserProfile) {
    macro_rules! field {
        ($f:ident) => {
            assert_eq!(got.$f, want.$f, "{case}: field `{}`", stringify!($f));
        };
    }
    field!(platform);
    field!(tenant);
    field!(subject);
    field!(user_id);
    field!(union_id);
    field!(open_id);
    field!(name);
    field!(mobile);
    field!(mobile_country_code);
    field!(mobile_verified);
    field!(email);
    field!(email_verified);
    field!(avatar);
    field!(employee_no);
    field!(job_title);
    field!(department_ids);
    field!(active);
    for (k, v) in &want.extra {
        assert_eq!(got.extra.get(k), Some(v), "{case}: extra `{k}`");
    }
    for k in got.extra.keys() {
        assert!(
            want.extra.contains_key(k),
            "{case}: unexpected extra `{k}`: {}",
            got.extra[k]
        );
    }
    field!(raw);
    assert_eq!(got, want, "{case}");
}

/// Every case (at least `min_cases` of them) maps with platform `name`'s default `rules` to
/// its expected profile, or fails with a mapping error naming the platform and carrying every
/// expected part of the message.
pub fn fixtures_map(name: &str, rules: &str, cases: Vec<Case>, min_cases: usize) {
    assert!(cases.len() >= min_cases, "{} cases", cases.len());
    let rules = self::rules(name, rules);
    for case in cases {
        let got = rules.map(&platform(name), &tenant(), &case.doc);
        match (got, case.want) {
            (Ok(got), Want::Profile(want)) => assert_fields(case.name, &got, &want),
            (
                Err(Error::Mapping {
                    platform: p,
                    message,
                }),
                Want::Missing(parts),
            ) => {
                assert_eq!(p, name, "{}", case.name);
                for part in parts {
                    assert!(
                        message.contains(part),
                        "{}: {part:?} not in {message}",
                        case.name
                    );
                }
            }
            (got, _) => panic!("{}: unexpected result {got:?}", case.name),
        }
    }
}

/// Every string field of every case mapped with platform `name`'s default `rules` is either
/// absent or non-empty.
pub fn never_yield_empty_strings(name: &str, rules: &str, cases: Vec<Case>) {
    let rules = self::rules(name, rules);
    for case in cases {
        if let Ok(p) = rules.map(&platform(name), &tenant(), &case.doc) {
            for (field, v) in [
                ("user_id", &p.user_id),
                ("union_id", &p.union_id),
                ("open_id", &p.open_id),
                ("name", &p.name),
                ("mobile", &p.mobile),
                ("mobile_country_code", &p.mobile_country_code),
                ("email", &p.email),
                ("avatar", &p.avatar),
                ("employee_no", &p.employee_no),
                ("job_title", &p.job_title),
            ] {
                assert_ne!(v.as_deref(), Some(""), "{}: {field}", case.name);
            }
            assert!(!p.subject.value.is_empty(), "{}", case.name);
            assert_eq!(
                p.id(p.subject.kind),
                Some(p.subject.value.as_str()),
                "{}: the subject is one of the profile's identifiers",
                case.name
            );
            assert!(
                p.department_ids.iter().all(|d| !d.is_empty()),
                "{}",
                case.name
            );
        }
    }
}

/// Platform `name`'s default `rules` file is for `name` and does not load for any other of
/// the [`PLATFORMS`].
pub fn rules_file_holds_exactly_its_platform(name: &str, rules: &str) {
    assert_eq!(self::rules(name, rules).platform(), name);
    for other in PLATFORMS {
        if other != name {
            assert!(
                MappingRules::from_yaml(other, rules).is_err(),
                "{name} file has {other}"
            );
        }
    }
}

/// The registration of platform `name` (linked into the calling test) carries `rules`.
pub fn registration_carries_rules(name: &str, rules: &str) {
    let registration = Registry::get(name).expect("registered");
    assert_eq!(registration.default_rules, rules);
}

/// Expands the shared checks as `#[test]`s for a platform:
/// `mapping_checks!(NAME, DEFAULT_RULES, cases, MIN_CASES);` where `cases` is a
/// `fn() -> Vec<Case>` and `MIN_CASES` the least number of cases it must return.
#[macro_export]
macro_rules! mapping_checks {
    ($name:expr, $rules:expr, $cases:path, $min_cases:expr $(,)?) => {
        #[test]
        fn every_fixture_maps_with_the_default_rules() {
            $crate::mapping::fixtures_map($name, $rules, $cases(), $min_cases);
        }

        #[test]
        fn default_rules_never_yield_empty_strings() {
            $crate::mapping::never_yield_empty_strings($name, $rules, $cases());
        }

        #[test]
        fn default_rules_file_holds_exactly_its_platform() {
            $crate::mapping::rules_file_holds_exactly_its_platform($name, $rules);
        }

        #[test]
        fn the_registration_carries_these_rules() {
            $crate::mapping::registration_carries_rules($name, $rules);
        }
    };
}
