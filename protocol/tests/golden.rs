//! Golden vectors from `firmware-samples/`: envelopes made by `fleetctl` with a key made
//! by openssl, and the negative fixtures.

use fleet_protocol::verify::VerifyError;
use fleet_protocol::{ArtifactKind, Envelope, Manifest, PublicKey, Sha256Digest, Verifier};

const SAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../firmware-samples");

fn read(name: &str) -> Vec<u8> {
    std::fs::read(format!("{SAMPLES}/{name}")).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn key(name: &str) -> PublicKey {
    PublicKey::from_pem(&String::from_utf8(read(name)).unwrap()).unwrap()
}

fn release_verifier() -> Verifier {
    Verifier::new([key("test-only-release.pub")], 1)
}

#[test]
fn sample_firmware_verifies_and_matches_its_bytes() {
    for (image, version) in [("gateway-os-1.0.0.img", "1.0.0"), ("gateway-os-1.1.0.img", "1.1.0")] {
        let env = Envelope::from_json(&read(&format!("{image}.dsse.json"))).unwrap();
        let verified = release_verifier().verify(&env).unwrap();
        let m = Manifest::from_slice(&verified.payload).unwrap();
        assert_eq!(m.kind, ArtifactKind::Firmware);
        assert_eq!(m.version.to_string(), version);
        let bytes = read(image);
        assert_eq!(m.size, bytes.len() as u64);
        assert_eq!(m.sha256, Sha256Digest::of(&bytes));
    }
}

#[test]
fn sample_config_requires_firmware() {
    let env = Envelope::from_json(&read("gw-config-1.0.0.toml.dsse.json")).unwrap();
    let m = Manifest::from_slice(&release_verifier().verify(&env).unwrap().payload).unwrap();
    assert_eq!(m.kind, ArtifactKind::Config);
    assert!(m.hardware.is_empty());
    assert!(m.requires_firmware.unwrap().matches(&semver::Version::new(1, 1, 0)));
}

#[test]
fn keyid_is_sha256_of_raw_public_key() {
    let k = key("test-only-release.pub");
    let env = Envelope::from_json(&read("gateway-os-1.0.0.img.dsse.json")).unwrap();
    assert_eq!(env.signatures[0].keyid, k.keyid().as_hex());
    assert_eq!(k.keyid().as_hex(), Sha256Digest::of(k.verifying_key().as_bytes()).to_hex());
}

#[test]
fn negative_fixtures_fail_with_their_reason() {
    let wrong = Envelope::from_json(&read("negative/wrong-key.dsse.json")).unwrap();
    assert_eq!(release_verifier().verify(&wrong), Err(VerifyError::UntrustedKey));

    let moved = Envelope::from_json(&read("negative/tampered-payload.dsse.json")).unwrap();
    assert!(matches!(release_verifier().verify(&moved), Err(VerifyError::SignatureInvalid { .. })));

    let malformed = Envelope::from_json(&read("negative/malformed.dsse.json")).unwrap();
    assert!(matches!(release_verifier().verify(&malformed), Err(VerifyError::Malformed(_))));

    let env = Envelope::from_json(&read("gateway-os-1.0.0.img.dsse.json")).unwrap();
    let m = Manifest::from_slice(&release_verifier().verify(&env).unwrap().payload).unwrap();
    assert_ne!(m.sha256, Sha256Digest::of(&read("negative/tampered.img")));
}

#[test]
fn other_key_alone_is_trusted_only_by_its_own_verifier() {
    let wrong = Envelope::from_json(&read("negative/wrong-key.dsse.json")).unwrap();
    assert!(Verifier::new([key("test-only-other.pub")], 1).verify(&wrong).is_ok());
    let both = Verifier::new([key("test-only-other.pub"), key("test-only-release.pub")], 2);
    assert!(matches!(both.verify(&wrong), Err(VerifyError::SignatureInvalid { valid: 1, threshold: 2 })));
}

#[cfg(feature = "sign")]
#[test]
fn signing_is_deterministic_and_reproduces_the_golden_signature() {
    use fleet_protocol::envelope::decode_base64;
    use fleet_protocol::sign::{sign_payload, signing_key_from_pem};
    let sk = signing_key_from_pem(&String::from_utf8(read("test-only-release.key")).unwrap()).unwrap();
    let env = Envelope::from_json(&read("gateway-os-1.0.0.img.dsse.json")).unwrap();
    let payload = decode_base64(&env.payload).unwrap();
    assert_eq!(sign_payload(&payload, &[&sk]).signatures, env.signatures);
}
