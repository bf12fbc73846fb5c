//! The relying-party interop harness of the gateway's OpenID Provider tests (issue #23): real
//! relying parties from the registries, driven by a Rust test that plays the browser and the
//! person.
//!
//! - [`Rp`] runs one relying party — the npm package `openid-client`
//!   (`tests/oidc-rp/rp-openid-client.mjs`) or Python's Authlib (`tests/oidc-rp/rp_authlib.py`) —
//!   as a child process that does exactly a web application's part of the code flow and talks
//!   JSON lines with the test ([`RpMessage`] in, [`BrowserReply`] out). [`Rp::run`] plays a whole
//!   conversation with a [`Browser`].
//! - [`Browser`] is a cookie-keeping HTTP client that follows redirects by hand until the
//!   relying party's redirect URI, and lets the test answer pages it cannot follow (a login or
//!   approve form) through a [`PageHandler`].
//! - [`NodeOp`] runs the npm package `oidc-provider` (a certified OpenID Provider,
//!   `tests/oidc-rp/node-op.mjs`) with auto-login, against which the relying parties are proven
//!   before they test the gateway (`tests/oidc_rp_selftest.rs`).
//!
//! The npm packages and the Python venv are installed once into the cargo target's tmp dir by
//! [`ensure_node_packages`] / [`ensure_python_venv`] (or beforehand by `cargo xtask ci`, which
//! installs into the same places with the same stamps); a test without Node.js or Python fails
//! with a message saying so.
//!
//! `tests/oidc_rp_selftest.rs` is the worked example (compiled and run). A gateway test plugs
//! in its own issuer, client and page handler, e.g. approving on the platform fake:
//!
//! ```text
//! let browser = Browser::new().on_page(|page| page.forms().iter().find_map(|f| f.submit_with("Approve")));
//! let config = RpConfig::confidential(&issuer, "grafana", "grafana-secret", "http://127.0.0.1:9/grafana/callback");
//! let run = Rp::spawn(RpKind::OpenIdClient, config, RpMode::Happy).run(&browser).await;
//! assert_eq!(run.result()["userinfo"]["name"], "张三");
//! ```
//!
//! Secrets stay out of what a failing test prints: [`ClientSecret`] prints `***`, URLs in
//! `Debug` output have their codes, states, nonces and tokens replaced ([`redact_url`]), the
//! client secret reaches the relying party through its environment, never its command line, and
//! the relying parties report claims and checks, never tokens.

#![allow(dead_code)]

use std::collections::HashMap;
use std::fmt;
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use url::Url;

/// How long one relying-party message may take (its process start, discovery and a token
/// exchange included) before the test fails.
pub const MESSAGE_TIMEOUT: Duration = Duration::from_secs(60);

/// The files of the harness: the scripts, `package.json` / `package-lock.json`,
/// `requirements.txt`.
pub fn harness_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oidc-rp")
}

/// Where the npm packages are installed (keep in step with xtask's `provision_oidc_rp`).
pub const NODE_DIR: &str = "oidc-rp-node";
/// Where the Python venv is created (keep in step with xtask's `provision_oidc_rp`).
pub const VENV_DIR: &str = "oidc-rp-venv";
/// The file in an install directory holding the manifest it was installed from; an install
/// whose stamp differs from the current manifest is redone.
pub const STAMP: &str = ".unilogin-installed";

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn installed(dir: &Path, manifest: &str) -> bool {
    std::fs::read_to_string(dir.join(STAMP)).is_ok_and(|s| s == manifest)
}

/// Holds an exclusive lock on `<dir>.lock` so two test binaries never install at once.
fn install_lock(dir: &Path) -> File {
    let parent = dir.parent().expect("install dir has a parent");
    std::fs::create_dir_all(parent).unwrap();
    let file = File::create(dir.with_extension("lock")).unwrap();
    file.lock().unwrap();
    file
}

fn runs(program: &str, arg: &str) -> bool {
    Command::new(program)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// The `node_modules` directory holding `oidc-provider` and `openid-client` at the versions of
/// `tests/oidc-rp/package-lock.json`, installed with `npm ci` into the cargo target's tmp dir
/// when missing or stale.
///
/// # Panics
/// When Node.js or npm is missing, or the install fails.
pub fn ensure_node_packages() -> PathBuf {
    static DONE: OnceLock<PathBuf> = OnceLock::new();
    DONE.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(NODE_DIR);
        let lock = read(&harness_dir().join("package-lock.json"));
        let _guard = install_lock(&dir);
        if !installed(&dir, &lock) {
            assert!(
                runs("node", "--version") && runs("npm", "--version"),
                "the OIDC interop tests run the npm packages oidc-provider and openid-client: \
                 install Node.js (>= 20.19) and npm, or run `cargo xtask ci`"
            );
            std::fs::create_dir_all(&dir).unwrap();
            for file in ["package.json", "package-lock.json"] {
                std::fs::copy(harness_dir().join(file), dir.join(file)).unwrap();
            }
            let status = Command::new("npm")
                .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
                .current_dir(&dir)
                .status()
                .expect("running npm");
            assert!(status.success(), "npm ci in {} failed", dir.display());
            std::fs::write(dir.join(STAMP), &lock).unwrap();
        }
        dir.join("node_modules")
    })
    .clone()
}

/// The Python venv holding Authlib at the versions of `tests/oidc-rp/requirements.txt`,
/// created with `python3 -m venv` in the cargo target's tmp dir when missing or stale (the
/// system Python is untouched). Run its interpreter through [`venv_python`].
///
/// # Panics
/// When `python3` (with its `venv` module) is missing, or pip fails.
pub fn ensure_python_venv() -> PathBuf {
    static DONE: OnceLock<PathBuf> = OnceLock::new();
    DONE.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(VENV_DIR);
        let requirements = harness_dir().join("requirements.txt");
        let wanted = read(&requirements);
        let _guard = install_lock(&dir);
        if !installed(&dir, &wanted) {
            assert!(
                runs("python3", "--version"),
                "the OIDC interop tests run Python's Authlib: install Python 3 (with venv), or run `cargo xtask ci`"
            );
            let status = Command::new("python3")
                .args(["-m", "venv", "--clear"])
                .arg(&dir)
                .status()
                .expect("running python3");
            assert!(
                status.success(),
                "python3 -m venv {} failed (on Debian: apt-get install python3-venv)",
                dir.display()
            );
            let status = Command::new(venv_python(&dir))
                .args(["-m", "pip", "install", "--quiet", "--disable-pip-version-check"])
                .args(["--no-input", "-r"])
                .arg(&requirements)
                .status()
                .expect("running the venv's pip");
            assert!(status.success(), "pip install -r requirements.txt failed");
            std::fs::write(dir.join(STAMP), &wanted).unwrap();
        }
        dir
    })
    .clone()
}

