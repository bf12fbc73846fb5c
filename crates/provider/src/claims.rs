//! Which claims each scope releases, the client-facing `sub`, and the tokens themselves.
//!
//! | scope | claims (when the profile has them) |
//! |---|---|
//! | `profile` | `name`, `preferred_username` (the organisation user id, else the platform subject), `picture` |
//! | `email` | `email`, `email_verified` (`true` only when the platform said it verified the address) |
//! | `phone` | `phone_number` (`+<country code><number>` when the country code is known), `phone_number_verified` (likewise) |
//! | `unilogin` | `tenant`, `platform`, `departments` (department ids) |
//!
//! `email_verified` and `phone_number_verified` are `false` unless the platform vouches: a
//! relying party that links accounts by e-mail must not trust an address nobody checked.

use aws_lc_rs::hmac;
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};
use unilogin_axum::session::Claims;
use unilogin_core::UserProfile;

use crate::client::{Client, SubjectType};
use crate::error::{ProviderError, Result};
use crate::provider::{Provider, now};
use crate::secret::{left_half_hash, random_token};
use crate::store::Grant;

/// Every scope the provider knows.
pub const SUPPORTED_SCOPES: &[&str] = &[
    "openid",
    "profile",
    "email",
    "phone",
    "offline_access",
    "unilogin",
];

/// Every claim the provider may release.
pub const SUPPORTED_CLAIMS: &[&str] = &[
    "iss",
    "sub",
    "aud",
    "exp",
    "iat",
    "auth_time",
    "nonce",
    "sid",
    "at_hash",
    "name",
    "preferred_username",
    "picture",
    "email",
    "email_verified",
    "phone_number",
    "phone_number_verified",
    "tenant",
    "platform",
    "departments",
];

/// The scope that releases `claim`.
fn scope_of(claim: &str) -> Option<&'static str> {
    Some(match claim {
        "name" | "preferred_username" | "picture" => "profile",
        "email" | "email_verified" => "email",
        "phone_number" | "phone_number_verified" => "phone",
        "tenant" | "platform" | "departments" => "unilogin",
        _ => return None,
    })
}

/// The claims `scopes` release from `profile`.
pub(crate) fn profile_claims(profile: &UserProfile, scopes: &[String]) -> Map<String, Value> {
    let has = |s: &str| scopes.iter().any(|x| x == s);
    let mut c = Map::new();
    if has("profile") {
        if let Some(name) = &profile.name {
            c.insert("name".into(), json!(name));
        }
        let username = profile.user_id.as_deref().unwrap_or(&profile.subject.value);
        c.insert("preferred_username".into(), json!(username));
        if let Some(avatar) = &profile.avatar {
            c.insert("picture".into(), json!(avatar));
        }
    }
    if has("email")
        && let Some(email) = &profile.email
    {
        c.insert("email".into(), json!(email));
        c.insert(
            "email_verified".into(),
            json!(profile.email_verified == Some(true)),
        );
    }
    if has("phone")
        && let Some(mobile) = &profile.mobile
    {
        let number = match &profile.mobile_country_code {
            Some(cc) => format!("+{cc}{mobile}"),
            None => mobile.clone(),
        };
        c.insert("phone_number".into(), json!(number));
        c.insert(
            "phone_number_verified".into(),
            json!(profile.mobile_verified == Some(true)),
        );
    }
    if has("unilogin") {
        c.insert("tenant".into(), json!(profile.tenant.as_str()));
        c.insert("platform".into(), json!(profile.platform.as_str()));
        c.insert("departments".into(), json!(profile.department_ids));
    }
    c
}

