//! Tests of validation, the YAML schema and the cached, reloading source. The registry is empty
//! in core's unit tests, so only the generic checks run here; platform-specific validation is
//! tested from crates that link a platform.

use std::sync::Arc;

use super::*;

fn t(s: &str) -> TenantId {
    TenantId::new(s).unwrap()
}

const BASE: &str = r#"
tenants:
  acme:
    dingtalk:
      app_key: dingacme
      app_secret: "plain:s3cret-acme"
      corp_id: corp-acme
      agent_id: 1000001
      redirect_uris: ["https://app.acme.example/after-login"]
      hosts: { oapi: "https://oapi.internal.example" }
      mapping: { employee_no: "$.result.job_number" }
      options: { app_token_api: oapi }
  globex:
    dingtalk:
      app_key: dingglobex
      app_secret: s3cret-globex
"#;

async fn source(text: &str) -> (YamlText, CachedSource<YamlText>, ReloadReport) {
    let loader = YamlText::new(text);
    let (src, report) = CachedSource::new(loader.clone()).await.unwrap();
    (loader, src, report)
}

#[tokio::test]
async fn yaml_schema_loads_every_field() {
    let (_, src, report) = source(BASE).await;
    assert_eq!(report.added.len(), 2);
    assert!(report.rejected.is_empty(), "{report:?}");
    let c = src.get(&t("acme"), "DingTalk").await.unwrap();
    assert_eq!(c.app_key.as_str(), "dingacme");
    assert_eq!(c.app_secret.expose(), "s3cret-acme");
    assert_eq!(c.corp_id.as_deref(), Some("corp-acme"));
    assert_eq!(c.agent_id.as_deref(), Some("1000001"));
    assert_eq!(c.hosts["oapi"].as_str(), "https://oapi.internal.example/");
    assert_eq!(c.options["app_token_api"], "oapi");
    assert!(c.mapping.is_some() && c.enabled);
    assert_eq!(src.list().await.unwrap().len(), 2);
    let e = src.get(&t("acme"), "wecom").await.unwrap_err();
    assert!(matches!(e, Error::PlatformNotConfigured { .. }), "{e}");
    let e = src.get(&t("initech"), "dingtalk").await.unwrap_err();
    assert!(matches!(e, Error::UnknownTenant { .. }), "{e}");
}

#[tokio::test]
async fn field_errors_name_tenant_platform_and_field_without_secrets() {
    for (body, field) in [
        ("{ app_key: k }", "app_secret"),
        ("{ app_secret: s }", "app_key"),
        (
            "{ app_key: k, app_secret: s, app_secert: typo }",
            "app_secert",
        ),
        ("{ app_key: k, app_secret: 12345678 }", "app_secret"),
        (
            "{ app_key: k, app_secret: s, hosts: { api: not-a-url } }",
            "hosts.api",
        ),
        (
            "{ app_key: k, app_secret: s, hosts: { api: \"ftp://x.example\" } }",
            "hosts.api",
        ),
        (
            "{ app_key: k, app_secret: s, hosts: { api: \"https://x.example/?token=1\" } }",
            "hosts.api",
        ),
        (
            "{ app_key: k, app_secret: s, redirect_uris: [\"https://a.example/x#f\"] }",
            "redirect_uris[0]",
        ),
        (
            "{ app_key: k, app_secret: s, redirect_uris: [\"https://a.example/x\", \"https://a.example/x\"] }",
            "redirect_uris[1]",
        ),
        ("{ app_key: k, app_secret: s, corp_id: \"  \" }", "corp_id"),
        (
            "{ app_key: k, app_secret: \"env:UNILOGIN_TEST_SURELY_UNSET_1\" }",
            "app_secret",
        ),
        ("{ app_key: k, app_secret: s, options: [1] }", "options"),
    ] {
        let text = format!("tenants:\n  acme:\n    dingtalk: {body}\n");
        let (_, src, report) = source(&text).await;
        assert_eq!(report.rejected.len(), 1, "{body}");
        let e = src.get(&t("acme"), "dingtalk").await.unwrap_err();
        let Error::Config {
            tenant,
            platform,
            field: f,
            ..
        } = &e
        else {
            panic!("{body}: {e}")
        };
        assert_eq!(tenant.as_ref().unwrap().as_str(), "acme", "{body}");
        assert_eq!(platform.as_deref(), Some("dingtalk"), "{body}");
        assert_eq!(f, field, "{body}: {e}");
        assert!(!e.to_string().contains("12345678"), "{e}");
    }
}

