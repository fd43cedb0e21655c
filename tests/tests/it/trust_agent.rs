//! Trust documents on the real agent (CONTRACT §11), against a real broker and a stand-in
//! server that serves whatever trust documents a test gives it — a server that lies, as a
//! compromised one would: release keys rotated, a revoked key refused (`untrusted_key`),
//! root keys rotated by TUF's rule, and replayed, expired and under-signed documents refused
//! (`trust_rollback`, `trust_expired`, `trust_signature_invalid`) with nothing changed.

use std::time::Duration;

use fleet_protocol::message::StatusReport;
use fleet_protocol::sign::SigningKey;
use fleet_protocol::state::{DeviceState, Reason};
use fleet_protocol::{ArtifactKind, DeviceId, Envelope};
use fleet_tests::agent::{AgentProcess, AgentSetup, update};
use fleet_tests::broker::{TestBroker, Watcher};
use fleet_tests::device_server::DeviceServer;
use fleet_tests::trust::{document, key, signed, write};
use fleet_tests::{manifest_for, release_key, samples_dir, sign};
use tempfile::TempDir;

const AGENT: &str = env!("CARGO_BIN_EXE_fleet-agent-under-test");
const WITHIN: Duration = Duration::from_secs(60);

struct Fleet {
    broker: TestBroker,
    server: DeviceServer,
    watcher: Watcher,
    dir: TempDir,
}

impl Fleet {
    async fn start() -> Self {
        let broker = TestBroker::start().await;
        let watcher = Watcher::connect(&broker).await;
        Self { server: DeviceServer::start().await, watcher, broker, dir: tempfile::tempdir().unwrap() }
    }

    /// Starts an agent pinned to `root` (its `--trust-root`) and waits for its connect
    /// report.
    async fn spawn(&mut self, id: &str, root: &Envelope) -> (AgentSetup, AgentProcess) {
        let token = format!("token-{id}");
        self.server.add_device(id, &token);
        let pinned = write(&self.dir.path().join("roots"), &format!("{id}.json"), root);
        let setup = AgentSetup {
            id: DeviceId::parse(id).unwrap(),
            token,
            hardware: "rpi4".into(),
            server: self.server.url.clone(),
            mqtt_url: self.broker.url(),
            trust: samples_dir().join("test-only-release.pub"),
            state_dir: self.dir.path().join(id),
            extra: vec![
                "--trust-root".into(),
                pinned.to_str().unwrap().into(),
                "--health-timeout-s".into(),
                "20".into(),
            ],
            env: vec![],
        };
        let agent = self.restart(&setup).await;
        (setup, agent)
    }

    async fn restart(&mut self, setup: &AgentSetup) -> AgentProcess {
        self.watcher.seen.retain(|(d, r)| !(d == &setup.id && r.connect));
        let agent = AgentProcess::spawn(AGENT, setup);
        let connected = self.watcher.try_wait_for(&setup.id, WITHIN, |r| r.connect).await;
        assert!(connected.is_some(), "{} never connected:\n{}", setup.id, agent.log());
        agent
    }

    /// Serves the documents and announces the last of them, as the server does.
    async fn publish(&self, served: &[(u64, &Envelope)]) {
        for (version, envelope) in served {
            self.server.put_trust(*version, (*envelope).clone());
        }
        if let Some((_, last)) = served.last() {
            self.watcher.announce_trust(last).await;
        }
    }

    /// The next report of `id` that satisfies `pred`, failing with the agent's log.
    async fn report(
        &mut self,
        id: &DeviceId,
        agent: &AgentProcess,
        pred: impl Fn(&StatusReport) -> bool,
    ) -> StatusReport {
        match self.watcher.try_wait_for(id, WITHIN, pred).await {
            Some(r) => r,
            None => panic!("{id}: no such report; seen {:#?}\nlog:\n{}", self.watcher.reports_of(id), agent.log()),
        }
    }

