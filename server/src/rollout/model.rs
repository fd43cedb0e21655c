//! The domain types of a rollout: its state and why it paused, the rollout as recorded
//! (target, options and limits, where it stands), one device's entry in it, a
//! compare-and-set change to an entry, the counts the engine judges by, and what a status
//! report did. The store persists these; the planning, rules and engine reason about them.

use fleet_protocol::message::StatusReport;
use fleet_protocol::state::{DeviceState, Health, Reason};
use fleet_protocol::{ArtifactKind, DeviceId};
use serde::{Deserialize, Serialize};

use super::window::Window;

/// A rollout's own state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RolloutState {
    /// Waiting for its `start_at` (see `rollout::schedule`).
    Scheduled,
    Running,
    Paused,
    Completed,
    Cancelled,
}

impl RolloutState {
    /// Every rollout state.
    pub const ALL: [Self; 5] = [Self::Scheduled, Self::Running, Self::Paused, Self::Completed, Self::Cancelled];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Scheduled => "scheduled",
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Completed => "completed",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// Scheduled, running or paused: its devices can't join another rollout, and it may
    /// still dispatch.
    pub fn is_active(self) -> bool {
        matches!(self, Self::Scheduled | Self::Running | Self::Paused)
    }

    /// Completed or cancelled: it may be deleted (by an operator, or after the retention).
    pub fn is_finished(self) -> bool {
        matches!(self, Self::Completed | Self::Cancelled)
    }
}

/// Why a rollout is paused (CONTRACT §3). The names are stored in the database and sent as
/// the rollout body's `reason`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PauseReason {
    /// An operator paused it.
    Operator,
    /// A wave finished under the manual wave gate.
    WaveGate,
    /// The failure gate tripped.
    FailureThreshold,
    /// Its artifact no longer has enough non-revoked signers.
    KeyRevoked,
    /// The failure gate tripped on devices found unhealthy in the health window, or too
    /// many of a wave's succeeded devices went offline in it (`max_offline_ratio`).
    HealthGate,
}

impl PauseReason {
    /// Every pause reason.
    pub const ALL: [Self; 5] =
        [Self::Operator, Self::WaveGate, Self::FailureThreshold, Self::KeyRevoked, Self::HealthGate];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Operator => "operator",
            Self::WaveGate => "wave_gate",
            Self::FailureThreshold => "failure_threshold",
            Self::KeyRevoked => "key_revoked",
            Self::HealthGate => "health_gate",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

impl std::fmt::Display for PauseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// After each wave: continue by itself, or pause until resumed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WaveGate {
    #[default]
    Auto,
    Manual,
}

impl WaveGate {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Manual => "manual",
        }
    }

    pub fn parse(s: &str) -> Self {
        if s == "manual" { Self::Manual } else { Self::Auto }
    }
}

/// A rollout's start and maintenance window, as recorded (the rules: `rollout::schedule`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Schedule {
    /// Milliseconds since the epoch; `None`: started at creation.
    pub start_at: Option<i64>,
    pub window: Option<Window>,
}

/// A rollout as recorded: what it ships to whom, its options and limits, and where it
/// stands. Times are milliseconds of the database's clock.
#[derive(Debug, Clone, PartialEq)]
pub struct RolloutRecord {
    pub id: String,
    pub artifact_id: String,
    pub kind: ArtifactKind,
    pub state: RolloutState,
    /// Set while paused, and only then.
    pub reason: Option<PauseReason>,
    /// The request's target, as JSON.
    pub target: String,
    pub waves: Vec<f64>,
    pub current_wave: i64,
    pub wave_soak_s: i64,
    pub wave_gate: WaveGate,
    pub max_failure_ratio: f64,
    pub min_finished: i64,
    pub max_per_minute: Option<i64>,
    pub max_in_flight: Option<i64>,
    pub max_attempts: i64,
    pub device_timeout_s: i64,
    /// Retries across the whole rollout (`None`: unlimited); once used up, failures are final.
    pub max_retries_total: Option<i64>,
    /// Retries granted so far (the store counts them as it writes them).
    pub retries_used: i64,
    /// How long a succeeded device is watched before it is final (0: not watched).
    pub health_window_s: i64,
    /// Of the current wave's succeeded devices, the share that may be offline while
    /// watched (`None`: none may).
    pub max_offline_ratio: Option<f64>,
    /// Set with a rule's pause: which rule tripped, on which numbers and devices.
    pub pause_detail: Option<String>,
    /// Only results updated at or after this count for the failure gate (resume re-arms).
    pub gate_since: i64,
    pub wave_done_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    /// Raised by every write of the record: a write applies only to the version it read
    /// (see `RolloutStore::update_rollout`), so the engine never overwrites an operator's
    /// pause or cancel that landed during its step.
    pub version: i64,
    // Scheduling and dynamic targets (CONTRACT §7); fixed at creation.
    /// `start_at` and the maintenance window.
    pub schedule: Schedule,
    /// Devices that match the (hardware/labels) target later join its last wave.
    pub dynamic: bool,
}

