//! Session tokens: what the gateway hands out after a login, and what the services behind it
//! verify.
//!
//! A session token is a compact JWT signed with Ed25519 (`alg: EdDSA`, RFC 8037) under a key id
//! (`kid`). The signer keeps its private keys in [`SessionKeys`] and publishes the public halves
//! as a JWKS document ([`SessionKeys::jwks`], served by the gateway at
//! `GET /.well-known/jwks.json`), so any service can verify a token without sharing a secret.
//! [`SessionKeys::rotate`] switches to a new key and keeps the old public key published until
//! the tokens it signed have expired. [`SessionKeys`] can also hold RSA (`RS256`) or P-256
//! (`ES256`) keys, for OpenID Connect ID tokens ([`SigningAlg`], [`SessionKeys::sign_jws`],
//! [`SessionKeys::verify_jws`]); the guard accepts `EdDSA` tokens only.
//!
//! The token carries [`Claims`]: issuer, audience, subject (`tenant:platform:user_id`), expiry,
//! issued-at, not-before, a random token id (`jti`, the handle for revocation) and the granted
//! `scope` (space-separated, as in OAuth 2.0). Which scopes a person gets is configured per
//! tenant with [`ScopeRules`]. A [`RevocationList`] records token ids revoked before their
//! expiry (logout, admin revoke) and subjects revoked "issued before" a time (a person who left
//! the organisation: [`Claims::revocation_subjects`], [`subject_key`], [`account_key`]);
//! [`MemoryRevocationList`] is the in-process implementation.
//!
//! ```
//! use std::time::Duration;
//! use unilogin_axum::session::{SessionIssuer, SessionKeys};
//! use unilogin_core::UserProfile;
//!
//! let keys = SessionKeys::generate().unwrap();
//! let issuer = SessionIssuer::new(keys, "https://login.example.com", "example-apis", Duration::from_secs(3600));
//! let profile: UserProfile = serde_json::from_value(serde_json::json!({
//!     "platform": "dingtalk", "tenant": "acme", "user_id": "u1", "name": "Zhang San",
//! })).unwrap();
//! let session = issuer.issue(&profile, &["user:read".to_string()]).unwrap();
//! assert_eq!(session.claims.sub, "acme:dingtalk:u1");
//! let claims = issuer.verify(&session.token).unwrap();
//! assert_eq!(claims.scope, "user:read");
//! ```

mod keys;
mod revocation;

use std::collections::HashSet;
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::rand::SystemRandom;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::{Deserialize, Serialize};
use unilogin_core::mapping::UserProfile;

pub use keys::{RETIREMENT_MARGIN, SessionKeys, SigningAlg};
pub use revocation::{
    MemoryRevocationList, RevocationList, Unreachable, account_key, entry_key, subject_key,
};
pub use unilogin_core::mapping::{ScopeRules, ScopeRulesError, is_valid_scope};

/// Clock skew allowed by default when checking `exp` and `nbf`.
pub const DEFAULT_LEEWAY: Duration = Duration::from_secs(30);

/// Errors from key handling, token issuing and scope configuration. Messages never contain key
/// material or tokens.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SessionError {
    /// A key could not be generated, loaded or used.
    #[error("session key: {0}")]
    Key(String),
    /// A scope is not a valid OAuth 2.0 scope token (RFC 6749 §3.3: printable ASCII without
    /// space, `"` or `\`).
    #[error("invalid scope {0:?}: printable ASCII without space, '\"' or '\\'")]
    InvalidScope(String),
    /// The scope rules are not valid.
    #[error("invalid scope rules: {0}")]
    ScopeRules(String),
    /// A token could not be signed.
    #[error("signing the session token failed: {0}")]
    Sign(String),
}

impl From<SessionError> for unilogin_core::Error {
    fn from(e: SessionError) -> Self {
        match e {
            SessionError::ScopeRules(reason) => {
                unilogin_core::Error::config(None, None, "session_scopes", reason)
            }
            other => unilogin_core::Error::Internal(other.to_string()),
        }
    }
}

