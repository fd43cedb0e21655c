//! Ed25519 public keys and their ids (CONTRACT §2).
//!
//! Keys are PEM: SPKI `BEGIN PUBLIC KEY` for public keys — exactly what
//! `openssl pkey -pubout` writes. A key's id is the lowercase hex SHA-256 of the raw
//! 32-byte public key.

use std::fmt;

use ed25519_dalek::VerifyingKey;
use ed25519_dalek::pkcs8::{DecodePublicKey, EncodePublicKey, spki::der::pem::LineEnding};
use serde::{Deserialize, Deserializer, Serialize};

use crate::Sha256Digest;

/// A key id: lowercase hex SHA-256 of the raw public key.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyId(Sha256Digest);

impl KeyId {
    pub fn parse(s: &str) -> Option<Self> {
        Sha256Digest::parse(s).ok().map(Self)
    }

    pub fn as_hex(&self) -> String {
        self.0.to_hex()
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({})", self.0)
    }
}

impl Serialize for KeyId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for KeyId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Sha256Digest::deserialize(d).map(Self)
    }
}

/// Why a PEM document is not an Ed25519 public key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not an Ed25519 public key in PEM (BEGIN PUBLIC KEY): {0}")]
pub struct KeyError(pub String);

/// A trusted Ed25519 public key.
#[derive(Clone, PartialEq, Eq)]
pub struct PublicKey {
    key: VerifyingKey,
    id: KeyId,
}

impl PublicKey {
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        let key = VerifyingKey::from_public_key_pem(pem.trim()).map_err(|e| KeyError(e.to_string()))?;
        Ok(Self::from_verifying_key(key))
    }

    pub fn from_verifying_key(key: VerifyingKey) -> Self {
        let id = KeyId(Sha256Digest::of(key.as_bytes()));
        Self { key, id }
    }

    pub fn keyid(&self) -> &KeyId {
        &self.id
    }

    pub fn verifying_key(&self) -> &VerifyingKey {
        &self.key
    }

    /// SPKI PEM, as openssl writes it.
    pub fn to_pem(&self) -> String {
        self.key.to_public_key_pem(LineEnding::LF).expect("an Ed25519 key always encodes")
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 8032 test 1 public key, as `openssl pkey -pubout` prints it.
    const RFC8032_PUB: &str = "-----BEGIN PUBLIC KEY-----\n\
        MCowBQYDK2VwAyEA11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=\n\
        -----END PUBLIC KEY-----\n";

    #[test]
    fn loads_openssl_pem_and_computes_keyid() {
        let key = PublicKey::from_pem(RFC8032_PUB).unwrap();
        assert_eq!(
            hex::encode(key.verifying_key().as_bytes()),
            "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"
        );
        assert_eq!(key.keyid().as_hex(), Sha256Digest::of(key.verifying_key().as_bytes()).to_hex());
        assert_eq!(PublicKey::from_pem(&key.to_pem()).unwrap(), key);
    }

    #[test]
    fn rejects_garbage() {
        assert!(PublicKey::from_pem("not a key").is_err());
        assert!(PublicKey::from_pem("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n").is_err());
    }
}
