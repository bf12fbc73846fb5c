//! The installation lifecycle of store (third-party) apps (docs/store-apps.md): what the event
//! workers do with an installation event the receiver accepted on an app's entry.
//!
//! | change | with the SQL configuration store | with a tenants file |
//! |---|---|---|
//! | `Installed` (and a redeemed `InstallCode`) | the organisation's entry is created from the receiving entry (or re-enabled and updated on a re-installation), `corp_id` = the organisation, `permanent_code` stored encrypted | logged: the operator adds the entry |
//! | `AuthChanged` | logged (the platform's answer on the next token fetch carries the new grants) | logged |
//! | `Uninstalled` | the entry is disabled | logged: the operator removes the entry |
//!
//! In both cases an uninstalled organisation's cached token is evicted from the token cache
//! (shared with every replica through Redis) and every session issued through its entry is
//! revoked ([`entry_key`]). The name of an organisation's entry is `events.store_app_tenant`
//! with `{tenant}` (the receiving entry's tenant) and `{org}` (the organisation's id)
//! replaced, e.g. `acme-store-dingcorp1`.
//!
//! Nothing here logs a permanent code, an installation code or a secret.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

#[cfg(feature = "sql")]
use unilogin::PlatformName;
use unilogin::events::{InstallInfo, StoreAppChange};
use unilogin::isv::{OrgId, TicketApp};
use unilogin::{Error, Result, Sso, TenantId};
use unilogin_axum::session::{RevocationList, entry_key};

use crate::tenants::Tenants;

/// The organisation entry's tenant name for `org`, from `template` (`{tenant}`, `{org}`).
///
/// ```
/// use unilogin::TenantId;
/// use unilogin::isv::OrgId;
/// use unilogin_gateway::store_apps::org_tenant;
/// let app = TenantId::new("acme-store").unwrap();
/// let org = OrgId::new("dingcorp1").unwrap();
/// assert_eq!(org_tenant("{tenant}-{org}", &app, &org).unwrap().as_str(), "acme-store-dingcorp1");
/// // Longer than a tenant id may be (64): refused, naming the setting.
/// let long = OrgId::new("x".repeat(60)).unwrap();
/// let err = org_tenant("{tenant}-{org}", &app, &long).unwrap_err().to_string();
/// assert!(err.contains("events.store_app_tenant"), "{err}");
/// ```
pub fn org_tenant(template: &str, app_tenant: &TenantId, org: &OrgId) -> Result<TenantId> {
    let name = template
        .replace("{tenant}", app_tenant.as_str())
        .replace("{org}", org.as_str());
    TenantId::new(&name).map_err(|e| {
        Error::config(
            Some(app_tenant),
            None,
            "events.store_app_tenant",
            format!("the organisation's tenant name is not a tenant id ({e})"),
        )
    })
}

/// What the workers need for installation changes.
pub(crate) struct Installations {
    pub(crate) sso: Sso,
    #[cfg_attr(not(feature = "sql"), allow(dead_code))]
    pub(crate) tenants: Option<Arc<Tenants>>,
    pub(crate) revocations: Arc<dyn RevocationList>,
    pub(crate) session_ttl: Duration,
    /// `events.store_app_tenant`.
    pub(crate) template: String,
}

impl Installations {
    /// Applies one installation change received on `tenant`'s `platform` entry.
    pub(crate) async fn apply(
        &self,
        tenant: &TenantId,
        platform: &'static str,
        change: &StoreAppChange,
    ) {
        let outcome = match change {
            StoreAppChange::Installed { app, org, info } => {
                self.installed(tenant, platform, app, org, info).await
            }
            StoreAppChange::InstallCode { app, code } => {
                match self.redeem(tenant, platform, app, code).await {
                    Ok((org, info)) => self.installed(tenant, platform, app, &org, &info).await,
                    Err(e) => Err(e),
                }
            }
            StoreAppChange::Uninstalled { app, org } => {
                self.uninstalled(tenant, platform, app, org).await
            }
            other => {
                tracing::info!(
                    tenant = %tenant,
                    platform,
                    change = other.kind(),
                    org = ?other.org(),
                    "store-app installation change"
                );
                Ok(())
            }
        };
        if let Err(e) = outcome {
            tracing::warn!(
                tenant = %tenant,
                platform,
                change = change.kind(),
                org = ?change.org(),
                error = %e,
                "store-app installation change not applied"
            );
        }
    }

    /// The tenants and their SQL configuration store, when the tenants are in SQL.
    #[cfg(feature = "sql")]
    fn sql(&self) -> Option<(&Tenants, &unilogin::sql::SqlConfigStore)> {
        let tenants = self.tenants.as_deref()?;
        Some((tenants, tenants.store()?))
    }

    /// The receiving entry's configuration, checked to be this app's.
    async fn source(
        &self,
        tenant: &TenantId,
        platform: &str,
        app: &TicketApp,
    ) -> Result<unilogin::Prepared> {
        let prepared = self.sso.prepare(tenant, platform).await?;
        let config = prepared.config();
        if config.app_key.as_str() != app.app_id().as_str() || config.mode.as_deref() != Some("isv")
        {
            return Err(Error::config(
                Some(tenant),
                Some(platform),
                "mode",
                "an installation event reached an entry that is not this store app's (`mode: isv` with its app key)",
            ));
        }
        Ok(prepared)
    }

    async fn redeem(
        &self,
        tenant: &TenantId,
        platform: &str,
        app: &TicketApp,
        code: &unilogin::AppSecret,
    ) -> Result<(OrgId, InstallInfo)> {
        let source = self.source(tenant, platform, app).await?;
        source.redeem_install_code(code).await
    }

