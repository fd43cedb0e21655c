//! Per-device rollout states, reason codes and the one table of legal transitions
//! (CONTRACT §5): the names devices and servers share, defined once here and used by the
//! protocol crate as its own.

use serde::{Deserialize, Serialize};
// What the OpenAPI derive's code names.
#[cfg(feature = "openapi")]
use std::{string::String, vec::Vec};

/// A device's state in a rollout, or `idle` outside rollouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DeviceState {
    Idle,
    Pending,
    Sent,
    Downloading,
    Verifying,
    Installing,
    Rebooting,
    Succeeded,
    Failed,
    Rejected,
    RolledBack,
    TimedOut,
    Cancelled,
}

/// Every state, in lifecycle order.
pub const ALL_STATES: [DeviceState; 13] = [
    DeviceState::Idle,
    DeviceState::Pending,
    DeviceState::Sent,
    DeviceState::Downloading,
    DeviceState::Verifying,
    DeviceState::Installing,
    DeviceState::Rebooting,
    DeviceState::Succeeded,
    DeviceState::Failed,
    DeviceState::Rejected,
    DeviceState::RolledBack,
    DeviceState::TimedOut,
    DeviceState::Cancelled,
];

/// How a device fares after `succeeded` while a rollout watches it (`health_window_s`,
/// CONTRACT §7): `watching` until the window has passed, then `healthy`; `unhealthy` when
/// it rolled back, failed or went offline meanwhile (a failure for the rollout's gate).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Health {
    Watching,
    Healthy,
    Unhealthy,
}

impl Health {
    pub const ALL: [Self; 3] = [Self::Watching, Self::Healthy, Self::Unhealthy];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Watching => "watching",
            Self::Healthy => "healthy",
            Self::Unhealthy => "unhealthy",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|h| h.as_str() == s)
    }
}

/// Who causes a transition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Actor {
    Server,
    Device,
}

impl DeviceState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Idle => "idle",
            Self::Pending => "pending",
            Self::Sent => "sent",
            Self::Downloading => "downloading",
            Self::Verifying => "verifying",
            Self::Installing => "installing",
            Self::Rebooting => "rebooting",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Rejected => "rejected",
            Self::RolledBack => "rolled_back",
            Self::TimedOut => "timed_out",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        ALL_STATES.into_iter().find(|st| st.as_str() == s)
    }

    /// Final states end a device's part in a rollout (until a retry or a late report).
    pub fn is_final(self) -> bool {
        matches!(
            self,
            Self::Succeeded | Self::Failed | Self::Rejected | Self::RolledBack | Self::TimedOut | Self::Cancelled
        )
    }

    /// Between `sent` and a final state.
    pub fn is_in_flight(self) -> bool {
        matches!(self, Self::Sent | Self::Downloading | Self::Verifying | Self::Installing | Self::Rebooting)
    }

    /// States a device may report.
    pub fn is_reportable(self) -> bool {
        matches!(
            self,
            Self::Idle
                | Self::Downloading
                | Self::Verifying
                | Self::Installing
                | Self::Rebooting
                | Self::Succeeded
                | Self::Failed
                | Self::Rejected
                | Self::RolledBack
                | Self::Cancelled
        )
    }

    /// Progress order of in-flight states; reports may skip forward, never go back.
    fn rank(self) -> u8 {
        match self {
            Self::Sent => 1,
            Self::Downloading => 2,
            Self::Verifying => 3,
            Self::Installing => 4,
            Self::Rebooting => 5,
            _ => 6,
        }
    }
}

