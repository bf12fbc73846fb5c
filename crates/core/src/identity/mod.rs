//! Accounts: one stable unilogin [`AccountId`] per person and tenant, whichever platforms the
//! person logs in with.
//!
//! A login yields a [`UserProfile`] whose [`Subject`] identifies the person on one platform.
//! An [`IdentityStore`] maps each *identity* — (tenant, platform, subject), an [`IdentityKey`]
//! — to one account:
//!
//! - an identity seen for the first time gets a new account, unless the tenant's
//!   [`LinkRules`] link it to an existing one: by an e-mail address or mobile number that the
//!   platform vouches for and that exactly one account of the tenant already has. When two
//!   accounts have it, nothing is guessed: [`IdentityError::Ambiguous`];
//! - [`IdentityStore::link`] attaches an identity to an account explicitly (a user connecting a
//!   second platform while logged in), [`IdentityStore::unlink`] detaches one,
//!   [`IdentityStore::merge`] moves every identity of one account into another.
//!
//! **What "vouched for" means.** Per platform and tenant, [`LinkRules`] say, for e-mail and
//! mobile separately, whether values may link accounts: [`LinkTrust::Off`] (never, the
//! default), [`LinkTrust::Verified`] (only when the profile says the platform verified the
//! value, `email_verified` / `mobile_verified`, e.g. an OIDC provider's claims), or
//! [`LinkTrust::Trusted`] (the tenant vouches for the platform's values — an organisation's
//! own directory). An identity only *records* values that are vouched for, so an address
//! typed into a lax provider can never pull another platform's identity into its account.
//!
//! The stores: [`MemoryIdentityStore`] here (tests, single-process embedding) and the SQL one
//! in `unilogin-sql` (`SqlIdentityStore`, SQLite by default, PostgreSQL, MySQL).
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! use unilogin_core::identity::{IdentityStore, LinkRules, LinkTrust, MemoryIdentityStore};
//! use unilogin_core::mapping::UserProfile;
//!
//! let profile = |platform: &str, id: &str| -> UserProfile {
//!     serde_json::from_value(serde_json::json!({
//!         "platform": platform, "tenant": "acme", "user_id": id,
//!         "mobile": "13800000000", "mobile_country_code": "86"
//!     })).unwrap()
//! };
//! let store = MemoryIdentityStore::new();
//! let rules = LinkRules { mobile: LinkTrust::Trusted, ..LinkRules::default() };
//! let a = store.account_for(&profile("dingtalk", "user001"), &rules).await?;
//! // The same person through WeCom during a migration: the same account.
//! let b = store.account_for(&profile("wecom", "zhangsan"), &rules).await?;
//! assert_eq!(a, b);
//! // Without a linking rule, a new account.
//! let c = store.account_for(&profile("feishu", "u9"), &LinkRules::default()).await?;
//! assert_ne!(a, c);
//! # Ok::<(), unilogin_core::Error>(()) }).unwrap();
//! ```

mod memory;

pub use memory::MemoryIdentityStore;

use std::fmt;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::mapping::normalize::country_code;
use crate::mapping::{Subject, SubjectKind, UserProfile};
use crate::types::{AccountId, PlatformName, TenantId};
use crate::web_login::random_hex;

/// A tenant's identity settings for one platform (`identity` in its configuration).
///
/// ```
/// use unilogin_core::identity::{IdentityPolicy, LinkTrust};
/// use unilogin_core::mapping::SubjectKind;
/// let p: IdentityPolicy = serde_json::from_value(serde_json::json!({
///     "subject": "union_id",
///     "link": { "email": "verified", "mobile": "trusted", "default_country_code": "86" }
/// })).unwrap();
/// assert_eq!(p.subject, Some(SubjectKind::UnionId));
/// assert_eq!(p.link.email, LinkTrust::Verified);
/// assert!(p.validate().is_ok());
/// assert!(serde_json::from_value::<IdentityPolicy>(serde_json::json!({"subjet": "x"})).is_err());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityPolicy {
    /// Which identifier is the subject; `None`: the platform's default (see
    /// [`subject`](crate::mapping::subject)).
    #[serde(default)]
    pub subject: Option<SubjectKind>,
    /// How new identities of this platform link to existing accounts of the tenant.
    #[serde(default)]
    pub link: LinkRules,
}

