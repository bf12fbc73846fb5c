//! Sandbox mode (`unilogin-gateway --sandbox`, `cargo xtask sandbox`): the test-kit fakes of
//! every enabled platform on loopback, a demo tenant configured against them, and the gateway
//! in front — a complete, offline login service to click through.
//!
//! Also the fixture of the gateway's own tests, browser test and load benchmark.

use std::net::SocketAddr;
use std::sync::Arc;

use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use unilogin::config::YamlText;
use unilogin::{Error, Result};
use unilogin_testkit::FakePlatform;
use url::Url;

use crate::app::Gateway;
use crate::config::GatewayConfig;

/// Issues an H5 code for a platform's demo user (sandbox only).
pub type IssueCode = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// Sandbox-only hooks: the platform fakes stand in for the platform clients' JSAPI.
#[derive(Clone)]
pub struct SandboxHooks {
    /// Issues an H5 code for the platform's demo user (what the client's JSAPI would return).
    pub issue_h5_code: IssueCode,
    /// Links shown on the home page (label, URL).
    pub links: Vec<(String, String)>,
}

impl std::fmt::Debug for SandboxHooks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxHooks")
            .field("links", &self.links)
            .finish_non_exhaustive()
    }
}

/// The demo tenant's id.
pub const DEMO_TENANT: &str = "demo";

/// The sandbox's DingTalk store app (docs/store-apps.md): the tenant of its app entry, which
/// receives the suite's pushes (a suite ticket is pushed when the sandbox starts).
#[cfg(feature = "dingtalk")]
pub const STORE_TENANT: &str = "demo-store";
/// The organisation that installed the sandbox's store app; its entry is
/// `{STORE_TENANT}-{STORE_ORG}`.
#[cfg(feature = "dingtalk")]
pub const STORE_ORG: &str = "dingsandboxstore1";
/// A person of [`STORE_ORG`] (log in to its entry with the fake's H5 code for this user).
#[cfg(feature = "dingtalk")]
pub const STORE_USER: &str = "store001";
#[cfg(feature = "dingtalk")]
const STORE_SUITE_KEY: &str = "suitesandboxdemo01";
#[cfg(feature = "dingtalk")]
const STORE_SUITE_SECRET: &str = "sandbox_suite_secret_not_a_secret";

/// The sandbox's store-app entries against the DingTalk fake: the app entry and the installed
/// organisation's entry.
#[cfg(feature = "dingtalk")]
fn store_app(
    fake: &unilogin_testkit::dingtalk::FakeDingTalk,
    return_to: &str,
) -> Vec<(String, Value)> {
    use unilogin_testkit::dingtalk::FakeSuite;
    fake.add_suite(FakeSuite::new(STORE_SUITE_KEY, STORE_SUITE_SECRET, "90900"));
    fake.install_suite(STORE_SUITE_KEY, STORE_ORG);
    fake.add_user(
        unilogin_testkit::FakeUser::new(STORE_USER)
            .name("Store user")
            .in_org(STORE_ORG),
    );
    let base = fake.base_url().to_string();
    let events = fake.event_credentials_for(STORE_SUITE_KEY);
    let entry = |corp: Option<&str>| {
        let mut e = serde_json::json!({
            "mode": "isv",
            "app_key": STORE_SUITE_KEY, "app_secret": STORE_SUITE_SECRET,
            "hosts": { "oapi": base, "api": base, "login": base },
            "redirect_uris": [return_to],
            "session_scopes": session_scopes(),
        });
        match corp {
            Some(corp) => e["corp_id"] = Value::from(corp),
            None => {
                e["events"] = serde_json::json!({
                    "token": events.token, "key": events.aes_key, "receiver_id": events.receiver_id,
                })
            }
        }
        e
    };
    vec![
        (STORE_TENANT.to_string(), entry(None)),
        (
            format!("{STORE_TENANT}-{STORE_ORG}"),
            entry(Some(STORE_ORG)),
        ),
    ]
}

/// A running platform fake and the demo tenant's configuration of it.
pub struct SandboxPlatform {
    /// The fake.
    pub fake: Arc<dyn FakePlatform>,
    /// The demo tenant's configuration pointing at it.
    pub config: Value,
    /// The same fake, typed, when it is DingTalk's (its store-app side).
    #[cfg(feature = "dingtalk")]
    pub dingtalk: Option<Arc<unilogin_testkit::dingtalk::FakeDingTalk>>,
}

impl std::fmt::Debug for SandboxPlatform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxPlatform")
            .field("name", &self.fake.name())
            .field("base_url", &self.fake.base_url())
            .finish()
    }
}

/// The demo tenant's session scopes: `user:read` for everyone, `admin:write` for `user002`.
#[cfg(any(feature = "dingtalk", feature = "feishu", feature = "wecom"))]
fn session_scopes() -> Value {
    serde_json::json!({
        "default": ["user:read"],
        "rules": [{ "when": { "user_id": ["user002"] }, "grant": ["admin:write"] }]
    })
}

