//! Strict verification of an envelope against pinned keys with a threshold (CONTRACT §2).
//!
//! Signatures by unknown keys are ignored. The envelope is valid when signatures by at
//! least `threshold` distinct trusted keys verify (Ed25519 strict verification). When no
//! trusted key signed at all the error is `untrusted_key`; when trusted keys signed but
//! too few of those signatures verify, it is `signature_invalid`.

use ed25519_dalek::{Signature as Ed25519Signature, VerifyingKey};
use sha2::{Digest as _, Sha256};

use crate::envelope::{EnvelopeError, Signature, decode_base64, decode_signatures, pae_header};
use heapless::Vec;

use crate::MAX_SIGNATURES;

/// Why an envelope is not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Malformed(#[from] EnvelopeError),
    #[error("no trusted key signed this envelope")]
    UntrustedKey,
    #[error("{valid} of the required {threshold} trusted signatures verify")]
    SignatureInvalid { valid: usize, threshold: usize },
}

/// A pinned key and its id, the SHA-256 of its 32 raw bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrustedKey {
    id: [u8; 32],
    key: VerifyingKey,
}

impl TrustedKey {
    pub fn new(key: VerifyingKey) -> Self {
        Self { id: Sha256::digest(key.as_bytes()).into(), key }
    }
}

/// Trusted keys and the number of them that must sign. Any number of keys: each
/// signature's key is found by a linear search of their ids.
#[derive(Debug, Clone, Copy)]
pub struct Keys<'k> {
    keys: &'k [TrustedKey],
    threshold: usize,
}

/// The verified payload and which trusted keys signed it (their places in the keys).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified<'b> {
    pub payload: &'b [u8],
    pub signers: Vec<usize, MAX_SIGNATURES>,
}

impl<'k> Keys<'k> {
    /// Trusts `keys`; `threshold` is at least 1.
    pub fn new(keys: &'k [TrustedKey], threshold: usize) -> Self {
        Self { keys, threshold: threshold.max(1) }
    }

    /// Verifies the signatures over the exact payload bytes, decoding the payload into
    /// `buffer` (its tail) and building the signed encoding in front of it. Parse the
    /// payload only after this succeeded.
    pub fn verify<'b>(
        &self,
        expected_type: &str,
        payload_type: &str,
        payload: &str,
        signatures: &[Signature<'_>],
        buffer: &'b mut [u8],
    ) -> Result<Verified<'b>, VerifyError> {
        let (message, body_at) = pae_in(expected_type, payload_type, payload, buffer)?;
        let signatures = decode_signatures(signatures)?;
        let mut trusted_signed = false;
        let mut signers = Vec::new();
        for (keyid, sig) in &signatures {
            let Some(i) = self.position(keyid) else { continue };
            trusted_signed = true;
            let sig = Ed25519Signature::from_bytes(sig);
            if !signers.contains(&i) && self.keys[i].key.verify_strict(message, &sig).is_ok() {
                signers.push(i).expect("no more signers than signatures");
            }
        }
        if !trusted_signed {
            return Err(VerifyError::UntrustedKey);
        }
        let valid = signers.len();
        if valid < self.threshold {
            return Err(VerifyError::SignatureInvalid { valid, threshold: self.threshold });
        }
        Ok(Verified { payload: &message[body_at..], signers })
    }

    fn position(&self, keyid: &str) -> Option<usize> {
        let id = crate::manifest::digest(keyid)?;
        self.keys.iter().position(|k| k.id == id)
    }
}

/// The buffer [`Keys::verify`] needs for a payload of `encoded_len` base64 characters.
pub fn buffer_len(payload_type: &str, encoded_len: usize) -> usize {
    header_room(payload_type) + encoded_len.div_ceil(4) * 3
}

/// The room before the payload for the encoding's header: its longest, whatever the
/// body's length.
fn header_room(payload_type: &str) -> usize {
    pae_header(payload_type, usize::MAX).len()
}

/// Checks the payload type, decodes the payload into the end of `buffer` and writes the
/// encoding's header before it: the signed message, and where the payload starts in it.
fn pae_in<'b>(
    expected_type: &str,
    payload_type: &str,
    payload: &str,
    buffer: &'b mut [u8],
) -> Result<(&'b [u8], usize), EnvelopeError> {
    if payload_type != expected_type {
        return Err(EnvelopeError::PayloadType);
    }
    let room = header_room(payload_type);
    let tail = buffer.get_mut(room..).ok_or(EnvelopeError::PayloadBase64)?;
    let body_len = decode_base64(payload, tail).ok_or(EnvelopeError::PayloadBase64)?;
    let header = pae_header(payload_type, body_len);
    let start = room - header.len();
    header.write(&mut buffer[start..room]);
    Ok((&buffer[start..room + body_len], room - start))
}
