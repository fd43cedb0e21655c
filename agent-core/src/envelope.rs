//! The DSSE envelope (CONTRACT §2), read in place: its strings borrow from the received
//! bytes, its signatures fill a fixed-size list, and the pre-authentication encoding is
//! built in a buffer the caller owns.

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use heapless::Vec;
use serde::Deserialize;

use crate::MAX_SIGNATURES;

/// The payload type of every Fleet OTA manifest envelope.
pub const PAYLOAD_TYPE: &str = "application/vnd.fleet.manifest.v1+json";

/// An envelope as it travels, borrowing its strings from the JSON it was read from.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Envelope<'a> {
    #[serde(rename = "payloadType")]
    pub payload_type: &'a str,
    pub payload: &'a str,
    pub signatures: Vec<Signature<'a>, MAX_SIGNATURES>,
}

/// One signature entry: the key's id and the signature, both as sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signature<'a> {
    pub keyid: &'a str,
    pub sig: &'a str,
}

/// Why an envelope is malformed (before any signature is checked).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("envelope is not valid JSON, or has more than {MAX_SIGNATURES} signatures")]
    Json,
    #[error("payloadType is not the one expected here")]
    PayloadType,
    #[error("payload is not valid base64, or larger than the buffer")]
    PayloadBase64,
    #[error("envelope has no signatures")]
    NoSignatures,
    #[error("envelope has more than {MAX_SIGNATURES} signatures")]
    TooManySignatures,
    #[error("signature {0} is not base64 of 64 bytes")]
    SignatureEncoding(usize),
}

impl<'a> Envelope<'a> {
    /// An envelope of these parts; `None` with more than [`MAX_SIGNATURES`] signatures.
    pub fn from_parts(
        payload_type: &'a str,
        payload: &'a str,
        signatures: impl IntoIterator<Item = Signature<'a>>,
    ) -> Option<Self> {
        let mut list = Vec::new();
        for signature in signatures {
            list.push(signature).ok()?;
        }
        Some(Self { payload_type, payload, signatures: list })
    }

    /// Reads envelope JSON. Strings with JSON escapes are refused: base64 and the payload
    /// type never need them.
    pub fn from_json(json: &'a [u8]) -> Result<Self, EnvelopeError> {
        match serde_json_core::from_slice(json) {
            Ok((envelope, _)) => Ok(envelope),
            Err(_) => Err(EnvelopeError::Json),
        }
    }
}

fn engine(alphabet: &base64::alphabet::Alphabet) -> GeneralPurpose {
    let config = GeneralPurposeConfig::new()
        .with_decode_padding_mode(DecodePaddingMode::Indifferent)
        .with_decode_allow_trailing_bits(false);
    GeneralPurpose::new(alphabet, config)
}

/// Decodes standard or URL-safe base64, padded or not (CONTRACT §2 accepts both), into
/// `out`; the decoded length, or `None`.
pub fn decode_base64(s: &str, out: &mut [u8]) -> Option<usize> {
    let standard = engine(&base64::alphabet::STANDARD).decode_slice(s, out);
    standard.or_else(|_| engine(&base64::alphabet::URL_SAFE).decode_slice(s, out)).ok()
}

/// A signature's 64 bytes.
pub fn decode_signature(s: &str) -> Option<[u8; 64]> {
    // Room for one byte more than a signature, so a longer one is seen as longer.
    let mut raw = [0u8; 65];
    (decode_base64(s, &mut raw)? == 64).then(|| raw[..64].try_into().expect("64 bytes"))
}

/// Each signature's key id and bytes, refusing the envelope when it has none, more than
/// [`MAX_SIGNATURES`], or one that is not 64 bytes.
pub fn decode_signatures<'s>(
    signatures: &[Signature<'s>],
) -> Result<Vec<KeySignature<'s>, MAX_SIGNATURES>, EnvelopeError> {
    if signatures.is_empty() {
        return Err(EnvelopeError::NoSignatures);
    }
    let mut out = Vec::new();
    for (i, s) in signatures.iter().enumerate() {
        let sig = decode_signature(s.sig).ok_or(EnvelopeError::SignatureEncoding(i))?;
        out.push((s.keyid, sig)).map_err(|_| EnvelopeError::TooManySignatures)?;
    }
    Ok(out)
}

