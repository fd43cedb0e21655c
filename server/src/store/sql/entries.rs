//! The devices of rollouts: their entries, counts and compare-and-set changes.

use std::collections::{HashMap, HashSet};

use async_trait::async_trait;
use fleet_protocol::state::{DeviceState, Health, Reason};
use fleet_protocol::{ArtifactKind, DeviceId};

use super::SqlStore;
use super::db::{CHUNK, Db, RowExt as _, Sql};
use super::rows::{ACTIVE_ROLLOUT, IN_FLIGHT, corrupt, entry_from_row, health_of, kind_of, state_of};
use crate::rollout::model::{Count, EntryChange, EntryRecord, RolloutRecord, RolloutState};
use crate::store::rollouts::{CurrentCommand, EntrySelect, EntryStore};
use crate::store::{Page, PageRequest, StoreResult};

/// A rollout's counts by wave, state, reason and health, with how many changed since `$2`
/// and were sent after `$3`. Read at every engine step and for every rollout body, so it
/// must come from the `rollout_devices_tally` index alone (migration 0015), not from one
/// table row per entry.
const TALLIES: &str = "SELECT wave, state, reason, health, COUNT(*) AS n, \
                       SUM(CASE WHEN updated_at >= $2 THEN 1 ELSE 0 END) AS since, \
                       SUM(CASE WHEN sent_at > $3 THEN 1 ELSE 0 END) AS sent_recently \
                       FROM rollout_devices WHERE rollout_id = $1 GROUP BY wave, state, reason, health ORDER BY wave";
/// [`TALLIES`] without the recent ones (always 0 here).
const COUNTS: &str = "SELECT wave, state, reason, health, COUNT(*) AS n, CAST(0 AS BIGINT) AS since, \
                      CAST(0 AS BIGINT) AS sent_recently \
                      FROM rollout_devices WHERE rollout_id = $1 GROUP BY wave, state, reason, health ORDER BY wave";

/// Compare-and-set changes in bulk (one statement per 500): each entry changes only if it
/// is still in its `expect_state` with `expect_attempts`; `heard` also stamps
/// `last_heard_at`. Returns the (rollout, device) keys that changed. At most one change per
/// entry.
pub(super) async fn apply_changes<DB: Db>(
    conn: &mut DB::Connection,
    changes: &[EntryChange],
    now: i64,
    heard: bool,
) -> StoreResult<HashSet<(String, String)>> {
    let mut applied = HashSet::with_capacity(changes.len());
    for chunk in changes.chunks(CHUNK) {
        let mut q = Sql::<DB>::new(
            "UPDATE rollout_devices SET state = v.column3, reason = v.column4, attempts = v.column5, \
             reported = v.column6, sent_at = v.column7, retry_at = v.column8, health = v.column11, \
             watch_until = v.column12, updated_at = ",
        );
        q.bind(now);
        if heard {
            q.push(", last_heard_at = ").bind(now);
        }
        q.push(" FROM (VALUES ");
        q.tuples(chunk, |t, c| {
            t.bind(&c.rollout_id).bind(&c.device_id).bind(c.state.as_str()).bind(c.reason.map(Reason::as_str));
            t.bind(c.attempts).bind(c.reported).bind(c.sent_at).bind(c.retry_at);
            t.bind(c.expect_state.as_str()).bind(c.expect_attempts);
            t.bind(c.health.map(Health::as_str)).bind(c.watch_until);
        });
        q.push(
            ") AS v WHERE rollout_devices.rollout_id = v.column1 AND rollout_devices.device_id = v.column2 \
             AND rollout_devices.state = v.column9 AND rollout_devices.attempts = v.column10 \
             RETURNING rollout_devices.rollout_id AS rollout_id, rollout_devices.device_id AS device_id",
        );
        for row in q.fetch_all(DB::on(&mut *conn)).await? {
            applied.insert((row.col("rollout_id")?, row.col("device_id")?));
        }
    }
    Ok(applied)
}

/// Grants the retries among `applied` changes from their rollouts' budgets, in order; a
/// retry the budget no longer covers is written as the failure it replaced (final). One
/// conditional `UPDATE` of the rollout row per retry: on PostgreSQL it waits for a
/// concurrent writer of the same budget and re-checks after it, so the budget holds
/// across the engine, ingestion and replicas. Retries are rare, so one statement each is
/// cheap.
pub(super) async fn grant_retries<DB: Db>(
    conn: &mut DB::Connection,
    changes: &[EntryChange],
    applied: &HashSet<(String, String)>,
) -> StoreResult<()> {
    let retries = changes.iter().filter(|c| c.retry_of.is_some());
    for c in retries.filter(|c| applied.contains(&(c.rollout_id.clone(), c.device_id.clone()))) {
        let granted = Sql::<DB>::new(
            "UPDATE rollouts SET retries_used = retries_used + 1 WHERE id = $1 \
             AND (max_retries_total IS NULL OR retries_used < max_retries_total)",
        )
        .arg(&c.rollout_id)
        .execute(DB::on(&mut *conn))
        .await?;
        if let (0, Some(failure)) = (granted, c.retry_of) {
            Sql::<DB>::new(
                "UPDATE rollout_devices SET state = $1, retry_at = NULL WHERE rollout_id = $2 AND device_id = $3",
            )
            .arg(failure.as_str())
            .arg(&c.rollout_id)
            .arg(&c.device_id)
            .execute(DB::on(&mut *conn))
            .await?;
        }
    }
    Ok(())
}

