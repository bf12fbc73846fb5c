//! Every YAML block of `docs/gateway.md` is read as written: a mapping is a gateway
//! configuration (merged over the defaults, validated), a list is a tenants file whose entries
//! validate against the platforms of this binary.

mod support;

use unilogin_gateway::GatewayConfig;
use unilogin_gateway::config::parse_tenants;

#[test]
fn every_yaml_block_of_the_gateway_docs_is_valid() {
    let blocks = support::documented_yaml();
    assert!(blocks.len() >= 2, "{blocks:?}");
    let (mut configs, mut tenants) = (0, 0);
    for block in &blocks {
        if block.trim_start().starts_with('-') {
            for t in parse_tenants(block).unwrap_or_else(|e| panic!("{e}\n{block}")) {
                t.validate().unwrap_or_else(|e| panic!("{e}\n{block}"));
                tenants += 1;
            }
        } else {
            let c = GatewayConfig::from_yaml(block).unwrap_or_else(|e| panic!("{e}\n{block}"));
            assert!(!c.h5.sdk_urls.is_empty(), "the example shows `h5.sdk_urls`");
            configs += 1;
        }
    }
    assert_eq!((configs, tenants), (1, 2));
    let oidc = support::documented_tenant("custom-oauth");
    assert!(oidc["session_scopes"].is_object() && oidc["options"]["scopes"].is_array());
}
