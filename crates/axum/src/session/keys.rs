//! Signing keys (Ed25519, RSA or P-256) with key ids, rotation and the public JWKS.

use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use aws_lc_rs::encoding::AsBigEndian;
use aws_lc_rs::hmac;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{
    ECDSA_P256_SHA256_FIXED, ECDSA_P256_SHA256_FIXED_SIGNING, ED25519, EcdsaKeyPair,
    Ed25519KeyPair, KeyPair, RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256, RsaKeyPair,
    UnparsedPublicKey, VerificationAlgorithm,
};
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, Header};
use serde::Serialize;
use serde_json::{Value, json};

use super::{SessionError, VerifyError};

/// How long a retired public key stays published beyond the token lifetime given to
/// [`SessionKeys::rotate`], to cover the clock skew verifiers allow on `exp` (30 s by default)
/// and JWKS caches that are a little behind.
pub const RETIREMENT_MARGIN: Duration = Duration::from_secs(120);

/// Longest compact JWS [`SessionKeys::verify_jws`] looks at; longer input is malformed.
const MAX_JWS_LEN: usize = 64 * 1024;

/// The JWS signature algorithm of a [`SessionKeys`] set (RFC 7518 §3.1, RFC 8037).
///
/// Displays as, and parses from, its JOSE name; parsing ignores ASCII case, so configuration
/// may say `rs256`.
///
/// ```
/// use unilogin_axum::session::SigningAlg;
/// assert_eq!(SigningAlg::Rs256.as_str(), "RS256");
/// assert_eq!("es256".parse::<SigningAlg>().unwrap(), SigningAlg::Es256);
/// assert_eq!(SigningAlg::EdDSA.to_string(), "EdDSA");
/// assert!("HS256".parse::<SigningAlg>().is_err());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SigningAlg {
    /// Ed25519 (`EdDSA`, RFC 8037): the session tokens' algorithm, small and fast.
    EdDSA,
    /// RSASSA-PKCS1-v1_5 with SHA-256 (`RS256`), 2048-bit keys when generated: what every
    /// OpenID Connect relying party supports.
    Rs256,
    /// ECDSA on P-256 with SHA-256 (`ES256`), signatures in the fixed 64-byte `r || s` form.
    Es256,
}

impl SigningAlg {
    /// Every algorithm, in the order of the variants.
    pub const ALL: [SigningAlg; 3] = [SigningAlg::EdDSA, SigningAlg::Rs256, SigningAlg::Es256];

    /// The JOSE name: `EdDSA`, `RS256` or `ES256`.
    pub const fn as_str(self) -> &'static str {
        match self {
            SigningAlg::EdDSA => "EdDSA",
            SigningAlg::Rs256 => "RS256",
            SigningAlg::Es256 => "ES256",
        }
    }

    fn verification(self) -> &'static dyn VerificationAlgorithm {
        match self {
            SigningAlg::EdDSA => &ED25519,
            SigningAlg::Rs256 => &RSA_PKCS1_2048_8192_SHA256,
            SigningAlg::Es256 => &ECDSA_P256_SHA256_FIXED,
        }
    }
}

impl fmt::Display for SigningAlg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SigningAlg {
    type Err = SessionError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        SigningAlg::ALL
            .into_iter()
            .find(|alg| alg.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| {
                SessionError::Key(
                    "unsupported signing algorithm: expected EdDSA, RS256 or ES256".into(),
                )
            })
    }
}

impl From<SigningAlg> for Algorithm {
    fn from(alg: SigningAlg) -> Self {
        match alg {
            SigningAlg::EdDSA => Algorithm::EdDSA,
            SigningAlg::Rs256 => Algorithm::RS256,
            SigningAlg::Es256 => Algorithm::ES256,
        }
    }
}

/// JWT signing keys with key ids, all of one [`SigningAlg`] (Ed25519 unless asked otherwise).
/// Rotation keeps old public keys published until tokens signed with them have expired.
///
/// Cheap to clone (an `Arc` inside); clones share the same key set, so a rotation through one
/// clone is seen by all of them. `Debug` shows the algorithm and key ids only, never key
/// material.
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
    /// The algorithm of every key in the set, fixed for its lifetime.
    alg: SigningAlg,
    current: Arc<SigningKey>,
    /// The key the next [`SessionKeys::rotate`] makes current, published ahead of use so that
    /// verifiers holding a JWKS fetched since it was staged know it before the first token.
    next: Option<Arc<SigningKey>>,
    /// Public keys of retired signing keys, with the time they stop being published.
    retired: Vec<(PublicKey, SystemTime)>,
}

/// A parsed private key, kept for the key's lifetime: `jsonwebtoken::encode` re-parses the
/// key document on every call (for Ed25519 that derives the public key again, a second scalar
/// multiplication as costly as the signature itself; for RSA it re-validates the key).
enum Pair {
    Ed25519(Ed25519KeyPair),
    Rsa {
        pair: RsaKeyPair,
        /// HMAC key for [`SessionKeys::derive_secret`], made once from the key.
        derive: hmac::Key,
    },
    P256 {
        pair: EcdsaKeyPair,
        /// HMAC key for [`SessionKeys::derive_secret`], made once from the key.
        derive: hmac::Key,
    },
}

/// The key that signs new tokens.
pub(crate) struct SigningKey {
    pub(crate) kid: String,
    pair: Pair,
    pub(crate) public: PublicKey,
}

/// The message every `derive_secret` signs or MACs; no JWS signing input can equal it (a JWS
/// signing input has no NUL byte).
fn derive_message(label: &str) -> String {
    format!("unilogin derived secret\0{label}\0(not a JWS)")
}

