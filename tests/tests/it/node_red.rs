//! The Node-RED example flow (`examples/node-red/`) against the real server: Node-RED 4
//! from npm, headless, runs the flow as committed and logs in to the embedded broker as an
//! operator account; a rollout of simulated devices trips the failure gate twice (before
//! and after a resume), and its body changes during the first pause (a device skipped);
//! the flow posts exactly one alert per pause to a receiver in the test, serves its
//! dashboard, and its progress endpoint follows the rollout's numbers to the end.
//!
//! Needs `FLEET_TEST_NODE_RED`: a folder holding `node_modules/.bin/node-red`, installed
//! from `examples/node-red/package-lock.json` (`.ci/run` does it), and `node` on the PATH.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use fleet_agent::simulate::picked;
use fleet_cli::client::TokenScope;
use fleet_tests::TestApp;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::rollouts::{count, create, firmware, get, post, simulate_with, wait_for};

const NODE_RED_VAR: &str = "FLEET_TEST_NODE_RED";
const DEVICES: usize = 50;
const FAIL_RATIO: f64 = 0.4;
/// Device states that are neither pending nor final.
const IN_FLIGHT: [&str; 5] = ["sent", "downloading", "verifying", "installing", "rebooting"];
/// What the flow counts as failed: what the failure gate counts.
const FAILED: [&str; 4] = ["failed", "rolled_back", "rejected", "timed_out"];

/// Node-RED as a child process on a user directory of its own; killed on drop.
struct NodeRed {
    child: tokio::process::Child,
    base: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl NodeRed {
    /// Starts `install`'s Node-RED on a copy of the example flow with a headless test
    /// settings file, `env` as its environment, and waits until the flow's MQTT broker
    /// node is connected.
    async fn start(install: &Path, env: &[(&str, String)]) -> Self {
        let binary = install.join("node_modules/.bin/node-red");
        assert!(binary.exists(), "{} is missing: install examples/node-red there (npm ci)", binary.display());
        let dir = tempfile::tempdir().unwrap();
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/node-red");
        for file in ["flows.json", "flows_cred.json"] {
            std::fs::copy(example.join(file), dir.path().join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        }
        std::fs::write(dir.path().join("settings.js"), HEADLESS_SETTINGS).unwrap();
        let port = free_port();
        let log = dir.path().join("node-red.log");
        let out = std::fs::File::create(&log).unwrap();
        let child = tokio::process::Command::new(&binary)
            .arg("--userDir")
            .arg(dir.path())
            .args(["--port", &port.to_string()])
            .envs(env.iter().cloned())
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("{} does not start: {e}", binary.display()));
        let mut node_red = Self { child, base: format!("http://127.0.0.1:{port}"), log, _dir: dir };
        node_red.wait_logged("Connected to broker", Duration::from_secs(60)).await;
        node_red
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until its log shows `needle`; fails with the log if it exits or takes too long.
    async fn wait_logged(&mut self, needle: &str, within: Duration) {
        let deadline = Instant::now() + within;
        while !self.log().contains(needle) {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("Node-RED exited ({status}) before logging {needle:?}:\n{}", self.log());
            }
            assert!(Instant::now() < deadline, "no {needle:?} in Node-RED's log within {within:?}:\n{}", self.log());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        reqwest::get(format!("{}{path}", self.base))
            .await
            .unwrap_or_else(|e| panic!("GET {path} from Node-RED: {e}\n{}", self.log()))
    }

    /// The flow's `GET /fleet/progress` row for `rollout`, if it has one.
    async fn progress(&self, rollout: &str) -> Option<Value> {
        let rows: Value = self.get("/fleet/progress").await.json().await.expect("JSON from /fleet/progress");
        rows.as_array().expect("an array of rows").iter().find(|row| row["id"] == rollout).cloned()
    }
}

/// The test's settings: no editor or admin API, listening on the loopback only.
const HEADLESS_SETTINGS: &str = r#"module.exports = {
    uiHost: "127.0.0.1",
    httpAdminRoot: false,
    flowFile: "flows.json",
    credentialSecret: false,
    logging: { console: { level: "info", metrics: false, audit: false } },
    telemetry: { enabled: false },
    diagnostics: { enabled: false },
    editorTheme: { projects: { enabled: false } }
};
"#;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A local HTTP server that records every alert posted to `/alert`.
struct AlertReceiver {
    addr: SocketAddr,
    got: Arc<Mutex<Vec<String>>>,
}

impl AlertReceiver {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let got = Arc::new(Mutex::new(Vec::new()));
        let app = axum::Router::new().route("/alert", axum::routing::post(record)).with_state(got.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { addr, got }
    }

