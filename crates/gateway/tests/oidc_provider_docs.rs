//! `docs/oidc-provider.md` works as written: its gateway configuration (block 1) and its tenants
//! file with `oidc_clients` (block 2) are written to files exactly as shown — only the public URL
//! becomes this test's loopback address, the Redis URL a real `redis-server` of the test, the
//! secret reference a value, and the key file the test key — and the gateway started from them
//! serves the provider: discovery names the issuer, the JWKS the documented key id, the Grafana
//! client's authorization request goes to DingTalk's login, the public client without PKCE is
//! told `invalid_request`.

mod support;

use std::net::SocketAddr;

use serde_json::Value;
use tokio::net::TcpListener;
use unilogin_gateway::Gateway;
use unilogin_gateway::config::GatewayConfig;
use unilogin_testkit::redis_server::RedisServer;
use url::Url;

const DOC: &str = "oidc-provider.md";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_configuration_serves_the_provider() {
    let blocks = support::documented_yaml_of(DOC);
    assert!(
        blocks.len() >= 2,
        "the gateway configuration and the tenants file"
    );
    let (gateway_yaml, tenants_yaml) = (&blocks[0], &blocks[1]);
    assert!(gateway_yaml.contains("oidc_provider:"), "{gateway_yaml}");
    assert!(tenants_yaml.contains("oidc_clients:"), "{tenants_yaml}");

    let redis = RedisServer::start();
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let base = format!("http://{}/", listener.local_addr().unwrap());
    let dir = std::env::temp_dir().join(format!("unilogin-oidc-docs-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("keys")).unwrap();
    std::fs::copy(
        format!(
            "{}/../axum/tests/keys/rsa-pkcs8.pem",
            env!("CARGO_MANIFEST_DIR")
        ),
        dir.join("keys/rs256.pem"),
    )
    .unwrap();
    let gateway_yaml = gateway_yaml
        .replace("https://login.acme.example/", &base)
        .replace("redis://127.0.0.1:6379/0", &redis.url());
    std::fs::write(dir.join("gateway.yaml"), &gateway_yaml).unwrap();
    std::fs::write(
        dir.join("tenants.yaml"),
        tenants_yaml.replace("env:ACME_DINGTALK_SECRET", "the-dingtalk-app-secret"),
    )
    .unwrap();

    let mut config = GatewayConfig::from_file(&dir.join("gateway.yaml")).unwrap();
    config.cookies.secure = false;
    let gateway = Gateway::builder(config)
        .open()
        .await
        .unwrap_or_else(|p| panic!("{p}"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = gateway.clone();
    tokio::spawn(async move {
        let _ = server
            .serve(listener, async move {
                let _ = stopped.await;
            })
            .await;
    });
    let http = support::client();
    let issuer = base.trim_end_matches('/');

    let discovery: Value = http
        .get(format!("{issuer}/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(discovery["issuer"], issuer, "{discovery}");
    assert_eq!(
        discovery["authorization_endpoint"],
        format!("{issuer}/oidc/authorize")
    );
    let jwks: Value = http
        .get(discovery["jwks_uri"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        jwks["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| k["kid"] == "rs-2026-12" && k["kty"] == "RSA"),
        "{jwks}"
    );

    // Grafana's authorization request goes to DingTalk's login (the tenant's only platform).
    let mut authorize = Url::parse(&format!("{issuer}/oidc/authorize")).unwrap();
    authorize
        .query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", "grafana")
        .append_pair(
            "redirect_uri",
            "https://grafana.acme.example/login/generic_oauth",
        )
        .append_pair("scope", "openid profile email")
        .append_pair("state", "s")
        .append_pair(
            "code_challenge",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        )
        .append_pair("code_challenge_method", "S256");
    let resp = http.get(authorize.clone()).send().await.unwrap();
    assert_eq!(resp.status(), 303, "{resp:?}");
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    assert!(
        location.starts_with("https://login.dingtalk.com/oauth2/auth?"),
        "{location}"
    );

    // The public CLI client without PKCE: `invalid_request`, back to its redirect URI.
    let mut no_pkce = Url::parse(&format!("{issuer}/oidc/authorize")).unwrap();
    no_pkce
        .query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", "cli-tool")
        .append_pair("redirect_uri", "http://127.0.0.1:8400/callback")
        .append_pair("scope", "openid profile")
        .append_pair("state", "s");
    let resp = http.get(no_pkce).send().await.unwrap();
    let location = Url::parse(resp.headers()["location"].to_str().unwrap()).unwrap();
    assert!(
        location
            .as_str()
            .starts_with("http://127.0.0.1:8400/callback")
    );
    assert!(
        location
            .query_pairs()
            .any(|(k, v)| k == "error" && v == "invalid_request"),
        "{location}"
    );
    let _ = stop.send(());
    let _ = std::fs::remove_dir_all(&dir);
}