impl IdentityPolicy {
    /// Checks what serde cannot: `link.default_country_code` is a country calling code (one to
    /// three digits, `+` allowed). The error's `reason` names the problem; the caller adds
    /// the tenant, platform and field (`identity.link.default_country_code`).
    pub fn validate(&self) -> std::result::Result<(), String> {
        match &self.link.default_country_code {
            Some(cc) if country_code(cc).is_none() => Err(format!(
                "`{}` is not a country calling code (one to three digits, such as 86)",
                cc.chars().take(16).collect::<String>()
            )),
            _ => Ok(()),
        }
    }
}

/// How much a platform's contact data is trusted for linking accounts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkTrust {
    /// Never link by this value (the default).
    #[default]
    Off,
    /// Link only when the profile says the platform verified the value (`email_verified` /
    /// `mobile_verified` true).
    Verified,
    /// Link whenever the platform gives the value: the tenant vouches for it (its own
    /// organisation directory, maintained by its administrators).
    Trusted,
}

/// The linking rules of one platform of a tenant.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinkRules {
    /// Link by e-mail address (compared trimmed and lower-cased).
    #[serde(default)]
    pub email: LinkTrust,
    /// Link by mobile number (compared in E.164 form where the country code is known).
    #[serde(default)]
    pub mobile: LinkTrust,
    /// The country calling code assumed for a mobile number the platform gives without one
    /// (WeCom gives bare national numbers), so that it matches the same number from a platform
    /// that reports the code.
    #[serde(default)]
    pub default_country_code: Option<String>,
}

/// One identity: a person on one platform of one tenant.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct IdentityKey {
    /// The tenant.
    pub tenant: TenantId,
    /// The platform.
    pub platform: PlatformName,
    /// The subject on that platform.
    pub subject: Subject,
}

impl IdentityKey {
    /// The identity a profile is for.
    pub fn of(profile: &UserProfile) -> Self {
        Self {
            tenant: profile.tenant.clone(),
            platform: profile.platform.clone(),
            subject: profile.subject.clone(),
        }
    }
}

impl fmt::Display for IdentityKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}:{}",
            self.tenant, self.platform, self.subject.kind, self.subject.value
        )
    }
}

/// What a store needs to know of a login: the identity, and the contact values vouched for
/// under the tenant's [`LinkRules`] (in their matching forms). Build it with
/// [`IdentityClaim::new`].
///
/// ```
/// use unilogin_core::identity::{IdentityClaim, LinkRules, LinkTrust};
/// let profile = serde_json::from_value(serde_json::json!({
///     "platform": "custom-oauth", "tenant": "acme", "user_id": "u1",
///     "email": "Zhang@Example.com", "email_verified": false,
///     "mobile": "13800000000"
/// })).unwrap();
/// let rules = LinkRules {
///     email: LinkTrust::Verified, mobile: LinkTrust::Trusted,
///     default_country_code: Some("86".into()),
/// };
/// let claim = IdentityClaim::new(&profile, &rules);
/// assert_eq!(claim.email, None, "not verified by the provider");
/// assert_eq!(claim.mobile.as_deref(), Some("+8613800000000"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityClaim {
    /// The identity.
    pub key: IdentityKey,
    /// The e-mail address in matching form, when vouched for.
    pub email: Option<String>,
    /// The mobile number in matching form (E.164 when the country code is known), when
    /// vouched for.
    pub mobile: Option<String>,
}

impl IdentityClaim {
    /// The claim of a login's profile under `rules`.
    pub fn new(profile: &UserProfile, rules: &LinkRules) -> Self {
        let vouched = |trust: LinkTrust, verified: Option<bool>| match trust {
            LinkTrust::Off => false,
            LinkTrust::Verified => verified == Some(true),
            LinkTrust::Trusted => true,
        };
        let email = profile
            .email_for_matching()
            .filter(|_| vouched(rules.email, profile.email_verified));
        let mobile = mobile_key(profile, rules.default_country_code.as_deref())
            .filter(|_| vouched(rules.mobile, profile.mobile_verified));
        Self {
            key: IdentityKey::of(profile),
            email,
            mobile,
        }
    }
}

/// A mobile number's matching form: E.164 with the profile's country code (or the default),
/// else the national digits.
fn mobile_key(profile: &UserProfile, default_cc: Option<&str>) -> Option<String> {
    let number = profile.mobile.as_deref()?;
    if !number.bytes().all(|b| b.is_ascii_digit()) {
        return Some(number.to_string());
    }
    let cc = profile
        .mobile_country_code
        .clone()
        .or_else(|| default_cc.and_then(country_code));
    Some(match cc {
        Some(cc) => format!("+{cc}{number}"),
        None => number.to_string(),
    })
}