impl SigningKey {
    fn new(kid: String, pair: Pair) -> Result<Self, SessionError> {
        let (alg, raw) = match &pair {
            Pair::Ed25519(p) => (SigningAlg::EdDSA, p.public_key().as_ref().to_vec()),
            Pair::Rsa { pair, .. } => (SigningAlg::Rs256, pair.public_key().as_ref().to_vec()),
            Pair::P256 { pair, .. } => (SigningAlg::Es256, pair.public_key().as_ref().to_vec()),
        };
        let jwk = match &pair {
            Pair::Ed25519(_) => Jwk::Okp {
                x: URL_SAFE_NO_PAD.encode(&raw),
            },
            Pair::Rsa { pair, .. } => {
                let public = pair.public_key();
                Jwk::Rsa {
                    n: URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero()),
                    e: URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero()),
                }
            }
            // The uncompressed SEC 1 point: 0x04 || x || y, 32 bytes each.
            Pair::P256 { .. } => match raw.as_slice() {
                [0x04, point @ ..] if point.len() == 64 => Jwk::Ec {
                    x: URL_SAFE_NO_PAD.encode(&point[..32]),
                    y: URL_SAFE_NO_PAD.encode(&point[32..]),
                },
                _ => return Err(SessionError::Key("unexpected P-256 public key form".into())),
            },
        };
        let public = PublicKey {
            kid: kid.clone(),
            alg,
            jwk,
            raw: raw.into(),
        };
        Ok(Self { kid, pair, public })
    }

    fn ed25519(kid: String, pair: Ed25519KeyPair) -> Result<Self, SessionError> {
        Self::new(kid, Pair::Ed25519(pair))
    }

    fn rsa(kid: String, pair: RsaKeyPair) -> Result<Self, SessionError> {
        // RSASSA-PKCS1-v1_5 is deterministic: the signature over a fixed message is a secret
        // only the key's holders can compute, and the same in every process holding the key.
        let mut signature = vec![0u8; pair.public_modulus_len()];
        pair.sign(
            &RSA_PKCS1_SHA256,
            &SystemRandom::new(),
            derive_message("").as_bytes(),
            &mut signature,
        )
        .map_err(|_| SessionError::Key("signing with the RSA key failed".into()))?;
        let derive = derive_key(&signature);
        Self::new(kid, Pair::Rsa { pair, derive })
    }

    fn p256(kid: String, pair: EcdsaKeyPair) -> Result<Self, SessionError> {
        // ECDSA signatures are randomised, so the secret comes from the private scalar.
        let scalar = pair
            .private_key()
            .as_be_bytes()
            .map_err(|_| SessionError::Key("reading the P-256 key failed".into()))?;
        let derive = derive_key(scalar.as_ref());
        Self::new(kid, Pair::P256 { pair, derive })
    }

    /// Parses a DER private key found under PEM label `label`, detecting the algorithm.
    fn from_der(kid: String, label: &str, der: &[u8]) -> Result<Self, SessionError> {
        let p256 = &ECDSA_P256_SHA256_FIXED_SIGNING;
        match label {
            "PRIVATE KEY" => {
                if let Ok(pair) = Ed25519KeyPair::from_pkcs8(der) {
                    Self::ed25519(kid, pair)
                } else if let Ok(pair) = EcdsaKeyPair::from_pkcs8(p256, der) {
                    Self::p256(kid, pair)
                } else if let Ok(pair) = RsaKeyPair::from_pkcs8(der) {
                    Self::rsa(kid, pair)
                } else {
                    Err(SessionError::Key(
                        "not a PKCS#8 Ed25519, P-256 or RSA (2048 to 8192 bits) private key".into(),
                    ))
                }
            }
            "RSA PRIVATE KEY" => RsaKeyPair::from_der(der)
                .map_err(|_| {
                    SessionError::Key("not a PKCS#1 RSA (2048 to 8192 bits) private key".into())
                })
                .and_then(|pair| Self::rsa(kid, pair)),
            "EC PRIVATE KEY" => EcdsaKeyPair::from_private_key_der(p256, der)
                .map_err(|_| SessionError::Key("not a SEC 1 P-256 private key".into()))
                .and_then(|pair| Self::p256(kid, pair)),
            "ENCRYPTED PRIVATE KEY" => Err(SessionError::Key(
                "encrypted private keys are not supported (decrypt with `openssl pkcs8`)".into(),
            )),
            _ => Err(SessionError::Key(
                "expected a PRIVATE KEY, RSA PRIVATE KEY or EC PRIVATE KEY PEM block".into(),
            )),
        }
    }

    fn generate(alg: SigningAlg, kid: String) -> Result<Self, SessionError> {
        let failed = |what: &str| SessionError::Key(format!("generating {what} key failed"));
        match alg {
            SigningAlg::EdDSA => {
                let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new())
                    .map_err(|_| failed("an Ed25519"))?;
                let pair =
                    Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|_| failed("an Ed25519"))?;
                Self::ed25519(kid, pair)
            }
            SigningAlg::Rs256 => {
                let pair = RsaKeyPair::generate(KeySize::Rsa2048).map_err(|_| failed("an RSA"))?;
                Self::rsa(kid, pair)
            }
            SigningAlg::Es256 => {
                let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING)
                    .map_err(|_| failed("a P-256"))?;
                Self::p256(kid, pair)
            }
        }
    }

    pub(crate) fn alg(&self) -> SigningAlg {
        self.public.alg
    }

    /// The signature over `message`: 64 bytes for Ed25519 and P-256 (`r || s`), the modulus
    /// length for RSA.
    fn sign(&self, message: &[u8]) -> Result<Vec<u8>, SessionError> {
        let failed = || SessionError::Sign("the signing key refused to sign".into());
        match &self.pair {
            Pair::Ed25519(pair) => Ok(pair.sign(message).as_ref().to_vec()),
            Pair::Rsa { pair, .. } => {
                let mut signature = vec![0u8; pair.public_modulus_len()];
                pair.sign(
                    &RSA_PKCS1_SHA256,
                    &SystemRandom::new(),
                    message,
                    &mut signature,
                )
                .map_err(|_| failed())?;
                Ok(signature)
            }
            Pair::P256 { pair, .. } => pair
                .sign(&SystemRandom::new(), message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| failed()),
        }
    }

    fn signature_len(&self) -> usize {
        match &self.pair {
            Pair::Ed25519(_) | Pair::P256 { .. } => 64,
            Pair::Rsa { pair, .. } => pair.public_modulus_len(),
        }
    }

    /// The JWS compact serialization (RFC 7515 §7.1) of `claims` under `header` (whose `alg`
    /// the caller matched to this key), signed with this key without re-parsing it. For
    /// Ed25519 and RSA (deterministic signatures) byte for byte what `jsonwebtoken::encode`
    /// makes of them; a test compares the two.
    pub(crate) fn sign_jws(
        &self,
        header: &Header,
        claims: &impl Serialize,
    ) -> Result<String, SessionError> {
        let header = serde_json::to_vec(header).map_err(|e| SessionError::Sign(e.to_string()))?;
        let claims = serde_json::to_vec(claims).map_err(|e| SessionError::Sign(e.to_string()))?;
        // 4/3 of the input, two dots and the signature.
        let mut jws =
            String::with_capacity((header.len() + claims.len() + self.signature_len()) * 4 / 3 + 8);
        URL_SAFE_NO_PAD.encode_string(&header, &mut jws);
        jws.push('.');
        URL_SAFE_NO_PAD.encode_string(&claims, &mut jws);
        let signature = self.sign(jws.as_bytes())?;
        jws.push('.');
        URL_SAFE_NO_PAD.encode_string(&signature, &mut jws);
        Ok(jws)
    }

    fn derive_secret(&self, label: &str) -> [u8; 32] {
        let message = derive_message(label);
        let mut out = [0u8; 32];
        match &self.pair {
            Pair::Ed25519(pair) => {
                let signature = pair.sign(message.as_bytes());
                let digest =
                    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, signature.as_ref());
                out.copy_from_slice(digest.as_ref());
            }
            Pair::Rsa { derive, .. } | Pair::P256 { derive, .. } => {
                out.copy_from_slice(hmac::sign(derive, message.as_bytes()).as_ref());
            }
        }
        out
    }
}

/// The HMAC-SHA256 key `derive_secret` uses for RSA and P-256 keys: SHA-256 of a fixed prefix
/// and `secret` (the RSA signature over `derive_message("")`, or the P-256 private scalar).
fn derive_key(secret: &[u8]) -> hmac::Key {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    ctx.update(b"unilogin derive_secret key\0");
    ctx.update(secret);
    hmac::Key::new(hmac::HMAC_SHA256, ctx.finish().as_ref())
}

