//! An envelope made entirely with openssl (keys and signature) is accepted: the server
//! speaks the same PEM and PAE as everyone else.

use std::process::Command;

use fleet_protocol::envelope::{EnvelopeSignature, PAYLOAD_TYPE, pae};
use fleet_protocol::{ArtifactKind, Envelope, PublicKey};
use fleet_tests::{TestApp, manifest_for};

fn openssl(args: &[&str]) {
    let status = Command::new("openssl").args(args).status().expect("openssl is installed");
    assert!(status.success(), "openssl {args:?}");
}

#[tokio::test]
async fn openssl_keys_and_signature_are_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    openssl(&["genpkey", "-algorithm", "ed25519", "-out", &path("k.pem")]);
    openssl(&["pkey", "-in", &path("k.pem"), "-pubout", "-out", &path("k.pub")]);
    let pub_pem = std::fs::read_to_string(path("k.pub")).unwrap();
    let key = PublicKey::from_pem(&pub_pem).unwrap();

    let bytes = b"signed by openssl".to_vec();
    let manifest = manifest_for(ArtifactKind::Firmware, "gateway-os", "3.0.0", &bytes).to_bytes();
    std::fs::write(path("pae.bin"), pae(PAYLOAD_TYPE, &manifest)).unwrap();
    openssl(&[
        "pkeyutl",
        "-sign",
        "-inkey",
        &path("k.pem"),
        "-rawin",
        "-in",
        &path("pae.bin"),
        "-out",
        &path("sig.bin"),
    ]);
    let sig = std::fs::read(path("sig.bin")).unwrap();
    assert_eq!(sig.len(), 64);

    use base64::Engine as _;
    let url_safe = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let envelope = Envelope {
        payload_type: PAYLOAD_TYPE.into(),
        payload: url_safe.encode(&manifest),
        signatures: vec![EnvelopeSignature { keyid: key.keyid().as_hex(), sig: url_safe.encode(&sig) }],
    };

    let app = TestApp::spawn().await;
    let registered = app.client.add_key("openssl", &pub_pem).await.unwrap();
    assert_eq!(registered.keyid, key.keyid().as_hex());
    let artifact = app.upload(ArtifactKind::Firmware, &envelope, bytes).await.unwrap();
    assert_eq!(artifact.signers, [key.keyid().as_hex()]);
}