/// The statement behind [`EntryStore::select_entries`].
fn select<DB: Db>(rollout_id: &str, select: EntrySelect) -> Sql<DB> {
    let mut q = Sql::<DB>::new("SELECT * FROM rollout_devices WHERE rollout_id = ");
    q.bind(rollout_id);
    let in_flight = format!(" AND state IN {}", IN_FLIGHT.as_str());
    match select {
        EntrySelect::InFlight => {
            q.push(&in_flight);
        }
        EntrySelect::InFlightSentBy(t) => {
            q.push(&in_flight).push(" AND sent_at <= ").bind(t);
        }
        EntrySelect::InFlightQuietSince(t) => {
            q.push(&in_flight).push(" AND (sent_at IS NULL OR sent_at <= ").bind(t);
            q.push(") AND (last_heard_at IS NULL OR last_heard_at <= ").bind(t).push(")");
        }
        EntrySelect::Pending => {
            q.push(" AND state = ").bind(DeviceState::Pending.as_str());
        }
        EntrySelect::CancelDue => {
            // The state narrows the index (rollout, state) to cancelled entries.
            q.push(" AND state = ").bind(DeviceState::Cancelled.as_str()).push(" AND cancel_due = ").bind(true);
        }
        EntrySelect::Due { wave, now, .. } => {
            q.push(" AND state = ").bind(DeviceState::Pending.as_str()).push(" AND wave <= ").bind(wave);
            q.push(" AND (retry_at IS NULL OR retry_at <= ").bind(now).push(")");
        }
        EntrySelect::Unhealthy { wave, since, .. } => {
            q.push(" AND health = ").bind(Health::Unhealthy.as_str()).push(" AND wave = ").bind(wave);
            q.push(" AND updated_at >= ").bind(since);
        }
    }
    q.push(" ORDER BY position");
    if let EntrySelect::Due { limit, .. } | EntrySelect::Unhealthy { limit, .. } = select {
        q.push(" LIMIT ").bind(limit);
    }
    q
}

fn count_from_row<DB: Db>(row: &DB::Row) -> StoreResult<Count> {
    Ok(Count {
        wave: row.col("wave")?,
        state: state_of(&row.col::<String>("state")?)?,
        reason: row.col::<Option<String>>("reason")?.as_deref().and_then(Reason::parse),
        health: health_of(row.col("health")?)?,
        n: row.col("n")?,
        since: row.col("since")?,
        sent_recently: row.col("sent_recently")?,
    })
}

#[async_trait]
impl<DB: Db> EntryStore for SqlStore<DB> {
    async fn busy_devices(&self, ids: &[String]) -> StoreResult<Vec<(String, String)>> {
        let mut out = Vec::new();
        for chunk in ids.chunks(CHUNK) {
            let mut q = Sql::<DB>::new(format!(
                "SELECT rd.device_id, rd.rollout_id FROM rollout_devices rd JOIN rollouts r ON r.id = rd.rollout_id \
                 WHERE r.state IN {} AND rd.device_id IN ",
                ACTIVE_ROLLOUT.as_str()
            ));
            q.in_list(chunk);
            for row in q.fetch_all(self.reader()).await? {
                out.push((row.col("device_id")?, row.col("rollout_id")?));
            }
        }
        Ok(out)
    }

    async fn tallies(&self, id: &str, since: i64, sent_after: i64) -> StoreResult<Vec<Count>> {
        let rows = Sql::<DB>::new(TALLIES).arg(id).arg(since).arg(sent_after).fetch_all(self.reader()).await?;
        rows.iter().map(count_from_row::<DB>).collect()
    }

    async fn rollout_counts(&self, id: &str) -> StoreResult<Vec<Count>> {
        let rows = Sql::<DB>::new(COUNTS).arg(id).fetch_all(self.reader()).await?;
        rows.iter().map(count_from_row::<DB>).collect()
    }

