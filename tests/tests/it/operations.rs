//! Operations: named operator tokens with scopes, and the audit trail.

use std::collections::BTreeSet;

use fleet_cli::ApiClient;
use fleet_cli::client::TokenScope;
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
    let rollout = app.client.create_rollout(&json!({"firmware": fw, "target": {"devices": ["dev-1"]}}), false).await;
    let rollout = rollout.unwrap()["id"].as_str().unwrap().to_owned();
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
        "/broker/mosquitto/passwords".into(),
        "/broker/mosquitto/acl".into(),
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
    assert_eq!(app.client.get_rollout(&rollout).await.unwrap()["state"], "running");
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
    let rollout = ops.create_rollout(&json!({"firmware": fw, "target": {"devices": ["dev-1"]}}), false).await;
    let rollout = rollout.unwrap()["id"].as_str().unwrap().to_owned();
    for action in ["pause", "resume", "cancel"] {
        ops.control_rollout(&rollout, action).await.unwrap();
    }
    ops.delete_device("dev-1").await.unwrap();
    // The rollout's history keeps its firmware: 409, and no audit entry for a refusal.
    let kept = ops.delete_artifact(ArtifactKind::Firmware, &fw).await.unwrap_err();
    assert_eq!(kept.problem().map(|p| p.code), Some(ErrorCode::InUse), "{kept}");
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
    assert_eq!(actions.len(), 13);
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
