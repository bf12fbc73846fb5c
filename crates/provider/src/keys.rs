//! Id-token signing keys: one key set per algorithm the provider serves (RS256, ES256,
//! EdDSA), all published at `/oidc/jwks`.
//!
//! The provider signs through the [`IdTokenKeys`] trait, so any key holder fits: [`PemKey`]
//! (one fixed key from a PEM file) is here; a rotating key set implements the same three
//! methods (`alg`, `sign`, `jwks`) and publishes its staged and retired public keys in `jwks`.
//! Verifying an `id_token_hint` needs nothing more than the published JWKs.

use std::fmt;

use jsonwebtoken::jwk::{Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use unilogin_axum::session::{SessionKeys, SigningAlg};

use crate::error::{ProviderError, Result};

/// The signature algorithms of id tokens and logout tokens (JWA, RFC 7518 / RFC 8037).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum IdTokenAlg {
    /// RSASSA-PKCS1-v1_5 with SHA-256: what every relying party supports (the default).
    #[default]
    #[serde(rename = "RS256")]
    Rs256,
    /// ECDSA P-256 with SHA-256.
    #[serde(rename = "ES256")]
    Es256,
    /// Ed25519 (RFC 8037).
    #[serde(rename = "EdDSA")]
    EdDsa,
}

impl IdTokenAlg {
    /// The JWA name (`RS256`, `ES256`, `EdDSA`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Rs256 => "RS256",
            Self::Es256 => "ES256",
            Self::EdDsa => "EdDSA",
        }
    }

    /// The `jsonwebtoken` algorithm.
    pub fn jwt(self) -> Algorithm {
        match self {
            Self::Rs256 => Algorithm::RS256,
            Self::Es256 => Algorithm::ES256,
            Self::EdDsa => Algorithm::EdDSA,
        }
    }

    fn from_jwt(alg: Algorithm) -> Option<Self> {
        match alg {
            Algorithm::RS256 => Some(Self::Rs256),
            Algorithm::ES256 => Some(Self::Es256),
            Algorithm::EdDSA => Some(Self::EdDsa),
            _ => None,
        }
    }
}

/// A set of signing keys for one algorithm.
pub trait IdTokenKeys: Send + Sync + fmt::Debug + 'static {
    /// The algorithm every key of the set signs with.
    fn alg(&self) -> IdTokenAlg;
    /// A compact JWS of `claims` with the current key: header `alg`, `kid` and `typ`
    /// (`JWT`, or `logout+jwt` for logout tokens).
    fn sign(&self, typ: &str, claims: &Value) -> Result<String>;
    /// The public JWKs (each with `kid`, `alg` and `use: sig`), current key first.
    fn jwks(&self) -> Vec<Value>;
}

/// One fixed signing key loaded from PKCS#8 PEM (`openssl genpkey -algorithm RSA
/// -pkeyopt rsa_keygen_bits:2048`, `-algorithm EC -pkeyopt ec_paramgen_curve:P-256`, or
/// `-algorithm ED25519`). `Debug` shows the key id and algorithm only.
///
/// ```
/// use unilogin_provider::{IdTokenAlg, IdTokenKeys, PemKey};
/// let pem = "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIAu4vFM0/jEgkjgtKnU3RgHjnFHDuKYgV82orab7LD25\n-----END PRIVATE KEY-----\n";
/// let key = PemKey::from_pem(IdTokenAlg::EdDsa, "ed-1", pem).unwrap();
/// let jwt = key.sign("JWT", &serde_json::json!({"sub": "x"})).unwrap();
/// assert_eq!(jwt.split('.').count(), 3);
/// assert_eq!(key.jwks()[0]["kid"], "ed-1");
/// assert!(!format!("{key:?}").contains("MC4C"));
/// ```
pub struct PemKey {
    alg: IdTokenAlg,
    kid: String,
    encoding: EncodingKey,
    jwk: Value,
}

impl fmt::Debug for PemKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PemKey")
            .field("alg", &self.alg)
            .field("kid", &self.kid)
            .finish_non_exhaustive()
    }
}

