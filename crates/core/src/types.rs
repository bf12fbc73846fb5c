//! Newtypes for the values a login handles.
//!
//! Two kinds live here. *Identifiers* ([`TenantId`], [`PlatformName`], [`AppKey`]) are safe to
//! print and are validated on construction so that a typo cannot silently create a new tenant.
//! *Secrets* ([`AppSecret`], [`AccessToken`], [`RefreshToken`], [`AuthCode`], [`State`],
//! [`UserTicket`]) never print their value: `Debug` and `Display` show `***`, and the only way to
//! read one is the explicit [`AccessToken::expose`]-style accessor, which makes every place that
//! sends a secret over the wire easy to find with grep.

use std::borrow::Borrow;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize};
use subtle::ConstantTimeEq;

/// Error returned when an identifier fails validation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid {kind} `{value}`: {reason}")]
pub struct InvalidId {
    /// Which identifier (for example `tenant id`).
    pub kind: &'static str,
    /// The rejected value, truncated to 64 characters.
    pub value: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

fn check_ident(kind: &'static str, value: &str, max: usize) -> Result<(), InvalidId> {
    let fail = |reason| InvalidId {
        kind,
        value: value.chars().take(64).collect(),
        reason,
    };
    if value.is_empty() {
        return Err(fail("must not be empty"));
    }
    if value.len() > max {
        return Err(fail("too long"));
    }
    if !value
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
    {
        return Err(fail(
            "only ASCII letters, digits, `-`, `_` and `.` are allowed",
        ));
    }
    Ok(())
}

macro_rules! ident_newtype {
    ($(#[$meta:meta])* $name:ident, $kind:literal, $max:expr) => {
        $(#[$meta])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(Arc<str>);

        impl $name {
            /// Validates and wraps `value`.
            pub fn new(value: impl AsRef<str>) -> Result<Self, InvalidId> {
                let value = value.as_ref();
                check_ident($kind, value, $max)?;
                Ok(Self(Arc::from(value)))
            }

            /// The identifier as a string slice.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}({:?})", stringify!($name), &*self.0)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Borrow<str> for $name {
            fn borrow(&self) -> &str {
                &self.0
            }
        }

        impl std::str::FromStr for $name {
            type Err = InvalidId;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::new(s)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Self::new(s).map_err(serde::de::Error::custom)
            }
        }
    };
}

ident_newtype!(
    /// A tenant (one customer organisation of the application using unilogin).
    ///
    /// ```
    /// use unilogin_core::TenantId;
    /// let t = TenantId::new("acme").unwrap();
    /// assert_eq!(t.as_str(), "acme");
    /// assert!(TenantId::new("../etc").is_err());
    /// ```
    TenantId,
    "tenant id",
    64
);

ident_newtype!(
    /// A unilogin account: one person inside one tenant, whichever platforms they log in with
    /// (see [`identity`](crate::identity)). Stable: kept when identities are linked, unlinked or
    /// merged into it.
    ///
    /// ```
    /// use unilogin_core::AccountId;
    /// let a = AccountId::new("acc_0123456789abcdef").unwrap();
    /// assert_eq!(a.as_str(), "acc_0123456789abcdef");
    /// assert!(AccountId::new("acc 1").is_err());
    /// ```
    AccountId,
    "account id",
    64
);

ident_newtype!(
    /// The public identifier of an app on a platform: DingTalk AppKey, Feishu `app_id`,
    /// WeCom corp id, OAuth2 `client_id`. Not a secret.
    ///
    /// ```
    /// use unilogin_core::AppKey;
    /// assert_eq!(AppKey::new("dingabc").unwrap().to_string(), "dingabc");
    /// ```
    AppKey,
    "app key",
    128
);

/// Lower-case name of a platform (`dingtalk`, `feishu`, `wecom`, `custom-oauth`, ...).
///
/// ```
/// use unilogin_core::PlatformName;
/// let p = PlatformName::new("DingTalk").unwrap();
/// assert_eq!(p.as_str(), "dingtalk");
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct PlatformName(Arc<str>);

impl PlatformName {
    /// Validates `value` and stores it lower-cased.
    pub fn new(value: impl AsRef<str>) -> Result<Self, InvalidId> {
        let value = value.as_ref().to_ascii_lowercase();
        check_ident("platform name", &value, 64)?;
        Ok(Self(Arc::from(value)))
    }

    /// The name as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PlatformName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PlatformName({:?})", &*self.0)
    }
}

impl fmt::Display for PlatformName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for PlatformName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for PlatformName {
    type Err = InvalidId;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl<'de> Deserialize<'de> for PlatformName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::new(s).map_err(serde::de::Error::custom)
    }
}