/// The interpreter of a venv made by [`ensure_python_venv`].
pub fn venv_python(venv: &Path) -> PathBuf {
    if cfg!(windows) {
        venv.join("Scripts/python.exe")
    } else {
        venv.join("bin/python")
    }
}

/// Keeps the last bytes a child wrote to stderr, for failure messages.
#[derive(Clone, Default)]
pub struct StderrTail(Arc<Mutex<Vec<u8>>>);

impl StderrTail {
    const KEEP: usize = 16 * 1024;

    fn push(&self, bytes: &[u8]) {
        let mut buf = self.0.lock().unwrap();
        buf.extend_from_slice(bytes);
        if buf.len() > Self::KEEP {
            let cut = buf.len() - Self::KEEP;
            buf.drain(..cut);
        }
    }

    /// What the child wrote last (lossy UTF-8).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// The npm `oidc-provider` serving on a loopback port, with auto-login as `zhangsan`; killed on
/// drop (and it exits by itself when the test process ends, as its stdin closes).
pub struct NodeOp {
    child: std::process::Child,
    /// `http://127.0.0.1:PORT`, the issuer and the discovery base.
    pub issuer: String,
    /// The port it listens on.
    pub port: u16,
    /// Its stderr (oidc-provider's start-up notices, server errors).
    pub stderr: StderrTail,
}

impl NodeOp {
    /// Starts `oidc-provider` on a free port with `clients`, a JSON array of oidc-provider client
    /// metadata (`client_id`, `client_secret` or `"token_endpoint_auth_method": "none"`,
    /// `redirect_uris`, `post_logout_redirect_uris`, `grant_types`, ...).
    ///
    /// # Panics
    /// When Node.js is missing or the provider does not come up.
    pub fn start(clients: &Value) -> NodeOp {
        Self::start_on(0, clients)
    }

    /// As [`NodeOp::start`], on a chosen port (0: any free one).
    pub fn start_on(port: u16, clients: &Value) -> NodeOp {
        let modules = ensure_node_packages();
        let mut child = Command::new("node")
            .arg(harness_dir().join("node-op.mjs"))
            .arg(&modules)
            .arg(port.to_string())
            .arg(clients.to_string())
            .env("NODE_ENV", "production")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("the OIDC interop tests need Node.js (`node`) on PATH");
        let stderr = StderrTail::default();
        let mut pipe = child.stderr.take().unwrap();
        let tail = stderr.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                tail.push(&buf[..n]);
            }
        });
        let mut line = String::new();
        let mut out = BufReader::new(child.stdout.take().unwrap());
        out.read_line(&mut line).unwrap();
        let hello: Value = serde_json::from_str(&line).unwrap_or_else(|e| {
            let _ = child.kill();
            let _ = child.wait();
            panic!("node-op did not start ({e}): {line:?}\n{}", stderr.text())
        });
        NodeOp {
            issuer: hello["issuer"].as_str().unwrap().to_string(),
            port: hello["listening"].as_u64().unwrap() as u16,
            child,
            stderr,
        }
    }
}

impl Drop for NodeOp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The query parameters whose values are secrets (or let one replay a flow) and never printed.
pub const SECRET_PARAMS: &[&str] = &[
    "code",
    "state",
    "nonce",
    "code_challenge",
    "code_verifier",
    "id_token_hint",
    "id_token",
    "access_token",
    "refresh_token",
    "client_secret",
    "session_state",
    "ticket",
    "token",
];

/// `url` with the values of [`SECRET_PARAMS`] (query and fragment) replaced by `***`.
pub fn redact_url(url: &Url) -> String {
    fn redact(pairs: url::form_urlencoded::Parse<'_>) -> String {
        let mut out = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in pairs {
            if SECRET_PARAMS.contains(&k.as_ref()) {
                out.append_pair(&k, "***");
            } else {
                out.append_pair(&k, &v);
            }
        }
        out.finish()
    }
    let mut url = url.clone();
    if url.query().is_some() {
        let q = redact(url.query_pairs());
        url.set_query(Some(&q));
    }
    if let Some(fragment) = url.fragment().map(str::to_owned) {
        let f = redact(url::form_urlencoded::parse(fragment.as_bytes()));
        url.set_fragment(Some(&f));
    }
    url.to_string()
}

/// A client secret: `Debug` prints `***`; read it with [`ClientSecret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct ClientSecret(String);

impl ClientSecret {
    /// Wraps a secret.
    pub fn new(secret: impl Into<String>) -> Self {
        Self(secret.into())
    }

    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ClientSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ClientSecret(***)")
    }
}

/// Which relying-party library.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RpKind {
    /// The npm package `openid-client` (certified), under Node.js.
    OpenIdClient,
    /// Python's Authlib, in the venv of [`ensure_python_venv`].
    Authlib,
}

/// How the relying party authenticates at the token endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenAuthMethod {
    /// HTTP Basic with the client id and secret.
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
    /// A public client: no secret, PKCE only.
    None,
}

impl TokenAuthMethod {
    /// The registered name (RFC 7591).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::None => "none",
        }
    }
}

/// What the relying party does: the happy path or one negative case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RpMode {
    /// Code flow with PKCE, id_token and userinfo, refresh with rotation (the rotated-out
    /// token refused), RP-initiated logout.
    Happy,
    /// Authorizes with `<redirect_uri>/unregistered`: the OP must show an error page and not
    /// redirect (the relying party reports `no_redirect`).
    WrongRedirectUri,
    /// Exchanges the code twice: the second exchange must fail with `invalid_grant`.
    ReusedCode,
    /// Exchanges the code with a wrong secret: `invalid_client`.
    WrongSecret,
    /// Authorizes without a PKCE challenge (for a public client): the authorization response
    /// must be the error `invalid_request`.
    MissingPkce,
}

impl RpMode {
    /// The mode's name on the relying party's command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Happy => "happy",
            Self::WrongRedirectUri => "wrong_redirect_uri",
            Self::ReusedCode => "reused_code",
            Self::WrongSecret => "wrong_secret",
            Self::MissingPkce => "missing_pkce",
        }
    }
}

