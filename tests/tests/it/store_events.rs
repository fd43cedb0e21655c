//! The events storage story, told to both databases: marks move by compare-and-set with
//! their deliveries, deliveries are claimed under a lease that another owner cannot take,
//! attempts are recorded, 410 disables, and removing a webhook removes its deliveries.

use std::sync::Arc;

use fleet_server::store::events::{Attempt, MarkChange, NewDelivery, WebhookRecord};
use fleet_server::store::{PageRequest, Store, StoreError};

fn webhook(id: &str) -> WebhookRecord {
    WebhookRecord {
        id: id.into(),
        url: "https://hooks.example/x".into(),
        events: vec!["rollout.*".into()],
        secret: "whsec_c2VjcmV0".into(),
        enabled: true,
        last_status: None,
        last_error: None,
        last_attempt_at_ms: None,
        created_at_ms: 1,
    }
}

fn delivery(id: &str, webhook: &str) -> NewDelivery {
    NewDelivery { id: id.into(), webhook_id: webhook.into(), event_type: "rollout.created".into(), body: "{}".into() }
}

fn mark(key: &str, old: Option<&str>, new: &str, deliveries: &[NewDelivery]) -> MarkChange {
    MarkChange { key: key.into(), old: old.map(Into::into), new: new.into(), deliveries: deliveries.to_vec() }
}

fn attempt(status: i64, state: &'static str, next: i64) -> Attempt {
    Attempt { status: Some(status), error: None, state, next_attempt_at_ms: next, disable: status == 410 }
}

async fn story(store: Arc<dyn Store>) {
    let page = PageRequest { limit: 100, cursor: None };
    store.insert_webhook(&webhook("wh_a")).await.unwrap();
    store.insert_webhook(&webhook("wh_b")).await.unwrap();
    assert_eq!(store.enabled_webhooks().await.unwrap().len(), 2);

    // Marks: the first write wins, a stale one writes nothing (not even its deliveries).
    assert_eq!(
        store.record_events(&[mark("rollout:r1", None, "v1", &[delivery("msg_1", "wh_a")])]).await.unwrap(),
        [true]
    );
    assert_eq!(
        store.record_events(&[mark("rollout:r1", None, "v1", &[delivery("msg_x", "wh_a")])]).await.unwrap(),
        [false]
    );
    // In one transaction, each change stands alone: the stale one is skipped, the rest land.
    let batch = [
        mark("rollout:r1", Some("v0"), "v2", &[delivery("msg_y", "wh_a")]),
        mark("rollout:r1", Some("v1"), "v2", &[delivery("msg_2", "wh_a"), delivery("msg_3", "wh_b")]),
        mark("device:d1", None, "on", &[]),
    ];
    assert_eq!(store.record_events(&batch).await.unwrap(), [false, true, true]);
    assert!(store.record_events(&[]).await.unwrap().is_empty());
    let keys = ["rollout:r1".to_owned(), "device:d1".to_owned(), "device:never".to_owned()];
    let marks = store.event_marks(&keys).await.unwrap();
    assert_eq!(marks.len(), 2, "a key never announced is absent: {marks:?}");
    assert_eq!((marks["rollout:r1"].as_str(), marks["device:d1"].as_str()), ("v2", "on"));
    assert_eq!(store.delivery_tally("wh_a").await.unwrap().pending, 2);

    // Claims: what one owner holds, another cannot take until the lease ends.
    let now = store.now_ms().await.unwrap();
    let claimed = store.claim_deliveries("a", now, now + 30_000, 10).await.unwrap();
    assert_eq!(claimed.len(), 3);
    assert!(store.claim_deliveries("b", now, now + 30_000, 10).await.unwrap().is_empty());
    assert!(!store.finish_delivery("msg_1", "b", &attempt(204, "delivered", now), now).await.unwrap(), "not b's");
    assert!(store.finish_delivery("msg_1", "a", &attempt(204, "delivered", now), now).await.unwrap());
    assert!(store.finish_delivery("msg_2", "a", &attempt(500, "pending", now + 5_000), now).await.unwrap());
    assert!(store.claim_deliveries("b", now, now + 30_000, 10).await.unwrap().is_empty(), "msg_2 is not due yet");
    let retried = store.claim_deliveries("b", now + 5_000, now + 35_000, 10).await.unwrap();
    assert_eq!(retried.iter().map(|d| (d.id.as_str(), d.attempts)).collect::<Vec<_>>(), [("msg_2", 1)]);
    let expired = store.claim_deliveries("c", now + 31_000, now + 61_000, 10).await.unwrap();
    assert_eq!(expired.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(), ["msg_3"], "a lapsed lease is taken");

    // 410: the webhook is disabled and its pending deliveries fail.
    assert!(store.finish_delivery("msg_2", "b", &attempt(410, "failed", now), now).await.unwrap());
    let a = store.get_webhook("wh_a").await.unwrap();
    assert_eq!((a.enabled, a.last_status), (false, Some(410)));
    let tally = store.delivery_tally("wh_a").await.unwrap();
    assert_eq!((tally.pending, tally.delivered, tally.failed), (0, 1, 1));
    let listed = store.list_deliveries("wh_a", &page).await.unwrap();
    assert_eq!(listed.items.iter().map(|d| d.id.as_str()).collect::<Vec<_>>(), ["msg_2", "msg_1"], "newest first");
    let first = store.list_deliveries("wh_a", &PageRequest { limit: 1, cursor: None }).await.unwrap();
    assert_eq!(first.next_cursor.as_deref(), Some("msg_2"));
    let next = PageRequest { limit: 1, cursor: first.next_cursor };
    assert_eq!(store.list_deliveries("wh_a", &next).await.unwrap().items[0].id, "msg_1");

    // Pruning removes finished deliveries created before the cut-off, never pending ones.
    assert_eq!(store.prune_deliveries(now - 60_000).await.unwrap(), 0, "all are younger");
    assert_eq!(store.prune_deliveries(now + 60_000).await.unwrap(), 2, "msg_1 delivered, msg_2 failed");
    assert_eq!(store.delivery_tally("wh_b").await.unwrap().pending, 1, "msg_3 is still pending");

    store.delete_webhook("wh_b").await.unwrap();
    assert!(matches!(store.get_webhook("wh_b").await, Err(StoreError::NotFound)));
    assert!(matches!(store.delete_webhook("wh_b").await, Err(StoreError::NotFound)));
    assert!(!store.finish_delivery("msg_3", "c", &attempt(204, "delivered", now), now).await.unwrap(), "gone");
    assert_eq!(store.list_webhooks(&page).await.unwrap().items.len(), 1);
}

#[tokio::test]
async fn events_story_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = fleet_server::store::sqlite::SqliteStore::open(&dir.path().join("db")).await.unwrap();
    story(Arc::new(store)).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL at FLEET_TEST_DATABASE_URL (CI starts it)"]
async fn events_story_on_postgres() {
    let url = fleet_tests::fresh_postgres().await;
    let store = fleet_server::store::postgres::PgStore::connect(&url).await.unwrap();
    story(Arc::new(store)).await;
}
