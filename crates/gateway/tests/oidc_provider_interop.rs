//! The gateway as an OpenID Provider (issue #23), tested by real relying parties from the
//! registries: the npm package `openid-client` (certified) and Python's Authlib, each running
//! the code flow with PKCE, refresh with rotation, userinfo and RP-initiated logout against the
//! gateway in front of the DingTalk fake, plus the negative cases answered with the RFC's error
//! codes. The same relying parties pass against the certified npm `oidc-provider`
//! (`tests/oidc_rp_selftest.rs`), so a failure here points at the gateway.
//!
//! The browser is the harness's cookie-keeping client: it follows the gateway's redirects to the
//! fake's sign-in page and presses its first Approve button (the fake's first user).

mod oidc_op_support;
mod oidc_rp_support;
mod support;

use oidc_op_support::Op;
use oidc_rp_support::{Browser, Rp, RpConfig, RpKind, RpMode, RpRun, TokenAuthMethod, expect};
use serde_json::{Value, json};
use unilogin_provider::sha256_hex;
use unilogin_testkit::dingtalk;

const SECRET: &str = "interop-client-secret-0123456789";

fn redirect_uri(client_id: &str) -> String {
    format!("http://127.0.0.1:9/{client_id}/callback")
}

fn client_ids(kind: RpKind) -> (&'static str, &'static str) {
    match kind {
        RpKind::OpenIdClient => ("oc-confidential", "oc-public"),
        RpKind::Authlib => ("al-confidential", "al-public"),
    }
}

/// The `oidc_clients` section: per relying-party library a confidential and a public client.
fn clients() -> Value {
    let mut clients = serde_json::Map::new();
    for kind in [RpKind::OpenIdClient, RpKind::Authlib] {
        let (confidential, public) = client_ids(kind);
        let method = match kind {
            RpKind::OpenIdClient => "client_secret_basic",
            RpKind::Authlib => "client_secret_post",
        };
        for (id, auth) in [(confidential, method), (public, "none")] {
            let mut c = json!({
                "redirect_uris": [redirect_uri(id)],
                "post_logout_redirect_uris": [format!("{}/signed-out", redirect_uri(id))],
                "tenants": ["acme"],
                "token_endpoint_auth_method": auth,
                "refresh_without_offline_access": true,
            });
            if auth != "none" {
                c["client_secret_sha256"] = json!(sha256_hex(SECRET));
            }
            clients.insert(id.to_string(), c);
        }
    }
    Value::Object(clients)
}

/// The gateway with the provider on, the tenant `acme` on the DingTalk fake, and the clients.
async fn start() -> Op {
    oidc_op_support::start_default("", clients()).await
}

fn config(op: &Op, kind: RpKind, public: bool) -> RpConfig {
    let (confidential, public_id) = client_ids(kind);
    if public {
        RpConfig::public(&op.issuer, public_id, &redirect_uri(public_id))
    } else {
        let mut c = RpConfig::confidential(
            &op.issuer,
            confidential,
            SECRET,
            &redirect_uri(confidential),
        );
        if kind == RpKind::Authlib {
            c.auth_method = TokenAuthMethod::ClientSecretPost;
        }
        c
    }
}

/// Presses the fake sign-in page's Approve button of the organisation's demo user.
fn browser() -> Browser {
    oidc_op_support::approving(dingtalk::DEMO_USER_ID)
}

async fn run(op: &Op, kind: RpKind, public: bool, mode: RpMode) -> (RpConfig, RpRun) {
    let config = config(op, kind, public);
    let mut rp = Rp::spawn(kind, config.clone(), mode);
    let run = rp.run(&browser()).await;
    (config, run)
}

async fn happy(kind: RpKind, public: bool) {
    let op = start().await;
    let (config, run) = run(&op, kind, public, RpMode::Happy).await;
    let r = expect::full_flow(&run, &config, &op.issuer);
    // The session subject of the fake's demo user, with the profile and email scopes' claims.
    assert_eq!(
        r["claims"]["sub"],
        format!("acme:dingtalk:{}", dingtalk::DEMO_USER_ID),
        "{r}"
    );
    assert!(
        r["userinfo"]["name"]
            .as_str()
            .is_some_and(|n| !n.is_empty()),
        "{r}"
    );
    assert_eq!(r["userinfo"]["email"], "user001@example.com", "{r}");
    // DingTalk does not vouch for email addresses: never `email_verified: true`.
    assert_ne!(r["userinfo"]["email_verified"], true, "{r}");
}

async fn wrong_redirect_uri(kind: RpKind) {
    let op = start().await;
    let (_, run) = run(&op, kind, false, RpMode::WrongRedirectUri).await;
    expect::no_redirect(&run, &op.issuer);
}

async fn reused_code(kind: RpKind) {
    let op = start().await;
    expect::reused_code(&run(&op, kind, false, RpMode::ReusedCode).await.1);
}

async fn wrong_secret(kind: RpKind) {
    let op = start().await;
    expect::wrong_secret(&run(&op, kind, false, RpMode::WrongSecret).await.1);
}

async fn missing_pkce(kind: RpKind) {
    let op = start().await;
    expect::missing_pkce(
        &run(&op, kind, true, RpMode::MissingPkce).await.1,
        &op.issuer,
    );
}

rp_suite! {
    openid_client => RpKind::OpenIdClient,
    authlib => RpKind::Authlib,
}