/// A relying party's registration and settings.
#[derive(Clone, Debug)]
pub struct RpConfig {
    /// The OP's issuer; discovery is at `{issuer}/.well-known/openid-configuration`.
    pub issuer: String,
    /// The client id.
    pub client_id: String,
    /// The client secret; `None` for a public client.
    pub client_secret: Option<ClientSecret>,
    /// The registered redirect URI (nothing needs to listen there: the browser stops at it).
    pub redirect_uri: String,
    /// The registered post-logout redirect URI.
    pub post_logout_redirect_uri: String,
    /// The scopes asked for, space-separated.
    pub scope: String,
    /// The token endpoint authentication method.
    pub auth_method: TokenAuthMethod,
}

impl RpConfig {
    /// A confidential client (`client_secret_basic`) asking for `openid profile email`.
    pub fn confidential(issuer: &str, client_id: &str, secret: &str, redirect_uri: &str) -> Self {
        Self {
            issuer: issuer.to_string(),
            client_id: client_id.to_string(),
            client_secret: Some(ClientSecret::new(secret)),
            redirect_uri: redirect_uri.to_string(),
            post_logout_redirect_uri: format!("{}/signed-out", redirect_uri.trim_end_matches('/')),
            scope: "openid profile email".to_string(),
            auth_method: TokenAuthMethod::ClientSecretBasic,
        }
    }

    /// A public client (`none`, PKCE only) asking for `openid profile email`.
    pub fn public(issuer: &str, client_id: &str, redirect_uri: &str) -> Self {
        Self {
            client_secret: None,
            auth_method: TokenAuthMethod::None,
            ..Self::confidential(issuer, client_id, "", redirect_uri)
        }
    }
}

/// One line from the relying party.
#[derive(Clone, PartialEq)]
pub enum RpMessage {
    /// Send the browser here (the authorization request).
    Authorize(Url),
    /// Send the browser here (RP-initiated logout).
    Logout(Url),
    /// The flow completed: claims, userinfo, checks passed (see the scripts' headers).
    Result(Value),
    /// The flow failed with this error.
    Error(RpError),
}

impl fmt::Debug for RpMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Authorize(u) => f.debug_tuple("Authorize").field(&redact_url(u)).finish(),
            Self::Logout(u) => f.debug_tuple("Logout").field(&redact_url(u)).finish(),
            Self::Result(v) => f.debug_tuple("Result").field(v).finish(),
            Self::Error(e) => f.debug_tuple("Error").field(e).finish(),
        }
    }
}

impl RpMessage {
    /// Parses one line of the relying party's output.
    pub fn parse(line: &str) -> Result<Self, String> {
        let v: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
        let url = |key: &str| -> Result<Url, String> {
            let s = v[key].as_str().ok_or(format!("`{key}` is not a string"))?;
            Url::parse(s).map_err(|e| format!("`{key}` is not a URL: {e}"))
        };
        if v.get("authorize").is_some() {
            Ok(Self::Authorize(url("authorize")?))
        } else if v.get("logout").is_some() {
            Ok(Self::Logout(url("logout")?))
        } else if let Some(r) = v.get("result") {
            Ok(Self::Result(r.clone()))
        } else if let Some(e) = v.get("error") {
            Ok(Self::Error(RpError::from_json(e)))
        } else {
            let keys: Vec<&String> = v
                .as_object()
                .map(|o| o.keys().collect())
                .unwrap_or_default();
            Err(format!("unknown message with keys {keys:?}"))
        }
    }
}

/// The error a relying party reported: the RFC error code the library surfaced (or the
/// harness's own: `no_redirect`, `unexpected_redirect`, `state_mismatch`, ...).
#[derive(Clone, Debug, PartialEq)]
pub struct RpError {
    /// `invalid_grant`, `invalid_client`, `invalid_request`, `no_redirect`, ...
    pub code: String,
    /// The description the OP or library gave.
    pub description: String,
    /// The step that failed: `discovery`, `authorize`, `token`, `token_reuse`, `userinfo`,
    /// `refresh`, `logout`, ...
    pub step: String,
    /// The whole error object (e.g. `first_access_token_revoked` for `reused_code`).
    pub raw: Value,
}

impl RpError {
    fn from_json(e: &Value) -> Self {
        let s = |k: &str| e[k].as_str().unwrap_or_default().to_string();
        Self {
            code: s("code"),
            description: s("description"),
            step: s("step"),
            raw: e.clone(),
        }
    }
}

/// The test's answer to [`RpMessage::Authorize`] / [`RpMessage::Logout`].
#[derive(Clone, PartialEq)]
pub enum BrowserReply {
    /// The OP redirected the browser here.
    Callback(Url),
    /// The browser ended on a page that does not redirect.
    Stopped {
        /// Its HTTP status.
        status: u16,
        /// Its URL.
        url: Url,
    },
}

impl fmt::Debug for BrowserReply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Callback(u) => f.debug_tuple("Callback").field(&redact_url(u)).finish(),
            Self::Stopped { status, url } => f
                .debug_struct("Stopped")
                .field("status", status)
                .field("url", &redact_url(url))
                .finish(),
        }
    }
}

impl From<&Outcome> for BrowserReply {
    fn from(o: &Outcome) -> Self {
        match o {
            Outcome::Redirected(u) => Self::Callback(u.clone()),
            Outcome::Page(p) => Self::Stopped {
                status: p.status,
                url: p.url.clone(),
            },
        }
    }
}

impl BrowserReply {
    fn to_json(&self) -> Value {
        match self {
            Self::Callback(u) => json!({ "callback": u.as_str() }),
            Self::Stopped { status, url } => {
                json!({ "stopped": { "status": status, "url": url.as_str() } })
            }
        }
    }
}

/// A whole conversation with a relying party ([`Rp::run`]).
#[derive(Debug)]
pub struct RpRun {
    /// Where the authorization request took the browser.
    pub authorize: Option<Outcome>,
    /// Where the logout request took the browser.
    pub logout: Option<Outcome>,
    /// The relying party's last word.
    pub end: Result<Value, RpError>,
}

impl RpRun {
    /// The result, or a panic naming the error.
    pub fn result(&self) -> &Value {
        match &self.end {
            Ok(v) => v,
            Err(e) => panic!("the relying party failed: {e:?}"),
        }
    }

    /// The error, or a panic naming the unexpected result.
    pub fn error(&self) -> &RpError {
        match &self.end {
            Err(e) => e,
            Ok(v) => panic!("the relying party succeeded where it should fail: {v}"),
        }
    }
}

