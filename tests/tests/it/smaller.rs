//! The smaller defences (docs/security.md): the admin token never on the command line and
//! as strong as a generated one.

use fleet_server::app::StartupError;
use fleet_server::entry::RunError;
use fleet_server::settings::Secret;
use fleet_server::{Application, Settings};
use fleet_tests::{ADMIN_TOKEN, TestApp};

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
