//! Every YAML block of `docs/gateway.md` is read as written: a tenants document (top-level key
//! `tenants`) is parsed by the library's YAML source and every entry validates against the
//! platforms of this binary (its secret references replaced by values: resolving them is
//! `config_docs.rs`'s part); any other block is a gateway configuration, merged over the
//! defaults and validated.

mod support;

use unilogin::config::parse_yaml;
use unilogin_gateway::GatewayConfig;

/// The block with `env:` / `file:` references replaced by a literal.
fn without_secret_refs(block: &str) -> String {
    block
        .lines()
        .map(|l| match l.find("\"env:").or_else(|| l.find("\"file:")) {
            Some(i) => {
                let end = l[i + 1..].find('"').map_or(l.len(), |j| i + j + 2);
                format!("{}\"docs-example-secret\"{}", &l[..i], &l[end..])
            }
            None => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn every_yaml_block_of_the_gateway_docs_is_valid() {
    let blocks = support::documented_yaml();
    assert!(blocks.len() >= 3, "{blocks:?}");
    let (mut configs, mut tenants) = (0, 0);
    for block in &blocks {
        if support::is_tenants_document(block) {
            let entries = parse_yaml(&without_secret_refs(block), None)
                .unwrap_or_else(|e| panic!("{e}\n{block}"));
            for entry in entries {
                entry
                    .config
                    .and_then(|c| c.validate())
                    .unwrap_or_else(|e| panic!("{e}\n{block}"));
                tenants += 1;
            }
        } else {
            GatewayConfig::from_yaml(block).unwrap_or_else(|e| panic!("{e}\n{block}"));
            configs += 1;
        }
    }
    assert_eq!((configs, tenants), (2, 2));
    let oidc = support::documented_tenant("custom-oauth");
    assert!(oidc["session_scopes"].is_object() && oidc["options"]["scopes"].is_array());
    // The main example shows `h5.sdk_urls`; the SQL example the admin API.
    let main = GatewayConfig::from_yaml(&blocks[0]).unwrap();
    assert!(!main.h5.sdk_urls.is_empty() && main.tenants_file.is_some());
    let sql = blocks
        .iter()
        .filter(|b| !support::is_tenants_document(b))
        .map(|b| GatewayConfig::from_yaml(b).unwrap())
        .find(|c| c.tenants_database.url.is_some())
        .expect("an example with tenants_database");
    assert!(sql.admin.enabled && sql.admin.tokens.len() == 2);
}

/// `docs/admin-api.md` describes the admin API the gateway serves: its OpenAPI block parses,
/// lists exactly the routes of `unilogin_gateway::admin::PATHS`, and its configuration example loads.
#[test]
fn the_admin_api_description_matches_the_routes() {
    let blocks = support::documented_yaml_of("admin-api.md");
    let config = GatewayConfig::from_yaml(&blocks[0]).unwrap_or_else(|e| panic!("{e}"));
    assert!(config.admin.enabled && config.admin.tokens.len() == 2);
    let openapi: serde_json::Value = blocks
        .iter()
        .filter_map(|b| serde_saphyr::from_str::<serde_json::Value>(b).ok())
        .find(|v| v.get("openapi").is_some())
        .expect("an OpenAPI block");
    let mut paths: Vec<&str> = openapi["paths"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    paths.sort_unstable();
    let mut served = unilogin_gateway::admin::PATHS.to_vec();
    served.sort_unstable();
    assert_eq!(paths, served);
    let methods: Vec<&str> = openapi["paths"]["/tenants/{tenant}/{platform}"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .filter(|k| *k != "parameters")
        .collect();
    assert_eq!(methods, ["get", "post", "patch", "delete"]);
}
