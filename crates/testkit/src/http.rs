//! Small request/response helpers shared by every fake.
//!
//! Fakes parse requests by hand instead of with axum extractors so that *every* rejection is
//! rendered in the platform's own envelope (an extractor rejection would answer in axum's format,
//! which no real platform uses).

use std::collections::HashMap;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::Response;
use serde_json::Value;

/// Largest request body a fake reads (64 KiB; real login requests are a few hundred bytes).
pub const MAX_REQUEST_BODY: usize = 64 * 1024;

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
pub fn query_params(uri: &Uri) -> HashMap<String, String> {
    form_params(uri.query().unwrap_or("").as_bytes())
}

/// Decoded `application/x-www-form-urlencoded` pairs (the first value wins).
pub fn form_params(body: &[u8]) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(body) {
        out.entry(k.into_owned()).or_insert_with(|| v.into_owned());
    }
    out
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

/// A JSON object's members as strings: strings as-is, numbers and booleans printed, other kinds
/// (null, arrays, objects) skipped. Used for loosely typed parameter bags.
pub fn json_object_params(value: &Value) -> Option<HashMap<String, String>> {
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
    fn json_params_stringify_scalars_only() {
        let v = serde_json::json!({"a": "x", "b": 5, "c": true, "d": null, "e": [1]});
        let p = json_object_params(&v).expect("object");
        assert_eq!(p.len(), 3);
        assert_eq!(p.get("b").map(String::as_str), Some("5"));
        assert!(json_object_params(&serde_json::json!([1])).is_none());
    }
}
