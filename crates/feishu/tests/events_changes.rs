//! What Feishu contact events mean for the directory (`EventCodec::changes`): schema 2.0
//! deletions and status flags, the v1 names, typed errors, redaction.

use serde_json::{Value, json};
use unilogin_core::events::{
    DirectoryChange, EventCodec, EventError, EventRequest, Inbound, LeaveReason, PersonIds,
};
use unilogin_feishu::events::FeishuEvents;

const TOKEN: &str = "vt_example";

/// Opens `doc` as a plain (no Encrypt Key) push and returns its changes.
fn changes(doc: Value) -> Result<Vec<DirectoryChange>, EventError> {
    let codec = FeishuEvents::new(TOKEN, None).unwrap();
    let body = doc.to_string().into_bytes();
    let Inbound::Event(event) = codec.open(&EventRequest::new("POST", &body)).unwrap() else {
        panic!("an event")
    };
    codec.changes(&event)
}

fn v2(event_type: &str, event: Value) -> Value {
    json!({
        "schema": "2.0",
        "header": {
            "event_id": "ev-1", "event_type": event_type, "create_time": "1700000000000",
            "token": TOKEN, "app_id": "cli_a", "tenant_key": "tk_acme",
        },
        "event": event,
    })
}

fn v1(event: Value) -> Value {
    json!({"uuid": "u-1", "ts": "1700000000.1", "token": TOKEN, "type": "event_callback", "event": event})
}

fn full_ids() -> PersonIds {
    PersonIds {
        user_id: Some("u1".into()),
        union_id: Some("on_1".into()),
        open_id: Some("ou_1".into()),
        org_id: Some("tk_acme".into()),
    }
}

fn updated_v3(status: Value) -> Value {
    v2(
        "contact.user.updated_v3",
        json!({
            "object": {"open_id": "ou_1", "union_id": "on_1", "user_id": "u1", "name": "Zhang San", "status": status},
            "old_object": {"status": {"is_frozen": false, "is_resigned": false}},
        }),
    )
}

#[test]
fn a_deleted_user_left_with_every_id_and_the_tenant() {
    let doc = v2(
        "contact.user.deleted_v3",
        json!({
            "object": {"open_id": "ou_1", "union_id": "on_1", "user_id": "u1", "name": "Zhang San"},
            "old_object": {"department_ids": ["od_1"], "open_id": "ou_1"},
        }),
    );
    assert_eq!(
        changes(doc).unwrap(),
        [DirectoryChange::Left {
            ids: full_ids(),
            reason: LeaveReason::Left
        }]
    );
    // Without the user-id scope only the open and union ids come; the old object's open id is
    // enough on its own.
    let doc = v2(
        "contact.user.deleted_v3",
        json!({"object": {}, "old_object": {"open_id": "ou_9"}}),
    );
    let got = changes(doc).unwrap();
    let [DirectoryChange::Left { ids, .. }] = got.as_slice() else {
        panic!("left")
    };
    assert_eq!(
        (ids.open_id.as_deref(), ids.user_id.as_deref()),
        (Some("ou_9"), None)
    );
}

#[test]
fn each_status_flag_of_an_update() {
    let cases = [
        (json!({"is_resigned": true}), Some(LeaveReason::Left)),
        (json!({"is_exited": true}), Some(LeaveReason::Left)),
        (json!({"is_frozen": true}), Some(LeaveReason::Disabled)),
        // Resigned and frozen: left wins.
        (
            json!({"is_frozen": true, "is_resigned": true}),
            Some(LeaveReason::Left),
        ),
        (
            json!({"is_frozen": false, "is_resigned": false, "is_activated": true, "is_exited": false, "is_unjoin": false}),
            None,
        ),
        // Not booleans: not taken as set.
        (json!({"is_frozen": "true", "is_resigned": 1}), None),
        (json!(null), None),
    ];
    for (status, expected) in cases {
        let got = changes(updated_v3(status.clone())).unwrap();
        let want = match expected {
            Some(reason) => DirectoryChange::Left {
                ids: full_ids(),
                reason,
            },
            None => DirectoryChange::Updated { ids: full_ids() },
        };
        assert_eq!(got, [want], "{status}");
    }
    // An update without a status is a profile change.
    let doc = v2(
        "contact.user.updated_v3",
        json!({"object": {"open_id": "ou_1"}, "old_object": {"name": "old"}}),
    );
    assert_eq!(changes(doc).unwrap()[0].kind(), "updated");
    // A creation too.
    let doc = v2(
        "contact.user.created_v3",
        json!({"object": {"open_id": "ou_1"}}),
    );
    assert_eq!(changes(doc).unwrap()[0].kind(), "updated");
}

