//! Store / ISV apps: one app installed by many organisations (DingTalk 第三方企业应用, Feishu
//! 商店应用, WeCom 第三方应用).
//!
//! Such an app's tokens form a chain:
//!
//! 1. the platform **pushes a ticket** to the app's callback (DingTalk and WeCom `suite_ticket`,
//!    Feishu `app_ticket`), at intervals the app does not control (WeCom every 10 minutes, valid
//!    30; Feishu about hourly; DingTalk unspecified);
//! 2. the **suite / app token** is fetched with the app's key, secret and the newest ticket;
//! 3. one **corp / tenant token** per installed organisation is fetched with the suite token (or
//!    the key, secret and ticket) and the organisation's id (DingTalk `authCorpId`, Feishu
//!    `tenant_key`, WeCom `auth_corpid` + permanent code).
//!
//! This module holds level 1: a [`TicketStore`] keeps the **newest** ticket of each
//! [`TicketApp`] (platform + app id), comparing the push time the platform stamped, so a
//! delayed or replayed push can never replace a newer ticket, and one app's ticket never lands
//! under another app. [`MemoryTicketStore`] serves one process; `unilogin_redis::RedisTicketStore`
//! is shared by every replica and survives their restarts. When no ticket has arrived yet,
//! [`TicketStore::require`] fails with [`Error::TicketMissing`], which names the app and says what
//! to do.
//!
//! Levels 2 and 3 are ordinary [`TokenCache`](crate::token_cache::TokenCache) keys: the suite
//! token under [`TicketApp::suite_key`], each organisation's token under
//! [`TokenKey::organisation`](crate::token_cache::TokenKey::organisation) of it. Each is cached,
//! refreshed ahead of expiry and fetched once across replicas by the cache, and invalidating one
//! leaves the other alone. For thousands of organisations, give the cache a
//! [refresh budget](crate::token_cache::TokenCacheBuilder::refresh_budget).
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use unilogin_core::isv::{MemoryTicketStore, Offered, OrgId, PushedTicket, TicketApp, TicketStore};
//! use unilogin_core::{Error, PlatformName, TenantId};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> unilogin_core::Result<()> {
//! let store = MemoryTicketStore::new();
//! let app = TicketApp::new(PlatformName::new("wecom").unwrap(), "ww4asffe99e54c0f").unwrap();
//! // Before the first push: a typed error that says what to do.
//! let e = store.require(&app).await.unwrap_err();
//! assert!(matches!(e, Error::TicketMissing { .. }));
//!
//! let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_403_610_513);
//! let first = PushedTicket::new("ticket-1", t0, SystemTime::now()).unwrap();
//! assert_eq!(store.offer(&app, first).await?, Offered::Stored);
//! // A push stamped earlier (delayed, replayed) is ignored.
//! let late = PushedTicket::new("ticket-0", t0 - Duration::from_secs(600), SystemTime::now()).unwrap();
//! assert_eq!(store.offer(&app, late).await?, Offered::Older);
//! assert_eq!(store.require(&app).await?.value.expose(), "ticket-1");
//!
//! // The token chain: one key for the suite token, one per installed organisation.
//! let suite = app.suite_key(&TenantId::new("vendor").unwrap());
//! let org = suite.organisation(&OrgId::new("wwcorp01").unwrap());
//! assert_ne!(suite, org);
//! # Ok(())
//! # }
//! ```

use std::borrow::Borrow;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use subtle::ConstantTimeEq;

use crate::error::{Error, Result};
use crate::token_cache::TokenKey;
use crate::types::{AppKey, InvalidId, PlatformName, TenantId};

/// The reserved tenant under which an app's suite / app token is cached
/// ([`TicketApp::shared_suite_key`]); no configured tenant may be called so, or its tokens
/// would meet the suite's.
pub const SUITE_TENANT: &str = "isv";

/// The longest ticket accepted, in bytes (WeCom documents at most 512; the others are shorter).
pub const MAX_TICKET_LEN: usize = 4096;

/// The longest organisation id accepted, in bytes.
pub const MAX_ORG_ID_LEN: usize = 128;

