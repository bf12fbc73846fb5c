//! Every WeCom user-document fixture, mapped with the crate's default rules
//! ([`unilogin_wecom::DEFAULT_RULES`]) and checked field by field.
//!
//! The documents are built the way the crate hands them to the engine (see `rules.yaml`'s
//! header): the `user/get` body, plus the `auth/getuserdetail` body under `private`. The
//! fixtures are the test kit's (`unilogin_testkit::fixtures::wecom`).

use serde_json::{Value, json};
use unilogin_conformance::mapping::{self, Case, Want, extra, fixture, s, with};
use unilogin_core::mapping::UserProfile;
use unilogin_testkit::fixtures::wecom as fx;
use unilogin_wecom::{DEFAULT_RULES, NAME};

/// The cases below; fewer means one was lost.
const MIN_CASES: usize = 8;

/// A profile with only the identity filled; cases fill the rest.
fn blank(user_id: &str) -> UserProfile {
    mapping::blank(NAME, user_id)
}

fn user_get() -> Value {
    fixture(fx::USER_GET)
}
fn detail() -> Value {
    fixture(fx::AUTH_GETUSERDETAIL)
}

fn from_user_get() -> UserProfile {
    UserProfile {
        union_id: s("fake_open_userid_0001"),
        name: s("Zhang San"),
        mobile: s("13800000000"),
        email: s("user001@example.com"),
        avatar: s("https://example.com/avatar/user001/0"),
        job_title: s("Engineer"),
        department_ids: vec!["1".into(), "2".into()],
        active: Some(true),
        extra: extra(&[
            ("main_department", json!("1")),
            ("alias", json!("zs")),
            ("biz_mail", json!("user001@corp.example.com")),
            ("gender", json!("1")),
            ("direct_leader", json!(["user000"])),
            ("is_leader_in_dept", json!([1, 0])),
        ]),
        ..blank("user001")
    }
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "wecom: user/get",
            doc: user_get(),
            want: Want::Profile(Box::new(from_user_get())),
        },
        Case {
            name: "wecom: user/get + private getuserdetail",
            doc: with(user_get(), "private", detail()),
            want: Want::Profile(Box::new(from_user_get())),
        },
        Case {
            name: "wecom: new app, user/get without sensitive fields + private",
            doc: {
                let mut d = user_get();
                for k in [
                    "mobile",
                    "email",
                    "biz_mail",
                    "avatar",
                    "thumb_avatar",
                    "gender",
                ] {
                    d.as_object_mut().unwrap().remove(k);
                }
                let mut private = detail();
                private["mobile"] = json!("+86 13900000000");
                with(d, "private", private)
            },
            want: Want::Profile(Box::new(UserProfile {
                mobile: s("13900000000"),
                mobile_country_code: s("86"),
                ..from_user_get()
            })),
        },
        Case {
            name: "wecom: mobile with separators, e-mail kept as written",
            doc: {
                let mut d = user_get();
                d["mobile"] = json!(" 138-0000-0000 ");
                d["email"] = json!("User001@Example.com");
                d
            },
            want: Want::Profile(Box::new(UserProfile {
                email: s("User001@Example.com"),
                ..from_user_get()
            })),
        },
        Case {
            name: "wecom: disabled member (status 2)",
            doc: with(user_get(), "status", json!(2)),
            want: Want::Profile(Box::new(UserProfile {
                active: Some(false),
                ..from_user_get()
            })),
        },
        Case {
            name: "wecom: auth/getuserinfo member (id only)",
            doc: fixture(fx::AUTH_GETUSERINFO_MEMBER),
            want: Want::Profile(Box::new(blank("user001"))),
        },
        Case {
            name: "wecom: legacy user/getuserinfo (UserId)",
            doc: fixture(fx::USER_GETUSERINFO_LEGACY),
            want: Want::Profile(Box::new(blank("user001"))),
        },
        Case {
            name: "wecom: non-member has no userid",
            doc: fixture(fx::AUTH_GETUSERINFO_NON_MEMBER),
            want: Want::Missing(&[
                "required field `user_id`",
                "`$.userid` (no match)",
                "`$.UserId` (no match)",
                "`$.private.userid` (no match)",
            ]),
        },
    ]
}

unilogin_conformance::mapping_checks!(NAME, DEFAULT_RULES, cases, MIN_CASES);
