//! One behaviour suite, run against SQLite, PostgreSQL and MariaDB (real servers, see
//! `common`): migrations from empty and from the first schema, CRUD, session scope rules,
//! reload on change, invalid change rejected, encryption round trip, wrong key, isolation
//! between tenants.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use serde_json::json;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AssertSqlSafe, Row, SqlSafeStr};
use unilogin_core::config::{
    CachedSource, ConfigLoader, ConfigSource, EventSettings, SecretRefPolicy,
};
use unilogin_core::mapping::ScopeRules;
use unilogin_core::{AppKey, AppSecret, Error, PlatformName, TenantId};
use unilogin_sql::{
    AuditQuery, ConfigPatch, EventInput, EventPatch, NewConfig, SecretCipher, SecretInput,
    SqlConfigSource, SqlConfigStore, StoredEvents, StoredSecret,
};

// Link the DingTalk crate so `validate` runs its `build` (platform-specific checks).
use unilogin_dingtalk as _;

use common::Kind;

fn key_a() -> String {
    "11".repeat(32)
}
fn key_b() -> String {
    "22".repeat(32)
}

fn cipher(spec: &str) -> SecretCipher {
    SecretCipher::parse(spec).unwrap()
}

fn t(s: &str) -> TenantId {
    TenantId::new(s).unwrap()
}
fn dingtalk() -> PlatformName {
    PlatformName::new("dingtalk").unwrap()
}

fn row(tenant: &str, app_key: &str, secret: &str) -> NewConfig {
    let mut r = NewConfig::new(
        t(tenant),
        dingtalk(),
        AppKey::new(app_key).unwrap(),
        SecretInput::Value(AppSecret::new(secret)),
    );
    r.corp_id = Some(format!("corp-{tenant}"));
    r.redirect_uris = vec![format!(
        "https://{}.example/after-login",
        tenant.to_lowercase()
    )];
    r.hosts.insert(
        "oapi".into(),
        "https://oapi.internal.example/".parse().unwrap(),
    );
    r.mapping = Some(json!({"employee_no": "$.result.job_number"}));
    r.options.insert("app_token_api".into(), json!("oapi"));
    r
}

async fn store(kind: Kind, keys: &str) -> (String, SqlConfigStore) {
    let url = common::fresh_database(kind).await;
    let s = SqlConfigStore::connect(&url, cipher(keys)).await.unwrap();
    s.migrate().await.unwrap();
    (url, s)
}

async fn raw(s: &SqlConfigStore, sql: String) {
    sqlx::raw_sql(AssertSqlSafe(sql))
        .execute(s.pool())
        .await
        .unwrap();
}

async fn stored_secret(s: &SqlConfigStore, tenant: &str) -> String {
    sqlx::query(AssertSqlSafe(format!(
        "SELECT app_secret FROM unilogin_platform_config WHERE tenant_id = '{tenant}' AND deleted_at = 0"
    )))
    .fetch_one(s.pool())
    .await
    .unwrap()
    .try_get::<String, _>("app_secret")
    .unwrap()
}

async fn source(s: &SqlConfigStore) -> SqlConfigSource {
    CachedSource::new(s.clone()).await.unwrap().0
}

async fn migrations_up_from_empty(kind: Kind) {
    let url = common::fresh_database(kind).await;
    let s = SqlConfigStore::connect(&url, cipher(&format!("k1:{}", key_a())))
        .await
        .unwrap();
    // Before migrating, the table does not exist.
    assert!(s.list(None).await.is_err());
    s.migrate().await.unwrap();
    s.migrate().await.unwrap(); // idempotent
    assert!(s.list(None).await.unwrap().is_empty());
    let applied: i64 = sqlx::query(AssertSqlSafe(
        "SELECT COUNT(*) AS n FROM _sqlx_migrations WHERE success = TRUE".to_string(),
    ))
    .fetch_one(s.pool())
    .await
    .map(|r| r.try_get::<i64, _>("n").unwrap())
    .unwrap();
    // 1-3 the configuration table, 4 the identity policy column and the identity store, 5 the
    // event credential columns, 6 the OIDC client table, 7 the store-app permanent code.
    assert_eq!(applied, 7);
    // A fresh connection sees the migrated schema.
    let again = SqlConfigStore::connect(&url, SecretCipher::none())
        .await
        .unwrap();
    assert!(again.list(None).await.unwrap().is_empty());
}

async fn crud(kind: Kind) {
    let (_, s) = store(kind, &format!("k1:{}", key_a())).await;
    let created = s
        .create(row("acme", "dingacme", "secret-1"), "alice")
        .await
        .unwrap();
    assert_eq!(created.tenant, "acme");
    assert_eq!(created.creator, "alice");
    assert_eq!(created.revision, 1);
    assert!(created.enabled && !created.deprecated);
    assert_eq!(
        created.secret,
        StoredSecret::Encrypted {
            key_id: "k1".into()
        }
    );
    assert_eq!(
        created.redirect_uris,
        json!(["https://acme.example/after-login"])
    );
    assert_eq!(
        created.hosts,
        json!({"oapi": "https://oapi.internal.example/"})
    );
    assert!(created.created_at_ms > 0 && created.modified_at_ms >= created.created_at_ms);
    assert_eq!(created.session_scopes, None);

    // A second live row for the same tenant and platform is refused.
    let e = s
        .create(row("acme", "dingacme", "x"), "alice")
        .await
        .unwrap_err();
    assert!(e.to_string().contains("already configured"), "{e}");
    // An invalid row is refused, naming tenant, platform and field.
    let mut bad = row("globex", "dingglobex", "s");
    bad.redirect_uris = vec!["http://evil.example/cb".into()];
    let e = s.create(bad, "alice").await.unwrap_err().to_string();
    assert!(
        e.contains("globex") && e.contains("dingtalk") && e.contains("redirect_uris[0]"),
        "{e}"
    );
    // Platform-specific checks run through the platform's build.
    let mut bad = row("globex", "dingglobex", "s");
    bad.options.insert("app_token_api".into(), json!("v9"));
    let e = s.create(bad, "alice").await.unwrap_err().to_string();
    assert!(e.contains("options.app_token_api"), "{e}");
    // Mapping overrides must compile.
    let mut bad = row("globex", "dingglobex", "s");
    bad.mapping = Some(json!({"mobile": {"path": "$.result["}}));
    let e = s.create(bad, "alice").await.unwrap_err().to_string();
    assert!(e.contains("globex") && e.contains("mapping"), "{e}");
    assert_eq!(s.list(None).await.unwrap().len(), 1);

    let updated = s
        .update(
            &t("acme"),
            &dingtalk(),
            ConfigPatch {
                mode: Some(Some("internal".into())),
                redirect_uris: Some(vec!["https://acme.example/new".into()]),
                sort: Some(5),
                ..ConfigPatch::default()
            },
            "bob",
        )
        .await
        .unwrap();
    assert_eq!(updated.mode.as_deref(), Some("internal"));
    assert_eq!(updated.redirect_uris, json!(["https://acme.example/new"]));
    assert_eq!(updated.sort, 5);
    assert_eq!(updated.revision, 2);
    assert_eq!(updated.creator, "alice");
    assert_eq!(updated.modifier.as_deref(), Some("bob"));
    // Untouched fields are kept.
    assert_eq!(updated.hosts, created.hosts);
    assert_eq!(updated.mapping, created.mapping);
    assert!(stored_secret(&s, "acme").await.starts_with("enc:v1:k1:"));

    let disabled = s.disable(&t("acme"), &dingtalk(), "carol").await.unwrap();
    assert!(!disabled.enabled);
    let deprecated = s
        .set_deprecated(&t("acme"), &dingtalk(), true, "carol")
        .await
        .unwrap();
    assert!(deprecated.deprecated);
    assert_eq!(deprecated.revision, 4);

    s.create(row("globex", "dingglobex", "g"), "alice")
        .await
        .unwrap();
    let all = s.list(None).await.unwrap();
    assert_eq!(
        all.iter().map(|r| r.tenant.as_str()).collect::<Vec<_>>(),
        ["acme", "globex"]
    );
    assert_eq!(s.list(Some(&t("globex"))).await.unwrap().len(), 1);

    // Soft delete: gone from listings, kept in the table, re-creatable.
    s.delete(&t("acme"), &dingtalk(), "dave").await.unwrap();
    assert!(s.get(&t("acme"), &dingtalk()).await.unwrap().is_none());
    let kept: i64 = sqlx::query(AssertSqlSafe(
        "SELECT COUNT(*) AS n FROM unilogin_platform_config WHERE tenant_id = 'acme' AND deleted_at <> 0"
            .to_string(),
    ))
    .fetch_one(s.pool())
    .await
    .unwrap()
    .try_get("n")
    .unwrap();
    assert_eq!(kept, 1);
    let e = s
        .disable(&t("acme"), &dingtalk(), "dave")
        .await
        .unwrap_err();
    assert!(matches!(e, Error::PlatformNotConfigured { .. }), "{e}");
    let again = s
        .create(row("acme", "dingacme2", "secret-2"), "erin")
        .await
        .unwrap();
    assert_eq!(again.revision, 1);
    assert_eq!(again.app_key, "dingacme2");
}

