//! Ed25519 signing keys with key ids, rotation and the public JWKS.

use std::fmt;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::signature::{Ed25519KeyPair, KeyPair};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{DecodingKey, EncodingKey, Header};
use serde::Serialize;
use serde_json::{Value, json};

use super::SessionError;

/// How long a retired public key stays published beyond the token lifetime given to
/// [`SessionKeys::rotate`], to cover the clock skew verifiers allow on `exp` (30 s by default)
/// and JWKS caches that are a little behind.
pub const RETIREMENT_MARGIN: Duration = Duration::from_secs(120);

/// Ed25519 (EdDSA) JWT signing keys with key ids. Rotation keeps old public keys published
/// until tokens signed with them have expired.
///
/// Cheap to clone (an `Arc` inside); clones share the same key set, so a rotation through one
/// clone is seen by all of them. `Debug` shows key ids only, never key material.
///
/// ```
/// use std::time::Duration;
/// use unilogin_axum::session::SessionKeys;
/// let keys = SessionKeys::generate().unwrap();
/// let first = keys.current_kid();
/// // The key the next rotation signs with is published before it signs anything.
/// let next = keys.next_kid().unwrap();
/// assert_eq!(keys.kids(), [first.clone(), next.clone()]);
/// keys.rotate(Duration::from_secs(3600)).unwrap();
/// assert_eq!(keys.current_kid(), next);
/// // Current, newly staged next, and the old key until its tokens have expired.
/// assert_eq!(keys.jwks()["keys"].as_array().unwrap().len(), 3);
/// assert_eq!(keys.kids()[2], first);
/// ```
#[derive(Clone)]
pub struct SessionKeys {
    inner: Arc<RwLock<KeySet>>,
}

struct KeySet {
    current: Arc<SigningKey>,
    /// The key the next [`SessionKeys::rotate`] makes current, published ahead of use so that
    /// verifiers holding a JWKS fetched since it was staged know it before the first token.
    next: Option<Arc<SigningKey>>,
    /// Public keys of retired signing keys, with the time they stop being published.
    retired: Vec<(PublicKey, SystemTime)>,
}

/// The key that signs new tokens.
pub(crate) struct SigningKey {
    pub(crate) kid: String,
    /// The parsed key pair, kept for the key's lifetime: `jsonwebtoken::encode` re-parses the
    /// PKCS#8 document on every call, and for Ed25519 that derives the public key again, a
    /// second scalar multiplication as costly as the signature itself.
    pair: Ed25519KeyPair,
    pub(crate) public: PublicKey,
}

impl SigningKey {
    /// Parses a PKCS#8 (v1 or v2) Ed25519 private key document.
    fn from_pkcs8(kid: String, der: &[u8]) -> Result<Self, SessionError> {
        let pair = Ed25519KeyPair::from_pkcs8(der)
            .map_err(|_| SessionError::Key("not a valid Ed25519 PKCS#8 private key".into()))?;
        let public = PublicKey {
            kid: kid.clone(),
            x: URL_SAFE_NO_PAD.encode(pair.public_key().as_ref()),
        };
        Ok(Self { kid, pair, public })
    }

    /// The JWS compact serialization (RFC 7515 §7.1) of `claims` under `header`, signed with
    /// this key: byte for byte what `jsonwebtoken::encode` makes of them (Ed25519 signatures are
    /// deterministic; a test compares the two), without re-parsing the key.
    pub(crate) fn sign_jws(
        &self,
        header: &Header,
        claims: &impl Serialize,
    ) -> Result<String, SessionError> {
        let header = serde_json::to_vec(header).map_err(|e| SessionError::Sign(e.to_string()))?;
        let claims = serde_json::to_vec(claims).map_err(|e| SessionError::Sign(e.to_string()))?;
        // 4/3 of the input, two dots and the 86-character signature.
        let mut jws = String::with_capacity((header.len() + claims.len()) * 4 / 3 + 96);
        URL_SAFE_NO_PAD.encode_string(&header, &mut jws);
        jws.push('.');
        URL_SAFE_NO_PAD.encode_string(&claims, &mut jws);
        let signature = self.pair.sign(jws.as_bytes());
        jws.push('.');
        URL_SAFE_NO_PAD.encode_string(signature.as_ref(), &mut jws);
        Ok(jws)
    }
}

/// A published public key.
#[derive(Clone)]
pub(crate) struct PublicKey {
    pub(crate) kid: String,
    /// base64url (no padding) of the 32-byte Ed25519 public key, the JWK `x`.
    pub(crate) x: String,
}

impl PublicKey {
    fn jwk(&self) -> Value {
        json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "x": self.x,
            "kid": self.kid,
            "alg": "EdDSA",
            "use": "sig",
        })
    }
}