/// The store app a pushed ticket belongs to: the platform and the app's id there (DingTalk
/// `suiteKey`, Feishu `app_id`, WeCom `suite_id`). Tickets are namespaced by both, so two apps
/// (on one platform or on two) never see each other's ticket.
///
/// ```
/// use unilogin_core::isv::TicketApp;
/// use unilogin_core::PlatformName;
/// let app = TicketApp::new(PlatformName::new("feishu").unwrap(), "cli_a1b2").unwrap();
/// assert_eq!(app.to_string(), "feishu:cli_a1b2");
/// assert!(TicketApp::new(PlatformName::new("feishu").unwrap(), "cli a1").is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TicketApp {
    platform: PlatformName,
    app_id: AppKey,
}

impl TicketApp {
    /// Validates the app id (an identifier: ASCII letters, digits, `-`, `_`, `.`; at most 128
    /// bytes) and builds the app.
    pub fn new(platform: PlatformName, app_id: impl AsRef<str>) -> Result<Self, InvalidId> {
        Ok(Self {
            platform,
            app_id: AppKey::new(app_id)?,
        })
    }

    /// The platform.
    pub fn platform(&self) -> &PlatformName {
        &self.platform
    }

    /// The app's id on the platform.
    pub fn app_id(&self) -> &AppKey {
        &self.app_id
    }

    /// The [`TokenKey`] of this app's suite / app token (DingTalk `suiteAccessToken`, Feishu
    /// `app_access_token`, WeCom `suite_access_token`) for `tenant` (the unilogin tenant that
    /// configures the app). Derive each organisation's key from it with
    /// [`TokenKey::organisation`].
    pub fn suite_key(&self, tenant: &TenantId) -> TokenKey {
        TokenKey::new(&self.platform, tenant, self.app_id.as_str(), None)
    }

    /// The key every entry of this app shares for its suite / app token: [`suite_key`](Self::suite_key)
    /// under the reserved tenant [`SUITE_TENANT`], since the token belongs to the app, not to
    /// one installed organisation's entry. Platform crates key their store-app tokens with it.
    ///
    /// ```
    /// use unilogin_core::isv::{OrgId, TicketApp};
    /// use unilogin_core::PlatformName;
    /// let app = TicketApp::new(PlatformName::new("feishu").unwrap(), "cli_store").unwrap();
    /// assert_eq!(app.shared_suite_key().as_str(), "feishu:isv:cli_store");
    /// let org = app.shared_suite_key().organisation(&OrgId::new("2ed263bf32cf1651").unwrap());
    /// assert_eq!(org.as_str(), "feishu:isv:cli_store#org:2ed263bf32cf1651");
    /// ```
    pub fn shared_suite_key(&self) -> TokenKey {
        let tenant = TenantId::new(SUITE_TENANT).expect("a valid tenant id");
        self.suite_key(&tenant)
    }

    /// The error for "no ticket known yet" for this app.
    pub fn missing(&self) -> Error {
        Error::TicketMissing {
            platform: self.platform.clone(),
            app: self.app_id.clone(),
        }
    }
}

impl fmt::Debug for TicketApp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TicketApp({}:{})", self.platform, self.app_id)
    }
}

impl fmt::Display for TicketApp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.platform, self.app_id)
    }
}

/// The id of an organisation that installed a store app: DingTalk `corpId` (`authCorpId`),
/// Feishu `tenant_key`, WeCom `corpid` (`auth_corpid`). An identifier (ASCII letters, digits,
/// `-`, `_`, `.`; 1 to [`MAX_ORG_ID_LEN`] bytes), so it is safe in keys and logs.
///
/// ```
/// use unilogin_core::isv::OrgId;
/// assert_eq!(OrgId::new("ding8a1b2c3d4e5f").unwrap().as_str(), "ding8a1b2c3d4e5f");
/// assert!(OrgId::new("").is_err());
/// assert!(OrgId::new("a:b").is_err());
/// assert!(OrgId::new("x".repeat(129)).is_err());
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OrgId(Arc<str>);

impl OrgId {
    /// Validates and wraps `value`.
    pub fn new(value: impl AsRef<str>) -> Result<Self, InvalidId> {
        let value = value.as_ref();
        let fail = |reason| InvalidId {
            kind: "organisation id",
            value: value.chars().take(64).collect(),
            reason,
        };
        if value.is_empty() {
            return Err(fail("must not be empty"));
        }
        if value.len() > MAX_ORG_ID_LEN {
            return Err(fail("too long"));
        }
        if !value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        {
            return Err(fail(
                "only ASCII letters, digits, `-`, `_` and `.` are allowed",
            ));
        }
        Ok(Self(Arc::from(value)))
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for OrgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OrgId({:?})", &*self.0)
    }
}