async fn count(s: &SqlConfigStore, sql: &str) -> i64 {
    sqlx::query(AssertSqlSafe(sql.to_string()))
        .fetch_one(s.pool())
        .await
        .unwrap()
        .try_get::<i64, _>("n")
        .unwrap()
}

/// A database migrated by the first release (0001 only) with a row in it: `migrate` adds the
/// `session_scopes` column and keeps the row, which loads with no scope rules.
async fn migrations_up_from_0001(kind: Kind) {
    let url = common::fresh_database(kind).await;
    let keys = format!("k1:{}", key_a());
    let s = SqlConfigStore::connect(&url, cipher(&keys)).await.unwrap();
    let first: &'static str = match kind {
        Kind::Sqlite => include_str!("../migrations/sqlite/0001_platform_config.sql"),
        Kind::Postgres => include_str!("../migrations/postgres/0001_platform_config.sql"),
        Kind::MariaDb => include_str!("../migrations/mysql/0001_platform_config.sql"),
    };
    Migrator::with_migrations(vec![Migration::new(
        1,
        "platform config".into(),
        MigrationType::Simple,
        first.into_sql_str(),
        false,
    )])
    .run(s.pool())
    .await
    .unwrap();
    let secret = cipher(&keys)
        .encrypt(&AppSecret::new("old-secret"), &t("acme"), &dingtalk())
        .unwrap();
    raw(
        &s,
        format!(
            "INSERT INTO unilogin_platform_config (tenant_id, platform, protocol, enabled, app_key, app_secret, corp_id, agent_id, hosts, mapping, redirect_uris, options, sort, deprecated, creator, created_at, modifier, modified_at, revision, deleted_at) \
             VALUES ('acme', 'dingtalk', NULL, 1, 'dingacme', '{secret}', 'corp-acme', NULL, '{{}}', NULL, '[\"https://acme.example/after-login\"]', '{{}}', 0, 0, 'old', 1, NULL, 1, 1, 0)"
        ),
    )
    .await;

    s.migrate().await.unwrap();
    assert_eq!(
        count(
            &s,
            "SELECT COUNT(*) AS n FROM _sqlx_migrations WHERE success = TRUE"
        )
        .await,
        7
    );
    let listed = s.get(&t("acme"), &dingtalk()).await.unwrap().unwrap();
    assert_eq!(listed.session_scopes, None);
    assert_eq!(
        listed.identity, None,
        "the new column is NULL: the defaults"
    );
    assert_eq!(listed.creator, "old");
    assert_eq!(listed.events, None, "the event columns are NULL: no events");
    let src = source(&s).await;
    let c = src.get(&t("acme"), "dingtalk").await.unwrap();
    assert_eq!(c.app_secret.expose(), "old-secret");
    assert_eq!(c.session_scopes, None);
    assert_eq!(c.events, None);

    // The upgraded row takes scope rules like a new one.
    let rules = json!({"default": ["user:read"]});
    let updated = s
        .update(
            &t("acme"),
            &dingtalk(),
            ConfigPatch {
                session_scopes: Some(Some(rules.clone())),
                ..ConfigPatch::default()
            },
            "bob",
        )
        .await
        .unwrap();
    assert_eq!(updated.session_scopes, Some(rules.clone()));
    src.reload().await.unwrap();
    assert_eq!(
        src.get(&t("acme"), "dingtalk")
            .await
            .unwrap()
            .session_scopes,
        Some(Arc::new(ScopeRules::from_value(&rules).unwrap()))
    );
}

async fn session_scopes_round_trip(kind: Kind) {
    let (url, s) = store(kind, &format!("k1:{}", key_a())).await;
    let rules = json!({
        "default": ["user:read"],
        "rules": [{ "when": { "extra": { "admin": true } }, "grant": ["admin:read", "admin:write"] }]
    });
    let mut r = row("acme", "dingacme", "secret-1");
    r.session_scopes = Some(rules.clone());
    let created = s.create(r, "alice").await.unwrap();
    assert_eq!(created.session_scopes, Some(rules.clone()));

    // The loader compiles them into the configuration.
    let src = source(&s).await;
    let first = src.get(&t("acme"), "dingtalk").await.unwrap();
    let loaded = first.session_scopes.clone().expect("session scopes loaded");
    assert_eq!(*loaded, ScopeRules::from_value(&rules).unwrap());
    let admin = serde_json::from_value(json!({
        "platform": "dingtalk", "tenant": "acme", "user_id": "u1", "extra": { "admin": true }
    }))
    .unwrap();
    assert_eq!(
        loaded.scopes_for(&admin),
        ["user:read", "admin:read", "admin:write"]
    );

    // Other changes keep them (and an unchanged reload keeps the same Arc).
    let updated = s
        .update(
            &t("acme"),
            &dingtalk(),
            ConfigPatch {
                sort: Some(3),
                ..ConfigPatch::default()
            },
            "bob",
        )
        .await
        .unwrap();
    assert_eq!(updated.session_scopes, Some(rules.clone()));
    assert!(src.reload().await.unwrap().changed.is_empty());
    assert!(Arc::ptr_eq(
        &first,
        &src.get(&t("acme"), "dingtalk").await.unwrap()
    ));
    // Re-encryption keeps them byte for byte.
    let rotated = SqlConfigStore::connect(&url, cipher(&format!("k2:{},k1:{}", key_b(), key_a())))
        .await
        .unwrap();
    assert_eq!(rotated.reencrypt("ops").await.unwrap(), 1);
    assert_eq!(
        rotated
            .get(&t("acme"), &dingtalk())
            .await
            .unwrap()
            .unwrap()
            .session_scopes,
        Some(rules.clone())
    );

    // From here on the store and its source hold the new key.
    let s = rotated;
    let src = source(&s).await;
    let before = src.get(&t("acme"), "dingtalk").await.unwrap();

    // Replaced as a whole; the change reaches the source at the next reload.
    let narrower = json!({"default": ["reports:read"]});
    let updated = s
        .update(
            &t("acme"),
            &dingtalk(),
            ConfigPatch {
                session_scopes: Some(Some(narrower.clone())),
                ..ConfigPatch::default()
            },
            "bob",
        )
        .await
        .unwrap();
    assert_eq!(updated.session_scopes, Some(narrower.clone()));
    assert!(Arc::ptr_eq(
        &before,
        &src.get(&t("acme"), "dingtalk").await.unwrap()
    ));
    assert_eq!(src.reload().await.unwrap().changed.len(), 1);
    assert_eq!(
        src.get(&t("acme"), "dingtalk")
            .await
            .unwrap()
            .session_scopes,
        Some(Arc::new(ScopeRules::from_value(&narrower).unwrap()))
    );

    // Cleared (`Some(None)`, or JSON null): the column is NULL and no rules load.
    for clear in [None, Some(serde_json::Value::Null)] {
        let cleared = s
            .update(
                &t("acme"),
                &dingtalk(),
                ConfigPatch {
                    session_scopes: Some(clear),
                    ..ConfigPatch::default()
                },
                "bob",
            )
            .await
            .unwrap();
        assert_eq!(cleared.session_scopes, None);
        assert_eq!(
            count(
                &s,
                "SELECT COUNT(*) AS n FROM unilogin_platform_config WHERE tenant_id = 'acme' AND deleted_at = 0 AND session_scopes IS NULL",
            )
            .await,
            1
        );
        src.reload().await.unwrap();
        assert_eq!(
            src.get(&t("acme"), "dingtalk")
                .await
                .unwrap()
                .session_scopes,
            None
        );
    }
}