/// Why a token was not accepted. Only ever logged; clients learn just `invalid_token`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    /// Not a well-formed compact JWT of ours (bad base64/JSON, wrong `alg`, missing claim).
    #[error("malformed token")]
    Malformed,
    /// The header's `kid` names no published key (or there is no `kid`).
    #[error("unknown key id")]
    UnknownKey,
    /// The signature does not verify against the key named by `kid`.
    #[error("bad signature")]
    BadSignature,
    /// `exp` is in the past (beyond the allowed clock skew).
    #[error("token expired")]
    Expired,
    /// `nbf` is in the future (beyond the allowed clock skew).
    #[error("token not yet valid")]
    NotYetValid,
    /// `iss` is not the expected issuer.
    #[error("wrong issuer")]
    WrongIssuer,
    /// `aud` is not the expected audience.
    #[error("wrong audience")]
    WrongAudience,
    /// The token id is on the revocation list.
    #[error("token revoked")]
    Revoked,
}

/// The claims of a session token.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Claims {
    /// Issuer (the gateway's public base URL, typically).
    pub iss: String,
    /// Audience: who the token is meant for.
    pub aud: String,
    /// Subject: `tenant:platform:uid` (the subject identifier the tenant's subject policy
    /// chose, see [`Claims::uid`]).
    pub sub: String,
    /// Expiry, seconds since the Unix epoch.
    pub exp: u64,
    /// Issued at, seconds since the Unix epoch.
    pub iat: u64,
    /// Not before, seconds since the Unix epoch.
    pub nbf: u64,
    /// Random token id, used for revocation.
    pub jti: String,
    /// Granted scopes, space-separated.
    pub scope: String,
    /// Tenant id.
    pub tenant: String,
    /// Platform name (`dingtalk`, `feishu`, ...).
    pub platform: String,
    /// The person's subject identifier on the platform, as the tenant's subject policy chose it
    /// (the tenant-scoped user id, the union id or the open id; `sub` is
    /// `{tenant}:{platform}:{uid}`).
    pub uid: String,
    /// Display name, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The stable unilogin account the platform identity is linked to, when the issuer keeps
    /// accounts (the gateway's `accounts` store): the same for one person's DingTalk and WeCom
    /// logins once linked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account: Option<String>,
    /// The person's id inside the organisation (DingTalk / WeCom `userid`, Feishu `user_id`)
    /// when the profile had one and the subject policy chose another id for [`uid`](Self::uid):
    /// a "user left" event naming the user id still finds this session
    /// ([`revocation_subjects`](Self::revocation_subjects)). Absent when it equals `uid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
}

impl Claims {
    /// The granted scopes.
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope.split_ascii_whitespace()
    }

    /// Whether `scope` was granted.
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes().any(|s| s == scope)
    }

    /// The expiry as a [`SystemTime`].
    pub fn expires_at(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(self.exp)
    }

    /// The issue time as a [`SystemTime`].
    pub fn issued_at(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(self.iat)
    }

    /// Whether the token was issued at or before `before` (the rule of
    /// [`RevocationList::revoke_subject`]; `iat` has whole seconds, so a token issued in the
    /// second of `before` counts as issued before it).
    ///
    /// ```
    /// # use std::time::{Duration, UNIX_EPOCH};
    /// # let claims: unilogin_axum::session::Claims = serde_json::from_value(serde_json::json!({
    /// #     "iss": "i", "aud": "a", "sub": "t:p:u", "exp": 200, "iat": 100, "nbf": 100, "jti": "j",
    /// #     "scope": "", "tenant": "t", "platform": "p", "uid": "u"})).unwrap();
    /// assert_eq!(claims.iat, 100);
    /// assert!(claims.issued_at_or_before(UNIX_EPOCH + Duration::from_millis(100_400)));
    /// assert!(claims.issued_at_or_before(UNIX_EPOCH + Duration::from_secs(100)));
    /// assert!(!claims.issued_at_or_before(UNIX_EPOCH + Duration::from_millis(99_999)));
    /// ```
    pub fn issued_at_or_before(&self, before: SystemTime) -> bool {
        self.issued_at() <= before
    }

    /// The subject keys a [`RevocationList::revoke_subject`] can name this token by:
    /// [`subject_key`]`(tenant, platform, uid)` (equal to `sub`), the same with
    /// [`user_id`](Self::user_id) when it is present and differs from `uid`,
    /// [`account_key`]`(account)` when the token names an account, and last
    /// [`entry_key`]`(tenant, platform)`, the whole entry's.
    ///
    /// ```
    /// use std::time::Duration;
    /// use unilogin_axum::session::{SessionIssuer, SessionKeys, account_key, entry_key, subject_key};
    /// use unilogin_core::UserProfile;
    ///
    /// let issuer = SessionIssuer::new(SessionKeys::generate()?, "https://login.example.com",
    ///     "example-apis", Duration::from_secs(3600));
    /// let profile: UserProfile = serde_json::from_value(serde_json::json!({
    ///     "platform": "feishu", "tenant": "acme",
    ///     "subject": {"kind": "union_id", "value": "on_1"}, "union_id": "on_1", "user_id": "u1",
    /// }))?;
    /// let claims = issuer.issue_for_account(&profile, &[], "acct-7")?.claims;
    /// assert_eq!(claims.revocation_subjects(), [
    ///     subject_key("acme", "feishu", "on_1"),
    ///     subject_key("acme", "feishu", "u1"),
    ///     account_key("acct-7"),
    ///     entry_key("acme", "feishu"),
    /// ]);
    /// assert_eq!(claims.revocation_subjects()[0], claims.sub);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn revocation_subjects(&self) -> Vec<String> {
        let mut keys = vec![subject_key(&self.tenant, &self.platform, &self.uid)];
        if let Some(user_id) = self.user_id.as_deref().filter(|u| *u != self.uid) {
            keys.push(subject_key(&self.tenant, &self.platform, user_id));
        }
        if let Some(account) = &self.account {
            keys.push(account_key(account));
        }
        keys.push(entry_key(&self.tenant, &self.platform));
        keys
    }
}

