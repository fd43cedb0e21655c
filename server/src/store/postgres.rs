//! The PostgreSQL [`Store`](super::Store): the same SQL as SQLite ([`super::sql`]) on a
//! shared pool. Migrations take PostgreSQL's advisory lock, so replicas starting at the same
//! instant apply them once.

use sqlx::postgres::PgPoolOptions;

use super::sql::SqlStore;

/// PostgreSQL-backed storage.
pub type PgStore = SqlStore<sqlx::Postgres>;

/// Reads PostgreSQL's clock in milliseconds since the epoch.
const NOW_MS: &str = "SELECT (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT AS now_ms";

impl PgStore {
    /// Connects to `url` and applies migrations.
    pub async fn connect(url: &str) -> Result<Self, sqlx::Error> {
        let pool = PgPoolOptions::new().max_connections(16).connect(url).await?;
        sqlx::migrate!("../migrations/postgres").run(&pool).await?;
        Ok(Self::new(pool.clone(), pool, NOW_MS))
    }
}
