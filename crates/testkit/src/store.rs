//! Token and code stores driven by the [`FakeClock`].
//!
//! Every platform issues opaque access tokens with a lifetime and single-use authorization codes
//! with a short lifetime. These stores implement those rules once: a token is valid while it is
//! known, unexpired (by the fake clock) and not revoked; a code is valid once, within its lifetime.
//! Platform fakes decide the policy around them (DingTalk hands out the same app token again and
//! extends it; Feishu issues a new one in the last 30 minutes) and render the rejections in their
//! own envelope.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::clock::FakeClock;
use crate::table::lock;
use crate::users::{FakeUser, UserDirectory};

/// Five minutes: the authorization-code lifetime of every platform in the reference.
pub const CODE_TTL: Duration = Duration::from_secs(5 * 60);

/// Stores sweep dead entries once they hold more than this many.
const SWEEP_THRESHOLD: usize = 10_000;

/// Sweeps `map` with `keep` when it has grown past `*next`, then sets the next threshold to
/// twice what survived (at least [`SWEEP_THRESHOLD`]), so the cost of sweeping stays amortised
/// O(1) per insert even when most entries are alive.
fn sweep<V>(
    map: &mut HashMap<String, V>,
    next: &mut usize,
    keep: impl FnMut(&String, &mut V) -> bool,
) {
    if map.len() > *next {
        map.retain(keep);
        *next = (map.len() * 2).max(SWEEP_THRESHOLD);
    }
}

/// A random opaque identifier: `prefix` followed by 32 lowercase hex digits (128 random bits).
pub fn random_id(prefix: &str) -> String {
    format!("{prefix}{:032x}", rand::random::<u128>())
}

/// Why a token was refused. Platforms usually answer all three the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenRejection {
    /// Never issued (or swept long after expiry).
    Unknown,
    /// Issued, but its lifetime has passed on the fake clock.
    Expired,
    /// Revoked early (e.g. `revoke_app_tokens`).
    Revoked,
}

/// A map plus the size at which it is swept next.
#[derive(Debug)]
struct Swept<V> {
    map: HashMap<String, V>,
    next_sweep: usize,
}

impl<V> Swept<V> {
    /// Store `entry` under a fresh `prefix` id, first sweeping (see [`sweep`]) what `live`
    /// rejects; returns the id.
    fn insert_new(&mut self, prefix: &str, entry: V, mut live: impl FnMut(&V) -> bool) -> String {
        sweep(&mut self.map, &mut self.next_sweep, |_, e| live(e));
        let id = random_id(prefix);
        self.map.insert(id.clone(), entry);
        id
    }
}

impl<V> Default for Swept<V> {
    fn default() -> Self {
        Self {
            map: HashMap::new(),
            next_sweep: SWEEP_THRESHOLD,
        }
    }
}

#[derive(Debug)]
struct TokenEntry<M> {
    meta: M,
    expires_at: Instant,
    revoked: bool,
}

/// Opaque tokens carrying metadata `M` (which app, which user) with an expiry and revocation.
#[derive(Debug)]
pub struct TokenStore<M> {
    clock: FakeClock,
    prefix: String,
    tokens: Mutex<Swept<TokenEntry<M>>>,
}

impl<M: Clone> TokenStore<M> {
    /// An empty store whose tokens are `prefix` + 32 hex digits.
    pub fn new(clock: FakeClock, prefix: impl Into<String>) -> Self {
        Self {
            clock,
            prefix: prefix.into(),
            tokens: Mutex::new(Swept::default()),
        }
    }

    /// Issue a fresh token valid for `ttl` from the fake "now".
    pub fn issue(&self, meta: M, ttl: Duration) -> String {
        let now = self.clock.now();
        let entry = TokenEntry {
            meta,
            expires_at: now + ttl,
            revoked: false,
        };
        lock(&self.tokens).insert_new(&self.prefix, entry, |e| !e.revoked && e.expires_at > now)
    }

