//! Going back to an older version (CONTRACT §7, docs/rollouts.md): the real server, the
//! real agent binary and fleetctl. A device on 1.2.0 refuses a rollout of 1.1.0
//! (`rejected`/`downgrade`) until 1.1.0 is signed with an `allow_downgrade_from` that its
//! installed version matches; the permission cannot be added to a signed manifest.

use std::path::Path;
use std::time::Duration;

use fleet_cli::client::Artifact;
use fleet_protocol::paths::RolloutAction;
use fleet_protocol::state::{DeviceState, Reason};
use fleet_protocol::{ArtifactKind, ErrorCode};
use fleet_tests::agent::{AgentProcess, AgentSetup};
use fleet_tests::{ADMIN_TOKEN, TestApp, manifest_for, release_key, samples_dir, sign};
use serde_json::{Value, json};

const AGENT: &str = env!("CARGO_BIN_EXE_fleet-agent-under-test");
const FLEETCTL: &str = env!("CARGO_BIN_EXE_fleetctl-under-test");
const DEVICE: &str = "dev-back";

fn image(version: &str) -> Vec<u8> {
    let seed = version.bytes().fold(0u8, |a, b| a.wrapping_mul(31).wrapping_add(b));
    (0..100_000u32).map(|i| (i % 251) as u8 ^ seed).collect()
}

/// Uploads `version` signed by the test release key, without any downgrade permission.
async fn upload(app: &TestApp, version: &str) -> Artifact {
    let bytes = image(version);
    let m = manifest_for(ArtifactKind::Firmware, "gateway-os", version, &bytes);
    app.upload(ArtifactKind::Firmware, &sign(&m, &[&release_key()]), bytes).await.unwrap()
}

/// Signs and uploads `version` with fleetctl, allowing devices on `req` to go back to it.
async fn upload_with_permission(app: &TestApp, dir: &Path, version: &str, req: &str) -> Artifact {
    let file = dir.join(format!("gateway-os-{version}.img"));
    std::fs::write(&file, image(version)).unwrap();
    let key = samples_dir().join("test-only-release.key");
    let out = tokio::process::Command::new(FLEETCTL)
        .args(["firmware", "upload", file.to_str().unwrap(), "--quiet"])
        .args(["--key", key.to_str().unwrap(), "--name", "gateway-os", "--version", version, "--hardware", "rpi4"])
        .args(["--allow-downgrade-from", req])
        .env("FLEET_URL", app.client.base_url())
        .env("FLEET_TOKEN", ADMIN_TOKEN)
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "fleetctl: {}", String::from_utf8_lossy(&out.stderr));
    let listed = app.client.list_artifacts(ArtifactKind::Firmware, Some("gateway-os"), None).await.unwrap();
    let found = listed.items.into_iter().find(|a| a.version == version).expect("uploaded");
    app.client.get_artifact(ArtifactKind::Firmware, &found.id).await.unwrap()
}

