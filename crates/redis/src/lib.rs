//! # unilogin-redis
//!
//! A Redis [`TokenStore`] for unilogin's token cache: the shared second level (L2) that lets
//! every replica of a service use one app access token, and the refresh **lease** that makes N
//! replicas call the platform once when the token expires.
//!
//! ```no_run
//! use std::sync::Arc;
//! use unilogin_core::token_cache::TokenCache;
//! use unilogin_redis::RedisStore;
//!
//! # #[tokio::main] async fn main() -> unilogin_core::Result<()> {
//! let store = RedisStore::builder("redis://127.0.0.1:6379/0")
//!     .prefix("myapp:unilogin:")
//!     .build()?;
//! let cache = TokenCache::builder().store(Arc::new(store)).build();
//! # let _ = cache; Ok(()) }
//! ```
//!
//! ## Layout and commands
//! - Tokens: `<prefix>token:<TokenKey::as_str()>`, written with `SET … PX <ttl>`, read together
//!   with their remaining `PTTL` by one Lua script, so L1 can take the *remaining* lifetime.
//! - Invalidation: a Lua compare-and-delete, so an old token reported late cannot erase a fresh
//!   one.
//! - Lease: `<prefix>lease:<key>` taken with `SET NX PX` holding a random owner id, released by a
//!   Lua compare-and-delete so only the owner can release it.
//!
//! - One-off shared results
//!   ([`TokenCache::single_flight`](unilogin_core::token_cache::TokenCache::single_flight)): a
//!   user token set refreshed by one replica (JSON), kept briefly under a derived key
//!   `<app key>#user-refresh:<SHA-256 of the refresh token>` with its own lease, in the same
//!   token/lease layout. The refresh token itself never appears in a key.
//!
//! Tokens are stored in clear text: protect the Redis instance (network, `requirepass`/ACL, TLS)
//! like any credential store.
//!
//! ## Failure behaviour
//! Every command is bounded by a short timeout (default 200 ms; connecting too). The connection
//! is made lazily and re-made in the background after a failure, so building a store never
//! needs Redis to be up. Errors surface as [`Error::Store`] (`store: "redis"`, the operation,
//! a secret-free description); the [`TokenCache`](unilogin_core::token_cache::TokenCache) turns
//! them into a degraded, memory-only mode and comes back to Redis by itself.
//!
//! ## Other stores on the same connection
//! - [`RedisStateStore`] ([`RedisStore::state_store`]): single-use values, such as pending
//!   redirect logins, taken atomically once across replicas (`<prefix>state:<key>`).
//! - `RedisRevocationList` (feature `revocations`, `RedisStore::revocation_list`): a
//!   `unilogin_axum::session::RevocationList` of session token ids (`<prefix>revoked:<jti>`)
//!   and subjects (`<prefix>revoked-subject:<key>`) that fails closed.
//! - [`RedisTicketStore`] ([`RedisStore::ticket_store`]): the newest pushed ticket of each store
//!   app (`<prefix>ticket:<platform>:<app id>`), kept durably, compared atomically by push time.

#[cfg(feature = "provider")]
pub mod provider;
#[cfg(feature = "revocations")]
mod revocations;
mod state;
mod ticket;

#[cfg(feature = "revocations")]
pub use revocations::RedisRevocationList;
pub use state::{RedisStateStore, Taken};
pub use ticket::{DEFAULT_TICKET_RETENTION, RedisTicketStore};

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, Script};
use unilogin_core::token_cache::{StoredToken, TokenKey, TokenStore};
use unilogin_core::{AccessToken, Error, Result};

const DEFAULT_PREFIX: &str = "unilogin:";
const DEFAULT_OP_TIMEOUT: Duration = Duration::from_millis(200);

const GET_WITH_TTL: &str = r"
local v = redis.call('GET', KEYS[1])
if not v then return false end
return {v, redis.call('PTTL', KEYS[1])}
";

const COMPARE_AND_DELETE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

/// Builds a [`RedisStore`].
#[derive(Clone)]
pub struct RedisStoreBuilder {
    url: String,
    prefix: String,
    op_timeout: Duration,
}

impl fmt::Debug for RedisStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may hold a password: never print it.
        f.debug_struct("RedisStoreBuilder")
            .field("prefix", &self.prefix)
            .field("op_timeout", &self.op_timeout)
            .finish_non_exhaustive()
    }
}

impl RedisStoreBuilder {
    /// Prefix of every key (default `unilogin:`), to share a Redis database with other data.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Upper bound of each Redis command and of each connection attempt (default 200 ms).
    pub fn op_timeout(mut self, timeout: Duration) -> Self {
        self.op_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// Builds the store without connecting (the connection is made on first use). Must be called
    /// within a tokio runtime. Fails only on an invalid URL.
    pub fn build(self) -> Result<RedisStore> {
        let client = Client::open(self.url.as_str()).map_err(|e| {
            Error::config(
                None,
                None,
                "redis.url",
                format!("invalid Redis URL ({:?})", e.kind()),
            )
        })?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.op_timeout))
            .set_response_timeout(Some(self.op_timeout))
            .set_number_of_retries(1)
            .set_min_delay(Duration::from_millis(10))
            .set_max_delay(Duration::from_millis(100));
        let conn = ConnectionManager::new_lazy_with_config(client, config).map_err(|e| {
            Error::config(
                None,
                None,
                "redis.url",
                format!("cannot set up a Redis connection ({:?})", e.kind()),
            )
        })?;
        Ok(RedisStore {
            conn,
            prefix: self.prefix,
            op_timeout: self.op_timeout,
            get_with_ttl: Script::new(GET_WITH_TTL),
            compare_and_delete: Script::new(COMPARE_AND_DELETE),
        })
    }
}

