//! The identity-store behaviour suite (`unilogin_conformance::identity`) against the SQL
//! store on real databases: an SQLite file, PostgreSQL and MariaDB (servers started by
//! `common`), one fresh database per test; plus what is the SQL store's own: one migration
//! history with the configuration table, the pool shared with it, and the stored rows.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use common::Kind;
use serde_json::json;
use sqlx::Row;
use unilogin_conformance::identity::Store;
use unilogin_core::identity::{IdentityStore, LinkRules, LinkTrust};
use unilogin_core::mapping::UserProfile;
use unilogin_sql::{SecretCipher, SqlConfigStore, SqlIdentityStore};

async fn store(kind: Kind) -> SqlIdentityStore {
    let url = common::fresh_database(kind).await;
    let s = SqlIdentityStore::connect(&url).await.unwrap();
    s.migrate().await.unwrap();
    s
}

mod sqlite {
    use super::*;

    async fn make() -> Store {
        Arc::new(store(Kind::Sqlite).await)
    }

    unilogin_conformance::identity_store_suite!(make);
}

mod postgres {
    use super::*;

    async fn make() -> Store {
        Arc::new(store(Kind::Postgres).await)
    }

    unilogin_conformance::identity_store_suite!(make);
}

mod mariadb {
    use super::*;

    async fn make() -> Store {
        Arc::new(store(Kind::MariaDb).await)
    }

    unilogin_conformance::identity_store_suite!(make);
}

fn profile(v: serde_json::Value) -> UserProfile {
    serde_json::from_value(v).unwrap()
}

/// The configuration store and the identity store share one database, one pool and one
/// migration history (either may migrate first), and the identity policy column is read
/// into the configuration.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_database_one_history_for_configuration_and_identities() {
    for kind in [Kind::Sqlite, Kind::Postgres, Kind::MariaDb] {
        let url = common::fresh_database(kind).await;
        let identities = SqlIdentityStore::connect(&url).await.unwrap();
        identities.migrate().await.unwrap();
        let config = SqlConfigStore::connect(
            &url,
            SecretCipher::parse(&format!("k1:{}", "11".repeat(32))).unwrap(),
        )
        .await
        .unwrap();
        config
            .migrate()
            .await
            .expect("the same history: nothing to do");
        let shared = config.identity_store();
        assert_eq!(shared.backend(), identities.backend());
        let p = profile(json!({"platform": "dingtalk", "tenant": "acme", "user_id": "u1"}));
        let a = identities
            .account_for(&p, &LinkRules::default())
            .await
            .unwrap();
        assert_eq!(
            shared.account_for(&p, &LinkRules::default()).await.unwrap(),
            a,
            "{kind:?}"
        );
    }
}

/// What a row holds: the subject kind apart from its value, the vouched values in matching
/// form only, how the identity was linked.
#[tokio::test]
async fn rows_hold_matching_forms_of_vouched_values_only() {
    let s = store(Kind::Sqlite).await;
    let rules = LinkRules {
        email: LinkTrust::Trusted,
        mobile: LinkTrust::Verified,
        default_country_code: None,
    };
    let p = profile(json!({
        "platform": "feishu", "tenant": "acme", "union_id": "on_1", "open_id": "ou_1",
        "subject": {"kind": "union_id", "value": "on_1"},
        "email": "Zhang.San@Example.COM", "mobile": "13800000000", "mobile_country_code": "86"
    }));
    let account = s.account_for(&p, &rules).await.unwrap();
    let row = sqlx::query(
        "SELECT subject_kind, subject, account_id, email_key, mobile_key, linked_by FROM unilogin_identity",
    )
    .fetch_one(s.pool())
    .await
    .unwrap();
    assert_eq!(row.get::<String, _>("subject_kind"), "union_id");
    assert_eq!(row.get::<String, _>("subject"), "on_1");
    assert_eq!(row.get::<String, _>("account_id"), account.as_str());
    assert_eq!(
        row.get::<Option<String>, _>("email_key").as_deref(),
        Some("zhang.san@example.com")
    );
    assert_eq!(
        row.get::<Option<String>, _>("mobile_key"),
        None,
        "mobile not verified by the platform"
    );
    assert_eq!(row.get::<String, _>("linked_by"), "created");
}

/// A database that is gone is a typed store error, never a panic.
#[tokio::test]
async fn a_failing_database_is_a_store_error() {
    let s = store(Kind::Sqlite).await;
    s.pool().close().await;
    let p = profile(json!({"platform": "dingtalk", "tenant": "acme", "user_id": "u1"}));
    let e = s
        .account_for(&p, &LinkRules::default())
        .await
        .expect_err("closed pool");
    assert_eq!(e.kind(), "store_unavailable", "{e}");
}

/// The `identity_policy` column of a configuration row is the configuration's `identity`:
/// absent means the defaults; set, it is read (subject and linking rules); a bad value
/// rejects the row naming the field.
#[tokio::test]
async fn the_identity_policy_column_is_loaded_into_the_configuration() {
    use unilogin_core::config::{CachedSource, ConfigSource};
    use unilogin_core::mapping::SubjectKind;
    use unilogin_core::{AppKey, AppSecret, PlatformName, TenantId};
    use unilogin_sql::{NewConfig, SecretInput};

    let url = common::fresh_database(Kind::Sqlite).await;
    let config = SqlConfigStore::connect(
        &url,
        SecretCipher::parse(&format!("k1:{}", "11".repeat(32))).unwrap(),
    )
    .await
    .unwrap();
    config.migrate().await.unwrap();
    let (acme, feishu) = (
        TenantId::new("acme").unwrap(),
        PlatformName::new("feishu").unwrap(),
    );
    let mut row = NewConfig::new(
        acme.clone(),
        feishu,
        AppKey::new("cli_a1b2c3").unwrap(),
        SecretInput::Value(AppSecret::new("s3cret")),
    );
    row.corp_id = Some("tenantkey1".into());
    config.create(row, "test").await.unwrap();
    let (source, _) = CachedSource::new(config.clone()).await.unwrap();
    let loaded = source.get(&acme, "feishu").await.unwrap();
    assert_eq!(loaded.identity, Default::default(), "NULL: the defaults");

    sqlx::query("UPDATE unilogin_platform_config SET identity_policy = ?")
        .bind(
            r#"{"subject": "open_id", "link": {"email": "trusted", "default_country_code": "86"}}"#,
        )
        .execute(config.pool())
        .await
        .unwrap();
    source.reload().await.unwrap();
    let loaded = source.get(&acme, "feishu").await.unwrap();
    assert_eq!(loaded.identity.subject, Some(SubjectKind::OpenId));
    assert_eq!(loaded.identity.link.email, LinkTrust::Trusted);
    assert_eq!(
        loaded.identity.link.default_country_code.as_deref(),
        Some("86")
    );
    let listed = config.list(Some(&acme)).await.unwrap();
    assert_eq!(listed[0].identity.as_ref().unwrap()["subject"], "open_id");

    sqlx::query("UPDATE unilogin_platform_config SET identity_policy = ?")
        .bind(r#"{"subject": "email"}"#)
        .execute(config.pool())
        .await
        .unwrap();
    let report = source.reload().await.unwrap();
    let text = format!("{report:?}");
    assert!(text.contains("identity"), "{text}");
    // The last good configuration stays.
    let kept = source.get(&acme, "feishu").await.unwrap();
    assert_eq!(kept.identity.subject, Some(SubjectKind::OpenId));
}
