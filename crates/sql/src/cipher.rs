//! [`SecretCipher`]: AES-256-GCM encryption of stored secrets (app secrets, event tokens and
//! keys) at rest, with rotatable keys.

use std::fmt;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use unilogin_core::{AppSecret, Error, PlatformName, Result, TenantId};

/// The environment variable [`SecretCipher::from_env`] reads.
pub const KEYS_ENV: &str = "UNILOGIN_SECRET_KEYS";

/// The field name of the app secret (also its associated data).
const APP_SECRET: &str = "app_secret";

/// Prefix of an encrypted value: `enc:v1:<key id>:<nonce hex>:<ciphertext+tag hex>`.
const PREFIX: &str = "enc:v1:";

/// Encrypts and decrypts stored app secrets with AES-256-GCM.
///
/// Keys come from the environment as a comma-separated list of `id:key` pairs, `key` being 32
/// bytes in hex (64 hex digits), for example
/// `UNILOGIN_SECRET_KEYS="k2:<64 hex>,k1:<64 hex>"`. The **first** key encrypts; every listed
/// key decrypts. Each stored value names the key it was encrypted with, so keys rotate by
/// putting a new key first, running [`SqlConfigStore::reencrypt`](crate::SqlConfigStore::reencrypt),
/// then removing the old key.
///
/// Every value gets a fresh random 96-bit nonce, and the field, tenant and platform are bound in
/// as associated data: a ciphertext copied into another tenant's row, or from the app secret
/// into an event credential, does not decrypt.
///
/// `Debug` shows the key ids only.
///
/// ```
/// use unilogin_core::{AppSecret, PlatformName, TenantId};
/// use unilogin_sql::SecretCipher;
/// let key = SecretCipher::generate_key_hex();
/// let cipher = SecretCipher::parse(&format!("k1:{key}"))?;
/// let (t, p) = (TenantId::new("acme")?, PlatformName::new("dingtalk")?);
/// let stored = cipher.encrypt(&AppSecret::new("s3cret"), &t, &p)?;
/// assert!(stored.starts_with("enc:v1:k1:") && !stored.contains("s3cret"));
/// assert_eq!(cipher.decrypt(&stored, &t, &p)?.expose(), "s3cret");
/// let other = SecretCipher::parse(&format!("k1:{}", SecretCipher::generate_key_hex()))?;
/// let err = other.decrypt(&stored, &t, &p).unwrap_err().to_string();
/// assert!(err.contains("wrong key"), "{err}");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct SecretCipher {
    keys: Vec<(String, Aes256Gcm)>,
}

impl fmt::Debug for SecretCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretCipher")
            .field(
                "key_ids",
                &self
                    .keys
                    .iter()
                    .map(|(id, _)| id.as_str())
                    .collect::<Vec<_>>(),
            )
            .finish()
    }
}

fn key_error(reason: impl Into<String>) -> Error {
    Error::config(None, None, KEYS_ENV, reason)
}

fn hex_decode(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|b| u8::from_str_radix(b, 16).ok())
        })
        .collect()
}

fn hex_encode(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0x0F)]));
    }
    out
}

fn valid_key_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 32
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// The associated data of a value: its field, tenant and platform (`app_secret` keeps the
/// layout it always had, so existing values decrypt).
fn aad(field: &str, tenant: &TenantId, platform: &PlatformName) -> String {
    format!("unilogin/{field}/v1/{tenant}/{platform}")
}

impl SecretCipher {
    /// A cipher without keys: stored secrets must then be references (`env:` / `file:`), and
    /// encrypting or decrypting fails with an error saying to set [`KEYS_ENV`].
    pub fn none() -> Self {
        Self { keys: Vec::new() }
    }

    /// Reads the keys from [`KEYS_ENV`]; no keys when it is unset.
    pub fn from_env() -> Result<Self> {
        Self::from_env_var(KEYS_ENV)
    }

    /// Reads the keys from the environment variable `name`; no keys when it is unset.
    pub fn from_env_var(name: &str) -> Result<Self> {
        match std::env::var(name) {
            Ok(spec) => Self::parse(&spec).map_err(|e| match e {
                Error::Config { reason, .. } => key_error(format!("{name}: {reason}")),
                other => other,
            }),
            Err(std::env::VarError::NotPresent) => Ok(Self::none()),
            Err(std::env::VarError::NotUnicode(_)) => {
                Err(key_error(format!("{name} is not valid UTF-8")))
            }
        }
    }