/// A freshly signed session token. `Debug` hides the token (it is a bearer credential).
#[derive(Clone)]
pub struct IssuedSession {
    /// The compact JWT.
    pub token: String,
    /// What it says.
    pub claims: Claims,
    /// When it expires.
    pub expires_at: SystemTime,
}

impl fmt::Debug for IssuedSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IssuedSession")
            .field("token", &"***")
            .field("claims", &self.claims)
            .field("expires_at", &self.expires_at)
            .finish()
    }
}

/// Signs session tokens for one issuer and audience with [`SessionKeys`]. Cheap to clone.
#[derive(Clone, Debug)]
pub struct SessionIssuer {
    keys: SessionKeys,
    issuer: String,
    audience: String,
    ttl: Duration,
    rng: SystemRandom,
}

impl SessionIssuer {
    /// An issuer whose tokens say `iss: issuer`, `aud: audience` and live for `ttl` (at least
    /// one second).
    pub fn new(
        keys: SessionKeys,
        issuer: impl Into<String>,
        audience: impl Into<String>,
        ttl: Duration,
    ) -> Self {
        Self {
            keys,
            issuer: issuer.into(),
            audience: audience.into(),
            ttl: ttl.max(Duration::from_secs(1)),
            rng: SystemRandom::new(),
        }
    }

    /// Signs a token for `profile` granting `scopes` (each a valid scope token, see
    /// [`is_valid_scope`]; duplicates are dropped), valid from now for the issuer's lifetime.
    pub fn issue(
        &self,
        profile: &UserProfile,
        scopes: &[String],
    ) -> Result<IssuedSession, SessionError> {
        self.issue_at(profile, scopes, SystemTime::now())
    }

    /// Like [`issue`](Self::issue), the token also naming the person's unilogin `account`.
    pub fn issue_for_account(
        &self,
        profile: &UserProfile,
        scopes: &[String],
        account: &str,
    ) -> Result<IssuedSession, SessionError> {
        self.issue_with(profile, scopes, SystemTime::now(), Some(account))
    }

    /// Like [`issue`](Self::issue) with an explicit issue time (`iat` = `nbf` = `now`, `exp` =
    /// `now + ttl`): for tests and for replaying a clock.
    pub fn issue_at(
        &self,
        profile: &UserProfile,
        scopes: &[String],
        now: SystemTime,
    ) -> Result<IssuedSession, SessionError> {
        self.issue_with(profile, scopes, now, None)
    }

