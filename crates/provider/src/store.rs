//! What the provider remembers between requests, behind the [`GrantStore`] trait: pending
//! authorization requests, authorization codes, grants (with their refresh-token family and
//! the access tokens issued from them) and which clients got tokens in which session.
//!
//! Every record has a time to live. Secrets never reach the store in clear: codes and refresh
//! tokens are stored as their SHA-256; a pending request's id is a random 256-bit handle.
//! [`MemoryGrantStore`] is the bounded in-process store (oldest records evicted first); the
//! Redis store in `unilogin-redis` (feature `provider`) is shared by replicas.
//!
//! ## Refresh token families
//! A grant is the family: a refresh token is `<grant id>.<secret>`, and the grant keeps the
//! hash of the *current* secret and of every former one. [`GrantStore::rotate_refresh`]
//! atomically replaces the current hash when it is presented; presenting a former one means
//! a stolen token was used (RFC 6749 §10.4, OAuth 2.0 Security BCP §4.14), and the whole
//! family is revoked.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use unilogin_core::UserProfile;

use crate::error::Result;

/// An authorization request waiting for the person to log in (`/oidc/resume?req=<id>`).
/// `Debug` hides `state`, `nonce` and the PKCE challenge.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingAuthorization {
    /// The client.
    pub client_id: String,
    /// The validated redirect URI.
    pub redirect_uri: String,
    /// The granted scopes (allowed and known ones).
    pub scopes: Vec<String>,
    /// The client's `state`, echoed back.
    pub state: Option<String>,
    /// The client's `nonce`, put in the id token.
    pub nonce: Option<String>,
    /// The PKCE S256 challenge.
    pub code_challenge: Option<String>,
    /// The tenant to sign in to.
    pub tenant: String,
    /// The platform chosen by `login_hint`, if any.
    pub platform: Option<String>,
    /// `max_age` in seconds, if given.
    pub max_age: Option<u64>,
    /// The login must have happened at or after this (Unix milliseconds) — set for
    /// `prompt=login` and an exceeded `max_age`: the login must be fresh.
    pub fresh_after_ms: Option<u64>,
    /// Whether `auth_time` must be in the id token (`max_age` was requested).
    pub require_auth_time: bool,
}

impl fmt::Debug for PendingAuthorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PendingAuthorization")
            .field("client_id", &self.client_id)
            .field("redirect_uri", &self.redirect_uri)
            .field("scopes", &self.scopes)
            .field("state", &self.state.as_ref().map(|_| "***"))
            .field("nonce", &self.nonce.as_ref().map(|_| "***"))
            .field("tenant", &self.tenant)
            .field("platform", &self.platform)
            .field("max_age", &self.max_age)
            .field("fresh_after_ms", &self.fresh_after_ms)
            .finish_non_exhaustive()
    }
}

/// What an authorization code stands for until it is redeemed. `Debug` hides the nonce and
/// the PKCE challenge.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct CodeGrant {
    /// The grant the code turns into (and the spent marker names).
    pub grant_id: String,
    /// The redirect URI of the authorization request (must be repeated at the token endpoint).
    pub redirect_uri: String,
    /// The PKCE S256 challenge.
    pub code_challenge: Option<String>,
    /// The client's `nonce`.
    pub nonce: Option<String>,
    /// Everything the tokens say.
    pub grant: Grant,
}

impl fmt::Debug for CodeGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CodeGrant")
            .field("grant_id", &self.grant_id)
            .field("redirect_uri", &self.redirect_uri)
            .field("pkce", &self.code_challenge.is_some())
            .field("nonce", &self.nonce.as_ref().map(|_| "***"))
            .field("grant", &self.grant)
            .finish()
    }
}

/// What one login granted one client: the basis of every token issued from it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Grant {
    /// The grant id (the refresh family id).
    pub id: String,
    /// The client.
    pub client_id: String,
    /// Granted scopes.
    pub scopes: Vec<String>,
    /// The host session subject (`tenant:platform:uid`).
    pub subject: String,
    /// The `sub` the client sees (the subject, or its pairwise form).
    pub sub: String,
    /// The host session id.
    pub sid: String,
    /// When the person logged in (Unix seconds).
    pub auth_time: u64,
    /// Whether the id token must carry `auth_time`.
    pub require_auth_time: bool,
    /// The tenant.
    pub tenant: String,
    /// The platform.
    pub platform: String,
    /// The platform subject identifier (the session token's `uid`).
    pub uid: String,
    /// The person's organisation user id, when it differs from `uid`.
    pub user_id: Option<String>,
    /// The linked account.
    pub account: Option<String>,
    /// The claims the scopes released (for the id token and userinfo).
    pub claims: serde_json::Map<String, Value>,
    /// When the grant was created (Unix seconds): the refresh lifetime counts from here.
    pub created_at: u64,
}

