//! [`TokenKey`]: which app a cached token belongs to.

use std::fmt;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::{Arc, OnceLock};

use sha2::{Digest, Sha256};

use crate::error::UpstreamCtx;
use crate::isv::OrgId;
use crate::jsapi::TicketKind;
use crate::types::{AccessToken, PlatformName, RefreshToken, TenantId};

/// Separates an app key from the suffix of a key derived from it (see
/// [`TokenKey::user_refresh`]). It can never occur in an app key: platform and tenant are
/// identifiers of `[A-Za-z0-9._-]`, and every other byte of the app id and agent is
/// percent-encoded.
const DERIVED: char = '#';

/// The scope of one app access token: platform, tenant, app id (corp id / app key / `client_id`)
/// and, where the platform has one, the agent id (WeCom `agentid`, DingTalk agent).
///
/// Two different scopes always have different [`as_str`](TokenKey::as_str) forms, so two apps can
/// never be served each other's token, in memory or in a shared store. The string form is
/// `platform:tenant:app[:agent]` with every byte of `app` and `agent` outside `[A-Za-z0-9._-]`
/// percent-encoded (platform and tenant are validated identifiers that cannot contain `:`).
///
/// Keys derived from an app key for one-off shared work ([`user_refresh`](TokenKey::user_refresh))
/// append `#` and a suffix. `#` never occurs in an app key, so a derived key can never equal an
/// app key, and two derived keys are equal only if their app keys and suffixes are.
///
/// The key is cheap to clone (one reference count) and carries a precomputed hash, so a cache
/// lookup never re-hashes the string.
///
/// ```
/// use unilogin_core::token_cache::TokenKey;
/// use unilogin_core::{PlatformName, TenantId};
/// let p = PlatformName::new("wecom").unwrap();
/// let t = TenantId::new("acme").unwrap();
/// let a = TokenKey::new(&p, &t, "ww1234", Some("1000002"));
/// assert_eq!(a.as_str(), "wecom:acme:ww1234:1000002");
/// // An app id containing the separator cannot collide with an app + agent pair.
/// let b = TokenKey::new(&p, &t, "ww1234:1000002", None);
/// assert_ne!(a, b);
/// assert_eq!(b.as_str(), "wecom:acme:ww1234%3A1000002");
/// ```
#[derive(Clone)]
pub struct TokenKey {
    text: Arc<str>,
    hash: u64,
    /// The platform the key belongs to (the text's first part), for error contexts.
    platform: PlatformName,
}

fn hasher() -> &'static std::hash::RandomState {
    static STATE: OnceLock<std::hash::RandomState> = OnceLock::new();
    STATE.get_or_init(std::hash::RandomState::new)
}

fn push_escaped(out: &mut String, part: &str) {
    for b in part.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-') {
            out.push(char::from(b));
        } else {
            out.push('%');
            push_hex(out, b, b"0123456789ABCDEF");
        }
    }
}

fn push_hex(out: &mut String, b: u8, digits: &[u8; 16]) {
    out.push(char::from(digits[usize::from(b >> 4)]));
    out.push(char::from(digits[usize::from(b & 0x0F)]));
}

impl TokenKey {
    /// Builds the key of one app's token.
    pub fn new(
        platform: &PlatformName,
        tenant: &TenantId,
        app_id: &str,
        agent: Option<&str>,
    ) -> Self {
        let mut text = String::with_capacity(
            platform.as_str().len() + tenant.as_str().len() + app_id.len() + 8,
        );
        text.push_str(platform.as_str());
        text.push(':');
        text.push_str(tenant.as_str());
        text.push(':');
        push_escaped(&mut text, app_id);
        if let Some(agent) = agent {
            text.push(':');
            push_escaped(&mut text, agent);
        }
        Self::from_text(text, platform.clone())
    }

    fn from_text(text: String, platform: PlatformName) -> Self {
        let hash = hasher().hash_one(text.as_str());
        Self {
            text: Arc::from(text),
            hash,
            platform,
        }
    }

