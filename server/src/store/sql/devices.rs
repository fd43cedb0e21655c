//! The device registry: devices, their labels and credentials.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use fleet_protocol::message::Installed;
use fleet_protocol::state::DeviceState;
use fleet_protocol::{DeviceId, HardwareModel, ProductName};

use super::SqlStore;
use super::db::{CHUNK, Db, RowExt as _, Sql};
use super::rows::{FINAL, corrupt};
use super::schedule::join_dynamic;
use crate::store::rollouts::RolloutStore as _;
use crate::store::{DeviceFilter, DeviceRecord, DeviceStore, NewDevice, Page, PageRequest, StoreError, StoreResult};

const DEVICE_COLUMNS: &str = "id, hardware, created_at, online, last_seen, firmware_name, firmware_version, \
     firmware_sha256, config_name, config_version, config_sha256, trust_version";

/// The firmware or config (`prefix`) a device last reported, if any.
fn installed<DB: Db>(row: &DB::Row, prefix: &str) -> StoreResult<Option<Installed>> {
    let name: Option<String> = row.col(&format!("{prefix}_name"))?;
    let version: Option<String> = row.col(&format!("{prefix}_version"))?;
    let sha256: Option<String> = row.col(&format!("{prefix}_sha256"))?;
    let (Some(name), Some(version), Some(sha256)) = (name, version, sha256) else {
        return Ok(None);
    };
    Ok(Some(Installed {
        name: ProductName::parse(name).map_err(|e| corrupt(prefix, e))?,
        version: semver::Version::parse(&version).map_err(|e| corrupt(prefix, e))?,
        sha256: sha256.parse().map_err(|e| corrupt(prefix, e))?,
    }))
}

impl<DB: Db> SqlStore<DB> {
    async fn labels_of(&self, ids: &[String]) -> StoreResult<HashMap<String, BTreeMap<String, String>>> {
        let mut labels: HashMap<String, BTreeMap<String, String>> = HashMap::new();
        if ids.is_empty() {
            return Ok(labels);
        }
        let mut q = Sql::<DB>::new("SELECT device_id, key, value FROM device_labels WHERE device_id IN ");
        q.in_list(ids);
        for row in q.fetch_all(self.reader()).await? {
            labels.entry(row.col("device_id")?).or_default().insert(row.col("key")?, row.col("value")?);
        }
        Ok(labels)
    }

    async fn devices_from_rows(&self, rows: Vec<DB::Row>) -> StoreResult<Vec<DeviceRecord>> {
        let ids: Vec<String> = rows.iter().map(|r| r.col("id")).collect::<Result<_, _>>()?;
        let mut labels = self.labels_of(&ids).await?;
        rows.iter()
            .map(|row| {
                let id: String = row.col("id")?;
                let hardware: String = row.col("hardware")?;
                Ok(DeviceRecord {
                    labels: labels.remove(&id).unwrap_or_default(),
                    id: DeviceId::parse(id).map_err(|e| corrupt("device id", e))?,
                    hardware: HardwareModel::parse(hardware).map_err(|e| corrupt("hardware", e))?,
                    created_at_ms: row.col("created_at")?,
                    online: row.col("online")?,
                    last_seen_ms: row.col("last_seen")?,
                    firmware: installed::<DB>(row, "firmware")?,
                    config: installed::<DB>(row, "config")?,
                    trust_version: row
                        .col::<Option<i64>>("trust_version")?
                        .map(|v| u64::try_from(v).map_err(|e| corrupt("trust_version", e)))
                        .transpose()?,
                })
            })
            .collect()
    }
}

