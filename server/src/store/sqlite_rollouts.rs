//! [`RolloutStore`] for SQLite.

use std::collections::HashMap;

use async_trait::async_trait;
use fleet_protocol::state::{DeviceState, Reason};
use fleet_protocol::{ArtifactKind, DeviceId};
use sqlx::sqlite::SqliteRow;
use sqlx::{QueryBuilder, Row, Sqlite};

use super::rollouts::{
    Count, CurrentCommand, EntryChange, EntryRecord, IncomingReport, ReportOutcome, RolloutRecord, RolloutState,
    RolloutStore,
};
use super::sqlite::SqliteStore;
use super::{Page, PageRequest, StoreError, StoreResult};
use crate::rollout::plan::WaveGate;
use crate::rollout::rules::{Verdict, on_connect_elsewhere, on_report};

const IN_FLIGHT: &str = "('sent', 'downloading', 'verifying', 'installing', 'rebooting')";

fn corrupt(what: &str, v: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("{what}: {v}"))
}

fn rollout_from_row(row: &SqliteRow) -> StoreResult<RolloutRecord> {
    let kind: String = row.try_get("kind")?;
    let state: String = row.try_get("state")?;
    let waves: String = row.try_get("waves")?;
    let gate: String = row.try_get("wave_gate")?;
    Ok(RolloutRecord {
        id: row.try_get("id")?,
        artifact_id: row.try_get("artifact_id")?,
        kind: ArtifactKind::parse(&kind).ok_or_else(|| corrupt("kind", &kind))?,
        state: RolloutState::parse(&state).ok_or_else(|| corrupt("rollout state", &state))?,
        reason: row.try_get("reason")?,
        target: row.try_get("target")?,
        waves: serde_json::from_str(&waves).map_err(|e| corrupt("waves", e))?,
        current_wave: row.try_get("current_wave")?,
        wave_soak_s: row.try_get("wave_soak_s")?,
        wave_gate: WaveGate::parse(&gate),
        max_failure_ratio: row.try_get("max_failure_ratio")?,
        min_finished: row.try_get("min_finished")?,
        max_per_minute: row.try_get("max_per_minute")?,
        max_in_flight: row.try_get("max_in_flight")?,
        max_attempts: row.try_get("max_attempts")?,
        device_timeout_s: row.try_get("device_timeout_s")?,
        gate_since: row.try_get("gate_since")?,
        wave_done_at: row.try_get("wave_done_at")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn state_of(s: &str) -> StoreResult<DeviceState> {
    DeviceState::parse(s).ok_or_else(|| corrupt("device state", s))
}

fn reason_of(s: Option<String>) -> Option<Reason> {
    s.as_deref().and_then(Reason::parse)
}

fn entry_from_row(row: &SqliteRow) -> StoreResult<EntryRecord> {
    let state: String = row.try_get("state")?;
    Ok(EntryRecord {
        rollout_id: row.try_get("rollout_id")?,
        device_id: row.try_get("device_id")?,
        position: row.try_get("position")?,
        wave: row.try_get("wave")?,
        state: state_of(&state)?,
        reason: reason_of(row.try_get("reason")?),
        attempts: row.try_get("attempts")?,
        reported: row.try_get("reported")?,
        sent_at: row.try_get("sent_at")?,
        retry_at: row.try_get("retry_at")?,
        last_heard_at: row.try_get("last_heard_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

async fn apply_change(
    tx: &mut sqlx::Transaction<'_, Sqlite>,
    c: &EntryChange,
    now: i64,
    heard: bool,
) -> StoreResult<bool> {
    let done = sqlx::query(
        "UPDATE rollout_devices SET state = $1, reason = $2, attempts = $3, reported = $4, sent_at = $5, \
         retry_at = $6, updated_at = $7, last_heard_at = CASE WHEN $8 THEN $7 ELSE last_heard_at END \
         WHERE rollout_id = $9 AND device_id = $10 AND state = $11 AND attempts = $12",
    )
    .bind(c.state.as_str())
    .bind(c.reason.map(Reason::as_str))
    .bind(c.attempts)
    .bind(c.reported)
    .bind(c.sent_at)
    .bind(c.retry_at)
    .bind(now)
    .bind(heard)
    .bind(&c.rollout_id)
    .bind(&c.device_id)
    .bind(c.expect_state.as_str())
    .bind(c.expect_attempts)
    .execute(&mut **tx)
    .await?;
    Ok(done.rows_affected() == 1)
}

#[async_trait]
impl RolloutStore for SqliteStore {
    async fn create_rollout(&self, r: &RolloutRecord, entries: &[EntryRecord]) -> StoreResult<()> {
        let mut tx = self.write.begin().await?;
        sqlx::query(
            "INSERT INTO rollouts (id, artifact_id, kind, state, reason, target, waves, current_wave, wave_soak_s, \
             wave_gate, max_failure_ratio, min_finished, max_per_minute, max_in_flight, max_attempts, \
             device_timeout_s, gate_since, wave_done_at, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20)",
        )
        .bind(&r.id)
        .bind(&r.artifact_id)
        .bind(r.kind.as_str())
        .bind(r.state.as_str())
        .bind(&r.reason)
        .bind(&r.target)
        .bind(serde_json::to_string(&r.waves).map_err(|e| corrupt("waves", e))?)
        .bind(r.current_wave)
        .bind(r.wave_soak_s)
        .bind(r.wave_gate.as_str())
        .bind(r.max_failure_ratio)
        .bind(r.min_finished)
        .bind(r.max_per_minute)
        .bind(r.max_in_flight)
        .bind(r.max_attempts)
        .bind(r.device_timeout_s)
        .bind(r.gate_since)
        .bind(r.wave_done_at)
        .bind(r.created_at)
        .bind(r.updated_at)
        .execute(&mut *tx)
        .await?;
        // Checked again inside the transaction: another rollout may have claimed a device
        // since the caller looked.
        for chunk in entries.chunks(500) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "SELECT 1 FROM rollout_devices rd JOIN rollouts r ON r.id = rd.rollout_id \
                 WHERE r.state IN ('running', 'paused') AND rd.device_id IN (",
            );
            let mut sep = q.separated(", ");
            for e in chunk {
                sep.push_bind(&e.device_id);
            }
            q.push(") LIMIT 1");
            if q.build().fetch_optional(&mut *tx).await?.is_some() {
                return Err(StoreError::Conflict);
            }
        }
        for chunk in entries.chunks(500) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "INSERT INTO rollout_devices (rollout_id, device_id, position, wave, state, reason, attempts, updated_at) ",
            );
            q.push_values(chunk, |mut b, e| {
                b.push_bind(&e.rollout_id)
                    .push_bind(&e.device_id)
                    .push_bind(e.position)
                    .push_bind(e.wave)
                    .push_bind(e.state.as_str())
                    .push_bind(e.reason.map(Reason::as_str))
                    .push_bind(e.attempts)
                    .push_bind(e.updated_at);
            });
            q.build().execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn busy_devices(&self, ids: &[String]) -> StoreResult<Vec<(String, String)>> {
        let mut out = Vec::new();
        for chunk in ids.chunks(500) {
            let mut q = QueryBuilder::<Sqlite>::new(
                "SELECT rd.device_id, rd.rollout_id FROM rollout_devices rd JOIN rollouts r ON r.id = rd.rollout_id \
                 WHERE r.state IN ('running', 'paused') AND rd.device_id IN (",
            );
            let mut sep = q.separated(", ");
            for id in chunk {
                sep.push_bind(id);
            }
            q.push(")");
            for row in q.build().fetch_all(&self.read).await? {
                out.push((row.try_get("device_id")?, row.try_get("rollout_id")?));
            }
        }
        Ok(out)
    }

    async fn get_rollout(&self, id: &str) -> StoreResult<RolloutRecord> {
        let row = sqlx::query("SELECT * FROM rollouts WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.read)
            .await?
            .ok_or(StoreError::NotFound)?;
        rollout_from_row(&row)
    }

    async fn list_rollouts(&self, page: &PageRequest) -> StoreResult<Page<RolloutRecord>> {
        let rows = sqlx::query("SELECT * FROM rollouts WHERE id > $1 ORDER BY id LIMIT $2")
            .bind(page.cursor.as_deref().unwrap_or(""))
            .bind(i64::from(page.limit) + 1)
            .fetch_all(&self.read)
            .await?;
        let items = rows.iter().map(rollout_from_row).collect::<StoreResult<Vec<_>>>()?;
        Ok(Page::from_rows(items, page.limit, |r| r.id.clone()))
    }

    async fn live_rollouts(&self) -> StoreResult<Vec<RolloutRecord>> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT * FROM rollouts r WHERE r.state IN ('running', 'paused') OR (r.state = 'cancelled' AND EXISTS \
             (SELECT 1 FROM rollout_devices rd WHERE rd.rollout_id = r.id AND (rd.state = 'pending' OR rd.state IN {IN_FLIGHT}))) \
             ORDER BY id"
        )))
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(rollout_from_row).collect()
    }

    async fn update_rollout(&self, r: &RolloutRecord) -> StoreResult<()> {
        sqlx::query(
            "UPDATE rollouts SET state = $1, reason = $2, current_wave = $3, gate_since = $4, wave_done_at = $5, \
             updated_at = $6 WHERE id = $7",
        )
        .bind(r.state.as_str())
        .bind(&r.reason)
        .bind(r.current_wave)
        .bind(r.gate_since)
        .bind(r.wave_done_at)
        .bind(r.updated_at)
        .bind(&r.id)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    async fn rollout_counts(&self, id: &str) -> StoreResult<Vec<Count>> {
        let rows = sqlx::query(
            "SELECT wave, state, reason, COUNT(*) AS n FROM rollout_devices WHERE rollout_id = $1 \
             GROUP BY wave, state, reason ORDER BY wave",
        )
        .bind(id)
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|row| {
                let state: String = row.try_get("state")?;
                Ok(Count {
                    wave: row.try_get("wave")?,
                    state: state_of(&state)?,
                    reason: reason_of(row.try_get("reason")?),
                    n: row.try_get("n")?,
                })
            })
            .collect()
    }

    async fn entries(&self, rollout_id: &str) -> StoreResult<Vec<EntryRecord>> {
        let rows = sqlx::query("SELECT * FROM rollout_devices WHERE rollout_id = $1 ORDER BY position")
            .bind(rollout_id)
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(entry_from_row).collect()
    }

    async fn list_entries(
        &self,
        rollout_id: &str,
        state: Option<DeviceState>,
        page: &PageRequest,
    ) -> StoreResult<Page<EntryRecord>> {
        let rows = sqlx::query(
            "SELECT * FROM rollout_devices WHERE rollout_id = $1 AND ($2 IS NULL OR state = $2) AND device_id > $3 \
             ORDER BY device_id LIMIT $4",
        )
        .bind(rollout_id)
        .bind(state.map(DeviceState::as_str))
        .bind(page.cursor.as_deref().unwrap_or(""))
        .bind(i64::from(page.limit) + 1)
        .fetch_all(&self.read)
        .await?;
        let items = rows.iter().map(entry_from_row).collect::<StoreResult<Vec<_>>>()?;
        Ok(Page::from_rows(items, page.limit, |e| e.device_id.clone()))
    }

    async fn change_entries(&self, changes: &[EntryChange], now: i64) -> StoreResult<Vec<EntryChange>> {
        let mut tx = self.write.begin().await?;
        let mut applied = Vec::new();
        for c in changes {
            if apply_change(&mut tx, c, now, false).await? {
                applied.push(c.clone());
            }
        }
        tx.commit().await?;
        Ok(applied)
    }

    async fn apply_reports(&self, reports: &[IncomingReport], now: i64) -> StoreResult<Vec<ReportOutcome>> {
        let mut tx = self.write.begin().await?;
        let mut outcomes = Vec::with_capacity(reports.len());
        // Within one batch a device's later report must see its earlier one.
        let mut last_seq: HashMap<String, Option<i64>> = HashMap::new();
        for incoming in reports {
            let id = incoming.device.as_str();
            let r = &incoming.report;
            let seq = match last_seq.get(id) {
                Some(s) => *s,
                None => {
                    let row = sqlx::query("SELECT last_seq FROM devices WHERE id = $1")
                        .bind(id)
                        .fetch_optional(&mut *tx)
                        .await?;
                    let Some(row) = row else {
                        outcomes.push(ReportOutcome::Ignored("unknown_device"));
                        continue;
                    };
                    row.try_get("last_seq")?
                }
            };
            let Ok(new_seq) = i64::try_from(r.seq) else {
                outcomes.push(ReportOutcome::Ignored("bad_seq"));
                continue;
            };
            if seq.is_some_and(|s| new_seq <= s) {
                outcomes.push(ReportOutcome::Ignored("stale_seq"));
                continue;
            }
            last_seq.insert(id.to_owned(), Some(new_seq));
            let (fw, cfg) = (r.firmware.as_ref(), r.config.as_ref());
            sqlx::query(
                "UPDATE devices SET last_seq = $1, last_seen = $2, online = TRUE, \
                 firmware_name = $3, firmware_version = $4, firmware_sha256 = $5, \
                 config_name = $6, config_version = $7, config_sha256 = $8 WHERE id = $9",
            )
            .bind(new_seq)
            .bind(now)
            .bind(fw.map(|i| i.name.to_string()))
            .bind(fw.map(|i| i.version.to_string()))
            .bind(fw.map(|i| i.sha256.to_hex()))
            .bind(cfg.map(|i| i.name.to_string()))
            .bind(cfg.map(|i| i.version.to_string()))
            .bind(cfg.map(|i| i.sha256.to_hex()))
            .bind(id)
            .execute(&mut *tx)
            .await?;
            outcomes.push(self.apply_to_entry(&mut tx, incoming, now).await?);
        }
        tx.commit().await?;
        Ok(outcomes)
    }

    async fn set_presence(&self, device: &DeviceId, online: bool, now: i64) -> StoreResult<()> {
        sqlx::query("UPDATE devices SET online = $1, last_seen = $2 WHERE id = $3")
            .bind(online)
            .bind(now)
            .bind(device.as_str())
            .execute(&self.write)
            .await?;
        Ok(())
    }

    async fn current_command(&self, device: &DeviceId) -> StoreResult<Option<CurrentCommand>> {
        let row = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT r.id, r.artifact_id, r.kind, r.state FROM rollout_devices rd JOIN rollouts r ON r.id = rd.rollout_id \
             WHERE rd.device_id = $1 AND rd.state IN {IN_FLIGHT} AND r.state IN ('running', 'paused', 'cancelled') \
             ORDER BY r.created_at DESC LIMIT 1"
        )))
        .bind(device.as_str())
        .fetch_optional(&self.read)
        .await?;
        row.map(|row| {
            let kind: String = row.try_get("kind")?;
            let state: String = row.try_get("state")?;
            Ok(CurrentCommand {
                rollout_id: row.try_get("id")?,
                artifact_id: row.try_get("artifact_id")?,
                kind: ArtifactKind::parse(&kind).ok_or_else(|| corrupt("kind", &kind))?,
                cancel: state == "cancelled",
            })
        })
        .transpose()
    }

    async fn rollouts_using(&self, artifact_id: &str) -> StoreResult<Vec<String>> {
        let rows = sqlx::query("SELECT id FROM rollouts WHERE artifact_id = $1 AND state IN ('running', 'paused')")
            .bind(artifact_id)
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(|r| Ok(r.try_get("id")?)).collect()
    }

    async fn device_rollout(&self, device: &DeviceId) -> StoreResult<Option<(String, DeviceState)>> {
        let row = sqlx::query(
            "SELECT rd.rollout_id, rd.state FROM rollout_devices rd JOIN rollouts r ON r.id = rd.rollout_id \
             WHERE rd.device_id = $1 AND r.state IN ('running', 'paused') ORDER BY r.created_at DESC LIMIT 1",
        )
        .bind(device.as_str())
        .fetch_optional(&self.read)
        .await?;
        row.map(|row| {
            let state: String = row.try_get("state")?;
            Ok((row.try_get("rollout_id")?, state_of(&state)?))
        })
        .transpose()
    }
}

