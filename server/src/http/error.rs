//! [`ApiError`]: every failure a handler returns, mapped to HTTP in one place.
//!
//! Client errors carry a stable [`ErrorCode`] and a precise detail; internal causes are
//! logged and answered with a generic 500, never sent to the client.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use fleet_protocol::problem::PROBLEM_JSON;
use fleet_protocol::verify::VerifyError;
use fleet_protocol::{ErrorCode, IdError, ManifestError, Problem};

use crate::rollout::error::RolloutError;
use crate::store::StoreError;

/// An error answered as RFC 9457 problem+json.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{code:?}: {detail}")]
    Problem { code: ErrorCode, detail: String },
    /// 409 `device_busy`, naming the rollouts that hold the devices.
    #[error("device_busy: {detail}")]
    Busy { detail: String, rollouts: Vec<String> },
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        Self::Problem { code, detail: detail.into() }
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, detail)
    }

    pub fn not_found(what: impl std::fmt::Display) -> Self {
        Self::new(ErrorCode::NotFound, format!("{what} not found"))
    }

    pub fn invalid_id(what: &str, e: IdError) -> Self {
        Self::new(ErrorCode::InvalidId, format!("invalid {what}: {e}"))
    }

    /// `device_busy` for `(device, rollout)` pairs.
    pub fn device_busy(busy: &[(String, String)]) -> Self {
        let mut rollouts: Vec<String> = busy.iter().map(|(_, r)| r.clone()).collect();
        rollouts.sort();
        rollouts.dedup();
        let devices: Vec<&str> = busy.iter().map(|(d, _)| d.as_str()).take(20).collect();
        let detail = format!("{} devices are in a running or paused rollout: {}", busy.len(), devices.join(", "));
        Self::Busy { detail, rollouts }
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Problem { code, .. } => *code,
            Self::Busy { .. } => ErrorCode::DeviceBusy,
            Self::Internal(_) => ErrorCode::Internal,
        }
    }

    pub fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.code().status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status_code();
        let problem = match self {
            Self::Problem { code, detail } => Problem::new(code, detail),
            Self::Busy { detail, rollouts } => {
                Problem { rollouts: Some(rollouts), ..Problem::new(ErrorCode::DeviceBusy, detail) }
            }
            Self::Internal(e) => {
                tracing::error!(error = format!("{e:#}"), "internal error");
                Problem::new(ErrorCode::Internal, "internal error; see the server log")
            }
        };
        let mut response = (status, axum::Json(problem)).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => Self::new(ErrorCode::NotFound, "not found"),
            StoreError::Conflict => Self::new(ErrorCode::AlreadyExists, "already exists"),
            StoreError::Referenced => Self::new(ErrorCode::InUse, "still referenced"),
            e => Self::Internal(e.into()),
        }
    }
}

impl From<RolloutError> for ApiError {
    fn from(e: RolloutError) -> Self {
        use RolloutError as E;
        let code = match e {
            E::Store(e) => return e.into(),
            E::DevicesBusy(busy) => return Self::device_busy(&busy),
            E::NoId(_) | E::Encode(_) => return Self::Internal(e.into()),
            E::Invalid(_) | E::UnknownDevices(_) => ErrorCode::BadRequest,
            E::InvalidDeviceId(_) | E::InvalidHardware(_) => ErrorCode::InvalidId,
            E::UnknownArtifact { .. } | E::UnknownRollout(_) => ErrorCode::NotFound,
            E::KeyRevoked { .. } => ErrorCode::KeyRevoked,
            E::NotAllowed { .. } => ErrorCode::InvalidState,
        };
        Self::new(code, e.to_string())
    }
}

impl From<VerifyError> for ApiError {
    fn from(e: VerifyError) -> Self {
        let code = match e {
            VerifyError::Malformed(_) => ErrorCode::BadEnvelope,
            VerifyError::UntrustedKey => ErrorCode::UntrustedKey,
            VerifyError::SignatureInvalid { .. } => ErrorCode::SignatureInvalid,
        };
        Self::new(code, e.to_string())
    }
}

impl From<ManifestError> for ApiError {
    fn from(e: ManifestError) -> Self {
        Self::new(ErrorCode::BadManifest, e.to_string())
    }
}

impl From<std::io::Error> for ApiError {
    fn from(e: std::io::Error) -> Self {
        Self::Internal(e.into())
    }
}