#[cfg(feature = "dingtalk")]
async fn dingtalk(return_to: &str) -> Result<SandboxPlatform> {
    let fake = unilogin_testkit::dingtalk::try_start()
        .await
        .map_err(|e| Error::Internal(format!("starting the DingTalk fake: {e}")))?;
    let fake = Arc::new(fake);
    let creds = fake.credentials();
    let base = fake.base_url().to_string();
    Ok(SandboxPlatform {
        config: serde_json::json!({
            "tenant": DEMO_TENANT, "platform": "dingtalk",
            "app_key": creds.app_key, "app_secret": creds.app_secret,
            "corp_id": creds.corp_id, "agent_id": creds.agent_id,
            "hosts": { "oapi": base, "api": base, "login": base },
            "redirect_uris": [return_to],
            "session_scopes": session_scopes(),
        }),
        fake: fake.clone(),
        dingtalk: Some(fake),
    })
}

#[cfg(feature = "feishu")]
async fn feishu(return_to: &str) -> Result<SandboxPlatform> {
    let fake = unilogin_testkit::feishu::try_start()
        .await
        .map_err(|e| Error::Internal(format!("starting the Feishu fake: {e}")))?;
    let creds = fake.credentials();
    let base = fake.base_url().to_string();
    Ok(SandboxPlatform {
        config: serde_json::json!({
            "tenant": DEMO_TENANT, "platform": "feishu",
            "app_key": creds.app_key, "app_secret": creds.app_secret, "corp_id": creds.corp_id,
            "hosts": { "open": base, "accounts": base },
            "redirect_uris": [return_to],
            "session_scopes": session_scopes(),
            "options": { "region": "feishu" },
        }),
        fake: Arc::new(fake),
        #[cfg(feature = "dingtalk")]
        dingtalk: None,
    })
}

#[cfg(feature = "wecom")]
async fn wecom(return_to: &str) -> Result<SandboxPlatform> {
    let fake = unilogin_testkit::wecom::try_start()
        .await
        .map_err(|e| Error::Internal(format!("starting the WeCom fake: {e}")))?;
    let creds = fake.credentials();
    let base = fake.base_url().to_string();
    Ok(SandboxPlatform {
        config: serde_json::json!({
            "tenant": DEMO_TENANT, "platform": "wecom",
            // WeCom's app identifier is the corpid; the secret is the app's own Secret.
            "app_key": creds.corp_id, "app_secret": creds.app_secret,
            "corp_id": creds.corp_id, "agent_id": creds.agent_id,
            "hosts": { "qyapi": base, "oauth": base, "login": base, "open": base },
            "redirect_uris": [return_to],
            "session_scopes": session_scopes(),
        }),
        fake: Arc::new(fake),
        #[cfg(feature = "dingtalk")]
        dingtalk: None,
    })
}

/// Starts the fake of every platform this binary was built with, configured for the demo
/// tenant, with `return_to` as the tenant's only allowed return URL.
pub async fn start_fakes(return_to: &str) -> Result<Vec<SandboxPlatform>> {
    let _ = return_to;
    #[allow(unused_mut)]
    let mut out = Vec::new();
    #[cfg(feature = "dingtalk")]
    out.push(dingtalk(return_to).await?);
    #[cfg(feature = "feishu")]
    out.push(feishu(return_to).await?);
    #[cfg(feature = "wecom")]
    out.push(wecom(return_to).await?);
    Ok(out)
}

/// Options of [`Sandbox::start`].
#[derive(Debug, Clone)]
pub struct SandboxOptions {
    /// Where the gateway listens (port 0: any free port).
    pub listen: SocketAddr,
    /// Settings applied before the sandbox's own (`public_url`, `cookies.secure` and tenants
    /// are always set by the sandbox).
    pub config: GatewayConfig,
}

impl Default for SandboxOptions {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            config: GatewayConfig::default(),
        }
    }
}

/// A running sandbox: fakes + gateway. Dropping it stops the gateway and the fakes.
pub struct Sandbox {
    /// The gateway (for its metrics, issuer, …).
    pub gateway: Gateway,
    /// Its base URL (`http://127.0.0.1:PORT/`).
    pub url: Url,
    /// The platform fakes.
    pub platforms: Vec<SandboxPlatform>,
    /// The demo tenant's configuration as served: a tenants document in the documented
    /// format (`tenants: {demo: {<platform>: {...}}}`).
    pub tenants_yaml: String,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("url", &self.url.as_str())
            .field("platforms", &self.platforms)
            .finish_non_exhaustive()
    }
}