/// The algorithm-specific members of a published JWK.
#[derive(Clone)]
enum Jwk {
    /// RFC 8037: `x` is the raw 32-byte public key.
    Okp { x: String },
    /// RFC 7518 §6.3.1: modulus and exponent, big-endian without leading zeros.
    Rsa { n: String, e: String },
    /// RFC 7518 §6.2.1: the P-256 point's coordinates, 32 bytes each.
    Ec { x: String, y: String },
}

/// A published public key.
#[derive(Clone)]
pub(crate) struct PublicKey {
    pub(crate) kid: String,
    alg: SigningAlg,
    jwk: Jwk,
    /// What aws-lc-rs verifies against: the raw Ed25519 key, the PKCS#1 `RSAPublicKey` DER, or
    /// the uncompressed P-256 point.
    raw: Arc<[u8]>,
}

impl PublicKey {
    fn jwk(&self) -> Value {
        let (kid, alg) = (&self.kid, self.alg.as_str());
        match &self.jwk {
            Jwk::Okp { x } => json!({
                "kty": "OKP", "crv": "Ed25519", "x": x, "kid": kid, "alg": alg, "use": "sig",
            }),
            Jwk::Rsa { n, e } => json!({
                "kty": "RSA", "n": n, "e": e, "kid": kid, "alg": alg, "use": "sig",
            }),
            Jwk::Ec { x, y } => json!({
                "kty": "EC", "crv": "P-256", "x": x, "y": y, "kid": kid, "alg": alg, "use": "sig",
            }),
        }
    }

    fn decoding_key(&self) -> Option<DecodingKey> {
        match &self.jwk {
            Jwk::Okp { x } => DecodingKey::from_ed_components(x).ok(),
            Jwk::Rsa { n, e } => DecodingKey::from_rsa_components(n, e).ok(),
            Jwk::Ec { x, y } => DecodingKey::from_ec_components(x, y).ok(),
        }
    }

    fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        UnparsedPublicKey::new(self.alg.verification(), &*self.raw)
            .verify(message, signature)
            .is_ok()
    }
}

impl SessionKeys {
    /// One fresh Ed25519 key with a random key id, plus a staged next key (see
    /// [`stage_next`](Self::stage_next)), so even the first rotation signs with a published key.
    /// The same as `generate_alg(SigningAlg::EdDSA)`.
    pub fn generate() -> Result<Self, SessionError> {
        Self::generate_alg(SigningAlg::EdDSA)
    }

    /// One fresh key of algorithm `alg` (RSA keys have 2048 bits, ES256 keys are on P-256) with
    /// a random key id, plus a staged next key of the same algorithm. Generating an RSA key
    /// takes tens of milliseconds; this makes two.
    ///
    /// ```
    /// use std::time::Duration;
    /// use unilogin_axum::session::{SessionKeys, SigningAlg};
    /// let keys = SessionKeys::generate_alg(SigningAlg::Rs256)?;
    /// assert_eq!(keys.alg(), SigningAlg::Rs256);
    /// let jwk = &keys.jwks()["keys"][0];
    /// assert_eq!((jwk["kty"].as_str(), jwk["alg"].as_str()), (Some("RSA"), Some("RS256")));
    ///
    /// let token = keys.sign_jws(Some("JWT"), &serde_json::json!({"sub": "u1"}))?;
    /// assert_eq!(keys.verify_jws(&token).unwrap()["sub"], "u1");
    /// // Tokens signed before a rotation still verify while their key is published.
    /// keys.rotate(Duration::from_secs(600))?;
    /// assert!(keys.verify_jws(&token).is_ok());
    /// # Ok::<(), unilogin_axum::session::SessionError>(())
    /// ```
    pub fn generate_alg(alg: SigningAlg) -> Result<Self, SessionError> {
        let keys = Self::from_signing_key(new_signing_key(alg)?);
        keys.stage_next()?;
        Ok(keys)
    }

    /// Loads a private key from PEM under key id `kid`, detecting the algorithm:
    ///
    /// - `-----BEGIN PRIVATE KEY-----` (PKCS#8): Ed25519 (v1 and v2 documents, as written by
    ///   `openssl genpkey -algorithm ED25519`), P-256 (`openssl genpkey -algorithm EC -pkeyopt
    ///   ec_paramgen_curve:P-256`) or RSA of 2048 to 8192 bits (`openssl genpkey -algorithm RSA`);
    /// - `-----BEGIN RSA PRIVATE KEY-----` (PKCS#1 RSA);
    /// - `-----BEGIN EC PRIVATE KEY-----` (SEC 1 P-256).
    ///
    /// Text before the block is ignored; encrypted keys and other curves are refused.
    pub fn from_pkcs8_pem(pem: &str, kid: &str) -> Result<Self, SessionError> {
        check_kid(kid)?;
        let (label, mut der) = parse_pem(pem)?;
        let key = SigningKey::from_der(kid.to_string(), label, &der);
        der.fill(0);
        Ok(Self::from_signing_key(key?))
    }

    fn from_signing_key(key: SigningKey) -> Self {
        Self {
            inner: Arc::new(RwLock::new(KeySet {
                alg: key.alg(),
                current: Arc::new(key),
                next: None,
                retired: Vec::new(),
            })),
        }
    }

    /// The algorithm of every key in the set.
    pub fn alg(&self) -> SigningAlg {
        self.read().alg
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
        let key = Arc::new(new_signing_key(self.alg())?);
        self.write().next.get_or_insert(key);
        Ok(())
    }

