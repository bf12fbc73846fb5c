//! Fuzz the mapping engine: rules YAML parsing + compilation, tenant overrides, and evaluation
//! against arbitrary JSON.
//!
//! Input layout: `<rules YAML> \0 <JSON document>`. Without a NUL byte the whole input is the
//! YAML and the document is the default DingTalk rules' fixture shape. The engine must never
//! panic: every input either loads (and then maps or reports a mapping error) or fails with a
//! configuration error.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use serde_json::{Value, json};
use unilogin_core::mapping::MappingRules;
use unilogin_core::{Error, PlatformName, TenantId};

const DEFAULT_RULES: &str = include_str!("../../crates/dingtalk/rules.yaml");

/// The default DingTalk rules, compiled once per process.
fn defaults() -> &'static MappingRules {
    static RULES: OnceLock<MappingRules> = OnceLock::new();
    RULES.get_or_init(|| {
        MappingRules::from_yaml("dingtalk", DEFAULT_RULES).expect("default rules load")
    })
}

fuzz_target!(|data: &[u8]| {
    let (yaml, doc_bytes) = match data.iter().position(|&b| b == 0) {
        Some(i) => (&data[..i], Some(&data[i + 1..])),
        None => (data, None),
    };
    let Ok(yaml) = std::str::from_utf8(yaml) else {
        return;
    };
    let doc: Value = match doc_bytes {
        Some(bytes) => serde_json::from_slice(bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(bytes).into_owned())),
        None => {
            json!({"result": {"userid": "u1", "dept_id_list": [1, 2], "mobile": "+8613800000000"}})
        }
    };
    let platform = PlatformName::new("fuzz").expect("valid name");
    let tenant = TenantId::new("t").expect("valid tenant");

    // 1. The fuzzed YAML as a rules file.
    match MappingRules::from_yaml("fuzz", yaml) {
        Ok(rules) => check(rules.map(&platform, &tenant, &doc)),
        Err(Error::Config { .. }) => {}
        Err(other) => panic!("unexpected load error kind: {other}"),
    }

    // 2. The fuzzed document against the default DingTalk rules.
    let defaults = defaults();
    check(defaults.map(&platform, &tenant, &doc));

    // 3. The fuzzed YAML and the fuzzed document as tenant overrides of the defaults.
    for overrides in [Value::String(yaml.to_string()), doc.clone()] {
        match defaults.with_overrides(&overrides) {
            Ok(rules) => check(rules.map(&platform, &tenant, &doc)),
            Err(Error::Config { .. }) => {}
            Err(other) => panic!("unexpected override error kind: {other}"),
        }
    }
});

fn check(result: unilogin_core::Result<unilogin_core::mapping::UserProfile>) {
    match result {
        Ok(p) => {
            assert!(!p.subject.value.is_empty(), "empty subject");
            for v in [
                &p.name,
                &p.mobile,
                &p.email,
                &p.union_id,
                &p.open_id,
                &p.avatar,
            ] {
                assert_ne!(v.as_deref(), Some(""), "empty string field");
            }
        }
        Err(Error::Mapping { .. }) => {}
        Err(other) => panic!("unexpected mapping error kind: {other}"),
    }
}