/// How an identity came to its account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LinkedBy {
    /// Its first login created the account.
    Created,
    /// Its first login matched the account by a vouched e-mail address.
    Email,
    /// Its first login matched the account by a vouched mobile number.
    Mobile,
    /// [`IdentityStore::link`].
    Api,
    /// [`IdentityStore::merge`] moved it from another account.
    Merge,
}

impl LinkedBy {
    /// The stored name (`created`, `email`, `mobile`, `api`, `merge`).
    pub fn as_str(self) -> &'static str {
        match self {
            LinkedBy::Created => "created",
            LinkedBy::Email => "email",
            LinkedBy::Mobile => "mobile",
            LinkedBy::Api => "api",
            LinkedBy::Merge => "merge",
        }
    }

    /// The value of a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        [
            LinkedBy::Created,
            LinkedBy::Email,
            LinkedBy::Mobile,
            LinkedBy::Api,
            LinkedBy::Merge,
        ]
        .into_iter()
        .find(|l| l.as_str() == s)
    }
}

/// An identity linked to an account, as a store lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkedIdentity {
    /// The identity.
    pub key: IdentityKey,
    /// Its account.
    pub account: AccountId,
    /// How it came to the account.
    pub linked_by: LinkedBy,
    /// When it was first linked, in milliseconds since the Unix epoch.
    pub linked_at_ms: i64,
    /// Its last login through [`IdentityStore::resolve`], in milliseconds since the Unix epoch.
    pub last_login_ms: i64,
}

/// Which contact value matched several accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchKey {
    /// The e-mail address.
    Email,
    /// The mobile number.
    Mobile,
    /// The e-mail address matched one account, the mobile number another.
    EmailAndMobile,
}

impl fmt::Display for MatchKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            MatchKey::Email => "e-mail address",
            MatchKey::Mobile => "mobile number",
            MatchKey::EmailAndMobile => "e-mail address and mobile number (different accounts)",
        })
    }
}

/// Why an identity operation was refused. Carried by [`Error::Identity`]; never names an
/// e-mail address or a mobile number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdentityError {
    /// A new identity's vouched contact data matches more than one account: nothing is linked
    /// automatically (link it explicitly, or merge the accounts first).
    #[error(
        "tenant `{tenant}`: the {by} of this `{platform}` identity matches {accounts} accounts; not linking automatically (link it explicitly or merge the accounts)"
    )]
    Ambiguous {
        /// The tenant.
        tenant: TenantId,
        /// The platform of the new identity.
        platform: PlatformName,
        /// What matched.
        by: MatchKey,
        /// How many accounts matched.
        accounts: usize,
    },
    /// No such account in the tenant.
    #[error("tenant `{tenant}`: no account `{account}`")]
    UnknownAccount {
        /// The tenant.
        tenant: TenantId,
        /// The account asked for.
        account: AccountId,
    },
    /// The identity is not linked to any account.
    #[error("identity `{key}` is not linked to an account")]
    NotLinked {
        /// The identity.
        key: IdentityKey,
    },
    /// The identity is already linked to another account: unlink it first, or merge.
    #[error("identity `{key}` is already linked to account `{account}`")]
    AlreadyLinked {
        /// The identity.
        key: IdentityKey,
        /// The account it is linked to.
        account: AccountId,
    },
    /// An account cannot be merged into itself.
    #[error("tenant `{tenant}`: account `{account}` cannot be merged into itself")]
    SameAccount {
        /// The tenant.
        tenant: TenantId,
        /// The account.
        account: AccountId,
    },
}

impl IdentityError {
    /// A short, stable, machine-readable name.
    pub fn kind(&self) -> &'static str {
        match self {
            IdentityError::Ambiguous { .. } => "identity_ambiguous",
            IdentityError::UnknownAccount { .. } => "unknown_account",
            IdentityError::NotLinked { .. } => "identity_not_linked",
            IdentityError::AlreadyLinked { .. } => "identity_already_linked",
            IdentityError::SameAccount { .. } => "same_account",
        }
    }
}

impl From<IdentityError> for Error {
    fn from(e: IdentityError) -> Self {
        Error::Identity(e)
    }
}

/// Maps identities to accounts. Implementations: [`MemoryIdentityStore`], and
/// `unilogin_sql::SqlIdentityStore`. Failures of the store itself are [`Error::Store`];
/// refusals are [`Error::Identity`].
#[async_trait]
pub trait IdentityStore: Send + Sync + fmt::Debug {
    /// The account of a login: the identity's account when it has one (its vouched contact
    /// values are updated); otherwise the one existing account of the tenant its vouched
    /// e-mail or mobile matches (recorded as linked by that value); otherwise a new account.
    /// Two or more matching accounts: [`IdentityError::Ambiguous`], nothing is written.
    async fn resolve(&self, claim: &IdentityClaim) -> Result<AccountId>;

