//! Trust documents and the devices' trust versions in storage, told to both databases:
//! versions are unique, the latest is the highest, a report's `trust_version` is kept and
//! `trust_below` selects the devices behind (or reporting none). SQLite always; PostgreSQL
//! where FLEET_TEST_DATABASE_URL names one (CI).

use std::sync::Arc;

use fleet_protocol::message::StatusReport;
use fleet_protocol::state::DeviceState;
use fleet_protocol::{DeviceId, HardwareModel};
use fleet_server::store::rollouts::IncomingReport;
use fleet_server::store::{DeviceFilter, NewDevice, PageRequest, Store, StoreError, TrustRecord};

fn record(version: u64) -> TrustRecord {
    TrustRecord { version, envelope_json: format!("{{\"v\":{version}}}"), expires_at_ms: 9, created_at_ms: 1 }
}

fn report(seq: u64, trust_version: Option<u64>) -> StatusReport {
    serde_json::from_value(serde_json::json!({
        "rollout_id": null, "state": DeviceState::Idle, "seq": seq, "connect": false, "trust_version": trust_version
    }))
    .unwrap()
}

async fn story(store: Arc<dyn Store>) {
    assert_eq!(store.latest_trust().await.unwrap(), None);
    store.insert_trust(&record(1)).await.unwrap();
    store.insert_trust(&record(2)).await.unwrap();
    assert!(matches!(store.insert_trust(&record(2)).await, Err(StoreError::Conflict)));
    assert_eq!(store.latest_trust().await.unwrap(), Some(record(2)));
    assert_eq!(store.get_trust(1).await.unwrap(), record(1));
    assert!(matches!(store.get_trust(5).await, Err(StoreError::NotFound)));

    for i in 0..3 {
        let d = NewDevice {
            id: DeviceId::parse(format!("dev-{i}")).unwrap(),
            hardware: HardwareModel::parse("rpi4").unwrap(),
            labels: Default::default(),
            token_hash: format!("hash-{i}"),
            broker_password_hash: format!("$7$-{i}"),
            created_at_ms: 3,
        };
        store.insert_device(&d).await.unwrap();
    }
    let reports = [(0, Some(2)), (1, Some(1))]
        .map(|(i, v)| IncomingReport { device: DeviceId::parse(format!("dev-{i}")).unwrap(), report: report(1, v) });
    store.apply_reports(&reports, 10).await.unwrap();
    let dev0 = store.get_device(&DeviceId::parse("dev-0").unwrap()).await.unwrap();
    assert_eq!(dev0.trust_version, Some(2));
    let behind = DeviceFilter { trust_below: Some(2), ..Default::default() };
    let page = PageRequest { limit: 10, cursor: None };
    let ids: Vec<String> =
        store.list_devices(&behind, &page).await.unwrap().items.into_iter().map(|d| d.id.to_string()).collect();
    assert_eq!(ids, ["dev-1", "dev-2"]);
}

#[tokio::test]
async fn trust_story_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = fleet_server::store::sqlite::SqliteStore::open(&dir.path().join("db")).await.unwrap();
    story(Arc::new(store)).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL at FLEET_TEST_DATABASE_URL (CI starts it)"]
async fn trust_story_on_postgres() {
    let url = fleet_tests::fresh_postgres().await;
    let store = fleet_server::store::postgres::PgStore::connect(&url).await.unwrap();
    story(Arc::new(store)).await;
}
