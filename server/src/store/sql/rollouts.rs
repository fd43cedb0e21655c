//! Rollouts, the leases replicas drive them under, and the database's clock.

use async_trait::async_trait;
use fleet_protocol::state::Health;

use super::SqlStore;
use super::db::{CHUNK, Db, RowExt as _, Sql};
use super::rows::{ACTIVE_ROLLOUT, FINISHED_ROLLOUT, HOLDS_ARTIFACT, UNFINISHED, corrupt, rollout_from_row};
use crate::rollout::model::{EntryRecord, PauseReason, RolloutRecord, RolloutState};
use crate::store::rollouts::{RolloutDeletion, RolloutStore};
use crate::store::{Page, PageRequest, StoreError, StoreResult};

/// Entries from which a new rollout has PostgreSQL renew the table's statistics at once.
const ANALYZE_FROM: usize = 1000;

impl<DB: Db> SqlStore<DB> {
    /// Whether any of these entries' devices is in an active rollout (inside `tx`).
    async fn any_busy(conn: &mut DB::Connection, entries: &[EntryRecord]) -> StoreResult<bool> {
        for chunk in entries.chunks(CHUNK) {
            let mut q = Sql::<DB>::new(format!(
                "SELECT 1 FROM rollout_devices rd JOIN rollouts r ON r.id = rd.rollout_id \
                 WHERE r.state IN {} AND rd.device_id IN ",
                ACTIVE_ROLLOUT.as_str()
            ));
            q.in_list(chunk.iter().map(|e| &e.device_id));
            q.push(" LIMIT 1");
            if q.fetch_optional(DB::on(&mut *conn)).await?.is_some() {
                return Ok(true);
            }
        }
        Ok(false)
    }

    async fn insert_entries(conn: &mut DB::Connection, entries: &[EntryRecord]) -> StoreResult<()> {
        for chunk in entries.chunks(CHUNK) {
            let mut q = Sql::<DB>::new(
                "INSERT INTO rollout_devices (rollout_id, device_id, position, wave, state, reason, attempts, updated_at) \
                 VALUES ",
            );
            q.tuples(chunk, |t, e| {
                t.bind(&e.rollout_id).bind(&e.device_id).bind(e.position).bind(e.wave).bind(e.state.as_str());
                t.bind(e.reason.map(|r| r.as_str())).bind(e.attempts).bind(e.updated_at);
            });
            q.execute(DB::on(&mut *conn)).await?;
        }
        Ok(())
    }
}

fn insert_rollout<DB: Db>(r: &RolloutRecord) -> StoreResult<Sql<DB>> {
    Ok(Sql::<DB>::new(
        "INSERT INTO rollouts (id, artifact_id, kind, state, reason, target, waves, current_wave, wave_soak_s, \
         wave_gate, max_failure_ratio, min_finished, max_per_minute, max_in_flight, max_attempts, \
         device_timeout_s, gate_since, wave_done_at, created_at, updated_at, version, max_retries_total, retries_used, \
         health_window_s, max_offline_ratio) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, \
         $24, $25)",
    )
    .arg(&r.id)
    .arg(&r.artifact_id)
    .arg(r.kind.as_str())
    .arg(r.state.as_str())
    .arg(r.reason.map(PauseReason::as_str))
    .arg(&r.target)
    .arg(serde_json::to_string(&r.waves).map_err(|e| corrupt("waves", e))?)
    .arg(r.current_wave)
    .arg(r.wave_soak_s)
    .arg(r.wave_gate.as_str())
    .arg(r.max_failure_ratio)
    .arg(r.min_finished)
    .arg(r.max_per_minute)
    .arg(r.max_in_flight)
    .arg(r.max_attempts)
    .arg(r.device_timeout_s)
    .arg(r.gate_since)
    .arg(r.wave_done_at)
    .arg(r.created_at)
    .arg(r.updated_at)
    .arg(r.version)
    .arg(r.max_retries_total)
    .arg(r.retries_used)
    .arg(r.health_window_s)
    .arg(r.max_offline_ratio))
}

#[async_trait]
impl<DB: Db> RolloutStore for SqlStore<DB> {
    async fn create_rollout(&self, r: &RolloutRecord, entries: &[EntryRecord]) -> StoreResult<()> {
        let mut tx = self.write.begin().await?;
        // The artifact is locked first, as its deletion does: a rollout and the deletion of
        // its artifact at the same instant cannot both succeed (the caller read the
        // artifact before this transaction began).
        if !super::artifacts::lock_artifact::<DB>(&mut tx, r.kind, &r.artifact_id).await? {
            return Err(StoreError::NotFound);
        }
        insert_rollout::<DB>(r)?.execute(DB::on(&mut *tx)).await?;
        super::schedule::write_schedule::<DB>(&mut tx, r).await?;
        // Checked again inside the transaction: another rollout may have claimed a device
        // since the caller looked.
        if Self::any_busy(&mut tx, entries).await? {
            return Err(StoreError::Conflict);
        }
        Self::insert_entries(&mut tx, entries).await?;
        tx.commit().await?;
        if DB::NAME == <sqlx::Postgres as sqlx::Database>::NAME && entries.len() >= ANALYZE_FROM {
            // PostgreSQL plans ingestion's and the engine's statements from the table's
            // statistics, which autovacuum renews only up to a minute after thousands of
            // entries arrived at once. Until then it looked each reported entry up through
            // the (rollout, state) index, reading every entry of the rollout in that state:
            // measured at 18,000 devices, 0.9 ms per entry and half of the rollout's time.
            if let Err(e) = Sql::<DB>::new("ANALYZE rollout_devices").execute(DB::pooled(&self.write)).await {
                tracing::warn!("analyzing the new rollout's entries: {e}");
            }
        }
        Ok(())
    }

