//! Revocation deny-list: token ids revoked before their expiry, and subjects (a person, an
//! account) whose tokens issued up to some time are refused.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::SystemTime;

use async_trait::async_trait;

use super::Claims;

/// A deny-list of token ids (`jti`) and of subjects. A logout or an admin revoke adds the id
/// until the token would have expired anyway; a person leaving the organisation revokes their
/// subject keys ([`Claims::revocation_subjects`]) "issued before now", so every token they
/// hold is refused while a token from a later login is not. Verifiers call
/// [`check_claims`](Self::check_claims).
///
/// Implementations must be safe to share between tasks. The in-process one is
/// [`MemoryRevocationList`]; a shared store (Redis) lets every replica see a revocation.
#[async_trait]
pub trait RevocationList: Send + Sync {
    /// Denies `jti` until `until` (the token's expiry). Revoking again keeps the later time.
    async fn revoke(&self, jti: &str, until: SystemTime);
    /// Whether `jti` is denied now. A list that cannot tell (its shared store is unreachable)
    /// answers `true`: it fails closed.
    async fn is_revoked(&self, jti: &str) -> bool;

    /// Like [`revoke`](Self::revoke), saying whether the revocation reached the shared list.
    /// `Err`: it is in force on this process only (and, for lists that queue, reaches the shared
    /// list once it answers again). The default: in-process lists always succeed.
    async fn revoke_checked(&self, jti: &str, until: SystemTime) -> Result<(), Unreachable> {
        self.revoke(jti, until).await;
        Ok(())
    }

    /// Like [`is_revoked`](Self::is_revoked), but `Err` when the list cannot tell, so a caller
    /// can answer "try again" (503) rather than "signed out" (401). The default: in-process lists
    /// always can tell.
    async fn check(&self, jti: &str) -> Result<bool, Unreachable> {
        Ok(self.is_revoked(jti).await)
    }

    /// Refuses every token of the subject key `subject` ([`subject_key`], [`account_key`])
    /// issued at or before `before` (compared with the token's `iat`, whole seconds: a token
    /// issued in the same second as `before` is refused too), remembered until `until` — the
    /// longest any such token can still live (`before` + the issuer's token lifetime). Revoking
    /// again keeps the later `before` and the later `until`. Nothing is recorded when `until`
    /// has passed.
    ///
    /// `Err` like [`revoke_checked`](Self::revoke_checked): in force on this process only
    /// (queued for the shared list where the list queues).
    async fn revoke_subject(
        &self,
        subject: &str,
        before: SystemTime,
        until: SystemTime,
    ) -> Result<(), Unreachable>;

    /// Whether the token `claims` describe is refused: its `jti` is revoked, or one of its
    /// [`Claims::revocation_subjects`] was revoked with a `before` at or after its `iat`.
    /// `Err` when the list cannot tell (see [`check`](Self::check)).
    async fn check_claims(&self, claims: &Claims) -> Result<bool, Unreachable>;
}

/// The shared revocation list cannot be reached (see [`RevocationList::check`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the shared revocation list is unreachable")]
pub struct Unreachable;

/// The subject key of the person `id` of `platform` in `tenant`: `"{tenant}:{platform}:{id}"`,
/// the form of a session token's `sub`. A receiver of a "user left" event revokes it for each
/// id the event names (user id, union id, open id) with [`RevocationList::revoke_subject`].
///
/// ```
/// use unilogin_axum::session::subject_key;
/// assert_eq!(subject_key("acme", "dingtalk", "0146"), "acme:dingtalk:0146");
/// ```
pub fn subject_key(tenant: &str, platform: &str, id: &str) -> String {
    format!("{tenant}:{platform}:{id}")
}

/// The subject key of a linked unilogin account: `"account:{account}"` (see
/// [`Claims::account`]): revoking it refuses the person's tokens from every linked platform.
///
/// ```
/// use unilogin_axum::session::account_key;
/// assert_eq!(account_key("acct-7"), "account:acct-7");
/// ```
pub fn account_key(account: &str) -> String {
    format!("account:{account}")
}

/// The subject key of a whole configuration entry, `"entry:{tenant}:{platform}"`: revoking it
/// refuses every token issued through `platform` for `tenant` (a store app uninstalled by the
/// organisation of that entry). Every token carries it ([`Claims::revocation_subjects`]).
///
/// ```
/// use unilogin_axum::session::entry_key;
/// assert_eq!(entry_key("acme", "wecom"), "entry:acme:wecom");
/// ```
pub fn entry_key(tenant: &str, platform: &str) -> String {
    format!("entry:{tenant}:{platform}")
}

