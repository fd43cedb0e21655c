//! The agent's `uboot` back end (CONTRACT §9) with the real server, the real agent and
//! the real libubootenv tools on a real U-Boot environment image made by `mkenvimage`;
//! slots are files. What stands in: the reboot runs `tests/uboot/bootloader.sh`, the
//! boot-count decision of U-Boot's boot script (docs/agent.md) on that environment, and
//! the agent goes on in-process instead of a kernel booting.

use std::time::Duration;

use fleet_tests::TestApp;
use fleet_tests::agent::{AgentProcess, AgentSetup};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::rollouts::{firmware, wait_for};

const AGENT: &str = env!("CARGO_BIN_EXE_fleet-agent-under-test");

pub(crate) use fleet_tests::uboot::UbootBoard as Board;

/// A device on `board` with the real agent; returns the final entry of a rollout of a
/// new firmware to it.
async fn update(app: &TestApp, board: &Board, id: &str, extra: &[&str]) -> (Value, AgentProcess, String) {
    let token = app.client.add_device(id, "rpi4", &Default::default()).await.unwrap().token;
    let mut flags = board.flags();
    flags.extend(["--health-timeout-s", "20"].iter().chain(extra).map(|s| (*s).to_owned()));
    let agent = AgentProcess::spawn(
        AGENT,
        &AgentSetup { extra: flags, ..AgentSetup::on(app, id, token, board.dir.join("state")) },
    );
    let fw = firmware(app, "gateway-os", "2.0.0", "rpi4").await;
    let rollout = app.client.create_rollout(&json!({"firmware": fw.id, "target": {"devices": [id]}})).await.unwrap();
    let done = wait_for(app, &rollout.id, Duration::from_secs(60), |b| {
        b["counts"]["pending"].is_null() && {
            let finals = ["succeeded", "rolled_back", "failed", "rejected", "timed_out"];
            finals.iter().any(|s| b["counts"][*s].as_u64() == Some(1))
        }
    })
    .await;
    (done, agent, fw.sha256)
}

#[tokio::test]
#[ignore = "needs libubootenv-tool and u-boot-tools (fw_printenv, mkenvimage; CI installs them)"]
async fn an_update_writes_the_inactive_slot_switches_in_one_write_and_commits() {
    let app = TestApp::spawn().await;
    app.trust_release_key().await;
    let dir = tempfile::tempdir().unwrap();
    let board = Board::new(dir.path(), 3);
    let (done, agent, sha256) = update(&app, &board, "ub-1", &[]).await;
    assert_eq!(done["counts"]["succeeded"], 1, "{done:#}\n{}", agent.log());
    let written = std::fs::read(board.dir.join("b.img")).unwrap();
    assert_eq!(hex(&Sha256::digest(&written)), sha256, "slot b holds the verified image");
    assert_eq!(std::fs::read(board.dir.join("a.img")).unwrap(), b"old image", "the running slot is untouched");
    let env = board.env();
    assert_eq!((env["boot_slot"].as_str(), env["upgrade_available"].as_str()), ("b", "0"), "{env:?}");
    assert_eq!((env["bootcount"].as_str(), env.get("ustate").map(String::as_str)), ("0", Some("0")));
}

#[tokio::test]
#[ignore = "needs libubootenv-tool and u-boot-tools (fw_printenv, mkenvimage; CI installs them)"]
async fn a_failed_health_check_goes_back_to_the_old_slot() {
    let app = TestApp::spawn().await;
    app.trust_release_key().await;
    let dir = tempfile::tempdir().unwrap();
    let board = Board::new(dir.path(), 3);
    let (done, agent, _) = update(&app, &board, "ub-2", &["--health-command", "false"]).await;
    assert_eq!(done["counts"]["rolled_back"], 1, "{done:#}\n{}", agent.log());
    let env = board.env();
    assert_eq!((env["boot_slot"].as_str(), env["upgrade_available"].as_str()), ("a", "0"), "{env:?}");
}

#[tokio::test]
#[ignore = "needs libubootenv-tool and u-boot-tools (fw_printenv, mkenvimage; CI installs them)"]
async fn when_the_boot_limit_is_reached_u_boot_falls_back_and_the_agent_reports_it() {
    let app = TestApp::spawn().await;
    app.trust_release_key().await;
    let dir = tempfile::tempdir().unwrap();
    // No trial boot allowed: the stand-in bootloader falls back at the first boot.
    let board = Board::new(dir.path(), 0);
    let (done, agent, _) = update(&app, &board, "ub-3", &[]).await;
    assert_eq!(done["counts"]["rolled_back"], 1, "{done:#}\n{}", agent.log());
    let env = board.env();
    assert_eq!((env["boot_slot"].as_str(), env["upgrade_available"].as_str()), ("a", "0"), "{env:?}");
}

#[tokio::test]
#[ignore = "needs libubootenv-tool and u-boot-tools (fw_printenv, mkenvimage; CI installs them)"]
async fn an_unreadable_environment_fails_the_update_and_is_left_alone() {
    let app = TestApp::spawn().await;
    app.trust_release_key().await;
    let dir = tempfile::tempdir().unwrap();
    let board = Board::new(dir.path(), 3);
    // A flipped byte in the environment's CRC: libubootenv refuses to read it.
    let env = board.dir.join("uboot.env");
    let mut corrupt = std::fs::read(&env).unwrap();
    corrupt[0] ^= 0xff;
    std::fs::write(&env, &corrupt).unwrap();
    let (done, agent, _) = update(&app, &board, "ub-4", &[]).await;
    assert_eq!(done["counts"]["failed"], 1, "{done:#}\n{}", agent.log());
    assert!(agent.log().contains("fw_printenv"), "the error names the tool:\n{}", agent.log());
    assert_eq!(std::fs::read(&env).unwrap(), corrupt, "the environment is not rewritten by guessing");
    assert_eq!(std::fs::read(board.dir.join("b.img")).unwrap(), b"", "no slot is written");
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
