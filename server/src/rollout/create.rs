//! Creating a rollout: check the request, resolve the artifact and the targets (ordered by
//! device id), refuse busy devices and revoked signers, assign waves, and record devices
//! already on the target as `succeeded`/`already_installed`.

use fleet_protocol::api::{PlannedWave, RolloutPlan};
use fleet_protocol::state::{DeviceState, Reason};
use fleet_protocol::{ArtifactKind, DeviceId, HardwareModel};

use super::error::RolloutError;
use super::model::Schedule;
use super::model::{EntryRecord, RolloutRecord};
use super::plan::{PlanError, RolloutRequest, Target, wave_ends, wave_of};
use super::signers::check_signers;
use crate::state::AppState;
use crate::store::{ArtifactRecord, DeviceFilter, DeviceRecord, PageRequest, StoreError};

/// What `POST /rollouts` produced.
#[derive(Debug)]
pub enum Created {
    DryRun(RolloutPlan),
    Rollout(Box<RolloutRecord>),
}

/// Checks and records a rollout (or, for a dry run, only says what it would do).
pub async fn create(app: &AppState, req: RolloutRequest, dry_run: bool) -> Result<Created, RolloutError> {
    req.check()?;
    let schedule =
        Schedule::parse(req.start_at.as_deref(), req.maintenance_window.as_ref()).map_err(PlanError::from)?;
    let (kind, artifact_id) = artifact_of(&req)?;
    let artifact = check_signers(app, kind, artifact_id).await?;
    let devices = resolve(app, &req.target).await?;
    if devices.is_empty() {
        return Err(PlanError::NoTargets.into());
    }
    let ids: Vec<String> = devices.iter().map(|d| d.id.to_string()).collect();
    let busy = app.store.busy_devices(&ids).await?;
    if !busy.is_empty() {
        return Err(RolloutError::DevicesBusy(busy));
    }
    let ends = wave_ends(&req.waves, devices.len());
    let now = app.store.now_ms().await?;
    let id = crate::new_id()?;
    let entries = entries(&id, &devices, &artifact, &ends, now);
    if dry_run {
        return Ok(Created::DryRun(dry_run_plan(&req.waves, &ends, &ids, &entries)));
    }
    let record = new_rollout(id, &artifact, &req, schedule, now)?;
    match app.store.create_rollout(&record, &entries).await {
        Ok(()) => Ok(Created::Rollout(Box::new(record))),
        // Another rollout claimed some of these devices meanwhile.
        Err(StoreError::Conflict) => Err(RolloutError::DevicesBusy(app.store.busy_devices(&ids).await?)),
        // Its artifact was deleted meanwhile.
        Err(StoreError::NotFound) => {
            Err(RolloutError::UnknownArtifact { kind: record.kind, id: record.artifact_id.clone() })
        }
        Err(e) => Err(e.into()),
    }
}

/// The artifact a checked request ships.
fn artifact_of(req: &RolloutRequest) -> Result<(ArtifactKind, &str), PlanError> {
    match (&req.firmware, &req.config) {
        (Some(f), None) => Ok((ArtifactKind::Firmware, f)),
        (None, Some(c)) => Ok((ArtifactKind::Config, c)),
        _ => Err(PlanError::Artifact),
    }
}

/// The target's devices, by id; each at most once.
async fn resolve(app: &AppState, target: &Target) -> Result<Vec<DeviceRecord>, RolloutError> {
    let mut devices = match target {
        Target::Devices { devices: ids } => listed_devices(app, ids).await?,
        Target::Query { hardware, labels } => {
            let filter = DeviceFilter {
                hardware: hardware
                    .as_deref()
                    .map(HardwareModel::parse)
                    .transpose()
                    .map_err(RolloutError::InvalidHardware)?,
                labels: labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
                trust_below: None,
            };
            matching_devices(app, &filter).await?
        }
    };
    devices.sort_by(|a, b| a.id.cmp(&b.id));
    if let Some(dup) = devices.windows(2).find(|w| w[0].id == w[1].id) {
        return Err(PlanError::Duplicate(dup[0].id.to_string()).into());
    }
    Ok(devices)
}

