//! Blob garbage collection, and an online backup restored into a new server (SQLite, and
//! PostgreSQL where CI provides it), following docs/operations.md.

use std::path::Path;
use std::process::Command;

use fleet_cli::client::TokenScope;
use fleet_protocol::{ArtifactKind, HardwareModel, Sha256Digest};
use fleet_tests::{TestApp, manifest_for, release_key, sign};

const SERVER: &str = env!("CARGO_BIN_EXE_fleet-server-under-test");

async fn firmware(app: &TestApp, version: &str) -> (String, Vec<u8>) {
    let bytes: Vec<u8> = format!("firmware {version} ").repeat(5000).into_bytes();
    let mut m = manifest_for(ArtifactKind::Firmware, "gateway-os", version, &bytes);
    m.hardware = vec![HardwareModel::parse("sim").unwrap()];
    let fw = app.upload(ArtifactKind::Firmware, &sign(&m, &[&release_key()]), bytes.clone()).await.unwrap();
    (fw.id, bytes)
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), dest).unwrap();
        }
    }
}

fn backup(args: &[&str], to: &Path) {
    let out = Command::new(SERVER).args(args).args(["backup", "--to", to.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success(), "backup: {}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).contains("backup complete"));
}

/// What a restored server must still hold.
async fn same_fleet(restored: &TestApp, fw: &str, bytes: &[u8]) {
    let artifact = restored.client.get_artifact(ArtifactKind::Firmware, fw).await.unwrap();
    assert_eq!(artifact.sha256, Sha256Digest::of(bytes).to_hex());
    let blob = restored.client.request(reqwest::Method::GET, &format!("/firmware/{fw}/blob")).send().await.unwrap();
    assert_eq!(Sha256Digest::of(&blob.bytes().await.unwrap()), Sha256Digest::of(bytes), "the blob came back");
    assert!(restored.client.get_device("dev-1").await.is_ok());
    let tokens = restored.client.list_operator_tokens(None).await.unwrap().items;
    assert!(tokens.iter().any(|t| t.name == "viewer"));
    let audit = restored.client.audit(Some(100), None).await.unwrap().items;
    assert!(audit.iter().any(|e| e.action == "artifact.uploaded" && e.target == fw));
}

async fn populate(app: &TestApp) -> (String, Vec<u8>) {
    app.trust_release_key().await;
    let fw = firmware(app, "1.0.0").await;
    app.client.add_device("dev-1", "sim", &Default::default()).await.unwrap();
    app.client.create_operator_token("viewer", TokenScope::ReadOnly).await.unwrap();
    fw
}

#[tokio::test]
async fn an_online_sqlite_backup_restores_into_a_new_server() {
    let app = TestApp::spawn_with(|s| s.database_url = None).await;
    let (fw, bytes) = populate(&app).await;
    let dir = tempfile::tempdir().unwrap();
    let to = dir.path().join("backup");
    // While the server runs.
    backup(&["--data-dir", app.data_dir.to_str().unwrap()], &to);
    assert!(to.join("fleet.db").exists());

    // Restore as docs/operations.md says: the database file and the blobs into a new data dir.
    let restored_dir = dir.path().join("restored");
    std::fs::create_dir_all(&restored_dir).unwrap();
    std::fs::copy(to.join("fleet.db"), restored_dir.join("fleet.db")).unwrap();
    copy_tree(&to.join("blobs"), &restored_dir.join("blobs"));
    let restored = TestApp::spawn_in(&restored_dir, |s| s.database_url = None).await;
    same_fleet(&restored, &fw, &bytes).await;
}

#[tokio::test]
#[ignore = "needs PostgreSQL at FLEET_TEST_DATABASE_URL and pg_dump (CI provides both)"]
async fn a_postgres_backup_restores_into_a_new_server() {
    let source = fleet_tests::fresh_postgres().await;
    let app = TestApp::spawn_with(|s| s.database_url = Some(source.clone())).await;
    let (fw, bytes) = populate(&app).await;
    let dir = tempfile::tempdir().unwrap();
    let to = dir.path().join("backup");
    let data = app.data_dir.to_str().unwrap();
    backup(&["--data-dir", data, "--database-url", &source], &to);

    let target = fleet_tests::fresh_postgres().await;
    let out = Command::new("pg_restore")
        .args(["--no-owner", "--dbname", &target])
        .arg(to.join("fleet.pgdump"))
        .output()
        .unwrap();
    assert!(out.status.success(), "pg_restore: {}", String::from_utf8_lossy(&out.stderr));
    let restored_dir = dir.path().join("restored");
    copy_tree(&to.join("blobs"), &restored_dir.join("blobs"));
    let restored = TestApp::spawn_in(&restored_dir, |s| s.database_url = Some(target.clone())).await;
    same_fleet(&restored, &fw, &bytes).await;
}

#[tokio::test]
async fn garbage_collection_removes_only_unreferenced_blobs() {
    let app = TestApp::spawn().await;
    app.trust_release_key().await;
    let (fw, bytes) = firmware(&app, "1.0.0").await;
    // A blob nothing refers to (as a crash between deleting an artifact and its blob leaves).
    let orphan = b"left behind".to_vec();
    let digest = Sha256Digest::of(&orphan).to_hex();
    let orphan_path = app.data_dir.join("blobs/sha256").join(&digest[..2]).join(&digest);
    std::fs::create_dir_all(orphan_path.parent().unwrap()).unwrap();
    std::fs::write(&orphan_path, &orphan).unwrap();
    let dir = app.stop().await.unwrap();

    // The pass runs at start.
    let app = TestApp::spawn_in(dir.path(), |_| {}).await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while orphan_path.exists() {
        assert!(tokio::time::Instant::now() < deadline, "the orphan stays");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let blob = app.client.request(reqwest::Method::GET, &format!("/firmware/{fw}/blob")).send().await.unwrap();
    assert_eq!(blob.bytes().await.unwrap().to_vec(), bytes, "the referenced blob stays");
    let _keep = dir;
}
