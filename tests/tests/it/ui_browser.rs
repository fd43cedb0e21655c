//! The dashboard in a real headless browser (Debian's `chromium` driven by Python
//! Playwright, `tests/browser/dashboard.py`): the real server and simulated devices; the
//! script signs in, uploads a signed artifact through the form, creates a rollout from the
//! form after a dry run (two waves, manual gate), pauses and resumes it, starts the second
//! wave at the gate, watches the bars reach 100 % without a reload, and checks that a
//! read-only token sees no control buttons. Screenshots of every page go
//! to `target/ui-screenshots/` (or `FLEET_TEST_SCREENSHOTS`).
//!
//! Needs `FLEET_TEST_PYTHON` (a Python with `playwright`; default `python3`) and
//! `FLEET_TEST_CHROMIUM` (default `/usr/bin/chromium`); `.ci/run` installs both.

use std::path::PathBuf;
use std::time::Duration;

use fleet_cli::client::TokenScope;
use fleet_protocol::ArtifactKind;
use fleet_tests::{ADMIN_TOKEN, TestApp, manifest_for, release_key, sign};

use super::rollouts::{firmware, simulate_with};

const DEVICES: usize = 20;

fn screenshots_dir() -> PathBuf {
    std::env::var_os("FLEET_TEST_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/ui-screenshots"))
}

#[tokio::test]
#[ignore = "needs chromium and Python playwright (CI installs both)"]
async fn the_dashboard_drives_a_rollout_in_a_real_browser() {
    let app = TestApp::spawn().await;
    app.trust_release_key().await;
    firmware(&app, "gateway-os", "1.0.0", "sim").await;
    let viewer = app.client.create_operator_token("viewer", TokenScope::ReadOnly).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    // Each device downloads slowly enough that the rollout is still running when the
    // script presses Pause.
    let sim = simulate_with(&app, &dir.path().join("sim"), DEVICES, 0.0, "sim-", 100).await;

    // A second signed release for the upload form: the envelope and the file, as an
    // operator would have them from `fleetctl sign`.
    let bytes: Vec<u8> = (0..256 * 1024u32).map(|i| (i % 251) as u8).collect();
    let mut m = manifest_for(ArtifactKind::Firmware, "gateway-os", "2.0.0", &bytes);
    m.hardware = vec![fleet_protocol::HardwareModel::parse("sim").unwrap()];
    let envelope = dir.path().join("gateway-os-2.0.0.envelope.json");
    let file = dir.path().join("gateway-os-2.0.0.bin");
    std::fs::write(&envelope, serde_json::to_vec(&sign(&m, &[&release_key()])).unwrap()).unwrap();
    std::fs::write(&file, &bytes).unwrap();

    let shots = screenshots_dir();
    std::fs::create_dir_all(&shots).unwrap();
    let shots = shots.canonicalize().unwrap();
    println!("dashboard screenshots: {}", shots.display());
    let python = std::env::var("FLEET_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let chromium = std::env::var("FLEET_TEST_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("browser/dashboard.py");
    // Tokens go to the script in its environment, never on a command line or in a URL.
    let run = tokio::process::Command::new(&python)
        .arg(&script)
        .env("FLEET_UI_URL", app.client.base_url())
        .env("FLEET_UI_ADMIN_TOKEN", ADMIN_TOKEN)
        .env("FLEET_UI_READONLY_TOKEN", &viewer.token)
        .env("FLEET_UI_DEVICES", DEVICES.to_string())
        .env("FLEET_UI_ENVELOPE", &envelope)
        .env("FLEET_UI_FILE", &file)
        .env("FLEET_UI_SCREENSHOTS", &shots)
        .env("FLEET_UI_CHROMIUM", &chromium)
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(300), run)
        .await
        .expect("the browser script finishes within 5 minutes")
        .unwrap_or_else(|e| panic!("{python} {} does not start: {e}", script.display()));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(out.status.success(), "the browser script failed ({}):\n{stdout}\n{stderr}", out.status);

    // What the browser did is what the server holds.
    let rollouts = app.client.list_rollouts(None).await.unwrap();
    assert_eq!(rollouts.items.len(), 1, "one rollout, created from the form");
    assert_eq!(rollouts.items[0].state, "completed");
    let audit = app.client.audit(Some(100), None).await.unwrap();
    let actions: Vec<&str> = audit.items.iter().map(|a| a.action.as_str()).collect();
    for action in ["rollout.created", "rollout.paused", "rollout.resumed"] {
        assert!(actions.contains(&action), "{action} in {actions:?}");
    }
    let uploaded = app.client.list_artifacts(ArtifactKind::Firmware, None, None).await.unwrap();
    assert!(uploaded.items.iter().any(|a| a.version == "2.0.0"), "the form's upload");
    sim.stop().await;
}
