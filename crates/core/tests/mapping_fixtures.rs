//! Table-driven tests: every user-document fixture of every platform, mapped with that
//! platform's default rules file, checked field by field.
//!
//! The documents are built the way the platform crates hand them to the engine (see each rules
//! file's header): DingTalk web = `user/get` body + `me`, Feishu = `user_info` body + `contact`,
//! WeCom = `user/get` body + `private`, custom OAuth2 = userinfo claims.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use unilogin_core::mapping::{MappingRules, UserProfile};
use unilogin_core::{Error, PlatformName, TenantId};
use unilogin_testkit::fixtures as fx;

const DINGTALK_RULES: &str = include_str!("../../dingtalk/rules.yaml");
const FEISHU_RULES: &str = include_str!("../../feishu/rules.yaml");
const WECOM_RULES: &str = include_str!("../../wecom/rules.yaml");
const CUSTOM_RULES: &str = include_str!("../../custom-oauth/rules.yaml");

fn fixture(text: &str) -> Value {
    serde_json::from_str(text).expect("fixture is JSON")
}

fn dt_user_get() -> Value {
    fixture(fx::dingtalk::TOPAPI_V2_USER_GET)
}
fn dt_me() -> Value {
    fixture(fx::dingtalk::V1_CONTACT_USERS_ME)
}
fn dt_getuserinfo() -> Value {
    fixture(fx::dingtalk::TOPAPI_V2_USER_GETUSERINFO)
}
fn fs_user_info() -> Value {
    fixture(fx::feishu::AUTHEN_V1_USER_INFO)
}
fn fs_contact_user() -> Value {
    fixture(fx::feishu::CONTACT_V3_USERS_GET)["data"]["user"].clone()
}
fn fs_access_token_v1() -> Value {
    fixture(fx::feishu::AUTHEN_V1_ACCESS_TOKEN)
}
fn wc_user_get() -> Value {
    fixture(fx::wecom::USER_GET)
}
fn wc_detail() -> Value {
    fixture(fx::wecom::AUTH_GETUSERDETAIL)
}
fn wc_member() -> Value {
    fixture(fx::wecom::AUTH_GETUSERINFO_MEMBER)
}
fn wc_non_member() -> Value {
    fixture(fx::wecom::AUTH_GETUSERINFO_NON_MEMBER)
}
fn wc_legacy() -> Value {
    fixture(fx::wecom::USER_GETUSERINFO_LEGACY)
}
fn custom_userinfo() -> Value {
    fixture(fx::custom::USERINFO_OIDC)
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

/// A profile with only the identity filled; cases fill the rest.
fn blank(platform: &str, user_id: &str) -> UserProfile {
    UserProfile {
        platform: PlatformName::new(platform).unwrap(),
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
    platform: &'static str,
    rules: &'static str,
    doc: Value,
    want: Want,
}

fn dingtalk_h5() -> UserProfile {
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
        ..blank("dingtalk", "user001")
    }
}

fn feishu_full() -> UserProfile {
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
        ..blank("feishu", "user001")
    }
}

