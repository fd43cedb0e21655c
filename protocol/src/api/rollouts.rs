//! The rollout bodies of `/rollouts` (CONTRACT §3): the request `fleetctl` sends, the
//! dry run's plan, the rollout as the server shows it (also every SSE event and the answer
//! to pause, resume and cancel) and its per-device entries.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::schedule::{MaintenanceWindow, WindowState};
use crate::ArtifactKind;
use crate::state::{DeviceState, Health, Reason};

/// How a rollout chooses its devices: a list, or every device of a hardware model and labels.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(untagged)]
pub enum RolloutTarget {
    Devices {
        devices: Vec<String>,
    },
    Query {
        #[serde(default)]
        hardware: Option<String>,
        #[serde(default)]
        labels: BTreeMap<String, String>,
    },
}

/// `POST /rollouts` as a client sends it: options left out take the server's defaults.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CreateRollout {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub firmware: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<String>,
    pub target: RolloutTarget,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waves: Option<Vec<f64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wave_soak_s: Option<u64>,
    /// `auto` or `manual`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wave_gate: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_failure_ratio: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_finished: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_per_minute: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_in_flight: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_timeout_s: Option<u64>,
    /// Retries across the whole rollout; once used up, failures are final (none: unlimited).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_retries_total: Option<u64>,
    /// Watch each succeeded device this long before it counts as healthy (0: off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_window_s: Option<u64>,
    /// Of the current wave's succeeded devices, the share that may be offline in the window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_offline_ratio: Option<f64>,
    // Scheduling and dynamic targets (CONTRACT §7).
    /// RFC 3339: the rollout waits in state `scheduled` until then (none: it starts now).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_at: Option<String>,
    /// Outside this weekly window no new device is dispatched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintenance_window: Option<MaintenanceWindow>,
    /// Devices registered or relabelled later that match the hardware/labels target join
    /// the last wave.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub dynamic: bool,
}

/// `POST /rollouts?dry_run=true`: what the rollout would do; nothing is created.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RolloutPlan {
    /// The resolved targets, in device-id order.
    pub targets: Vec<String>,
    pub waves: Vec<PlannedWave>,
    /// Targets already on the artifact (recorded `succeeded` and sent nothing).
    pub already_installed: Vec<String>,
}

/// One wave of a plan: its cumulative percentage and how many devices it adds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PlannedWave {
    pub percent: f64,
    pub size: u64,
}

/// A rollout as `GET /rollouts/{id}` shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Rollout {
    pub id: String,
    /// `scheduled` (waiting for `start_at`), `running`, `paused`, `completed` or `cancelled`.
    pub state: String,
    /// Why it is paused: `operator`, `wave_gate`, `failure_threshold`, `key_revoked` or `health_gate`
    /// (with `pause_detail`).
    pub reason: Option<String>,
    /// Null when the artifact can no longer be read (e.g. deleted after the rollout finished).
    pub artifact: Option<RolloutArtifact>,
    /// The id of the artifact it installs (or installed), also once that artifact is deleted.
    #[serde(default)]
    pub artifact_id: String,
    /// The request's target, as given.
    pub target: Option<RolloutTarget>,
    /// Devices in the rollout.
    pub total: u64,
    /// Devices by state (states with none are left out).
    pub counts: BTreeMap<String, u64>,
    pub waves: Vec<WaveProgress>,
    /// The index of the wave being dispatched.
    pub current_wave: u64,
    pub options: RolloutOptions,
    /// Retries granted so far, across all its devices (see `max_retries_total`).
    #[serde(default)]
    pub retries_used: u64,
    /// While paused by a rule: which rule tripped, on which numbers and which devices.
    #[serde(default)]
    pub pause_detail: Option<String>,
    /// With a health window: succeeded devices by health (`watching`, `healthy`,
    /// `unhealthy`; none are left out).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub health: BTreeMap<String, u64>,
    /// With a maintenance window: whether it is open now (a running rollout dispatches no
    /// new device while it is `closed`); null without one.
    #[serde(default)]
    pub window: Option<WindowState>,
    pub created_at: String,
    pub updated_at: String,
}

/// The artifact a rollout installs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RolloutArtifact {
    pub id: String,
    pub kind: ArtifactKind,
    pub name: String,
    pub version: String,
}

/// Where one wave stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum WaveState {
    /// Not started yet.
    Pending,
    Running,
    Paused,
    /// Every device of the wave is final.
    Completed,
    Cancelled,
}

impl WaveState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Paused => "paused",
            Self::Completed => "completed",
            Self::Cancelled => "cancelled",
        }
    }
}

