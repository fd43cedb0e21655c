//! Power cuts at moments spread over a whole update (download, slot write, switch,
//! trial boot, health check, commit, report), for the slot-file, U-Boot and RAUC back
//! ends: every device ends with one bootable slot holding a complete image, a readable
//! journal, and a final report that tells the truth. See `fleet_tests::power_loss`.

use std::time::Duration;

use fleet_tests::power_loss::{Backend, Harness};

const AGENT: &str = env!("CARGO_BIN_EXE_fleet-agent-under-test");
/// Cuts per back end (CI runs these; `fleet-bench power-loss` runs a thousand).
const CUTS: usize = 50;

async fn cuts_leave_a_bootable_device(backend: Backend) {
    let mut harness = Harness::start(AGENT).await.unwrap();
    let clean = harness.cut(0, backend, None).await.unwrap();
    clean.bootable.as_ref().expect("an update without a cut");
    assert_eq!(clean.state, fleet_protocol::state::DeviceState::Succeeded);
    // Spread over the whole update, a little past its end.
    let span = clean.took.mul_f64(1.1);
    let mut outcomes = Vec::new();
    for i in 1..=CUTS {
        let after = span.mul_f64(i as f64 / CUTS as f64).saturating_sub(Duration::from_millis(5));
        let cut = harness.cut(i, backend, Some(after)).await.unwrap();
        assert!(cut.bootable.is_ok(), "cut {i} after {after:?}: {:?}", cut.bootable);
        outcomes.push(format!("{after:?}: {:?}", cut.state));
    }
    println!("{backend:?}, update {:?} uncut; cuts: {}", clean.took, outcomes.join(", "));
}

#[tokio::test]
async fn power_cuts_during_an_ab_slots_update_leave_a_bootable_device() {
    cuts_leave_a_bootable_device(Backend::AbSlots).await;
}

#[tokio::test]
#[ignore = "needs libubootenv-tool and u-boot-tools (fw_printenv, mkenvimage; CI installs them)"]
async fn power_cuts_during_a_uboot_update_leave_a_bootable_device() {
    cuts_leave_a_bootable_device(Backend::Uboot).await;
}

#[tokio::test]
#[ignore = "needs rauc and dbus (CI installs them)"]
async fn power_cuts_during_a_rauc_update_leave_a_bootable_device() {
    cuts_leave_a_bootable_device(Backend::Rauc).await;
}

/// A journal or boot state cut short or overwritten with garbage (a failing disk, a power
/// cut the filesystem did not survive): the agent says so, keeps the file aside, starts
/// from a safe default instead of failing at every start, and updates again.
#[tokio::test]
async fn corrupt_journal_and_boot_state_are_reported_kept_and_survived() {
    use fleet_tests::TestApp;
    use fleet_tests::agent::{AgentProcess, AgentSetup};

    let app = TestApp::spawn().await;
    app.trust_release_key().await;
    let dir = tempfile::tempdir().unwrap();
    let cases =
        [("cj-truncated", "2.0.0", &b"{\"version\": 1, \"seq\": 12"[..]), ("cj-garbage", "2.0.1", &b"\x00\xff"[..])];
    for (id, version, journal) in cases {
        let state_dir = dir.path().join(id);
        std::fs::create_dir_all(state_dir.join("slots")).unwrap();
        std::fs::write(state_dir.join("journal.json"), journal).unwrap();
        std::fs::write(state_dir.join("slots/boot.json"), b"{\"active\": ").unwrap();
        let token = app.client.add_device(id, "rpi4", &Default::default()).await.unwrap().token;
        let agent = AgentProcess::spawn(
            AGENT,
            &AgentSetup {
                extra: vec!["--health-timeout-s".into(), "20".into()],
                ..AgentSetup::on(&app, id, token, state_dir.clone())
            },
        );
        let fw = crate::rollouts::firmware(&app, "gateway-os", version, "rpi4").await;
        let body = serde_json::json!({"firmware": fw.id, "target": {"devices": [id]}});
        let rollout = app.client.create_rollout(&body).await.unwrap().id;
        let done =
            crate::rollouts::wait_for(&app, &rollout, Duration::from_secs(60), |b| b["state"] == "completed").await;
        assert_eq!(done["counts"]["succeeded"], 1, "{done:#}\n{}", agent.log());
        let log = agent.log();
        assert!(log.contains("starting with a new journal") && log.contains("boot state"), "{log}");
        assert_eq!(std::fs::read(state_dir.join("journal.json.corrupt")).unwrap(), journal, "kept aside");
        assert!(state_dir.join("slots/boot.json.corrupt").exists());
    }
}