impl PemKey {
    /// Loads a private key for `alg` under key id `kid`. The error never shows the PEM.
    pub fn from_pem(alg: IdTokenAlg, kid: &str, pem: &str) -> Result<Self> {
        if kid.is_empty() || kid.len() > 128 || !kid.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ProviderError::Server(
                "a key id is 1 to 128 printable ASCII characters".into(),
            ));
        }
        let bad = |_| ProviderError::Server(format!("not a PKCS#8 PEM {} key", alg.as_str()));
        let encoding = match alg {
            IdTokenAlg::Rs256 => EncodingKey::from_rsa_pem(pem.as_bytes()).map_err(bad)?,
            IdTokenAlg::Es256 => EncodingKey::from_ec_pem(pem.as_bytes()).map_err(bad)?,
            IdTokenAlg::EdDsa => EncodingKey::from_ed_pem(pem.as_bytes()).map_err(bad)?,
        };
        let mut jwk = Jwk::from_encoding_key(&encoding, alg.jwt())
            .map_err(|_| ProviderError::Server("cannot derive the public key".into()))?;
        jwk.common.key_id = Some(kid.to_string());
        jwk.common.public_key_use = Some(PublicKeyUse::Signature);
        jwk.common.key_algorithm = Some(match alg {
            IdTokenAlg::Rs256 => KeyAlgorithm::RS256,
            IdTokenAlg::Es256 => KeyAlgorithm::ES256,
            IdTokenAlg::EdDsa => KeyAlgorithm::EdDSA,
        });
        let jwk = serde_json::to_value(&jwk).map_err(|e| ProviderError::Server(e.to_string()))?;
        let key = Self {
            alg,
            kid: kid.to_string(),
            encoding,
            jwk,
        };
        // A key that cannot sign is refused now, not at the first login.
        key.sign("JWT", &serde_json::json!({}))?;
        Ok(key)
    }
}

impl IdTokenKeys for PemKey {
    fn alg(&self) -> IdTokenAlg {
        self.alg
    }

    fn sign(&self, typ: &str, claims: &Value) -> Result<String> {
        let mut header = Header::new(self.alg.jwt());
        header.kid = Some(self.kid.clone());
        header.typ = Some(typ.to_string());
        jsonwebtoken::encode(&header, claims, &self.encoding)
            .map_err(|e| ProviderError::Server(format!("signing failed: {:?}", e.kind())))
    }

    fn jwks(&self) -> Vec<Value> {
        vec![self.jwk.clone()]
    }
}

/// A rotating [`SessionKeys`] set (staged next key, retired keys published until their
/// tokens expire) signs id tokens of its algorithm.
///
/// ```
/// use unilogin_axum::session::{SessionKeys, SigningAlg};
/// use unilogin_provider::{IdTokenAlg, IdTokenKeys};
/// let keys = SessionKeys::generate_alg(SigningAlg::Es256).unwrap();
/// assert_eq!(IdTokenKeys::alg(&keys), IdTokenAlg::Es256);
/// let jwt = IdTokenKeys::sign(&keys, "JWT", &serde_json::json!({"sub": "x"})).unwrap();
/// assert_eq!(keys.verify_jws(&jwt).unwrap()["sub"], "x");
/// assert_eq!(IdTokenKeys::jwks(&keys).len(), 2, "current and staged next key");
/// ```
impl IdTokenKeys for SessionKeys {
    fn alg(&self) -> IdTokenAlg {
        match SessionKeys::alg(self) {
            SigningAlg::Rs256 => IdTokenAlg::Rs256,
            SigningAlg::Es256 => IdTokenAlg::Es256,
            SigningAlg::EdDSA => IdTokenAlg::EdDsa,
        }
    }

    fn sign(&self, typ: &str, claims: &Value) -> Result<String> {
        self.sign_jws(Some(typ), claims)
            .map_err(|e| ProviderError::Server(e.to_string()))
    }

    fn jwks(&self) -> Vec<Value> {
        match SessionKeys::jwks(self) {
            Value::Object(mut o) => match o.remove("keys") {
                Some(Value::Array(keys)) => keys,
                _ => Vec::new(),
            },
            _ => Vec::new(),
        }
    }
}

/// Verifies the signature of a JWS against `jwks` (the key named by its `kid`), returning the
/// payload; `exp` is not checked (an `id_token_hint` may be expired, RP-Initiated Logout §2).
pub(crate) fn verify_signature(token: &str, jwks: &[Value], iss: &str) -> Result<Value> {
    let bad = |why: &str| ProviderError::InvalidRequest(format!("id_token_hint: {why}"));
    let header = jsonwebtoken::decode_header(token).map_err(|_| bad("malformed"))?;
    IdTokenAlg::from_jwt(header.alg).ok_or_else(|| bad("unsupported alg"))?;
    let kid = header.kid.ok_or_else(|| bad("no kid"))?;
    let jwk = jwks
        .iter()
        .find(|k| k["kid"] == kid.as_str())
        .ok_or_else(|| bad("unknown kid"))?;
    let jwk: Jwk = serde_json::from_value(jwk.clone()).map_err(|_| bad("unusable key"))?;
    let key = DecodingKey::from_jwk(&jwk).map_err(|_| bad("unusable key"))?;
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    validation.set_issuer(&[iss]);
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .map(|d| d.claims)
        .map_err(|_| bad("signature or issuer does not verify"))
}