    /// Parses `id:hexkey[,id:hexkey...]` (the first key encrypts). The error never contains key
    /// material.
    pub fn parse(spec: &str) -> Result<Self> {
        let mut keys: Vec<(String, Aes256Gcm)> = Vec::new();
        for (i, part) in spec.split(',').map(str::trim).enumerate() {
            if part.is_empty() {
                continue;
            }
            let Some((id, hex)) = part.split_once(':') else {
                return Err(key_error(format!(
                    "entry {} is not `id:key` (key id, colon, 64 hex digits)",
                    i + 1
                )));
            };
            let id = id.trim();
            if !valid_key_id(id) {
                return Err(key_error(format!(
                    "entry {}: key id must be 1 to 32 letters, digits, `-`, `_` or `.`",
                    i + 1
                )));
            }
            if keys.iter().any(|(k, _)| k == id) {
                return Err(key_error(format!("key id `{id}` is listed twice")));
            }
            let bytes = hex_decode(hex.trim())
                .filter(|b| b.len() == 32)
                .ok_or_else(|| {
                    key_error(format!("key `{id}` must be 32 bytes as 64 hex digits"))
                })?;
            let cipher = Aes256Gcm::new_from_slice(&bytes)
                .map_err(|_| key_error(format!("key `{id}` has the wrong length")))?;
            keys.push((id.to_string(), cipher));
        }
        Ok(Self { keys })
    }

    /// A new random key as 64 hex digits (for operators: `id:<this>` in [`KEYS_ENV`]).
    pub fn generate_key_hex() -> String {
        hex_encode(&rand::random::<[u8; 32]>())
    }

    /// The id of the key that encrypts, if any key is configured.
    pub fn current_key_id(&self) -> Option<&str> {
        self.keys.first().map(|(id, _)| id.as_str())
    }

    /// Whether `stored` is an encrypted value (`enc:v1:...`).
    pub fn is_encrypted(stored: &str) -> bool {
        stored.starts_with(PREFIX)
    }

    /// The key id an encrypted value names.
    pub fn key_id_of(stored: &str) -> Option<&str> {
        stored.strip_prefix(PREFIX)?.split(':').next()
    }

    /// Encrypts the app secret `secret` for `tenant`'s `platform` with the current key
    /// ([`encrypt_field`](Self::encrypt_field) for field `app_secret`).
    pub fn encrypt(
        &self,
        secret: &AppSecret,
        tenant: &TenantId,
        platform: &PlatformName,
    ) -> Result<String> {
        self.encrypt_field(secret, tenant, platform, APP_SECRET)
    }

    /// Encrypts `secret`, the value of configuration field `field` (`app_secret`,
    /// `events.token` or `events.key`), for `tenant`'s `platform` with the current key. The
    /// field is bound in like the tenant and platform: a value copied into another field's
    /// column does not decrypt there. Errors name `field`.
    ///
    /// ```
    /// use unilogin_core::{AppSecret, PlatformName, TenantId};
    /// use unilogin_sql::SecretCipher;
    /// let cipher = SecretCipher::parse(&format!("k1:{}", SecretCipher::generate_key_hex()))?;
    /// let (t, p) = (TenantId::new("acme")?, PlatformName::new("dingtalk")?);
    /// let stored = cipher.encrypt_field(&AppSecret::new("tok3n"), &t, &p, "events.token")?;
    /// assert_eq!(cipher.decrypt_field(&stored, &t, &p, "events.token")?.expose(), "tok3n");
    /// let err = cipher.decrypt_field(&stored, &t, &p, "events.key").unwrap_err().to_string();
    /// assert!(err.contains("events.key") && !err.contains("tok3n"), "{err}");
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn encrypt_field(
        &self,
        secret: &AppSecret,
        tenant: &TenantId,
        platform: &PlatformName,
        field: &str,
    ) -> Result<String> {
        let Some((id, cipher)) = self.keys.first() else {
            return Err(Error::config(
                Some(tenant),
                Some(platform.as_str()),
                field,
                format!(
                    "no encryption key: set {KEYS_ENV} to store secrets, or give the secret as `env:NAME` / `file:PATH`"
                ),
            ));
        };
        let nonce_bytes: [u8; 12] = rand::random();
        let aad = aad(field, tenant, platform);
        let sealed = cipher
            .encrypt(
                &Nonce::from(nonce_bytes),
                Payload {
                    msg: secret.expose().as_bytes(),
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| Error::Internal("AES-GCM encryption failed".into()))?;
        Ok(format!(
            "{PREFIX}{id}:{}:{}",
            hex_encode(&nonce_bytes),
            hex_encode(&sealed)
        ))
    }

    /// Decrypts a value made by [`encrypt`](Self::encrypt) for the same tenant and platform.
    /// A wrong key, an unknown key id, a value copied from another row or a damaged value is an
    /// [`Error::Config`] on field `app_secret` saying which.
    pub fn decrypt(
        &self,
        stored: &str,
        tenant: &TenantId,
        platform: &PlatformName,
    ) -> Result<AppSecret> {
        self.decrypt_field(stored, tenant, platform, APP_SECRET)
    }

    /// Decrypts a value made by [`encrypt_field`](Self::encrypt_field) for the same field,
    /// tenant and platform; failures as [`decrypt`](Self::decrypt)'s, on field `field`.
    pub fn decrypt_field(
        &self,
        stored: &str,
        tenant: &TenantId,
        platform: &PlatformName,
        field: &str,
    ) -> Result<AppSecret> {
        let fail =
            |reason: String| Error::config(Some(tenant), Some(platform.as_str()), field, reason);
        let rest = stored
            .strip_prefix(PREFIX)
            .ok_or_else(|| fail("not an encrypted value (`enc:v1:...`)".into()))?;
        let mut parts = rest.split(':');
        let (Some(id), Some(nonce_hex), Some(sealed_hex), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(fail(
                "damaged encrypted value (expected `enc:v1:<key id>:<nonce>:<data>`)".into(),
            ));
        };
        let Some((_, cipher)) = self.keys.iter().find(|(k, _)| k == id) else {
            let known: Vec<&str> = self.keys.iter().map(|(k, _)| k.as_str()).collect();
            return Err(fail(format!(
                "encrypted with key `{id}`, which is not in {KEYS_ENV} (configured: [{}])",
                known.join(", ")
            )));
        };
        let nonce: [u8; 12] = hex_decode(nonce_hex)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| fail("damaged encrypted value (bad nonce)".into()))?;
        let sealed = hex_decode(sealed_hex)
            .ok_or_else(|| fail("damaged encrypted value (bad data)".into()))?;
        let aad = aad(field, tenant, platform);
        let plain = cipher
            .decrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: &sealed,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| {
                fail(format!(
                    "cannot decrypt with key `{id}`: wrong key in {KEYS_ENV}, or the value was altered or copied from another tenant/platform/field"
                ))
            })?;
        let text =
            String::from_utf8(plain).map_err(|_| fail("decrypted value is not UTF-8".into()))?;
        Ok(AppSecret::new(text))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids() -> (TenantId, PlatformName) {
        (
            TenantId::new("acme").unwrap(),
            PlatformName::new("dingtalk").unwrap(),
        )
    }