impl Grant {
    /// An empty grant record standing for a revoked id.
    fn tombstone(id: &str) -> Self {
        Self {
            id: id.to_string(),
            client_id: String::new(),
            scopes: Vec::new(),
            subject: String::new(),
            sub: String::new(),
            sid: String::new(),
            auth_time: 0,
            require_auth_time: false,
            tenant: String::new(),
            platform: String::new(),
            uid: String::new(),
            user_id: None,
            account: None,
            claims: serde_json::Map::new(),
            created_at: 0,
        }
    }
}

/// The result of [`GrantStore::take_code`].
#[derive(Debug, Clone, PartialEq)]
pub enum CodeTaken {
    /// The code was valid; it is now spent.
    Found(Box<CodeGrant>),
    /// The code was redeemed before: the grant it became must be revoked (RFC 6749 §4.1.2).
    Spent {
        /// The grant the first redemption created.
        grant_id: String,
    },
    /// Never issued, or forgotten.
    Missing,
}

/// The result of [`GrantStore::rotate_refresh`].
#[derive(Debug, Clone, PartialEq)]
pub enum Rotation {
    /// The presented token was current; the new one is current now.
    Rotated(Box<Grant>),
    /// The presented token was a former one: the family is revoked now; revoke the access
    /// tokens it issued.
    Reused(Box<Grant>),
    /// Unknown family, unknown secret, expired or already revoked.
    Invalid,
}

/// An access token issued from a grant, for revocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuedToken {
    /// Its `jti`.
    pub jti: String,
    /// Its `exp` (Unix seconds).
    pub exp: u64,
}

/// The clients that got tokens in one host session.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SessionRecord {
    /// The session subject.
    pub subject: String,
    /// `(client id, grant id)` pairs, in the order they were recorded.
    pub clients: Vec<(String, String)>,
}

/// What the host knew of a login when it happened: the person's profile and where they
/// logged in. Kept for the host session's lifetime under the session id (`sid`), so an
/// authorization request later in the same session releases the same claims without another
/// platform login ([`Provider::remember_login`](crate::Provider::remember_login)).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LoginRecord {
    /// The profile from the platform login.
    pub profile: UserProfile,
    /// The tenant of the login.
    pub tenant: String,
    /// The platform of the login.
    pub platform: String,
    /// The session subject.
    pub subject: String,
    /// The linked account, if any.
    pub account: Option<String>,
    /// When the person logged in (Unix milliseconds).
    pub auth_time_ms: u64,
}

