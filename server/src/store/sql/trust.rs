//! Trust documents, by version.

use async_trait::async_trait;

use super::SqlStore;
use super::db::{Db, RowExt as _, Sql};
use super::rows::corrupt;
use crate::store::{StoreResult, TrustRecord, TrustStore};

fn trust_from_row<DB: Db>(row: &DB::Row) -> StoreResult<TrustRecord> {
    let version: i64 = row.col("version")?;
    Ok(TrustRecord {
        version: u64::try_from(version).map_err(|e| corrupt("trust version", e))?,
        envelope_json: row.col("envelope")?,
        expires_at_ms: row.col("expires_at")?,
        created_at_ms: row.col("created_at")?,
    })
}

/// Versions are stored as BIGINT; a version beyond it cannot have been stored.
fn as_column(version: u64) -> i64 {
    i64::try_from(version).unwrap_or(i64::MAX)
}

#[async_trait]
impl<DB: Db> TrustStore for SqlStore<DB> {
    async fn insert_trust(&self, doc: &TrustRecord) -> StoreResult<()> {
        Sql::<DB>::new(
            "INSERT INTO trust_documents (version, envelope, expires_at, created_at) VALUES ($1, $2, $3, $4)",
        )
        .arg(as_column(doc.version))
        .arg(&doc.envelope_json)
        .arg(doc.expires_at_ms)
        .arg(doc.created_at_ms)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    async fn latest_trust(&self) -> StoreResult<Option<TrustRecord>> {
        let rows = Sql::<DB>::new("SELECT * FROM trust_documents ORDER BY version DESC LIMIT 1")
            .fetch_all(self.reader())
            .await?;
        rows.first().map(trust_from_row::<DB>).transpose()
    }

    async fn get_trust(&self, version: u64) -> StoreResult<TrustRecord> {
        let row = Sql::<DB>::new("SELECT * FROM trust_documents WHERE version = $1")
            .arg(as_column(version))
            .fetch_one(self.reader())
            .await?;
        trust_from_row::<DB>(&row)
    }
}
