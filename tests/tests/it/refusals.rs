//! Every bad upload is refused with the contract's status and code, and leaves nothing on
//! disk or in the database.

use fleet_cli::ClientError;
use std::time::Duration;

use fleet_protocol::envelope::{EnvelopeSignature, encode_base64};
use fleet_protocol::{ArtifactKind, Envelope, ErrorCode};
use fleet_tests::{TestApp, manifest_for, other_key, release_key, sample, sign};
use reqwest::multipart::{Form, Part};

fn image() -> Vec<u8> {
    (0..100_000u32).map(|i| (i % 251) as u8).collect()
}

fn good_envelope(bytes: &[u8]) -> Envelope {
    sign(&manifest_for(ArtifactKind::Firmware, "gateway-os", "2.0.0", bytes), &[&release_key()])
}

async fn assert_refused(app: &TestApp, result: Result<impl std::fmt::Debug, ClientError>, code: ErrorCode) {
    let err = result.expect_err("must be refused");
    let problem = err.problem().unwrap_or_else(|| panic!("not a problem body: {err}"));
    assert_eq!(problem.code, code, "{problem:?}");
    assert_eq!(problem.status, code.status());
    assert!(!problem.detail.is_empty());
    assert_nothing_left(app).await;
}

async fn assert_nothing_left(app: &TestApp) {
    assert_eq!(app.blob_files(), (0, 0), "no blob and no temporary file");
    let listed = app.client.list_artifacts(ArtifactKind::Firmware, None, None).await.unwrap();
    assert!(listed.items.is_empty(), "no record");
}

/// Signs a manifest JSON text as given (for malformed-manifest cases).
fn sign_raw(manifest_json: &str) -> Envelope {
    fleet_protocol::sign::sign_payload(manifest_json.as_bytes(), &[&release_key()])
}

#[tokio::test]
async fn signature_refusals() {
    let app = TestApp::spawn().await;
    app.trust_release_key().await;
    let bytes = image();
    let manifest = manifest_for(ArtifactKind::Firmware, "gateway-os", "2.0.0", &bytes);

    let unknown = sign(&manifest, &[&other_key()]);
    assert_refused(&app, app.upload(ArtifactKind::Firmware, &unknown, bytes.clone()).await, ErrorCode::UntrustedKey)
        .await;

    let mut bad_sig = good_envelope(&bytes);
    bad_sig.signatures[0].sig = encode_base64(&[7u8; 64]);
    assert_refused(
        &app,
        app.upload(ArtifactKind::Firmware, &bad_sig, bytes.clone()).await,
        ErrorCode::SignatureInvalid,
    )
    .await;

    let mut other_bytes = good_envelope(&bytes);
    let mut changed = manifest.clone();
    changed.version = semver::Version::new(9, 9, 9);
    other_bytes.payload = encode_base64(&changed.to_bytes());
    assert_refused(
        &app,
        app.upload(ArtifactKind::Firmware, &other_bytes, bytes.clone()).await,
        ErrorCode::SignatureInvalid,
    )
    .await;

    let moved = Envelope::from_json(&sample("negative/tampered-payload.dsse.json")).unwrap();
    assert_refused(
        &app,
        app.upload(ArtifactKind::Firmware, &moved, sample("gateway-os-1.0.0.img")).await,
        ErrorCode::SignatureInvalid,
    )
    .await;
}

#[tokio::test]
async fn below_threshold_is_signature_invalid() {
    let app = TestApp::spawn_with(|s| s.upload_threshold = 2).await;
    app.trust_release_key().await;
    app.client.add_key("other", &String::from_utf8(sample("test-only-other.pub")).unwrap()).await.unwrap();
    let bytes = image();
    let manifest = manifest_for(ArtifactKind::Firmware, "gateway-os", "2.0.0", &bytes);

    let one = sign(&manifest, &[&release_key()]);
    assert_refused(&app, app.upload(ArtifactKind::Firmware, &one, bytes.clone()).await, ErrorCode::SignatureInvalid)
        .await;

    // The same key twice is still one key.
    let mut twice = one.clone();
    twice.signatures.push(twice.signatures[0].clone());
    assert_refused(&app, app.upload(ArtifactKind::Firmware, &twice, bytes.clone()).await, ErrorCode::SignatureInvalid)
        .await;

    let both = sign(&manifest, &[&release_key(), &other_key()]);
    let artifact = app.upload(ArtifactKind::Firmware, &both, bytes).await.unwrap();
    assert_eq!(artifact.signers.len(), 2);
}

