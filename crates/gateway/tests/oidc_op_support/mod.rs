//! The gateway as an OpenID Provider in tests: started over the DingTalk fake with
//! `oidc_clients` in its tenants document, and a browser-less code flow (authorize → the fake's
//! Approve → callback → resume → code) with PKCE.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::Value;
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use unilogin::config::YamlText;
use unilogin_gateway::config::GatewayConfig;
use unilogin_gateway::{Gateway, GatewayBuilder};
use unilogin_testkit::dingtalk::{self, FakeDingTalk};
use url::Url;

use crate::oidc_rp_support::{Browser, Outcome};

/// A gateway serving the provider; stopped on drop.
pub struct Op {
    /// The issuer (`public_url` without its trailing slash).
    pub issuer: String,
    /// The base URL (with the trailing slash).
    pub base: Url,
    /// Where it listens (differs from `base` for a replica given another's public URL).
    pub bound: SocketAddr,
    pub gateway: Gateway,
    pub fake: Arc<FakeDingTalk>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Op {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

impl Op {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.issuer, path)
    }
}

/// Starts a gateway on 127.0.0.1:0 with `oidc_provider: {enabled: true}` and `extra` YAML
/// merged over the defaults, the tenant entries `tenants(base)` (documented format, one object
/// per entry with `tenant` and `platform`) and the `oidc_clients` section `clients`.
pub async fn start_op(
    extra: &str,
    fake: Arc<FakeDingTalk>,
    tenants: impl FnOnce(&Url) -> Vec<Value>,
    clients: Value,
    configure: impl FnOnce(GatewayBuilder) -> GatewayBuilder,
) -> Op {
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let bound = listener.local_addr().unwrap();
    let base = Url::parse(&format!("http://{bound}/")).unwrap();
    let public = if extra.contains("public_url") {
        String::new()
    } else {
        format!("public_url: \"{base}\"\n")
    };
    let enable = if extra.contains("oidc_provider") {
        ""
    } else {
        "oidc_provider: {enabled: true}\n"
    };
    // Generous limits, unless the test is about them.
    let limits = if extra.contains("rate_limits") {
        ""
    } else {
        crate::support::RELAXED_LIMITS
    };
    let yaml = format!("{public}cookies: {{secure: false}}\n{enable}{limits}\n{extra}");
    let config = GatewayConfig::from_yaml(&yaml).unwrap();
    let issuer = config.public_url.as_str().trim_end_matches('/').to_string();
    let doc = crate::support::tenants_document(tenants(&config.public_url));
    let mut doc: Value = serde_json::from_str(&doc).unwrap();
    doc["oidc_clients"] = clients;
    let gateway = configure(Gateway::builder(config).tenants_yaml(YamlText::new(doc.to_string())))
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
    Op {
        base: Url::parse(&format!("{issuer}/")).unwrap(),
        issuer,
        bound,
        gateway,
        fake,
        stop: Some(stop),
    }
}

/// The default fake and the tenant `acme` over it.
pub async fn start_default(extra: &str, clients: Value) -> Op {
    let fake = Arc::new(dingtalk::start().await);
    let f = fake.clone();
    start_op(
        extra,
        fake,
        move |base| vec![crate::support::tenant(&f, "acme", true, base.as_str())],
        clients,
        |b| b,
    )
    .await
}

/// A browser that presses the fake sign-in page's Approve button of `user`.
pub fn approving(user: &'static str) -> Browser {
    Browser::new().on_page(move |page| {
        page.forms()
            .iter()
            .filter(|f| f.fields.iter().any(|(k, v)| k == "user_id" && v == user))
            .find_map(|f| f.submit_with("Approve"))
    })
}

/// A PKCE verifier and its S256 challenge.
pub fn pkce() -> (String, String) {
    // RFC 7636 §4.1: 43 to 128 unreserved characters.
    let verifier = format!("verifier-{}-{}", rand_hex(), "x".repeat(40));
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

fn rand_hex() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let n = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("{:x}{:x}", n, Sha256::digest(n.to_le_bytes())[0])
}

/// The authorization URL for `client_id` (scope `openid profile email`, PKCE challenge).
pub fn authorize_url(op: &Op, client_id: &str, redirect_uri: &str, challenge: &str) -> Url {
    let mut url = Url::parse(&op.url("/oidc/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", client_id)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("scope", "openid profile email")
        .append_pair("state", "st-1")
        .append_pair("nonce", "n-1")
        .append_pair("code_challenge", challenge)
        .append_pair("code_challenge_method", "S256");
    url
}

/// Runs the browser through an authorization for `client_id` to its redirect URI; the code and
/// the PKCE verifier.
pub async fn code_flow(
    op: &Op,
    browser: &Browser,
    client_id: &str,
    redirect_uri: &str,
) -> (String, String) {
    let (verifier, challenge) = pkce();
    let url = authorize_url(op, client_id, redirect_uri, &challenge);
    let outcome = browser
        .navigate(&url, &[redirect_uri])
        .await
        .unwrap_or_else(|e| panic!("{e:?}"));
    let Outcome::Redirected(to) = outcome else {
        panic!("the flow stopped on a page: {outcome:?}");
    };
    let code = to
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("no code in the redirect"));
    (code, verifier)
}

/// `POST /oidc/token` as a confidential `client_secret_basic` client.
pub async fn token(op: &Op, client: (&str, &str), form: &[(&str, &str)]) -> (u16, Value) {
    let resp = reqwest::Client::new()
        .post(op.url("/oidc/token"))
        .basic_auth(client.0, Some(client.1))
        .form(form)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}