    /// The metadata of a live token, or why it is refused.
    pub fn check(&self, token: &str) -> Result<M, TokenRejection> {
        let now = self.clock.now();
        let tokens = &lock(&self.tokens).map;
        let entry = tokens.get(token).ok_or(TokenRejection::Unknown)?;
        if entry.revoked {
            Err(TokenRejection::Revoked)
        } else if entry.expires_at <= now {
            Err(TokenRejection::Expired)
        } else {
            Ok(entry.meta.clone())
        }
    }

    /// Time left on a live token.
    pub fn remaining(&self, token: &str) -> Option<Duration> {
        let now = self.clock.now();
        let tokens = &lock(&self.tokens).map;
        let entry = tokens.get(token)?;
        (!entry.revoked && entry.expires_at > now).then(|| entry.expires_at - now)
    }

    /// Some live token whose metadata matches `pred` (the one with the most time left).
    pub fn find_live(&self, pred: impl Fn(&M) -> bool) -> Option<String> {
        let now = self.clock.now();
        lock(&self.tokens)
            .map
            .iter()
            .filter(|(_, e)| !e.revoked && e.expires_at > now && pred(&e.meta))
            .max_by_key(|(_, e)| e.expires_at)
            .map(|(t, _)| t.clone())
    }

    /// Every live token whose metadata matches `pred`, the one with the most time left first.
    pub fn live_where(&self, pred: impl Fn(&M) -> bool) -> Vec<String> {
        let now = self.clock.now();
        let tokens = &lock(&self.tokens).map;
        let mut live: Vec<(&String, Instant)> = tokens
            .iter()
            .filter(|(_, e)| !e.revoked && e.expires_at > now && pred(&e.meta))
            .map(|(t, e)| (t, e.expires_at))
            .collect();
        live.sort_by_key(|(_, at)| std::cmp::Reverse(*at));
        live.into_iter().map(|(t, _)| t.clone()).collect()
    }

    /// Reset a live token's lifetime to `ttl` from now. False if it is not live.
    pub fn extend(&self, token: &str, ttl: Duration) -> bool {
        let now = self.clock.now();
        match lock(&self.tokens).map.get_mut(token) {
            Some(e) if !e.revoked && e.expires_at > now => {
                e.expires_at = now + ttl;
                true
            }
            _ => false,
        }
    }

    /// Revoke one token. False if unknown.
    pub fn revoke(&self, token: &str) -> bool {
        match lock(&self.tokens).map.get_mut(token) {
            Some(e) => {
                e.revoked = true;
                true
            }
            None => false,
        }
    }

    /// Revoke every token whose metadata matches `pred`; returns how many were live.
    pub fn revoke_where(&self, pred: impl Fn(&M) -> bool) -> usize {
        let now = self.clock.now();
        let mut n = 0;
        for e in lock(&self.tokens).map.values_mut() {
            if pred(&e.meta) {
                if !e.revoked && e.expires_at > now {
                    n += 1;
                }
                e.revoked = true;
            }
        }
        n
    }

    /// Revoke every token; returns how many were live.
    pub fn revoke_all(&self) -> usize {
        self.revoke_where(|_| true)
    }

    /// Number of tokens currently live.
    pub fn live_count(&self) -> usize {
        let now = self.clock.now();
        lock(&self.tokens)
            .map
            .values()
            .filter(|e| !e.revoked && e.expires_at > now)
            .count()
    }
}

/// Why an authorization code was refused. Platforms answer all three with one error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeRejection {
    /// Never issued (or swept long after use/expiry).
    Unknown,
    /// Already exchanged once.
    Used,
    /// Older than the store's lifetime on the fake clock.
    Expired,
}

#[derive(Debug)]
struct CodeEntry<M> {
    meta: M,
    expires_at: Instant,
    used: bool,
}

/// Single-use authorization codes carrying metadata `M`, each valid for the store's lifetime.
#[derive(Debug)]
pub struct CodeStore<M> {
    clock: FakeClock,
    prefix: String,
    ttl: Duration,
    codes: Mutex<Swept<CodeEntry<M>>>,
}

