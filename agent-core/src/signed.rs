//! Tests' signed envelopes and manifests (std is there in tests).

use std::format;
use std::string::String;
use std::vec::Vec;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ed25519_dalek::{Signer as _, SigningKey};
use sha2::{Digest as _, Sha256};

use crate::envelope::{PAYLOAD_TYPE, pae_len, write_pae};
use crate::verify::TrustedKey;

pub fn key(seed: u8) -> SigningKey {
    SigningKey::from_bytes(&[seed; 32])
}

pub fn trusted(seed: u8) -> TrustedKey {
    TrustedKey::new(key(seed).verifying_key())
}

fn base64(bytes: &[u8]) -> String {
    let mut out = std::vec![0u8; bytes.len().div_ceil(3) * 4];
    let len = STANDARD.encode_slice(bytes, &mut out).unwrap();
    String::from_utf8(out[..len].to_vec()).unwrap()
}

/// Envelope JSON of `payload` signed by `signers`.
pub fn envelope(payload: &[u8], signers: &[&SigningKey]) -> String {
    let mut message = std::vec![0u8; pae_len(PAYLOAD_TYPE, payload.len())];
    write_pae(PAYLOAD_TYPE, payload, &mut message);
    let signatures: Vec<String> = signers
        .iter()
        .map(|k| {
            let keyid = hex_of(&Sha256::digest(k.verifying_key().as_bytes()));
            format!(r#"{{"keyid":"{keyid}","sig":"{}"}}"#, base64(&k.sign(&message).to_bytes()))
        })
        .collect();
    format!(
        r#"{{"payloadType":"{PAYLOAD_TYPE}","payload":"{}","signatures":[{}]}}"#,
        base64(payload),
        signatures.join(",")
    )
}

pub fn hex_of(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A firmware manifest of `gateway-os` `version` for rpi4, with `extra` JSON fields.
pub fn manifest(kind: &str, version: &str, extra: &str) -> String {
    let sha = hex_of(&Sha256::digest(b"abc"));
    format!(
        r#"{{"schema":1,"kind":"{kind}","name":"gateway-os","version":"{version}","hardware":["rpi4"],"size":3,"sha256":"{sha}","created_at":"2023-11-14T22:13:20Z"{extra}}}"#
    )
}
