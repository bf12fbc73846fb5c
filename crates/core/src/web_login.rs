//! The state of a redirect login, owned by the core (in the manner of oauth2-rs).
//!
//! Starting a login ([`Prepared::start_web_login`](crate::sso::Prepared::start_web_login))
//! yields the authorize URL and a [`PendingLogin`]: the `state`, the PKCE verifier (RFC 7636,
//! S256) and the OIDC nonce, each a redacted newtype, plus what the login was started for.
//! Keep the pending login server-side (keyed by its state, single use); when the browser comes
//! back, parse the [`Callback`] and hand both to
//! [`Prepared::finish_web_login`](crate::sso::Prepared::finish_web_login), which checks the
//! state, the target and the issuer (RFC 9207) before the code is spent. The caller never
//! computes a PKCE challenge or a state itself.
//!
//! ```
//! use unilogin_core::web_login::{Callback, PendingLogin, pkce_challenge};
//! use unilogin_core::{Flow, PlatformName, TenantId};
//! let cb = url::Url::parse("https://app.example/cb").unwrap();
//! let pending = PendingLogin::new(
//!     TenantId::new("acme").unwrap(), PlatformName::new("dingtalk").unwrap(), Flow::Web, cb,
//! );
//! assert!(!format!("{pending:?}").contains(pending.state.expose()));
//! assert_eq!(pending.code_challenge(), pkce_challenge(pending.pkce_verifier.expose()));
//! let query = format!("code=abc&state={}", pending.state.expose());
//! let callback = Callback::from_query(url::form_urlencoded::parse(query.as_bytes())).unwrap();
//! assert!(callback.state_matches(&pending));
//! ```

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use subtle::ConstantTimeEq;
use url::Url;

use crate::error::{Error, Result, StateProblem};
use crate::platform::{Flow, IssuerPolicy};
use crate::types::{AuthCode, Nonce, PkceVerifier, PlatformName, State, TenantId};

/// Longest accepted authorization code (WeCom documents up to 512 bytes).
pub const MAX_CODE_LEN: usize = 512;
/// Longest accepted `state`.
pub const MAX_STATE_LEN: usize = 128;
/// Longest accepted `iss`.
const MAX_ISS_LEN: usize = 512;

/// `bytes` random bytes from the thread-local CSPRNG, as lower-case hex (ASCII letters and
/// digits only, which every platform accepts in `state`, WeCom included).
pub fn random_hex(bytes: usize) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes * 2);
    let mut left = bytes;
    while left > 0 {
        // `fill`, not `random::<[u8; 32]>()`, which draws a whole word for every byte.
        let mut chunk = [0u8; 32];
        rand::fill(&mut chunk[..]);
        for b in chunk.iter().take(left) {
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
        left = left.saturating_sub(32);
    }
    out
}

/// The S256 PKCE challenge of `verifier`: `BASE64URL(SHA-256(verifier))` without padding.
///
/// ```
/// // RFC 7636, appendix B.
/// assert_eq!(
///     unilogin_core::web_login::pkce_challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
///     "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
/// );
/// ```
pub fn pkce_challenge(verifier: &str) -> String {
    use base64::Engine;
    use sha2::Digest;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier))
}

/// A redirect login waiting for its callback. `Debug` shows no secret; serialize it only into
/// a server-side store (it holds the state, the PKCE verifier and the nonce in clear).
#[derive(Clone, PartialEq, Eq)]
pub struct PendingLogin {
    /// The tenant the login was started for.
    pub tenant: TenantId,
    /// The platform.
    pub platform: PlatformName,
    /// The flow (web/QR, or an in-client OAuth redirect).
    pub flow: Flow,
    /// The redirect URI sent at authorize time (sent again at the token endpoint).
    pub redirect_uri: Url,
    /// The CSRF state: 64 lower-case hex characters.
    pub state: State,
    /// The PKCE verifier: 64 lower-case hex characters (RFC 7636 allows 43 to 128).
    pub pkce_verifier: PkceVerifier,
    /// The OIDC nonce.
    pub nonce: Nonce,
}

