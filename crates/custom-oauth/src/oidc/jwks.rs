//! `id_token` verification against the provider's JWKS.
//!
//! The key set is cached for `jwks_ttl`. A token signed with a key id the cached set does not
//! hold (the provider rotated its keys) triggers **one** refetch, and such forced refetches are
//! spaced by at least `refetch_interval`, so a stream of tokens with made-up key ids cannot turn
//! the client into a JWKS request amplifier.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{Jwk, JwkSet, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use reqwest::Method;
use serde_json::{Map, Value};
use unilogin_core::error::IdTokenProblem;
use unilogin_core::http::HttpClient;
use unilogin_core::{Error, Result, UpstreamCtx};
use url::Url;

use super::token::http_error;

/// What a valid `id_token` must say.
pub(crate) struct Expectations<'a> {
    /// The provider's issuer, exactly.
    pub issuer: &'a str,
    /// This client's id (the audience).
    pub client_id: &'a str,
    /// The nonce sent at authorize time, when there was one.
    pub nonce: Option<&'a str>,
    /// The access token of the same token response (what `at_hash` must be the hash of).
    pub access_token: &'a str,
    /// Accepted signing algorithms.
    pub algorithms: &'a [Algorithm],
    /// Clock skew allowed on `exp` / `nbf`, in seconds.
    pub leeway: u64,
}

#[derive(Debug, Default)]
struct State {
    keys: Option<Arc<JwkSet>>,
    fetched: Option<Instant>,
    forced: Option<Instant>,
}

/// A provider's key set, cached.
#[derive(Debug)]
pub(crate) struct JwksCache {
    ttl: Duration,
    refetch_interval: Duration,
    state: Mutex<State>,
}

fn invalid(ctx: &UpstreamCtx, problem: IdTokenProblem) -> Error {
    Error::InvalidIdToken {
        ctx: ctx.clone(),
        problem,
    }
}

impl JwksCache {
    pub(crate) fn new(ttl: Duration, refetch_interval: Duration) -> Self {
        Self {
            ttl,
            refetch_interval,
            state: Mutex::new(State::default()),
        }
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, State>> {
        self.state
            .lock()
            .map_err(|_| Error::Internal("JWKS cache lock poisoned".into()))
    }

    /// Verifies `token` and returns its claims.
    pub(crate) async fn verify(
        &self,
        http: &HttpClient,
        ctx: &UpstreamCtx,
        jwks_uri: &Url,
        token: &str,
        expect: &Expectations<'_>,
    ) -> Result<Map<String, Value>> {
        let header = jsonwebtoken::decode_header(token)
            .map_err(|_| invalid(ctx, IdTokenProblem::Malformed))?;
        if !expect.algorithms.contains(&header.alg) {
            return Err(invalid(ctx, IdTokenProblem::Algorithm));
        }
        let jwk = self
            .key(http, ctx, jwks_uri, header.kid.as_deref(), header.alg)
            .await?;
        if let Some(alg) = &jwk.common.key_algorithm
            && alg.to_string() != format!("{:?}", header.alg)
        {
            return Err(invalid(ctx, IdTokenProblem::Algorithm));
        }
        let key =
            DecodingKey::from_jwk(&jwk).map_err(|_| invalid(ctx, IdTokenProblem::UnknownKey))?;
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[expect.issuer]);
        validation.set_audience(&[expect.client_id]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = expect.leeway;
        validation.validate_nbf = true;
        let data =
            jsonwebtoken::decode::<Map<String, Value>>(token, &key, &validation).map_err(|e| {
                let problem = match e.kind() {
                    ErrorKind::InvalidSignature => IdTokenProblem::Signature,
                    ErrorKind::ExpiredSignature | ErrorKind::ImmatureSignature => {
                        IdTokenProblem::Expired
                    }
                    ErrorKind::InvalidIssuer => IdTokenProblem::Issuer,
                    ErrorKind::InvalidAudience => IdTokenProblem::Audience,
                    ErrorKind::InvalidAlgorithm | ErrorKind::UnsupportedAlgorithm => {
                        IdTokenProblem::Algorithm
                    }
                    ErrorKind::InvalidRsaKey(_)
                    | ErrorKind::InvalidEcdsaKey
                    | ErrorKind::InvalidEddsaKey
                    | ErrorKind::InvalidKeyFormat => IdTokenProblem::UnknownKey,
                    _ => IdTokenProblem::Malformed,
                };
                invalid(ctx, problem)
            })?;
        let claims = data.claims;
        // OIDC Core 3.1.3.7 (6, 7): with several audiences `azp` is required, and when present
        // it must be this client.
        let several_audiences = claims
            .get("aud")
            .and_then(Value::as_array)
            .is_some_and(|aud| aud.len() > 1);
        match claims.get("azp") {
            Some(azp) if azp.as_str() != Some(expect.client_id) => {
                return Err(invalid(ctx, IdTokenProblem::Audience));
            }
            None if several_audiences => return Err(invalid(ctx, IdTokenProblem::Audience)),
            _ => {}
        }
        // OIDC Core 3.1.3.8 / 3.2.2.9: when present, `at_hash` binds the access token of the
        // same response to this id_token.
        if let Some(at_hash) = claims.get("at_hash")
            && at_hash.as_str() != access_token_hash(header.alg, expect.access_token).as_deref()
        {
            return Err(invalid(ctx, IdTokenProblem::AccessTokenHash));
        }
        if claims
            .get("sub")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty)
        {
            return Err(invalid(ctx, IdTokenProblem::Malformed));
        }
        if let Some(expected) = expect.nonce
            && claims.get("nonce").and_then(Value::as_str) != Some(expected)
        {
            return Err(invalid(ctx, IdTokenProblem::Nonce));
        }
        Ok(claims)
    }

