//! The agent's hostile-server cases (tests/tests/it/agent.rs) against the microcontroller
//! core: a controllable stand-in server confirms whatever command a test chooses and serves
//! whatever bytes it likes, over a real broker. Every refusal is reported with the agent's
//! reason and leaves the running region as it was.

use std::time::Duration;

use fleet_agent_core::updater::Slot;
use fleet_agent_core::verify::TrustedKey;
use fleet_protocol::message::{Command, StatusReport};
use fleet_protocol::state::{DeviceState, Reason};
use fleet_protocol::{ArtifactKind, DeviceId, HardwareModel, Manifest, ProductName};
use fleet_tests::agent::update;
use fleet_tests::broker::{TestBroker, Watcher};
use fleet_tests::device_server::DeviceServer;
use fleet_tests::mcu::{Flash, Microcontroller};
use fleet_tests::{manifest_for, other_key, release_key, sign};

use crate::agent::image;
use crate::mcu::{OLD, microcontroller};

const WAIT: Duration = Duration::from_secs(30);

/// A microcontroller on a stand-in server and a real broker, watched.
struct Bench {
    broker: TestBroker,
    watcher: Watcher,
    server: DeviceServer,
    id: DeviceId,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    running: Option<tokio::task::JoinHandle<(Flash, Option<fleet_agent_core::updater::Firmware>)>>,
}

impl Bench {
    async fn start(device: Microcontroller) -> Self {
        let broker = TestBroker::start().await;
        let mut watcher = Watcher::connect(&broker).await;
        let server = DeviceServer::start().await;
        let id = DeviceId::parse(device.device_id.clone()).unwrap();
        let token = format!("token-{id}");
        server.add_device(id.as_str(), &token);
        let (stop, stopped) = tokio::sync::oneshot::channel();
        let (url, mqtt) = (server.url.clone(), broker.url());
        let running = tokio::spawn(async move { device.run(&url, &mqtt, &token, stopped).await });
        assert!(watcher.try_wait_for(&id, WAIT, |r| r.connect).await.is_some(), "the device connects");
        Self { broker, watcher, server, id, stop: Some(stop), running: Some(running) }
    }

    fn fw(version: &str, bytes: &[u8]) -> Manifest {
        manifest_for(ArtifactKind::Firmware, "gateway-os", version, bytes)
    }

    /// Sends `command` (confirmed by the server) and waits for its final report.
    async fn outcome(&mut self, command: Command) -> (DeviceState, Option<Reason>) {
        let rollout = command.rollout_id().clone();
        self.server.set_command(self.id.as_str(), Some(command.clone()));
        self.watcher.send(&self.id, &command).await;
        let is_final = |r: &StatusReport| !r.connect && r.state.is_final() && r.rollout_id.as_ref() == Some(&rollout);
        let report = self.watcher.try_wait_for(&self.id, WAIT, is_final).await;
        let report =
            report.unwrap_or_else(|| panic!("{rollout}: no final report: {:#?}", self.watcher.reports_of(&self.id)));
        (report.state, report.reason)
    }

    async fn stop(mut self) -> Flash {
        let _ = self.stop.take().unwrap().send(());
        let flash = self.running.take().unwrap().await.unwrap().0;
        drop(self.broker);
        flash
    }
}

