//! Trust documents on the server (CONTRACT §11): `POST /trust` checks TUF's rule (409
//! `trust_version`, 422 `signature_invalid` and `trust_expired`, 400 `bad_manifest`),
//! `GET /trust[/{version}]` serves operators and devices, and with the real agent and
//! fleetctl: the announcement reaches devices through the server's broker (the embedded
//! one, or Mosquitto with its ACL file), devices report their version and
//! `?trust_behind=true` lists those below the latest.

use std::path::Path;
use std::time::Duration;

use fleet_cli::ClientError;
use fleet_cli::client::DeviceQuery;
use fleet_protocol::sign::{SigningKey, signing_key_to_pem};
use fleet_protocol::{DeviceId, Envelope, ErrorCode};
use fleet_tests::agent::{AgentProcess, AgentSetup};
use fleet_tests::trust::{document, key, keyid, public, signed, write};
use fleet_tests::{ADMIN_TOKEN, TestApp, release_key, samples_dir};

const AGENT: &str = env!("CARGO_BIN_EXE_fleet-agent-under-test");
const FLEETCTL: &str = env!("CARGO_BIN_EXE_fleetctl-under-test");

fn code(result: Result<Envelope, ClientError>) -> ErrorCode {
    match result {
        Err(ClientError::Problem(p)) => p.code,
        other => panic!("expected a problem, got {other:?}"),
    }
}

#[tokio::test]
async fn posting_trust_documents_follows_tufs_rule() {
    let app = TestApp::spawn().await;
    let c = &app.client;
    let (r1, r2, r3) = (key(131), key(132), key(133));
    let release = release_key();
    assert_eq!(code(c.get_trust(None).await), ErrorCode::NotFound);

    // The first document is checked against its own root.
    let v1 = document(1, &[&r1, &r2], 2, &[&release]);
    assert_eq!(code(c.push_trust(&signed(&v1, &[&r1])).await), ErrorCode::SignatureInvalid);
    let mut expired = v1.clone();
    expired.expires_at = time::OffsetDateTime::now_utc() - time::Duration::minutes(1);
    assert_eq!(code(c.push_trust(&signed(&expired, &[&r1, &r2])).await), ErrorCode::TrustExpired);
    let mut malformed = v1.clone();
    malformed.roles.firmware.keyids.push(keyid(&r3));
    assert_eq!(code(c.push_trust(&signed(&malformed, &[&r1, &r2])).await), ErrorCode::BadManifest);
    let v1 = signed(&v1, &[&r1, &r2]);
    assert_eq!(c.push_trust(&v1).await.unwrap(), v1);
    assert_eq!(c.get_trust(None).await.unwrap(), v1);

    // Then only version 2, signed by the root of 1 and its own.
    assert_eq!(code(c.push_trust(&v1).await), ErrorCode::TrustVersion, "a replay");
    let v3 = document(3, &[&r1, &r2], 2, &[&release]);
    assert_eq!(code(c.push_trust(&signed(&v3, &[&r1, &r2])).await), ErrorCode::TrustVersion);
    let v2 = document(2, &[&r2, &r3], 2, &[&release]);
    assert_eq!(code(c.push_trust(&signed(&v2, &[&r1, &r2])).await), ErrorCode::SignatureInvalid, "new root missing");
    assert_eq!(code(c.push_trust(&signed(&v2, &[&r2, &r3])).await), ErrorCode::SignatureInvalid, "old root short");
    let mut late = v2.clone();
    late.expires_at = time::OffsetDateTime::now_utc() - time::Duration::minutes(1);
    assert_eq!(code(c.push_trust(&signed(&late, &[&r1, &r2, &r3])).await), ErrorCode::TrustExpired);
    let v2 = signed(&v2, &[&r1, &r2, &r3]);
    c.push_trust(&v2).await.unwrap();

    assert_eq!(c.get_trust(Some(1)).await.unwrap(), v1);
    assert_eq!(c.get_trust(None).await.unwrap(), v2);
    assert_eq!(code(c.get_trust(Some(7)).await), ErrorCode::NotFound);
    // Devices read them with their own token, and may not write.
    let token = c.add_device("dev-reader", "rpi4", &Default::default()).await.unwrap().token;
    let device = c.with_token(token);
    assert_eq!(device.get_trust(Some(2)).await.unwrap(), v2);
    assert_eq!(code(device.push_trust(&v2).await), ErrorCode::Forbidden);
}