    /// Rolls out firmware `version` signed by `signer`; the final state and reason.
    async fn install(
        &mut self,
        id: &DeviceId,
        agent: &AgentProcess,
        version: &str,
        signer: &SigningKey,
    ) -> (DeviceState, Option<Reason>) {
        let bytes: Vec<u8> = (0..50_000u32).map(|i| (i % 253) as u8 ^ version.len() as u8).collect();
        let m = manifest_for(ArtifactKind::Firmware, "gateway-os", version, &bytes);
        let url = self.server.put_blob(&format!("fw-{version}"), bytes, None);
        let rollout = format!("r-{version}-{}", hex_of(signer));
        let command = update(id, &rollout, ArtifactKind::Firmware, &url, &sign(&m, &[signer]));
        self.server.set_command(id.as_str(), Some(command.clone()));
        self.watcher.send(id, &command).await;
        let done = self
            .report(id, agent, |r| {
                !r.connect && r.state.is_final() && r.rollout_id.as_ref().is_some_and(|x| x.as_str() == rollout)
            })
            .await;
        (done.state, done.reason)
    }
}

fn hex_of(key: &SigningKey) -> String {
    fleet_tests::trust::keyid(key).as_hex()[..8].to_owned()
}

fn refused(reason: Reason) -> impl Fn(&StatusReport) -> bool {
    move |r| !r.connect && r.rollout_id.is_none() && r.state == DeviceState::Rejected && r.reason == Some(reason)
}

fn at_version(v: u64) -> impl Fn(&StatusReport) -> bool {
    move |r| r.trust_version == Some(v)
}

#[tokio::test]
async fn rotating_release_keys_makes_the_device_refuse_the_revoked_one() {
    let mut fleet = Fleet::start().await;
    let (root, old, new) = (key(101), release_key(), key(102));
    let v1 = signed(&document(1, &[&root], 1, &[&old]), &[&root]);
    let (setup, agent) = fleet.spawn("dev-rotate", &v1).await;
    let id = setup.id.clone();
    assert_eq!(fleet.install(&id, &agent, "1.0.0", &old).await, (DeviceState::Succeeded, None), "{}", agent.log());
    assert_eq!(fleet.install(&id, &agent, "1.0.1", &new).await, (DeviceState::Rejected, Some(Reason::UntrustedKey)));

    // Version 2 revokes the old release key and names the new one.
    let v2 = signed(&document(2, &[&root], 1, &[&new]), &[&root]);
    fleet.publish(&[(1, &v1), (2, &v2)]).await;
    fleet.report(&id, &agent, at_version(2)).await;
    assert_eq!(fleet.install(&id, &agent, "1.1.0", &old).await, (DeviceState::Rejected, Some(Reason::UntrustedKey)));
    assert_eq!(fleet.install(&id, &agent, "1.1.1", &new).await, (DeviceState::Succeeded, None), "{}", agent.log());
}

#[tokio::test]
async fn a_device_checks_for_a_newer_trust_document_before_an_update() {
    let mut fleet = Fleet::start().await;
    let (root, old, new) = (key(103), release_key(), key(104));
    let v1 = signed(&document(1, &[&root], 1, &[&old]), &[&root]);
    let (setup, agent) = fleet.spawn("dev-ask", &v1).await;
    // Served but never announced: the device asks `GET /trust` before it judges an update.
    fleet.server.put_trust(2, signed(&document(2, &[&root], 1, &[&new]), &[&root]));
    let outcome = fleet.install(&setup.id, &agent, "2.0.0", &old).await;
    assert_eq!(outcome, (DeviceState::Rejected, Some(Reason::UntrustedKey)), "{}", agent.log());
    assert!(fleet.watcher.reports_of(&setup.id).last().is_some_and(|r| r.trust_version == Some(2)));
}

#[tokio::test]
async fn rotating_root_keys_needs_the_old_and_the_new_root_and_survives_a_restart() {
    let mut fleet = Fleet::start().await;
    let (r1, r2, r3, r4) = (key(111), key(112), key(113), key(114));
    let release = release_key();
    let v1 = signed(&document(1, &[&r1, &r2], 2, &[&release]), &[&r1, &r2]);
    let (setup, mut agent) = fleet.spawn("dev-root", &v1).await;
    let id = setup.id.clone();

    // Version 2 hands the root to r3 and r4: signed by both roots.
    let v2 = signed(&document(2, &[&r3, &r4], 2, &[&release]), &[&r1, &r2, &r3, &r4]);
    // Version 3 signed by the old root alone is refused; by the new root it is accepted.
    let v3_by_old = signed(&document(3, &[&r3, &r4], 2, &[&release]), &[&r1, &r2]);
    fleet.publish(&[(1, &v1), (2, &v2), (3, &v3_by_old)]).await;
    fleet.report(&id, &agent, refused(Reason::TrustSignatureInvalid)).await;
    assert!(fleet.watcher.reports_of(&id).last().is_some_and(|r| r.trust_version == Some(2)), "v2 applied, v3 not");

    let v3 = signed(&document(3, &[&r3, &r4], 2, &[&release]), &[&r3, &r4]);
    fleet.publish(&[(3, &v3)]).await;
    fleet.report(&id, &agent, at_version(3)).await;

    // Restarted with its old pinned root (version 1), it keeps what it accepted.
    agent.terminate().await;
    let agent = fleet.restart(&setup).await;
    let connect = fleet.report(&id, &agent, |r| r.connect).await;
    assert_eq!(connect.trust_version, Some(3), "{}", agent.log());
}

