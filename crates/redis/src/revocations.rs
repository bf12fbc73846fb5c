//! A [`RevocationList`] of session token ids and subjects in Redis, shared by replicas: a
//! logout on one revokes the token on all, and a person who left the organisation loses every
//! session on every replica.
//!
//! - Token ids: `<prefix>revoked:<jti>` = `1`, written with `SET … PX` until the token's expiry.
//! - Subjects ([`RevocationList::revoke_subject`]): `<prefix>revoked-subject:<key>` = `before`
//!   (milliseconds since the Unix epoch), kept until `until`, written by a Lua script that keeps
//!   the later `before` and the later expiry (so two replicas revoking the same person at once
//!   cannot move `before` back). The key is one of
//!   [`Claims::revocation_subjects`](unilogin_axum::session::Claims::revocation_subjects).
//! - [`RevocationList::check_claims`] reads the token id and every subject key of the token in
//!   one `MGET`: one round trip per request. A subject value that is not a number (not written by
//!   us) refuses the token.
//!
//! **During a Redis outage** (the semantics, documented in docs/security.md), for token ids and
//! subjects alike:
//! - a revocation is in force at once on the replica that made it (an in-process copy), and is
//!   queued and written to Redis as soon as it answers again (checked every second and on every
//!   use); [`RevocationList::revoke_checked`] and [`RevocationList::revoke_subject`] say `Err`
//!   so the caller can tell it has not reached the other replicas yet. The queue is bounded by
//!   the revocations it holds, each dropped at its `until`; it lives in the process, so a replica
//!   that stops during the outage loses its queue.
//! - a check that Redis cannot answer **fails closed**: [`RevocationList::is_revoked`] answers
//!   `true`, [`RevocationList::check`] and [`RevocationList::check_claims`] `Err`, because a
//!   revoked token must not come back to life while the deny-list is unreachable.
//! - Redis must persist (`appendonly yes`) for revocations to survive a Redis restart.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use redis::Script;
use unilogin_axum::session::{Claims, MemoryRevocationList, RevocationList, Unreachable};

use crate::{RedisStore, px};

/// Sets `KEYS[1]` to the larger of its number and `ARGV[1]` (`before`, ms), expiring after the
/// longer of its remaining time and `ARGV[2]` ms.
const REVOKE_SUBJECT: &str = r"
local before = ARGV[1]
local current = tonumber(redis.call('GET', KEYS[1]) or '')
if current and current > tonumber(before) then
  before = string.format('%d', current)
end
local ttl = tonumber(ARGV[2])
local left = redis.call('PTTL', KEYS[1])
if left > ttl then ttl = left end
redis.call('SET', KEYS[1], before, 'PX', string.format('%d', ttl))
return 1
";

/// A revocation waiting for Redis.
#[derive(Debug, Clone)]
enum Pending {
    Token {
        jti: String,
        until: SystemTime,
    },
    Subject {
        key: String,
        before: SystemTime,
        until: SystemTime,
    },
}

impl Pending {
    fn until(&self) -> SystemTime {
        match self {
            Self::Token { until, .. } | Self::Subject { until, .. } => *until,
        }
    }
}

/// Revoked session token ids and subjects in Redis, with this process's own revocations also
/// kept in memory and queued while Redis is unreachable; failing closed. Cheap to clone; get one
/// with [`RedisStore::revocation_list`].
///
/// - Token ids: `<prefix>revoked:<jti>` = `1`, `SET … PX` until the token's expiry.
/// - Subjects ([`RevocationList::revoke_subject`]): `<prefix>revoked-subject:<key>` = `before`
///   (ms since the Unix epoch), kept until `until`; a Lua script keeps the later `before` and
///   the later expiry, so replicas revoking one person at once cannot move `before` back.
/// - [`RevocationList::check_claims`] reads the token id and every subject key of the token in
///   one `MGET`. A subject value that is not a number (not written by us) refuses the token.
/// - During an outage a revocation is in force at once on this replica and queued (replayed
///   every second until Redis answers; `revoke_checked` / `revoke_subject` say `Err`); a check
///   Redis cannot answer fails closed (`Err(Unreachable)`, or `true` from `is_revoked`).
/// - Redis must persist (`appendonly yes`) for revocations to survive a Redis restart.
#[derive(Clone, Debug)]
pub struct RedisRevocationList {
    redis: RedisStore,
    local: Arc<MemoryRevocationList>,
    queue: Arc<Mutex<Vec<Pending>>>,
    revoke_subject: Script,
}

impl RedisRevocationList {
    pub(crate) fn new(redis: RedisStore) -> Self {
        Self {
            redis,
            local: Arc::new(MemoryRevocationList::new()),
            queue: Arc::new(Mutex::new(Vec::new())),
            revoke_subject: Script::new(REVOKE_SUBJECT),
        }
    }

    fn key(&self, jti: &str) -> String {
        self.redis.prefixed(&format!("revoked:{jti}"))
    }

    /// The Redis key of the subject key `subject`: `<prefix>revoked-subject:<subject>`.
    pub fn subject_redis_key(&self, subject: &str) -> String {
        self.redis.prefixed(&format!("revoked-subject:{subject}"))
    }

    /// Revocations (token ids and subjects) waiting for Redis.
    pub fn queued(&self) -> usize {
        self.queue.lock().map(|q| q.len()).unwrap_or(0)
    }

