//! Persistence: one [`Store`] trait, made of one trait per resource (keys, artifacts,
//! devices, tokens, audit, in [`rollouts`] rollouts, their entries and reports, and in
//! [`events`] event marks, webhooks and their outbox),
//! implemented for SQLite ([`sqlite`]) and PostgreSQL ([`postgres`]) by the same SQL
//! ([`sql`]). [`records`](self) holds the rows as the rest of the server sees them.
//!
//! Storage errors are classified here, where storage meets the rest: every `sqlx::Error`
//! becomes a [`StoreError`] through one `From`, so a missing row is always
//! [`StoreError::NotFound`] and a unique violation always [`StoreError::Conflict`].

pub mod events;
pub mod postgres;
mod records;
pub mod rollouts;
pub mod sql;
pub mod sqlite;

use std::collections::BTreeMap;

use async_trait::async_trait;
pub use events::EventStore;
use fleet_protocol::{ArtifactKind, DeviceId, HardwareModel, KeyId, ProductName};
pub use rollouts::{EntryStore, ReportStore, RolloutStore};

pub use records::{
    ArtifactRecord, AuditRecord, DeviceCertificateRecord, DeviceRecord, KeyRecord, NewArtifact, NewDevice,
    OperatorTokenRecord, Page, PageRequest, TokenOwner, TrustRecord,
};

/// What can go wrong in storage.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    #[error("already exists")]
    Conflict,
    #[error("still referenced")]
    Referenced,
    #[error("database error: {0}")]
    Database(sqlx::Error),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::RowNotFound => Self::NotFound,
            sqlx::Error::Database(ref d) if d.is_unique_violation() => Self::Conflict,
            sqlx::Error::Database(ref d) if d.is_foreign_key_violation() => Self::Referenced,
            e => Self::Database(e),
        }
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// What the metrics gauges show, counted by the database.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FleetCounts {
    /// (rollout state, rollouts).
    pub rollouts: Vec<(String, i64)>,
    /// (entry state, devices) over running and paused rollouts.
    pub entries: Vec<(String, i64)>,
    pub devices: i64,
    pub online: i64,
}

/// Filters for the device inventory.
#[derive(Debug, Default, Clone)]
pub struct DeviceFilter {
    pub hardware: Option<HardwareModel>,
    pub labels: Vec<(String, String)>,
    /// Only devices that report a trust version below this one, or none at all.
    pub trust_below: Option<u64>,
}

/// Everything the server keeps, behind one interface: one trait per resource.
#[async_trait]
pub trait Store:
    KeyStore
    + ArtifactStore
    + DeviceStore
    + TokenStore
    + AuditStore
    + RolloutStore
    + EntryStore
    + ReportStore
    + TrustStore
    + EventStore
    + CertificateStore
    + Send
    + Sync
    + std::fmt::Debug
    + 'static
{
    /// The counts behind the metrics gauges.
    async fn fleet_counts(&self) -> StoreResult<FleetCounts>;

    /// Closes connections, flushing what must be flushed.
    async fn close(&self);
}

/// Release keys.
#[async_trait]
pub trait KeyStore: Send + Sync {
    async fn insert_key(&self, key: &KeyRecord) -> StoreResult<()>;
    async fn get_key(&self, keyid: &KeyId) -> StoreResult<KeyRecord>;
    async fn list_keys(&self, page: &PageRequest) -> StoreResult<Page<KeyRecord>>;
    /// Every key that is not revoked.
    async fn active_keys(&self) -> StoreResult<Vec<KeyRecord>>;
    async fn revoke_key(&self, keyid: &KeyId, at_ms: i64) -> StoreResult<()>;
}

/// Trust documents (CONTRACT §11), by version.
#[async_trait]
pub trait TrustStore: Send + Sync {
    /// Stores a document; `Conflict` if its version is taken.
    async fn insert_trust(&self, doc: &TrustRecord) -> StoreResult<()>;
    /// The highest version, if any.
    async fn latest_trust(&self) -> StoreResult<Option<TrustRecord>>;
    async fn get_trust(&self, version: u64) -> StoreResult<TrustRecord>;
}

/// Device certificates the server signed (CONTRACT §12).
#[async_trait]
pub trait CertificateStore: Send + Sync {
    async fn insert_device_certificate(&self, cert: &DeviceCertificateRecord) -> StoreResult<()>;
    /// The certificate whose DER has this SHA-256 (hex), if the server signed it.
    async fn device_certificate(&self, sha256: &str) -> StoreResult<Option<DeviceCertificateRecord>>;
    /// Revokes every certificate of `device` not revoked yet.
    async fn revoke_device_certificates(&self, device: &DeviceId, at_ms: i64) -> StoreResult<()>;
    /// Every revoked certificate that has not expired yet at `now_ms` (for a CRL).
    async fn revoked_device_certificates(&self, now_ms: i64) -> StoreResult<Vec<DeviceCertificateRecord>>;
}

