//! Operations: named operator tokens with scopes, and the audit trail.

use std::collections::BTreeSet;

use fleet_cli::ApiClient;
use fleet_cli::client::TokenScope;
use fleet_protocol::paths::RolloutAction;
use fleet_protocol::{ArtifactKind, ErrorCode, HardwareModel};
use fleet_tests::{TestApp, manifest_for, release_key, sample, sign};
use reqwest::Method;
use serde_json::json;

/// Uploads a small firmware signed by the release key; returns its id.
async fn firmware(client: &ApiClient, version: &str) -> String {
    let bytes = format!("firmware {version}").into_bytes();
    let mut m = manifest_for(ArtifactKind::Firmware, "gateway-os", version, &bytes);
    m.hardware = vec![HardwareModel::parse("sim").unwrap()];
    let envelope = serde_json::to_vec(&sign(&m, &[&release_key()])).unwrap();
    let len = bytes.len() as u64;
    client.upload(ArtifactKind::Firmware, envelope, bytes.into(), len).await.unwrap().id
}

#[tokio::test]
async fn a_read_only_token_reads_everything_and_changes_nothing() {
    let app = TestApp::spawn().await;
    app.trust_release_key().await;
    let fw = firmware(&app.client, "1.0.0").await;
    app.client.add_device("dev-1", "sim", &Default::default()).await.unwrap();
    let rollout = app.client.create_rollout(&json!({"firmware": fw, "target": {"devices": ["dev-1"]}})).await;
    let rollout = rollout.unwrap().id;
    let keyid = app.client.list_keys(None).await.unwrap().items[0].keyid.clone();
    let viewer = app.client.create_operator_token("viewer", TokenScope::ReadOnly).await.unwrap();
    assert_eq!(viewer.info.scope, TokenScope::ReadOnly);
    let viewer = app.client.with_token(viewer.token);

    for path in [
        "/keys".to_owned(),
        format!("/keys/{keyid}"),
        "/firmware".into(),
        format!("/firmware/{fw}"),
        format!("/firmware/{fw}/blob"),
        "/configs".into(),
        "/devices".into(),
        "/devices/dev-1".into(),
        "/devices/dev-1/command".into(),
        "/rollouts".into(),
        format!("/rollouts/{rollout}"),
        format!("/rollouts/{rollout}/devices"),
        format!("/rollouts/{rollout}/events"),
        "/tokens".into(),
        "/audit".into(),
    ] {
        let r = viewer.request(Method::GET, &path).send().await.unwrap();
        assert!(r.status().is_success(), "GET {path}: {}", r.status());
    }

    let writes: Vec<(Method, String)> = vec![
        (Method::POST, "/keys".into()),
        (Method::DELETE, format!("/keys/{keyid}")),
        (Method::POST, "/firmware".into()),
        (Method::DELETE, format!("/firmware/{fw}")),
        (Method::POST, "/configs".into()),
        (Method::POST, "/devices".into()),
        (Method::DELETE, "/devices/dev-1".into()),
        (Method::POST, "/devices/dev-1/token".into()),
        (Method::POST, "/rollouts".into()),
        (Method::POST, "/rollouts?dry_run=true".into()),
        (Method::POST, format!("/rollouts/{rollout}/pause")),
        (Method::POST, format!("/rollouts/{rollout}/cancel")),
        (Method::POST, "/tokens".into()),
        (Method::DELETE, "/tokens/viewer".into()),
        // The broker's secrets are the admin's too (docs/security.md).
        (Method::GET, "/broker/mosquitto/passwords".into()),
        (Method::GET, "/broker/mosquitto/acl".into()),
    ];
    for (method, path) in writes {
        let r = viewer.request(method.clone(), &path).json(&json!({})).send().await.unwrap();
        assert_eq!(r.status(), 403, "{method} {path}");
        let problem: serde_json::Value = r.json().await.unwrap();
        assert_eq!(problem["code"], ErrorCode::Forbidden.as_str(), "{method} {path}: {problem}");
    }
    // Nothing changed.
    assert_eq!(app.client.list_keys(None).await.unwrap().items[0].revoked_at, None);
    assert!(app.client.get_device("dev-1").await.is_ok());
    assert_eq!(app.client.get_rollout(&rollout).await.unwrap().state, "running");
    let audit = app.client.audit(Some(500), None).await.unwrap().items;
    assert!(audit.iter().all(|e| e.actor != "viewer"), "{audit:?}");
}