/// A key id as sent and the 64 bytes of its signature.
pub type KeySignature<'s> = (&'s str, [u8; 64]);

/// The length of `PAE(payload_type, body)` for a body of `body_len` bytes.
pub fn pae_len(payload_type: &str, body_len: usize) -> usize {
    pae_header(payload_type, body_len).len() + body_len
}

/// Writes DSSE's pre-authentication encoding
/// `"DSSEv1" SP LEN(type) SP type SP LEN(body) SP body` into `out`, which is exactly
/// [`pae_len`] long, and the body at its end.
pub fn write_pae(payload_type: &str, body: &[u8], out: &mut [u8]) {
    let header = pae_header(payload_type, body.len());
    let (head, tail) = out.split_at_mut(out.len() - body.len());
    header.write(head);
    tail.copy_from_slice(body);
}

/// Everything of the encoding before the body.
pub(crate) fn pae_header(payload_type: &str, body_len: usize) -> PaeHeader<'_> {
    PaeHeader { payload_type, type_len: Decimal::of(payload_type.len()), body_len: Decimal::of(body_len) }
}

pub(crate) struct PaeHeader<'a> {
    payload_type: &'a str,
    type_len: Decimal,
    body_len: Decimal,
}

impl PaeHeader<'_> {
    fn parts(&self) -> [&[u8]; 7] {
        let (type_len, body_len) = (self.type_len.as_bytes(), self.body_len.as_bytes());
        [b"DSSEv1 ", type_len, b" ", self.payload_type.as_bytes(), b" ", body_len, b" "]
    }

    /// The header's length.
    pub(crate) fn len(&self) -> usize {
        self.parts().iter().map(|p| p.len()).sum()
    }

    /// Writes the header into `out`, exactly [`PaeHeader::len`] long.
    pub(crate) fn write(&self, out: &mut [u8]) {
        let mut at = 0;
        for part in self.parts() {
            out[at..at + part.len()].copy_from_slice(part);
            at += part.len();
        }
    }
}

/// A `usize` in decimal digits, without an allocator.
struct Decimal {
    digits: [u8; 20],
    start: usize,
}

impl Decimal {
    fn of(mut n: usize) -> Self {
        let mut digits = [0u8; 20];
        let mut start = digits.len();
        loop {
            start -= 1;
            digits[start] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                return Self { digits, start };
            }
        }
    }

    fn as_bytes(&self) -> &[u8] {
        &self.digits[self.start..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pae_matches_the_dsse_specification_vector() {
        let body = b"hello world";
        let mut out = [0u8; 64];
        let len = pae_len("http://example.com/HelloWorld", body.len());
        write_pae("http://example.com/HelloWorld", body, &mut out[..len]);
        assert_eq!(&out[..len], b"DSSEv1 29 http://example.com/HelloWorld 11 hello world");
    }

    #[test]
    fn both_base64_alphabets_decode() {
        let mut out = [0u8; 8];
        assert_eq!(decode_base64("+//+", &mut out), Some(3));
        assert_eq!(&out[..3], [0xfb, 0xff, 0xfe]);
        assert_eq!(decode_base64("-__-", &mut out), Some(3));
        assert_eq!(decode_base64("aGk", &mut out), Some(2));
        assert_eq!(decode_base64("aGk=", &mut out), Some(2));
        assert_eq!(decode_base64("a*b", &mut out), None);
        assert_eq!(decode_base64("aGVsbG8gd29ybGQ=", &mut out), None, "longer than the buffer");
    }

    #[test]
    fn an_envelope_is_read_in_place_with_unknown_fields_refused() {
        let json = br#"{"payloadType":"t","payload":"aGk=","signatures":[{"keyid":"k","sig":"c2ln"}]}"#;
        let envelope = Envelope::from_json(json).unwrap();
        assert_eq!((envelope.payload_type, envelope.payload), ("t", "aGk="));
        assert_eq!(envelope.signatures[0], Signature { keyid: "k", sig: "c2ln" });
        let extra = br#"{"payloadType":"t","payload":"","signatures":[],"extra":1}"#;
        assert_eq!(Envelope::from_json(extra), Err(EnvelopeError::Json));
    }
}