    async fn installed(
        &self,
        tenant: &TenantId,
        platform: &'static str,
        app: &TicketApp,
        org: &OrgId,
        info: &InstallInfo,
    ) -> Result<()> {
        let source = self.source(tenant, platform, app).await?;
        let target = org_tenant(&self.template, tenant, org)?;
        if &target == tenant {
            return Ok(());
        }
        #[cfg(feature = "sql")]
        if let Some((tenants, store)) = self.sql() {
            let done = write_installed(store, source.config(), &target, org, info).await?;
            tenants.apply_changes_now().await;
            tracing::info!(
                tenant = %tenant,
                platform,
                org = %org,
                entry = %target,
                done,
                "store app installed: organisation entry written"
            );
            return Ok(());
        }
        let _ = (source, info);
        tracing::warn!(
            tenant = %tenant,
            platform,
            org = %org,
            entry = %target,
            "store app installed by an organisation: add its entry to the tenants file (entries are written automatically only with tenants_database)"
        );
        Ok(())
    }

    async fn uninstalled(
        &self,
        tenant: &TenantId,
        platform: &'static str,
        app: &TicketApp,
        org: &OrgId,
    ) -> Result<()> {
        let target = org_tenant(&self.template, tenant, org)?;
        // The organisation's token, by its entry's handler when the entry is configured here
        // (else by the key every platform's store-app side uses); shared with every replica
        // when the cache's store is Redis.
        let configured = match self.sso.prepare(&target, platform).await {
            Ok(entry) => entry.handler().token_key(),
            Err(_) => None,
        };
        let key = configured.unwrap_or_else(|| app.shared_suite_key().organisation(org));
        self.sso.token_cache().evict(&key).await;
        let now = SystemTime::now();
        let sessions = self
            .revocations
            .revoke_subject(
                &entry_key(target.as_str(), platform),
                now,
                now + self.session_ttl,
            )
            .await;
        if sessions.is_err() {
            tracing::warn!(
                tenant = %tenant,
                platform,
                entry = %target,
                "the uninstalled organisation's sessions are revoked on this replica only (queued for the shared list)"
            );
        }
        #[cfg(feature = "sql")]
        if let Some((tenants, store)) = self.sql() {
            let platform_name = PlatformName::new(platform)
                .map_err(|e| Error::Internal(format!("platform name: {e}")))?;
            let disabled = match store.get(&target, &platform_name).await? {
                Some(row) if row.enabled => {
                    store
                        .set_enabled(&target, &platform_name, false, ACTOR)
                        .await?;
                    true
                }
                _ => false,
            };
            tenants.apply_changes_now().await;
            tracing::info!(
                tenant = %tenant,
                platform,
                org = %org,
                entry = %target,
                disabled,
                "store app uninstalled: organisation entry disabled, its token evicted, its sessions revoked"
            );
            return Ok(());
        }
        tracing::warn!(
            tenant = %tenant,
            platform,
            org = %org,
            entry = %target,
            "store app uninstalled: its token is evicted and its sessions revoked; remove its entry from the tenants file"
        );
        Ok(())
    }
}

/// The audit log's actor of the changes made here.
#[cfg(feature = "sql")]
const ACTOR: &str = "store-app-installation";

/// Creates the organisation's entry from the app entry's configuration, or re-enables and
/// updates an existing one; `"created"` or `"updated"`.
#[cfg(feature = "sql")]
async fn write_installed(
    store: &unilogin::sql::SqlConfigStore,
    source: &unilogin::config::PlatformConfig,
    target: &TenantId,
    org: &OrgId,
    info: &InstallInfo,
) -> Result<&'static str> {
    use unilogin::sql::{ConfigPatch, NewConfig, SecretInput, StoredSecret};
    let platform = &source.platform;
    let permanent_code = info.permanent_code.clone().map(SecretInput::Value);
    let agent_id = info.agent_id.clone().or_else(|| source.agent_id.clone());
    if let Some(row) = store.get(target, platform).await? {
        if row.corp_id.as_deref() != Some(org.as_str()) {
            return Err(Error::config(
                Some(target),
                Some(platform.as_str()),
                "corp_id",
                "an entry of this name exists for another organisation: left alone",
            ));
        }
        let patch = ConfigPatch {
            enabled: Some(true),
            agent_id: agent_id.map(Some),
            permanent_code: permanent_code.map(Some),
            ..ConfigPatch::default()
        };
        store.update(target, platform, patch, ACTOR).await?;
        return Ok("updated");
    }
    // The app entry's row: its JSON fields as stored, and the app secret as it keeps it —
    // its reference when it is one (the same variable or file serves both), else the value,
    // encrypted anew for the new row (a ciphertext is bound to its row).
    let Some(app_row) = store.get(&source.tenant, platform).await? else {
        return Err(Error::PlatformNotConfigured {
            tenant: source.tenant.clone(),
            platform: platform.as_str().to_string(),
        });
    };
    let secret = match &app_row.secret {
        StoredSecret::Reference(r) => SecretInput::Reference(r.clone()),
        _ => SecretInput::Value(source.app_secret.clone()),
    };
    let mut row = NewConfig::new(
        target.clone(),
        platform.clone(),
        source.app_key.clone(),
        secret,
    );
    row.mode = source.mode.clone();
    row.corp_id = Some(org.as_str().to_string());
    row.agent_id = agent_id;
    row.permanent_code = permanent_code;
    row.hosts = source.hosts.as_ref().clone();
    row.mapping = app_row.mapping.clone();
    row.session_scopes = app_row.session_scopes.clone();
    row.redirect_uris = source.redirect_uris.clone();
    row.options = source.options.clone();
    row.sort = app_row.sort;
    store.create(row, ACTOR).await?;
    Ok("created")
}