#[tokio::test]
async fn every_operator_action_is_in_the_audit_trail_with_its_actor() {
    let app = TestApp::spawn().await;
    let ops = app.client.create_operator_token("ops", TokenScope::Admin).await.unwrap();
    let ops = app.client.with_token(ops.token);
    let pem = String::from_utf8(sample("test-only-release.pub")).unwrap();
    let key = ops.add_key("release", &pem).await.unwrap();
    let fw = firmware(&ops, "1.0.0").await;
    ops.add_device("dev-1", "sim", &Default::default()).await.unwrap();
    ops.rotate_token("dev-1").await.unwrap();
    let rollout = ops.create_rollout(&json!({"firmware": fw, "target": {"devices": ["dev-1"]}})).await;
    let rollout = rollout.unwrap().id;
    for action in [RolloutAction::Pause, RolloutAction::Resume, RolloutAction::Cancel] {
        ops.control_rollout(&rollout, action).await.unwrap();
    }
    ops.delete_device("dev-1").await.unwrap();
    // A refusal is not audited: a cancelled rollout cannot be resumed.
    let refused = ops.control_rollout(&rollout, RolloutAction::Resume).await.unwrap_err();
    assert_eq!(refused.problem().map(|p| p.code), Some(ErrorCode::InvalidState), "{refused}");
    ops.delete_rollout(&rollout).await.unwrap();
    ops.delete_artifact(ArtifactKind::Firmware, &fw).await.unwrap();
    let spare = firmware(&ops, "1.0.1").await;
    ops.delete_artifact(ArtifactKind::Firmware, &spare).await.unwrap();
    ops.revoke_key(&key.keyid).await.unwrap();
    app.client.create_operator_token("temp", TokenScope::ReadOnly).await.unwrap();
    ops.revoke_operator_token("temp").await.unwrap();

    // Read back in small pages: newest first, every action once, with who and what.
    let mut entries = vec![];
    let mut cursor: Option<String> = None;
    loop {
        let page = app.client.audit(Some(3), cursor.as_deref()).await.unwrap();
        entries.extend(page.items);
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    let ids: Vec<i64> = entries.iter().map(|e| e.id.parse().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");
    let seen: Vec<(String, String, String)> =
        entries.iter().rev().map(|e| (e.actor.clone(), e.action.clone(), e.target.clone())).collect();
    let expected: Vec<(&str, &str, &str)> = vec![
        ("admin", "token.created", "ops"),
        ("ops", "key.added", &key.keyid),
        ("ops", "artifact.uploaded", &fw),
        ("ops", "device.registered", "dev-1"),
        ("ops", "device.token_rotated", "dev-1"),
        ("ops", "rollout.created", &rollout),
        ("ops", "rollout.paused", &rollout),
        ("ops", "rollout.resumed", &rollout),
        ("ops", "rollout.cancelled", &rollout),
        ("ops", "device.removed", "dev-1"),
        ("ops", "rollout.deleted", &rollout),
        ("ops", "artifact.deleted", &fw),
        ("ops", "artifact.uploaded", &spare),
        ("ops", "artifact.deleted", &spare),
        ("ops", "key.revoked", &key.keyid),
        ("admin", "token.created", "temp"),
        ("ops", "token.revoked", "temp"),
    ];
    let expected: Vec<(String, String, String)> =
        expected.into_iter().map(|(a, b, c)| (a.to_owned(), b.to_owned(), c.to_owned())).collect();
    assert_eq!(seen, expected);
    let uploaded = entries.iter().rev().find(|e| e.action == "artifact.uploaded").unwrap();
    assert_eq!(uploaded.details["version"], "1.0.0");
    assert_eq!(uploaded.details["name"], "gateway-os");
    assert!(entries.iter().all(|e| !e.at.is_empty()));
    let actions: BTreeSet<&str> = entries.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions.len(), 14);
    // Secrets never enter the trail.
    let text = serde_json::to_string(&entries).unwrap();
    assert!(!text.contains("fleet_op_") && !text.contains("fleet_dev_"), "{text}");
}

#[tokio::test]
async fn tokens_are_named_scoped_and_revocable() {
    let app = TestApp::spawn().await;
    let made = app.client.create_operator_token("ci", TokenScope::Admin).await.unwrap();
    assert!(made.token.starts_with("fleet_op_"));
    let ci = app.client.with_token(made.token.clone());
    assert!(ci.add_device("dev-1", "sim", &Default::default()).await.is_ok(), "an admin-scoped token writes");
    let dup = app.client.create_operator_token("ci", TokenScope::ReadOnly).await.unwrap_err();
    assert_eq!(dup.problem().map(|p| p.code), Some(ErrorCode::AlreadyExists));
    let bad = app.client.create_operator_token("no spaces", TokenScope::ReadOnly).await.unwrap_err();
    assert_eq!(bad.problem().map(|p| p.code), Some(ErrorCode::BadRequest));
    let names: Vec<String> =
        app.client.list_operator_tokens(None).await.unwrap().items.into_iter().map(|t| t.name).collect();
    assert_eq!(names, ["admin", "ci"]);
    let listed = serde_json::to_string(&app.client.list_operator_tokens(None).await.unwrap()).unwrap();
    assert!(!listed.contains(&made.token), "secrets are shown once");

    app.client.revoke_operator_token("ci").await.unwrap();
    let gone = ci.list_keys(None).await.unwrap_err();
    assert_eq!(gone.problem().map(|p| p.code), Some(ErrorCode::Unauthorized), "revoked at once");
    let admin = app.client.revoke_operator_token("admin").await.unwrap_err();
    assert_eq!(admin.problem().map(|p| p.code), Some(ErrorCode::InvalidState));
    // A device token is no operator token.
    let dev = app.client.add_device("dev-2", "sim", &Default::default()).await.unwrap().token;
    let r = app.client.with_token(dev).list_operator_tokens(None).await.unwrap_err();
    assert_eq!(r.problem().map(|p| p.code), Some(ErrorCode::Forbidden));
}

/// The value of one sample (`name{labels} value`) in a metrics text, 0 when absent.
fn sample_value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

#[tokio::test]
async fn metrics_change_as_a_rollout_runs() {
    use fleet_tests::simulator::{Simulator, SimulatorSetup};
    let app = TestApp::spawn().await;
    app.trust_release_key().await;
    let viewer = app.client.create_operator_token("prometheus", TokenScope::ReadOnly).await.unwrap();
    // /metrics lives beside /api/v1, not under it.
    let url = format!("{}/metrics", app.client.base_url());
    let scrape = || {
        let request = reqwest::Client::new().get(&url).bearer_auth(&viewer.token);
        async move {
            let r = request.send().await.unwrap();
            assert_eq!(r.status(), 200);
            r.text().await.unwrap()
        }
    };
    let before = scrape().await;
    assert_eq!(sample_value(&before, "fleet_commands_dispatched_total"), 0.0, "{before}");
    assert_eq!(sample_value(&before, "fleet_devices"), 0.0);
    assert_eq!(sample_value(&before, "fleet_mqtt_connected"), 1.0, "{before}");

    let fw = firmware(&app.client, "1.0.0").await;
    let dir = tempfile::tempdir().unwrap();
    let sim = Simulator::start(SimulatorSetup {
        prefix: "m-",
        ..SimulatorSetup::new(
            env!("CARGO_BIN_EXE_fleet-agent-under-test"),
            5,
            app.client.base_url(),
            &app.mqtt_url,
            dir.path(),
        )
    })
    .await;
    let id = app.client.create_rollout(&json!({"firmware": fw, "target": {"hardware": "sim"}})).await;
    let id = id.unwrap().id;
    let during = scrape().await;
    assert_eq!(sample_value(&during, "fleet_rollouts{state=\"running\"}"), 1.0, "{during}");
    fleet_tests::wait_rollout(&app.client, &id, std::time::Duration::from_secs(60), |v| v["state"] == "completed")
        .await;
    let after = scrape().await;
    sim.stop().await;

    assert_eq!(sample_value(&after, "fleet_commands_dispatched_total"), 5.0, "{after}");
    assert!(sample_value(&after, "fleet_commands_published_total") >= 5.0);
    assert!(sample_value(&after, "fleet_reports_applied_total") >= 5.0 * 4.0, "every step of every device");
    assert_eq!(sample_value(&after, "fleet_rollouts{state=\"completed\"}"), 1.0);
    assert_eq!(sample_value(&after, "fleet_rollouts{state=\"running\"}"), 0.0, "stale states cleared");
    assert_eq!(sample_value(&after, "fleet_devices"), 5.0);
    assert_eq!(sample_value(&after, "fleet_devices_online"), 5.0);
    let size = "firmware 1.0.0".len() as f64;
    assert_eq!(sample_value(&after, "fleet_upload_bytes_total"), size);
    assert!(sample_value(&after, "fleet_download_bytes_total") >= 5.0 * size);
    assert!(
        sample_value(&after, "fleet_ingest_lag_seconds_count")
            > sample_value(&before, "fleet_ingest_lag_seconds_count")
    );
    let route =
        "fleet_http_request_duration_seconds_count{method=\"GET\",route=\"/api/v1/rollouts/{id}\",status=\"200\"}";
    assert!(sample_value(&after, route) >= 1.0, "{after}");
    assert!(!after.contains(&id), "routes are patterns, not paths");

    let anonymous = reqwest::Client::new().get(app.client.base_url().to_owned() + "/metrics").send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
}

#[tokio::test]
async fn readyz_checks_the_database_and_the_broker() {
    let app = TestApp::spawn().await;
    let ready = reqwest::get(app.client.base_url().to_owned() + "/readyz").await.unwrap();
    assert_eq!(ready.status(), 200);
    let body: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(body["checks"], json!({"database": "ok", "broker": "ok"}));

    // A broker that does not answer: alive, but not ready.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let lonely = TestApp::spawn_with(|s| s.mqtt_url = Some(format!("mqtt://127.0.0.1:{port}"))).await;
    let live = reqwest::get(lonely.client.base_url().to_owned() + "/healthz").await.unwrap();
    assert_eq!(live.status(), 200);
    let not_ready = reqwest::get(lonely.client.base_url().to_owned() + "/readyz").await.unwrap();
    assert_eq!(not_ready.status(), 503);
    let body: serde_json::Value = not_ready.json().await.unwrap();
    assert_eq!(body["checks"]["broker"], "not connected", "{body}");
    assert_eq!(body["checks"]["database"], "ok");
}

#[tokio::test]
async fn json_logs_carry_request_ids_and_never_secrets() {
    use std::io::{BufRead as _, BufReader};
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_fleet-server-under-test"))
        .args(["--listen", "127.0.0.1:0", "--embedded-broker", "127.0.0.1:0", "--log-format", "json"])
        .args(["--log", "debug", "--data-dir", dir.path().to_str().unwrap()])
        .env("FLEET_ADMIN_TOKEN", fleet_tests::ADMIN_TOKEN)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // Read on a thread of its own from the start: a server logging at debug level fills a
    // pipe nobody drains (its migrations alone log about 64 KiB) and then blocks.
    let stdout = BufReader::new(child.stdout.take().unwrap());
    let (tx, lines) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || stdout.lines().map_while(Result::ok).try_for_each(|l| tx.send(l)));
    let mut seen = vec![];
    let addr = loop {
        let line = lines.recv().expect("the server logs its address");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
        seen.push(line);
        if let Some(addr) = v["fields"]["local_addr"].as_str() {
            break addr.to_owned();
        }
    };
    let client = ApiClient::new(format!("http://{addr}"), fleet_tests::ADMIN_TOKEN);
    let device_token = client.add_device("dev-1", "sim", &Default::default()).await.unwrap().token;
    let r = client.request(Method::GET, "/devices/dev-1").header("x-request-id", "trace-me-42").send().await.unwrap();
    assert_eq!(r.headers()["x-request-id"], "trace-me-42", "the caller's id comes back");
    let r = client.request(Method::GET, "/devices").send().await.unwrap();
    let generated = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(!generated.is_empty());
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let _ = child.kill();
    let _ = child.wait();
    let _ = reader.join();
    seen.extend(lines.try_iter());

    let parsed: Vec<serde_json::Value> = seen.iter().map(|l| serde_json::from_str(l).unwrap()).collect();
    let with_id = |id: &str| parsed.iter().filter(|v| v["span"]["request_id"] == id).count();
    assert!(with_id("trace-me-42") >= 1, "{seen:#?}");
    assert!(with_id(&generated) >= 1, "{seen:#?}");
    let all = seen.join("\n");
    assert!(!all.contains(fleet_tests::ADMIN_TOKEN), "the admin token is never logged");
    assert!(!all.contains(&device_token), "device tokens are never logged");
}
