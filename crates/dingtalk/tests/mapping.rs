//! Every DingTalk user-document fixture, mapped with the crate's default rules
//! ([`unilogin_dingtalk::DEFAULT_RULES`]) and checked field by field.
//!
//! The documents are built the way the crate hands them to the engine (see `rules.yaml`'s
//! header): the `topapi/v2/user/get` body, plus the `v1.0/contact/users/me` body under `me` in
//! the web flow. The fixtures are the test kit's (`unilogin_testkit::fixtures::dingtalk`).

use std::collections::BTreeMap;

use serde_json::{Value, json};
use unilogin_core::mapping::{MappingRules, UserProfile};
use unilogin_core::{Error, PlatformName, Registry, TenantId};
use unilogin_dingtalk::{DEFAULT_RULES, NAME};
use unilogin_testkit::fixtures::dingtalk as fx;

/// The cases below; fewer means one was lost.
const MIN_CASES: usize = 5;

fn user_get() -> Value {
    fixture(fx::TOPAPI_V2_USER_GET)
}
fn me() -> Value {
    fixture(fx::V1_CONTACT_USERS_ME)
}
fn getuserinfo() -> Value {
    fixture(fx::TOPAPI_V2_USER_GETUSERINFO)
}

fn h5() -> UserProfile {
    UserProfile {
        union_id: s("unionid-user001"),
        name: s("Zhang San"),
        mobile: s("13800000000"),
        email: s("user001@example.com"),
        avatar: s("https://example.com/avatar/user001.png"),
        employee_no: s("E0001"),
        job_title: s("Engineer"),
        department_ids: vec!["1".into(), "100".into()],
        active: Some(true),
        extra: extra(&[
            ("admin", json!(false)),
            ("boss", json!(false)),
            ("senior", json!(false)),
            ("roles", json!(["Member"])),
            ("org_email", json!("user001@corp.example.com")),
            ("state_code", json!("86")),
            ("hired_date_ms", json!(1700000000000u64)),
        ]),
        ..blank("user001")
    }
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "dingtalk H5: topapi/v2/user/get",
            doc: user_get(),
            want: Want::Profile(Box::new(h5())),
        },
        Case {
            name: "dingtalk web: user/get + me",
            doc: with(user_get(), "me", me()),
            want: Want::Profile(Box::new(UserProfile {
                open_id: s("openid-user001"),
                ..h5()
            })),
        },
        Case {
            name: "dingtalk web: sparse user/get, details from me",
            doc: json!({"errcode": 0, "errmsg": "ok",
                        "result": {"userid": "user001", "mobile": "", "email": "", "org_email": ""},
                        "me": me()}),
            want: Want::Profile(Box::new(UserProfile {
                union_id: s("unionid-user001"),
                open_id: s("openid-user001"),
                name: s("Zhang San"),
                mobile: s("13800000000"),
                email: s("user001@example.com"),
                avatar: s("https://example.com/avatar/user001.png"),
                extra: extra(&[("state_code", json!("86"))]),
                ..blank("user001")
            })),
        },
        Case {
            name: "dingtalk: getuserinfo result (id, union id, name only)",
            doc: getuserinfo(),
            want: Want::Profile(Box::new(UserProfile {
                union_id: s("unionid-user001"),
                name: s("Zhang San"),
                ..blank("user001")
            })),
        },
        Case {
            name: "dingtalk: users/me alone has no org user id",
            doc: json!({"me": me()}),
            want: Want::Missing(&[
                "required field `user_id`",
                "`$.result.userid` (no match)",
                "`$.userid` (no match)",
            ]),
        },
    ]
}

#[test]
fn tenant_override_on_top_of_default_rules() {
    // A tenant that identifies people by employee number and wants the raw document.
    let rules = rules()
        .with_overrides(&json!({
            "user_id": {"path": "$.result.job_number", "backup": ["$.result.userid"]},
            "extra": {"remark": {"path": "$.result.remark", "transform": "empty_to_none"}, "senior": null},
            "raw": true
        }))
        .unwrap();
    let doc = user_get();
    let p = rules.map(&platform(), &tenant(), &doc).unwrap();
    assert_eq!(p.user_id, "E0001");
    assert_eq!(p.mobile.as_deref(), Some("13800000000"));
    assert_eq!(p.raw.as_ref(), Some(&doc));
    assert!(!p.extra.contains_key("remark"), "empty remark is absent");
    assert!(!p.extra.contains_key("senior"));
    assert_eq!(p.extra["roles"], json!(["Member"]));
}

