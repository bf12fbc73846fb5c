//! Who the client is, and how much it may ask: the client address behind trusted proxies, and the
//! rate limits of `rate_limits` (GCRA limiters of the `governor` crate) and the per-tenant cap on
//! code exchanges that reach a platform.
//!
//! Every limiter is keyed by something bounded: client limiters by address (IPv4 address, IPv6
//! /64, so one host cannot mint keys by rotating through its prefix), swept of idle keys every
//! minute; the upstream limiters by configured (tenant, platform), which the request resolved
//! before it gets here — an invented tenant never creates a key.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::{GatewayConfig, Rate};
use crate::error::ApiError;

/// The client address of a request, as the rate limits and logs see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

impl ClientAddr {
    /// The client: the TCP `peer`, or — behind `hops` trusted proxies that each append the address
    /// they saw to `X-Forwarded-For` — the entry `hops` places from the right. Entries left of it
    /// were written by the client and are never believed; a header with fewer entries than
    /// proxies, or an entry that is not an IP address, leaves the peer as the client.
    ///
    /// ```
    /// use axum::http::HeaderMap;
    /// use unilogin_gateway::limits::ClientAddr;
    /// let mut h = HeaderMap::new();
    /// h.insert("x-forwarded-for", "6.6.6.6, 203.0.113.7".parse().unwrap());
    /// let peer = "10.0.0.2".parse().unwrap();
    /// // One proxy: it appended the address it saw (203.0.113.7); 6.6.6.6 is the client's claim.
    /// assert_eq!(ClientAddr::resolve(&h, Some(peer), 1).0.to_string(), "203.0.113.7");
    /// assert_eq!(ClientAddr::resolve(&h, Some(peer), 0).0, peer);
    /// ```
    pub fn resolve(headers: &HeaderMap, peer: Option<IpAddr>, hops: usize) -> Self {
        let peer = peer.unwrap_or(IpAddr::from([0, 0, 0, 0]));
        if hops == 0 {
            return Self(canonical(peer));
        }
        let entries: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        let ip = entries
            .len()
            .checked_sub(hops)
            .and_then(|i| entries.get(i))
            .and_then(|e| parse_forwarded(e))
            .unwrap_or(peer);
        Self(canonical(ip))
    }

    /// The rate-limit key: the IPv4 address, or the /64 of an IPv6 address.
    pub fn key(&self) -> IpAddr {
        match self.0 {
            IpAddr::V4(v4) => IpAddr::V4(v4),
            IpAddr::V6(v6) => {
                let s = v6.segments();
                IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        }
    }
}

/// An `X-Forwarded-For` entry: an address, possibly with a port (`1.2.3.4:5`, `[::1]:5`).
fn parse_forwarded(entry: &str) -> Option<IpAddr> {
    if entry.len() > 64 {
        return None;
    }
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()))
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// Which per-client limit a request counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bucket {
    /// `GET …/login`.
    Login,
    /// `POST …/code`, `GET …/callback`.
    Code,
    /// `GET`/`POST /events/…` (platform callbacks).
    Events,
    /// Everything else.
    Other,
}

/// The gateway's limiters.
pub struct Limiters {
    login_client: DefaultKeyedRateLimiter<IpAddr>,
    login_global: DefaultDirectRateLimiter,
    code_client: DefaultKeyedRateLimiter<IpAddr>,
    other_client: DefaultKeyedRateLimiter<IpAddr>,
    events_client: DefaultKeyedRateLimiter<IpAddr>,
    upstream: DefaultKeyedRateLimiter<String>,
    concurrency: Mutex<HashMap<String, Arc<Semaphore>>>,
    concurrency_per_tenant: usize,
}

impl std::fmt::Debug for Limiters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Limiters")
            .field("client_keys", &self.client_keys())
            .finish_non_exhaustive()
    }
}

fn quota(rate: &Rate) -> Quota {
    // Validated with the configuration; a fallback keeps this total.
    rate.quota()
        .unwrap_or_else(|_| Quota::per_second(NonZeroU32::MIN))
}

/// A 429 answer with `Retry-After`.
pub fn too_many(retry_after: Duration, what: &str) -> ApiError {
    ApiError {
        retry_after: Some(retry_after.max(Duration::from_secs(1))),
        ..ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_requests",
            format!("too many {what}; retry later"),
        )
    }
}