fn wecom_user_get() -> UserProfile {
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
        ..blank("wecom", "user001")
    }
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "dingtalk H5: topapi/v2/user/get",
            platform: "dingtalk",
            rules: DINGTALK_RULES,
            doc: dt_user_get(),
            want: Want::Profile(Box::new(dingtalk_h5())),
        },
        Case {
            name: "dingtalk web: user/get + me",
            platform: "dingtalk",
            rules: DINGTALK_RULES,
            doc: with(dt_user_get(), "me", dt_me()),
            want: Want::Profile(Box::new(UserProfile {
                open_id: s("openid-user001"),
                ..dingtalk_h5()
            })),
        },
        Case {
            name: "dingtalk web: sparse user/get, details from me",
            platform: "dingtalk",
            rules: DINGTALK_RULES,
            doc: json!({"errcode": 0, "errmsg": "ok",
                        "result": {"userid": "user001", "mobile": "", "email": "", "org_email": ""},
                        "me": dt_me()}),
            want: Want::Profile(Box::new(UserProfile {
                union_id: s("unionid-user001"),
                open_id: s("openid-user001"),
                name: s("Zhang San"),
                mobile: s("13800000000"),
                email: s("user001@example.com"),
                avatar: s("https://example.com/avatar/user001.png"),
                extra: extra(&[("state_code", json!("86"))]),
                ..blank("dingtalk", "user001")
            })),
        },
        Case {
            name: "dingtalk: getuserinfo result (id, union id, name only)",
            platform: "dingtalk",
            rules: DINGTALK_RULES,
            doc: dt_getuserinfo(),
            want: Want::Profile(Box::new(UserProfile {
                union_id: s("unionid-user001"),
                name: s("Zhang San"),
                ..blank("dingtalk", "user001")
            })),
        },
        Case {
            name: "dingtalk: users/me alone has no org user id",
            platform: "dingtalk",
            rules: DINGTALK_RULES,
            doc: json!({"me": dt_me()}),
            want: Want::Missing(&[
                "required field `user_id`",
                "`$.result.userid` (no match)",
                "`$.userid` (no match)",
            ]),
        },
        Case {
            name: "feishu: user_info alone",
            platform: "feishu",
            rules: FEISHU_RULES,
            doc: fs_user_info(),
            want: Want::Profile(Box::new(UserProfile {
                job_title: None,
                department_ids: Vec::new(),
                active: None,
                extra: extra(&[
                    ("en_name", json!("San Zhang")),
                    ("enterprise_email", json!("user001@corp.example.com")),
                    ("tenant_key", json!("faketenantkey001")),
                ]),
                ..feishu_full()
            })),
        },
        Case {
            name: "feishu: user_info + contact",
            platform: "feishu",
            rules: FEISHU_RULES,
            doc: with(fs_user_info(), "contact", fs_contact_user()),
            want: Want::Profile(Box::new(feishu_full())),
        },
        Case {
            name: "feishu: resigned member is not active",
            platform: "feishu",
            rules: FEISHU_RULES,
            doc: {
                let mut contact = fs_contact_user();
                contact["status"]["is_resigned"] = json!(true);
                with(fs_user_info(), "contact", contact)
            },
            want: Want::Profile(Box::new(UserProfile {
                active: Some(false),
                ..feishu_full()
            })),
        },
        Case {
            name: "feishu: legacy authen/v1/access_token data",
            platform: "feishu",
            rules: FEISHU_RULES,
            doc: fs_access_token_v1(),
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
                ..feishu_full()
            })),
        },
        Case {
            name: "feishu: without the user_id scope",
            platform: "feishu",
            rules: FEISHU_RULES,
            doc: {
                let mut d = fs_user_info();
                d["data"].as_object_mut().unwrap().remove("user_id");
                d
            },
            want: Want::Missing(&[
                "required field `user_id`",
                "`$.data.user_id` (no match)",
                "`$.contact.user_id` (no match)",
            ]),
        },
        Case {
            name: "wecom: user/get",
            platform: "wecom",
            rules: WECOM_RULES,
            doc: wc_user_get(),
            want: Want::Profile(Box::new(wecom_user_get())),
        },
        Case {
            name: "wecom: user/get + private getuserdetail",
            platform: "wecom",
            rules: WECOM_RULES,
            doc: with(wc_user_get(), "private", wc_detail()),
            want: Want::Profile(Box::new(wecom_user_get())),
        },
        Case {
            name: "wecom: new app, user/get without sensitive fields + private",
            platform: "wecom",
            rules: WECOM_RULES,
            doc: {
                let mut d = wc_user_get();
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
                let mut private = wc_detail();
                private["mobile"] = json!("+86 13900000000");
                with(d, "private", private)
            },
            want: Want::Profile(Box::new(UserProfile {
                mobile: s("13900000000"),
                ..wecom_user_get()
            })),
        },
        Case {
            name: "wecom: disabled member (status 2)",
            platform: "wecom",
            rules: WECOM_RULES,
            doc: with(wc_user_get(), "status", json!(2)),
            want: Want::Profile(Box::new(UserProfile {
                active: Some(false),
                ..wecom_user_get()
            })),
        },
        Case {
            name: "wecom: auth/getuserinfo member (id only)",
            platform: "wecom",
            rules: WECOM_RULES,
            doc: wc_member(),
            want: Want::Profile(Box::new(blank("wecom", "user001"))),
        },
        Case {
            name: "wecom: legacy user/getuserinfo (UserId)",
            platform: "wecom",
            rules: WECOM_RULES,
            doc: wc_legacy(),
            want: Want::Profile(Box::new(blank("wecom", "user001"))),
        },
        Case {
            name: "wecom: non-member has no userid",
            platform: "wecom",
            rules: WECOM_RULES,
            doc: wc_non_member(),
            want: Want::Missing(&[
                "required field `user_id`",
                "`$.userid` (no match)",
                "`$.UserId` (no match)",
                "`$.private.userid` (no match)",
            ]),
        },
        Case {
            name: "custom-oauth: OIDC userinfo",
            platform: "custom-oauth",
            rules: CUSTOM_RULES,
            doc: custom_userinfo(),
            want: Want::Profile(Box::new(UserProfile {
                name: s("Zhang San"),
                mobile: s("13800000000"),
                email: s("user001@example.com"),
                avatar: s("https://example.com/avatar/user001.png"),
                extra: extra(&[
                    ("preferred_username", json!("zhangsan")),
                    ("email_verified", json!(true)),
                ]),
                ..blank("custom-oauth", "user001")
            })),
        },
        Case {
            name: "custom-oauth: numeric id (GitHub-like) without sub",
            platform: "custom-oauth",
            rules: CUSTOM_RULES,
            doc: json!({"id": 12345, "login": "zs", "name": null, "email": "ZS@Example.com "}),
            want: Want::Profile(Box::new(UserProfile {
                email: s("zs@example.com"),
                ..blank("custom-oauth", "12345")
            })),
        },
    ]
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
    assert!(cases.len() >= 15);
    for case in cases {
        let rules = MappingRules::from_yaml(case.platform, case.rules)
            .unwrap_or_else(|e| panic!("{}: default rules do not load: {e}", case.name));
        let platform = PlatformName::new(case.platform).unwrap();
        let got = rules.map(&platform, &tenant(), &case.doc);
        match (got, case.want) {
            (Ok(got), Want::Profile(want)) => assert_fields(case.name, &got, &want),
            (
                Err(Error::Mapping {
                    platform: p,
                    message,
                }),
                Want::Missing(parts),
            ) => {
                assert_eq!(p, case.platform, "{}", case.name);
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
    for case in cases() {
        let rules = MappingRules::from_yaml(case.platform, case.rules).unwrap();
        let platform = PlatformName::new(case.platform).unwrap();
        if let Ok(p) = rules.map(&platform, &tenant(), &case.doc) {
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
            assert!(!p.user_id.is_empty());
            assert!(p.department_ids.iter().all(|d| !d.is_empty()));
        }
    }
}

#[test]
fn default_rules_files_hold_exactly_their_platform() {
    for (platform, yaml) in [
        ("dingtalk", DINGTALK_RULES),
        ("feishu", FEISHU_RULES),
        ("wecom", WECOM_RULES),
        ("custom-oauth", CUSTOM_RULES),
    ] {
        let rules = MappingRules::from_yaml(platform, yaml).unwrap();
        assert_eq!(rules.platform(), platform);
        for other in ["dingtalk", "feishu", "wecom", "custom-oauth"] {
            if other != platform {
                assert!(
                    MappingRules::from_yaml(other, yaml).is_err(),
                    "{platform} file has {other}"
                );
            }
        }
    }
}

#[test]
fn tenant_override_on_top_of_default_rules() {
    // A tenant that identifies people by employee number and wants the raw document.
    let rules = MappingRules::from_yaml("dingtalk", DINGTALK_RULES)
        .unwrap()
        .with_overrides(&json!({
            "user_id": {"path": "$.result.job_number", "backup": ["$.result.userid"]},
            "extra": {"remark": {"path": "$.result.remark", "transform": "empty_to_none"}, "senior": null},
            "raw": true
        }))
        .unwrap();
    let doc = dt_user_get();
    let p = rules
        .map(&PlatformName::new("dingtalk").unwrap(), &tenant(), &doc)
        .unwrap();
    assert_eq!(p.user_id, "E0001");
    assert_eq!(p.mobile.as_deref(), Some("13800000000"));
    assert_eq!(p.raw.as_ref(), Some(&doc));
    assert!(!p.extra.contains_key("remark"), "empty remark is absent");
    assert!(!p.extra.contains_key("senior"));
    assert_eq!(p.extra["roles"], json!(["Member"]));
}