    /// Makes the staged next key current (or, with none staged, a new one) and stages a fresh
    /// next key, both of the set's algorithm. The old public key stays published in
    /// [`jwks`](Self::jwks) for `token_ttl` (plus [`RETIREMENT_MARGIN`]), so tokens it signed
    /// keep verifying until they expire.
    pub fn rotate(&self, token_ttl: Duration) -> Result<(), SessionError> {
        let now = SystemTime::now();
        let retire_at = now
            .checked_add(token_ttl)
            .and_then(|t| t.checked_add(RETIREMENT_MARGIN))
            .ok_or_else(|| SessionError::Key("token_ttl is too large".into()))?;
        let alg = self.alg();
        // Generated before taking the lock: an RSA key takes a while.
        let staged = Arc::new(new_signing_key(alg)?);
        let mut set = self.write();
        let next = match set.next.take() {
            Some(next) => next,
            None => Arc::new(new_signing_key(alg)?),
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

    /// A 32-byte secret derived from the current signing key for `label`: every process
    /// holding the same key derives the same secret, and nobody without it can. For keys of
    /// other purposes (the gateway's login-binding MAC key), so replicas sharing session keys
    /// share them too.
    ///
    /// - Ed25519: SHA-256 of the key's (deterministic) signature over a message naming `label`
    ///   that no JWS signing input can equal.
    /// - RSA: HMAC-SHA256 over that message, keyed with SHA-256 of
    ///   `"unilogin derive_secret key\0"` followed by the key's (deterministic, PKCS#1 v1.5
    ///   SHA-256) signature over the message for the empty label.
    /// - P-256: HMAC-SHA256 over that message, keyed with SHA-256 of the same prefix followed
    ///   by the 32-byte big-endian private scalar.
    ///
    /// Stable across releases for a given key: changing it would invalidate every login in
    /// flight on the next deployment.
    ///
    /// ```
    /// use unilogin_axum::session::SessionKeys;
    /// let keys = SessionKeys::generate().unwrap();
    /// assert_eq!(keys.derive_secret("a"), keys.clone().derive_secret("a"));
    /// assert_ne!(keys.derive_secret("a"), keys.derive_secret("b"));
    /// assert_ne!(keys.derive_secret("a"), SessionKeys::generate().unwrap().derive_secret("a"));
    /// ```
    pub fn derive_secret(&self, label: &str) -> [u8; 32] {
        self.read().current.derive_secret(label)
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

    /// The public key set as a JWKS document, the current signing key first, then the staged
    /// next key, then retired keys that are still within their lifetime. Each key is one of
    ///
    /// - `{"kty":"OKP","crv":"Ed25519","x":..,"kid":..,"alg":"EdDSA","use":"sig"}`,
    /// - `{"kty":"RSA","n":..,"e":..,"kid":..,"alg":"RS256","use":"sig"}`,
    /// - `{"kty":"EC","crv":"P-256","x":..,"y":..,"kid":..,"alg":"ES256","use":"sig"}`.
    pub fn jwks(&self) -> Value {
        let keys: Vec<Value> = self.published().iter().map(PublicKey::jwk).collect();
        json!({ "keys": keys })
    }

    /// Signs `claims` with the current key as a compact JWS whose header is
    /// `{"typ": typ, "alg": .., "kid": ..}` (no `typ` when `typ` is `None`), e.g. `typ`
    /// `JWT` for ID tokens and `logout+jwt` for logout tokens. Claims are serialised as they
    /// are; nothing is added.
    ///
    /// ```
    /// use unilogin_axum::session::{SessionKeys, SigningAlg};
    /// let keys = SessionKeys::generate_alg(SigningAlg::Es256)?;
    /// let token = keys.sign_jws(Some("logout+jwt"), &serde_json::json!({"sid": "s1"}))?;
    /// let header = jsonwebtoken::decode_header(&token).unwrap();
    /// assert_eq!(header.typ.as_deref(), Some("logout+jwt"));
    /// assert_eq!(header.kid, Some(keys.current_kid()));
    /// assert_eq!(header.alg, jsonwebtoken::Algorithm::ES256);
    /// # Ok::<(), unilogin_axum::session::SessionError>(())
    /// ```
    pub fn sign_jws(
        &self,
        typ: Option<&str>,
        claims: &impl Serialize,
    ) -> Result<String, SessionError> {
        let key = self.signing_key();
        let mut header = Header::new(key.alg().into());
        header.kid = Some(key.kid.clone());
        header.typ = typ.map(str::to_string);
        key.sign_jws(&header, claims)
    }

    /// Checks a compact JWS signed by one of the published keys (current, staged next, or
    /// retired and still published), chosen by the header's `kid`, and returns its payload (a
    /// JSON object). The header's `alg` must be the key's; a `crit` header is refused.
    ///
    /// No claim is checked, `exp` included: the caller decides (an RP-initiated logout accepts
    /// an expired `id_token_hint`). Errors: [`VerifyError::Malformed`] (not a compact JWS with
    /// a JSON object payload, wrong `alg`), [`VerifyError::UnknownKey`] (no `kid`, or none
    /// published), [`VerifyError::BadSignature`].
    pub fn verify_jws(&self, token: &str) -> Result<Value, VerifyError> {
        if token.len() > MAX_JWS_LEN {
            return Err(VerifyError::Malformed);
        }
        let mut parts = token.split('.');
        let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(VerifyError::Malformed);
        };
        let header = decode_json_object(header_b64)?;
        if header.contains_key("crit") {
            return Err(VerifyError::Malformed);
        }
        let alg = header
            .get("alg")
            .and_then(Value::as_str)
            .ok_or(VerifyError::Malformed)?;
        let kid = header
            .get("kid")
            .and_then(Value::as_str)
            .ok_or(VerifyError::UnknownKey)?;
        let key = self.published_key(kid).ok_or(VerifyError::UnknownKey)?;
        if alg != key.alg.as_str() {
            return Err(VerifyError::Malformed);
        }
        let signature = URL_SAFE_NO_PAD
            .decode(signature_b64)
            .map_err(|_| VerifyError::Malformed)?;
        let signing_input = &token[..header_b64.len() + 1 + payload_b64.len()];
        if !key.verify(signing_input.as_bytes(), &signature) {
            return Err(VerifyError::BadSignature);
        }
        decode_json_object(payload_b64).map(Value::Object)
    }

    /// The verification key for `kid`, if it is published.
    pub(crate) fn decoding_key(&self, kid: &str) -> Option<DecodingKey> {
        self.published_key(kid).and_then(|k| k.decoding_key())
    }

    /// The published key with id `kid`, if any.
    fn published_key(&self, kid: &str) -> Option<PublicKey> {
        let now = SystemTime::now();
        let set = self.read();
        std::iter::once(&set.current.public)
            .chain(set.next.iter().map(|k| &k.public))
            .chain(
                set.retired
                    .iter()
                    .filter(|(_, until)| *until > now)
                    .map(|(k, _)| k),
            )
            .find(|k| k.kid == kid)
            .cloned()
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
            .field("alg", &self.alg())
            .field("current_kid", &self.current_kid())
            .field("published", &self.kids())
            .finish()
    }
}

/// A base64url (no padding) JSON object, or `Malformed`.
fn decode_json_object(b64: &str) -> Result<serde_json::Map<String, Value>, VerifyError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(b64)
        .map_err(|_| VerifyError::Malformed)?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(VerifyError::Malformed),
    }
}

