//! Event marks, webhooks and the delivery outbox (CONTRACT §10).

use std::collections::HashMap;

use async_trait::async_trait;

use super::SqlStore;
use super::db::{CHUNK, Db, RowExt as _, Sql};
use super::rows::corrupt;
use crate::store::events::{Attempt, DeliveryRecord, DeliveryTally, EventStore, MarkChange, WebhookRecord};
use crate::store::{Page, PageRequest, RolloutStore as _, StoreError, StoreResult};

fn webhook_from_row<DB: Db>(row: &DB::Row) -> StoreResult<WebhookRecord> {
    let events: String = row.col("events")?;
    Ok(WebhookRecord {
        id: row.col("id")?,
        url: row.col("url")?,
        events: serde_json::from_str(&events).map_err(|e| corrupt("webhook events", e))?,
        secret: row.col("secret")?,
        enabled: row.col("enabled")?,
        last_status: row.col("last_status")?,
        last_error: row.col("last_error")?,
        last_attempt_at_ms: row.col("last_attempt_at")?,
        created_at_ms: row.col("created_at")?,
    })
}

fn delivery_from_row<DB: Db>(row: &DB::Row) -> StoreResult<DeliveryRecord> {
    Ok(DeliveryRecord {
        id: row.col("id")?,
        webhook_id: row.col("webhook_id")?,
        event_type: row.col("event_type")?,
        body: row.col("body")?,
        state: row.col("state")?,
        attempts: row.col("attempts")?,
        next_attempt_at_ms: row.col("next_attempt_at")?,
        last_status: row.col("last_status")?,
        last_error: row.col("last_error")?,
        created_at_ms: row.col("created_at")?,
        delivered_at_ms: row.col("delivered_at")?,
    })
}

/// Moves one mark by compare-and-set and, if it moved, writes its deliveries.
async fn record_mark<DB: Db>(conn: &mut DB::Connection, change: &MarkChange, now: i64) -> StoreResult<bool> {
    let marked = match &change.old {
        None => Sql::<DB>::new(
            "INSERT INTO event_marks (key, body, updated_at) VALUES ($1, $2, $3) ON CONFLICT (key) DO NOTHING",
        )
        .arg(&change.key)
        .arg(&change.new)
        .arg(now),
        Some(old) => Sql::<DB>::new("UPDATE event_marks SET body = $1, updated_at = $2 WHERE key = $3 AND body = $4")
            .arg(&change.new)
            .arg(now)
            .arg(&change.key)
            .arg(old),
    };
    if marked.execute(DB::on(&mut *conn)).await? == 0 {
        return Ok(false);
    }
    for d in &change.deliveries {
        Sql::<DB>::new(
            "INSERT INTO webhook_deliveries (id, webhook_id, event_type, body, state, next_attempt_at, created_at) \
             VALUES ($1, $2, $3, $4, 'pending', $5, $5)",
        )
        .arg(&d.id)
        .arg(&d.webhook_id)
        .arg(&d.event_type)
        .arg(&d.body)
        .arg(now)
        .execute(DB::on(&mut *conn))
        .await?;
    }
    Ok(true)
}

#[async_trait]
impl<DB: Db> EventStore for SqlStore<DB> {
    async fn event_marks(&self, keys: &[String]) -> StoreResult<HashMap<String, String>> {
        let mut marks = HashMap::with_capacity(keys.len());
        for chunk in keys.chunks(CHUNK) {
            let mut q = Sql::<DB>::new("SELECT key, body FROM event_marks WHERE key IN ");
            q.in_list(chunk);
            for row in q.fetch_all(self.reader()).await? {
                marks.insert(row.col("key")?, row.col("body")?);
            }
        }
        Ok(marks)
    }

    async fn record_events(&self, changes: &[MarkChange]) -> StoreResult<Vec<bool>> {
        if changes.is_empty() {
            return Ok(Vec::new());
        }
        let now = self.now_ms().await?;
        // By key, so two replicas' transactions over the same marks take their locks in the
        // same order and never wait on each other in a circle.
        let mut order: Vec<usize> = (0..changes.len()).collect();
        order.sort_by(|&a, &b| changes[a].key.cmp(&changes[b].key));
        let mut tx = self.write.begin().await?;
        let mut written = vec![false; changes.len()];
        for i in order {
            written[i] = record_mark::<DB>(&mut tx, &changes[i], now).await?;
        }
        tx.commit().await?;
        Ok(written)
    }

