//! The OIDC relying-party client table against SQLite, PostgreSQL and MariaDB (real servers,
//! see `common`), one fresh database per test: create, get, list, update with the right and a
//! stale revision, disable, delete and create again, racing writers, the change fingerprint
//! (moves with every write and with nothing else), audit entries without the secret hash,
//! refused documents (plain secret, size, hash, id) writing nothing, and rows edited by hand.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use serde_json::{Map, Value, json};
use sqlx::{AssertSqlSafe, Row};
use unilogin_core::{AppKey, AppSecret, PlatformName, TenantId};
use unilogin_sql::{
    AuditQuery, CLIENT_AUDIT_PLATFORM, ClientError, MAX_CLIENT_BODY, NewConfig, SecretCipher,
    SecretInput, SqlConfigStore, StoredClient,
};

// Link the DingTalk crate so a platform configuration row validates (`fingerprint`).
use unilogin_dingtalk as _;

use common::Kind;

const HASH_A: &str = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
const HASH_B: &str = "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752";

async fn store(kind: Kind) -> SqlConfigStore {
    let url = common::fresh_database(kind).await;
    let s = SqlConfigStore::connect(
        &url,
        SecretCipher::parse(&format!("k1:{}", "11".repeat(32))).unwrap(),
    )
    .await
    .unwrap();
    s.migrate().await.unwrap();
    s
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

/// A confidential client's document, as the provider's `Client` serializes.
fn grafana(hash: &str) -> Map<String, Value> {
    object(json!({
        "client_secret_sha256": hash,
        "redirect_uris": ["https://grafana.example/login/generic_oauth"],
        "post_logout_redirect_uris": ["https://grafana.example/"],
        "tenants": ["acme"],
        "platforms": ["dingtalk", "feishu"],
        "grant_types": ["authorization_code", "refresh_token"],
        "scopes": ["openid", "profile", "email"],
        "token_endpoint_auth_method": "client_secret_basic",
        "id_token_signed_response_alg": "RS256",
        "subject_type": "public",
        "backchannel_logout_uri": null,
        "backchannel_logout_session_required": false,
        "require_pkce": false,
    }))
}

/// A public client's document (no secret).
fn cli() -> Map<String, Value> {
    object(json!({
        "redirect_uris": ["http://127.0.0.1/callback"],
        "grant_types": ["authorization_code"],
        "scopes": ["openid"],
        "token_endpoint_auth_method": "none",
        "require_pkce": true,
    }))
}

async fn scalar(s: &SqlConfigStore, sql: &str) -> i64 {
    sqlx::query(AssertSqlSafe(sql.to_string()))
        .fetch_one(s.pool())
        .await
        .unwrap()
        .try_get::<i64, _>("n")
        .unwrap()
}

async fn exec(s: &SqlConfigStore, sql: &str) {
    sqlx::raw_sql(AssertSqlSafe(sql.to_string()))
        .execute(s.pool())
        .await
        .unwrap();
}

async fn client_audit(s: &SqlConfigStore) -> Vec<unilogin_sql::AuditEntry> {
    s.audit(&AuditQuery {
        platform: Some(PlatformName::new(CLIENT_AUDIT_PLATFORM).unwrap()),
        ..AuditQuery::default()
    })
    .await
    .unwrap()
}

fn assert_same_client(a: &StoredClient, b: &StoredClient) {
    assert_eq!(a.client_id, b.client_id);
    assert_eq!(a.body, b.body);
    assert_eq!((a.enabled, a.revision), (b.enabled, b.revision));
}

async fn lifecycle(kind: Kind) {
    let s = store(kind).await;
    // Migrations 1-7 are applied (6: this table).
    assert_eq!(
        scalar(
            &s,
            "SELECT COUNT(*) AS n FROM _sqlx_migrations WHERE success = TRUE"
        )
        .await,
        7
    );
    assert!(s.list_clients().await.unwrap().is_empty());
    assert_eq!(s.get_client("grafana").await.unwrap(), None);

    // A `client_id` in the document is accepted when it names the client, and not stored.
    let mut body = grafana(HASH_A);
    body.insert("client_id".into(), json!("grafana"));
    let created = s.create_client("grafana", body, "alice").await.unwrap();
    assert_eq!(created.client_id, "grafana");
    assert_eq!(created.body, grafana(HASH_A));
    assert!(created.enabled);
    assert_eq!(created.revision, 1);
    assert_eq!(created.creator, "alice");
    assert_eq!(created.modifier.as_deref(), Some("alice"));
    assert!(created.created_at_ms > 0 && created.modified_at_ms >= created.created_at_ms);
    assert_eq!(created.document()["client_id"], "grafana");
    let stored: String = sqlx::query(AssertSqlSafe(
        "SELECT body FROM unilogin_oidc_client WHERE client_id = 'grafana'".to_string(),
    ))
    .fetch_one(s.pool())
    .await
    .unwrap()
    .try_get("body")
    .unwrap();
    assert!(!stored.contains("client_id"), "{stored}");
    assert_eq!(
        serde_json::from_str::<Value>(&stored).unwrap()["scopes"][2],
        "email"
    );

    // Ids are case-sensitive on every backend (MariaDB: binary collation).
    s.create_client("cli", cli(), "alice").await.unwrap();
    s.create_client("Cli", cli(), "alice").await.unwrap();
    let e = s.create_client("grafana", cli(), "bob").await.unwrap_err();
    assert_eq!(
        e,
        ClientError::AlreadyExists {
            client_id: "grafana".into()
        }
    );
    let got = s.get_client("grafana").await.unwrap().unwrap();
    assert_same_client(&got, &created);
    let ids: Vec<String> = s
        .list_clients()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.client_id)
        .collect();
    assert_eq!(ids, ["Cli", "cli", "grafana"]);

    // Update with the revision read: replaces the document, keeps the flag, bumps the revision.
    let mut changed = grafana(HASH_B);
    changed.insert("scopes".into(), json!(["openid"]));
    let updated = s
        .update_client("grafana", changed.clone(), 1, "bob")
        .await
        .unwrap();
    assert_eq!(updated.body, changed);
    assert_eq!(updated.revision, 2);
    assert_eq!(updated.creator, "alice");
    assert_eq!(updated.modifier.as_deref(), Some("bob"));
    assert!(updated.enabled);
    // A stale revision is refused and changes nothing.
    let e = s
        .update_client("grafana", grafana(HASH_A), 1, "carol")
        .await
        .unwrap_err();
    assert_eq!(
        e,
        ClientError::Conflict {
            client_id: "grafana".into(),
            expected: 1,
            found: Some(2)
        }
    );
    assert!(e.to_string().contains("read it again and retry"), "{e}");
    assert_same_client(&s.get_client("grafana").await.unwrap().unwrap(), &updated);

    // Disabled clients stay listed (the provider decides what disabled means), and keep
    // their document; enabling again works.
    let disabled = s.set_client_enabled("grafana", false, "bob").await.unwrap();
    assert!(!disabled.enabled);
    assert_eq!(disabled.revision, 3);
    assert_eq!(disabled.body, changed);
    let listed = s.list_clients().await.unwrap();
    assert_eq!(listed.len(), 3);
    assert!(
        listed
            .iter()
            .any(|c| c.client_id == "grafana" && !c.enabled)
    );
    // An update keeps the flag.
    let kept = s
        .update_client("grafana", grafana(HASH_B), 3, "bob")
        .await
        .unwrap();
    assert!(!kept.enabled && kept.revision == 4);
    let enabled = s.set_client_enabled("grafana", true, "bob").await.unwrap();
    assert!(enabled.enabled && enabled.revision == 5);

    // Delete: gone from get and list; updating it is "not found".
    s.delete_client("grafana", "dave").await.unwrap();
    assert_eq!(s.get_client("grafana").await.unwrap(), None);
    assert_eq!(s.list_clients().await.unwrap().len(), 2);
    for e in [
        s.update_client("grafana", grafana(HASH_A), 5, "dave")
            .await
            .unwrap_err(),
        s.set_client_enabled("grafana", false, "dave")
            .await
            .unwrap_err(),
        s.delete_client("grafana", "dave").await.unwrap_err(),
        s.update_client("never", cli(), 1, "dave")
            .await
            .unwrap_err(),
    ] {
        assert!(matches!(e, ClientError::NotFound { .. }), "{e}");
    }
    // The row is kept, soft-deleted.
    assert_eq!(
        scalar(
            &s,
            "SELECT COUNT(*) AS n FROM unilogin_oidc_client WHERE client_id = 'grafana' AND deleted_at <> 0"
        )
        .await,
        1
    );

    // The id may be created again: a fresh creator and document, the revision counting on, so
    // a revision read before the delete never applies.
    let again = s.create_client("grafana", cli(), "erin").await.unwrap();
    assert_eq!(again.body, cli());
    assert!(again.enabled);
    assert_eq!(again.revision, 7);
    assert_eq!(again.creator, "erin");
    let e = s
        .update_client("grafana", grafana(HASH_A), 5, "dave")
        .await
        .unwrap_err();
    assert!(
        matches!(e, ClientError::Conflict { found: Some(7), .. }),
        "{e}"
    );
    assert_eq!(
        s.update_client("grafana", grafana(HASH_A), 7, "erin")
            .await
            .unwrap()
            .revision,
        8
    );
}

