//! Relabelling a device at the store, on both databases: all labels are replaced at once,
//! an unknown device is `NotFound`, and the label filter follows.

use std::collections::BTreeMap;
use std::sync::Arc;

use fleet_protocol::{DeviceId, HardwareModel};
use fleet_server::store::{DeviceFilter, NewDevice, PageRequest, Store, StoreError};

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

async fn relabel_story(store: Arc<dyn Store>) {
    let id = DeviceId::parse("dev-1").unwrap();
    let device = NewDevice {
        id: id.clone(),
        hardware: HardwareModel::parse("rpi4").unwrap(),
        labels: labels(&[("site", "berlin"), ("ring", "canary")]),
        token_hash: "hash-1".into(),
        broker_password_hash: "$7$-1".into(),
        created_at_ms: 1,
    };
    store.insert_device(&device).await.unwrap();

    let new = labels(&[("site", "paris")]);
    assert_eq!(store.set_device_labels(&id, &new).await.unwrap().labels, new);
    assert_eq!(store.get_device(&id).await.unwrap().labels, new);
    let page = PageRequest { limit: 10, cursor: None };
    let by = |k: &str, v: &str| DeviceFilter { hardware: None, labels: vec![(k.into(), v.into())], trust_below: None };
    assert_eq!(store.list_devices(&by("site", "paris"), &page).await.unwrap().items.len(), 1);
    assert!(store.list_devices(&by("ring", "canary"), &page).await.unwrap().items.is_empty());

    assert!(store.set_device_labels(&id, &BTreeMap::new()).await.unwrap().labels.is_empty());
    let unknown = DeviceId::parse("dev-404").unwrap();
    assert!(matches!(store.set_device_labels(&unknown, &new).await, Err(StoreError::NotFound)));
}

#[tokio::test]
async fn relabel_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = fleet_server::store::sqlite::SqliteStore::open(&dir.path().join("db")).await.unwrap();
    relabel_story(Arc::new(store)).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL at FLEET_TEST_DATABASE_URL (CI starts it)"]
async fn relabel_on_postgres() {
    let url = fleet_tests::fresh_postgres().await;
    let store = fleet_server::store::postgres::PgStore::connect(&url).await.unwrap();
    relabel_story(Arc::new(store)).await;
}
