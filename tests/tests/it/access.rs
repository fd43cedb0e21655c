//! What a token reaches (docs/security.md): broker secrets need an admin token, EMQX login
//! guesses are throttled, the synced password file has no server account unless asked, a
//! device downloads only the artifacts of commands it was sent, label filters and targets
//! are bounded, and an event stream ends when its token is revoked.

use std::path::Path;
use std::time::Duration;

use fleet_cli::ApiClient;
use fleet_cli::client::TokenScope;
use fleet_protocol::{ArtifactKind, ErrorCode, HardwareModel};
use fleet_tests::{ADMIN_TOKEN, TestApp, manifest_for, release_key, sign};
use reqwest::{Method, StatusCode};
use serde_json::json;

const SERVER_PASSWORD: &str = "server-secret-0123456789";

/// A server with its own account on an external broker (none has to answer), so the broker
/// routes have a superuser to protect.
async fn with_broker_account(dir: &Path) -> TestApp {
    let password = dir.join("server.password");
    std::fs::write(&password, format!("{SERVER_PASSWORD}\n")).unwrap();
    TestApp::spawn_with(|s| {
        s.mqtt_url = Some("mqtt://127.0.0.1:9".into());
        s.mqtt_username = Some("fleet-server".into());
        s.mqtt_password_file = Some(password);
    })
    .await
}

async fn problem(response: reqwest::Response) -> (StatusCode, Option<ErrorCode>) {
    let status = response.status();
    (status, response.json::<fleet_protocol::Problem>().await.ok().map(|p| p.code))
}

#[tokio::test]
async fn broker_routes_refuse_a_read_only_token() {
    let dir = tempfile::tempdir().unwrap();
    let app = with_broker_account(dir.path()).await;
    let viewer = app.client.create_operator_token("viewer", TokenScope::ReadOnly).await.unwrap();
    let viewer = app.client.with_token(viewer.token);
    let login = json!({"clientid": "x", "username": "fleet-server", "password": SERVER_PASSWORD});
    let topic = json!({"clientid": "x", "username": "x", "topic": "fleet/#", "action": "subscribe"});
    for (method, path, body) in [
        (Method::GET, "/broker/mosquitto/passwords", None),
        (Method::GET, "/broker/mosquitto/acl", None),
        (Method::POST, "/broker/emqx/authenticate", Some(&login)),
        (Method::POST, "/broker/emqx/authorize", Some(&topic)),
    ] {
        let mut request = viewer.request(method.clone(), path);
        if let Some(body) = body {
            request = request.json(body);
        }
        let got = problem(request.send().await.unwrap()).await;
        assert_eq!(got, (StatusCode::FORBIDDEN, Some(ErrorCode::Forbidden)), "{method} {path}");
    }
}

/// Guessing the server account's password through the EMQX hook: after a few failures every
/// attempt is 429, the right password too, while other usernames still log in.
#[tokio::test]
async fn emqx_login_guesses_are_throttled_per_username() {
    let dir = tempfile::tempdir().unwrap();
    let app = with_broker_account(dir.path()).await;
    let dev = app.client.add_device("dev-a", "sim", &Default::default()).await.unwrap().token;
    let authenticate = |user: &str, password: &str| {
        let body = json!({"clientid": user, "username": user, "password": password});
        app.client.request(Method::POST, "/broker/emqx/authenticate").json(&body).send()
    };
    let mut refused = 0;
    for guess in 0..20 {
        let response = authenticate("fleet-server", &format!("guess-{guess}")).await.unwrap();
        match response.status() {
            StatusCode::OK => assert_eq!(response.json::<serde_json::Value>().await.unwrap()["result"], "deny"),
            _ => {
                assert_eq!(problem(response).await, (StatusCode::TOO_MANY_REQUESTS, Some(ErrorCode::TooManyRequests)));
                refused += 1;
            }
        }
    }
    assert!(refused >= 10, "only {refused} of 20 guesses refused");
    let right = authenticate("fleet-server", SERVER_PASSWORD).await.unwrap();
    assert_eq!(right.status(), StatusCode::TOO_MANY_REQUESTS, "no oracle while throttled");
    let other = authenticate("dev-a", &dev).await.unwrap();
    assert_eq!(other.json::<serde_json::Value>().await.unwrap()["result"], "allow");
}

