//! The app's webhook: `user.left`, `user.disabled` and `user.updated` notices, signed following
//! the [Standard Webhooks](https://www.standardwebhooks.com/) scheme, sent with retries.
//!
//! - **Payload**: JSON `{"type", "tenant", "platform", "user_id"?, "union_id"?, "open_id"?,
//!   "org_id"?, "occurred_at"}` (RFC 3339, UTC). Only the ids the event named: never a secret,
//!   never anything else of the decrypted event.
//! - **Headers**: `webhook-id` (`msg_…`, the same for every attempt of one notice: receivers
//!   de-duplicate on it), `webhook-timestamp` (Unix seconds of the attempt),
//!   `webhook-signature: v1,<base64 HMAC-SHA256(key, "{id}.{timestamp}.{body}")>`. The key is the
//!   base64 after `whsec_` when the secret is written that way, else the secret's bytes.
//! - **Retries**: a transport error, a timeout, a 5xx, 408 or 429 is retried after an
//!   exponential back-off (`initial_backoff_ms` doubled per attempt, at most `max_backoff_ms`,
//!   with jitter: a random 50–100 % of it), up to `max_attempts` attempts; another 4xx is final.
//! - **Queue**: bounded (`queue_capacity`); when full, the **oldest** waiting notice is dropped
//!   (logged, counted as `unilogin_webhook_deliveries_total{outcome="dropped"}`).
//! - **Delivery log**: the last `log_size` attempts ([`Webhook::deliveries`], served as
//!   `GET /webhook/deliveries` on the operations listener).

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use aws_lc_rs::hmac;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;
use tokio::sync::{Notify, Semaphore};
use unilogin::config::SecretRef;
use unilogin::events::PersonIds;
use unilogin::{Error, Result};
use url::Url;

use crate::config::WebhookConfig;
use crate::metrics::Metrics;

/// What a notice says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoticeKind {
    /// The person left (or was removed from) the organisation.
    Left,
    /// The person was disabled.
    Disabled,
    /// The person's profile changed.
    Updated,
}

impl NoticeKind {
    /// `user.left`, `user.disabled` or `user.updated`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Left => "user.left",
            Self::Disabled => "user.disabled",
            Self::Updated => "user.updated",
        }
    }
}

/// One notice for the app.
#[derive(Debug, Clone)]
pub struct Notice {
    /// What happened.
    pub kind: NoticeKind,
    /// The tenant.
    pub tenant: String,
    /// The platform.
    pub platform: String,
    /// Who (`Debug` hides the values).
    pub ids: PersonIds,
    /// When the gateway applied the event.
    pub occurred_at: SystemTime,
}

#[derive(Serialize)]
struct Payload<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    tenant: &'a str,
    platform: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    user_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    union_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    open_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    org_id: Option<&'a str>,
    occurred_at: String,
}

impl Notice {
    /// The JSON body sent for this notice.
    pub fn body(&self) -> String {
        let payload = Payload {
            kind: self.kind.as_str(),
            tenant: &self.tenant,
            platform: &self.platform,
            user_id: self.ids.user_id.as_deref(),
            union_id: self.ids.union_id.as_deref(),
            open_id: self.ids.open_id.as_deref(),
            org_id: self.ids.org_id.as_deref(),
            occurred_at: rfc3339(self.occurred_at),
        };
        serde_json::to_string(&payload).unwrap_or_default()
    }
}

/// `2026-12-02T03:04:05Z` (UTC, whole seconds).
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// The signing key of a secret: the base64 after `whsec_`, else the secret's bytes.
pub fn signing_key(secret: &str) -> std::result::Result<Vec<u8>, &'static str> {
    let key = match secret.strip_prefix("whsec_") {
        Some(b64) => STANDARD
            .decode(b64)
            .map_err(|_| "a `whsec_` secret must be followed by base64")?,
        None => secret.as_bytes().to_vec(),
    };
    if key.len() < 16 {
        return Err("the signing key must be at least 16 bytes (use a random one)");
    }
    Ok(key)
}

/// The `webhook-signature` value of `body` with message `id` at `timestamp` (Unix seconds).
///
/// ```
/// use unilogin_gateway::webhook::{sign, signing_key};
/// // The Standard Webhooks specification's example.
/// let key = signing_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
/// let body = r#"{"test": 2432232314}"#;
/// assert_eq!(
///     sign(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
///     "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
/// );
/// ```
pub fn sign(key: &[u8], id: &str, timestamp: u64, body: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, key);
    let tag = hmac::sign(&key, format!("{id}.{timestamp}.{body}").as_bytes());
    format!("v1,{}", STANDARD.encode(tag.as_ref()))
}

