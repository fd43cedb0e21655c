//! The SQL of every store method, written once. Queries use `$1` placeholders and portable
//! types (BIGINT, TEXT, BOOLEAN, DOUBLE PRECISION), so the same text runs on SQLite and
//! PostgreSQL; `sql_store!` instantiates it for one database's pool and row types.

/// Implements `Store` and `RolloutStore` for `$store` (with `read` and `write` pools of
/// database `$db`, rows `$row`); `$now_sql` reads the database's clock in milliseconds.
macro_rules! sql_store {
    ($store:ident, $db:ty, $row:ty, $now_sql:literal) => {
        use std::collections::{BTreeMap, HashMap};
        use std::str::FromStr;

        use async_trait::async_trait;
        use fleet_protocol::api::TokenScope;
        use fleet_protocol::message::Installed;
        use fleet_protocol::state::{DeviceState, Reason};
        use fleet_protocol::{ArtifactKind, DeviceId, HardwareModel, KeyId, Manifest, ProductName};
        use sqlx::{AssertSqlSafe, QueryBuilder, Row};

        use $crate::rollout::plan::WaveGate;
        use $crate::rollout::rules::{Verdict, on_connect_elsewhere, on_report};
        use $crate::store::rollouts::{
            Count, CurrentCommand, EntryChange, EntryRecord, IncomingReport, ReportOutcome, RolloutRecord,
            EntrySelect, RolloutState, RolloutStore,
        };
        use $crate::store::{
            ArtifactRecord, AuditRecord, DeviceFilter, DeviceRecord, FleetCounts, KeyRecord, NewArtifact, NewDevice,
            OperatorTokenRecord, Page, PageRequest, Store, StoreError, StoreResult, TokenOwner,
        };

        fn classify(e: sqlx::Error) -> StoreError {
            match e {
                sqlx::Error::RowNotFound => StoreError::NotFound,
                sqlx::Error::Database(ref d) if d.is_unique_violation() => StoreError::Conflict,
                sqlx::Error::Database(ref d) if d.is_foreign_key_violation() => StoreError::Referenced,
                e => StoreError::Database(e),
            }
        }

        fn corrupt(what: &str, e: impl std::fmt::Display) -> StoreError {
            StoreError::Corrupt(format!("{what}: {e}"))
        }

        fn operator_token_from_row(row: &$row) -> StoreResult<OperatorTokenRecord> {
            let scope: String = row.try_get("scope")?;
            Ok(OperatorTokenRecord {
                name: row.try_get("name")?,
                scope: TokenScope::parse(&scope).ok_or_else(|| corrupt("token scope", scope))?,
                token_hash: row.try_get("token_hash")?,
                created_at_ms: row.try_get("created_at")?,
            })
        }

        fn key_from_row(row: &$row) -> StoreResult<KeyRecord> {
            let keyid: String = row.try_get("keyid")?;
            Ok(KeyRecord {
                keyid: KeyId::parse(&keyid).ok_or_else(|| corrupt("keyid", &keyid))?,
                name: row.try_get("name")?,
                public_key_pem: row.try_get("public_key_pem")?,
                created_at_ms: row.try_get("created_at")?,
                revoked_at_ms: row.try_get("revoked_at")?,
            })
        }

        fn installed(row: &$row, prefix: &str) -> StoreResult<Option<Installed>> {
            let name: Option<String> = row.try_get(format!("{prefix}_name").as_str())?;
            let version: Option<String> = row.try_get(format!("{prefix}_version").as_str())?;
            let sha256: Option<String> = row.try_get(format!("{prefix}_sha256").as_str())?;
            let (Some(name), Some(version), Some(sha256)) = (name, version, sha256) else {
                return Ok(None);
            };
            Ok(Some(Installed {
                name: ProductName::parse(name).map_err(|e| corrupt(prefix, e))?,
                version: semver::Version::parse(&version).map_err(|e| corrupt(prefix, e))?,
                sha256: sha256.parse().map_err(|e| corrupt(prefix, e))?,
            }))
        }

        const ARTIFACT_COLUMNS: &str = "id, kind, manifest, envelope, created_at";
        const DEVICE_COLUMNS: &str = "id, hardware, created_at, online, last_seen, firmware_name, firmware_version, \
             firmware_sha256, config_name, config_version, config_sha256";

        impl $store {
            async fn signers_of(&self, ids: &[String]) -> StoreResult<HashMap<String, Vec<KeyId>>> {
                let mut out: HashMap<String, Vec<KeyId>> = HashMap::new();
                if ids.is_empty() {
                    return Ok(out);
                }
                let mut q =
                    QueryBuilder::<$db>::new("SELECT artifact_id, keyid FROM artifact_signers WHERE artifact_id IN (");
                let mut sep = q.separated(", ");
                for id in ids {
                    sep.push_bind(id);
                }
                q.push(") ORDER BY keyid");
                for row in q.build().fetch_all(&self.read).await? {
                    let keyid: String = row.try_get("keyid")?;
                    let keyid = KeyId::parse(&keyid).ok_or_else(|| corrupt("signer", &keyid))?;
                    out.entry(row.try_get("artifact_id")?).or_default().push(keyid);
                }
                Ok(out)
            }

            async fn artifacts_from_rows(&self, rows: Vec<$row>) -> StoreResult<Vec<ArtifactRecord>> {
                let ids: Vec<String> = rows.iter().map(|r| r.try_get("id")).collect::<Result<_, _>>()?;
                let mut signers = self.signers_of(&ids).await?;
                rows.iter()
                    .map(|row| {
                        let id: String = row.try_get("id")?;
                        let kind: String = row.try_get("kind")?;
                        let manifest: String = row.try_get("manifest")?;
                        Ok(ArtifactRecord {
                            kind: ArtifactKind::parse(&kind).ok_or_else(|| corrupt("kind", &kind))?,
                            manifest: Manifest::from_slice(manifest.as_bytes()).map_err(|e| corrupt("manifest", e))?,
                            envelope_json: row.try_get("envelope")?,
                            signers: signers.remove(&id).unwrap_or_default(),
                            created_at_ms: row.try_get("created_at")?,
                            id,
                        })
                    })
                    .collect()
            }

            async fn devices_from_rows(&self, rows: Vec<$row>) -> StoreResult<Vec<DeviceRecord>> {
                let ids: Vec<String> = rows.iter().map(|r| r.try_get("id")).collect::<Result<_, _>>()?;
                let mut labels: HashMap<String, BTreeMap<String, String>> = HashMap::new();
                if !ids.is_empty() {
                    let mut q =
                        QueryBuilder::<$db>::new("SELECT device_id, key, value FROM device_labels WHERE device_id IN (");
                    let mut sep = q.separated(", ");
                    for id in &ids {
                        sep.push_bind(id);
                    }
                    q.push(")");
                    for row in q.build().fetch_all(&self.read).await? {
                        labels.entry(row.try_get("device_id")?).or_default().insert(row.try_get("key")?, row.try_get("value")?);
                    }
                }
                rows.iter()
                    .map(|row| {
                        let id: String = row.try_get("id")?;
                        let hardware: String = row.try_get("hardware")?;
                        Ok(DeviceRecord {
                            labels: labels.remove(&id).unwrap_or_default(),
                            id: DeviceId::parse(id).map_err(|e| corrupt("device id", e))?,
                            hardware: HardwareModel::parse(hardware).map_err(|e| corrupt("hardware", e))?,
                            created_at_ms: row.try_get("created_at")?,
                            online: row.try_get("online")?,
                            last_seen_ms: row.try_get("last_seen")?,
                            firmware: installed(row, "firmware")?,
                            config: installed(row, "config")?,
                        })
                    })
                    .collect()
            }
        }

        #[async_trait]
        impl Store for $store {
            async fn insert_key(&self, key: &KeyRecord) -> StoreResult<()> {
                sqlx::query("INSERT INTO release_keys (keyid, name, public_key_pem, created_at) VALUES ($1, $2, $3, $4)")
                    .bind(key.keyid.as_hex())
                    .bind(&key.name)
                    .bind(&key.public_key_pem)
                    .bind(key.created_at_ms)
                    .execute(&self.write)
                    .await
                    .map_err(classify)?;
                Ok(())
            }

            async fn get_key(&self, keyid: &KeyId) -> StoreResult<KeyRecord> {
                let row = sqlx::query("SELECT * FROM release_keys WHERE keyid = $1")
                    .bind(keyid.as_hex())
                    .fetch_one(&self.read)
                    .await
                    .map_err(classify)?;
                key_from_row(&row)
            }

            async fn list_keys(&self, page: &PageRequest) -> StoreResult<Page<KeyRecord>> {
                let rows = sqlx::query("SELECT * FROM release_keys WHERE keyid > $1 ORDER BY keyid LIMIT $2")
                    .bind(page.cursor.as_deref().unwrap_or(""))
                    .bind(i64::from(page.limit) + 1)
                    .fetch_all(&self.read)
                    .await?;
                let keys = rows.iter().map(key_from_row).collect::<StoreResult<Vec<_>>>()?;
                Ok(Page::from_rows(keys, page.limit, |k| k.keyid.as_hex()))
            }

            async fn active_keys(&self) -> StoreResult<Vec<KeyRecord>> {
                let rows = sqlx::query("SELECT * FROM release_keys WHERE revoked_at IS NULL").fetch_all(&self.read).await?;
                rows.iter().map(key_from_row).collect()
            }

            async fn revoke_key(&self, keyid: &KeyId, at_ms: i64) -> StoreResult<()> {
                let done = sqlx::query("UPDATE release_keys SET revoked_at = COALESCE(revoked_at, $1) WHERE keyid = $2")
                    .bind(at_ms)
                    .bind(keyid.as_hex())
                    .execute(&self.write)
                    .await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound);
                }
                Ok(())
            }

            async fn artifact_version_exists(
                &self,
                kind: ArtifactKind,
                name: &ProductName,
                version: &semver::Version,
            ) -> StoreResult<bool> {
                let row = sqlx::query("SELECT 1 FROM artifacts WHERE kind = $1 AND name = $2 AND version = $3")
                    .bind(kind.as_str())
                    .bind(name.as_str())
                    .bind(version.to_string())
                    .fetch_optional(&self.read)
                    .await?;
                Ok(row.is_some())
            }

            async fn insert_artifact(&self, a: &NewArtifact) -> StoreResult<ArtifactRecord> {
                let mut tx = self.write.begin().await?;
                sqlx::query(
                    "INSERT INTO artifacts (id, kind, name, version, sha256, size, manifest, envelope, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                )
                .bind(&a.id)
                .bind(a.manifest.kind.as_str())
                .bind(a.manifest.name.as_str())
                .bind(a.manifest.version.to_string())
                .bind(a.manifest.sha256.to_hex())
                .bind(i64::try_from(a.manifest.size).map_err(|e| corrupt("size", e))?)
                .bind(&a.manifest_json)
                .bind(&a.envelope_json)
                .bind(a.created_at_ms)
                .execute(&mut *tx)
                .await
                .map_err(classify)?;
                for keyid in &a.signers {
                    sqlx::query("INSERT INTO artifact_signers (artifact_id, keyid) VALUES ($1, $2)")
                        .bind(&a.id)
                        .bind(keyid.as_hex())
                        .execute(&mut *tx)
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
                let row =
                    sqlx::query(AssertSqlSafe(format!("SELECT {ARTIFACT_COLUMNS} FROM artifacts WHERE kind = $1 AND id = $2")))
                        .bind(kind.as_str())
                        .bind(id)
                        .fetch_one(&self.read)
                        .await
                        .map_err(classify)?;
                let mut v = self.artifacts_from_rows(vec![row]).await?;
                v.pop().ok_or(StoreError::NotFound)
            }

            async fn list_artifacts(
                &self,
                kind: ArtifactKind,
                name: Option<&ProductName>,
                page: &PageRequest,
            ) -> StoreResult<Page<ArtifactRecord>> {
                let rows = sqlx::query(AssertSqlSafe(format!(
                    "SELECT {ARTIFACT_COLUMNS} FROM artifacts WHERE kind = $1 AND ($2 IS NULL OR name = $2) AND id > $3 \
                     ORDER BY id LIMIT $4"
                )))
                .bind(kind.as_str())
                .bind(name.map(ProductName::as_str))
                .bind(page.cursor.as_deref().unwrap_or(""))
                .bind(i64::from(page.limit) + 1)
                .fetch_all(&self.read)
                .await?;
                let items = self.artifacts_from_rows(rows).await?;
                Ok(Page::from_rows(items, page.limit, |a| a.id.clone()))
            }

            async fn delete_artifact(&self, kind: ArtifactKind, id: &str) -> StoreResult<ArtifactRecord> {
                let record = self.get_artifact(kind, id).await?;
                let done = sqlx::query("DELETE FROM artifacts WHERE kind = $1 AND id = $2")
                    .bind(kind.as_str())
                    .bind(id)
                    .execute(&self.write)
                    .await
                    .map_err(classify)?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound);
                }
                Ok(record)
            }

            async fn blob_referenced(&self, sha256: &str) -> StoreResult<bool> {
                let row = sqlx::query("SELECT 1 FROM artifacts WHERE sha256 = $1 LIMIT 1")
                    .bind(sha256)
                    .fetch_optional(&self.write)
                    .await?;
                Ok(row.is_some())
            }

            async fn insert_device(&self, d: &NewDevice) -> StoreResult<DeviceRecord> {
                let mut tx = self.write.begin().await?;
                sqlx::query(
                    "INSERT INTO devices (id, hardware, token_hash, broker_password_hash, created_at) \
                     VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(d.id.as_str())
                .bind(d.hardware.as_str())
                .bind(&d.token_hash)
                .bind(&d.broker_password_hash)
                .bind(d.created_at_ms)
                    .execute(&mut *tx)
                    .await
                    .map_err(classify)?;
                for (key, value) in &d.labels {
                    sqlx::query("INSERT INTO device_labels (device_id, key, value) VALUES ($1, $2, $3)")
                        .bind(d.id.as_str())
                        .bind(key)
                        .bind(value)
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(DeviceRecord {
                    id: d.id.clone(),
                    hardware: d.hardware.clone(),
                    labels: d.labels.clone(),
                    created_at_ms: d.created_at_ms,
                    online: false,
                    last_seen_ms: None,
                    firmware: None,
                    config: None,
                })
            }

            async fn get_device(&self, id: &DeviceId) -> StoreResult<DeviceRecord> {
                let row = sqlx::query(AssertSqlSafe(format!("SELECT {DEVICE_COLUMNS} FROM devices WHERE id = $1")))
                    .bind(id.as_str())
                    .fetch_one(&self.read)
                    .await
                    .map_err(classify)?;
                self.devices_from_rows(vec![row]).await?.pop().ok_or(StoreError::NotFound)
            }

            async fn list_devices(&self, filter: &DeviceFilter, page: &PageRequest) -> StoreResult<Page<DeviceRecord>> {
                let mut q = QueryBuilder::<$db>::new(format!("SELECT {DEVICE_COLUMNS} FROM devices d WHERE d.id > "));
                q.push_bind(page.cursor.clone().unwrap_or_default());
                if let Some(hw) = &filter.hardware {
                    q.push(" AND d.hardware = ").push_bind(hw.as_str().to_owned());
                }
                for (key, value) in &filter.labels {
                    q.push(" AND EXISTS (SELECT 1 FROM device_labels l WHERE l.device_id = d.id AND l.key = ")
                        .push_bind(key.clone())
                        .push(" AND l.value = ")
                        .push_bind(value.clone())
                        .push(")");
                }
                q.push(" ORDER BY d.id LIMIT ").push_bind(i64::from(page.limit) + 1);
                let rows = q.build().fetch_all(&self.read).await?;
                let items = self.devices_from_rows(rows).await?;
                Ok(Page::from_rows(items, page.limit, |d| d.id.to_string()))
            }

            async fn delete_device(&self, id: &DeviceId) -> StoreResult<()> {
                let mut tx = self.write.begin().await?;
                let done = sqlx::query("DELETE FROM devices WHERE id = $1").bind(id.as_str()).execute(&mut *tx).await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound);
                }
                // A decommissioned device leaves its rollouts.
                sqlx::query(
                    "UPDATE rollout_devices SET state = 'cancelled', reason = NULL, updated_at = $1 WHERE device_id = $2 \
                     AND state NOT IN ('succeeded', 'failed', 'rejected', 'rolled_back', 'timed_out', 'cancelled')",
                )
                .bind(crate::now_ms())
                .bind(id.as_str())
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn rotate_device_token(
                &self,
                id: &DeviceId,
                token_hash: &str,
                broker_password_hash: &str,
            ) -> StoreResult<()> {
                let done = sqlx::query(
                    "UPDATE devices SET token_hash = $1, broker_password_hash = $2, last_seq = NULL WHERE id = $3",
                )
                .bind(token_hash)
                .bind(broker_password_hash)
                .bind(id.as_str())
                    .execute(&self.write)
                    .await
                    .map_err(classify)?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound);
                }
                Ok(())
            }

            async fn broker_credentials(&self) -> StoreResult<Vec<(String, String)>> {
                let rows = sqlx::query(
                    "SELECT id, broker_password_hash FROM devices WHERE broker_password_hash IS NOT NULL ORDER BY id",
                )
                .fetch_all(&self.read)
                .await?;
                rows.iter().map(|r| Ok((r.try_get("id")?, r.try_get("broker_password_hash")?))).collect()
            }

            async fn put_operator_token(&self, t: &OperatorTokenRecord) -> StoreResult<()> {
                sqlx::query(
                    "INSERT INTO operator_tokens (name, scope, token_hash, created_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (name) DO UPDATE SET scope = excluded.scope, token_hash = excluded.token_hash, \
                     created_at = excluded.created_at",
                )
                .bind(&t.name)
                .bind(t.scope.as_str())
                .bind(&t.token_hash)
                .bind(t.created_at_ms)
                .execute(&self.write)
                .await
                .map_err(classify)?;
                Ok(())
            }

            async fn init_operator_token(&self, t: &OperatorTokenRecord) -> StoreResult<OperatorTokenRecord> {
                sqlx::query(
                    "INSERT INTO operator_tokens (name, scope, token_hash, created_at) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (name) DO NOTHING",
                )
                .bind(&t.name)
                .bind(t.scope.as_str())
                .bind(&t.token_hash)
                .bind(t.created_at_ms)
                .execute(&self.write)
                .await
                .map_err(classify)?;
                let row = sqlx::query("SELECT * FROM operator_tokens WHERE name = $1")
                    .bind(&t.name)
                    .fetch_one(&self.write)
                    .await?;
                operator_token_from_row(&row)
            }

            async fn token_owner(&self, token_hash: &str) -> StoreResult<Option<TokenOwner>> {
                let row = sqlx::query(
                    "SELECT name, scope, token_hash, created_at, NULL AS device_id FROM operator_tokens \
                     WHERE token_hash = $1 \
                     UNION ALL SELECT NULL, NULL, NULL, NULL, id FROM devices WHERE token_hash = $1",
                )
                .bind(token_hash)
                .fetch_optional(&self.read)
                .await?;
                let Some(row) = row else {
                    return Ok(None);
                };
                match row.try_get::<Option<String>, _>("device_id")? {
                    Some(id) => Ok(Some(TokenOwner::Device(DeviceId::from_str(&id).map_err(|e| corrupt("device id", e))?))),
                    None => Ok(Some(TokenOwner::Operator(operator_token_from_row(&row)?))),
                }
            }

            async fn insert_operator_token(&self, t: &OperatorTokenRecord) -> StoreResult<()> {
                sqlx::query("INSERT INTO operator_tokens (name, scope, token_hash, created_at) VALUES ($1, $2, $3, $4)")
                    .bind(&t.name)
                    .bind(t.scope.as_str())
                    .bind(&t.token_hash)
                    .bind(t.created_at_ms)
                    .execute(&self.write)
                    .await
                    .map_err(classify)?;
                Ok(())
            }

            async fn list_operator_tokens(&self, page: &PageRequest) -> StoreResult<Page<OperatorTokenRecord>> {
                let rows = sqlx::query("SELECT * FROM operator_tokens WHERE name > $1 ORDER BY name LIMIT $2")
                    .bind(page.cursor.clone().unwrap_or_default())
                    .bind(i64::from(page.limit) + 1)
                    .fetch_all(&self.read)
                    .await?;
                let items = rows.iter().map(operator_token_from_row).collect::<StoreResult<Vec<_>>>()?;
                Ok(Page::from_rows(items, page.limit, |t| t.name.clone()))
            }

            async fn delete_operator_token(&self, name: &str) -> StoreResult<()> {
                let done = sqlx::query("DELETE FROM operator_tokens WHERE name = $1").bind(name).execute(&self.write).await?;
                if done.rows_affected() == 0 {
                    return Err(StoreError::NotFound);
                }
                Ok(())
            }

            async fn record_audit(&self, e: &AuditRecord) -> StoreResult<()> {
                sqlx::query("INSERT INTO audit_log (at, actor, action, target, details) VALUES ($1, $2, $3, $4, $5)")
                    .bind(e.at_ms)
                    .bind(&e.actor)
                    .bind(&e.action)
                    .bind(&e.target)
                    .bind(&e.details)
                    .execute(&self.write)
                    .await?;
                Ok(())
            }

            async fn list_audit(&self, page: &PageRequest) -> StoreResult<Page<AuditRecord>> {
                let before = match &page.cursor {
                    Some(c) => c.parse::<i64>().map_err(|e| corrupt("audit cursor", e))?,
                    None => i64::MAX,
                };
                let rows = sqlx::query("SELECT * FROM audit_log WHERE id < $1 ORDER BY id DESC LIMIT $2")
                    .bind(before)
                    .bind(i64::from(page.limit) + 1)
                    .fetch_all(&self.read)
                    .await?;
                let items = rows
                    .iter()
                    .map(|r| {
                        Ok(AuditRecord {
                            id: r.try_get("id")?,
                            at_ms: r.try_get("at")?,
                            actor: r.try_get("actor")?,
                            action: r.try_get("action")?,
                            target: r.try_get("target")?,
                            details: r.try_get("details")?,
                        })
                    })
                    .collect::<StoreResult<Vec<_>>>()?;
                Ok(Page::from_rows(items, page.limit, |e| e.id.to_string()))
            }

            async fn fleet_counts(&self) -> StoreResult<FleetCounts> {
                let pairs = |rows: Vec<$row>| -> StoreResult<Vec<(String, i64)>> {
                    rows.iter().map(|r| Ok((r.try_get("state")?, r.try_get("n")?))).collect()
                };
                let rollouts = sqlx::query("SELECT state, COUNT(*) AS n FROM rollouts GROUP BY state ORDER BY state")
                    .fetch_all(&self.read)
                    .await?;
                let entries = sqlx::query(
                    "SELECT rd.state AS state, COUNT(*) AS n FROM rollout_devices rd JOIN rollouts r ON r.id = rd.rollout_id \
                     WHERE r.state IN ('running', 'paused') GROUP BY rd.state ORDER BY rd.state",
                )
                .fetch_all(&self.read)
                .await?;
                let devices = sqlx::query(
                    "SELECT COUNT(*) AS n, COALESCE(SUM(CASE WHEN online THEN 1 ELSE 0 END), 0) AS online FROM devices",
                )
                .fetch_one(&self.read)
                .await?;
                Ok(FleetCounts {
                    rollouts: pairs(rollouts)?,
                    entries: pairs(entries)?,
                    devices: devices.try_get("n")?,
                    online: devices.try_get("online")?,
                })
            }

            async fn close(&self) {
                self.read.close().await;
                self.write.close().await;
            }
        }

        const IN_FLIGHT: &str = "('sent', 'downloading', 'verifying', 'installing', 'rebooting')";

        fn rollout_from_row(row: &$row) -> StoreResult<RolloutRecord> {
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

        fn entry_from_row(row: &$row) -> StoreResult<EntryRecord> {
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

        /// Compare-and-set changes in bulk (one statement per 500): each entry changes only if
        /// it is still in its `expect_state` with `expect_attempts`; `heard` also stamps
        /// `last_heard_at`. Returns the (rollout, device) keys that changed. At most one
        /// change per entry.
        async fn apply_changes(
            tx: &mut sqlx::Transaction<'_, $db>,
            changes: &[EntryChange],
            now: i64,
            heard: bool,
        ) -> StoreResult<std::collections::HashSet<(String, String)>> {
            let mut applied = std::collections::HashSet::with_capacity(changes.len());
            for chunk in changes.chunks(500) {
                let mut q = QueryBuilder::<$db>::new(
                    "UPDATE rollout_devices SET state = v.column3, reason = v.column4, attempts = v.column5, \
                     reported = v.column6, sent_at = v.column7, retry_at = v.column8, updated_at = ",
                );
                q.push_bind(now);
                if heard {
                    q.push(", last_heard_at = ").push_bind(now);
                }
                q.push(" FROM (");
                q.push_values(chunk, |mut b, c| {
                    b.push_bind(&c.rollout_id)
                        .push_bind(&c.device_id)
                        .push_bind(c.state.as_str())
                        .push_bind(c.reason.map(Reason::as_str))
                        .push_bind(c.attempts)
                        .push_bind(c.reported)
                        .push_bind(c.sent_at)
                        .push_bind(c.retry_at)
                        .push_bind(c.expect_state.as_str())
                        .push_bind(c.expect_attempts);
                });
                q.push(
                    ") AS v WHERE rollout_devices.rollout_id = v.column1 AND rollout_devices.device_id = v.column2 \
                     AND rollout_devices.state = v.column9 AND rollout_devices.attempts = v.column10 \
                     RETURNING rollout_devices.rollout_id, rollout_devices.device_id",
                );
                for row in q.build().fetch_all(&mut **tx).await? {
                    applied.insert((row.try_get(0)?, row.try_get(1)?));
                }
            }
            Ok(applied)
        }

        #[async_trait]
        impl RolloutStore for $store {
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
                    let mut q = QueryBuilder::<$db>::new(
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
                    let mut q = QueryBuilder::<$db>::new(
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
                    let mut q = QueryBuilder::<$db>::new(
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

            async fn lease_rollout(&self, id: &str, owner: &str, now: i64, until: i64) -> StoreResult<bool> {
                let done = sqlx::query(
                    "UPDATE rollouts SET lease_owner = $1, lease_until = $2 WHERE id = $3 \
                     AND (lease_owner IS NULL OR lease_owner = $1 OR lease_until < $4)",
                )
                .bind(owner)
                .bind(until)
                .bind(id)
                .bind(now)
                .execute(&self.write)
                .await?;
                Ok(done.rows_affected() == 1)
            }

            async fn release_leases(&self, owner: &str) -> StoreResult<()> {
                sqlx::query("UPDATE rollouts SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = $1")
                    .bind(owner)
                    .execute(&self.write)
                    .await?;
                Ok(())
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

            async fn tallies(&self, id: &str, since: i64, sent_after: i64) -> StoreResult<Vec<Count>> {
                let rows = sqlx::query(
                    "SELECT wave, state, reason, COUNT(*) AS n, \
                     SUM(CASE WHEN updated_at >= $2 THEN 1 ELSE 0 END) AS since, \
                     SUM(CASE WHEN sent_at > $3 THEN 1 ELSE 0 END) AS sent_recently \
                     FROM rollout_devices WHERE rollout_id = $1 GROUP BY wave, state, reason ORDER BY wave",
                )
                .bind(id)
                .bind(since)
                .bind(sent_after)
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
                            since: row.try_get("since")?,
                            sent_recently: row.try_get("sent_recently")?,
                        })
                    })
                    .collect()
            }

            async fn select_entries(&self, rollout_id: &str, select: EntrySelect) -> StoreResult<Vec<EntryRecord>> {
                let mut q = QueryBuilder::<$db>::new("SELECT * FROM rollout_devices WHERE rollout_id = ");
                q.push_bind(rollout_id);
                match select {
                    EntrySelect::InFlight => {
                        q.push(format!(" AND state IN {IN_FLIGHT}"));
                    }
                    EntrySelect::InFlightSentBy(t) => {
                        q.push(format!(" AND state IN {IN_FLIGHT} AND sent_at <= ")).push_bind(t);
                    }
                    EntrySelect::InFlightQuietSince(t) => {
                        q.push(format!(" AND state IN {IN_FLIGHT} AND (sent_at IS NULL OR sent_at <= "));
                        q.push_bind(t).push(") AND (last_heard_at IS NULL OR last_heard_at <= ").push_bind(t).push(")");
                    }
                    EntrySelect::Pending => {
                        q.push(" AND state = 'pending'");
                    }
                    EntrySelect::Due { wave, now, .. } => {
                        q.push(" AND state = 'pending' AND wave <= ").push_bind(wave);
                        q.push(" AND (retry_at IS NULL OR retry_at <= ").push_bind(now).push(")");
                    }
                }
                q.push(" ORDER BY position");
                if let EntrySelect::Due { limit, .. } = select {
                    q.push(" LIMIT ").push_bind(limit);
                }
                let rows = q.build().fetch_all(&self.read).await?;
                rows.iter().map(entry_from_row).collect()
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
                let applied = apply_changes(&mut tx, changes, now, false).await?;
                tx.commit().await?;
                Ok(changes
                    .iter()
                    .filter(|c| applied.contains(&(c.rollout_id.clone(), c.device_id.clone())))
                    .cloned()
                    .collect())
            }

            async fn apply_reports(&self, reports: &[IncomingReport], now: i64) -> StoreResult<Vec<ReportOutcome>> {
                let mut tx = self.write.begin().await?;
                let mut batch = ReportBatch::load(&mut tx, reports).await?;
                let mut outcomes = Vec::with_capacity(reports.len());
                for incoming in reports {
                    let outcome = match batch.accept_seq(incoming) {
                        Err(why) => ReportOutcome::Ignored(why),
                        Ok(()) => match batch.judge(incoming, now) {
                            Some(outcome) => outcome,
                            None => Self::connect_elsewhere(&mut tx, &batch, incoming).await?,
                        },
                    };
                    outcomes.push(outcome);
                }
                let applied = batch.write(&mut tx, now).await?;
                tx.commit().await?;
                // A change that lost its compare-and-set to a concurrent writer applied nothing.
                for (incoming, outcome) in reports.iter().zip(outcomes.iter_mut()) {
                    if let ReportOutcome::Applied { rollout_id: Some(r) } = outcome {
                        if !applied.contains(&(r.clone(), incoming.device.as_str().to_owned())) {
                            *outcome = ReportOutcome::Ignored("raced");
                        }
                    }
                }
                Ok(outcomes)
            }

            async fn set_presence(&self, changes: &[(DeviceId, bool)], now: i64) -> StoreResult<()> {
                // The last word of each device counts.
                let mut last: HashMap<&str, bool> = HashMap::new();
                for (device, online) in changes {
                    last.insert(device.as_str(), *online);
                }
                let last: Vec<_> = last.into_iter().collect();
                let mut tx = self.write.begin().await?;
                for chunk in last.chunks(500) {
                    let mut q = QueryBuilder::<$db>::new("UPDATE devices SET last_seen = ");
                    q.push_bind(now).push(", online = v.column2 FROM (");
                    q.push_values(chunk, |mut b, (id, online)| {
                        b.push_bind(*id).push_bind(*online);
                    });
                    q.push(") AS v WHERE devices.id = v.column1");
                    q.build().execute(&mut *tx).await?;
                }
                tx.commit().await?;
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

            async fn now_ms(&self) -> StoreResult<i64> {
                // A reader: the clock must not queue behind the single writer.
                Ok(sqlx::query($now_sql).fetch_one(&self.read).await?.try_get(0)?)
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

        impl $store {
            /// A connect report naming no rollout it is in: re-send the device's outstanding
            /// command, if any.
            async fn connect_elsewhere(
                tx: &mut sqlx::Transaction<'_, $db>,
                batch: &ReportBatch,
                incoming: &IncomingReport,
            ) -> StoreResult<ReportOutcome> {
                let outstanding = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "SELECT rd.* FROM rollout_devices rd JOIN rollouts r ON r.id = rd.rollout_id \
                     WHERE rd.device_id = $1 AND rd.state IN {IN_FLIGHT} ORDER BY r.created_at DESC LIMIT 1"
                )))
                .bind(incoming.device.as_str())
                .fetch_optional(&mut **tx)
                .await?;
                let outstanding = outstanding.map(|row| entry_from_row(&row)).transpose()?;
                // An earlier report of this batch may have moved the entry on (not written yet).
                let outstanding = outstanding.map(|e| match batch.entries.get(&(e.rollout_id.clone(), e.device_id.clone())) {
                    Some((judged, ..)) => judged.clone(),
                    None => e,
                });
                Ok(match outstanding {
                    Some(e) if on_connect_elsewhere(&e) == Verdict::Resend => {
                        ReportOutcome::Resend { rollout_id: e.rollout_id }
                    }
                    _ => ReportOutcome::Applied { rollout_id: None },
                })
            }
        }

        /// One ingest batch in memory: read with one query per 500 devices and per 500
        /// entries, judged report by report in arrival order (a device's later report sees
        /// its earlier one), written back with one statement per 500 devices and per 500
        /// changed entries.
        #[derive(Default)]
        struct ReportBatch {
            /// Every known device's last accepted `seq`.
            last_seq: HashMap<String, Option<i64>>,
            /// The entries the reports name, as they stand after the reports judged so far,
            /// with their rollout's state and `max_attempts`.
            entries: HashMap<(String, String), (EntryRecord, RolloutState, i64)>,
            /// Device rows to write: the last accepted report of each, in first-seen order.
            devices: Vec<(String, i64, Option<Installed>, Option<Installed>)>,
            device_index: HashMap<String, usize>,
            /// Entry changes to write: the first change's expectations, the last change's values.
            changes: Vec<EntryChange>,
            change_index: HashMap<(String, String), usize>,
        }

        impl ReportBatch {
            async fn load(tx: &mut sqlx::Transaction<'_, $db>, reports: &[IncomingReport]) -> StoreResult<Self> {
                let mut batch = Self::default();
                let mut ids: Vec<&str> = reports.iter().map(|r| r.device.as_str()).collect();
                ids.sort_unstable();
                ids.dedup();
                for chunk in ids.chunks(500) {
                    let mut q = QueryBuilder::<$db>::new("SELECT id, last_seq FROM devices WHERE id IN (");
                    let mut sep = q.separated(", ");
                    for id in chunk {
                        sep.push_bind(*id);
                    }
                    q.push(")");
                    for row in q.build().fetch_all(&mut **tx).await? {
                        batch.last_seq.insert(row.try_get("id")?, row.try_get("last_seq")?);
                    }
                }
                let mut named: Vec<(&str, &str)> = reports
                    .iter()
                    .filter_map(|r| Some((r.report.rollout_id.as_ref()?.as_str(), r.device.as_str())))
                    .collect();
                named.sort_unstable();
                named.dedup();
                for chunk in named.chunks(500) {
                    let mut q = QueryBuilder::<$db>::new(
                        "SELECT rd.*, r.state AS rollout_state, r.max_attempts FROM rollout_devices rd \
                         JOIN rollouts r ON r.id = rd.rollout_id WHERE (rd.rollout_id, rd.device_id) IN (",
                    );
                    let mut sep = q.separated(", ");
                    for (rollout, device) in chunk {
                        sep.push("(").push_bind_unseparated(*rollout).push_unseparated(", ");
                        sep.push_bind_unseparated(*device).push_unseparated(")");
                    }
                    q.push(")");
                    for row in q.build().fetch_all(&mut **tx).await? {
                        let entry = entry_from_row(&row)?;
                        let state: String = row.try_get("rollout_state")?;
                        let state = RolloutState::parse(&state).ok_or_else(|| corrupt("rollout state", &state))?;
                        let key = (entry.rollout_id.clone(), entry.device_id.clone());
                        batch.entries.insert(key, (entry, state, row.try_get("max_attempts")?));
                    }
                }
                Ok(batch)
            }

            /// Checks the device and the report's `seq`, and records the device's new state.
            fn accept_seq(&mut self, incoming: &IncomingReport) -> Result<(), &'static str> {
                let id = incoming.device.as_str();
                let Some(last) = self.last_seq.get_mut(id) else {
                    return Err("unknown_device");
                };
                let Ok(seq) = i64::try_from(incoming.report.seq) else {
                    return Err("bad_seq");
                };
                if last.is_some_and(|s| seq <= s) {
                    return Err("stale_seq");
                }
                *last = Some(seq);
                let row = (id.to_owned(), seq, incoming.report.firmware.clone(), incoming.report.config.clone());
                match self.device_index.get(id) {
                    Some(&i) => self.devices[i] = row,
                    None => {
                        self.device_index.insert(id.to_owned(), self.devices.len());
                        self.devices.push(row);
                    }
                }
                Ok(())
            }

            /// The report's effect on the entry it names; `None` for a connect report naming
            /// no entry of the device (the caller looks for an outstanding command).
            fn judge(&mut self, incoming: &IncomingReport, now: i64) -> Option<ReportOutcome> {
                let r = &incoming.report;
                let named = r.rollout_id.as_ref().map(|rollout| (rollout.as_str().to_owned(), incoming.device.as_str().to_owned()));
                let Some((entry, rollout_state, max_attempts)) = named.as_ref().and_then(|k| self.entries.get_mut(k)) else {
                    if r.connect {
                        return None;
                    }
                    return Some(ReportOutcome::Ignored(if r.rollout_id.is_some() { "unknown_rollout" } else { "idle" }));
                };
                Some(match on_report(entry, *rollout_state, *max_attempts, r.state, r.reason, r.connect, now) {
                    Verdict::Change(c) => {
                        entry.state = c.state;
                        entry.reason = c.reason;
                        entry.attempts = c.attempts;
                        entry.reported = c.reported;
                        entry.sent_at = c.sent_at;
                        entry.retry_at = c.retry_at;
                        entry.updated_at = now;
                        let rollout_id = Some(c.rollout_id.clone());
                        self.merge(c);
                        ReportOutcome::Applied { rollout_id }
                    }
                    Verdict::Resend => ReportOutcome::Resend { rollout_id: entry.rollout_id.clone() },
                    Verdict::Ignore(why) => ReportOutcome::Ignored(why),
                })
            }

            fn merge(&mut self, c: EntryChange) {
                let key = (c.rollout_id.clone(), c.device_id.clone());
                match self.change_index.get(&key) {
                    Some(&i) => {
                        let first = &self.changes[i];
                        self.changes[i] =
                            EntryChange { expect_state: first.expect_state, expect_attempts: first.expect_attempts, ..c };
                    }
                    None => {
                        self.change_index.insert(key, self.changes.len());
                        self.changes.push(c);
                    }
                }
            }

            /// Writes the devices and the changed entries; returns the entries that changed.
            async fn write(
                &self,
                tx: &mut sqlx::Transaction<'_, $db>,
                now: i64,
            ) -> StoreResult<std::collections::HashSet<(String, String)>> {
                for chunk in self.devices.chunks(500) {
                    let mut q = QueryBuilder::<$db>::new("UPDATE devices SET last_seen = ");
                    q.push_bind(now);
                    q.push(
                        ", online = TRUE, last_seq = v.column2, firmware_name = v.column3, firmware_version = v.column4, \
                         firmware_sha256 = v.column5, config_name = v.column6, config_version = v.column7, \
                         config_sha256 = v.column8 FROM (",
                    );
                    q.push_values(chunk, |mut b, (id, seq, fw, cfg)| {
                        b.push_bind(id)
                            .push_bind(*seq)
                            .push_bind(fw.as_ref().map(|i| i.name.to_string()))
                            .push_bind(fw.as_ref().map(|i| i.version.to_string()))
                            .push_bind(fw.as_ref().map(|i| i.sha256.to_hex()))
                            .push_bind(cfg.as_ref().map(|i| i.name.to_string()))
                            .push_bind(cfg.as_ref().map(|i| i.version.to_string()))
                            .push_bind(cfg.as_ref().map(|i| i.sha256.to_hex()));
                    });
                    q.push(") AS v WHERE devices.id = v.column1");
                    q.build().execute(&mut **tx).await?;
                }
                apply_changes(tx, &self.changes, now, true).await
            }
        }

    };
}

pub(crate) use sql_store;