/// One relying-party process; killed on drop.
pub struct Rp {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
    /// Its stderr, for failure messages.
    pub stderr: StderrTail,
    /// Which library.
    pub kind: RpKind,
    /// Its settings.
    pub config: RpConfig,
    /// Its mode.
    pub mode: RpMode,
}

impl Rp {
    /// The relying party's command line (program and arguments; never the secret, which goes
    /// into its environment as `RP_CLIENT_SECRET`).
    pub fn command_line(kind: RpKind, config: &RpConfig, mode: RpMode) -> (PathBuf, Vec<String>) {
        let mut args = Vec::new();
        let program = match kind {
            RpKind::OpenIdClient => {
                args.push(path_arg(&harness_dir().join("rp-openid-client.mjs")));
                args.push(path_arg(&ensure_node_packages()));
                PathBuf::from("node")
            }
            RpKind::Authlib => {
                args.push(path_arg(&harness_dir().join("rp_authlib.py")));
                venv_python(&ensure_python_venv())
            }
        };
        for (flag, value) in [
            ("--issuer", config.issuer.as_str()),
            ("--client-id", &config.client_id),
            ("--redirect-uri", &config.redirect_uri),
            (
                "--post-logout-redirect-uri",
                &config.post_logout_redirect_uri,
            ),
            ("--scope", &config.scope),
            ("--auth-method", config.auth_method.as_str()),
            ("--mode", mode.as_str()),
        ] {
            args.push(flag.to_string());
            args.push(value.to_string());
        }
        (program, args)
    }

    /// Starts the relying party (inside a tokio runtime).
    ///
    /// # Panics
    /// When its runtime (Node.js, the venv's Python) cannot be started.
    pub fn spawn(kind: RpKind, config: RpConfig, mode: RpMode) -> Rp {
        let (program, args) = Self::command_line(kind, &config, mode);
        let mut cmd = tokio::process::Command::new(&program);
        cmd.args(&args)
            .env_remove("RP_CLIENT_SECRET")
            // No __pycache__ in the source tree.
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        if let Some(secret) = &config.client_secret {
            cmd.env("RP_CLIENT_SECRET", secret.expose());
        }
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("starting {} ({kind:?}): {e}", program.display()));
        let stderr = StderrTail::default();
        let mut pipe = child.stderr.take().unwrap();
        let tail = stderr.clone();
        tokio::spawn(async move {
            use tokio::io::AsyncReadExt;
            let mut buf = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                tail.push(&buf[..n]);
            }
        });
        Rp {
            stdin: child.stdin.take().unwrap(),
            lines: tokio::io::BufReader::new(child.stdout.take().unwrap()).lines(),
            child,
            stderr,
            kind,
            config,
            mode,
        }
    }

    /// The next line from the relying party.
    ///
    /// # Panics
    /// When it exits, says something unparsable or nothing within [`MESSAGE_TIMEOUT`] (the
    /// message shows its stderr).
    pub async fn next_message(&mut self) -> RpMessage {
        let line = match tokio::time::timeout(MESSAGE_TIMEOUT, self.lines.next_line()).await {
            Ok(Ok(Some(line))) => line,
            Ok(Ok(None)) => panic!(
                "{:?} exited without a result:\n{}",
                self.kind,
                self.stderr.text()
            ),
            Ok(Err(e)) => panic!("reading from {:?}: {e}\n{}", self.kind, self.stderr.text()),
            Err(_) => panic!(
                "{:?} said nothing for {MESSAGE_TIMEOUT:?}:\n{}",
                self.kind,
                self.stderr.text()
            ),
        };
        RpMessage::parse(&line).unwrap_or_else(|e| {
            panic!(
                "{:?} said something unexpected ({e})\n{}",
                self.kind,
                self.stderr.text()
            )
        })
    }

    /// Answers the relying party.
    pub async fn send(&mut self, reply: &BrowserReply) {
        let mut line = reply.to_json().to_string();
        line.push('\n');
        self.stdin
            .write_all(line.as_bytes())
            .await
            .unwrap_or_else(|e| panic!("writing to {:?}: {e}\n{}", self.kind, self.stderr.text()));
        self.stdin.flush().await.unwrap();
    }

    /// Plays the whole conversation: each request the relying party makes is followed by
    /// `browser` until the registered redirect URI (or post-logout redirect URI), or a page it
    /// cannot get past; ends with the relying party's result or error, after it exited with 0.
    ///
    /// # Panics
    /// When the browser fails (transport error, redirect loop) or the process misbehaves.
    pub async fn run(&mut self, browser: &Browser) -> RpRun {
        let mut run = RpRun {
            authorize: None,
            logout: None,
            end: Ok(Value::Null),
        };
        loop {
            let (url, stop) = match self.next_message().await {
                RpMessage::Authorize(url) => (url, self.config.redirect_uri.clone()),
                RpMessage::Logout(url) => (url, self.config.post_logout_redirect_uri.clone()),
                RpMessage::Result(v) => {
                    run.end = Ok(v);
                    break;
                }
                RpMessage::Error(e) => {
                    run.end = Err(e);
                    break;
                }
            };
            let outcome = browser
                .navigate(&url, &[stop.as_str()])
                .await
                .unwrap_or_else(|e| panic!("the browser failed: {e}"));
            self.send(&BrowserReply::from(&outcome)).await;
            if run.authorize.is_none() {
                run.authorize = Some(outcome);
            } else {
                run.logout = Some(outcome);
            }
        }
        let status = tokio::time::timeout(MESSAGE_TIMEOUT, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("{:?} did not exit after its last word", self.kind))
            .unwrap();
        assert!(
            status.success(),
            "{:?} exited with {status}:\n{}",
            self.kind,
            self.stderr.text()
        );
        run
    }
}

fn path_arg(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// Where [`Browser::navigate`] ended.
#[derive(Clone)]
pub enum Outcome {
    /// A redirect to one of the stop prefixes (not fetched).
    Redirected(Url),
    /// A page the browser could not get past (no redirect, no handler step).
    Page(Page),
}

impl fmt::Debug for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Redirected(u) => f.debug_tuple("Redirected").field(&redact_url(u)).finish(),
            Self::Page(p) => f.debug_tuple("Page").field(p).finish(),
        }
    }
}

