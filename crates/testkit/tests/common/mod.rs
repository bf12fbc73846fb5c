//! Shared by the fakes' integration tests: an HTTP client aimed at one fake (as a platform client
//! talks to it: real HTTP on loopback, redirects not followed), the fixtures as JSON, and the
//! fixture-shape comparison.

#![allow(dead_code)]

use std::collections::HashMap;
use std::future::Future;
use std::time::Duration;

use reqwest::redirect::Policy;
use reqwest::{RequestBuilder, Response, StatusCode};
use serde_json::Value;
use unilogin_testkit::FakePlatform;
use url::Url;

/// A reqwest client (no redirects followed, 10 s timeout) aimed at one fake's base URL.
#[derive(Clone)]
pub struct Http {
    pub client: reqwest::Client,
    base: String,
}

impl Http {
    /// A client for the fake at `base_url`.
    pub fn new(base_url: &str) -> Self {
        let client = reqwest::Client::builder()
            .redirect(Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .expect("client");
        Self {
            client,
            base: base_url.to_owned(),
        }
    }

    /// The fake's URL of `path` (which may carry a query).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> RequestBuilder {
        self.client.get(self.url(path))
    }

    /// `POST path`.
    pub fn post(&self, path: &str) -> RequestBuilder {
        self.client.post(self.url(path))
    }
}

/// Start a fake (`fake` is e.g. `dingtalk::start()`) and aim a client at it.
pub async fn started<F: FakePlatform>(fake: impl Future<Output = F>) -> (F, Http) {
    let fake = fake.await;
    let http = Http::new(fake.base_url());
    (fake, http)
}

/// Forgetting the call counts leaves none.
pub fn assert_reset(fake: &dyn FakePlatform) {
    fake.reset_calls();
    assert_eq!(fake.total_calls(), 0);
}

/// Send `req` (it must reach the fake).
pub async fn send(req: RequestBuilder) -> Response {
    req.send().await.expect("send")
}

/// Send `req`: the status and the JSON body (panics on another body).
pub async fn json(req: RequestBuilder) -> (StatusCode, Value) {
    body_json(send(req).await).await
}

/// The status and the JSON body of `resp` (panics on another body).
pub async fn body_json(resp: Response) -> (StatusCode, Value) {
    let status = resp.status();
    let text = resp.text().await.expect("body");
    let value = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
    (status, value)
}

/// Send `req`: the status and the body as text.
pub async fn text(req: RequestBuilder) -> (StatusCode, String) {
    let resp = send(req).await;
    (resp.status(), resp.text().await.expect("body"))
}

/// Whether `resp` says it is HTML.
pub fn is_html(resp: &Response) -> bool {
    resp.headers()["content-type"]
        .to_str()
        .unwrap_or("")
        .starts_with("text/html")
}

/// The `Location` of a redirect.
pub fn location(resp: &Response) -> Url {
    Url::parse(resp.headers()["location"].to_str().expect("ascii")).expect("absolute")
}

/// The query pairs of `url` (the first value of a repeated name wins).
pub fn query(url: &Url) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for (k, v) in url.query_pairs() {
        out.entry(k.into_owned()).or_insert_with(|| v.into_owned());
    }
    out
}

/// A fixture (`unilogin_testkit::fixtures::…`) as JSON.
pub fn fixture(text: &str) -> Value {
    serde_json::from_str(text).expect("fixture is JSON")
}

/// `v` without the top-level `keys`.
pub fn without(v: &Value, keys: &[&str]) -> Value {
    let mut v = v.clone();
    if let Some(o) = v.as_object_mut() {
        for k in keys {
            o.remove(*k);
        }
    }
    v
}

/// Same keys at every object level and the same JSON kinds (integers stay integers), recursively;
/// arrays are compared by their first elements.
pub fn assert_same_shape(actual: &Value, expected: &Value) {
    same_shape(actual, expected, "$");
}

fn same_shape(actual: &Value, expected: &Value, path: &str) {
    match (actual, expected) {
        (Value::Object(a), Value::Object(e)) => {
            let mut ak: Vec<_> = a.keys().collect();
            let mut ek: Vec<_> = e.keys().collect();
            ak.sort();
            ek.sort();
            assert_eq!(ak, ek, "keys differ at {path}");
            for (k, ev) in e {
                same_shape(&a[k], ev, &format!("{path}.{k}"));
            }
        }
        (Value::Array(a), Value::Array(e)) => {
            if let (Some(af), Some(ef)) = (a.first(), e.first()) {
                same_shape(af, ef, &format!("{path}[0]"));
            }
        }
        (Value::Number(a), Value::Number(e)) => {
            let int = |n: &serde_json::Number| n.is_i64() || n.is_u64();
            assert_eq!(int(a), int(e), "integer vs float at {path}: {a} vs {e}");
        }
        (a, e) => assert_eq!(
            std::mem::discriminant(a),
            std::mem::discriminant(e),
            "kind differs at {path}: {a} vs {e}"
        ),
    }
}
