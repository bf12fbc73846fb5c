//! Fault injection: tell a fake to misbehave the way real platforms do.
//!
//! A [`Fault`] is platform-neutral. *Platform faults* ([`Fault::Code`], [`Fault::TokenInvalid`],
//! [`Fault::RateLimited`], …) are rendered by each fake in its own envelope with the HTTP status the
//! real platform uses (a DingTalk `oapi` endpoint answers HTTP 200 with `errcode`, an
//! `api.dingtalk.com` endpoint answers HTTP 4xx with a string `code`). *Transport faults*
//! ([`Fault::Delay`], [`Fault::Hang`], [`Fault::HttpStatus`], [`Fault::HtmlErrorPage`],
//! [`Fault::TruncatedBody`], [`Fault::OversizedBody`], [`Fault::GarbageBody`]) are the same on every
//! platform and are handled by the shared infrastructure ([`crate::server`]).
//!
//! Faults are armed per endpoint name (or for every endpoint with [`ANY_ENDPOINT`]) for a number of
//! [`Times`], and fire in the order they were armed. The request that meets a fault is still counted
//! (see [`crate::calls`]) and, unless the fault is [`Fault::Delay`] or [`Fault::TruncatedBody`], never
//! reaches the endpoint's logic: no code is consumed and no token is issued.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::sync::Mutex;
use std::time::Duration;

use crate::table::lock;

/// Endpoint name that arms a fault for every endpoint of a fake. Endpoint-specific faults are
/// consulted first. Every endpoint must be able to render the fault, so this is meant for
/// transport faults (a DingTalk login page cannot answer `Fault::TokenInvalid`).
pub const ANY_ENDPOINT: &str = "*";

/// 5 MiB: the size used for "oversized body" faults in the shared suites.
pub const FIVE_MIB: usize = 5 * 1024 * 1024;

/// Largest body [`Fault::OversizedBody`] may ask for (64 MiB), so a typo cannot exhaust memory.
pub const MAX_OVERSIZED_BODY: usize = 64 * 1024 * 1024;

/// One way an endpoint can misbehave.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Answer with this platform error code in the endpoint's envelope, e.g. `Fault::code(60020)`
    /// on a DingTalk `oapi` endpoint or `Fault::code("InvalidAuthentication")` on an
    /// `api.dingtalk.com` endpoint. Injection fails with [`FaultError::Unsupported`] when the
    /// endpoint's envelope cannot carry that kind of code (a string code on a numeric envelope).
    Code(String),
    /// A code that wraps a sub-code (DingTalk errcode 88 with `sub_code`, e.g. 88 + 40014).
    CodeWithSub {
        /// Outer code, e.g. `"88"`.
        code: String,
        /// Sub-code, e.g. `"40014"` or `"60011"`.
        sub_code: String,
    },
    /// The platform's "access token invalid" answer for this endpoint (DingTalk: 40014 / HTTP 400
    /// `InvalidAuthentication`), as if the token had been revoked for this one call.
    TokenInvalid,
    /// The platform's "authorization code invalid, used or expired" answer (DingTalk: 40078).
    CodeInvalid,
    /// The platform's JSON rate-limit answer (DingTalk: errcode 90002; HTTP 403 `Forbidden.AccessDenied.QpsLimitForAppkeyAndApi` on `api`).
    RateLimited,
    /// The platform's non-JSON rate-limit / ban page (DingTalk: the HTML page served for the 5-minute
    /// per-IP ban). Platforms without one render [`Fault::RateLimited`].
    RateLimitPage,
    /// The app lacks a permission/scope for this API (DingTalk: 88 + `sub_code` 60011 / HTTP 403
    /// `Forbidden.AccessDenied.AccessTokenPermissionDenied`).
    PermissionDenied,
    /// The caller's IP is not whitelisted (DingTalk: 60020).
    IpNotAllowed,
    /// The platform's transient "system busy" answer (DingTalk: errcode -1).
    SystemBusy,
    /// Answer normally, but only after this much real time (the fake clock is not involved).
    Delay(Duration),
    /// Never answer (until the fake shuts down): the client must time out.
    Hang,
    /// Answer with this HTTP status and a short plain-text body (e.g. 500, 502, 503).
    HttpStatus(u16),
    /// Answer HTTP 502 with an HTML error page, as a reverse proxy in front of the platform does.
    HtmlErrorPage,
    /// Process the request normally, then send only the first half of the JSON body (the request
    /// had its effect: a code in it is consumed).
    TruncatedBody,
    /// Answer HTTP 200 `application/json` with a body of this many bytes (see [`FIVE_MIB`]).
    OversizedBody(usize),
    /// Answer HTTP 200 `application/json` with random non-UTF-8 bytes.
    GarbageBody,
}

impl Fault {
    /// [`Fault::Code`] from anything printable: `Fault::code(40014)`, `Fault::code("InvalidAuthentication")`.
    pub fn code(code: impl fmt::Display) -> Self {
        Fault::Code(code.to_string())
    }

    /// [`Fault::CodeWithSub`] from anything printable: `Fault::code_with_sub(88, 40014)`.
    pub fn code_with_sub(code: impl fmt::Display, sub_code: impl fmt::Display) -> Self {
        Fault::CodeWithSub {
            code: code.to_string(),
            sub_code: sub_code.to_string(),
        }
    }

    /// True for faults the shared infrastructure renders identically on every platform.
    pub fn is_transport(&self) -> bool {
        matches!(
            self,
            Fault::Delay(_)
                | Fault::Hang
                | Fault::HttpStatus(_)
                | Fault::HtmlErrorPage
                | Fault::TruncatedBody
                | Fault::OversizedBody(_)
                | Fault::GarbageBody
        )
    }

