//! `fleetctl` as an operator runs it: keygen, sign, keys, uploads, devices, import.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Output;

use fleet_protocol::ArtifactKind;
use fleet_tests::{ADMIN_TOKEN, TestApp};

async fn fleetctl(app: &TestApp, cwd: &Path, args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_fleetctl-under-test"))
        .args(args)
        .current_dir(cwd)
        .env("FLEET_URL", app.client.base_url())
        .env("FLEET_TOKEN", ADMIN_TOKEN)
        .output()
        .await
        .unwrap()
}

async fn ok(app: &TestApp, cwd: &Path, args: &[&str]) -> String {
    let out = fleetctl(app, cwd, args).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "fleetctl {args:?}: {stderr}");
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test]
async fn operator_workflow() {
    let app = TestApp::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();

    ok(&app, cwd, &["keygen", "release"]).await;
    assert_eq!(std::fs::metadata(cwd.join("release.key")).unwrap().permissions().mode() & 0o777, 0o600);
    ok(&app, cwd, &["keys", "add", "release", "release.pub"]).await;
    assert!(ok(&app, cwd, &["keys", "list"]).await.contains("active"));

    std::fs::write(cwd.join("fw.img"), vec![42u8; 300_000]).unwrap();
    // Hardware must be named or explicitly waived.
    let refused =
        fleetctl(&app, cwd, &["sign", "fw.img", "--key", "release.key", "--name", "gw", "--version", "1.0.0"]).await;
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--any-hardware"));
    ok(
        &app,
        cwd,
        &[
            "sign",
            "fw.img",
            "--key",
            "release.key",
            "--name",
            "gw",
            "--version",
            "1.0.0",
            "--hardware",
            "rpi4",
            "--expires-in",
            "30d",
        ],
    )
    .await;
    assert!(cwd.join("fw.img.dsse.json").exists());
    ok(&app, cwd, &["firmware", "upload", "fw.img", "--quiet"]).await;
    // Sign on the fly.
    ok(
        &app,
        cwd,
        &[
            "firmware",
            "upload",
            "fw.img",
            "--quiet",
            "--key",
            "release.key",
            "--name",
            "gw",
            "--version",
            "1.0.1",
            "--any-hardware",
        ],
    )
    .await;
    let listed = app.client.list_artifacts(ArtifactKind::Firmware, Some("gw"), None).await.unwrap();
    assert_eq!(listed.items.len(), 2);
    assert!(listed.items[0].envelope.is_none());
    let shown = app.client.get_artifact(ArtifactKind::Firmware, &listed.items[1].id).await.unwrap();
    assert!(shown.hardware.is_empty());
    assert!(listed.items[0].hardware == ["rpi4"]);

    // A duplicate is one clear line and a non-zero exit.
    let dup = fleetctl(&app, cwd, &["firmware", "upload", "fw.img", "--quiet"]).await;
    assert!(!dup.status.success());
    let stderr = String::from_utf8_lossy(&dup.stderr);
    assert!(stderr.contains("version_exists") && stderr.lines().count() == 1, "{stderr}");

    ok(&app, cwd, &["firmware", "download", &listed.items[0].id, "--out", "back.img"]).await;
    assert_eq!(std::fs::read(cwd.join("back.img")).unwrap(), vec![42u8; 300_000]);
    ok(&app, cwd, &["firmware", "rm", &listed.items[0].id]).await;

    std::fs::write(
        cwd.join("devices.csv"),
        "id,hardware,labels\ngw-1,rpi4,site=berlin;ring=canary\ngw-2,rpi4,\nbad/id,rpi4,\n",
    )
    .unwrap();
    let import = fleetctl(&app, cwd, &["devices", "import", "devices.csv", "--tokens-out", "tokens.csv"]).await;
    assert!(!import.status.success(), "one row is invalid");
    let tokens = std::fs::read_to_string(cwd.join("tokens.csv")).unwrap();
    assert_eq!(tokens.lines().count(), 2);
    assert_eq!(std::fs::metadata(cwd.join("tokens.csv")).unwrap().permissions().mode() & 0o777, 0o600);
    let gw1 = app.client.get_device("gw-1").await.unwrap();
    assert_eq!(gw1.labels["ring"], "canary");

    let rotated = ok(&app, cwd, &["devices", "rotate-token", "gw-1"]).await;
    let rotated = rotated.lines().find_map(|l| l.strip_prefix("token ")).unwrap_or_else(|| panic!("{rotated}"));
    assert!(rotated.starts_with("fleet_dev_"));
    assert!(!tokens.contains(rotated));
    assert!(ok(&app, cwd, &["devices", "list", "--label", "site=berlin"]).await.contains("gw-1"));
    ok(&app, cwd, &["devices", "rm", "gw-2"]).await;
    assert!(!ok(&app, cwd, &["devices", "list"]).await.contains("gw-2"));
}

/// `fleetctl broker sync` installs the server's Mosquitto files on another host and runs the
/// reload command only when they changed.
#[tokio::test]
async fn broker_sync_writes_mosquitto_files_and_reloads_on_change() {
    let app = TestApp::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    let broker_dir = cwd.join("mosquitto");
    std::fs::create_dir(&broker_dir).unwrap();
    let reload = format!("echo reloaded >> {}", cwd.join("reloads").display());
    let sync = ["broker", "sync", "--dir", broker_dir.to_str().unwrap(), "--reload-command", &reload];
    let reloads = || std::fs::read_to_string(cwd.join("reloads")).unwrap_or_default().lines().count();

    app.client.add_device("dev-1", "sim", &Default::default()).await.unwrap();
    assert!(ok(&app, cwd, &sync).await.contains("files updated"));
    let passwords = std::fs::read_to_string(broker_dir.join("passwords")).unwrap();
    assert!(passwords.contains("\ndev-1:$7$101$"), "{passwords}");
    assert!(std::fs::read_to_string(broker_dir.join("acl")).unwrap().contains("pattern write fleet/devices/%u/status"));
    assert_eq!(std::fs::metadata(broker_dir.join("passwords")).unwrap().permissions().mode() & 0o777, 0o640);
    assert_eq!(reloads(), 1);

    ok(&app, cwd, &sync).await;
    assert_eq!(reloads(), 1, "nothing changed, no reload");
    app.client.delete_device("dev-1").await.unwrap();
    ok(&app, cwd, &sync).await;
    assert_eq!(reloads(), 2);
    assert!(!std::fs::read_to_string(broker_dir.join("passwords")).unwrap().contains("dev-1"));
}