/// Where the provider keeps its records. Errors are
/// [`ProviderError::TemporarilyUnavailable`](crate::ProviderError::TemporarilyUnavailable)
/// (use [`ProviderError::store`](crate::ProviderError::store)): the request then fails closed.
#[async_trait]
pub trait GrantStore: Send + Sync + fmt::Debug + 'static {
    /// Stores a pending authorization request under the random `id` for `ttl`.
    async fn put_request(
        &self,
        id: &str,
        request: &PendingAuthorization,
        ttl: Duration,
    ) -> Result<()>;
    /// Takes the pending request `id` (once).
    async fn take_request(&self, id: &str) -> Result<Option<PendingAuthorization>>;

    /// Stores a code under its hash for `ttl`.
    async fn put_code(&self, code_hash: &str, code: &CodeGrant, ttl: Duration) -> Result<()>;
    /// Takes the code atomically: the first caller gets it, later ones [`CodeTaken::Spent`]
    /// for `spent_ttl` (the marker naming the grant outlives the code).
    async fn take_code(&self, code_hash: &str, spent_ttl: Duration) -> Result<CodeTaken>;

    /// Stores a new grant for `ttl`, with the hash of its first refresh secret, if any. A
    /// grant revoked before it was stored stays revoked (see
    /// [`revoke_grant`](Self::revoke_grant)).
    async fn put_grant(
        &self,
        grant: &Grant,
        refresh_hash: Option<&str>,
        ttl: Duration,
    ) -> Result<()>;
    /// The grant `id`, unless it is unknown, expired or revoked.
    async fn grant(&self, id: &str) -> Result<Option<Grant>>;
    /// Rotates the refresh secret of grant `id` atomically: `presented_hash` current → it
    /// becomes former, `new_hash` current, the grant lives `ttl` more; `presented_hash`
    /// former → the grant is revoked ([`Rotation::Reused`]).
    async fn rotate_refresh(
        &self,
        id: &str,
        presented_hash: &str,
        new_hash: &str,
        ttl: Duration,
    ) -> Result<Rotation>;
    /// Records an access token issued from grant `id` (for revocation).
    async fn add_access_token(&self, id: &str, token: &IssuedToken) -> Result<()>;
    /// Revokes grant `id` (its refresh tokens stop working, [`grant`](Self::grant) answers
    /// `None`) and returns the access tokens issued from it. Revoking again returns them
    /// again. Revoking a grant not stored yet leaves a revoked record for `ttl` that a later
    /// [`put_grant`](Self::put_grant) keeps revoked (a code redeemed twice at the same moment).
    async fn revoke_grant(&self, id: &str, ttl: Duration) -> Result<Vec<IssuedToken>>;

    /// Records that `client_id` got tokens (grant `grant_id`) in session `sid` of `subject`.
    async fn add_session_client(
        &self,
        sid: &str,
        subject: &str,
        client_id: &str,
        grant_id: &str,
        ttl: Duration,
    ) -> Result<()>;
    /// Takes the record of session `sid` (once: a second logout notifies nobody again).
    async fn take_session(&self, sid: &str) -> Result<Option<SessionRecord>>;
    /// The sessions of `subject` that have a record.
    async fn subject_sessions(&self, subject: &str) -> Result<Vec<String>>;

    /// Stores what is known of login `sid` for `ttl` (the host session's lifetime).
    async fn put_login(&self, sid: &str, login: &LoginRecord, ttl: Duration) -> Result<()>;
    /// The login record of session `sid`, unless unknown or expired.
    async fn login(&self, sid: &str) -> Result<Option<LoginRecord>>;
}

/// A map whose entries expire and which holds at most `cap` of them (the oldest inserted is
/// evicted first).
#[derive(Debug)]
struct Bounded<V> {
    map: HashMap<String, (V, Instant, u64)>,
    order: VecDeque<(String, u64)>,
    seq: u64,
    cap: usize,
}

impl<V> Bounded<V> {
    fn new(cap: usize) -> Self {
        Self {
            map: HashMap::new(),
            order: VecDeque::new(),
            seq: 0,
            cap: cap.max(1),
        }
    }

    fn insert(&mut self, key: &str, value: V, ttl: Duration) {
        let now = Instant::now();
        if !self.map.contains_key(key) && self.map.len() >= self.cap {
            self.map.retain(|_, (_, until, _)| *until > now);
            while self.map.len() >= self.cap {
                let Some((k, seq)) = self.order.pop_front() else {
                    break;
                };
                if self.map.get(&k).is_some_and(|(_, _, s)| *s == seq) {
                    self.map.remove(&k);
                }
            }
        }
        self.seq += 1;
        let until = now.checked_add(ttl).unwrap_or(now);
        self.map.insert(key.to_string(), (value, until, self.seq));
        self.order.push_back((key.to_string(), self.seq));
        if self.order.len() > self.cap.saturating_mul(2) {
            let map = &self.map;
            self.order
                .retain(|(k, s)| map.get(k).is_some_and(|(_, _, seq)| seq == s));
        }
    }

    fn get_mut(&mut self, key: &str) -> Option<&mut V> {
        let now = Instant::now();
        match self.map.get(key) {
            Some((_, until, _)) if *until <= now => {
                self.map.remove(key);
                None
            }
            Some(_) => self.map.get_mut(key).map(|(v, _, _)| v),
            None => None,
        }
    }

    fn remove(&mut self, key: &str) -> Option<V> {
        let now = Instant::now();
        self.map
            .remove(key)
            .filter(|(_, until, _)| *until > now)
            .map(|(v, _, _)| v)
    }

    fn extend(&mut self, key: &str, ttl: Duration) {
        if let Some((_, until, _)) = self.map.get_mut(key) {
            *until = Instant::now().checked_add(ttl).unwrap_or(*until);
        }
    }