impl core::fmt::Display for DeviceState {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether `actor` may move a rollout entry from `from` to `to`. The single table of
/// legal transitions; everything else is refused (and, for reports, counted and logged).
pub fn can_transition(from: DeviceState, to: DeviceState, actor: Actor) -> bool {
    use DeviceState::*;
    match actor {
        Actor::Server => match (from, to) {
            (Pending, Sent | Cancelled) => true,
            (f, TimedOut) => f.is_in_flight(),
            // A retry: failed or timed-out devices with attempts left go back to pending.
            (Failed | TimedOut | RolledBack, Pending) => true,
            // Already on the target: recorded without sending anything.
            (Pending, Succeeded) => true,
            _ => false,
        },
        Actor::Device => {
            if !to.is_reportable() || to == Idle {
                return false;
            }
            if from.is_in_flight() {
                return to.is_final() || to.rank() >= from.rank();
            }
            // A late success or rollback replaces a timeout.
            from == TimedOut && matches!(to, Succeeded | RolledBack)
        }
    }
}

/// Reason codes, each carried by one state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    // rejected
    SignatureInvalid,
    UntrustedKey,
    KindMismatch,
    NameMismatch,
    HardwareMismatch,
    Downgrade,
    Expired,
    UntrustedUrl,
    IncompatibleFirmware,
    Busy,
    // rejected, for trust documents (CONTRACT §11)
    TrustExpired,
    TrustRollback,
    TrustSignatureInvalid,
    // failed
    DigestMismatch,
    SizeExceeded,
    DownloadFailed,
    InsufficientSpace,
    InstallFailed,
    // rolled_back
    BootFailed,
    HealthCheckFailed,
    // succeeded
    AlreadyInstalled,
    // timed_out
    Unreachable,
    // cancelled: an operator skipped the device before it was sent anything
    Skipped,
}

/// Every reason code.
pub const ALL_REASONS: [Reason; 23] = [
    Reason::SignatureInvalid,
    Reason::UntrustedKey,
    Reason::KindMismatch,
    Reason::NameMismatch,
    Reason::HardwareMismatch,
    Reason::Downgrade,
    Reason::Expired,
    Reason::UntrustedUrl,
    Reason::IncompatibleFirmware,
    Reason::Busy,
    Reason::TrustExpired,
    Reason::TrustRollback,
    Reason::TrustSignatureInvalid,
    Reason::DigestMismatch,
    Reason::SizeExceeded,
    Reason::DownloadFailed,
    Reason::InsufficientSpace,
    Reason::InstallFailed,
    Reason::BootFailed,
    Reason::HealthCheckFailed,
    Reason::AlreadyInstalled,
    Reason::Unreachable,
    Reason::Skipped,
];

impl Reason {
    pub fn as_str(self) -> &'static str {
        use Reason::*;
        match self {
            SignatureInvalid => "signature_invalid",
            UntrustedKey => "untrusted_key",
            KindMismatch => "kind_mismatch",
            NameMismatch => "name_mismatch",
            HardwareMismatch => "hardware_mismatch",
            Downgrade => "downgrade",
            Expired => "expired",
            UntrustedUrl => "untrusted_url",
            IncompatibleFirmware => "incompatible_firmware",
            Busy => "busy",
            TrustExpired => "trust_expired",
            TrustRollback => "trust_rollback",
            TrustSignatureInvalid => "trust_signature_invalid",
            DigestMismatch => "digest_mismatch",
            SizeExceeded => "size_exceeded",
            DownloadFailed => "download_failed",
            InsufficientSpace => "insufficient_space",
            InstallFailed => "install_failed",
            BootFailed => "boot_failed",
            HealthCheckFailed => "health_check_failed",
            AlreadyInstalled => "already_installed",
            Unreachable => "unreachable",
            Skipped => "skipped",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        ALL_REASONS.into_iter().find(|r| r.as_str() == s)
    }

    /// The state that carries this reason.
    pub fn state(self) -> DeviceState {
        use Reason::*;
        match self {
            SignatureInvalid
            | UntrustedKey
            | KindMismatch
            | NameMismatch
            | HardwareMismatch
            | Downgrade
            | Expired
            | UntrustedUrl
            | IncompatibleFirmware
            | Busy
            | TrustExpired
            | TrustRollback
            | TrustSignatureInvalid => DeviceState::Rejected,
            DigestMismatch | SizeExceeded | DownloadFailed | InsufficientSpace | InstallFailed => DeviceState::Failed,
            BootFailed | HealthCheckFailed => DeviceState::RolledBack,
            AlreadyInstalled => DeviceState::Succeeded,
            Unreachable => DeviceState::TimedOut,
            Skipped => DeviceState::Cancelled,
        }
    }
}