#[async_trait]
impl<DB: Db> DeviceStore for SqlStore<DB> {
    async fn insert_device(&self, d: &NewDevice) -> StoreResult<DeviceRecord> {
        let mut tx = self.write.begin().await?;
        Sql::<DB>::new(
            "INSERT INTO devices (id, hardware, token_hash, broker_password_hash, created_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .arg(d.id.as_str())
        .arg(d.hardware.as_str())
        .arg(&d.token_hash)
        .arg(&d.broker_password_hash)
        .arg(d.created_at_ms)
        .execute(DB::on(&mut *tx))
        .await?;
        for (key, value) in &d.labels {
            Sql::<DB>::new("INSERT INTO device_labels (device_id, key, value) VALUES ($1, $2, $3)")
                .arg(d.id.as_str())
                .arg(key)
                .arg(value)
                .execute(DB::on(&mut *tx))
                .await?;
        }
        join_dynamic::<DB>(&mut tx, self.now_sql, &d.id, &d.hardware, &d.labels).await?;
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
            trust_version: None,
        })
    }

    async fn get_device(&self, id: &DeviceId) -> StoreResult<DeviceRecord> {
        let row = Sql::<DB>::new(format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE id = $1"))
            .arg(id.as_str())
            .fetch_one(self.reader())
            .await?;
        self.devices_from_rows(vec![row]).await?.pop().ok_or(StoreError::NotFound)
    }

    async fn get_devices(&self, ids: &[DeviceId]) -> StoreResult<Vec<DeviceRecord>> {
        let mut devices = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(CHUNK) {
            let mut q = Sql::<DB>::new(format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE id IN "));
            q.in_list(chunk.iter().map(DeviceId::as_str));
            devices.extend(self.devices_from_rows(q.fetch_all(self.reader()).await?).await?);
        }
        Ok(devices)
    }

    async fn list_devices(&self, filter: &DeviceFilter, page: &PageRequest) -> StoreResult<Page<DeviceRecord>> {
        let mut q = Sql::<DB>::new(format!("SELECT {DEVICE_COLUMNS} FROM devices d WHERE d.id > "));
        q.bind(page.cursor.as_deref().unwrap_or(""));
        if let Some(hw) = &filter.hardware {
            q.push(" AND d.hardware = ").bind(hw.as_str());
        }
        if let Some(below) = filter.trust_below {
            let below = i64::try_from(below).unwrap_or(i64::MAX);
            q.push(" AND (d.trust_version IS NULL OR d.trust_version < ").bind(below).push(")");
        }
        for (key, value) in &filter.labels {
            q.push(" AND EXISTS (SELECT 1 FROM device_labels l WHERE l.device_id = d.id AND l.key = ").bind(key);
            q.push(" AND l.value = ").bind(value).push(")");
        }
        q.push(" ORDER BY d.id LIMIT ").bind(i64::from(page.limit) + 1);
        let rows = q.fetch_all(self.reader()).await?;
        let items = self.devices_from_rows(rows).await?;
        Ok(Page::from_rows(items, page.limit, |d| d.id.to_string()))
    }

    async fn delete_device(&self, id: &DeviceId) -> StoreResult<()> {
        let now = self.now_ms().await?;
        let mut tx = self.write.begin().await?;
        let done =
            Sql::<DB>::new("DELETE FROM devices WHERE id = $1").arg(id.as_str()).execute(DB::on(&mut *tx)).await?;
        if done == 0 {
            return Err(StoreError::NotFound);
        }
        // A decommissioned device leaves its rollouts.
        Sql::<DB>::new(format!(
            "UPDATE rollout_devices SET state = $1, reason = NULL, updated_at = $2 WHERE device_id = $3 \
             AND state NOT IN {}",
            FINAL.as_str()
        ))
        .arg(DeviceState::Cancelled.as_str())
        .arg(now)
        .arg(id.as_str())
        .execute(DB::on(&mut *tx))
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn set_device_labels(&self, id: &DeviceId, labels: &BTreeMap<String, String>) -> StoreResult<DeviceRecord> {
        let mut tx = self.write.begin().await?;
        // Touching the device row first both proves it exists and orders concurrent relabels.
        let found = Sql::<DB>::new("UPDATE devices SET id = id WHERE id = $1 RETURNING hardware")
            .arg(id.as_str())
            .fetch_optional(DB::on(&mut *tx))
            .await?;
        let Some(found) = found else {
            return Err(StoreError::NotFound);
        };
        let hardware: String = found.col("hardware")?;
        let hardware = HardwareModel::parse(hardware).map_err(|e| corrupt("hardware", e))?;
        Sql::<DB>::new("DELETE FROM device_labels WHERE device_id = $1")
            .arg(id.as_str())
            .execute(DB::on(&mut *tx))
            .await?;
        for (key, value) in labels {
            Sql::<DB>::new("INSERT INTO device_labels (device_id, key, value) VALUES ($1, $2, $3)")
                .arg(id.as_str())
                .arg(key)
                .arg(value)
                .execute(DB::on(&mut *tx))
                .await?;
        }
        // Devices relabelled into the target of a dynamic rollout join it.
        join_dynamic::<DB>(&mut tx, self.now_sql, id, &hardware, labels).await?;
        tx.commit().await?;
        self.get_device(id).await
    }

    async fn rotate_device_token(
        &self,
        id: &DeviceId,
        token_hash: &str,
        broker_password_hash: &str,
    ) -> StoreResult<()> {
        let done = Sql::<DB>::new(
            "UPDATE devices SET token_hash = $1, broker_password_hash = $2, last_seq = NULL WHERE id = $3",
        )
        .arg(token_hash)
        .arg(broker_password_hash)
        .arg(id.as_str())
        .execute(self.writer())
        .await?;
        if done == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    async fn broker_credentials(&self) -> StoreResult<Vec<(String, String)>> {
        let rows = Sql::<DB>::new(
            "SELECT id, broker_password_hash FROM devices WHERE broker_password_hash IS NOT NULL \
             UNION ALL SELECT $1 || name, broker_password_hash FROM operator_tokens \
             WHERE mqtt AND broker_password_hash IS NOT NULL ORDER BY 1",
        )
        .arg(fleet_protocol::topic::OPERATOR_USER_PREFIX)
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(|r| Ok((r.col("id")?, r.col("broker_password_hash")?))).collect()
    }

    async fn credential_changes(&self) -> StoreResult<i64> {
        let row = Sql::<DB>::new("SELECT n FROM credential_changes WHERE id = 1").fetch_one(self.reader()).await?;
        Ok(row.col("n")?)
    }
}