impl SqliteStore {
    /// A report's effect on the device's rollout entry, inside the batch's transaction.
    async fn apply_to_entry(
        &self,
        tx: &mut sqlx::Transaction<'_, Sqlite>,
        incoming: &IncomingReport,
        now: i64,
    ) -> StoreResult<ReportOutcome> {
        let r = &incoming.report;
        let id = incoming.device.as_str();
        // The entry the report names, or for a connect report naming none (or another
        // rollout), the device's outstanding entry.
        let named = match &r.rollout_id {
            Some(rollout) => {
                sqlx::query(
                    "SELECT rd.*, r.state AS rollout_state, r.max_attempts FROM rollout_devices rd \
                     JOIN rollouts r ON r.id = rd.rollout_id WHERE rd.rollout_id = $1 AND rd.device_id = $2",
                )
                .bind(rollout.as_str())
                .bind(id)
                .fetch_optional(&mut **tx)
                .await?
            }
            None => None,
        };
        let Some(row) = named else {
            if !r.connect {
                return Ok(ReportOutcome::Ignored(if r.rollout_id.is_some() { "unknown_rollout" } else { "idle" }));
            }
            let outstanding = sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT rd.* FROM rollout_devices rd JOIN rollouts r ON r.id = rd.rollout_id \
                 WHERE rd.device_id = $1 AND rd.state IN {IN_FLIGHT} ORDER BY r.created_at DESC LIMIT 1"
            )))
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?;
            return Ok(match outstanding.map(|row| entry_from_row(&row)).transpose()? {
                Some(e) if on_connect_elsewhere(&e) == Verdict::Resend => {
                    ReportOutcome::Resend { rollout_id: e.rollout_id }
                }
                _ => ReportOutcome::Applied { rollout_id: None },
            });
        };
        let entry = entry_from_row(&row)?;
        let rollout_state: String = row.try_get("rollout_state")?;
        let rollout_state =
            RolloutState::parse(&rollout_state).ok_or_else(|| corrupt("rollout state", &rollout_state))?;
        let max_attempts: i64 = row.try_get("max_attempts")?;
        Ok(match on_report(&entry, rollout_state, max_attempts, r.state, r.reason, r.connect, now) {
            Verdict::Change(c) => {
                if apply_change(tx, &c, now, true).await? {
                    ReportOutcome::Applied { rollout_id: Some(entry.rollout_id) }
                } else {
                    ReportOutcome::Ignored("raced")
                }
            }
            Verdict::Resend => ReportOutcome::Resend { rollout_id: entry.rollout_id },
            Verdict::Ignore(why) => ReportOutcome::Ignored(why),
        })
    }
}