impl fmt::Debug for PendingLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingLogin")
            .field("tenant", &self.tenant)
            .field("platform", &self.platform)
            .field("flow", &self.flow)
            .field("redirect_uri", &self.redirect_uri.as_str())
            .field("state", &self.state)
            .field("pkce_verifier", &self.pkce_verifier)
            .field("nonce", &self.nonce)
            .finish()
    }
}

impl PendingLogin {
    /// A new pending login with fresh random state, verifier and nonce.
    pub fn new(tenant: TenantId, platform: PlatformName, flow: Flow, redirect_uri: Url) -> Self {
        Self {
            tenant,
            platform,
            flow,
            redirect_uri,
            state: State::new(random_hex(32)),
            pkce_verifier: PkceVerifier::new(random_hex(32)),
            nonce: Nonce::new(random_hex(16)),
        }
    }

    /// The S256 challenge of the verifier.
    pub fn code_challenge(&self) -> String {
        pkce_challenge(self.pkce_verifier.expose())
    }
}

/// The stored form. Deliberately without `Debug`.
#[derive(Serialize, Deserialize)]
struct Wire {
    tenant: TenantId,
    platform: PlatformName,
    flow: Flow,
    redirect_uri: Url,
    state: String,
    pkce_verifier: String,
    nonce: String,
}

impl Serialize for PendingLogin {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        Wire {
            tenant: self.tenant.clone(),
            platform: self.platform.clone(),
            flow: self.flow,
            redirect_uri: self.redirect_uri.clone(),
            state: self.state.expose().to_owned(),
            pkce_verifier: self.pkce_verifier.expose().to_owned(),
            nonce: self.nonce.expose().to_owned(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for PendingLogin {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let w = Wire::deserialize(d)?;
        Ok(Self {
            tenant: w.tenant,
            platform: w.platform,
            flow: w.flow,
            redirect_uri: w.redirect_uri,
            state: State::new(w.state),
            pkce_verifier: PkceVerifier::new(w.pkce_verifier),
            nonce: Nonce::new(w.nonce),
        })
    }
}

/// A started redirect login: where to send the browser, and what to keep until it comes back.
#[derive(Debug, Clone)]
pub struct WebLoginStart {
    /// The platform's authorize URL (carries the state; never log it).
    pub url: Url,
    /// The pending login to keep, keyed by `pending.state`.
    pub pending: PendingLogin,
}

/// A successful callback's parameters: `code` (DingTalk: `authCode`), `state`, and `iss`
/// (RFC 9207) when the provider sent one.
#[derive(Clone)]
pub struct Callback {
    /// The authorization code.
    pub code: AuthCode,
    /// The state.
    pub state: State,
    /// The issuer the authorization response names, if any.
    pub iss: Option<String>,
}

impl fmt::Debug for Callback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Callback")
            .field("code", &self.code)
            .field("state", &self.state)
            .field("iss", &self.iss)
            .finish()
    }
}

impl Callback {
    /// Parses a callback query. A missing or oversized state or code is a typed error; a
    /// parameter given twice is refused (a planted duplicate must not win).
    pub fn from_query<'a, I>(pairs: I) -> Result<Self>
    where
        I: IntoIterator<Item = (std::borrow::Cow<'a, str>, std::borrow::Cow<'a, str>)>,
    {
        let (mut code, mut state, mut iss) = (None, None, None);
        for (k, v) in pairs {
            let slot = match k.as_ref() {
                "code" | "authCode" => &mut code,
                "state" => &mut state,
                "iss" => &mut iss,
                _ => continue,
            };
            if slot.replace(v.into_owned()).is_some() {
                return Err(Error::State(StateProblem::Unknown));
            }
        }
        let state = state
            .filter(|s| !s.is_empty())
            .ok_or(Error::State(StateProblem::Missing))?;
        if state.len() > MAX_STATE_LEN {
            return Err(Error::State(StateProblem::Unknown));
        }
        let code = code
            .filter(|c| !c.is_empty() && c.len() <= MAX_CODE_LEN)
            .ok_or(Error::InvalidCallback {
                reason: "the callback carries no usable authorization code",
            })?;
        if iss.as_ref().is_some_and(|i| i.len() > MAX_ISS_LEN) {
            return Err(Error::State(StateProblem::WrongIssuer));
        }
        Ok(Self {
            code: AuthCode::new(code),
            state: State::new(state),
            iss,
        })
    }