async fn fingerprint(kind: Kind) {
    let s = store(kind).await;
    let mut seen = vec![s.clients_fingerprint().await.unwrap()];
    // Every write moves it, including several inside one millisecond (the revision sum).
    let moved = |fp: String, what: &str, seen: &mut Vec<String>| {
        assert!(!seen.contains(&fp), "{what}: {fp} seen already in {seen:?}");
        seen.push(fp);
    };
    s.create_client("grafana", grafana(HASH_A), "alice")
        .await
        .unwrap();
    moved(s.clients_fingerprint().await.unwrap(), "create", &mut seen);
    s.update_client("grafana", grafana(HASH_B), 1, "alice")
        .await
        .unwrap();
    moved(s.clients_fingerprint().await.unwrap(), "update", &mut seen);
    s.set_client_enabled("grafana", false, "alice")
        .await
        .unwrap();
    moved(s.clients_fingerprint().await.unwrap(), "disable", &mut seen);
    s.set_client_enabled("grafana", true, "alice")
        .await
        .unwrap();
    moved(s.clients_fingerprint().await.unwrap(), "enable", &mut seen);
    s.create_client("cli", cli(), "alice").await.unwrap();
    moved(
        s.clients_fingerprint().await.unwrap(),
        "second create",
        &mut seen,
    );
    s.delete_client("cli", "alice").await.unwrap();
    moved(s.clients_fingerprint().await.unwrap(), "delete", &mut seen);
    s.create_client("cli", cli(), "alice").await.unwrap();
    moved(
        s.clients_fingerprint().await.unwrap(),
        "create after delete",
        &mut seen,
    );

    // Nothing else moves it: reads, refused writes, a no-op switch, configuration changes.
    let last = seen.last().unwrap().clone();
    s.list_clients().await.unwrap();
    s.get_client("grafana").await.unwrap();
    assert!(
        s.update_client("grafana", grafana(HASH_A), 1, "alice")
            .await
            .is_err()
    );
    assert!(s.create_client("cli", cli(), "alice").await.is_err());
    let mut secret = cli();
    secret.insert("client_secret".into(), json!("plain"));
    assert!(s.create_client("other", secret, "alice").await.is_err());
    let unchanged = s
        .set_client_enabled("grafana", true, "alice")
        .await
        .unwrap();
    assert_eq!(unchanged.revision, 4, "a no-op switch writes nothing");
    let mut row = NewConfig::new(
        TenantId::new("acme").unwrap(),
        PlatformName::new("dingtalk").unwrap(),
        AppKey::new("dingacme").unwrap(),
        SecretInput::Value(AppSecret::new("app-secret")),
    );
    row.corp_id = Some("corp-acme".into());
    row.redirect_uris = vec!["https://acme.example/after-login".into()];
    s.create(row, "alice").await.unwrap();
    assert_eq!(s.clients_fingerprint().await.unwrap(), last);

    // A row edited by hand that bumps its revision moves it too.
    exec(
        &s,
        "UPDATE unilogin_oidc_client SET revision = revision + 1 WHERE client_id = 'grafana'",
    )
    .await;
    assert_ne!(s.clients_fingerprint().await.unwrap(), last);
}

