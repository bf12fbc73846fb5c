//! Random values, their hashes, and a redacting wrapper.
//!
//! Codes, refresh tokens and pending-request ids are 256 random bits from the system CSPRNG,
//! base64url without padding (43 characters). The store only ever sees their SHA-256 (hex):
//! with 256 random bits a preimage search is hopeless, so a fast hash is the right tool and a
//! password hash (argon2) would only add latency.

use std::fmt;

use aws_lc_rs::digest::{SHA256, digest};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use subtle::ConstantTimeEq;

use crate::error::{ProviderError, Result};

/// `bytes` random bytes, base64url without padding.
pub(crate) fn random_token(bytes: usize) -> Result<String> {
    let mut buf = vec![0u8; bytes];
    SystemRandom::new()
        .fill(&mut buf)
        .map_err(|_| ProviderError::Server("the system random generator failed".into()))?;
    Ok(URL_SAFE_NO_PAD.encode(&buf))
}

/// A 256-bit random token.
pub(crate) fn new_secret() -> Result<String> {
    random_token(32)
}

/// Lower-case hex SHA-256 of `value`.
///
/// ```
/// assert_eq!(
///     unilogin_provider::sha256_hex("abc"),
///     "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
/// );
/// ```
pub fn sha256_hex(value: &str) -> String {
    hex(digest(&SHA256, value.as_bytes()).as_ref())
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

/// Constant-time equality of two strings (lengths may leak; the values do not).
pub(crate) fn ct_eq(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// base64url (no padding) of the left half of SHA-256 of `token`: the `at_hash` of OIDC Core
/// §3.1.3.6 for RS256 / ES256 / EdDSA-with-Ed25519 (all SHA-256 based).
pub(crate) fn left_half_hash(token: &str) -> String {
    let d = digest(&SHA256, token.as_bytes());
    URL_SAFE_NO_PAD.encode(&d.as_ref()[..16])
}

/// A secret value (a code, a token, a client secret) that prints as `***`.
///
/// ```
/// use unilogin_provider::Redacted;
/// let code = Redacted::new("c0de");
/// assert_eq!(format!("{code:?} {code}"), "*** ***");
/// assert_eq!(code.expose(), "c0de");
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Redacted(String);

impl Redacted {
    /// Wraps `value`.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value; call it only where the value goes to its destination.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_256_bit_and_distinct() {
        let a = new_secret().unwrap();
        let b = new_secret().unwrap();
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        assert_eq!(sha256_hex(&a).len(), 64);
        assert!(ct_eq(&a, &a.clone()));
        assert!(!ct_eq(&a, &b));
    }

    #[test]
    fn at_hash_matches_the_oidc_example_shape() {
        // OIDC Core §A.3 style: 16 bytes base64url are 22 characters.
        let h = left_half_hash("jHkWEdUXMU1BwAsC4vtUsZwnNzbFjtUGavIlrvxV6t0");
        assert_eq!(h.len(), 22);
        assert_eq!(
            h,
            left_half_hash("jHkWEdUXMU1BwAsC4vtUsZwnNzbFjtUGavIlrvxV6t0")
        );
        assert_ne!(h, left_half_hash("other"));
    }
}
