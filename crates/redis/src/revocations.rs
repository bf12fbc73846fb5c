//! A [`RevocationList`] of session token ids in Redis, shared by replicas: a logout on one
//! revokes the token on all.
//!
//! `<prefix>revoked:<jti>` = `1`, written with `SET … PX` until the token's expiry. A failing
//! Redis **fails closed**: [`RevocationList::is_revoked`] answers `true`, because a revoked
//! token must not come back to life while the deny-list is unreachable.

use std::time::SystemTime;

use async_trait::async_trait;
use unilogin_axum::session::RevocationList;

use crate::{RedisStore, px};

/// Revoked session token ids in Redis (`<prefix>revoked:<jti>` until the token's expiry),
/// failing closed: an unreachable Redis makes every token count as revoked. Cheap to clone; get
/// one with [`RedisStore::revocation_list`].
#[derive(Clone, Debug)]
pub struct RedisRevocationList {
    redis: RedisStore,
}

impl RedisRevocationList {
    pub(crate) fn new(redis: RedisStore) -> Self {
        Self { redis }
    }

    fn key(&self, jti: &str) -> String {
        self.redis.prefixed(&format!("revoked:{jti}"))
    }
}

#[async_trait]
impl RevocationList for RedisRevocationList {
    async fn revoke(&self, jti: &str, until: SystemTime) {
        let Ok(left) = until.duration_since(SystemTime::now()) else {
            return; // already expired: nothing to deny
        };
        let mut conn = self.redis.conn();
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.key(jti)).arg("1").arg("PX").arg(px(left));
        if let Err(e) = self
            .redis
            .run("record revocation", cmd.query_async::<()>(&mut conn))
            .await
        {
            tracing::error!(error = %e, "could not record a revocation in Redis");
        }
    }

    async fn is_revoked(&self, jti: &str) -> bool {
        let mut conn = self.redis.conn();
        let mut cmd = redis::cmd("EXISTS");
        cmd.arg(self.key(jti));
        match self
            .redis
            .run("check revocation", cmd.query_async::<i64>(&mut conn))
            .await
        {
            Ok(n) => n > 0,
            Err(e) => {
                tracing::error!(error = %e, "revocation check failed; treating the token as revoked");
                true
            }
        }
    }
}
