//! A private `redis-server` process on a free loopback port, for tests and benchmarks that need
//! a real Redis (shared stores, replicas, outages): started with persistence off, killed on
//! drop; [`kill`](RedisServer::kill) and [`restart`](RedisServer::restart) simulate a crash and
//! an empty restart on the same port.
//!
//! Needs `redis-server` on `PATH` (Debian package `redis-server`; `cargo xtask ci` installs
//! it). Without it, [`RedisServer::start`] panics with [`INSTALL_HINT`]: a test never skips
//! silently.
//!
//! ```no_run
//! let redis = unilogin_testkit::redis_server::RedisServer::start();
//! assert!(redis.url().starts_with("redis://127.0.0.1:"));
//! ```

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// What a test without `redis-server` says.
pub const INSTALL_HINT: &str = "redis-server is not on PATH: install redis-server (Debian package redis-server) or run cargo xtask ci";

/// A `redis-server` process of our own on a free loopback port; killed on drop.
#[derive(Debug)]
pub struct RedisServer {
    /// The loopback port it listens on (kept across [`restart`](Self::restart)).
    pub port: u16,
    child: Option<Child>,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

impl RedisServer {
    /// Starts a server and waits until it answers `PING`; panics with [`INSTALL_HINT`] if there
    /// is no binary.
    pub fn start() -> Self {
        let mut server = Self {
            port: free_port(),
            child: None,
        };
        server.restart();
        server
    }

    /// `redis://127.0.0.1:PORT/0`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// Kills the server (SIGKILL: no shutdown, like a crash).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// (Re)starts an empty server on the same port and waits until it answers.
    pub fn restart(&mut self) {
        self.kill();
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let child = match child {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!("{INSTALL_HINT}"),
            Err(e) => panic!("cannot start redis-server: {e}"),
        };
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !ping(self.port) {
            assert!(
                Instant::now() < deadline,
                "redis-server did not come up on port {}",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Whether a Redis on `port` answers `PING`.
pub fn ping(port: u16) -> bool {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
    if s.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 7];
    s.read_exact(&mut buf).is_ok() && &buf == b"+PONG\r\n"
}
