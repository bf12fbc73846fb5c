//! Step "facade examples": every example of the `unilogin` facade is built once with
//! `--features full` (the feature set the facade feature matrix builds too, so the two share
//! their artifacts) and each binary is run once; every one must exit 0 within
//! [`EXAMPLE_TIMEOUT`]. The examples are listed by `cargo build --message-format=json`, so a new
//! file in `crates/unilogin/examples/` is run without being named here; a compiler warning in
//! one fails the step (the workspace clippy run only sees the examples whose features the
//! workspace unifies).
//!
//! The `redis` example gets a private `redis-server` (the provisioned binary) on a free loopback
//! port through `REDIS_URL`; the `sql` example uses its SQLite default (or `DATABASE_URL` when
//! the environment sets one).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::Result;
use crate::util::on_path;

/// The facade package.
const FACADE: &str = "unilogin";
/// How long one example may run.
pub const EXAMPLE_TIMEOUT: Duration = Duration::from_secs(120);
/// Arguments an example needs to finish on its own (a server example's self-test).
const ARGS: &[(&str, &[&str])] = &[
    ("protected_api", &["--self-test"]),
    ("jsapi_dingtalk", &["--self-test"]),
    ("jsapi_feishu", &["--self-test"]),
    ("jsapi_wecom", &["--self-test"]),
];

/// Builds the facade's examples with `--features full` and runs each once.
pub fn facade_examples(root: &Path) -> Result {
    let examples = build(root)?;
    if examples.is_empty() {
        return Err(format!(
            "`cargo build -p {FACADE} --examples` built no example"
        ));
    }
    let redis = RedisServer::start()?;
    let redis_url = redis.url();
    let mut timings = Vec::new();
    for (name, exe) in &examples {
        let args = ARGS
            .iter()
            .find(|(n, _)| n == name)
            .map_or(&[][..], |(_, a)| *a);
        let mut envs: Vec<(&str, &str)> = Vec::new();
        if name == "redis" {
            envs.push(("REDIS_URL", &redis_url));
        }
        println!("-- example `{name}` {}", args.join(" "));
        let t = Instant::now();
        run_example(root, exe, args, &envs).map_err(|e| format!("example `{name}`: {e}"))?;
        timings.push(format!("{name} {:.1?}", t.elapsed()));
    }
    println!("-- examples ran: {}", timings.join(", "));
    Ok(())
}

/// `cargo build -p unilogin --features full --examples`, returning each example's name and
/// executable. Fails on a compiler warning in the facade's examples.
fn build(root: &Path) -> Result<Vec<(String, PathBuf)>> {
    let args = [
        "build",
        "-p",
        FACADE,
        "--features",
        "full",
        "--examples",
        "--message-format=json",
    ];
    let manifest = root.join("crates").join(FACADE).join("Cargo.toml");
    let canonical = std::fs::canonicalize(&manifest).ok();
    println!("$ cargo {}", args.join(" "));
    let out = Command::new("cargo")
        .args(args)
        .current_dir(root)
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("could not start `cargo`: {e}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let mut examples = Vec::new();
    let mut warnings = 0;
    for line in stdout.lines() {
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let ours = msg["target"]["kind"]
            .as_array()
            .is_some_and(|k| k.iter().any(|k| k == "example"))
            && msg["manifest_path"].as_str().is_some_and(|p| {
                Path::new(p) == manifest
                    || std::fs::canonicalize(p).is_ok_and(|p| Some(p) == canonical)
            });
        match msg["reason"].as_str() {
            Some("compiler-message") => {
                if let Some(rendered) = msg["message"]["rendered"].as_str() {
                    eprint!("{rendered}");
                }
                if ours && msg["message"]["level"] == "warning" {
                    warnings += 1;
                }
            }
            Some("compiler-artifact") if ours => {
                if let (Some(name), Some(exe)) =
                    (msg["target"]["name"].as_str(), msg["executable"].as_str())
                {
                    examples.push((name.to_string(), PathBuf::from(exe)));
                }
            }
            _ => {}
        }
    }
    if !out.status.success() {
        return Err(format!(
            "`cargo {}` failed ({})",
            args.join(" "),
            out.status
        ));
    }
    if warnings > 0 {
        return Err(format!(
            "the facade's examples have {warnings} compiler warning(s)"
        ));
    }
    examples.sort();
    Ok(examples)
}

/// Runs `exe` in `root`, its output shown, failing on a non-zero exit or after
/// [`EXAMPLE_TIMEOUT`].
fn run_example(root: &Path, exe: &Path, args: &[&str], envs: &[(&str, &str)]) -> Result {
    let mut child = Command::new(exe)
        .args(args)
        .envs(envs.iter().copied())
        .current_dir(root)
        .stdin(Stdio::null())
        .spawn()
        .map_err(|e| format!("could not start {}: {e}", exe.display()))?;
    let deadline = Instant::now() + EXAMPLE_TIMEOUT;
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => return Err(format!("exited with {status}")),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "still running after {:?}: stopped",
                    EXAMPLE_TIMEOUT
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("waiting for it: {e}")),
        }
    }
}

/// A private `redis-server` on a free loopback port, stopped on drop.
struct RedisServer {
    port: u16,
    child: Child,
}

impl RedisServer {
    fn start() -> Result<Self> {
        if !on_path("redis-server") {
            return Err(
                "redis-server is not on PATH (the `redis` example needs it): install the Debian \
                 package redis-server, or run `cargo xtask ci` without --skip-provision"
                    .into(),
            );
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .map_err(|e| format!("no free loopback port for redis-server: {e}"))?;
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start redis-server: {e}"))?;
        let server = Self { port, child };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !server.answers() {
            if Instant::now() >= deadline {
                return Err(format!("redis-server did not answer on 127.0.0.1:{port}"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(server)
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    fn answers(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
        let mut buf = [0u8; 7];
        s.write_all(b"PING\r\n").is_ok() && s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