/// Registers the device and starts the real agent for it; waits until it is online.
async fn start_agent(app: &TestApp, dir: &Path) -> AgentProcess {
    let token = app.client.add_device(DEVICE, "rpi4", &Default::default()).await.unwrap().token;
    let agent = AgentProcess::spawn(
        AGENT,
        &AgentSetup {
            extra: vec!["--health-timeout-s".into(), "20".into()],
            ..AgentSetup::on(app, DEVICE, token, dir.join(DEVICE))
        },
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !app.client.get_device(DEVICE).await.unwrap().online {
        assert!(tokio::time::Instant::now() < deadline, "never online:\n{}", agent.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    agent
}

/// Rolls `artifact` out to the device; returns the rollout id and the device's final entry
/// once the rollout has ended too (until then the device counts as busy for the next one).
async fn roll_out(app: &TestApp, artifact: &Artifact, agent: &AgentProcess) -> (String, DeviceState, Option<Reason>) {
    let body = json!({"firmware": artifact.id, "target": {"devices": [DEVICE]}});
    let id = app.client.create_rollout(&body).await.unwrap().id;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        let entries = app.client.rollout_devices(&id, None, None).await.unwrap();
        let entry = &entries.items[0];
        if entry.state.is_final() && app.client.get_rollout(&id).await.unwrap().state != "running" {
            return (id, entry.state, entry.reason);
        }
        let waiting = format!("{:?}", entry.state);
        assert!(tokio::time::Instant::now() < deadline, "{} still {waiting}:\n{}", artifact.version, agent.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn installed(app: &TestApp) -> String {
    app.client.get_device(DEVICE).await.unwrap().firmware.expect("reports its firmware").version.to_string()
}

#[tokio::test]
async fn a_device_goes_back_only_with_a_signed_permission_matching_its_version() {
    let app = TestApp::spawn().await;
    app.trust_release_key().await;
    let dir = tempfile::tempdir().unwrap();
    let agent = start_agent(&app, dir.path()).await;
    let current = upload(&app, "1.2.0").await;
    let (_, state, _) = roll_out(&app, &current, &agent).await;
    assert_eq!(state, DeviceState::Succeeded, "{}", agent.log());
    assert_eq!(installed(&app).await, "1.2.0");

    // An older version without the permission: refused, nothing changes.
    let older = upload(&app, "1.1.0").await;
    assert_eq!(older.allow_downgrade_from, None);
    let (refused, state, reason) = roll_out(&app, &older, &agent).await;
    assert_eq!((state, reason), (DeviceState::Rejected, Some(Reason::Downgrade)), "{}", agent.log());
    assert_eq!(installed(&app).await, "1.2.0");

    // The release key holder re-signs 1.1.0 with a permission for 1.2.x: it installs.
    app.client.control_rollout(&refused, RolloutAction::Cancel).await.unwrap();
    app.client.delete_artifact(ArtifactKind::Firmware, &older.id).await.unwrap();
    let permitted = upload_with_permission(&app, dir.path(), "1.1.0", ">=1.2.0, <2.0.0").await;
    assert_eq!(permitted.allow_downgrade_from.as_deref(), Some(">=1.2.0, <2.0.0"));
    let (_, state, reason) = roll_out(&app, &permitted, &agent).await;
    assert_eq!((state, reason), (DeviceState::Succeeded, None), "{}", agent.log());
    assert_eq!(installed(&app).await, "1.1.0");

    // A permission that does not match the installed 1.1.0: refused.
    let narrow = upload_with_permission(&app, dir.path(), "1.0.0", ">=1.2.0, <2.0.0").await;
    let (_, state, reason) = roll_out(&app, &narrow, &agent).await;
    assert_eq!((state, reason), (DeviceState::Rejected, Some(Reason::Downgrade)), "{}", agent.log());
    assert_eq!(installed(&app).await, "1.1.0");
}

/// The permission is part of the signed payload: written into a signed manifest afterwards,
/// it breaks the signature, and the server refuses the upload.
#[tokio::test]
async fn a_permission_added_after_signing_breaks_the_signature() {
    let app = TestApp::spawn().await;
    app.trust_release_key().await;
    let bytes = image("1.1.0");
    let m = manifest_for(ArtifactKind::Firmware, "gateway-os", "1.1.0", &bytes);
    let mut envelope = sign(&m, &[&release_key()]);
    let mut widened: Value = serde_json::from_slice(&m.to_bytes()).unwrap();
    widened["allow_downgrade_from"] = ">=0.0.0".into();
    envelope.payload = fleet_protocol::envelope::encode_base64(&serde_json::to_vec(&widened).unwrap());
    let refused = app.upload(ArtifactKind::Firmware, &envelope, bytes).await.unwrap_err();
    assert_eq!(refused.problem().map(|p| p.code), Some(ErrorCode::SignatureInvalid), "{refused}");
}
