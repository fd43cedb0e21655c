use std::collections::BTreeMap;

use fleet_cli::client::DeviceQuery;
use fleet_protocol::ErrorCode;
use fleet_tests::TestApp;
use reqwest::Method;

fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
}

#[tokio::test]
async fn register_show_filter_and_decommission() {
    let app = TestApp::spawn().await;
    let d =
        app.client.add_device("gw-berlin-1", "rpi4", &labels(&[("site", "berlin"), ("ring", "canary")])).await.unwrap();
    assert!(d.token.starts_with("fleet_dev_") && d.token.len() >= 40);
    app.client.add_device("gw-berlin-2", "rpi4", &labels(&[("site", "berlin")])).await.unwrap();
    app.client.add_device("gw-paris-1", "rpi4", &labels(&[("site", "paris")])).await.unwrap();
    app.client.add_device("cm-1", "cm4", &labels(&[("site", "berlin")])).await.unwrap();

    let shown = app.client.get_device("gw-berlin-1").await.unwrap();
    assert_eq!(shown.hardware, "rpi4");
    assert_eq!(shown.labels["ring"], "canary");
    assert!(shown.firmware.is_none() && !shown.online && shown.rollout.is_none());

    let client = &app.client;
    let ids = |q: DeviceQuery| async move {
        client.list_devices(&q).await.unwrap().items.into_iter().map(|d| d.id).collect::<Vec<_>>()
    };
    let berlin_rpi = DeviceQuery {
        hardware: Some("rpi4".into()),
        labels: vec![("site".into(), "berlin".into())],
        ..Default::default()
    };
    assert_eq!(ids(berlin_rpi).await, ["gw-berlin-1", "gw-berlin-2"]);
    let canary = DeviceQuery {
        labels: vec![("site".into(), "berlin".into()), ("ring".into(), "canary".into())],
        ..Default::default()
    };
    assert_eq!(ids(canary).await, ["gw-berlin-1"]);
    assert_eq!(ids(DeviceQuery::default()).await.len(), 4);

    let mut paged = DeviceQuery { limit: Some(3), ..Default::default() };
    let first = app.client.list_devices(&paged).await.unwrap();
    assert_eq!(first.items.len(), 3);
    paged.cursor = first.next_cursor;
    let second = app.client.list_devices(&paged).await.unwrap();
    assert_eq!(second.items.len(), 1);
    assert!(second.next_cursor.is_none());

    let dup = app.client.add_device("gw-berlin-1", "rpi4", &BTreeMap::new()).await.unwrap_err();
    assert_eq!(dup.problem().unwrap().code, ErrorCode::AlreadyExists);

    app.client.delete_device("cm-1").await.unwrap();
    assert_eq!(app.client.get_device("cm-1").await.unwrap_err().problem().unwrap().code, ErrorCode::NotFound);
}

#[tokio::test]
async fn invalid_ids_are_refused() {
    let app = TestApp::spawn().await;
    for bad in ["../x", "a/b", "+", "#", "", &"x".repeat(65)] {
        let err = app.client.add_device(bad, "rpi4", &BTreeMap::new()).await.unwrap_err();
        assert_eq!(err.problem().unwrap().code, ErrorCode::InvalidId, "{bad:?}");
    }
    // In paths, percent-encoded so they reach the handler as one segment.
    for bad in ["..%2Fx", "a%2Fb", "%2B", &"y".repeat(65)] {
        let resp = app.client.request(Method::GET, &format!("/devices/{bad}")).send().await.unwrap();
        assert_eq!(resp.status(), 400, "{bad}");
        let problem: fleet_protocol::Problem = resp.json().await.unwrap();
        assert_eq!(problem.code, ErrorCode::InvalidId);
    }
    let bad_hw = app.client.add_device("ok-1", "rpi 4", &BTreeMap::new()).await.unwrap_err();
    assert_eq!(bad_hw.problem().unwrap().code, ErrorCode::InvalidId);
    let bad_label = app.client.add_device("ok-1", "rpi4", &labels(&[("bad key", "v")])).await.unwrap_err();
    assert_eq!(bad_label.problem().unwrap().code, ErrorCode::BadRequest);
    let unknown_field = app
        .client
        .request(Method::POST, "/devices")
        .json(&serde_json::json!({"id": "ok-1", "hardware": "rpi4", "colour": "red"}))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown_field.status(), 400);
    assert!(app.client.list_devices(&DeviceQuery::default()).await.unwrap().items.is_empty());
}
