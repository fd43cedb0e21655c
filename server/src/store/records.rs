//! Rows as the rest of the server sees them.

use std::collections::BTreeMap;

use fleet_protocol::api::TokenScope;
use fleet_protocol::message::Installed;
use fleet_protocol::{ArtifactKind, DeviceId, HardwareModel, KeyId, Manifest};

/// A registered release key.
#[derive(Debug, Clone)]
pub struct KeyRecord {
    pub keyid: KeyId,
    pub name: String,
    pub public_key_pem: String,
    pub created_at_ms: i64,
    pub revoked_at_ms: Option<i64>,
}

/// A named operator token; only its SHA-256 is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OperatorTokenRecord {
    pub name: String,
    pub scope: TokenScope,
    pub token_hash: String,
    /// Also a broker account `op:{name}` (CONTRACT §10).
    pub mqtt: bool,
    /// The token in Mosquitto's `$7$` format, for its password file (only with `mqtt`).
    pub broker_password_hash: Option<String>,
    pub created_at_ms: i64,
}

/// Whose a bearer token is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenOwner {
    Operator(OperatorTokenRecord),
    Device(fleet_protocol::DeviceId),
}

/// One operator action in the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// Assigned by the database (0 when inserting).
    pub id: i64,
    pub at_ms: i64,
    /// The operator token's name.
    pub actor: String,
    /// e.g. `rollout.paused`.
    pub action: String,
    /// What it was done to, e.g. the rollout id.
    pub target: String,
    /// JSON text.
    pub details: String,
}

/// An artifact to insert, with the keys whose signatures verified at upload.
#[derive(Debug, Clone)]
pub struct NewArtifact {
    pub id: String,
    pub manifest: Manifest,
    /// The verified manifest bytes, exactly as signed.
    pub manifest_json: String,
    pub envelope_json: String,
    pub signers: Vec<KeyId>,
    pub created_at_ms: i64,
}

/// A stored artifact.
#[derive(Debug, Clone)]
pub struct ArtifactRecord {
    pub id: String,
    pub kind: ArtifactKind,
    pub manifest: Manifest,
    pub envelope_json: String,
    pub signers: Vec<KeyId>,
    pub created_at_ms: i64,
}

/// A device to register.
#[derive(Debug, Clone)]
pub struct NewDevice {
    pub id: DeviceId,
    pub hardware: HardwareModel,
    pub labels: BTreeMap<String, String>,
    pub token_hash: String,
    /// The token in Mosquitto's `$7$` format (see `broker::mosquitto`).
    pub broker_password_hash: String,
    pub created_at_ms: i64,
}

/// A device in the inventory.
#[derive(Debug, Clone)]
pub struct DeviceRecord {
    pub id: DeviceId,
    pub hardware: HardwareModel,
    pub labels: BTreeMap<String, String>,
    pub created_at_ms: i64,
    pub online: bool,
    pub last_seen_ms: Option<i64>,
    pub firmware: Option<Installed>,
    pub config: Option<Installed>,
    /// The trust document version the device last reported.
    pub trust_version: Option<u64>,
}

/// A stored trust document: its version, the envelope JSON exactly as posted, and when it
/// expires and was stored (ms).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrustRecord {
    pub version: u64,
    pub envelope_json: String,
    pub expires_at_ms: i64,
    pub created_at_ms: i64,
}

/// A device certificate the server signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceCertificateRecord {
    /// SHA-256 of the certificate's DER, lowercase hex: how a presented certificate is found.
    pub sha256: String,
    /// The serial number, lowercase hex.
    pub serial: String,
    pub device_id: DeviceId,
    pub not_after_ms: i64,
    pub revoked_at_ms: Option<i64>,
    pub created_at_ms: i64,
}

/// Keyset pagination: items after `cursor` in id order.
#[derive(Debug, Clone)]
pub struct PageRequest {
    pub limit: u32,
    pub cursor: Option<String>,
}

/// One page and the cursor of the next, if any.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// Builds a page from up to `limit + 1` rows fetched in id order.
    pub fn from_rows(mut rows: Vec<T>, limit: u32, id_of: impl Fn(&T) -> String) -> Self {
        let more = rows.len() > limit as usize;
        rows.truncate(limit as usize);
        let next_cursor = if more { rows.last().map(id_of) } else { None };
        Self { items: rows, next_cursor }
    }

    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page { items: self.items.into_iter().map(f).collect(), next_cursor: self.next_cursor }
    }
}