/// `claims` narrowed to what `scopes` release.
pub(crate) fn narrow(claims: &Map<String, Value>, scopes: &[String]) -> Map<String, Value> {
    claims
        .iter()
        .filter(|(k, _)| scope_of(k).is_some_and(|s| scopes.iter().any(|x| x == s)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The `sub` `client` sees for the session subject `subject`, reached through `redirect_uri`.
pub(crate) fn client_sub(
    provider: &Provider,
    client: &Client,
    redirect_uri: &str,
    subject: &str,
) -> Result<String> {
    match client.subject_type {
        SubjectType::Public => Ok(subject.to_string()),
        SubjectType::Pairwise => {
            let secret = provider.inner.pairwise_secret.ok_or_else(|| {
                ProviderError::Server(format!(
                    "client {:?} wants pairwise subjects but no pairwise secret is configured",
                    client.client_id
                ))
            })?;
            let sector = url::Url::parse(redirect_uri)
                .ok()
                .and_then(|u| u.host_str().map(str::to_string))
                .ok_or_else(|| ProviderError::Server("redirect URI without a host".into()))?;
            Ok(pairwise(&secret, &sector, subject))
        }
    }
}

/// base64url(HMAC-SHA256(secret, sector ‖ 0 ‖ subject)) (OIDC Core §8.1).
pub(crate) fn pairwise(secret: &[u8; 32], sector: &str, subject: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(sector.as_bytes());
    ctx.update(&[0]);
    ctx.update(subject.as_bytes());
    URL_SAFE_NO_PAD.encode(ctx.sign().as_ref())
}

/// A freshly issued access token.
pub(crate) struct AccessToken {
    pub(crate) token: String,
    pub(crate) jti: String,
    pub(crate) exp: u64,
}

/// Signs an access token for `grant` with `scopes`: a session token (`aud` the client id),
/// its `jti` `<grant id>.<random>` so userinfo finds the grant.
pub(crate) fn access_token(
    provider: &Provider,
    grant: &Grant,
    scopes: &[String],
) -> Result<AccessToken> {
    let iat = now();
    let exp = iat.saturating_add(provider.inner.settings.access_ttl.as_secs().max(1));
    let jti = format!("{}.{}", grant.id, random_token(12)?);
    let claims = Claims {
        iss: provider.inner.access.issuer().to_string(),
        aud: grant.client_id.clone(),
        sub: grant.subject.clone(),
        exp,
        iat,
        nbf: iat,
        jti: jti.clone(),
        scope: scopes.join(" "),
        tenant: grant.tenant.clone(),
        platform: grant.platform.clone(),
        uid: grant.uid.clone(),
        name: grant
            .claims
            .get("name")
            .and_then(Value::as_str)
            .map(str::to_string),
        account: grant.account.clone(),
        user_id: grant.user_id.clone(),
    };
    let token = provider
        .inner
        .access
        .sign(&claims)
        .map_err(|e| ProviderError::Server(e.to_string()))?;
    Ok(AccessToken { token, jti, exp })
}

/// Signs an id token for `grant` and `client`.
pub(crate) fn id_token(
    provider: &Provider,
    client: &Client,
    grant: &Grant,
    scopes: &[String],
    nonce: Option<&str>,
    access_token: &str,
) -> Result<String> {
    let iat = now();
    let mut c = narrow(&grant.claims, scopes);
    c.insert("iss".into(), json!(provider.inner.issuer));
    c.insert("sub".into(), json!(grant.sub));
    c.insert("aud".into(), json!(client.client_id));
    c.insert(
        "exp".into(),
        json!(iat.saturating_add(provider.inner.settings.id_token_ttl.as_secs().max(1))),
    );
    c.insert("iat".into(), json!(iat));
    c.insert("auth_time".into(), json!(grant.auth_time));
    c.insert("sid".into(), json!(grant.sid));
    c.insert("at_hash".into(), json!(left_half_hash(access_token)));
    if let Some(n) = nonce {
        c.insert("nonce".into(), json!(n));
    }
    provider
        .keys_for(client.id_token_signed_response_alg)?
        .sign("JWT", &Value::Object(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(v: Value) -> UserProfile {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn email_is_verified_only_when_the_platform_says_so() {
        let scopes = vec!["openid".to_string(), "email".into(), "phone".into()];
        let p = profile(
            json!({"platform": "dingtalk", "tenant": "acme", "user_id": "u1",
            "email": "a@example.com", "mobile": "13800000000", "mobile_country_code": "86"}),
        );
        let c = profile_claims(&p, &scopes);
        assert_eq!(c["email_verified"], false);
        assert_eq!(c["phone_number"], "+8613800000000");
        assert_eq!(c["phone_number_verified"], false);
        let p = profile(
            json!({"platform": "feishu", "tenant": "acme", "user_id": "u1",
            "email": "a@example.com", "email_verified": true}),
        );
        let c = profile_claims(&p, &scopes);
        assert_eq!(c["email_verified"], true);
        assert!(!c.contains_key("phone_number"));
        assert!(!c.contains_key("name"), "profile scope not asked");
    }

    #[test]
    fn narrowing_keeps_only_the_scopes_claims() {
        let p = profile(
            json!({"platform": "dingtalk", "tenant": "acme", "user_id": "u1",
            "name": "Zhang", "email": "a@example.com", "department_ids": ["1"]}),
        );
        let all: Vec<String> = ["openid", "profile", "email", "unilogin"]
            .map(String::from)
            .to_vec();
        let c = profile_claims(&p, &all);
        assert_eq!(c["departments"], json!(["1"]));
        let n = narrow(&c, &["openid".to_string(), "profile".into()]);
        assert_eq!(n["name"], "Zhang");
        assert!(!n.contains_key("email"));
        assert!(!n.contains_key("tenant"));
    }

    #[test]
    fn pairwise_subjects_differ_per_sector_and_secret() {
        let a = pairwise(&[1; 32], "a.example", "acme:dingtalk:u1");
        assert_eq!(a, pairwise(&[1; 32], "a.example", "acme:dingtalk:u1"));
        assert_ne!(a, pairwise(&[1; 32], "b.example", "acme:dingtalk:u1"));
        assert_ne!(a, pairwise(&[2; 32], "a.example", "acme:dingtalk:u1"));
        assert_ne!(a, pairwise(&[1; 32], "a.example", "acme:dingtalk:u2"));
        assert!(!a.contains("u1"));
    }
}