#[tokio::test]
async fn only_a_public_client_may_leave_out_the_secret() {
    let text = "tenants:\n  acme:\n    spa: { app_key: k, options: { token_auth_method: none } }\n    \
                other: { app_key: k, options: { token_auth_method: client_secret_post } }\n";
    let (_, src, report) = source(text).await;
    assert_eq!(report.rejected.len(), 1);
    let public = src.get(&t("acme"), "spa").await.unwrap();
    assert!(public.is_public_client() && public.app_secret.is_empty());
    let e = src.get(&t("acme"), "other").await.unwrap_err();
    let text = e.to_string();
    assert!(
        text.contains("acme") && text.contains("app_secret") && text.contains("missing"),
        "{text}"
    );
    // Deserialized directly (StaticConfig), the same rule holds at validation.
    let confidential: PlatformConfig = serde_json::from_value(serde_json::json!({
        "tenant": "acme", "platform": "other", "app_key": "k",
        "options": { "token_auth_method": "client_secret_basic" }
    }))
    .unwrap();
    let text = confidential.validate().unwrap_err().to_string();
    assert!(
        text.contains("acme") && text.contains("app_secret"),
        "{text}"
    );
}

#[tokio::test]
async fn whole_document_errors_fail_the_load() {
    for text in [
        "tenants: [1, 2]",
        "tenant:\n  acme: {}",
        "tenants:\n  \"bad tenant\":\n    dingtalk: { app_key: k, app_secret: s }",
        "tenants:\n  acme:\n    DingTalk: { app_key: k, app_secret: s }\n    dingtalk: { app_key: k, app_secret: s }",
        "tenants: {acme: [unclosed",
    ] {
        let r = CachedSource::new(YamlText::new(text)).await;
        assert!(r.is_err(), "{text}");
    }
    let (_, src, report) = source("").await;
    assert!(!report.has_changes());
    assert!(src.list().await.unwrap().is_empty());
}

#[tokio::test]
async fn reload_applies_valid_changes_and_keeps_last_good_on_invalid_ones() {
    let (loader, src, _) = source(BASE).await;
    let first = src.get(&t("acme"), "dingtalk").await.unwrap();
    let globex = src.get(&t("globex"), "dingtalk").await.unwrap();

    // Unchanged: same Arc.
    let report = src.reload().await.unwrap();
    assert_eq!(report.unchanged, 2);
    assert!(Arc::ptr_eq(
        &first,
        &src.get(&t("acme"), "dingtalk").await.unwrap()
    ));

    // Valid change: new Arc for acme, globex untouched.
    loader.set(BASE.replace("corp-acme", "corp-acme-2"));
    let report = src.reload().await.unwrap();
    assert_eq!(
        report.changed,
        vec![(t("acme"), PlatformName::new("dingtalk").unwrap())]
    );
    let second = src.get(&t("acme"), "dingtalk").await.unwrap();
    assert!(!Arc::ptr_eq(&first, &second));
    assert_eq!(second.corp_id.as_deref(), Some("corp-acme-2"));
    assert!(Arc::ptr_eq(
        &globex,
        &src.get(&t("globex"), "dingtalk").await.unwrap()
    ));

    // Invalid change of one entry: rejected, last good stays; other entries still update.
    loader.set(
        BASE.replace("corp-acme", "corp-acme-2")
            .replace(
                "https://app.acme.example/after-login",
                "http://evil.example/",
            )
            .replace("s3cret-globex", "s3cret-globex-2"),
    );
    let report = src.reload().await.unwrap();
    assert_eq!(report.rejected.len(), 1, "{report:?}");
    assert!(report.rejected[0].to_string().contains("redirect_uris[0]"));
    assert_eq!(report.changed.len(), 1);
    assert!(Arc::ptr_eq(
        &second,
        &src.get(&t("acme"), "dingtalk").await.unwrap()
    ));
    assert_eq!(
        src.get(&t("globex"), "dingtalk")
            .await
            .unwrap()
            .app_secret
            .expose(),
        "s3cret-globex-2"
    );

    // Broken document: nothing changes, the error is returned.
    loader.set("tenants: {acme: [unclosed");
    assert!(src.reload().await.is_err());
    assert!(Arc::ptr_eq(
        &second,
        &src.get(&t("acme"), "dingtalk").await.unwrap()
    ));

    // Disabling takes effect even together with an invalid change.
    loader.set(BASE.replace(
        "      app_key: dingacme\n",
        "      enabled: false\n      app_key: dingacme\n      hosts_typo: 1\n",
    ));
    let report = src.reload().await.unwrap();
    assert_eq!(report.rejected.len(), 1, "{report:?}");
    let disabled = src.get(&t("acme"), "dingtalk").await.unwrap();
    assert!(!disabled.enabled);
    assert_eq!(
        disabled.corp_id.as_deref(),
        Some("corp-acme-2"),
        "last good content kept"
    );

    // Removed entries stop serving.
    loader.set("tenants:\n  globex:\n    dingtalk: { app_key: dingglobex, app_secret: s }\n");
    let report = src.reload().await.unwrap();
    assert_eq!(report.removed.len(), 1);
    assert!(matches!(
        src.get(&t("acme"), "dingtalk").await.unwrap_err(),
        Error::UnknownTenant { .. }
    ));
}