async fn racing_writers(kind: Kind) {
    let s = store(kind).await;
    s.create_client("grafana", grafana(HASH_A), "alice")
        .await
        .unwrap();
    // Two updates from the same read: exactly one applies (several rounds, so that the two
    // really overlap in some of them).
    for round in 1..=10_i64 {
        let (a, b) = tokio::join!(
            s.update_client("grafana", grafana(HASH_B), round, "bob"),
            s.update_client("grafana", cli(), round, "carol"),
        );
        let (won, lost) = match (a, b) {
            (Ok(won), Err(lost)) | (Err(lost), Ok(won)) => (won, lost),
            other => panic!("round {round}: exactly one update must apply: {other:?}"),
        };
        assert!(matches!(lost, ClientError::Conflict { .. }), "{lost}");
        assert_eq!(won.revision, round + 1);
        assert_same_client(&s.get_client("grafana").await.unwrap().unwrap(), &won);
    }
    // Two creates of one id: exactly one applies.
    let (a, b) = tokio::join!(
        s.create_client("cli", cli(), "bob"),
        s.create_client("cli", grafana(HASH_A), "carol"),
    );
    match (a, b) {
        (Ok(_), Err(ClientError::AlreadyExists { .. }))
        | (Err(ClientError::AlreadyExists { .. }), Ok(_)) => {}
        other => panic!("exactly one create must apply: {other:?}"),
    }
    assert_eq!(
        client_audit(&s).await.len(),
        12,
        "one entry per applied change"
    );
}