    /// The key under which a refresh of this app's user token `refresh_token` is
    /// de-duplicated, in this process and across replicas sharing a store
    /// ([`TokenCache::single_flight`](super::TokenCache::single_flight)).
    ///
    /// The refresh token itself never appears in the key (keys are written to shared stores and
    /// logs): the suffix is the hex SHA-256 of it, `<app key>#user-refresh:<64 hex digits>`.
    /// Refresh tokens are long random strings, so the digest reveals nothing usable. Because
    /// `#` never occurs in an app key, such a key can never be mistaken for any app's token key.
    ///
    /// ```
    /// use unilogin_core::token_cache::TokenKey;
    /// use unilogin_core::{PlatformName, RefreshToken, TenantId};
    /// let app = TokenKey::new(
    ///     &PlatformName::new("feishu").unwrap(),
    ///     &TenantId::new("acme").unwrap(),
    ///     "cli_a1",
    ///     None,
    /// );
    /// let key = app.user_refresh(&RefreshToken::new("ur-secret"));
    /// assert!(key.as_str().starts_with("feishu:acme:cli_a1#user-refresh:"));
    /// assert!(!key.as_str().contains("ur-secret"));
    /// assert_eq!(key.tenant(), app.tenant());
    /// ```
    pub fn user_refresh(&self, refresh_token: &RefreshToken) -> TokenKey {
        const TAG: &str = "user-refresh:";
        let digest = Sha256::digest(refresh_token.expose().as_bytes());
        let mut text = String::with_capacity(self.text.len() + 1 + TAG.len() + 2 * digest.len());
        text.push_str(&self.text);
        text.push(DERIVED);
        text.push_str(TAG);
        for b in digest {
            push_hex(&mut text, b, b"0123456789abcdef");
        }
        Self::from_text(text, self.platform.clone())
    }

    /// The key of the JSAPI ticket of `kind` fetched with this app's token `app_token`
    /// (see [`crate::jsapi`]): `<app key>#ticket:<kind>:<16 hex digits>`, the digits being the
    /// start of the hex SHA-256 of the app token. A ticket is cached like an app token under
    /// it; when the app token is replaced the key changes, so the next signature fetches a
    /// ticket with the new token. The token itself never appears in the key.
    ///
    /// ```
    /// use unilogin_core::jsapi::TicketKind;
    /// use unilogin_core::token_cache::TokenKey;
    /// use unilogin_core::{AccessToken, PlatformName, TenantId};
    /// let app = TokenKey::new(
    ///     &PlatformName::new("wecom").unwrap(),
    ///     &TenantId::new("acme").unwrap(),
    ///     "ww1",
    ///     Some("1000002"),
    /// );
    /// let key = app.ticket(TicketKind::AgentConfig, &AccessToken::new("app-token-1"));
    /// assert!(key.as_str().starts_with("wecom:acme:ww1:1000002#ticket:agent_config:"));
    /// assert!(!key.as_str().contains("app-token-1"));
    /// assert_ne!(key, app.ticket(TicketKind::AgentConfig, &AccessToken::new("app-token-2")));
    /// assert_ne!(key, app.ticket(TicketKind::Jsapi, &AccessToken::new("app-token-1")));
    /// ```
    pub fn ticket(&self, kind: TicketKind, app_token: &AccessToken) -> TokenKey {
        const TAG: &str = "ticket:";
        /// Bytes of the digest kept: 64 bits tell the tokens of one app apart.
        const KEPT: usize = 8;
        let digest = Sha256::digest(app_token.expose().as_bytes());
        let kind = kind.as_str();
        let mut text =
            String::with_capacity(self.text.len() + 2 + TAG.len() + kind.len() + 2 * KEPT);
        text.push_str(&self.text);
        text.push(DERIVED);
        text.push_str(TAG);
        text.push_str(kind);
        text.push(':');
        for &b in &digest[..KEPT] {
            push_hex(&mut text, b, b"0123456789abcdef");
        }
        Self::from_text(text, self.platform.clone())
    }