#[tokio::test]
async fn revoked_key_no_longer_counts() {
    let app = TestApp::spawn().await;
    app.trust_release_key().await;
    let keyid = app.client.list_keys(None).await.unwrap().items[0].keyid.clone();
    app.client.revoke_key(&keyid).await.unwrap();
    let bytes = image();
    assert_refused(
        &app,
        app.upload(ArtifactKind::Firmware, &good_envelope(&bytes), bytes.clone()).await,
        ErrorCode::UntrustedKey,
    )
    .await;
    // A revoked key cannot be registered again.
    let again = app.client.add_key("again", &String::from_utf8(sample("test-only-release.pub")).unwrap()).await;
    assert_eq!(again.unwrap_err().problem().unwrap().code, ErrorCode::KeyRevoked);
}

#[tokio::test]
async fn content_refusals() {
    let app = TestApp::spawn().await;
    app.trust_release_key().await;
    let bytes = image();
    let env = good_envelope(&bytes);

    let mut tampered = bytes.clone();
    tampered[500] ^= 1;
    assert_refused(&app, app.upload(ArtifactKind::Firmware, &env, tampered).await, ErrorCode::DigestMismatch).await;

    let mut longer = bytes.clone();
    longer.push(0);
    assert_refused(&app, app.upload(ArtifactKind::Firmware, &env, longer).await, ErrorCode::SizeMismatch).await;

    // Far longer: cut off at the signed size, not read to the end.
    let mut much_longer = bytes.clone();
    much_longer.extend(std::iter::repeat_n(0u8, 8 << 20));
    assert_refused(&app, app.upload(ArtifactKind::Firmware, &env, much_longer).await, ErrorCode::SizeMismatch).await;

    let shorter = bytes[..bytes.len() - 1].to_vec();
    assert_refused(&app, app.upload(ArtifactKind::Firmware, &env, shorter).await, ErrorCode::SizeMismatch).await;

    // The sample's bit-flipped image against the sample envelope.
    let sample_env = Envelope::from_json(&sample("gateway-os-1.0.0.img.dsse.json")).unwrap();
    assert_refused(
        &app,
        app.upload(ArtifactKind::Firmware, &sample_env, sample("negative/tampered.img")).await,
        ErrorCode::DigestMismatch,
    )
    .await;

    // Wrong kind for the endpoint.
    assert_refused(&app, app.upload(ArtifactKind::Config, &env, bytes.clone()).await, ErrorCode::BadManifest).await;

    // Finally it goes through, once.
    app.upload(ArtifactKind::Firmware, &env, bytes.clone()).await.unwrap();
    let dup = app.upload(ArtifactKind::Firmware, &env, bytes).await.unwrap_err();
    assert_eq!(dup.problem().unwrap().code, ErrorCode::VersionExists);
    assert_eq!(app.blob_files(), (1, 0));
}

#[tokio::test]
async fn over_the_size_cap_is_too_large() {
    let app = TestApp::spawn_with(|s| s.max_artifact_size = 50_000).await;
    app.trust_release_key().await;
    let bytes = image();
    assert_refused(&app, app.upload(ArtifactKind::Firmware, &good_envelope(&bytes), bytes).await, ErrorCode::TooLarge)
        .await;
}

#[tokio::test]
async fn malformed_envelopes_and_manifests() {
    let app = TestApp::spawn().await;
    app.trust_release_key().await;
    let bytes = image();

    let malformed = Envelope::from_json(&sample("negative/malformed.dsse.json")).unwrap();
    assert_refused(&app, app.upload(ArtifactKind::Firmware, &malformed, bytes.clone()).await, ErrorCode::BadEnvelope)
        .await;
    for raw in [&b"not json"[..], b"{}", br#"{"payloadType":"text/plain","payload":"e30=","signatures":[]}"#] {
        let r = app.client.upload(ArtifactKind::Firmware, raw.to_vec(), bytes.clone().into(), bytes.len() as u64).await;
        assert_refused(&app, r, ErrorCode::BadEnvelope).await;
    }

    let good: serde_json::Value =
        serde_json::from_slice(&manifest_for(ArtifactKind::Firmware, "gateway-os", "2.0.0", &bytes).to_bytes())
            .unwrap();
    let mut cases = vec![];
    let mut unknown = good.clone();
    unknown["extra"] = 1.into();
    cases.push(unknown);
    let mut bad_semver = good.clone();
    bad_semver["version"] = "2.0".into();
    cases.push(bad_semver);
    let mut bad_sha = good.clone();
    bad_sha["sha256"] = "ABC".into();
    cases.push(bad_sha);
    for field in ["name", "size", "sha256", "hardware", "created_at"] {
        let mut missing = good.clone();
        missing.as_object_mut().unwrap().remove(field);
        cases.push(missing);
    }
    for case in cases {
        let env = sign_raw(&case.to_string());
        assert_refused(&app, app.upload(ArtifactKind::Firmware, &env, bytes.clone()).await, ErrorCode::BadManifest)
            .await;
    }
    let env = sign_raw("not json at all");
    assert_refused(&app, app.upload(ArtifactKind::Firmware, &env, bytes).await, ErrorCode::BadManifest).await;
}