impl<M: Clone> CodeStore<M> {
    /// An empty store of codes `prefix` + 32 hex digits, valid for `ttl` (usually [`CODE_TTL`]).
    pub fn new(clock: FakeClock, prefix: impl Into<String>, ttl: Duration) -> Self {
        Self {
            clock,
            prefix: prefix.into(),
            ttl,
            codes: Mutex::new(Swept::default()),
        }
    }

    /// Issue a fresh code.
    pub fn issue(&self, meta: M) -> String {
        let now = self.clock.now();
        let entry = CodeEntry {
            meta,
            expires_at: now + self.ttl,
            used: false,
        };
        lock(&self.codes).insert_new(&self.prefix, entry, |e| !e.used && e.expires_at > now)
    }

    /// A code for the person `user_id` of `users`, its metadata made from them; for someone
    /// `users` does not know, a code of this store's format that was never issued (so the
    /// exchange fails the way it does for a made-up code).
    pub fn issue_for(
        &self,
        users: &UserDirectory,
        user_id: &str,
        meta: impl FnOnce(FakeUser) -> M,
    ) -> String {
        match users.get(user_id) {
            Some(user) => self.issue(meta(user)),
            None => {
                tracing::warn!("fake: code requested for an unknown user; it will be rejected");
                self.unissued()
            }
        }
    }

    /// A code of this store's format that was never issued.
    pub fn unissued(&self) -> String {
        random_id(&self.prefix)
    }

    /// The metadata of a still-usable code without using it (for checks that must not burn it).
    pub fn peek(&self, code: &str) -> Result<M, CodeRejection> {
        let now = self.clock.now();
        let codes = &lock(&self.codes).map;
        Self::usable(codes.get(code), now).map(|e| e.meta.clone())
    }

    /// Use a code: succeeds once, within its lifetime.
    pub fn consume(&self, code: &str) -> Result<M, CodeRejection> {
        let now = self.clock.now();
        let codes = &mut lock(&self.codes).map;
        let entry = codes.get_mut(code);
        Self::usable(entry.as_deref(), now)?;
        match entry {
            Some(e) => {
                e.used = true;
                Ok(e.meta.clone())
            }
            None => Err(CodeRejection::Unknown),
        }
    }

    /// Use a code whose metadata passes `check` (issued for this app, …). A code that fails the
    /// check is left usable for the client it belongs to, as the platforms do. `None` if the code
    /// is unknown, used, expired or refused.
    pub fn consume_if(&self, code: &str, check: impl FnOnce(&M) -> bool) -> Option<M> {
        let now = self.clock.now();
        let codes = &mut lock(&self.codes).map;
        let entry = codes.get_mut(code)?;
        if Self::usable(Some(&*entry), now).is_err() || !check(&entry.meta) {
            return None;
        }
        entry.used = true;
        Some(entry.meta.clone())
    }

