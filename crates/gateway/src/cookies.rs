//! The two cookies: the session token (`Path=/`) and the login binding (`Path=/auth/`), both
//! `HttpOnly; SameSite=Lax`, `Secure` unless turned off for local plain-HTTP use.
//!
//! `SameSite=Lax` is what lets the binding cookie come back on the platform's top-level
//! redirect to the callback while keeping it off cross-site POSTs.

use std::time::Duration;

use axum::http::{HeaderMap, HeaderValue, header};

use crate::config::CookieConfig;

/// The value of cookie `name` in the request, if present.
pub fn get<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
}

/// A `Set-Cookie` value. `value` must be a cookie-safe token (the gateway only sets hex ids and
/// compact JWTs, which are).
pub fn set(
    config: &CookieConfig,
    name: &str,
    value: &str,
    path: &str,
    max_age: Duration,
) -> Option<HeaderValue> {
    let mut s = format!(
        "{name}={value}; Path={path}; Max-Age={}; HttpOnly; SameSite=Lax",
        max_age.as_secs()
    );
    if config.secure {
        s.push_str("; Secure");
    }
    if let Some(domain) = &config.domain {
        s.push_str("; Domain=");
        s.push_str(domain);
    }
    HeaderValue::from_str(&s).ok()
}

/// A `Set-Cookie` value that deletes cookie `name`.
pub fn clear(config: &CookieConfig, name: &str, path: &str) -> Option<HeaderValue> {
    set(config, name, "", path, Duration::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(secure: bool) -> CookieConfig {
        CookieConfig {
            secure,
            domain: None,
            session_name: "s".into(),
            binding_name: "b".into(),
        }
    }

    #[test]
    fn attributes() {
        let v = set(&config(true), "s", "tok", "/", Duration::from_secs(60)).unwrap();
        assert_eq!(
            v.to_str().unwrap(),
            "s=tok; Path=/; Max-Age=60; HttpOnly; SameSite=Lax; Secure"
        );
        let v = clear(&config(false), "b", "/auth/").unwrap();
        assert_eq!(
            v.to_str().unwrap(),
            "b=; Path=/auth/; Max-Age=0; HttpOnly; SameSite=Lax"
        );
    }

    #[test]
    fn parsing() {
        let mut h = HeaderMap::new();
        h.append(header::COOKIE, HeaderValue::from_static("a=1; s=tok"));
        h.append(header::COOKIE, HeaderValue::from_static("b=\"x\""));
        assert_eq!(get(&h, "s"), Some("tok"));
        assert_eq!(get(&h, "b"), Some("x"));
        assert_eq!(get(&h, "c"), None);
    }
}