async fn send_form(app: &TestApp, form: Form) -> Result<reqwest::Response, ClientError> {
    let r = app.client.request(reqwest::Method::POST, "/firmware").multipart(form).send().await.unwrap();
    fleet_cli::ApiClient::check(r).await
}

#[tokio::test]
async fn missing_and_misordered_parts() {
    let app = TestApp::spawn().await;
    app.trust_release_key().await;
    let bytes = image();
    let env = serde_json::to_vec(&good_envelope(&bytes)).unwrap();

    let only_envelope = Form::new().part("envelope", Part::bytes(env.clone()));
    assert_refused(&app, send_form(&app, only_envelope).await, ErrorCode::BadRequest).await;

    let only_file = Form::new().part("file", Part::bytes(bytes.clone()));
    assert_refused(&app, send_form(&app, only_file).await, ErrorCode::BadRequest).await;

    let reversed = Form::new().part("file", Part::bytes(bytes.clone())).part("envelope", Part::bytes(env.clone()));
    assert_refused(&app, send_form(&app, reversed).await, ErrorCode::BadRequest).await;

    let extra = Form::new()
        .part("envelope", Part::bytes(env.clone()))
        .part("file", Part::bytes(bytes.clone()))
        .part("more", Part::bytes(b"x".to_vec()));
    assert_refused(&app, send_form(&app, extra).await, ErrorCode::BadRequest).await;

    let not_multipart = app.client.request(reqwest::Method::POST, "/firmware").body("hello").send().await.unwrap();
    assert_refused(&app, fleet_cli::ApiClient::check(not_multipart).await, ErrorCode::BadRequest).await;
}

#[tokio::test]
async fn forged_signature_entry_shapes() {
    let app = TestApp::spawn().await;
    app.trust_release_key().await;
    let bytes = image();
    let mut env = good_envelope(&bytes);
    env.signatures.push(EnvelopeSignature { keyid: "not-hex".into(), sig: "%%%".into() });
    assert_refused(&app, app.upload(ArtifactKind::Firmware, &env, bytes).await, ErrorCode::BadEnvelope).await;
}

#[tokio::test]
async fn no_room_for_the_signed_size_is_insufficient_storage() {
    let app = TestApp::spawn_with(|s| s.max_artifact_size = u64::MAX).await;
    app.trust_release_key().await;
    let bytes = image();
    let mut manifest = manifest_for(ArtifactKind::Firmware, "gateway-os", "2.0.0", &bytes);
    manifest.size = 1 << 60;
    let env = sign(&manifest, &[&release_key()]);
    assert_refused(&app, app.upload(ArtifactKind::Firmware, &env, bytes).await, ErrorCode::InsufficientStorage).await;
}

/// A part name that never ends: multer would buffer it whole. The server must answer 413
/// after the envelope's budget, long before the client has sent 64 MiB (which it would
/// otherwise read, waiting for the end of the part's headers).
#[tokio::test]
async fn an_endless_part_header_is_refused_without_being_buffered() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    const SENT_AT_MOST: usize = 64 * 1024 * 1024;
    let app = TestApp::spawn().await;
    let url = reqwest::Url::parse(app.client.base_url()).unwrap();
    let stream = tokio::net::TcpStream::connect((url.host_str().unwrap(), url.port().unwrap())).await.unwrap();
    let (mut read, mut write) = stream.into_split();
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: fleet\r\nAuthorization: Bearer {}\r\n\
         Content-Type: multipart/form-data; boundary=xyz\r\nContent-Length: {}\r\n\r\n\
         --xyz\r\nContent-Disposition: form-data; name=\"",
        app.client.api_url("/firmware").trim_start_matches(app.client.base_url()),
        fleet_tests::ADMIN_TOKEN,
        SENT_AT_MOST + 1000,
    );
    let sender = tokio::spawn(async move {
        write.write_all(head.as_bytes()).await?;
        let chunk = vec![b'a'; 64 * 1024];
        let mut sent = 0;
        while sent < SENT_AT_MOST {
            write.write_all(&chunk).await?;
            sent += chunk.len();
        }
        // Keep the connection open: a server still waiting for the header's end never answers.
        tokio::time::sleep(Duration::from_secs(60)).await;
        Ok::<_, std::io::Error>(())
    });
    let mut answer = Vec::new();
    let mut buf = vec![0u8; 4096];
    while !String::from_utf8_lossy(&answer).contains("too_large") {
        let n = tokio::time::timeout(Duration::from_secs(20), read.read(&mut buf))
            .await
            .expect("the server answers before the client has sent everything")
            .unwrap();
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buf[..n]);
    }
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("too_large"), "{answer}");
    sender.abort();
    assert_nothing_left(&app).await;
}