fn write_key(dir: &Path, name: &str, key: &SigningKey) -> (String, String) {
    std::fs::create_dir_all(dir).unwrap();
    let private = dir.join(format!("{name}.key"));
    let public_file = dir.join(format!("{name}.pub"));
    std::fs::write(&private, signing_key_to_pem(key)).unwrap();
    std::fs::write(&public_file, public(key).to_pem()).unwrap();
    (private.to_str().unwrap().to_owned(), public_file.to_str().unwrap().to_owned())
}

async fn fleetctl(app: &TestApp, args: &[&str]) -> String {
    let out = tokio::process::Command::new(FLEETCTL)
        .args(args)
        .env("FLEET_URL", app.client.base_url())
        .env("FLEET_TOKEN", ADMIN_TOKEN)
        .output()
        .await
        .unwrap();
    assert!(out.status.success(), "fleetctl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

async fn wait_trust_version(app: &TestApp, id: &str, version: u64, agent: &AgentProcess) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let device = app.client.get_device(id).await.unwrap();
        if device.trust_version == Some(version) {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "{id} at {:?}:\n{}", device.trust_version, agent.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn behind(app: &TestApp) -> Vec<String> {
    let q = DeviceQuery { trust_behind: true, ..Default::default() };
    app.client.list_devices(&q).await.unwrap().items.into_iter().map(|d| d.id).collect()
}

#[tokio::test]
async fn revoking_a_release_key_reaches_the_agent_through_fleetctl_and_the_announcement() {
    let app = TestApp::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    let (root, next) = (key(141), key(142));
    let (root_key, root_pub) = write_key(&keys, "root", &root);
    let (_, next_pub) = write_key(&keys, "release-2", &next);
    let release_pub = samples_dir().join("test-only-release.pub");
    app.trust_release_key().await;
    assert!(behind(&app).await.is_empty(), "no trust document: nobody is behind");

    // Version 1 with fleetctl: init, sign, push; the device is shipped with it.
    let file = dir.path().join("trust.json");
    let file_arg = file.to_str().unwrap();
    let release_arg = release_pub.to_str().unwrap();
    fleetctl(&app, &["trust", "init", "--root", &root_pub, "--firmware", release_arg, "--out", file_arg]).await;
    fleetctl(&app, &["trust", "sign", file_arg, "--key", &root_key]).await;
    fleetctl(&app, &["trust", "push", file_arg]).await;
    let pinned = std::fs::read(&file).unwrap();

    let token = app.client.add_device("dev-trust", "rpi4", &Default::default()).await.unwrap().token;
    app.client.add_device("dev-never", "rpi4", &Default::default()).await.unwrap();
    let root_file = write(dir.path(), "pinned.json", &Envelope::from_json(&pinned).unwrap());
    let setup = AgentSetup {
        id: DeviceId::parse("dev-trust").unwrap(),
        token,
        hardware: "rpi4".into(),
        server: app.client.base_url().to_owned(),
        mqtt_url: app.mqtt_url.clone(),
        trust: release_pub.clone(),
        state_dir: dir.path().join("dev-trust"),
        extra: vec!["--trust-root".into(), root_file.to_str().unwrap().into()],
        env: vec![],
    };
    let agent = AgentProcess::spawn(AGENT, &setup);
    wait_trust_version(&app, "dev-trust", 1, &agent).await;
    assert_eq!(behind(&app).await, ["dev-never"]);

    // Version 2 adds the next release key, version 3 drops the revoked one.
    fleetctl(&app, &["trust", "add-key", "--role", "firmware,config", &next_pub, "--out", file_arg]).await;
    fleetctl(&app, &["trust", "sign", file_arg, "--key", &root_key]).await;
    fleetctl(&app, &["trust", "push", file_arg]).await;
    wait_trust_version(&app, "dev-trust", 2, &agent).await;
    let revoked = public(&release_key()).keyid().as_hex();
    let said = fleetctl(&app, &["keys", "revoke", &revoked]).await;
    assert!(said.contains(&format!("fleetctl trust revoke-key {revoked}")), "{said}");
    fleetctl(&app, &["trust", "revoke-key", &revoked, "--out", file_arg]).await;
    fleetctl(&app, &["trust", "sign", file_arg, "--key", &root_key]).await;
    fleetctl(&app, &["trust", "push", file_arg]).await;
    wait_trust_version(&app, "dev-trust", 3, &agent).await;
    assert_eq!(behind(&app).await, ["dev-never"]);

    let shown: serde_json::Value =
        serde_json::from_str(&fleetctl(&app, &["trust", "show", "-o", "json"]).await).unwrap();
    assert_eq!(shown["document"]["version"], 3);
    assert_eq!(shown["document"]["roles"]["firmware"]["keyids"], serde_json::json!([keyid(&next).as_hex()]));
}
