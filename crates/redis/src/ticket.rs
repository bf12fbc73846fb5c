//! Pushed tickets of store apps (DingTalk / WeCom `suite_ticket`, Feishu `app_ticket`) in Redis,
//! shared by every replica: a [`TicketStore`] (see [`unilogin_core::isv`]).
//!
//! - One hash per app: `<prefix>ticket:<platform>:<app id>` with fields `value`, `pushed_ms`
//!   (the push time the platform stamped, ms since the Unix epoch) and `received_ms`. Platform
//!   names and app ids are validated identifiers without `:`, so two apps never share a key.
//! - [`TicketStore::offer`] is one Lua script: it writes the ticket only if its `pushed_ms` is
//!   strictly greater than the one held, so concurrent pushes received by different replicas,
//!   in any order, leave the newest.
//! - **Durable**: no expiry tied to the ticket's validity. Every offer (stored or not) sets the
//!   key's expiry to the retention, 30 days by default, far longer than any platform's interval
//!   between pushes (WeCom 10 min, Feishu about an hour, DingTalk a few hours): a live app's
//!   ticket never expires, an app that stopped receiving pushes is eventually forgotten.
//!   [`RedisTicketStore::retention`] changes it (`None`: never expire). For the ticket to survive
//!   a restart of Redis itself, run it with persistence (`appendonly yes`).
//! - Values are stored in clear text, like the token cache's tokens: protect Redis accordingly.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use redis::Script;
use unilogin_core::isv::{
    Offered, PushedTicket, TicketApp, TicketStore, TicketValue, from_unix_ms,
};
use unilogin_core::{Error, Result};

use crate::{RedisStore, px};

/// Default time a ticket is kept after the app's last push.
pub const DEFAULT_TICKET_RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);

/// `KEYS[1]` the app's hash; `ARGV`: value, pushed ms, received ms, retention ms (0: none).
/// Returns 1 if stored, 0 if the held ticket was pushed at the same time or later.
const OFFER: &str = r"
local held = redis.call('HGET', KEYS[1], 'pushed_ms')
local stored = 0
if (not held) or tonumber(held) < tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], 'value', ARGV[1], 'pushed_ms', ARGV[2], 'received_ms', ARGV[3])
  stored = 1
end
local keep = tonumber(ARGV[4])
if keep > 0 then
  redis.call('PEXPIRE', KEYS[1], keep)
else
  redis.call('PERSIST', KEYS[1])
end
return stored
";

/// The newest pushed ticket of each store app, in Redis. Cheap to clone; get one with
/// [`RedisStore::ticket_store`].
///
/// - One hash per app, `<prefix>ticket:<platform>:<app id>` (fields `value`, `pushed_ms`,
///   `received_ms`); [`TicketStore::offer`] is one Lua script that writes only a ticket pushed
///   strictly later than the one held, so concurrent pushes on different replicas leave the
///   newest.
/// - Durable: every offer sets the key to expire after the retention (30 days by default, see
///   [`retention`](Self::retention)), never after the ticket's own short validity, so the ticket
///   survives a restart of every replica; run Redis with `appendonly yes` for it to survive a
///   Redis restart too.
///
/// ```no_run
/// use std::time::SystemTime;
/// use unilogin_core::isv::{PushedTicket, TicketApp, TicketStore};
/// use unilogin_core::PlatformName;
/// use unilogin_redis::RedisStore;
///
/// # #[tokio::main] async fn main() -> unilogin_core::Result<()> {
/// let tickets = RedisStore::open("redis://127.0.0.1:6379/0")?.ticket_store();
/// let app = TicketApp::new(PlatformName::new("wecom").unwrap(), "ww4asffe99e54c0f").unwrap();
/// let pushed = PushedTicket::new("ticket", SystemTime::now(), SystemTime::now()).unwrap();
/// tickets.offer(&app, pushed).await?;
/// let newest = tickets.require(&app).await?;
/// # let _ = newest; Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisTicketStore {
    redis: RedisStore,
    offer: Script,
    retention: Option<Duration>,
}

impl fmt::Debug for RedisTicketStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisTicketStore")
            .field("redis", &self.redis)
            .field("retention", &self.retention)
            .finish_non_exhaustive()
    }
}

impl RedisStore {
    /// The pushed-ticket store on this connection and prefix (see [`RedisTicketStore`]).
    pub fn ticket_store(&self) -> RedisTicketStore {
        RedisTicketStore {
            redis: self.clone(),
            offer: Script::new(OFFER),
            retention: Some(DEFAULT_TICKET_RETENTION),
        }
    }
}

impl RedisTicketStore {
    /// How long a ticket is kept after the app's last push (default
    /// [`DEFAULT_TICKET_RETENTION`], 30 days; `None`: forever). Values under a day are raised
    /// to a day: a ticket must never expire before the platform's next push.
    pub fn retention(mut self, retention: Option<Duration>) -> Self {
        const DAY: Duration = Duration::from_secs(24 * 3600);
        self.retention = retention.map(|r| r.max(DAY));
        self
    }

    /// The Redis key of `app`'s ticket: `<prefix>ticket:<platform>:<app id>`.
    pub fn redis_key(&self, app: &TicketApp) -> String {
        self.redis
            .prefixed(&format!("ticket:{}:{}", app.platform(), app.app_id()))
    }
}

fn malformed(what: &str) -> Error {
    Error::Store {
        store: "redis",
        operation: "get ticket",
        message: format!("malformed ticket entry ({what}); not written by unilogin?"),
    }
}

#[async_trait]
impl TicketStore for RedisTicketStore {
    async fn offer(&self, app: &TicketApp, ticket: PushedTicket) -> Result<Offered> {
        let mut conn = self.redis.conn();
        let key = self.redis_key(app);
        let mut inv = self.offer.key(&key);
        inv.arg(ticket.value.expose())
            .arg(ticket.pushed_at_ms())
            .arg(ticket.received_at_ms())
            .arg(self.retention.map_or(0, px));
        let stored: i64 = self
            .redis
            .run("offer ticket", inv.invoke_async(&mut conn))
            .await?;
        Ok(if stored == 1 {
            Offered::Stored
        } else {
            Offered::Older
        })
    }

    async fn get(&self, app: &TicketApp) -> Result<Option<PushedTicket>> {
        let mut conn = self.redis.conn();
        let mut cmd = redis::cmd("HMGET");
        cmd.arg(self.redis_key(app))
            .arg("value")
            .arg("pushed_ms")
            .arg("received_ms");
        let (value, pushed, received): (Option<String>, Option<String>, Option<String>) = self
            .redis
            .run("get ticket", cmd.query_async(&mut conn))
            .await?;
        let Some(value) = value else {
            return Ok(None);
        };
        let ms = |field: Option<String>, what| {
            field
                .and_then(|v| v.parse::<u64>().ok())
                .ok_or_else(|| malformed(what))
        };
        Ok(Some(PushedTicket {
            value: TicketValue::new(value).map_err(|_| malformed("value"))?,
            pushed_at: from_unix_ms(ms(pushed, "pushed_ms")?),
            received_at: from_unix_ms(ms(received, "received_ms")?),
        }))
    }
}
