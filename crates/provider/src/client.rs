//! Relying parties ("clients") as configured, and where the provider looks them up.
//!
//! A client is looked up **per request** through a [`ClientSource`]: the gateway reloads its
//! configuration while running, so the provider never keeps a copy. [`StaticClients`] is the
//! fixed list for tests and simple setups.
//!
//! ## Client secrets
//! A confidential client's secret is configured as `client_secret_sha256`, the hex SHA-256 of
//! the secret. Secrets are meant to be random (at least 128 bits, e.g. `openssl rand -hex 32`):
//! for such a value a preimage search is as hard as guessing the secret itself, so a fast hash
//! is enough and a password hash (argon2, bcrypt) would only add latency to every token
//! request. It is compared in constant time. Do not use a memorable password as a client
//! secret.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use serde::Deserialize;
use unilogin_core::{PlatformName, TenantId};
use url::Url;

use crate::error::{ProviderError, Result};
use crate::keys::IdTokenAlg;
use crate::secret::{ct_eq, sha256_hex};

/// Grant types a client may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantType {
    /// `authorization_code` (RFC 6749 §4.1).
    AuthorizationCode,
    /// `refresh_token` (RFC 6749 §6).
    RefreshToken,
}

impl GrantType {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AuthorizationCode => "authorization_code",
            Self::RefreshToken => "refresh_token",
        }
    }
}

/// How a client authenticates at the token endpoint (OIDC Core §9).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthMethod {
    /// HTTP Basic with the client id and secret (RFC 6749 §2.3.1).
    ClientSecretBasic,
    /// `client_id` and `client_secret` in the form body.
    ClientSecretPost,
    /// A public client: `client_id` only, PKCE required.
    None,
}

impl AuthMethod {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ClientSecretBasic => "client_secret_basic",
            Self::ClientSecretPost => "client_secret_post",
            Self::None => "none",
        }
    }
}

/// The `sub` a client sees (OIDC Core §8).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SubjectType {
    /// The session subject (`tenant:platform:uid`), the same for every client.
    #[default]
    Public,
    /// HMAC-SHA256 of the sector (the redirect URI host) and the subject under the provider's
    /// pairwise secret: different clients cannot correlate people.
    Pairwise,
}

/// One relying party. Deserializes from configuration (unknown fields are refused); call
/// [`Client::validate`] before use. `Debug` shows no secret hash.
///
/// ```
/// use unilogin_provider::{Client, sha256_hex};
/// let client: Client = serde_json::from_value(serde_json::json!({
///     "client_id": "grafana",
///     "client_secret_sha256": sha256_hex("a-long-random-secret"),
///     "redirect_uris": ["https://grafana.example.com/login/generic_oauth"],
///     "tenants": ["acme"],
/// })).unwrap();
/// client.validate().unwrap();
/// assert!(client.check_secret("a-long-random-secret"));
/// assert!(!client.check_secret("guess"));
/// assert!(!format!("{client:?}").contains(&sha256_hex("a-long-random-secret")));
/// ```
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Client {
    /// The client id.
    pub client_id: String,
    /// Hex SHA-256 of the client secret; absent for a public client.
    #[serde(default)]
    pub client_secret_sha256: Option<String>,
    /// Redirect URIs, compared exactly (no wildcards, no prefix matching).
    pub redirect_uris: Vec<Url>,
    /// Where RP-initiated logout may send the browser afterwards, compared exactly.
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<Url>,
    /// Tenants whose people may sign in; the first is the default.
    pub tenants: Vec<TenantId>,
    /// Platforms allowed; empty means every platform of the tenant.
    #[serde(default)]
    pub platforms: Vec<PlatformName>,
    /// Grant types allowed (default: `authorization_code` and `refresh_token`).
    #[serde(default = "default_grants")]
    pub grant_types: Vec<GrantType>,
    /// Scopes the client may request (besides `openid`, always allowed). Empty: every scope
    /// the provider supports.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Refuse unknown or disallowed scopes with `invalid_scope` instead of dropping them.
    #[serde(default)]
    pub strict_scopes: bool,
    /// Issue a refresh token even without `offline_access` (when the client has the
    /// `refresh_token` grant). Default: only with `offline_access`.
    #[serde(default)]
    pub refresh_without_offline_access: bool,
    /// How the client authenticates at the token endpoint. Default: `client_secret_basic`
    /// with a secret, `none` without.
    #[serde(default)]
    pub token_endpoint_auth_method: Option<AuthMethod>,
    /// The id token signing algorithm (default `RS256`).
    #[serde(default)]
    pub id_token_signed_response_alg: IdTokenAlg,
    /// `public` (default) or `pairwise` subjects.
    #[serde(default)]
    pub subject_type: SubjectType,
    /// Where back-channel logout tokens are POSTed (OIDC Back-Channel Logout 1.0).
    #[serde(default)]
    pub backchannel_logout_uri: Option<Url>,
    /// Whether the logout token must carry `sid` (it always does here).
    #[serde(default)]
    pub backchannel_logout_session_required: bool,
    /// Require PKCE (forced for public clients).
    #[serde(default)]
    pub require_pkce: bool,
}