    async fn write(&self, pending: &Pending) -> crate::Result<()> {
        let Ok(left) = pending.until().duration_since(SystemTime::now()) else {
            return Ok(()); // already expired: nothing to deny
        };
        let mut conn = self.redis.conn();
        match pending {
            Pending::Token { jti, .. } => {
                let mut cmd = redis::cmd("SET");
                cmd.arg(self.key(jti)).arg("1").arg("PX").arg(px(left));
                self.redis
                    .run("record revocation", cmd.query_async::<()>(&mut conn))
                    .await
            }
            Pending::Subject { key, before, .. } => {
                let mut inv = self.revoke_subject.key(self.subject_redis_key(key));
                inv.arg(unix_millis(*before)).arg(px(left));
                self.redis
                    .run(
                        "record subject revocation",
                        inv.invoke_async::<i64>(&mut conn),
                    )
                    .await
                    .map(|_| ())
            }
        }
    }

    /// Writes what is queued; keeps what still fails. Returns whether the queue is empty.
    async fn flush(&self) -> bool {
        let pending = match self.queue.lock() {
            Ok(mut q) if !q.is_empty() => std::mem::take(&mut *q),
            _ => return true,
        };
        let now = SystemTime::now();
        let mut failed = Vec::new();
        for p in pending {
            if p.until() <= now {
                continue;
            }
            if !failed.is_empty() || self.write(&p).await.is_err() {
                failed.push(p);
            }
        }
        let empty = failed.is_empty();
        if !empty {
            if let Ok(mut q) = self.queue.lock() {
                q.extend(failed);
            }
        } else {
            tracing::info!("queued revocations written to Redis");
        }
        empty
    }

    fn enqueue(&self, pending: Pending) {
        let Ok(mut q) = self.queue.lock() else {
            return;
        };
        let first = q.is_empty();
        q.push(pending);
        drop(q);
        if first {
            // One replay task per outage: retries every second until the queue is written.
            let me = self.clone();
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    if me.flush().await {
                        break;
                    }
                }
            });
        }
    }

    /// Writes `pending`, or queues it when Redis does not answer.
    async fn write_or_queue(&self, pending: Pending) -> Result<(), Unreachable> {
        match self.write(&pending).await {
            Ok(()) => Ok(()),
            Err(e) => {
                tracing::error!(error = %e, "could not record a revocation in Redis; queued until it answers");
                self.enqueue(pending);
                Err(Unreachable)
            }
        }
    }
}

fn unix_millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[async_trait]
impl RevocationList for RedisRevocationList {
    async fn revoke(&self, jti: &str, until: SystemTime) {
        let _ = self.revoke_checked(jti, until).await;
    }

    async fn is_revoked(&self, jti: &str) -> bool {
        self.check(jti).await.unwrap_or(true)
    }

    async fn revoke_checked(&self, jti: &str, until: SystemTime) -> Result<(), Unreachable> {
        self.local.revoke(jti, until).await;
        self.write_or_queue(Pending::Token {
            jti: jti.to_string(),
            until,
        })
        .await
    }

    async fn check(&self, jti: &str) -> Result<bool, Unreachable> {
        if self.local.is_revoked(jti).await {
            return Ok(true);
        }
        let mut conn = self.redis.conn();
        let mut cmd = redis::cmd("EXISTS");
        cmd.arg(self.key(jti));
        match self
            .redis
            .run("check revocation", cmd.query_async::<i64>(&mut conn))
            .await
        {
            Ok(n) => Ok(n > 0),
            Err(e) => {
                tracing::error!(error = %e, "revocation check failed; treating the token as revoked");
                Err(Unreachable)
            }
        }
    }

    async fn revoke_subject(
        &self,
        subject: &str,
        before: SystemTime,
        until: SystemTime,
    ) -> Result<(), Unreachable> {
        self.local.revoke_subject(subject, before, until).await?;
        if until <= SystemTime::now() {
            return Ok(());
        }
        self.write_or_queue(Pending::Subject {
            key: subject.to_string(),
            before,
            until,
        })
        .await
    }

    async fn check_claims(&self, claims: &Claims) -> Result<bool, Unreachable> {
        if self.local.check_claims(claims).await? {
            return Ok(true);
        }
        let subjects = claims.revocation_subjects();
        let mut cmd = redis::cmd("MGET");
        cmd.arg(self.key(&claims.jti));
        for s in &subjects {
            cmd.arg(self.subject_redis_key(s));
        }
        let mut conn = self.redis.conn();
        let values = match self
            .redis
            .run(
                "check revocation",
                cmd.query_async::<Vec<Option<String>>>(&mut conn),
            )
            .await
        {
            Ok(v) => v,
            Err(e) => {
                tracing::error!(error = %e, "revocation check failed; treating the token as revoked");
                return Err(Unreachable);
            }
        };
        let mut values = values.into_iter();
        if values.next().flatten().is_some() {
            return Ok(true);
        }
        Ok(values.flatten().any(|before| match before.parse::<u64>() {
            Ok(ms) => claims.issued_at_or_before(UNIX_EPOCH + Duration::from_millis(ms)),
            Err(_) => true, // not written by us: refuse rather than guess
        }))
    }
}
