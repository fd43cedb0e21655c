//! Power cuts during an update (issue 20, item 4), shared by the `it` tests (a few dozen
//! cuts) and `fleet-bench power-loss` (a thousand): a fresh device gets an update, its
//! agent is killed with SIGKILL at a chosen moment after the command, the board "boots"
//! (for `uboot`: the stand-in bootloader's boot-count decision, `tests/uboot/bootloader.sh`;
//! for `rauc`: RAUC's service restarted with the slot the stand-in bootloader picks,
//! `tests/rauc/reboot.sh`) and the agent starts again. Then:
//! - the journal is readable;
//! - exactly one slot boots and it holds a complete image: the new one if the device
//!   reported `succeeded`, the old one otherwise; no trial is left pending;
//! - the final report is that truth (`succeeded`, or `rolled_back`/`failed`).
//!
//! What stands in for a real power cut: SIGKILL loses what the process had not written,
//! not what the kernel had not flushed (the page cache survives); the agent's own
//! durability (`fsync` before every rename and after every slot write) is reviewed in
//! `agent/src/atomic_file.rs` and the back ends rather than provoked here.

use std::path::Path;
use std::time::{Duration, Instant};

use fleet_protocol::message::StatusReport;
use fleet_protocol::state::DeviceState;
use fleet_protocol::{ArtifactKind, DeviceId};
use tempfile::TempDir;

use crate::agent::{AgentProcess, AgentSetup, active_slot_bytes, journal, update};
use crate::broker::{TestBroker, Watcher};
use crate::device_server::DeviceServer;
use crate::rauc::RaucBoard;
use crate::uboot::UbootBoard;
use crate::{manifest_for, release_key, samples_dir, sign};

const NEW_SIZE: usize = 256 * 1024;
/// Served 16 KiB at a time with this pause: the download takes about a quarter second.
const CHUNK_PAUSE: Duration = Duration::from_millis(15);
const FINAL: Duration = Duration::from_secs(60);

/// The firmware back end under the cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    AbSlots,
    Uboot,
    /// Debian's `rauc` on a private system bus ([`RaucBoard`]); the update is a bundle.
    Rauc,
}

/// How one update ended.
#[derive(Debug)]
pub struct Cut {
    pub state: DeviceState,
    /// From the command to the final report (the clean run's figure spaces the cuts).
    pub took: Duration,
    /// `Err` names what was broken: no bootable slot, a pending trial, a lie.
    pub bootable: Result<(), String>,
}

/// A broker, a device server and a directory for many devices.
#[allow(missing_debug_implementations)]
pub struct Harness {
    agent_binary: String,
    watcher: Watcher,
    server: DeviceServer,
    dir: TempDir,
    _broker: TestBroker,
}

fn image(seed: usize) -> Vec<u8> {
    (0..NEW_SIZE).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed as u8) | 1).collect()
}

impl Harness {
    pub async fn start(agent_binary: &str) -> anyhow::Result<Self> {
        let broker = TestBroker::start().await;
        let watcher = Watcher::connect(&broker).await;
        let server = DeviceServer::start().await;
        Ok(Self { agent_binary: agent_binary.into(), watcher, server, dir: tempfile::tempdir()?, _broker: broker })
    }

    /// Device `n` on `backend` updates; its agent is killed `cut_after` the command (if
    /// given), the board boots and the agent starts again.
    pub async fn cut(&mut self, n: usize, backend: Backend, cut_after: Option<Duration>) -> anyhow::Result<Cut> {
        let id = DeviceId::parse(format!("pl-{n}"))?;
        let mut setup = self.setup(&id, backend)?;
        let bytes = image(n);
        // RAUC's board lives (its bus and service run) until this update is judged.
        let (rauc, artifact) = match backend {
            Backend::Rauc => {
                let board = RaucBoard::new(&setup.state_dir.join("board"))?;
                let bundle = board.bundle(&bytes, "2.0.0", "ca")?;
                setup.extra.extend(board.flags());
                setup.env.extend(board.env());
                (Some(board), bundle)
            }
            _ => (None, bytes.clone()),
        };
        let mut agent = self.spawn(&setup).await?;
        let m = manifest_for(ArtifactKind::Firmware, "gateway-os", "2.0.0", &artifact);
        let url = self.server.put_blob(&format!("fw-{n}"), artifact, Some(CHUNK_PAUSE));
        let command = update(&id, &format!("r{n}"), ArtifactKind::Firmware, &url, &sign(&m, &[&release_key()]));
        self.server.set_command(id.as_str(), Some(command.clone()));
        let started = Instant::now();
        self.watcher.send(&id, &command).await;
        if let Some(after) = cut_after {
            tokio::time::sleep(after).await;
            agent.kill9();
            if backend == Backend::Uboot {
                UbootBoard::at(&setup.state_dir.join("board")).boot().map_err(anyhow::Error::msg)?;
            }
            if let Some(board) = &rauc {
                board.reboot()?;
            }
            agent = self.spawn(&setup).await?;
            // As the server does on a connect report (CONTRACT §4): the outstanding command
            // again; an agent that already has it carries on with its journal.
            self.watcher.send(&id, &command).await;
        }
        let rollout = format!("r{n}");
        // After a restart the final state may come in the connect report itself.
        let is_final =
            |r: &StatusReport| r.state.is_final() && r.rollout_id.as_ref().is_some_and(|x| x.as_str() == rollout);
        let Some(last) = self.watcher.try_wait_for(&id, FINAL, is_final).await else {
            let journal = std::fs::read_to_string(setup.state_dir.join("journal.json")).unwrap_or_default();
            let env = UbootBoard::at(&setup.state_dir.join("board")).try_env().unwrap_or_default();
            let reports = self.watcher.reports_of(&id);
            anyhow::bail!(
                "{id}: no final report; journal {journal}\nenv {env:?}\nreports {reports:?}\nlog:\n{}",
                agent.log()
            );
        };
        let took = started.elapsed();
        let bootable = match &rauc {
            Some(board) => check_rauc(&setup.state_dir, board, last.state, &bytes),
            None => check(&setup.state_dir, backend, last.state, &bytes),
        };
        agent.kill9();
        Ok(Cut { state: last.state, took, bootable })
    }

