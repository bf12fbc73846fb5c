//! Every DingTalk user-document fixture, mapped with the crate's default rules
//! ([`unilogin_dingtalk::DEFAULT_RULES`]) and checked field by field.
//!
//! The documents are built the way the crate hands them to the engine (see `rules.yaml`'s
//! header): the `topapi/v2/user/get` body, plus the `v1.0/contact/users/me` body under `me` in
//! the web flow. The fixtures are the test kit's (`unilogin_testkit::fixtures::dingtalk`).

use serde_json::{Value, json};
use unilogin_conformance::mapping::{self, Case, Want, extra, fixture, s, with};
use unilogin_conformance::tenant;
use unilogin_core::mapping::{SubjectKind, UserProfile};
use unilogin_dingtalk::{DEFAULT_RULES, NAME};
use unilogin_testkit::fixtures::dingtalk as fx;

/// The cases below; fewer means one was lost.
const MIN_CASES: usize = 5;

/// A profile with only the identity filled; cases fill the rest.
fn blank(user_id: &str) -> UserProfile {
    mapping::blank(NAME, user_id)
}

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
        mobile_country_code: s("86"),
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
                mobile_country_code: s("86"),
                email: s("user001@example.com"),
                avatar: s("https://example.com/avatar/user001.png"),
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
            name: "dingtalk: legacy shape, country code inside the number",
            doc: json!({"errcode": 0, "userid": "user001", "name": " Zhang San ",
                        "mobile": "+86-138 0000 0000", "email": "Zhang.San@Example.COM"}),
            want: Want::Profile(Box::new(UserProfile {
                name: s("Zhang San"),
                mobile: s("13800000000"),
                mobile_country_code: s("86"),
                email: s("Zhang.San@Example.COM"),
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
    let rules = mapping::rules(NAME, DEFAULT_RULES)
        .with_overrides(&json!({
            "user_id": {"path": "$.result.job_number", "backup": ["$.result.userid"]},
            "extra": {"remark": {"path": "$.result.remark", "transform": "empty_to_none"}, "senior": null},
            "raw": true
        }))
        .unwrap();
    let doc = user_get();
    let p = rules
        .map(&mapping::platform(NAME), &tenant(), &doc)
        .unwrap();
    assert_eq!(p.user_id.as_deref(), Some("E0001"));
    assert_eq!(p.subject.value, "E0001");
    assert_eq!(p.mobile.as_deref(), Some("13800000000"));
    assert_eq!(p.raw.as_ref(), Some(&doc));
    assert!(!p.extra.contains_key("remark"), "empty remark is absent");
    assert!(!p.extra.contains_key("senior"));
    assert_eq!(p.extra["roles"], json!(["Member"]));
}

#[test]
fn a_tenant_may_choose_the_union_id_as_subject() {
    let rules = mapping::rules(NAME, DEFAULT_RULES)
        .with_subject(Some(SubjectKind::UnionId))
        .unwrap();
    let p = rules
        .map(&mapping::platform(NAME), &tenant(), &getuserinfo())
        .unwrap();
    assert_eq!(p.subject.kind, SubjectKind::UnionId);
    assert_eq!(p.subject.value, "unionid-user001");
    assert_eq!(p.user_id.as_deref(), Some("user001"));
    // open_id exists only in the web flow: choosing it fails H5 documents, never swaps ids.
    let web_only = mapping::rules(NAME, DEFAULT_RULES)
        .with_subject(Some(SubjectKind::OpenId))
        .unwrap();
    let err = web_only
        .map(&mapping::platform(NAME), &tenant(), &user_get())
        .unwrap_err()
        .to_string();
    assert!(err.contains("required field `open_id`"), "{err}");
}

unilogin_conformance::mapping_checks!(NAME, DEFAULT_RULES, cases, MIN_CASES);