macro_rules! secret_newtype {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        ///
        /// `Debug` and `Display` never show the value; equality is constant-time.
        #[derive(Clone)]
        pub struct $name(Arc<str>);

        impl $name {
            /// Wraps a secret value.
            pub fn new(value: impl Into<String>) -> Self {
                Self(Arc::from(value.into()))
            }

            /// The secret value. Call this only where the value is sent to its destination.
            pub fn expose(&self) -> &str {
                &self.0
            }

            /// Length in bytes of the secret (useful for accounting, never for printing).
            pub fn len(&self) -> usize {
                self.0.len()
            }

            /// Whether the secret is the empty string.
            pub fn is_empty(&self) -> bool {
                self.0.is_empty()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}(***)", stringify!($name))
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("***")
            }
        }

        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                self.0.as_bytes().ct_eq(other.0.as_bytes()).into()
            }
        }

        impl Eq for $name {}

        impl From<String> for $name {
            fn from(s: String) -> Self {
                Self::new(s)
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                Self::new(s)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                String::deserialize(d).map(Self::new)
            }
        }
    };
}

secret_newtype!(
    /// An app's secret (DingTalk AppSecret, Feishu `app_secret`, WeCom `corpsecret`,
    /// OAuth2 `client_secret`).
    ///
    /// ```
    /// use unilogin_core::AppSecret;
    /// let s = AppSecret::new("hunter2");
    /// assert_eq!(format!("{s:?}"), "AppSecret(***)");
    /// assert_eq!(s.expose(), "hunter2");
    /// ```
    AppSecret
);
secret_newtype!(
    /// An access token issued by a platform (app-level or user-level).
    ///
    /// ```
    /// use unilogin_core::AccessToken;
    /// let t = AccessToken::new("fake_token");
    /// assert!(!format!("{t} {t:?}").contains("fake_token"));
    /// ```
    AccessToken
);
secret_newtype!(
    /// A refresh token for a user's access token.
    RefreshToken
);
secret_newtype!(
    /// A short-lived, single-use authorization code (H5 JSAPI code or OAuth2 callback code).
    AuthCode
);
secret_newtype!(
    /// The CSRF `state` value of a web login.
    State
);
secret_newtype!(
    /// A PKCE code verifier (RFC 7636): sent only to the token endpoint.
    PkceVerifier
);
secret_newtype!(
    /// An OpenID Connect `nonce`, bound into the `id_token`.
    Nonce
);
secret_newtype!(
    /// WeCom's `user_ticket`, which unlocks a member's sensitive fields for 30 minutes.
    UserTicket
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let values = [
            format!("{:?}", AppSecret::new("s3cr3t-value")),
            format!("{}", AppSecret::new("s3cr3t-value")),
            format!("{:?}", AccessToken::new("s3cr3t-value")),
            format!("{}", AccessToken::new("s3cr3t-value")),
            format!("{:?}", RefreshToken::new("s3cr3t-value")),
            format!("{:?}", AuthCode::new("s3cr3t-value")),
            format!("{}", AuthCode::new("s3cr3t-value")),
            format!("{:?}", State::new("s3cr3t-value")),
            format!("{}", State::new("s3cr3t-value")),
            format!("{:?}", UserTicket::new("s3cr3t-value")),
            format!("{:?}", Some(AccessToken::new("s3cr3t-value"))),
        ];
        for v in values {
            assert!(!v.contains("s3cr3t"), "leaked: {v}");
            assert!(v.contains("***"), "no redaction marker: {v}");
        }
    }

    #[test]
    fn identifiers_validate() {
        assert!(TenantId::new("").is_err());
        assert!(TenantId::new("a b").is_err());
        assert!(TenantId::new("x".repeat(65)).is_err());
        assert!(TenantId::new("acme-01.prod_eu").is_ok());
        assert_eq!(PlatformName::new("WeCom").unwrap().as_str(), "wecom");
        let e = TenantId::new("a/b").unwrap_err();
        assert!(e.to_string().contains("tenant id"), "{e}");
    }

    #[test]
    fn secret_equality() {
        assert_eq!(AccessToken::new("a"), AccessToken::new("a"));
        assert_ne!(AccessToken::new("a"), AccessToken::new("b"));
        assert_ne!(State::new("abc"), State::new("abcd"));
    }

    #[test]
    fn deserialize_identifiers_and_secrets() {
        let t: TenantId = serde_json::from_str("\"acme\"").unwrap();
        assert_eq!(t.as_str(), "acme");
        assert!(serde_json::from_str::<TenantId>("\"no spaces\"").is_err());
        let s: AppSecret = serde_json::from_str("\"xyz\"").unwrap();
        assert_eq!(s.expose(), "xyz");
    }
}
