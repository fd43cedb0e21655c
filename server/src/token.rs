//! Bearer tokens as values (CONTRACT §3): random 256-bit secrets with a recognisable prefix,
//! shown once and stored only as SHA-256 hex. Who presents a token is decided by
//! [`crate::auth`]; this module only makes and hashes them.

use base64::Engine as _;
use fleet_protocol::Sha256Digest;

use crate::random::{self, RandomnessError};

/// Prefix of device tokens, so a leaked one is recognisable (e.g. by secret scanners).
pub const DEVICE_TOKEN_PREFIX: &str = "fleet_dev_";
/// Prefix of generated admin tokens.
pub const ADMIN_TOKEN_PREFIX: &str = "fleet_admin_";
/// Prefix of named operator tokens.
pub const OPERATOR_TOKEN_PREFIX: &str = "fleet_op_";
/// The name under which the admin token is stored.
pub const ADMIN_TOKEN_NAME: &str = "admin";

/// A fresh random token: the prefix and 256 random bits, URL-safe base64.
pub fn generate_token(prefix: &str) -> Result<String, RandomnessError> {
    let bytes = random::bytes::<32>()?;
    Ok(format!("{prefix}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)))
}

/// What is stored for a token: its SHA-256, lowercase hex.
pub fn hash_token(token: &str) -> String {
    Sha256Digest::of(token.as_bytes()).to_hex()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_carry_their_prefix_and_differ() {
        let (a, b) = (generate_token(DEVICE_TOKEN_PREFIX).unwrap(), generate_token(DEVICE_TOKEN_PREFIX).unwrap());
        assert!(a.starts_with(DEVICE_TOKEN_PREFIX));
        assert_eq!(a.len(), DEVICE_TOKEN_PREFIX.len() + 43);
        assert_ne!(a, b);
        assert_eq!(hash_token(&a).len(), 64);
    }
}
