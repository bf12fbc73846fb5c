//! Small request/response helpers shared by every fake.
//!
//! Fakes parse requests by hand instead of with axum extractors so that *every* rejection is
//! rendered in the platform's own envelope (an extractor rejection would answer in axum's format,
//! which no real platform uses).

use std::collections::HashMap;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::Response;
use serde_json::{Map, Value};
use url::Url;

/// Largest request body a fake reads (64 KiB; real login requests are a few hundred bytes).
pub const MAX_REQUEST_BODY: usize = 64 * 1024;

/// Decoded request parameters (query string, form or loosely typed JSON body).
pub type Params = HashMap<String, String>;

/// What a handler answers: `Ok` with the platform's success document, `Err` with its rejection.
/// Both are responses; the split only lets handlers return early with `?`.
pub type Reply = Result<Response, Response>;

/// A response with `status`, `content-type` and `body`.
pub fn response(status: StatusCode, content_type: &'static str, body: impl Into<Body>) -> Response {
    let mut resp = Response::new(body.into());
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp
}

/// A JSON response (`application/json;charset=utf-8`).
pub fn json(status: StatusCode, value: &Value) -> Response {
    response(
        status,
        "application/json;charset=utf-8",
        value.to_string().into_bytes(),
    )
}

/// An HTML response (`text/html;charset=utf-8`).
pub fn html(status: StatusCode, body: String) -> Response {
    response(status, "text/html;charset=utf-8", body)
}

/// A redirect with `status` (302, 303, …) to `url`; `None` if the URL cannot be sent as a
/// `Location` header.
pub fn redirect(status: StatusCode, url: &url::Url) -> Option<Response> {
    let location = HeaderValue::from_str(url.as_str()).ok()?;
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = status;
    resp.headers_mut().insert(header::LOCATION, location);
    Some(resp)
}

/// Escape text for HTML element content and double-quoted attribute values.
pub fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// Decoded query parameters (the first value wins when a name repeats).
pub fn query_params(uri: &Uri) -> Params {
    form_params(uri.query().unwrap_or("").as_bytes())
}

/// Decoded `application/x-www-form-urlencoded` pairs (the first value wins).
pub fn form_params(body: &[u8]) -> Params {
    let mut out = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(body) {
        out.entry(k.into_owned()).or_insert_with(|| v.into_owned());
    }
    out
}

/// A parameter's value, if present and not empty (platforms treat both the same).
pub fn param<'a>(p: &'a Params, name: &str) -> Option<&'a str> {
    p.get(name).map(String::as_str).filter(|v| !v.is_empty())
}

/// Why a request was not the form a browser page posts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormRejection {
    /// Not `application/x-www-form-urlencoded`.
    NotForm,
    /// Larger than [`MAX_REQUEST_BODY`] or broken off.
    TooLarge,
}

/// The pairs of an `application/x-www-form-urlencoded` request body.
pub async fn read_form(req: Request) -> Result<Params, FormRejection> {
    let (parts, body) = req.into_parts();
    if media_type(&parts.headers) != "application/x-www-form-urlencoded" {
        return Err(FormRejection::NotForm);
    }
    let bytes = read_body(body).await.ok_or(FormRejection::TooLarge)?;
    Ok(form_params(&bytes))
}

/// Whether `url`'s host is one of `hosts` or a subdomain of one (case-insensitive): the
/// platforms' callback-domain rule.
pub fn host_allowed(hosts: &[String], url: &Url) -> bool {
    let Some(host) = url.host_str() else {
        return false;
    };
    let host = host.to_ascii_lowercase();
    hosts.iter().any(|allowed| {
        let allowed = allowed.to_ascii_lowercase();
        host == allowed
            || host
                .strip_suffix(allowed.as_str())
                .is_some_and(|rest| rest.ends_with('.'))
    })
}

/// The callback hosts a fresh fake's apps accept: loopback names and `example.com`.
pub fn default_redirect_hosts() -> Vec<String> {
    ["localhost", "127.0.0.1", "[::1]", "example.com"]
        .map(String::from)
        .to_vec()
}

/// The request's media type, lower-cased, without parameters (`application/json`), or `""`.
pub fn media_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

