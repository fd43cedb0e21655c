//! REST bodies (CONTRACT §3), shared by the server that writes them and the clients that
//! read them. The rollout bodies live in [`rollouts`], a rollout's maintenance window in
//! [`schedule`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Envelope;
use crate::message::Installed;

pub mod rollouts;
pub mod schedule;

pub use rollouts::{
    CreateRollout, PlannedWave, Rollout, RolloutArtifact, RolloutDevice, RolloutOptions, RolloutPlan, RolloutTarget,
    WaveProgress, WaveState,
};
pub use schedule::{MaintenanceWindow, WindowState};

/// `{"items": […], "next_cursor": …}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct List<T> {
    pub items: Vec<T>,
    pub next_cursor: Option<String>,
}

/// A registered release key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct KeyInfo {
    pub keyid: String,
    pub name: String,
    pub public_key_pem: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
}

/// A stored firmware image or configuration document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ArtifactInfo {
    pub id: String,
    pub kind: String,
    pub name: String,
    pub version: String,
    pub hardware: Vec<String>,
    pub size: u64,
    pub sha256: String,
    /// The manifest's own `created_at` (when it was signed).
    pub manifest_created_at: String,
    pub expires_at: Option<String>,
    pub requires_firmware: Option<String>,
    /// The manifest's signed permission to go back to this version from the installed
    /// versions it matches; null when it refuses downgrades (the usual case).
    #[serde(default)]
    pub allow_downgrade_from: Option<String>,
    /// Keyids whose signatures verified at upload.
    pub signers: Vec<String>,
    pub blob_url: String,
    /// The signed envelope; left out of lists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub envelope: Option<Envelope>,
    /// When it was uploaded.
    pub created_at: String,
}

/// At most this many labels: on a device at registration, in a `GET /devices` filter and in
/// a rollout target. Each label is one more condition in the database's query, so an
/// unbounded number is refused at the edge rather than left to the database's limits.
pub const MAX_LABELS: usize = 32;

/// A device in the inventory.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeviceInfo {
    pub id: String,
    pub hardware: String,
    pub labels: BTreeMap<String, String>,
    pub firmware: Option<Installed>,
    pub config: Option<Installed>,
    pub online: bool,
    pub last_seen: Option<String>,
    /// The rollout the device is in, `{"id", "state"}`, or null.
    pub rollout: Option<serde_json::Value>,
    pub created_at: String,
    /// The trust document version the device last reported (CONTRACT §11).
    #[serde(default)]
    pub trust_version: Option<u64>,
}

/// A device just registered or whose token was rotated: the only time the token is shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeviceWithToken {
    #[serde(flatten)]
    pub device: DeviceInfo,
    pub token: String,
}

/// `POST /devices/{id}/certificate`: a PKCS#10 request whose subject CN is the device id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CertificateRequest {
    pub csr_pem: String,
}

/// A device certificate just signed (CONTRACT §12).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeviceCertificate {
    pub certificate_pem: String,
    /// The serial number, lowercase hex.
    pub serial: String,
    /// RFC 3339.
    pub expires_at: String,
}

/// What an operator token may do: `admin` everything, `read-only` every read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub enum TokenScope {
    Admin,
    ReadOnly,
}

impl TokenScope {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenScope::Admin => "admin",
            TokenScope::ReadOnly => "read-only",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [TokenScope::Admin, TokenScope::ReadOnly].into_iter().find(|scope| scope.as_str() == s)
    }
}

impl std::fmt::Display for TokenScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A named operator token (its secret is shown only when created).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenInfo {
    pub name: String,
    pub scope: TokenScope,
    /// Whether the token also logs in to the broker as `op:{name}` (CONTRACT §10).
    #[serde(default)]
    pub mqtt: bool,
    pub created_at: String,
}

/// `GET /whoami`: the operator token making the request, so a client (the dashboard) can
/// show only the controls it may use.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WhoAmI {
    pub name: String,
    pub scope: TokenScope,
}

/// A token just created, with its secret.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenWithSecret {
    #[serde(flatten)]
    pub info: TokenInfo,
    pub token: String,
}

/// One operator action in the audit trail.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEntry {
    pub id: String,
    pub at: String,
    /// The operator token's name.
    pub actor: String,
    /// e.g. `rollout.paused`.
    pub action: String,
    pub target: String,
    pub details: serde_json::Value,
}
