//! PKCE (RFC 7636) and OIDC nonce helpers for the caller that starts a web login.
//!
//! The caller (the gateway, or your own app) keeps the verifier and the nonce next to the
//! `state` of the login, sends [`PkcePair::challenge`] and the nonce through
//! `AuthorizeParams`, and hands both back in `WebCallback` when the browser returns.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// A PKCE code verifier and its S256 challenge. `Debug` hides the verifier.
#[derive(Clone, PartialEq, Eq)]
pub struct PkcePair {
    /// The secret verifier (43 characters of base64url, 256 bits of randomness): keep it with
    /// the login state and send it to the token endpoint.
    pub verifier: String,
    /// `BASE64URL(SHA256(verifier))`, sent with `code_challenge_method=S256` at authorize time.
    pub challenge: String,
}

impl fmt::Debug for PkcePair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PkcePair")
            .field("verifier", &"***")
            .field("challenge", &self.challenge)
            .finish()
    }
}

/// A fresh PKCE pair from the operating system's CSPRNG (through `rand`'s thread RNG).
///
/// ```
/// let pair = unilogin_custom_oauth::pkce_pair();
/// assert_eq!(pair.verifier.len(), 43);
/// assert_eq!(pair.challenge, unilogin_custom_oauth::pkce_challenge(&pair.verifier));
/// ```
pub fn pkce_pair() -> PkcePair {
    let verifier = random_token();
    let challenge = pkce_challenge(&verifier);
    PkcePair {
        verifier,
        challenge,
    }
}

/// The S256 challenge of a verifier: `BASE64URL-NOPAD(SHA256(ASCII(verifier)))`.
///
/// ```
/// // The example of RFC 7636, appendix B.
/// assert_eq!(
///     unilogin_custom_oauth::pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
///     "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
/// );
/// ```
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// A fresh OIDC nonce (256 bits, base64url).
///
/// ```
/// assert_ne!(unilogin_custom_oauth::nonce(), unilogin_custom_oauth::nonce());
/// ```
pub fn nonce() -> String {
    random_token()
}

fn random_token() -> String {
    let bytes: [u8; 32] = rand::random();
    URL_SAFE_NO_PAD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verifier_is_rfc7636_shaped_and_unique() {
        let a = pkce_pair();
        let b = pkce_pair();
        assert_ne!(a.verifier, b.verifier);
        assert!((43..=128).contains(&a.verifier.len()));
        assert!(
            a.verifier
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || b"-._~".contains(&c))
        );
        assert!(!format!("{a:?}").contains(&a.verifier));
    }
}