impl SessionKeys {
    /// One fresh Ed25519 key with a random key id, plus a staged next key (see
    /// [`stage_next`](Self::stage_next)), so even the first rotation signs with a published key.
    pub fn generate() -> Result<Self, SessionError> {
        let keys = Self::from_signing_key(new_signing_key()?);
        keys.stage_next()?;
        Ok(keys)
    }

    /// Loads an Ed25519 private key from PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`, as written by
    /// `openssl genpkey -algorithm ED25519`; v1 and v2 documents are accepted) under key id `kid`.
    pub fn from_pkcs8_pem(pem: &str, kid: &str) -> Result<Self, SessionError> {
        check_kid(kid)?;
        let der = EncodingKey::from_ed_pem(pem.as_bytes())
            .map_err(|_| SessionError::Key("not an Ed25519 PKCS#8 PEM private key".into()))?;
        Ok(Self::from_signing_key(SigningKey::from_pkcs8(
            kid.to_string(),
            der.as_bytes(),
        )?))
    }

    fn from_signing_key(key: SigningKey) -> Self {
        Self {
            inner: Arc::new(RwLock::new(KeySet {
                current: Arc::new(key),
                next: None,
                retired: Vec::new(),
            })),
        }
    }

    /// Generates a key and publishes it in [`jwks`](Self::jwks) as the *next* signing key,
    /// without signing with it yet; the following [`rotate`](Self::rotate) makes it current.
    /// Does nothing when a next key is already staged.
    ///
    /// Verifiers cache the JWKS and refetch it for an unknown key id at most once per interval
    /// (the guard: 10 s by default). Staging the next key at least that long before rotating
    /// means no verifier meets a key id it has not seen. [`generate`](Self::generate) stages
    /// one at once and every `rotate` stages the one after, so periodic rotation needs no
    /// more than calling `rotate`.
    pub fn stage_next(&self) -> Result<(), SessionError> {
        if self.read().next.is_some() {
            return Ok(());
        }
        let key = Arc::new(new_signing_key()?);
        self.write().next.get_or_insert(key);
        Ok(())
    }

    /// Makes the staged next key current (or, with none staged, a new one) and stages a fresh
    /// next key. The old public key stays published in [`jwks`](Self::jwks) for `token_ttl`
    /// (plus [`RETIREMENT_MARGIN`]), so tokens it signed keep verifying until they expire.
    pub fn rotate(&self, token_ttl: Duration) -> Result<(), SessionError> {
        let now = SystemTime::now();
        let retire_at = now
            .checked_add(token_ttl)
            .and_then(|t| t.checked_add(RETIREMENT_MARGIN))
            .ok_or_else(|| SessionError::Key("token_ttl is too large".into()))?;
        let staged = Arc::new(new_signing_key()?);
        let mut set = self.write();
        let next = match set.next.take() {
            Some(next) => next,
            None => Arc::new(new_signing_key()?),
        };
        let old = std::mem::replace(&mut set.current, next);
        set.next = Some(staged);
        set.retired.push((old.public.clone(), retire_at));
        set.retired.retain(|(_, until)| *until > now);
        Ok(())
    }

    /// The key id of the staged next signing key, if one is staged.
    pub fn next_kid(&self) -> Option<String> {
        self.read().next.as_ref().map(|k| k.kid.clone())
    }

