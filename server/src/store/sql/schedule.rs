//! A rollout's schedule and dynamic flag (CONTRACT §7) in its row, and dynamic rollouts
//! taking in a device as it is registered or relabelled (the rule: `rollout::dynamic`).

use std::collections::BTreeMap;

use fleet_protocol::{DeviceId, HardwareModel};

use super::db::{Db, RowExt as _, Sql};
use super::rows::{ACTIVE_ROLLOUT, corrupt, rollout_from_row};
use crate::rollout::dynamic::{Candidate, joining_entry, rollout_to_join};
use crate::rollout::model::RolloutRecord;
use crate::store::StoreResult;

/// Writes a new rollout's schedule and dynamic flag (inside the transaction that inserts it).
pub(super) async fn write_schedule<DB: Db>(conn: &mut DB::Connection, r: &RolloutRecord) -> StoreResult<()> {
    let window = r.schedule.window.as_ref().map(|w| serde_json::to_string(w.spec())).transpose();
    Sql::<DB>::new("UPDATE rollouts SET start_at = $1, maintenance_window = $2, dynamic = $3 WHERE id = $4")
        .arg(r.schedule.start_at)
        .arg(window.map_err(|e| corrupt("maintenance_window", e))?)
        .arg(r.dynamic)
        .arg(&r.id)
        .execute(DB::on(&mut *conn))
        .await?;
    Ok(())
}

/// Adds a device just registered or relabelled to the oldest active dynamic rollout whose
/// target selects it, unless it is already in an active rollout; inside the caller's
/// transaction. The insert is idempotent (`ON CONFLICT DO NOTHING`), and it raises the
/// rollout's version only while the rollout is still active, so an engine step that judged
/// the rollout complete without the newcomer writes nothing and judges again. `now_sql`
/// reads the database's clock (only when a device joins). Returns the rollout joined.
pub(super) async fn join_dynamic<DB: Db>(
    conn: &mut DB::Connection,
    now_sql: &'static str,
    device: &DeviceId,
    hardware: &HardwareModel,
    labels: &BTreeMap<String, String>,
) -> StoreResult<Option<String>> {
    // Usually there is no dynamic rollout at all: one query, and done.
    let rows = Sql::<DB>::new(format!(
        "SELECT * FROM rollouts WHERE dynamic = $1 AND state IN {} ORDER BY created_at, id",
        ACTIVE_ROLLOUT.as_str()
    ))
    .arg(true)
    .fetch_all(DB::on(&mut *conn))
    .await?;
    let rollouts = rows.iter().map(rollout_from_row::<DB>).collect::<StoreResult<Vec<_>>>()?;
    let Some(r) = rollout_to_join(&rollouts, Candidate { hardware, labels }) else {
        return Ok(None);
    };
    if in_active_rollout::<DB>(conn, device).await? {
        return Ok(None);
    }
    let active = Sql::<DB>::new(format!(
        "UPDATE rollouts SET version = version + 1 WHERE id = $1 AND state IN {}",
        ACTIVE_ROLLOUT.as_str()
    ))
    .arg(&r.id)
    .execute(DB::on(&mut *conn))
    .await?;
    if active != 1 {
        return Ok(None);
    }
    let now = Sql::<DB>::new(now_sql).fetch_one(DB::on(&mut *conn)).await?.col("now_ms")?;
    insert_newcomer::<DB>(conn, r, device, now).await
}

/// Whether the device is in an active rollout already (a device is in at most one).
async fn in_active_rollout<DB: Db>(conn: &mut DB::Connection, device: &DeviceId) -> StoreResult<bool> {
    let busy = Sql::<DB>::new(format!(
        "SELECT 1 AS busy FROM rollout_devices rd JOIN rollouts r ON r.id = rd.rollout_id \
         WHERE rd.device_id = $1 AND r.state IN {} LIMIT 1",
        ACTIVE_ROLLOUT.as_str()
    ))
    .arg(device.as_str())
    .fetch_optional(DB::on(&mut *conn))
    .await?;
    Ok(busy.is_some())
}

/// The device's entry after every entry of `r`; `None` if it was already there.
async fn insert_newcomer<DB: Db>(
    conn: &mut DB::Connection,
    r: &RolloutRecord,
    device: &DeviceId,
    now: i64,
) -> StoreResult<Option<String>> {
    let next =
        Sql::<DB>::new("SELECT COALESCE(MAX(position), -1) + 1 AS position FROM rollout_devices WHERE rollout_id = $1")
            .arg(&r.id)
            .fetch_one(DB::on(&mut *conn))
            .await?;
    let e = joining_entry(r, device.as_str(), next.col("position")?, now);
    let inserted = Sql::<DB>::new(
        "INSERT INTO rollout_devices (rollout_id, device_id, position, wave, state, reason, attempts, updated_at) \
         VALUES ($1, $2, $3, $4, $5, NULL, $6, $7) ON CONFLICT (rollout_id, device_id) DO NOTHING",
    )
    .arg(&e.rollout_id)
    .arg(&e.device_id)
    .arg(e.position)
    .arg(e.wave)
    .arg(e.state.as_str())
    .arg(e.attempts)
    .arg(e.updated_at)
    .execute(DB::on(&mut *conn))
    .await?;
    if inserted != 1 {
        return Ok(None);
    }
    tracing::info!(rollout = %r.id, device = %device, "device joined the dynamic rollout");
    Ok(Some(r.id.clone()))
}
