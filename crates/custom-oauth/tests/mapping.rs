//! The custom OAuth2 / OIDC user-document fixtures, mapped with the crate's default rules
//! ([`unilogin_custom_oauth::DEFAULT_RULES`]) and checked field by field.
//!
//! The document handed to the engine is the userinfo response (or the id_token claims), see
//! `rules.yaml`'s header. The fixtures are the test kit's (`unilogin_testkit::fixtures::custom`).

use serde_json::json;
use unilogin_conformance::mapping::{self, Case, Want, extra, fixture, s};
use unilogin_core::mapping::UserProfile;
use unilogin_custom_oauth::{DEFAULT_RULES, NAME};
use unilogin_testkit::fixtures::custom as fx;

/// The cases below; fewer means one was lost.
const MIN_CASES: usize = 3;

/// A profile with only the identity filled; cases fill the rest.
fn blank(user_id: &str) -> UserProfile {
    mapping::blank(NAME, user_id)
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "custom-oauth: OIDC userinfo",
            doc: fixture(fx::USERINFO_OIDC),
            want: Want::Profile(Box::new(UserProfile {
                name: s("Zhang San"),
                // `+8613800000000`: the country code moves to its own field.
                mobile: s("13800000000"),
                mobile_country_code: s("86"),
                email: s("user001@example.com"),
                avatar: s("https://example.com/avatar/user001.png"),
                extra: extra(&[
                    ("preferred_username", json!("zhangsan")),
                    ("email_verified", json!(true)),
                ]),
                ..blank("user001")
            })),
        },
        Case {
            name: "custom-oauth: numeric id (GitHub-like) without sub",
            doc: json!({"id": 12345, "login": "zs", "name": null, "email": "ZS@Example.com "}),
            want: Want::Profile(Box::new(UserProfile {
                email: s("zs@example.com"),
                ..blank("12345")
            })),
        },
        Case {
            name: "custom-oauth: no sub, id or user_id",
            doc: json!({"email": "user001@example.com", "name": "Zhang San"}),
            want: Want::Missing(&[
                "required field `user_id`",
                "`$.sub` (no match)",
                "`$.id` (no match)",
                "`$.user_id` (no match)",
            ]),
        },
    ]
}

unilogin_conformance::mapping_checks!(NAME, DEFAULT_RULES, cases, MIN_CASES);
