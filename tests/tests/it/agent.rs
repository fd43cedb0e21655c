//! The real agent binary against a real broker and a controllable device server: §6 rules,
//! crashes at every stage, health checks, configs, cancel.

use std::path::PathBuf;
use std::time::Duration;

use fleet_protocol::message::Command;
use fleet_protocol::state::{DeviceState, Reason};
use fleet_protocol::{ArtifactKind, DeviceId, Envelope, HardwareModel, Manifest, RolloutId};
use fleet_tests::agent::{AgentProcess, AgentSetup, active_slot_bytes, journal, update};
use fleet_tests::broker::{TestBroker, Watcher};
use fleet_tests::device_server::DeviceServer;
use fleet_tests::{manifest_for, other_key, release_key, samples_dir, sign};
use tempfile::TempDir;

const FINAL: Duration = Duration::from_secs(60);
const AGENT: &str = env!("CARGO_BIN_EXE_fleet-agent-under-test");

struct Fleet {
    broker: TestBroker,
    server: DeviceServer,
    watcher: Watcher,
    dir: TempDir,
}

pub(crate) fn image(seed: u8, len: usize) -> Vec<u8> {
    (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
}

impl Fleet {
    async fn start() -> Self {
        let broker = TestBroker::start().await;
        let watcher = Watcher::connect(&broker).await;
        Self { server: DeviceServer::start().await, watcher, broker, dir: tempfile::tempdir().unwrap() }
    }

    fn setup(&self, id: &str) -> AgentSetup {
        let token = format!("token-{id}");
        self.server.add_device(id, &token);
        AgentSetup {
            id: DeviceId::parse(id).unwrap(),
            token,
            hardware: "rpi4".into(),
            server: self.server.url.clone(),
            mqtt_url: self.broker.url(),
            trust: samples_dir().join("test-only-release.pub"),
            state_dir: self.dir.path().join(id),
            extra: vec!["--health-timeout-s".into(), "20".into()],
            env: vec![],
        }
    }

    /// Starts the agent and waits for its connect report.
    async fn spawn(&mut self, setup: &AgentSetup) -> AgentProcess {
        let agent = AgentProcess::spawn(AGENT, setup);
        self.watcher.seen.retain(|(d, r)| !(d == &setup.id && r.connect));
        let connected = self.watcher.try_wait_for(&setup.id, Duration::from_secs(30), |r| r.connect).await;
        assert!(connected.is_some(), "{} never connected:\n{}", setup.id, agent.log());
        agent
    }

    /// Serves `bytes` and returns a signed envelope for them.
    fn artifact(&self, blob: &str, manifest: &Manifest, bytes: Vec<u8>) -> (Envelope, String) {
        let url = self.server.put_blob(blob, bytes, None);
        (sign(manifest, &[&release_key()]), url)
    }

    async fn send(&self, command: Command) {
        self.server.set_command(command.device_id().as_str(), Some(command.clone()));
        self.watcher.send(command.device_id(), &command).await;
    }

    async fn install(
        &mut self,
        id: &DeviceId,
        rollout: &str,
        version: &str,
        bytes: &[u8],
    ) -> (DeviceState, Option<Reason>) {
        let m = manifest_for(ArtifactKind::Firmware, "gateway-os", version, bytes);
        let (env, url) = self.artifact(&format!("fw-{version}"), &m, bytes.to_vec());
        self.send(update(id, rollout, ArtifactKind::Firmware, &url, &env)).await;
        self.outcome(id, rollout).await
    }

    /// The final state of `rollout` on `id`; on timeout, fails with the agent's log.
    async fn outcome(&mut self, id: &DeviceId, rollout: &str) -> (DeviceState, Option<Reason>) {
        let is_final = |r: &fleet_protocol::message::StatusReport| {
            !r.connect && r.state.is_final() && r.rollout_id.as_ref().is_some_and(|x| x.as_str() == rollout)
        };
        match self.watcher.try_wait_for(id, FINAL, is_final).await {
            Some(r) => (r.state, r.reason),
            None => {
                let log_path = self.dir.path().join(id.as_str()).join("agent.log");
                let log = std::fs::read_to_string(log_path).unwrap_or_default();
                panic!("{id}: no final state for {rollout}; reports {:#?}\nlog:\n{log}", self.watcher.reports_of(id));
            }
        }
    }
}

fn rid(s: &str) -> Option<RolloutId> {
    Some(RolloutId::parse(s).unwrap())
}

#[tokio::test]
async fn valid_update_installs_commits_and_reports_in_order() {
    let mut fleet = Fleet::start().await;
    let setup = fleet.setup("dev-ok");
    let agent = fleet.spawn(&setup).await;
    let bytes = image(1, 300_000);
    let outcome = fleet.install(&setup.id, "r1", "1.0.0", &bytes).await;
    assert_eq!(outcome, (DeviceState::Succeeded, None), "{}", agent.log());
    assert_eq!(active_slot_bytes(&setup.state_dir), bytes);
    assert_eq!(journal(&setup.state_dir)["firmware"]["version"], "1.0.0");

    let reports: Vec<_> =
        fleet.watcher.reports_of(&setup.id).into_iter().filter(|r| r.rollout_id == rid("r1")).collect();
    let states: Vec<_> = reports.iter().filter(|r| !r.connect).map(|r| r.state).collect();
    let mut distinct = states.clone();
    distinct.dedup();
    assert_eq!(
        distinct,
        [
            DeviceState::Downloading,
            DeviceState::Verifying,
            DeviceState::Installing,
            DeviceState::Rebooting,
            DeviceState::Succeeded
        ]
    );
    assert!(reports.windows(2).all(|w| w[0].seq < w[1].seq), "seq increases");
    let last = reports.last().unwrap();
    assert_eq!(last.firmware.as_ref().unwrap().version, semver::Version::new(1, 0, 0));
    assert_eq!(last.hardware, Some(HardwareModel::parse("rpi4").unwrap()));
    // A device with no downloads left behind.
    assert!(std::fs::read_dir(setup.state_dir.join("downloads")).unwrap().next().is_none());
}

#[tokio::test]
async fn every_rule_refuses_with_its_reason_and_changes_nothing() {
    let mut fleet = Fleet::start().await;
    let mut setup = fleet.setup("dev-rules");
    let mut agent = fleet.spawn(&setup).await;
    let installed = image(2, 50_000);
    assert_eq!(fleet.install(&setup.id, "base", "1.0.0", &installed).await.0, DeviceState::Succeeded);
    let id = setup.id.clone();
    let fw = |version: &str, bytes: &[u8]| manifest_for(ArtifactKind::Firmware, "gateway-os", version, bytes);
    let newer = image(3, 40_000);

    let mut cases: Vec<(&str, Command, Reason)> = vec![];
    let (env, url) = fleet.artifact("newer", &fw("1.1.0", &newer), newer.clone());
    let untrusted = sign(&fw("1.1.0", &newer), &[&other_key()]);
    cases.push(("untrusted", update(&id, "untrusted", ArtifactKind::Firmware, &url, &untrusted), Reason::UntrustedKey));
    let mut moved = env.clone();
    moved.payload = fleet_protocol::envelope::encode_base64(&fw("1.2.0", &newer).to_bytes());
    cases.push((
        "other-bytes",
        update(&id, "other-bytes", ArtifactKind::Firmware, &url, &moved),
        Reason::SignatureInvalid,
    ));
    cases.push(("kind", update(&id, "kind", ArtifactKind::Config, &url, &env), Reason::KindMismatch));
    let mut other_product = fw("2.0.0", &newer);
    other_product.name = fleet_protocol::ProductName::parse("sensor-os").unwrap();
    let e = sign(&other_product, &[&release_key()]);
    cases.push(("product", update(&id, "product", ArtifactKind::Firmware, &url, &e), Reason::NameMismatch));
    let mut other_hw = fw("2.0.0", &newer);
    other_hw.hardware = vec![HardwareModel::parse("rpi3").unwrap()];
    let e = sign(&other_hw, &[&release_key()]);
    cases.push(("hardware", update(&id, "hardware", ArtifactKind::Firmware, &url, &e), Reason::HardwareMismatch));
    let e = sign(&fw("0.9.0", &newer), &[&release_key()]);
    cases.push(("downgrade", update(&id, "downgrade", ArtifactKind::Firmware, &url, &e), Reason::Downgrade));
    let e = sign(&fw("1.0.0", &newer), &[&release_key()]);
    cases.push(("same-version", update(&id, "same-version", ArtifactKind::Firmware, &url, &e), Reason::Downgrade));
    let mut expired = fw("1.3.0", &newer);
    let now = time::OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
    expired.created_at = now - time::Duration::hours(2);
    expired.expires_at = Some(now - time::Duration::hours(1));
    let e = sign(&expired, &[&release_key()]);
    cases.push(("expired", update(&id, "expired", ArtifactKind::Firmware, &url, &e), Reason::Expired));
    let foreign = DeviceServer::start().await;
    let foreign_url = foreign.put_blob("x", newer.clone(), None);
    cases.push(("foreign", update(&id, "foreign", ArtifactKind::Firmware, &foreign_url, &env), Reason::UntrustedUrl));

    for (rollout, command, reason) in cases {
        fleet.send(command).await;
        assert_eq!(
            fleet.outcome(&id, rollout).await,
            (DeviceState::Rejected, Some(reason)),
            "{rollout}: {}",
            agent.log()
        );
    }
    assert!(foreign.seen().is_empty(), "the foreign server never sees the device");

    // Content failures are `failed`.
    let longer = fleet.server.put_blob("longer", [newer.clone(), vec![0]].concat(), None);
    fleet.send(update(&id, "longer", ArtifactKind::Firmware, &longer, &env)).await;
    assert_eq!(fleet.outcome(&id, "longer").await, (DeviceState::Failed, Some(Reason::SizeExceeded)));
    let mut tampered = newer.clone();
    tampered[10] ^= 1;
    let wrong = fleet.server.put_blob("tampered", tampered, None);
    fleet.send(update(&id, "tampered", ArtifactKind::Firmware, &wrong, &env)).await;
    assert_eq!(fleet.outcome(&id, "tampered").await, (DeviceState::Failed, Some(Reason::DigestMismatch)));

    // Expired also when the clock is set back before the time floor.
    drop(agent);
    setup.env = vec![("FLEET_AGENT_TEST_CLOCK_OFFSET_S".into(), (-400 * 86_400).to_string())];
    agent = fleet.spawn(&setup).await;
    let mut stale = fw("1.4.0", &newer);
    stale.created_at = now - time::Duration::days(300);
    stale.expires_at = Some(now - time::Duration::days(1));
    let e = sign(&stale, &[&release_key()]);
    fleet.send(update(&id, "clock-back", ArtifactKind::Firmware, &url, &e)).await;
    assert_eq!(
        fleet.outcome(&id, "clock-back").await,
        (DeviceState::Rejected, Some(Reason::Expired)),
        "{}",
        agent.log()
    );

    assert_eq!(active_slot_bytes(&setup.state_dir), installed, "the active slot is untouched");
    assert_eq!(journal(&setup.state_dir)["firmware"]["version"], "1.0.0");
}

#[tokio::test]
async fn below_threshold_is_signature_invalid() {
    let mut fleet = Fleet::start().await;
    let mut setup = fleet.setup("dev-k2");
    setup.extra.extend(["--threshold", "2", "--trust"].map(String::from));
    setup.extra.push(samples_dir().join("test-only-other.pub").to_str().unwrap().into());
    let _agent = fleet.spawn(&setup).await;
    let bytes = image(4, 10_000);
    let m = manifest_for(ArtifactKind::Firmware, "gateway-os", "1.0.0", &bytes);
    let (env, url) = fleet.artifact("k2", &m, bytes.clone());
    fleet.send(update(&setup.id, "one", ArtifactKind::Firmware, &url, &env)).await;
    assert_eq!(fleet.outcome(&setup.id, "one").await, (DeviceState::Rejected, Some(Reason::SignatureInvalid)));
    let both = sign(&m, &[&release_key(), &other_key()]);
    fleet.send(update(&setup.id, "two", ArtifactKind::Firmware, &url, &both)).await;
    assert_eq!(fleet.outcome(&setup.id, "two").await.0, DeviceState::Succeeded);
}

#[tokio::test]
async fn foreign_and_unconfirmed_commands_are_dropped_silently() {
    let mut fleet = Fleet::start().await;
    let setup = fleet.setup("dev-drop");
    let agent = fleet.spawn(&setup).await;
    let bytes = image(5, 10_000);
    let m = manifest_for(ArtifactKind::Firmware, "gateway-os", "1.0.0", &bytes);
    let (env, url) = fleet.artifact("drop", &m, bytes);

    // Addressed to another device, on this device's topic.
    let other = DeviceId::parse("dev-other").unwrap();
    let foreign = update(&other, "r-foreign", ArtifactKind::Firmware, &url, &env);
    fleet.watcher.send(&setup.id, &foreign).await;
    // Not confirmed by the server.
    fleet.server.set_command(setup.id.as_str(), None);
    fleet.watcher.send(&setup.id, &update(&setup.id, "r-unconfirmed", ArtifactKind::Firmware, &url, &env)).await;
    // Garbage.
    fleet.watcher.send_raw(&setup.id, b"{not json".to_vec()).await;

    fleet.watcher.drain(Duration::from_secs(3)).await;
    let after_connect: Vec<_> = fleet.watcher.reports_of(&setup.id).into_iter().filter(|r| !r.connect).collect();
    assert!(after_connect.is_empty(), "no reports: {after_connect:?}\n{}", agent.log());
    assert!(active_slot_bytes(&setup.state_dir).is_empty());
    assert!(!fleet.server.seen().iter().any(|s| s.path.starts_with("/blobs/")), "nothing downloaded");
}

/// Sends rollout `r1`, a 1 MiB firmware served slowly as blob `slow`, and kills the agent
/// (`kill -9`) once 200,000 bytes of it are in the inactive slot; returns the image and
/// its manifest.
async fn killed_mid_download(fleet: &mut Fleet, setup: &AgentSetup) -> (Vec<u8>, Manifest) {
    let mut agent = fleet.spawn(setup).await;
    let bytes = image(6, 1 << 20);
    let m = manifest_for(ArtifactKind::Firmware, "gateway-os", "1.0.0", &bytes);
    let url = fleet.server.put_blob("slow", bytes.clone(), Some(Duration::from_millis(40)));
    fleet.send(update(&setup.id, "r1", ArtifactKind::Firmware, &url, &sign(&m, &[&release_key()]))).await;
    // Firmware streams into the inactive slot (b: the device runs a).
    let slot = setup.state_dir.join("slots/b.img");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while std::fs::metadata(&slot).map(|m| m.len()).unwrap_or(0) < 200_000 {
        assert!(tokio::time::Instant::now() < deadline, "download never progressed: {}", agent.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    agent.kill9();
    (bytes, m)
}

#[tokio::test]
async fn kill_during_download_resumes_with_range() {
    let mut fleet = Fleet::start().await;
    let setup = fleet.setup("dev-kdl");
    let (bytes, m) = killed_mid_download(&mut fleet, &setup).await;
    assert!(
        setup.state_dir.join(format!("downloads/{}.b.img", m.sha256)).exists(),
        "the slot is claimed by this download"
    );
    assert!(!setup.state_dir.join(format!("downloads/{}.part", m.sha256)).exists(), "written once, into the slot");
    fleet.server.set_pause("slow", None);
    let agent = fleet.spawn(&setup).await;
    assert_eq!(fleet.outcome(&setup.id, "r1").await, (DeviceState::Succeeded, None), "{}", agent.log());
    assert_eq!(active_slot_bytes(&setup.state_dir), bytes);
    let ranged: Vec<_> = fleet.server.seen().into_iter().filter_map(|s| s.range).collect();
    assert!(ranged.iter().any(|r| r.starts_with("bytes=") && r != "bytes=0-"), "resumed with Range: {ranged:?}");
}

/// Without this run's proof that it hashed every byte it streamed into the slot (the agent
/// stopped between download and install), the slot is read back: bytes of the right size
/// but not the signed image are never switched to.
#[tokio::test]
async fn a_restart_between_download_and_install_reads_the_slot_back() {
    let mut fleet = Fleet::start().await;
    let setup = fleet.setup("dev-rbk");
    let (bytes, _) = killed_mid_download(&mut fleet, &setup).await;
    let slot = setup.state_dir.join("slots/b.img");

    // As if the agent had stopped after the download: the journal says installing, and the
    // slot holds as many bytes as were signed, but not the signed ones.
    let mut saved = journal(&setup.state_dir);
    saved["current"]["phase"] = "installing".into();
    std::fs::write(setup.state_dir.join("journal.json"), serde_json::to_vec(&saved).unwrap()).unwrap();
    std::fs::write(&slot, image(9, bytes.len())).unwrap();
    let agent = fleet.spawn(&setup).await;
    assert_eq!(
        fleet.outcome(&setup.id, "r1").await,
        (DeviceState::Failed, Some(Reason::InstallFailed)),
        "{}",
        agent.log()
    );
    assert!(agent.log().contains("does not hold the signed image"), "{}", agent.log());
    assert!(active_slot_bytes(&setup.state_dir).is_empty(), "still boots the old (empty) slot");
}

#[tokio::test]
async fn kill_during_slot_write_keeps_a_bootable_slot_and_finishes() {
    let mut fleet = Fleet::start().await;
    let setup = fleet.setup("dev-kwr");
    let mut agent = fleet.spawn(&setup).await;
    let older = image(6, 150_000);
    assert_eq!(fleet.install(&setup.id, "older", "0.9.0", &older).await.0, DeviceState::Succeeded);
    let base = image(7, 100_000);
    assert_eq!(fleet.install(&setup.id, "base", "1.0.0", &base).await.0, DeviceState::Succeeded);
    agent.kill9();

    // The base runs from slot a; the new image streams, slowly, into slot b, which still
    // holds the older image: its bytes must not pass for the start of the download.
    agent = fleet.spawn(&setup).await;
    let bytes = image(8, 1 << 20);
    let m = manifest_for(ArtifactKind::Firmware, "gateway-os", "1.1.0", &bytes);
    let url = fleet.server.put_blob("big", bytes.clone(), Some(Duration::from_millis(40)));
    fleet.send(update(&setup.id, "r2", ArtifactKind::Firmware, &url, &sign(&m, &[&release_key()]))).await;
    let slot = setup.state_dir.join("slots/b.img");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    // An older image may still be in the slot: wait until it was emptied and refilled part way.
    let written = || std::fs::metadata(&slot).map(|m| m.len()).unwrap_or(0);
    while !(setup.state_dir.join(format!("downloads/{}.b.img", m.sha256)).exists() && written() >= 200_000) {
        assert!(tokio::time::Instant::now() < deadline, "slot write never progressed: {}", agent.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    agent.kill9();
    assert!(written() < bytes.len() as u64, "killed mid-write");
    assert_eq!(active_slot_bytes(&setup.state_dir), base, "still boots the old slot");

    fleet.server.set_pause("big", None);
    let agent = fleet.spawn(&setup).await;
    assert_eq!(fleet.outcome(&setup.id, "r2").await, (DeviceState::Succeeded, None), "{}", agent.log());
    assert_eq!(active_slot_bytes(&setup.state_dir), bytes);
}

#[tokio::test]
async fn kill_during_trial_then_commit() {
    let mut fleet = Fleet::start().await;
    let mut setup = fleet.setup("dev-ktr");
    setup.extra.extend(["--health-command", "sleep 5"].map(String::from));
    let mut agent = fleet.spawn(&setup).await;
    let bytes = image(9, 100_000);
    let m = manifest_for(ArtifactKind::Firmware, "gateway-os", "1.0.0", &bytes);
    let (env, url) = fleet.artifact("trial", &m, bytes.clone());
    fleet.send(update(&setup.id, "r1", ArtifactKind::Firmware, &url, &env)).await;
    fleet.watcher.wait_for(&setup.id, FINAL, |r| r.state == DeviceState::Rebooting).await;
    tokio::time::sleep(Duration::from_millis(800)).await;
    agent.kill9();
    assert_eq!(journal(&setup.state_dir)["current"]["phase"], "trial");

    let n = setup.extra.len();
    setup.extra[n - 1] = "true".into();
    let agent = fleet.spawn(&setup).await;
    assert_eq!(fleet.outcome(&setup.id, "r1").await, (DeviceState::Succeeded, None), "{}", agent.log());
    assert_eq!(active_slot_bytes(&setup.state_dir), bytes);
}

#[tokio::test]
async fn health_check_failure_rolls_back() {
    let mut fleet = Fleet::start().await;
    let mut setup = fleet.setup("dev-hc");
    let base = image(10, 20_000);
    let mut agent = fleet.spawn(&setup).await;
    assert_eq!(fleet.install(&setup.id, "base", "1.0.0", &base).await.0, DeviceState::Succeeded);
    agent.kill9();
    setup.extra.extend(["--health-command", "exit 1"].map(String::from));
    let agent = fleet.spawn(&setup).await;
    let outcome = fleet.install(&setup.id, "bad", "1.1.0", &image(11, 20_000)).await;
    assert_eq!(outcome, (DeviceState::RolledBack, Some(Reason::HealthCheckFailed)), "{}", agent.log());
    assert_eq!(active_slot_bytes(&setup.state_dir), base);
    assert_eq!(journal(&setup.state_dir)["firmware"]["version"], "1.0.0");
}

#[tokio::test]
async fn configs_apply_revert_and_respect_required_firmware() {
    let mut fleet = Fleet::start().await;
    let mut setup = fleet.setup("dev-cfg");
    let target = setup.state_dir.join("app.toml");
    std::fs::create_dir_all(&setup.state_dir).unwrap();
    std::fs::write(&target, b"old = true\n").unwrap();
    setup.extra.extend(["--config-path".into(), target.to_str().unwrap().into()]);
    setup.extra.extend(["--config-reload-command", "exit 1"].map(String::from));
    let mut agent = fleet.spawn(&setup).await;

    let doc = b"new = true\n".to_vec();
    let cfg = |version: &str, req: Option<&str>| {
        let mut m = manifest_for(ArtifactKind::Config, "app-config", version, &doc);
        m.hardware.clear();
        m.requires_firmware = req.map(|r| semver::VersionReq::parse(r).unwrap());
        m
    };
    let (env, url) = fleet.artifact("cfg1", &cfg("1.0.0", None), doc.clone());
    fleet.send(update(&setup.id, "c1", ArtifactKind::Config, &url, &env)).await;
    assert_eq!(fleet.outcome(&setup.id, "c1").await, (DeviceState::Failed, Some(Reason::InstallFailed)));
    assert_eq!(std::fs::read(&target).unwrap(), b"old = true\n", "reverted");

    agent.kill9();
    let n = setup.extra.len();
    setup.extra[n - 1] = "true".into();
    agent = fleet.spawn(&setup).await;
    let (env, url) = fleet.artifact("cfg2", &cfg("1.0.1", Some(">=2")), doc.clone());
    fleet.send(update(&setup.id, "c2", ArtifactKind::Config, &url, &env)).await;
    assert_eq!(fleet.outcome(&setup.id, "c2").await, (DeviceState::Rejected, Some(Reason::IncompatibleFirmware)));

    let (env, url) = fleet.artifact("cfg3", &cfg("1.0.2", None), doc.clone());
    fleet.send(update(&setup.id, "c3", ArtifactKind::Config, &url, &env)).await;
    assert_eq!(fleet.outcome(&setup.id, "c3").await, (DeviceState::Succeeded, None), "{}", agent.log());
    assert_eq!(std::fs::read(&target).unwrap(), doc);
    assert_eq!(journal(&setup.state_dir)["config"]["version"], "1.0.2");
}

#[tokio::test]
async fn the_same_command_twice_installs_once() {
    let mut fleet = Fleet::start().await;
    let mut setup = fleet.setup("dev-twice");
    setup.extra.extend(["--health-command", "sleep 1"].map(String::from));
    let agent = fleet.spawn(&setup).await;
    let bytes = image(12, 200_000);
    let m = manifest_for(ArtifactKind::Firmware, "gateway-os", "1.0.0", &bytes);
    let (env, url) = fleet.artifact("twice", &m, bytes.clone());
    let command = update(&setup.id, "r1", ArtifactKind::Firmware, &url, &env);
    fleet.send(command.clone()).await;
    fleet.send(command.clone()).await;
    // Again during the trial reboot, and after the end.
    fleet.watcher.wait_for(&setup.id, FINAL, |r| r.state == DeviceState::Rebooting).await;
    fleet.send(command.clone()).await;
    assert_eq!(fleet.outcome(&setup.id, "r1").await, (DeviceState::Succeeded, None), "{}", agent.log());
    fleet.send(command).await;
    fleet.watcher.drain(Duration::from_secs(2)).await;
    let downloads = fleet.server.seen().iter().filter(|s| s.path == "/blobs/twice").count();
    assert_eq!(downloads, 1, "downloaded once");
    let finals: Vec<_> = fleet.watcher.reports_of(&setup.id).into_iter().filter(|r| r.state.is_final()).collect();
    assert!(finals.iter().all(|r| r.state == DeviceState::Succeeded), "{finals:?}");
    assert_eq!(active_slot_bytes(&setup.state_dir), bytes);
}

#[tokio::test]
async fn cancel_stops_a_download() {
    let mut fleet = Fleet::start().await;
    let setup = fleet.setup("dev-cancel");
    let agent = fleet.spawn(&setup).await;
    let bytes = image(13, 1 << 20);
    let m = manifest_for(ArtifactKind::Firmware, "gateway-os", "1.0.0", &bytes);
    let url = fleet.server.put_blob("slow", bytes, Some(Duration::from_millis(50)));
    fleet.send(update(&setup.id, "r1", ArtifactKind::Firmware, &url, &sign(&m, &[&release_key()]))).await;
    fleet.watcher.wait_for(&setup.id, FINAL, |r| r.state == DeviceState::Downloading).await;
    let cancel = Command::Cancel { device_id: setup.id.clone(), rollout_id: RolloutId::parse("r1").unwrap() };
    fleet.send(cancel).await;
    assert_eq!(fleet.outcome(&setup.id, "r1").await, (DeviceState::Cancelled, None), "{}", agent.log());
    assert!(active_slot_bytes(&setup.state_dir).is_empty());
    let leftovers: Vec<PathBuf> =
        std::fs::read_dir(setup.state_dir.join("downloads")).unwrap().map(|e| e.unwrap().path()).collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// A RAUC-like updater made of shell scripts: two slot files, a "booted" file the fake
/// bootloader sets on reboot, and a log of every call.
fn fake_rauc(dir: &std::path::Path) -> Vec<String> {
    let script = |name: &str, body: &str| {
        let path = dir.join(name);
        std::fs::write(
            &path,
            format!("#!/bin/sh\nset -e\ncd '{}'\necho \"{name} $*\" >> calls.log\n{body}\n", dir.display()),
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path.to_str().unwrap().to_owned()
    };
    std::fs::write(dir.join("booted.state"), "A").unwrap();
    let install = script(
        "install",
        r#"other=$( [ "$(cat booted.state)" = A ] && echo B || echo A ); cp "$1" "slot-$other"; echo "$other" > next.state"#,
    );
    let booted = script("booted", "cat booted.state");
    let reboot = script(
        "reboot",
        "if [ -f next.state ]; then cat booted.state > previous.state; mv next.state booted.state; fi",
    );
    let commit = script("commit", "cat booted.state > good.state");
    let rollback = script("rollback", "cat previous.state > booted.state");
    vec![
        "--installer".into(),
        "command".into(),
        "--install-command".into(),
        format!("{install} {{file}}"),
        "--booted-slot-command".into(),
        booted,
        "--reboot-command".into(),
        reboot,
        "--commit-command".into(),
        commit,
        "--rollback-command".into(),
        rollback,
        "--hook-timeout-s".into(),
        "10".into(),
    ]
}

#[tokio::test]
async fn command_installer_runs_the_updater_commits_and_rolls_back() {
    let mut fleet = Fleet::start().await;
    let mut setup = fleet.setup("dev-rauc");
    let fake = fleet.dir.path().join("rauc");
    std::fs::create_dir_all(&fake).unwrap();
    setup.extra.extend(fake_rauc(&fake));
    let mut agent = fleet.spawn(&setup).await;

    let bytes = image(14, 100_000);
    let outcome = fleet.install(&setup.id, "r1", "1.0.0", &bytes).await;
    assert_eq!(outcome, (DeviceState::Succeeded, None), "{}", agent.log());
    assert_eq!(std::fs::read(fake.join("slot-B")).unwrap(), bytes);
    assert_eq!(std::fs::read_to_string(fake.join("booted.state")).unwrap().trim(), "B");
    assert_eq!(std::fs::read_to_string(fake.join("good.state")).unwrap().trim(), "B");
    let calls = std::fs::read_to_string(fake.join("calls.log")).unwrap();
    assert!(calls.contains("install ") && calls.contains("reboot") && calls.contains("commit"), "{calls}");

    // A failing health check makes the agent roll back through the updater.
    agent.kill9();
    setup.extra.extend(["--health-command", "exit 1"].map(String::from));
    agent = fleet.spawn(&setup).await;
    let outcome = fleet.install(&setup.id, "r2", "1.1.0", &image(15, 100_000)).await;
    assert_eq!(outcome, (DeviceState::RolledBack, Some(Reason::HealthCheckFailed)), "{}", agent.log());
    assert_eq!(std::fs::read_to_string(fake.join("booted.state")).unwrap().trim(), "B");
    assert!(std::fs::read_to_string(fake.join("calls.log")).unwrap().contains("rollback"));
    assert_eq!(journal(&setup.state_dir)["firmware"]["version"], "1.0.0");
}