    fn setup(&self, id: &DeviceId, backend: Backend) -> anyhow::Result<AgentSetup> {
        let token = format!("token-{id}");
        self.server.add_device(id.as_str(), &token);
        let state_dir = self.dir.path().join(id.as_str());
        let mut extra = vec!["--health-timeout-s".to_owned(), "20".to_owned()];
        if backend == Backend::Uboot {
            extra.extend(UbootBoard::new(&state_dir.join("board"), 3).flags());
        }
        Ok(AgentSetup {
            id: id.clone(),
            token,
            hardware: "rpi4".into(),
            server: self.server.url.clone(),
            mqtt_url: self._broker.url(),
            trust: samples_dir().join("test-only-release.pub"),
            state_dir,
            extra,
            env: vec![],
        })
    }

    /// Starts the agent and waits for its connect report.
    async fn spawn(&mut self, setup: &AgentSetup) -> anyhow::Result<AgentProcess> {
        let agent = AgentProcess::spawn(&self.agent_binary, setup);
        self.watcher.seen.retain(|(d, r)| !(d == &setup.id && r.connect));
        let connected = self.watcher.try_wait_for(&setup.id, Duration::from_secs(30), |r| r.connect).await;
        anyhow::ensure!(connected.is_some(), "{} never connected:\n{}", setup.id, agent.log());
        Ok(agent)
    }
}

/// The device's state after its final report: see the module's invariants.
fn check(state_dir: &Path, backend: Backend, state: DeviceState, new: &[u8]) -> Result<(), String> {
    if !matches!(state, DeviceState::Succeeded | DeviceState::RolledBack | DeviceState::Failed) {
        return Err(format!("final state {state:?}"));
    }
    std::panic::catch_unwind(|| journal(state_dir)).map_err(|_| "the journal is unreadable".to_owned())?;
    let (booting, old) = match backend {
        Backend::AbSlots => {
            let boot: serde_json::Value = std::fs::read(state_dir.join("slots/boot.json"))
                .ok()
                .and_then(|b| serde_json::from_slice(&b).ok())
                .unwrap_or_else(|| serde_json::json!({"active": "a", "trial": null}));
            if !boot["trial"].is_null() {
                return Err(format!("a trial is still pending: {boot}"));
            }
            (active_slot_bytes(state_dir), Vec::new())
        }
        Backend::Uboot => {
            let env = UbootBoard::at(&state_dir.join("board")).try_env()?;
            if env.get("upgrade_available").map(String::as_str) != Some("0") {
                return Err(format!("a trial is still pending: {env:?}"));
            }
            let slot = env.get("boot_slot").cloned().unwrap_or_default();
            let bytes = std::fs::read(state_dir.join(format!("board/{slot}.img"))).map_err(|e| e.to_string())?;
            (bytes, crate::uboot::OLD_IMAGE.to_vec())
        }
        Backend::Rauc => unreachable!("judged by check_rauc"),
    };
    let want = if state == DeviceState::Succeeded { new } else { &old[..] };
    if booting != want {
        return Err(format!("reported {state:?} but the booting slot holds {} other bytes", booting.len()));
    }
    Ok(())
}

/// [`check`] for RAUC: the slot the bootloader boots next is the booted one and good (no
/// trial left), and it holds the new image if the device said `succeeded`, else the old.
fn check_rauc(state_dir: &Path, board: &RaucBoard, state: DeviceState, new: &[u8]) -> Result<(), String> {
    if !matches!(state, DeviceState::Succeeded | DeviceState::RolledBack | DeviceState::Failed) {
        return Err(format!("final state {state:?}"));
    }
    std::panic::catch_unwind(|| journal(state_dir)).map_err(|_| "the journal is unreadable".to_owned())?;
    let status = board.status().map_err(|e| e.to_string())?;
    let boot_state = board.boot_state();
    let get = |k: &str| boot_state.lines().find_map(|l| l.strip_prefix(&format!("{k}="))).unwrap_or("").to_owned();
    let primary = get("primary");
    let next = match get(&format!("state_{primary}")).as_str() {
        "good" => primary,
        _ if primary == "A" => "B".to_owned(),
        _ => "A".to_owned(),
    };
    if next != status.booted || status.boot_status(&status.booted) != Some("good") {
        return Err(format!("booted {} but the bootloader would boot {next}: {boot_state}", status.booted));
    }
    let file = if status.booted == "A" { "slot0.img" } else { "slot1.img" };
    let bytes = std::fs::read(board.dir.join(file)).map_err(|e| e.to_string())?;
    let want = if state == DeviceState::Succeeded { new } else { crate::rauc::OLD_IMAGE };
    if !bytes.starts_with(want) {
        return Err(format!("reported {state:?} but the booted slot {} holds other bytes", status.booted));
    }
    Ok(())
}