fn default_grants() -> Vec<GrantType> {
    vec![GrantType::AuthorizationCode, GrantType::RefreshToken]
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("client_id", &self.client_id)
            .field(
                "client_secret_sha256",
                &self.client_secret_sha256.as_ref().map(|_| "***"),
            )
            .field(
                "redirect_uris",
                &self
                    .redirect_uris
                    .iter()
                    .map(Url::as_str)
                    .collect::<Vec<_>>(),
            )
            .field("tenants", &self.tenants)
            .field("platforms", &self.platforms)
            .field("grant_types", &self.grant_types)
            .field("scopes", &self.scopes)
            .field("auth_method", &self.auth_method())
            .field("alg", &self.id_token_signed_response_alg)
            .field("subject_type", &self.subject_type)
            .field(
                "backchannel_logout_uri",
                &self.backchannel_logout_uri.as_ref().map(Url::as_str),
            )
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Checks the configuration: a client id of printable ASCII, a well-formed secret hash,
    /// at least one redirect URI (absolute, no fragment, `https` or loopback `http`), at least
    /// one tenant, the authentication method consistent with the secret, grant types present.
    pub fn validate(&self) -> Result<()> {
        let bad = |why: String| {
            Err(ProviderError::Server(format!(
                "client {:?}: {why}",
                self.client_id
            )))
        };
        if self.client_id.is_empty()
            || self.client_id.len() > 128
            || !self
                .client_id
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b':')
        {
            return Err(ProviderError::Server(
                "a client id is 1 to 128 printable ASCII characters without ':'".into(),
            ));
        }
        if let Some(h) = &self.client_secret_sha256
            && (h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()))
        {
            return bad("client_secret_sha256 is not 64 hex digits".into());
        }
        if self.redirect_uris.is_empty() {
            return bad("at least one redirect URI is needed".into());
        }
        for uri in self
            .redirect_uris
            .iter()
            .chain(&self.post_logout_redirect_uris)
        {
            check_uri(uri).or_else(|why| bad(format!("{uri}: {why}")))?;
        }
        if let Some(uri) = &self.backchannel_logout_uri {
            check_uri(uri).or_else(|why| bad(format!("{uri}: {why}")))?;
        }
        if self.tenants.is_empty() {
            return bad("at least one tenant is needed".into());
        }
        if self.grant_types.is_empty() || !self.grant_types.contains(&GrantType::AuthorizationCode)
        {
            return bad("grant_types must include authorization_code".into());
        }
        match (self.token_endpoint_auth_method, &self.client_secret_sha256) {
            (Some(AuthMethod::None), Some(_)) => {
                bad("token_endpoint_auth_method none with a secret".into())
            }
            (Some(AuthMethod::ClientSecretBasic | AuthMethod::ClientSecretPost), None) => {
                bad("a secret authentication method without client_secret_sha256".into())
            }
            _ => Ok(()),
        }
    }

    /// Whether the client has no secret (authenticates with PKCE only).
    pub fn is_public(&self) -> bool {
        self.client_secret_sha256.is_none()
    }

    /// The authentication method in effect.
    pub fn auth_method(&self) -> AuthMethod {
        self.token_endpoint_auth_method
            .unwrap_or(if self.is_public() {
                AuthMethod::None
            } else {
                AuthMethod::ClientSecretBasic
            })
    }

    /// Whether PKCE is required (always for public clients).
    pub fn pkce_required(&self) -> bool {
        self.require_pkce || self.is_public()
    }

    /// Whether `secret` is this client's secret (constant-time on the hashes). Always false
    /// for a public client.
    pub fn check_secret(&self, secret: &str) -> bool {
        match &self.client_secret_sha256 {
            Some(expected) => ct_eq(&sha256_hex(secret), &expected.to_ascii_lowercase()),
            None => false,
        }
    }

    /// Whether `uri` is one of the registered redirect URIs (exact string comparison).
    pub fn allows_redirect(&self, uri: &str) -> bool {
        self.redirect_uris.iter().any(|u| u.as_str() == uri)
    }

    /// Whether `uri` is one of the registered post-logout redirect URIs.
    pub fn allows_post_logout_redirect(&self, uri: &str) -> bool {
        self.post_logout_redirect_uris
            .iter()
            .any(|u| u.as_str() == uri)
    }

    /// Whether the client may use `grant`.
    pub fn allows_grant(&self, grant: GrantType) -> bool {
        self.grant_types.contains(&grant)
    }

    /// Whether the client may receive `scope` (`openid` always).
    pub fn allows_scope(&self, scope: &str) -> bool {
        scope == "openid" || self.scopes.is_empty() || self.scopes.iter().any(|s| s == scope)
    }

    /// Whether people of `tenant` may sign in to this client.
    pub fn allows_tenant(&self, tenant: &TenantId) -> bool {
        self.tenants.contains(tenant)
    }

    /// Whether `platform` is allowed (every platform when the list is empty).
    pub fn allows_platform(&self, platform: &PlatformName) -> bool {
        self.platforms.is_empty() || self.platforms.contains(platform)
    }
}