impl Limiters {
    /// The limiters of `config.rate_limits`.
    pub fn new(config: &GatewayConfig) -> Self {
        let r = &config.rate_limits;
        Self {
            login_client: governor::RateLimiter::keyed(quota(&r.login_per_client)),
            login_global: governor::RateLimiter::direct(quota(&r.login_global)),
            code_client: governor::RateLimiter::keyed(quota(&r.code_per_client)),
            other_client: governor::RateLimiter::keyed(quota(&r.other_per_client)),
            events_client: governor::RateLimiter::keyed(quota(&r.events_per_client)),
            upstream: governor::RateLimiter::keyed(quota(&r.upstream_per_tenant)),
            concurrency: Mutex::new(HashMap::new()),
            concurrency_per_tenant: r.upstream_concurrency_per_tenant.max(1),
        }
    }

    fn wait(not_until: &governor::NotUntil<<DefaultClock as Clock>::Instant>) -> Duration {
        not_until.wait_time_from(DefaultClock::default().now())
    }

    /// Counts one request of `client` against its bucket (and login starts against the global
    /// limit, which is only charged once the client's own limit let the request through).
    pub fn check_client(&self, bucket: Bucket, client: ClientAddr) -> Result<(), ApiError> {
        let key = client.key();
        let (limiter, what) = match bucket {
            Bucket::Login => (&self.login_client, "login starts"),
            Bucket::Code => (&self.code_client, "login attempts"),
            Bucket::Other => (&self.other_client, "requests"),
            Bucket::Events => (&self.events_client, "event callbacks"),
        };
        limiter
            .check_key(&key)
            .map_err(|n| too_many(Self::wait(&n), what))?;
        if bucket == Bucket::Login {
            self.login_global
                .check()
                .map_err(|n| too_many(Self::wait(&n), "login starts on this server"))?;
        }
        Ok(())
    }

    /// Admits one code exchange of a configured `(tenant, platform)` to its platform: within the
    /// per-tenant rate, and one of at most `upstream_concurrency_per_tenant` at once (waiting up
    /// to `wait` for a slot). Hold the permit until the exchange is over.
    pub async fn admit_upstream(
        &self,
        tenant: &str,
        platform: &str,
        wait: Duration,
    ) -> Result<OwnedSemaphorePermit, ApiError> {
        let key = format!("{tenant}/{platform}");
        let semaphore = {
            let mut map = self
                .concurrency
                .lock()
                .map_err(|_| too_many(Duration::from_secs(1), "logins"))?;
            Arc::clone(
                map.entry(key.clone())
                    .or_insert_with(|| Arc::new(Semaphore::new(self.concurrency_per_tenant))),
            )
        };
        let permit = tokio::time::timeout(wait, semaphore.acquire_owned())
            .await
            .ok()
            .and_then(Result::ok)
            .ok_or_else(|| too_many(Duration::from_secs(1), "logins for this tenant at once"))?;
        self.upstream
            .check_key(&key)
            .map_err(|n| too_many(Self::wait(&n), "logins for this tenant"))?;
        Ok(permit)
    }

    /// Forgets idle client keys (every limiter whose key would be allowed a full burst again).
    pub fn sweep(&self) {
        for l in [
            &self.login_client,
            &self.code_client,
            &self.other_client,
            &self.events_client,
        ] {
            l.retain_recent();
            l.shrink_to_fit();
        }
        self.upstream.retain_recent();
    }

    /// Client keys currently remembered, over every per-client limiter.
    pub fn client_keys(&self) -> usize {
        self.login_client.len()
            + self.code_client.len()
            + self.other_client.len()
            + self.events_client.len()
    }