    /// Whether the callback's state is the pending login's (constant-time).
    pub fn state_matches(&self, pending: &PendingLogin) -> bool {
        self.state
            .expose()
            .as_bytes()
            .ct_eq(pending.state.expose().as_bytes())
            .into()
    }

    /// Checks `iss` against the provider's policy (RFC 9207 §2.4).
    pub fn check_issuer(&self, policy: Option<&IssuerPolicy>) -> Result<()> {
        match (policy, &self.iss) {
            (None, _) => Ok(()),
            (Some(p), Some(iss)) if *iss == p.issuer => Ok(()),
            (Some(_), Some(_)) => Err(Error::State(StateProblem::WrongIssuer)),
            (Some(p), None) if p.required => Err(Error::State(StateProblem::MissingIssuer)),
            (Some(_), None) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending() -> PendingLogin {
        PendingLogin::new(
            TenantId::new("acme").unwrap(),
            PlatformName::new("p").unwrap(),
            Flow::Web,
            Url::parse("https://app.example/cb").unwrap(),
        )
    }

    fn cb(q: &str) -> Result<Callback> {
        Callback::from_query(url::form_urlencoded::parse(q.as_bytes()))
    }

    #[test]
    fn pending_logins_are_fresh_redacted_and_round_trip() {
        let (a, b) = (pending(), pending());
        assert_ne!(a.state, b.state);
        assert_ne!(a.pkce_verifier, b.pkce_verifier);
        assert_eq!(a.state.len(), 64);
        assert!(a.state.expose().bytes().all(|c| c.is_ascii_alphanumeric()));
        let debug = format!("{a:?}");
        for secret in [a.state.expose(), a.pkce_verifier.expose(), a.nonce.expose()] {
            assert!(!debug.contains(secret), "{debug}");
        }
        let json = serde_json::to_string(&a).unwrap();
        let back: PendingLogin = serde_json::from_str(&json).unwrap();
        assert_eq!(back, a);
    }

    #[test]
    fn callback_parsing_is_strict() {
        let p = pending();
        let ok = cb(&format!("authCode=c1&state={}", p.state.expose())).unwrap();
        assert!(ok.state_matches(&p) && ok.code.expose() == "c1");
        assert!(!cb("code=c&state=other").unwrap().state_matches(&p));
        assert!(matches!(
            cb("code=c"),
            Err(Error::State(StateProblem::Missing))
        ));
        assert!(matches!(
            cb("code=c&state="),
            Err(Error::State(StateProblem::Missing))
        ));
        assert!(matches!(cb("state=s"), Err(Error::InvalidCallback { .. })));
        assert!(matches!(
            cb("code=a&code=b&state=s"),
            Err(Error::State(StateProblem::Unknown))
        ));
        let long = "c".repeat(MAX_CODE_LEN + 1);
        assert!(matches!(
            cb(&format!("code={long}&state=s")),
            Err(Error::InvalidCallback { .. })
        ));
        assert!(!format!("{ok:?}").contains("c1"));
    }

    #[test]
    fn issuer_is_checked_per_rfc9207() {
        let policy = |required| IssuerPolicy {
            issuer: "https://idp.example".into(),
            required,
        };
        let with = cb("code=c&state=s&iss=https%3A%2F%2Fidp.example").unwrap();
        let other = cb("code=c&state=s&iss=https%3A%2F%2Fevil.example").unwrap();
        let without = cb("code=c&state=s").unwrap();
        assert!(with.check_issuer(Some(&policy(true))).is_ok());
        assert!(without.check_issuer(Some(&policy(false))).is_ok());
        assert!(other.check_issuer(None).is_ok());
        assert!(matches!(
            other.check_issuer(Some(&policy(false))),
            Err(Error::State(StateProblem::WrongIssuer))
        ));
        assert!(matches!(
            without.check_issuer(Some(&policy(true))),
            Err(Error::State(StateProblem::MissingIssuer))
        ));
    }
}
