//! Unit tests of the rules format, load-time errors, evaluation and overrides.

use serde_json::{Value, json};

use super::*;

fn p() -> PlatformName {
    PlatformName::new("demo").unwrap()
}

fn t() -> TenantId {
    TenantId::new("acme").unwrap()
}

fn rules(yaml: &str) -> MappingRules {
    MappingRules::from_yaml("demo", yaml).unwrap_or_else(|e| panic!("{e}"))
}

/// The (field, reason) of a load-time error.
fn load_err(yaml: &str) -> (String, String) {
    match MappingRules::from_yaml("demo", yaml) {
        Err(Error::Config {
            field,
            reason,
            platform,
            tenant,
        }) => {
            assert_eq!(platform.as_deref(), Some("demo"));
            assert_eq!(tenant, None);
            (field, reason)
        }
        Err(other) => panic!("not a config error: {other}"),
        Ok(r) => panic!("loaded: {r:?}"),
    }
}

fn mapping_err(r: &MappingRules, doc: &Value) -> String {
    match r.map(&p(), &t(), doc) {
        Err(Error::Mapping { platform, message }) => {
            assert_eq!(platform, "demo");
            message
        }
        Err(other) => panic!("not a mapping error: {other}"),
        Ok(profile) => panic!("mapped: {profile:?}"),
    }
}

const BASIC: &str = r#"
demo:
  user_id: { path: "$.result.userid", backup: ["$.userid", "$.UserId"], required: true }
  name: "$.result.name"
  mobile: { path: "$.result.mobile", backup: "$.me.mobile", transform: [trim, strip_country_code] }
  email: { path: "$.result.email", backup: ["$.result.org_email"], transform: [trim, lowercase] }
  department_ids: { path: "$.result.dept_id_list[*]" }
  active: { path: "$.result.active" }
  extra:
    roles: { path: "$.result.role_list[*].name", many: true }
    admin: "$.result.admin"
    hired: { path: "$.result.hired_date", transform: number_to_string }
"#;

#[test]
fn maps_every_kind_of_field() {
    let r = rules(BASIC);
    let doc = json!({"result": {
        "userid": "u1", "name": "Zhang San", "mobile": " +86-13800000000 ", "email": "",
        "org_email": " U1@Corp.Example.COM", "dept_id_list": [1, "x", null, 2.5], "active": true,
        "role_list": [{"name": "Admin"}, {"name": null}, {"id": 3}], "admin": false,
        "hired_date": 1700000000000u64
    }});
    let pr = r.map(&p(), &t(), &doc).unwrap();
    assert_eq!(pr.platform, p());
    assert_eq!(pr.tenant, t());
    assert_eq!(pr.user_id.as_deref(), Some("u1"));
    assert_eq!(pr.name.as_deref(), Some("Zhang San"));
    assert_eq!(pr.mobile.as_deref(), Some("13800000000"));
    // Empty primary falls through to the backup.
    assert_eq!(pr.email.as_deref(), Some("u1@corp.example.com"));
    assert_eq!(pr.department_ids, ["1", "x", "2.5"]);
    assert_eq!(pr.active, Some(true));
    assert_eq!(pr.extra["roles"], json!(["Admin"]));
    assert_eq!(pr.extra["admin"], json!(false));
    assert_eq!(pr.extra["hired"], json!("1700000000000"));
    assert_eq!(pr.union_id, None);
    assert_eq!(pr.raw, None);
}

#[test]
fn absent_values_are_none_never_empty_strings() {
    let r = rules(BASIC);
    let doc = json!({"result": {"userid": 42, "name": "", "mobile": null, "email": {"nested": 1},
                     "dept_id_list": [], "active": "maybe", "admin": null, "role_list": []}});
    let pr = r.map(&p(), &t(), &doc).unwrap();
    assert_eq!(pr.user_id.as_deref(), Some("42"), "numeric ids become text");
    assert_eq!(pr.name, None);
    assert_eq!(pr.mobile, None);
    assert_eq!(pr.email, None, "an object is not an e-mail");
    assert!(pr.department_ids.is_empty());
    assert_eq!(pr.active, None);
    assert!(pr.extra.is_empty(), "{:?}", pr.extra);
    let json = serde_json::to_value(&pr).unwrap();
    assert_eq!(json["name"], Value::Null);
    let back: UserProfile = serde_json::from_value(json).unwrap();
    assert_eq!(back, pr);
}

