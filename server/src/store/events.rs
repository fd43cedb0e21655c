//! What events need stored (CONTRACT §10): the marks events are computed against, the
//! webhooks, and the outbox of their deliveries.

use std::collections::HashMap;

use async_trait::async_trait;

use super::{Page, PageRequest, StoreResult};

/// A registered webhook.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookRecord {
    pub id: String,
    pub url: String,
    pub events: Vec<String>,
    /// The HMAC key as issued (`whsec_…`); never in `Debug` or logs.
    pub secret: String,
    pub enabled: bool,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub last_attempt_at_ms: Option<i64>,
    pub created_at_ms: i64,
}

impl std::fmt::Debug for WebhookRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookRecord").field("id", &self.id).field("url", &self.url).finish_non_exhaustive()
    }
}

/// (pending, delivered, failed) deliveries of one webhook.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DeliveryTally {
    pub pending: i64,
    pub delivered: i64,
    pub failed: i64,
}

/// An announcement to record: the mark under `key` moves from `old` (`None`: none yet) to
/// `new`, and the deliveries of the events it made go to the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkChange {
    pub key: String,
    pub old: Option<String>,
    pub new: String,
    pub deliveries: Vec<NewDelivery>,
}

/// One event for one webhook, to be written to the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    /// The `webhook-id` header.
    pub id: String,
    pub webhook_id: String,
    pub event_type: String,
    pub body: String,
}

/// A delivery in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryRecord {
    pub id: String,
    pub webhook_id: String,
    pub event_type: String,
    pub body: String,
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at_ms: i64,
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    pub created_at_ms: i64,
    pub delivered_at_ms: Option<i64>,
}

/// How one attempt ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub status: Option<i64>,
    pub error: Option<String>,
    /// `delivered`, `pending` (retry at `next_attempt_at_ms`) or `failed`.
    pub state: &'static str,
    pub next_attempt_at_ms: i64,
    /// The endpoint answered 410: the webhook is disabled, its pending deliveries fail.
    pub disable: bool,
}

#[async_trait]
pub trait EventStore: Send + Sync {
    /// The last announced bodies under `keys` (`rollout:{id}`, `device:{id}`), by key; a
    /// key never announced is absent.
    async fn event_marks(&self, keys: &[String]) -> StoreResult<HashMap<String, String>>;
    /// Applies every change in one transaction: a mark moves from its `old` to its `new`
    /// with its deliveries written, or, if it was no longer `old`, nothing of it is written.
    /// Returns, in order, whether each was written.
    async fn record_events(&self, changes: &[MarkChange]) -> StoreResult<Vec<bool>>;
    async fn insert_webhook(&self, webhook: &WebhookRecord) -> StoreResult<()>;
    async fn get_webhook(&self, id: &str) -> StoreResult<WebhookRecord>;
    async fn list_webhooks(&self, page: &PageRequest) -> StoreResult<Page<WebhookRecord>>;
    async fn enabled_webhooks(&self) -> StoreResult<Vec<WebhookRecord>>;
    /// Removes the webhook and its deliveries.
    async fn delete_webhook(&self, id: &str) -> StoreResult<()>;
    async fn delivery_tally(&self, webhook_id: &str) -> StoreResult<DeliveryTally>;
    /// Newest first; the cursor is the last id of the previous page.
    async fn list_deliveries(&self, webhook_id: &str, page: &PageRequest) -> StoreResult<Page<DeliveryRecord>>;
    /// Leases up to `limit` due pending deliveries of enabled webhooks to `owner` until
    /// `until` (compare-and-set: a row leased by another replica is not taken).
    async fn claim_deliveries(&self, owner: &str, now: i64, until: i64, limit: i64)
    -> StoreResult<Vec<DeliveryRecord>>;
    /// Removes delivered and failed deliveries created before `before`; returns how many.
    async fn prune_deliveries(&self, before: i64) -> StoreResult<u64>;
    /// Gives up `owner`'s claims at a stop, so the next start (or another replica) sends
    /// them without waiting for their leases to end.
    async fn release_deliveries(&self, owner: &str) -> StoreResult<()>;
    /// Records an attempt of a delivery this `owner` holds; false if its lease was lost.
    async fn finish_delivery(&self, id: &str, owner: &str, attempt: &Attempt, now: i64) -> StoreResult<bool>;
}
