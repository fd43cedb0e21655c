//! Operator tokens, and whose a bearer token is.

use async_trait::async_trait;
use fleet_protocol::DeviceId;
use fleet_protocol::api::TokenScope;

use super::SqlStore;
use super::db::{Db, RowExt as _, Sql};
use super::rows::corrupt;
use crate::store::{OperatorTokenRecord, Page, PageRequest, StoreError, StoreResult, TokenOwner, TokenStore};

fn operator_token_from_row<DB: Db>(row: &DB::Row) -> StoreResult<OperatorTokenRecord> {
    let scope: String = row.col("scope")?;
    Ok(OperatorTokenRecord {
        name: row.col("name")?,
        scope: TokenScope::parse(&scope).ok_or_else(|| corrupt("token scope", scope))?,
        token_hash: row.col("token_hash")?,
        mqtt: row.col("mqtt")?,
        broker_password_hash: row.col("broker_password_hash")?,
        created_at_ms: row.col("created_at")?,
    })
}

/// An insert of a token, with what to do when its name is taken.
fn insert_token<DB: Db>(t: &OperatorTokenRecord, on_conflict: &str) -> Sql<DB> {
    Sql::<DB>::new(format!(
        "INSERT INTO operator_tokens (name, scope, token_hash, created_at, mqtt, broker_password_hash) \
         VALUES ($1, $2, $3, $4, $5, $6) {on_conflict}"
    ))
    .arg(&t.name)
    .arg(t.scope.as_str())
    .arg(&t.token_hash)
    .arg(t.created_at_ms)
    .arg(t.mqtt)
    .arg(t.broker_password_hash.as_deref())
}

#[async_trait]
impl<DB: Db> TokenStore for SqlStore<DB> {
    async fn put_operator_token(&self, t: &OperatorTokenRecord) -> StoreResult<()> {
        let replace = "ON CONFLICT (name) DO UPDATE SET scope = excluded.scope, token_hash = excluded.token_hash, \
                       created_at = excluded.created_at, mqtt = excluded.mqtt, \
                       broker_password_hash = excluded.broker_password_hash";
        // Two replicas storing the same admin token at the same instant: PostgreSQL settles
        // the clash on `name` (the conflict target) but reports the one on the unique
        // `token_hash` as a violation. The second try finds the row by name and updates it.
        match insert_token::<DB>(t, replace).execute(self.writer()).await.map_err(StoreError::from) {
            Err(StoreError::Conflict) => insert_token::<DB>(t, replace).execute(self.writer()).await?,
            done => done?,
        };
        Ok(())
    }

    async fn init_operator_token(&self, t: &OperatorTokenRecord) -> StoreResult<OperatorTokenRecord> {
        insert_token::<DB>(t, "ON CONFLICT DO NOTHING").execute(self.writer()).await?;
        let row = Sql::<DB>::new("SELECT * FROM operator_tokens WHERE name = $1")
            .arg(&t.name)
            .fetch_one(self.writer())
            .await?;
        operator_token_from_row::<DB>(&row)
    }

    async fn token_owner(&self, token_hash: &str) -> StoreResult<Option<TokenOwner>> {
        let row = Sql::<DB>::new(
            "SELECT name, scope, token_hash, created_at, mqtt, broker_password_hash, NULL AS device_id \
             FROM operator_tokens WHERE token_hash = $1 \
             UNION ALL SELECT NULL, NULL, NULL, NULL, NULL, NULL, id FROM devices WHERE token_hash = $1",
        )
        .arg(token_hash)
        .fetch_optional(self.reader())
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        match row.col::<Option<String>>("device_id")? {
            Some(id) => Ok(Some(TokenOwner::Device(DeviceId::parse(id).map_err(|e| corrupt("device id", e))?))),
            None => Ok(Some(TokenOwner::Operator(operator_token_from_row::<DB>(&row)?))),
        }
    }

    async fn insert_operator_token(&self, t: &OperatorTokenRecord) -> StoreResult<()> {
        insert_token::<DB>(t, "").execute(self.writer()).await?;
        Ok(())
    }

    async fn list_operator_tokens(&self, page: &PageRequest) -> StoreResult<Page<OperatorTokenRecord>> {
        self.page_of("operator_tokens", "name", page, operator_token_from_row::<DB>, |t| t.name.clone()).await
    }

    async fn get_operator_token(&self, name: &str) -> StoreResult<OperatorTokenRecord> {
        let row = Sql::<DB>::new("SELECT * FROM operator_tokens WHERE name = $1").arg(name).fetch_one(self.reader());
        operator_token_from_row::<DB>(&row.await?)
    }

    async fn delete_operator_token(&self, name: &str) -> StoreResult<()> {
        let done =
            Sql::<DB>::new("DELETE FROM operator_tokens WHERE name = $1").arg(name).execute(self.writer()).await?;
        if done == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }
}
