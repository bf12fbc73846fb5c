//! The primitives platform callbacks are built from, and [`MsgCrypt`], the SHA-1-signed
//! AES-256-CBC envelope two platforms share (the `WXBizMsgCrypt` layout).
//!
//! ```
//! use unilogin_core::events::crypto::MsgCrypt;
//! let crypt = MsgCrypt::new("tok_example", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG", "corp1").unwrap();
//! let encrypt = crypt.encrypt(b"hello");
//! let signature = crypt.signature("1700000000", "nonce", &encrypt);
//! crypt.verify(&signature, "1700000000", "nonce", &encrypt).unwrap();
//! assert_eq!(crypt.decrypt(&encrypt).unwrap(), b"hello");
//! assert!(!format!("{crypt:?}").contains("abcdefghij"));
//! ```

use std::fmt;

use aes::Aes256;
use aes::cipher::block_padding::NoPadding;
use aes::cipher::{BlockModeDecrypt, BlockModeEncrypt, KeyIvInit};
use base64::Engine as _;
use base64::engine::{GeneralPurpose, GeneralPurposeConfig, general_purpose};
use sha1::Sha1;
use sha2::{Digest as _, Sha256};

use super::{EventError, ct_eq_str};
use crate::AppSecret;

/// Standard base64, padding required on output, trailing bits tolerated on input (the
/// platforms' 43-character keys do not end on a byte boundary).
const B64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
);

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(HEX[usize::from(b >> 4)]));
        out.push(char::from(HEX[usize::from(b & 0x0f)]));
    }
    out
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// Lower-case hex SHA-1 of the concatenation of `parts` after a plain byte-wise sort.
///
/// ```
/// use unilogin_core::events::crypto::sha1_sorted_hex;
/// assert_eq!(sha1_sorted_hex(["b", "a"]), sha1_sorted_hex(["a", "b"]));
/// ```
pub fn sha1_sorted_hex<const N: usize>(mut parts: [&str; N]) -> String {
    use sha1::Digest as _;
    parts.sort_unstable();
    let mut h = Sha1::new();
    for p in parts {
        h.update(p.as_bytes());
    }
    hex(&h.finalize())
}

/// Compares a received hex signature with the expected one in constant time (case-insensitive).
pub fn verify_hex(expected: &str, received: &str) -> Result<(), EventError> {
    if ct_eq_str(expected, &received.to_ascii_lowercase()) {
        Ok(())
    } else {
        Err(EventError::BadSignature)
    }
}

/// Decodes standard base64 (CR/LF removed first, as some SDKs wrap lines).
pub fn decode_base64(s: &str) -> Result<Vec<u8>, EventError> {
    let cleaned: String = s.chars().filter(|c| !matches!(c, '\r' | '\n')).collect();
    B64.decode(cleaned).map_err(|_| EventError::BadBase64)
}

/// Encodes standard base64 with padding.
pub fn encode_base64(data: &[u8]) -> String {
    general_purpose::STANDARD.encode(data)
}

/// AES-256-CBC decryption without padding removal: [`EventError::BadCiphertext`] unless
/// `data` is a non-empty whole number of 16-byte blocks.
pub fn aes256_cbc_decrypt(
    key: &[u8; 32],
    iv: &[u8; 16],
    data: &[u8],
) -> Result<Vec<u8>, EventError> {
    if data.is_empty() || !data.len().is_multiple_of(16) {
        return Err(EventError::BadCiphertext);
    }
    let mut buf = data.to_vec();
    cbc::Decryptor::<Aes256>::new(key.into(), iv.into())
        .decrypt_padded::<NoPadding>(&mut buf)
        .map_err(|_| EventError::BadCiphertext)?;
    Ok(buf)
}

/// AES-256-CBC encryption of `data` after PKCS#7 padding to `block` bytes (16 or 32).
pub fn aes256_cbc_encrypt(key: &[u8; 32], iv: &[u8; 16], data: &[u8], block: u8) -> Vec<u8> {
    let mut buf = data.to_vec();
    pkcs7_pad(&mut buf, block);
    let len = buf.len();
    cbc::Encryptor::<Aes256>::new(key.into(), iv.into())
        .encrypt_padded::<NoPadding>(&mut buf, len)
        .expect("PKCS#7 to 16 or 32 bytes yields whole AES blocks");
    buf
}

/// Appends PKCS#7 padding to a multiple of `block` (1..=`block` bytes, each the pad length).
pub fn pkcs7_pad(buf: &mut Vec<u8>, block: u8) {
    let pad = block - (buf.len() % usize::from(block)) as u8;
    buf.resize(buf.len() + usize::from(pad), pad);
}

/// Removes PKCS#7 padding of at most `block` bytes, checking every pad byte.
pub fn pkcs7_unpad(buf: &mut Vec<u8>, block: u8) -> Result<(), EventError> {
    let pad = *buf.last().ok_or(EventError::BadPadding)?;
    if pad == 0 || pad > block || usize::from(pad) > buf.len() {
        return Err(EventError::BadPadding);
    }
    let start = buf.len() - usize::from(pad);
    if buf[start..].iter().any(|&b| b != pad) {
        return Err(EventError::BadPadding);
    }
    buf.truncate(start);
    Ok(())
}

