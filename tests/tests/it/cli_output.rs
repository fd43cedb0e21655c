//! What `fleetctl` prints: tables and short summaries for people, and with `--output json`
//! exactly the API's bodies; token files that only their owner can read; one line naming
//! an unreachable server once.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use fleet_protocol::ArtifactKind;
use fleet_tests::{ADMIN_TOKEN, TestApp, manifest_for, release_key, sign};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, BufReader};

const FLEETCTL: &str = env!("CARGO_BIN_EXE_fleetctl-under-test");

fn command(app: &TestApp, cwd: &Path, args: &[&str]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(FLEETCTL);
    cmd.args(args).current_dir(cwd).env("FLEET_URL", app.client.base_url()).env("FLEET_TOKEN", ADMIN_TOKEN);
    cmd
}

/// Runs fleetctl; it must succeed. Returns stdout.
async fn ok(app: &TestApp, cwd: &Path, args: &[&str]) -> String {
    let out = command(app, cwd, args).output().await.unwrap();
    assert!(out.status.success(), "fleetctl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// `fleetctl ARGS -o json`, parsed.
async fn json_of(app: &TestApp, cwd: &Path, args: &[&str]) -> Value {
    let mut args = args.to_vec();
    args.extend(["-o", "json"]);
    let text = ok(app, cwd, &args).await;
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("fleetctl {args:?} printed no JSON ({e}): {text}"))
}

/// The API's own body.
async fn api(app: &TestApp, method: Method, path: &str, body: Option<Value>) -> Value {
    let mut req = app.client.request(method, path);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let response = req.send().await.unwrap();
    assert!(response.status().is_success(), "{path}: {}", response.status());
    response.json().await.unwrap()
}

/// `fleetctl ARGS -o json` prints the API's body at `path`. A rollout's body changes while
/// the engine dispatches in the background, so the two are read again (for up to 5 s)
/// until they are taken at a still moment.
async fn shows_as_api(app: &TestApp, cwd: &Path, args: &[&str], path: &str) {
    let mut bodies = (Value::Null, Value::Null);
    for _ in 0..50 {
        bodies = (json_of(app, cwd, args).await, api(app, Method::GET, path, None).await);
        if bodies.0 == bodies.1 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(bodies.0, bodies.1);
}

/// Uploads a 4 KiB `edge-os` 1.1.0 signed with the release key (trusted by the caller).
async fn edge_os(app: &TestApp) -> fleet_protocol::api::ArtifactInfo {
    let bytes = vec![7u8; 4096];
    let manifest = manifest_for(ArtifactKind::Firmware, "edge-os", "1.1.0", &bytes);
    app.upload(ArtifactKind::Firmware, &sign(&manifest, &[&release_key()]), bytes).await.unwrap()
}

#[tokio::test]
async fn tables_for_people_and_the_api_bodies_for_scripts() {
    let app = TestApp::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();

    // Empty lists say so.
    assert_eq!(ok(&app, cwd, &["devices", "list"]).await, "no devices\n");
    assert_eq!(ok(&app, cwd, &["rollouts", "list"]).await, "no rollouts\n");
    assert_eq!(ok(&app, cwd, &["firmware", "list"]).await, "no firmware\n");
    assert_eq!(json_of(&app, cwd, &["devices", "list"]).await, json!({"items": [], "next_cursor": null}));

    let labels = [("site".to_owned(), "berlin".to_owned())].into_iter().collect();
    app.client.add_device("gw-1", "rpi4", &labels).await.unwrap();
    app.client.add_device("gw-2", "rpi4", &Default::default()).await.unwrap();
    let listed = ok(&app, cwd, &["devices", "list"]).await;
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 4, "{listed}");
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["ID", "HARDWARE", "FIRMWARE", "ONLINE", "LAST", "SEEN"]
    );
    assert_eq!(lines[1].split_whitespace().collect::<Vec<_>>(), ["gw-1", "rpi4", "-", "no", "never"]);
    assert_eq!(lines[3], "2 devices, 0 online");
    assert_eq!(json_of(&app, cwd, &["devices", "list"]).await, api(&app, Method::GET, "/devices", None).await);
    assert_eq!(ok(&app, cwd, &["devices", "list", "--label", "site=paris"]).await, "no devices\n");

    let shown = ok(&app, cwd, &["devices", "show", "gw-1"]).await;
    assert!(shown.starts_with("device ") && shown.contains("labels      site=berlin\n"), "{shown}");
    assert!(!shown.contains('{'), "not JSON: {shown}");
    assert_eq!(
        json_of(&app, cwd, &["devices", "show", "gw-1"]).await,
        api(&app, Method::GET, "/devices/gw-1", None).await
    );

    app.trust_release_key().await;
    assert_eq!(json_of(&app, cwd, &["keys", "list"]).await, api(&app, Method::GET, "/keys", None).await);
    let fw = edge_os(&app).await;
    let path = format!("/firmware/{}", fw.id);
    assert_eq!(json_of(&app, cwd, &["firmware", "show", &fw.id]).await, api(&app, Method::GET, &path, None).await);
    let listed = ok(&app, cwd, &["firmware", "list", "--name", "edge-os"]).await;
    assert!(listed.starts_with("ID ") && listed.contains(&fw.id), "{listed}");

    let create = ["rollouts", "create", "--firmware", &fw.id, "--devices", "gw-1,gw-2", "--waves", "50,100"];
    let dry = [&create[..], &["--dry-run"]].concat();
    let plan = ok(&app, cwd, &dry).await;
    assert!(plan.starts_with("would target 2 devices; nothing was created\n"), "{plan}");
    assert!(plan.contains("targets: gw-1, gw-2\n"), "{plan}");
    let body = json!({"firmware": fw.id, "target": {"devices": ["gw-1", "gw-2"]}, "waves": [50.0, 100.0]});
    let planned = api(&app, Method::POST, "/rollouts?dry_run=true", Some(body)).await;
    assert_eq!(json_of(&app, cwd, &dry).await, planned);
    assert_eq!(json_of(&app, cwd, &["rollouts", "list"]).await["items"], json!([]), "a dry run creates nothing");

    let created = ok(&app, cwd, &create).await;
    let id = created.trim().strip_prefix("created rollout ").unwrap_or_else(|| panic!("{created}")).to_owned();
    let shown = ok(&app, cwd, &["rollouts", "show", &id]).await;
    assert!(shown.contains("state     running\n") && shown.contains("\nWAVE  PERCENT"), "{shown}");
    let path = format!("/rollouts/{id}");
    shows_as_api(&app, cwd, &["rollouts", "show", &id], &path).await;
    let devices = ok(&app, cwd, &["rollouts", "devices", &id]).await;
    assert!(devices.starts_with("DEVICE ") && devices.lines().count() == 3, "{devices}");
    assert_eq!(
        ok(&app, cwd, &["rollouts", "devices", &id, "--state", "failed"]).await,
        format!("no devices failed in rollout {id}\n")
    );

    assert_eq!(ok(&app, cwd, &["rollouts", "pause", &id]).await, format!("rollout {id}: paused\n"));
    assert_eq!(ok(&app, cwd, &["rollouts", "resume", &id]).await, format!("rollout {id}: running\n"));
    let cancelled = json_of(&app, cwd, &["rollouts", "cancel", &id]).await;
    assert_eq!((cancelled["state"].as_str(), cancelled["id"].as_str()), (Some("cancelled"), Some(id.as_str())));
    shows_as_api(&app, cwd, &["rollouts", "show", &id], &path).await;
}

