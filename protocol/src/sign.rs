//! Creating envelopes (feature `sign`). Only operator tools hold private keys; the server
//! and the agent never enable this feature.

use ed25519_dalek::Signer as _;
pub use ed25519_dalek::SigningKey;
use ed25519_dalek::pkcs8::{DecodePrivateKey, EncodePrivateKey, spki::der::pem::LineEnding};

use crate::envelope::{Envelope, EnvelopeError, EnvelopeSignature, PAYLOAD_TYPE, encode_base64, pae};
use crate::{KeyError, PublicKey};

/// Loads a PKCS#8 PEM private key (`BEGIN PRIVATE KEY`), as `openssl genpkey` writes it.
pub fn signing_key_from_pem(pem: &str) -> Result<SigningKey, KeyError> {
    SigningKey::from_pkcs8_pem(pem.trim()).map_err(|e| KeyError(format!("private key: {e}")))
}

/// PKCS#8 PEM of a private key.
pub fn signing_key_to_pem(key: &SigningKey) -> String {
    key.to_pkcs8_pem(LineEnding::LF).expect("an Ed25519 key always encodes").to_string()
}

/// Signs `payload` (exact manifest bytes) with each key.
pub fn sign_payload(payload: &[u8], keys: &[&SigningKey]) -> Envelope {
    sign_payload_as(PAYLOAD_TYPE, payload, keys)
}

/// Signs `payload` of `payload_type` (a manifest's, a trust document's) with each key.
pub fn sign_payload_as(payload_type: &str, payload: &[u8], keys: &[&SigningKey]) -> Envelope {
    let message = pae(payload_type, payload);
    let signatures = keys
        .iter()
        .map(|k| EnvelopeSignature {
            keyid: PublicKey::from_verifying_key(k.verifying_key()).keyid().as_hex(),
            sig: encode_base64(&k.sign(&message).to_bytes()),
        })
        .collect();
    Envelope { payload_type: payload_type.into(), payload: encode_base64(payload), signatures }
}

/// Adds one more signature to an existing envelope (threshold signing, one key at a time).
pub fn add_signature(envelope: &mut Envelope, key: &SigningKey) -> Result<(), EnvelopeError> {
    let payload = crate::envelope::decode_base64(&envelope.payload).ok_or(EnvelopeError::PayloadBase64)?;
    let signed = sign_payload_as(&envelope.payload_type, &payload, &[key]);
    envelope.signatures.extend(signed.signatures);
    Ok(())
}
