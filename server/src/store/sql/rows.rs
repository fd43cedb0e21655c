//! Rows to records, and the lists of states the SQL filters by, generated from the state
//! types so that no query spells them out.

use std::sync::LazyLock;

use fleet_protocol::ArtifactKind;
use fleet_protocol::api::MaintenanceWindow;
use fleet_protocol::state::{ALL_STATES, DeviceState, Health, Reason};

use super::db::{Db, RowExt as _};
use crate::rollout::model::{EntryRecord, PauseReason, RolloutRecord, RolloutState, Schedule, WaveGate};
use crate::rollout::window::Window;
use crate::store::{StoreError, StoreResult};

/// `('sent', 'downloading', …)`: the in-flight device states.
pub static IN_FLIGHT: LazyLock<String> =
    LazyLock::new(|| sql_list(ALL_STATES.into_iter().filter(|s| s.is_in_flight()).map(DeviceState::as_str)));

/// The final device states.
pub static FINAL: LazyLock<String> =
    LazyLock::new(|| sql_list(ALL_STATES.into_iter().filter(|s| s.is_final()).map(DeviceState::as_str)));

/// The device states a rollout still has work in: pending or in flight.
pub static UNFINISHED: LazyLock<String> = LazyLock::new(|| {
    sql_list(ALL_STATES.into_iter().filter(|s| *s == DeviceState::Pending || s.is_in_flight()).map(DeviceState::as_str))
});

/// The active rollout states (scheduled, running, paused): their devices can't join
/// another rollout.
pub static ACTIVE_ROLLOUT: LazyLock<String> =
    LazyLock::new(|| sql_list(RolloutState::ALL.into_iter().filter(|s| s.is_active()).map(RolloutState::as_str)));

/// The finished rollout states (completed, cancelled): such a rollout may be deleted.
pub static FINISHED_ROLLOUT: LazyLock<String> =
    LazyLock::new(|| sql_list(RolloutState::ALL.into_iter().filter(|s| s.is_finished()).map(RolloutState::as_str)));

/// A condition on rollouts `r`: the engine still drives it, so it keeps its artifact —
/// scheduled, running, paused, or cancelled while cancels are still being delivered to its
/// devices.
pub static HOLDS_ARTIFACT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "(r.state IN {} OR (r.state = '{}' AND EXISTS (SELECT 1 FROM rollout_devices rd \
         WHERE rd.rollout_id = r.id AND rd.state IN {})))",
        ACTIVE_ROLLOUT.as_str(),
        RolloutState::Cancelled.as_str(),
        UNFINISHED.as_str()
    )
});

/// `('a', 'b')` from names that are ours (state names: no quotes to escape).
fn sql_list<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let quoted: Vec<String> = names.map(|n| format!("'{n}'")).collect();
    format!("({})", quoted.join(", "))
}

pub fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {e}"))
}

pub fn kind_of(s: &str) -> StoreResult<ArtifactKind> {
    ArtifactKind::parse(s).ok_or_else(|| corrupt("kind", s))
}

pub fn state_of(s: &str) -> StoreResult<DeviceState> {
    DeviceState::parse(s).ok_or_else(|| corrupt("device state", s))
}

pub fn rollout_state_of(s: &str) -> StoreResult<RolloutState> {
    RolloutState::parse(s).ok_or_else(|| corrupt("rollout state", s))
}

/// A stored pause reason; an unknown name is corrupt data, not "no reason".
pub fn pause_reason_of(s: Option<String>) -> StoreResult<Option<PauseReason>> {
    s.map(|s| PauseReason::parse(&s).ok_or_else(|| corrupt("pause reason", s))).transpose()
}

/// A stored health; an unknown name is corrupt data.
pub fn health_of(s: Option<String>) -> StoreResult<Option<Health>> {
    s.map(|s| Health::parse(&s).ok_or_else(|| corrupt("health", s))).transpose()
}

fn reason_of(s: Option<String>) -> Option<Reason> {
    s.as_deref().and_then(Reason::parse)
}