/// The walkthrough's `--watch` on devices with no agent says they are offline instead of
/// waiting in silence.
#[tokio::test]
async fn watch_says_when_nothing_can_progress_because_the_devices_are_offline() {
    let app = TestApp::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    app.trust_release_key().await;
    app.client.add_device("gw-berlin-1", "rpi4", &Default::default()).await.unwrap();
    app.client.add_device("gw-2", "rpi4", &Default::default()).await.unwrap();
    let fw = edge_os(&app).await;

    let mut child = command(
        &app,
        dir.path(),
        &["rollouts", "create", "--firmware", &fw.id, "--devices", "gw-berlin-1,gw-2", "--watch"],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::null())
    .kill_on_drop(true)
    .spawn()
    .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    let found = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            seen.push(line.clone());
            if line.starts_with("nothing can progress") {
                return line;
            }
        }
        panic!("watch ended: {seen:?}")
    })
    .await
    .expect("watch said nothing about the offline devices");
    assert!(found.contains("all 2 remaining devices are offline (gw-2, gw-berlin-1)"), "{found}");
    child.kill().await.unwrap();
}

#[tokio::test]
async fn token_files_are_owner_only() {
    let app = TestApp::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    let cwd = dir.path();
    let added = ok(&app, cwd, &["devices", "add", "gw-1", "--hardware", "rpi4", "--token-file", "gw-1.token"]).await;
    assert_eq!(added, "registered gw-1; token written to gw-1.token (mode 0600)\n");
    let token_file = cwd.join("gw-1.token");
    assert_eq!(std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777, 0o600);
    let first = std::fs::read_to_string(&token_file).unwrap();
    assert!(first.starts_with("fleet_dev_"), "{first}");
    // The token works: the device may ask for its command.
    let status = app
        .client
        .with_token(first.trim())
        .request(Method::GET, "/devices/gw-1/command")
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 204);

    // A rotated token replaces a file that was open to others with an owner-only one.
    std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o644)).unwrap();
    ok(&app, cwd, &["devices", "rotate-token", "gw-1", "--token-file", "gw-1.token"]).await;
    assert_eq!(std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777, 0o600);
    let second = std::fs::read_to_string(&token_file).unwrap();
    assert!(second.starts_with("fleet_dev_") && second != first);
}

