//! A verifier's copy of the issuer's public keys, fetched from its JWKS endpoint.
//!
//! Lookups are a read lock and a hash lookup. A key id that is not in the copy triggers a
//! refetch, with two bounds: concurrent lookups that miss wait for the one fetch in flight
//! instead of starting their own, and fetches start at most once per `min_refetch` interval
//! (so tokens with made-up key ids cannot turn the guard into a load generator against the
//! issuer). A copy older than `max_age` is refreshed in the background on the next lookup, so
//! keys the issuer stops publishing are dropped without a restart.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::DecodingKey;
use reqwest::Method;
use serde_json::Value;
use tokio::sync::Mutex;
use unilogin_core::http::HttpClient;
use unilogin_core::{PlatformName, UpstreamCtx};
use url::Url;

/// Most keys taken from one JWKS document.
const MAX_KEYS: usize = 64;

/// Why a key could not be produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyMiss {
    /// The key set is known and does not contain the key id.
    Unknown,
    /// The key set could not be fetched (the last attempt failed).
    Unavailable,
}

pub(crate) struct JwksCache {
    url: Url,
    http: HttpClient,
    min_refetch: Duration,
    max_age: Duration,
    keys: RwLock<Snapshot>,
    /// Held while fetching; concurrent misses queue here.
    fetch: Arc<Mutex<FetchState>>,
    /// Bumped after every fetch attempt (after `keys` is updated).
    generation: AtomicU64,
    attempts: AtomicU64,
}

#[derive(Clone)]
struct Snapshot {
    keys: Arc<HashMap<String, Arc<DecodingKey>>>,
    fetched_at: Option<Instant>,
}

#[derive(Default)]
struct FetchState {
    last_attempt: Option<Instant>,
    last_ok: bool,
}

impl JwksCache {
    pub(crate) fn new(
        url: Url,
        http: HttpClient,
        min_refetch: Duration,
        max_age: Duration,
    ) -> Self {
        Self {
            url,
            http,
            min_refetch,
            max_age,
            keys: RwLock::new(Snapshot {
                keys: Arc::new(HashMap::new()),
                fetched_at: None,
            }),
            fetch: Arc::new(Mutex::new(FetchState::default())),
            generation: AtomicU64::new(0),
            attempts: AtomicU64::new(0),
        }
    }

    /// How many fetches were started so far.
    pub(crate) fn attempts(&self) -> u64 {
        self.attempts.load(Ordering::Relaxed)
    }

