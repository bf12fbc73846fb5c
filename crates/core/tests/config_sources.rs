//! The configuration sources against a test platform registered here (`test-strict`: its
//! `build` requires `corp_id` and checks `options.region`):
//! - `problems` lists every problem of an entry, and `CachedSource::new_checked` every problem
//!   of every entry, each naming tenant, platform and field;
//! - identical mapping rules are compiled once and shared by every configuration using them;
//! - a watcher reloads when the loader's version changes (and only then), on a trigger, and
//!   reports each reload; its status counts failures and rejected entries.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use unilogin_core::config::{
    CachedSource, ConfigSource as _, OnReload, PlatformConfig, YamlText, interned_count,
    mapping_rules,
};
use unilogin_core::platform::{AuthorizeRequest, Base, Identity, InClient, Platform, WebCallback};
use unilogin_core::registry::{PlatformContext, PlatformRegistration, Registry};
use unilogin_core::token_cache::TokenKey;
use unilogin_core::{AccessToken, Error, PlatformName, Result, TenantId};
use url::Url;

const STRICT: &str = "test-strict";

#[derive(Debug)]
struct Strict {
    base: Base,
}

fn build(ctx: PlatformContext<'_>) -> Result<Arc<dyn Platform>> {
    ctx.config.require_corp_id()?;
    match ctx.config.option_str("region")? {
        None | Some("north" | "south") => {}
        Some(other) => {
            return Err(ctx
                .config
                .error("options.region", format!("`{other}` is not north or south")));
        }
    }
    Ok(Arc::new(Strict {
        base: Base::new(&ctx, &[("api", "https://api.example/")])?,
    }))
}

inventory::submit! {
    PlatformRegistration {
        name: STRICT,
        description: "test platform with required fields",
        default_rules: "test-strict:\n  user_id: { path: \"$.sub\", required: true }\n  name: \"$.name\"\n",
        user_agent_markers: &[],
        in_client: InClient::None,
        build,
        events: None,
    }
}

#[async_trait]
impl Platform for Strict {
    fn base(&self) -> &Base {
        &self.base
    }

    fn token_key(&self) -> Option<TokenKey> {
        None
    }

    async fn exchange_web_code(
        &self,
        _: Option<&AccessToken>,
        _: &WebCallback<'_>,
    ) -> Result<Identity> {
        Err(Error::Internal("not used".into()))
    }

    async fn user_detail(
        &self,
        _: Option<&AccessToken>,
        _: &Identity,
    ) -> Result<serde_json::Value> {
        Err(Error::Internal("not used".into()))
    }

    async fn authorize_url(&self, _: &AuthorizeRequest<'_>) -> Result<Url> {
        self.base.url("api", "authorize")
    }
}

fn cfg(body: serde_json::Value) -> PlatformConfig {
    let mut v = serde_json::json!({ "tenant": "acme", "platform": STRICT, "app_key": "k", "app_secret": "s" });
    for (k, val) in body.as_object().unwrap() {
        v[k] = val.clone();
    }
    serde_json::from_value(v).unwrap()
}

#[test]
fn problems_lists_every_generic_problem_and_the_mapping_at_once() {
    let c = cfg(serde_json::json!({
        "corp_id": "corp",
        "hosts": { "api": "https://api.example/?t=1" },
        "redirect_uris": ["http://evil.example/cb", "https://ok.example/cb", "https://ok.example/cb"],
        "mapping": { "name": "$.name[" },
    }));
    let fields: Vec<String> = c
        .problems()
        .into_iter()
        .map(|e| match e {
            Error::Config {
                tenant,
                platform,
                field,
                ..
            } => {
                assert_eq!(tenant.unwrap().as_str(), "acme");
                assert_eq!(platform.as_deref(), Some(STRICT));
                field
            }
            other => panic!("{other}"),
        })
        .collect();
    assert_eq!(
        fields,
        [
            "hosts.api",
            "redirect_uris[0]",
            "redirect_uris[2]",
            "mapping.test-strict.name"
        ]
    );
    // With the generic checks passing, the platform's own `build` is asked.
    let e = cfg(serde_json::json!({}))
        .validate()
        .unwrap_err()
        .to_string();
    assert!(e.contains("corp_id"), "{e}");
    assert!(
        cfg(serde_json::json!({ "corp_id": "c" }))
            .problems()
            .is_empty()
    );
}

#[tokio::test]
async fn new_checked_reports_every_problem_of_every_entry() {
    let yaml = format!(
        "tenants:\n\
         \x20 one: {{ {STRICT}: {{ app_key: k, app_secret: s }} }}\n\
         \x20 two: {{ {STRICT}: {{ app_key: k, app_secret: s, corp_id: c, options: {{ region: mars }} }} }}\n\
         \x20 three: {{ {STRICT}: {{ app_key: k, app_secret: s, corp_id: c, redirect_uris: ['http://x.example/', 'https://y.example/#f'] }} }}\n\
         \x20 four: {{ {STRICT}: {{ app_key: k }} }}\n\
         \x20 fine: {{ {STRICT}: {{ app_key: k, app_secret: s, corp_id: c }} }}\n"
    );
    let Err(problems) = CachedSource::new_checked(YamlText::new(yaml)).await else {
        panic!("invalid entries must be refused");
    };
    let text = problems.to_string();
    assert!(text.starts_with("5 configuration problems:"), "{text}");
    for (tenant, field) in [
        ("one", "corp_id"),
        ("two", "options.region"),
        ("three", "redirect_uris[0]"),
        ("three", "redirect_uris[1]"),
        ("four", "app_secret"),
    ] {
        assert!(
            text.lines()
                .any(|l| l.contains(&format!("`{tenant}`")) && l.contains(field)),
            "{tenant}/{field} missing in:\n{text}"
        );
    }
    assert!(!text.contains("`fine`"), "{text}");
    // The whole document unreadable: one problem, and nothing served.
    let Err(problems) = CachedSource::new_checked(YamlText::new("tenants: [")).await else {
        panic!();
    };
    assert_eq!(problems.0.len(), 1, "{problems}");
}

