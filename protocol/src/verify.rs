//! Strict verification of envelopes against trusted keys with a threshold (CONTRACT §2).
//!
//! Signatures by unknown keys are ignored. The envelope is valid when signatures by at
//! least `threshold` distinct trusted keys verify (Ed25519 strict verification). When no
//! trusted key signed at all the error is `untrusted_key`; when trusted keys signed but
//! too few of those signatures verify, it is `signature_invalid`.

use std::collections::BTreeSet;

use fleet_agent_core::envelope::Signature;
use fleet_agent_core::verify::{self as core_verify, Keys, TrustedKey};

use crate::envelope::Envelope;
use crate::{KeyId, PublicKey};

/// Why an envelope is not accepted: the device core's verdict.
pub use fleet_agent_core::verify::VerifyError;

/// The verified payload bytes and the trusted keys whose signatures verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub payload: Vec<u8>,
    pub signers: BTreeSet<KeyId>,
}

/// Trusted keys and the number of them that must sign. The rule itself is the device
/// core's ([`fleet_agent_core::verify`]): servers and devices judge alike.
#[derive(Debug, Clone)]
pub struct Verifier {
    keys: Vec<TrustedKey>,
    ids: Vec<KeyId>,
    threshold: usize,
}

impl Verifier {
    /// A verifier trusting `keys` (each once); `threshold` is at least 1.
    pub fn new(keys: impl IntoIterator<Item = PublicKey>, threshold: usize) -> Self {
        let mut ids = Vec::new();
        let mut trusted = Vec::new();
        for key in keys {
            if !ids.contains(key.keyid()) {
                ids.push(key.keyid().clone());
                trusted.push(TrustedKey::new(*key.verifying_key()));
            }
        }
        Self { keys: trusted, ids, threshold: threshold.max(1) }
    }

    pub fn threshold(&self) -> usize {
        self.threshold
    }

    /// The keys and threshold as the device core takes them.
    pub fn keys(&self) -> Keys<'_> {
        Keys::new(&self.keys, self.threshold)
    }

    /// Verifies a manifest envelope's signatures over the exact payload bytes; parse the
    /// payload only afterwards.
    pub fn verify(&self, envelope: &Envelope) -> Result<Verified, VerifyError> {
        self.verify_as(envelope, crate::envelope::PAYLOAD_TYPE)
    }

    /// [`Verifier::verify`] for an envelope of another payload type (a trust document).
    pub fn verify_as(&self, envelope: &Envelope, payload_type: &str) -> Result<Verified, VerifyError> {
        let signatures: Vec<Signature<'_>> = envelope.core_signatures().collect();
        let mut buffer = vec![0; core_verify::buffer_len(&envelope.payload_type, envelope.payload.len())];
        let verified =
            self.keys().verify(payload_type, &envelope.payload_type, &envelope.payload, &signatures, &mut buffer)?;
        // Inserted one by one: collecting would sort, which costs a device binary 3 KB.
        let mut signers = BTreeSet::new();
        for &i in &verified.signers {
            signers.insert(self.ids[i].clone());
        }
        Ok(Verified { payload: verified.payload.to_vec(), signers })
    }
}

#[cfg(all(test, feature = "sign"))]
mod tests {
    use super::*;
    use crate::envelope::{EnvelopeSignature, encode_base64};
    use crate::sign::{SigningKey, sign_payload};

    fn key(seed: u8) -> SigningKey {
        SigningKey::from_bytes(&[seed; 32])
    }

    fn public(k: &SigningKey) -> PublicKey {
        PublicKey::from_verifying_key(k.verifying_key())
    }

    #[test]
    fn one_trusted_signature_verifies() {
        let env = sign_payload(b"{\"a\":1}", &[&key(1)]);
        let v = Verifier::new([public(&key(1))], 1).verify(&env).unwrap();
        assert_eq!(v.payload, b"{\"a\":1}");
        assert_eq!(v.signers.len(), 1);
    }

    #[test]
    fn unknown_keys_are_ignored_then_untrusted() {
        let env = sign_payload(b"x", &[&key(2)]);
        assert_eq!(Verifier::new([public(&key(1))], 1).verify(&env), Err(VerifyError::UntrustedKey));
    }

    #[test]
    fn signature_over_other_bytes_is_invalid() {
        let mut env = sign_payload(b"original", &[&key(1)]);
        env.payload = encode_base64(b"tampered");
        assert_eq!(
            Verifier::new([public(&key(1))], 1).verify(&env),
            Err(VerifyError::SignatureInvalid { valid: 0, threshold: 1 })
        );
    }

    #[test]
    fn threshold_counts_distinct_keys() {
        let env = sign_payload(b"x", &[&key(1), &key(2)]);
        let verifier = Verifier::new([public(&key(1)), public(&key(2))], 2);
        assert!(verifier.verify(&env).is_ok());

        let mut doubled = sign_payload(b"x", &[&key(1)]);
        doubled.signatures.push(doubled.signatures[0].clone());
        assert_eq!(verifier.verify(&doubled), Err(VerifyError::SignatureInvalid { valid: 1, threshold: 2 }));
    }

    #[test]
    fn garbage_signature_by_trusted_keyid_is_invalid_not_untrusted() {
        let k = public(&key(1));
        let mut env = sign_payload(b"x", &[&key(9)]);
        env.signatures = vec![EnvelopeSignature { keyid: k.keyid().as_hex(), sig: encode_base64(&[0; 64]) }];
        assert!(matches!(Verifier::new([k], 1).verify(&env), Err(VerifyError::SignatureInvalid { .. })));
    }
}
