//! Shared by the tenant-configuration tests (`config_*.rs`, `admin_*.rs`): temporary
//! directories, the shipped gateway binary as a child process (environment variables can only
//! be given to a child: tests never change their own environment), in-process gateways over a
//! tenants file or database, polling helpers, and the real database servers of
//! `unilogin-sql`'s tests (the same module, so these tests find PostgreSQL exactly as those do).

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

#[path = "../../../sql/tests/common/mod.rs"]
pub mod db;

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::net::TcpListener;
use unilogin_gateway::{Gateway, GatewayConfig};
use url::Url;

/// Rate limits that never get in a test's way (tests poll login starts).
pub const GENEROUS_LIMITS: &str = "rate_limits: {login_per_client: {per_minute: 100000, burst: 10000}, code_per_client: {per_minute: 100000, burst: 10000}, other_per_client: {per_minute: 100000, burst: 10000}}\n";

/// The shipped binary.
pub const GATEWAY_BIN: &str = env!("CARGO_BIN_EXE_unilogin-gateway");

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A fresh directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(label: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "unilogin-gw-{label}-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Self(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// Writes `text` to `name` atomically (a temporary file renamed over the old one).
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        let tmp = self.join(&format!(".{}.tmp", COUNTER.fetch_add(1, Ordering::Relaxed)));
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The gateway binary running `--config FILE` with `env`; killed on drop.
pub struct Process {
    child: Child,
    pub base: String,
    pub log: PathBuf,
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Process {
    /// Starts the binary on `port` and waits until `/healthz` answers (panics with its log
    /// when it exits or does not come up).
    pub async fn start(config: &Path, port: u16, env: &[(&str, &str)], log: PathBuf) -> Self {
        let out = std::fs::File::create(&log).unwrap();
        let mut cmd = Command::new(GATEWAY_BIN);
        cmd.arg("--config")
            .arg(config)
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn unilogin-gateway");
        let mut p = Process {
            child,
            base: format!("http://127.0.0.1:{port}"),
            log,
        };
        let http = client();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(status)) = p.child.try_wait() {
                panic!(
                    "the gateway exited ({status}):\n{}",
                    std::fs::read_to_string(&p.log).unwrap_or_default()
                );
            }
            let up = http
                .get(format!("{}/healthz", p.base))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if up {
                return p;
            }
            assert!(
                Instant::now() < deadline,
                "the gateway did not come up:\n{}",
                std::fs::read_to_string(&p.log).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}/{}", self.base, path.trim_start_matches('/'))
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// Runs the binary with `args` and `env` to completion: (exit code, stdout + stderr).
pub fn run_binary(args: &[&str], env: &[(&str, &str)]) -> (i32, String) {
    let mut cmd = Command::new(GATEWAY_BIN);
    cmd.args(args).env_remove("RUST_LOG").stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run unilogin-gateway");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

/// An in-process gateway serving on 127.0.0.1:0; stopped on drop.
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

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(self.url(path)).send().await.unwrap()
    }
}

/// Binds 127.0.0.1:0, builds the gateway of `yaml` (merged over the defaults; `public_url`
/// is this address unless `yaml` gives one) with [`GatewayBuilder::open`], and serves it.
pub async fn serve(yaml: &str) -> Served {
    try_serve(yaml)
        .await
        .unwrap_or_else(|problems| panic!("{problems}"))
}

/// Like [`serve`], returning the start-up problems.
pub async fn try_serve(yaml: &str) -> Result<Served, unilogin::config::ConfigProblems> {
    let listener = TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let base = Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
    let mut config = GatewayConfig::from_yaml(yaml).unwrap_or_else(|e| panic!("{e}\n{yaml}"));
    if !yaml.contains("public_url") {
        config.public_url = base.clone();
    }
    config.cookies.secure = false;
    let gateway = Gateway::builder(config).open().await?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = gateway.clone();
    tokio::spawn(async move {
        let _ = server
            .serve(listener, async move {
                let _ = stopped.await;
            })
            .await;
    });
    Ok(Served {
        gateway,
        base,
        http: client(),
        stop: Some(stop),
    })
}

/// Polls `check` every 50 ms until it returns true, for at most `within`; panics with `what`.
pub async fn eventually<F, Fut>(within: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    loop {
        if check().await {
            return;
        }
        assert!(Instant::now() < deadline, "not within {within:?}: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A DingTalk tenant entry (the body under `tenants.<t>.dingtalk`) against `fake`.
pub fn dingtalk_entry(
    fake: &unilogin_testkit::dingtalk::FakeDingTalk,
    app_key: &str,
    app_secret: &str,
    return_to: &str,
) -> Value {
    let base = fake.base_url();
    serde_json::json!({
        "app_key": app_key, "app_secret": app_secret,
        "corp_id": unilogin_testkit::dingtalk::DEFAULT_CORP_ID,
        "hosts": { "oapi": base, "api": base, "login": base },
        "redirect_uris": [return_to],
    })
}

/// `POST /auth/{tenant}/dingtalk/code` with a fresh H5 code of the fake's demo user; the status.
pub async fn h5_login(
    http: &reqwest::Client,
    base: &str,
    tenant: &str,
    fake: &unilogin_testkit::dingtalk::FakeDingTalk,
) -> (u16, Value) {
    use unilogin_testkit::FakePlatform;
    let code = fake.issue_h5_code(&fake.demo_user_id());
    let r = http
        .post(format!(
            "{}/auth/{tenant}/dingtalk/code",
            base.trim_end_matches('/')
        ))
        .json(&serde_json::json!({ "code": code }))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// The value of metric `name` (no labels) in an OpenMetrics text.
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}
