//! Ingesting what devices report: a batch of status reports is loaded, judged by
//! [`crate::rollout::reports`] and written in one transaction, with one statement per 500
//! devices or entries for each step; presence likewise.

use std::collections::HashMap;

use async_trait::async_trait;
use fleet_protocol::DeviceId;

use super::SqlStore;
use super::db::{CHUNK, Db, RowExt as _, Sql};
use super::entries::{apply_changes, grant_retries};
use super::rows::{IN_FLIGHT, corrupt, entry_from_row, rollout_state_of};
use crate::rollout::model::{IncomingReport, ReportOutcome};
use crate::rollout::reports::{self, DeviceUpdate, Loaded, LoadedEntry, named_entries, reporting_devices};
use crate::rollout::rules::RolloutRules;
use crate::store::StoreResult;
use crate::store::rollouts::ReportStore;

/// What a batch's reports name, read inside its transaction.
async fn load<DB: Db>(conn: &mut DB::Connection, reports: &[IncomingReport]) -> StoreResult<Loaded> {
    let mut loaded = Loaded::default();
    let (devices, connecting) = reporting_devices(reports);
    for chunk in devices.chunks(CHUNK) {
        let mut q = Sql::<DB>::new("SELECT id, last_seq FROM devices WHERE id IN ");
        q.in_list(chunk);
        for row in q.fetch_all(DB::on(&mut *conn)).await? {
            loaded.last_seq.insert(row.col("id")?, row.col("last_seq")?);
        }
    }
    for chunk in named_entries(reports).chunks(CHUNK) {
        let mut q = Sql::<DB>::new("");
        select_named_entries(&mut q, chunk);
        for row in q.fetch_all(DB::on(&mut *conn)).await? {
            let e = loaded_entry::<DB>(&row)?;
            loaded.entries.insert((e.entry.rollout_id.clone(), e.entry.device_id.clone()), e);
        }
    }
    for chunk in connecting.chunks(CHUNK) {
        let mut q = Sql::<DB>::new(ENTRY_QUERY);
        q.push(&format!("WHERE rd.state IN {} AND rd.device_id IN ", IN_FLIGHT.as_str()));
        q.in_list(chunk);
        // Oldest rollout first, so each device's newest one is kept.
        q.push(" ORDER BY r.created_at");
        for row in q.fetch_all(DB::on(&mut *conn)).await? {
            let e = loaded_entry::<DB>(&row)?;
            let key = (e.entry.rollout_id.clone(), e.entry.device_id.clone());
            loaded.outstanding.insert(e.entry.device_id.clone(), key.clone());
            loaded.entries.entry(key).or_insert(e);
        }
    }
    Ok(loaded)
}

/// Entries with the rules of their rollouts.
const ENTRY_QUERY: &str = "SELECT rd.*, r.state AS rollout_state, r.max_attempts, r.health_window_s \
                           FROM rollout_devices rd JOIN rollouts r ON r.id = rd.rollout_id ";

/// Appends the query of the entries `pairs` of (rollout, device) name, each found by its
/// key: a join with the pairs as a `VALUES` list. `(rd.rollout_id, rd.device_id) IN ((…),
/// …)` read every entry instead (a table scan on SQLite, the whole rollout on PostgreSQL),
/// so each batch of reports cost the rollout's size (BENCHMARKS.md §10).
fn select_named_entries<DB: Db>(q: &mut Sql<DB>, pairs: &[(&str, &str)]) {
    q.push(ENTRY_QUERY).push("JOIN (VALUES ");
    q.tuples(pairs, |t, (rollout, device)| _ = t.bind(*rollout).bind(*device));
    q.push(") AS named ON rd.rollout_id = named.column1 AND rd.device_id = named.column2");
}

fn loaded_entry<DB: Db>(row: &DB::Row) -> StoreResult<LoadedEntry> {
    Ok(LoadedEntry {
        entry: entry_from_row::<DB>(row)?,
        rules: RolloutRules {
            state: rollout_state_of(&row.col::<String>("rollout_state")?)?,
            max_attempts: row.col("max_attempts")?,
            health_window_ms: row.col::<i64>("health_window_s")?.saturating_mul(1000),
        },
    })
}