async fn session_scopes_bad_value(kind: Kind) {
    let (_, s) = store(kind, &format!("k1:{}", key_a())).await;
    let good = json!({"default": ["user:read"]});
    let mut r = row("acme", "dingacme", "secret-1");
    r.session_scopes = Some(good.clone());
    s.create(r, "alice").await.unwrap();
    let bad_values = [
        json!({"default": ["user read"]}),  // not a scope token
        json!({"defaults": ["user:read"]}), // unknown key
        json!({"rules": [{"when": {}, "grant": ["x"]}]}), // a rule without conditions
        json!({"rules": [{"when": {"platform": "dingtalk"}, "grant": []}]}), // empty grant
        json!(["user:read"]),               // not a map
    ];
    // The admin API refuses each, naming tenant, platform and field; nothing is written.
    for bad in &bad_values {
        let mut r = row("globex", "dingglobex", "g");
        r.session_scopes = Some(bad.clone());
        let e = s.create(r, "alice").await.unwrap_err().to_string();
        assert!(
            e.contains("globex") && e.contains("dingtalk") && e.contains("session_scopes"),
            "{bad}: {e}"
        );
        let e = s
            .update(
                &t("acme"),
                &dingtalk(),
                ConfigPatch {
                    session_scopes: Some(Some(bad.clone())),
                    ..ConfigPatch::default()
                },
                "bob",
            )
            .await
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("acme") && e.contains("dingtalk") && e.contains("session_scopes"),
            "{bad}: {e}"
        );
    }
    assert!(s.get(&t("globex"), &dingtalk()).await.unwrap().is_none());
    let kept = s.get(&t("acme"), &dingtalk()).await.unwrap().unwrap();
    assert_eq!(kept.session_scopes, Some(good.clone()));
    assert_eq!(kept.revision, 1);

    // A hand edit is rejected at reload, naming tenant, platform and field, and the last good
    // configuration stays in force.
    let src = source(&s).await;
    let last_good = src.get(&t("acme"), "dingtalk").await.unwrap();
    for (text, says) in [
        (r#"{"default": ["user read"]}"#, "session_scopes"),
        ("{not json", "invalid JSON"),
    ] {
        raw(
            &s,
            format!(
                "UPDATE unilogin_platform_config SET session_scopes = '{text}' WHERE tenant_id = 'acme'"
            ),
        )
        .await;
        let report = src.reload().await.unwrap();
        assert_eq!(report.rejected.len(), 1, "{report:?}");
        let e = report.rejected[0].to_string();
        assert!(
            e.contains("acme")
                && e.contains("dingtalk")
                && e.contains("session_scopes")
                && e.contains(says),
            "{e}"
        );
        assert!(Arc::ptr_eq(
            &last_good,
            &src.get(&t("acme"), "dingtalk").await.unwrap()
        ));
        // The listing shows what is stored.
        let listed = s.get(&t("acme"), &dingtalk()).await.unwrap().unwrap();
        assert!(listed.session_scopes.is_some());
    }
    // A source that never saw a good value answers with the error.
    let fresh = source(&s).await;
    let e = fresh
        .get(&t("acme"), "dingtalk")
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("acme") && e.contains("session_scopes"), "{e}");
    // Disabling still works alongside the bad value.
    s.disable(&t("acme"), &dingtalk(), "bob").await.unwrap();
}

