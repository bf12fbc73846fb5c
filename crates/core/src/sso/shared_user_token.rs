//! [`UserToken`] as the opaque value [`TokenCache::single_flight`](crate::token_cache::TokenCache::single_flight) shares through the store.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::platform::UserToken;
use crate::types::{AccessToken, RefreshToken};

/// Bumped when the encoding changes: a replica reading another version treats it as absent.
const VERSION: u8 = 1;

/// Wire form. Deliberately without `Debug`: it holds the secrets in clear.
#[derive(Serialize, Deserialize)]
struct Wire {
    v: u8,
    access_token: String,
    refresh_token: Option<String>,
    expires_in_ms: Option<u64>,
    refresh_expires_in_ms: Option<u64>,
    scope: Option<String>,
}

fn millis(d: Option<Duration>) -> Option<u64> {
    d.map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

pub(super) fn encode(token: &UserToken) -> Result<AccessToken> {
    let wire = Wire {
        v: VERSION,
        access_token: token.access_token.expose().to_owned(),
        refresh_token: token.refresh_token.as_ref().map(|r| r.expose().to_owned()),
        expires_in_ms: millis(token.expires_in),
        refresh_expires_in_ms: millis(token.refresh_expires_in),
        scope: token.scope.clone(),
    };
    serde_json::to_string(&wire)
        .map(AccessToken::new)
        .map_err(|_| Error::Internal("cannot encode a user token to share it".into()))
}

/// `None` for anything this version did not write (never panics, never echoes the value).
pub(super) fn decode(shared: &AccessToken) -> Option<UserToken> {
    let wire: Wire = serde_json::from_str(shared.expose()).ok()?;
    (wire.v == VERSION).then(|| UserToken {
        access_token: AccessToken::new(wire.access_token),
        refresh_token: wire.refresh_token.map(RefreshToken::new),
        expires_in: wire.expires_in_ms.map(Duration::from_millis),
        refresh_expires_in: wire.refresh_expires_in_ms.map(Duration::from_millis),
        scope: wire.scope,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_every_field_and_debug_stays_redacted() {
        let token = UserToken {
            access_token: AccessToken::new("u-secret-access"),
            refresh_token: Some(RefreshToken::new("ur-secret-refresh")),
            expires_in: Some(Duration::from_secs(7200)),
            refresh_expires_in: None,
            scope: Some("offline_access".into()),
        };
        let shared = encode(&token).unwrap();
        assert!(!format!("{shared:?} {shared}").contains("secret"));
        let back = decode(&shared).unwrap();
        assert_eq!(back.access_token.expose(), "u-secret-access");
        assert_eq!(
            back.refresh_token.as_ref().map(|r| r.expose()),
            Some("ur-secret-refresh")
        );
        assert_eq!(back.expires_in, Some(Duration::from_secs(7200)));
        assert_eq!(back.refresh_expires_in, None);
        assert_eq!(back.scope.as_deref(), Some("offline_access"));
        assert!(!format!("{back:?}").contains("secret"));
    }

    #[test]
    fn malformed_or_foreign_values_decode_to_none() {
        for bad in [
            "",
            "not json",
            "{}",
            r#"{"v":2,"access_token":"a"}"#,
            r#"{"v":1,"access_token":7}"#,
            r#"{"v":1,"access_token":"a","expires_in_ms":-1}"#,
            "[1,2,3]",
        ] {
            assert!(decode(&AccessToken::new(bad)).is_none(), "{bad}");
        }
        assert!(decode(&AccessToken::new(r#"{"v":1,"access_token":"a"}"#)).is_some());
    }
}