    #[test]
    fn round_trip_rotation_and_binding() {
        let (t, p) = ids();
        let k1 = SecretCipher::generate_key_hex();
        let k2 = SecretCipher::generate_key_hex();
        let old = SecretCipher::parse(&format!("k1:{k1}")).unwrap();
        let stored = old.encrypt(&AppSecret::new("s3cret"), &t, &p).unwrap();
        // Fresh nonce per value.
        assert_ne!(
            stored,
            old.encrypt(&AppSecret::new("s3cret"), &t, &p).unwrap()
        );
        let rotated = SecretCipher::parse(&format!("k2:{k2}, k1:{k1}")).unwrap();
        assert_eq!(rotated.current_key_id(), Some("k2"));
        assert_eq!(rotated.decrypt(&stored, &t, &p).unwrap().expose(), "s3cret");
        let new = rotated.encrypt(&AppSecret::new("s3cret"), &t, &p).unwrap();
        assert_eq!(SecretCipher::key_id_of(&new), Some("k2"));
        // Bound to tenant and platform.
        let other = TenantId::new("globex").unwrap();
        let e = rotated
            .decrypt(&stored, &other, &p)
            .unwrap_err()
            .to_string();
        assert!(e.contains("copied from another"), "{e}");
        // Unknown key id.
        let only_k2 = SecretCipher::parse(&format!("k2:{k2}")).unwrap();
        let e = only_k2.decrypt(&stored, &t, &p).unwrap_err().to_string();
        assert!(e.contains("key `k1`") && e.contains("not in"), "{e}");
        // Tampering.
        let mut bad = stored.clone();
        let last = bad.pop().unwrap();
        bad.push(if last == '0' { '1' } else { '0' });
        assert!(old.decrypt(&bad, &t, &p).is_err());
        assert!(format!("{rotated:?}").contains("k2"));
        assert!(!format!("{rotated:?}").contains(&k2));
    }

    #[test]
    fn key_spec_errors_never_show_keys() {
        let key = SecretCipher::generate_key_hex();
        for spec in [
            format!("k1{key}"),
            format!("k1:{}", &key[..60]),
            format!("k1:{key},k1:{key}"),
            format!("bad id:{key}"),
        ] {
            let e = SecretCipher::parse(&spec).unwrap_err().to_string();
            assert!(!e.contains(&key[..60]), "{e}");
        }
        let none = SecretCipher::none();
        let (t, p) = ids();
        let e = none
            .encrypt(&AppSecret::new("x"), &t, &p)
            .unwrap_err()
            .to_string();
        assert!(e.contains(KEYS_ENV), "{e}");
    }
}