async fn reload_on_change(kind: Kind) {
    let (_, s) = store(kind, &format!("k1:{}", key_a())).await;
    s.create(row("acme", "dingacme", "secret-1"), "alice")
        .await
        .unwrap();
    let src = source(&s).await;
    let first = src.get(&t("acme"), "dingtalk").await.unwrap();
    assert_eq!(first.app_secret.expose(), "secret-1");
    assert_eq!(first.corp_id.as_deref(), Some("corp-acme"));

    // Nothing changed: same Arc (so built handlers stay cached).
    let report = src.reload().await.unwrap();
    assert!(!report.has_changes() && report.unchanged == 1, "{report:?}");
    assert!(Arc::ptr_eq(
        &first,
        &src.get(&t("acme"), "dingtalk").await.unwrap()
    ));

    // A valid change takes effect at the next reload (not before).
    s.update(
        &t("acme"),
        &dingtalk(),
        ConfigPatch {
            app_secret: Some(SecretInput::Value(AppSecret::new("secret-2"))),
            redirect_uris: Some(vec!["https://acme.example/v2".into()]),
            ..ConfigPatch::default()
        },
        "bob",
    )
    .await
    .unwrap();
    assert!(Arc::ptr_eq(
        &first,
        &src.get(&t("acme"), "dingtalk").await.unwrap()
    ));
    let report = src.reload().await.unwrap();
    assert_eq!(report.changed.len(), 1, "{report:?}");
    let second = src.get(&t("acme"), "dingtalk").await.unwrap();
    assert!(!Arc::ptr_eq(&first, &second));
    assert_eq!(second.app_secret.expose(), "secret-2");
    assert_eq!(second.redirect_uris, ["https://acme.example/v2"]);

    // Disabled, then deprecated rows stop new logins (enabled = false).
    s.disable(&t("acme"), &dingtalk(), "bob").await.unwrap();
    src.reload().await.unwrap();
    assert!(!src.get(&t("acme"), "dingtalk").await.unwrap().enabled);
    s.set_enabled(&t("acme"), &dingtalk(), true, "bob")
        .await
        .unwrap();
    src.reload().await.unwrap();
    assert!(src.get(&t("acme"), "dingtalk").await.unwrap().enabled);
    s.set_deprecated(&t("acme"), &dingtalk(), true, "bob")
        .await
        .unwrap();
    src.reload().await.unwrap();
    assert!(!src.get(&t("acme"), "dingtalk").await.unwrap().enabled);

    // A new row appears, a deleted one disappears.
    s.create(row("globex", "dingglobex", "g"), "alice")
        .await
        .unwrap();
    s.delete(&t("acme"), &dingtalk(), "bob").await.unwrap();
    let report = src.reload().await.unwrap();
    assert_eq!(report.added.len(), 1, "{report:?}");
    assert_eq!(report.removed.len(), 1, "{report:?}");
    let e = src.get(&t("acme"), "dingtalk").await.unwrap_err();
    assert!(matches!(e, Error::UnknownTenant { .. }), "{e}");
    assert_eq!(src.list().await.unwrap().len(), 1);

    // Periodic reloads pick changes up by themselves.
    let src = Arc::new(src);
    let _reloader = src
        .spawn_reloader(std::time::Duration::from_millis(50))
        .unwrap();
    s.update(
        &t("globex"),
        &dingtalk(),
        ConfigPatch {
            corp_id: Some(Some("corp-globex-2".into())),
            ..ConfigPatch::default()
        },
        "bob",
    )
    .await
    .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let c = src.get(&t("globex"), "dingtalk").await.unwrap();
        if c.corp_id.as_deref() == Some("corp-globex-2") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "periodic reload did not apply the change"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

async fn invalid_change_rejected(kind: Kind) {
    let (_, s) = store(kind, &format!("k1:{}", key_a())).await;
    s.create(row("acme", "dingacme", "secret-1"), "alice")
        .await
        .unwrap();
    s.create(row("globex", "dingglobex", "g"), "alice")
        .await
        .unwrap();
    let src = source(&s).await;
    let good = src.get(&t("acme"), "dingtalk").await.unwrap();

    // The admin API refuses invalid changes outright.
    let e = s
        .update(
            &t("acme"),
            &dingtalk(),
            ConfigPatch {
                hosts: Some([("oapi".to_string(), "ftp://files.example/".parse().unwrap())].into()),
                ..ConfigPatch::default()
            },
            "bob",
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("hosts.oapi") && e.contains("acme"), "{e}");

    // A change made behind the API's back (a hand edit) is rejected at reload, logged, and
    // the last good configuration stays in force.
    raw(
        &s,
        "UPDATE unilogin_platform_config SET hosts = '{\"oapi\": \"ftp://files.example/\"}' WHERE tenant_id = 'acme'"
            .into(),
    )
    .await;
    raw(
        &s,
        "UPDATE unilogin_platform_config SET options = '{not json' WHERE tenant_id = 'globex'"
            .into(),
    )
    .await;
    let report = src.reload().await.unwrap();
    assert_eq!(report.rejected.len(), 2, "{report:?}");
    let texts: Vec<String> = report.rejected.iter().map(ToString::to_string).collect();
    assert!(
        texts
            .iter()
            .any(|e| e.contains("acme") && e.contains("dingtalk") && e.contains("hosts.oapi")),
        "{texts:?}"
    );
    assert!(
        texts
            .iter()
            .any(|e| e.contains("globex") && e.contains("options") && e.contains("invalid JSON")),
        "{texts:?}"
    );
    assert!(Arc::ptr_eq(
        &good,
        &src.get(&t("acme"), "dingtalk").await.unwrap()
    ));
    assert!(src.get(&t("globex"), "dingtalk").await.unwrap().enabled);

    // Disabling always works, even alongside the invalid content.
    s.disable(&t("acme"), &dingtalk(), "bob").await.unwrap();
    src.reload().await.unwrap();
    let disabled = src.get(&t("acme"), "dingtalk").await.unwrap();
    assert!(!disabled.enabled);
    assert_eq!(
        disabled.hosts, good.hosts,
        "the invalid hosts were not applied"
    );

    // A row that was never valid answers with its error.
    raw(
        &s,
        "UPDATE unilogin_platform_config SET options = '{}', redirect_uris = '[\"javascript:alert(1)\"]' WHERE tenant_id = 'globex'".into(),
    )
    .await;
    let fresh = source(&s).await;
    let e = fresh
        .get(&t("globex"), "dingtalk")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("globex") && e.contains("redirect_uris[0]"),
        "{e}"
    );
}

/// A store app's permanent code: encrypted in its own column (bound to the field: the app
/// secret's ciphertext does not open there), loaded as a secret, answered as "set" only,
/// patched and removed.
async fn permanent_code_round_trip(kind: Kind) {
    let spec = format!("k1:{}", key_a());
    let (_url, s) = store(kind, &spec).await;
    let mut r = row("acme", "dingacme", "top-secret-value");
    r.permanent_code = Some(SecretInput::Value(AppSecret::new("perm-code-value")));
    let created = s.create(r, "alice").await.unwrap();
    assert!(
        matches!(created.permanent_code, Some(StoredSecret::Encrypted { .. })),
        "{created:?}"
    );
    assert!(!format!("{created:?}").contains("perm-code-value"));
    let src = source(&s).await;
    let loaded = src.get(&t("acme"), "dingtalk").await.unwrap();
    assert_eq!(
        loaded.permanent_code.as_ref().map(|c| c.expose()),
        Some("perm-code-value")
    );
    assert!(!format!("{loaded:?}").contains("perm-code-value"));
    let patch = ConfigPatch {
        permanent_code: Some(Some(SecretInput::Value(AppSecret::new("perm-code-2")))),
        ..ConfigPatch::default()
    };
    s.update(&t("acme"), &dingtalk(), patch, "alice")
        .await
        .unwrap();
    src.reload().await.unwrap();
    let loaded = src.get(&t("acme"), "dingtalk").await.unwrap();
    assert_eq!(
        loaded.permanent_code.as_ref().map(|c| c.expose()),
        Some("perm-code-2")
    );
    let patch = ConfigPatch {
        permanent_code: Some(None),
        ..ConfigPatch::default()
    };
    let removed = s
        .update(&t("acme"), &dingtalk(), patch, "alice")
        .await
        .unwrap();
    assert_eq!(removed.permanent_code, None);
    let audit = format!("{:?}", s.audit(&AuditQuery::default()).await.unwrap());
    assert!(
        audit.contains("permanent_code") && !audit.contains("perm-code"),
        "{audit}"
    );
}