    fn issue_with(
        &self,
        profile: &UserProfile,
        scopes: &[String],
        now: SystemTime,
        account: Option<&str>,
    ) -> Result<IssuedSession, SessionError> {
        let mut seen = HashSet::new();
        let mut scope = String::new();
        for s in scopes {
            if !is_valid_scope(s) {
                return Err(SessionError::InvalidScope(s.clone()));
            }
            if seen.insert(s.as_str()) {
                if !scope.is_empty() {
                    scope.push(' ');
                }
                scope.push_str(s);
            }
        }
        let iat = unix_secs(now);
        let exp = iat.saturating_add(self.ttl.as_secs());
        let tenant = profile.tenant.as_str().to_string();
        let platform = profile.platform.as_str().to_string();
        let claims = Claims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: format!("{tenant}:{platform}:{}", profile.subject.value),
            exp,
            iat,
            nbf: iat,
            jti: keys::random_id(&self.rng, 16)?,
            scope,
            tenant,
            platform,
            uid: profile.subject.value.clone(),
            name: profile.name.clone(),
            account: account.map(str::to_string),
            user_id: profile
                .user_id
                .clone()
                .filter(|u| *u != profile.subject.value),
        };
        let token = self.sign(&claims)?;
        Ok(IssuedSession {
            token,
            expires_at: claims.expires_at(),
            claims,
        })
    }

    /// Signs arbitrary `claims` with the current key, as they are. Useful to mint tokens for
    /// tests (an expired one, another audience); [`issue`](Self::issue) is the normal path.
    pub fn sign(&self, claims: &Claims) -> Result<String, SessionError> {
        self.keys.sign_jws(Some("JWT"), claims)
    }

    /// Verifies a token signed by this issuer's keys (signature with the keys' algorithm,
    /// `iss`, `aud`, `exp`, `nbf` with [`DEFAULT_LEEWAY`]). Revocation is not checked here (it
    /// is asynchronous); the guard does both.
    pub fn verify(&self, token: &str) -> Result<Claims, VerifyError> {
        let alg = self.keys.alg().into();
        let mut validation = validation(&self.issuer, &self.audience, DEFAULT_LEEWAY);
        validation.algorithms = vec![alg];
        let kid = token_kid_alg(token, alg)?;
        let key = self
            .keys
            .decoding_key(&kid)
            .ok_or(VerifyError::UnknownKey)?;
        verify_with_key(token, &key, &validation)
    }

    /// The signing keys (publish `keys().jwks()`).
    pub fn keys(&self) -> &SessionKeys {
        &self.keys
    }

    /// The `iss` of issued tokens.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// The `aud` of issued tokens.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// The lifetime of issued tokens.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }
}

fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The validation settings every verifier uses: EdDSA only; `exp`, `nbf`, `iss`, `aud`, `sub`
/// required; `leeway` of clock skew on `exp` and `nbf`.
pub(crate) fn validation(issuer: &str, audience: &str, leeway: Duration) -> Validation {
    let mut v = Validation::new(Algorithm::EdDSA);
    v.leeway = leeway.as_secs();
    v.validate_exp = true;
    v.validate_nbf = true;
    v.validate_aud = true;
    v.set_issuer(&[issuer]);
    v.set_audience(&[audience]);
    v.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
    v
}

/// The `kid` of a compact JWT's header, or why there is none; `alg` must be `EdDSA`.
pub(crate) fn token_kid(token: &str) -> Result<String, VerifyError> {
    token_kid_alg(token, Algorithm::EdDSA)
}

/// The `kid` of a compact JWT's header, or why there is none; `alg` must be `alg`.
fn token_kid_alg(token: &str, alg: Algorithm) -> Result<String, VerifyError> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| VerifyError::Malformed)?;
    if header.alg != alg {
        return Err(VerifyError::Malformed);
    }
    header.kid.ok_or(VerifyError::UnknownKey)
}

/// Verifies signature and claims of `token` with `key`.
pub(crate) fn verify_with_key(
    token: &str,
    key: &DecodingKey,
    validation: &Validation,
) -> Result<Claims, VerifyError> {
    match jsonwebtoken::decode::<Claims>(token, key, validation) {
        Ok(data) => Ok(data.claims),
        Err(e) => Err(match e.kind() {
            ErrorKind::InvalidSignature
            | ErrorKind::InvalidEddsaKey
            | ErrorKind::InvalidRsaKey(_)
            | ErrorKind::InvalidEcdsaKey => VerifyError::BadSignature,
            ErrorKind::ExpiredSignature => VerifyError::Expired,
            ErrorKind::ImmatureSignature => VerifyError::NotYetValid,
            ErrorKind::InvalidIssuer => VerifyError::WrongIssuer,
            ErrorKind::InvalidAudience => VerifyError::WrongAudience,
            _ => VerifyError::Malformed,
        }),
    }
}

#[cfg(test)]
mod tests;