/// Each device's last accepted report: its `seq` and what it runs; it is online.
async fn write_devices<DB: Db>(conn: &mut DB::Connection, devices: &[DeviceUpdate], now: i64) -> StoreResult<()> {
    for chunk in devices.chunks(CHUNK) {
        let mut q = Sql::<DB>::new("UPDATE devices SET last_seen = ");
        q.bind(now);
        q.push(
            ", online = TRUE, last_seq = v.column2, firmware_name = v.column3, firmware_version = v.column4, \
             firmware_sha256 = v.column5, config_name = v.column6, config_version = v.column7, \
             config_sha256 = v.column8, trust_version = v.column9 FROM (VALUES ",
        );
        q.tuples(chunk, |t, d| {
            t.bind(&d.id).bind(d.seq);
            for installed in [&d.firmware, &d.config] {
                t.bind(installed.as_ref().map(|i| i.name.to_string()));
                t.bind(installed.as_ref().map(|i| i.version.to_string()));
                t.bind(installed.as_ref().map(|i| i.sha256.to_hex()));
            }
            t.bind(d.trust_version);
        });
        q.push(") AS v WHERE devices.id = v.column1");
        q.execute(DB::on(&mut *conn)).await?;
    }
    Ok(())
}

#[async_trait]
impl<DB: Db> ReportStore for SqlStore<DB> {
    async fn apply_reports(&self, reports: &[IncomingReport], now: i64) -> StoreResult<Vec<ReportOutcome>> {
        let mut tx = self.write.begin().await?;
        let loaded = load::<DB>(&mut tx, reports).await?;
        let mut judged = reports::judge(loaded, reports, now);
        write_devices::<DB>(&mut tx, &judged.devices, now).await?;
        let applied = apply_changes::<DB>(&mut tx, &judged.changes, now, true).await?;
        grant_retries::<DB>(&mut tx, &judged.changes, &applied).await?;
        tx.commit().await?;
        reports::mark_raced(&mut judged.outcomes, reports, &applied);
        Ok(judged.outcomes)
    }

    async fn set_presence(&self, changes: &[(DeviceId, bool)], now: i64) -> StoreResult<()> {
        // The last word of each device counts.
        let last: HashMap<&str, bool> = changes.iter().map(|(device, online)| (device.as_str(), *online)).collect();
        let last: Vec<_> = last.into_iter().collect();
        let mut tx = self.write.begin().await?;
        for chunk in last.chunks(CHUNK) {
            let mut q = Sql::<DB>::new("UPDATE devices SET last_seen = ");
            q.bind(now).push(", online = v.column2 FROM (VALUES ");
            q.tuples(chunk, |t, (id, online)| _ = t.bind(*id).bind(*online));
            q.push(") AS v WHERE devices.id = v.column1");
            q.execute(DB::on(&mut *tx)).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn expire_presence(&self, silent_since: i64) -> StoreResult<Vec<DeviceId>> {
        let sql = "UPDATE devices SET online = FALSE WHERE online = TRUE AND (last_seen IS NULL OR last_seen < $1) \
                   RETURNING id";
        let rows = Sql::<DB>::new(sql).arg(silent_since).fetch_all(self.writer()).await?;
        rows.iter().map(|r| DeviceId::parse(r.col::<String>("id")?).map_err(|e| corrupt("device id", e))).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_batch_finds_the_entries_it_names_by_key_without_scanning_the_table() {
        let mut q = Sql::<sqlx::Sqlite>::new("EXPLAIN QUERY PLAN ");
        select_named_entries(&mut q, &[("r-1", "d-1"), ("r-1", "d-2")]);
        let plan = crate::store::sql::sqlite_plan(q).await;
        assert!(plan.iter().any(|step| step.starts_with("SEARCH rd USING INDEX")), "{plan:?}");
        assert!(!plan.iter().any(|step| step.starts_with("SCAN rd")), "{plan:?}");
    }
}