/// One device in one rollout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryRecord {
    pub rollout_id: String,
    pub device_id: String,
    pub position: i64,
    pub wave: i64,
    pub state: DeviceState,
    pub reason: Option<Reason>,
    pub attempts: i64,
    /// The device reported something during the current attempt.
    pub reported: bool,
    pub sent_at: Option<i64>,
    pub retry_at: Option<i64>,
    pub last_heard_at: Option<i64>,
    pub updated_at: i64,
    /// After `succeeded` in a rollout with a health window (see [`Health`]).
    pub health: Option<Health>,
    /// When a watched device's window ends.
    pub watch_until: Option<i64>,
}

impl EntryRecord {
    /// A device's new entry: pending, nothing sent yet.
    pub fn pending(rollout_id: &str, device_id: &str, position: i64, wave: i64, now: i64) -> Self {
        Self {
            rollout_id: rollout_id.to_owned(),
            device_id: device_id.to_owned(),
            position,
            wave,
            state: DeviceState::Pending,
            reason: None,
            attempts: 0,
            reported: false,
            sent_at: None,
            retry_at: None,
            last_heard_at: None,
            updated_at: now,
            health: None,
            watch_until: None,
        }
    }

    /// The entry after `c` applied at `now`.
    pub fn apply(&mut self, c: &EntryChange, now: i64) {
        self.state = c.state;
        self.reason = c.reason;
        self.attempts = c.attempts;
        self.reported = c.reported;
        self.sent_at = c.sent_at;
        self.retry_at = c.retry_at;
        self.health = c.health;
        self.watch_until = c.watch_until;
        self.updated_at = now;
    }
}

/// A compare-and-set change to an entry: applied only if the entry is still in
/// `expect_state` with `expect_attempts`, so the engine never overwrites a report that
/// arrived meanwhile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryChange {
    pub rollout_id: String,
    pub device_id: String,
    pub expect_state: DeviceState,
    pub expect_attempts: i64,
    pub state: DeviceState,
    pub reason: Option<Reason>,
    pub attempts: i64,
    pub reported: bool,
    pub sent_at: Option<i64>,
    pub retry_at: Option<i64>,
    /// Set when this change retries a failure: the final state it replaced (`failed` or
    /// `timed_out`). The store grants the retry from the rollout's budget, or writes that
    /// state instead when the budget is used up.
    pub retry_of: Option<DeviceState>,
    pub health: Option<Health>,
    pub watch_until: Option<i64>,
}

/// Per-wave, per-state counts of a rollout's entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Count {
    pub wave: i64,
    pub state: DeviceState,
    pub reason: Option<Reason>,
    pub health: Option<Health>,
    pub n: i64,
    /// Of those, changed at or after the `since` given to the store's `tallies`.
    pub since: i64,
    /// Of those, sent after the `sent_after` given to the store's `tallies`.
    pub sent_recently: i64,
}

