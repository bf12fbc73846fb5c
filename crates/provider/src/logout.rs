//! Ending a session on the provider side, and OpenID Connect Back-Channel Logout 1.0.
//!
//! When a host session ends (RP-initiated logout, or [`Provider::logout_subject`] for a
//! person who left), every grant issued in it is revoked (refresh family and access tokens)
//! and each client that got tokens in it and registered a `backchannel_logout_uri` is sent a
//! **logout token**: a JWT signed with the client's id-token algorithm, header
//! `typ: logout+jwt`, claims `iss`, `aud`, `iat`, `exp`, `jti`, `sid`, `sub` (when known) and
//! `events: {"http://schemas.openid.net/event/backchannel-logout": {}}`, never a `nonce`.
//!
//! Deliveries run in a background task fed by a bounded queue (a full queue drops the
//! delivery with a warning rather than slowing logouts down). A delivery that fails (network
//! error, 5xx, 408, 429) is retried with exponential back-off up to
//! [`BackchannelSettings::attempts`] times; other 4xx answers are final (the client refused
//! the token).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tokio::sync::{Semaphore, mpsc};
use url::Url;

use crate::error::{ProviderError, Result};
use crate::provider::{Provider, now};
use crate::routes::token::revoke_grant;
use crate::secret::random_token;

/// The back-channel logout event's URI.
pub const BACKCHANNEL_LOGOUT_EVENT: &str = "http://schemas.openid.net/event/backchannel-logout";

/// How logout tokens are delivered.
///
/// ```
/// let s = unilogin_provider::BackchannelSettings::default();
/// assert_eq!(s.attempts, 5);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct BackchannelSettings {
    /// Deliveries waiting at most (further ones are dropped with a warning).
    pub queue: usize,
    /// Tries per delivery, the first included.
    pub attempts: u32,
    /// The wait before the first retry; each later wait doubles, up to `max_backoff`.
    pub first_backoff: Duration,
    /// The longest wait between two tries.
    pub max_backoff: Duration,
    /// Deliveries in flight at once.
    pub concurrency: usize,
    /// Lifetime of a logout token.
    pub token_ttl: Duration,
}

impl Default for BackchannelSettings {
    fn default() -> Self {
        Self {
            queue: 1024,
            attempts: 5,
            first_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(60),
            concurrency: 8,
            token_ttl: Duration::from_secs(120),
        }
    }
}

impl BackchannelSettings {
    /// The same settings with `attempts` tries and a first back-off of `first_backoff`.
    pub fn with_retries(mut self, attempts: u32, first_backoff: Duration) -> Self {
        self.attempts = attempts.max(1);
        self.first_backoff = first_backoff;
        self
    }
}

/// One logout token to deliver. `Debug` hides the token.
struct Delivery {
    uri: Url,
    token: String,
}

/// The queue of the delivery task.
pub(crate) struct Backchannel {
    tx: mpsc::Sender<Delivery>,
    settings: BackchannelSettings,
}

impl Backchannel {
    /// Starts the delivery task (needs a tokio runtime).
    pub(crate) fn start(http: reqwest::Client, settings: BackchannelSettings) -> Self {
        let (tx, mut rx) = mpsc::channel::<Delivery>(settings.queue.max(1));
        let limit = Arc::new(Semaphore::new(settings.concurrency.max(1)));
        let task_settings = settings.clone();
        tokio::spawn(async move {
            while let Some(d) = rx.recv().await {
                let Ok(permit) = limit.clone().acquire_owned().await else {
                    break;
                };
                let http = http.clone();
                let s = task_settings.clone();
                tokio::spawn(async move {
                    deliver(&http, &s, d).await;
                    drop(permit);
                });
            }
        });
        Self { tx, settings }
    }

    fn enqueue(&self, d: Delivery) {
        if let Err(e) = self.tx.try_send(d) {
            let uri = match &e {
                mpsc::error::TrySendError::Full(d) | mpsc::error::TrySendError::Closed(d) => {
                    d.uri.to_string()
                }
            };
            tracing::warn!(%uri, "back-channel logout queue full; delivery dropped");
        }
    }
}

async fn deliver(http: &reqwest::Client, s: &BackchannelSettings, d: Delivery) {
    let mut backoff = s.first_backoff;
    for attempt in 1..=s.attempts.max(1) {
        let result = http
            .post(d.uri.clone())
            .form(&[("logout_token", d.token.as_str())])
            .send()
            .await;
        let retry = match result {
            Ok(r) if r.status().is_success() => {
                tracing::debug!(uri = %d.uri, attempt, "back-channel logout delivered");
                return;
            }
            Ok(r) => {
                let st = r.status();
                let retry = st.is_server_error() || st.as_u16() == 408 || st.as_u16() == 429;
                tracing::warn!(uri = %d.uri, attempt, status = st.as_u16(), "back-channel logout refused");
                retry
            }
            Err(e) => {
                tracing::warn!(uri = %d.uri, attempt, error = %e.without_url(), "back-channel logout failed");
                true
            }
        };
        if !retry || attempt == s.attempts {
            return;
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(s.max_backoff);
    }
}

/// See [`Provider::end_sid`].
pub(crate) async fn end_sid(p: &Provider, sid: &str) -> Result<bool> {
    let Some(record) = p.inner.store.take_session(sid).await? else {
        return Ok(false);
    };
    // Per client: the `sub` it knows (from its first grant still on record).
    let mut clients: BTreeMap<String, Option<String>> = BTreeMap::new();
    for (client_id, grant_id) in &record.clients {
        let sub = p.inner.store.grant(grant_id).await?.map(|g| g.sub);
        revoke_grant(p, grant_id).await?;
        let slot = clients.entry(client_id.clone()).or_default();
        if slot.is_none() {
            *slot = sub;
        }
    }
    for (client_id, sub) in clients {
        let Some(client) = p.inner.clients.client(&client_id) else {
            continue;
        };
        let Some(uri) = client.backchannel_logout_uri.clone() else {
            continue;
        };
        let token = logout_token(p, &client, sid, sub.as_deref())?;
        p.inner.backchannel.enqueue(Delivery { uri, token });
    }
    Ok(true)
}

fn logout_token(
    p: &Provider,
    client: &crate::Client,
    sid: &str,
    sub: Option<&str>,
) -> Result<String> {
    let iat = now();
    let ttl = p.inner.backchannel.settings.token_ttl.as_secs().max(1);
    let mut claims = json!({
        "iss": p.issuer(),
        "aud": client.client_id,
        "iat": iat,
        "exp": iat.saturating_add(ttl),
        "jti": random_token(16)?,
        "sid": sid,
        "events": { BACKCHANNEL_LOGOUT_EVENT: {} },
    });
    if let Some(sub) = sub {
        claims["sub"] = json!(sub);
    }
    p.keys_for(client.id_token_signed_response_alg)
        .map_err(|e| ProviderError::Server(e.to_string()))?
        .sign("logout+jwt", &claims)
}