#[test]
fn backups_are_tried_in_order_after_the_primary() {
    let r = rules(BASIC);
    let cases = [
        (
            json!({"result": {"userid": "a"}, "userid": "b", "UserId": "c"}),
            "a",
        ),
        (
            json!({"result": {"userid": null}, "userid": "b", "UserId": "c"}),
            "b",
        ),
        (json!({"result": {}, "userid": "", "UserId": "c"}), "c"),
        (json!({"UserId": "c", "userid": "b"}), "b"),
        (json!({"result": {"userid": ["", "d"]}}), "d"),
    ];
    for (doc, want) in cases {
        assert_eq!(
            r.map(&p(), &t(), &doc).unwrap().user_id.as_deref(),
            Some(want),
            "{doc}"
        );
    }
}

#[test]
fn missing_required_field_names_field_and_every_path() {
    let r = rules(BASIC);
    let msg = mapping_err(&r, &json!({"result": {"userid": {"x": 1}}, "userid": null}));
    assert!(msg.contains("tenant `acme`"), "{msg}");
    assert!(msg.contains("required field `user_id`"), "{msg}");
    assert!(msg.contains("`$.result.userid` (a map, not text)"), "{msg}");
    assert!(msg.contains("`$.userid` (null)"), "{msg}");
    assert!(msg.contains("`$.UserId` (no match)"), "{msg}");
    let msg = mapping_err(&r, &json!("not even an object"));
    assert!(msg.contains("`$.result.userid` (no match)"), "{msg}");
}

#[test]
fn every_missing_required_field_is_reported() {
    let r = rules(
        r#"
demo:
  user_id: "$.id"
  email: { path: "$.email", required: true }
  department_ids: { path: "$.d", required: true }
  active: { path: "$.on", required: true }
  extra:
    must: { path: "$.must", required: true, transform: empty_to_none }
"#,
    );
    let msg = mapping_err(&r, &json!({"id": "u", "email": "", "on": 7, "must": []}));
    for want in [
        "`email`",
        "`$.email` (empty text after transforms)",
        "`department_ids`",
        "`$.d` (no match)",
        "`active`",
        "`$.on` (a number, not true/false)",
        "`extra.must`",
        "`$.must` (only empty values after transforms)",
    ] {
        assert!(msg.contains(want), "missing {want:?} in {msg}");
    }
    assert!(!msg.contains("user_id"), "{msg}");
    let ok = r
        .map(
            &p(),
            &t(),
            &json!({"id": "u", "email": "e", "d": [1], "on": 1, "must": [0]}),
        )
        .unwrap();
    assert_eq!(ok.active, Some(true));
    assert_eq!(ok.extra["must"], json!([0]));
}

#[test]
fn bool_conversion_and_matches() {
    let r = rules(
        r#"
demo:
  user_id: "$.id"
  active: { path: "$.status", matches: 1 }
  extra:
    feishu_active:
      path: "$.st"
      matches: { is_activated: true, is_frozen: false, is_resigned: false }
"#,
    );
    let map = |doc: Value| r.map(&p(), &t(), &doc).unwrap();
    assert_eq!(map(json!({"id": "u", "status": 1})).active, Some(true));
    assert_eq!(map(json!({"id": "u", "status": 5})).active, Some(false));
    assert_eq!(map(json!({"id": "u", "status": null})).active, None);
    assert_eq!(map(json!({"id": "u"})).active, None);
    let st =
        json!({"is_activated": true, "is_frozen": false, "is_resigned": false, "is_exited": false});
    assert_eq!(
        map(json!({"id": "u", "st": st})).extra["feishu_active"],
        json!(true)
    );
    let st = json!({"is_activated": true, "is_frozen": false, "is_resigned": true});
    assert_eq!(
        map(json!({"id": "u", "st": st})).extra["feishu_active"],
        json!(false)
    );

    let r = rules(
        "demo:\n  user_id: \"$.id\"\n  active: { path: \"$.a\", transform: [trim, lowercase] }\n",
    );
    for (v, want) in [
        (json!(true), Some(true)),
        (json!(false), Some(false)),
        (json!(" TRUE "), Some(true)),
        (json!("false"), Some(false)),
        (json!(0), Some(false)),
        (json!(1), Some(true)),
        (json!(2), None),
        (json!("yes"), None),
        (json!([true]), None),
    ] {
        let pr = r.map(&p(), &t(), &json!({"id": "u", "a": v})).unwrap();
        assert_eq!(pr.active, want, "{v}");
    }
}