    /// Forgets the concurrency slots of targets no longer configured.
    pub fn retain_targets(&self, keep: impl Fn(&str) -> bool) {
        if let Ok(mut map) = self.concurrency.lock() {
            map.retain(|k, s| keep(k) || s.available_permits() < self.concurrency_per_tenant);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(xff: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in xff {
            h.append("x-forwarded-for", v.parse().unwrap());
        }
        h
    }

    #[test]
    fn the_client_is_counted_from_the_right() {
        let peer: IpAddr = "10.0.0.9".parse().unwrap();
        let h = headers(&["1.1.1.1, 2.2.2.2", "3.3.3.3"]);
        let at = |hops| ClientAddr::resolve(&h, Some(peer), hops).0.to_string();
        assert_eq!(at(0), "10.0.0.9");
        assert_eq!(at(1), "3.3.3.3");
        assert_eq!(at(2), "2.2.2.2");
        assert_eq!(at(3), "1.1.1.1");
        // Fewer entries than proxies, or garbage: the peer.
        assert_eq!(at(4), "10.0.0.9");
        let h = headers(&["not-an-ip"]);
        assert_eq!(
            ClientAddr::resolve(&h, Some(peer), 1).0.to_string(),
            "10.0.0.9"
        );
        let h = headers(&["[2001:db8::1]:443"]);
        assert_eq!(
            ClientAddr::resolve(&h, Some(peer), 1).0.to_string(),
            "2001:db8::1"
        );
    }

    #[test]
    fn ipv6_is_keyed_per_64_and_mapped_v4_as_v4() {
        let a = ClientAddr("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = ClientAddr("2001:db8:1:2:bbbb::2".parse().unwrap());
        let c = ClientAddr("2001:db8:1:3::1".parse().unwrap());
        assert_eq!(a.key(), b.key());
        assert_ne!(a.key(), c.key());
        let m = ClientAddr::resolve(
            &HeaderMap::new(),
            Some("::ffff:192.0.2.1".parse().unwrap()),
            0,
        );
        assert_eq!(m.0.to_string(), "192.0.2.1");
    }

    fn limiters(yaml: &str) -> Limiters {
        Limiters::new(&GatewayConfig::from_yaml(yaml).unwrap())
    }

    #[test]
    fn one_client_is_limited_others_are_not() {
        let l = limiters("rate_limits: {login_per_client: {per_minute: 1, burst: 3}}");
        let flood = ClientAddr("198.51.100.1".parse().unwrap());
        let other = ClientAddr("198.51.100.2".parse().unwrap());
        for _ in 0..3 {
            l.check_client(Bucket::Login, flood).unwrap();
        }
        let e = l.check_client(Bucket::Login, flood).unwrap_err();
        assert_eq!(e.status, StatusCode::TOO_MANY_REQUESTS);
        assert!(e.retry_after.unwrap() >= Duration::from_secs(1));
        l.check_client(Bucket::Login, other).unwrap();
        // Buckets are separate.
        l.check_client(Bucket::Code, flood).unwrap();
    }

    #[test]
    fn the_global_login_limit_holds_over_many_clients() {
        let l = limiters(
            "rate_limits: {login_global: {per_minute: 1, burst: 5}, login_per_client: {per_minute: 1, burst: 1}}",
        );
        let mut ok = 0;
        for i in 0..50u8 {
            let c = ClientAddr(IpAddr::from([203, 0, 113, i]));
            ok += usize::from(l.check_client(Bucket::Login, c).is_ok());
        }
        assert_eq!(ok, 5);
        assert_eq!(l.client_keys(), 50);
    }

    #[tokio::test]
    async fn upstream_admission_caps_rate_and_concurrency_per_tenant() {
        let l = limiters(
            "rate_limits: {upstream_per_tenant: {per_minute: 1, burst: 3}, upstream_concurrency_per_tenant: 2}",
        );
        let short = Duration::from_millis(20);
        let a = l.admit_upstream("acme", "p", short).await.unwrap();
        let _b = l.admit_upstream("acme", "p", short).await.unwrap();
        // Two running: the third waits, then is refused.
        let e = l.admit_upstream("acme", "p", short).await.unwrap_err();
        assert_eq!(e.status, StatusCode::TOO_MANY_REQUESTS);
        drop(a);
        let _c = l.admit_upstream("acme", "p", short).await.unwrap();
        // Rate: 3 admitted so far, the burst is spent.
        drop(_c);
        let e = l.admit_upstream("acme", "p", short).await.unwrap_err();
        assert_eq!(e.kind, "too_many_requests");
        // Another tenant is unaffected.
        let _d = l.admit_upstream("other", "p", short).await.unwrap();
    }
}
