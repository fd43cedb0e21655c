//! The rollout body (CONTRACT §3), served by `GET /rollouts/{id}` and in every SSE event.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::model::{EntryRecord, RolloutRecord, RolloutState};
use crate::artifact_cache::ArtifactCache;
use crate::store::{Store, StoreResult};
use crate::timestamp::rfc3339;

/// The full body of one rollout.
pub async fn rollout_body(store: &dyn Store, artifacts: &ArtifactCache, r: &RolloutRecord) -> StoreResult<Value> {
    let counts = store.rollout_counts(&r.id).await?;
    let artifact = artifacts.get(store, r.kind, &r.artifact_id).await.ok();
    let mut total: BTreeMap<&str, i64> = BTreeMap::new();
    let mut per_wave: Vec<BTreeMap<&str, i64>> = vec![BTreeMap::new(); r.waves.len()];
    let mut sizes = vec![0i64; r.waves.len()];
    let mut unfinished = vec![0i64; r.waves.len()];
    for c in &counts {
        *total.entry(c.state.as_str()).or_default() += c.n;
        let w = (c.wave as usize).min(r.waves.len().saturating_sub(1));
        *per_wave[w].entry(c.state.as_str()).or_default() += c.n;
        sizes[w] += c.n;
        if !c.state.is_final() {
            unfinished[w] += c.n;
        }
    }
    let waves: Vec<Value> = r
        .waves
        .iter()
        .enumerate()
        .map(|(i, percent)| {
            let state = if unfinished[i] == 0 && (i as i64) <= r.current_wave {
                "completed"
            } else if r.state == RolloutState::Cancelled {
                "cancelled"
            } else if (i as i64) > r.current_wave {
                "pending"
            } else if r.state == RolloutState::Paused {
                "paused"
            } else {
                "running"
            };
            json!({"percent": percent, "size": sizes[i], "state": state, "counts": per_wave[i]})
        })
        .collect();
    Ok(json!({
        "id": r.id,
        "state": r.state.as_str(),
        "reason": r.reason,
        "artifact": artifact.map(|a| json!({
            "id": a.id, "kind": a.kind.as_str(), "name": a.manifest.name, "version": a.manifest.version.to_string(),
        })),
        "target": serde_json::from_str::<Value>(&r.target).unwrap_or(Value::Null),
        "total": sizes.iter().sum::<i64>(),
        "counts": total,
        "waves": waves,
        "current_wave": r.current_wave,
        "options": {
            "waves": r.waves, "wave_soak_s": r.wave_soak_s, "wave_gate": r.wave_gate.as_str(),
            "max_failure_ratio": r.max_failure_ratio, "min_finished": r.min_finished,
            "max_per_minute": r.max_per_minute, "max_in_flight": r.max_in_flight,
            "max_attempts": r.max_attempts, "device_timeout_s": r.device_timeout_s,
        },
        "created_at": rfc3339(r.created_at),
        "updated_at": rfc3339(r.updated_at),
    }))
}

/// One entry of `GET /rollouts/{id}/devices`.
pub fn entry_body(e: &EntryRecord) -> Value {
    json!({
        "device_id": e.device_id,
        "state": e.state.as_str(),
        "reason": e.reason.map(|r| r.as_str()),
        "attempts": e.attempts,
        "wave": e.wave,
        "sent_at": e.sent_at.map(rfc3339),
        "updated_at": rfc3339(e.updated_at),
        "retry_at": e.retry_at.map(rfc3339),
    })
}
