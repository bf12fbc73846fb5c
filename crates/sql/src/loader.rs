//! The reading side of [`SqlConfigStore`]: the `SELECT`s, and the [`ConfigLoader`] that a
//! [`CachedSource`](unilogin_core::config::CachedSource) calls at start-up and at every reload
//! (see [`SqlConfigSource`](crate::SqlConfigSource)).

use async_trait::async_trait;
use sqlx::Row;
use unilogin_core::config::{Changes, ConfigLoader, LoadedEntry};
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

/// How far back [`ConfigLoader::changes`] looks before its cursor: writers stamp
/// `modified_at` with their own clocks, so a row written by a replica whose clock is a little
/// behind may carry a time before the latest one seen. Rows re-read inside the window that did
/// not change are compared and left alone; the periodic full reload catches anything older.
const CLOCK_SKEW_WINDOW_MS: i64 = 5_000;

impl SqlConfigStore {
    fn entry(&self, raw: &RawRow) -> Option<LoadedEntry> {
        let (Ok(tenant), Ok(platform)) =
            (TenantId::new(&raw.tenant), PlatformName::new(&raw.platform))
        else {
            tracing::warn!(
                row = raw.id,
                "configuration row skipped: invalid tenant id or platform name"
            );
            return None;
        };
        let config = raw.config(&tenant, &platform, &self.cipher, &self.refs);
        Some(LoadedEntry {
            tenant,
            platform,
            enabled: raw.enabled && !raw.deprecated,
            config,
        })
    }

    /// The change fingerprint: (row count, sum of revisions, latest `modified_at`), deleted
    /// rows included.
    async fn fingerprint(&self) -> Result<(i64, i64, i64)> {
        let row = sqlx::query(q(&self.queries.fingerprint))
            .fetch_one(&self.pool)
            .await
            .map_err(|e| db_error(self.backend, "checking for changes", &e))?;
        let read = |name: &str| {
            row.try_get::<i64, _>(name)
                .map_err(|e| db_error(self.backend, "checking for changes", &e))
        };
        Ok((read("n")?, read("revisions")?, read("modified")?))
    }
}

/// Every live row becomes an entry: its configuration, or the error naming tenant, platform
/// and field (the cached source then keeps the entry's last good configuration). Rows whose
/// tenant id or platform name is not even valid are skipped with a warning.
#[async_trait]
impl ConfigLoader for SqlConfigStore {
    async fn load(&self) -> Result<Vec<LoadedEntry>> {
        let rows = self.fetch_all_raw(None).await?;
        Ok(rows.iter().filter_map(|raw| self.entry(raw)).collect())
    }

    /// `"<latest modified_at>:<row count>:<rows created inside the window before it>"`.
    async fn cursor(&self) -> Result<Option<String>> {
        let (n, _, modified) = self.fingerprint().await?;
        let recent: i64 = sqlx::query(q(&self.queries.count_created_since))
            .bind(modified.saturating_sub(CLOCK_SKEW_WINDOW_MS))
            .fetch_one(&self.pool)
            .await
            .and_then(|r| r.try_get::<i64, _>("n"))
            .map_err(|e| db_error(self.backend, "checking for changes", &e))?;
        Ok(Some(format!("{modified}:{n}:{recent}")))
    }

    /// The rows modified at or after the cursor (less a 5 s window for clock skew between writers): live ones as
    /// entries, deleted ones as removals (unless the same tenant and platform has a live row
    /// again). The next cursor is read first, so nothing written meanwhile is missed. `None`
    /// (read everything) when the row count moved by more than the new rows found: a row
    /// inserted or deleted by hand with other timestamps.
    async fn changes(&self, cursor: &str) -> Result<Option<Changes>> {
        let parts: Vec<i64> = cursor.split(':').filter_map(|p| p.parse().ok()).collect();
        let [since, count, recent] = parts[..] else {
            return Ok(None);
        };
        let (next_count, _, next) = self.fingerprint().await?;
        let since = since.saturating_sub(CLOCK_SKEW_WINDOW_MS);
        let next_since = next.saturating_sub(CLOCK_SKEW_WINDOW_MS);
        let rows = sqlx::query(q(&self.queries.select_since))
            .bind(since)
            .fetch_all(&self.pool)
            .await
            .map_err(|e| db_error(self.backend, "reading changes", &e))?;
        let mut changes = Changes::default();
        // Rows created inside the window (some of them counted at the cursor already, as
        // `recent`), and inside the next cursor's window (all of them are in `rows`).
        let (mut created, mut next_recent) = (0_i64, 0_i64);
        for row in &rows {
            let raw =
                RawRow::read(row).map_err(|e| db_error(self.backend, "reading changes", &e))?;
            created += i64::from(raw.created_at >= since);
            next_recent += i64::from(raw.created_at >= next_since);
            let deleted: i64 = row
                .try_get("deleted_at")
                .map_err(|e| db_error(self.backend, "reading changes", &e))?;
            if deleted == 0 {
                changes.entries.extend(self.entry(&raw));
            } else if let (Ok(t), Ok(p)) =
                (TenantId::new(&raw.tenant), PlatformName::new(&raw.platform))
            {
                changes.removed.push((t, p));
            }
        }
        // Every row added since the cursor must be one of the rows found; otherwise a row was
        // inserted (or removed) by hand with other timestamps: read everything.
        if next_count < count || next_count - count > created - recent {
            return Ok(None);
        }
        changes.cursor = format!("{next}:{next_count}:{next_recent}");
        changes.removed.retain(|(t, p)| {
            !changes
                .entries
                .iter()
                .any(|e| &e.tenant == t && &e.platform == p)
        });
        // A deleted row whose tenant and platform has a live row again (re-created by a writer
        // whose clock is behind) is not a removal.
        let mut removed = Vec::with_capacity(changes.removed.len());
        for (t, p) in std::mem::take(&mut changes.removed) {
            match self.fetch_raw(&t, &p).await? {
                Some(live) => changes.entries.extend(self.entry(&live)),
                None => removed.push((t, p)),
            }
        }
        changes.removed = removed;
        Ok(Some(changes))
    }

    /// The table's change fingerprint: row count (deleted rows included), the sum of every
    /// row's `revision` and the latest `modified_at`. Every admin API change moves it; so does
    /// a row edited by hand that bumps `revision` or `modified_at`, or is inserted or deleted.
    async fn version(&self) -> Result<Option<String>> {
        let (n, revisions, modified) = self.fingerprint().await?;
        Ok(Some(format!("{n}:{revisions}:{modified}")))
    }
}