    /// A 32-byte secret derived from the current signing key for `label` (SHA-256 of the key's
    /// deterministic Ed25519 signature over a label no token can equal): every process holding
    /// the same key derives the same secret, and nobody without it can. For keys of other
    /// purposes (the gateway's login-binding MAC key), so replicas sharing session keys share
    /// them too.
    ///
    /// ```
    /// use unilogin_axum::session::SessionKeys;
    /// let keys = SessionKeys::generate().unwrap();
    /// assert_eq!(keys.derive_secret("a"), keys.clone().derive_secret("a"));
    /// assert_ne!(keys.derive_secret("a"), keys.derive_secret("b"));
    /// assert_ne!(keys.derive_secret("a"), SessionKeys::generate().unwrap().derive_secret("a"));
    /// ```
    pub fn derive_secret(&self, label: &str) -> [u8; 32] {
        let message = format!("unilogin derived secret\0{label}\0(not a JWS)");
        let signature = self.read().current.pair.sign(message.as_bytes());
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, signature.as_ref());
        let mut out = [0u8; 32];
        out.copy_from_slice(digest.as_ref());
        out
    }

    /// The key id of the current signing key.
    pub fn current_kid(&self) -> String {
        self.read().current.kid.clone()
    }

    /// Every key id currently published (the signing key first, then the staged next key, then
    /// retired keys).
    pub fn kids(&self) -> Vec<String> {
        self.published().into_iter().map(|k| k.kid).collect()
    }

    /// The public key set as a JWKS document:
    /// `{"keys":[{"kty":"OKP","crv":"Ed25519","x":..,"kid":..,"alg":"EdDSA","use":"sig"},..]}`,
    /// the current signing key first, then the staged next key, then retired keys that are
    /// still within their lifetime.
    pub fn jwks(&self) -> Value {
        let keys: Vec<Value> = self.published().iter().map(PublicKey::jwk).collect();
        json!({ "keys": keys })
    }

    /// The verification key for `kid`, if it is published.
    pub(crate) fn decoding_key(&self, kid: &str) -> Option<DecodingKey> {
        self.published()
            .into_iter()
            .find(|k| k.kid == kid)
            .and_then(|k| DecodingKey::from_ed_components(&k.x).ok())
    }

    pub(crate) fn signing_key(&self) -> Arc<SigningKey> {
        self.read().current.clone()
    }

    fn published(&self) -> Vec<PublicKey> {
        let now = SystemTime::now();
        let set = self.read();
        std::iter::once(set.current.public.clone())
            .chain(set.next.iter().map(|k| k.public.clone()))
            .chain(
                set.retired
                    .iter()
                    .filter(|(_, until)| *until > now)
                    .map(|(k, _)| k.clone()),
            )
            .collect()
    }

    // A poisoned lock only means another thread panicked while holding it; the key set is
    // replaced atomically (one `mem::replace` and a `push`), so it is still consistent.
    fn read(&self) -> std::sync::RwLockReadGuard<'_, KeySet> {
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, KeySet> {
        self.inner.write().unwrap_or_else(|p| p.into_inner())
    }
}

impl fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionKeys")
            .field("current_kid", &self.current_kid())
            .field("published", &self.kids())
            .finish()
    }
}

fn check_kid(kid: &str) -> Result<(), SessionError> {
    let ok = !kid.is_empty()
        && kid.len() <= 128
        && kid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(SessionError::Key(
            "a key id is 1 to 128 characters of A-Z a-z 0-9 - _ .".into(),
        ))
    }
}

fn new_signing_key() -> Result<SigningKey, SessionError> {
    let rng = SystemRandom::new();
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng)
        .map_err(|_| SessionError::Key("generating an Ed25519 key failed".into()))?;
    let kid = random_id(&rng, 12)?;
    SigningKey::from_pkcs8(kid, pkcs8.as_ref())
}

