//! Prometheus metrics (`GET /metrics`, OpenMetrics text):
//!
//! | metric | labels | what |
//! |---|---|---|
//! | `unilogin_logins_total` | `tenant`, `platform`, `flow`, `outcome` | finished logins; `outcome` is `success` or the error kind |
//! | `unilogin_upstream_login_seconds` | `platform`, `flow` | time spent in the platform calls of one login (histogram) |
//! | `unilogin_token_cache_*_total` | — | the app-token cache's counters (L1/L2 hits, refreshes, failures, lock waits, store errors) |
//! | `unilogin_token_cache_entries` | — | tokens held in memory |
//! | `unilogin_config_reloads_total`, `unilogin_config_reload_failures_total` | — | tenant configuration reads, and those that failed as a whole (the last good configuration stayed) |
//! | `unilogin_config_entries`, `unilogin_config_rejected_entries` | — | tenant entries served, and entries whose stored content is rejected (each keeps its last good configuration) |
//! | `unilogin_config_last_reload_ok` | — | 1 when the latest read worked and accepted every entry, else 0 |
//! | `unilogin_events_total` | `platform`, `outcome` | platform callbacks: `accepted`, `replay`, `handshake`, `ignored` (no directory change), `queue_full`, `store_unavailable`, `not_found`, or the error kind (`bad_signature`, `stale_timestamp`…) |
//! | `unilogin_event_changes_total` | `platform`, `kind` | directory changes applied (`left`, `disabled`, `updated`) |
//! | `unilogin_event_apply_seconds` | `platform` | from the callback's arrival to the change applied (histogram) |
//! | `unilogin_event_revocations_unshared_total` | `platform` | leaver revocations in force on one replica only (the shared list was unreachable; queued) |
//! | `unilogin_webhook_attempts_total` | `outcome` | webhook attempts: `delivered`, `retrying`, `failed` |
//! | `unilogin_webhook_deliveries_total` | `outcome` | webhook notices: `delivered`, `failed` (gave up), `dropped` (queue full) |
//!
//! Tenant and platform labels only take configured values (a request for an unknown tenant is
//! counted under `-`), so clients cannot grow the label space.

use std::fmt;
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use unilogin::Sso;

/// Labels of `unilogin_logins_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LoginLabels {
    /// Tenant (or `-`).
    pub tenant: String,
    /// Platform (or `-`).
    pub platform: String,
    /// `h5` or `web`.
    pub flow: String,
    /// `success` or an error kind.
    pub outcome: String,
}

/// Metric handles of one (tenant, platform, flow) (see [`Metrics::login_handles`]).
#[derive(Debug, Clone)]
pub struct LoginHandles {
    /// `unilogin_logins_total{outcome="success"}`.
    pub success: Counter,
    /// `unilogin_upstream_login_seconds`.
    pub upstream: Histogram,
}

/// Labels of `unilogin_upstream_login_seconds`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UpstreamLabels {
    /// Platform.
    pub platform: String,
    /// `h5` or `web`.
    pub flow: String,
}

fn latency_histogram() -> Histogram {
    // 1 ms … ~16 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

type LatencyFamily = Family<UpstreamLabels, Histogram, fn() -> Histogram>;

/// Labels of the event metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EventLabels {
    /// Platform (a registered name, or `-`).
    pub platform: String,
    /// The outcome or the change kind.
    pub outcome: String,
}

/// Labels of the per-platform event metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PlatformLabel {
    /// Platform.
    pub platform: String,
}

/// Labels of the webhook metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    /// The outcome.
    pub outcome: String,
}

#[derive(Clone)]
struct EventMetrics {
    events: Family<EventLabels, Counter>,
    changes: Family<EventLabels, Counter>,
    apply: Family<PlatformLabel, Histogram, fn() -> Histogram>,
    unshared: Family<PlatformLabel, Counter>,
    attempts: Family<OutcomeLabel, Counter>,
    deliveries: Family<OutcomeLabel, Counter>,
}

impl EventMetrics {
    fn register(registry: &mut Registry) -> Self {
        let m = Self {
            events: Family::default(),
            changes: Family::default(),
            apply: Family::new_with_constructor(latency_histogram),
            unshared: Family::default(),
            attempts: Family::default(),
            deliveries: Family::default(),
        };
        registry.register(
            "unilogin_events",
            "Platform event callbacks by platform and outcome",
            m.events.clone(),
        );
        registry.register(
            "unilogin_event_changes",
            "Directory changes applied, by platform and kind",
            m.changes.clone(),
        );
        registry.register(
            "unilogin_event_apply_seconds",
            "From a callback's arrival to its change applied",
            m.apply.clone(),
        );
        registry.register(
            "unilogin_event_revocations_unshared",
            "Leaver revocations in force on this replica only (shared list unreachable)",
            m.unshared.clone(),
        );
        registry.register(
            "unilogin_webhook_attempts",
            "Webhook attempts by outcome",
            m.attempts.clone(),
        );
        registry.register(
            "unilogin_webhook_deliveries",
            "Webhook notices by final outcome",
            m.deliveries.clone(),
        );
        m
    }
}

/// The gateway's metrics. Cheap to clone.
#[derive(Clone)]
pub struct Metrics {
    registry: std::sync::Arc<Registry>,
    /// The tenant configuration whose reloads are reported (set once the source exists).
    config: std::sync::Arc<std::sync::OnceLock<std::sync::Arc<crate::tenants::Tenants>>>,
    logins: Family<LoginLabels, Counter>,
    upstream: LatencyFamily,
    events: EventMetrics,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

struct TokenCacheCollector {
    sso: Sso,
}

impl fmt::Debug for TokenCacheCollector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenCacheCollector")
    }
}

