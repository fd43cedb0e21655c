//! The rollout body (CONTRACT §3), served by `GET /rollouts/{id}` and in every SSE event,
//! built as the shared `fleet_protocol::api` types.

use std::collections::BTreeMap;

use fleet_protocol::api::{
    Rollout, RolloutArtifact, RolloutDevice, RolloutOptions, WaveProgress, WaveState, WindowState,
};

use super::model::{EntryRecord, RolloutRecord, RolloutState};
use crate::artifact_cache::ArtifactCache;
use crate::store::{Store, StoreResult};
use crate::timestamp::rfc3339;

/// The full body of one rollout.
pub async fn rollout_body(store: &dyn Store, artifacts: &ArtifactCache, r: &RolloutRecord) -> StoreResult<Rollout> {
    let counts = store.rollout_counts(&r.id).await?;
    let artifact = artifacts.get(store, r.kind, &r.artifact_id).await.ok();
    let tally = Tally::of(r, &counts);
    let waves = r
        .waves
        .iter()
        .enumerate()
        .map(|(i, percent)| WaveProgress {
            percent: *percent,
            size: tally.sizes[i],
            state: wave_state(r, i, tally.unfinished[i]),
            counts: tally.per_wave[i].clone(),
        })
        .collect();
    Ok(Rollout {
        id: r.id.clone(),
        state: r.state.as_str().to_owned(),
        reason: r.reason.map(|p| p.as_str().to_owned()),
        artifact: artifact.map(|a| artifact_body(&a)),
        artifact_id: r.artifact_id.clone(),
        target: serde_json::from_str(&r.target).ok(),
        total: tally.sizes.iter().sum(),
        counts: tally.total,
        waves,
        current_wave: r.current_wave as u64,
        options: options(r),
        retries_used: r.retries_used as u64,
        pause_detail: r.pause_detail.clone(),
        health: tally.health,
        window: window_state(store, r).await?,
        created_at: rfc3339(r.created_at),
        updated_at: rfc3339(r.updated_at),
    })
}

/// Devices by state, overall and per wave, by health, and how many of each wave are not
/// settled (final and not watched).
struct Tally {
    total: BTreeMap<String, u64>,
    health: BTreeMap<String, u64>,
    per_wave: Vec<BTreeMap<String, u64>>,
    sizes: Vec<u64>,
    unfinished: Vec<u64>,
}

impl Tally {
    fn of(r: &RolloutRecord, counts: &[crate::store::rollouts::Count]) -> Self {
        let waves = r.waves.len();
        let mut tally = Self {
            total: BTreeMap::new(),
            health: BTreeMap::new(),
            per_wave: vec![BTreeMap::new(); waves],
            sizes: vec![0; waves],
            unfinished: vec![0; waves],
        };
        for c in counts {
            let n = c.n as u64;
            *tally.total.entry(c.state.as_str().to_owned()).or_default() += n;
            let w = (c.wave as usize).min(waves.saturating_sub(1));
            *tally.per_wave[w].entry(c.state.as_str().to_owned()).or_default() += n;
            tally.sizes[w] += n;
            if !c.is_settled() {
                tally.unfinished[w] += n;
            }
            if let Some(health) = c.health {
                *tally.health.entry(health.as_str().to_owned()).or_default() += n;
            }
        }
        tally
    }
}

/// Where wave `i` stands, given how many of its devices are not final yet.
fn wave_state(r: &RolloutRecord, i: usize, unfinished: u64) -> WaveState {
    let started = (i as i64) <= r.current_wave;
    if unfinished == 0 && started {
        WaveState::Completed
    } else if r.state == RolloutState::Cancelled {
        WaveState::Cancelled
    } else if !started || r.state == RolloutState::Scheduled {
        WaveState::Pending
    } else if r.state == RolloutState::Paused {
        WaveState::Paused
    } else {
        WaveState::Running
    }
}

fn artifact_body(a: &crate::store::ArtifactRecord) -> RolloutArtifact {
    RolloutArtifact {
        id: a.id.clone(),
        kind: a.kind,
        name: a.manifest.name.to_string(),
        version: a.manifest.version.to_string(),
    }
}

/// The request's options as recorded, defaults filled in.
fn options(r: &RolloutRecord) -> RolloutOptions {
    RolloutOptions {
        waves: r.waves.clone(),
        wave_soak_s: r.wave_soak_s as u64,
        wave_gate: r.wave_gate.as_str().to_owned(),
        max_failure_ratio: r.max_failure_ratio,
        min_finished: r.min_finished as u64,
        max_per_minute: r.max_per_minute.map(|v| v as u64),
        max_in_flight: r.max_in_flight.map(|v| v as u64),
        max_attempts: r.max_attempts as u64,
        device_timeout_s: r.device_timeout_s as u64,
        max_retries_total: r.max_retries_total.map(|v| v as u64),
        health_window_s: r.health_window_s as u64,
        max_offline_ratio: r.max_offline_ratio,
        start_at: r.schedule.start_at.map(rfc3339),
        maintenance_window: r.schedule.window.as_ref().map(|w| w.spec().clone()),
        dynamic: r.dynamic,
    }
}

/// Whether the rollout's maintenance window is open by the database's clock (the one the
/// engine judges by); `None` without a window (and then the clock is not read).
async fn window_state(store: &dyn Store, r: &RolloutRecord) -> StoreResult<Option<WindowState>> {
    if r.schedule.window.is_none() {
        return Ok(None);
    }
    Ok(r.schedule.window_state(store.now_ms().await?))
}

/// One entry of `GET /rollouts/{id}/devices`.
pub fn entry_body(e: &EntryRecord) -> RolloutDevice {
    RolloutDevice {
        device_id: e.device_id.clone(),
        state: e.state,
        reason: e.reason,
        attempts: e.attempts as u64,
        wave: e.wave as u64,
        sent_at: e.sent_at.map(rfc3339),
        updated_at: rfc3339(e.updated_at),
        retry_at: e.retry_at.map(rfc3339),
        health: e.health,
    }
}
