//! The documentation's tenant configuration works as written: every tenants document in
//! README.md, docs/ and docs/platforms/ (a fenced `yaml` block whose top-level key is
//! `tenants`) is copied into a tenants file, its `env:` secrets set for the process and its
//! `file:` secrets created next to it, and
//! - `unilogin-gateway check-config` accepts it (exit 0), and
//! - the shipped gateway starts on it, reports ready, and serves every entry: a login started
//!   for each (tenant, platform) is never refused as unknown, unconfigured or misconfigured.

mod config_support;

use std::path::Path;
use std::time::Duration;

use config_support::{Process, TempDir, client, free_port, run_binary};
use serde_json::Value;

fn documents() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files = vec![root.join("README.md")];
    for dir in [root.join("docs"), root.join("docs/platforms")] {
        let mut md: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "md"))
            .collect();
        md.sort();
        files.extend(md);
    }
    let mut out = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        for (i, block) in text.split("```yaml\n").skip(1).enumerate() {
            let block = block.split("```").next().unwrap_or_default();
            let doc: Value = serde_saphyr::from_str(block).unwrap_or(Value::Null);
            if doc.get("tenants").is_some() {
                out.push((format!("{name} block {}", i + 1), block.to_string()));
            }
        }
    }
    out
}

/// The names after `env:` and the paths after `file:` in a block.
fn references(block: &str) -> (Vec<String>, Vec<String>) {
    let take = |prefix: &str| -> Vec<String> {
        block
            .match_indices(prefix)
            .map(|(i, _)| {
                block[i + prefix.len()..]
                    .chars()
                    .take_while(|c| !matches!(c, '"' | '\'' | ' ' | ',' | '}' | '\n'))
                    .collect::<String>()
            })
            .filter(|s| !s.is_empty())
            .collect()
    };
    (take("env:"), take("file:"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_tenants_document_starts_the_gateway_as_written() {
    let docs = documents();
    assert!(
        docs.len() >= 8,
        "only {} tenants documents found",
        docs.len()
    );
    let http = client();
    for (at, block) in docs {
        let dir = TempDir::new("docs");
        dir.write("tenants.yaml", &block);
        let (env_names, files) = references(&block);
        let env: Vec<(String, String)> = env_names
            .iter()
            .map(|n| (n.clone(), format!("documented-secret-for-{n}")))
            .collect();
        for f in &files {
            dir.write(f, "documented-secret-from-a-file\n");
        }
        let port = free_port();
        let config = dir.write(
            "gateway.yaml",
            &format!(
                "listen: '127.0.0.1:{port}'\npublic_url: 'http://127.0.0.1:{port}/'\n\
                 tenants_file: tenants.yaml\ncookies: {{secure: false}}\n\
                 limits: {{upstream_connect_timeout_ms: 500, upstream_request_timeout_ms: 1000}}\n"
            ),
        );
        let env_refs: Vec<(&str, &str)> =
            env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let config_arg = config.display().to_string();
        let (code, out) = run_binary(&["check-config", "--config", &config_arg], &env_refs);
        assert_eq!(code, 0, "{at}: check-config refused it:\n{out}\n{block}");
        assert!(out.contains("configuration ok"), "{at}: {out}");

        let gw = Process::start(&config, port, &env_refs, dir.join("gateway.log")).await;
        let ready = http.get(gw.url("readyz")).send().await.unwrap();
        assert_eq!(ready.status(), 200, "{at}: {}", gw.log_text());
        let doc: Value = serde_saphyr::from_str(&block).unwrap();
        let mut entries = 0;
        for (tenant, platforms) in doc["tenants"].as_object().unwrap() {
            for (platform, entry) in platforms.as_object().unwrap() {
                entries += 1;
                let mut url =
                    url::Url::parse(&gw.url(&format!("auth/{tenant}/{platform}/login"))).unwrap();
                // Without redirect URIs no return URL is allowed: the refusal proves the entry
                // was resolved and checked (an unknown entry answers 404 first).
                let first = entry["redirect_uris"].get(0).and_then(Value::as_str);
                url.query_pairs_mut()
                    .append_pair("return_to", first.unwrap_or("https://elsewhere.example/"));
                let r = http
                    .get(url.as_str())
                    .header("user-agent", "Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0")
                    .timeout(Duration::from_secs(10))
                    .send()
                    .await
                    .unwrap();
                let status = r.status().as_u16();
                let body = r.text().await.unwrap_or_default();
                let disabled = entry["enabled"] == Value::Bool(false);
                if disabled {
                    assert_eq!(status, 403, "{at}: {tenant}/{platform}: {body}");
                    continue;
                }
                // A store app's own entry (docs/store-apps.md) logs no one in, by design.
                if entry["mode"] == "isv" && entry.get("corp_id").is_none() {
                    assert!(
                        status == 400 && body.contains("unsupported") && body.contains("own entry"),
                        "{at}: {tenant}/{platform} answered {status} {body}"
                    );
                    continue;
                }
                if first.is_none() {
                    assert!(
                        status == 400 && body.contains("redirect_not_allowed"),
                        "{at}: {tenant}/{platform} answered {status} {body}"
                    );
                    continue;
                }
                for refused in [
                    "unknown_tenant",
                    "unknown_platform",
                    "platform_not_configured",
                    "\"config\"",
                    "redirect_not_allowed",
                ] {
                    assert!(
                        !body.contains(refused),
                        "{at}: {tenant}/{platform} answered {status} {body}"
                    );
                }
                assert!(
                    status == 303 || status == 200 || status == 502 || status == 504,
                    "{at}: {tenant}/{platform} answered {status} {body}"
                );
            }
        }
        assert!(entries > 0, "{at}");
        // Nothing of the secrets in the log.
        let log = gw.log_text();
        for (_, v) in &env {
            assert!(!log.contains(v.as_str()), "{at}: a secret in the log");
        }
        assert!(!log.contains("documented-secret-from-a-file"), "{at}");
    }
}