async fn encryption_round_trip(kind: Kind) {
    let spec_a = format!("k1:{}", key_a());
    let (url, s) = store(kind, &spec_a).await;
    s.create(row("acme", "dingacme", "top-secret-value"), "alice")
        .await
        .unwrap();
    let stored = stored_secret(&s, "acme").await;
    assert!(stored.starts_with("enc:v1:k1:"), "{stored}");
    assert!(!stored.contains("top-secret-value"));
    let src = source(&s).await;
    assert_eq!(
        src.get(&t("acme"), "dingtalk")
            .await
            .unwrap()
            .app_secret
            .expose(),
        "top-secret-value"
    );

    // References are stored as given and resolved at load.
    let dir = std::env::temp_dir().join(format!("unilogin-sql-ref-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join(format!("{kind:?}.secret"));
    std::fs::write(&file, "from-a-file\n").unwrap();
    let mut r = row("globex", "dingglobex", "unused");
    r.app_secret = SecretInput::Reference(format!("file:{}", file.display()));
    // References are refused unless the operator allow-lists them.
    let e = s.create(r.clone(), "alice").await.unwrap_err().to_string();
    assert!(e.contains("not allowed") && e.contains("app_secret"), "{e}");
    let s = s.with_secret_refs(SecretRefPolicy::none().allow_dir(&dir));
    let src = source(&s).await;
    let created = s.create(r, "alice").await.unwrap();
    assert_eq!(
        created.secret,
        StoredSecret::Reference(format!("file:{}", file.display()))
    );
    src.reload().await.unwrap();
    assert_eq!(
        src.get(&t("globex"), "dingtalk")
            .await
            .unwrap()
            .app_secret
            .expose(),
        "from-a-file"
    );
    // A plain value is never accepted as a "reference".
    let e = s
        .update(
            &t("globex"),
            &dingtalk(),
            ConfigPatch {
                app_secret: Some(SecretInput::Reference("plain-secret".into())),
                ..ConfigPatch::default()
            },
            "bob",
        )
        .await
        .unwrap_err();
    assert!(e.to_string().contains("env:NAME"), "{e}");

    // Key rotation: new key first, re-encrypt, old key can go.
    let spec_ba = format!("k2:{},k1:{}", key_b(), key_a());
    let rotated = SqlConfigStore::connect(&url, cipher(&spec_ba))
        .await
        .unwrap();
    assert_eq!(rotated.reencrypt("ops").await.unwrap(), 1);
    assert!(stored_secret(&s, "acme").await.starts_with("enc:v1:k2:"));
    let only_b = SqlConfigStore::connect(&url, cipher(&format!("k2:{}", key_b())))
        .await
        .unwrap();
    let src_b = source(&only_b).await;
    assert_eq!(
        src_b
            .get(&t("acme"), "dingtalk")
            .await
            .unwrap()
            .app_secret
            .expose(),
        "top-secret-value"
    );
    assert_eq!(rotated.reencrypt("ops").await.unwrap(), 0);
    std::fs::remove_dir_all(&dir).unwrap();
}

async fn wrong_key_clear_error(kind: Kind) {
    let (url, s) = store(kind, &format!("k1:{}", key_a())).await;
    s.create(row("acme", "dingacme", "secret-1"), "alice")
        .await
        .unwrap();
    // Same key id, other key material.
    let wrong = SqlConfigStore::connect(&url, cipher(&format!("k1:{}", key_b())))
        .await
        .unwrap();
    let (src, report) = CachedSource::new(wrong.clone()).await.unwrap();
    assert_eq!(report.rejected.len(), 1);
    let e = src
        .get(&t("acme"), "dingtalk")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("acme")
            && e.contains("dingtalk")
            && e.contains("app_secret")
            && e.contains("wrong key"),
        "{e}"
    );
    assert!(!e.contains("secret-1"));
    // A key id that is not configured at all.
    let other = SqlConfigStore::connect(&url, cipher(&format!("k9:{}", key_b())))
        .await
        .unwrap();
    let (src, _) = CachedSource::new(other).await.unwrap();
    let e = src
        .get(&t("acme"), "dingtalk")
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("key `k1`") && e.contains("UNILOGIN_SECRET_KEYS"),
        "{e}"
    );
    // No keys at all: storing a secret says what to do.
    let none = SqlConfigStore::connect(&url, SecretCipher::none())
        .await
        .unwrap();
    let e = none
        .create(row("globex", "dingglobex", "x"), "alice")
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("UNILOGIN_SECRET_KEYS"), "{e}");
    // Strict start-up refuses the undecryptable row.
    assert!(CachedSource::new_strict(wrong).await.is_err());
}

async fn tenant_isolation(kind: Kind) {
    let (_, s) = store(kind, &format!("k1:{}", key_a())).await;
    // `ACME` and `acme` are different tenants (identifiers are case-sensitive).
    s.create(row("acme", "dingacme", "secret-acme"), "alice")
        .await
        .unwrap();
    s.create(row("ACME", "dingACME", "secret-ACME"), "alice")
        .await
        .unwrap();
    s.create(row("globex", "dingglobex", "secret-globex"), "alice")
        .await
        .unwrap();
    let src = source(&s).await;
    for (tenant, key, secret) in [
        ("acme", "dingacme", "secret-acme"),
        ("ACME", "dingACME", "secret-ACME"),
        ("globex", "dingglobex", "secret-globex"),
    ] {
        let c = src.get(&t(tenant), "dingtalk").await.unwrap();
        assert_eq!(c.tenant.as_str(), tenant);
        assert_eq!(c.app_key.as_str(), key);
        assert_eq!(c.app_secret.expose(), secret);
    }
    assert_eq!(s.list(Some(&t("acme"))).await.unwrap().len(), 1);
    assert_eq!(
        s.list(Some(&t("acme"))).await.unwrap()[0].app_key,
        "dingacme"
    );
    let e = src.get(&t("initech"), "dingtalk").await.unwrap_err();
    assert!(matches!(e, Error::UnknownTenant { .. }), "{e}");

    // Changing or deleting one tenant never touches another.
    s.disable(&t("acme"), &dingtalk(), "bob").await.unwrap();
    s.delete(&t("ACME"), &dingtalk(), "bob").await.unwrap();
    src.reload().await.unwrap();
    assert!(!src.get(&t("acme"), "dingtalk").await.unwrap().enabled);
    assert!(src.get(&t("ACME"), "dingtalk").await.is_err());
    assert!(src.get(&t("globex"), "dingtalk").await.unwrap().enabled);

    // A secret copied from one tenant's row into another's does not decrypt there.
    let acme_secret = stored_secret(&s, "acme").await;
    raw(
        &s,
        format!("UPDATE unilogin_platform_config SET app_secret = '{acme_secret}' WHERE tenant_id = 'globex'"),
    )
    .await;
    let report = src.reload().await.unwrap();
    assert_eq!(report.rejected.len(), 1, "{report:?}");
    let e = report.rejected[0].to_string();
    assert!(
        e.contains("globex") && e.contains("copied from another"),
        "{e}"
    );
    // globex keeps its own last good secret; it never gets acme's.
    assert_eq!(
        src.get(&t("globex"), "dingtalk")
            .await
            .unwrap()
            .app_secret
            .expose(),
        "secret-globex"
    );
}