    /// The key of organisation `org`'s token under this store app's suite / app token key
    /// (see [`crate::isv`]): DingTalk `corpAccessToken` for `authCorpId`, Feishu
    /// `tenant_access_token` for `tenant_key`, WeCom `get_corp_token` for `auth_corpid`.
    ///
    /// The form is `<suite key>#org:<org id>`: the org id is a validated identifier (at most
    /// [`MAX_ORG_ID_LEN`](crate::isv::MAX_ORG_ID_LEN) bytes of `[A-Za-z0-9._-]`), so the key is
    /// bounded, store-safe and never equal to an app key (`#`), a user-refresh or ticket key
    /// (their tags), or another organisation's key. The cache treats it as an independent key:
    /// its own entry, refresh-ahead, lease and compare-and-delete, so invalidating an
    /// organisation's token leaves the suite token and every other organisation alone, and
    /// invalidating the suite token evicts no organisation's token.
    ///
    /// ```
    /// use unilogin_core::isv::OrgId;
    /// use unilogin_core::token_cache::TokenKey;
    /// use unilogin_core::{PlatformName, TenantId};
    /// let suite = TokenKey::new(
    ///     &PlatformName::new("dingtalk").unwrap(),
    ///     &TenantId::new("vendor").unwrap(),
    ///     "suitekey1",
    ///     None,
    /// );
    /// let org = suite.organisation(&OrgId::new("ding8a1b2c").unwrap());
    /// assert_eq!(org.as_str(), "dingtalk:vendor:suitekey1#org:ding8a1b2c");
    /// assert_eq!(org.tenant(), suite.tenant());
    /// assert_ne!(org, suite.organisation(&OrgId::new("ding8a1b2d").unwrap()));
    /// ```
    pub fn organisation(&self, org: &OrgId) -> TokenKey {
        const TAG: &str = "org:";
        let mut text = String::with_capacity(self.text.len() + 1 + TAG.len() + org.as_str().len());
        text.push_str(&self.text);
        text.push(DERIVED);
        text.push_str(TAG);
        text.push_str(org.as_str());
        Self::from_text(text, self.platform.clone())
    }

    /// The injective, store-safe string form: only `[A-Za-z0-9._:%-]` for app keys, plus one
    /// `#` in derived keys such as [`user_refresh`](Self::user_refresh),
    /// [`ticket`](Self::ticket) and [`organisation`](Self::organisation).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The platform part of the key.
    pub fn platform(&self) -> Option<PlatformName> {
        Some(self.platform.clone())
    }

    /// The tenant part of the key.
    pub fn tenant(&self) -> Option<TenantId> {
        self.text
            .split(':')
            .nth(1)
            .and_then(|t| TenantId::new(t).ok())
    }

    /// An error context naming this key's tenant and platform at `endpoint` (for errors raised by
    /// the cache or a store rather than by the platform itself).
    pub fn error_ctx(&self, endpoint: &'static str) -> UpstreamCtx {
        UpstreamCtx::new(self.tenant(), self.platform.clone(), endpoint)
    }

    /// Precomputed hash of the string form (per-process random seed).
    pub(crate) fn hash64(&self) -> u64 {
        self.hash
    }
}

impl PartialEq for TokenKey {
    fn eq(&self, other: &Self) -> bool {
        self.hash == other.hash && (Arc::ptr_eq(&self.text, &other.text) || self.text == other.text)
    }
}

impl Eq for TokenKey {}

impl Hash for TokenKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

impl fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenKey({:?})", &*self.text)
    }
}

impl fmt::Display for TokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// A hasher for maps keyed by [`TokenKey`]: the key already carries a well-mixed hash.
#[derive(Default, Clone, Copy)]
pub(crate) struct PrehashedState;

impl BuildHasher for PrehashedState {
    type Hasher = PrehashedHasher;
    fn build_hasher(&self) -> PrehashedHasher {
        PrehashedHasher(0)
    }
}

/// See [`PrehashedState`].
#[derive(Default)]
pub(crate) struct PrehashedHasher(u64);