impl fmt::Display for OrgId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for OrgId {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl Borrow<str> for OrgId {
    fn borrow(&self) -> &str {
        &self.0
    }
}

/// The value of a pushed ticket (`suite_ticket`, `app_ticket`): a credential. `Debug` and
/// `Display` never show it; equality is constant-time.
///
/// ```
/// use unilogin_core::isv::TicketValue;
/// let t = TicketValue::new("s3cr3t-ticket").unwrap();
/// assert_eq!(format!("{t:?} {t}"), "TicketValue(***) ***");
/// assert_eq!(t.expose(), "s3cr3t-ticket");
/// assert!(TicketValue::new("").is_err());
/// ```
#[derive(Clone)]
pub struct TicketValue(Arc<str>);

impl TicketValue {
    /// Wraps a ticket: 1 to [`MAX_TICKET_LEN`] bytes. The error never quotes the value.
    pub fn new(value: impl Into<String>) -> Result<Self, InvalidId> {
        let value = value.into();
        let fail = |reason| InvalidId {
            kind: "pushed ticket",
            value: "***".into(),
            reason,
        };
        if value.is_empty() {
            return Err(fail("must not be empty"));
        }
        if value.len() > MAX_TICKET_LEN {
            return Err(fail("too long"));
        }
        Ok(Self(Arc::from(value)))
    }

    /// The ticket. Call this only where it is sent to the platform or written to the store.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for TicketValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TicketValue(***)")
    }
}

impl fmt::Display for TicketValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl PartialEq for TicketValue {
    fn eq(&self, other: &Self) -> bool {
        self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
    }
}

impl Eq for TicketValue {}

/// A ticket as the platform pushed it.
///
/// Push times are compared at **millisecond** resolution (the finest any platform stamps:
/// DingTalk `gmt_create` / `TimeStamp` in ms, WeCom `TimeStamp` and Feishu `ts` in seconds), so
/// every store orders tickets the same way; a time before 1970 counts as 0.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PushedTicket {
    /// The ticket (redacted in `Debug` / `Display`).
    pub value: TicketValue,
    /// When the platform stamped the push (the event's own timestamp, not our clock).
    pub pushed_at: SystemTime,
    /// When this server received it.
    pub received_at: SystemTime,
}

impl PushedTicket {
    /// Builds a pushed ticket; fails if the value is empty or longer than [`MAX_TICKET_LEN`].
    pub fn new(
        value: impl Into<String>,
        pushed_at: SystemTime,
        received_at: SystemTime,
    ) -> Result<Self, InvalidId> {
        Ok(Self {
            value: TicketValue::new(value)?,
            pushed_at,
            received_at,
        })
    }

    /// The push time in milliseconds since the Unix epoch (what stores compare).
    pub fn pushed_at_ms(&self) -> u64 {
        unix_ms(self.pushed_at)
    }

    /// The receive time in milliseconds since the Unix epoch.
    pub fn received_at_ms(&self) -> u64 {
        unix_ms(self.received_at)
    }
}

/// Milliseconds since the Unix epoch; 0 before it, saturating far in the future.
pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The time `ms` milliseconds after the Unix epoch.
pub fn from_unix_ms(ms: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(ms)
}

/// What [`TicketStore::offer`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offered {
    /// The ticket is now the app's newest.
    Stored,
    /// The store already holds a ticket pushed at the same time or later; nothing changed.
    Older,
}

/// Where the pushed tickets of store apps are kept: the newest per [`TicketApp`].
///
/// Implementations must be safe to call concurrently from many tasks and processes, and must
/// decide "newer" atomically (two replicas receiving two pushes at once must end with the one
/// the platform stamped later, whatever the order their writes arrive in).
#[async_trait]
pub trait TicketStore: Send + Sync + fmt::Debug {
    /// Keeps `ticket` as `app`'s ticket if it was pushed strictly later than the one held (by
    /// [`PushedTicket::pushed_at_ms`]); otherwise changes nothing and answers
    /// [`Offered::Older`].
    async fn offer(&self, app: &TicketApp, ticket: PushedTicket) -> Result<Offered>;

