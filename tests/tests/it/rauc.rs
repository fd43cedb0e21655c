//! The agent's `rauc` back end (CONTRACT §9) with the real server, the real agent and
//! Debian's real `rauc`: a `plain` bundle signed by a test CA, installed through RAUC's
//! D-Bus service into a file-backed slot, committed with `mark-good` or rolled back with
//! `mark-bad`. What stands in (see `fleet_tests::rauc`): a private system bus, slot files,
//! RAUC's `custom` bootloader back end as a script, and a reboot that restarts
//! `rauc service` with the slot that script boots while the agent goes on in-process.

use std::time::Duration;

use fleet_protocol::{ArtifactKind, DeviceId, HardwareModel};
use fleet_tests::agent::{AgentProcess, AgentSetup};
use fleet_tests::rauc::{OLD_IMAGE, RaucBoard};
use fleet_tests::{TestApp, manifest_for, release_key, samples_dir, sign};
use serde_json::{Value, json};

use crate::rollouts::wait_for;

const AGENT: &str = env!("CARGO_BIN_EXE_fleet-agent-under-test");

/// The slot image a bundle carries.
fn image() -> Vec<u8> {
    (0..64 * 1024u32).map(|i| (i % 251) as u8).collect()
}

/// Uploads `bundle` as firmware 2.0.0 (our signature over the bundle's bytes), rolls it
/// out to a new device on `board` with the real agent and returns the rollout once final.
async fn update(app: &TestApp, board: &RaucBoard, id: &str, bundle: Vec<u8>, extra: &[&str]) -> (Value, AgentProcess) {
    let token = app.client.add_device(id, "rpi4", &Default::default()).await.unwrap().token;
    let mut flags = board.flags();
    flags.extend(["--health-timeout-s", "20"].iter().chain(extra).map(|s| (*s).to_owned()));
    let agent = AgentProcess::spawn(
        AGENT,
        &AgentSetup {
            id: DeviceId::parse(id).unwrap(),
            token,
            hardware: "rpi4".into(),
            server: app.client.base_url().to_owned(),
            mqtt_url: app.mqtt_url.clone(),
            trust: samples_dir().join("test-only-release.pub"),
            state_dir: board.dir.join("state"),
            extra: flags,
            env: board.env(),
        },
    );
    let mut m = manifest_for(ArtifactKind::Firmware, "gateway-os", "2.0.0", &bundle);
    m.hardware = vec![HardwareModel::parse("rpi4").unwrap()];
    let fw = app.upload(ArtifactKind::Firmware, &sign(&m, &[&release_key()]), bundle).await.unwrap();
    let rollout = app.client.create_rollout(&json!({"firmware": fw.id, "target": {"devices": [id]}})).await.unwrap();
    let done = wait_for(app, &rollout.id, Duration::from_secs(90), |b| {
        b["counts"]["pending"].is_null() && {
            let finals = ["succeeded", "rolled_back", "failed", "rejected", "timed_out"];
            finals.iter().any(|s| b["counts"][*s].as_u64() == Some(1))
        }
    })
    .await;
    (done, agent)
}

fn slot(board: &RaucBoard, file: &str) -> Vec<u8> {
    std::fs::read(board.dir.join(file)).unwrap()
}

#[tokio::test]
#[ignore = "needs rauc and dbus (CI installs them)"]
async fn a_bundle_is_installed_by_rauc_booted_and_marked_good() {
    let app = TestApp::spawn().await;
    app.trust_release_key().await;
    let dir = tempfile::tempdir().unwrap();
    let board = RaucBoard::new(dir.path()).unwrap();
    assert_eq!(board.status().unwrap().booted, "A");
    let bundle = board.bundle(&image(), "2.0.0", "ca").unwrap();
    let (done, agent) = update(&app, &board, "rauc-1", bundle, &[]).await;
    assert_eq!(done["counts"]["succeeded"], 1, "{done:#}\n{}", agent.log());
    assert!(slot(&board, "slot1.img").starts_with(&image()), "RAUC wrote the image into slot B");
    assert_eq!(slot(&board, "slot0.img"), OLD_IMAGE, "the running slot is untouched");
    let status = board.status().unwrap();
    assert_eq!(status.booted, "B", "{status:?}");
    assert_eq!(status.boot_status("B"), Some("good"), "{status:?}\n{}", board.boot_state());
    assert!(board.boot_state().contains("primary=B"), "{}", board.boot_state());
}

#[tokio::test]
#[ignore = "needs rauc and dbus (CI installs them)"]
async fn a_failed_health_check_marks_the_trial_slot_bad_and_boots_the_old_one() {
    let app = TestApp::spawn().await;
    app.trust_release_key().await;
    let dir = tempfile::tempdir().unwrap();
    let board = RaucBoard::new(dir.path()).unwrap();
    let bundle = board.bundle(&image(), "2.0.0", "ca").unwrap();
    let (done, agent) = update(&app, &board, "rauc-2", bundle, &["--health-command", "false"]).await;
    assert_eq!(done["counts"]["rolled_back"], 1, "{done:#}\n{}", agent.log());
    let log = std::fs::read_to_string(board.dir.join("boot.state.log")).unwrap();
    assert!(log.contains("boot B\n") && log.contains("set-state B bad"), "trial in B, then mark-bad:\n{log}");
    let status = board.status().unwrap();
    assert_eq!(status.booted, "A", "the old slot boots again: {status:?}");
    assert_eq!((status.boot_status("A"), status.boot_status("B")), (Some("good"), Some("bad")));
}

#[tokio::test]
#[ignore = "needs rauc and dbus (CI installs them)"]
async fn a_bundle_rauc_does_not_trust_fails_and_changes_nothing() {
    let app = TestApp::spawn().await;
    app.trust_release_key().await;
    let dir = tempfile::tempdir().unwrap();
    let board = RaucBoard::new(dir.path()).unwrap();
    // Our signature over it is good; RAUC's own check against its keyring refuses it.
    let bundle = board.bundle(&image(), "2.0.0", "stranger").unwrap();
    let (done, agent) = update(&app, &board, "rauc-3", bundle, &[]).await;
    assert_eq!(done["counts"]["failed"], 1, "{done:#}\n{}", agent.log());
    assert!(!slot(&board, "slot1.img").starts_with(&image()), "slot B is not written");
    let status = board.status().unwrap();
    assert_eq!(status.booted, "A", "{status:?}");
    assert!(board.boot_state().contains("primary=A"), "{}", board.boot_state());
}
