//! Shared by the gateway's integration tests: a gateway on a loopback port in front of a
//! DingTalk fake, with three tenants (`demo`, `acme` enabled; `off` disabled), and an HTTP
//! client that does not follow redirects.

#![allow(dead_code)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};

use serde_json::{Value, json};
use tokio::net::TcpListener;
use unilogin::config::YamlText;
use unilogin_gateway::{Gateway, GatewayConfig};
use unilogin_testkit::dingtalk::{self, FakeDingTalk};
use url::Url;

pub struct TestGateway {
    pub gateway: Gateway,
    pub base: Url,
    pub fake: Arc<FakeDingTalk>,
    pub http: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for TestGateway {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

pub fn tenant(fake: &FakeDingTalk, tenant: &str, enabled: bool, return_to: &str) -> Value {
    let creds = fake.credentials();
    let base = fake.base_url();
    json!({
        "tenant": tenant, "platform": "dingtalk", "enabled": enabled,
        "app_key": creds.app_key, "app_secret": creds.app_secret, "corp_id": creds.corp_id,
        "hosts": { "oapi": base, "api": base, "login": base },
        "redirect_uris": [return_to, format!("{return_to}done")],
        "session_scopes": {
            "default": ["user:read"],
            "rules": [{ "when": { "user_id": ["user002"] }, "grant": ["admin:write"] }]
        },
    })
}

/// A gateway serving on 127.0.0.1:0 and its base URL; stopped on drop.
pub struct Served {
    pub gateway: Gateway,
    pub base: Url,
    pub http: reqwest::Client,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

impl Served {
    pub fn url(&self, path: &str) -> String {
        self.base
            .join(path.trim_start_matches('/'))
            .unwrap()
            .to_string()
    }
}

/// Rate limits high enough for tests that are not about them.
pub const RELAXED_LIMITS: &str = "rate_limits:
  login_per_client: {per_minute: 60000, burst: 10000}
  login_global: {per_minute: 60000, burst: 10000}
  code_per_client: {per_minute: 60000, burst: 10000}
  upstream_per_tenant: {per_minute: 60000, burst: 10000}
  other_per_client: {per_minute: 60000, burst: 10000}
";

/// A gateway on 127.0.0.1:0 with `yaml` merged over the defaults, serving the tenants
/// `tenants(public_url)` returns.
pub async fn serve(
    yaml: &str,
    tenants: impl FnOnce(&Url) -> Vec<Value>,
    configure: impl FnOnce(unilogin_gateway::GatewayBuilder) -> unilogin_gateway::GatewayBuilder,
) -> Served {
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let addr = listener.local_addr().unwrap();
    let base = Url::parse(&format!("http://{addr}/")).unwrap();
    // Tests drive many logins from one loopback address: generous limits, unless the test is
    // about the limits.
    let relaxed;
    let yaml = if yaml.contains("rate_limits") {
        yaml
    } else {
        relaxed = format!("{yaml}\n{RELAXED_LIMITS}");
        relaxed.as_str()
    };
    let mut config = GatewayConfig::from_yaml(yaml).unwrap();
    // Replicas behind one proxy share a public URL: keep one given in `yaml`.
    if !yaml.contains("public_url") {
        config.public_url = base.clone();
    }
    config.cookies.secure = false;
    // The tenants go through the gateway's own path: a tenants document in the documented
    // format, parsed and validated before serving.
    let doc = tenants_document(tenants(&config.public_url));
    let gateway = configure(Gateway::builder(config).tenants_yaml(YamlText::new(doc)))
        .open()
        .await
        .unwrap_or_else(|problems| panic!("{problems}"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = gateway.clone();
    tokio::spawn(async move {
        let _ = server
            .serve(listener, async move {
                let _ = stopped.await;
            })
            .await;
    });
    Served {
        gateway,
        base,
        http: client(),
        stop: Some(stop),
    }
}

/// A gateway on 127.0.0.1:0 over `fake` (a new DingTalk fake when `None`), with `yaml` merged
/// over the defaults, and `keys` when given.
pub async fn start_with(
    yaml: &str,
    fake: Option<Arc<FakeDingTalk>>,
    configure: impl FnOnce(unilogin_gateway::GatewayBuilder) -> unilogin_gateway::GatewayBuilder,
) -> TestGateway {
    let fake = match fake {
        Some(f) => f,
        None => Arc::new(dingtalk::start().await),
    };
    let f = fake.clone();
    let mut served = serve(
        yaml,
        move |public| {
            vec![
                tenant(&f, "demo", true, public.as_str()),
                tenant(&f, "acme", true, public.as_str()),
                tenant(&f, "off", false, public.as_str()),
            ]
        },
        configure,
    )
    .await;
    TestGateway {
        gateway: served.gateway.clone(),
        base: served.base.clone(),
        fake,
        http: served.http.clone(),
        stop: served.stop.take(),
    }
}

pub async fn start() -> TestGateway {
    start_with("", None, |b| b).await
}

/// A started web login: what the browser holds after `GET …/login`.
#[derive(Debug, Clone)]
pub struct Started {
    pub authorize: Url,
    pub state: String,
    pub binding: String,
}

pub fn cookie_value(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            let first = v.split(';').next()?;
            let (k, val) = first.split_once('=')?;
            (k == name).then(|| val.to_string())
        })
}

pub fn query_of(url: &Url) -> HashMap<String, String> {
    url.query_pairs().into_owned().collect()
}

impl TestGateway {
    /// The login helpers over a gateway served with [`serve`] (`served` keeps serving it).
    pub fn adopt(served: &Served, fake: Arc<FakeDingTalk>) -> Self {
        Self {
            gateway: served.gateway.clone(),
            base: served.base.clone(),
            fake,
            http: served.http.clone(),
            stop: None,
        }
    }

    pub fn url(&self, path: &str) -> String {
        self.base
            .join(path.trim_start_matches('/'))
            .unwrap()
            .to_string()
    }

    pub fn login_url(&self, tenant: &str, return_to: &str) -> String {
        let mut u = self
            .base
            .join(&format!("auth/{tenant}/dingtalk/login"))
            .unwrap();
        u.query_pairs_mut().append_pair("return_to", return_to);
        u.to_string()
    }

    /// `GET …/login` from a PC browser (optionally re-sending a binding cookie).
    pub async fn start_login(&self, tenant: &str, binding: Option<&str>) -> Started {
        let return_to = self.gateway.config().public_url.to_string();
        let mut req = self.http.get(self.login_url(tenant, &return_to));
        if let Some(b) = binding {
            req = req.header("cookie", format!("unilogin_login={b}"));
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 303, "{:?}", resp.text().await);
        let binding = cookie_value(&resp, "unilogin_login").expect("binding cookie");
        let authorize = Url::parse(resp.headers()["location"].to_str().unwrap()).unwrap();
        let state = query_of(&authorize)["state"].clone();
        Started {
            authorize,
            state,
            binding,
        }
    }

    /// What the fake's Approve button does for `user`: the callback URL it redirects to.
    pub async fn approve(&self, started: &Started, user: &str) -> Url {
        let q = query_of(&started.authorize);
        let form = [
            ("client_id", q["client_id"].as_str()),
            ("redirect_uri", q["redirect_uri"].as_str()),
            ("scope", q["scope"].as_str()),
            ("state", q["state"].as_str()),
            ("user_id", user),
            ("action", "approve"),
        ];
        let resp = self
            .http
            .post(format!("{}/oauth2/approve", self.fake.base_url()))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 303);
        Url::parse(resp.headers()["location"].to_str().unwrap()).unwrap()
    }

    /// `GET callback` with the binding cookie.
    pub async fn callback(&self, callback: &Url, binding: Option<&str>) -> reqwest::Response {
        let mut req = self.http.get(callback.as_str());
        if let Some(b) = binding {
            req = req.header("cookie", format!("unilogin_login={b}"));
        }
        req.send().await.unwrap()
    }

    /// A complete PC login for `user` on `tenant`; returns the session token.
    pub async fn pc_login(&self, tenant: &str, user: &str) -> String {
        let started = self.start_login(tenant, None).await;
        let cb = self.approve(&started, user).await;
        let resp = self.callback(&cb, Some(&started.binding)).await;
        assert_eq!(resp.status(), 303, "{:?}", resp.text().await);
        cookie_value(&resp, "unilogin_session").expect("session cookie")
    }

    /// `POST …/code` with `{code}`.
    pub async fn post_code(&self, tenant: &str, code: &str) -> reqwest::Response {
        self.http
            .post(self.url(&format!("auth/{tenant}/dingtalk/code")))
            .json(&json!({ "code": code }))
            .send()
            .await
            .unwrap()
    }

    pub async fn me(&self, token: &str) -> reqwest::Response {
        self.http
            .get(self.url("me"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }
}

/// Asserts an error response: status, kind, and a message containing `needle`.
pub async fn assert_error(resp: reqwest::Response, status: u16, kind: &str, needle: &str) -> Value {
    assert_eq!(resp.status(), status);
    let trace = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"], kind, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains(needle),
        "{needle:?} not in {body}"
    );
    assert_eq!(body["trace_id"], trace.as_str());
    body
}

/// A tenants document in the documented format (`tenants: {tenant: {platform: {...}}}`) of
/// entries written as one object each with `tenant` and `platform` keys.
pub fn tenants_document(entries: Vec<Value>) -> String {
    let mut tenants = serde_json::Map::new();
    for mut e in entries {
        let fields = e.as_object_mut().expect("an entry is an object");
        let tenant = fields.remove("tenant").expect("tenant");
        let platform = fields.remove("platform").expect("platform");
        tenants
            .entry(tenant.as_str().expect("tenant id").to_string())
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .unwrap()
            .insert(platform.as_str().expect("platform").to_string(), e);
    }
    // JSON is YAML.
    json!({ "tenants": tenants }).to_string()
}

/// The fenced YAML blocks of a file under `docs/`.
pub fn documented_yaml_of(file: &str) -> Vec<String> {
    let path = format!("{}/../../docs/{file}", env!("CARGO_MANIFEST_DIR"));
    let doc = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    doc.split("```yaml\n")
        .skip(1)
        .filter_map(|block| block.split("```").next())
        .map(str::to_string)
        .collect()
}

/// The fenced YAML blocks of `docs/gateway.md`.
pub fn documented_yaml() -> Vec<String> {
    documented_yaml_of("gateway.md")
}

/// Whether a YAML block is a tenants document (its top-level key is `tenants`).
pub fn is_tenants_document(block: &str) -> bool {
    serde_saphyr::from_str::<Value>(block)
        .ok()
        .and_then(|v| v.as_object().map(|o| o.contains_key("tenants")))
        .unwrap_or(false)
}

/// The documented tenant entry of `platform` (from the tenants example of `docs/gateway.md`),
/// as one object with `tenant` and `platform` keys.
pub fn documented_tenant(platform: &str) -> Value {
    for block in documented_yaml().iter().filter(|b| is_tenants_document(b)) {
        let doc: Value = serde_saphyr::from_str(block).unwrap();
        for (tenant, platforms) in doc["tenants"].as_object().into_iter().flatten() {
            if let Some(entry) = platforms.get(platform) {
                let mut e = entry.clone();
                e["tenant"] = json!(tenant);
                e["platform"] = json!(platform);
                return e;
            }
        }
    }
    panic!("no documented `{platform}` tenant in docs/gateway.md")
}

/// A captured log: every line of the process's tracing output (installed once per test
/// binary, at `debug`).
pub fn log_capture() -> Arc<Mutex<Vec<u8>>> {
    static BUF: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();
    BUF.get_or_init(|| {
        let buf: Arc<Mutex<Vec<u8>>> = Arc::default();
        let w = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("debug"))
            .with_ansi(false)
            .with_writer(move || Writer(w.clone()))
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("one subscriber per binary");
        buf
    })
    .clone()
}

struct Writer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Writer {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
