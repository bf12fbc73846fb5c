//! [`MemoryIdentityStore`]: the identity store in process memory.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;

use super::{
    FirstLogin, IdentityClaim, IdentityError, IdentityKey, IdentityStore, LinkedBy, LinkedIdentity,
    first_login, new_account_id, now_ms,
};
use crate::error::{Error, Result};
use crate::types::{AccountId, TenantId};

#[derive(Debug, Clone)]
struct Entry {
    account: AccountId,
    email: Option<String>,
    mobile: Option<String>,
    linked_by: LinkedBy,
    linked_at_ms: i64,
    last_login_ms: i64,
}

#[derive(Debug, Default)]
struct State {
    /// Accounts by tenant.
    accounts: BTreeMap<TenantId, BTreeSet<AccountId>>,
    identities: BTreeMap<IdentityKey, Entry>,
}

impl State {
    fn has_account(&self, tenant: &TenantId, account: &AccountId) -> bool {
        self.accounts
            .get(tenant)
            .is_some_and(|a| a.contains(account))
    }

    fn unknown(tenant: &TenantId, account: &AccountId) -> Error {
        Error::Identity(IdentityError::UnknownAccount {
            tenant: tenant.clone(),
            account: account.clone(),
        })
    }

    /// The accounts of `tenant` whose identities recorded `value` (by `pick`).
    fn matching(
        &self,
        tenant: &TenantId,
        value: Option<&String>,
        pick: fn(&Entry) -> Option<&String>,
    ) -> Vec<AccountId> {
        let Some(value) = value else {
            return Vec::new();
        };
        self.identities
            .iter()
            .filter(|(k, e)| &k.tenant == tenant && pick(e) == Some(value))
            .map(|(_, e)| e.account.clone())
            .collect()
    }
}

/// An [`IdentityStore`] in memory: for tests, examples and single-process programs that do
/// not need accounts to survive a restart. Every operation is atomic (one lock). Cheap to
/// share behind an `Arc`.
#[derive(Debug, Default)]
pub struct MemoryIdentityStore {
    state: Mutex<State>,
}

impl MemoryIdentityStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> Result<MutexGuard<'_, State>> {
        self.state.lock().map_err(|_| Error::Store {
            store: "memory",
            operation: "identity",
            message: "lock poisoned".into(),
        })
    }
}

#[async_trait]
impl IdentityStore for MemoryIdentityStore {
    async fn resolve(&self, claim: &IdentityClaim) -> Result<AccountId> {
        let mut st = self.lock()?;
        let now = now_ms();
        if let Some(e) = st.identities.get_mut(&claim.key) {
            e.email.clone_from(&claim.email);
            e.mobile.clone_from(&claim.mobile);
            e.last_login_ms = now;
            return Ok(e.account.clone());
        }
        let tenant = &claim.key.tenant;
        let by_email = st.matching(tenant, claim.email.as_ref(), |e| e.email.as_ref());
        let by_mobile = st.matching(tenant, claim.mobile.as_ref(), |e| e.mobile.as_ref());
        let (account, linked_by) = match first_login(claim, &by_email, &by_mobile)? {
            FirstLogin::Link(account, by) => (account, by),
            FirstLogin::Create => {
                let account = new_account_id()?;
                st.accounts
                    .entry(tenant.clone())
                    .or_default()
                    .insert(account.clone());
                (account, LinkedBy::Created)
            }
        };
        st.identities.insert(
            claim.key.clone(),
            Entry {
                account: account.clone(),
                email: claim.email.clone(),
                mobile: claim.mobile.clone(),
                linked_by,
                linked_at_ms: now,
                last_login_ms: now,
            },
        );
        Ok(account)
    }

    async fn link(&self, account: &AccountId, claim: &IdentityClaim) -> Result<()> {
        let mut st = self.lock()?;
        let tenant = &claim.key.tenant;
        if !st.has_account(tenant, account) {
            return Err(State::unknown(tenant, account));
        }
        if let Some(e) = st.identities.get(&claim.key) {
            if &e.account == account {
                return Ok(());
            }
            return Err(Error::Identity(IdentityError::AlreadyLinked {
                key: claim.key.clone(),
                account: e.account.clone(),
            }));
        }
        let now = now_ms();
        st.identities.insert(
            claim.key.clone(),
            Entry {
                account: account.clone(),
                email: claim.email.clone(),
                mobile: claim.mobile.clone(),
                linked_by: LinkedBy::Api,
                linked_at_ms: now,
                last_login_ms: 0,
            },
        );
        Ok(())
    }

    async fn unlink(&self, key: &IdentityKey) -> Result<AccountId> {
        let mut st = self.lock()?;
        st.identities
            .remove(key)
            .map(|e| e.account)
            .ok_or_else(|| Error::Identity(IdentityError::NotLinked { key: key.clone() }))
    }

    async fn merge(&self, tenant: &TenantId, from: &AccountId, into: &AccountId) -> Result<usize> {
        let mut st = self.lock()?;
        for account in [from, into] {
            if !st.has_account(tenant, account) {
                return Err(State::unknown(tenant, account));
            }
        }
        if from == into {
            return Err(Error::Identity(IdentityError::SameAccount {
                tenant: tenant.clone(),
                account: from.clone(),
            }));
        }
        let mut moved = 0;
        for (_, e) in st
            .identities
            .iter_mut()
            .filter(|(k, e)| &k.tenant == tenant && &e.account == from)
        {
            e.account = into.clone();
            e.linked_by = LinkedBy::Merge;
            moved += 1;
        }
        if let Some(accounts) = st.accounts.get_mut(tenant) {
            accounts.remove(from);
        }
        Ok(moved)
    }

    async fn find(&self, key: &IdentityKey) -> Result<Option<AccountId>> {
        Ok(self.lock()?.identities.get(key).map(|e| e.account.clone()))
    }

    async fn identities(
        &self,
        tenant: &TenantId,
        account: &AccountId,
    ) -> Result<Vec<LinkedIdentity>> {
        let st = self.lock()?;
        if !st.has_account(tenant, account) {
            return Err(State::unknown(tenant, account));
        }
        Ok(st
            .identities
            .iter()
            .filter(|(k, e)| &k.tenant == tenant && &e.account == account)
            .map(|(k, e)| LinkedIdentity {
                key: k.clone(),
                account: e.account.clone(),
                linked_by: e.linked_by,
                linked_at_ms: e.linked_at_ms,
                last_login_ms: e.last_login_ms,
            })
            .collect())
    }
}