#[tokio::test]
async fn replayed_expired_and_under_signed_documents_are_refused() {
    let mut fleet = Fleet::start().await;
    let (r1, r2) = (key(121), key(122));
    let release = release_key();
    let v1 = signed(&document(1, &[&r1, &r2], 2, &[&release]), &[&r1, &r2]);
    let v2 = signed(&document(2, &[&r1, &r2], 2, &[&release]), &[&r1, &r2]);
    let (setup, agent) = fleet.spawn("dev-refuse", &v1).await;
    let id = setup.id.clone();
    fleet.publish(&[(1, &v1), (2, &v2)]).await;
    fleet.report(&id, &agent, at_version(2)).await;

    // An older document announced again.
    fleet.watcher.announce_trust(&v1).await;
    fleet.report(&id, &agent, refused(Reason::TrustRollback)).await;
    // A server that answers version 3 with the (validly signed) version 1.
    fleet.server.put_trust(3, v1.clone());
    fleet.watcher.announce_trust(&signed(&document(3, &[&r1, &r2], 2, &[&release]), &[&r1, &r2])).await;
    fleet.watcher.seen.clear();
    fleet.report(&id, &agent, refused(Reason::TrustRollback)).await;

    // Expired.
    let mut stale = document(3, &[&r1, &r2], 2, &[&release]);
    stale.expires_at = time::OffsetDateTime::now_utc().replace_nanosecond(0).unwrap() - time::Duration::hours(1);
    fleet.publish(&[(3, &signed(&stale, &[&r1, &r2]))]).await;
    fleet.report(&id, &agent, refused(Reason::TrustExpired)).await;

    // One root signature where two are required.
    let thin = signed(&document(3, &[&r1, &r2], 2, &[&key(123)]), &[&r1]);
    fleet.watcher.seen.clear();
    fleet.publish(&[(3, &thin)]).await;
    let last = fleet.report(&id, &agent, refused(Reason::TrustSignatureInvalid)).await;
    assert_eq!(last.trust_version, Some(2), "nothing changed");

    // And the device still installs what version 2 trusts.
    assert_eq!(fleet.install(&id, &agent, "3.0.0", &release).await, (DeviceState::Succeeded, None), "{}", agent.log());
}

#[tokio::test]
async fn simulated_devices_start_from_a_trust_root_and_follow_it() {
    let mut fleet = Fleet::start().await;
    let root = key(151);
    let v1 = signed(&document(1, &[&root], 1, &[&release_key()]), &[&root]);
    let pinned = write(fleet.dir.path(), "root.json", &v1);
    let operator = fleet.dir.path().join("operator.token");
    std::fs::write(&operator, &fleet.server.operator_token).unwrap();
    let _child = tokio::process::Command::new(AGENT)
        .arg("simulate")
        .args(["--count", "3", "--server", &fleet.server.url, "--mqtt-url", &fleet.broker.url()])
        .args(["--trust-root", pinned.to_str().unwrap()])
        .args(["--operator-token-file", operator.to_str().unwrap()])
        .args(["--state-dir", fleet.dir.path().join("sim").to_str().unwrap()])
        .env("FLEET_AGENT_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let ids: Vec<DeviceId> = (0..3).map(|i| DeviceId::parse(format!("sim-{i}")).unwrap()).collect();
    for id in &ids {
        let connect = fleet.watcher.wait_for(id, WITHIN, |r| r.connect).await;
        assert_eq!(connect.trust_version, Some(1));
    }
    let v2 = signed(&document(2, &[&root], 1, &[&key(152)]), &[&root]);
    fleet.publish(&[(2, &v2)]).await;
    for id in &ids {
        fleet.watcher.wait_for(id, WITHIN, at_version(2)).await;
    }
}
