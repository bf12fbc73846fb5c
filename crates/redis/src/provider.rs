//! The OpenID Provider's [`GrantStore`] in Redis (feature `provider`), shared by replicas.
//!
//! Layout (every key under the store's prefix, every key with a TTL):
//! - `oidc:req:<id>`: a pending authorization request (JSON), taken once (Lua get-and-delete).
//! - `oidc:code:<sha256>`: `live:<grant id>:<JSON>` until redeemed; one Lua script returns it
//!   and replaces it with `spent:<grant id>` for the spent marker's lifetime, so a second
//!   redemption names the grant to revoke.
//! - `oidc:grant:<id>`: hash `data` (the grant, JSON), `current` (SHA-256 of the current
//!   refresh secret), `revoked` (`0`/`1`); `oidc:grant:<id>:former` the set of former refresh
//!   hashes; `oidc:grant:<id>:tokens` the access tokens issued (`<jti> <exp>`). Rotation is one
//!   Lua script: current → former + new current (TTL extended); former → revoked. Revoking an
//!   id not stored yet leaves `revoked` = `1`, which storing the grant keeps.
//! - `oidc:sid:<sid>`: hash `subject` and one `p:<client id> <grant id>` field per client that
//!   got tokens; `oidc:subject:<subject>`: the set of its sids.
//!
//! Codes and refresh secrets are stored as SHA-256 only.

use std::time::Duration;

use async_trait::async_trait;
use redis::Script;
use unilogin_provider::{
    CodeGrant, CodeTaken, Grant, GrantStore, IssuedToken, LoginRecord, PendingAuthorization,
    ProviderError, Rotation, SessionRecord,
};

use crate::{RedisStore, px};

const TAKE_REQUEST: &str = r"
local v = redis.call('GET', KEYS[1])
if v then redis.call('DEL', KEYS[1]) end
return v
";

const TAKE_CODE: &str = r"
local v = redis.call('GET', KEYS[1])
if not v then return false end
local gid = string.match(v, '^live:([^:]+):')
if gid then
  redis.call('SET', KEYS[1], 'spent:' .. gid, 'PX', ARGV[1])
end
return v
";

const PUT_GRANT: &str = r"
local revoked = redis.call('HGET', KEYS[1], 'revoked')
if revoked ~= '1' then revoked = '0' end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
redis.call('HSET', KEYS[1], 'data', ARGV[1], 'current', ARGV[2], 'revoked', revoked)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
";

const ROTATE: &str = r"
local h = redis.call('HMGET', KEYS[1], 'data', 'current', 'revoked')
if not h[1] or h[3] == '1' then return {0, ''} end
if h[2] ~= '' and h[2] == ARGV[1] then
  redis.call('HSET', KEYS[1], 'current', ARGV[2])
  redis.call('SADD', KEYS[2], ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
  if redis.call('EXISTS', KEYS[3]) == 1 then redis.call('PEXPIRE', KEYS[3], ARGV[3]) end
  return {1, h[1]}
end
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then
  redis.call('HSET', KEYS[1], 'revoked', '1')
  return {2, h[1]}
end
return {0, ''}
";

const ADD_TOKEN: &str = r"
local t = redis.call('PTTL', KEYS[1])
if t <= 0 then return 0 end
redis.call('RPUSH', KEYS[2], ARGV[1])
redis.call('PEXPIRE', KEYS[2], t)
return 1
";

const REVOKE: &str = r"
local existed = redis.call('EXISTS', KEYS[1])
redis.call('HSET', KEYS[1], 'revoked', '1')
if existed == 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return redis.call('LRANGE', KEYS[2], 0, -1)
";

const ADD_SESSION: &str = r"
redis.call('HSET', KEYS[1], 'subject', ARGV[1], ARGV[2], '1')
if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[3]) then redis.call('PEXPIRE', KEYS[1], ARGV[3]) end
redis.call('SADD', KEYS[2], ARGV[4])
if redis.call('PTTL', KEYS[2]) < tonumber(ARGV[3]) then redis.call('PEXPIRE', KEYS[2], ARGV[3]) end
return 1
";

