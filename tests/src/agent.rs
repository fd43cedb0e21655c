//! Running the real `fleet-agent` binary as its own process, so tests can `kill -9` it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use fleet_protocol::message::Command as DeviceCommand;
use fleet_protocol::{ArtifactKind, DeviceId, Envelope, RolloutId};

/// How to start one agent.
#[derive(Debug, Clone)]
pub struct AgentSetup {
    pub id: DeviceId,
    /// Empty: no `--token-file` (a device with a certificate only, in `extra`).
    pub token: String,
    pub hardware: String,
    pub server: String,
    pub mqtt_url: String,
    pub trust: PathBuf,
    pub state_dir: PathBuf,
    /// More flags, e.g. `--health-command`.
    pub extra: Vec<String>,
    /// More environment, e.g. the test-only clock offset.
    pub env: Vec<(String, String)>,
}

impl AgentSetup {
    /// Device `id` of `app` (its server and broker), hardware `rpi4`, trusting the TEST-ONLY
    /// release key, its state in `state_dir`; no more flags or environment.
    pub fn on(app: &crate::TestApp, id: &str, token: String, state_dir: PathBuf) -> Self {
        Self {
            id: DeviceId::parse(id).expect("device id"),
            token,
            hardware: "rpi4".into(),
            server: app.client.base_url().to_owned(),
            mqtt_url: app.mqtt_url.clone(),
            trust: crate::samples_dir().join("test-only-release.pub"),
            state_dir,
            extra: vec![],
            env: vec![],
        }
    }
}

/// A running agent process; killed on drop.
#[derive(Debug)]
pub struct AgentProcess {
    child: Child,
    pub state_dir: PathBuf,
}

impl AgentProcess {
    /// Starts `binary` (the tests' `CARGO_BIN_EXE_fleet-agent-under-test`) for `setup`.
    pub fn spawn(binary: &str, setup: &AgentSetup) -> Self {
        std::fs::create_dir_all(&setup.state_dir).expect("state dir");
        let token_file = setup.state_dir.join("token");
        let mut token_flag = vec![];
        if !setup.token.is_empty() {
            std::fs::write(&token_file, &setup.token).expect("token file");
            token_flag = vec!["--token-file".to_owned(), token_file.to_str().expect("utf-8").to_owned()];
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(setup.state_dir.join("agent.log"))
            .expect("log file");
        let child = Command::new(binary)
            .arg("run")
            .args(["--device-id", setup.id.as_str()])
            .args(&token_flag)
            .args(["--hardware", &setup.hardware])
            .args(["--server", &setup.server])
            .args(["--mqtt-url", &setup.mqtt_url])
            .args(["--trust", setup.trust.to_str().expect("utf-8")])
            .args(["--state-dir", setup.state_dir.to_str().expect("utf-8")])
            .args(&setup.extra)
            .envs(setup.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("FLEET_AGENT_LOG", "fleet_agent=debug,info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("agent starts");
        Self { child, state_dir: setup.state_dir.clone() }
    }

    /// SIGKILL: no chance to clean up, like a power cut.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGTERM, as `kill PID` or a service manager stops it; waits (without blocking the
    /// runtime, which may serve the test's server) until it has exited.
    pub async fn terminate(&mut self) -> std::process::ExitStatus {
        let sent = tokio::process::Command::new("kill").args(["-TERM", &self.pid().to_string()]).status().await;
        assert!(sent.is_ok_and(|s| s.success()), "kill -TERM {}", self.pid());
        loop {
            if let Some(status) = self.child.try_wait().expect("agent status") {
                return status;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// The agent's log so far, for failure messages.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.state_dir.join("agent.log")).unwrap_or_default()
    }
}

impl Drop for AgentProcess {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// The bytes of the slot the boot system starts by default.
pub fn active_slot_bytes(state_dir: &Path) -> Vec<u8> {
    let boot: serde_json::Value = std::fs::read(state_dir.join("slots/boot.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_else(|| serde_json::json!({"active": "a"}));
    let active = boot["active"].as_str().unwrap_or("a").to_owned();
    std::fs::read(state_dir.join(format!("slots/{active}.img"))).unwrap_or_default()
}

/// The agent's journal as JSON.
pub fn journal(state_dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(state_dir.join("journal.json")).expect("journal")).expect("json")
}

/// An update command.
pub fn update(device: &DeviceId, rollout: &str, kind: ArtifactKind, url: &str, envelope: &Envelope) -> DeviceCommand {
    DeviceCommand::Update {
        device_id: device.clone(),
        rollout_id: RolloutId::parse(rollout).expect("rollout id"),
        kind,
        url: url.into(),
        envelope: envelope.clone(),
    }
}
