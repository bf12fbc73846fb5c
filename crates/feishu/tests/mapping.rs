//! Every Feishu user-document fixture, mapped with the crate's default rules
//! ([`unilogin_feishu::DEFAULT_RULES`]) and checked field by field.
//!
//! The documents are built the way the crate hands them to the engine (see `rules.yaml`'s
//! header): the `user_info` body, plus the contact user under `contact`. The fixtures are the
//! test kit's (`unilogin_testkit::fixtures::feishu`).

use serde_json::{Value, json};
use unilogin_conformance::mapping::{self, Case, Want, extra, fixture, s, with};
use unilogin_core::mapping::UserProfile;
use unilogin_feishu::{DEFAULT_RULES, NAME};
use unilogin_testkit::fixtures::feishu as fx;

/// The cases below; fewer means one was lost.
const MIN_CASES: usize = 5;

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

fn full() -> UserProfile {
    UserProfile {
        union_id: s("on_fakeunionid0001"),
        open_id: s("ou_fakeopenid0001"),
        name: s("Zhang San"),
        mobile: s("13800000000"),
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
            name: "feishu: without the user_id scope",
            doc: {
                let mut d = user_info();
                d["data"].as_object_mut().unwrap().remove("user_id");
                d
            },
            want: Want::Missing(&[
                "required field `user_id`",
                "`$.data.user_id` (no match)",
                "`$.contact.user_id` (no match)",
            ]),
        },
    ]
}

unilogin_conformance::mapping_checks!(NAME, DEFAULT_RULES, cases, MIN_CASES);