#[tokio::test]
async fn an_unreachable_server_is_one_line_naming_its_url_once() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let dir = tempfile::tempdir().unwrap();
    let out = tokio::process::Command::new(FLEETCTL)
        .args(["devices", "list"])
        .current_dir(dir.path())
        .env("FLEET_URL", &url)
        .env("FLEET_TOKEN", ADMIN_TOKEN)
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("fleetctl: cannot reach the server at "), "{stderr}");
    assert_eq!(stderr.matches(&url).count(), 1, "{stderr}");
}

/// Devices that refuse an update are counted with their reason, in `watch` and in `show`.
#[tokio::test]
async fn watch_and_show_give_the_reasons_of_failures() {
    let app = TestApp::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    app.trust_release_key().await;
    // The server trusts the other key too; the devices trust only the release key.
    let other = fleet_protocol::PublicKey::from_verifying_key(fleet_tests::other_key().verifying_key()).to_pem();
    app.client.add_key("other", &other).await.unwrap();
    let bytes = vec![5u8; 4096];
    let mut m = manifest_for(ArtifactKind::Firmware, "gateway-os", "2.0.0", &bytes);
    m.hardware = vec![fleet_protocol::HardwareModel::parse("sim").unwrap()];
    let fw = app.upload(ArtifactKind::Firmware, &sign(&m, &[&fleet_tests::other_key()]), bytes).await.unwrap();
    let sim = fleet_tests::simulator::Simulator::start(fleet_tests::simulator::SimulatorSetup::new(
        env!("CARGO_BIN_EXE_fleet-agent-under-test"),
        2,
        app.client.base_url(),
        &app.mqtt_url,
        dir.path(),
    ))
    .await;

    let args = ["rollouts", "create", "--firmware", &fw.id, "--hardware", "sim", "--max-failure-ratio", "1", "--watch"];
    let out = tokio::time::timeout(Duration::from_secs(60), command(&app, dir.path(), &args).output())
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("completed: rejected 2 (untrusted_key)"), "{stdout}");
    let id = stdout.lines().next().unwrap().trim_start_matches("created rollout ").to_owned();
    let shown = ok(&app, dir.path(), &["rollouts", "show", &id]).await;
    assert!(shown.contains("rejected 2 (untrusted_key)"), "{shown}");
    sim.stop().await;
}
