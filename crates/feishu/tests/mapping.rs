//! Every Feishu user-document fixture, mapped with the crate's default rules
//! ([`unilogin_feishu::DEFAULT_RULES`]) and checked field by field.
//!
//! The documents are built the way the crate hands them to the engine (see `rules.yaml`'s
//! header): the `user_info` body, plus the contact user under `contact`. The fixtures are the
//! test kit's (`unilogin_testkit::fixtures::feishu`).

use serde_json::{Value, json};
use unilogin_conformance::mapping::{self, Case, Want, extra, fixture, s, with};
use unilogin_conformance::tenant;
use unilogin_core::mapping::{SubjectKind, UserProfile};
use unilogin_feishu::{DEFAULT_RULES, NAME};
use unilogin_testkit::fixtures::feishu as fx;

/// The cases below; fewer means one was lost.
const MIN_CASES: usize = 6;

/// A profile with only the identity filled; cases fill the rest.
fn blank(user_id: &str) -> UserProfile {
    mapping::blank(NAME, user_id)
}

fn user_info() -> Value {
    fixture(fx::AUTHEN_V1_USER_INFO)
}
fn contact_user() -> Value {
    fixture(fx::CONTACT_V3_USERS_GET)["data"]["user"].clone()
}
fn access_token_v1() -> Value {
    fixture(fx::AUTHEN_V1_ACCESS_TOKEN)
}

/// The default subject: `union_id`.
fn full() -> UserProfile {
    mapping::with_subject(full_ids(), SubjectKind::UnionId)
}

fn full_ids() -> UserProfile {
    UserProfile {
        union_id: s("on_fakeunionid0001"),
        open_id: s("ou_fakeopenid0001"),
        name: s("Zhang San"),
        mobile: s("13800000000"),
        mobile_country_code: s("86"),
        email: s("user001@example.com"),
        avatar: s("https://example.com/avatar/user001.png"),
        employee_no: s("E0001"),
        job_title: s("Engineer"),
        department_ids: vec!["od-fakedept0001".into()],
        active: Some(true),
        extra: extra(&[
            ("admin", json!(false)),
            ("en_name", json!("San Zhang")),
            ("enterprise_email", json!("user001@corp.example.com")),
            ("tenant_key", json!("faketenantkey001")),
            ("leader_user_id", json!("user000")),
        ]),
        ..blank("user001")
    }
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "feishu: user_info alone",
            doc: user_info(),
            want: Want::Profile(Box::new(UserProfile {
                job_title: None,
                department_ids: Vec::new(),
                active: None,
                extra: extra(&[
                    ("en_name", json!("San Zhang")),
                    ("enterprise_email", json!("user001@corp.example.com")),
                    ("tenant_key", json!("faketenantkey001")),
                ]),
                ..full()
            })),
        },
        Case {
            name: "feishu: user_info + contact",
            doc: with(user_info(), "contact", contact_user()),
            want: Want::Profile(Box::new(full())),
        },
        Case {
            name: "feishu: resigned member is not active",
            doc: {
                let mut contact = contact_user();
                contact["status"]["is_resigned"] = json!(true);
                with(user_info(), "contact", contact)
            },
            want: Want::Profile(Box::new(UserProfile {
                active: Some(false),
                ..full()
            })),
        },
        Case {
            name: "feishu: legacy authen/v1/access_token data",
            doc: access_token_v1(),
            want: Want::Profile(Box::new(UserProfile {
                employee_no: None,
                job_title: None,
                department_ids: Vec::new(),
                active: None,
                extra: extra(&[
                    ("en_name", json!("San Zhang")),
                    ("enterprise_email", json!("user001@corp.example.com")),
                    ("tenant_key", json!("faketenantkey001")),
                ]),
                ..full()
            })),
        },
        Case {
            name: "feishu: without the employee-id permission (no user_id) the login succeeds",
            doc: {
                let mut d = user_info();
                d["data"].as_object_mut().unwrap().remove("user_id");
                d
            },
            want: Want::Profile(Box::new(UserProfile {
                user_id: None,
                job_title: None,
                department_ids: Vec::new(),
                active: None,
                extra: extra(&[
                    ("en_name", json!("San Zhang")),
                    ("enterprise_email", json!("user001@corp.example.com")),
                    ("tenant_key", json!("faketenantkey001")),
                ]),
                ..full()
            })),
        },
        Case {
            name: "feishu: no union_id either",
            doc: {
                let mut d = user_info();
                let data = d["data"].as_object_mut().unwrap();
                data.remove("user_id");
                data.remove("union_id");
                d
            },
            want: Want::Missing(&[
                "required field `union_id`",
                "`$.data.union_id` (no match)",
                "`$.contact.union_id` (no match)",
            ]),
        },
    ]
}

#[test]
fn a_tenant_that_chooses_user_id_needs_the_permission() {
    let rules = mapping::rules(NAME, DEFAULT_RULES)
        .with_subject(Some(SubjectKind::UserId))
        .unwrap();
    let platform = mapping::platform(NAME);
    let p = rules.map(&platform, &tenant(), &user_info()).unwrap();
    assert_eq!(p.subject.value, "user001");
    let mut d = user_info();
    d["data"].as_object_mut().unwrap().remove("user_id");
    let err = rules.map(&platform, &tenant(), &d).unwrap_err().to_string();
    assert!(
        err.contains("required field `user_id` not found") && err.contains("`$.data.user_id`"),
        "{err}"
    );
    let open = mapping::rules(NAME, DEFAULT_RULES)
        .with_subject(Some(SubjectKind::OpenId))
        .unwrap();
    assert_eq!(
        open.map(&platform, &tenant(), &d).unwrap().subject.value,
        "ou_fakeopenid0001"
    );
}

unilogin_conformance::mapping_checks!(NAME, DEFAULT_RULES, cases, MIN_CASES);
