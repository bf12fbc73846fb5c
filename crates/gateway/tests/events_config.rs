//! Event and webhook configuration: per-tenant event credentials resolve like `app_secret`
//! (`env:` / `file:` references), a bad AES key is a load-time error naming the tenant and the
//! field, secrets never show in `Debug`, and the webhook's URL and secret are checked.

use unilogin::config::{PlatformConfig, parse_yaml};
use unilogin_gateway::GatewayConfig;

const AES: &str = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG";

fn entries(yaml: &str) -> Vec<unilogin::Result<PlatformConfig>> {
    parse_yaml(yaml, None)
        .unwrap()
        .into_iter()
        .map(|e| e.config)
        .collect()
}

fn one(events: &str) -> unilogin::Result<PlatformConfig> {
    let yaml = format!(
        "tenants:\n  acme:\n    dingtalk:\n      app_key: dingapp\n      app_secret: s3cret\n      corp_id: dingcorp\n      events: {events}\n"
    );
    let mut all = entries(&yaml);
    let cfg = all.remove(0)?;
    cfg.validate()?;
    Ok(cfg)
}

#[test]
fn event_credentials_resolve_references_and_default_the_receiver() {
    // A variable every test process has (this crate forbids `set_var`, which is unsafe).
    let from_env = std::env::var("PATH").expect("PATH is set");
    let dir = std::env::temp_dir().join(format!("unilogin-events-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let key_file = dir.join("aes");
    std::fs::write(&key_file, format!("{AES}\n")).unwrap();
    let cfg = one(&format!(
        "{{token: 'env:PATH', key: 'file:{}'}}",
        key_file.display()
    ))
    .unwrap();
    let events = cfg.events.as_ref().unwrap();
    assert_eq!(events.token.as_ref().unwrap().expose(), from_env);
    assert_eq!(events.key.as_ref().unwrap().expose(), AES);
    // DingTalk's owner key defaults to the app key.
    let creds = events.credentials(&cfg);
    assert_eq!(creds.receiver_id.as_deref(), Some("dingapp"));
    assert!(cfg.event_codec().unwrap().is_some());
    let debug = format!("{cfg:?}");
    assert!(
        !debug.contains(&from_env) && !debug.contains(AES),
        "{debug}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_bad_aes_key_is_a_load_error_naming_tenant_and_field() {
    let e = one("{token: tok, key: 'too-short'}")
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("acme") && e.contains("dingtalk") && e.contains("events.key"),
        "{e}"
    );
    assert!(!e.contains("too-short"), "{e}");
    let e = one("{key: '{AES}'}".replace("{AES}", AES).as_str())
        .unwrap_err()
        .to_string();
    assert!(e.contains("events.token"), "{e}");
    let e = one("{token: tok, key: x, colour: red}")
        .unwrap_err()
        .to_string();
    assert!(e.contains("events.colour"), "{e}");
    let e = one("{token: 'env:EVENTS_CONFIG_TEST_MISSING', key: x}")
        .unwrap_err()
        .to_string();
    assert!(e.contains("events.token"), "{e}");
}

#[test]
fn a_platform_without_events_refuses_an_events_section() {
    let yaml = "tenants:\n  acme:\n    custom-oauth:\n      mode: oidc\n      app_key: c\n      app_secret: s\n      options: {issuer: 'https://id.example'}\n      events: {token: t}\n";
    let cfg = entries(yaml).remove(0).unwrap();
    let problems: Vec<String> = cfg.problems().iter().map(ToString::to_string).collect();
    assert!(
        problems
            .iter()
            .any(|p| p.contains("field `events`") && p.contains("pushes no events")),
        "{problems:?}"
    );
}

#[test]
fn webhook_and_receiver_settings_are_checked() {
    let e = GatewayConfig::from_yaml("webhook: {url: 'http://app.example/hook', secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'}")
        .unwrap_err()
        .to_string();
    assert!(e.contains("webhook.url") && e.contains("https"), "{e}");
    let e = GatewayConfig::from_yaml("webhook: {url: 'https://app.example/hook'}")
        .unwrap_err()
        .to_string();
    assert!(e.contains("webhook.secret"), "{e}");
    let e = GatewayConfig::from_yaml("events: {window_secs: 300, dedupe_ttl_secs: 600}")
        .unwrap_err()
        .to_string();
    assert!(e.contains("events.dedupe_ttl_secs"), "{e}");
    let e = GatewayConfig::from_yaml("events: {max_body_bytes: 10000000}")
        .unwrap_err()
        .to_string();
    assert!(e.contains("events.max_body_bytes"), "{e}");
    let ok = GatewayConfig::from_yaml(
        "webhook: {url: 'http://127.0.0.1:9/hook', secret: 'hunter2-hunter2-hunter2', tenants: {acme: {url: 'https://acme.example/h', secret: 'env:X'}}}",
    )
    .unwrap();
    let debug = format!("{ok:?}");
    assert!(
        !debug.contains("hunter2") && !debug.contains("/hook"),
        "{debug}"
    );
    let e = GatewayConfig::from_yaml(
        "webhook: {tenants: {acme: {url: 'http://acme.example/h', secret: s}}}",
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("webhook.tenants.acme.url"), "{e}");
}

/// The fenced YAML blocks of docs/events.md, with `"env:…"` / `"file:…"` references replaced by
/// a literal (resolving them is `config_docs.rs`'s part).
fn events_doc_blocks() -> Vec<String> {
    let path = format!("{}/../../docs/events.md", env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(&path).unwrap();
    doc.split("```yaml\n")
        .skip(1)
        .filter_map(|b| b.split("```").next())
        .map(|block| {
            block
                .lines()
                .map(|l| match l.find("\"env:").or_else(|| l.find("\"file:")) {
                    Some(i) => {
                        let end = l[i + 1..].find('"').map_or(l.len(), |j| i + j + 2);
                        format!("{}\"docs-example-secret-value\"{}", &l[..i], &l[end..])
                    }
                    None => l.to_string(),
                })
                .collect::<Vec<_>>()
                .join("\n")
        })
        .collect()
}

#[test]
fn the_events_docs_yaml_loads_as_written() {
    let blocks = events_doc_blocks();
    let (mut tenants, mut gateway) = (0, 0);
    for block in &blocks {
        if block.trim_start().starts_with("tenants:") {
            for entry in parse_yaml(block, None).unwrap_or_else(|e| panic!("{e}\n{block}")) {
                let cfg = entry
                    .config
                    .and_then(|c| c.validate().map(|()| c))
                    .unwrap_or_else(|e| panic!("{e}\n{block}"));
                assert!(
                    cfg.event_codec().unwrap().is_some(),
                    "{}: no events",
                    cfg.platform
                );
                tenants += 1;
            }
        } else {
            let c = GatewayConfig::from_yaml(block).unwrap_or_else(|e| panic!("{e}\n{block}"));
            assert!(c.webhook.url.is_some() && c.webhook.tenants.contains_key("globex"));
            gateway += 1;
        }
    }
    assert_eq!((tenants, gateway), (3, 1), "{blocks:?}");
}
