//! Rollout storage: the interface and its records.

use async_trait::async_trait;
use fleet_protocol::message::StatusReport;
use fleet_protocol::state::{DeviceState, Reason};
use fleet_protocol::{ArtifactKind, DeviceId};

use super::{Page, PageRequest, StoreResult};
use crate::rollout::plan::WaveGate;

/// A rollout's own state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RolloutState {
    Running,
    Paused,
    Completed,
    Cancelled,
}

impl RolloutState {
    /// Every rollout state.
    pub const ALL: [Self; 4] = [Self::Running, Self::Paused, Self::Completed, Self::Cancelled];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Completed => "completed",
            Self::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|x| x.as_str() == s)
    }

    /// Running or paused: its devices can't join another rollout.
    pub fn is_active(self) -> bool {
        matches!(self, Self::Running | Self::Paused)
    }
}

/// A rollout row.
#[derive(Debug, Clone, PartialEq)]
pub struct RolloutRecord {
    pub id: String,
    pub artifact_id: String,
    pub kind: ArtifactKind,
    pub state: RolloutState,
    pub reason: Option<String>,
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
    /// Only results updated at or after this count for the failure gate (resume re-arms).
    pub gate_since: i64,
    pub wave_done_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
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

/// The device's current command, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentCommand {
    pub rollout_id: String,
    pub artifact_id: String,
    pub kind: ArtifactKind,
    /// The rollout was cancelled: the command is a cancel.
    pub cancel: bool,
}

/// Per-wave, per-state counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Count {
    pub wave: i64,
    pub state: DeviceState,
    pub reason: Option<Reason>,
    pub n: i64,
    /// Of those, changed at or after the `since` given to [`RolloutStore::tallies`].
    pub since: i64,
    /// Of those, sent after the `sent_after` given to [`RolloutStore::tallies`].
    pub sent_recently: i64,
}

/// Which entries of a rollout the engine needs at one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntrySelect {
    /// Every entry in flight.
    InFlight,
    /// In flight and sent at or before this time (timeouts).
    InFlightSentBy(i64),
    /// In flight with neither a send nor a report after this time (silent devices).
    InFlightQuietSince(i64),
    /// Every pending entry.
    Pending,
    /// Pending entries of waves up to `wave` whose retry is due by `now`, in position
    /// order, at most `limit`.
    Due { wave: i64, now: i64, limit: i64 },
}

/// Rollouts, their leases and the database's clock.
#[async_trait]
pub trait RolloutStore: Send + Sync {
    /// Inserts the rollout and its entries in one transaction; `Conflict` if one of its
    /// devices joined another running or paused rollout meanwhile.
    async fn create_rollout(&self, rollout: &RolloutRecord, entries: &[EntryRecord]) -> StoreResult<()>;
    async fn get_rollout(&self, id: &str) -> StoreResult<RolloutRecord>;
    async fn list_rollouts(&self, page: &PageRequest) -> StoreResult<Page<RolloutRecord>>;
    /// Rollouts the engine must look at: running, paused, or cancelled with devices pending
    /// or in flight.
    async fn live_rollouts(&self) -> StoreResult<Vec<RolloutRecord>>;
    async fn update_rollout(&self, rollout: &RolloutRecord) -> StoreResult<()>;
    /// Running or paused rollouts that use the artifact.
    async fn rollouts_using(&self, artifact_id: &str) -> StoreResult<Vec<String>>;
    /// Takes or renews the lease on driving a rollout for `owner` until `until` (ms, the
    /// database's clock); false while another owner's lease runs.
    async fn lease_rollout(&self, id: &str, owner: &str, now: i64, until: i64) -> StoreResult<bool>;
    /// Gives up every lease `owner` holds (at a graceful stop).
    async fn release_leases(&self, owner: &str) -> StoreResult<()>;
    /// The database's clock (ms since the epoch): replicas judge timeouts by one clock.
    async fn now_ms(&self) -> StoreResult<i64>;
}

/// The devices of rollouts (entries).
#[async_trait]
pub trait EntryStore: Send + Sync {
    /// Devices among `ids` already in a running or paused rollout, with that rollout.
    async fn busy_devices(&self, ids: &[String]) -> StoreResult<Vec<(String, String)>>;
    /// Counts by wave, state and reason; each also counts entries changed at or after
    /// `since` and entries sent after `sent_after`. One aggregate query: the engine's view of
    /// a rollout at each step, whatever its size.
    async fn tallies(&self, id: &str, since: i64, sent_after: i64) -> StoreResult<Vec<Count>>;
    /// Counts by wave, state and reason.
    async fn rollout_counts(&self, id: &str) -> StoreResult<Vec<Count>> {
        self.tallies(id, i64::MAX, i64::MAX).await
    }
    async fn entries(&self, rollout_id: &str) -> StoreResult<Vec<EntryRecord>>;
    /// The entries the engine acts on at one step (see [`EntrySelect`]).
    async fn select_entries(&self, rollout_id: &str, select: EntrySelect) -> StoreResult<Vec<EntryRecord>>;
    async fn list_entries(
        &self,
        rollout_id: &str,
        state: Option<DeviceState>,
        page: &PageRequest,
    ) -> StoreResult<Page<EntryRecord>>;
    /// Applies compare-and-set changes in one transaction; returns those applied.
    async fn change_entries(&self, changes: &[EntryChange], now: i64) -> StoreResult<Vec<EntryChange>>;
    async fn current_command(&self, device: &DeviceId) -> StoreResult<Option<CurrentCommand>>;
    /// The active rollout (and entry state) a device is in, for the inventory.
    async fn device_rollout(&self, device: &DeviceId) -> StoreResult<Option<(String, DeviceState)>>;
}

/// What devices report: status reports and presence.
#[async_trait]
pub trait ReportStore: Send + Sync {
    /// Applies a batch of reports in one transaction: loads what they name, has
    /// [`crate::rollout::reports`] judge them, writes the result.
    async fn apply_reports(&self, reports: &[IncomingReport], now: i64) -> StoreResult<Vec<ReportOutcome>>;
    /// Presence changes, in arrival order (the last of a device wins), in one transaction.
    async fn set_presence(&self, changes: &[(DeviceId, bool)], now: i64) -> StoreResult<()>;
}
