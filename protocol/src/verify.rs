//! Strict verification of envelopes against trusted keys with a threshold (CONTRACT §2).
//!
//! Signatures by unknown keys are ignored. The envelope is valid when signatures by at
//! least `threshold` distinct trusted keys verify (Ed25519 strict verification). When no
//! trusted key signed at all the error is `untrusted_key`; when trusted keys signed but
//! too few of those signatures verify, it is `signature_invalid`.

use std::collections::{BTreeSet, HashMap};

use ed25519_dalek::Signature;

use crate::envelope::{Envelope, EnvelopeError, pae};
use crate::{KeyId, PublicKey};

/// Why an envelope is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Malformed(#[from] EnvelopeError),
    #[error("no trusted key signed this envelope")]
    UntrustedKey,
    #[error("{valid} of the required {threshold} trusted signatures verify")]
    SignatureInvalid { valid: usize, threshold: usize },
}

/// The verified payload bytes and the trusted keys whose signatures verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub payload: Vec<u8>,
    pub signers: BTreeSet<KeyId>,
}

/// Trusted keys and the number of them that must sign.
#[derive(Debug, Clone)]
pub struct Verifier {
    keys: HashMap<KeyId, PublicKey>,
    threshold: usize,
}

impl Verifier {
    /// A verifier trusting `keys`; `threshold` is at least 1.
    pub fn new(keys: impl IntoIterator<Item = PublicKey>, threshold: usize) -> Self {
        let keys = keys.into_iter().map(|k| (k.keyid().clone(), k)).collect();
        Self { keys, threshold: threshold.max(1) }
    }

    pub fn threshold(&self) -> usize {
        self.threshold
    }

    /// Verifies a manifest envelope's signatures over the exact payload bytes; parse the
    /// payload only afterwards.
    pub fn verify(&self, envelope: &Envelope) -> Result<Verified, VerifyError> {
        self.verify_as(envelope, crate::envelope::PAYLOAD_TYPE)
    }

    /// [`Verifier::verify`] for an envelope of another payload type (a trust document).
    pub fn verify_as(&self, envelope: &Envelope, payload_type: &str) -> Result<Verified, VerifyError> {
        let decoded = envelope.decode_as(payload_type)?;
        let message = pae(&envelope.payload_type, &decoded.payload);
        let mut trusted_signed = false;
        let mut signers = BTreeSet::new();
        for (keyid, sig) in &decoded.signatures {
            let Some(key) = KeyId::parse(keyid).and_then(|id| self.keys.get(&id)) else {
                continue;
            };
            trusted_signed = true;
            let sig = Signature::from_bytes(sig);
            if key.verifying_key().verify_strict(&message, &sig).is_ok() {
                signers.insert(key.keyid().clone());
            }
        }
        if !trusted_signed {
            return Err(VerifyError::UntrustedKey);
        }
        if signers.len() < self.threshold {
            return Err(VerifyError::SignatureInvalid { valid: signers.len(), threshold: self.threshold });
        }
        Ok(Verified { payload: decoded.payload, signers })
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
