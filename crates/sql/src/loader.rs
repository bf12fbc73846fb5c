//! The reading side of [`SqlConfigStore`]: the `SELECT`s, and the [`ConfigLoader`] that a
//! [`CachedSource`](unilogin_core::config::CachedSource) calls at start-up and at every reload
//! (see [`SqlConfigSource`](crate::SqlConfigSource)).

use async_trait::async_trait;
use unilogin_core::config::{ConfigLoader, LoadedEntry};
use unilogin_core::{PlatformName, Result, TenantId};

use crate::SqlConfigStore;
use crate::dialect::{db_error, q};
use crate::rows::RawRow;

impl SqlConfigStore {
    /// The live row of `tenant` / `platform`, as stored.
    pub(crate) async fn fetch_raw(
        &self,
        tenant: &TenantId,
        platform: &PlatformName,
    ) -> Result<Option<RawRow>> {
        let row = sqlx::query(q(&self.queries.select_one))
            .bind(tenant.as_str())
            .bind(platform.as_str())
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| db_error(self.backend, "reading", &e))?;
        row.as_ref()
            .map(RawRow::read)
            .transpose()
            .map_err(|e| db_error(self.backend, "reading", &e))
    }

    /// The live rows of one tenant or of all, as stored, ordered by tenant, `sort`, platform.
    pub(crate) async fn fetch_all_raw(&self, tenant: Option<&TenantId>) -> Result<Vec<RawRow>> {
        let rows = match tenant {
            Some(t) => {
                sqlx::query(q(&self.queries.select_tenant))
                    .bind(t.as_str())
                    .fetch_all(&self.pool)
                    .await
            }
            None => {
                sqlx::query(q(&self.queries.select_live))
                    .fetch_all(&self.pool)
                    .await
            }
        }
        .map_err(|e| db_error(self.backend, "reading", &e))?;
        rows.iter()
            .map(RawRow::read)
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| db_error(self.backend, "reading", &e))
    }
}

/// Every live row becomes an entry: its configuration, or the error naming tenant, platform
/// and field (the cached source then keeps the entry's last good configuration). Rows whose
/// tenant id or platform name is not even valid are skipped with a warning.
#[async_trait]
impl ConfigLoader for SqlConfigStore {
    async fn load(&self) -> Result<Vec<LoadedEntry>> {
        let rows = self.fetch_all_raw(None).await?;
        let mut entries = Vec::with_capacity(rows.len());
        for raw in rows {
            let (Ok(tenant), Ok(platform)) =
                (TenantId::new(&raw.tenant), PlatformName::new(&raw.platform))
            else {
                tracing::warn!(
                    row = raw.id,
                    "configuration row skipped: invalid tenant id or platform name"
                );
                continue;
            };
            let config = raw.config(&tenant, &platform, &self.cipher);
            entries.push(LoadedEntry {
                tenant,
                platform,
                enabled: raw.enabled && !raw.deprecated,
                config,
            });
        }
        Ok(entries)
    }
}