fn check_uri(uri: &Url) -> std::result::Result<(), &'static str> {
    if uri.fragment().is_some() {
        return Err("a URI must not have a fragment");
    }
    if uri.cannot_be_a_base() {
        return Err("not an absolute hierarchical URI");
    }
    let loopback = matches!(uri.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    match uri.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        "http" => Err("http is allowed for loopback hosts only"),
        // Native apps' private-use schemes (RFC 8252 §7.1) contain a dot.
        s if s.contains('.') => Ok(()),
        _ => Err("the scheme must be https (http on loopback, or a reverse-DNS scheme)"),
    }
}

/// Where the provider finds a client by id, per request.
pub trait ClientSource: Send + Sync + 'static {
    /// The client `id`, if configured.
    fn client(&self, id: &str) -> Option<Arc<Client>>;

    /// Every configured client (for a subject logout that must reach every relying party).
    /// The default: none known, so only the clients recorded for a session are told.
    fn all(&self) -> Vec<Arc<Client>> {
        Vec::new()
    }
}

/// A fixed list of clients.
///
/// ```
/// use unilogin_provider::{Client, ClientSource, StaticClients};
/// let client: Client = serde_json::from_value(serde_json::json!({
///     "client_id": "cli", "redirect_uris": ["http://127.0.0.1:8400/cb"], "tenants": ["acme"],
/// })).unwrap();
/// let clients = StaticClients::new(vec![client]).unwrap();
/// assert!(clients.client("cli").unwrap().is_public());
/// assert!(clients.client("other").is_none());
/// ```
#[derive(Debug, Clone, Default)]
pub struct StaticClients {
    by_id: HashMap<String, Arc<Client>>,
}

impl StaticClients {
    /// Validates every client; refuses duplicates.
    pub fn new(clients: Vec<Client>) -> Result<Self> {
        let mut by_id = HashMap::new();
        for c in clients {
            c.validate()?;
            let id = c.client_id.clone();
            if by_id.insert(id.clone(), Arc::new(c)).is_some() {
                return Err(ProviderError::Server(format!(
                    "client {id:?} is configured twice"
                )));
            }
        }
        Ok(Self { by_id })
    }
}

impl ClientSource for StaticClients {
    fn client(&self, id: &str) -> Option<Arc<Client>> {
        self.by_id.get(id).cloned()
    }

    fn all(&self) -> Vec<Arc<Client>> {
        self.by_id.values().cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn client(v: serde_json::Value) -> Client {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn validation_refuses_bad_configuration() {
        let base = json!({"client_id": "c", "redirect_uris": ["https://rp.example/cb"], "tenants": ["acme"]});
        assert!(client(base.clone()).validate().is_ok());
        let mut v = base.clone();
        v["redirect_uris"] = json!(["http://rp.example/cb"]);
        assert!(client(v).validate().is_err());
        let mut v = base.clone();
        v["redirect_uris"] = json!(["https://rp.example/cb#frag"]);
        assert!(client(v).validate().is_err());
        let mut v = base.clone();
        v["tenants"] = json!([]);
        assert!(client(v).validate().is_err());
        let mut v = base.clone();
        v["client_secret_sha256"] = json!("abc");
        assert!(client(v).validate().is_err());
        let mut v = base.clone();
        v["token_endpoint_auth_method"] = json!("client_secret_post");
        assert!(client(v).validate().is_err());
        let mut v = base.clone();
        v["client_id"] = json!("a:b");
        assert!(client(v).validate().is_err());
        let mut v = base.clone();
        v["grant_types"] = json!(["refresh_token"]);
        assert!(client(v).validate().is_err());
        let mut v = base;
        v["unknown"] = json!(1);
        assert!(serde_json::from_value::<Client>(v).is_err());
    }

    #[test]
    fn public_clients_need_pkce_and_redirects_match_exactly() {
        let c = client(
            json!({"client_id": "c", "redirect_uris": ["https://rp.example/cb"], "tenants": ["acme"]}),
        );
        assert!(c.is_public());
        assert!(c.pkce_required());
        assert_eq!(c.auth_method(), AuthMethod::None);
        assert!(!c.check_secret(""));
        assert!(c.allows_redirect("https://rp.example/cb"));
        assert!(!c.allows_redirect("https://rp.example/cb/"));
        assert!(!c.allows_redirect("https://rp.example/cb?x=1"));
        assert!(!c.allows_redirect("https://RP.example/cb2"));
    }

    #[test]
    fn duplicate_clients_are_refused() {
        let c = client(
            json!({"client_id": "c", "redirect_uris": ["https://rp.example/cb"], "tenants": ["acme"]}),
        );
        assert!(StaticClients::new(vec![c.clone(), c]).is_err());
    }
}
