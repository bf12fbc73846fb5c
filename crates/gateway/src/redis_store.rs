//! Redis-backed pending logins and revocations, so every replica behind a load balancer sees
//! the same ones (no sticky sessions needed).
//!
//! - Pending login: `<prefix>state:<state>` holding the JSON record, `SET … PX`. Consumed by one
//!   Lua script that returns the record and overwrites it with a `used` tombstone keeping the
//!   TTL (`KEEPTTL`, Redis ≥ 6.0): atomic across replicas, so a state succeeds at most once.
//! - Revocation: `<prefix>revoked:<jti>` = `1` with `PX` until the token's expiry.
//!
//! Commands are bounded by a short timeout. A failing Redis makes new logins fail with 503 and,
//! for revocation checks, **fails closed** (tokens are treated as revoked) — a revoked token must
//! not come back to life because the deny-list is unreachable.

use std::fmt;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, Script};
use unilogin::{Error, PlatformName, Result, UpstreamCtx};
use unilogin_axum::session::RevocationList;

use crate::store::{LoginState, StateStore, Taken};

const TAKE: &str = r"
local v = redis.call('GET', KEYS[1])
if not v then return false end
if v == ARGV[1] then return v end
redis.call('SET', KEYS[1], ARGV[1], 'KEEPTTL')
return v
";

const USED: &str = "__used__";

/// A Redis connection shared by the gateway's stores. Cheap to clone.
#[derive(Clone)]
pub struct RedisStores {
    conn: ConnectionManager,
    prefix: String,
    timeout: Duration,
    take: Script,
}

impl fmt::Debug for RedisStores {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStores")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

fn ctx() -> UpstreamCtx {
    // "redis" is a valid literal platform-style name (lower-case ASCII), so this cannot fire.
    #[allow(clippy::expect_used)]
    let name = PlatformName::new("redis").expect("valid literal name");
    UpstreamCtx::new(None, name, "redis")
}

fn describe(e: &redis::RedisError) -> String {
    let mut s = format!("{:?}", e.kind());
    if let Some(code) = e.code() {
        s.push_str(": ");
        s.push_str(code);
    }
    s
}

impl RedisStores {
    /// Connects lazily to `url` (must run inside a tokio runtime). Fails only on a bad URL.
    pub fn open(url: &str, prefix: &str) -> Result<Self> {
        let timeout = Duration::from_millis(500);
        let client = Client::open(url).map_err(|e| {
            Error::config(
                None,
                None,
                "redis.url",
                format!("invalid Redis URL ({:?})", e.kind()),
            )
        })?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1);
        let conn = ConnectionManager::new_lazy_with_config(client, config).map_err(|e| {
            Error::config(
                None,
                None,
                "redis.url",
                format!("cannot set up a Redis connection ({:?})", e.kind()),
            )
        })?;
        Ok(Self {
            conn,
            prefix: prefix.to_string(),
            timeout,
            take: Script::new(TAKE),
        })
    }

    async fn run<T>(&self, op: impl Future<Output = redis::RedisResult<T>>) -> Result<T> {
        match tokio::time::timeout(self.timeout, op).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) if e.is_timeout() => Err(Error::Timeout { ctx: ctx() }),
            Ok(Err(e)) => Err(Error::Transport {
                ctx: ctx(),
                message: describe(&e),
            }),
            Err(_) => Err(Error::Timeout { ctx: ctx() }),
        }
    }

    fn state_key(&self, state: &str) -> String {
        format!("{}state:{state}", self.prefix)
    }

    fn revoked_key(&self, jti: &str) -> String {
        format!("{}revoked:{jti}", self.prefix)
    }

    /// The revocation list on this connection.
    pub fn revocations(&self) -> RedisRevocationList {
        RedisRevocationList {
            stores: self.clone(),
        }
    }
}

fn px(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

#[async_trait]
impl StateStore for RedisStores {
    async fn put(&self, state: &str, record: &LoginState, keep_for: Duration) -> Result<()> {
        let json = serde_json::to_string(record)
            .map_err(|e| Error::Internal(format!("encoding login state: {e}")))?;
        let mut conn = self.conn.clone();
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.state_key(state))
            .arg(json)
            .arg("PX")
            .arg(px(keep_for));
        self.run(cmd.query_async::<()>(&mut conn)).await
    }

    async fn take(&self, state: &str) -> Result<Taken> {
        let mut conn = self.conn.clone();
        let key = self.state_key(state);
        let mut inv = self.take.key(&key);
        inv.arg(USED);
        let found: Option<String> = self.run(inv.invoke_async(&mut conn)).await?;
        Ok(match found {
            None => Taken::Missing,
            Some(v) if v == USED => Taken::Used,
            Some(v) => match serde_json::from_str::<LoginState>(&v) {
                Ok(record) => Taken::Found(record),
                Err(_) => {
                    tracing::warn!("undecodable login state in Redis; treating it as unknown");
                    Taken::Missing
                }
            },
        })
    }

    async fn ping(&self) -> Result<()> {
        let mut conn = self.conn.clone();
        let pong: String = self.run(redis::cmd("PING").query_async(&mut conn)).await?;
        if pong == "PONG" {
            Ok(())
        } else {
            Err(Error::Transport {
                ctx: ctx(),
                message: "unexpected PING reply".into(),
            })
        }
    }
}

/// A [`RevocationList`] in Redis (see the module docs: fails closed).
#[derive(Clone, Debug)]
pub struct RedisRevocationList {
    stores: RedisStores,
}

#[async_trait]
impl RevocationList for RedisRevocationList {
    async fn revoke(&self, jti: &str, until: SystemTime) {
        let Ok(left) = until.duration_since(SystemTime::now()) else {
            return; // already expired: nothing to deny
        };
        let mut conn = self.stores.conn.clone();
        // GT keeps the later expiry when revoked twice (Redis >= 7); plain PX otherwise.
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.stores.revoked_key(jti))
            .arg("1")
            .arg("PX")
            .arg(px(left));
        if let Err(e) = self.stores.run(cmd.query_async::<()>(&mut conn)).await {
            tracing::error!(error = %e, "could not record a revocation in Redis");
        }
    }

    async fn is_revoked(&self, jti: &str) -> bool {
        let mut conn = self.stores.conn.clone();
        let mut cmd = redis::cmd("EXISTS");
        cmd.arg(self.stores.revoked_key(jti));
        match self.stores.run(cmd.query_async::<i64>(&mut conn)).await {
            Ok(n) => n > 0,
            Err(e) => {
                tracing::error!(error = %e, "revocation check failed; treating the token as revoked");
                true
            }
        }
    }
}