#[tokio::test]
async fn disabled_entry_without_a_good_version_says_disabled() {
    let text = "tenants:\n  acme:\n    dingtalk: { enabled: false, app_key: k }\n";
    let (_, src, _) = source(text).await;
    let e = src.get(&t("acme"), "dingtalk").await.unwrap_err();
    assert!(matches!(e, Error::Disabled { .. }), "{e}");
}

#[tokio::test]
async fn strict_start_refuses_invalid_entries() {
    let text = "tenants:\n  acme:\n    dingtalk: { app_key: k }\n";
    let e = CachedSource::new_strict(YamlText::new(text))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("app_secret"), "{e}");
    assert!(CachedSource::new_strict(YamlText::new(BASE)).await.is_ok());
}

#[tokio::test]
async fn yaml_file_reload_picks_up_edits_and_rotated_secret_files() {
    let dir = std::env::temp_dir().join(format!("unilogin-yaml-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("secrets")).unwrap();
    std::fs::write(dir.join("secrets/acme"), "first\n").unwrap();
    let path = dir.join("tenants.yaml");
    let yaml =
        "tenants:\n  acme:\n    dingtalk: { app_key: k, app_secret: \"file:secrets/acme\" }\n";
    std::fs::write(&path, yaml).unwrap();
    let (src, _) = CachedSource::new(YamlFile::new(&path)).await.unwrap();
    let src = Arc::new(src);
    assert_eq!(
        src.get(&t("acme"), "dingtalk")
            .await
            .unwrap()
            .app_secret
            .expose(),
        "first"
    );
    // Rotating the secret file alone is picked up by the periodic reloader.
    let _reloader = src
        .spawn_reloader(std::time::Duration::from_millis(20))
        .unwrap();
    std::fs::write(dir.join("secrets/acme"), "second\n").unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while src
        .get(&t("acme"), "dingtalk")
        .await
        .unwrap()
        .app_secret
        .expose()
        != "second"
    {
        assert!(
            std::time::Instant::now() < deadline,
            "rotation not picked up"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    // A missing file is a whole-load failure: the last good configuration stays.
    std::fs::remove_file(&path).unwrap();
    assert!(src.reload().await.is_err());
    assert!(src.get(&t("acme"), "dingtalk").await.is_ok());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn arc_of_a_source_is_a_source() {
    let shared: Arc<dyn ConfigSource> = Arc::new(StaticConfig::new(vec![]));
    let wrapped: Arc<Arc<dyn ConfigSource>> = Arc::new(shared);
    assert!(wrapped.list().await.unwrap().is_empty());
    assert!(!wrapped.reload().await.unwrap().has_changes());
}
