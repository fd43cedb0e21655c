//! A graceful stop: the server stops promptly with work in flight, and a report a device
//! sent just before the stop is stored, not dropped with an aborted task.

use std::time::Duration;

use fleet_protocol::message::{Installed, StatusReport};
use fleet_protocol::state::DeviceState;
use fleet_protocol::{HardwareModel, ProductName, Sha256Digest};
use fleet_tests::TestApp;

use crate::rollouts::send_report;

/// The longest a stop may take: the tasks' bound (10 s) and some room.
const STOP_WITHIN: Duration = Duration::from_secs(12);

#[tokio::test]
async fn stops_promptly_and_keeps_a_report_sent_just_before() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn_in(dir.path(), |_| {}).await;
    let token = app.client.add_device("dev-1", "rpi4", &Default::default()).await.unwrap().token;
    let installed = Installed {
        name: ProductName::parse("gateway-os").unwrap(),
        version: semver::Version::new(4, 2, 0),
        sha256: Sha256Digest::of(b"4.2.0"),
    };
    let report = StatusReport {
        rollout_id: None,
        state: DeviceState::Idle,
        progress: None,
        reason: None,
        seq: 1,
        connect: true,
        hardware: Some(HardwareModel::parse("rpi4").unwrap()),
        firmware: Some(installed.clone()),
        config: None,
        trust_version: None,
    };
    send_report(&app.mqtt_url, "dev-1", &token, &report).await;

    let started = tokio::time::Instant::now();
    tokio::time::timeout(STOP_WITHIN, app.stop()).await.expect("the server stops within its bound");
    assert!(started.elapsed() < STOP_WITHIN, "stopped in {:?}", started.elapsed());

    let app = TestApp::spawn_in(dir.path(), |_| {}).await;
    let device = app.client.get_device("dev-1").await.unwrap();
    assert_eq!(device.firmware, Some(installed), "the report sent before the stop is stored");
    app.stop().await;
}