// ---- the engine, the way every case is checked (kept small and per crate on purpose) ----

fn fixture(text: &str) -> Value {
    serde_json::from_str(text).expect("fixture is JSON")
}

/// `base` with the top-level key `key` set to `value`.
fn with(mut base: Value, key: &str, value: Value) -> Value {
    base.as_object_mut()
        .expect("object document")
        .insert(key.to_string(), value);
    base
}

fn tenant() -> TenantId {
    TenantId::new("acme").unwrap()
}

fn platform() -> PlatformName {
    PlatformName::new(NAME).unwrap()
}

fn rules() -> MappingRules {
    MappingRules::from_yaml(NAME, DEFAULT_RULES)
        .unwrap_or_else(|e| panic!("{NAME}: default rules do not load: {e}"))
}

/// A profile with only the identity filled; cases fill the rest.
fn blank(user_id: &str) -> UserProfile {
    UserProfile {
        platform: platform(),
        tenant: tenant(),
        user_id: user_id.to_string(),
        union_id: None,
        open_id: None,
        name: None,
        mobile: None,
        email: None,
        avatar: None,
        employee_no: None,
        job_title: None,
        department_ids: Vec::new(),
        active: None,
        extra: BTreeMap::new(),
        raw: None,
    }
}

fn s(v: &str) -> Option<String> {
    Some(v.to_string())
}

fn extra(pairs: &[(&str, Value)]) -> BTreeMap<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

enum Want {
    Profile(Box<UserProfile>),
    /// A mapping error whose message contains all of these.
    Missing(&'static [&'static str]),
}

struct Case {
    name: &'static str,
    doc: Value,
    want: Want,
}

fn assert_fields(case: &str, got: &UserProfile, want: &UserProfile) {
    macro_rules! field {
        ($f:ident) => {
            assert_eq!(got.$f, want.$f, "{case}: field `{}`", stringify!($f));
        };
    }
    field!(platform);
    field!(tenant);
    field!(user_id);
    field!(union_id);
    field!(open_id);
    field!(name);
    field!(mobile);
    field!(email);
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

#[test]
fn every_fixture_maps_with_the_default_rules() {
    let cases = cases();
    assert!(cases.len() >= MIN_CASES, "{} cases", cases.len());
    let rules = rules();
    for case in cases {
        let got = rules.map(&platform(), &tenant(), &case.doc);
        match (got, case.want) {
            (Ok(got), Want::Profile(want)) => assert_fields(case.name, &got, &want),
            (
                Err(Error::Mapping {
                    platform: p,
                    message,
                }),
                Want::Missing(parts),
            ) => {
                assert_eq!(p, NAME, "{}", case.name);
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

#[test]
fn default_rules_never_yield_empty_strings() {
    // Every string field of every case is either absent or non-empty.
    let rules = rules();
    for case in cases() {
        if let Ok(p) = rules.map(&platform(), &tenant(), &case.doc) {
            for (name, v) in [
                ("union_id", &p.union_id),
                ("open_id", &p.open_id),
                ("name", &p.name),
                ("mobile", &p.mobile),
                ("email", &p.email),
                ("avatar", &p.avatar),
                ("employee_no", &p.employee_no),
                ("job_title", &p.job_title),
            ] {
                assert_ne!(v.as_deref(), Some(""), "{}: {name}", case.name);
            }
            assert!(!p.user_id.is_empty(), "{}", case.name);
            assert!(
                p.department_ids.iter().all(|d| !d.is_empty()),
                "{}",
                case.name
            );
        }
    }
}

#[test]
fn default_rules_file_holds_exactly_its_platform() {
    assert_eq!(rules().platform(), NAME);
    for other in ["dingtalk", "feishu", "wecom", "custom-oauth"] {
        if other != NAME {
            assert!(
                MappingRules::from_yaml(other, DEFAULT_RULES).is_err(),
                "{NAME} file has {other}"
            );
        }
    }
}

#[test]
fn the_registration_carries_these_rules() {
    let registration = Registry::get(NAME).expect("registered");
    assert_eq!(registration.default_rules, DEFAULT_RULES);
}