    fn url(&self) -> String {
        format!("http://{}/alert", self.addr)
    }

    /// Every alert so far, parsed.
    fn alerts(&self) -> Vec<Value> {
        let got = self.got.lock().unwrap().clone();
        got.iter().map(|body| serde_json::from_str(body).unwrap_or_else(|e| panic!("alert {body:?}: {e}"))).collect()
    }

    /// Waits until `n` alerts came.
    async fn wait_for(&self, n: usize, within: Duration, node_red: &NodeRed) -> Vec<Value> {
        let deadline = Instant::now() + within;
        loop {
            let alerts = self.alerts();
            if alerts.len() >= n {
                return alerts;
            }
            assert!(Instant::now() < deadline, "{n} alerts expected, got {alerts:?}\n{}", node_red.log());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn record(State(got): State<Arc<Mutex<Vec<String>>>>, body: Bytes) -> StatusCode {
    got.lock().unwrap().push(String::from_utf8_lossy(&body).into_owned());
    StatusCode::NO_CONTENT
}

/// Whether no device of the rollout is in flight (pending ones wait for a resume).
fn settled(body: &Value) -> bool {
    IN_FLIGHT.iter().all(|state| count(body, state) == 0)
}

/// The share of the rollout's devices updated, in whole percent, as the dashboard shows it.
fn percent(body: &Value) -> i64 {
    let total = body["total"].as_i64().expect("total");
    (100.0 * count(body, "succeeded") as f64 / total as f64).round() as i64
}

fn failed(body: &Value) -> i64 {
    FAILED.iter().map(|state| count(body, state)).sum()
}

/// Waits until the rollout is paused by a pause other than `not` and no device is in flight.
async fn wait_paused(app: &TestApp, id: &str, not: &Value) -> Value {
    wait_for(app, id, Duration::from_secs(90), |b| b["state"] == "paused" && b["pause_detail"] != *not && settled(b))
        .await
}

/// Checks one alert: it names the rollout and this pause.
fn assert_alert(alert: &Value, paused: &Value) {
    assert_eq!(alert["rollout"], paused["id"], "the alert names the rollout: {alert:#}");
    assert_eq!(alert["state"], "paused", "{alert:#}");
    assert_eq!(alert["reason"], "failure_threshold", "{alert:#}");
    assert_eq!(alert["pause_detail"], paused["pause_detail"], "the alert tells which pause: {alert:#}");
    let text = alert["text"].as_str().expect("a text for chat webhooks");
    assert!(text.contains(paused["id"].as_str().unwrap()), "{text}");
}

/// Waits until the flow's progress row for the rollout shows `body`'s numbers.
async fn wait_progress(node_red: &NodeRed, body: &Value) -> Value {
    let id = body["id"].as_str().unwrap();
    let want = json!({
        "state": body["state"], "reason": body["reason"], "total": body["total"],
        "succeeded": count(body, "succeeded"), "failed": failed(body), "pending": count(body, "pending"),
    });
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let row = node_red.progress(id).await;
        if let Some(row) = &row {
            let shown = json!({
                "state": row["state"], "reason": row["reason"], "total": row["total"],
                "succeeded": row["succeeded"], "failed": row["failed"], "pending": row["pending"],
            });
            if shown == want {
                return row.clone();
            }
        }
        assert!(Instant::now() < deadline, "the flow's progress is {row:?}, the rollout's {want}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
#[ignore = "needs Node-RED 4 from npm (CI installs it)"]
async fn the_node_red_example_shows_progress_and_alerts_once_per_failure_pause() {
    let install = std::env::var_os(NODE_RED_VAR)
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("{NODE_RED_VAR}: the folder where examples/node-red was installed"));
    let app = TestApp::spawn_embedded(|_| {}).await;
    app.trust_release_key().await;
    let fw = firmware(&app, "gateway-os", "1.0.0", "sim").await;
    let token = app.client.create_token("node-red", TokenScope::ReadOnly, true).await.unwrap();
    let receiver = AlertReceiver::start().await;
    let (host, port) = app.mqtt_url.trim_start_matches("mqtt://").rsplit_once(':').expect("host:port");
    let node_red = NodeRed::start(
        &install,
        &[
            ("FLEET_MQTT_HOST", host.to_owned()),
            ("FLEET_MQTT_PORT", port.to_owned()),
            ("FLEET_MQTT_USER", "op:node-red".to_owned()),
            ("FLEET_MQTT_PASSWORD", token.token.clone()),
            ("FLEET_ALERT_URL", receiver.url()),
        ],
    )
    .await;

    // The dashboard is served (headless: no editor).
    let dashboard = node_red.get("/dashboard").await;
    assert_eq!(dashboard.status(), 200, "GET /dashboard");
    assert!(dashboard.text().await.unwrap().contains("<div id=\"app\""), "the dashboard's page");
    assert_eq!(node_red.get("/flows").await.status(), 404, "no admin API when headless");

    // 50 devices, two waves; the picked failures trip a 0.2 gate in each.
    let dir = tempfile::tempdir().unwrap();
    let sim = simulate_with(&app, dir.path(), DEVICES, FAIL_RATIO, "sim-", 0).await;
    let mut ids: Vec<String> = (0..DEVICES).map(|i| format!("sim-{i}")).collect();
    ids.sort();
    // The first device of the second wave is skipped during the first pause.
    let skipped = &ids[10];
    for wave in [&ids[..10], &ids[11..]] {
        let failing = wave.iter().filter(|id| picked("", id, FAIL_RATIO)).count();
        assert!(failing * 5 > wave.len(), "the picked devices trip a 0.2 gate ({failing} of {})", wave.len());
    }
    let id = create(
        &app,
        json!({"firmware": fw.id, "target": {"hardware": "sim"}, "waves": [20, 100],
               "max_failure_ratio": 0.2, "min_finished": 5}),
    )
    .await;

    let first = wait_paused(&app, &id, &Value::Null).await;
    assert_eq!(first["reason"], "failure_threshold", "{first:#}");
    let alerts = receiver.wait_for(1, Duration::from_secs(30), &node_red).await;
    assert_alert(&alerts[0], &first);
    wait_progress(&node_red, &first).await;
    assert_eq!(receiver.alerts().len(), 1, "one alert for the first pause");

    // The same pause, another body (a device skipped): shown, and no second alert.
    let (status, entry) = post(&app, &format!("/rollouts/{id}/devices/{skipped}/skip"), json!({})).await;
    assert_eq!((status, entry["state"].as_str()), (200, Some("cancelled")), "{entry}");
    let changed = wait_paused(&app, &id, &Value::Null).await;
    assert_eq!(count(&changed, "pending"), count(&first, "pending") - 1, "{changed:#}");
    assert_eq!(changed["pause_detail"], first["pause_detail"], "still the first pause");
    wait_progress(&node_red, &changed).await;

    let (status, resumed) = post(&app, &format!("/rollouts/{id}/resume"), json!({})).await;
    assert_eq!(status, 200, "{resumed}");
    let second = wait_paused(&app, &id, &first["pause_detail"]).await;
    assert_eq!(second["reason"], "failure_threshold", "{second:#}");
    // A second alert for the first pause (after the skip) would stand here instead.
    let alerts = receiver.wait_for(2, Duration::from_secs(30), &node_red).await;
    assert_alert(&alerts[1], &second);
    assert_eq!(count(&second, "cancelled"), 1, "the skipped device: {second:#}");
    let row = wait_progress(&node_red, &second).await;
    assert_eq!(row["percent"], percent(&second), "{row}");
    assert_eq!(receiver.alerts().len(), 2, "exactly one alert per pause: {:#?}", receiver.alerts());
    assert_eq!(get(&app, &format!("/rollouts/{id}")).await["counts"], second["counts"], "nothing moved meanwhile");
    sim.stop().await;
}
