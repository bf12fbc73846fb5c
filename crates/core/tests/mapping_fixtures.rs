//! Tenant overrides on top of a platform's default rules, platform-neutral: the defaults are a
//! rules text written here, shaped like a platform's (a `result` wrapper, backups, extras).
//!
//! Each platform's own default rules are checked against its fixtures in that platform's crate
//! (`crates/<platform>/tests/mapping.rs`).

use serde_json::{Value, json};
use unilogin_core::mapping::MappingRules;
use unilogin_core::{PlatformName, TenantId};

const PLATFORM: &str = "example";

/// Default rules of a made-up platform, the way a platform crate ships them.
const DEFAULT_RULES: &str = r#"
example:
  user_id: { path: "$.result.userid", backup: ["$.userid"], required: true }
  name: { path: "$.result.name", transform: trim }
  mobile: { path: "$.result.mobile", transform: [trim, strip_country_code] }
  employee_no: { path: "$.result.job_number", transform: trim }
  extra:
    senior: { path: "$.result.senior" }
    roles: { path: "$.result.role_list[*].name", many: true, transform: [trim, empty_to_none] }
"#;

/// A user document of that platform.
fn user_doc() -> Value {
    json!({
        "errcode": 0,
        "result": {
            "userid": "user001",
            "name": " Zhang San ",
            "mobile": "13800000000",
            "job_number": "E0001",
            "remark": "",
            "senior": false,
            "role_list": [{"id": 1, "name": "Member"}]
        }
    })
}

#[test]
fn the_defaults_alone() {
    let rules = MappingRules::from_yaml(PLATFORM, DEFAULT_RULES).unwrap();
    assert_eq!(rules.platform(), PLATFORM);
    let doc = user_doc();
    let p = rules
        .map(
            &PlatformName::new(PLATFORM).unwrap(),
            &TenantId::new("acme").unwrap(),
            &doc,
        )
        .unwrap();
    assert_eq!(p.user_id.as_deref(), Some("user001"));
    assert_eq!(p.name.as_deref(), Some("Zhang San"));
    assert_eq!(p.employee_no.as_deref(), Some("E0001"));
    assert_eq!(p.extra["senior"], json!(false));
    assert_eq!(p.raw, None);
}

#[test]
fn tenant_override_on_top_of_default_rules() {
    // A tenant that identifies people by employee number and wants the raw document.
    let rules = MappingRules::from_yaml(PLATFORM, DEFAULT_RULES)
        .unwrap()
        .with_overrides(&json!({
            "user_id": {"path": "$.result.job_number", "backup": ["$.result.userid"]},
            "extra": {"remark": {"path": "$.result.remark", "transform": "empty_to_none"}, "senior": null},
            "raw": true
        }))
        .unwrap();
    let doc = user_doc();
    let p = rules
        .map(
            &PlatformName::new(PLATFORM).unwrap(),
            &TenantId::new("acme").unwrap(),
            &doc,
        )
        .unwrap();
    assert_eq!(p.user_id.as_deref(), Some("E0001"));
    assert_eq!(p.mobile.as_deref(), Some("13800000000"));
    assert_eq!(p.raw.as_ref(), Some(&doc));
    assert!(!p.extra.contains_key("remark"), "empty remark is absent");
    assert!(!p.extra.contains_key("senior"));
    assert_eq!(p.extra["roles"], json!(["Member"]));
}

#[test]
fn an_override_backup_is_used_when_the_primary_has_nothing() {
    // Same overrides, a person without an employee number: the backup path gives the id.
    let rules = MappingRules::from_yaml(PLATFORM, DEFAULT_RULES)
        .unwrap()
        .with_overrides(&json!({
            "user_id": {"path": "$.result.job_number", "backup": ["$.result.userid"]}
        }))
        .unwrap();
    let mut doc = user_doc();
    doc["result"].as_object_mut().unwrap().remove("job_number");
    let p = rules
        .map(
            &PlatformName::new(PLATFORM).unwrap(),
            &TenantId::new("acme").unwrap(),
            &doc,
        )
        .unwrap();
    assert_eq!(p.user_id.as_deref(), Some("user001"));
    assert_eq!(p.employee_no, None);
}