/// The label and DER body of the first PEM block in `pem` (RFC 7468). Error messages never
/// contain the input.
fn parse_pem(pem: &str) -> Result<(&str, Vec<u8>), SessionError> {
    let bad = || SessionError::Key("not a PEM private key".into());
    let start = pem.find("-----BEGIN ").ok_or_else(bad)? + "-----BEGIN ".len();
    let rest = &pem[start..];
    let label_end = rest.find("-----").ok_or_else(bad)?;
    let label = &rest[..label_end];
    if label.contains(['\n', '\r']) {
        return Err(bad());
    }
    let body = &rest[label_end + "-----".len()..];
    let end = body
        .find(&format!("-----END {label}-----"))
        .ok_or_else(bad)?;
    let body = &body[..end];
    if body.contains(':') {
        // RFC 1421 headers (`Proc-Type: 4,ENCRYPTED`): a legacy encrypted key.
        return Err(SessionError::Key(
            "encrypted private keys are not supported (decrypt with `openssl pkcs8`)".into(),
        ));
    }
    let b64: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let der = STANDARD.decode(b64.as_bytes()).map_err(|_| bad())?;
    Ok((label, der))
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

fn new_signing_key(alg: SigningAlg) -> Result<SigningKey, SessionError> {
    let kid = random_id(&SystemRandom::new(), 12)?;
    SigningKey::generate(alg, kid)
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
    use jsonwebtoken::jwk::Jwk as JwtJwk;
    use jsonwebtoken::{EncodingKey, Validation};

    // Generated with `openssl genpkey -algorithm ED25519` (PKCS#8 v1); a test-only key.
    const PEM: &str = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIAu4vFM0/jEgkjgtKnU3RgHjnFHDuKYgV82orab7LD25\n-----END PRIVATE KEY-----\n";
    // Test-only keys made with openssl (see tests/keys/README.md).
    const RSA_PKCS8: &str = include_str!("../../tests/keys/rsa-pkcs8.pem");
    const RSA_PKCS1: &str = include_str!("../../tests/keys/rsa-pkcs1.pem");
    const P256_PKCS8: &str = include_str!("../../tests/keys/p256-pkcs8.pem");
    const P256_SEC1: &str = include_str!("../../tests/keys/p256-sec1.pem");
    const P384_PKCS8: &str = include_str!("../../tests/keys/p384-pkcs8.pem");
    const RSA_1024: &str = include_str!("../../tests/keys/rsa1024-pkcs8.pem");
    // `openssl rsa -noout -modulus` of rsa-pkcs8.pem, base64url.
    const RSA_N: &str = "mSWTDKm98CGBWZLiu6pFFoRX1y4fefraQb1UDpOkbMl0Jy9zHl2g-Fu85Ht4BR3SwTndLTFCY1tP_wJsqkjMJAlc4uG62U4-n1o2YfLdumC15tLDF0eYhuHs58ivlty_lMWcaXsjCUi2mUTErhh8uH-s0kE8Bvz6RIjeuLN3UYRDB96ss-fj9zkDu-J6jKVbFOtIsLFAMpNZii18JuzKhOLgUuKPjzvPBnXQrIkhmABNZrGHNHIlEkoHJtJPHG8XRFPtIamOOTkjVI-9ObSyMgZig6Psdaw2Ph3lVqPno0sLZHYW8jtFirqipgjS6EmZGkmO1udDA9BOgrHcUErbiw";
    // The last 64 bytes of `openssl ec -pubout -outform DER` of p256-pkcs8.pem, base64url.
    const P256_X: &str = "RoFQzJE62lUikpejuf1K452pxv2XIVgCivOt5wN4V7k";
    const P256_Y: &str = "NjnoRoecZdHR7klngSEpwWGssvdpNomyuNgjXFMn2eo";

    fn claims() -> Value {
        json!({ "sub": "user001", "exp": 4_000_000_000u64, "name": "张三 \"q\"" })
    }

    /// The published JWK for `kid`, as a verifier sees it.
    fn published_jwk(keys: &SessionKeys, kid: &str) -> Value {
        keys.jwks()["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kid"] == kid)
            .cloned()
            .unwrap_or_else(|| panic!("{kid} is not published"))
    }

    /// `jsonwebtoken::decode` of `token` with a key built from the published JWK alone.
    fn decode_with_published_jwk(keys: &SessionKeys, token: &str) -> Value {
        let kid = jsonwebtoken::decode_header(token).unwrap().kid.unwrap();
        let jwk: JwtJwk = serde_json::from_value(published_jwk(keys, &kid)).unwrap();
        let decoding = DecodingKey::from_jwk(&jwk).unwrap();
        let mut validation = Validation::new(keys.alg().into());
        validation.validate_aud = false;
        jsonwebtoken::decode::<Value>(token, &decoding, &validation)
            .unwrap()
            .claims
    }

    fn pem(label: &str, der: &[u8]) -> String {
        let b64 = STANDARD.encode(der);
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(64)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect();
        format!(
            "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
            lines.join("\n")
        )
    }

    fn replace_part(token: &str, index: usize, part: &str) -> String {
        let mut parts: Vec<&str> = token.split('.').collect();
        parts[index] = part;
        parts.join(".")
    }

    #[test]
    fn generated_keys_publish_the_current_and_the_next_okp_jwk() {
        let keys = SessionKeys::generate().unwrap();
        assert_eq!(keys.alg(), SigningAlg::EdDSA);
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
    fn generated_rsa_and_ec_keys_publish_their_jwk_members_and_nothing_private() {
        let rsa = SessionKeys::generate_alg(SigningAlg::Rs256).unwrap();
        let list = rsa.jwks()["keys"].as_array().unwrap().clone();
        assert_eq!(list.len(), 2);
        for k in &list {
            let members: Vec<&str> = k.as_object().unwrap().keys().map(String::as_str).collect();
            assert_eq!(members.len(), 6, "{members:?}");
            assert_eq!(
                (k["kty"].as_str(), k["alg"].as_str()),
                (Some("RSA"), Some("RS256"))
            );
            assert_eq!(k["use"], "sig");
            assert_eq!(k["e"], "AQAB");
            let n = URL_SAFE_NO_PAD.decode(k["n"].as_str().unwrap()).unwrap();
            assert_eq!(n.len(), 256, "2048 bits, no leading zero byte");
            assert_ne!(n[0], 0);
        }
        assert_ne!(list[0]["n"], list[1]["n"]);
        let ec = SessionKeys::generate_alg(SigningAlg::Es256).unwrap();
        let list = ec.jwks()["keys"].as_array().unwrap().clone();
        assert_eq!(list.len(), 2);
        for k in &list {
            let members: Vec<&str> = k.as_object().unwrap().keys().map(String::as_str).collect();
            assert_eq!(members.len(), 7, "{members:?}");
            assert_eq!(
                (k["kty"].as_str(), k["crv"].as_str()),
                (Some("EC"), Some("P-256"))
            );
            assert_eq!(
                (k["alg"].as_str(), k["use"].as_str()),
                (Some("ES256"), Some("sig"))
            );
            for c in ["x", "y"] {
                let bytes = URL_SAFE_NO_PAD.decode(k[c].as_str().unwrap()).unwrap();
                assert_eq!(bytes.len(), 32, "{c} is the fixed-length coordinate");
            }
        }
        assert_ne!(list[0]["x"], list[1]["x"]);
    }

    #[test]
    fn each_alg_signs_tokens_jsonwebtoken_verifies_from_the_jwk_before_and_after_rotation() {
        for alg in SigningAlg::ALL {
            let keys = SessionKeys::generate_alg(alg).unwrap();
            let before = keys.sign_jws(Some("JWT"), &claims()).unwrap();
            let header = jsonwebtoken::decode_header(&before).unwrap();
            assert_eq!(header.alg, alg.into());
            assert_eq!(header.kid.as_deref(), Some(keys.current_kid().as_str()));
            assert_eq!(header.typ.as_deref(), Some("JWT"));
            assert_eq!(decode_with_published_jwk(&keys, &before), claims(), "{alg}");

            let staged = keys.next_kid().unwrap();
            keys.rotate(Duration::from_secs(600)).unwrap();
            assert_eq!(keys.current_kid(), staged);
            assert_eq!(keys.alg(), alg);
            let after = keys.sign_jws(None, &claims()).unwrap();
            let header = jsonwebtoken::decode_header(&after).unwrap();
            assert_eq!(header.kid.as_deref(), Some(staged.as_str()));
            assert_eq!(header.typ, None);
            // Both verify against the JWKS published after the rotation.
            assert_eq!(decode_with_published_jwk(&keys, &before), claims(), "{alg}");
            assert_eq!(decode_with_published_jwk(&keys, &after), claims(), "{alg}");
            assert_eq!(keys.verify_jws(&before).unwrap(), claims());
            assert_eq!(keys.verify_jws(&after).unwrap(), claims());
            // The staged and the retired keys have the set's algorithm too.
            let jwks = keys.jwks();
            let list = jwks["keys"].as_array().unwrap();
            assert_eq!(list.len(), 3);
            assert!(list.iter().all(|k| k["alg"] == alg.as_str()), "{jwks}");
        }
    }

    #[test]
    fn signatures_have_the_jose_lengths() {
        for (alg, len) in [
            (SigningAlg::EdDSA, 64),
            (SigningAlg::Rs256, 256),
            (SigningAlg::Es256, 64),
        ] {
            let keys = SessionKeys::generate_alg(alg).unwrap();
            let token = keys.sign_jws(Some("JWT"), &claims()).unwrap();
            let signature = URL_SAFE_NO_PAD
                .decode(token.rsplit('.').next().unwrap())
                .unwrap();
            // ES256: `r || s`, not a DER `SEQUENCE` (which starts with 0x30 and is 70 to 72 bytes).
            assert_eq!(signature.len(), len, "{alg}");
        }
    }

    #[test]
    fn signatures_equal_jsonwebtoken_encode_for_deterministic_algs() {
        for (pem, alg, encoding) in [
            (
                PEM,
                SigningAlg::EdDSA,
                EncodingKey::from_ed_pem(PEM.as_bytes()).unwrap(),
            ),
            (
                RSA_PKCS8,
                SigningAlg::Rs256,
                EncodingKey::from_rsa_pem(RSA_PKCS8.as_bytes()).unwrap(),
            ),
            (
                RSA_PKCS1,
                SigningAlg::Rs256,
                EncodingKey::from_rsa_pem(RSA_PKCS1.as_bytes()).unwrap(),
            ),
        ] {
            let keys = SessionKeys::from_pkcs8_pem(pem, "k1").unwrap();
            assert_eq!(keys.alg(), alg);
            let mut header = Header::new(alg.into());
            header.kid = Some("k1".into());
            header.typ = Some("JWT".into());
            let ours = keys.sign_jws(Some("JWT"), &claims()).unwrap();
            let theirs = jsonwebtoken::encode(&header, &claims(), &encoding).unwrap();
            assert_eq!(ours, theirs, "{alg}");
        }
    }

    #[test]
    fn fixed_pems_load_with_the_openssl_public_keys_in_every_encoding() {
        for (pem, other) in [(RSA_PKCS8, RSA_PKCS1), (P256_PKCS8, P256_SEC1)] {
            let a = SessionKeys::from_pkcs8_pem(pem, "file").unwrap();
            let b = SessionKeys::from_pkcs8_pem(other, "file").unwrap();
            assert_eq!(
                a.jwks(),
                b.jwks(),
                "PKCS#8 and the traditional form are one key"
            );
            // A token signed by one loads verifies with the other.
            let token = b.sign_jws(Some("JWT"), &claims()).unwrap();
            assert_eq!(a.verify_jws(&token).unwrap(), claims());
            assert_eq!(a.derive_secret("binding"), b.derive_secret("binding"));
        }
        let rsa = SessionKeys::from_pkcs8_pem(RSA_PKCS8, "rsa-1").unwrap();
        assert_eq!(rsa.alg(), SigningAlg::Rs256);
        assert_eq!(
            rsa.jwks(),
            json!({"keys": [{
                "kty": "RSA", "n": RSA_N, "e": "AQAB", "kid": "rsa-1", "alg": "RS256", "use": "sig",
            }]})
        );
        let ec = SessionKeys::from_pkcs8_pem(P256_SEC1, "ec-1").unwrap();
        assert_eq!(ec.alg(), SigningAlg::Es256);
        assert_eq!(
            ec.jwks(),
            json!({"keys": [{
                "kty": "EC", "crv": "P-256", "x": P256_X, "y": P256_Y,
                "kid": "ec-1", "alg": "ES256", "use": "sig",
            }]})
        );
    }

    #[test]
    fn keys_serialised_by_aws_lc_round_trip_through_pem() {
        use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
        let rng = SystemRandom::new();
        // Ed25519, PKCS#8 v2 (with the public key).
        let ed = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(ed.as_ref()).unwrap();
        let keys = SessionKeys::from_pkcs8_pem(&pem("PRIVATE KEY", ed.as_ref()), "ed").unwrap();
        assert_eq!(keys.alg(), SigningAlg::EdDSA);
        assert_eq!(
            keys.jwks()["keys"][0]["x"],
            URL_SAFE_NO_PAD.encode(pair.public_key())
        );
        // RSA, PKCS#8 v1.
        let pair = RsaKeyPair::generate(KeySize::Rsa2048).unwrap();
        let der: Pkcs8V1Der<'_> = pair.as_der().unwrap();
        let keys = SessionKeys::from_pkcs8_pem(&pem("PRIVATE KEY", der.as_ref()), "rsa").unwrap();
        assert_eq!(keys.alg(), SigningAlg::Rs256);
        let modulus = pair.public_key().modulus();
        let n = URL_SAFE_NO_PAD.encode(modulus.big_endian_without_leading_zero());
        assert_eq!(keys.jwks()["keys"][0]["n"], n);
        // A signature made by aws-lc-rs with the original pair verifies with the loaded set.
        let token = keys.sign_jws(Some("JWT"), &claims()).unwrap();
        let (input, _) = token.rsplit_once('.').unwrap();
        let mut signature = vec![0u8; pair.public_modulus_len()];
        pair.sign(&RSA_PKCS1_SHA256, &rng, input.as_bytes(), &mut signature)
            .unwrap();
        let forged_by_owner = format!("{input}.{}", URL_SAFE_NO_PAD.encode(&signature));
        assert_eq!(
            forged_by_owner, token,
            "PKCS#1 v1.5 is deterministic: the same key signed"
        );
        // P-256, PKCS#8 v1.
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        let der = pair.to_pkcs8v1().unwrap();
        let keys = SessionKeys::from_pkcs8_pem(&pem("PRIVATE KEY", der.as_ref()), "ec").unwrap();
        assert_eq!(keys.alg(), SigningAlg::Es256);
        let jwk = &keys.jwks()["keys"][0];
        let mut point = vec![0x04];
        point.extend(URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap());
        point.extend(URL_SAFE_NO_PAD.decode(jwk["y"].as_str().unwrap()).unwrap());
        assert_eq!(point, pair.public_key().as_ref());
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
        // Text before the block (as `openssl` sometimes writes) and CRLF line ends are fine.
        let noisy = format!("Key for tests\r\n{}", PEM.replace('\n', "\r\n"));
        let noisy = SessionKeys::from_pkcs8_pem(&noisy, "n").unwrap();
        assert_eq!(noisy.jwks()["keys"][0]["x"].as_str().unwrap(), x);
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
    fn unsupported_and_mislabelled_keys_are_typed_errors() {
        let p384 = SessionKeys::from_pkcs8_pem(P384_PKCS8, "k").unwrap_err();
        assert!(
            matches!(&p384, SessionError::Key(m) if m.contains("P-256")),
            "{p384}"
        );
        let short = SessionKeys::from_pkcs8_pem(RSA_1024, "k").unwrap_err();
        assert!(
            matches!(&short, SessionError::Key(m) if m.contains("2048")),
            "{short}"
        );
        // The body of a PKCS#8 document under the PKCS#1 label, and an RSA key as SEC 1.
        let body = RSA_PKCS8
            .replace("BEGIN PRIVATE KEY", "BEGIN RSA PRIVATE KEY")
            .replace("END PRIVATE KEY", "END RSA PRIVATE KEY");
        assert!(matches!(
            SessionKeys::from_pkcs8_pem(&body, "k"),
            Err(SessionError::Key(_))
        ));
        let body = RSA_PKCS1.replace(" RSA ", " EC ");
        assert!(matches!(
            SessionKeys::from_pkcs8_pem(&body, "k"),
            Err(SessionError::Key(_))
        ));
        for pem in [
            "-----BEGIN ENCRYPTED PRIVATE KEY-----\nMIIB\n-----END ENCRYPTED PRIVATE KEY-----\n",
            concat!(
                "-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\n",
                "DEK-Info: AES-128-CBC,00\n\nMIIB\n-----END RSA PRIVATE KEY-----\n",
            ),
        ] {
            let err = SessionKeys::from_pkcs8_pem(pem, "k").unwrap_err();
            assert!(err.to_string().contains("encrypted"), "{err}");
            assert!(!err.to_string().contains("MIIB"));
        }
        let public = "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----\n";
        assert!(matches!(
            SessionKeys::from_pkcs8_pem(public, "k"),
            Err(SessionError::Key(_))
        ));
        // A BEGIN without its END, and mismatched labels.
        let truncated = &PEM[..PEM.find("-----END").unwrap()];
        assert!(SessionKeys::from_pkcs8_pem(truncated, "k").is_err());
        let mismatched = PEM.replace("END PRIVATE KEY", "END RSA PRIVATE KEY");
        assert!(SessionKeys::from_pkcs8_pem(&mismatched, "k").is_err());
    }

    #[test]
    fn verify_jws_rejects_tampering_unknown_kids_and_other_key_sets() {
        for alg in SigningAlg::ALL {
            let keys = SessionKeys::generate_alg(alg).unwrap();
            let token = keys.sign_jws(Some("JWT"), &claims()).unwrap();
            assert_eq!(keys.verify_jws(&token).unwrap(), claims());
            // A changed payload, and a changed signature.
            let admin = URL_SAFE_NO_PAD.encode(br#"{"sub":"admin","exp":4000000000}"#);
            let tampered = replace_part(&token, 1, &admin);
            assert_eq!(
                keys.verify_jws(&tampered),
                Err(VerifyError::BadSignature),
                "{alg}"
            );
            let mut signature = URL_SAFE_NO_PAD
                .decode(token.rsplit('.').next().unwrap())
                .unwrap();
            signature[10] ^= 1;
            let flipped = replace_part(&token, 2, &URL_SAFE_NO_PAD.encode(&signature));
            assert_eq!(
                keys.verify_jws(&flipped),
                Err(VerifyError::BadSignature),
                "{alg}"
            );
            // Another key set: its own kid is unknown here ...
            let other = SessionKeys::generate_alg(alg).unwrap();
            let foreign = other.sign_jws(Some("JWT"), &claims()).unwrap();
            assert_eq!(
                keys.verify_jws(&foreign),
                Err(VerifyError::UnknownKey),
                "{alg}"
            );
            // ... and with our kid its signature does not verify.
            let header = URL_SAFE_NO_PAD.encode(
                json!({"typ": "JWT", "alg": alg.as_str(), "kid": keys.current_kid()}).to_string(),
            );
            let (_, rest) = foreign.split_once('.').unwrap();
            let (payload, _) = rest.split_once('.').unwrap();
            let forged = signed_by(&other, &header, payload);
            assert_eq!(
                keys.verify_jws(&forged),
                Err(VerifyError::BadSignature),
                "{alg}"
            );
            // No kid at all.
            let no_kid = URL_SAFE_NO_PAD.encode(json!({"alg": alg.as_str()}).to_string());
            let no_kid = replace_part(&token, 0, &no_kid);
            assert_eq!(
                keys.verify_jws(&no_kid),
                Err(VerifyError::UnknownKey),
                "{alg}"
            );
        }
    }

    /// A token with the base64url `header` and `payload` signed by `signer`'s current key,
    /// whatever key id and algorithm the header names.
    fn signed_by(signer: &SessionKeys, header: &str, payload: &str) -> String {
        let input = format!("{header}.{payload}");
        let signature = signer.signing_key().sign(input.as_bytes()).unwrap();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }

    #[test]
    fn verify_jws_refuses_other_algs_crit_and_malformed_input_but_not_expiry() {
        let keys = SessionKeys::generate_alg(SigningAlg::Rs256).unwrap();
        let kid = keys.current_kid();
        let payload = URL_SAFE_NO_PAD.encode(claims().to_string());
        for header in [
            json!({"alg": "none", "kid": kid}),
            json!({"alg": "HS256", "kid": kid}),
            json!({"alg": "PS256", "kid": kid}),
            json!({"alg": "RS256", "kid": kid, "crit": ["exp"], "exp": 1}),
            json!({"kid": kid}),
        ] {
            let header = URL_SAFE_NO_PAD.encode(header.to_string());
            // Properly signed by the right key: only the header is wrong.
            let token = signed_by(&keys, &header, &payload);
            assert_eq!(
                keys.verify_jws(&token),
                Err(VerifyError::Malformed),
                "{header}"
            );
        }
        for bad in ["", "a", "a.b", "a.b.c.d", "!!.b.c", "e30.e30.@@"] {
            assert_eq!(keys.verify_jws(bad), Err(VerifyError::Malformed), "{bad}");
        }
        // Correctly signed, but longer than anything worth parsing; a little shorter is fine.
        let padded = |n: usize| keys.sign_jws(None, &json!({"pad": "p".repeat(n)})).unwrap();
        let long = padded(MAX_JWS_LEN * 3 / 4);
        assert!(long.len() > MAX_JWS_LEN);
        assert_eq!(keys.verify_jws(&long), Err(VerifyError::Malformed));
        let fits = padded(MAX_JWS_LEN * 3 / 4 - 500);
        assert!(fits.len() <= MAX_JWS_LEN, "{}", fits.len());
        assert!(keys.verify_jws(&fits).is_ok());
        // A correctly signed payload that is not a JSON object.
        let array = keys.sign_jws(Some("JWT"), &json!([1, 2])).unwrap();
        assert_eq!(keys.verify_jws(&array), Err(VerifyError::Malformed));
        // Expiry is the caller's business.
        let expired = keys
            .sign_jws(Some("JWT"), &json!({"sub": "u", "exp": 1}))
            .unwrap();
        assert_eq!(keys.verify_jws(&expired).unwrap()["exp"], 1);
    }

    #[test]
    fn verify_jws_stops_accepting_a_retired_key_once_it_is_unpublished() {
        let keys = SessionKeys::generate_alg(SigningAlg::Es256).unwrap();
        let token = keys.sign_jws(Some("JWT"), &claims()).unwrap();
        keys.rotate(Duration::from_secs(60)).unwrap();
        assert!(keys.verify_jws(&token).is_ok());
        keys.write().retired[0].1 = SystemTime::now() - Duration::from_secs(1);
        assert_eq!(keys.verify_jws(&token), Err(VerifyError::UnknownKey));
    }

    #[test]
    fn derive_secret_is_pinned_per_key_and_differs_between_keys_and_labels() {
        // SHA-256 of `openssl pkeyutl -sign -rawin` over "unilogin derived secret\0binding\0(not
        // a JWS)" with the Ed25519 PEM: the value deployed gateways derive their binding key
        // from, which must not change.
        let hex = |b: [u8; 32]| b.iter().map(|x| format!("{x:02x}")).collect::<String>();
        let ed = SessionKeys::from_pkcs8_pem(PEM, "k").unwrap();
        assert_eq!(
            hex(ed.derive_secret("binding")),
            "82dc685605101a6c322454978eef26f392557ba7d55011959d80176e85f2c7b4"
        );
        // Computed with openssl and Python's hmac from the documented construction.
        let rsa = SessionKeys::from_pkcs8_pem(RSA_PKCS1, "k").unwrap();
        assert_eq!(
            hex(rsa.derive_secret("binding")),
            "cf822329d8b076972054e87eb1ab55a7c861a706199f4a59f3d8846306de1579"
        );
        let ec = SessionKeys::from_pkcs8_pem(P256_PKCS8, "k").unwrap();
        assert_eq!(
            hex(ec.derive_secret("binding")),
            "1f2e6636f485d377d7a68700e5827d7c68c610ea00fb66ee6c36d7473f75c103"
        );
        for alg in SigningAlg::ALL {
            let keys = SessionKeys::generate_alg(alg).unwrap();
            let other = SessionKeys::generate_alg(alg).unwrap();
            assert_eq!(keys.derive_secret("a"), keys.clone().derive_secret("a"));
            assert_ne!(keys.derive_secret("a"), keys.derive_secret("b"));
            assert_ne!(keys.derive_secret("a"), other.derive_secret("a"));
        }
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
        for (pem, alg) in [
            (PEM, SigningAlg::EdDSA),
            (RSA_PKCS1, SigningAlg::Rs256),
            (P256_SEC1, SigningAlg::Es256),
        ] {
            let keys = SessionKeys::from_pkcs8_pem(pem, "2026-01").unwrap();
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
            assert_eq!(keys.alg(), alg);
            assert!(
                keys.jwks()["keys"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|k| k["alg"] == alg.as_str())
            );
            // Without a staged key, rotation still works (new key at once) and stages the next.
            let unstaged = SessionKeys::from_pkcs8_pem(pem, "2026-01").unwrap();
            unstaged.rotate(Duration::from_secs(60)).unwrap();
            assert_ne!(unstaged.current_kid(), "2026-01");
            assert!(unstaged.next_kid().is_some());
            assert_eq!(unstaged.kids().len(), 3);
            assert_eq!(unstaged.signing_key().alg(), alg);
        }
    }

    #[test]
    fn debug_shows_alg_and_kids_only() {
        let keys = SessionKeys::from_pkcs8_pem(PEM, "kid-1").unwrap();
        let dbg = format!("{keys:?}");
        assert!(dbg.contains("kid-1"));
        assert!(dbg.contains("EdDSA"));
        assert!(!dbg.contains("MC4CAQAw"));
        assert!(!dbg.contains("PRIVATE"));
        let rsa = SessionKeys::from_pkcs8_pem(RSA_PKCS8, "rsa-kid").unwrap();
        let dbg = format!("{rsa:?}");
        assert_eq!(
            dbg,
            r#"SessionKeys { alg: Rs256, current_kid: "rsa-kid", published: ["rsa-kid"] }"#
        );
    }

    #[test]
    fn signing_alg_names_parse_and_display() {
        for alg in SigningAlg::ALL {
            assert_eq!(alg.to_string(), alg.as_str());
            assert_eq!(alg.as_str().parse::<SigningAlg>().unwrap(), alg);
            assert_eq!(
                alg.as_str().to_lowercase().parse::<SigningAlg>().unwrap(),
                alg
            );
        }
        assert_eq!(
            SigningAlg::ALL.map(SigningAlg::as_str),
            ["EdDSA", "RS256", "ES256"]
        );
        for bad in ["", "none", "HS256", "PS256", "ES384", "RS256 "] {
            assert!(
                matches!(bad.parse::<SigningAlg>(), Err(SessionError::Key(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn issuer_and_local_guard_with_rsa_keys() {
        use crate::Guard;
        use crate::session::SessionIssuer;
        let profile: unilogin_core::UserProfile = serde_json::from_value(json!({
            "platform": "dingtalk", "tenant": "acme", "user_id": "u1",
        }))
        .unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        for alg in [SigningAlg::Rs256, SigningAlg::Es256] {
            let keys = SessionKeys::generate_alg(alg).unwrap();
            let issuer = SessionIssuer::new(keys, "https://i", "apis", Duration::from_secs(60));
            let session = issuer.issue(&profile, &[]).unwrap();
            // The issuer signs and verifies with its keys' algorithm ...
            assert_eq!(
                jsonwebtoken::decode_header(&session.token).unwrap().alg,
                alg.into()
            );
            assert_eq!(issuer.verify(&session.token).unwrap(), session.claims);
            // ... but the guard accepts EdDSA session tokens only.
            let guard = Guard::for_issuer(&issuer).tenant("acme").build().unwrap();
            assert!(rt.block_on(guard.verify(&session.token)).is_err(), "{alg}");
        }
        // An EdDSA token presented to an RS256 issuer is refused, not verified.
        let ed = SessionIssuer::new(
            SessionKeys::generate().unwrap(),
            "https://i",
            "apis",
            Duration::from_secs(60),
        );
        let guard = Guard::for_issuer(&ed).tenant("acme").build().unwrap();
        let ed_session = ed.issue(&profile, &[]).unwrap();
        assert!(
            rt.block_on(guard.verify(&ed_session.token)).is_ok(),
            "the guard takes EdDSA"
        );
        let rsa = SessionIssuer::new(
            SessionKeys::generate_alg(SigningAlg::Rs256).unwrap(),
            "https://i",
            "apis",
            Duration::from_secs(60),
        );
        let token = ed.issue(&profile, &[]).unwrap().token;
        assert_eq!(rsa.verify(&token), Err(VerifyError::Malformed));
    }
}