/// In-process [`RevocationList`]. Entries are dropped once their time has passed (expired
/// entries are swept as the list grows, so memory stays proportional to the live revocations).
///
/// ```
/// # tokio_test_block_on(async {
/// use std::time::{Duration, SystemTime};
/// use unilogin_axum::session::{MemoryRevocationList, RevocationList, subject_key};
/// let list = MemoryRevocationList::new();
/// list.revoke("jti-1", SystemTime::now() + Duration::from_secs(60)).await;
/// assert!(list.is_revoked("jti-1").await);
/// assert!(!list.is_revoked("jti-2").await);
///
/// // A leaver: every token of theirs issued up to now is refused for the next hour.
/// let now = SystemTime::now();
/// list.revoke_subject(&subject_key("acme", "dingtalk", "0146"), now, now + Duration::from_secs(3600))
///     .await
///     .unwrap();
/// assert_eq!(list.subject_revoked_before("acme:dingtalk:0146"), Some(now));
/// # });
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
#[derive(Debug, Default)]
pub struct MemoryRevocationList {
    inner: Mutex<Entries>,
}

#[derive(Debug, Default)]
struct Entries {
    until: HashMap<String, SystemTime>,
    /// Sweep expired entries when the map reaches this size.
    sweep_at: usize,
    subjects: HashMap<String, SubjectEntry>,
    /// Sweep expired subject entries when that map reaches this size.
    subjects_sweep_at: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SubjectEntry {
    before: SystemTime,
    until: SystemTime,
}

const MIN_SWEEP: usize = 1024;

impl MemoryRevocationList {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many entries are held (revoked token ids and subjects not yet swept).
    pub fn len(&self) -> usize {
        let e = self.lock();
        e.until.len() + e.subjects.len()
    }

    /// Whether no entry is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The `before` of the subject key `subject`'s revocation, while it is in force.
    pub fn subject_revoked_before(&self, subject: &str) -> Option<SystemTime> {
        let now = SystemTime::now();
        self.lock()
            .subjects
            .get(subject)
            .filter(|s| s.until > now)
            .map(|s| s.before)
    }

    /// Whether `claims` are refused by a subject revocation (not looking at the `jti`).
    fn subject_refuses(&self, claims: &Claims) -> bool {
        let keys = claims.revocation_subjects();
        let now = SystemTime::now();
        let e = self.lock();
        keys.iter().any(|k| {
            e.subjects
                .get(k)
                .is_some_and(|s| s.until > now && claims.issued_at_or_before(s.before))
        })
    }

    // The map stays consistent whatever panicked while holding the lock (each operation is
    // a single insert, lookup or retain), so a poisoned lock is safe to keep using.
    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[async_trait]
impl RevocationList for MemoryRevocationList {
    async fn revoke(&self, jti: &str, until: SystemTime) {
        let now = SystemTime::now();
        if until <= now {
            return; // the token has expired already; nothing to deny
        }
        let mut e = self.lock();
        let slot = e.until.entry(jti.to_string()).or_insert(until);
        if *slot < until {
            *slot = until;
        }
        if e.until.len() >= e.sweep_at.max(MIN_SWEEP) {
            e.until.retain(|_, t| *t > now);
            e.sweep_at = (e.until.len() * 2).max(MIN_SWEEP);
        }
    }

    async fn is_revoked(&self, jti: &str) -> bool {
        self.lock()
            .until
            .get(jti)
            .is_some_and(|t| *t > SystemTime::now())
    }

    async fn revoke_subject(
        &self,
        subject: &str,
        before: SystemTime,
        until: SystemTime,
    ) -> Result<(), Unreachable> {
        let now = SystemTime::now();
        if until <= now {
            return Ok(()); // every token it could refuse has expired already
        }
        let mut e = self.lock();
        let slot = e
            .subjects
            .entry(subject.to_string())
            .or_insert(SubjectEntry { before, until });
        slot.before = slot.before.max(before);
        slot.until = slot.until.max(until);
        if e.subjects.len() >= e.subjects_sweep_at.max(MIN_SWEEP) {
            e.subjects.retain(|_, s| s.until > now);
            e.subjects_sweep_at = (e.subjects.len() * 2).max(MIN_SWEEP);
        }
        Ok(())
    }