/// Every admin change writes an audit entry (who, what, which fields) that never holds the
/// secret; the list pages newest first and filters by tenant.
async fn audit_log(kind: Kind) {
    let (_, s) = store(kind, &format!("k1:{}", key_a())).await;
    s.create(row("acme", "dingacme", "first-secret-value"), "alice")
        .await
        .unwrap();
    s.create(row("globex", "dingglobex", "globex-secret-value"), "carol")
        .await
        .unwrap();
    s.update(
        &t("acme"),
        &dingtalk(),
        ConfigPatch {
            app_secret: Some(SecretInput::Value(AppSecret::new("second-secret-value"))),
            redirect_uris: Some(vec!["https://acme.example/other".into()]),
            ..ConfigPatch::default()
        },
        "bob",
    )
    .await
    .unwrap();
    // Every change moves the change fingerprint a watcher polls.
    let mut versions = vec![s.version().await.unwrap().unwrap()];
    s.disable(&t("acme"), &dingtalk(), "bob").await.unwrap();
    versions.push(s.version().await.unwrap().unwrap());
    s.delete(&t("acme"), &dingtalk(), "dave").await.unwrap();
    versions.push(s.version().await.unwrap().unwrap());
    assert_eq!(s.version().await.unwrap().unwrap(), versions[2]);
    assert!(
        versions[0] != versions[1] && versions[1] != versions[2],
        "{versions:?}"
    );
    let all = s.audit(&AuditQuery::default()).await.unwrap();
    let actions: Vec<(&str, &str, &str)> = all
        .iter()
        .map(|e| (e.actor.as_str(), e.tenant.as_str(), e.action.as_str()))
        .collect();
    assert_eq!(
        actions,
        [
            ("dave", "acme", "delete"),
            ("bob", "acme", "disable"),
            ("bob", "acme", "update"),
            ("carol", "globex", "create"),
            ("alice", "acme", "create"),
        ]
    );
    let update = &all[2];
    assert_eq!(update.changes["app_secret"], "changed");
    assert_eq!(
        update.changes["redirect_uris"]["to"],
        json!(["https://acme.example/other"])
    );
    assert_eq!(update.revision, 2);
    assert_eq!(
        all[1].changes["enabled"],
        json!({"from": true, "to": false})
    );
    assert!(all[4].at_ms > 0 && all[4].changes["app_key"]["to"] == "dingacme");
    let text = format!("{all:?}");
    for secret in [
        "first-secret-value",
        "second-secret-value",
        "globex-secret-value",
        "enc:v1",
    ] {
        assert!(!text.contains(secret), "{secret} in the audit log");
    }
    let acme = s
        .audit(&AuditQuery {
            tenants: Some(vec![t("acme")]),
            limit: 2,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(acme.len(), 2);
    assert!(acme.iter().all(|e| e.tenant == "acme"));
    let older = s
        .audit(&AuditQuery {
            tenants: Some(vec![t("acme")]),
            before_id: Some(acme[1].id),
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(
        older.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
        ["update", "create"]
    );
    // A refused change leaves no entry.
    assert!(
        s.create(row("globex", "dingglobex", "again"), "eve")
            .await
            .is_err()
    );
    assert_eq!(s.audit(&AuditQuery::default()).await.unwrap().len(), 5);
}

/// A row written into the table by hand with a reference the operator did not allow is
/// rejected at load: the server never reads the referenced variable or file.
async fn references_need_the_allow_list(kind: Kind) {
    let (_, s) = store(kind, &format!("k1:{}", key_a())).await;
    s.create(row("acme", "dingacme", "good-secret"), "alice")
        .await
        .unwrap();
    let src = source(&s).await;
    // PATH is set in every test environment and is not a secret.
    for reference in ["env:PATH", "file:/proc/self/environ", "file:/etc/hostname"] {
        raw(
            &s,
            format!(
                "UPDATE unilogin_platform_config SET app_secret = '{reference}', revision = revision + 1 WHERE tenant_id = 'acme'"
            ),
        )
        .await;
        let report = src.reload().await.unwrap();
        let e = report.rejected.first().expect("rejected").to_string();
        assert!(
            e.contains("not allowed") && e.contains("app_secret") && e.contains("acme"),
            "{reference}: {e}"
        );
        // The last good configuration stays.
        let served = src.get(&t("acme"), "dingtalk").await.unwrap();
        assert_eq!(served.app_secret.expose(), "good-secret");
    }
    // Allow-listed by the operator: resolved.
    let allowed = s
        .clone()
        .with_secret_refs(SecretRefPolicy::none().allow_env("PATH"));
    raw(
        &s,
        "UPDATE unilogin_platform_config SET app_secret = 'env:PATH', revision = revision + 1 WHERE tenant_id = 'acme'".into(),
    )
    .await;
    let src = source(&allowed).await;
    assert_eq!(
        src.get(&t("acme"), "dingtalk")
            .await
            .unwrap()
            .app_secret
            .expose(),
        std::env::var("PATH").unwrap()
    );
}

/// A watcher's reload reads only the rows written since its cursor: an update, a create and a
/// delete apply without reading the rows nobody touched.
async fn reload_reads_only_changed_rows(kind: Kind) {
    let (_, s) = store(kind, &format!("k1:{}", key_a())).await;
    for (tenant, key) in [
        ("a", "dinga"),
        ("b", "dingb"),
        ("c", "dingc"),
        ("d", "dingd"),
    ] {
        s.create(row(tenant, key, "secret"), "alice").await.unwrap();
    }
    // a, b, c written long ago; d the latest before the first load.
    raw(
        &s,
        "UPDATE unilogin_platform_config SET created_at = 1, modified_at = 1".into(),
    )
    .await;
    raw(
        &s,
        "UPDATE unilogin_platform_config SET created_at = 100000, modified_at = 100000 WHERE tenant_id = 'd'".into(),
    )
    .await;
    let src = source(&s).await;
    assert_eq!(src.status().entries, 4);
    s.update(
        &t("b"),
        &dingtalk(),
        ConfigPatch {
            corp_id: Some(Some("corp-b2".into())),
            ..ConfigPatch::default()
        },
        "bob",
    )
    .await
    .unwrap();
    s.create(row("e", "dinge", "secret"), "bob").await.unwrap();
    s.delete(&t("c"), &dingtalk(), "bob").await.unwrap();
    let report = src
        .reload_if_changed(false)
        .await
        .unwrap()
        .expect("a change");
    assert_eq!(report.changed, [(t("b"), dingtalk())]);
    assert_eq!(report.added, [(t("e"), dingtalk())]);
    assert_eq!(report.removed, [(t("c"), dingtalk())]);
    // Only d (inside the clock-skew window of the cursor) was read again; a was not.
    assert_eq!(report.unchanged, 1, "{report:?}");
    assert_eq!(
        src.get(&t("b"), "dingtalk")
            .await
            .unwrap()
            .corp_id
            .as_deref(),
        Some("corp-b2")
    );
    assert!(src.get(&t("c"), "dingtalk").await.is_err());
    assert!(src.get(&t("a"), "dingtalk").await.is_ok());
    assert_eq!(src.status().entries, 4);
    // Nothing new: nothing read.
    assert!(src.reload_if_changed(false).await.unwrap().is_none());
    // A forced reload reads everything.
    let full = src.reload_if_changed(true).await.unwrap().unwrap();
    assert_eq!(full.unchanged, 4);
    // A row inserted by hand with old timestamps is not among the rows modified since the
    // cursor: the row count gives it away and everything is read.
    raw(
        &s,
        "INSERT INTO unilogin_platform_config (tenant_id, platform, protocol, enabled, app_key, app_secret, corp_id, agent_id, hosts, mapping, redirect_uris, options, sort, deprecated, creator, created_at, modifier, modified_at, revision, deleted_at) \
         SELECT 'f', platform, protocol, enabled, app_key, 'env:UNALLOWED', corp_id, agent_id, hosts, mapping, redirect_uris, options, sort, deprecated, 'sql', 1, NULL, 1, 1, 0 FROM unilogin_platform_config WHERE tenant_id = 'a'".into(),
    )
    .await;
    let report = src
        .reload_if_changed(false)
        .await
        .unwrap()
        .expect("a change");
    assert_eq!(report.unchanged, 4, "a full read: {report:?}");
    assert_eq!(report.rejected.len(), 1, "{report:?}");
}

/// A DingTalk aes_key: 43 base64 characters.
const EVENT_KEY: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";
const EVENT_KEY_2: &str = "GFEDCBA9876543210zyxwvutsrqponmlkjihgfedcba";

async fn event_columns(s: &SqlConfigStore, tenant: &str) -> [Option<String>; 3] {
    let row = sqlx::query(AssertSqlSafe(format!(
        "SELECT event_token, event_key, event_receiver_id FROM unilogin_platform_config WHERE tenant_id = '{tenant}' AND deleted_at = 0"
    )))
    .fetch_one(s.pool())
    .await
    .unwrap();
    ["event_token", "event_key", "event_receiver_id"].map(|c| row.try_get(c).unwrap())
}

fn value(secret: &str) -> SecretInput {
    SecretInput::Value(AppSecret::new(secret))
}

/// Event credentials written through the admin API load into `PlatformConfig.events` as
/// written, are encrypted at rest (bound to their field), listed and audited without values,
/// patched field by field, removed, and re-encrypted on key rotation.
async fn event_credentials_round_trip(kind: Kind) {
    let spec_a = format!("k1:{}", key_a());
    let (url, s) = store(kind, &spec_a).await;
    let mut r = row("acme", "dingacme", "app-secret-value");
    r.events = Some(EventInput {
        token: Some(value("event-token-value")),
        key: Some(value(EVENT_KEY)),
        receiver_id: Some("suite-receiver".into()),
    });
    let created = s.create(r, "alice").await.unwrap();
    let encrypted = Some(StoredSecret::Encrypted {
        key_id: "k1".into(),
    });
    assert_eq!(
        created.events,
        Some(StoredEvents {
            token: encrypted.clone(),
            key: encrypted.clone(),
            receiver_id: Some("suite-receiver".into()),
        })
    );
    let listing = format!("{:?}", s.list(None).await.unwrap());
    assert!(
        !listing.contains("event-token-value") && !listing.contains(EVENT_KEY),
        "{listing}"
    );
    // Encrypted at rest: the raw columns never hold the values.
    let [token_col, key_col, receiver_col] = event_columns(&s, "acme").await;
    let (token_col, key_col) = (token_col.unwrap(), key_col.unwrap());
    assert!(token_col.starts_with("enc:v1:k1:") && !token_col.contains("event-token-value"));
    assert!(key_col.starts_with("enc:v1:k1:") && !key_col.contains(EVENT_KEY));
    assert_eq!(receiver_col.as_deref(), Some("suite-receiver"));
    // The loader serves them as written, and the codec builds.
    let src = source(&s).await;
    let c = src.get(&t("acme"), "dingtalk").await.unwrap();
    assert_eq!(
        c.events,
        Some(EventSettings {
            token: Some(AppSecret::new("event-token-value")),
            key: Some(AppSecret::new(EVENT_KEY)),
            receiver_id: Some("suite-receiver".into()),
        })
    );
    assert!(c.event_codec().unwrap().is_some());
    assert_eq!(c.app_secret.expose(), "app-secret-value");

    // A patch changes one field and keeps the others.
    s.update(
        &t("acme"),
        &dingtalk(),
        ConfigPatch {
            events: Some(Some(EventPatch {
                key: Some(Some(value(EVENT_KEY_2))),
                ..EventPatch::default()
            })),
            ..ConfigPatch::default()
        },
        "bob",
    )
    .await
    .unwrap();
    assert_eq!(
        event_columns(&s, "acme").await[0].as_deref(),
        Some(token_col.as_str())
    );
    src.reload().await.unwrap();
    let events = src
        .get(&t("acme"), "dingtalk")
        .await
        .unwrap()
        .events
        .clone()
        .unwrap();
    assert_eq!(events.key.unwrap().expose(), EVENT_KEY_2);
    assert_eq!(events.token.unwrap().expose(), "event-token-value");
    assert_eq!(events.receiver_id.as_deref(), Some("suite-receiver"));
    // The receiver id falls back to the app key when cleared.
    s.update(
        &t("acme"),
        &dingtalk(),
        ConfigPatch {
            events: Some(Some(EventPatch {
                receiver_id: Some(None),
                ..EventPatch::default()
            })),
            ..ConfigPatch::default()
        },
        "bob",
    )
    .await
    .unwrap();
    src.reload().await.unwrap();
    let c = src.get(&t("acme"), "dingtalk").await.unwrap();
    let events = c.events.as_ref().unwrap();
    assert_eq!(events.receiver_id, None);
    assert_eq!(
        events.credentials(&c).receiver_id.as_deref(),
        Some("dingacme")
    );
    // A patch that would leave nothing set is refused, naming the field.
    let e = s
        .update(
            &t("acme"),
            &dingtalk(),
            ConfigPatch {
                events: Some(Some(EventPatch {
                    token: Some(None),
                    key: Some(None),
                    ..EventPatch::default()
                })),
                ..ConfigPatch::default()
            },
            "bob",
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("acme") && e.contains("events") && e.contains("null"),
        "{e}"
    );
    // Credentials the platform cannot use are refused like any invalid configuration.
    let e = s
        .update(
            &t("acme"),
            &dingtalk(),
            ConfigPatch {
                events: Some(Some(EventPatch {
                    key: Some(Some(value("too-short"))),
                    ..EventPatch::default()
                })),
                ..ConfigPatch::default()
            },
            "bob",
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("events.key") && !e.contains("too-short"), "{e}");

    // Key rotation re-encrypts the event credentials too.
    let spec_ba = format!("k2:{},k1:{}", key_b(), key_a());
    let rotated = SqlConfigStore::connect(&url, cipher(&spec_ba))
        .await
        .unwrap();
    assert_eq!(rotated.reencrypt("ops").await.unwrap(), 1);
    let [token_col, key_col, _] = event_columns(&s, "acme").await;
    assert!(token_col.unwrap().starts_with("enc:v1:k2:"));
    assert!(key_col.unwrap().starts_with("enc:v1:k2:"));
    assert_eq!(rotated.reencrypt("ops").await.unwrap(), 0);
    let only_b = SqlConfigStore::connect(&url, cipher(&format!("k2:{}", key_b())))
        .await
        .unwrap();
    let c = source(&only_b)
        .await
        .get(&t("acme"), "dingtalk")
        .await
        .unwrap();
    let events = c.events.clone().unwrap();
    assert_eq!(events.token.unwrap().expose(), "event-token-value");
    assert_eq!(events.key.unwrap().expose(), EVENT_KEY_2);

    // Removing the subscription clears every column.
    // (Through the rotated store: the row is under k2 now.)
    rotated
        .update(
            &t("acme"),
            &dingtalk(),
            ConfigPatch {
                events: Some(None),
                ..ConfigPatch::default()
            },
            "carol",
        )
        .await
        .unwrap();
    assert_eq!(event_columns(&rotated, "acme").await, [None, None, None]);
    assert_eq!(
        rotated
            .get(&t("acme"), &dingtalk())
            .await
            .unwrap()
            .unwrap()
            .events,
        None
    );
    let src = source(&rotated).await;
    assert_eq!(src.get(&t("acme"), "dingtalk").await.unwrap().events, None);

    // The audit log names what changed, never a value.
    let entries = s.audit(&AuditQuery::default()).await.unwrap();
    let changes: Vec<(&str, &serde_json::Value)> = entries
        .iter()
        .map(|e| (e.action.as_str(), &e.changes))
        .collect();
    let [
        (_, removed),
        (_, reencrypted),
        (_, cleared_receiver),
        (_, new_key),
        (_, create),
    ] = changes[..]
    else {
        panic!("{changes:?}");
    };
    assert_eq!(create["events.token"], "set");
    assert_eq!(create["events.key"], "set");
    assert_eq!(
        create["events.receiver_id"],
        json!({"to": "suite-receiver"})
    );
    assert_eq!(new_key["events.key"], "changed");
    assert!(new_key.get("events.token").is_none(), "{new_key}");
    assert_eq!(
        cleared_receiver["events.receiver_id"],
        json!({"from": "suite-receiver", "to": null})
    );
    assert_eq!(
        *reencrypted,
        json!({"app_secret": "re-encrypted", "events.token": "re-encrypted", "events.key": "re-encrypted"})
    );
    assert_eq!(removed["events.token"], "removed");
    assert_eq!(removed["events.key"], "removed");
    let text = format!("{entries:?}");
    for secret in ["event-token-value", EVENT_KEY, EVENT_KEY_2, "enc:v1"] {
        assert!(!text.contains(secret), "{secret} in the audit log");
    }
}

/// Event credentials as references follow the app secret's allow-list; a row whose event
/// credentials do not decrypt or resolve is refused like one whose app secret does not.
async fn event_credentials_refused(kind: Kind) {
    let (url, s) = store(kind, &format!("k1:{}", key_a())).await;
    let dir = std::env::temp_dir().join(format!(
        "unilogin-sql-event-ref-{}-{kind:?}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("aes-key");
    std::fs::write(&file, format!("{EVENT_KEY}\n")).unwrap();
    let mut r = row("acme", "dingacme", "app-secret-value");
    r.events = Some(EventInput {
        token: Some(value("event-token-value")),
        key: Some(SecretInput::Reference(format!("file:{}", file.display()))),
        receiver_id: None,
    });
    // Not allow-listed: refused, naming the field.
    let e = s.create(r.clone(), "alice").await.unwrap_err().to_string();
    assert!(e.contains("not allowed") && e.contains("events.key"), "{e}");
    // A literal is never a "reference".
    let mut literal = r.clone();
    literal.events.as_mut().unwrap().token = Some(SecretInput::Reference("plain-token".into()));
    let e = s.create(literal, "alice").await.unwrap_err().to_string();
    assert!(e.contains("events.token") && e.contains("env:NAME"), "{e}");
    // An empty subscription is refused.
    let mut empty = r.clone();
    empty.events = Some(EventInput::default());
    let e = s.create(empty, "alice").await.unwrap_err().to_string();
    assert!(e.contains("events"), "{e}");
    assert!(s.list(None).await.unwrap().is_empty());

    let s = s.with_secret_refs(SecretRefPolicy::none().allow_dir(&dir));
    let created = s.create(r, "alice").await.unwrap();
    assert_eq!(
        created.events.unwrap().key,
        Some(StoredSecret::Reference(format!("file:{}", file.display())))
    );
    let src = source(&s).await;
    let c = src.get(&t("acme"), "dingtalk").await.unwrap();
    assert_eq!(
        c.events.as_ref().unwrap().key.as_ref().unwrap().expose(),
        EVENT_KEY
    );

    // A damaged ciphertext: rejected at reload with an error naming tenant, platform and
    // field; the last good configuration stays.
    let [token_col, _, _] = event_columns(&s, "acme").await;
    let token_col = token_col.unwrap();
    let mut damaged = token_col.clone();
    let last = damaged.pop().unwrap();
    damaged.push(if last == '0' { '1' } else { '0' });
    raw(
        &s,
        format!("UPDATE unilogin_platform_config SET event_token = '{damaged}', revision = revision + 1 WHERE tenant_id = 'acme'"),
    )
    .await;
    let report = src.reload().await.unwrap();
    let e = report.rejected.first().expect("rejected");
    assert!(
        matches!(e, Error::Config { tenant: Some(t), platform: Some(p), field, .. }
            if t.as_str() == "acme" && p == "dingtalk" && field == "events.token"),
        "{e:?}"
    );
    assert!(!e.to_string().contains("event-token-value"), "{e}");
    let served = src.get(&t("acme"), "dingtalk").await.unwrap();
    assert_eq!(
        served
            .events
            .as_ref()
            .unwrap()
            .token
            .as_ref()
            .unwrap()
            .expose(),
        "event-token-value"
    );
    // Strict start-up refuses the row, as it refuses an undecryptable app secret.
    assert!(CachedSource::new_strict(s.clone()).await.is_err());

    // The app secret's ciphertext copied into the token column does not decrypt there.
    let app_secret = stored_secret(&s, "acme").await;
    raw(
        &s,
        format!("UPDATE unilogin_platform_config SET event_token = '{app_secret}', revision = revision + 1 WHERE tenant_id = 'acme'"),
    )
    .await;
    let report = src.reload().await.unwrap();
    let e = report.rejected.first().expect("rejected").to_string();
    assert!(
        e.contains("events.token") && e.contains("copied from another"),
        "{e}"
    );
    // A plain value written by hand is refused, not used.
    raw(
        &s,
        "UPDATE unilogin_platform_config SET event_token = 'plain-token', revision = revision + 1 WHERE tenant_id = 'acme'".into(),
    )
    .await;
    let e = src
        .reload()
        .await
        .unwrap()
        .rejected
        .first()
        .expect("rejected")
        .to_string();
    assert!(
        e.contains("events.token") && e.contains("plain secrets are never stored"),
        "{e}"
    );
    // A reference written by hand that the operator did not allow is never read.
    raw(
        &s,
        format!("UPDATE unilogin_platform_config SET event_token = '{token_col}', event_key = 'env:PATH', revision = revision + 1 WHERE tenant_id = 'acme'"),
    )
    .await;
    let e = src
        .reload()
        .await
        .unwrap()
        .rejected
        .first()
        .expect("rejected")
        .to_string();
    assert!(e.contains("events.key") && e.contains("not allowed"), "{e}");
    // Only the event token encrypted (the app secret and the key references), under a key
    // the reader does not have: refused naming the event token.
    let app_file = dir.join("app-secret");
    std::fs::write(&app_file, "app-secret-from-file\n").unwrap();
    raw(
        &s,
        format!(
            "UPDATE unilogin_platform_config SET app_secret = 'file:{}', event_key = 'file:{}', revision = revision + 1 WHERE tenant_id = 'acme'",
            app_file.display(),
            file.display()
        ),
    )
    .await;
    assert!(src.reload().await.unwrap().rejected.is_empty());
    let wrong = SqlConfigStore::connect(&url, cipher(&format!("k1:{}", key_b())))
        .await
        .unwrap()
        .with_secret_refs(SecretRefPolicy::none().allow_dir(&dir));
    let (_, report) = CachedSource::new(wrong).await.unwrap();
    let e = report.rejected.first().expect("rejected").to_string();
    assert!(
        e.contains("acme") && e.contains("events.token") && e.contains("wrong key"),
        "{e}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

macro_rules! suite {
    ($name:ident, $kind:expr) => {
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn migrations_up_from_empty() {
                super::migrations_up_from_empty($kind).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn migrations_up_from_0001() {
                super::migrations_up_from_0001($kind).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn crud() {
                super::crud($kind).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn session_scopes_round_trip() {
                super::session_scopes_round_trip($kind).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn session_scopes_bad_value() {
                super::session_scopes_bad_value($kind).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn reload_on_change() {
                super::reload_on_change($kind).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn invalid_change_rejected() {
                super::invalid_change_rejected($kind).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn encryption_round_trip() {
                super::encryption_round_trip($kind).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn permanent_code_round_trip() {
                super::permanent_code_round_trip($kind).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn wrong_key_clear_error() {
                super::wrong_key_clear_error($kind).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn tenant_isolation() {
                super::tenant_isolation($kind).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn reload_reads_only_changed_rows() {
                super::reload_reads_only_changed_rows($kind).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn audit_log() {
                super::audit_log($kind).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn references_need_the_allow_list() {
                super::references_need_the_allow_list($kind).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn event_credentials_round_trip() {
                super::event_credentials_round_trip($kind).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn event_credentials_refused() {
                super::event_credentials_refused($kind).await;
            }
        }
    };
}

suite!(sqlite, Kind::Sqlite);
suite!(postgres, Kind::Postgres);
suite!(mariadb, Kind::MariaDb);
