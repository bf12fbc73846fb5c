//! Shared by the Redis tests and the multi-process benchmark: a private `redis-server` process,
//! a loopback token endpoint that counts its calls, and the worker a child process runs.

#![allow(dead_code)]

use std::io::{BufRead, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use unilogin_core::token_cache::{FetchedToken, TokenCache, TokenKey};
use unilogin_core::{AccessToken, Error, PlatformName, TenantId};
use unilogin_redis::RedisStore;

pub use unilogin_testkit::redis_server::RedisServer;

/// A loopback token endpoint: `GET /token?app=NAME` answers after `delay` with a fresh token and
/// `expires_in`, counting calls.
pub struct TokenEndpoint {
    pub url: String,
    pub calls: Arc<AtomicU64>,
}

pub async fn token_endpoint(delay: Duration, expires_in: u64) -> TokenEndpoint {
    use axum::extract::{Query, State};
    let calls = Arc::new(AtomicU64::new(0));
    let app = axum::Router::new()
        .route(
            "/token",
            axum::routing::get(
                move |State(calls): State<Arc<AtomicU64>>,
                      Query(q): Query<std::collections::HashMap<String, String>>| async move {
                    let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
                    tokio::time::sleep(delay).await;
                    let app = q.get("app").cloned().unwrap_or_default();
                    axum::Json(serde_json::json!({
                        "access_token": format!("{app}-tok-{n}"),
                        "expires_in": expires_in,
                    }))
                },
            ),
        )
        .with_state(calls.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    TokenEndpoint {
        url: format!("http://{addr}/token"),
        calls,
    }
}

pub fn key(app: &str) -> TokenKey {
    TokenKey::new(
        &PlatformName::new("dingtalk").unwrap(),
        &TenantId::new("acme").unwrap(),
        app,
        None,
    )
}

/// The refresher a real platform crate would pass: one HTTP call to the token endpoint.
pub async fn fetch_over_http(
    http: reqwest::Client,
    url: String,
    app: String,
) -> unilogin_core::Result<FetchedToken> {
    let ctx = || key(&app).error_ctx("token");
    let body: serde_json::Value = http
        .get(&url)
        .query(&[("app", &app)])
        .send()
        .await
        .map_err(|e| Error::Transport {
            ctx: ctx(),
            message: e.to_string(),
        })?
        .json()
        .await
        .map_err(|e| Error::Transport {
            ctx: ctx(),
            message: e.to_string(),
        })?;
    let token = body["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let secs = body["expires_in"].as_u64().unwrap_or(0);
    Ok(FetchedToken::new(
        AccessToken::new(token),
        Duration::from_secs(secs),
    ))
}

/// Env vars of a worker process.
pub const WORKER_ENV: &str = "UNILOGIN_TOKEN_CACHE_WORKER";
pub const WORKER_REDIS: &str = "UNILOGIN_TOKEN_CACHE_WORKER_REDIS";
pub const WORKER_TOKEN_URL: &str = "UNILOGIN_TOKEN_CACHE_WORKER_TOKEN_URL";

/// One child process: `args` re-run the current executable in worker mode.
pub struct Worker {
    child: Child,
    stdin: std::process::ChildStdin,
    stdout: std::io::BufReader<std::process::ChildStdout>,
}

impl Worker {
    pub fn spawn(args: &[&str], redis_url: &str, token_url: &str) -> Self {
        let exe = std::env::current_exe().expect("own executable");
        let mut child = Command::new(exe)
            .args(args)
            .env(WORKER_ENV, "1")
            .env(WORKER_REDIS, redis_url)
            .env(WORKER_TOKEN_URL, token_url)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn worker process");
        let stdin = child.stdin.take().expect("worker stdin");
        let stdout = std::io::BufReader::new(child.stdout.take().expect("worker stdout"));
        let mut w = Self {
            child,
            stdin,
            stdout,
        };
        assert_eq!(w.read_reply(), "READY");
        w
    }

    /// Sends one command line (does not wait for the answer).
    pub fn send(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").expect("write to worker");
        self.stdin.flush().expect("flush worker stdin");
    }

    /// The next protocol line (`READY`, `OK …`, `ERR …`), skipping test-harness chatter.
    pub fn read_reply(&mut self) -> String {
        loop {
            let mut line = String::new();
            let n = self.stdout.read_line(&mut line).expect("read from worker");
            assert!(n > 0, "worker exited early");
            let line = line.trim_end();
            // The test harness may print `test worker_process ... ` on the same line.
            if let Some(at) = line.find("@@ ") {
                return line[at + 3..].to_string();
            }
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "EXIT");
        let _ = self.stdin.flush();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The body of a worker process. Protocol on stdin/stdout (replies prefixed with `@@ `):
/// `GET app` → one `TokenCache::get` through Redis; `SEED app` → the same through the port of
/// the seed's design (see [`seed`]); `EXIT`.
pub fn worker_main() {
    let redis_url = std::env::var(WORKER_REDIS).expect("worker: redis url");
    let token_url = std::env::var(WORKER_TOKEN_URL).expect("worker: token url");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let store = RedisStore::open(redis_url.clone()).expect("redis store");
        let cache = TokenCache::builder().store(Arc::new(store)).build();
        let seed = seed::SeedTokenManager::new(&redis_url).await;
        let http = reqwest::Client::new();
        println!("@@ READY");
        let stdin = std::io::stdin();
        for line in stdin.lock().lines() {
            let Ok(line) = line else { break };
            let mut parts = line.split_whitespace();
            let (cmd, app) = (
                parts.next().unwrap_or(""),
                parts.next().unwrap_or("").to_string(),
            );
            let reply = match cmd {
                "GET" => {
                    let (http, url, a) = (http.clone(), token_url.clone(), app.clone());
                    match cache
                        .get(&key(&app), move || fetch_over_http(http, url, a))
                        .await
                    {
                        Ok(t) => format!("OK {}", t.expose()),
                        Err(e) => format!("ERR {}", e.kind()),
                    }
                }
                "SEED" => {
                    let (http, url, a) = (http.clone(), token_url.clone(), app.clone());
                    let refresh = move || async move {
                        fetch_over_http(http, url, a)
                            .await
                            .map(|f| (f.token.expose().to_string(), f.expires_in))
                    };
                    match seed.fetch(key(&app).as_str(), refresh).await {
                        Ok(t) => format!("OK {t}"),
                        Err(e) => format!("ERR {}", e.kind()),
                    }
                }
                "EXIT" => break,
                other => format!("ERR unknown command {other}"),
            };
            println!("@@ {reply}");
        }
    });
}

/// A faithful Rust port of the seed's token manager (`004_fdc2c16179187c21`) with its Redis
/// `TokenStorage` (plain GET / SET with TTL): L1 `RwLock` map → L2 GET → per-key in-flight
/// refresh; no cross-process coordination, L1 refilled from L2 with a guessed 2 h TTL.
pub mod seed {
    use std::collections::HashMap;
    use std::future::Future;
    use std::sync::{Arc, Mutex, RwLock};
    use std::time::{Duration, Instant};

    use redis::AsyncCommands;
    use tokio::sync::watch;
    use unilogin_core::{Error, Result};

    const TOKEN_REFRESH_BUFFER: Duration = Duration::from_secs(120);
    const TOKEN_MAX_TTL: Duration = Duration::from_secs(7200);

    type Outcome = Option<Result<String>>;

    pub struct SeedTokenManager {
        entries: RwLock<HashMap<String, (String, Instant)>>,
        inflight: Mutex<HashMap<String, watch::Receiver<Outcome>>>,
        storage: redis::aio::MultiplexedConnection,
    }

    impl SeedTokenManager {
        pub async fn new(url: &str) -> Arc<Self> {
            let client = redis::Client::open(url).expect("redis url");
            let storage = client
                .get_multiplexed_async_connection()
                .await
                .expect("redis connection");
            Arc::new(Self {
                entries: RwLock::new(HashMap::new()),
                inflight: Mutex::new(HashMap::new()),
                storage,
            })
        }

        fn get_from_mem(&self, id: &str) -> Option<String> {
            let m = self.entries.read().unwrap();
            m.get(id)
                .filter(|(_, exp)| Instant::now() < *exp)
                .map(|(t, _)| t.clone())
        }

        fn set_to_mem(&self, id: &str, token: &str, ttl: Duration) {
            self.entries
                .write()
                .unwrap()
                .insert(id.to_string(), (token.to_string(), Instant::now() + ttl));
        }

        pub async fn fetch<F, Fut>(self: &Arc<Self>, id: &str, refresh: F) -> Result<String>
        where
            F: FnOnce() -> Fut + Send + 'static,
            Fut: Future<Output = Result<(String, Duration)>> + Send + 'static,
        {
            if let Some(t) = self.get_from_mem(id) {
                return Ok(t);
            }
            let mut conn = self.storage.clone();
            if let Ok(Some(t)) = conn.get::<_, Option<String>>(id).await
                && !t.is_empty()
            {
                self.set_to_mem(id, &t, TOKEN_MAX_TTL - TOKEN_REFRESH_BUFFER);
                return Ok(t);
            }
            let mut rx = {
                let mut inflight = self.inflight.lock().unwrap();
                if let Some(rx) = inflight.get(id) {
                    rx.clone()
                } else {
                    let (tx, rx) = watch::channel(None);
                    inflight.insert(id.to_string(), rx.clone());
                    let this = self.clone();
                    let id = id.to_string();
                    tokio::spawn(async move {
                        let r = refresh().await;
                        let out = match r {
                            Ok((token, ttl)) => {
                                let mut eff = ttl.saturating_sub(TOKEN_REFRESH_BUFFER);
                                if eff.is_zero() {
                                    eff = TOKEN_MAX_TTL - TOKEN_REFRESH_BUFFER;
                                }
                                this.set_to_mem(&id, &token, eff);
                                let mut conn = this.storage.clone();
                                let _: redis::RedisResult<()> =
                                    conn.set_ex(&id, &token, eff.as_secs()).await;
                                Ok(token)
                            }
                            Err(e) => Err(e),
                        };
                        this.inflight.lock().unwrap().remove(&id);
                        tx.send_replace(Some(out));
                    });
                    rx
                }
            };
            let out = rx.wait_for(Option::is_some).await.map(|v| v.clone());
            out.ok()
                .flatten()
                .unwrap_or_else(|| Err(Error::Internal("refresh task died".into())))
        }
    }
}
