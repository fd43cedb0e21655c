//! Webhooks (CONTRACT §10, Standard Webhooks 1.0): what an endpoint may be, its secret,
//! the ids of deliveries ([`sign`] signs them, [`deliver`] sends the outbox).

pub mod deliver;
pub mod sign;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use fleet_protocol::topic::is_loopback_host;

use crate::random::{self, RandomnessError};

/// The prefix of a webhook secret.
pub const SECRET_PREFIX: &str = "whsec_";

/// Why a webhook URL is refused.
#[derive(Debug, thiserror::Error)]
pub enum UrlError {
    #[error("url: {0}")]
    Parse(String),
    #[error("url: https://, or http:// to a loopback host (localhost, 127.0.0.0/8, ::1)")]
    Scheme,
}

/// An endpoint: `https://HOST…`, or `http://` only to this machine (nothing in the clear
/// leaves it).
pub fn check_url(url: &str) -> Result<reqwest::Url, UrlError> {
    let parsed = reqwest::Url::parse(url).map_err(|e| UrlError::Parse(e.to_string()))?;
    let host = parsed.host_str().unwrap_or_default();
    match parsed.scheme() {
        "https" if !host.is_empty() => Ok(parsed),
        "http" if is_loopback_host(host) => Ok(parsed),
        _ => Err(UrlError::Scheme),
    }
}

/// `whsec_` + base64 of 32 random bytes.
pub fn new_secret() -> Result<String, RandomnessError> {
    Ok(format!("{SECRET_PREFIX}{}", STANDARD.encode(random::bytes::<32>()?)))
}

/// A webhook's id.
pub fn webhook_id() -> Result<String, RandomnessError> {
    Ok(format!("wh_{}", random::new_id()?))
}

/// A delivery's id (the `webhook-id` header): ids sort by creation time.
pub fn delivery_id() -> Result<String, RandomnessError> {
    Ok(format!("msg_{}", random::new_id()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert!(check_url("https://hooks.example.com/x").is_ok());
        assert!(check_url("http://127.0.0.1:8080/hook").is_ok());
        assert!(check_url("http://localhost/hook").is_ok());
        assert!(check_url("http://[::1]:9/hook").is_ok());
        assert!(matches!(check_url("http://hooks.example.com/x"), Err(UrlError::Scheme)));
        assert!(matches!(check_url("ftp://127.0.0.1/x"), Err(UrlError::Scheme)));
        assert!(matches!(check_url("not a url"), Err(UrlError::Parse(_))));
        let secret = new_secret().unwrap();
        assert_eq!(STANDARD.decode(secret.strip_prefix(SECRET_PREFIX).unwrap()).unwrap().len(), 32);
    }
}