#[test]
fn identical_mapping_rules_are_compiled_once_and_shared() {
    let registration = Registry::get(STRICT).unwrap();
    let overrides = serde_json::json!({ "name": "$.full_name", "email": "$.mail" });
    let before = interned_count();
    let a = mapping_rules(registration, Some(&overrides)).unwrap();
    for _ in 0..100 {
        mapping_rules(registration, Some(&overrides)).unwrap();
    }
    assert_eq!(
        interned_count(),
        before + 1,
        "one compiled copy for 101 uses"
    );
    let doc = serde_json::json!({ "sub": "u1", "full_name": "Zhang San", "mail": "z@example.com" });
    let tenant = TenantId::new("acme").unwrap();
    let profile = a
        .map(&PlatformName::new(STRICT).unwrap(), &tenant, &doc)
        .unwrap();
    assert_eq!(profile.name.as_deref(), Some("Zhang San"));
    // Other overrides are another entry; the defaults are never interned per tenant.
    mapping_rules(registration, Some(&serde_json::json!({ "name": "$.n" }))).unwrap();
    mapping_rules(registration, None).unwrap();
    assert_eq!(interned_count(), before + 2);
    // An invalid override is an error, never cached.
    assert!(mapping_rules(registration, Some(&serde_json::json!({ "name": "$.n[" }))).is_err());
    assert_eq!(interned_count(), before + 2);
}

#[tokio::test]
async fn the_watcher_reloads_when_the_version_changes_or_on_a_trigger() {
    let entry = |corp: &str| {
        format!(
            "tenants:\n  acme: {{ {STRICT}: {{ app_key: k, app_secret: s, corp_id: {corp} }} }}\n"
        )
    };
    let text = YamlText::new(entry("c1"));
    let source = Arc::new(CachedSource::new_checked(text.clone()).await.unwrap());
    let seen = Arc::new(AtomicUsize::new(0));
    let counter = seen.clone();
    let on_reload: OnReload = Arc::new(move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
    });
    let trigger = Arc::new(tokio::sync::Notify::new());
    let _watch = source
        .spawn_watcher(
            Duration::from_millis(20),
            Some(trigger.clone()),
            Some(on_reload),
        )
        .unwrap();
    let tenant = TenantId::new("acme").unwrap();
    let corp = || async {
        source
            .get(&tenant, STRICT)
            .await
            .unwrap()
            .corp_id
            .clone()
            .unwrap()
    };

    // No change: no reload, however many ticks.
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(seen.load(Ordering::SeqCst), 0);
    assert_eq!(source.status().reloads, 1);

    text.set(entry("c2"));
    wait(|| async { corp().await == "c2" }).await;
    assert_eq!(seen.load(Ordering::SeqCst), 1);

    // A trigger reloads without a version change.
    trigger.notify_one();
    wait(|| async { seen.load(Ordering::SeqCst) == 2 }).await;

    // A broken document keeps everything and is counted; an invalid entry is rejected.
    text.set("tenants: [");
    wait(|| async { source.status().last_error.is_some() }).await;
    assert_eq!(corp().await, "c2");
    assert!(source.status().failures >= 1 && !source.status().is_clean());
    text.set(format!(
        "tenants:\n  acme: {{ {STRICT}: {{ app_key: k, app_secret: s, corp_id: c3, options: {{ region: mars }} }} }}\n"
    ));
    wait(|| async { source.status().rejected == 1 }).await;
    let status = source.status();
    assert!(status.last_error.is_none());
    assert!(
        status.rejected_errors[0]
            .to_string()
            .contains("options.region")
    );
    assert_eq!(corp().await, "c2", "the last good configuration stays");
    assert_eq!(status.entries, 1);
}

async fn wait<F, Fut>(check: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..200 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("not within 2 s");
}

#[tokio::test]
async fn tenants_with_the_same_hosts_mapping_and_scopes_share_one_copy() {
    let entry = "{ app_key: k, app_secret: s, corp_id: c, hosts: { api: 'https://api.internal.example/' }, mapping: { name: '$.display' }, session_scopes: { default: [user:read] } }";
    let yaml = format!(
        "tenants:\n  a: {{ {STRICT}: {entry} }}\n  b: {{ {STRICT}: {entry} }}\n  c: {{ {STRICT}: {{ app_key: k, app_secret: s, corp_id: c, hosts: {{ api: 'https://other.example/' }} }} }}\n"
    );
    let source = CachedSource::new_checked(YamlText::new(yaml))
        .await
        .unwrap();
    let get = |t: &str| {
        let t = TenantId::new(t).unwrap();
        let s = &source;
        async move { s.get(&t, STRICT).await.unwrap() }
    };
    let (a, b, c) = (get("a").await, get("b").await, get("c").await);
    assert!(Arc::ptr_eq(&a.hosts, &b.hosts));
    assert!(Arc::ptr_eq(
        a.mapping.as_ref().unwrap(),
        b.mapping.as_ref().unwrap()
    ));
    assert!(Arc::ptr_eq(
        a.session_scopes.as_ref().unwrap(),
        b.session_scopes.as_ref().unwrap()
    ));
    assert!(!Arc::ptr_eq(&a.hosts, &c.hosts));
    assert_eq!(c.hosts["api"].as_str(), "https://other.example/");
}
