//! Device certificates the server signed, by the SHA-256 of their DER.

use async_trait::async_trait;
use fleet_protocol::DeviceId;

use super::SqlStore;
use super::db::{Db, RowExt as _, Sql};
use super::rows::corrupt;
use crate::store::{CertificateStore, DeviceCertificateRecord, StoreResult};

fn certificate_from_row<DB: Db>(row: &DB::Row) -> StoreResult<DeviceCertificateRecord> {
    let device: String = row.col("device_id")?;
    Ok(DeviceCertificateRecord {
        sha256: row.col("sha256")?,
        serial: row.col("serial")?,
        device_id: DeviceId::parse(device).map_err(|e| corrupt("device id", e))?,
        not_after_ms: row.col("not_after")?,
        revoked_at_ms: row.col("revoked_at")?,
        created_at_ms: row.col("created_at")?,
    })
}

#[async_trait]
impl<DB: Db> CertificateStore for SqlStore<DB> {
    async fn insert_device_certificate(&self, cert: &DeviceCertificateRecord) -> StoreResult<()> {
        Sql::<DB>::new(
            "INSERT INTO device_certificates (sha256, serial, device_id, not_after, revoked_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .arg(&cert.sha256)
        .arg(&cert.serial)
        .arg(cert.device_id.as_str())
        .arg(cert.not_after_ms)
        .arg(cert.revoked_at_ms)
        .arg(cert.created_at_ms)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    async fn device_certificate(&self, sha256: &str) -> StoreResult<Option<DeviceCertificateRecord>> {
        let row = Sql::<DB>::new("SELECT * FROM device_certificates WHERE sha256 = $1")
            .arg(sha256)
            .fetch_optional(self.reader())
            .await?;
        row.as_ref().map(certificate_from_row::<DB>).transpose()
    }

    async fn revoke_device_certificates(&self, device: &DeviceId, at_ms: i64) -> StoreResult<()> {
        Sql::<DB>::new("UPDATE device_certificates SET revoked_at = $1 WHERE device_id = $2 AND revoked_at IS NULL")
            .arg(at_ms)
            .arg(device.as_str())
            .execute(self.writer())
            .await?;
        Ok(())
    }

    async fn revoked_device_certificates(&self, now_ms: i64) -> StoreResult<Vec<DeviceCertificateRecord>> {
        let rows = Sql::<DB>::new(
            "SELECT * FROM device_certificates WHERE revoked_at IS NOT NULL AND not_after > $1 ORDER BY serial",
        )
        .arg(now_ms)
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(certificate_from_row::<DB>).collect()
    }
}