impl Collector for TokenCacheCollector {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), fmt::Error> {
        let s = self.sso.token_cache().stats();
        let counters = [
            (
                "unilogin_token_cache_l1_hits",
                "App-token requests answered from memory.",
                s.l1_hits,
            ),
            (
                "unilogin_token_cache_l2_hits",
                "App tokens taken from the shared store.",
                s.l2_hits,
            ),
            (
                "unilogin_token_cache_refreshes",
                "Upstream app-token requests.",
                s.refreshes,
            ),
            (
                "unilogin_token_cache_refresh_failures",
                "Failed upstream app-token requests.",
                s.refresh_failures,
            ),
            (
                "unilogin_token_cache_lock_waits",
                "Waits for a refresh already running here or in another replica.",
                s.lock_waits,
            ),
            (
                "unilogin_token_cache_store_errors",
                "Failed or timed-out shared store operations.",
                s.store_errors,
            ),
        ];
        for (name, help, value) in counters {
            let c = ConstCounter::new(value);
            let m = encoder.encode_descriptor(name, help, None, c.metric_type())?;
            c.encode(m)?;
        }
        let g = ConstGauge::new(i64::try_from(s.entries).unwrap_or(i64::MAX));
        let m = encoder.encode_descriptor(
            "unilogin_token_cache_entries",
            "App tokens held in memory.",
            None,
            g.metric_type(),
        )?;
        g.encode(m)
    }
}

impl Metrics {
    /// Metrics for a gateway over `sso` (its token cache is read at every scrape).
    pub fn new(sso: &Sso) -> Self {
        let mut registry = Registry::default();
        let logins = Family::<LoginLabels, Counter>::default();
        registry.register(
            "unilogin_logins",
            "Finished logins by tenant, platform, flow and outcome",
            logins.clone(),
        );
        let upstream: LatencyFamily = Family::new_with_constructor(latency_histogram);
        registry.register(
            "unilogin_upstream_login_seconds",
            "Time spent in the platform calls of one login",
            upstream.clone(),
        );
        let events = EventMetrics::register(&mut registry);
        registry.register_collector(Box::new(TokenCacheCollector { sso: sso.clone() }));
        let config = std::sync::Arc::default();
        registry.register_collector(Box::new(crate::tenants::ConfigCollector::new(&config)));
        Self {
            registry: std::sync::Arc::new(registry),
            config,
            logins,
            upstream,
            events,
        }
    }

    /// Counts one platform callback.
    pub fn event(&self, platform: &str, outcome: &str) {
        self.events
            .events
            .get_or_create(&EventLabels {
                platform: platform.to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
    }

    /// Counts one applied directory change and its delay since the callback arrived.
    pub fn event_applied(&self, platform: &str, kind: &str, since_arrival: Duration) {
        self.events
            .changes
            .get_or_create(&EventLabels {
                platform: platform.to_string(),
                outcome: kind.to_string(),
            })
            .inc();
        self.events
            .apply
            .get_or_create(&PlatformLabel {
                platform: platform.to_string(),
            })
            .observe(since_arrival.as_secs_f64());
    }

    /// Counts a leaver revocation that did not reach the shared list.
    pub fn event_revocation_unshared(&self, platform: &str) {
        self.events
            .unshared
            .get_or_create(&PlatformLabel {
                platform: platform.to_string(),
            })
            .inc();
    }

    /// Counts one webhook attempt.
    pub fn webhook_attempt(&self, outcome: &str) {
        self.events
            .attempts
            .get_or_create(&OutcomeLabel {
                outcome: outcome.to_string(),
            })
            .inc();
    }

    /// Counts one webhook notice's final outcome.
    pub fn webhook_delivery(&self, outcome: &str) {
        self.events
            .deliveries
            .get_or_create(&OutcomeLabel {
                outcome: outcome.to_string(),
            })
            .inc();
    }

    /// Reports the reloads of `tenants` (`unilogin_config_*`); a second call is ignored.
    pub fn watch_config(&self, tenants: std::sync::Arc<crate::tenants::Tenants>) {
        let _ = self.config.set(tenants);
    }

    /// Counts one finished login.
    pub fn login(&self, tenant: &str, platform: &str, flow: &str, outcome: &str) {
        self.logins
            .get_or_create(&LoginLabels {
                tenant: tenant.to_string(),
                platform: platform.to_string(),
                flow: flow.to_string(),
                outcome: outcome.to_string(),
            })
            .inc();
    }

    /// The counter of successful logins and the upstream-time histogram of one
    /// (tenant, platform, flow): looked up once per configuration revision and kept with the
    /// prepared handle, so that a login records its metrics without building label sets.
    pub fn login_handles(&self, tenant: &str, platform: &str, flow: &str) -> LoginHandles {
        let success = self
            .logins
            .get_or_create(&LoginLabels {
                tenant: tenant.to_string(),
                platform: platform.to_string(),
                flow: flow.to_string(),
                outcome: "success".to_string(),
            })
            .clone();
        let upstream = self
            .upstream
            .get_or_create(&UpstreamLabels {
                platform: platform.to_string(),
                flow: flow.to_string(),
            })
            .clone();
        LoginHandles { success, upstream }
    }

    /// Records the upstream time of one login.
    pub fn upstream(&self, platform: &str, flow: &str, elapsed: Duration) {
        self.upstream
            .get_or_create(&UpstreamLabels {
                platform: platform.to_string(),
                flow: flow.to_string(),
            })
            .observe(elapsed.as_secs_f64());
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> Result<String, fmt::Error> {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        Ok(out)
    }
}