    /// `app`'s newest ticket, if one has arrived.
    async fn get(&self, app: &TicketApp) -> Result<Option<PushedTicket>>;

    /// `app`'s newest ticket, or [`Error::TicketMissing`] if none has arrived yet (the call a
    /// suite-token refresher makes).
    async fn require(&self, app: &TicketApp) -> Result<PushedTicket> {
        self.get(app).await?.ok_or_else(|| app.missing())
    }
}

/// Default bound of a [`MemoryTicketStore`].
pub const DEFAULT_MAX_APPS: usize = 10_000;

/// A [`TicketStore`] in this process's memory, bounded: beyond its capacity a new app's ticket
/// replaces the one received the longest ago. Tickets do not survive a restart: use it for one
/// process (tests, a single replica that can wait for the next push), and
/// `unilogin_redis::RedisTicketStore` for replicas.
#[derive(Debug)]
pub struct MemoryTicketStore {
    tickets: Mutex<HashMap<TicketApp, PushedTicket>>,
    max_apps: usize,
}

impl Default for MemoryTicketStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryTicketStore {
    /// A store for up to [`DEFAULT_MAX_APPS`] apps.
    pub fn new() -> Self {
        Self::with_capacity(DEFAULT_MAX_APPS)
    }

    /// A store for up to `max_apps` apps (at least one).
    pub fn with_capacity(max_apps: usize) -> Self {
        Self {
            tickets: Mutex::new(HashMap::new()),
            max_apps: max_apps.max(1),
        }
    }

