//! `fleet-server backup --to DIR`: an online backup while the server runs.
//!
//! Under the blob lifecycle lock (no blob is committed or removed meanwhile, by any
//! replica), the database is snapshotted — SQLite with `VACUUM INTO`, a consistent copy of
//! a live WAL database; PostgreSQL with `pg_dump --format=custom` — and every blob is
//! hard-linked (or copied, across file systems) into `DIR/blobs`. So every artifact in the
//! snapshot has its blob. Restoring is copying back (see docs/operations.md).

use std::path::Path;

use anyhow::{Context as _, bail};
use sqlx::ConnectOptions as _;

use crate::blobs::BlobStore;
use crate::settings::Settings;

pub async fn run(settings: &Settings, to: &Path) -> anyhow::Result<()> {
    if to.exists() {
        bail!("{} exists: back up into a new directory", to.display());
    }
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    let blob_dir = settings.blob_dir.clone().unwrap_or_else(|| settings.data_dir.join("blobs"));
    let blobs = BlobStore::open(blob_dir).await.context("opening the blob directory")?;
    let _lifecycle = blobs.lock().await?;

    match &settings.database_url {
        None => {
            let db = settings.data_dir.join("fleet.db");
            if !db.exists() {
                bail!("no database at {}", db.display());
            }
            let mut conn = sqlx::sqlite::SqliteConnectOptions::new().filename(&db).connect().await?;
            let target = to.join("fleet.db");
            let target = target.to_str().context("a UTF-8 backup path")?;
            sqlx::query(sqlx::AssertSqlSafe(format!("VACUUM INTO '{}'", target.replace('\'', "''"))))
                .execute(&mut conn)
                .await
                .context("VACUUM INTO")?;
        }
        Some(url) => {
            let status = tokio::process::Command::new("pg_dump")
                .args(["--format=custom", "--no-owner", "--file"])
                .arg(to.join("fleet.pgdump"))
                .arg(url)
                .status()
                .await
                .context("running pg_dump (install PostgreSQL's client tools)")?;
            if !status.success() {
                bail!("pg_dump failed: {status}");
            }
        }
    }

    let mut count = 0u64;
    for digest in blobs.digests().await? {
        let from = blobs.path(&digest);
        let rel = from.strip_prefix(blobs.root()).expect("blob paths are under the root");
        let dest = to.join("blobs").join(rel);
        std::fs::create_dir_all(dest.parent().expect("a parent"))?;
        if std::fs::hard_link(&from, &dest).is_err() {
            std::fs::copy(&from, &dest).with_context(|| format!("copying {}", from.display()))?;
        }
        count += 1;
    }
    tracing::info!(to = %to.display(), blobs = count, "backup complete");
    println!("backup complete: {} ({count} blobs)", to.display());
    Ok(())
}
