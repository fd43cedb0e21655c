use fleet_protocol::{ArtifactKind, Envelope};
use fleet_tests::{TestApp, sample};
use reqwest::{Method, StatusCode};

#[tokio::test]
async fn restart_on_the_same_data_dir_serves_everything() {
    let dir = tempfile::tempdir().unwrap();
    let app = TestApp::spawn_in(dir.path(), |_| {}).await;
    app.trust_release_key().await;
    let env = Envelope::from_json(&sample("gateway-os-1.0.0.img.dsse.json")).unwrap();
    let artifact = app.upload(ArtifactKind::Firmware, &env, sample("gateway-os-1.0.0.img")).await.unwrap();
    let token = app.client.add_device("dev-1", "rpi4", &Default::default()).await.unwrap().token;
    app.stop().await;

    let app = TestApp::spawn_in(dir.path(), |_| {}).await;
    assert_eq!(app.client.list_keys(None).await.unwrap().items.len(), 1);
    let again = app.client.get_artifact(ArtifactKind::Firmware, &artifact.id).await.unwrap();
    assert_eq!(again.sha256, artifact.sha256);
    let bytes = app.client.blob(ArtifactKind::Firmware, &artifact.id, None).await.unwrap().bytes().await.unwrap();
    assert_eq!(bytes, sample("gateway-os-1.0.0.img"));
    let device = app.client.with_token(&token);
    let resp = device.request(Method::GET, "/devices/dev-1/command").send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    // The device token is still known: refused (not unauthenticated) a blob it was never sent.
    let blob = device.request(Method::GET, &format!("/firmware/{}/blob", artifact.id)).send().await.unwrap();
    assert_eq!(blob.status(), StatusCode::FORBIDDEN);
    app.stop().await;
}

#[tokio::test]
async fn generated_admin_token_persists_and_a_taken_port_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = fleet_server::Settings::for_data_dir(dir.path());
    settings.log = "warn".into();
    let first = fleet_server::Application::build(settings.clone()).await.unwrap();
    let token_file = dir.path().join("admin.token");
    let token = std::fs::read_to_string(&token_file).unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    assert_eq!(std::fs::metadata(&token_file).unwrap().permissions().mode() & 0o777, 0o600);

    settings.listen = first.local_addr();
    let err = fleet_server::Application::build(settings.clone()).await.unwrap_err();
    assert!(err.to_string().contains("already in use"), "{err}");
    drop(first);

    settings.listen = "127.0.0.1:0".parse().unwrap();
    let second = build_once_unlocked(&settings).await;
    assert_eq!(std::fs::read_to_string(&token_file).unwrap(), token);

    // The embedded broker's port, when taken, fails start-up loudly too (a data directory of
    // its own: the second server's is locked).
    let other_dir = tempfile::tempdir().unwrap();
    let mut taken = settings.clone();
    taken.data_dir = other_dir.path().to_owned();
    taken.embedded_broker = second.broker_addr().unwrap();
    let err = fleet_server::Application::build(taken).await.unwrap_err();
    assert!(err.to_string().contains("embedded MQTT broker"), "{err}");

    settings.database_url = Some("mysql://localhost/test".into());
    let err = fleet_server::Application::build(settings).await.unwrap_err();
    assert!(err.to_string().contains("--database-url takes postgres://"), "{err}");
}

/// Builds a server on a data directory whose previous server was just dropped. The lock
/// frees when its file closes, but a child process another test of this binary forks at
/// that moment holds a copy of the descriptor until it execs (close-on-exec), so a refusal
/// is tried again for up to 2 s; any other error fails at once.
async fn build_once_unlocked(settings: &fleet_server::Settings) -> fleet_server::Application {
    for _ in 0..40 {
        match fleet_server::Application::build(settings.clone()).await {
            Err(fleet_server::StartupError::DataDirLocked { .. }) => {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            built => return built.unwrap(),
        }
    }
    panic!("the data directory is still locked 2 s after its server was dropped");
}

/// A second server on a data directory in use refuses to start, naming the directory and
/// the holder's pid; once the first has stopped, the directory is free again.
#[tokio::test]
async fn a_second_server_on_the_same_data_dir_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let first = TestApp::spawn_in(dir.path(), |_| {}).await;

    let mut settings = fleet_server::Settings::for_data_dir(dir.path());
    settings.admin_token = Some(fleet_server::settings::Secret::new(fleet_tests::ADMIN_TOKEN));
    settings.log = "error".into();
    let err = fleet_server::Application::build(settings.clone()).await.unwrap_err();
    assert!(matches!(&err, fleet_server::StartupError::DataDirLocked { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains(&dir.path().display().to_string()), "names the directory: {message}");
    assert!(message.contains(&format!("pid {}", std::process::id())), "names the holder: {message}");
    // The first server is untouched by the refusal.
    first.client.health().await.expect("the first server still serves");

    first.stop().await;
    let again = fleet_server::Application::build(settings).await.expect("free once the first has stopped");
    drop(again);
}
