//! PostgreSQL plans the statements of a rollout from the statistics of `rollout_devices`.
//! A large rollout adds its entries at once, and autovacuum analyzes them only up to a
//! minute later; without statistics every compare-and-set update of an entry read all the
//! entries in its state (BENCHMARKS.md §10). Creating a rollout of 1,000 entries or more
//! therefore analyzes the table at once.

use std::time::Duration;

use fleet_tests::TestApp;
use serde_json::json;

use crate::rollouts::{create, firmware};

/// The size from which the server analyzes the table.
const LARGE: usize = 1000;

/// When `rollout_devices` was last analyzed by a command (autovacuum's own analyses are
/// counted apart), asking `tries` times 100 ms apart until it was.
async fn last_analyze(url: &str, tries: usize) -> Option<String> {
    let pool = sqlx::PgPool::connect(url).await.expect("PostgreSQL answers");
    let query = "SELECT last_analyze::text FROM pg_stat_user_tables WHERE relname = 'rollout_devices'";
    for _ in 0..tries {
        let at: Option<String> = sqlx::query_scalar(query).fetch_one(&pool).await.expect("statistics view");
        if at.is_some() {
            return at;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

async fn register(app: &TestApp, prefix: &str, count: usize) {
    let ids: Vec<String> = (0..count).map(|i| format!("{prefix}-{i}")).collect();
    let no_labels = Default::default();
    for chunk in ids.chunks(50) {
        let adds = chunk.iter().map(|id| app.client.add_device(id, "sim", &no_labels));
        for added in futures_util::future::join_all(adds).await {
            added.expect("device registered");
        }
    }
}

#[tokio::test]
#[ignore = "needs PostgreSQL at FLEET_TEST_DATABASE_URL (CI starts it)"]
async fn on_postgres_a_large_rollout_has_its_entries_analyzed_at_once() {
    let url = fleet_tests::fresh_postgres().await;
    let app = TestApp::spawn_with(|s| s.database_url = Some(url.clone())).await;
    app.trust_release_key().await;

    register(&app, "small", 10).await;
    let fw = firmware(&app, "gateway-os", "1.0.0", "sim").await;
    create(&app, json!({"firmware": fw.id, "target": {"devices": ["small-0", "small-1"]}})).await;
    assert_eq!(last_analyze(&url, 1).await, None, "a small rollout leaves the statistics to autovacuum");

    register(&app, "large", LARGE).await;
    let devices: Vec<String> = (0..LARGE).map(|i| format!("large-{i}")).collect();
    create(&app, json!({"firmware": fw.id, "target": {"devices": devices}})).await;
    assert!(last_analyze(&url, 50).await.is_some(), "the {LARGE}-entry rollout was analyzed");
}
