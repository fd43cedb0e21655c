//! The DSSE envelope (Dead Simple Signing Envelope) that carries a manifest (CONTRACT §2).
//!
//! Signatures cover `PAE(payloadType, payload)`, never the JSON around them, so the
//! envelope itself can be re-encoded freely while the signed bytes stay exact.

use base64::Engine as _;
use fleet_agent_core::envelope as core_envelope;
pub use fleet_agent_core::envelope::PAYLOAD_TYPE;
use serde::{Deserialize, Serialize};

/// The largest envelope accepted anywhere (manifests are a few hundred bytes).
pub const MAX_ENVELOPE_BYTES: usize = 64 * 1024;

/// The most signatures one envelope may carry; more is abuse, not a release process.
pub use fleet_agent_core::MAX_SIGNATURES;

/// An envelope as it travels: base64 payload and signatures.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Envelope {
    #[serde(rename = "payloadType")]
    pub payload_type: String,
    pub payload: String,
    pub signatures: Vec<EnvelopeSignature>,
}

/// One signature entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct EnvelopeSignature {
    pub keyid: String,
    pub sig: String,
}

/// An envelope whose base64 fields decoded: its payload (the signatures were checked to
/// be well formed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedEnvelope {
    pub payload: Vec<u8>,
}

/// Why an envelope is malformed (before any signature is checked).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("envelope is larger than {MAX_ENVELOPE_BYTES} bytes")]
    TooLarge,
    #[error("envelope is not valid JSON: {0}")]
    Json(String),
    #[error("payloadType {0:?} is not the one expected here")]
    PayloadType(String),
    #[error("payload is not valid base64")]
    PayloadBase64,
    #[error("envelope has no signatures")]
    NoSignatures,
    #[error("envelope has more than {MAX_SIGNATURES} signatures")]
    TooManySignatures,
    #[error("signature {0} is not base64 of 64 bytes")]
    SignatureEncoding(usize),
}

/// Decodes standard or URL-safe base64, padded or not (CONTRACT §2 accepts both).
pub fn decode_base64(s: &str) -> Option<Vec<u8>> {
    let mut out = vec![0; s.len().div_ceil(4) * 3];
    let len = core_envelope::decode_base64(s, &mut out)?;
    out.truncate(len);
    Some(out)
}

/// Standard padded base64, what this project writes.
pub fn encode_base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// DSSE pre-authentication encoding:
/// `"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body`.
pub fn pae(payload_type: &str, body: &[u8]) -> Vec<u8> {
    let mut out = vec![0; core_envelope::pae_len(payload_type, body.len())];
    core_envelope::write_pae(payload_type, body, &mut out);
    out
}

impl Envelope {
    /// The device core's verdict on this envelope, in this crate's words.
    pub(crate) fn malformed(&self, e: core_envelope::EnvelopeError) -> EnvelopeError {
        use core_envelope::EnvelopeError as Core;
        match e {
            Core::PayloadType => EnvelopeError::PayloadType(self.payload_type.clone()),
            Core::Json => EnvelopeError::Json("not an envelope".into()),
            Core::PayloadBase64 => EnvelopeError::PayloadBase64,
            Core::NoSignatures => EnvelopeError::NoSignatures,
            Core::TooManySignatures => EnvelopeError::TooManySignatures,
            Core::SignatureEncoding(i) => EnvelopeError::SignatureEncoding(i),
        }
    }

    /// Parses envelope JSON, bounded in size.
    pub fn from_json(bytes: &[u8]) -> Result<Self, EnvelopeError> {
        if bytes.len() > MAX_ENVELOPE_BYTES {
            return Err(EnvelopeError::TooLarge);
        }
        serde_json::from_slice(bytes).map_err(|e| EnvelopeError::Json(e.to_string()))
    }

    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(self).expect("an envelope always serialises")
    }

    /// Checks the payload type (a manifest's) and decodes payload and signatures.
    pub fn decode(&self) -> Result<DecodedEnvelope, EnvelopeError> {
        self.decode_as(PAYLOAD_TYPE)
    }

    /// Checks that the payload type is `payload_type` and decodes payload and signatures.
    pub fn decode_as(&self, payload_type: &str) -> Result<DecodedEnvelope, EnvelopeError> {
        if self.payload_type != payload_type {
            return Err(EnvelopeError::PayloadType(self.payload_type.clone()));
        }
        let payload = decode_base64(&self.payload).ok_or(EnvelopeError::PayloadBase64)?;
        let parts: Vec<_> = self.core_signatures().collect();
        core_envelope::decode_signatures(&parts).map_err(|e| self.malformed(e))?;
        Ok(DecodedEnvelope { payload })
    }

    /// The signatures as the device core reads them, borrowed.
    pub fn core_signatures(&self) -> impl Iterator<Item = core_envelope::Signature<'_>> {
        self.signatures.iter().map(|s| core_envelope::Signature { keyid: &s.keyid, sig: &s.sig })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn pae_matches_dsse_spec_vector() {
        // From the DSSE protocol specification.
        assert_eq!(
            pae("http://example.com/HelloWorld", b"hello world"),
            b"DSSEv1 29 http://example.com/HelloWorld 11 hello world".to_vec()
        );
    }

    #[test]
    fn both_base64_alphabets_decode() {
        let bytes = [0xfb, 0xff, 0xfe];
        assert_eq!(decode_base64("+//+").unwrap(), bytes);
        assert_eq!(decode_base64("-__-").unwrap(), bytes);
        assert_eq!(decode_base64("aGk").unwrap(), b"hi");
        assert_eq!(decode_base64("aGk=").unwrap(), b"hi");
        assert!(decode_base64("a*b").is_none());
    }

    #[test]
    fn decode_checks_type_and_signatures() {
        let mut env = Envelope { payload_type: PAYLOAD_TYPE.into(), payload: encode_base64(b"{}"), signatures: vec![] };
        assert_eq!(env.decode(), Err(EnvelopeError::NoSignatures));
        env.signatures.push(EnvelopeSignature { keyid: "k".into(), sig: encode_base64(&[1; 63]) });
        assert_eq!(env.decode(), Err(EnvelopeError::SignatureEncoding(0)));
        env.signatures[0].sig = encode_base64(&[1; 64]);
        assert_eq!(env.decode().unwrap().payload, b"{}");
        env.payload_type = "text/plain".into();
        assert!(matches!(env.decode(), Err(EnvelopeError::PayloadType(_))));
    }

    #[test]
    fn rejects_unknown_fields_and_oversize() {
        let json = br#"{"payloadType":"x","payload":"","signatures":[],"extra":1}"#;
        assert!(matches!(Envelope::from_json(json), Err(EnvelopeError::Json(_))));
        let big = vec![b' '; MAX_ENVELOPE_BYTES + 1];
        assert_eq!(Envelope::from_json(&big), Err(EnvelopeError::TooLarge));
    }

    proptest! {
        #[test]
        fn from_json_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            if let Ok(env) = Envelope::from_json(&bytes) {
                let _ = env.decode();
            }
        }

        #[test]
        fn payload_round_trips(body in proptest::collection::vec(any::<u8>(), 0..256)) {
            let env = Envelope {
                payload_type: PAYLOAD_TYPE.into(),
                payload: encode_base64(&body),
                signatures: vec![EnvelopeSignature { keyid: "k".into(), sig: encode_base64(&[7; 64]) }],
            };
            let parsed = Envelope::from_json(env.to_json_pretty().as_bytes()).unwrap();
            prop_assert_eq!(parsed.decode().unwrap().payload, body);
        }
    }
}