/// Artifacts (firmware and configs).
#[async_trait]
pub trait ArtifactStore: Send + Sync {
    async fn artifact_version_exists(
        &self,
        kind: ArtifactKind,
        name: &ProductName,
        version: &semver::Version,
    ) -> StoreResult<bool>;
    /// Inserts the record and its signers in one transaction; `Conflict` on a duplicate
    /// kind + name + version.
    async fn insert_artifact(&self, artifact: &NewArtifact) -> StoreResult<ArtifactRecord>;
    async fn get_artifact(&self, kind: ArtifactKind, id: &str) -> StoreResult<ArtifactRecord>;
    async fn list_artifacts(
        &self,
        kind: ArtifactKind,
        name: Option<&ProductName>,
        page: &PageRequest,
    ) -> StoreResult<Page<ArtifactRecord>>;
    async fn delete_artifact(&self, kind: ArtifactKind, id: &str) -> StoreResult<ArtifactRecord>;
    /// Whether any artifact still references this blob.
    async fn blob_referenced(&self, sha256: &str) -> StoreResult<bool>;
}

/// The device registry.
#[async_trait]
pub trait DeviceStore: Send + Sync {
    /// Registers the device; in the same transaction it joins the oldest active dynamic
    /// rollout whose target selects it (`rollout::dynamic`), unless it is in an active one.
    async fn insert_device(&self, device: &NewDevice) -> StoreResult<DeviceRecord>;
    async fn get_device(&self, id: &DeviceId) -> StoreResult<DeviceRecord>;
    /// Those of `ids` that are registered, in no particular order.
    async fn get_devices(&self, ids: &[DeviceId]) -> StoreResult<Vec<DeviceRecord>>;
    async fn list_devices(&self, filter: &DeviceFilter, page: &PageRequest) -> StoreResult<Page<DeviceRecord>>;
    /// Removes the device; it leaves the rollouts it is in (cancelled there).
    async fn delete_device(&self, id: &DeviceId) -> StoreResult<()>;
    /// Replaces all of the device's labels with `labels`, in one transaction; as at
    /// registration, the device then joins a dynamic rollout whose target selects it.
    async fn set_device_labels(&self, id: &DeviceId, labels: &BTreeMap<String, String>) -> StoreResult<DeviceRecord>;
    /// Replaces the token's hashes and forgets the last applied `seq`.
    async fn rotate_device_token(&self, id: &DeviceId, token_hash: &str, broker_password_hash: &str)
    -> StoreResult<()>;
    /// (username, broker password hash) of every device that has one and of every operator
    /// MQTT account (`op:{name}`), by username.
    async fn broker_credentials(&self) -> StoreResult<Vec<(String, String)>>;
    /// A counter the database raises whenever [`DeviceStore::broker_credentials`] or the
    /// revoked device certificates may have changed (migration 0016's triggers).
    async fn credential_changes(&self) -> StoreResult<i64>;
}

/// Operator tokens, and whose a token is.
#[async_trait]
pub trait TokenStore: Send + Sync {
    /// Inserts the token, or replaces the one of the same name.
    async fn put_operator_token(&self, token: &OperatorTokenRecord) -> StoreResult<()>;
    /// Inserts the token unless one of that name exists; returns the one stored.
    async fn init_operator_token(&self, token: &OperatorTokenRecord) -> StoreResult<OperatorTokenRecord>;
    /// The operator or device a token belongs to, in one query (every API request asks).
    async fn token_owner(&self, token_hash: &str) -> StoreResult<Option<TokenOwner>>;
    /// Inserts a new token; `Conflict` if the name or the hash is taken.
    async fn insert_operator_token(&self, token: &OperatorTokenRecord) -> StoreResult<()>;
    async fn list_operator_tokens(&self, page: &PageRequest) -> StoreResult<Page<OperatorTokenRecord>>;
    async fn get_operator_token(&self, name: &str) -> StoreResult<OperatorTokenRecord>;
    async fn delete_operator_token(&self, name: &str) -> StoreResult<()>;
}

/// The audit trail, newest first.
#[async_trait]
pub trait AuditStore: Send + Sync {
    async fn record_audit(&self, entry: &AuditRecord) -> StoreResult<()>;
    async fn list_audit(&self, page: &PageRequest) -> StoreResult<Page<AuditRecord>>;
}
