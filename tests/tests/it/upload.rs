use fleet_protocol::{ArtifactKind, Sha256Digest};
use fleet_tests::{TestApp, manifest_for, release_key, sample, sign};
use reqwest::StatusCode;

#[tokio::test]
async fn signed_upload_is_stored_and_served_with_range_and_etag() {
    let app = TestApp::spawn().await;
    app.trust_release_key().await;
    let bytes = sample("gateway-os-1.0.0.img");
    let envelope = fleet_protocol::Envelope::from_json(&sample("gateway-os-1.0.0.img.dsse.json")).unwrap();

    let artifact = app.upload(ArtifactKind::Firmware, &envelope, bytes.clone()).await.unwrap();
    assert_eq!(artifact.sha256, Sha256Digest::of(&bytes).to_hex());
    assert_eq!(artifact.size, bytes.len() as u64);
    assert_eq!(artifact.signers.len(), 1);

    let blob_path = app.data_dir.join("blobs/sha256").join(&artifact.sha256[..2]).join(&artifact.sha256);
    assert_eq!(Sha256Digest::of(&std::fs::read(blob_path).unwrap()).to_hex(), artifact.sha256);

    let full = app.client.blob(ArtifactKind::Firmware, &artifact.id, None).await.unwrap();
    assert_eq!(full.status(), StatusCode::OK);
    let etag = full.headers()["etag"].to_str().unwrap().to_owned();
    assert_eq!(etag, format!("\"{}\"", artifact.sha256));
    assert_eq!(full.bytes().await.unwrap(), bytes);

    let tail = app.client.blob(ArtifactKind::Firmware, &artifact.id, Some(1000)).await.unwrap();
    assert_eq!(tail.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(tail.bytes().await.unwrap(), bytes[1000..]);

    let cached = app
        .client
        .request(reqwest::Method::GET, &format!("/firmware/{}/blob", artifact.id))
        .header("if-none-match", etag)
        .send()
        .await
        .unwrap();
    assert_eq!(cached.status(), StatusCode::NOT_MODIFIED);

    let shown = app.client.get_artifact(ArtifactKind::Firmware, &artifact.id).await.unwrap();
    assert_eq!(shown.envelope.unwrap(), envelope);
}

#[tokio::test]
async fn configs_and_firmware_are_separate_and_listed_by_name() {
    let app = TestApp::spawn().await;
    app.trust_release_key().await;
    let cfg = fleet_protocol::Envelope::from_json(&sample("gw-config-1.0.0.toml.dsse.json")).unwrap();
    app.upload(ArtifactKind::Config, &cfg, sample("gw-config-1.0.0.toml")).await.unwrap();
    for v in ["1.0.0", "1.0.1", "1.0.2"] {
        let bytes = format!("image {v}").into_bytes();
        let env = sign(&manifest_for(ArtifactKind::Firmware, "gateway-os", v, &bytes), &[&release_key()]);
        app.upload(ArtifactKind::Firmware, &env, bytes).await.unwrap();
    }
    let other = b"other".to_vec();
    let env = sign(&manifest_for(ArtifactKind::Firmware, "sensor-os", "1.0.0", &other), &[&release_key()]);
    app.upload(ArtifactKind::Firmware, &env, other).await.unwrap();

    let configs = app.client.list_artifacts(ArtifactKind::Config, None, None).await.unwrap();
    assert_eq!(configs.items.len(), 1);
    let gw = app.client.list_artifacts(ArtifactKind::Firmware, Some("gateway-os"), None).await.unwrap();
    let versions: Vec<_> = gw.items.iter().map(|a| a.version.as_str()).collect();
    assert_eq!(versions, ["1.0.0", "1.0.1", "1.0.2"]);

    // Pagination walks every item once.
    let page = app
        .client
        .request(reqwest::Method::GET, "/firmware?limit=2")
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    let cursor = page["next_cursor"].as_str().unwrap().to_owned();
    let rest = app.client.list_artifacts(ArtifactKind::Firmware, None, Some(&cursor)).await.unwrap();
    assert_eq!(rest.items.len(), 2);
    assert!(rest.next_cursor.is_none());
}

#[tokio::test]
async fn delete_removes_record_and_unshared_blob() {
    let app = TestApp::spawn().await;
    app.trust_release_key().await;
    let bytes = b"shared bytes".to_vec();
    let a = sign(&manifest_for(ArtifactKind::Firmware, "gateway-os", "1.0.0", &bytes), &[&release_key()]);
    let b = sign(&manifest_for(ArtifactKind::Firmware, "gateway-os", "1.0.1", &bytes), &[&release_key()]);
    let a = app.upload(ArtifactKind::Firmware, &a, bytes.clone()).await.unwrap();
    let b = app.upload(ArtifactKind::Firmware, &b, bytes.clone()).await.unwrap();
    assert_eq!(app.blob_files(), (1, 0), "identical bytes are stored once");

    app.client.delete_artifact(ArtifactKind::Firmware, &a.id).await.unwrap();
    assert_eq!(app.blob_files(), (1, 0), "still referenced by the other artifact");
    assert!(app.client.blob(ArtifactKind::Firmware, &b.id, None).await.is_ok());

    app.client.delete_artifact(ArtifactKind::Firmware, &b.id).await.unwrap();
    assert_eq!(app.blob_files(), (0, 0));
    let err = app.client.get_artifact(ArtifactKind::Firmware, &b.id).await.unwrap_err();
    assert_eq!(err.problem().unwrap().status, 404);
}
