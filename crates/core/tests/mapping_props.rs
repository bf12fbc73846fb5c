//! Property tests of the mapping engine: evaluation never panics on arbitrary JSON, and a
//! backup path is used exactly when the primary yields nothing.

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use unilogin_core::mapping::{MappingRules, UserProfile};
use unilogin_core::{Error, PlatformName, TenantId};

/// Rules with every construct the platforms' default rules use (nested and wildcard paths,
/// backups, `many`, transforms, `matches`, `extra`), written here so the core's tests never
/// read a platform crate's files; each platform crate tests its own rules on its fixtures.
const RULES: &str = r#"
example:
  user_id: { path: "$.result.userid", backup: ["$.data.user_id", "$.userid", "$.sub"], required: true }
  union_id: { path: "$.result.unionid", backup: ["$.me.unionId", "$.data.union_id"] }
  open_id: { path: "$.me.openId", backup: ["$.data.open_id"] }
  name: { path: "$.result.name", backup: ["$.me.nick", "$.contact.name"], transform: trim }
  mobile: { path: "$.result.mobile", backup: ["$.private.mobile"], transform: [trim, strip_country_code] }
  email: { path: "$.result.email", backup: ["$.data.enterprise_email", "$.email"], transform: [trim, lowercase] }
  avatar: { path: "$.data.avatar_url", backup: ["$.contact.avatar.avatar_origin"], transform: trim }
  employee_no: { path: "$.result.job_number", transform: trim }
  job_title: { path: "$.contact.job_title", transform: trim }
  department_ids: { path: "$.result.dept_id_list[*]", backup: ["$.contact.department_ids[*]", "$.department[*]"], many: true }
  active:
    path: "$.contact.status"
    matches: { is_activated: true, is_frozen: false }
  extra:
    admin: { path: "$.result.admin", backup: ["$.isAdmin"] }
    roles: { path: "$.result.role_list[*].name", many: true, transform: [trim, empty_to_none] }
    state_code: { path: "$.result.state_code", transform: [number_to_string, empty_to_none] }
    gender: { path: "$.private.gender", transform: number_to_string }
"#;