impl Sandbox {
    /// Starts the fakes and a gateway configured against them.
    pub async fn start(options: SandboxOptions) -> Result<Self> {
        let listener = TcpListener::bind(options.listen).await.map_err(|e| {
            Error::config(
                None,
                None,
                "listen",
                format!(
                    "cannot listen on {}: {e} (pick another address with --listen)",
                    options.listen
                ),
            )
        })?;
        let addr = listener
            .local_addr()
            .map_err(|e| Error::Internal(format!("listener address: {e}")))?;
        let url = Url::parse(&format!("http://{addr}/"))
            .map_err(|e| Error::Internal(format!("sandbox URL: {e}")))?;
        let platforms = start_fakes(url.as_str()).await?;
        // The store app's entries, against the DingTalk fake.
        #[allow(unused_mut)]
        let mut store_entries = Vec::new();
        #[cfg(feature = "dingtalk")]
        let store_fake = platforms
            .iter()
            .find(|p| p.fake.name() == "dingtalk")
            .and_then(|p| p.dingtalk.clone());
        #[cfg(feature = "dingtalk")]
        if let Some(fake) = &store_fake {
            store_entries = store_app(fake, url.as_str());
        }
        // The demo tenant goes through the path deployments use: a tenants document in the
        // documented format, parsed, validated and watched like a tenants file.
        let tenants_yaml = tenants_document(&platforms, &store_entries)?;
        let mut config = options.config;
        config.listen = addr;
        config.public_url = url.clone();
        config.cookies.secure = false;
        config.tenants_file = None;
        config.tenants_database.url = None;
        config.admin.enabled = false;
        // The OpenID Provider, with a public demo client any OIDC tool can try.
        config.oidc_provider.enabled = true;
        let fakes: Vec<(String, Arc<dyn FakePlatform>)> = platforms
            .iter()
            .map(|p| (p.fake.name().to_string(), p.fake.clone()))
            .collect();
        let issue = move |platform: &str| {
            fakes
                .iter()
                .find(|(n, _)| n == platform)
                .map(|(_, f)| f.issue_h5_code(&f.demo_user_id()))
        };
        let links = platforms
            .iter()
            .map(|p| {
                let name = p.fake.name();
                (
                    format!("{name} (PC: web/QR login)"),
                    login_link(&url, name, &url),
                )
            })
            .collect();
        let gateway = Gateway::builder(config)
            .tenants_yaml(YamlText::new(tenants_yaml.clone()))
            .sandbox(SandboxHooks {
                issue_h5_code: Arc::new(issue),
                links,
            })
            .open()
            .await
            .map_err(|problems| {
                Error::config(None, None, "sandbox tenants", problems.to_string())
            })?;
        let (stop, stopped) = oneshot::channel::<()>();
        let server = gateway.clone();
        let task = tokio::spawn(async move {
            server
                .serve(listener, async move {
                    let _ = stopped.await;
                })
                .await
        });
        // The store app's suite ticket, pushed to its app entry as DingTalk would.
        #[cfg(feature = "dingtalk")]
        if let Some(fake) = &store_fake {
            let events = url
                .join(&format!("events/{STORE_TENANT}/dingtalk"))
                .map_err(|e| Error::Internal(format!("sandbox URL: {e}")))?;
            let (delivery, _) = fake
                .push_suite_ticket(STORE_SUITE_KEY, events.as_str())
                .await
                .map_err(|e| Error::Internal(format!("pushing the sandbox suite ticket: {e}")))?;
            if !delivery.accepted() {
                return Err(Error::Internal(format!(
                    "the sandbox's suite ticket was refused: {:?}",
                    delivery.verdict
                )));
            }
        }
        Ok(Self {
            gateway,
            url,
            tenants_yaml,
            platforms,
            stop: Some(stop),
            task: Some(task),
        })
    }

    /// The PC login link of `platform` for the demo tenant, returning to the home page.
    pub fn login_link(&self, platform: &str) -> String {
        login_link(&self.url, platform, &self.url)
    }

    /// The fake of `platform`.
    pub fn fake(&self, platform: &str) -> Option<&Arc<dyn FakePlatform>> {
        self.platforms
            .iter()
            .find(|p| p.fake.name() == platform)
            .map(|p| &p.fake)
    }