#[test]
fn extra_single_values_keep_their_json_shape() {
    let r = rules(
        "demo:\n  user_id: \"$.id\"\n  extra:\n    obj: \"$.o\"\n    list: \"$.l\"\n    flat: { path: \"$.l\", many: true }\n",
    );
    let pr = r
        .map(
            &p(),
            &t(),
            &json!({"id": "u", "o": {"a": [1]}, "l": [1, [2], null]}),
        )
        .unwrap();
    assert_eq!(pr.extra["obj"], json!({"a": [1]}));
    assert_eq!(pr.extra["list"], json!([1, [2], null]));
    assert_eq!(pr.extra["flat"], json!([1, [2]]));
}

#[test]
fn raw_document_only_when_asked() {
    let doc = json!({"id": "u", "secret_looking": "x"});
    let r = rules("demo:\n  user_id: \"$.id\"\n  raw: true\n");
    assert_eq!(r.map(&p(), &t(), &doc).unwrap().raw, Some(doc.clone()));
    let r = r.with_overrides(&json!({"raw": false})).unwrap();
    assert_eq!(r.map(&p(), &t(), &doc).unwrap().raw, None);
}

#[test]
fn load_errors_name_platform_field_path_and_problem() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "demo:\n  user_id: \"$.a[\"\n",
            "mapping.demo.user_id",
            "$.a[: invalid JSONPath syntax",
        ),
        (
            "demo:\n  user_id: \"$.a\"\n  mobile: { path: \"$.m\", backup: [\"$.ok\", \"nope\"] }\n",
            "mapping.demo.mobile",
            "nope: a path must start with `$`",
        ),
        (
            "demo:\n  user_id: \"$.a\"\n  nmae: \"$.n\"\n",
            "mapping.demo.nmae",
            "$.n: unknown field; known fields are user_id, union_id",
        ),
        (
            "demo:\n  user_id: \"$.a\"\n  name: { path: \"$.n\", transform: upper }\n",
            "mapping.demo.name",
            "$.n: unknown transform `upper`; the transforms are trim, lowercase, number_to_string, strip_country_code, empty_to_none",
        ),
        (
            "demo:\n  user_id: \"$.a\"\n  name: { path: \"$.n\", requried: true }\n",
            "mapping.demo.name",
            "$.n: unknown field `requried`",
        ),
        (
            "demo:\n  user_id: \"$.a\"\n  name: { path: \"$.n\", required: \"sometimes\" }\n",
            "mapping.demo.name",
            "$.n: invalid type: string \"sometimes\", expected a boolean",
        ),
        (
            "demo:\n  user_id: \"$.a\"\n  name: { path: \"$.n\", many: true }\n",
            "mapping.demo.name",
            "$.n: `name` holds one value; `many: true` is not allowed",
        ),
        (
            "demo:\n  user_id: \"$.a\"\n  department_ids: { path: \"$.d\", many: false }\n",
            "mapping.demo.department_ids",
            "$.d: `department_ids` is a list",
        ),
        (
            "demo:\n  user_id: \"$.a\"\n  active: { path: \"$.x\", transform: strip_country_code }\n",
            "mapping.demo.active",
            "$.x: transform `strip_country_code` does not apply to `active`",
        ),
        (
            "demo:\n  user_id: \"$.a\"\n  email: { path: \"$.x\", matches: 1 }\n",
            "mapping.demo.email",
            "$.x: `matches` gives true/false",
        ),
        (
            "demo:\n  user_id: \"$.a\"\n  extra:\n    x: { path: \"$.x\", many: true, matches: 1 }\n",
            "mapping.demo.extra.x",
            "$.x: `matches` gives one true/false value and cannot be combined with `many`",
        ),
        (
            "demo:\n  subject: email\n  user_id: \"$.a\"\n",
            "mapping.demo.subject",
            "`email` is not a subject kind (user_id, union_id or open_id)",
        ),
        (
            "demo:\n  subject: [open_id]\n  user_id: \"$.a\"\n",
            "mapping.demo.subject",
            "expected user_id, union_id or open_id, found a list",
        ),
        (
            "demo:\n  subject: open_id\n  user_id: \"$.a\"\n",
            "mapping.demo.open_id",
            "a rule is required: `open_id` is the subject",
        ),
        (
            "demo:\n  name: \"$.n\"\n",
            "mapping.demo.user_id",
            "a rule is required",
        ),
        (
            "demo:\n  user_id: 5\n",
            "mapping.demo.user_id",
            "expected a path or a map",
        ),
        (
            "demo:\n  user_id: { backup: [\"$.a\"] }\n",
            "mapping.demo.user_id",
            "missing field `path`",
        ),
        (
            "demo:\n  user_id: { path: \"$.a\", backup: 3 }\n",
            "mapping.demo.user_id",
            "$.a: `backup` must be a string or a list of strings, found a number",
        ),
        (
            "demo:\n  user_id: { path: \"$.a\", transform: [trim, 1] }\n",
            "mapping.demo.user_id",
            "$.a: `transform` must list strings, found a number",
        ),
        (
            "demo:\n  user_id: \"$.a\"\n  extra: [1]\n",
            "mapping.demo.extra",
            "expected a map of name -> rule, found a list",
        ),
        (
            "demo:\n  user_id: \"$.a\"\n  extra:\n    \"bad name\": \"$.x\"\n",
            "mapping.demo.extra.bad name",
            "$.x: an extra field name must be",
        ),
        (
            "demo:\n  user_id: \"$.a\"\n  raw: \"yes please\"\n",
            "mapping.demo.raw",
            "expected true or false, found text",
        ),
        (
            "demo: [1, 2]\n",
            "mapping.demo",
            "expected a map of field -> rule, found a list",
        ),
        (
            "other:\n  user_id: \"$.a\"\n",
            "mapping.demo",
            "no top-level `demo:` section (found: [other])",
        ),
        (
            "- 1\n",
            "mapping.demo",
            "expected a map with the top-level key `demo`",
        ),
        ("demo: {\n", "mapping.demo", "invalid YAML"),
        (
            "demo:\n  user_id: \"$.a\"\n  user_id: \"$.b\"\n",
            "mapping.demo",
            "invalid YAML: duplicate mapping key: user_id",
        ),
    ];
    for (yaml, field, reason) in cases {
        let (f, r) = load_err(yaml);
        assert_eq!(&f, field, "yaml: {yaml}");
        assert!(
            r.starts_with(reason),
            "yaml: {yaml}\nwant prefix: {reason}\ngot: {r}"
        );
        assert!(!r.contains('\n'), "multi-line reason: {r}");
    }
}