const TAKE_SESSION: &str = r"
local h = redis.call('HGETALL', KEYS[1])
if #h == 0 then return false end
redis.call('DEL', KEYS[1])
for i = 1, #h, 2 do
  if h[i] == 'subject' then
    redis.call('SREM', ARGV[1] .. h[i + 1], ARGV[2])
  end
end
return h
";

/// The provider's grant store in Redis (see the [module documentation](self)). Cheap to
/// clone; get one with [`RedisStore::grant_store`].
#[derive(Clone)]
pub struct RedisGrantStore {
    redis: RedisStore,
    take_request: Script,
    take_code: Script,
    put_grant: Script,
    rotate: Script,
    add_token: Script,
    revoke: Script,
    add_session: Script,
    take_session: Script,
}

impl std::fmt::Debug for RedisGrantStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisGrantStore")
            .field("redis", &self.redis)
            .finish()
    }
}

fn store_err(operation: &str, e: impl std::fmt::Display) -> ProviderError {
    ProviderError::store(operation, e)
}

fn decode<T: serde::de::DeserializeOwned>(what: &str, json: &str) -> Result<T, ProviderError> {
    serde_json::from_str(json)
        .map_err(|_| ProviderError::Server(format!("stored {what} is not readable")))
}

fn encode<T: serde::Serialize>(value: &T) -> Result<String, ProviderError> {
    serde_json::to_string(value).map_err(|e| ProviderError::Server(e.to_string()))
}

impl RedisStore {
    /// The OpenID Provider's grant store on this connection and prefix (see
    /// [`RedisGrantStore`]).
    ///
    /// ```no_run
    /// # #[tokio::main] async fn main() -> unilogin_core::Result<()> {
    /// use std::sync::Arc;
    /// use unilogin_provider::GrantStore;
    /// let redis = unilogin_redis::RedisStore::open("redis://127.0.0.1:6379/0")?;
    /// let grants: Arc<dyn GrantStore> = Arc::new(redis.grant_store());
    /// # let _ = grants; Ok(()) }
    /// ```
    pub fn grant_store(&self) -> RedisGrantStore {
        RedisGrantStore::new(self.clone())
    }
}

impl RedisGrantStore {
    fn new(redis: RedisStore) -> Self {
        Self {
            redis,
            take_request: Script::new(TAKE_REQUEST),
            take_code: Script::new(TAKE_CODE),
            put_grant: Script::new(PUT_GRANT),
            rotate: Script::new(ROTATE),
            add_token: Script::new(ADD_TOKEN),
            revoke: Script::new(REVOKE),
            add_session: Script::new(ADD_SESSION),
            take_session: Script::new(TAKE_SESSION),
        }
    }

    fn key(&self, name: &str) -> String {
        self.redis.prefixed(&format!("oidc:{name}"))
    }

    fn grant_keys(&self, id: &str) -> [String; 3] {
        [
            self.key(&format!("grant:{id}")),
            self.key(&format!("grant:{id}:former")),
            self.key(&format!("grant:{id}:tokens")),
        ]
    }

    async fn run<T>(
        &self,
        operation: &'static str,
        op: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, ProviderError> {
        self.redis
            .run(operation, op)
            .await
            .map_err(|e| store_err(operation, e))
    }
}

#[async_trait]
impl GrantStore for RedisGrantStore {
    async fn put_request(
        &self,
        id: &str,
        request: &PendingAuthorization,
        ttl: Duration,
    ) -> Result<(), ProviderError> {
        let mut conn = self.redis.conn();
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.key(&format!("req:{id}")))
            .arg(encode(request)?)
            .arg("PX")
            .arg(px(ttl));
        self.run(
            "put authorization request",
            cmd.query_async::<()>(&mut conn),
        )
        .await
    }

