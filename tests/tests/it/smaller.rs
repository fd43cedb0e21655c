//! The smaller defences (docs/security.md): the admin token never on the command line and
//! as strong as a generated one; refusals of the routing and serving layers as problem+json;
//! the data directory's files owner-only.

use fleet_protocol::problem::PROBLEM_JSON;
use fleet_protocol::{ArtifactKind, ErrorCode, Problem};
use fleet_server::app::StartupError;
use fleet_server::entry::RunError;
use fleet_server::settings::Secret;
use fleet_server::{Application, Settings};
use fleet_tests::{ADMIN_TOKEN, TestApp, sample};

#[tokio::test]
async fn the_admin_token_flag_is_refused_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    let args = ["fleet-server", "--admin-token", ADMIN_TOKEN, "--listen", "127.0.0.1:0", "--embedded-broker"]
        .into_iter()
        .chain(["127.0.0.1:0", "--data-dir", dir.path().to_str().unwrap()])
        .map(String::from);
    let refused = fleet_server::main_with_args(args).await;
    assert!(matches!(refused, Err(RunError::AdminTokenOnCommandLine)), "{refused:?}");
    assert!(!dir.path().join("fleet.db").exists(), "refused before the database was opened");
}

#[tokio::test]
async fn a_weak_admin_token_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut settings = Settings::for_data_dir(dir.path());
    settings.log = "error".into();
    settings.admin_token = Some(Secret::new("any-sixteen-characters"));
    let refused = Application::build(settings).await;
    assert!(matches!(refused, Err(StartupError::AdminTokenWeak)), "{refused:?}");
}

#[tokio::test]
async fn the_admin_token_can_come_from_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("admin-token");
    std::fs::write(&file, format!("{ADMIN_TOKEN}\n")).unwrap();
    let app = TestApp::spawn_with(|s| {
        s.admin_token = None;
        s.admin_token_file = Some(file);
    })
    .await;
    app.client.list_keys(None).await.expect("the token from the file is the admin token");
}

/// Asserts a problem+json body with `code` and the status that goes with it.
async fn assert_problem(response: reqwest::Response, code: ErrorCode) {
    assert_eq!(response.status().as_u16(), code.status());
    let content_type = response.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(content_type.as_deref(), Some(PROBLEM_JSON));
    let problem: Problem = response.json().await.expect("a problem body");
    assert_eq!(problem.code, code);
}

#[tokio::test]
async fn routing_and_serving_refusals_are_problems() {
    let app = TestApp::spawn().await;
    let http = reqwest::Client::new();
    let base = app.client.base_url().to_owned();

    let wrong_method = http.put(format!("{base}/healthz")).send().await.unwrap();
    assert!(wrong_method.headers().contains_key("allow"), "Allow is kept");
    assert_problem(wrong_method, ErrorCode::MethodNotAllowed).await;

    let long = format!("{base}/healthz?{}", "a".repeat(10 * 1024));
    assert_problem(http.get(long).send().await.unwrap(), ErrorCode::UriTooLong).await;

    let mut big = http.get(format!("{base}/healthz"));
    for i in 0..5 {
        big = big.header(format!("x-filler-{i}"), "b".repeat(8 * 1024));
    }
    assert_problem(big.send().await.unwrap(), ErrorCode::HeadersTooLarge).await;

    app.trust_release_key().await;
    let envelope = fleet_protocol::Envelope::from_json(&sample("gateway-os-1.0.0.img.dsse.json")).unwrap();
    let bytes = sample("gateway-os-1.0.0.img");
    let artifact = app.upload(ArtifactKind::Firmware, &envelope, bytes.clone()).await.unwrap();
    let path = fleet_protocol::paths::artifact_blob(ArtifactKind::Firmware, &artifact.id);
    let range = format!("bytes={}-", bytes.len() + 10);
    let past_the_end = app.client.request(reqwest::Method::GET, &path).header("range", range).send().await.unwrap();
    assert!(past_the_end.headers().contains_key("content-range"), "Content-Range is kept");
    assert_problem(past_the_end, ErrorCode::RangeNotSatisfiable).await;
}

#[tokio::test]
async fn files_in_the_data_directory_are_owner_only() {
    use std::os::unix::fs::PermissionsExt as _;
    let app = TestApp::spawn().await;
    app.trust_release_key().await;
    let envelope = fleet_protocol::Envelope::from_json(&sample("gateway-os-1.0.0.img.dsse.json")).unwrap();
    let artifact = app.upload(ArtifactKind::Firmware, &envelope, sample("gateway-os-1.0.0.img")).await.unwrap();
    let blob = app.data_dir.join("blobs/sha256").join(&artifact.sha256[..2]).join(&artifact.sha256);
    // The SQLite files, unless the test runs on PostgreSQL.
    let sqlite = ["fleet.db", "fleet.db-wal", "fleet.db-shm"].map(|f| app.data_dir.join(f));
    assert!(sqlite[0].exists() || !sqlite[1].exists());
    for file in [blob].into_iter().chain(sqlite.into_iter().filter(|f| f.exists())) {
        let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", file.display());
    }
}
