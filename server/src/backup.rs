//! `fleet-server backup --to DIR`: an online backup while the server runs.
//!
//! Under the blob lifecycle lock (no blob is committed or removed meanwhile, by any
//! replica), the database is snapshotted — SQLite with `VACUUM INTO`, a consistent copy of
//! a live WAL database; PostgreSQL with `pg_dump --format=custom` — and every blob is
//! hard-linked (or copied, across file systems) into `DIR/blobs`. So every artifact in the
//! snapshot has its blob. Restoring is copying back (see docs/operations.md).

use std::io;
use std::path::{Path, PathBuf};

use sqlx::ConnectOptions as _;

use crate::blobs::BlobStore;
use crate::settings::Settings;

/// Why a backup failed.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{0} exists: back up into a new directory")]
    TargetExists(PathBuf),
    #[error("no database at {0}")]
    NoDatabase(PathBuf),
    #[error("the backup path {0} is not UTF-8")]
    NotUtf8(PathBuf),
    #[error("{context}: {source}")]
    Io { context: String, source: io::Error },
    #[error("SQLite snapshot (VACUUM INTO): {0}")]
    Sqlite(#[from] sqlx::Error),
    #[error("pg_dump failed: {0}")]
    PgDump(std::process::ExitStatus),
}

/// Context for an I/O error.
fn io_error(context: impl Into<String>) -> impl FnOnce(io::Error) -> BackupError {
    let context = context.into();
    move |source| BackupError::Io { context, source }
}

pub async fn run(settings: &Settings, to: &Path) -> Result<(), BackupError> {
    if to.exists() {
        return Err(BackupError::TargetExists(to.to_owned()));
    }
    std::fs::create_dir_all(to).map_err(io_error(format!("creating {}", to.display())))?;
    let blob_dir = settings.blob_dir.clone().unwrap_or_else(|| settings.data_dir.join("blobs"));
    let blobs = BlobStore::open(blob_dir).await.map_err(io_error("opening the blob directory"))?;
    let _lifecycle = blobs.lock().await.map_err(io_error("locking the blob store"))?;
    match &settings.database_url {
        None => snapshot_sqlite(&settings.data_dir.join("fleet.db"), &to.join("fleet.db")).await?,
        Some(url) => snapshot_postgres(url, &to.join("fleet.pgdump")).await?,
    }
    let count = link_blobs(&blobs, &to.join("blobs")).await?;
    tracing::info!(to = %to.display(), blobs = count, "backup complete");
    println!("backup complete: {} ({count} blobs)", to.display());
    Ok(())
}

/// `VACUUM INTO`: a consistent copy of a live WAL database.
async fn snapshot_sqlite(db: &Path, target: &Path) -> Result<(), BackupError> {
    if !db.exists() {
        return Err(BackupError::NoDatabase(db.to_owned()));
    }
    let mut conn = sqlx::sqlite::SqliteConnectOptions::new().filename(db).connect().await?;
    let target = target.to_str().ok_or_else(|| BackupError::NotUtf8(target.to_owned()))?;
    sqlx::query(sqlx::AssertSqlSafe(format!("VACUUM INTO '{}'", target.replace('\'', "''"))))
        .execute(&mut conn)
        .await?;
    Ok(())
}

async fn snapshot_postgres(url: &str, target: &Path) -> Result<(), BackupError> {
    let status = tokio::process::Command::new("pg_dump")
        .args(["--format=custom", "--no-owner", "--file"])
        .arg(target)
        .arg(url)
        .status()
        .await
        .map_err(io_error("running pg_dump (install PostgreSQL's client tools)"))?;
    if !status.success() {
        return Err(BackupError::PgDump(status));
    }
    Ok(())
}

/// Hard-links (or copies, across file systems) every blob under `dest`; returns how many.
async fn link_blobs(blobs: &BlobStore, dest: &Path) -> Result<u64, BackupError> {
    let mut count = 0u64;
    for digest in blobs.digests().await.map_err(io_error("listing blobs"))? {
        let from = blobs.path(&digest);
        let rel = from.strip_prefix(blobs.root()).expect("blob paths are under the root");
        let to = dest.join(rel);
        std::fs::create_dir_all(to.parent().expect("a parent"))
            .map_err(io_error(format!("creating {}", to.display())))?;
        if std::fs::hard_link(&from, &to).is_err() {
            std::fs::copy(&from, &to).map_err(io_error(format!("copying {}", from.display())))?;
        }
        count += 1;
    }
    Ok(count)
}