    async fn take_request(&self, id: &str) -> Result<Option<PendingAuthorization>, ProviderError> {
        let mut conn = self.redis.conn();
        let key = self.key(&format!("req:{id}"));
        let inv = self.take_request.key(&key);
        let v: Option<String> = self
            .run("take authorization request", inv.invoke_async(&mut conn))
            .await?;
        v.map(|v| decode("authorization request", &v)).transpose()
    }

    async fn put_code(
        &self,
        code_hash: &str,
        code: &CodeGrant,
        ttl: Duration,
    ) -> Result<(), ProviderError> {
        if code.grant_id.contains(':') {
            return Err(ProviderError::Server(
                "a grant id must not contain ':'".into(),
            ));
        }
        let mut conn = self.redis.conn();
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.key(&format!("code:{code_hash}")))
            .arg(format!("live:{}:{}", code.grant_id, encode(code)?))
            .arg("PX")
            .arg(px(ttl));
        self.run("put code", cmd.query_async::<()>(&mut conn)).await
    }

    async fn take_code(
        &self,
        code_hash: &str,
        spent_ttl: Duration,
    ) -> Result<CodeTaken, ProviderError> {
        let mut conn = self.redis.conn();
        let key = self.key(&format!("code:{code_hash}"));
        let mut inv = self.take_code.key(&key);
        inv.arg(px(spent_ttl));
        let v: Option<String> = self.run("take code", inv.invoke_async(&mut conn)).await?;
        let Some(v) = v else {
            return Ok(CodeTaken::Missing);
        };
        if let Some(grant_id) = v.strip_prefix("spent:") {
            return Ok(CodeTaken::Spent {
                grant_id: grant_id.to_string(),
            });
        }
        let json = v
            .strip_prefix("live:")
            .and_then(|rest| rest.split_once(':'))
            .map(|(_, json)| json)
            .ok_or_else(|| ProviderError::Server("stored code is not readable".into()))?;
        Ok(CodeTaken::Found(Box::new(decode("code", json)?)))
    }

    async fn put_grant(
        &self,
        grant: &Grant,
        refresh_hash: Option<&str>,
        ttl: Duration,
    ) -> Result<(), ProviderError> {
        let mut conn = self.redis.conn();
        let [grant_key, former, tokens] = self.grant_keys(&grant.id);
        let mut inv = self.put_grant.key(&grant_key);
        inv.key(&former)
            .key(&tokens)
            .arg(encode(grant)?)
            .arg(refresh_hash.unwrap_or(""))
            .arg(px(ttl));
        self.run("put grant", inv.invoke_async::<i64>(&mut conn))
            .await
            .map(|_| ())
    }

    async fn grant(&self, id: &str) -> Result<Option<Grant>, ProviderError> {
        let mut conn = self.redis.conn();
        let [grant_key, _, _] = self.grant_keys(id);
        let mut cmd = redis::cmd("HMGET");
        cmd.arg(&grant_key).arg("data").arg("revoked");
        let (data, revoked): (Option<String>, Option<String>) =
            self.run("read grant", cmd.query_async(&mut conn)).await?;
        match (data, revoked.as_deref()) {
            (Some(data), Some("0")) => Ok(Some(decode("grant", &data)?)),
            _ => Ok(None),
        }
    }

    async fn rotate_refresh(
        &self,
        id: &str,
        presented_hash: &str,
        new_hash: &str,
        ttl: Duration,
    ) -> Result<Rotation, ProviderError> {
        let mut conn = self.redis.conn();
        let [grant_key, former, tokens] = self.grant_keys(id);
        let mut inv = self.rotate.key(&grant_key);
        inv.key(&former)
            .key(&tokens)
            .arg(presented_hash)
            .arg(new_hash)
            .arg(px(ttl));
        let reply: (i64, String) = self
            .run("rotate refresh token", inv.invoke_async(&mut conn))
            .await?;
        Ok(match reply {
            (1, data) => Rotation::Rotated(Box::new(decode("grant", &data)?)),
            (2, data) => Rotation::Reused(Box::new(decode("grant", &data)?)),
            _ => Rotation::Invalid,
        })
    }

    async fn add_access_token(&self, id: &str, token: &IssuedToken) -> Result<(), ProviderError> {
        let mut conn = self.redis.conn();
        let [grant_key, _, tokens] = self.grant_keys(id);
        let mut inv = self.add_token.key(&grant_key);
        inv.key(&tokens).arg(format!("{} {}", token.jti, token.exp));
        self.run("record access token", inv.invoke_async::<i64>(&mut conn))
            .await
            .map(|_| ())
    }

    async fn revoke_grant(
        &self,
        id: &str,
        ttl: Duration,
    ) -> Result<Vec<IssuedToken>, ProviderError> {
        let mut conn = self.redis.conn();
        let [grant_key, _, tokens] = self.grant_keys(id);
        let mut inv = self.revoke.key(&grant_key);
        inv.key(&tokens).arg(px(ttl));
        let list: Vec<String> = self
            .run("revoke grant", inv.invoke_async(&mut conn))
            .await?;
        Ok(list
            .iter()
            .filter_map(|e| {
                let (jti, exp) = e.split_once(' ')?;
                Some(IssuedToken {
                    jti: jti.to_string(),
                    exp: exp.parse().ok()?,
                })
            })
            .collect())
    }

    async fn add_session_client(
        &self,
        sid: &str,
        subject: &str,
        client_id: &str,
        grant_id: &str,
        ttl: Duration,
    ) -> Result<(), ProviderError> {
        let mut conn = self.redis.conn();
        let sid_key = self.key(&format!("sid:{sid}"));
        let subject_key = self.key(&format!("subject:{subject}"));
        let mut inv = self.add_session.key(&sid_key);
        inv.key(&subject_key)
            .arg(subject)
            .arg(format!("p:{client_id} {grant_id}"))
            .arg(px(ttl))
            .arg(sid);
        self.run("record session client", inv.invoke_async::<i64>(&mut conn))
            .await
            .map(|_| ())
    }

    async fn take_session(&self, sid: &str) -> Result<Option<SessionRecord>, ProviderError> {
        let mut conn = self.redis.conn();
        let sid_key = self.key(&format!("sid:{sid}"));
        let mut inv = self.take_session.key(&sid_key);
        inv.arg(self.key("subject:")).arg(sid);
        let flat: Option<Vec<String>> = self
            .run("take session", inv.invoke_async(&mut conn))
            .await?;
        let Some(flat) = flat else {
            return Ok(None);
        };
        let mut record = SessionRecord::default();
        for pair in flat.chunks(2) {
            let [field, value] = pair else { continue };
            if field == "subject" {
                record.subject = value.clone();
            } else if let Some((client, grant)) =
                field.strip_prefix("p:").and_then(|p| p.split_once(' '))
            {
                record.clients.push((client.to_string(), grant.to_string()));
            }
        }
        record.clients.sort();
        Ok(Some(record))
    }

    async fn subject_sessions(&self, subject: &str) -> Result<Vec<String>, ProviderError> {
        let mut conn = self.redis.conn();
        let mut cmd = redis::cmd("SMEMBERS");
        cmd.arg(self.key(&format!("subject:{subject}")));
        let mut sids: Vec<String> = self
            .run("read subject sessions", cmd.query_async(&mut conn))
            .await?;
        sids.sort();
        Ok(sids)
    }

    async fn put_login(
        &self,
        sid: &str,
        login: &LoginRecord,
        ttl: Duration,
    ) -> Result<(), ProviderError> {
        let mut conn = self.redis.conn();
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.key(&format!("login:{sid}")))
            .arg(encode(login)?)
            .arg("PX")
            .arg(px(ttl));
        self.run("put login record", cmd.query_async::<()>(&mut conn))
            .await
    }

    async fn login(&self, sid: &str) -> Result<Option<LoginRecord>, ProviderError> {
        let mut conn = self.redis.conn();
        let mut cmd = redis::cmd("GET");
        cmd.arg(self.key(&format!("login:{sid}")));
        let v: Option<String> = self
            .run("read login record", cmd.query_async(&mut conn))
            .await?;
        v.map(|v| decode("login record", &v)).transpose()
    }
}
