//! `fleet-agent simulate` as a child process against a real server.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::process::{Child, Command};

/// What a simulator process may use.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessLimits {
    /// `ulimit -n` (soft and hard), when set.
    pub open_files: Option<u64>,
    /// `nice -n`, when set: the load generator yields the cores to the server, as devices on
    /// other machines would.
    pub nice: Option<u8>,
}

/// A running simulator; killed on drop.
#[derive(Debug)]
pub struct Simulator {
    child: Child,
    /// What it printed up to and including the `online: N` line.
    pub printed: Vec<String>,
}

/// How to start one.
#[derive(Debug, Clone)]
pub struct SimulatorSetup<'a> {
    pub binary: &'a str,
    pub count: usize,
    pub server: &'a str,
    pub mqtt_url: &'a str,
    pub operator_token: &'a str,
    pub state_dir: &'a Path,
    pub hardware: &'a str,
    pub prefix: &'a str,
    pub fail_ratio: f64,
    pub health_fail_ratio: f64,
    /// Test-only pause per downloaded chunk, to catch devices mid-download.
    pub download_delay_ms: u64,
    /// MQTT topic root (default `fleet`).
    pub topic_root: &'a str,
    /// The CA to trust for https:// and mqtts:// (`--ca-file`), if any.
    pub ca_file: Option<&'a Path>,
    /// `--certificates`: each device enrolls and logs in with its own certificate.
    pub certificates: bool,
}

impl<'a> SimulatorSetup<'a> {
    /// `count` healthy devices of hardware `sim` named `sim-N` under the topic root `fleet`,
    /// registered with the tests' admin token; change the rest with `..`.
    pub fn new(binary: &'a str, count: usize, server: &'a str, mqtt_url: &'a str, state_dir: &'a Path) -> Self {
        Self {
            binary,
            count,
            server,
            mqtt_url,
            operator_token: crate::ADMIN_TOKEN,
            state_dir,
            hardware: "sim",
            prefix: "sim-",
            fail_ratio: 0.0,
            health_fail_ratio: 0.0,
            download_delay_ms: 0,
            topic_root: "fleet",
            ca_file: None,
            certificates: false,
        }
    }
}

impl Simulator {
    /// Starts it and waits until every device is online.
    pub async fn start(setup: SimulatorSetup<'_>) -> Self {
        Self::start_limited(setup, None).await
    }

    /// [`Simulator::start`] with its open-files limit, soft and hard, set to `open_files`
    /// (`ulimit -n`) when given.
    pub async fn start_limited(setup: SimulatorSetup<'_>, open_files: Option<u64>) -> Self {
        Self::start_as(setup, ProcessLimits { open_files, nice: None }).await
    }

    /// [`Simulator::start`] under `limits`.
    pub async fn start_as(setup: SimulatorSetup<'_>, limits: ProcessLimits) -> Self {
        std::fs::create_dir_all(setup.state_dir).expect("state dir");
        let token_file = setup.state_dir.join("operator.token");
        std::fs::write(&token_file, setup.operator_token).expect("token file");
        let log = std::fs::File::create(setup.state_dir.join("simulate.log")).expect("log");
        let mut command = match limits {
            ProcessLimits { open_files: None, nice: None } => Command::new(setup.binary),
            ProcessLimits { open_files, nice } => {
                let ulimit = open_files.map(|n| format!("ulimit -n {n} && ")).unwrap_or_default();
                let nice = nice.map(|n| format!("nice -n {n} ")).unwrap_or_default();
                let mut sh = Command::new("sh");
                sh.args(["-c", &format!(r#"{ulimit}exec {nice}"$0" "$@""#), setup.binary]);
                sh
            }
        };
        let mut child = command
            .arg("simulate")
            .args(["--count", &setup.count.to_string(), "--server", setup.server, "--mqtt-url", setup.mqtt_url])
            .args(["--trust", crate::samples_dir().join("test-only-release.pub").to_str().expect("utf-8")])
            .args(["--operator-token-file", token_file.to_str().expect("utf-8")])
            .args(["--hardware", setup.hardware, "--prefix", setup.prefix])
            .args(["--state-dir", setup.state_dir.to_str().expect("utf-8")])
            .args(["--fail-ratio", &setup.fail_ratio.to_string()])
            .args(["--health-fail-ratio", &setup.health_fail_ratio.to_string()])
            .args(["--topic-root", setup.topic_root])
            .args(setup.ca_file.iter().flat_map(|ca| ["--ca-file".as_ref(), ca.as_os_str()]))
            .args(setup.certificates.then_some("--certificates"))
            .env("FLEET_AGENT_LOG", "warn")
            .env("FLEET_AGENT_TEST_DOWNLOAD_DELAY_MS", setup.download_delay_ms.to_string())
            .stdout(Stdio::piped())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("simulator starts");
        let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let wanted = format!("online: {}", setup.count);
        // Registering and connecting takes about a millisecond per device on a small machine.
        // (On a Mosquitto with isolation each registration also rewrites its password file.)
        let patience = Duration::from_secs(120).max(Duration::from_millis(50) * setup.count as u32);
        let mut printed = Vec::new();
        let online = tokio::time::timeout(patience, async {
            while let Ok(Some(line)) = lines.next_line().await {
                let done = line.contains(&wanted);
                printed.push(line);
                if done {
                    return true;
                }
            }
            false
        })
        .await;
        let log = std::fs::read_to_string(setup.state_dir.join("simulate.log")).unwrap_or_default();
        assert!(matches!(online, Ok(true)), "simulated devices did not come online:\n{printed:?}\n{log}");
        Self { child, printed }
    }

    pub fn pid(&self) -> u32 {
        self.child.id().unwrap_or(0)
    }

    pub async fn stop(mut self) {
        let _ = self.child.kill().await;
    }

    /// SIGTERM, as Ctrl-C or a service manager stops it: its devices stop cleanly. Waits
    /// until it has exited.
    pub async fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.pid().to_string();
        let sent = Command::new("kill").args(["-TERM", &pid]).status().await;
        assert!(sent.is_ok_and(|s| s.success()), "kill -TERM {pid}");
        self.child.wait().await.expect("simulator status")
    }
}