/// A header's value as text, if present and visible ASCII.
pub fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Read a whole request body up to [`MAX_REQUEST_BODY`]; `None` if it is larger or broken.
pub async fn read_body(body: Body) -> Option<Bytes> {
    axum::body::to_bytes(body, MAX_REQUEST_BODY).await.ok()
}

/// `base` (an object) with the members of `extra` (an object) added; either unchanged otherwise.
pub fn merged(mut base: Value, extra: Value) -> Value {
    if let (Some(b), Value::Object(extra)) = (base.as_object_mut(), extra) {
        b.extend(extra);
    }
    base
}

/// Insert `value` as a string under `key` unless it is empty: platforms omit fields a person
/// never filled in (or the app may not see).
pub fn insert_non_empty(obj: &mut Map<String, Value>, key: &str, value: &str) {
    if !value.is_empty() {
        obj.insert(key.to_owned(), Value::String(value.to_owned()));
    }
}

/// A JSON object's members as strings: strings as-is, numbers and booleans printed, other kinds
/// (null, arrays, objects) skipped. Used for loosely typed parameter bags.
pub fn json_object_params(value: &Value) -> Option<Params> {
    let obj = value.as_object()?;
    Some(
        obj.iter()
            .filter_map(|(k, v)| {
                let s = match v {
                    Value::String(s) => s.clone(),
                    Value::Number(n) => n.to_string(),
                    Value::Bool(b) => b.to_string(),
                    _ => return None,
                };
                Some((k.clone(), s))
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_html_specials() {
        assert_eq!(
            html_escape(r#"<a href="x">&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;&lt;/a&gt;"
        );
    }

    #[test]
    fn parses_query_and_media_type() {
        let uri: Uri = "/gettoken?appkey=a%20b&appsecret=s&appkey=ignored"
            .parse()
            .expect("static uri");
        let q = query_params(&uri);
        assert_eq!(q.get("appkey").map(String::as_str), Some("a b"));
        let mut h = HeaderMap::new();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("Application/JSON; charset=utf-8"),
        );
        assert_eq!(media_type(&h), "application/json");
        assert_eq!(media_type(&HeaderMap::new()), "");
    }

    #[test]
    fn hosts_match_themselves_and_their_subdomains() {
        let hosts = default_redirect_hosts();
        let ok = |u: &str| host_allowed(&hosts, &Url::parse(u).expect("url"));
        assert!(ok("http://LOCALHOST:8080/cb") && ok("https://app.example.com/cb"));
        assert!(ok("http://[::1]/cb") && ok("https://example.com"));
        assert!(!ok("https://badexample.com/") && !ok("https://example.com.evil.test/"));
        assert!(!ok("mailto:a@example.com"));
    }

    #[test]
    fn params_merges_and_non_empty_inserts() {
        let p: Params = [
            ("a".to_owned(), "x".to_owned()),
            ("b".to_owned(), String::new()),
        ]
        .into();
        assert_eq!(
            (param(&p, "a"), param(&p, "b"), param(&p, "c")),
            (Some("x"), None, None)
        );
        let v = merged(
            serde_json::json!({"a": 1, "b": 2}),
            serde_json::json!({"b": 3, "c": 4}),
        );
        assert_eq!(v, serde_json::json!({"a": 1, "b": 3, "c": 4}));
        assert_eq!(
            merged(serde_json::json!([1]), serde_json::json!({"c": 4})),
            serde_json::json!([1])
        );
        let mut obj = Map::new();
        insert_non_empty(&mut obj, "k", "");
        insert_non_empty(&mut obj, "v", "1");
        assert_eq!(Value::Object(obj), serde_json::json!({"v": "1"}));
    }

    #[test]
    fn json_params_stringify_scalars_only() {
        let v = serde_json::json!({"a": "x", "b": 5, "c": true, "d": null, "e": [1]});
        let p = json_object_params(&v).expect("object");
        assert_eq!(p.len(), 3);
        assert_eq!(p.get("b").map(String::as_str), Some("5"));
        assert!(json_object_params(&serde_json::json!([1])).is_none());
    }
}
