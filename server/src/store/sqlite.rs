//! The SQLite [`Store`]: one file in the data directory, WAL journal, a single writer
//! connection (SQLite allows one writer at a time; queuing in the pool beats
//! `SQLITE_BUSY` retries) and a few reader connections.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use fleet_protocol::message::Installed;
use fleet_protocol::{ArtifactKind, DeviceId, HardwareModel, KeyId, Manifest, ProductName};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous};
use sqlx::{AssertSqlSafe, QueryBuilder, Row, Sqlite, SqlitePool};

use super::{
    ArtifactRecord, DeviceFilter, DeviceRecord, KeyRecord, NewArtifact, NewDevice, Page, PageRequest, Store,
    StoreError, StoreResult,
};

/// SQLite-backed storage.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pub(super) read: SqlitePool,
    pub(super) write: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if needed) `path` and applies migrations.
    pub async fn open(path: &Path) -> Result<Self, sqlx::Error> {
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        let write = SqlitePoolOptions::new().max_connections(1).connect_with(options.clone()).await?;
        sqlx::migrate!("../migrations/sqlite").run(&write).await?;
        let read = SqlitePoolOptions::new().max_connections(4).connect_with(options).await?;
        Ok(Self { read, write })
    }
}

fn classify(e: sqlx::Error) -> StoreError {
    match e {
        sqlx::Error::RowNotFound => StoreError::NotFound,
        sqlx::Error::Database(ref d) if d.is_unique_violation() => StoreError::Conflict,
        e => StoreError::Database(e),
    }
}

fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

fn key_from_row(row: &SqliteRow) -> StoreResult<KeyRecord> {
    let keyid: String = row.try_get("keyid")?;
    Ok(KeyRecord {
        keyid: KeyId::parse(&keyid).ok_or_else(|| corrupt("keyid", &keyid))?,
        name: row.try_get("name")?,
        public_key_pem: row.try_get("public_key_pem")?,
        created_at_ms: row.try_get("created_at")?,
        revoked_at_ms: row.try_get("revoked_at")?,
    })
}

fn installed(row: &SqliteRow, prefix: &str) -> StoreResult<Option<Installed>> {
    let name: Option<String> = row.try_get(format!("{prefix}_name").as_str())?;
    let version: Option<String> = row.try_get(format!("{prefix}_version").as_str())?;
    let sha256: Option<String> = row.try_get(format!("{prefix}_sha256").as_str())?;
    let (Some(name), Some(version), Some(sha256)) = (name, version, sha256) else {
        return Ok(None);
    };
    Ok(Some(Installed {
        name: ProductName::parse(name).map_err(|e| corrupt(prefix, e))?,
        version: semver::Version::parse(&version).map_err(|e| corrupt(prefix, e))?,
        sha256: sha256.parse().map_err(|e| corrupt(prefix, e))?,
    }))
}

const ARTIFACT_COLUMNS: &str = "id, kind, manifest, envelope, created_at";
const DEVICE_COLUMNS: &str = "id, hardware, created_at, online, last_seen, firmware_name, firmware_version, \
     firmware_sha256, config_name, config_version, config_sha256";

impl SqliteStore {
    async fn signers_of(&self, ids: &[String]) -> StoreResult<HashMap<String, Vec<KeyId>>> {
        let mut out: HashMap<String, Vec<KeyId>> = HashMap::new();
        if ids.is_empty() {
            return Ok(out);
        }
        let mut q =
            QueryBuilder::<Sqlite>::new("SELECT artifact_id, keyid FROM artifact_signers WHERE artifact_id IN (");
        let mut sep = q.separated(", ");
        for id in ids {
            sep.push_bind(id);
        }
        q.push(") ORDER BY keyid");
        for row in q.build().fetch_all(&self.read).await? {
            let keyid: String = row.try_get("keyid")?;
            let keyid = KeyId::parse(&keyid).ok_or_else(|| corrupt("signer", &keyid))?;
            out.entry(row.try_get("artifact_id")?).or_default().push(keyid);
        }
        Ok(out)
    }

