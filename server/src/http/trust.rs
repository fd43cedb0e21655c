//! `/trust`: trust documents (CONTRACT §11). The server keeps every version it accepted,
//! each checked by TUF's rule against the one before ([`fleet_protocol::trust`]); devices
//! fetch them with their own token, and the latest is announced on `{root}/trust` by
//! [`crate::trust_announce`] (never from this handler).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use fleet_protocol::trust::{self, TrustDocument, TrustError};
use fleet_protocol::{Envelope, ErrorCode, paths};

use super::error::{ApiError, OrNotFound as _};
use super::extract::ApiJson;
use super::routes::ApiRouter;
use crate::auth::{Admin, Caller};
use crate::state::AppState;
use crate::store::{StoreError, TrustRecord};

pub fn router() -> ApiRouter {
    ApiRouter::new().get(paths::TRUST, get(latest)).post(paths::TRUST, post(add)).get("/trust/{version}", get(one))
}

/// The stored envelope, as JSON.
fn envelope_response(status: StatusCode, record: &TrustRecord) -> Response {
    (status, [(CONTENT_TYPE, "application/json")], record.envelope_json.clone()).into_response()
}

/// `POST /trust`: stores the document [`judge`] accepts and has it announced.
async fn add(
    State(app): State<AppState>,
    admin: Admin,
    ApiJson(envelope): ApiJson<Envelope>,
) -> Result<Response, ApiError> {
    let latest = app.store.latest_trust().await?;
    let doc = judge(latest.as_ref(), &envelope, time::OffsetDateTime::now_utc())?;
    let record = TrustRecord {
        version: doc.version,
        envelope_json: serde_json::to_string(&envelope).expect("an envelope always serialises"),
        expires_at_ms: (doc.expires_at.unix_timestamp_nanos() / 1_000_000) as i64,
        created_at_ms: crate::now_ms(),
    };
    match app.store.insert_trust(&record).await {
        Err(StoreError::Conflict) => {
            return Err(ApiError::new(
                ErrorCode::TrustVersion,
                format!("version {} was stored meanwhile", doc.version),
            ));
        }
        other => other?,
    }
    app.audit(&admin, "trust.added", &doc.version.to_string(), serde_json::json!({})).await;
    app.announce_trust();
    Ok(envelope_response(StatusCode::CREATED, &record))
}

/// Version N+1 signed by the root thresholds of N and N+1, or the first document signed by
/// its own root. A version other than N+1 is refused before any signature is checked (its
/// claim is read, not trusted: it can only lead to a refusal).
fn judge(
    latest: Option<&TrustRecord>,
    envelope: &Envelope,
    now: time::OffsetDateTime,
) -> Result<TrustDocument, ApiError> {
    let Some(latest) = latest else {
        return Ok(trust::accept_initial(envelope, now)?);
    };
    let current = stored_document(latest)?;
    let claimed = trust::claimed_version(envelope)
        .ok_or_else(|| ApiError::from(TrustError::Malformed("the payload has no version".into())))?;
    if claimed != current.version + 1 {
        return Err(TrustError::Version { expected: current.version + 1, got: claimed }.into());
    }
    Ok(trust::accept_next(&current, envelope, now)?)
}

/// The document of a stored version (it was checked when stored).
fn stored_document(record: &TrustRecord) -> Result<TrustDocument, ApiError> {
    let corrupt = |e: String| ApiError::Internal(super::error::InternalError::new(format!("stored trust: {e}")));
    let envelope = Envelope::from_json(record.envelope_json.as_bytes()).map_err(|e| corrupt(e.to_string()))?;
    let payload = envelope.decode_as(trust::TRUST_PAYLOAD_TYPE).map_err(|e| corrupt(e.to_string()))?.payload;
    TrustDocument::from_slice(&payload).map_err(|e| corrupt(e.to_string()))
}

/// `GET /trust`: the latest version, for operators and devices.
async fn latest(State(app): State<AppState>, _: Caller) -> Result<Response, ApiError> {
    let latest = app.store.latest_trust().await?.ok_or_else(|| ApiError::not_found("trust document"))?;
    Ok(envelope_response(StatusCode::OK, &latest))
}

/// `GET /trust/{version}`, for operators and devices.
async fn one(State(app): State<AppState>, _: Caller, Path(raw): Path<String>) -> Result<Response, ApiError> {
    let version: u64 = raw.parse().map_err(|_| ApiError::bad_request("a trust version is a positive integer"))?;
    let record = app.store.get_trust(version).await.or_not_found(|| format!("trust document version {version}"))?;
    Ok(envelope_response(StatusCode::OK, &record))
}