    /// What to print for a person trying the sandbox.
    pub fn instructions(&self) -> String {
        let base = self.url.as_str().trim_end_matches('/');
        let mut s = format!(
            "unilogin gateway sandbox: {} platform fake(s) on loopback, tenant `{DEMO_TENANT}`, nothing leaves this machine.\n\n\
             Gateway: {base}/   (home page: shows who is signed in)\n",
            self.platforms.len()
        );
        for p in &self.platforms {
            let name = p.fake.name();
            s.push_str(&format!(
                "\n== {name} (fake at {fake})\n\
                 1. PC web/QR login: open {link}\n   \
                    On the fake {name} page press \"Approve\" next to a user; you land on {base}/ signed in.\n",
                fake = p.fake.base_url(),
                link = self.login_link(name),
            ));
            let jsapi = unilogin::Registry::get(name).is_ok_and(|r| r.in_client.jsapi().is_some());
            if jsapi {
                let code = p.fake.issue_h5_code(&p.fake.demo_user_id());
                s.push_str(&format!(
                    "2. H5 login-free exchange (the code the {name} client's JSAPI would give, valid 5 min):\n   \
                        curl -s -H 'content-type: application/json' -d '{{\"code\":\"{code}\"}}' {base}/auth/{DEMO_TENANT}/{name}/code\n   \
                        A fresh code any time: curl -s -X POST {base}/sandbox/{name}/h5-code\n\
                     3. The H5 page an in-client browser gets: open {base}/auth/{DEMO_TENANT}/{name}/login with a {name} User-Agent.\n"
                ));
            } else {
                s.push_str(&format!(
                    "2. In-client login: open {base}/auth/{DEMO_TENANT}/{name}/login with a {name} User-Agent: the client's OAuth link, \
                        a redirect login with state (its codes are never accepted by POST …/code).\n"
                ));
            }
        }
        #[cfg(feature = "dingtalk")]
        if let Some(fake) = self.platforms.iter().find_map(|p| p.dingtalk.as_ref()) {
            let code = fake.issue_h5_code(STORE_USER);
            s.push_str(&format!(
                "\n== DingTalk store app (docs/store-apps.md)\n\
                 App entry `{STORE_TENANT}` (its suite ticket was pushed to {base}/events/{STORE_TENANT}/dingtalk); \
                 the installed organisation's entry `{STORE_TENANT}-{STORE_ORG}`. Log its user `{STORE_USER}` in (code valid 5 min):\n   \
                    curl -s -H 'content-type: application/json' -d '{{\"code\":\"{code}\"}}' {base}/auth/{STORE_TENANT}-{STORE_ORG}/dingtalk/code\n"
            ));
        }
        s.push_str(&format!(
            "\n== OpenID Provider (docs/oidc-provider.md)\n\
             Issuer {base} (discovery: {base}/.well-known/openid-configuration); public client `{SANDBOX_CLIENT}` \
             (PKCE S256), redirect URI {redirect}. Point any OIDC tool at it; it signs in through the fakes above.\n",
            redirect = SANDBOX_REDIRECT_URIS[0],
        ));
        s.push_str(&format!(
            "\nThen: {base}/me (your session's claims), {base}/.well-known/jwks.json, {base}/readyz (metrics: `ops.listen` or `ops.metrics_token`, see docs/gateway.md).\n\
             Stop with Ctrl-C.\n"
        ));
        s
    }

    /// Stops the gateway (gracefully) and waits for it.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The sandbox's OpenID Provider client: public (PKCE), for tools run on this machine.
pub const SANDBOX_CLIENT: &str = "sandbox-rp";

/// Its redirect URIs (a local tool's callback; the usual oauth2-proxy / CLI port).
pub const SANDBOX_REDIRECT_URIS: [&str; 2] = [
    "http://127.0.0.1:8400/callback",
    "http://localhost:8400/callback",
];

/// The tenants document of the fakes' demo configurations, in the documented format.
fn tenants_document(platforms: &[SandboxPlatform], extra: &[(String, Value)]) -> Result<String> {
    let mut demo = serde_json::Map::new();
    for p in platforms {
        let mut entry = p.config.clone();
        if let Some(fields) = entry.as_object_mut() {
            fields.remove("tenant");
            fields.remove("platform");
        }
        demo.insert(p.fake.name().to_string(), entry);
    }
    let mut tenants = serde_json::Map::new();
    tenants.insert(DEMO_TENANT.to_string(), Value::Object(demo));
    for (tenant, entry) in extra {
        tenants.insert(tenant.clone(), serde_json::json!({ "dingtalk": entry }));
    }
    let doc = serde_json::json!({
        "tenants": tenants,
        "oidc_clients": {
            SANDBOX_CLIENT: {
                "redirect_uris": SANDBOX_REDIRECT_URIS,
                "post_logout_redirect_uris": SANDBOX_REDIRECT_URIS,
                "tenants": [DEMO_TENANT],
                "refresh_without_offline_access": true,
            }
        },
    });
    serde_saphyr::to_string(&doc)
        .map_err(|e| Error::Internal(format!("writing the sandbox tenants document: {e}")))
}

fn login_link(base: &Url, platform: &str, return_to: &Url) -> String {
    let mut url = base.clone();
    url.set_path(&format!("/auth/{DEMO_TENANT}/{platform}/login"));
    url.query_pairs_mut()
        .append_pair("return_to", return_to.as_str());
    url.to_string()
}
