//! Presence tells the truth: an agent stopped cleanly says `offline` before it goes (a clean
//! DISCONNECT suppresses its will), so do simulated devices, and a device that is silent
//! beyond the server's bound is shown offline even when its `online` is still retained.

use std::time::Duration;

use fleet_tests::TestApp;
use fleet_tests::agent::{AgentProcess, AgentSetup};
use fleet_tests::broker::publish_acked;
use fleet_tests::simulator::{Simulator, SimulatorSetup};
use rumqttc::v5::{AsyncClient, EventLoop, MqttOptions};
use tokio::time::Instant;

const AGENT: &str = env!("CARGO_BIN_EXE_fleet-agent-under-test");

/// Polls `GET /devices/{id}` until its `online` is `want`; returns how long that took.
async fn wait_online(app: &TestApp, id: &str, want: bool, within: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let device = app.client.get_device(id).await.unwrap();
        if device.online == want {
            return started.elapsed();
        }
        assert!(started.elapsed() < within, "{id} still online: {} after {within:?}", device.online);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn an_agent_stopped_with_sigterm_is_offline_within_five_seconds() {
    let app = TestApp::spawn().await;
    let token = app.client.add_device("dev-1", "rpi4", &Default::default()).await.unwrap().token;
    let dir = tempfile::tempdir().unwrap();
    let mut agent = AgentProcess::spawn(AGENT, &AgentSetup::on(&app, "dev-1", token, dir.path().join("dev-1")));
    wait_online(&app, "dev-1", true, Duration::from_secs(30)).await;

    let stopped = Instant::now();
    let status = agent.terminate().await;
    assert!(status.success(), "a clean stop exits 0: {status:?}\n{}", agent.log());
    let took = wait_online(&app, "dev-1", false, Duration::from_secs(5).saturating_sub(stopped.elapsed())).await;
    assert!(stopped.elapsed() < Duration::from_secs(5), "offline after {took:?}:\n{}", agent.log());
}

#[tokio::test]
async fn a_stopped_simulator_leaves_its_devices_offline() {
    let app = TestApp::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    let sim =
        Simulator::start(SimulatorSetup::new(AGENT, 5, app.client.base_url(), &app.mqtt_url, &dir.path().join("sim")))
            .await;
    for i in 0..5 {
        wait_online(&app, &format!("sim-{i}"), true, Duration::from_secs(10)).await;
    }
    let stopped = Instant::now();
    let status = sim.terminate().await;
    assert!(status.success(), "a clean stop exits 0: {status:?}");
    for i in 0..5 {
        wait_online(&app, &format!("sim-{i}"), false, Duration::from_secs(5).saturating_sub(stopped.elapsed())).await;
    }
}

/// A device client of our own: connected with the device's credentials, no will.
async fn device_client(app: &TestApp, id: &str, token: &str) -> (AsyncClient, EventLoop) {
    let (host, port) = app.mqtt_url.trim_start_matches("mqtt://").rsplit_once(':').unwrap();
    let mut options = MqttOptions::new(id, host, port.parse().unwrap());
    options.set_credentials(id, token).set_clean_start(true).set_keep_alive(Duration::from_secs(30));
    AsyncClient::new(options, 16)
}

/// Publishes a retained presence and polls until the broker acknowledged it.
async fn say(client: &AsyncClient, eventloop: &mut EventLoop, id: &str, presence: &str) {
    let topic = format!("fleet/devices/{id}/presence");
    publish_acked(client, eventloop, topic, true, presence.as_bytes().to_vec()).await;
}

#[tokio::test]
async fn a_device_silent_beyond_the_presence_timeout_is_shown_offline() {
    let app = TestApp::spawn_with(|s| s.presence_timeout = Duration::from_secs(2)).await;
    let token = app.client.add_device("dev-1", "rpi4", &Default::default()).await.unwrap().token;
    let (client, mut eventloop) = device_client(&app, "dev-1", &token).await;
    say(&client, &mut eventloop, "dev-1", "online").await;
    let said = Instant::now();
    wait_online(&app, "dev-1", true, Duration::from_secs(2)).await;

    // Still connected (the broker keeps its `online` retained), but silent: offline once
    // the bound has passed, not before.
    let keep_polling = tokio::spawn(async move {
        loop {
            if eventloop.poll().await.is_err() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    });
    wait_online(&app, "dev-1", false, Duration::from_secs(6)).await;
    // (Timestamps are whole milliseconds: allow for rounding.)
    assert!(said.elapsed() >= Duration::from_millis(1990), "offline after {:?}, before the bound", said.elapsed());
    let device = app.client.get_device("dev-1").await.unwrap();
    assert!(device.last_seen.is_some(), "last_seen stays");
    keep_polling.abort();

    // Heard from again: online again.
    let (client, mut eventloop) = device_client(&app, "dev-1", &token).await;
    say(&client, &mut eventloop, "dev-1", "online").await;
    wait_online(&app, "dev-1", true, Duration::from_secs(2)).await;
}