/// One endpoint and its key.
#[derive(Clone)]
struct Target {
    url: Url,
    key: Arc<[u8]>,
}

/// One attempt of a delivery, as the delivery log keeps it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Attempt {
    /// The notice's `webhook-id`.
    pub id: String,
    /// `user.left`, `user.disabled`, `user.updated`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The tenant.
    pub tenant: String,
    /// The platform.
    pub platform: String,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// The HTTP status the endpoint answered, if it answered.
    pub status: Option<u16>,
    /// `delivered`, `retrying`, `failed` (final), or `dropped` (queue full, never sent).
    pub outcome: &'static str,
    /// Why it failed, in fixed words (`timeout`, `connect`, `status`…).
    pub error: Option<&'static str>,
    /// When the attempt started (Unix ms).
    pub at_ms: u64,
    /// How long it took (ms).
    pub elapsed_ms: u64,
}

struct Delivery {
    id: String,
    notice: Notice,
    body: String,
    target: Target,
}

/// Retry settings.
#[derive(Debug, Clone, Copy)]
struct Retry {
    timeout: Duration,
    max_attempts: u32,
    initial: Duration,
    max: Duration,
}

/// The webhook sender (see the [module documentation](self)).
pub struct Webhook {
    default: Option<Target>,
    tenants: BTreeMap<String, Target>,
    queue: Mutex<VecDeque<Delivery>>,
    capacity: usize,
    wake: Arc<Notify>,
    log: Mutex<VecDeque<Attempt>>,
    log_size: usize,
    client: reqwest::Client,
    retry: Retry,
    concurrency: Arc<Semaphore>,
    metrics: Metrics,
}