/// The devices a target lists by id; every one must exist.
async fn listed_devices(app: &AppState, ids: &[String]) -> Result<Vec<DeviceRecord>, RolloutError> {
    let (mut devices, mut unknown) = (Vec::new(), Vec::new());
    for raw in ids {
        let id = DeviceId::parse(raw.as_str()).map_err(RolloutError::InvalidDeviceId)?;
        match app.store.get_device(&id).await {
            Ok(d) => devices.push(d),
            Err(StoreError::NotFound) => unknown.push(raw.clone()),
            Err(e) => return Err(e.into()),
        }
    }
    if !unknown.is_empty() {
        return Err(RolloutError::UnknownDevices(unknown));
    }
    Ok(devices)
}

/// Every device the filter matches, page by page.
async fn matching_devices(app: &AppState, filter: &DeviceFilter) -> Result<Vec<DeviceRecord>, StoreError> {
    let mut devices = Vec::new();
    let mut page = PageRequest { limit: 1000, cursor: None };
    loop {
        let p = app.store.list_devices(filter, &page).await?;
        devices.extend(p.items);
        match p.next_cursor {
            Some(c) => page.cursor = Some(c),
            None => return Ok(devices),
        }
    }
}

fn already_installed(device: &DeviceRecord, artifact: &ArtifactRecord) -> bool {
    let installed = match artifact.kind {
        ArtifactKind::Firmware => device.firmware.as_ref(),
        ArtifactKind::Config => device.config.as_ref(),
    };
    let m = &artifact.manifest;
    installed.is_some_and(|i| i.name == m.name && i.version == m.version && i.sha256 == m.sha256)
}

/// One entry per device, in device-id order, in its wave; devices already on the
/// artifact are `succeeded` with `already_installed`, the rest `pending`.
fn entries(
    id: &str,
    devices: &[DeviceRecord],
    artifact: &ArtifactRecord,
    ends: &[usize],
    now: i64,
) -> Vec<EntryRecord> {
    devices
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let done = already_installed(d, artifact);
            let entry = EntryRecord::pending(id, d.id.as_str(), i as i64, wave_of(ends, i) as i64, now);
            match done {
                true => EntryRecord { state: DeviceState::Succeeded, reason: Some(Reason::AlreadyInstalled), ..entry },
                false => entry,
            }
        })
        .collect()
}

/// What a dry run answers: the targets, each wave's size, the devices already on the artifact.
fn dry_run_plan(waves: &[f64], ends: &[usize], ids: &[String], entries: &[EntryRecord]) -> RolloutPlan {
    let waves = waves
        .iter()
        .zip(ends)
        .scan(0, |prev, (p, end)| {
            let size = end - *prev;
            *prev = *end;
            Some(PlannedWave { percent: *p, size: size as u64 })
        })
        .collect();
    let already_installed =
        entries.iter().filter(|e| e.reason == Some(Reason::AlreadyInstalled)).map(|e| e.device_id.clone()).collect();
    RolloutPlan { targets: ids.to_vec(), waves, already_installed }
}

/// A new rollout of `artifact` with the request's options, at its first wave: running, or
/// scheduled until its `start_at`.
fn new_rollout(
    id: String,
    artifact: &ArtifactRecord,
    req: &RolloutRequest,
    schedule: Schedule,
    now: i64,
) -> Result<RolloutRecord, RolloutError> {
    Ok(RolloutRecord {
        id,
        artifact_id: artifact.id.clone(),
        kind: artifact.kind,
        state: schedule.initial_state(now),
        reason: None,
        target: serde_json::to_string(&req.target)?,
        waves: req.waves.clone(),
        current_wave: 0,
        wave_soak_s: req.wave_soak_s as i64,
        wave_gate: req.wave_gate,
        max_failure_ratio: req.max_failure_ratio,
        min_finished: req.min_finished as i64,
        max_per_minute: req.max_per_minute.map(|v| v as i64),
        max_in_flight: req.max_in_flight.map(|v| v as i64),
        max_attempts: req.max_attempts as i64,
        device_timeout_s: req.device_timeout_s as i64,
        max_retries_total: req.max_retries_total.map(|v| v as i64),
        retries_used: 0,
        health_window_s: req.health_window_s as i64,
        max_offline_ratio: req.max_offline_ratio,
        pause_detail: None,
        gate_since: now,
        wave_done_at: None,
        created_at: now,
        updated_at: now,
        version: 0,
        schedule,
        dynamic: req.dynamic,
    })
}
