//! The agent's `rauc` back end (CONTRACT §9) with the real server, the real agent and
//! Debian's real `rauc`: a `plain` bundle signed by a test CA, installed through RAUC's
//! D-Bus service into a file-backed slot, committed with `mark-good` or rolled back with
//! `mark-bad`. What stands in (see `fleet_tests::rauc`): a private system bus, slot files,
//! RAUC's `custom` bootloader back end as a script, and a reboot that restarts
//! `rauc service` with the slot that script boots while the agent goes on in-process.

use fleet_tests::TestApp;
use fleet_tests::rauc::{OLD_IMAGE, RaucBoard};

use crate::backend::{Device, image, update};

/// A device on `board` with the real agent; `extra` flags added.
fn device(board: &RaucBoard, id: &'static str, extra: &[&str]) -> Device {
    let mut flags = board.flags();
    flags.extend(extra.iter().map(|s| (*s).to_owned()));
    Device { id, flags, env: board.env(), state_dir: board.dir.join("state") }
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
    let (done, agent) = update(&app, device(&board, "rauc-1", &[]), bundle).await;
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
    let (done, agent) = update(&app, device(&board, "rauc-2", &["--health-command", "false"]), bundle).await;
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
    let (done, agent) = update(&app, device(&board, "rauc-3", &[]), bundle).await;
    assert_eq!(done["counts"]["failed"], 1, "{done:#}\n{}", agent.log());
    assert!(agent.log().contains("rauc install"), "RAUC said no:\n{}", agent.log());
    assert!(!slot(&board, "slot1.img").starts_with(&image()), "slot B is not written");
    let status = board.status().unwrap();
    assert_eq!(status.booted, "A", "{status:?}");
    assert!(board.boot_state().contains("primary=A"), "{}", board.boot_state());
}
