//! Multi-tenant isolation end to end: two tenants, each with its own DingTalk app in its own
//! organisation, configured in the database and logging in through one `Sso` against the
//! DingTalk fake. Each login uses its own app's token; a code issued for one tenant's app is
//! refused for the other; rotating one tenant's secret evicts exactly that app's cached token.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;

use unilogin_core::config::{CachedSource, ConfigSource};
use unilogin_core::{AppKey, AppSecret, AuthCode, Error, PlatformName, Sso, TenantId};
use unilogin_sql::{ConfigPatch, NewConfig, SecretCipher, SecretInput, SqlConfigStore};
use unilogin_testkit::FakeUser;
use unilogin_testkit::dingtalk::{self, FakeApp, endpoints};

use unilogin_dingtalk as _;
use unilogin_testkit::FakePlatform as _;

fn t(s: &str) -> TenantId {
    TenantId::new(s).unwrap()
}

fn member(user_id: &str, corp: &str) -> FakeUser {
    let mut u = FakeUser::new(user_id).name(user_id).mobile("13800000000");
    u.org = Some(corp.to_string());
    u
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tenants_never_share_config_tokens_or_codes() {
    let fake = dingtalk::start().await;
    fake.add_app(FakeApp::new("app-a", "secret-a", "corp-a"));
    fake.add_app(FakeApp::new("app-b", "secret-b", "corp-b"));
    fake.add_user(member("alice", "corp-a"));
    fake.add_user(member("bob", "corp-b"));

    let url = common::fresh_database(common::Kind::Sqlite).await;
    let keys = format!("k1:{}", SecretCipher::generate_key_hex());
    let store = SqlConfigStore::connect(&url, SecretCipher::parse(&keys).unwrap())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    for (tenant, app, secret, corp) in [
        ("tenant-a", "app-a", "secret-a", "corp-a"),
        ("tenant-b", "app-b", "secret-b", "corp-b"),
    ] {
        let mut row = NewConfig::new(
            t(tenant),
            PlatformName::new("dingtalk").unwrap(),
            AppKey::new(app).unwrap(),
            SecretInput::Value(AppSecret::new(secret)),
        );
        row.corp_id = Some(corp.into());
        for host in ["oapi", "api", "login"] {
            row.hosts
                .insert(host.into(), fake.base_url().parse().unwrap());
        }
        row.redirect_uris = vec![format!("https://{tenant}.example/done")];
        store.create(row, "test").await.unwrap();
    }
    let (source, report) = CachedSource::new(store.clone()).await.unwrap();
    assert!(report.rejected.is_empty(), "{report:?}");
    let source = Arc::new(source);
    let sso = Sso::builder(source.clone()).build().unwrap();

    // Each tenant logs its own member in, each with its own app token (one token fetch each).
    let a = sso
        .login_with_code(
            &t("tenant-a"),
            "dingtalk",
            &AuthCode::new(fake.issue_h5_code("alice")),
        )
        .await
        .unwrap();
    assert_eq!(a.profile.user_id.as_deref(), Some("alice"));
    assert_eq!(a.profile.tenant.as_str(), "tenant-a");
    let b = sso
        .login_with_code(
            &t("tenant-b"),
            "dingtalk",
            &AuthCode::new(fake.issue_h5_code("bob")),
        )
        .await
        .unwrap();
    assert_eq!(b.profile.user_id.as_deref(), Some("bob"));
    assert_eq!(fake.calls(endpoints::GETTOKEN), 2);
    let key_a = sso
        .prepare(&t("tenant-a"), "dingtalk")
        .await
        .unwrap()
        .handler()
        .token_key();
    let key_b = sso
        .prepare(&t("tenant-b"), "dingtalk")
        .await
        .unwrap()
        .handler()
        .token_key();
    assert_ne!(key_a, key_b);

    // A code issued for tenant A's app (alice in corp-a) fails for tenant B — B's app token
    // belongs to corp-b — and stays usable by tenant A.
    let code = AuthCode::new(fake.issue_h5_code("alice"));
    let e = sso
        .login_with_code(&t("tenant-b"), "dingtalk", &code)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InvalidCode { .. }), "{e}");
    let again = sso
        .login_with_code(&t("tenant-a"), "dingtalk", &code)
        .await
        .unwrap();
    assert_eq!(again.profile.user_id.as_deref(), Some("alice"));
    // Return URLs are each tenant's own.
    assert!(
        sso.check_return_to(&t("tenant-a"), "dingtalk", "https://tenant-a.example/done")
            .await
            .is_ok()
    );
    assert!(
        sso.check_return_to(&t("tenant-b"), "dingtalk", "https://tenant-a.example/done")
            .await
            .is_err()
    );
    assert_eq!(
        fake.calls(endpoints::GETTOKEN),
        2,
        "tokens were reused, per app"
    );

    // Rotate tenant A's secret: A's cached token is evicted and fetched with the new secret;
    // B's token is untouched.
    fake.add_app(FakeApp::new("app-a", "secret-a-2", "corp-a"));
    store
        .update(
            &t("tenant-a"),
            &PlatformName::new("dingtalk").unwrap(),
            ConfigPatch {
                app_secret: Some(SecretInput::Value(AppSecret::new("secret-a-2"))),
                ..ConfigPatch::default()
            },
            "test",
        )
        .await
        .unwrap();
    assert_eq!(source.reload().await.unwrap().changed.len(), 1);
    sso.login_with_code(
        &t("tenant-a"),
        "dingtalk",
        &AuthCode::new(fake.issue_h5_code("alice")),
    )
    .await
    .unwrap();
    assert_eq!(
        fake.calls(endpoints::GETTOKEN),
        3,
        "A's token refetched after rotation"
    );
    sso.login_with_code(
        &t("tenant-b"),
        "dingtalk",
        &AuthCode::new(fake.issue_h5_code("bob")),
    )
    .await
    .unwrap();
    assert_eq!(fake.calls(endpoints::GETTOKEN), 3, "B's token still cached");

    // Disabling tenant A stops its new logins only.
    store
        .disable(
            &t("tenant-a"),
            &PlatformName::new("dingtalk").unwrap(),
            "test",
        )
        .await
        .unwrap();
    source.reload().await.unwrap();
    let e = sso
        .login_with_code(
            &t("tenant-a"),
            "dingtalk",
            &AuthCode::new(fake.issue_h5_code("alice")),
        )
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Disabled { .. }), "{e}");
    sso.login_with_code(
        &t("tenant-b"),
        "dingtalk",
        &AuthCode::new(fake.issue_h5_code("bob")),
    )
    .await
    .unwrap();
}