/// The microcontroller runs gateway-os 1.0.0 on rpi4 hardware, as the agent's tests do.
fn gateway(id: &str) -> Microcontroller {
    let mut device = microcontroller(id, true);
    device.hardware = "rpi4".into();
    device.firmware = fleet_agent_core::updater::Firmware::new("gateway-os", "1.0.0", [0; 32]);
    device
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rule_refuses_with_the_agents_reason_and_the_running_region_stays() {
    let mut bench = Bench::start(gateway("mcu-rules")).await;
    let id = bench.id.clone();
    let newer = image(3, 40_000);
    let url = bench.server.put_blob("newer", newer.clone(), None);
    let env = sign(&Bench::fw("1.1.0", &newer), &[&release_key()]);
    let signed = |m: &Manifest| sign(m, &[&release_key()]);
    let mut moved = env.clone();
    moved.payload = fleet_protocol::envelope::encode_base64(&Bench::fw("1.2.0", &newer).to_bytes());
    let mut other_product = Bench::fw("2.0.0", &newer);
    other_product.name = ProductName::parse("sensor-os").unwrap();
    let mut other_hw = Bench::fw("2.0.0", &newer);
    other_hw.hardware = vec![HardwareModel::parse("rpi3").unwrap()];
    let now = time::OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
    let mut expired = Bench::fw("1.3.0", &newer);
    expired.created_at = now - time::Duration::hours(2);
    expired.expires_at = Some(now - time::Duration::hours(1));
    let foreign = DeviceServer::start().await;
    let foreign_url = foreign.put_blob("x", newer.clone(), None);
    let untrusted = sign(&Bench::fw("1.1.0", &newer), &[&other_key()]);
    let fw = ArtifactKind::Firmware;
    let cases = [
        ("untrusted", update(&id, "untrusted", fw, &url, &untrusted), Reason::UntrustedKey),
        ("other-bytes", update(&id, "other-bytes", fw, &url, &moved), Reason::SignatureInvalid),
        ("kind", update(&id, "kind", ArtifactKind::Config, &url, &env), Reason::KindMismatch),
        ("product", update(&id, "product", fw, &url, &signed(&other_product)), Reason::NameMismatch),
        ("hardware", update(&id, "hardware", fw, &url, &signed(&other_hw)), Reason::HardwareMismatch),
        ("downgrade", update(&id, "downgrade", fw, &url, &signed(&Bench::fw("0.9.0", &newer))), Reason::Downgrade),
        (
            "same-version",
            update(&id, "same-version", fw, &url, &signed(&Bench::fw("1.0.0", &newer))),
            Reason::Downgrade,
        ),
        ("expired", update(&id, "expired", fw, &url, &signed(&expired)), Reason::Expired),
        ("foreign", update(&id, "foreign", fw, &foreign_url, &env), Reason::UntrustedUrl),
    ];
    for (rollout, command, reason) in cases {
        assert_eq!(bench.outcome(command).await, (DeviceState::Rejected, Some(reason)), "{rollout}");
    }
    assert!(foreign.seen().is_empty(), "the foreign server never sees the device");
    assert!(!bench.server.seen().iter().any(|s| s.path.starts_with("/blobs/")), "nothing downloaded yet");

    // Content failures are `failed`: a byte more than signed, a byte changed.
    let longer = bench.server.put_blob("longer", [newer.clone(), vec![0]].concat(), None);
    let failed = bench.outcome(update(&id, "longer", fw, &longer, &env)).await;
    assert_eq!(failed, (DeviceState::Failed, Some(Reason::SizeExceeded)));
    let mut tampered = newer.clone();
    tampered[10] ^= 1;
    let wrong = bench.server.put_blob("tampered", tampered, None);
    let failed = bench.outcome(update(&id, "tampered", fw, &wrong, &env)).await;
    assert_eq!(failed, (DeviceState::Failed, Some(Reason::DigestMismatch)));

    let flash = bench.stop().await;
    assert_eq!((flash.running, flash.kept), (Slot::A, Slot::A), "the old region still runs");
    assert_eq!(&flash.region(Slot::A)[..OLD.len()], OLD, "and is unchanged");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn below_the_threshold_is_signature_invalid_and_unconfirmed_commands_are_dropped() {
    let mut device = gateway("mcu-k2");
    device.keys.push(TrustedKey::new(other_key().verifying_key()));
    device.threshold = 2;
    let mut bench = Bench::start(device).await;
    let id = bench.id.clone();
    let bytes = image(4, 10_000);
    let m = Bench::fw("1.1.0", &bytes);
    let url = bench.server.put_blob("k2", bytes, None);
    let one = sign(&m, &[&release_key()]);
    let refused = bench.outcome(update(&id, "one", ArtifactKind::Firmware, &url, &one)).await;
    assert_eq!(refused, (DeviceState::Rejected, Some(Reason::SignatureInvalid)));

    // Another device's command, an unconfirmed one and garbage: no report, no download.
    let other = DeviceId::parse("mcu-other").unwrap();
    let both = sign(&m, &[&release_key(), &other_key()]);
    bench.watcher.send(&id, &update(&other, "foreign", ArtifactKind::Firmware, &url, &both)).await;
    bench.server.set_command(id.as_str(), None);
    bench.watcher.send(&id, &update(&id, "unconfirmed", ArtifactKind::Firmware, &url, &both)).await;
    bench.watcher.send_raw(&id, b"{not json".to_vec()).await;
    bench.watcher.drain(Duration::from_secs(2)).await;
    let quiet = bench
        .watcher
        .reports_of(&id)
        .into_iter()
        .filter(|r| !r.connect && r.rollout_id.as_ref().is_some_and(|r| r.as_str() != "one"));
    assert_eq!(quiet.count(), 0, "nothing reported for dropped commands");
    assert!(!bench.server.seen().iter().any(|s| s.path.starts_with("/blobs/")), "nothing downloaded");

    let accepted = bench.outcome(update(&id, "two", ArtifactKind::Firmware, &url, &both)).await;
    assert_eq!(accepted.0, DeviceState::Succeeded);
    let flash = bench.stop().await;
    assert_eq!((flash.running, flash.kept), (Slot::B, Slot::B));
}
