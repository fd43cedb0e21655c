//! [`ApiError`]: every failure a handler returns, mapped to HTTP in one place.
//!
//! Client errors carry a stable [`ErrorCode`] and a precise detail; internal causes are
//! logged and answered with a generic 500, never sent to the client. A storage error is
//! mapped here once: [`OrNotFound::or_not_found`] names what was missing.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use fleet_protocol::problem::PROBLEM_JSON;
use fleet_protocol::trust::TrustError;
use fleet_protocol::verify::VerifyError;
use fleet_protocol::{ErrorCode, IdError, ManifestError, Problem};

use crate::auth::AuthError;
use crate::credentials::CredentialsError;
use crate::random::RandomnessError;
use crate::rollout::error::RolloutError;
use crate::store::StoreError;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// An error answered as RFC 9457 problem+json.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{code:?}: {detail}")]
    Problem { code: ErrorCode, detail: String },
    /// 409 `device_busy`, naming the rollouts that hold the devices.
    #[error("device_busy: {detail}")]
    Busy { detail: String, rollouts: Vec<String> },
    #[error(transparent)]
    Internal(#[from] InternalError),
}

/// A failure that is the server's fault: what was being done, and why it failed. Logged
/// with every cause; the client only learns that it happened.
#[derive(Debug, thiserror::Error)]
#[error("{context}")]
pub struct InternalError {
    context: String,
    #[source]
    source: Option<BoxError>,
}

impl InternalError {
    /// A failure with no underlying error (e.g. a blob missing from disk).
    pub fn new(context: impl Into<String>) -> Self {
        Self { context: context.into(), source: None }
    }

    /// `context` failed because of `source`.
    pub fn caused_by(context: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Self { context: context.into(), source: Some(source.into()) }
    }

    /// The context and every cause, `a: b: c`.
    fn chain(&self) -> String {
        let mut out = self.context.clone();
        let mut cause = std::error::Error::source(self);
        while let Some(e) = cause {
            out.push_str(&format!(": {e}"));
            cause = e.source();
        }
        out
    }
}

/// `Result<T, StoreError>` to `Result<T, ApiError>`, naming what a missing row was.
pub trait OrNotFound<T> {
    /// `NotFound` becomes 404 "`what()` not found"; other errors map as usual.
    fn or_not_found(self, what: impl FnOnce() -> String) -> Result<T, ApiError>;
}

impl<T> OrNotFound<T> for Result<T, StoreError> {
    fn or_not_found(self, what: impl FnOnce() -> String) -> Result<T, ApiError> {
        self.map_err(|e| match e {
            StoreError::NotFound => ApiError::not_found(what()),
            e => e.into(),
        })
    }
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
        let detail =
            format!("{} devices are in a scheduled, running or paused rollout: {}", busy.len(), devices.join(", "));
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
                tracing::error!(error = e.chain(), "internal error");
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
            e => Self::Internal(InternalError::caused_by("storage", e)),
        }
    }
}

impl From<RolloutError> for ApiError {
    fn from(e: RolloutError) -> Self {
        use RolloutError as E;
        let code = match e {
            E::Store(e) => return e.into(),
            E::DevicesBusy(busy) => return Self::device_busy(&busy),
            E::NoId(_) | E::Encode(_) => return Self::Internal(InternalError::caused_by("creating a rollout", e)),
            E::Invalid(_) | E::UnknownDevices(_) => ErrorCode::BadRequest,
            E::InvalidDeviceId(_) | E::InvalidHardware(_) => ErrorCode::InvalidId,
            E::UnknownArtifact { .. } | E::UnknownRollout(_) | E::UnknownEntry { .. } => ErrorCode::NotFound,
            E::KeyRevoked { .. } => ErrorCode::KeyRevoked,
            E::NotAllowed { .. } | E::DeviceNotAllowed { .. } | E::Contended(_) => ErrorCode::InvalidState,
        };
        Self::new(code, e.to_string())
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        let code = match e {
            AuthError::MissingToken | AuthError::UnknownToken => ErrorCode::Unauthorized,
            AuthError::NotAnOperator | AuthError::ReadOnly(_) | AuthError::OtherDevice | AuthError::NotSentToDevice => {
                ErrorCode::Forbidden
            }
            AuthError::Store(e) => return e.into(),
        };
        Self::new(code, e.to_string())
    }
}

/// The extractors' rejection.
impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        ApiError::from(self).into_response()
    }
}

impl From<CredentialsError> for ApiError {
    fn from(e: CredentialsError) -> Self {
        match e {
            CredentialsError::AlreadyRegistered(_) => Self::new(ErrorCode::AlreadyExists, e.to_string()),
            CredentialsError::UnknownDevice(id) => Self::not_found(format!("device {id}")),
            CredentialsError::NoDeviceCa => Self::not_found("device certificates (no device CA)"),
            CredentialsError::Certificate(
                ref c @ (crate::device_ca::SignError::BadCsr(_) | crate::device_ca::SignError::WrongName(_)),
            ) => Self::bad_request(c.to_string()),
            e => Self::Internal(InternalError::caused_by("changing device credentials", e)),
        }
    }
}

impl From<RandomnessError> for ApiError {
    fn from(e: RandomnessError) -> Self {
        Self::Internal(InternalError::caused_by("making a secret or an id", e))
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

impl From<TrustError> for ApiError {
    fn from(e: TrustError) -> Self {
        let code = match e {
            TrustError::Malformed(_) => ErrorCode::BadManifest,
            TrustError::SignatureInvalid { .. } => ErrorCode::SignatureInvalid,
            TrustError::Version { .. } => ErrorCode::TrustVersion,
            TrustError::Expired { .. } => ErrorCode::TrustExpired,
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
        Self::Internal(InternalError::caused_by("I/O", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_row_is_named_and_other_store_errors_map_as_usual() {
        let missing: Result<(), StoreError> = Err(StoreError::NotFound);
        let e = missing.or_not_found(|| "device dev-1".into()).unwrap_err();
        assert_eq!((e.code(), e.to_string()), (ErrorCode::NotFound, "NotFound: device dev-1 not found".into()));
        let taken: Result<(), StoreError> = Err(StoreError::Conflict);
        assert_eq!(taken.or_not_found(|| unreachable!()).unwrap_err().code(), ErrorCode::AlreadyExists);
    }

    #[test]
    fn refused_callers_get_401_or_403() {
        assert_eq!(ApiError::from(AuthError::UnknownToken).status_code(), StatusCode::UNAUTHORIZED);
        assert_eq!(ApiError::from(AuthError::ReadOnly("ci".into())).status_code(), StatusCode::FORBIDDEN);
    }

    #[test]
    fn internal_errors_log_every_cause() {
        let io = std::io::Error::other("disk on fire");
        let e = InternalError::caused_by("writing a blob", io);
        assert_eq!(e.chain(), "writing a blob: disk on fire");
    }
}