/// Arbitrary JSON, biased towards the keys the default rules look for so that evaluation
/// reaches the conversion code rather than stopping at "no match".
fn arb_json() -> impl Strategy<Value = Value> {
    let key = prop_oneof![
        Just("result".to_string()),
        Just("data".to_string()),
        Just("contact".to_string()),
        Just("me".to_string()),
        Just("private".to_string()),
        Just("userid".to_string()),
        Just("user_id".to_string()),
        Just("sub".to_string()),
        Just("mobile".to_string()),
        Just("email".to_string()),
        Just("status".to_string()),
        Just("active".to_string()),
        Just("dept_id_list".to_string()),
        Just("department".to_string()),
        Just("department_ids".to_string()),
        Just("role_list".to_string()),
        Just("name".to_string()),
        Just("is_activated".to_string()),
        "[a-z_]{1,8}",
    ];
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        prop_oneof![
            Just(String::new()),
            Just("+8613800000000".to_string()),
            Just(" 0086 138 ".to_string()),
            Just("true".to_string()),
            ".{0,12}",
        ]
        .prop_map(Value::String),
    ];
    leaf.prop_recursive(5, 64, 6, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn tenant() -> TenantId {
    TenantId::new("acme").unwrap()
}

fn check_profile(p: &UserProfile) {
    assert_eq!(p.id(p.subject.kind), Some(p.subject.value.as_str()));
    assert!(!p.subject.value.is_empty());
    for v in [
        &p.union_id,
        &p.open_id,
        &p.name,
        &p.user_id,
        &p.mobile,
        &p.mobile_country_code,
        &p.email,
        &p.avatar,
        &p.employee_no,
        &p.job_title,
    ] {
        assert_ne!(v.as_deref(), Some(""));
    }
    assert!(p.department_ids.iter().all(|d| !d.is_empty()));
    assert!(p.extra.values().all(|v| !v.is_null()));
}

/// What the engine must take from one selected value of a text field (the oracle, written
/// independently of the engine): non-empty text, numbers as text, the first such item of a list.
fn text_oracle(v: &Value) -> Option<String> {
    fn scalar(v: &Value) -> Option<String> {
        match v {
            // Text fields are trimmed; blank is absent.
            Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }
    match v {
        Value::Array(items) => items.iter().find_map(scalar),
        other => scalar(other),
    }
}

fn bool_oracle(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s == "true" => Some(true),
        Value::String(s) if s == "false" => Some(false),
        Value::Number(n) if n.as_u64() == Some(0) => Some(false),
        Value::Number(n) if n.as_u64() == Some(1) => Some(true),
        _ => None,
    }
}

fn list_oracle(v: &Value) -> Vec<String> {
    let one = |v: &Value| match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    match v {
        Value::Array(items) => items.iter().filter_map(one).collect(),
        other => one(other).into_iter().collect(),
    }
}

const PRIMARY_BACKUP: &str = r#"
demo:
  user_id: { path: "$.p.id", backup: ["$.b.id"] }
  name: { path: "$.p.name", backup: ["$.b.name"] }
  department_ids: { path: "$.p.dept", backup: ["$.b.dept"] }
  active: { path: "$.p.on", backup: ["$.b.on"] }
  extra:
    x: { path: "$.p.x", backup: ["$.b.x"] }
"#;

/// A document where `p` (primary) and `b` (backup) each may or may not hold the key.
fn doc_of(primary: &Option<Value>, backup: &Option<Value>, key: &str) -> Value {
    let mut doc = json!({"p": {}, "b": {}});
    if let Some(v) = primary {
        doc["p"][key] = v.clone();
    }
    if let Some(v) = backup {
        doc["b"][key] = v.clone();
    }
    doc
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn evaluation_never_panics_on_arbitrary_json(doc in arb_json(), wrap in 0usize..6) {
        // Also place the arbitrary value where the default rules look.
        let doc = match wrap {
            0 => doc,
            1 => json!({"result": doc.clone(), "me": doc}),
            2 => json!({"data": doc.clone(), "contact": doc}),
            3 => json!({"private": doc.clone(), "userid": doc}),
            4 => json!({"sub": doc.clone(), "email": doc}),
            _ => json!([doc]),
        };
        {
            let rules = MappingRules::from_yaml("example", RULES).unwrap();
            let name = PlatformName::new("example").unwrap();
            match rules.map(&name, &tenant(), &doc) {
                Ok(p) => check_profile(&p),
                Err(Error::Mapping { message, .. }) => prop_assert!(message.contains("user_id")),
                Err(other) => prop_assert!(false, "unexpected error {other}"),
            }
        }
    }

    #[test]
    fn backup_text_used_exactly_when_primary_yields_nothing(
        primary in proptest::option::of(arb_json()),
        backup in proptest::option::of(arb_json()),
    ) {
        let rules = MappingRules::from_yaml("demo", PRIMARY_BACKUP).unwrap();
        let name = PlatformName::new("demo").unwrap();
        // Required user_id: primary, else backup, else an error naming both paths.
        let doc = doc_of(&primary, &backup, "id");
        let want = primary.as_ref().and_then(text_oracle).or_else(|| backup.as_ref().and_then(text_oracle));
        match (rules.map(&name, &tenant(), &doc), want) {
            (Ok(p), Some(w)) => prop_assert_eq!(p.user_id, Some(w)),
            (Err(Error::Mapping { message, .. }), None) => {
                prop_assert!(message.contains("`$.p.id`") && message.contains("`$.b.id`"), "{}", message);
            }
            (got, want) => prop_assert!(false, "got {:?}, want {:?}", got, want),
        }
        // Optional name: the same choice, absent instead of an error.
        let mut doc = doc_of(&primary, &backup, "name");
        doc["p"]["id"] = json!("u");
        let p = rules.map(&name, &tenant(), &doc).unwrap();
        let want = primary.as_ref().and_then(text_oracle).or_else(|| backup.as_ref().and_then(text_oracle));
        prop_assert_eq!(p.name, want);
    }

    #[test]
    fn backup_list_and_bool_used_exactly_when_primary_yields_nothing(
        primary in proptest::option::of(arb_json()),
        backup in proptest::option::of(arb_json()),
    ) {
        let rules = MappingRules::from_yaml("demo", PRIMARY_BACKUP).unwrap();
        let name = PlatformName::new("demo").unwrap();
        let mut doc = doc_of(&primary, &backup, "dept");
        doc["p"]["id"] = json!("u");
        let p = rules.map(&name, &tenant(), &doc).unwrap();
        let from_primary = primary.as_ref().map(list_oracle).unwrap_or_default();
        let want = if from_primary.is_empty() { backup.as_ref().map(list_oracle).unwrap_or_default() } else { from_primary };
        prop_assert_eq!(p.department_ids, want);

        let mut doc = doc_of(&primary, &backup, "on");
        doc["p"]["id"] = json!("u");
        let p = rules.map(&name, &tenant(), &doc).unwrap();
        let want = primary.as_ref().and_then(bool_oracle).or_else(|| backup.as_ref().and_then(bool_oracle));
        prop_assert_eq!(p.active, want);

        let mut doc = doc_of(&primary, &backup, "x");
        doc["p"]["id"] = json!("u");
        let p = rules.map(&name, &tenant(), &doc).unwrap();
        let present = |v: &Option<Value>| v.as_ref().filter(|v| !v.is_null()).cloned();
        let want = present(&primary).or_else(|| present(&backup));
        prop_assert_eq!(p.extra.get("x").cloned(), want);
    }

    #[test]
    fn arbitrary_paths_and_rules_load_or_fail_cleanly(
        path in r"\$[a-z0-9_.\[\]\*\?\(\)@=!<>&|' ,:\-]{0,24}",
        doc in arb_json(),
    ) {
        let yaml = format!("demo:\n  user_id: {{ path: {path:?}, backup: [\"$.id\"] }}\n  extra:\n    x: {{ path: {path:?}, many: true }}\n");
        match MappingRules::from_yaml("demo", &yaml) {
            Ok(rules) => {
                let name = PlatformName::new("demo").unwrap();
                match rules.map(&name, &tenant(), &doc) {
                    Ok(p) => check_profile(&p),
                    Err(e) => prop_assert!(matches!(e, Error::Mapping { .. }), "{}", e),
                }
            }
            Err(Error::Config { field, reason, .. }) => {
                prop_assert!(field.starts_with("mapping.demo"), "{}", field);
                prop_assert!(!reason.contains('\n'), "{}", reason);
            }
            Err(other) => prop_assert!(false, "unexpected error {}", other),
        }
    }
}