/// `len` random bytes from the system CSPRNG, base64url without padding.
pub(crate) fn random_id(rng: &SystemRandom, len: usize) -> Result<String, SessionError> {
    let mut bytes = vec![0u8; len];
    rng.fill(&mut bytes)
        .map_err(|_| SessionError::Key("the system random generator failed".into()))?;
    Ok(URL_SAFE_NO_PAD.encode(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Generated with `openssl genpkey -algorithm ED25519` (PKCS#8 v1); a test-only key.
    const PEM: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIAu4vFM0/jEgkjgtKnU3RgHjnFHDuKYgV82orab7LD25\n-----END PRIVATE KEY-----\n";

    #[test]
    fn generated_keys_publish_the_current_and_the_next_okp_jwk() {
        let keys = SessionKeys::generate().unwrap();
        let jwks = keys.jwks();
        let list = jwks["keys"].as_array().unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[1]["kid"], keys.next_kid().unwrap().as_str());
        assert_ne!(list[0]["x"], list[1]["x"]);
        let k = &list[0];
        assert_eq!(k["kty"], "OKP");
        assert_eq!(k["crv"], "Ed25519");
        assert_eq!(k["alg"], "EdDSA");
        assert_eq!(k["use"], "sig");
        assert_eq!(k["kid"], keys.current_kid().as_str());
        let x = URL_SAFE_NO_PAD.decode(k["x"].as_str().unwrap()).unwrap();
        assert_eq!(x.len(), 32);
        // Nothing private is published.
        assert!(k.get("d").is_none());
    }

    #[test]
    fn signatures_equal_jsonwebtoken_encode_and_verify() {
        use jsonwebtoken::{Algorithm, Validation};
        let der = EncodingKey::from_ed_pem(PEM.as_bytes()).unwrap();
        let key = SigningKey::from_pkcs8("k1".into(), der.as_bytes()).unwrap();
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some("k1".into());
        header.typ = Some("JWT".into());
        let claims = json!({ "sub": "user001", "exp": 4_000_000_000u64, "name": "张三 \"q\"" });
        let ours = key.sign_jws(&header, &claims).unwrap();
        let theirs = jsonwebtoken::encode(&header, &claims, &der).unwrap();
        assert_eq!(ours, theirs);
        let decoding = DecodingKey::from_ed_components(&key.public.x).unwrap();
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.validate_aud = false;
        let back = jsonwebtoken::decode::<Value>(&ours, &decoding, &validation).unwrap();
        assert_eq!(back.claims, claims);
        // A changed payload no longer verifies.
        let mut parts: Vec<&str> = ours.split('.').collect();
        let other = URL_SAFE_NO_PAD.encode(br#"{"sub":"admin","exp":4000000000}"#);
        parts[1] = &other;
        assert!(jsonwebtoken::decode::<Value>(&parts.join("."), &decoding, &validation).is_err());
    }

    #[test]
    fn two_generated_keys_differ() {
        let a = SessionKeys::generate().unwrap();
        let b = SessionKeys::generate().unwrap();
        assert_ne!(a.current_kid(), b.current_kid());
        assert_ne!(a.jwks()["keys"][0]["x"], b.jwks()["keys"][0]["x"]);
    }

    #[test]
    fn pem_key_loads_with_its_kid_and_known_public_key() {
        let keys = SessionKeys::from_pkcs8_pem(PEM, "2026-01").unwrap();
        assert_eq!(keys.current_kid(), "2026-01");
        // RFC 8037: x is the raw public key; this value is what
        // `openssl pkey -pubout -outform DER | tail -c 32` gives for the PEM above.
        let x = keys.jwks()["keys"][0]["x"].as_str().unwrap().to_string();
        assert_eq!(x, "BzqfeONDdqde4w6tGfNDQUIFW1n3XNkhxgw1JUW77UQ");
        let again = SessionKeys::from_pkcs8_pem(PEM, "other").unwrap();
        assert_eq!(again.jwks()["keys"][0]["x"].as_str().unwrap(), x);
    }

    #[test]
    fn bad_pem_and_bad_kid_are_rejected_without_echoing_input() {
        let err = SessionKeys::from_pkcs8_pem(
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
            "k",
        )
        .unwrap_err();
        assert!(matches!(err, SessionError::Key(_)));
        assert!(!err.to_string().contains("AAAA"));
        assert!(SessionKeys::from_pkcs8_pem("garbage", "k").is_err());
        assert!(SessionKeys::from_pkcs8_pem(PEM, "").is_err());
        assert!(SessionKeys::from_pkcs8_pem(PEM, "has space").is_err());
        assert!(SessionKeys::from_pkcs8_pem(PEM, "quote\"").is_err());
    }

    #[test]
    fn rotation_keeps_old_key_until_ttl_then_drops_it() {
        let keys = SessionKeys::generate().unwrap();
        let clone = keys.clone();
        let old = keys.current_kid();
        let staged = keys.next_kid().unwrap();
        keys.rotate(Duration::from_secs(600)).unwrap();
        let new = clone.current_kid();
        assert_eq!(
            new, staged,
            "clones share the key set; the staged key becomes current"
        );
        let next = keys.next_kid().unwrap();
        assert!(next != old && next != new);
        assert_eq!(keys.kids(), vec![new.clone(), next.clone(), old.clone()]);
        assert!(keys.decoding_key(&old).is_some());
        // Simulate the old key's lifetime having passed.
        keys.write().retired[0].1 = SystemTime::now() - Duration::from_secs(1);
        assert_eq!(keys.kids(), vec![new.clone(), next]);
        assert!(keys.decoding_key(&old).is_none());
        assert!(keys.decoding_key(&new).is_some());
    }

    #[test]
    fn file_keys_stage_only_when_asked_and_rotation_always_stages_the_next() {
        let keys = SessionKeys::from_pkcs8_pem(PEM, "2026-01").unwrap();
        // Replicas sharing a key file publish the same set: nothing random is added.
        assert_eq!(keys.kids(), ["2026-01"]);
        assert_eq!(keys.next_kid(), None);
        keys.stage_next().unwrap();
        let staged = keys.next_kid().unwrap();
        keys.stage_next().unwrap();
        assert_eq!(
            keys.next_kid().unwrap(),
            staged,
            "staging twice keeps the first"
        );
        keys.rotate(Duration::from_secs(60)).unwrap();
        assert_eq!(keys.current_kid(), staged);
        // Without a staged key, rotation still works (new key at once) and stages the next.
        let unstaged = SessionKeys::from_pkcs8_pem(PEM, "2026-01").unwrap();
        unstaged.rotate(Duration::from_secs(60)).unwrap();
        assert_ne!(unstaged.current_kid(), "2026-01");
        assert!(unstaged.next_kid().is_some());
        assert_eq!(unstaged.kids().len(), 3);
    }

    #[test]
    fn debug_shows_kids_only() {
        let keys = SessionKeys::from_pkcs8_pem(PEM, "kid-1").unwrap();
        let dbg = format!("{keys:?}");
        assert!(dbg.contains("kid-1"));
        assert!(!dbg.contains("MC4CAQAw"));
        assert!(!dbg.contains("PRIVATE"));
    }
}
