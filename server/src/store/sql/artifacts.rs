//! Artifacts (firmware and configs) and the keys that signed them.

use std::collections::HashMap;

use async_trait::async_trait;
use fleet_protocol::{ArtifactKind, KeyId, Manifest, ProductName};

use super::SqlStore;
use super::db::{Db, RowExt as _, Sql};
use super::rows::{HOLDS_ARTIFACT, corrupt, kind_of};
use crate::store::{ArtifactRecord, ArtifactStore, NewArtifact, Page, PageRequest, StoreError, StoreResult};

const ARTIFACT_COLUMNS: &str = "id, kind, manifest, envelope, created_at";

impl<DB: Db> SqlStore<DB> {
    async fn signers_of(&self, ids: &[String]) -> StoreResult<HashMap<String, Vec<KeyId>>> {
        let mut out: HashMap<String, Vec<KeyId>> = HashMap::new();
        if ids.is_empty() {
            return Ok(out);
        }
        let mut q = Sql::<DB>::new("SELECT artifact_id, keyid FROM artifact_signers WHERE artifact_id IN ");
        q.in_list(ids);
        q.push(" ORDER BY keyid");
        for row in q.fetch_all(self.reader()).await? {
            let keyid: String = row.col("keyid")?;
            let keyid = KeyId::parse(&keyid).ok_or_else(|| corrupt("signer", &keyid))?;
            out.entry(row.col("artifact_id")?).or_default().push(keyid);
        }
        Ok(out)
    }

    async fn artifacts_from_rows(&self, rows: Vec<DB::Row>) -> StoreResult<Vec<ArtifactRecord>> {
        let ids: Vec<String> = rows.iter().map(|r| r.col("id")).collect::<Result<_, _>>()?;
        let mut signers = self.signers_of(&ids).await?;
        rows.iter()
            .map(|row| {
                let id: String = row.col("id")?;
                let manifest: String = row.col("manifest")?;
                Ok(ArtifactRecord {
                    kind: kind_of(&row.col::<String>("kind")?)?,
                    manifest: Manifest::from_slice(manifest.as_bytes()).map_err(|e| corrupt("manifest", e))?,
                    envelope_json: row.col("envelope")?,
                    signers: signers.remove(&id).unwrap_or_default(),
                    created_at_ms: row.col("created_at")?,
                    id,
                })
            })
            .collect()
    }
}

#[async_trait]
impl<DB: Db> ArtifactStore for SqlStore<DB> {
    async fn artifact_version_exists(
        &self,
        kind: ArtifactKind,
        name: &ProductName,
        version: &semver::Version,
    ) -> StoreResult<bool> {
        let row = Sql::<DB>::new("SELECT 1 FROM artifacts WHERE kind = $1 AND name = $2 AND version = $3")
            .arg(kind.as_str())
            .arg(name.as_str())
            .arg(version.to_string())
            .fetch_optional(self.reader())
            .await?;
        Ok(row.is_some())
    }

