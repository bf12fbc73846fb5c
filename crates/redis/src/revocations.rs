//! A [`RevocationList`] of session token ids in Redis, shared by replicas: a logout on one
//! revokes the token on all.
//!
//! `<prefix>revoked:<jti>` = `1`, written with `SET … PX` until the token's expiry.
//!
//! **During a Redis outage** (the semantics, documented in docs/security.md):
//! - a revocation is in force at once on the replica that made it (an in-process copy), and is
//!   queued and written to Redis as soon as it answers again (checked every second and on every
//!   use); [`RevocationList::revoke_checked`] says `Err` so the caller can tell the user it has
//!   not reached the other replicas yet. The queue is bounded by the tokens it holds, each
//!   dropped at its expiry; it lives in the process, so a replica that stops during the outage
//!   loses its queue.
//! - a check that Redis cannot answer **fails closed**: [`RevocationList::is_revoked`] answers
//!   `true` and [`RevocationList::check`] `Err`, because a revoked token must not come back to
//!   life while the deny-list is unreachable.
//! - Redis must persist (`appendonly yes`) for revocations to survive a Redis restart.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use unilogin_axum::session::{MemoryRevocationList, RevocationList, Unreachable};

use crate::{RedisStore, px};

/// Revoked session token ids in Redis (`<prefix>revoked:<jti>` until the token's expiry), with
/// this process's own revocations also kept in memory and queued while Redis is unreachable;
/// failing closed. Cheap to clone; get one with [`RedisStore::revocation_list`].
#[derive(Clone, Debug)]
pub struct RedisRevocationList {
    redis: RedisStore,
    local: Arc<MemoryRevocationList>,
    queue: Arc<Mutex<Vec<(String, SystemTime)>>>,
}

impl RedisRevocationList {
    pub(crate) fn new(redis: RedisStore) -> Self {
        Self {
            redis,
            local: Arc::new(MemoryRevocationList::new()),
            queue: Arc::new(Mutex::new(Vec::new())),
        }
    }

    fn key(&self, jti: &str) -> String {
        self.redis.prefixed(&format!("revoked:{jti}"))
    }

    /// Revocations waiting for Redis.
    pub fn queued(&self) -> usize {
        self.queue.lock().map(|q| q.len()).unwrap_or(0)
    }

    async fn write(&self, jti: &str, until: SystemTime) -> crate::Result<()> {
        let Ok(left) = until.duration_since(SystemTime::now()) else {
            return Ok(()); // already expired: nothing to deny
        };
        let mut conn = self.redis.conn();
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.key(jti)).arg("1").arg("PX").arg(px(left));
        self.redis
            .run("record revocation", cmd.query_async::<()>(&mut conn))
            .await
    }

    /// Writes what is queued; keeps what still fails. Returns whether the queue is empty.
    async fn flush(&self) -> bool {
        let pending = match self.queue.lock() {
            Ok(mut q) if !q.is_empty() => std::mem::take(&mut *q),
            _ => return true,
        };
        let now = SystemTime::now();
        let mut failed = Vec::new();
        for (jti, until) in pending {
            if until <= now {
                continue;
            }
            if !failed.is_empty() || self.write(&jti, until).await.is_err() {
                failed.push((jti, until));
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

    fn enqueue(&self, jti: &str, until: SystemTime) {
        let Ok(mut q) = self.queue.lock() else {
            return;
        };
        let first = q.is_empty();
        q.push((jti.to_string(), until));
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
        match self.write(jti, until).await {
            Ok(()) => Ok(()),
            Err(e) => {
                tracing::error!(error = %e, "could not record a revocation in Redis; queued until it answers");
                self.enqueue(jti, until);
                Err(Unreachable)
            }
        }
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
}