    fn ttl(&self, key: &str) -> Option<Duration> {
        self.map
            .get(key)
            .map(|(_, until, _)| until.saturating_duration_since(Instant::now()))
    }
}

#[derive(Debug)]
enum CodeEntry {
    Live(Box<CodeGrant>),
    Spent(String),
}

#[derive(Debug)]
struct GrantEntry {
    grant: Grant,
    current: Option<String>,
    former: HashSet<String>,
    revoked: bool,
    tokens: Vec<IssuedToken>,
}

#[derive(Debug)]
struct Records {
    requests: Bounded<PendingAuthorization>,
    codes: Bounded<CodeEntry>,
    grants: Bounded<GrantEntry>,
    sessions: Bounded<SessionRecord>,
    subjects: Bounded<Vec<String>>,
    logins: Bounded<LoginRecord>,
}

/// The in-process [`GrantStore`]: every kind of record is bounded (default 100 000 each, the
/// oldest evicted first) and forgotten after its time. For one replica; replicas share the
/// Redis store.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// use std::time::Duration;
/// use unilogin_provider::{GrantStore, MemoryGrantStore};
/// let store = MemoryGrantStore::new();
/// assert_eq!(store.take_request("nope").await.unwrap(), None);
/// assert!(store.subject_sessions("acme:dingtalk:u1").await.unwrap().is_empty());
/// # });
/// ```
#[derive(Debug)]
pub struct MemoryGrantStore {
    inner: Mutex<Records>,
}

impl Default for MemoryGrantStore {
    fn default() -> Self {
        Self::with_capacity(100_000)
    }
}

impl MemoryGrantStore {
    /// A store holding up to 100 000 records of each kind.
    pub fn new() -> Self {
        Self::default()
    }

    /// A store holding up to `cap` records of each kind.
    pub fn with_capacity(cap: usize) -> Self {
        Self {
            inner: Mutex::new(Records {
                requests: Bounded::new(cap),
                codes: Bounded::new(cap),
                grants: Bounded::new(cap),
                sessions: Bounded::new(cap),
                subjects: Bounded::new(cap),
                logins: Bounded::new(cap),
            }),
        }
    }

    // Every operation leaves the maps consistent (single inserts and removals), so a poisoned
    // lock is safe to keep using.
    fn lock(&self) -> std::sync::MutexGuard<'_, Records> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl GrantStore for MemoryGrantStore {
    async fn put_request(
        &self,
        id: &str,
        request: &PendingAuthorization,
        ttl: Duration,
    ) -> Result<()> {
        self.lock().requests.insert(id, request.clone(), ttl);
        Ok(())
    }

    async fn take_request(&self, id: &str) -> Result<Option<PendingAuthorization>> {
        Ok(self.lock().requests.remove(id))
    }

    async fn put_code(&self, code_hash: &str, code: &CodeGrant, ttl: Duration) -> Result<()> {
        self.lock()
            .codes
            .insert(code_hash, CodeEntry::Live(Box::new(code.clone())), ttl);
        Ok(())
    }

    async fn take_code(&self, code_hash: &str, spent_ttl: Duration) -> Result<CodeTaken> {
        let mut r = self.lock();
        let Some(entry) = r.codes.get_mut(code_hash) else {
            return Ok(CodeTaken::Missing);
        };
        let taken = match entry {
            CodeEntry::Spent(grant_id) => {
                return Ok(CodeTaken::Spent {
                    grant_id: grant_id.clone(),
                });
            }
            CodeEntry::Live(code) => {
                let grant_id = code.grant_id.clone();
                std::mem::replace(entry, CodeEntry::Spent(grant_id))
            }
        };
        r.codes.extend(code_hash, spent_ttl);
        Ok(match taken {
            CodeEntry::Live(code) => CodeTaken::Found(code),
            CodeEntry::Spent(grant_id) => CodeTaken::Spent { grant_id },
        })
    }

    async fn put_grant(
        &self,
        grant: &Grant,
        refresh_hash: Option<&str>,
        ttl: Duration,
    ) -> Result<()> {
        let mut r = self.lock();
        let revoked = r.grants.get_mut(&grant.id).is_some_and(|g| g.revoked);
        let entry = GrantEntry {
            grant: grant.clone(),
            current: refresh_hash.map(str::to_string),
            former: HashSet::new(),
            revoked,
            tokens: Vec::new(),
        };
        r.grants.insert(&grant.id, entry, ttl);
        Ok(())
    }

