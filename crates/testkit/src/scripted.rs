//! A minimal scripted HTTP/1.1 server on a loopback port: each route answers with a JSON body
//! chosen by a closure for the n-th call, and every request is recorded. For platform-crate
//! tests that need an answer no fake gives (a variant shape, a precise error sequence) or that
//! assert the exact request a handler sends (headers, query, body); the fakes are the faithful
//! platforms, this is a script.
//!
//! ```
//! use unilogin_testkit::scripted::{Stub, route};
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let stub = Stub::start(vec![route("GET", "/ticket", |seen, n| {
//!     (200, serde_json::json!({ "n": n, "q": seen.param("access_token") }))
//! })])
//! .await;
//! let body: serde_json::Value = reqwest::get(format!("{}ticket?access_token=t1", stub.base))
//!     .await.unwrap().json().await.unwrap();
//! assert_eq!(body, serde_json::json!({ "n": 1, "q": "t1" }));
//! assert_eq!(stub.count("/ticket"), 1);
//! # }
//! ```

use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One recorded request.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The method.
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The raw query string (empty without one).
    pub query: String,
    /// Lower-case names.
    pub headers: Vec<(String, String)>,
    /// The body, as text.
    pub body: String,
}

impl Seen {
    /// A query parameter, decoded.
    pub fn param(&self, name: &str) -> Option<String> {
        url::form_urlencoded::parse(self.query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

type Handler = Box<dyn Fn(&Seen, usize) -> (u16, Value) + Send + Sync>;

/// A route: method, path and the answer for the n-th call (from 1).
pub struct Route {
    method: &'static str,
    path: &'static str,
    handler: Handler,
}

/// A route answering `(status, body)` for the n-th call to it (counted from 1).
pub fn route(
    method: &'static str,
    path: &'static str,
    handler: impl Fn(&Seen, usize) -> (u16, Value) + Send + Sync + 'static,
) -> Route {
    Route {
        method,
        path,
        handler: Box::new(handler),
    }
}

/// The running server. Dropping it stops accepting connections.
pub struct Stub {
    /// `http://127.0.0.1:PORT/`.
    pub base: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Stub {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Stub {
    /// Serves `routes` on a free loopback port (any other request: 404).
    pub async fn start(routes: Vec<Route>) -> Stub {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a free loopback port");
        let base = format!(
            "http://{}/",
            listener.local_addr().expect("a bound listener's address")
        );
        let seen = Arc::new(Mutex::new(Vec::new()));
        let routes = Arc::new(routes);
        let task = {
            let seen = seen.clone();
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let (routes, seen) = (routes.clone(), seen.clone());
                    tokio::spawn(async move {
                        let _ = serve(stream, &routes, &seen).await;
                    });
                }
            })
        };
        Stub { base, seen, task }
    }

    /// The requests to `path` so far.
    pub fn calls(&self, path: &str) -> Vec<Seen> {
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.iter().filter(|s| s.path == path).cloned().collect()
    }

    /// How many requests reached `path`.
    pub fn count(&self, path: &str) -> usize {
        self.calls(path).len()
    }
}

async fn serve(
    mut stream: TcpStream,
    routes: &[Route],
    seen: &Mutex<Vec<Seen>>,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or_default().split(' ');
    let method = first.next().unwrap_or_default().to_string();
    let target = first.next().unwrap_or_default().to_string();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let length = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let body = String::from_utf8_lossy(&buf[head_end..]).to_string();
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (target.clone(), String::new()),
    };
    let request = Seen {
        method,
        path,
        query,
        headers,
        body,
    };
    let (status, answer) = {
        let mut seen = seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.push(request.clone());
        let nth = seen.iter().filter(|s| s.path == request.path).count();
        match routes
            .iter()
            .find(|r| r.method == request.method && r.path == request.path)
        {
            Some(r) => (r.handler)(&request, nth),
            None => (404, serde_json::json!({"stub": "no such route"})),
        }
    };
    let body = answer.to_string();
    let response = format!(
        "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await
}