/// One wave of a rollout: its cumulative percentage, its devices and their states.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct WaveProgress {
    pub percent: f64,
    pub size: u64,
    pub state: WaveState,
    /// Devices of this wave by state.
    pub counts: BTreeMap<String, u64>,
}

/// The request's options, defaults filled in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RolloutOptions {
    pub waves: Vec<f64>,
    pub wave_soak_s: u64,
    /// `auto` or `manual`.
    pub wave_gate: String,
    pub max_failure_ratio: f64,
    pub min_finished: u64,
    pub max_per_minute: Option<u64>,
    pub max_in_flight: Option<u64>,
    pub max_attempts: u64,
    pub device_timeout_s: u64,
    /// Retries across the whole rollout; `null`: unlimited.
    #[serde(default)]
    pub max_retries_total: Option<u64>,
    /// How long each succeeded device is watched before it counts as healthy (0: off).
    #[serde(default)]
    pub health_window_s: u64,
    /// Of the current wave's succeeded devices, the share that may be offline in the
    /// window; `null`: none may.
    #[serde(default)]
    pub max_offline_ratio: Option<f64>,
    // Scheduling and dynamic targets (CONTRACT §7).
    /// RFC 3339 UTC, as recorded; `null`: started at creation.
    #[serde(default)]
    pub start_at: Option<String>,
    #[serde(default)]
    pub maintenance_window: Option<MaintenanceWindow>,
    #[serde(default)]
    pub dynamic: bool,
}

/// One device of a rollout (`GET /rollouts/{id}/devices`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RolloutDevice {
    pub device_id: String,
    pub state: DeviceState,
    pub reason: Option<Reason>,
    /// Attempts so far, the first included.
    pub attempts: u64,
    pub wave: u64,
    pub sent_at: Option<String>,
    pub updated_at: String,
    /// When a failed device is sent its next attempt.
    pub retry_at: Option<String>,
    /// After `succeeded`, while the rollout has a health window.
    #[serde(default)]
    pub health: Option<Health>,
}

#[cfg(test)]
mod tests {
    use serde::de::DeserializeOwned;
    use serde_json::{Value, json};

    use super::*;

    /// `body` parses as `T` and serializes back to exactly `body`.
    fn round_trips<T: Serialize + DeserializeOwned>(body: Value) -> T {
        let typed: T = serde_json::from_value(body.clone()).expect("parses");
        assert_eq!(serde_json::to_value(&typed).expect("serializes"), body);
        typed
    }

    #[test]
    fn targets_round_trip() {
        let list: RolloutTarget = round_trips(json!({"devices": ["dev-1", "dev-2"]}));
        assert_eq!(list, RolloutTarget::Devices { devices: vec!["dev-1".into(), "dev-2".into()] });
        round_trips::<RolloutTarget>(json!({"hardware": "rpi4", "labels": {"site": "berlin"}}));
        round_trips::<RolloutTarget>(json!({"hardware": null, "labels": {}}));
        let defaults: RolloutTarget = serde_json::from_value(json!({})).unwrap();
        assert_eq!(defaults, RolloutTarget::Query { hardware: None, labels: BTreeMap::new() });
    }

    #[test]
    fn a_create_request_leaves_out_what_is_not_set() {
        let minimal: CreateRollout = round_trips(json!({"firmware": "f1", "target": {"devices": ["dev-1"]}}));
        assert_eq!(minimal.waves, None);
        round_trips::<CreateRollout>(json!({
            "config": "c1", "target": {"hardware": "rpi4", "labels": {}}, "waves": [10.0, 100.0],
            "wave_soak_s": 5, "wave_gate": "manual", "max_failure_ratio": 0.2, "min_finished": 3,
            "max_per_minute": 60, "max_in_flight": 10, "max_attempts": 2, "device_timeout_s": 600,
            "max_retries_total": 5, "health_window_s": 300, "max_offline_ratio": 0.05,
        }));
        let scheduled: CreateRollout = round_trips(json!({
            "firmware": "f1", "target": {"hardware": "rpi4", "labels": {"site": "berlin"}},
            "start_at": "2026-01-01T02:00:00Z",
            "maintenance_window": {"days": "Mon-Fri", "start": "01:00", "end": "04:00", "time_zone": "Europe/Berlin"},
            "dynamic": true,
        }));
        assert!(scheduled.dynamic && scheduled.maintenance_window.is_some());
    }

    #[test]
    fn a_plan_round_trips() {
        round_trips::<RolloutPlan>(json!({
            "targets": ["dev-1", "dev-2"],
            "waves": [{"percent": 50.0, "size": 1}, {"percent": 100.0, "size": 1}],
            "already_installed": ["dev-2"],
        }));
    }

