//! Rollout storage: the interfaces, and the few types only the store has (what a query
//! selects, what it answers). The records themselves are the domain's
//! ([`crate::rollout::model`]), re-exported here for the store's callers.

use std::collections::HashMap;

use async_trait::async_trait;
use fleet_protocol::state::DeviceState;
use fleet_protocol::{ArtifactKind, DeviceId};

use super::{Page, PageRequest, StoreResult};
pub use crate::rollout::model::{
    Count, EntryChange, EntryRecord, IncomingReport, PauseReason, ReportOutcome, RolloutRecord, RolloutState,
};

/// The device's current command, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentCommand {
    pub rollout_id: String,
    pub artifact_id: String,
    pub kind: ArtifactKind,
    /// The rollout was cancelled: the command is a cancel.
    pub cancel: bool,
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
    /// Entries an operator cancelled in flight whose device has not been sent `cancel` yet.
    CancelDue,
    /// Pending entries of waves up to `wave` whose retry is due by `now`, in position
    /// order, at most `limit`.
    Due { wave: i64, now: i64, limit: i64 },
    /// Entries of `wave` found unhealthy at or after `since`, at most `limit` (the devices
    /// a health gate's pause names).
    Unhealthy { wave: i64, since: i64, limit: i64 },
}

/// What deleting a rollout did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RolloutDeletion {
    /// It was finished; it and its entries are gone.
    Deleted,
    /// It is still in this (unfinished) state; nothing was deleted.
    Unfinished(RolloutState),
}

/// Rollouts, their leases and the database's clock.
#[async_trait]
pub trait RolloutStore: Send + Sync {
    /// Inserts the rollout and its entries in one transaction; `Conflict` if one of its
    /// devices joined another active (scheduled, running or paused) rollout meanwhile.
    async fn create_rollout(&self, rollout: &RolloutRecord, entries: &[EntryRecord]) -> StoreResult<()>;
    async fn get_rollout(&self, id: &str) -> StoreResult<RolloutRecord>;
    async fn list_rollouts(&self, page: &PageRequest) -> StoreResult<Page<RolloutRecord>>;
    /// Rollouts the engine must look at: running, paused, or cancelled with devices pending
    /// or in flight.
    async fn live_rollouts(&self) -> StoreResult<Vec<RolloutRecord>>;
    /// Writes the rollout's state, reason, wave, gate and times only if the stored record
    /// is still at `rollout.version` (compare-and-set), raising the version by one; false
    /// when another write came first (the caller reads again and decides again).
    async fn update_rollout(&self, rollout: &RolloutRecord) -> StoreResult<bool>;
    /// Deletes the rollout and its entries, only if it is finished (`completed` or
    /// `cancelled`), in one statement; `NotFound` if there is no such rollout.
    async fn delete_finished_rollout(&self, id: &str) -> StoreResult<RolloutDeletion>;
    /// Deletes finished rollouts last changed before `finished_before` (ms, the database's
    /// clock), with their entries, except cancelled ones still winding down; their ids.
    async fn delete_expired_rollouts(&self, finished_before: i64) -> StoreResult<Vec<String>>;
    /// Rollouts that keep the artifact: running, paused, or cancelled while cancels are
    /// still being delivered (the engine still drives those).
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
    /// Devices among `ids` already in an active (scheduled, running or paused) rollout,
    /// with that rollout.
    async fn busy_devices(&self, ids: &[String]) -> StoreResult<Vec<(String, String)>>;
    /// Counts by wave, state and reason; each also counts entries changed at or after
    /// `since` and entries sent after `sent_after`. One aggregate query: the engine's view of
    /// a rollout at each step, whatever its size.
    async fn tallies(&self, id: &str, since: i64, sent_after: i64) -> StoreResult<Vec<Count>>;
    /// Counts by wave, state and reason ([`Self::tallies`] without the recent ones, which
    /// cost two more expressions per entry: about 40% of the read).
    async fn rollout_counts(&self, id: &str) -> StoreResult<Vec<Count>>;
    async fn entries(&self, rollout_id: &str) -> StoreResult<Vec<EntryRecord>>;
    /// One device's entry in a rollout; `NotFound` if the device is not in it.
    async fn entry(&self, rollout_id: &str, device: &DeviceId) -> StoreResult<EntryRecord>;
    /// An operator's change to one entry (`crate::rollout::device_control`), in one
    /// transaction: applied only while the rollout is active (scheduled, running, paused)
    /// and the entry is still as read (compare-and-set); it raises the rollout's version,
    /// so an engine step judging the rollout meanwhile judges again. `cancel_due` marks
    /// that the device must be sent `cancel`. False when either check failed (nothing written).
    async fn control_entry(&self, change: &EntryChange, cancel_due: bool, now: i64) -> StoreResult<bool>;
    /// The device was sent its `cancel` ([`EntrySelect::CancelDue`]).
    async fn clear_cancel_due(&self, rollout_id: &str, device_id: &str) -> StoreResult<()>;
    /// The entries still watched in their health window, each with whether its device is
    /// online now.
    async fn watched_entries(&self, rollout_id: &str) -> StoreResult<Vec<(EntryRecord, bool)>>;
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
    /// Claims for dispatch: [`Self::change_entries`], but only while `rollout` is stored
    /// running at the version the caller read, checked in the same transaction; else
    /// nothing is applied. A pause or cancel committed first stops every later claim.
    async fn claim_entries(
        &self,
        rollout: &RolloutRecord,
        changes: &[EntryChange],
        now: i64,
    ) -> StoreResult<Vec<EntryChange>>;
    async fn current_command(&self, device: &DeviceId) -> StoreResult<Option<CurrentCommand>>;
    /// Whether `device` was ever sent a command of a rollout of the `kind` artifact
    /// `artifact_id` (the artifacts a device token may download).
    async fn was_sent_artifact(&self, device: &DeviceId, kind: ArtifactKind, artifact_id: &str) -> StoreResult<bool>;
    /// The active rollout (and entry state) a device is in, for the inventory.
    async fn device_rollout(&self, device: &DeviceId) -> StoreResult<Option<(String, DeviceState)>> {
        let mut found = self.device_rollouts(std::slice::from_ref(device)).await?;
        Ok(found.remove(device))
    }
    /// [`EntryStore::device_rollout`] of each of `devices` that is in an active rollout.
    async fn device_rollouts(&self, devices: &[DeviceId]) -> StoreResult<HashMap<DeviceId, (String, DeviceState)>>;
}

/// What devices report: status reports and presence.
#[async_trait]
pub trait ReportStore: Send + Sync {
    /// Applies a batch of reports in one transaction: loads what they name, has
    /// [`crate::rollout::reports`] judge them, writes the result.
    async fn apply_reports(&self, reports: &[IncomingReport], now: i64) -> StoreResult<Vec<ReportOutcome>>;
    /// Presence changes, in arrival order (the last of a device wins), in one transaction.
    async fn set_presence(&self, changes: &[(DeviceId, bool)], now: i64) -> StoreResult<()>;
    /// Marks offline every device still `online` that was last heard from before
    /// `silent_since` (`crate::presence`); returns them.
    async fn expire_presence(&self, silent_since: i64) -> StoreResult<Vec<DeviceId>>;
}