    async fn insert_webhook(&self, w: &WebhookRecord) -> StoreResult<()> {
        let events = serde_json::to_string(&w.events).map_err(|e| corrupt("webhook events", e))?;
        Sql::<DB>::new(
            "INSERT INTO webhooks (id, url, events, secret, enabled, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .arg(&w.id)
        .arg(&w.url)
        .arg(events)
        .arg(&w.secret)
        .arg(w.enabled)
        .arg(w.created_at_ms)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    async fn get_webhook(&self, id: &str) -> StoreResult<WebhookRecord> {
        let row = Sql::<DB>::new("SELECT * FROM webhooks WHERE id = $1").arg(id).fetch_one(self.reader()).await?;
        webhook_from_row::<DB>(&row)
    }

    async fn list_webhooks(&self, page: &PageRequest) -> StoreResult<Page<WebhookRecord>> {
        self.page_of("webhooks", "id", page, webhook_from_row::<DB>, |w| w.id.clone()).await
    }

    async fn enabled_webhooks(&self) -> StoreResult<Vec<WebhookRecord>> {
        let rows = Sql::<DB>::new("SELECT * FROM webhooks WHERE enabled ORDER BY id").fetch_all(self.reader()).await?;
        rows.iter().map(webhook_from_row::<DB>).collect()
    }

    async fn delete_webhook(&self, id: &str) -> StoreResult<()> {
        let mut tx = self.write.begin().await?;
        Sql::<DB>::new("DELETE FROM webhook_deliveries WHERE webhook_id = $1")
            .arg(id)
            .execute(DB::on(&mut *tx))
            .await?;
        if Sql::<DB>::new("DELETE FROM webhooks WHERE id = $1").arg(id).execute(DB::on(&mut *tx)).await? == 0 {
            return Err(StoreError::NotFound);
        }
        tx.commit().await?;
        Ok(())
    }

    async fn delivery_tally(&self, webhook_id: &str) -> StoreResult<DeliveryTally> {
        let rows =
            Sql::<DB>::new("SELECT state, COUNT(*) AS n FROM webhook_deliveries WHERE webhook_id = $1 GROUP BY state")
                .arg(webhook_id)
                .fetch_all(self.reader())
                .await?;
        let mut tally = DeliveryTally::default();
        for row in rows {
            let n: i64 = row.col("n")?;
            match row.col::<String>("state")?.as_str() {
                "pending" => tally.pending = n,
                "delivered" => tally.delivered = n,
                _ => tally.failed += n,
            }
        }
        Ok(tally)
    }

    async fn list_deliveries(&self, webhook_id: &str, page: &PageRequest) -> StoreResult<Page<DeliveryRecord>> {
        let mut q = Sql::<DB>::new("SELECT * FROM webhook_deliveries WHERE webhook_id = ");
        q.bind(webhook_id);
        if let Some(cursor) = &page.cursor {
            q.push(" AND id < ").bind(cursor.as_str());
        }
        q.push(" ORDER BY id DESC LIMIT ").bind(i64::from(page.limit) + 1);
        let rows = q.fetch_all(self.reader()).await?;
        let items = rows.iter().map(delivery_from_row::<DB>).collect::<StoreResult<Vec<_>>>()?;
        Ok(Page::from_rows(items, page.limit, |d| d.id.clone()))
    }

    async fn claim_deliveries(
        &self,
        owner: &str,
        now: i64,
        until: i64,
        limit: i64,
    ) -> StoreResult<Vec<DeliveryRecord>> {
        // The outer condition repeats the lease test: on PostgreSQL a row another replica
        // leased meanwhile is re-checked after its lock and left alone.
        let rows = Sql::<DB>::new(
            "UPDATE webhook_deliveries SET lease_owner = $1, lease_until = $2 WHERE id IN (\
               SELECT d.id FROM webhook_deliveries d JOIN webhooks w ON w.id = d.webhook_id \
               WHERE d.state = 'pending' AND w.enabled AND d.next_attempt_at <= $3 \
               AND (d.lease_until IS NULL OR d.lease_until < $3) ORDER BY d.next_attempt_at, d.id LIMIT $4) \
             AND state = 'pending' AND (lease_until IS NULL OR lease_until < $3) RETURNING *",
        )
        .arg(owner)
        .arg(until)
        .arg(now)
        .arg(limit)
        .fetch_all(self.writer())
        .await?;
        rows.iter().map(delivery_from_row::<DB>).collect()
    }

    async fn prune_deliveries(&self, before: i64) -> StoreResult<u64> {
        let sql = "DELETE FROM webhook_deliveries WHERE state IN ('delivered', 'failed') AND created_at < $1";
        Ok(Sql::<DB>::new(sql).arg(before).execute(self.writer()).await?)
    }

    async fn release_deliveries(&self, owner: &str) -> StoreResult<()> {
        Sql::<DB>::new("UPDATE webhook_deliveries SET lease_owner = NULL, lease_until = NULL WHERE lease_owner = $1")
            .arg(owner)
            .execute(self.writer())
            .await?;
        Ok(())
    }

    async fn finish_delivery(&self, id: &str, owner: &str, a: &Attempt, now: i64) -> StoreResult<bool> {
        let mut tx = self.write.begin().await?;
        let row = Sql::<DB>::new(
            "UPDATE webhook_deliveries SET state = $1, attempts = attempts + 1, next_attempt_at = $2, \
             last_status = $3, last_error = $4, delivered_at = CASE WHEN $1 = 'delivered' THEN $5 ELSE NULL END, \
             lease_owner = NULL, lease_until = NULL WHERE id = $6 AND lease_owner = $7 RETURNING webhook_id",
        )
        .arg(a.state)
        .arg(a.next_attempt_at_ms)
        .arg(a.status)
        .arg(a.error.as_deref())
        .arg(now)
        .arg(id)
        .arg(owner)
        .fetch_optional(DB::on(&mut *tx))
        .await?;
        let Some(row) = row else {
            return Ok(false);
        };
        let webhook: String = row.col("webhook_id")?;
        Sql::<DB>::new(
            "UPDATE webhooks SET last_status = $1, last_error = $2, last_attempt_at = $3, \
             enabled = enabled AND NOT $4 WHERE id = $5",
        )
        .arg(a.status)
        .arg(a.error.as_deref())
        .arg(now)
        .arg(a.disable)
        .arg(&webhook)
        .execute(DB::on(&mut *tx))
        .await?;
        if a.disable {
            Sql::<DB>::new(
                "UPDATE webhook_deliveries SET state = 'failed', last_error = 'webhook disabled (410 Gone)', \
                 lease_owner = NULL, lease_until = NULL WHERE webhook_id = $1 AND state = 'pending'",
            )
            .arg(&webhook)
            .execute(DB::on(&mut *tx))
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }
}