    /// Links the claim's identity to `account` (of the claim's tenant) explicitly. Linking an
    /// identity to the account it already has changes nothing; one linked to another account
    /// is refused with [`IdentityError::AlreadyLinked`].
    async fn link(&self, account: &AccountId, claim: &IdentityClaim) -> Result<()>;

    /// Detaches an identity from its account and returns that account (which stays, even
    /// without identities). [`IdentityError::NotLinked`] if it has none.
    async fn unlink(&self, key: &IdentityKey) -> Result<AccountId>;

    /// Moves every identity of `from` to `into` (both of `tenant`) and deletes `from`; returns
    /// how many identities moved.
    async fn merge(&self, tenant: &TenantId, from: &AccountId, into: &AccountId) -> Result<usize>;

    /// The account of an identity, if it has one (no side effects).
    async fn find(&self, key: &IdentityKey) -> Result<Option<AccountId>>;

    /// The identities of an account, ordered by platform and subject;
    /// [`IdentityError::UnknownAccount`] for an account the tenant does not have.
    async fn identities(
        &self,
        tenant: &TenantId,
        account: &AccountId,
    ) -> Result<Vec<LinkedIdentity>>;

    /// After a successful login: the account of `profile` under the tenant's `rules` for its
    /// platform (usually `prepared.config().identity.link`). Shorthand for
    /// [`resolve`](Self::resolve) of [`IdentityClaim::new`].
    async fn account_for(&self, profile: &UserProfile, rules: &LinkRules) -> Result<AccountId> {
        self.resolve(&IdentityClaim::new(profile, rules)).await
    }
}

/// What to do with an identity seen for the first time, from the accounts its vouched e-mail
/// (`by_email`) and mobile (`by_mobile`) match. Shared by every store, so they all decide
/// alike.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FirstLogin {
    /// Link it to this account.
    Link(AccountId, LinkedBy),
    /// Create a new account for it.
    Create,
}

/// Decides a [`FirstLogin`]: one matching account links, none creates, several refuse.
///
/// ```
/// use unilogin_core::AccountId;
/// use unilogin_core::identity::{FirstLogin, IdentityClaim, LinkedBy, first_login};
/// # let claim = IdentityClaim::new(&serde_json::from_value(serde_json::json!({
/// #     "platform": "wecom", "tenant": "acme", "user_id": "u1"})).unwrap(), &Default::default());
/// let a = AccountId::new("acc_a").unwrap();
/// let b = AccountId::new("acc_b").unwrap();
/// assert_eq!(first_login(&claim, &[a.clone()], &[a.clone()]).unwrap(), FirstLogin::Link(a.clone(), LinkedBy::Email));
/// assert_eq!(first_login(&claim, &[], &[]).unwrap(), FirstLogin::Create);
/// assert!(first_login(&claim, &[a], &[b]).is_err());
/// ```
pub fn first_login(
    claim: &IdentityClaim,
    by_email: &[AccountId],
    by_mobile: &[AccountId],
) -> Result<FirstLogin> {
    let distinct = |ids: &[AccountId]| {
        let mut v: Vec<AccountId> = ids.to_vec();
        v.sort();
        v.dedup();
        v
    };
    let (email, mobile) = (distinct(by_email), distinct(by_mobile));
    let ambiguous = |by, accounts| {
        Err(Error::Identity(IdentityError::Ambiguous {
            tenant: claim.key.tenant.clone(),
            platform: claim.key.platform.clone(),
            by,
            accounts,
        }))
    };
    if email.len() > 1 {
        return ambiguous(MatchKey::Email, email.len());
    }
    if mobile.len() > 1 {
        return ambiguous(MatchKey::Mobile, mobile.len());
    }
    match (email.first(), mobile.first()) {
        (Some(e), Some(m)) if e != m => ambiguous(MatchKey::EmailAndMobile, 2),
        (Some(e), _) => Ok(FirstLogin::Link(e.clone(), LinkedBy::Email)),
        (None, Some(m)) => Ok(FirstLogin::Link(m.clone(), LinkedBy::Mobile)),
        (None, None) => Ok(FirstLogin::Create),
    }
}

/// A fresh account id: `acc_` and 32 random hex digits.
pub fn new_account_id() -> Result<AccountId> {
    AccountId::new(format!("acc_{}", random_hex(16)))
        .map_err(|e| Error::Internal(format!("generating an account id: {e}")))
}

/// Milliseconds since the Unix epoch (0 before it).
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests;
