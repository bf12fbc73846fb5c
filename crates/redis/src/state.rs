//! Single-use values shared by replicas: a value is put under a key for a while and taken
//! **once**, atomically across every replica (pending redirect logins keyed by their `state`).
//!
//! `<prefix>state:<key>` holds the value, written with `SET … PX`. One Lua script returns it
//! and overwrites it with a tombstone keeping the TTL (`KEEPTTL`, Redis ≥ 6.0), so a second
//! take reports [`Taken::Used`] (a replay) rather than [`Taken::Missing`] (never seen, or
//! forgotten) until the key expires.

use std::fmt;
use std::time::Duration;

use redis::Script;
use unilogin_core::{Error, Result};

use crate::{RedisStore, px};

const TAKE: &str = r"
local v = redis.call('GET', KEYS[1])
if not v then return false end
if v == ARGV[1] then return v end
redis.call('SET', KEYS[1], ARGV[1], 'KEEPTTL')
return v
";

/// What a taken key held. No value ever equals the tombstone: [`RedisStateStore::put`]
/// refuses it.
const USED: &str = "__used__";

/// The result of [`RedisStateStore::take`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Taken {
    /// The value; the key is now used.
    Found(String),
    /// The key was taken before.
    Used,
    /// No such key (never put, or forgotten after its time).
    Missing,
}

/// Single-use values in Redis, taken once across every replica: `<prefix>state:<key>`, replaced
/// by a tombstone when taken (so a replay reads [`Taken::Used`]) until the key expires. Cheap
/// to clone; get one with [`RedisStore::state_store`].
#[derive(Clone)]
pub struct RedisStateStore {
    redis: RedisStore,
    take: Script,
}

impl fmt::Debug for RedisStateStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStateStore")
            .field("redis", &self.redis)
            .finish()
    }
}

impl RedisStateStore {
    pub(crate) fn new(redis: RedisStore) -> Self {
        Self {
            redis,
            take: Script::new(TAKE),
        }
    }

    fn key(&self, key: &str) -> String {
        self.redis.prefixed(&format!("state:{key}"))
    }

    /// Stores `value` under `key` for `keep_for` (replacing what was there).
    pub async fn put(&self, key: &str, value: &str, keep_for: Duration) -> Result<()> {
        if value == USED {
            return Err(Error::Internal(
                "a single-use value must not be the tombstone".into(),
            ));
        }
        let mut conn = self.redis.conn();
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.key(key))
            .arg(value)
            .arg("PX")
            .arg(px(keep_for));
        self.redis
            .run("put single-use value", cmd.query_async::<()>(&mut conn))
            .await
    }

    /// Takes the value under `key` atomically: the first caller gets it, every later one
    /// [`Taken::Used`] until the key's time is up.
    pub async fn take(&self, key: &str) -> Result<Taken> {
        let mut conn = self.redis.conn();
        let redis_key = self.key(key);
        let mut inv = self.take.key(&redis_key);
        inv.arg(USED);
        let found: Option<String> = self
            .redis
            .run("take single-use value", inv.invoke_async(&mut conn))
            .await?;
        Ok(match found {
            None => Taken::Missing,
            Some(v) if v == USED => Taken::Used,
            Some(v) => Taken::Found(v),
        })
    }

    /// Checks that Redis answers (`PING`), for readiness probes.
    pub async fn ping(&self) -> Result<()> {
        let mut conn = self.redis.conn();
        let pong: String = self
            .redis
            .run("ping", redis::cmd("PING").query_async(&mut conn))
            .await?;
        if pong == "PONG" {
            Ok(())
        } else {
            Err(Error::Store {
                store: "redis",
                operation: "ping",
                message: "unexpected PING reply".into(),
            })
        }
    }
}