    #[test]
    fn a_rollout_round_trips_with_its_nulls() {
        let rollout: Rollout = round_trips(json!({
            "id": "r1", "state": "paused", "reason": "operator",
            "artifact": {"id": "f1", "kind": "firmware", "name": "gw", "version": "1.0.0"}, "artifact_id": "f1",
            "target": {"devices": ["dev-1"]}, "total": 1, "counts": {"pending": 1},
            "waves": [{"percent": 100.0, "size": 1, "state": "paused", "counts": {"pending": 1}}],
            "current_wave": 0,
            "options": {"waves": [100.0], "wave_soak_s": 0, "wave_gate": "auto", "max_failure_ratio": 0.1,
                "min_finished": 10, "max_per_minute": null, "max_in_flight": 4, "max_attempts": 1,
                "device_timeout_s": 3600, "max_retries_total": null, "health_window_s": 0,
                "max_offline_ratio": null, "start_at": null, "maintenance_window": null, "dynamic": false},
            "retries_used": 0, "pause_detail": null, "window": null,
            "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:01Z",
        }));
        assert_eq!(rollout.waves[0].state, WaveState::Paused);
        round_trips::<Rollout>(json!({
            "id": "r2", "state": "running", "reason": null, "artifact": null, "artifact_id": "f9", "target": null,
            "total": 0,
            "counts": {}, "waves": [], "current_wave": 0,
            "options": {"waves": [100.0], "wave_soak_s": 0, "wave_gate": "manual", "max_failure_ratio": 0.0,
                "min_finished": 1, "max_per_minute": 5, "max_in_flight": null, "max_attempts": 3,
                "device_timeout_s": 1, "max_retries_total": 2, "health_window_s": 600,
                "max_offline_ratio": 0.1, "start_at": null, "maintenance_window": null, "dynamic": false},
            "retries_used": 2, "pause_detail": "health gate: 1 of 1 unhealthy (dev-1: rolled_back)",
            "health": {"unhealthy": 1}, "window": null,
            "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
        }));
        let scheduled: Rollout = round_trips(json!({
            "id": "r3", "state": "scheduled", "reason": null, "artifact": null, "artifact_id": "f9",
            "target": {"hardware": "rpi4", "labels": {}}, "total": 1, "counts": {"pending": 1},
            "waves": [{"percent": 100.0, "size": 1, "state": "pending", "counts": {"pending": 1}}], "current_wave": 0,
            "options": {"waves": [100.0], "wave_soak_s": 0, "wave_gate": "auto", "max_failure_ratio": 0.1,
                "min_finished": 10, "max_per_minute": null, "max_in_flight": null, "max_attempts": 1,
                "device_timeout_s": 3600, "max_retries_total": null, "health_window_s": 0,
                "max_offline_ratio": null, "start_at": "2026-01-01T02:00:00Z",
                "maintenance_window": {"days": "Sat,Sun", "start": "22:00", "end": "02:00", "time_zone": "UTC"},
                "dynamic": true},
            "retries_used": 0, "pause_detail": null, "window": "closed",
            "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z",
        }));
        assert_eq!(scheduled.window, Some(WindowState::Closed));
    }

    #[test]
    fn wave_states_have_stable_names() {
        let names = ["pending", "running", "paused", "completed", "cancelled"];
        for name in names {
            assert_eq!(round_trips::<WaveState>(json!(name)).as_str(), name);
        }
    }

    #[test]
    fn a_device_entry_round_trips() {
        let entry: RolloutDevice = round_trips(json!({
            "device_id": "dev-1", "state": "failed", "reason": "digest_mismatch", "attempts": 1, "wave": 0,
            "sent_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:02Z",
            "retry_at": "2026-01-01T00:00:03Z", "health": null,
        }));
        assert_eq!((entry.state, entry.reason), (DeviceState::Failed, Some(Reason::DigestMismatch)));
        round_trips::<RolloutDevice>(json!({
            "device_id": "dev-2", "state": "pending", "reason": null, "attempts": 0, "wave": 1,
            "sent_at": null, "updated_at": "2026-01-01T00:00:00Z", "retry_at": null, "health": null,
        }));
        let watched: RolloutDevice = round_trips(json!({
            "device_id": "dev-3", "state": "succeeded", "reason": null, "attempts": 1, "wave": 0,
            "sent_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:09Z", "retry_at": null,
            "health": "watching",
        }));
        assert_eq!(watched.health, Some(Health::Watching));
    }
}