impl Hasher for PrehashedHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used by `TokenKey`; fold anything else in so the hasher stays
        // correct for any key type.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 ^= n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(app: &str, agent: Option<&str>) -> TokenKey {
        TokenKey::new(
            &PlatformName::new("dingtalk").unwrap(),
            &TenantId::new("t1").unwrap(),
            app,
            agent,
        )
    }

    #[test]
    fn string_form_is_injective_on_tricky_inputs() {
        let cases = [
            key("a", None),
            key("a", Some("")),
            key("a:", None),
            key("a", Some(":")),
            key("a%3A", None),
            key("a:b", None),
            key("a", Some("b")),
            key("", Some("a")),
            key("", None),
        ];
        let mut seen = std::collections::HashSet::new();
        for k in &cases {
            assert!(seen.insert(k.as_str().to_string()), "collision: {k:?}");
            assert!(
                k.as_str()
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".:_-%".contains(&b)),
                "{k:?}"
            );
        }
    }

    #[test]
    fn user_refresh_keys_never_collide_with_app_keys_or_each_other() {
        let apps = [
            key("a", None),
            key("a", Some("b")),
            key("a#user-refresh:00", None),
            key("a", Some("#")),
            key("", None),
        ];
        let refresh = [RefreshToken::new("r1"), RefreshToken::new("r2")];
        let mut seen = std::collections::HashSet::new();
        for app in &apps {
            // `#` in an app id or agent is escaped: no app key contains the separator.
            assert!(!app.as_str().contains(DERIVED), "{app:?}");
            assert!(seen.insert(app.as_str().to_string()), "collision: {app:?}");
        }
        for app in &apps {
            for r in &refresh {
                let derived = app.user_refresh(r);
                assert_eq!(derived.as_str().matches(DERIVED).count(), 1, "{derived:?}");
                let (prefix, suffix) = derived.as_str().split_once(DERIVED).unwrap();
                assert_eq!(prefix, app.as_str());
                assert_eq!(suffix.len(), "user-refresh:".len() + 64);
                assert!(!derived.as_str().contains(r.expose()), "{derived:?}");
                assert!(
                    seen.insert(derived.as_str().to_string()),
                    "collision: {derived:?}"
                );
                // Deterministic: every replica derives the same key.
                assert_eq!(derived, app.user_refresh(&RefreshToken::new(r.expose())));
                assert_eq!(derived.platform(), app.platform());
                assert_eq!(derived.tenant(), app.tenant());
            }
        }
        // The digest is SHA-256 of the refresh token ("abc": the FIPS 180-2 test vector).
        let abc = key("a", None).user_refresh(&RefreshToken::new("abc"));
        assert!(
            abc.as_str()
                .ends_with("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        );
    }

    #[test]
    fn ticket_keys_are_distinct_from_app_and_refresh_keys() {
        let app = key("a", Some("1"));
        let (t1, t2) = (AccessToken::new("tok-1"), AccessToken::new("tok-2"));
        let keys = [
            app.clone(),
            app.user_refresh(&RefreshToken::new("tok-1")),
            app.ticket(TicketKind::Jsapi, &t1),
            app.ticket(TicketKind::Jsapi, &t2),
            app.ticket(TicketKind::AgentConfig, &t1),
            key("a", Some("2")).ticket(TicketKind::Jsapi, &t1),
        ];
        let mut seen = std::collections::HashSet::new();
        for k in &keys {
            assert!(seen.insert(k.as_str().to_string()), "collision: {k:?}");
        }
        let k = app.ticket(TicketKind::Jsapi, &t1);
        let (prefix, suffix) = k.as_str().split_once(DERIVED).unwrap();
        assert_eq!(prefix, app.as_str());
        assert_eq!(suffix.len(), "ticket:jsapi:".len() + 16);
        assert_eq!(k, app.ticket(TicketKind::Jsapi, &AccessToken::new("tok-1")));
        assert_eq!((k.platform(), k.tenant()), (app.platform(), app.tenant()));
        // The first 8 bytes of SHA-256("abc").
        let abc = app.ticket(TicketKind::Jsapi, &AccessToken::new("abc"));
        assert!(
            abc.as_str().ends_with("#ticket:jsapi:ba7816bf8f01cfea"),
            "{abc:?}"
        );
    }

    #[test]
    fn organisation_keys_are_distinct_bounded_and_deterministic() {
        let suite = key("suite1", None);
        let org = |id: &str| suite.organisation(&OrgId::new(id).unwrap());
        let keys = [
            suite.clone(),
            key("suite1#org:c1", None),
            org("c1"),
            org("c2"),
            org("user-refresh"),
            key("suite2", None).organisation(&OrgId::new("c1").unwrap()),
            suite.user_refresh(&RefreshToken::new("c1")),
            suite.ticket(TicketKind::Jsapi, &AccessToken::new("c1")),
        ];
        let mut seen = std::collections::HashSet::new();
        for k in &keys {
            assert!(seen.insert(k.as_str().to_string()), "collision: {k:?}");
        }
        let longest = org(&"x".repeat(crate::isv::MAX_ORG_ID_LEN));
        assert_eq!(
            longest.as_str().len(),
            suite.as_str().len() + "#org:".len() + crate::isv::MAX_ORG_ID_LEN
        );
        assert_eq!(org("c1"), org("c1"));
        assert_eq!(
            (org("c1").platform(), org("c1").tenant()),
            (suite.platform(), suite.tenant())
        );
    }

    #[test]
    fn parts_and_ctx() {
        let k = key("ding:x", Some("7"));
        assert_eq!(k.platform().unwrap().as_str(), "dingtalk");
        assert_eq!(k.tenant().unwrap().as_str(), "t1");
        let ctx = k.error_ctx("token_cache.refresh");
        assert_eq!(ctx.endpoint, "token_cache.refresh");
        assert_eq!(ctx.tenant.unwrap().as_str(), "t1");
        assert_eq!(k, key("ding:x", Some("7")));
        assert_ne!(k, key("ding:x", Some("8")));
    }
}