pub fn rollout_from_row<DB: Db>(row: &DB::Row) -> StoreResult<RolloutRecord> {
    let waves: String = row.col("waves")?;
    let gate: String = row.col("wave_gate")?;
    Ok(RolloutRecord {
        id: row.col("id")?,
        artifact_id: row.col("artifact_id")?,
        kind: kind_of(&row.col::<String>("kind")?)?,
        state: rollout_state_of(&row.col::<String>("state")?)?,
        reason: pause_reason_of(row.col("reason")?)?,
        target: row.col("target")?,
        waves: serde_json::from_str(&waves).map_err(|e| corrupt("waves", e))?,
        current_wave: row.col("current_wave")?,
        wave_soak_s: row.col("wave_soak_s")?,
        wave_gate: WaveGate::parse(&gate),
        max_failure_ratio: row.col("max_failure_ratio")?,
        min_finished: row.col("min_finished")?,
        max_per_minute: row.col("max_per_minute")?,
        max_in_flight: row.col("max_in_flight")?,
        max_attempts: row.col("max_attempts")?,
        device_timeout_s: row.col("device_timeout_s")?,
        max_retries_total: row.col("max_retries_total")?,
        retries_used: row.col("retries_used")?,
        health_window_s: row.col("health_window_s")?,
        max_offline_ratio: row.col("max_offline_ratio")?,
        pause_detail: row.col("pause_detail")?,
        gate_since: row.col("gate_since")?,
        wave_done_at: row.col("wave_done_at")?,
        created_at: row.col("created_at")?,
        updated_at: row.col("updated_at")?,
        version: row.col("version")?,
        schedule: schedule_from_row::<DB>(row)?,
        dynamic: row.col("dynamic")?,
    })
}

/// The schedule stored in a rollout row: `start_at` (ms) and the window as the request's
/// JSON, parsed again (a window that no longer parses is corrupt data).
fn schedule_from_row<DB: Db>(row: &DB::Row) -> StoreResult<Schedule> {
    let window: Option<String> = row.col("maintenance_window")?;
    let window = window
        .map(|json| {
            let spec: MaintenanceWindow = serde_json::from_str(&json).map_err(|e| corrupt("maintenance_window", e))?;
            Window::parse(&spec).map_err(|e| corrupt("maintenance_window", e))
        })
        .transpose()?;
    Ok(Schedule { start_at: row.col("start_at")?, window })
}

pub fn entry_from_row<DB: Db>(row: &DB::Row) -> StoreResult<EntryRecord> {
    Ok(EntryRecord {
        rollout_id: row.col("rollout_id")?,
        device_id: row.col("device_id")?,
        position: row.col("position")?,
        wave: row.col("wave")?,
        state: state_of(&row.col::<String>("state")?)?,
        reason: reason_of(row.col("reason")?),
        attempts: row.col("attempts")?,
        reported: row.col("reported")?,
        sent_at: row.col("sent_at")?,
        retry_at: row.col("retry_at")?,
        last_heard_at: row.col("last_heard_at")?,
        updated_at: row.col("updated_at")?,
        health: health_of(row.col("health")?)?,
        watch_until: row.col("watch_until")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_lists_come_from_the_state_types() {
        assert_eq!(*IN_FLIGHT, "('sent', 'downloading', 'verifying', 'installing', 'rebooting')");
        assert_eq!(*FINAL, "('succeeded', 'failed', 'rejected', 'rolled_back', 'timed_out', 'cancelled')");
        assert_eq!(*UNFINISHED, "('pending', 'sent', 'downloading', 'verifying', 'installing', 'rebooting')");
        assert_eq!(*ACTIVE_ROLLOUT, "('scheduled', 'running', 'paused')");
        assert_eq!(*FINISHED_ROLLOUT, "('completed', 'cancelled')");
    }

    #[test]
    fn pause_reasons_load_by_name_and_an_unknown_one_is_corrupt() {
        assert_eq!(pause_reason_of(None).unwrap(), None);
        assert_eq!(pause_reason_of(Some("key_revoked".into())).unwrap(), Some(PauseReason::KeyRevoked));
        let e = pause_reason_of(Some("bored".into())).unwrap_err();
        assert!(matches!(&e, StoreError::Corrupt(m) if m == "pause reason: bored"), "{e}");
    }
}