    async fn grant(&self, id: &str) -> Result<Option<Grant>> {
        Ok(self
            .lock()
            .grants
            .get_mut(id)
            .filter(|g| !g.revoked)
            .map(|g| g.grant.clone()))
    }

    async fn rotate_refresh(
        &self,
        id: &str,
        presented_hash: &str,
        new_hash: &str,
        ttl: Duration,
    ) -> Result<Rotation> {
        let mut r = self.lock();
        let Some(g) = r.grants.get_mut(id) else {
            return Ok(Rotation::Invalid);
        };
        if g.revoked {
            return Ok(Rotation::Invalid);
        }
        if g.current.as_deref() == Some(presented_hash) {
            g.former.insert(presented_hash.to_string());
            g.current = Some(new_hash.to_string());
            let grant = g.grant.clone();
            r.grants.extend(id, ttl);
            return Ok(Rotation::Rotated(Box::new(grant)));
        }
        if g.former.contains(presented_hash) {
            g.revoked = true;
            return Ok(Rotation::Reused(Box::new(g.grant.clone())));
        }
        Ok(Rotation::Invalid)
    }

    async fn add_access_token(&self, id: &str, token: &IssuedToken) -> Result<()> {
        if let Some(g) = self.lock().grants.get_mut(id) {
            g.tokens.push(token.clone());
        }
        Ok(())
    }

    async fn revoke_grant(&self, id: &str, ttl: Duration) -> Result<Vec<IssuedToken>> {
        let mut r = self.lock();
        if let Some(g) = r.grants.get_mut(id) {
            g.revoked = true;
            return Ok(g.tokens.clone());
        }
        let tombstone = GrantEntry {
            grant: Grant::tombstone(id),
            current: None,
            former: HashSet::new(),
            revoked: true,
            tokens: Vec::new(),
        };
        r.grants.insert(id, tombstone, ttl);
        Ok(Vec::new())
    }

    async fn add_session_client(
        &self,
        sid: &str,
        subject: &str,
        client_id: &str,
        grant_id: &str,
        ttl: Duration,
    ) -> Result<()> {
        let mut r = self.lock();
        let pair = (client_id.to_string(), grant_id.to_string());
        let keep = r.sessions.ttl(sid).unwrap_or_default().max(ttl);
        match r.sessions.get_mut(sid) {
            Some(s) => {
                if !s.clients.contains(&pair) {
                    s.clients.push(pair);
                }
                r.sessions.extend(sid, keep);
            }
            None => {
                let record = SessionRecord {
                    subject: subject.to_string(),
                    clients: vec![pair],
                };
                r.sessions.insert(sid, record, ttl);
            }
        }
        let keep = r.subjects.ttl(subject).unwrap_or_default().max(ttl);
        match r.subjects.get_mut(subject) {
            Some(sids) => {
                if !sids.iter().any(|s| s == sid) {
                    sids.push(sid.to_string());
                }
                r.subjects.extend(subject, keep);
            }
            None => r.subjects.insert(subject, vec![sid.to_string()], ttl),
        }
        Ok(())
    }

    async fn take_session(&self, sid: &str) -> Result<Option<SessionRecord>> {
        let mut r = self.lock();
        let record = r.sessions.remove(sid);
        if let Some(rec) = &record
            && let Some(sids) = r.subjects.get_mut(&rec.subject)
        {
            sids.retain(|s| s != sid);
        }
        Ok(record)
    }

    async fn subject_sessions(&self, subject: &str) -> Result<Vec<String>> {
        Ok(self
            .lock()
            .subjects
            .get_mut(subject)
            .cloned()
            .unwrap_or_default())
    }

    async fn put_login(&self, sid: &str, login: &LoginRecord, ttl: Duration) -> Result<()> {
        self.lock().logins.insert(sid, login.clone(), ttl);
        Ok(())
    }