/// The shared envelope: signature = SHA-1 of sorted token, timestamp, nonce, ciphertext;
/// AES-256-CBC with key = base64(`aes_key` + "="), IV = the key's first 16 bytes; plaintext =
/// random(16) ‖ length (4 bytes, big-endian) ‖ message ‖ receiver id; PKCS#7 to 32 bytes.
#[derive(Clone)]
pub struct MsgCrypt {
    token: AppSecret,
    key: [u8; 32],
    receiver_id: String,
}

impl MsgCrypt {
    /// [`EventError::InvalidConfig`] unless the token and receiver id are non-empty and
    /// `aes_key` is 43 base64 characters.
    pub fn new(token: &str, aes_key: &str, receiver_id: &str) -> Result<Self, EventError> {
        if token.is_empty() {
            return Err(EventError::InvalidConfig {
                what: "empty token",
            });
        }
        if receiver_id.is_empty() {
            return Err(EventError::InvalidConfig {
                what: "empty receiver id",
            });
        }
        let bad_key = EventError::InvalidConfig {
            what: "aes key must be 43 base64 characters",
        };
        if aes_key.len() != 43 {
            return Err(bad_key);
        }
        let key = B64
            .decode(format!("{aes_key}="))
            .ok()
            .and_then(|k| <[u8; 32]>::try_from(k).ok())
            .ok_or(bad_key)?;
        Ok(Self {
            token: AppSecret::new(token),
            key,
            receiver_id: receiver_id.to_string(),
        })
    }

    /// The receiver id messages must name.
    pub fn receiver_id(&self) -> &str {
        &self.receiver_id
    }

    fn iv(&self) -> [u8; 16] {
        let mut iv = [0; 16];
        iv.copy_from_slice(&self.key[..16]);
        iv
    }

    /// The signature of `encrypt` at `timestamp` with `nonce`.
    pub fn signature(&self, timestamp: &str, nonce: &str, encrypt: &str) -> String {
        sha1_sorted_hex([self.token.expose(), timestamp, nonce, encrypt])
    }

    /// Checks `signature` in constant time: [`EventError::BadSignature`] on mismatch.
    pub fn verify(
        &self,
        signature: &str,
        timestamp: &str,
        nonce: &str,
        encrypt: &str,
    ) -> Result<(), EventError> {
        verify_hex(&self.signature(timestamp, nonce, encrypt), signature)
    }

    /// Decrypts `encrypt` and returns the message, after checking the padding (1..=32), the
    /// length field and the receiver id.
    pub fn decrypt(&self, encrypt: &str) -> Result<Vec<u8>, EventError> {
        let raw = decode_base64(encrypt)?;
        let mut plain = aes256_cbc_decrypt(&self.key, &self.iv(), &raw)?;
        pkcs7_unpad(&mut plain, 32)?;
        let len_bytes: [u8; 4] = plain
            .get(16..20)
            .and_then(|b| b.try_into().ok())
            .ok_or(EventError::BadLength)?;
        let len =
            usize::try_from(u32::from_be_bytes(len_bytes)).map_err(|_| EventError::BadLength)?;
        let end = 20usize.checked_add(len).ok_or(EventError::BadLength)?;
        if end > plain.len() {
            return Err(EventError::BadLength);
        }
        if &plain[end..] != self.receiver_id.as_bytes() {
            return Err(EventError::WrongReceiver);
        }
        plain.truncate(end);
        plain.drain(..20);
        Ok(plain)
    }

    /// Encrypts `msg` with a fresh random prefix (16 alphanumerics).
    pub fn encrypt(&self, msg: &[u8]) -> String {
        let random: [u8; 16] = crate::web_login::random_hex(8)
            .into_bytes()
            .try_into()
            .expect("16 hex characters");
        self.encrypt_with(msg, &random)
    }

    /// Encrypts `msg` with the given random prefix (deterministic: for tests and fakes).
    pub fn encrypt_with(&self, msg: &[u8], random: &[u8; 16]) -> String {
        let len = u32::try_from(msg.len()).expect("message shorter than 4 GiB");
        let mut plain = Vec::with_capacity(20 + msg.len() + self.receiver_id.len() + 32);
        plain.extend_from_slice(random);
        plain.extend_from_slice(&len.to_be_bytes());
        plain.extend_from_slice(msg);
        plain.extend_from_slice(self.receiver_id.as_bytes());
        encode_base64(&aes256_cbc_encrypt(&self.key, &self.iv(), &plain, 32))
    }
}

impl fmt::Debug for MsgCrypt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MsgCrypt")
            .field("token", &self.token)
            .field("key", &"***")
            .field("receiver_id", &self.receiver_id)
            .finish()
    }
}
