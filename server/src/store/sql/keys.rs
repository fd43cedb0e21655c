//! Release keys.

use async_trait::async_trait;
use fleet_protocol::KeyId;

use super::SqlStore;
use super::db::{Db, RowExt as _, Sql};
use super::rows::corrupt;
use crate::store::{KeyRecord, KeyStore, Page, PageRequest, StoreError, StoreResult};

fn key_from_row<DB: Db>(row: &DB::Row) -> StoreResult<KeyRecord> {
    let keyid: String = row.col("keyid")?;
    Ok(KeyRecord {
        keyid: KeyId::parse(&keyid).ok_or_else(|| corrupt("keyid", &keyid))?,
        name: row.col("name")?,
        public_key_pem: row.col("public_key_pem")?,
        created_at_ms: row.col("created_at")?,
        revoked_at_ms: row.col("revoked_at")?,
    })
}

#[async_trait]
impl<DB: Db> KeyStore for SqlStore<DB> {
    async fn insert_key(&self, key: &KeyRecord) -> StoreResult<()> {
        Sql::<DB>::new("INSERT INTO release_keys (keyid, name, public_key_pem, created_at) VALUES ($1, $2, $3, $4)")
            .arg(key.keyid.as_hex())
            .arg(&key.name)
            .arg(&key.public_key_pem)
            .arg(key.created_at_ms)
            .execute(self.writer())
            .await?;
        Ok(())
    }

    async fn get_key(&self, keyid: &KeyId) -> StoreResult<KeyRecord> {
        let row = Sql::<DB>::new("SELECT * FROM release_keys WHERE keyid = $1")
            .arg(keyid.as_hex())
            .fetch_one(self.reader())
            .await?;
        key_from_row::<DB>(&row)
    }

    async fn list_keys(&self, page: &PageRequest) -> StoreResult<Page<KeyRecord>> {
        self.page_of("release_keys", "keyid", page, key_from_row::<DB>, |k| k.keyid.as_hex()).await
    }

    async fn active_keys(&self) -> StoreResult<Vec<KeyRecord>> {
        let rows =
            Sql::<DB>::new("SELECT * FROM release_keys WHERE revoked_at IS NULL").fetch_all(self.reader()).await?;
        rows.iter().map(key_from_row::<DB>).collect()
    }

    async fn revoke_key(&self, keyid: &KeyId, at_ms: i64) -> StoreResult<()> {
        let done = Sql::<DB>::new("UPDATE release_keys SET revoked_at = COALESCE(revoked_at, $1) WHERE keyid = $2")
            .arg(at_ms)
            .arg(keyid.as_hex())
            .execute(self.writer())
            .await?;
        if done == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }
}