    async fn check_claims(&self, claims: &Claims) -> Result<bool, Unreachable> {
        Ok(self.is_revoked(&claims.jti).await || self.subject_refuses(claims))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn revoked_until_time_then_not() {
        let list = MemoryRevocationList::new();
        let now = SystemTime::now();
        list.revoke("a", now + Duration::from_secs(60)).await;
        assert!(list.is_revoked("a").await);
        assert!(!list.is_revoked("b").await);
        // An entry whose time has passed no longer denies.
        list.lock()
            .until
            .insert("old".into(), now - Duration::from_secs(1));
        assert!(!list.is_revoked("old").await);
    }

    #[tokio::test]
    async fn already_expired_revocation_is_not_stored() {
        let list = MemoryRevocationList::new();
        list.revoke("x", SystemTime::now() - Duration::from_secs(5))
            .await;
        assert!(list.is_empty());
        assert!(!list.is_revoked("x").await);
    }

    #[tokio::test]
    async fn revoking_again_keeps_later_time() {
        let list = MemoryRevocationList::new();
        let now = SystemTime::now();
        list.revoke("a", now + Duration::from_secs(600)).await;
        list.revoke("a", now + Duration::from_secs(10)).await;
        assert_eq!(list.lock().until["a"], now + Duration::from_secs(600));
    }

    fn claims(iat: SystemTime, uid: &str, user_id: Option<&str>, account: Option<&str>) -> Claims {
        let iat = iat
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        Claims {
            iss: "i".into(),
            aud: "a".into(),
            sub: subject_key("acme", "feishu", uid),
            exp: iat + 3600,
            iat,
            nbf: iat,
            jti: format!("jti-{iat}-{uid}"),
            scope: String::new(),
            tenant: "acme".into(),
            platform: "feishu".into(),
            uid: uid.into(),
            name: None,
            account: account.map(str::to_string),
            user_id: user_id.map(str::to_string),
        }
    }

    #[test]
    fn subject_keys_of_claims() {
        let now = SystemTime::now();
        let c = claims(now, "on_1", Some("u1"), Some("acct-7"));
        assert_eq!(
            c.revocation_subjects(),
            [
                "acme:feishu:on_1",
                "acme:feishu:u1",
                "account:acct-7",
                "entry:acme:feishu"
            ]
        );
        assert_eq!(c.revocation_subjects()[0], c.sub);
        // A user id equal to the uid is not listed twice; no account, no account key.
        let c = claims(now, "u1", Some("u1"), None);
        assert_eq!(
            c.revocation_subjects(),
            ["acme:feishu:u1", "entry:acme:feishu"]
        );
    }

    #[tokio::test]
    async fn an_entry_revocation_refuses_every_token_of_the_entry_only() {
        let list = MemoryRevocationList::new();
        let now = SystemTime::now();
        let a = claims(now - Duration::from_secs(60), "on_1", None, None);
        let b = claims(
            now - Duration::from_secs(60),
            "on_2",
            Some("u2"),
            Some("acct-2"),
        );
        let mut other = claims(now - Duration::from_secs(60), "on_1", None, None);
        other.tenant = "globex".into();
        list.revoke_subject(
            &entry_key("acme", "feishu"),
            now,
            now + Duration::from_secs(3600),
        )
        .await
        .unwrap();
        assert!(list.check_claims(&a).await.unwrap());
        assert!(list.check_claims(&b).await.unwrap());
        assert!(
            !list.check_claims(&other).await.unwrap(),
            "another tenant's entry"
        );
        let later = claims(now + Duration::from_secs(5), "on_1", None, None);
        assert!(!list.check_claims(&later).await.unwrap(), "issued after");
    }

    #[tokio::test]
    async fn a_subject_revocation_refuses_tokens_issued_at_or_before_it_only() {
        let list = MemoryRevocationList::new();
        let now = SystemTime::now();
        let before = now - Duration::from_secs(10);
        let old = claims(now - Duration::from_secs(60), "on_1", None, None);
        let same_second = claims(before, "on_1", None, None);
        let newer = claims(now, "on_1", None, None);
        let other = claims(now - Duration::from_secs(60), "on_2", None, None);
        assert!(!list.check_claims(&old).await.unwrap());
        list.revoke_subject("acme:feishu:on_1", before, now + Duration::from_secs(3600))
            .await
            .unwrap();
        assert!(list.check_claims(&old).await.unwrap(), "issued before");
        assert!(list.check_claims(&same_second).await.unwrap(), "issued at");
        assert!(!list.check_claims(&newer).await.unwrap(), "issued after");
        assert!(!list.check_claims(&other).await.unwrap(), "another person");
        // A subject revocation does not put the jti on the list.
        assert!(!list.is_revoked(&old.jti).await);
    }

    #[tokio::test]
    async fn the_user_id_and_account_keys_find_the_token() {
        let now = SystemTime::now();
        let old = now - Duration::from_secs(60);
        let until = now + Duration::from_secs(3600);
        let token = claims(old, "on_1", Some("u1"), Some("acct-7"));

        let by_user_id = MemoryRevocationList::new();
        by_user_id
            .revoke_subject(&subject_key("acme", "feishu", "u1"), now, until)
            .await
            .unwrap();
        assert!(by_user_id.check_claims(&token).await.unwrap());
        // The user id key only finds tokens that name that user id.
        assert!(
            !by_user_id
                .check_claims(&claims(old, "on_1", None, Some("acct-7")))
                .await
                .unwrap()
        );

        let by_account = MemoryRevocationList::new();
        by_account
            .revoke_subject(&account_key("acct-7"), now, until)
            .await
            .unwrap();
        assert!(by_account.check_claims(&token).await.unwrap());
        assert!(
            !by_account
                .check_claims(&claims(old, "on_1", Some("u1"), None))
                .await
                .unwrap()
        );
        // A revoked jti is refused by check_claims too.
        let jti = MemoryRevocationList::new();
        jti.revoke(&token.jti, until).await;
        assert!(jti.check_claims(&token).await.unwrap());
    }

    #[tokio::test]
    async fn revoking_a_subject_again_keeps_the_later_before_and_until() {
        let list = MemoryRevocationList::new();
        let now = SystemTime::now();
        let later = now - Duration::from_secs(5);
        let earlier = now - Duration::from_secs(50);
        list.revoke_subject("s", later, now + Duration::from_secs(600))
            .await
            .unwrap();
        list.revoke_subject("s", earlier, now + Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(list.subject_revoked_before("s"), Some(later));
        assert_eq!(
            list.lock().subjects["s"].until,
            now + Duration::from_secs(600)
        );
        list.revoke_subject("s", now, now + Duration::from_secs(20))
            .await
            .unwrap();
        assert_eq!(list.subject_revoked_before("s"), Some(now));
    }

    #[tokio::test]
    async fn subject_entries_end_at_their_until_and_are_swept() {
        let list = MemoryRevocationList::new();
        let now = SystemTime::now();
        // Already over: nothing recorded.
        list.revoke_subject("gone", now, now - Duration::from_secs(1))
            .await
            .unwrap();
        assert!(list.is_empty());
        // An entry whose until has passed no longer refuses.
        list.lock().subjects.insert(
            "acme:feishu:on_1".into(),
            SubjectEntry {
                before: now,
                until: now - Duration::from_secs(1),
            },
        );
        let old = claims(now - Duration::from_secs(60), "on_1", None, None);
        assert!(!list.check_claims(&old).await.unwrap());
        assert_eq!(list.subject_revoked_before("acme:feishu:on_1"), None);
        // Expired entries are swept as the map grows.
        {
            let mut e = list.lock();
            for i in 0..MIN_SWEEP {
                e.subjects.insert(
                    format!("old{i}"),
                    SubjectEntry {
                        before: now,
                        until: now - Duration::from_secs(1),
                    },
                );
            }
        }
        list.revoke_subject("live", now, now + Duration::from_secs(60))
            .await
            .unwrap();
        assert_eq!(list.len(), 1);
        assert_eq!(list.subject_revoked_before("live"), Some(now));
    }

    #[tokio::test]
    async fn expired_entries_are_swept_as_the_list_grows() {
        let list = MemoryRevocationList::new();
        let past = SystemTime::now() - Duration::from_secs(1);
        {
            let mut e = list.lock();
            for i in 0..MIN_SWEEP {
                e.until.insert(format!("old{i}"), past);
            }
        }
        list.revoke("live", SystemTime::now() + Duration::from_secs(60))
            .await;
        assert_eq!(list.len(), 1);
        assert!(list.is_revoked("live").await);
    }
}