    async fn entries(&self, rollout_id: &str) -> StoreResult<Vec<EntryRecord>> {
        let rows = Sql::<DB>::new("SELECT * FROM rollout_devices WHERE rollout_id = $1 ORDER BY position")
            .arg(rollout_id)
            .fetch_all(self.reader())
            .await?;
        rows.iter().map(entry_from_row::<DB>).collect()
    }

    async fn entry(&self, rollout_id: &str, device: &DeviceId) -> StoreResult<EntryRecord> {
        let row = Sql::<DB>::new("SELECT * FROM rollout_devices WHERE rollout_id = $1 AND device_id = $2")
            .arg(rollout_id)
            .arg(device.as_str())
            .fetch_one(self.reader())
            .await?;
        entry_from_row::<DB>(&row)
    }

    async fn control_entry(&self, c: &EntryChange, cancel_due: bool, now: i64) -> StoreResult<bool> {
        let mut tx = self.write.begin().await?;
        let active = Sql::<DB>::new(format!(
            "UPDATE rollouts SET version = version + 1 WHERE id = $1 AND state IN {}",
            ACTIVE_ROLLOUT.as_str()
        ))
        .arg(&c.rollout_id)
        .execute(DB::on(&mut *tx))
        .await?;
        if active != 1 {
            return Ok(false);
        }
        let changed = Sql::<DB>::new(
            "UPDATE rollout_devices SET state = $1, reason = $2, attempts = $3, reported = $4, sent_at = $5, \
             retry_at = $6, cancel_due = $7, updated_at = $8, health = $13, watch_until = $14 \
             WHERE rollout_id = $9 AND device_id = $10 AND state = $11 AND attempts = $12",
        )
        .arg(c.state.as_str())
        .arg(c.reason.map(Reason::as_str))
        .arg(c.attempts)
        .arg(c.reported)
        .arg(c.sent_at)
        .arg(c.retry_at)
        .arg(cancel_due)
        .arg(now)
        .arg(&c.rollout_id)
        .arg(&c.device_id)
        .arg(c.expect_state.as_str())
        .arg(c.expect_attempts)
        .arg(c.health.map(Health::as_str))
        .arg(c.watch_until)
        .execute(DB::on(&mut *tx))
        .await?;
        if changed != 1 {
            return Ok(false);
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn watched_entries(&self, rollout_id: &str) -> StoreResult<Vec<(EntryRecord, bool)>> {
        let rows = Sql::<DB>::new(
            "SELECT rd.*, d.online AS device_online FROM rollout_devices rd JOIN devices d ON d.id = rd.device_id \
             WHERE rd.rollout_id = $1 AND rd.health = $2 ORDER BY rd.position",
        )
        .arg(rollout_id)
        .arg(Health::Watching.as_str())
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(|row| Ok((entry_from_row::<DB>(row)?, row.col("device_online")?))).collect()
    }

    async fn clear_cancel_due(&self, rollout_id: &str, device_id: &str) -> StoreResult<()> {
        Sql::<DB>::new("UPDATE rollout_devices SET cancel_due = $1 WHERE rollout_id = $2 AND device_id = $3")
            .arg(false)
            .arg(rollout_id)
            .arg(device_id)
            .execute(self.writer())
            .await?;
        Ok(())
    }

    async fn select_entries(&self, rollout_id: &str, which: EntrySelect) -> StoreResult<Vec<EntryRecord>> {
        let rows = select::<DB>(rollout_id, which).fetch_all(self.reader()).await?;
        rows.iter().map(entry_from_row::<DB>).collect()
    }

    async fn list_entries(
        &self,
        rollout_id: &str,
        state: Option<DeviceState>,
        page: &PageRequest,
    ) -> StoreResult<Page<EntryRecord>> {
        let rows = Sql::<DB>::new(
            "SELECT * FROM rollout_devices WHERE rollout_id = $1 AND ($2 IS NULL OR state = $2) AND device_id > $3 \
             ORDER BY device_id LIMIT $4",
        )
        .arg(rollout_id)
        .arg(state.map(DeviceState::as_str))
        .arg(page.cursor.as_deref().unwrap_or(""))
        .arg(i64::from(page.limit) + 1)
        .fetch_all(self.reader())
        .await?;
        let items = rows.iter().map(entry_from_row::<DB>).collect::<StoreResult<Vec<_>>>()?;
        Ok(Page::from_rows(items, page.limit, |e| e.device_id.clone()))
    }

    async fn change_entries(&self, changes: &[EntryChange], now: i64) -> StoreResult<Vec<EntryChange>> {
        let mut tx = self.write.begin().await?;
        let applied = apply_changes::<DB>(&mut tx, changes, now, false).await?;
        grant_retries::<DB>(&mut tx, changes, &applied).await?;
        tx.commit().await?;
        Ok(changes.iter().filter(|c| applied.contains(&(c.rollout_id.clone(), c.device_id.clone()))).cloned().collect())
    }

    async fn claim_entries(
        &self,
        rollout: &RolloutRecord,
        changes: &[EntryChange],
        now: i64,
    ) -> StoreResult<Vec<EntryChange>> {
        let mut tx = self.write.begin().await?;
        // An UPDATE rather than a SELECT: on PostgreSQL it locks the row until the claims
        // commit and re-reads it after a concurrent write, on both it counts the match.
        let current =
            Sql::<DB>::new("UPDATE rollouts SET version = version WHERE id = $1 AND version = $2 AND state = $3")
                .arg(&rollout.id)
                .arg(rollout.version)
                .arg(RolloutState::Running.as_str())
                .execute(DB::on(&mut *tx))
                .await?;
        if current != 1 {
            return Ok(vec![]);
        }
        let applied = apply_changes::<DB>(&mut tx, changes, now, false).await?;
        tx.commit().await?;
        Ok(changes.iter().filter(|c| applied.contains(&(c.rollout_id.clone(), c.device_id.clone()))).cloned().collect())
    }

    async fn current_command(&self, device: &DeviceId) -> StoreResult<Option<CurrentCommand>> {
        let row = Sql::<DB>::new(format!(
            "SELECT r.id, r.artifact_id, r.kind, r.state FROM rollout_devices rd JOIN rollouts r ON r.id = rd.rollout_id \
             WHERE rd.device_id = $1 AND rd.state IN {} AND r.state <> $2 ORDER BY r.created_at DESC LIMIT 1",
            IN_FLIGHT.as_str()
        ))
        .arg(device.as_str())
        .arg(RolloutState::Completed.as_str())
        .fetch_optional(self.reader())
        .await?;
        row.map(|row| {
            Ok(CurrentCommand {
                rollout_id: row.col("id")?,
                artifact_id: row.col("artifact_id")?,
                kind: kind_of(&row.col::<String>("kind")?)?,
                cancel: row.col::<String>("state")? == RolloutState::Cancelled.as_str(),
            })
        })
        .transpose()
    }

    async fn was_sent_artifact(&self, device: &DeviceId, kind: ArtifactKind, artifact_id: &str) -> StoreResult<bool> {
        let row = Sql::<DB>::new(
            "SELECT 1 AS sent FROM rollout_devices rd JOIN rollouts r ON r.id = rd.rollout_id \
             WHERE rd.device_id = $1 AND r.artifact_id = $2 AND r.kind = $3 AND rd.sent_at IS NOT NULL LIMIT 1",
        )
        .arg(device.as_str())
        .arg(artifact_id)
        .arg(kind.as_str())
        .fetch_optional(self.reader())
        .await?;
        Ok(row.is_some())
    }

    async fn device_rollouts(&self, devices: &[DeviceId]) -> StoreResult<HashMap<DeviceId, (String, DeviceState)>> {
        let mut found = HashMap::with_capacity(devices.len());
        for chunk in devices.chunks(CHUNK) {
            let mut q = Sql::<DB>::new(format!(
                "SELECT rd.device_id, rd.rollout_id, rd.state FROM rollout_devices rd JOIN rollouts r ON r.id = rd.rollout_id \
                 WHERE r.state IN {} AND rd.device_id IN ",
                ACTIVE_ROLLOUT.as_str()
            ));
            q.in_list(chunk.iter().map(DeviceId::as_str));
            // Oldest first: a device in two keeps the newest, inserted last.
            q.push(" ORDER BY r.created_at ASC");
            for row in q.fetch_all(self.reader()).await? {
                let device = DeviceId::parse(row.col::<String>("device_id")?).map_err(|e| corrupt("device id", e))?;
                found.insert(device, (row.col("rollout_id")?, state_of(&row.col::<String>("state")?)?));
            }
        }
        Ok(found)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_rollouts_counts_are_read_from_an_index_alone() {
        let tallies = Sql::<sqlx::Sqlite>::new(TALLIES).arg("r-1").arg(0).arg(0);
        for q in [tallies, Sql::new(COUNTS).arg("r-1")] {
            let plan = crate::store::sql::sqlite_plan(q.explained()).await;
            assert!(plan.iter().any(|step| step.contains("USING COVERING INDEX rollout_devices_tally")), "{plan:?}");
        }
    }

    #[tokio::test]
    async fn the_engine_finds_overdue_devices_by_their_send_time_not_among_all_in_flight() {
        let overdue = select::<sqlx::Sqlite>("r-1", EntrySelect::InFlightSentBy(1_000)).explained();
        let plan = crate::store::sql::sqlite_plan(overdue).await;
        let by_time = |step: &String| step.contains("USING INDEX rollout_devices_sent") && step.contains("sent_at<?");
        assert!(plan.iter().any(by_time), "{plan:?}");
    }
}