#[test]
fn the_v1_names() {
    let ids = |id: &str| json!({"app_id": "cli_a", "tenant_key": "tk_acme", "open_id": "ou_1", "employee_id": "u1", "union_id": "on_1", "type": id});
    let left = |reason| DirectoryChange::Left {
        ids: full_ids(),
        reason,
    };
    assert_eq!(
        changes(v1(ids("user_leave"))).unwrap(),
        [left(LeaveReason::Left)]
    );
    for kind in ["user_update", "user_add"] {
        assert_eq!(
            changes(v1(ids(kind))).unwrap(),
            [DirectoryChange::Updated { ids: full_ids() }],
            "{kind}"
        );
    }
    let status = |current: Value| {
        let mut e = ids("user_status_change");
        e["before_status"] = json!({"is_active": true, "is_frozen": false, "is_resigned": false});
        e["current_status"] = current;
        e["change_time"] = json!("2020-02-21 16:28:48");
        v1(e)
    };
    assert_eq!(
        changes(status(
            json!({"is_active": true, "is_frozen": false, "is_resigned": true})
        ))
        .unwrap(),
        [left(LeaveReason::Left)]
    );
    assert_eq!(
        changes(status(
            json!({"is_active": true, "is_frozen": true, "is_resigned": false})
        ))
        .unwrap(),
        [left(LeaveReason::Disabled)]
    );
    assert_eq!(
        changes(status(
            json!({"is_active": true, "is_frozen": false, "is_resigned": false})
        ))
        .unwrap(),
        [DirectoryChange::Updated { ids: full_ids() }],
        "unfrozen or activated"
    );
    // A status change without its current status cannot be read: typed error, not a guess.
    let mut e = ids("user_status_change");
    e["before_status"] = json!({"is_frozen": false});
    assert_eq!(
        changes(v1(e)),
        Err(EventError::MissingField {
            name: "current_status"
        })
    );
}

#[test]
fn other_events_change_nothing() {
    let doc = v2(
        "contact.department.deleted_v3",
        json!({"object": {"open_department_id": "od_1"}}),
    );
    assert_eq!(changes(doc).unwrap(), []);
    let doc = v2(
        "im.message.receive_v1",
        json!({"sender": {"sender_id": {"open_id": "ou_1"}}}),
    );
    assert_eq!(changes(doc).unwrap(), []);
    let doc = v1(json!({"type": "app_ticket", "app_id": "cli_a", "app_ticket": "t"}));
    assert_eq!(changes(doc).unwrap(), []);
    // The v1 names inside a 2.0 envelope, and the 2.0 names in a v1 envelope, are not theirs.
    let doc = v2("user_leave", json!({"open_id": "ou_1"}));
    assert_eq!(changes(doc).unwrap(), []);
}

#[test]
fn a_lifecycle_event_without_ids_is_a_missing_field() {
    let missing = Err(EventError::MissingField { name: "open_id" });
    for doc in [
        v2("contact.user.deleted_v3", json!({"object": {"name": "x"}})),
        v2("contact.user.deleted_v3", json!({})),
        v2(
            "contact.user.updated_v3",
            json!({"object": {"open_id": "", "status": {"is_resigned": true}}}),
        ),
        v1(json!({"type": "user_leave", "tenant_key": "tk"})),
        v1(json!({"type": "user_status_change", "current_status": {"is_resigned": true}})),
    ] {
        assert_eq!(changes(doc.clone()), missing, "{doc}");
    }
}

#[test]
fn ids_never_reach_debug() {
    let doc = v2(
        "contact.user.deleted_v3",
        json!({"object": {"open_id": "ou_secret", "union_id": "on_secret", "user_id": "u_secret"}}),
    );
    let out = format!("{:?}", changes(doc).unwrap());
    assert!(out.contains("Left"), "{out}");
    for s in ["ou_secret", "on_secret", "u_secret", "tk_acme"] {
        assert!(!out.contains(s), "{out}");
    }
}