impl Outcome {
    /// The redirect target, or a panic naming the page.
    pub fn redirected(&self) -> &Url {
        match self {
            Self::Redirected(u) => u,
            Self::Page(p) => panic!("the browser stopped on a page: {p:?}"),
        }
    }

    /// The page, or a panic naming the redirect.
    pub fn page(&self) -> &Page {
        match self {
            Self::Page(p) => p,
            Self::Redirected(u) => panic!("the browser was redirected to {}", redact_url(u)),
        }
    }
}

/// A page the browser received.
#[derive(Clone)]
pub struct Page {
    /// Its URL.
    pub url: Url,
    /// Its HTTP status.
    pub status: u16,
    /// Its body.
    pub body: String,
}

impl fmt::Debug for Page {
    // The body may hold secrets (a form's hidden state): its title and size only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Page")
            .field("url", &redact_url(&self.url))
            .field("status", &self.status)
            .field("title", &self.title())
            .field("body_bytes", &self.body.len())
            .finish()
    }
}

impl Page {
    /// The text of its `<title>`, if any.
    pub fn title(&self) -> Option<String> {
        let lower = self.body.to_ascii_lowercase();
        let start = lower.find("<title")?;
        let open_end = start + lower[start..].find('>')? + 1;
        let close = open_end + lower[open_end..].find("</title>")?;
        Some(decode_entities(self.body[open_end..close].trim()))
    }

    /// Its `<form>`s, with actions resolved against its URL.
    pub fn forms(&self) -> Vec<Form> {
        parse_forms(&self.body, &self.url)
    }
}

/// What a [`PageHandler`] tells the browser to do next.
#[derive(Clone)]
pub enum Navigation {
    /// GET this URL.
    Get(Url),
    /// POST this form (`application/x-www-form-urlencoded`).
    Post {
        /// The form's action.
        url: Url,
        /// Its fields, in order.
        fields: Vec<(String, String)>,
    },
}

impl fmt::Debug for Navigation {
    // Field values are often secrets (xsrf tokens, states): names only.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Get(u) => f.debug_tuple("Get").field(&redact_url(u)).finish(),
            Self::Post { url, fields } => f
                .debug_struct("Post")
                .field("url", &redact_url(url))
                .field("fields", &fields.iter().map(|(k, _)| k).collect::<Vec<_>>())
                .finish(),
        }
    }
}

/// A form on a page.
#[derive(Clone, Debug)]
pub struct Form {
    /// The resolved `action`.
    pub action: Url,
    /// `get` or `post` (lower case).
    pub method: String,
    /// The `id` attribute, if any.
    pub id: Option<String>,
    /// Its successful controls without a submit button: inputs (checkboxes and radios only
    /// when checked), textareas, selects (the selected or first option).
    pub fields: Vec<(String, String)>,
    /// Its submit buttons (`<button>` and `<input type=submit>`).
    pub buttons: Vec<FormButton>,
}

/// A submit button of a [`Form`].
#[derive(Clone, Debug)]
pub struct FormButton {
    /// Its `name`, if any.
    pub name: Option<String>,
    /// Its `value`.
    pub value: String,
    /// Its label (the text inside `<button>`, or an input's value).
    pub label: String,
}

impl Form {
    /// Submits it with its first submit button.
    pub fn submit(&self) -> Navigation {
        self.submit_button(self.buttons.first())
    }

    /// Submits it with the button whose label or value is `label`; `None` when there is none.
    pub fn submit_with(&self, label: &str) -> Option<Navigation> {
        let button = self
            .buttons
            .iter()
            .find(|b| b.label == label || b.value == label)?;
        Some(self.submit_button(Some(button)))
    }

    fn submit_button(&self, button: Option<&FormButton>) -> Navigation {
        let mut fields = self.fields.clone();
        if let Some(FormButton {
            name: Some(name),
            value,
            ..
        }) = button
        {
            fields.push((name.clone(), value.clone()));
        }
        if self.method == "post" {
            Navigation::Post {
                url: self.action.clone(),
                fields,
            }
        } else {
            let mut url = self.action.clone();
            url.query_pairs_mut().clear().extend_pairs(fields);
            Navigation::Get(url)
        }
    }
}

/// Answers a page the browser cannot follow by itself: the next step, or `None` to stop there.
pub type PageHandler = dyn Fn(&Page) -> Option<Navigation> + Send + Sync;

/// A [`PageHandler`] step: a page with exactly one form is submitted (with its first button),
/// e.g. an OP's auto-submitting logout confirmation for a browser without JavaScript.
pub fn submit_single_form(page: &Page) -> Option<Navigation> {
    match page.forms().as_slice() {
        [form] => Some(form.submit()),
        _ => None,
    }
}

/// Why [`Browser::navigate`] failed.
#[derive(Debug)]
pub enum BrowserError {
    /// More than the allowed hops (a redirect loop?); the last URL, redacted.
    TooManyHops(String),
    /// The request failed (connection refused, timeout, ...); the URL, redacted.
    Http(String, reqwest::Error),
    /// A `Location` header that is no URL.
    BadLocation(String),
}

impl fmt::Display for BrowserError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooManyHops(u) => write!(f, "too many hops, the last to {u}"),
            // reqwest's error names the URL, secrets included: its kind only.
            Self::Http(u, e) => write!(
                f,
                "requesting {u} failed ({})",
                if e.is_timeout() {
                    "timeout"
                } else if e.is_connect() {
                    "connect"
                } else {
                    "transport"
                }
            ),
            Self::BadLocation(l) => write!(f, "bad Location header {l:?}"),
        }
    }
}

impl std::error::Error for BrowserError {}

/// A browser for flows without JavaScript: keeps cookies (host-only, path-matched, with
/// expiry, as RFC 6265), follows redirects by hand, stops at a redirect to one of the stop
/// prefixes without fetching it, and asks its [`PageHandler`] what to do with other pages.
pub struct Browser {
    http: reqwest::Client,
    jar: Mutex<CookieJar>,
    max_hops: usize,
    handler: Box<PageHandler>,
}

impl Default for Browser {
    fn default() -> Self {
        Self::new()
    }
}

