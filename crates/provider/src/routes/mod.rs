//! The endpoints, one file per group, and what they share: parameter parsing (a repeated
//! parameter is an error, RFC 6749 §3.1), `no-store` JSON answers and the error page.

pub(crate) mod authorize;
pub(crate) mod discovery;
pub(crate) mod end_session;
pub(crate) mod token;
pub(crate) mod userinfo;

use std::collections::HashMap;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde_json::Value;

use crate::error::ProviderError;

/// Request parameters (query or form), each at most once.
#[derive(Default)]
pub(crate) struct Params(HashMap<String, String>);

impl Params {
    /// Parses `application/x-www-form-urlencoded` text. A repeated parameter is
    /// `invalid_request`, and so is a parameter name longer than 64 bytes or a value longer
    /// than 4096.
    pub(crate) fn parse(text: &str) -> Result<Self, ProviderError> {
        let mut map = HashMap::new();
        for (k, v) in url::form_urlencoded::parse(text.as_bytes()) {
            if k.len() > 64 || v.len() > 4096 {
                return Err(ProviderError::InvalidRequest(
                    "a parameter is too long".into(),
                ));
            }
            if map.insert(k.to_string(), v.to_string()).is_some() {
                return Err(ProviderError::InvalidRequest(format!(
                    "parameter {k:?} is repeated"
                )));
            }
        }
        Ok(Self(map))
    }

    /// The parameter `name`; an empty value counts as absent (RFC 6749 §3.1).
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

/// Whether the request body is `application/x-www-form-urlencoded`.
pub(crate) fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| {
            m.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// Adds `Cache-Control: no-store` and `Pragma: no-cache` (RFC 6749 §5.1).
pub(crate) fn no_store(mut r: Response) -> Response {
    let h = r.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    r
}

/// A JSON answer that must not be cached.
pub(crate) fn json_no_store(status: StatusCode, body: Value) -> Response {
    no_store((status, axum::Json(body)).into_response())
}

/// The error page shown when the browser cannot be sent back to the client (unknown client,
/// unregistered redirect URI, expired request). Shows the code and our own description only.
pub(crate) fn error_page(status: StatusCode, e: &ProviderError) -> Response {
    if e.is_internal() {
        tracing::warn!(error = %e, "OIDC request failed");
    }
    let body = format!(
        "<!doctype html><meta charset=utf-8><title>Sign-in error</title>\
         <h1>Sign-in error</h1><p><code>{}</code></p><p>{}</p>",
        e.code(),
        escape(e.public_description())
    );
    no_store((status, Html(body)).into_response())
}

/// HTML-escapes `s`.
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_parameters_are_refused_and_empty_ones_absent() {
        assert!(Params::parse("a=1&a=2").is_err());
        let p = Params::parse("a=1&b=&c=x%20y").unwrap();
        assert_eq!(p.get("a"), Some("1"));
        assert_eq!(p.get("b"), None);
        assert_eq!(p.get("c"), Some("x y"));
        assert!(Params::parse(&format!("a={}", "x".repeat(5000))).is_err());
    }

    #[test]
    fn the_error_page_escapes_and_hides_internal_details() {
        let page = error_page(
            StatusCode::BAD_REQUEST,
            &ProviderError::InvalidRequest("<script>".into()),
        );
        assert_eq!(page.status(), StatusCode::BAD_REQUEST);
        assert_eq!(escape("<a href=\"x\">"), "&lt;a href=&quot;x&quot;&gt;");
    }
}
