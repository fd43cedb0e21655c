//! The audit trail.

use async_trait::async_trait;

use super::SqlStore;
use super::db::{Db, RowExt as _, Sql};
use super::rows::corrupt;
use crate::store::{AuditRecord, AuditStore, Page, PageRequest, StoreResult};

fn audit_from_row<DB: Db>(row: &DB::Row) -> StoreResult<AuditRecord> {
    Ok(AuditRecord {
        id: row.col("id")?,
        at_ms: row.col("at")?,
        actor: row.col("actor")?,
        action: row.col("action")?,
        target: row.col("target")?,
        details: row.col("details")?,
    })
}

#[async_trait]
impl<DB: Db> AuditStore for SqlStore<DB> {
    async fn record_audit(&self, e: &AuditRecord) -> StoreResult<()> {
        Sql::<DB>::new("INSERT INTO audit_log (at, actor, action, target, details) VALUES ($1, $2, $3, $4, $5)")
            .arg(e.at_ms)
            .arg(&e.actor)
            .arg(&e.action)
            .arg(&e.target)
            .arg(&e.details)
            .execute(self.writer())
            .await?;
        Ok(())
    }

    async fn list_audit(&self, page: &PageRequest) -> StoreResult<Page<AuditRecord>> {
        let before = match &page.cursor {
            Some(c) => c.parse::<i64>().map_err(|e| corrupt("audit cursor", e))?,
            None => i64::MAX,
        };
        let rows = Sql::<DB>::new("SELECT * FROM audit_log WHERE id < $1 ORDER BY id DESC LIMIT $2")
            .arg(before)
            .arg(i64::from(page.limit) + 1)
            .fetch_all(self.reader())
            .await?;
        let items = rows.iter().map(audit_from_row::<DB>).collect::<StoreResult<Vec<_>>>()?;
        Ok(Page::from_rows(items, page.limit, |e| e.id.to_string()))
    }
}