impl Browser {
    /// A browser that stops on every page (no handler), after at most 20 hops.
    pub fn new() -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(20))
                .build()
                .unwrap(),
            jar: Mutex::new(CookieJar::default()),
            max_hops: 20,
            handler: Box::new(|_| None),
        }
    }

    /// Sets the handler of pages that do not redirect.
    pub fn on_page(
        mut self,
        handler: impl Fn(&Page) -> Option<Navigation> + Send + Sync + 'static,
    ) -> Self {
        self.handler = Box::new(handler);
        self
    }

    /// Sets the most requests one navigation may make.
    pub fn with_max_hops(mut self, hops: usize) -> Self {
        self.max_hops = hops;
        self
    }

    /// The cookie header it would send to `url` (for assertions).
    pub fn cookies_for(&self, url: &Url) -> Option<String> {
        self.jar.lock().unwrap().header_for(url, SystemTime::now())
    }

    /// Starts at `start` and goes on until a redirect to a URL beginning with one of `stop_at`,
    /// or a page the handler does not answer.
    pub async fn navigate(&self, start: &Url, stop_at: &[&str]) -> Result<Outcome, BrowserError> {
        let mut next = Navigation::Get(start.clone());
        for _ in 0..self.max_hops {
            let url = match &next {
                Navigation::Get(u) | Navigation::Post { url: u, .. } => u.clone(),
            };
            let mut req = match &next {
                Navigation::Get(u) => self.http.get(u.clone()),
                Navigation::Post { url, fields } => self.http.post(url.clone()).form(fields),
            };
            if let Some(cookies) = self.cookies_for(&url) {
                req = req.header(reqwest::header::COOKIE, cookies);
            }
            let resp = req
                .send()
                .await
                .map_err(|e| BrowserError::Http(redact_url(&url), e))?;
            {
                let mut jar = self.jar.lock().unwrap();
                for h in resp.headers().get_all(reqwest::header::SET_COOKIE) {
                    if let Ok(h) = h.to_str() {
                        jar.store(&url, h, SystemTime::now());
                    }
                }
            }
            let status = resp.status();
            if status.is_redirection()
                && let Some(location) = resp.headers().get(reqwest::header::LOCATION)
            {
                let location = location.to_str().unwrap_or_default();
                let target = url
                    .join(location)
                    .map_err(|_| BrowserError::BadLocation(location.chars().take(80).collect()))?;
                if stop_at.iter().any(|s| target.as_str().starts_with(s)) {
                    return Ok(Outcome::Redirected(target));
                }
                // 301/302/303 become GET, as browsers do; 307/308 re-POSTs are not needed here.
                next = Navigation::Get(target);
                continue;
            }
            let page = Page {
                url,
                status: status.as_u16(),
                body: resp
                    .text()
                    .await
                    .map_err(|e| BrowserError::Http("(body)".into(), e))?,
            };
            match (self.handler)(&page) {
                Some(step) => next = step,
                None => return Ok(Outcome::Page(page)),
            }
        }
        Err(BrowserError::TooManyHops(match &next {
            Navigation::Get(u) | Navigation::Post { url: u, .. } => redact_url(u),
        }))
    }
}

/// An RFC 6265 cookie store, host-only (the loopback services have no domains).
#[derive(Default, Debug)]
pub struct CookieJar {
    cookies: Vec<StoredCookie>,
}

#[derive(Debug)]
struct StoredCookie {
    host: String,
    name: String,
    value: String,
    path: String,
    expires: Option<SystemTime>,
}

impl CookieJar {
    /// Stores (or, when expired, removes) the cookie of one `Set-Cookie` header `url` sent.
    pub fn store(&mut self, url: &Url, header: &str, now: SystemTime) {
        let mut parts = header.split(';');
        let Some((name, value)) = parts.next().and_then(|nv| nv.split_once('=')) else {
            return;
        };
        let (name, value) = (name.trim().to_string(), value.trim().to_string());
        if name.is_empty() {
            return;
        }
        let mut path = None;
        let mut expires = None;
        let mut max_age = None;
        for attr in parts {
            let (k, v) = attr.split_once('=').unwrap_or((attr, ""));
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
            match k.as_str() {
                "path" if v.starts_with('/') => path = Some(v.to_string()),
                "expires" => expires = parse_http_date(v),
                "max-age" => max_age = v.parse::<i64>().ok(),
                _ => {}
            }
        }
        let expires = match max_age {
            Some(s) if s <= 0 => Some(UNIX_EPOCH),
            Some(s) => Some(now + Duration::from_secs(s as u64)),
            None => expires,
        };
        let host = url.host_str().unwrap_or_default().to_string();
        let path = path.unwrap_or_else(|| default_path(url));
        self.cookies
            .retain(|c| !(c.host == host && c.name == name && c.path == path));
        if expires.is_none_or(|t| t > now) {
            self.cookies.push(StoredCookie {
                host,
                name,
                value,
                path,
                expires,
            });
        }
    }

    /// The `Cookie` header for a request to `url`: longer paths first, as RFC 6265 §5.4.
    pub fn header_for(&self, url: &Url, now: SystemTime) -> Option<String> {
        let host = url.host_str()?;
        let mut matching: Vec<&StoredCookie> = self
            .cookies
            .iter()
            .filter(|c| c.host == host && path_matches(url.path(), &c.path))
            .filter(|c| c.expires.is_none_or(|t| t > now))
            .collect();
        if matching.is_empty() {
            return None;
        }
        matching.sort_by_key(|c| std::cmp::Reverse(c.path.len()));
        Some(
            matching
                .iter()
                .map(|c| format!("{}={}", c.name, c.value))
                .collect::<Vec<_>>()
                .join("; "),
        )
    }
}

/// RFC 6265 §5.1.4 default-path.
fn default_path(url: &Url) -> String {
    let p = url.path();
    match p.rfind('/') {
        Some(0) | None => "/".to_string(),
        Some(i) => p[..i].to_string(),
    }
}

/// RFC 6265 §5.1.4 path-match.
fn path_matches(request: &str, cookie: &str) -> bool {
    request == cookie
        || (request.starts_with(cookie)
            && (cookie.ends_with('/') || request[cookie.len()..].starts_with('/')))
}

/// An IMF-fixdate (`Thu, 01 Jan 1970 00:00:00 GMT`, RFC 9110 §5.6.7); `None` otherwise.
pub fn parse_http_date(s: &str) -> Option<SystemTime> {
    let fields: Vec<&str> = s.split_whitespace().collect();
    let [_, day, month, year, time, "GMT"] = fields.as_slice() else {
        return None;
    };
    let month = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ]
    .iter()
    .position(|m| m.eq_ignore_ascii_case(month))? as i64
        + 1;
    let (day, year): (i64, i64) = (day.parse().ok()?, year.parse().ok()?);
    let hms: Vec<i64> = time
        .split(':')
        .map(|t| t.parse().ok())
        .collect::<Option<_>>()?;
    let [h, m, sec] = hms.as_slice() else {
        return None;
    };
    if !(1..=31).contains(&day) || *h > 23 || *m > 59 || *sec > 60 {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + m * 60 + sec;
    if secs >= 0 {
        Some(UNIX_EPOCH + Duration::from_secs(secs as u64))
    } else {
        Some(UNIX_EPOCH)
    }
}