    /// One fault of every platform-neutral kind (no [`Fault::Code`]/[`Fault::CodeWithSub`], which
    /// are platform specific), for suites that loop over "every fault". Uses a 50 ms delay,
    /// HTTP 503 and a [`FIVE_MIB`] body.
    pub fn catalog() -> Vec<Fault> {
        vec![
            Fault::TokenInvalid,
            Fault::CodeInvalid,
            Fault::RateLimited,
            Fault::RateLimitPage,
            Fault::PermissionDenied,
            Fault::IpNotAllowed,
            Fault::SystemBusy,
            Fault::Delay(Duration::from_millis(50)),
            Fault::Hang,
            Fault::HttpStatus(503),
            Fault::HtmlErrorPage,
            Fault::TruncatedBody,
            Fault::OversizedBody(FIVE_MIB),
            Fault::GarbageBody,
        ]
    }
}

/// How many requests an armed fault applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Times {
    /// The next matching request only.
    Once,
    /// The next `n` matching requests (`N(0)` arms nothing).
    N(u32),
    /// Every matching request until [`FaultPlan::clear`] (or the fake's `clear_faults`).
    Always,
}

/// Why a fault could not be armed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FaultError {
    /// No endpoint of this fake has that name (see the fake's `endpoints()`).
    UnknownEndpoint(String),
    /// The endpoint cannot produce that fault (e.g. a string error code on a numeric envelope).
    Unsupported {
        /// Endpoint name.
        endpoint: String,
        /// Debug rendering of the fault.
        fault: String,
        /// Why it is not supported.
        reason: String,
    },
}

impl fmt::Display for FaultError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FaultError::UnknownEndpoint(name) => write!(f, "unknown fake endpoint `{name}`"),
            FaultError::Unsupported {
                endpoint,
                fault,
                reason,
            } => write!(f, "endpoint `{endpoint}` cannot inject {fault}: {reason}"),
        }
    }
}

impl std::error::Error for FaultError {}

#[derive(Debug)]
struct Armed {
    fault: Fault,
    /// `None` = until cleared.
    remaining: Option<u32>,
}

/// The armed faults of one fake, keyed by endpoint name. Thread-safe.
#[derive(Debug, Default)]
pub struct FaultPlan {
    armed: Mutex<BTreeMap<String, VecDeque<Armed>>>,
}

impl FaultPlan {
    /// An empty plan.
    pub fn new() -> Self {
        Self::default()
    }

    /// Arm `fault` for `endpoint` (no validation here: the [`crate::server::Harness`] validates).
    pub fn arm(&self, endpoint: &str, fault: Fault, times: Times) {
        let remaining = match times {
            Times::Once => Some(1),
            Times::N(0) => return,
            Times::N(n) => Some(n),
            Times::Always => None,
        };
        lock(&self.armed)
            .entry(endpoint.to_owned())
            .or_default()
            .push_back(Armed { fault, remaining });
    }

    /// The fault the next request to `endpoint` must suffer, if any, counting it down.
    /// Endpoint-specific faults win over [`ANY_ENDPOINT`] ones.
    pub fn take(&self, endpoint: &str) -> Option<Fault> {
        let mut armed = lock(&self.armed);
        for key in [endpoint, ANY_ENDPOINT] {
            let Some(queue) = armed.get_mut(key) else {
                continue;
            };
            let Some(front) = queue.front_mut() else {
                continue;
            };
            let fault = front.fault.clone();
            if let Some(left) = front.remaining.as_mut() {
                *left = left.saturating_sub(1);
                if *left == 0 {
                    queue.pop_front();
                }
            }
            return Some(fault);
        }
        None
    }

    /// Number of armed entries (an `Always` entry counts once).
    pub fn pending(&self) -> usize {
        lock(&self.armed).values().map(VecDeque::len).sum()
    }

    /// Disarm everything.
    pub fn clear(&self) {
        lock(&self.armed).clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn once_n_and_always_count_down_in_order() {
        let plan = FaultPlan::new();
        plan.arm("a", Fault::Hang, Times::Once);
        plan.arm("a", Fault::GarbageBody, Times::N(2));
        plan.arm("a", Fault::HtmlErrorPage, Times::Always);
        assert_eq!(plan.take("a"), Some(Fault::Hang));
        assert_eq!(plan.take("a"), Some(Fault::GarbageBody));
        assert_eq!(plan.take("a"), Some(Fault::GarbageBody));
        for _ in 0..5 {
            assert_eq!(plan.take("a"), Some(Fault::HtmlErrorPage));
        }
        assert_eq!(plan.take("b"), None);
        plan.clear();
        assert_eq!(plan.take("a"), None);
        assert_eq!(plan.pending(), 0);
    }

    #[test]
    fn any_endpoint_applies_after_specific_ones() {
        let plan = FaultPlan::new();
        plan.arm(ANY_ENDPOINT, Fault::RateLimited, Times::N(2));
        plan.arm("x", Fault::SystemBusy, Times::Once);
        assert_eq!(plan.take("x"), Some(Fault::SystemBusy));
        assert_eq!(plan.take("x"), Some(Fault::RateLimited));
        assert_eq!(plan.take("y"), Some(Fault::RateLimited));
        assert_eq!(plan.take("y"), None);
        plan.arm("z", Fault::Hang, Times::N(0));
        assert_eq!(plan.pending(), 0);
    }

    #[test]
    fn catalog_has_no_platform_specific_codes() {
        assert!(
            Fault::catalog()
                .iter()
                .all(|f| !matches!(f, Fault::Code(_) | Fault::CodeWithSub { .. }))
        );
        assert_eq!(Fault::code(40014), Fault::Code("40014".into()));
        assert!(Fault::Hang.is_transport());
        assert!(!Fault::TokenInvalid.is_transport());
    }
}
