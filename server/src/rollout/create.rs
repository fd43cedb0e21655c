//! Creating a rollout: check the request, resolve the artifact and the targets (ordered by
//! device id), refuse busy devices and revoked signers, assign waves, and record devices
//! already on the target as `succeeded`/`already_installed`.

use fleet_protocol::state::{DeviceState, Reason};
use fleet_protocol::{ArtifactKind, DeviceId, ErrorCode, HardwareModel};
use serde_json::{Value, json};

use super::plan::{RolloutRequest, Target, wave_ends, wave_of};
use crate::http::error::ApiError;
use crate::state::AppState;
use crate::store::rollouts::{EntryRecord, RolloutRecord, RolloutState};
use crate::store::{ArtifactRecord, DeviceFilter, DeviceRecord, PageRequest, StoreError};

/// What `POST /rollouts` produced.
#[derive(Debug)]
pub enum Created {
    DryRun(Value),
    Rollout(Box<RolloutRecord>),
}

/// 409 `key_revoked` unless enough non-revoked registered keys signed the artifact.
pub async fn check_signers(app: &AppState, kind: ArtifactKind, artifact_id: &str) -> Result<ArtifactRecord, ApiError> {
    let artifact = app.store.get_artifact(kind, artifact_id).await.map_err(|e| match e {
        StoreError::NotFound => ApiError::not_found(format!("{kind} {artifact_id}")),
        e => e.into(),
    })?;
    let active = app.store.active_keys().await?;
    let valid = artifact.signers.iter().filter(|s| active.iter().any(|k| &k.keyid == *s)).count();
    if valid < app.upload_threshold {
        return Err(ApiError::new(
            ErrorCode::KeyRevoked,
            format!("{kind} {artifact_id} has {valid} non-revoked signers; {} needed", app.upload_threshold),
        ));
    }
    Ok(artifact)
}

/// Pauses running rollouts whose artifact no longer has enough non-revoked signers.
pub async fn pause_unsigned(app: &AppState) -> Result<(), ApiError> {
    for mut r in app.store.live_rollouts().await? {
        if r.state != RolloutState::Running {
            continue;
        }
        if let Err(ApiError::Problem { code: ErrorCode::KeyRevoked, .. }) =
            check_signers(app, r.kind, &r.artifact_id).await
        {
            r.state = RolloutState::Paused;
            r.reason = Some("key_revoked".into());
            r.updated_at = crate::now_ms();
            app.store.update_rollout(&r).await?;
            tracing::warn!(rollout = %r.id, "paused: its artifact's signing keys were revoked");
        }
    }
    app.wake_engine();
    Ok(())
}

async fn resolve(app: &AppState, target: &Target) -> Result<Vec<DeviceRecord>, ApiError> {
    let mut devices = Vec::new();
    match target {
        Target::Devices { devices: ids } => {
            let mut unknown = Vec::new();
            for raw in ids {
                let id = DeviceId::parse(raw.as_str()).map_err(|e| ApiError::invalid_id("device id", e))?;
                match app.store.get_device(&id).await {
                    Ok(d) => devices.push(d),
                    Err(StoreError::NotFound) => unknown.push(raw.clone()),
                    Err(e) => return Err(e.into()),
                }
            }
            if !unknown.is_empty() {
                return Err(ApiError::bad_request(format!("unknown devices: {}", unknown.join(", "))));
            }
        }
        Target::Query { hardware, labels } => {
            let filter = DeviceFilter {
                hardware: hardware
                    .as_deref()
                    .map(HardwareModel::parse)
                    .transpose()
                    .map_err(|e| ApiError::invalid_id("hardware", e))?,
                labels: labels.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            };
            let mut page = PageRequest { limit: 1000, cursor: None };
            loop {
                let p = app.store.list_devices(&filter, &page).await?;
                devices.extend(p.items);
                match p.next_cursor {
                    Some(c) => page.cursor = Some(c),
                    None => break,
                }
            }
        }
    }
    devices.sort_by(|a, b| a.id.cmp(&b.id));
    if let Some(dup) = devices.windows(2).find(|w| w[0].id == w[1].id) {
        return Err(ApiError::bad_request(format!("target.devices lists {} more than once", dup[0].id)));
    }
    Ok(devices)
}

fn already_installed(device: &DeviceRecord, artifact: &ArtifactRecord) -> bool {
    let installed = match artifact.kind {
        ArtifactKind::Firmware => device.firmware.as_ref(),
        ArtifactKind::Config => device.config.as_ref(),
    };
    let m = &artifact.manifest;
    installed.is_some_and(|i| i.name == m.name && i.version == m.version && i.sha256 == m.sha256)
}

/// Checks and records a rollout (or, for a dry run, only says what it would do).
pub async fn create(app: &AppState, req: RolloutRequest, dry_run: bool) -> Result<Created, ApiError> {
    req.check().map_err(|e| ApiError::bad_request(e.to_string()))?;
    let (kind, artifact_id) = match (&req.firmware, &req.config) {
        (Some(f), _) => (ArtifactKind::Firmware, f.clone()),
        (_, Some(c)) => (ArtifactKind::Config, c.clone()),
        _ => unreachable!("checked"),
    };
    let artifact = check_signers(app, kind, &artifact_id).await?;
    let devices = resolve(app, &req.target).await?;
    if devices.is_empty() {
        return Err(ApiError::bad_request("the target selects no devices"));
    }
    let ids: Vec<String> = devices.iter().map(|d| d.id.to_string()).collect();
    let busy = app.store.busy_devices(&ids).await?;
    if !busy.is_empty() {
        return Err(ApiError::device_busy(&busy));
    }
    let ends = wave_ends(&req.waves, devices.len());
    let now = crate::now_ms();
    let id = crate::new_id()?;
    let entries: Vec<EntryRecord> = devices
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let done = already_installed(d, &artifact);
            EntryRecord {
                rollout_id: id.clone(),
                device_id: d.id.to_string(),
                position: i as i64,
                wave: wave_of(&ends, i) as i64,
                state: if done { DeviceState::Succeeded } else { DeviceState::Pending },
                reason: done.then_some(Reason::AlreadyInstalled),
                attempts: 0,
                reported: false,
                sent_at: None,
                retry_at: None,
                last_heard_at: None,
                updated_at: now,
            }
        })
        .collect();
    if dry_run {
        let waves: Vec<Value> = req
            .waves
            .iter()
            .zip(&ends)
            .scan(0, |prev, (p, end)| {
                let size = end - *prev;
                *prev = *end;
                Some(json!({"percent": p, "size": size}))
            })
            .collect();
        let already: Vec<&str> = entries
            .iter()
            .filter(|e| e.reason == Some(Reason::AlreadyInstalled))
            .map(|e| e.device_id.as_str())
            .collect();
        return Ok(Created::DryRun(json!({"targets": ids, "waves": waves, "already_installed": already})));
    }
    let record = RolloutRecord {
        id,
        artifact_id,
        kind,
        state: RolloutState::Running,
        reason: None,
        target: serde_json::to_string(&req.target).map_err(anyhow::Error::from)?,
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
        gate_since: now,
        wave_done_at: None,
        created_at: now,
        updated_at: now,
    };
    match app.store.create_rollout(&record, &entries).await {
        Ok(()) => Ok(Created::Rollout(Box::new(record))),
        // Another rollout claimed some of these devices meanwhile.
        Err(StoreError::Conflict) => Err(ApiError::device_busy(&app.store.busy_devices(&ids).await?)),
        Err(e) => Err(e.into()),
    }
}
