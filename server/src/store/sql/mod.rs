//! The SQL of every store method, written once: [`SqlStore`] over any [`Db`] (SQLite and
//! PostgreSQL). Queries use portable SQL and types (BIGINT, TEXT, BOOLEAN, DOUBLE
//! PRECISION) and `$n` placeholders, which both databases take.
//!
//! - [`db`]: what the SQL needs of a database, and the statement builder.
//! - [`rows`]: rows to records, and the state lists SQL filters by.
//! - [`keys`], [`artifacts`], [`devices`], [`tokens`], [`audit`], [`trust`], [`certificates`]: one
//!   resource each.
//! - [`rollouts`] (rollouts and their leases), [`entries`] (devices in rollouts),
//!   [`reports`] (ingesting status reports and presence): the rollout engine's storage;
//!   [`schedule`]: a rollout's schedule and dynamic flag, and dynamic rollouts taking in
//!   devices as they are registered or relabelled; [`events`]: event marks, webhooks and
//!   their delivery outbox.

mod artifacts;
mod audit;
mod certificates;
pub mod db;
mod devices;
mod entries;
mod events;
mod keys;
mod reports;
mod rollouts;
mod rows;
mod schedule;
mod tokens;
mod trust;

use async_trait::async_trait;
use sqlx::{Executor, Pool};

use self::db::{Db, RowExt as _, Sql};
use super::{FleetCounts, Page, PageRequest, Store, StoreResult};

/// The store on a database: a writer pool (SQLite allows one writer at a time) and a reader
/// pool (the same pool on PostgreSQL).
#[derive(Debug, Clone)]
pub struct SqlStore<DB: Db> {
    read: Pool<DB>,
    write: Pool<DB>,
    /// Reads the database's clock in milliseconds since the epoch.
    now_sql: &'static str,
}

impl<DB: Db> SqlStore<DB> {
    pub(super) fn new(read: Pool<DB>, write: Pool<DB>, now_sql: &'static str) -> Self {
        Self { read, write, now_sql }
    }

    fn reader(&self) -> impl Executor<'_, Database = DB> {
        DB::pooled(&self.read)
    }

    fn writer(&self) -> impl Executor<'_, Database = DB> {
        DB::pooled(&self.write)
    }

    /// One page of `table` in `key` order after the request's cursor, each row read by
    /// `record`.
    async fn page_of<T>(
        &self,
        table: &str,
        key: &str,
        page: &PageRequest,
        record: impl Fn(&DB::Row) -> StoreResult<T>,
        key_of: impl Fn(&T) -> String,
    ) -> StoreResult<Page<T>> {
        let rows = Sql::<DB>::new(format!("SELECT * FROM {table} WHERE {key} > $1 ORDER BY {key} LIMIT $2"))
            .arg(page.cursor.as_deref().unwrap_or(""))
            .arg(i64::from(page.limit) + 1)
            .fetch_all(self.reader())
            .await?;
        let items = rows.iter().map(record).collect::<StoreResult<Vec<_>>>()?;
        Ok(Page::from_rows(items, page.limit, key_of))
    }
}

#[async_trait]
impl<DB: Db> Store for SqlStore<DB> {
    async fn fleet_counts(&self) -> StoreResult<FleetCounts> {
        let pairs = |rows: Vec<DB::Row>| -> StoreResult<Vec<(String, i64)>> {
            rows.iter().map(|r| Ok((r.col("state")?, r.col("n")?))).collect()
        };
        let rollouts = Sql::<DB>::new("SELECT state, COUNT(*) AS n FROM rollouts GROUP BY state ORDER BY state")
            .fetch_all(self.reader())
            .await?;
        let entries = Sql::<DB>::new(format!(
            "SELECT rd.state AS state, COUNT(*) AS n FROM rollout_devices rd JOIN rollouts r ON r.id = rd.rollout_id \
             WHERE r.state IN {} GROUP BY rd.state ORDER BY rd.state",
            rows::ACTIVE_ROLLOUT.as_str()
        ))
        .fetch_all(self.reader())
        .await?;
        let devices = Sql::<DB>::new(
            "SELECT COUNT(*) AS n, COALESCE(SUM(CASE WHEN online THEN 1 ELSE 0 END), 0) AS online FROM devices",
        )
        .fetch_one(self.reader())
        .await?;
        Ok(FleetCounts {
            rollouts: pairs(rollouts)?,
            entries: pairs(entries)?,
            devices: devices.col("n")?,
            online: devices.col("online")?,
        })
    }

    async fn close(&self) {
        self.read.close().await;
        self.write.close().await;
    }
}

/// The steps of SQLite's plan for `q` (a statement after `EXPLAIN QUERY PLAN `) on a fresh
/// database: for the tests that a statement finds its rows through an index.
#[cfg(test)]
async fn sqlite_plan(q: Sql<sqlx::Sqlite>) -> Vec<String> {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = super::sqlite::SqliteStore::open(&dir.path().join("db")).await.expect("store");
    let rows = q.fetch_all(store.reader()).await.expect("plan");
    rows.iter().map(|r| r.col::<String>("detail").expect("detail")).collect()
}