#[test]
fn error_display_is_useful() {
    let e = MappingRules::from_yaml("demo", "demo:\n  user_id: \"$..[\"\n").unwrap_err();
    let s = e.to_string();
    assert!(
        s.contains("platform `demo`") && s.contains("mapping.demo.user_id") && s.contains("$..["),
        "{s}"
    );
    assert_eq!(e.kind(), "config");
}

#[test]
fn platform_name_is_validated_and_case_insensitive() {
    let r = MappingRules::from_yaml("DingTalk", "dingtalk:\n  user_id: \"$.a\"\n").unwrap();
    assert_eq!(r.platform(), "dingtalk");
    let r = MappingRules::from_yaml("wecom", "WeCom:\n  user_id: \"$.a\"\nother: 1\n").unwrap();
    assert_eq!(r.platform(), "wecom");
    assert!(matches!(
        MappingRules::from_yaml("bad name", "x: 1"),
        Err(Error::Config { .. })
    ));
    let huge = format!("demo:\n  user_id: \"$.a\"\n#{}\n", "x".repeat(300 * 1024));
    let (f, r) = load_err(&huge);
    assert_eq!(f, "mapping.demo");
    assert!(r.contains("larger than"), "{r}");
}

#[test]
fn overrides_merge_field_by_field() {
    let base = rules(BASIC);
    let doc = json!({"result": {"userid": "u1", "name": "N", "email": "a@x", "alt": "ALT",
                     "role_list": [{"name": "R"}], "admin": true, "hired_date": 1},
                     "tenant_id_field": "T1"});
    let before = base.map(&p(), &t(), &doc).unwrap();

    let over = base
        .with_overrides(&json!({
            "user_id": {"path": "$.tenant_id_field"},
            "name": null,
            "job_title": "$.result.alt",
            "extra": {"roles": null, "badge": {"path": "$.result.alt", "transform": "lowercase"}}
        }))
        .unwrap();
    let after = over.map(&p(), &t(), &doc).unwrap();
    assert_eq!(after.user_id.as_deref(), Some("T1"));
    assert_eq!(after.name, None, "null removes the field");
    assert_eq!(after.job_title.as_deref(), Some("ALT"));
    assert_eq!(
        after.email, before.email,
        "untouched fields keep the default rule"
    );
    assert_eq!(after.extra.get("roles"), None);
    assert_eq!(after.extra["badge"], json!("alt"));
    assert_eq!(
        after.extra["admin"],
        json!(true),
        "untouched extra fields are kept"
    );
    // The defaults are unchanged.
    assert_eq!(base.map(&p(), &t(), &doc).unwrap(), before);

    // A replaced rule is replaced whole: its backups are gone.
    let over = base
        .with_overrides(&json!({"user_id": "$.nothing"}))
        .unwrap();
    let msg = mapping_err(&over, &json!({"userid": "b"}));
    assert!(
        msg.contains("`$.nothing` (no match)") && !msg.contains("$.userid"),
        "{msg}"
    );

    // Overrides stored as YAML or JSON text.
    let yaml = base
        .with_overrides(&json!("name: { path: \"$.result.alt\" }\n"))
        .unwrap();
    assert_eq!(
        yaml.map(&p(), &t(), &doc).unwrap().name.as_deref(),
        Some("ALT")
    );
    let text = base
        .with_overrides(&json!(r#"{"name": "$.result.alt"}"#))
        .unwrap();
    assert_eq!(
        text.map(&p(), &t(), &doc).unwrap().name.as_deref(),
        Some("ALT")
    );
    // Null changes nothing; `extra: null` drops every extra field.
    assert_eq!(
        base.with_overrides(&Value::Null)
            .unwrap()
            .map(&p(), &t(), &doc)
            .unwrap(),
        before
    );
    let none = base.with_overrides(&json!({"extra": null})).unwrap();
    assert!(none.map(&p(), &t(), &doc).unwrap().extra.is_empty());
}

#[test]
fn override_errors_are_load_time_errors() {
    let base = rules(BASIC);
    for (over, field, reason) in [
        (
            json!({"user_id": null}),
            "mapping.demo.user_id",
            "a rule is required",
        ),
        (
            json!({"mobile": {"path": "$.m["}}),
            "mapping.demo.mobile",
            "$.m[: invalid JSONPath",
        ),
        (
            json!({"phone": "$.p"}),
            "mapping.demo.phone",
            "$.p: unknown field",
        ),
        (
            json!({"extra": {"x": {"path": "$.x", "transform": "rot13"}}}),
            "mapping.demo.extra.x",
            "$.x: unknown transform `rot13`",
        ),
        (
            json!([1]),
            "mapping.demo",
            "expected a map of field -> rule, found a list",
        ),
        (json!("name: [unclosed"), "mapping.demo", "invalid YAML"),
    ] {
        match base.with_overrides(&over) {
            Err(Error::Config {
                field: f,
                reason: r,
                ..
            }) => {
                assert_eq!(f, field, "{over}");
                assert!(r.starts_with(reason), "{over}: {r}");
            }
            other => panic!("{over}: {other:?}"),
        }
    }
}

#[test]
fn rules_are_send_sync_and_cheap_to_clone() {
    fn assert_send_sync<T: Send + Sync + 'static>() {}
    assert_send_sync::<MappingRules>();
    assert_send_sync::<UserProfile>();
    let r = rules(BASIC);
    let c = r.clone();
    assert!(Arc::ptr_eq(&r.rules, &c.rules));
    let dbg = format!("{r:?}");
    assert!(dbg.contains("$.result.userid"), "{dbg}");
}

#[test]
fn filters_and_recursive_paths_work() {
    let r = rules(
        r#"
demo:
  user_id: "$..userid"
  extra:
    is_admin: { path: "$.roles[?(@.name == 'Admin')].name", matches: "Admin" }
    leader_depts: { path: "$.leader[?(@.leader == true)].dept_id", many: true, transform: number_to_string }
"#,
    );
    let doc = json!({"deep": {"deeper": {"userid": "u9"}},
                     "roles": [{"name": "Member"}, {"name": "Admin"}],
                     "leader": [{"dept_id": 1, "leader": false}, {"dept_id": 2, "leader": true}]});
    let pr = r.map(&p(), &t(), &doc).unwrap();
    assert_eq!(pr.user_id.as_deref(), Some("u9"));
    assert_eq!(pr.extra["is_admin"], json!(true));
    assert_eq!(pr.extra["leader_depts"], json!(["2"]));
    let pr = r
        .map(
            &p(),
            &t(),
            &json!({"userid": "u", "roles": [{"name": "Member"}]}),
        )
        .unwrap();
    assert_eq!(
        pr.extra.get("is_admin"),
        None,
        "no admin role: absent, not false"
    );
}

const IDS: &str = r#"
demo:
  subject: union_id
  user_id: "$.data.user_id"
  union_id: "$.data.union_id"
  open_id: "$.data.open_id"
  name: "$.data.name"
"#;

#[test]
fn the_subject_is_the_chosen_identifier_and_nothing_else() {
    let r = rules(IDS);
    assert_eq!(r.subject(), SubjectKind::UnionId);
    let doc = json!({"data": {"union_id": "on_1", "open_id": "ou_1", "name": "N"}});
    let pr = r.map(&p(), &t(), &doc).unwrap();
    assert_eq!(pr.subject.kind, SubjectKind::UnionId);
    assert_eq!(pr.subject.value, "on_1");
    assert_eq!(pr.user_id, None, "no user_id is invented");
    assert_eq!(pr.open_id.as_deref(), Some("ou_1"));
    assert_eq!(
        pr.identifiers().collect::<Vec<_>>(),
        [
            (SubjectKind::UnionId, "on_1"),
            (SubjectKind::OpenId, "ou_1")
        ]
    );
    // The tenant's choice: open_id.
    let open = r.with_subject(Some(SubjectKind::OpenId)).unwrap();
    assert!(
        Arc::ptr_eq(&open.rules, &r.rules),
        "the compiled rules are shared"
    );
    assert_eq!(open.map(&p(), &t(), &doc).unwrap().subject.value, "ou_1");
    // user_id chosen and absent: an error naming it, never open_id or union_id in its place.
    let strict = r.with_subject(Some(SubjectKind::UserId)).unwrap();
    let msg = mapping_err(&strict, &doc);
    assert!(
        msg.contains("required field `user_id` not found")
            && msg.contains("`$.data.user_id` (no match)"),
        "{msg}"
    );
    // With the chosen id present the login succeeds; the others stay optional.
    let only_union = json!({"data": {"union_id": "on_2"}});
    let pr = r.map(&p(), &t(), &only_union).unwrap();
    assert_eq!((pr.user_id, pr.open_id), (None, None));
    // `None` keeps the platform's default.
    assert_eq!(
        r.with_subject(None).unwrap().subject(),
        SubjectKind::UnionId
    );
}

#[test]
fn a_subject_without_a_rule_is_a_configuration_error() {
    let r = rules("demo:\n  user_id: \"$.u\"\n");
    assert_eq!(r.subject(), SubjectKind::UserId, "user_id by default");
    match r.with_subject(Some(SubjectKind::OpenId)) {
        Err(Error::Config { field, reason, .. }) => {
            assert_eq!(field, "identity.subject");
            assert!(reason.contains("no `open_id` rule"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    // Overrides neither choose the subject nor remove its rule.
    let e = rules(IDS)
        .with_overrides(&json!({"subject": "user_id"}))
        .unwrap_err()
        .to_string();
    assert!(e.contains("identity.subject"), "{e}");
    let e = rules(IDS)
        .with_overrides(&json!({"union_id": null}))
        .unwrap_err()
        .to_string();
    assert!(e.contains("`union_id` is the subject"), "{e}");
}

#[test]
fn identifiers_the_code_step_learnt_fill_the_gaps() {
    let r = rules(IDS);
    let doc = json!({"data": {"name": "N"}});
    let known = KnownIds {
        union_id: Some("on_9"),
        open_id: Some(" "),
        ..KnownIds::default()
    };
    let pr = r.map_with(&p(), &t(), &doc, known).unwrap();
    assert_eq!(pr.subject.value, "on_9");
    assert_eq!(pr.open_id, None, "blank is absent");
    // The document wins over what the code step said.
    let doc = json!({"data": {"union_id": "on_doc"}});
    assert_eq!(
        r.map_with(&p(), &t(), &doc, known).unwrap().subject.value,
        "on_doc"
    );
    assert!(matches!(
        r.map(&p(), &t(), &json!({})),
        Err(Error::Mapping { .. })
    ));
}

const CONTACT: &str = r#"
demo:
  user_id: "$.id"
  name: "$.name"
  mobile: { path: "$.mobile", backup: ["$.phone"] }
  mobile_country_code: { path: "$.state_code" }
  mobile_verified: "$.phone_verified"
  email: "$.email"
  email_verified: "$.email_verified"
  department_ids: "$.depts"
"#;

#[test]
fn profiles_are_normalised_whatever_the_platform() {
    let r = rules(CONTACT);
    let map = |doc: Value| r.map(&p(), &t(), &doc).unwrap();
    // Country code apart (DingTalk's shape).
    let pr = map(json!({"id": "u", "mobile": "138 0000 0001", "state_code": 86}));
    assert_eq!(pr.mobile.as_deref(), Some("13800000001"));
    assert_eq!(pr.mobile_country_code.as_deref(), Some("86"));
    assert_eq!(pr.mobile_e164().as_deref(), Some("+8613800000001"));
    // Country code inside the number (Feishu's shape): the same profile fields.
    let pr = map(json!({"id": "u", "mobile": "+86 138-0000-0001"}));
    assert_eq!(pr.mobile.as_deref(), Some("13800000001"));
    assert_eq!(pr.mobile_country_code.as_deref(), Some("86"));
    // A country code without a number is still reported.
    let pr = map(json!({"id": "u", "state_code": "+852"}));
    assert_eq!(
        (pr.mobile, pr.mobile_country_code.as_deref()),
        (None, Some("852"))
    );
    // Blank text is absent; e-mail keeps its case; verification flags as the platform says.
    let pr = map(json!({
        "id": " u1 ", "name": "   ", "email": " Zhang.San@Example.COM ", "email_verified": true,
        "phone": "13800000000", "phone_verified": "false", "depts": [" ", "d1 "]
    }));
    assert_eq!(pr.user_id.as_deref(), Some("u1"));
    assert_eq!(pr.subject.value, "u1");
    assert_eq!(pr.name, None);
    assert_eq!(pr.email.as_deref(), Some("Zhang.San@Example.COM"));
    assert_eq!(
        pr.email_for_matching().as_deref(),
        Some("zhang.san@example.com")
    );
    assert_eq!(pr.email_verified, Some(true));
    assert_eq!(pr.mobile_verified, Some(false));
    assert_eq!(pr.mobile_country_code, None, "a bare number has no code");
    assert_eq!(pr.mobile_e164(), None);
    assert_eq!(pr.department_ids, ["d1"]);
    // A blank id is no id.
    assert!(matches!(
        r.map(&p(), &t(), &json!({"id": "  "})),
        Err(Error::Mapping { .. })
    ));
}

#[test]
fn strip_country_code_on_mobile_keeps_the_code() {
    let r = rules(
        "demo:\n  user_id: \"$.id\"\n  mobile: { path: \"$.m\", transform: [trim, strip_country_code] }\n",
    );
    for (m, number, cc) in [
        ("+8613800000000", "13800000000", Some("86")),
        ("86-13800000000", "13800000000", Some("86")),
        ("+1 425 555 1212", "4255551212", Some("1")),
        ("13800000000", "13800000000", None),
    ] {
        let pr = r.map(&p(), &t(), &json!({"id": "u", "m": m})).unwrap();
        assert_eq!(pr.mobile.as_deref(), Some(number), "{m}");
        assert_eq!(pr.mobile_country_code.as_deref(), cc, "{m}");
    }
}

#[test]
fn profiles_from_before_subjects_deserialize_with_user_id_as_subject() {
    let pr: UserProfile = serde_json::from_value(json!({
        "platform": "dingtalk", "tenant": "acme", "user_id": "u1", "name": "N"
    }))
    .unwrap();
    assert_eq!(pr.subject.kind, SubjectKind::UserId);
    assert_eq!(pr.subject.value, "u1");
    let back: UserProfile = serde_json::from_value(serde_json::to_value(&pr).unwrap()).unwrap();
    assert_eq!(back, pr);
    for bad in [
        json!({"platform": "dingtalk", "tenant": "acme", "name": "no id"}),
        json!({"platform": "feishu", "tenant": "acme", "open_id": "ou_1",
               "subject": {"kind": "union_id", "value": "on_1"}}),
    ] {
        assert!(
            serde_json::from_value::<UserProfile>(bad.clone()).is_err(),
            "{bad}"
        );
    }
}
