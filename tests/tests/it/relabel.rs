//! `PATCH /devices/{id}` and `fleetctl devices label`: a device's labels are replaced,
//! audited, checked like at registration, and the label filter then finds the device.

use std::collections::BTreeMap;

use crate::rollouts::fleetctl;
use fleet_cli::client::{DeviceQuery, TokenScope};
use fleet_protocol::ErrorCode;
use fleet_protocol::api::MAX_LABELS;
use fleet_tests::TestApp;
use reqwest::{Method, StatusCode};

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

async fn ids_with(app: &TestApp, key: &str, value: &str) -> Vec<String> {
    let q = DeviceQuery { labels: vec![(key.into(), value.into())], ..Default::default() };
    app.client.list_devices(&q).await.unwrap().items.into_iter().map(|d| d.id).collect()
}

async fn patch(app: &TestApp, id: &str, body: serde_json::Value) -> (StatusCode, serde_json::Value) {
    let resp = app.client.request(Method::PATCH, &format!("/devices/{id}")).json(&body).send().await.unwrap();
    (resp.status(), resp.json().await.unwrap())
}

#[tokio::test]
async fn relabelling_replaces_all_labels_and_is_audited() {
    let app = TestApp::spawn().await;
    app.client.add_device("gw-1", "rpi4", &labels(&[("site", "berlin"), ("ring", "canary")])).await.unwrap();
    app.client.add_device("gw-2", "rpi4", &labels(&[("site", "berlin")])).await.unwrap();

    let shown = app.client.set_device_labels("gw-1", &labels(&[("site", "paris"), ("tier", "gold")])).await.unwrap();
    assert_eq!(shown.labels, labels(&[("site", "paris"), ("tier", "gold")]), "ring=canary must be gone");
    assert_eq!(app.client.get_device("gw-1").await.unwrap().labels, shown.labels);
    assert_eq!(ids_with(&app, "site", "paris").await, ["gw-1"]);
    assert_eq!(ids_with(&app, "site", "berlin").await, ["gw-2"]);
    assert!(ids_with(&app, "ring", "canary").await.is_empty());
    // The other device keeps its labels.
    assert_eq!(app.client.get_device("gw-2").await.unwrap().labels, labels(&[("site", "berlin")]));

    let cleared = app.client.set_device_labels("gw-1", &BTreeMap::new()).await.unwrap();
    assert!(cleared.labels.is_empty());

    let audit = app.client.audit(Some(100), None).await.unwrap().items;
    let relabels: Vec<_> = audit.iter().filter(|e| e.action == "device.relabelled" && e.target == "gw-1").collect();
    assert_eq!(relabels.len(), 2, "{audit:?}");
}

#[tokio::test]
async fn bad_relabels_are_refused_and_change_nothing() {
    let app = TestApp::spawn().await;
    let before = labels(&[("site", "berlin")]);
    app.client.add_device("gw-1", "rpi4", &before).await.unwrap();

    let missing = app.client.set_device_labels("gw-404", &before).await.unwrap_err();
    assert_eq!(missing.problem().unwrap().code, ErrorCode::NotFound);

    let too_many: BTreeMap<String, String> = (0..=MAX_LABELS).map(|i| (format!("k{i}"), "v".to_owned())).collect();
    let exactly: BTreeMap<String, String> =
        too_many.iter().take(MAX_LABELS).map(|(k, v)| (k.clone(), v.clone())).collect();
    for (body, what) in [
        (serde_json::json!({"labels": {"bad key": "v"}}), "bad key"),
        (serde_json::json!({"labels": {"k": "line\nbreak"}}), "control character"),
        (serde_json::json!({"labels": {"k": "x".repeat(129)}}), "long value"),
        (serde_json::json!({"labels": too_many}), "33 labels"),
        (serde_json::json!({"labels": {"site": "paris"}, "hardware": "cm4"}), "unknown field"),
        (serde_json::json!({}), "no labels field"),
    ] {
        let (status, problem) = patch(&app, "gw-1", body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}");
        assert_eq!(problem["code"], "bad_request", "{what}: {problem}");
    }
    let (status, problem) = patch(&app, "a%2Fb", serde_json::json!({"labels": {}})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(problem["code"], "invalid_id");
    assert_eq!(app.client.get_device("gw-1").await.unwrap().labels, before);

    assert_eq!(app.client.set_device_labels("gw-1", &exactly).await.unwrap().labels.len(), MAX_LABELS);

    let viewer = app.client.create_operator_token("viewer", TokenScope::ReadOnly).await.unwrap();
    let refused = app.client.with_token(viewer.token).set_device_labels("gw-1", &before).await.unwrap_err();
    assert_eq!(refused.problem().unwrap().code, ErrorCode::Forbidden);
    assert_eq!(app.client.get_device("gw-1").await.unwrap().labels.len(), MAX_LABELS);
}

#[tokio::test]
async fn fleetctl_devices_label_replaces_and_list_finds_it() {
    let app = TestApp::spawn().await;
    app.client.add_device("gw-1", "rpi4", &labels(&[("site", "berlin"), ("ring", "canary")])).await.unwrap();

    let out = fleetctl(&app, &["-o", "json", "devices", "label", "gw-1", "site=paris", "tier=gold"]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let device: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(device["labels"], serde_json::json!({"site": "paris", "tier": "gold"}));

    let out = fleetctl(&app, &["-o", "json", "devices", "list", "--label", "site=paris"]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let listed: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let ids: Vec<&str> = listed["items"].as_array().unwrap().iter().map(|d| d["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["gw-1"]);
    let out = fleetctl(&app, &["-o", "json", "devices", "list", "--label", "ring=canary"]).await;
    assert_eq!(serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()["items"], serde_json::json!([]));

    let help = fleetctl(&app, &["devices", "label", "--help"]).await;
    assert!(String::from_utf8_lossy(&help.stdout).contains("Replace ALL"));
    // No pairs and no --clear: refused before anything is sent.
    assert!(!fleetctl(&app, &["devices", "label", "gw-1"]).await.status.success());
    let twice = fleetctl(&app, &["devices", "label", "gw-1", "a=1", "a=2"]).await;
    assert!(!twice.status.success());
    let bad = fleetctl(&app, &["devices", "label", "gw-1", "bad key=v"]).await;
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("bad key"), "{}", String::from_utf8_lossy(&bad.stderr));
    assert_eq!(app.client.get_device("gw-1").await.unwrap().labels, labels(&[("site", "paris"), ("tier", "gold")]));

    let out = fleetctl(&app, &["devices", "label", "gw-1", "--clear"]).await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(app.client.get_device("gw-1").await.unwrap().labels.is_empty());
}