    async fn login(&self, sid: &str) -> Result<Option<LoginRecord>> {
        Ok(self.lock().logins.get_mut(sid).cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn grant(id: &str) -> Grant {
        Grant {
            id: id.into(),
            client_id: "c".into(),
            scopes: vec!["openid".into()],
            subject: "acme:dingtalk:u1".into(),
            sub: "acme:dingtalk:u1".into(),
            sid: "sid1".into(),
            auth_time: 1,
            require_auth_time: false,
            tenant: "acme".into(),
            platform: "dingtalk".into(),
            uid: "u1".into(),
            user_id: None,
            account: None,
            claims: serde_json::Map::new(),
            created_at: 1,
        }
    }

    #[tokio::test]
    async fn codes_are_single_use_and_leave_a_spent_marker() {
        let s = MemoryGrantStore::new();
        let code = CodeGrant {
            grant_id: "g1".into(),
            redirect_uri: "https://rp/cb".into(),
            code_challenge: None,
            nonce: Some("n-secret".into()),
            grant: grant("g1"),
        };
        assert!(!format!("{code:?}").contains("n-secret"));
        s.put_code("h", &code, Duration::from_secs(60))
            .await
            .unwrap();
        let ttl = Duration::from_secs(600);
        assert!(matches!(s.take_code("h", ttl).await.unwrap(), CodeTaken::Found(c) if *c == code));
        assert_eq!(
            s.take_code("h", ttl).await.unwrap(),
            CodeTaken::Spent {
                grant_id: "g1".into()
            }
        );
        assert_eq!(s.take_code("x", ttl).await.unwrap(), CodeTaken::Missing);
    }

    #[tokio::test]
    async fn rotation_detects_reuse_and_revokes_the_family() {
        let s = MemoryGrantStore::new();
        let ttl = Duration::from_secs(60);
        s.put_grant(&grant("g"), Some("r1"), ttl).await.unwrap();
        s.add_access_token(
            "g",
            &IssuedToken {
                jti: "j1".into(),
                exp: 9,
            },
        )
        .await
        .unwrap();
        assert!(matches!(
            s.rotate_refresh("g", "r1", "r2", ttl).await.unwrap(),
            Rotation::Rotated(_)
        ));
        assert!(matches!(
            s.rotate_refresh("g", "nope", "r3", ttl).await.unwrap(),
            Rotation::Invalid
        ));
        assert!(matches!(
            s.rotate_refresh("g", "r1", "r3", ttl).await.unwrap(),
            Rotation::Reused(_)
        ));
        // The family is gone: the current token no longer works either.
        assert!(matches!(
            s.rotate_refresh("g", "r2", "r4", ttl).await.unwrap(),
            Rotation::Invalid
        ));
        assert_eq!(s.grant("g").await.unwrap(), None);
        assert_eq!(s.revoke_grant("g", ttl).await.unwrap()[0].jti, "j1");
        // Revoked before stored: stays revoked.
        assert!(s.revoke_grant("early", ttl).await.unwrap().is_empty());
        s.put_grant(&grant("early"), Some("r"), ttl).await.unwrap();
        assert_eq!(s.grant("early").await.unwrap(), None);
        assert!(matches!(
            s.rotate_refresh("early", "r", "r2", ttl).await.unwrap(),
            Rotation::Invalid
        ));
    }

    #[tokio::test]
    async fn records_are_bounded_and_expire() {
        let s = MemoryGrantStore::with_capacity(2);
        let ttl = Duration::from_secs(60);
        for id in ["a", "b", "c"] {
            s.put_grant(&grant(id), None, ttl).await.unwrap();
        }
        assert_eq!(s.grant("a").await.unwrap(), None, "the oldest is evicted");
        assert!(s.grant("b").await.unwrap().is_some());
        assert!(s.grant("c").await.unwrap().is_some());
        s.put_grant(&grant("short"), None, Duration::from_millis(10))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert_eq!(s.grant("short").await.unwrap(), None);
    }

    #[tokio::test]
    async fn sessions_map_subjects_to_sids_and_are_taken_once() {
        let s = MemoryGrantStore::new();
        let ttl = Duration::from_secs(60);
        s.add_session_client("s1", "subj", "c1", "g1", ttl)
            .await
            .unwrap();
        s.add_session_client("s1", "subj", "c2", "g2", ttl)
            .await
            .unwrap();
        s.add_session_client("s2", "subj", "c1", "g3", ttl)
            .await
            .unwrap();
        assert_eq!(s.subject_sessions("subj").await.unwrap(), ["s1", "s2"]);
        let rec = s.take_session("s1").await.unwrap().unwrap();
        assert_eq!(rec.clients.len(), 2);
        assert_eq!(s.take_session("s1").await.unwrap(), None);
        assert_eq!(s.subject_sessions("subj").await.unwrap(), ["s2"]);
    }
}