    async fn insert_artifact(&self, a: &NewArtifact) -> StoreResult<ArtifactRecord> {
        let mut tx = self.write.begin().await?;
        Sql::<DB>::new(
            "INSERT INTO artifacts (id, kind, name, version, sha256, size, manifest, envelope, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .arg(&a.id)
        .arg(a.manifest.kind.as_str())
        .arg(a.manifest.name.as_str())
        .arg(a.manifest.version.to_string())
        .arg(a.manifest.sha256.to_hex())
        .arg(i64::try_from(a.manifest.size).map_err(|e| corrupt("size", e))?)
        .arg(&a.manifest_json)
        .arg(&a.envelope_json)
        .arg(a.created_at_ms)
        .execute(DB::on(&mut *tx))
        .await?;
        for keyid in &a.signers {
            Sql::<DB>::new("INSERT INTO artifact_signers (artifact_id, keyid) VALUES ($1, $2)")
                .arg(&a.id)
                .arg(keyid.as_hex())
                .execute(DB::on(&mut *tx))
                .await?;
        }
        tx.commit().await?;
        Ok(ArtifactRecord {
            id: a.id.clone(),
            kind: a.manifest.kind,
            manifest: a.manifest.clone(),
            envelope_json: a.envelope_json.clone(),
            signers: a.signers.clone(),
            created_at_ms: a.created_at_ms,
        })
    }

    async fn get_artifact(&self, kind: ArtifactKind, id: &str) -> StoreResult<ArtifactRecord> {
        let row = Sql::<DB>::new(format!("SELECT {ARTIFACT_COLUMNS} FROM artifacts WHERE kind = $1 AND id = $2"))
            .arg(kind.as_str())
            .arg(id)
            .fetch_one(self.reader())
            .await?;
        let artifact = self.artifacts_from_rows(vec![row]).await?.pop().ok_or(StoreError::NotFound)?;
        // Every stored artifact has a signer (an upload needs the threshold, at least one);
        // none means it was deleted between the two reads, its signers with it.
        if artifact.signers.is_empty() {
            return Err(StoreError::NotFound);
        }
        Ok(artifact)
    }

    async fn list_artifacts(
        &self,
        kind: ArtifactKind,
        name: Option<&ProductName>,
        page: &PageRequest,
    ) -> StoreResult<Page<ArtifactRecord>> {
        let rows = Sql::<DB>::new(format!(
            "SELECT {ARTIFACT_COLUMNS} FROM artifacts WHERE kind = $1 AND ($2 IS NULL OR name = $2) AND id > $3 \
             ORDER BY id LIMIT $4"
        ))
        .arg(kind.as_str())
        .arg(name.map(ProductName::as_str))
        .arg(page.cursor.as_deref().unwrap_or(""))
        .arg(i64::from(page.limit) + 1)
        .fetch_all(self.reader())
        .await?;
        let items = self.artifacts_from_rows(rows).await?;
        Ok(Page::from_rows(items, page.limit, |a| a.id.clone()))
    }

    async fn delete_artifact(&self, kind: ArtifactKind, id: &str) -> StoreResult<ArtifactRecord> {
        let record = self.get_artifact(kind, id).await?;
        // Finished rollouts keep only the id as history; one the engine still drives keeps
        // the artifact. The row is locked first, as a rollout's creation does, and the check
        // is a statement of its own after the lock: at READ COMMITTED it then sees a rollout
        // created meanwhile (inside one statement PostgreSQL would not).
        let mut tx = self.write.begin().await?;
        lock_artifact::<DB>(&mut tx, kind, id).await?;
        let done = Sql::<DB>::new(format!(
            "DELETE FROM artifacts WHERE kind = $1 AND id = $2 \
             AND NOT EXISTS (SELECT 1 FROM rollouts r WHERE r.artifact_id = $2 AND {})",
            HOLDS_ARTIFACT.as_str()
        ))
        .arg(kind.as_str())
        .arg(id)
        .execute(DB::on(&mut *tx))
        .await?;
        tx.commit().await?;
        if done == 0 {
            let used = Sql::<DB>::new(format!(
                "SELECT 1 FROM rollouts r WHERE r.artifact_id = $1 AND {} LIMIT 1",
                HOLDS_ARTIFACT.as_str()
            ))
            .arg(id)
            .fetch_optional(self.writer())
            .await?;
            return Err(if used.is_some() { StoreError::Referenced } else { StoreError::NotFound });
        }
        Ok(record)
    }

    async fn blob_referenced(&self, sha256: &str) -> StoreResult<bool> {
        let row = Sql::<DB>::new("SELECT 1 FROM artifacts WHERE sha256 = $1 LIMIT 1")
            .arg(sha256)
            .fetch_optional(self.writer())
            .await?;
        Ok(row.is_some())
    }
}

/// Takes the write lock on an artifact's row (an update that changes nothing, in both dialects) for
/// the rest of `tx`; false when there is no such artifact.
pub(super) async fn lock_artifact<DB: Db>(
    tx: &mut sqlx::Transaction<'_, DB>,
    kind: ArtifactKind,
    id: &str,
) -> StoreResult<bool> {
    let touched = Sql::<DB>::new("UPDATE artifacts SET created_at = created_at WHERE kind = $1 AND id = $2")
        .arg(kind.as_str())
        .arg(id)
        .execute(DB::on(&mut **tx))
        .await?;
    Ok(touched > 0)
}
