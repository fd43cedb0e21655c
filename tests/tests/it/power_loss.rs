//! Power cuts at moments spread over a whole update (download, slot write, switch,
//! trial boot, health check, commit, report), for the slot-file, U-Boot and RAUC back
//! ends: every device ends with one bootable slot holding a complete image, a readable
//! journal, and a final report that tells the truth. See `fleet_tests::power_loss`.

use std::time::Duration;

use fleet_tests::power_loss::{Backend, Harness};

const AGENT: &str = env!("CARGO_BIN_EXE_fleet-agent-under-test");
/// Cuts per back end (CI runs these; `fleet-bench power-loss` runs a thousand).
const CUTS: usize = 25;

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