async fn fleetctl_sync(app: &TestApp, dir: &Path, extra: &[&str]) -> String {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_fleetctl-under-test"))
        .args(["broker", "sync", "--dir", dir.to_str().unwrap()])
        .args(extra)
        .env("FLEET_URL", app.client.base_url())
        .env("FLEET_TOKEN", ADMIN_TOKEN)
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::read_to_string(dir.join("passwords")).unwrap()
}

#[tokio::test]
async fn the_synced_password_file_has_no_server_account_unless_asked() {
    let dir = tempfile::tempdir().unwrap();
    let app = with_broker_account(dir.path()).await;
    app.client.add_device("dev-1", "sim", &Default::default()).await.unwrap();
    let broker_dir = dir.path().join("mosquitto");
    std::fs::create_dir(&broker_dir).unwrap();

    let passwords = fleetctl_sync(&app, &broker_dir, &[]).await;
    assert!(passwords.contains("\ndev-1:$7$"), "{passwords}");
    assert!(!passwords.contains("\nfleet-server:"), "{passwords}");
    let passwords = fleetctl_sync(&app, &broker_dir, &["--include-server-account"]).await;
    assert!(passwords.contains("\nfleet-server:$7$"), "{passwords}");
}

async fn upload(app: &TestApp, kind: ArtifactKind, name: &str, version: &str) -> String {
    let bytes = format!("{name} {version}").into_bytes();
    let mut m = manifest_for(kind, name, version, &bytes);
    m.hardware = vec![HardwareModel::parse("sim").unwrap()];
    app.upload(kind, &sign(&m, &[&release_key()]), bytes).await.unwrap().id
}