impl fmt::Debug for Webhook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Webhook")
            .field("default", &self.default.is_some())
            .field("tenants", &self.tenants.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Drop for Webhook {
    fn drop(&mut self) {
        // Lets the dispatcher see that the sender is gone.
        self.wake.notify_one();
    }
}

fn resolve(secret: &str, field: &str) -> Result<Arc<[u8]>> {
    let secret = SecretRef::parse(secret)
        .resolve(None)
        .map_err(|why| Error::config(None, None, field, why))?;
    signing_key(secret.expose())
        .map(Arc::from)
        .map_err(|why| Error::config(None, None, field, why))
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

impl Webhook {
    /// The webhook of `config` (secrets resolved now), its dispatcher started (inside a tokio
    /// runtime). Without any URL configured it only counts nothing and sends nothing.
    pub fn start(config: &WebhookConfig, metrics: Metrics) -> Result<Arc<Self>> {
        let default = match (&config.url, &config.secret) {
            (Some(url), Some(secret)) => Some(Target {
                url: url.clone(),
                key: resolve(secret, "webhook.secret")?,
            }),
            _ => None,
        };
        let mut tenants = BTreeMap::new();
        for (tenant, t) in &config.tenants {
            let key = resolve(&t.secret, &format!("webhook.tenants.{tenant}.secret"))?;
            tenants.insert(
                tenant.clone(),
                Target {
                    url: t.url.clone(),
                    key,
                },
            );
        }
        let timeout = Duration::from_millis(config.timeout_ms);
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| Error::Internal(format!("webhook HTTP client: {e}")))?;
        let webhook = Arc::new(Self {
            default,
            tenants,
            queue: Mutex::new(VecDeque::new()),
            capacity: config.queue_capacity.max(1),
            wake: Arc::new(Notify::new()),
            log: Mutex::new(VecDeque::new()),
            log_size: config.log_size.max(1),
            client,
            retry: Retry {
                timeout,
                max_attempts: config.max_attempts.max(1),
                initial: Duration::from_millis(config.initial_backoff_ms),
                max: Duration::from_millis(config.max_backoff_ms),
            },
            concurrency: Arc::new(Semaphore::new(config.concurrency.max(1))),
            metrics,
        });
        tokio::spawn(dispatch(Arc::downgrade(&webhook), webhook.wake.clone()));
        Ok(webhook)
    }

    /// Whether a notice for `tenant` would be sent anywhere.
    pub fn configured_for(&self, tenant: &str) -> bool {
        self.tenants.contains_key(tenant) || self.default.is_some()
    }

    /// Queues a notice (nothing when no endpoint is configured for its tenant). A full queue
    /// drops its oldest waiting notice.
    pub fn enqueue(&self, notice: Notice) {
        let Some(target) = self
            .tenants
            .get(&notice.tenant)
            .or(self.default.as_ref())
            .cloned()
        else {
            return;
        };
        let delivery = Delivery {
            id: format!("msg_{}", unilogin::web_login::random_hex(16)),
            body: notice.body(),
            notice,
            target,
        };
        let dropped = {
            let Ok(mut q) = self.queue.lock() else {
                return;
            };
            let dropped = (q.len() >= self.capacity).then(|| q.pop_front()).flatten();
            q.push_back(delivery);
            dropped
        };
        if let Some(d) = dropped {
            tracing::warn!(
                id = %d.id,
                tenant = %d.notice.tenant,
                kind = d.notice.kind.as_str(),
                "webhook queue full: the oldest waiting notice was dropped"
            );
            self.metrics.webhook_delivery("dropped");
            self.record(&d, 0, None, "dropped", Some("queue_full"), Instant::now());
        }
        self.wake.notify_one();
    }

    /// The delivery log: the last attempts, oldest first.
    pub fn deliveries(&self) -> Vec<Attempt> {
        self.log
            .lock()
            .map(|l| l.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Notices waiting to be sent.
    pub fn queued(&self) -> usize {
        self.queue.lock().map(|q| q.len()).unwrap_or(0)
    }

    fn record(
        &self,
        d: &Delivery,
        attempt: u32,
        status: Option<u16>,
        outcome: &'static str,
        error: Option<&'static str>,
        started: Instant,
    ) {
        let entry = Attempt {
            id: d.id.clone(),
            kind: d.notice.kind.as_str(),
            tenant: d.notice.tenant.clone(),
            platform: d.notice.platform.clone(),
            attempt,
            status,
            outcome,
            error,
            at_ms: unix_ms(SystemTime::now())
                .saturating_sub(u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX)),
            elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        };
        if let Ok(mut log) = self.log.lock() {
            if log.len() >= self.log_size {
                log.pop_front();
            }
            log.push_back(entry);
        }
    }

    /// The back-off before attempt `next` (2, 3, …): exponential, capped, 50–100 % jitter.
    fn backoff(&self, next: u32) -> Duration {
        let exp = self
            .retry
            .initial
            .saturating_mul(1u32 << (next.saturating_sub(2)).min(20))
            .min(self.retry.max);
        let mut b = [0u8; 2];
        let _ = aws_lc_rs::rand::fill(&mut b);
        let fraction = 0.5 + f64::from(u16::from_le_bytes(b)) / f64::from(u16::MAX) / 2.0;
        exp.mul_f64(fraction)
    }

    /// Sends one delivery with its retries.
    async fn deliver(&self, d: Delivery) {
        for attempt in 1..=self.retry.max_attempts {
            let started = Instant::now();
            let timestamp = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |t| t.as_secs());
            let signature = sign(&d.target.key, &d.id, timestamp, &d.body);
            let sent = self
                .client
                .post(d.target.url.clone())
                .header("content-type", "application/json")
                .header("webhook-id", &d.id)
                .header("webhook-timestamp", timestamp.to_string())
                .header("webhook-signature", signature)
                .body(d.body.clone())
                .send()
                .await;
            let (status, error, retryable) = match &sent {
                Ok(r) if r.status().is_success() => (Some(r.status().as_u16()), None, false),
                Ok(r) => {
                    let s = r.status().as_u16();
                    (Some(s), Some("status"), s >= 500 || s == 408 || s == 429)
                }
                Err(e) if e.is_timeout() => (None, Some("timeout"), true),
                Err(e) if e.is_connect() => (None, Some("connect"), true),
                Err(_) => (None, Some("request"), true),
            };
            if error.is_none() {
                self.metrics.webhook_attempt("delivered");
                self.metrics.webhook_delivery("delivered");
                self.record(&d, attempt, status, "delivered", None, started);
                tracing::info!(id = %d.id, kind = d.notice.kind.as_str(), attempt, "webhook delivered");
                return;
            }
            let last = !retryable || attempt == self.retry.max_attempts;
            let outcome = if last { "failed" } else { "retrying" };
            self.metrics.webhook_attempt(outcome);
            self.record(&d, attempt, status, outcome, error, started);
            if last {
                self.metrics.webhook_delivery("failed");
                tracing::warn!(
                    id = %d.id,
                    kind = d.notice.kind.as_str(),
                    attempt,
                    status,
                    error,
                    "webhook delivery failed; not retried"
                );
                return;
            }
            let wait = self.backoff(attempt + 1);
            tracing::info!(id = %d.id, attempt, status, error, wait_ms = wait.as_millis() as u64, "webhook attempt failed; retrying");
            tokio::time::sleep(wait).await;
        }
    }

    /// The longest one attempt may take (the client's timeout).
    pub fn attempt_timeout(&self) -> Duration {
        self.retry.timeout
    }
}

/// Takes notices off the queue and sends them, `concurrency` at once; ends when the webhook is
/// dropped.
async fn dispatch(webhook: Weak<Webhook>, wake: Arc<Notify>) {
    loop {
        let next = {
            let Some(w) = webhook.upgrade() else { return };
            let d = w.queue.lock().ok().and_then(|mut q| q.pop_front());
            d.map(|d| (w.clone(), d))
        };
        match next {
            Some((w, d)) => {
                let Ok(permit) = w.concurrency.clone().acquire_owned().await else {
                    return;
                };
                tokio::spawn(async move {
                    w.deliver(d).await;
                    drop(permit);
                });
            }
            None => wake.notified().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_utc() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
        let t = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(rfc3339(t), "2023-11-14T22:13:20Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn the_body_names_only_the_ids() {
        let n = Notice {
            kind: NoticeKind::Left,
            tenant: "acme".into(),
            platform: "acme-chat".into(),
            ids: PersonIds {
                user_id: Some("u1".into()),
                ..PersonIds::default()
            },
            occurred_at: UNIX_EPOCH,
        };
        let v: serde_json::Value = serde_json::from_str(&n.body()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"type": "user.left", "tenant": "acme", "platform": "acme-chat",
                "user_id": "u1", "occurred_at": "1970-01-01T00:00:00Z"})
        );
        assert!(!format!("{n:?}").contains("u1"));
    }

    #[tokio::test]
    async fn backoff_doubles_with_jitter_up_to_the_cap() {
        let mut config = crate::config::GatewayConfig::default().webhook;
        config.initial_backoff_ms = 100;
        config.max_backoff_ms = 1000;
        let sso = unilogin::Sso::builder(unilogin::config::StaticConfig::new(vec![]))
            .build()
            .unwrap();
        let w = Webhook::start(&config, Metrics::new(&sso)).unwrap();
        for (next, full) in [
            (2u32, 100u64),
            (3, 200),
            (4, 400),
            (5, 800),
            (6, 1000),
            (20, 1000),
        ] {
            for _ in 0..20 {
                let b = w.backoff(next).as_millis() as u64;
                assert!(
                    b >= full / 2 && b <= full,
                    "attempt {next}: {b} ms of {full}"
                );
            }
        }
        // Without an endpoint nothing is queued.
        w.enqueue(Notice {
            kind: NoticeKind::Left,
            tenant: "acme".into(),
            platform: "p".into(),
            ids: PersonIds::default(),
            occurred_at: UNIX_EPOCH,
        });
        assert_eq!(w.queued(), 0);
        assert!(!w.configured_for("acme"));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_full_queue_drops_its_oldest_notice_and_logs_it() {
        let mut config = crate::config::GatewayConfig::default().webhook;
        config.url = Some(Url::parse("http://127.0.0.1:9/hook").unwrap());
        config.secret = Some("a-long-enough-test-secret".into());
        config.queue_capacity = 2;
        let sso = unilogin::Sso::builder(unilogin::config::StaticConfig::new(vec![]))
            .build()
            .unwrap();
        let metrics = Metrics::new(&sso);
        let w = Webhook::start(&config, metrics.clone()).unwrap();
        // No await between the pushes: the dispatcher has not run yet.
        for user in ["first", "second", "third"] {
            w.enqueue(Notice {
                kind: NoticeKind::Updated,
                tenant: "acme".into(),
                platform: "p".into(),
                ids: PersonIds {
                    user_id: Some(user.into()),
                    ..PersonIds::default()
                },
                occurred_at: UNIX_EPOCH,
            });
        }
        assert_eq!(w.queued(), 2);
        let log = w.deliveries();
        assert_eq!(log.len(), 1);
        assert_eq!(
            (log[0].outcome, log[0].error),
            ("dropped", Some("queue_full"))
        );
        let text = metrics.render().unwrap();
        assert!(
            text.contains(r#"unilogin_webhook_deliveries_total{outcome="dropped"} 1"#),
            "{text}"
        );
        // The oldest went: what waits are the second and the third.
        let waiting: Vec<String> = w
            .queue
            .lock()
            .unwrap()
            .iter()
            .map(|d| d.notice.ids.user_id.clone().unwrap())
            .collect();
        assert_eq!(waiting, ["second", "third"]);
    }

    #[test]
    fn keys_are_whsec_base64_or_bytes_and_not_short() {
        assert_eq!(
            signing_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
                .unwrap()
                .len(),
            24
        );
        assert_eq!(
            signing_key("a-long-enough-secret").unwrap(),
            b"a-long-enough-secret"
        );
        assert!(signing_key("short").is_err());
        assert!(signing_key("whsec_!!!").is_err());
    }
}