    /// The key for `kid`, from the cache, or after at most one (rate-limited) refetch.
    async fn key(
        &self,
        http: &HttpClient,
        ctx: &UpstreamCtx,
        jwks_uri: &Url,
        kid: Option<&str>,
        alg: Algorithm,
    ) -> Result<Jwk> {
        let (cached, may_force) = {
            let state = self.lock()?;
            let fresh = state.fetched.is_some_and(|t| t.elapsed() < self.ttl);
            let may_force = state
                .forced
                .is_none_or(|t| t.elapsed() >= self.refetch_interval);
            (state.keys.clone().filter(|_| fresh), may_force)
        };
        if let Some(keys) = &cached {
            if let Some(jwk) = pick(keys, kid, alg) {
                return Ok(jwk);
            }
            if !may_force {
                tracing::debug!(kid, "id_token key id unknown; JWKS refetched too recently");
                return Err(invalid(ctx, IdTokenProblem::UnknownKey));
            }
        }
        let keys = Arc::new(fetch(http, ctx, jwks_uri).await?);
        {
            let mut state = self.lock()?;
            let now = Instant::now();
            state.keys = Some(keys.clone());
            state.fetched = Some(now);
            if cached.is_some() {
                state.forced = Some(now);
                tracing::info!(
                    kid,
                    "id_token key id unknown; JWKS refetched (key rotation)"
                );
            }
        }
        pick(&keys, kid, alg).ok_or_else(|| invalid(ctx, IdTokenProblem::UnknownKey))
    }
}

/// `at_hash` for `access_token` under `alg`: base64url (no padding) of the left half of the
/// hash the algorithm uses (SHA-256 for `*256`, SHA-384 for `*384`, SHA-512 for `*512` and for
/// `EdDSA`, whose Ed25519 hashes with SHA-512). `None` for an algorithm without a known hash.
pub(crate) fn access_token_hash(alg: Algorithm, access_token: &str) -> Option<String> {
    use sha2::{Digest, Sha256, Sha384, Sha512};
    let token = access_token.as_bytes();
    let digest: Vec<u8> = match alg {
        Algorithm::HS256 | Algorithm::RS256 | Algorithm::ES256 | Algorithm::PS256 => {
            Sha256::digest(token).to_vec()
        }
        Algorithm::HS384 | Algorithm::RS384 | Algorithm::ES384 | Algorithm::PS384 => {
            Sha384::digest(token).to_vec()
        }
        Algorithm::HS512 | Algorithm::RS512 | Algorithm::PS512 | Algorithm::EdDSA => {
            Sha512::digest(token).to_vec()
        }
        _ => return None,
    };
    Some(URL_SAFE_NO_PAD.encode(&digest[..digest.len() / 2]))
}

/// The signing key for `kid`; without a `kid`, the only signing key compatible with `alg`.
fn pick(keys: &JwkSet, kid: Option<&str>, alg: Algorithm) -> Option<Jwk> {
    let signing = |k: &&Jwk| !matches!(k.common.public_key_use, Some(PublicKeyUse::Encryption));
    match kid {
        Some(kid) => keys
            .keys
            .iter()
            .filter(signing)
            .find(|k| k.common.key_id.as_deref() == Some(kid))
            .cloned(),
        None => {
            let alg = format!("{alg:?}");
            let mut candidates = keys.keys.iter().filter(signing).filter(|k| {
                k.common
                    .key_algorithm
                    .as_ref()
                    .is_none_or(|a| a.to_string() == alg)
            });
            match (candidates.next(), candidates.next()) {
                (Some(only), None) => Some(only.clone()),
                _ => None,
            }
        }
    }
}

/// Fetches the key set, skipping keys of types this build cannot use.
async fn fetch(http: &HttpClient, ctx: &UpstreamCtx, jwks_uri: &Url) -> Result<JwkSet> {
    let ctx = ctx.at("jwks");
    let response = http
        .send(
            &ctx,
            http.request(Method::GET, jwks_uri.clone())
                .header(reqwest::header::ACCEPT, "application/json"),
        )
        .await?;
    if !response.is_success() {
        return Err(http_error(&ctx, &response));
    }
    let Some(raw) = response.body.get("keys").and_then(Value::as_array) else {
        return Err(Error::BadResponse {
            ctx,
            status: response.status,
            kind: unilogin_core::error::BadBody::Malformed,
            excerpt: "no `keys` array in the JWKS".into(),
        });
    };
    let keys: Vec<Jwk> = raw
        .iter()
        .filter_map(|k| serde_json::from_value(k.clone()).ok())
        .collect();
    if keys.len() < raw.len() {
        tracing::debug!(
            skipped = raw.len() - keys.len(),
            "JWKS keys of unsupported types skipped"
        );
    }
    Ok(JwkSet { keys })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_hash_follows_the_signing_algorithm() {
        // OIDC Core A.3 (RS256): the example's access token and its at_hash.
        assert_eq!(
            access_token_hash(
                Algorithm::RS256,
                "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"
            )
            .as_deref(),
            Some("77QmUPtjPfzWtF2AnpK9RQ")
        );
        let lengths = [
            (Algorithm::ES256, 22),
            (Algorithm::PS384, 32),
            (Algorithm::RS512, 43),
            (Algorithm::EdDSA, 43),
        ];
        for (alg, len) in lengths {
            let h = access_token_hash(alg, "token").unwrap();
            assert_eq!(h.len(), len, "{alg:?}: {h}");
        }
        assert_ne!(
            access_token_hash(Algorithm::RS256, "token"),
            access_token_hash(Algorithm::RS256, "token2")
        );
    }
}