/// A [`TokenStore`] on Redis (see the [crate documentation](crate)). Cheap to clone.
#[derive(Clone)]
pub struct RedisStore {
    conn: ConnectionManager,
    prefix: String,
    op_timeout: Duration,
    get_with_ttl: Script,
    compare_and_delete: Script,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .field("op_timeout", &self.op_timeout)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// A builder for the store at `url` (`redis://[:password@]host:port/db`, or `rediss://`
    /// where the redis crate was built with TLS).
    pub fn builder(url: impl Into<String>) -> RedisStoreBuilder {
        RedisStoreBuilder {
            url: url.into(),
            prefix: DEFAULT_PREFIX.to_string(),
            op_timeout: DEFAULT_OP_TIMEOUT,
        }
    }

    /// A store at `url` with default settings (see [`RedisStore::builder`]).
    pub fn open(url: impl Into<String>) -> Result<Self> {
        Self::builder(url).build()
    }

    /// The Redis key holding `key`'s token.
    pub fn token_key(&self, key: &TokenKey) -> String {
        format!("{}token:{}", self.prefix, key.as_str())
    }

    /// The Redis key holding `key`'s refresh lease.
    pub fn lease_key(&self, key: &TokenKey) -> String {
        format!("{}lease:{}", self.prefix, key.as_str())
    }

    /// The single-use store on this connection and prefix (see [`RedisStateStore`]).
    pub fn state_store(&self) -> RedisStateStore {
        RedisStateStore::new(self.clone())
    }

    /// The revocation list on this connection and prefix (see [`RedisRevocationList`]).
    #[cfg(feature = "revocations")]
    pub fn revocation_list(&self) -> RedisRevocationList {
        RedisRevocationList::new(self.clone())
    }

    /// `<prefix><name>`.
    pub(crate) fn prefixed(&self, name: &str) -> String {
        format!("{}{name}", self.prefix)
    }

    /// A connection handle (cheap clone of the shared, multiplexed connection).
    pub(crate) fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// Runs one command with the timeout, mapping failures to [`Error::Store`].
    pub(crate) async fn run<T>(
        &self,
        operation: &'static str,
        op: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T> {
        let message = match tokio::time::timeout(self.op_timeout, op).await {
            Ok(Ok(v)) => return Ok(v),
            Ok(Err(e)) if e.is_timeout() => "timed out".to_string(),
            Ok(Err(e)) => describe(&e),
            Err(_) => format!("no answer within {} ms", self.op_timeout.as_millis()),
        };
        Err(Error::Store {
            store: "redis",
            operation,
            message,
        })
    }
}

/// A short, secret-free description of a Redis error (kind and, for server errors, the code).
fn describe(e: &redis::RedisError) -> String {
    let mut s = format!("{:?}", e.kind());
    if let Some(code) = e.code() {
        s.push_str(": ");
        s.push_str(code);
    }
    if e.is_connection_refusal() {
        s.push_str(" (connection refused)");
    } else if e.is_connection_dropped() {
        s.push_str(" (connection dropped)");
    }
    s
}

pub(crate) fn px(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

#[async_trait]
impl TokenStore for RedisStore {
    async fn get(&self, key: &TokenKey) -> Result<Option<StoredToken>> {
        let mut conn = self.conn.clone();
        let redis_key = self.token_key(key);
        let inv = self.get_with_ttl.key(&redis_key);
        let found: Option<(String, i64)> =
            self.run("get token", inv.invoke_async(&mut conn)).await?;
        Ok(found.and_then(|(token, pttl)| {
            // -1: no expiry (not written by us), -2: gone meanwhile; both mean "no usable token".
            let ttl = u64::try_from(pttl).ok().filter(|&ms| ms > 0)?;
            Some(StoredToken {
                token: AccessToken::new(token),
                ttl: Duration::from_millis(ttl),
            })
        }))
    }

    async fn set(&self, key: &TokenKey, token: &AccessToken, ttl: Duration) -> Result<()> {
        let mut conn = self.conn.clone();
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.token_key(key))
            .arg(token.expose())
            .arg("PX")
            .arg(px(ttl));
        self.run("set token", cmd.query_async::<()>(&mut conn))
            .await
    }

    async fn compare_and_delete(&self, key: &TokenKey, expected: &AccessToken) -> Result<bool> {
        let mut conn = self.conn.clone();
        let redis_key = self.token_key(key);
        let mut inv = self.compare_and_delete.key(&redis_key);
        inv.arg(expected.expose());
        let deleted: i64 = self
            .run("invalidate token", inv.invoke_async(&mut conn))
            .await?;
        Ok(deleted > 0)
    }

    async fn try_lease(&self, key: &TokenKey, owner: &str, ttl: Duration) -> Result<bool> {
        let mut conn = self.conn.clone();
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.lease_key(key))
            .arg(owner)
            .arg("NX")
            .arg("PX")
            .arg(px(ttl));
        let reply: Option<String> = self.run("take lease", cmd.query_async(&mut conn)).await?;
        Ok(reply.is_some())
    }

    async fn release_lease(&self, key: &TokenKey, owner: &str) -> Result<bool> {
        let mut conn = self.conn.clone();
        let redis_key = self.lease_key(key);
        let mut inv = self.compare_and_delete.key(&redis_key);
        inv.arg(owner);
        let deleted: i64 = self
            .run("release lease", inv.invoke_async(&mut conn))
            .await?;
        Ok(deleted > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_url_is_a_config_error_without_the_url() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _guard = rt.enter();
        let e = RedisStore::open("http://user:hunter2@example.com").unwrap_err();
        assert_eq!(e.kind(), "config");
        assert!(!e.to_string().contains("hunter2"), "{e}");
        let s = RedisStore::open("redis://:hunter2@127.0.0.1:1/0").unwrap();
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