    async fn get_rollout(&self, id: &str) -> StoreResult<RolloutRecord> {
        let row = Sql::<DB>::new("SELECT * FROM rollouts WHERE id = $1").arg(id).fetch_one(self.reader()).await?;
        rollout_from_row::<DB>(&row)
    }

    async fn list_rollouts(&self, page: &PageRequest) -> StoreResult<Page<RolloutRecord>> {
        self.page_of("rollouts", "id", page, rollout_from_row::<DB>, |r| r.id.clone()).await
    }

    async fn live_rollouts(&self) -> StoreResult<Vec<RolloutRecord>> {
        let rows = Sql::<DB>::new(format!(
            "SELECT * FROM rollouts r WHERE r.state IN {} OR (r.state = $1 AND EXISTS \
             (SELECT 1 FROM rollout_devices rd WHERE rd.rollout_id = r.id AND (rd.state IN {} OR rd.health = $2))) \
             ORDER BY id",
            ACTIVE_ROLLOUT.as_str(),
            UNFINISHED.as_str()
        ))
        .arg(RolloutState::Cancelled.as_str())
        .arg(Health::Watching.as_str())
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(rollout_from_row::<DB>).collect()
    }

    async fn update_rollout(&self, r: &RolloutRecord) -> StoreResult<bool> {
        let done = Sql::<DB>::new(
            "UPDATE rollouts SET state = $1, reason = $2, current_wave = $3, gate_since = $4, wave_done_at = $5, \
             updated_at = $6, version = version + 1, pause_detail = $9 WHERE id = $7 AND version = $8",
        )
        .arg(r.state.as_str())
        .arg(r.reason.map(PauseReason::as_str))
        .arg(r.current_wave)
        .arg(r.gate_since)
        .arg(r.wave_done_at)
        .arg(r.updated_at)
        .arg(&r.id)
        .arg(r.version)
        .arg(r.pause_detail.as_deref())
        .execute(self.writer())
        .await?;
        Ok(done == 1)
    }

    async fn delete_finished_rollout(&self, id: &str) -> StoreResult<RolloutDeletion> {
        // Entries go with it (`ON DELETE CASCADE` in both dialects).
        let done =
            Sql::<DB>::new(format!("DELETE FROM rollouts WHERE id = $1 AND state IN {}", FINISHED_ROLLOUT.as_str()))
                .arg(id)
                .execute(self.writer())
                .await?;
        if done == 1 {
            return Ok(RolloutDeletion::Deleted);
        }
        let row = Sql::<DB>::new("SELECT state FROM rollouts WHERE id = $1").arg(id).fetch_one(self.writer()).await?;
        let state: String = row.col("state")?;
        let state = RolloutState::parse(&state).ok_or_else(|| corrupt("rollout state", &state))?;
        Ok(RolloutDeletion::Unfinished(state))
    }

    async fn delete_expired_rollouts(&self, finished_before: i64) -> StoreResult<Vec<String>> {
        let rows = Sql::<DB>::new(format!(
            "DELETE FROM rollouts AS r WHERE r.state IN {} AND r.updated_at < $1 AND NOT {} RETURNING id",
            FINISHED_ROLLOUT.as_str(),
            HOLDS_ARTIFACT.as_str()
        ))
        .arg(finished_before)
        .fetch_all(self.writer())
        .await?;
        rows.iter().map(|r| Ok(r.col("id")?)).collect()
    }

    async fn rollouts_using(&self, artifact_id: &str) -> StoreResult<Vec<String>> {
        let rows = Sql::<DB>::new(format!(
            "SELECT r.id FROM rollouts r WHERE r.artifact_id = $1 AND {} ORDER BY r.id",
            HOLDS_ARTIFACT.as_str()
        ))
        .arg(artifact_id)
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(|r| Ok(r.col("id")?)).collect()
    }

    async fn lease_rollout(&self, id: &str, owner: &str, now: i64, until: i64) -> StoreResult<bool> {
        let done = Sql::<DB>::new(
            "UPDATE rollouts SET lease_owner = $1, lease_until = $2 WHERE id = $3 \
             AND (lease_owner IS NULL OR lease_owner = $1 OR lease_until < $4)",
        )
        .arg(owner)
        .arg(until)
        .arg(id)
        .arg(now)
        .execute(self.writer())
        .await?;
        Ok(done == 1)
    }

    async fn release_leases(&self, owner: &str) -> StoreResult<()> {
        Sql::<DB>::new("UPDATE rollouts SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = $1")
            .arg(owner)
            .execute(self.writer())
            .await?;
        Ok(())
    }

    async fn now_ms(&self) -> StoreResult<i64> {
        // A reader: the clock must not queue behind the single writer.
        let row = Sql::<DB>::new(self.now_sql).fetch_one(self.reader()).await?;
        Ok(row.col("now_ms")?)
    }
}