/// Polls until the device's command (sent by the engine) is there.
async fn wait_for_command(device: &ApiClient, id: &str) {
    for _ in 0..100 {
        let r = device.request(Method::GET, &format!("/devices/{id}/command")).send().await.unwrap();
        if r.status() == StatusCode::OK {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{id} was never sent its command");
}

#[tokio::test]
async fn a_device_downloads_only_artifacts_of_commands_it_was_sent() {
    let app = TestApp::spawn().await;
    app.trust_release_key().await;
    let sent = upload(&app, ArtifactKind::Firmware, "gateway-os", "1.0.0").await;
    let other = upload(&app, ArtifactKind::Firmware, "gateway-os", "2.0.0").await;
    let config = upload(&app, ArtifactKind::Config, "gw-config", "1.0.0").await;
    let token = app.client.add_device("dev-1", "sim", &Default::default()).await.unwrap().token;
    let device = app.client.with_token(token);
    // Before any command, not even the rollout's artifact.
    let early = device.blob(ArtifactKind::Firmware, &sent, None).await.unwrap_err();
    assert_eq!(early.problem().map(|p| p.code), Some(ErrorCode::Forbidden), "{early}");

    app.client.create_rollout(&json!({"firmware": sent, "target": {"devices": ["dev-1"]}})).await.unwrap();
    wait_for_command(&device, "dev-1").await;
    let own = device.blob(ArtifactKind::Firmware, &sent, None).await.unwrap();
    assert_eq!(own.bytes().await.unwrap().as_ref(), b"gateway-os 1.0.0");
    // The server remembers what it handed dev-1 at its confirm, for dev-1 alone.
    let bystander =
        app.client.with_token(app.client.add_device("dev-2", "sim", &Default::default()).await.unwrap().token);
    let refused = bystander.blob(ArtifactKind::Firmware, &sent, None).await.unwrap_err();
    assert_eq!(refused.problem().map(|p| p.code), Some(ErrorCode::Forbidden), "{refused}");
    for (kind, id) in [(ArtifactKind::Firmware, &other), (ArtifactKind::Config, &config), (ArtifactKind::Config, &sent)]
    {
        let refused = device.blob(kind, id, None).await.unwrap_err();
        assert_eq!(refused.problem().map(|p| p.code), Some(ErrorCode::Forbidden), "{kind} {id}: {refused}");
    }
    // Operators are unchanged.
    app.client.blob(ArtifactKind::Config, &config, None).await.unwrap();
}

/// Each label is one more condition in the database's query: past the registration's
/// limit, a filter or a rollout target is a precise 400, not a 500 from the database.
#[tokio::test]
async fn label_filters_and_targets_are_bounded() {
    let app = TestApp::spawn().await;
    app.trust_release_key().await;
    let fw = upload(&app, ArtifactKind::Firmware, "gateway-os", "1.0.0").await;
    let viewer = app.client.create_operator_token("viewer", TokenScope::ReadOnly).await.unwrap();
    let viewer = app.client.with_token(viewer.token);
    let filters = |n: usize| (0..n).map(|i| format!("label=k{i}=v")).collect::<Vec<_>>().join("&");

    let ok = viewer.request(Method::GET, &format!("/devices?{}", filters(32))).send().await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);
    for n in [33, 600] {
        let refused = viewer.request(Method::GET, &format!("/devices?{}", filters(n))).send().await.unwrap();
        assert_eq!(problem(refused).await, (StatusCode::BAD_REQUEST, Some(ErrorCode::BadRequest)), "{n} filters");
    }
    // 1,201 filters make a request target past 8 KiB: refused before it is parsed.
    let refused = viewer.request(Method::GET, &format!("/devices?{}", filters(1201))).send().await.unwrap();
    assert_eq!(problem(refused).await, (StatusCode::URI_TOO_LONG, Some(ErrorCode::UriTooLong)), "1201 filters");

    let labels: serde_json::Map<String, serde_json::Value> = (0..1200).map(|i| (format!("k{i}"), json!("v"))).collect();
    let body = json!({"firmware": fw, "target": {"hardware": "sim", "labels": labels}});
    let refused = app.client.request(Method::POST, "/rollouts?dry_run=true").json(&body).send().await.unwrap();
    let status = refused.status();
    let problem: fleet_protocol::Problem = refused.json().await.unwrap();
    assert_eq!((status, problem.code), (StatusCode::BAD_REQUEST, ErrorCode::BadRequest));
    assert!(problem.detail.contains("1200 labels"), "{}", problem.detail);
}

/// An event stream opened with a token ends within a few seconds of the token's revocation.
#[tokio::test]
async fn an_event_stream_ends_when_its_token_is_revoked() {
    let app = TestApp::spawn().await;
    app.trust_release_key().await;
    let fw = upload(&app, ArtifactKind::Firmware, "gateway-os", "1.0.0").await;
    app.client.add_device("dev-1", "sim", &Default::default()).await.unwrap();
    let rollout = app.client.create_rollout(&json!({"firmware": fw, "target": {"devices": ["dev-1"]}})).await;
    let rollout = rollout.unwrap().id;
    let viewer = app.client.create_operator_token("viewer", TokenScope::ReadOnly).await.unwrap();
    let stream = app.client.with_token(viewer.token).rollout_events(&rollout).await.unwrap();
    let mut events = fleet_cli::sse::SseReader::new(stream.bytes_stream());
    assert_eq!(events.next_event().await.unwrap().unwrap().event, "rollout");

    app.client.revoke_operator_token("viewer").await.unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(8), async {
        while events.next_event().await.ok().flatten().is_some() {}
    })
    .await;
    assert!(ended.is_ok(), "the stream still runs 8 s after its token was revoked");
}