/// Failures for the gate: failed, rolled_back, rejected, and timed_out unless the device
/// never reported at all (`unreachable`).
pub fn is_failure(state: DeviceState, reason: Option<Reason>) -> bool {
    match state {
        DeviceState::Failed | DeviceState::RolledBack | DeviceState::Rejected => true,
        DeviceState::TimedOut => reason != Some(Reason::Unreachable),
        _ => false,
    }
}

impl Count {
    /// Whether these entries are done with: final, and not still watched.
    pub fn is_settled(&self) -> bool {
        self.state.is_final() && self.health != Some(Health::Watching)
    }

    /// Whether these entries count as failures for the gate.
    pub fn is_failure(&self) -> bool {
        self.health == Some(Health::Unhealthy) || is_failure(self.state, self.reason)
    }
}

/// A report as it arrived.
#[derive(Debug, Clone)]
pub struct IncomingReport {
    pub device: DeviceId,
    pub report: StatusReport,
}

/// What applying one report did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportOutcome {
    Applied {
        rollout_id: Option<String>,
    },
    /// Ignored and counted: the reason names why.
    Ignored(&'static str),
    /// A connect report (or silence) from a device with a command outstanding: re-send it.
    Resend {
        rollout_id: String,
    },
}

/// How often an operator's control (or a key's revocation) reads the rollout again when
/// the engine wrote it between the read and the compare-and-set write. The engine writes a
/// rollout at most once per step, so one more read almost always wins; the bound only
/// keeps a pathological case from looping.
pub const CONTROL_TRIES: usize = 8;

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A rollout in `state` with the defaults of a request, for the rules' tests.
    pub(crate) fn record(state: RolloutState) -> RolloutRecord {
        RolloutRecord {
            id: "r".into(),
            artifact_id: "a".into(),
            kind: ArtifactKind::Firmware,
            state,
            reason: None,
            target: "{}".into(),
            waves: vec![100.0],
            current_wave: 0,
            wave_soak_s: 0,
            wave_gate: WaveGate::Auto,
            max_failure_ratio: 0.1,
            min_finished: 10,
            max_per_minute: None,
            max_in_flight: None,
            max_attempts: 1,
            device_timeout_s: 60,
            max_retries_total: None,
            retries_used: 0,
            health_window_s: 0,
            max_offline_ratio: None,
            pause_detail: None,
            gate_since: 1,
            wave_done_at: None,
            created_at: 1,
            updated_at: 1,
            version: 0,
            schedule: Schedule::default(),
            dynamic: false,
        }
    }

    #[test]
    fn pause_reasons_keep_their_stored_names() {
        let names: Vec<&str> = PauseReason::ALL.into_iter().map(PauseReason::as_str).collect();
        assert_eq!(names, ["operator", "wave_gate", "failure_threshold", "key_revoked", "health_gate"]);
        for reason in PauseReason::ALL {
            assert_eq!(PauseReason::parse(reason.as_str()), Some(reason));
            assert_eq!(serde_json::to_value(reason).unwrap(), reason.as_str());
        }
        assert_eq!(PauseReason::parse("bored"), None);
    }

    #[test]
    fn rollout_states_round_trip() {
        for state in RolloutState::ALL {
            assert_eq!(RolloutState::parse(state.as_str()), Some(state));
        }
        assert!(RolloutState::Paused.is_active() && !RolloutState::Cancelled.is_active());
        assert!(RolloutState::Scheduled.is_active() && !RolloutState::Scheduled.is_finished());
        assert_eq!(RolloutState::parse("scheduled"), Some(RolloutState::Scheduled));
    }

    #[test]
    fn failures_exclude_unreachable_timeouts() {
        assert!(is_failure(DeviceState::Failed, Some(Reason::DigestMismatch)));
        assert!(is_failure(DeviceState::Rejected, Some(Reason::Downgrade)));
        assert!(is_failure(DeviceState::RolledBack, None));
        assert!(is_failure(DeviceState::TimedOut, None));
        assert!(!is_failure(DeviceState::TimedOut, Some(Reason::Unreachable)));
        assert!(!is_failure(DeviceState::Succeeded, None));
        assert!(!is_failure(DeviceState::Cancelled, None));
    }
}
