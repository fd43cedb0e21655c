//! What the back-end tests (`rauc`, `swupdate`) share: a signed firmware artifact whose
//! bytes are the back end's own update file, rolled out to a new device running the real
//! agent.

use std::path::PathBuf;
use std::time::Duration;

use fleet_protocol::{ArtifactKind, HardwareModel};
use fleet_tests::agent::{AgentProcess, AgentSetup};
use fleet_tests::{TestApp, manifest_for, release_key, sign};
use serde_json::{Value, json};

use crate::rollouts::wait_for;

pub(crate) const AGENT: &str = env!("CARGO_BIN_EXE_fleet-agent-under-test");

/// A device: its agent's flags and environment, and its state directory.
pub(crate) struct Device {
    pub id: &'static str,
    pub flags: Vec<String>,
    pub env: Vec<(String, String)>,
    pub state_dir: PathBuf,
}

/// Uploads `file` as firmware 2.0.0 for rpi4 (our signature over its bytes), rolls it out
/// to `device` with the real agent and returns the rollout once its device is final.
pub(crate) async fn update(app: &TestApp, device: Device, file: Vec<u8>) -> (Value, AgentProcess) {
    let token = app.client.add_device(device.id, "rpi4", &Default::default()).await.unwrap().token;
    let mut extra = device.flags;
    extra.extend(["--health-timeout-s", "20"].map(str::to_owned));
    let agent = AgentProcess::spawn(
        AGENT,
        &AgentSetup { extra, env: device.env, ..AgentSetup::on(app, device.id, token, device.state_dir) },
    );
    let mut m = manifest_for(ArtifactKind::Firmware, "gateway-os", "2.0.0", &file);
    m.hardware = vec![HardwareModel::parse("rpi4").unwrap()];
    let fw = app.upload(ArtifactKind::Firmware, &sign(&m, &[&release_key()]), file).await.unwrap();
    // A second attempt, as an operator would allow: a back end can fail a run on its own
    // (SWUpdate 2022.12 now and then does, agent/src/install/swupdate.rs), and a `failed`
    // device is what the server retries. The rollout is waited for to complete, so a
    // retried failure is not taken for the outcome.
    let target = json!({"firmware": fw.id, "target": {"devices": [device.id]}, "max_attempts": 2,
                        "max_failure_ratio": 1.0});
    let rollout = app.client.create_rollout(&target).await.unwrap();
    let done = wait_for(app, &rollout.id, Duration::from_secs(90), |b| b["state"] == "completed").await;
    (done, agent)
}

/// The slot image the update files carry.
pub(crate) fn image() -> Vec<u8> {
    (0..64 * 1024u32).map(|i| (i % 251) as u8).collect()
}