/// Decodes the HTML character references forms and titles use.
pub fn decode_entities(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        let decoded = rest.find(';').filter(|&end| end <= 10).and_then(|end| {
            let entity = &rest[1..end];
            let c = match entity {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "nbsp" => Some('\u{a0}'),
                _ => entity
                    .strip_prefix("#x")
                    .or_else(|| entity.strip_prefix("#X"))
                    .and_then(|h| u32::from_str_radix(h, 16).ok())
                    .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                    .and_then(char::from_u32),
            };
            c.map(|c| (c, end))
        });
        match decoded {
            Some((c, end)) => {
                out.push(c);
                rest = &rest[end + 1..];
            }
            None => {
                out.push('&');
                rest = &rest[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The attributes of one start tag (`<input name="a" value='b' checked>`), names lower-cased,
/// values decoded; `tag` is the text between `<name` and `>`.
fn attributes(tag: &str) -> HashMap<String, String> {
    let mut attrs = HashMap::new();
    let bytes = tag.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        while i < bytes.len() && (bytes[i].is_ascii_whitespace() || bytes[i] == b'/') {
            i += 1;
        }
        let start = i;
        while i < bytes.len() && !bytes[i].is_ascii_whitespace() && !b"=/>".contains(&bytes[i]) {
            i += 1;
        }
        if start == i {
            i += 1;
            continue;
        }
        let name = tag[start..i].to_ascii_lowercase();
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let mut value = String::new();
        if i < bytes.len() && bytes[i] == b'=' {
            i += 1;
            while i < bytes.len() && bytes[i].is_ascii_whitespace() {
                i += 1;
            }
            if i < bytes.len() && (bytes[i] == b'"' || bytes[i] == b'\'') {
                let quote = bytes[i];
                let vstart = i + 1;
                i = vstart;
                while i < bytes.len() && bytes[i] != quote {
                    i += 1;
                }
                value = decode_entities(&tag[vstart..i.min(tag.len())]);
                i += 1;
            } else {
                let vstart = i;
                while i < bytes.len() && !bytes[i].is_ascii_whitespace() && bytes[i] != b'>' {
                    i += 1;
                }
                value = decode_entities(&tag[vstart..i]);
            }
        }
        attrs.entry(name).or_insert(value);
    }
    attrs
}

/// The start tags `<name ...>` in `html` (case-insensitive), each with its byte range.
fn start_tags<'a>(
    html: &'a str,
    lower: &'a str,
    name: &'a str,
) -> impl Iterator<Item = (usize, usize, &'a str)> + 'a {
    let open = format!("<{name}");
    let mut from = 0;
    std::iter::from_fn(move || {
        loop {
            let at = from + lower[from..].find(&open)?;
            let after = at + open.len();
            let boundary = lower[after..].chars().next()?;
            from = after;
            if boundary.is_ascii_whitespace() || boundary == '>' || boundary == '/' {
                let end = after + lower[after..].find('>')?;
                from = end + 1;
                return Some((at, end + 1, &html[after..end]));
            }
        }
    })
}

fn parse_forms(html: &str, base: &Url) -> Vec<Form> {
    let lower = html.to_ascii_lowercase();
    let mut forms = Vec::new();
    for (_, open_end, tag) in start_tags(html, &lower, "form") {
        let attrs = attributes(tag);
        let close = lower[open_end..]
            .find("</form")
            .map_or(html.len(), |i| open_end + i);
        let (inner, inner_lower) = (&html[open_end..close], &lower[open_end..close]);
        let action = match attrs.get("action").map(String::as_str) {
            None | Some("") => base.clone(),
            Some(a) => match base.join(a) {
                Ok(u) => u,
                Err(_) => continue,
            },
        };
        let mut fields = Vec::new();
        let mut buttons = Vec::new();
        // Controls in document order: inputs, buttons, textareas, selects.
        let mut controls: Vec<(usize, &str, usize, &str)> = Vec::new();
        for kind in ["input", "button", "textarea", "select"] {
            for (at, end, tag) in start_tags(inner, inner_lower, kind) {
                controls.push((at, kind, end, tag));
            }
        }
        controls.sort_by_key(|c| c.0);
        for (_, kind, end, tag) in controls {
            let a = attributes(tag);
            let name = a.get("name").cloned();
            let closing = |t: &str| inner_lower[end..].find(t).map(|i| &inner[end..end + i]);
            match kind {
                "input" => {
                    let ty = a
                        .get("type")
                        .map_or("text".to_string(), |t| t.to_ascii_lowercase());
                    let value = a.get("value").cloned().unwrap_or_default();
                    match ty.as_str() {
                        "submit" | "image" => buttons.push(FormButton {
                            name,
                            label: value.clone(),
                            value,
                        }),
                        "button" | "reset" | "file" => {}
                        "checkbox" | "radio" => {
                            if let (Some(n), true) = (name, a.contains_key("checked")) {
                                let v = a.get("value").cloned().unwrap_or_else(|| "on".into());
                                fields.push((n, v));
                            }
                        }
                        _ => {
                            if let Some(n) = name {
                                fields.push((n, value));
                            }
                        }
                    }
                }
                "button" => {
                    let ty = a
                        .get("type")
                        .map_or("submit".to_string(), |t| t.to_ascii_lowercase());
                    if ty == "submit" {
                        let label = closing("</button").map(strip_tags).unwrap_or_default();
                        buttons.push(FormButton {
                            name,
                            value: a.get("value").cloned().unwrap_or_default(),
                            label,
                        });
                    }
                }
                "textarea" => {
                    if let Some(n) = name {
                        fields.push((
                            n,
                            decode_entities(closing("</textarea").unwrap_or_default()),
                        ));
                    }
                }
                _ => {
                    let Some(n) = name else { continue };
                    let body = closing("</select").unwrap_or_default();
                    let body_lower = body.to_ascii_lowercase();
                    let options: Vec<HashMap<String, String>> =
                        start_tags(body, &body_lower, "option")
                            .map(|(_, _, t)| attributes(t))
                            .collect();
                    if let Some(o) = options
                        .iter()
                        .find(|o| o.contains_key("selected"))
                        .or(options.first())
                    {
                        fields.push((n, o.get("value").cloned().unwrap_or_default()));
                    }
                }
            }
        }
        forms.push(Form {
            action,
            method: attrs
                .get("method")
                .map_or("get".to_string(), |m| m.to_ascii_lowercase()),
            id: attrs.get("id").cloned(),
            fields,
            buttons,
        });
    }
    forms
}

fn strip_tags(s: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in s.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    decode_entities(out.trim())
}

/// What every conformant OP makes a relying party report, shared by the suites against the
/// certified npm `oidc-provider` and against the gateway: the expectations of one suite are
/// the other's.
pub mod expect {
    use super::{RpConfig, RpRun, redact_url};
    use serde_json::Value;
    use url::Url;

    fn query(url: &Url, key: &str) -> Option<String> {
        url.query_pairs()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.into_owned())
    }

    /// A complete happy path: `iss` on the callback (RFC 9207), every check of the script
    /// passed, refresh rotated with the old token refused and its family revoked, the logout
    /// redirect reached, and no code or state in what the relying party printed. Returns the
    /// result for the OP-specific claims.
    pub fn full_flow<'a>(run: &'a RpRun, config: &RpConfig, issuer: &str) -> &'a Value {
        let r = run.result();
        assert_eq!(r["claims"]["iss"], issuer, "{r}");
        assert_eq!(r["claims"]["aud"], config.client_id.as_str(), "{r}");
        assert!(
            r["claims"]["exp"].as_u64().unwrap_or(0) > r["claims"]["iat"].as_u64().unwrap_or(0),
            "{r}"
        );
        assert_eq!(r["userinfo"]["sub"], r["claims"]["sub"], "{r}");
        assert_eq!(r["iss_parameter"], true, "{r}");
        assert_eq!(r["refresh"]["rotated"], true, "{r}");
        assert_eq!(r["refresh"]["old_refused_with"], "invalid_grant", "{r}");
        assert_eq!(r["refresh"]["family_revoked"], true, "{r}");
        let checks: Vec<&str> = r["checks"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        for check in [
            "discovery",
            "state",
            "iss",
            "pkce",
            "code_exchange",
            "id_token",
            "userinfo",
            "refresh",
            "rotation",
            "old_refresh_refused",
            "logout_state",
        ] {
            assert!(checks.contains(&check), "{check} missing from {checks:?}");
        }
        let callback = run.authorize.as_ref().unwrap().redirected();
        assert!(
            callback.as_str().starts_with(&config.redirect_uri),
            "{}",
            redact_url(callback)
        );
        let code = query(callback, "code").expect("a code on the callback");
        let state = query(callback, "state").expect("a state on the callback");
        let signed_out = run.logout.as_ref().unwrap().redirected();
        assert!(
            signed_out
                .as_str()
                .starts_with(&config.post_logout_redirect_uri),
            "{}",
            redact_url(signed_out)
        );
        let printed = r.to_string();
        assert!(
            !printed.contains(&code) && !printed.contains(&state),
            "{printed}"
        );
        assert!(r["claims"].get("nonce").is_none(), "{r}");
        r
    }

    /// An unregistered redirect URI: an error page on the OP (status 400), never a redirect.
    pub fn no_redirect(run: &RpRun, issuer: &str) {
        let page = run.authorize.as_ref().unwrap().page();
        assert_eq!(page.status, 400, "{page:?}");
        assert!(page.url.as_str().starts_with(issuer), "{page:?}");
        assert!(page.body.contains("redirect_uri"), "{}", page.body);
        let e = run.error();
        assert_eq!(
            (e.code.as_str(), e.step.as_str()),
            ("no_redirect", "authorize"),
            "{e:?}"
        );
        assert!(run.logout.is_none());
    }

    /// A code redeemed twice: `invalid_grant`, and what the first redemption issued revoked.
    pub fn reused_code(run: &RpRun) {
        let e = run.error();
        assert_eq!(
            (e.code.as_str(), e.step.as_str()),
            ("invalid_grant", "token_reuse"),
            "{e:?}"
        );
        assert_eq!(e.raw["first_access_token_revoked"], true, "{e:?}");
    }

    /// A wrong client secret: `invalid_client` at the token endpoint, after an authorization
    /// that went through.
    pub fn wrong_secret(run: &RpRun) {
        let e = run.error();
        assert_eq!(
            (e.code.as_str(), e.step.as_str()),
            ("invalid_client", "token"),
            "{e:?}"
        );
        run.authorize.as_ref().unwrap().redirected();
    }

    /// A public client without PKCE: `invalid_request` on the callback, with `iss`, no code.
    pub fn missing_pkce(run: &RpRun, issuer: &str) {
        let callback = run.authorize.as_ref().unwrap().redirected();
        assert_eq!(
            query(callback, "error").as_deref(),
            Some("invalid_request"),
            "{}",
            redact_url(callback)
        );
        assert!(query(callback, "code").is_none());
        assert_eq!(query(callback, "iss").as_deref(), Some(issuer));
        let e = run.error();
        assert_eq!(
            (e.code.as_str(), e.step.as_str()),
            ("invalid_request", "authorize"),
            "{e:?}"
        );
    }
}

/// The six tests of a relying party suite, per library: `$module => $kind` runs the suite's own
/// `happy`, `wrong_redirect_uri`, `reused_code`, `wrong_secret` and `missing_pkce` with it.
#[macro_export]
macro_rules! rp_suite {
    ($($module:ident => $kind:expr),* $(,)?) => {$(
        mod $module {
            use super::*;

            #[tokio::test]
            async fn happy_path_confidential_client() {
                happy($kind, false).await;
            }

            #[tokio::test]
            async fn happy_path_public_client() {
                happy($kind, true).await;
            }

            #[tokio::test]
            async fn wrong_redirect_uri_is_refused_without_redirect() {
                wrong_redirect_uri($kind).await;
            }

            #[tokio::test]
            async fn reused_code_is_invalid_grant_and_revokes() {
                reused_code($kind).await;
            }

            #[tokio::test]
            async fn wrong_secret_is_invalid_client() {
                wrong_secret($kind).await;
            }

            #[tokio::test]
            async fn public_client_without_pkce_is_invalid_request() {
                missing_pkce($kind).await;
            }
        }
    )*};
}