    fn usable(entry: Option<&CodeEntry<M>>, now: Instant) -> Result<&CodeEntry<M>, CodeRejection> {
        let e = entry.ok_or(CodeRejection::Unknown)?;
        if e.used {
            Err(CodeRejection::Used)
        } else if e.expires_at <= now {
            Err(CodeRejection::Expired)
        } else {
            Ok(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_expire_and_revoke() {
        let clock = FakeClock::new();
        let store = TokenStore::new(clock.clone(), "t_");
        let a = store.issue("app-a", Duration::from_secs(7200));
        let b = store.issue("app-b", Duration::from_secs(7200));
        assert!(a.starts_with("t_") && a.len() == 34);
        assert_eq!(store.check(&a), Ok("app-a"));
        assert_eq!(store.check("nope"), Err(TokenRejection::Unknown));
        assert_eq!(store.find_live(|m| *m == "app-b"), Some(b.clone()));
        clock.advance(Duration::from_secs(7000));
        assert!(store.extend(&a, Duration::from_secs(7200)));
        clock.advance(Duration::from_secs(300));
        assert_eq!(store.check(&a), Ok("app-a"));
        assert_eq!(store.check(&b), Err(TokenRejection::Expired));
        assert!(!store.extend(&b, Duration::from_secs(1)));
        assert_eq!(store.revoke_where(|m| *m == "app-a"), 1);
        assert_eq!(store.check(&a), Err(TokenRejection::Revoked));
        assert_eq!(store.live_count(), 0);
        assert_eq!(store.remaining(&a), None);
    }

    #[test]
    fn codes_are_single_use_and_expire() {
        let clock = FakeClock::new();
        let store = CodeStore::new(clock.clone(), "c_", CODE_TTL);
        let c = store.issue(7u32);
        assert_eq!(store.peek(&c), Ok(7));
        assert_eq!(store.consume(&c), Ok(7));
        assert_eq!(store.consume(&c), Err(CodeRejection::Used));
        assert_eq!(store.peek(&c), Err(CodeRejection::Used));
        let d = store.issue(8);
        clock.advance(CODE_TTL);
        assert_eq!(store.consume(&d), Err(CodeRejection::Expired));
        assert_eq!(store.consume("zzz"), Err(CodeRejection::Unknown));
        let e = store.issue(9);
        clock.advance(CODE_TTL - Duration::from_secs(1));
        assert_eq!(store.consume(&e), Ok(9));
    }

    #[test]
    fn sweeps_are_amortised_and_drop_only_dead_codes() {
        let clock = FakeClock::new();
        let store = CodeStore::new(clock.clone(), "c_", CODE_TTL);
        let used = store.issue(0u32);
        store.consume(&used).ok();
        for i in 0..SWEEP_THRESHOLD {
            store.issue(u32::try_from(i).unwrap_or(u32::MAX));
        }
        // Past the threshold: one sweep drops the used code and keeps every live one...
        let live = store.issue(1);
        let (len, next) = {
            let g = lock(&store.codes);
            (g.map.len(), g.next_sweep)
        };
        assert_eq!(len, SWEEP_THRESHOLD + 1);
        assert_eq!(store.peek(&used), Err(CodeRejection::Unknown));
        assert_eq!(store.peek(&live), Ok(1));
        // ...and the next sweep waits until the map has doubled, not until the next insert.
        assert_eq!(next, 2 * SWEEP_THRESHOLD);
        clock.advance(CODE_TTL);
        for _ in 0..SWEEP_THRESHOLD {
            store.issue(2);
        }
        assert_eq!(lock(&store.codes).map.len(), 2 * SWEEP_THRESHOLD + 1);
        store.issue(3);
        // Everything issued before the clock moved has expired and is gone.
        assert_eq!(lock(&store.codes).map.len(), SWEEP_THRESHOLD + 1);
    }

    #[test]
    fn checked_consumption_leaves_refused_codes_usable() {
        let clock = FakeClock::new();
        let store = CodeStore::new(clock.clone(), "c_", CODE_TTL);
        let c = store.issue("app-a");
        assert_eq!(store.consume_if(&c, |app| *app == "app-b"), None);
        assert_eq!(store.consume_if(&c, |app| *app == "app-a"), Some("app-a"));
        assert_eq!(store.consume_if(&c, |_| true), None, "single use");
        let late = store.issue("app-a");
        clock.advance(CODE_TTL);
        assert_eq!(store.consume_if(&late, |_| true), None, "expired");
        assert_eq!(store.consume_if("zzz", |_| true), None);
    }

    #[test]
    fn codes_for_unknown_people_were_never_issued() {
        let store = CodeStore::new(FakeClock::new(), "c_", CODE_TTL);
        let users: UserDirectory = [FakeUser::new("u1")].into_iter().collect();
        let known = store.issue_for(&users, "u1", |u| u.user_id);
        assert_eq!(store.peek(&known), Ok("u1".to_owned()));
        let unknown = store.issue_for(&users, "nobody", |u| u.user_id);
        assert!(unknown.starts_with("c_") && unknown.len() == known.len());
        assert_eq!(store.peek(&unknown), Err(CodeRejection::Unknown));
    }

    #[test]
    fn random_ids_differ() {
        assert_ne!(random_id("x"), random_id("x"));
    }
}