    fn snapshot(&self) -> Snapshot {
        // Writers replace the snapshot in one assignment; a poisoned lock still holds a
        // consistent value.
        self.keys.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn cached(&self, kid: &str) -> Option<Arc<DecodingKey>> {
        self.keys
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .keys
            .get(kid)
            .cloned()
    }

    /// The key for `kid`, fetching the key set when it is not known (see the module docs).
    pub(crate) async fn key(
        self: &Arc<Self>,
        kid: &str,
        trace_id: &str,
    ) -> Result<Arc<DecodingKey>, KeyMiss> {
        // Read the generation before looking: a fetch that lands after this load bumps it.
        let generation = self.generation.load(Ordering::Acquire);
        if let Some(key) = self.cached(kid) {
            self.refresh_if_stale();
            return Ok(key);
        }
        let mut state = self.fetch.lock().await;
        let miss = |state: &FetchState| {
            if state.last_ok {
                KeyMiss::Unknown
            } else {
                KeyMiss::Unavailable
            }
        };
        if self.generation.load(Ordering::Acquire) != generation {
            // Another request fetched while this one waited: use its result.
            return self.cached(kid).ok_or_else(|| miss(&state));
        }
        if let Some(last) = state.last_attempt
            && last.elapsed() < self.min_refetch
        {
            tracing::debug!(trace_id, kid, "unknown key id; JWKS refetch rate-limited");
            return Err(miss(&state));
        }
        tracing::info!(trace_id, kid, url = %self.url, "unknown key id; fetching the JWKS");
        self.fetch_locked(&mut state).await;
        self.cached(kid).ok_or_else(|| miss(&state))
    }

    /// Starts a background refresh when the copy is older than `max_age`, unless a fetch is
    /// running or one started less than `min_refetch` ago.
    fn refresh_if_stale(self: &Arc<Self>) {
        let stale = self
            .snapshot()
            .fetched_at
            .is_some_and(|t| t.elapsed() >= self.max_age);
        if !stale {
            return;
        }
        let Ok(mut state) = self.fetch.clone().try_lock_owned() else {
            return;
        };
        if state
            .last_attempt
            .is_some_and(|t| t.elapsed() < self.min_refetch)
        {
            return;
        }
        // Mark the attempt now so concurrent lookups do not spawn more refreshes.
        state.last_attempt = Some(Instant::now());
        let this = Arc::clone(self);
        tokio::spawn(async move {
            this.fetch_locked(&mut state).await;
        });
    }

    async fn fetch_locked(&self, state: &mut FetchState) {
        state.last_attempt = Some(Instant::now());
        self.attempts.fetch_add(1, Ordering::Relaxed);
        match self.fetch_keys().await {
            Ok(keys) => {
                tracing::debug!(url = %self.url, keys = keys.len(), "JWKS fetched");
                *self.keys.write().unwrap_or_else(|p| p.into_inner()) = Snapshot {
                    keys: Arc::new(keys),
                    fetched_at: Some(Instant::now()),
                };
                state.last_ok = true;
            }
            Err(reason) => {
                // Keep the keys we have: an unreachable issuer must not log everyone out.
                tracing::warn!(url = %self.url, %reason, "fetching the JWKS failed");
                state.last_ok = false;
            }
        }
        self.generation.fetch_add(1, Ordering::Release);
    }

    async fn fetch_keys(&self) -> Result<HashMap<String, Arc<DecodingKey>>, String> {
        let platform = PlatformName::new("jwks").map_err(|e| e.to_string())?;
        let ctx = UpstreamCtx::new(None, platform, "jwks");
        let request = self
            .http
            .request(Method::GET, self.url.clone())
            .header(reqwest::header::ACCEPT, "application/json");
        let response = self
            .http
            .send(&ctx, request)
            .await
            .map_err(|e| e.to_string())?;
        if !response.is_success() {
            return Err(format!("HTTP status {}", response.status));
        }
        parse_jwks(&response.body)
    }
}

/// The Ed25519 signing keys of a JWKS document, by key id. Keys of other types, curves,
/// algorithms or uses are skipped; a document with none of ours is an error.
pub(crate) fn parse_jwks(doc: &Value) -> Result<HashMap<String, Arc<DecodingKey>>, String> {
    let list = doc
        .get("keys")
        .and_then(Value::as_array)
        .ok_or("no `keys` array")?;
    let mut out = HashMap::new();
    for k in list.iter().take(MAX_KEYS) {
        let field = |name: &str| k.get(name).and_then(Value::as_str);
        if field("kty") != Some("OKP") || field("crv") != Some("Ed25519") {
            continue;
        }
        if field("alg").is_some_and(|a| a != "EdDSA") || field("use").is_some_and(|u| u != "sig") {
            continue;
        }
        let (Some(kid), Some(x)) = (field("kid"), field("x")) else {
            continue;
        };
        if URL_SAFE_NO_PAD.decode(x).map(|b| b.len()) != Ok(32) {
            continue;
        }
        if let Ok(key) = DecodingKey::from_ed_components(x) {
            out.insert(kid.to_string(), Arc::new(key));
        }
    }
    if out.is_empty() {
        return Err("no Ed25519 signing key in the JWKS".into());
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const X: &str = "BzqfeONDdqde4w6tGfNDQUIFW1n3XNkhxgw1JUW77UQ";

    #[test]
    fn parse_keeps_only_ed25519_signing_keys() {
        let doc = json!({"keys": [
            {"kty": "OKP", "crv": "Ed25519", "x": X, "kid": "a", "alg": "EdDSA", "use": "sig"},
            {"kty": "OKP", "crv": "Ed25519", "x": X, "kid": "no-alg"},
            {"kty": "OKP", "crv": "X25519", "x": X, "kid": "ecdh"},
            {"kty": "OKP", "crv": "Ed25519", "x": X, "kid": "enc", "use": "enc"},
            {"kty": "RSA", "n": "AQAB", "e": "AQAB", "kid": "rsa"},
            {"kty": "OKP", "crv": "Ed25519", "x": "short", "kid": "bad-x"},
            {"kty": "OKP", "crv": "Ed25519", "x": X},
        ]});
        let keys = parse_jwks(&doc).unwrap();
        let mut kids: Vec<_> = keys.keys().cloned().collect();
        kids.sort();
        assert_eq!(kids, ["a", "no-alg"]);
    }

    #[test]
    fn parse_rejects_documents_without_our_keys() {
        assert!(parse_jwks(&json!({})).is_err());
        assert!(parse_jwks(&json!({"keys": []})).is_err());
        assert!(parse_jwks(&json!({"keys": [{"kty": "RSA"}]})).is_err());
        assert!(parse_jwks(&json!("keys")).is_err());
    }
}
