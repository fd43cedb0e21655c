//! What a token reaches (docs/security.md): broker secrets need an admin token, EMQX login
//! guesses are throttled, and the synced password file has no server account unless asked.

use std::path::Path;

use fleet_cli::client::TokenScope;
use fleet_protocol::ErrorCode;
use fleet_tests::{ADMIN_TOKEN, TestApp};
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
