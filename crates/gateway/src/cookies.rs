//! The two cookies: the session token and the login binding, both `Path=/; HttpOnly;
//! SameSite=Lax`, `Secure` unless turned off for local plain-HTTP use.
//!
//! With `Secure` and no `Domain` their names carry the `__Host-` prefix (with a `Domain`,
//! `__Secure-`): a browser then accepts them only from this exact https origin, so a sibling
//! subdomain or a plain-http page cannot plant a session or a binding.
//!
//! `SameSite=Lax` is what lets the binding cookie come back on the platform's top-level
//! redirect to the callback while keeping it off cross-site POSTs. The binding's value is never
//! the client's choice: it is issued here ([`Binding`]) and a value this gateway did not issue
//! is replaced.

use std::time::Duration;

use aws_lc_rs::hmac;
use axum::http::{HeaderMap, HeaderValue, header};

use crate::config::CookieConfig;

impl CookieConfig {
    /// The name a cookie is set and read under: `base` with the `__Host-` prefix when `Secure`
    /// without `Domain`, `__Secure-` when `Secure` with one, as given otherwise.
    pub fn name(&self, base: &str) -> String {
        match (self.secure, &self.domain) {
            (true, None) => format!("__Host-{base}"),
            (true, Some(_)) => format!("__Secure-{base}"),
            (false, _) => base.to_string(),
        }
    }
}

/// The key of binding values, from a secret derived from the session signing keys
/// ([`SessionKeys::derive_secret`](unilogin_axum::session::SessionKeys::derive_secret)): every
/// replica signing with the same keys recognises the bindings of the others.
pub(crate) fn binding_key(secret: &[u8; 32]) -> hmac::Key {
    hmac::Key::new(hmac::HMAC_SHA256, secret)
}

/// A login-binding value: 16 random bytes and 16 bytes of their MAC, in hex. Only values this
/// gateway (or a replica sharing its key) issued verify; anything a client makes up does not.
pub struct Binding;

impl Binding {
    /// A fresh binding value.
    pub(crate) fn issue(key: &hmac::Key) -> String {
        let nonce = unilogin::web_login::random_hex(16);
        let tag = hmac::sign(key, format!("binding\0{nonce}").as_bytes());
        let mut out = nonce;
        for b in &tag.as_ref()[..16] {
            out.push_str(&format!("{b:02x}"));
        }
        out
    }

    /// Whether `value` is a binding issued with `key` (constant-time MAC check).
    pub(crate) fn verify(key: &hmac::Key, value: &str) -> bool {
        if value.len() != 64 || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
            return false;
        }
        let (nonce, tag_hex) = value.split_at(32);
        let tag: Vec<u8> = (0..16)
            .filter_map(|i| u8::from_str_radix(&tag_hex[2 * i..2 * i + 2], 16).ok())
            .collect();
        let full = hmac::sign(key, format!("binding\0{nonce}").as_bytes());
        tag.len() == 16 && subtle::ConstantTimeEq::ct_eq(&full.as_ref()[..16], &tag[..]).into()
    }

    /// The state-store key of a pending login: a MAC of its state and binding, so a callback
    /// from another browser (another binding) cannot even name — let alone spend — the login,
    /// and the store never holds states in clear.
    pub(crate) fn store_key(key: &hmac::Key, state: &str, binding: &str) -> String {
        let tag = hmac::sign(key, format!("state\0{state}\0{binding}").as_bytes());
        tag.as_ref().iter().map(|b| format!("{b:02x}")).collect()
    }
}

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

    #[test]
    fn prefixed_names() {
        let mut c = config(true);
        assert_eq!(c.name("s"), "__Host-s");
        c.domain = Some("example.com".into());
        assert_eq!(c.name("s"), "__Secure-s");
        assert_eq!(config(false).name("s"), "s");
    }

    #[test]
    fn only_issued_bindings_verify() {
        let keys = unilogin_axum::session::SessionKeys::generate().unwrap();
        let key = binding_key(&keys.derive_secret("binding"));
        let b = Binding::issue(&key);
        assert_eq!(b.len(), 64);
        assert!(Binding::verify(&key, &b));
        // A client-chosen value of the right shape, a tampered one, another key's.
        assert!(!Binding::verify(&key, &"a".repeat(64)));
        let mut t = b.clone().into_bytes();
        t[63] = if t[63] == b'0' { b'1' } else { b'0' };
        assert!(!Binding::verify(&key, std::str::from_utf8(&t).unwrap()));
        let other = unilogin_axum::session::SessionKeys::generate().unwrap();
        assert!(!Binding::verify(
            &binding_key(&other.derive_secret("binding")),
            &b
        ));
        // Replicas sharing session keys share the binding key.
        let k2 = binding_key(&keys.clone().derive_secret("binding"));
        assert!(Binding::verify(&k2, &Binding::issue(&key)));
        // Store keys depend on state and binding.
        assert_ne!(
            Binding::store_key(&key, "st", &b),
            Binding::store_key(&key, "st", &Binding::issue(&key))
        );
    }

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