async fn audit_without_the_hash(kind: Kind) {
    let s = store(kind).await;
    s.create_client("grafana", grafana(HASH_A), "alice")
        .await
        .unwrap();
    let mut changed = grafana(HASH_B);
    changed.insert(
        "redirect_uris".into(),
        json!(["https://grafana.example/other"]),
    );
    s.update_client("grafana", changed, 1, "bob").await.unwrap();
    s.set_client_enabled("grafana", false, "bob").await.unwrap();
    s.update_client("grafana", cli(), 3, "bob").await.unwrap();
    s.delete_client("grafana", "dave").await.unwrap();

    let all = client_audit(&s).await;
    let actions: Vec<(&str, Option<&str>, &str, i64)> = all
        .iter()
        .map(|e| {
            (
                e.actor.as_str(),
                e.client_id.as_deref(),
                e.action.as_str(),
                e.revision,
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            ("dave", Some("grafana"), "delete", 5),
            ("bob", Some("grafana"), "update", 4),
            ("bob", Some("grafana"), "disable", 3),
            ("bob", Some("grafana"), "update", 2),
            ("alice", Some("grafana"), "create", 1),
        ]
    );
    for e in &all {
        assert_eq!(
            (e.tenant.as_str(), e.platform.as_str()),
            ("", "oidc_client")
        );
        assert!(e.at_ms > 0);
    }
    let created = &all[4].changes;
    assert_eq!(created["client_secret_sha256"], "set");
    assert_eq!(
        created["scopes"]["to"],
        json!(["openid", "profile", "email"])
    );
    assert_eq!(created["enabled"], json!({"to": true}));
    let update = &all[3].changes;
    assert_eq!(update["client_secret_sha256"], "changed");
    assert_eq!(
        update["redirect_uris"],
        json!({"from": ["https://grafana.example/login/generic_oauth"], "to": ["https://grafana.example/other"]})
    );
    assert_eq!(update.as_object().unwrap().len(), 2, "{update}");
    assert_eq!(
        all[2].changes,
        json!({"enabled": {"from": true, "to": false}})
    );
    assert_eq!(all[1].changes["client_secret_sha256"], "removed");
    assert_eq!(
        all[1].changes["token_endpoint_auth_method"],
        json!({"from": "client_secret_basic", "to": "none"})
    );
    // Neither hash anywhere in the log, as read or as stored.
    let text = format!("{all:?}");
    let stored: Vec<String> = sqlx::query(AssertSqlSafe(
        "SELECT changes FROM unilogin_config_audit".to_string(),
    ))
    .fetch_all(s.pool())
    .await
    .unwrap()
    .iter()
    .map(|r| r.try_get::<String, _>("changes").unwrap())
    .collect();
    assert_eq!(stored.len(), 5);
    for hash in [HASH_A, HASH_B] {
        assert!(!text.contains(&hash[..16]), "{text}");
        assert!(
            stored.iter().all(|c| !c.contains(&hash[..16])),
            "{stored:?}"
        );
    }
    // Platform configuration entries are unaffected: a tenant's audit holds no client entry.
    let acme = s
        .audit(&AuditQuery {
            tenants: Some(vec![TenantId::new("acme").unwrap()]),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert!(acme.is_empty(), "{acme:?}");
}

async fn refused_documents(kind: Kind) {
    let s = store(kind).await;
    let empty = s.clients_fingerprint().await.unwrap();
    // A plain secret, with or without the hash.
    for secret in [json!("hunter2-plain"), json!(null)] {
        let mut body = grafana(HASH_A);
        body.insert("client_secret".into(), secret);
        let e = s.create_client("grafana", body, "alice").await.unwrap_err();
        assert_eq!(e, ClientError::PlainSecret);
        assert!(
            e.to_string()
                .contains("store client_secret_sha256, never the secret"),
            "{e}"
        );
        assert!(!e.to_string().contains("hunter2"));
    }
    // The size limit: exactly the limit is accepted, one byte more is not.
    let pad = |n: usize| object(json!({"pad": "x".repeat(n)}));
    let e = s
        .create_client("big", pad(MAX_CLIENT_BODY - 9), "alice")
        .await
        .unwrap_err();
    assert_eq!(
        e,
        ClientError::TooLarge {
            bytes: MAX_CLIENT_BODY + 1
        }
    );
    // Other refusals.
    let e = s
        .create_client("grafana", grafana("the-secret-itself"), "alice")
        .await
        .unwrap_err();
    assert_eq!(e, ClientError::BadSecretHash);
    assert!(!e.to_string().contains("the-secret-itself"));
    let mut other = cli();
    other.insert("client_id".into(), json!("gitlab"));
    assert!(matches!(
        s.create_client("grafana", other, "alice").await,
        Err(ClientError::IdMismatch { .. })
    ));
    for id in [
        "",
        "a b",
        "grafana/../x",
        "x'; DROP TABLE t; --",
        &"x".repeat(129),
    ] {
        assert!(
            matches!(
                s.create_client(id, cli(), "alice").await,
                Err(ClientError::InvalidId { .. })
            ),
            "{id:?}"
        );
        assert!(matches!(
            s.get_client(id).await,
            Err(ClientError::InvalidId { .. })
        ));
    }
    assert_eq!(
        s.create_client("grafana", cli(), " ").await.unwrap_err(),
        ClientError::InvalidActor
    );
    // Nothing was written.
    assert!(s.list_clients().await.unwrap().is_empty());
    assert!(client_audit(&s).await.is_empty());
    assert_eq!(s.clients_fingerprint().await.unwrap(), empty);

    // The limit itself is fine, and updates are checked the same way.
    let big = s
        .create_client("big", pad(MAX_CLIENT_BODY - 10), "alice")
        .await
        .unwrap();
    assert_eq!(
        big.body["pad"].as_str().unwrap().len(),
        MAX_CLIENT_BODY - 10
    );
    let mut body = cli();
    body.insert("client_secret".into(), json!("plain"));
    assert_eq!(
        s.update_client("big", body, 1, "alice").await.unwrap_err(),
        ClientError::PlainSecret
    );
    assert_eq!(
        s.update_client("big", pad(MAX_CLIENT_BODY), 1, "alice")
            .await
            .unwrap_err(),
        ClientError::TooLarge {
            bytes: MAX_CLIENT_BODY + 10
        }
    );
    assert_eq!(s.get_client("big").await.unwrap().unwrap().revision, 1);
}

async fn rows_edited_by_hand(kind: Kind) {
    let s = store(kind).await;
    s.create_client("grafana", grafana(HASH_A), "alice")
        .await
        .unwrap();
    s.create_client("cli", cli(), "alice").await.unwrap();
    exec(
        &s,
        "UPDATE unilogin_oidc_client SET body = '[1, 2]' WHERE client_id = 'cli'",
    )
    .await;
    // The broken row is skipped by the list, an error for its own reads, and named.
    let listed = s.list_clients().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].client_id, "grafana");
    assert_eq!(
        s.get_client("cli").await.unwrap_err(),
        ClientError::StoredBody {
            client_id: "cli".into()
        }
    );
    // Deleted with a broken document, it may be created again.
    exec(
        &s,
        "UPDATE unilogin_oidc_client SET deleted_at = 1, revision = revision + 1 WHERE client_id = 'cli'",
    )
    .await;
    let again = s.create_client("cli", cli(), "bob").await.unwrap();
    assert_eq!((again.revision, again.body.clone()), (3, cli()));
    // Debug never shows the hash.
    let text = format!("{:?}", s.list_clients().await.unwrap());
    assert!(
        !text.contains(&HASH_A[..16]) && text.contains("***"),
        "{text}"
    );
}

macro_rules! suite {
    ($name:ident, $kind:expr) => {
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn lifecycle() {
                super::lifecycle($kind).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn fingerprint() {
                super::fingerprint($kind).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn racing_writers() {
                super::racing_writers($kind).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn audit_without_the_hash() {
                super::audit_without_the_hash($kind).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn refused_documents() {
                super::refused_documents($kind).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn rows_edited_by_hand() {
                super::rows_edited_by_hand($kind).await;
            }
        }
    };
}

suite!(sqlite, Kind::Sqlite);
suite!(postgres, Kind::Postgres);
suite!(mariadb, Kind::MariaDb);
