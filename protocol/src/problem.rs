//! The RFC 9457 `application/problem+json` body and the stable error codes (CONTRACT §3).

use serde::{Deserialize, Serialize};

/// The media type of every error response.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// A stable, machine-readable error code. Clients match on these, never on `detail`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    BadEnvelope,
    BadManifest,
    BadRequest,
    InvalidId,
    Unauthorized,
    Forbidden,
    NotFound,
    /// A device id or release key that is already registered (not named by the contract;
    /// see docs/api.md).
    AlreadyExists,
    VersionExists,
    InUse,
    DeviceBusy,
    KeyRevoked,
    /// A rollout control that its current state does not allow (not named by the
    /// contract; see docs/decisions.md).
    InvalidState,
    TooLarge,
    /// Too many failed attempts in a short time (not named by the contract; see
    /// docs/decisions.md).
    TooManyRequests,
    UntrustedKey,
    SignatureInvalid,
    /// A trust document whose version is not the latest plus one (CONTRACT §11).
    TrustVersion,
    /// An expired trust document (CONTRACT §11).
    TrustExpired,
    DigestMismatch,
    SizeMismatch,
    InsufficientStorage,
    Internal,
    /// 405: the path exists, the method does not (not named by the contract; see
    /// docs/decisions.md).
    MethodNotAllowed,
    /// 414: the request target is longer than the server reads.
    UriTooLong,
    /// 416: a `Range` the file cannot satisfy.
    RangeNotSatisfiable,
    /// 431: the request headers are larger than the server reads.
    HeadersTooLarge,
}

impl ErrorCode {
    /// The HTTP status that always goes with this code.
    pub fn status(self) -> u16 {
        use ErrorCode::*;
        match self {
            BadEnvelope | BadManifest | BadRequest | InvalidId => 400,
            Unauthorized => 401,
            Forbidden => 403,
            NotFound => 404,
            AlreadyExists | VersionExists | InUse | DeviceBusy | KeyRevoked | InvalidState | TrustVersion => 409,
            MethodNotAllowed => 405,
            TooLarge => 413,
            UriTooLong => 414,
            RangeNotSatisfiable => 416,
            TooManyRequests => 429,
            HeadersTooLarge => 431,
            UntrustedKey | SignatureInvalid | TrustExpired | DigestMismatch | SizeMismatch => 422,
            Internal => 500,
            InsufficientStorage => 507,
        }
    }

    pub fn as_str(self) -> &'static str {
        use ErrorCode::*;
        match self {
            BadEnvelope => "bad_envelope",
            BadManifest => "bad_manifest",
            BadRequest => "bad_request",
            InvalidId => "invalid_id",
            Unauthorized => "unauthorized",
            Forbidden => "forbidden",
            NotFound => "not_found",
            AlreadyExists => "already_exists",
            VersionExists => "version_exists",
            InUse => "in_use",
            DeviceBusy => "device_busy",
            KeyRevoked => "key_revoked",
            InvalidState => "invalid_state",
            TooLarge => "too_large",
            TooManyRequests => "too_many_requests",
            UntrustedKey => "untrusted_key",
            SignatureInvalid => "signature_invalid",
            TrustVersion => "trust_version",
            TrustExpired => "trust_expired",
            DigestMismatch => "digest_mismatch",
            SizeMismatch => "size_mismatch",
            InsufficientStorage => "insufficient_storage",
            Internal => "internal",
            MethodNotAllowed => "method_not_allowed",
            UriTooLong => "uri_too_long",
            RangeNotSatisfiable => "range_not_satisfiable",
            HeadersTooLarge => "headers_too_large",
        }
    }

    /// A short human title, the same for every occurrence of the code.
    pub fn title(self) -> &'static str {
        use ErrorCode::*;
        match self {
            BadEnvelope => "Malformed signed envelope",
            BadManifest => "Malformed manifest",
            BadRequest => "Bad request",
            InvalidId => "Invalid identifier",
            Unauthorized => "Missing or unknown token",
            Forbidden => "Not allowed for this token",
            NotFound => "Not found",
            AlreadyExists => "Already exists",
            VersionExists => "Version already uploaded",
            InUse => "In use by a rollout",
            DeviceBusy => "Device is in another rollout",
            KeyRevoked => "Signing key revoked",
            InvalidState => "Not allowed in the current state",
            TooLarge => "Too large",
            TooManyRequests => "Too many attempts",
            UntrustedKey => "No trusted key signed",
            SignatureInvalid => "Signature invalid",
            TrustVersion => "Not the next trust version",
            TrustExpired => "Trust document expired",
            DigestMismatch => "SHA-256 mismatch",
            SizeMismatch => "Size mismatch",
            InsufficientStorage => "Insufficient storage",
            Internal => "Internal error",
            MethodNotAllowed => "Method not allowed",
            UriTooLong => "Request target too long",
            RangeNotSatisfiable => "Range not satisfiable",
            HeadersTooLarge => "Request headers too large",
        }
    }
}

/// An RFC 9457 problem body with the contract's `code` member.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Problem {
    #[serde(rename = "type")]
    pub type_uri: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    pub code: ErrorCode,
    /// With `device_busy`: the rollouts holding the devices.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollouts: Option<Vec<String>>,
}

impl Problem {
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        Self {
            type_uri: format!("urn:fleet-ota:problem:{}", code.as_str()),
            title: code.title().into(),
            status: code.status(),
            detail: detail.into(),
            code,
            rollouts: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serialises_contract_members() {
        let v = serde_json::to_value(Problem::new(ErrorCode::VersionExists, "gateway-os 1.4.2")).unwrap();
        assert_eq!(v["status"], 409);
        assert_eq!(v["code"], "version_exists");
        assert_eq!(v["type"], "urn:fleet-ota:problem:version_exists");
        assert!(v.get("rollouts").is_none());
    }

    #[test]
    fn as_str_matches_serde() {
        for c in [ErrorCode::BadEnvelope, ErrorCode::InsufficientStorage, ErrorCode::AlreadyExists] {
            assert_eq!(serde_json::to_value(c).unwrap(), c.as_str());
        }
    }
}