    async fn artifacts_from_rows(&self, rows: Vec<SqliteRow>) -> StoreResult<Vec<ArtifactRecord>> {
        let ids: Vec<String> = rows.iter().map(|r| r.try_get("id")).collect::<Result<_, _>>()?;
        let mut signers = self.signers_of(&ids).await?;
        rows.iter()
            .map(|row| {
                let id: String = row.try_get("id")?;
                let kind: String = row.try_get("kind")?;
                let manifest: String = row.try_get("manifest")?;
                Ok(ArtifactRecord {
                    kind: ArtifactKind::parse(&kind).ok_or_else(|| corrupt("kind", &kind))?,
                    manifest: Manifest::from_slice(manifest.as_bytes()).map_err(|e| corrupt("manifest", e))?,
                    envelope_json: row.try_get("envelope")?,
                    signers: signers.remove(&id).unwrap_or_default(),
                    created_at_ms: row.try_get("created_at")?,
                    id,
                })
            })
            .collect()
    }

    async fn devices_from_rows(&self, rows: Vec<SqliteRow>) -> StoreResult<Vec<DeviceRecord>> {
        let ids: Vec<String> = rows.iter().map(|r| r.try_get("id")).collect::<Result<_, _>>()?;
        let mut labels: HashMap<String, BTreeMap<String, String>> = HashMap::new();
        if !ids.is_empty() {
            let mut q =
                QueryBuilder::<Sqlite>::new("SELECT device_id, key, value FROM device_labels WHERE device_id IN (");
            let mut sep = q.separated(", ");
            for id in &ids {
                sep.push_bind(id);
            }
            q.push(")");
            for row in q.build().fetch_all(&self.read).await? {
                labels.entry(row.try_get("device_id")?).or_default().insert(row.try_get("key")?, row.try_get("value")?);
            }
        }
        rows.iter()
            .map(|row| {
                let id: String = row.try_get("id")?;
                let hardware: String = row.try_get("hardware")?;
                Ok(DeviceRecord {
                    labels: labels.remove(&id).unwrap_or_default(),
                    id: DeviceId::parse(id).map_err(|e| corrupt("device id", e))?,
                    hardware: HardwareModel::parse(hardware).map_err(|e| corrupt("hardware", e))?,
                    created_at_ms: row.try_get("created_at")?,
                    online: row.try_get("online")?,
                    last_seen_ms: row.try_get("last_seen")?,
                    firmware: installed(row, "firmware")?,
                    config: installed(row, "config")?,
                })
            })
            .collect()
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn insert_key(&self, key: &KeyRecord) -> StoreResult<()> {
        sqlx::query("INSERT INTO release_keys (keyid, name, public_key_pem, created_at) VALUES ($1, $2, $3, $4)")
            .bind(key.keyid.as_hex())
            .bind(&key.name)
            .bind(&key.public_key_pem)
            .bind(key.created_at_ms)
            .execute(&self.write)
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn get_key(&self, keyid: &KeyId) -> StoreResult<KeyRecord> {
        let row = sqlx::query("SELECT * FROM release_keys WHERE keyid = $1")
            .bind(keyid.as_hex())
            .fetch_one(&self.read)
            .await
            .map_err(classify)?;
        key_from_row(&row)
    }

    async fn list_keys(&self, page: &PageRequest) -> StoreResult<Page<KeyRecord>> {
        let rows = sqlx::query("SELECT * FROM release_keys WHERE keyid > $1 ORDER BY keyid LIMIT $2")
            .bind(page.cursor.as_deref().unwrap_or(""))
            .bind(i64::from(page.limit) + 1)
            .fetch_all(&self.read)
            .await?;
        let keys = rows.iter().map(key_from_row).collect::<StoreResult<Vec<_>>>()?;
        Ok(Page::from_rows(keys, page.limit, |k| k.keyid.as_hex()))
    }

    async fn active_keys(&self) -> StoreResult<Vec<KeyRecord>> {
        let rows = sqlx::query("SELECT * FROM release_keys WHERE revoked_at IS NULL").fetch_all(&self.read).await?;
        rows.iter().map(key_from_row).collect()
    }

    async fn revoke_key(&self, keyid: &KeyId, at_ms: i64) -> StoreResult<()> {
        let done = sqlx::query("UPDATE release_keys SET revoked_at = COALESCE(revoked_at, $1) WHERE keyid = $2")
            .bind(at_ms)
            .bind(keyid.as_hex())
            .execute(&self.write)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn artifact_version_exists(
        &self,
        kind: ArtifactKind,
        name: &ProductName,
        version: &semver::Version,
    ) -> StoreResult<bool> {
        let row = sqlx::query("SELECT 1 FROM artifacts WHERE kind = $1 AND name = $2 AND version = $3")
            .bind(kind.as_str())
            .bind(name.as_str())
            .bind(version.to_string())
            .fetch_optional(&self.read)
            .await?;
        Ok(row.is_some())
    }

    async fn insert_artifact(&self, a: &NewArtifact) -> StoreResult<ArtifactRecord> {
        let mut tx = self.write.begin().await?;
        sqlx::query(
            "INSERT INTO artifacts (id, kind, name, version, sha256, size, manifest, envelope, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&a.id)
        .bind(a.manifest.kind.as_str())
        .bind(a.manifest.name.as_str())
        .bind(a.manifest.version.to_string())
        .bind(a.manifest.sha256.to_hex())
        .bind(i64::try_from(a.manifest.size).map_err(|e| corrupt("size", e))?)
        .bind(&a.manifest_json)
        .bind(&a.envelope_json)
        .bind(a.created_at_ms)
        .execute(&mut *tx)
        .await
        .map_err(classify)?;
        for keyid in &a.signers {
            sqlx::query("INSERT INTO artifact_signers (artifact_id, keyid) VALUES ($1, $2)")
                .bind(&a.id)
                .bind(keyid.as_hex())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(ArtifactRecord {
            id: a.id.clone(),
            kind: a.manifest.kind,
            manifest: a.manifest.clone(),
            envelope_json: a.envelope_json.clone(),
            signers: a.signers.clone(),
            created_at_ms: a.created_at_ms,
        })
    }

    async fn get_artifact(&self, kind: ArtifactKind, id: &str) -> StoreResult<ArtifactRecord> {
        let row =
            sqlx::query(AssertSqlSafe(format!("SELECT {ARTIFACT_COLUMNS} FROM artifacts WHERE kind = $1 AND id = $2")))
                .bind(kind.as_str())
                .bind(id)
                .fetch_one(&self.read)
                .await
                .map_err(classify)?;
        let mut v = self.artifacts_from_rows(vec![row]).await?;
        v.pop().ok_or(StoreError::NotFound)
    }

    async fn list_artifacts(
        &self,
        kind: ArtifactKind,
        name: Option<&ProductName>,
        page: &PageRequest,
    ) -> StoreResult<Page<ArtifactRecord>> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {ARTIFACT_COLUMNS} FROM artifacts WHERE kind = $1 AND ($2 IS NULL OR name = $2) AND id > $3 \
             ORDER BY id LIMIT $4"
        )))
        .bind(kind.as_str())
        .bind(name.map(ProductName::as_str))
        .bind(page.cursor.as_deref().unwrap_or(""))
        .bind(i64::from(page.limit) + 1)
        .fetch_all(&self.read)
        .await?;
        let items = self.artifacts_from_rows(rows).await?;
        Ok(Page::from_rows(items, page.limit, |a| a.id.clone()))
    }

    async fn delete_artifact(&self, kind: ArtifactKind, id: &str) -> StoreResult<ArtifactRecord> {
        let record = self.get_artifact(kind, id).await?;
        let done = sqlx::query("DELETE FROM artifacts WHERE kind = $1 AND id = $2")
            .bind(kind.as_str())
            .bind(id)
            .execute(&self.write)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(record)
    }

    async fn blob_referenced(&self, sha256: &str) -> StoreResult<bool> {
        let row = sqlx::query("SELECT 1 FROM artifacts WHERE sha256 = $1 LIMIT 1")
            .bind(sha256)
            .fetch_optional(&self.write)
            .await?;
        Ok(row.is_some())
    }

    async fn insert_device(&self, d: &NewDevice) -> StoreResult<DeviceRecord> {
        let mut tx = self.write.begin().await?;
        sqlx::query("INSERT INTO devices (id, hardware, token_hash, created_at) VALUES ($1, $2, $3, $4)")
            .bind(d.id.as_str())
            .bind(d.hardware.as_str())
            .bind(&d.token_hash)
            .bind(d.created_at_ms)
            .execute(&mut *tx)
            .await
            .map_err(classify)?;
        for (key, value) in &d.labels {
            sqlx::query("INSERT INTO device_labels (device_id, key, value) VALUES ($1, $2, $3)")
                .bind(d.id.as_str())
                .bind(key)
                .bind(value)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(DeviceRecord {
            id: d.id.clone(),
            hardware: d.hardware.clone(),
            labels: d.labels.clone(),
            created_at_ms: d.created_at_ms,
            online: false,
            last_seen_ms: None,
            firmware: None,
            config: None,
        })
    }

    async fn get_device(&self, id: &DeviceId) -> StoreResult<DeviceRecord> {
        let row = sqlx::query(AssertSqlSafe(format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE id = $1")))
            .bind(id.as_str())
            .fetch_one(&self.read)
            .await
            .map_err(classify)?;
        self.devices_from_rows(vec![row]).await?.pop().ok_or(StoreError::NotFound)
    }

    async fn list_devices(&self, filter: &DeviceFilter, page: &PageRequest) -> StoreResult<Page<DeviceRecord>> {
        let mut q = QueryBuilder::<Sqlite>::new(format!("SELECT {DEVICE_COLUMNS} FROM devices d WHERE d.id > "));
        q.push_bind(page.cursor.clone().unwrap_or_default());
        if let Some(hw) = &filter.hardware {
            q.push(" AND d.hardware = ").push_bind(hw.as_str().to_owned());
        }
        for (key, value) in &filter.labels {
            q.push(" AND EXISTS (SELECT 1 FROM device_labels l WHERE l.device_id = d.id AND l.key = ")
                .push_bind(key.clone())
                .push(" AND l.value = ")
                .push_bind(value.clone())
                .push(")");
        }
        q.push(" ORDER BY d.id LIMIT ").push_bind(i64::from(page.limit) + 1);
        let rows = q.build().fetch_all(&self.read).await?;
        let items = self.devices_from_rows(rows).await?;
        Ok(Page::from_rows(items, page.limit, |d| d.id.to_string()))
    }

    async fn delete_device(&self, id: &DeviceId) -> StoreResult<()> {
        let mut tx = self.write.begin().await?;
        let done = sqlx::query("DELETE FROM devices WHERE id = $1").bind(id.as_str()).execute(&mut *tx).await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        // A decommissioned device leaves its rollouts.
        sqlx::query(
            "UPDATE rollout_devices SET state = 'cancelled', reason = NULL, updated_at = $1 WHERE device_id = $2 \
             AND state NOT IN ('succeeded', 'failed', 'rejected', 'rolled_back', 'timed_out', 'cancelled')",
        )
        .bind(crate::now_ms())
        .bind(id.as_str())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn rotate_device_token(&self, id: &DeviceId, token_hash: &str) -> StoreResult<()> {
        let done = sqlx::query("UPDATE devices SET token_hash = $1, last_seq = NULL WHERE id = $2")
            .bind(token_hash)
            .bind(id.as_str())
            .execute(&self.write)
            .await
            .map_err(classify)?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn device_by_token_hash(&self, token_hash: &str) -> StoreResult<Option<DeviceId>> {
        let row = sqlx::query("SELECT id FROM devices WHERE token_hash = $1")
            .bind(token_hash)
            .fetch_optional(&self.read)
            .await?;
        row.map(|r| {
            let id: String = r.try_get("id")?;
            DeviceId::from_str(&id).map_err(|e| corrupt("device id", e))
        })
        .transpose()
    }

    async fn close(&self) {
        self.read.close().await;
        self.write.close().await;
    }
}