    /// Number of apps with a ticket.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no app has a ticket.
    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TicketApp, PushedTicket>> {
        // Every update is a single insert: the map is consistent whenever a panic could occur.
        self.tickets.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[async_trait]
impl TicketStore for MemoryTicketStore {
    async fn offer(&self, app: &TicketApp, ticket: PushedTicket) -> Result<Offered> {
        let mut tickets = self.lock();
        if let Some(held) = tickets.get_mut(app) {
            if held.pushed_at_ms() >= ticket.pushed_at_ms() {
                return Ok(Offered::Older);
            }
            *held = ticket;
            return Ok(Offered::Stored);
        }
        if tickets.len() >= self.max_apps {
            let stalest = tickets
                .iter()
                .min_by_key(|(_, t)| t.received_at)
                .map(|(a, _)| a.clone());
            if let Some(stalest) = stalest {
                tickets.remove(&stalest);
            }
        }
        tickets.insert(app.clone(), ticket);
        Ok(Offered::Stored)
    }

    async fn get(&self, app: &TicketApp) -> Result<Option<PushedTicket>> {
        Ok(self.lock().get(app).cloned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(platform: &str, id: &str) -> TicketApp {
        TicketApp::new(PlatformName::new(platform).unwrap(), id).unwrap()
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
    }

    fn ticket(value: &str, pushed: u64) -> PushedTicket {
        PushedTicket::new(value, at(pushed), SystemTime::now()).unwrap()
    }

    #[tokio::test]
    async fn keeps_the_newest_by_push_time_and_ignores_equal_or_older() {
        let s = MemoryTicketStore::new();
        let a = app("dingtalk", "suiteabc");
        assert_eq!(
            s.offer(&a, ticket("t2", 20)).await.unwrap(),
            Offered::Stored
        );
        assert_eq!(s.offer(&a, ticket("t1", 10)).await.unwrap(), Offered::Older);
        assert_eq!(
            s.offer(&a, ticket("t2-dup", 20)).await.unwrap(),
            Offered::Older
        );
        assert_eq!(s.get(&a).await.unwrap().unwrap().value.expose(), "t2");
        assert_eq!(
            s.offer(&a, ticket("t3", 30)).await.unwrap(),
            Offered::Stored
        );
        let held = s.require(&a).await.unwrap();
        assert_eq!(held.value.expose(), "t3");
        assert_eq!(held.pushed_at, at(30));
    }

    #[tokio::test]
    async fn apps_are_namespaced_by_platform_and_app_id() {
        let s = MemoryTicketStore::new();
        let (ding, wecom, other) = (
            app("dingtalk", "same-id"),
            app("wecom", "same-id"),
            app("dingtalk", "other-id"),
        );
        s.offer(&ding, ticket("ding", 10)).await.unwrap();
        // A later push for another app changes nothing for this one.
        s.offer(&wecom, ticket("wecom", 50)).await.unwrap();
        s.offer(&other, ticket("other", 60)).await.unwrap();
        assert_eq!(s.require(&ding).await.unwrap().value.expose(), "ding");
        assert_eq!(s.require(&wecom).await.unwrap().value.expose(), "wecom");
        assert_eq!(s.require(&other).await.unwrap().value.expose(), "other");
        assert_eq!(s.len(), 3);
    }

    #[tokio::test]
    async fn no_ticket_yet_is_a_typed_error_naming_the_app_and_the_remedy() {
        let s = MemoryTicketStore::new();
        let a = app("feishu", "cli_a1b2");
        assert!(s.get(&a).await.unwrap().is_none());
        let e = s.require(&a).await.unwrap_err();
        assert_eq!(e.kind(), "ticket_missing");
        let text = e.to_string();
        for part in ["feishu", "cli_a1b2", "resend", "push"] {
            assert!(text.contains(part), "{part} missing from: {text}");
        }
        assert!(
            matches!(&e, Error::TicketMissing { platform, app } if platform.as_str() == "feishu" && app.as_str() == "cli_a1b2")
        );
    }

    #[tokio::test]
    async fn concurrent_offers_from_two_replicas_end_with_the_newest() {
        let s = Arc::new(MemoryTicketStore::new());
        let a = app("wecom", "ww1");
        // Two "replicas" receive the same 200 pushes in opposite orders.
        let forward = (0..200u64).collect::<Vec<_>>();
        let backward = forward.iter().rev().copied().collect::<Vec<_>>();
        let mut tasks = Vec::new();
        for order in [forward, backward] {
            let (s, a) = (s.clone(), a.clone());
            tasks.push(tokio::spawn(async move {
                let mut stored = 0;
                for i in order {
                    if s.offer(&a, ticket(&format!("t{i}"), i)).await.unwrap() == Offered::Stored {
                        stored += 1;
                    }
                    tokio::task::yield_now().await;
                }
                stored
            }));
        }
        let mut total = 0;
        for t in tasks {
            total += t.await.unwrap();
        }
        assert_eq!(s.require(&a).await.unwrap().value.expose(), "t199");
        // Every stored offer was strictly newer than the one before it.
        assert!((1..=200).contains(&total), "{total}");
    }

    #[tokio::test]
    async fn the_memory_store_is_bounded_and_drops_the_stalest_app() {
        let s = MemoryTicketStore::with_capacity(2);
        let received = |secs| UNIX_EPOCH + Duration::from_secs(secs);
        for (i, id) in ["a", "b", "c"].into_iter().enumerate() {
            let t = PushedTicket::new(id, at(i as u64), received(i as u64)).unwrap();
            s.offer(&app("wecom", id), t).await.unwrap();
        }
        assert_eq!(s.len(), 2);
        assert!(s.get(&app("wecom", "a")).await.unwrap().is_none());
        assert!(s.get(&app("wecom", "c")).await.unwrap().is_some());
    }

    #[test]
    fn tickets_never_print_and_bad_input_is_typed() {
        let t = ticket("s3cr3t-ticket-value", 1);
        let shown = format!("{t:?} {} {:?}", t.value, t.value);
        assert!(!shown.contains("s3cr3t"), "{shown}");
        assert!(shown.contains("***"), "{shown}");
        let too_long = "x".repeat(MAX_TICKET_LEN + 1);
        let e = PushedTicket::new(too_long, at(0), at(0)).unwrap_err();
        assert_eq!(e.reason, "too long");
        assert!(!e.to_string().contains("xxx"), "{e}");
        assert!(PushedTicket::new("", at(0), at(0)).is_err());
        assert!(OrgId::new("ding 1").is_err());
        assert!(TicketApp::new(PlatformName::new("wecom").unwrap(), "").is_err());
        // Before the epoch counts as 0, not a panic.
        let old = PushedTicket::new("t", UNIX_EPOCH - Duration::from_secs(5), at(0)).unwrap();
        assert_eq!(old.pushed_at_ms(), 0);
        assert_eq!(from_unix_ms(ticket("t", 7).pushed_at_ms()), at(7));
    }
}
