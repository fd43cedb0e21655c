//! Device certificates in storage, told to both databases: found by their SHA-256, unique
//! serials, revoked per device (only that device's, once), and the revoked ones not yet
//! expired listed for a CRL. SQLite always; PostgreSQL where FLEET_TEST_DATABASE_URL names
//! one (CI).

use std::sync::Arc;

use fleet_protocol::DeviceId;
use fleet_server::store::{DeviceCertificateRecord, Store, StoreError};

fn record(n: u32, device: &str, not_after_ms: i64) -> DeviceCertificateRecord {
    DeviceCertificateRecord {
        sha256: format!("{n:064x}"),
        serial: format!("{n:032x}"),
        device_id: DeviceId::parse(device).unwrap(),
        not_after_ms,
        revoked_at_ms: None,
        created_at_ms: 1,
    }
}

async fn story(store: Arc<dyn Store>) {
    let (a, b) = (DeviceId::parse("dev-a").unwrap(), DeviceId::parse("dev-b").unwrap());
    for cert in [record(1, "dev-a", 100), record(2, "dev-a", 1_000), record(3, "dev-b", 1_000)] {
        store.insert_device_certificate(&cert).await.unwrap();
    }
    let mut same_serial = record(4, "dev-b", 1_000);
    same_serial.serial = record(3, "dev-b", 0).serial;
    assert!(matches!(store.insert_device_certificate(&same_serial).await, Err(StoreError::Conflict)));
    assert_eq!(store.device_certificate(&record(2, "dev-a", 0).sha256).await.unwrap(), Some(record(2, "dev-a", 1_000)));
    assert_eq!(store.device_certificate(&record(9, "dev-a", 0).sha256).await.unwrap(), None);

    store.revoke_device_certificates(&a, 50).await.unwrap();
    store.revoke_device_certificates(&a, 60).await.unwrap();
    let revoked = store.device_certificate(&record(2, "dev-a", 0).sha256).await.unwrap().unwrap();
    assert_eq!(revoked.revoked_at_ms, Some(50), "revoked once, at the first revocation");
    let b_cert = store.device_certificate(&record(3, "dev-b", 0).sha256).await.unwrap().unwrap();
    assert_eq!(b_cert.revoked_at_ms, None, "another device's certificates stay");
    // At 500 the first of A's has expired: only the second belongs in a CRL.
    let listed: Vec<String> =
        store.revoked_device_certificates(500).await.unwrap().into_iter().map(|c| c.serial).collect();
    assert_eq!(listed, [record(2, "dev-a", 0).serial]);
    store.revoke_device_certificates(&b, 70).await.unwrap();
    assert_eq!(store.revoked_device_certificates(500).await.unwrap().len(), 2);
}

#[tokio::test]
async fn certificate_story_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let store = fleet_server::store::sqlite::SqliteStore::open(&dir.path().join("db")).await.unwrap();
    story(Arc::new(store)).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL at FLEET_TEST_DATABASE_URL (CI starts it)"]
async fn certificate_story_on_postgres() {
    let url = fleet_tests::fresh_postgres().await;
    let store = fleet_server::store::postgres::PgStore::connect(&url).await.unwrap();
    story(Arc::new(store)).await;
}
