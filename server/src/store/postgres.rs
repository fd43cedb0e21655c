//! The PostgreSQL [`Store`](super::Store): the same SQL as SQLite ([`super::sql_store`]) on a
//! shared pool. Migrations take PostgreSQL's advisory lock, so replicas starting at the same
//! instant apply them once.

use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

/// PostgreSQL-backed storage.
#[derive(Debug, Clone)]
pub struct PgStore {
    read: PgPool,
    write: PgPool,
}

impl PgStore {
    /// Connects to `url` and applies migrations.
    pub async fn connect(url: &str) -> Result<Self, sqlx::Error> {
        let pool = PgPoolOptions::new().max_connections(16).connect(url).await?;
        sqlx::migrate!("../migrations/postgres").run(&pool).await?;
        Ok(Self { read: pool.clone(), write: pool })
    }
}

super::sql_store::sql_store!(
    PgStore,
    sqlx::Postgres,
    sqlx::postgres::PgRow,
    "SELECT (EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT"
);
