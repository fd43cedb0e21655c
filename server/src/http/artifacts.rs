//! `/firmware` and `/configs`: signed artifacts, their records and their blobs.
//! Both kinds share every handler; the route decides the kind.

use axum::Json;
use axum::extract::{FromRequest as _, Multipart, Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};

use super::routes::ApiRouter;
use fleet_protocol::{ArtifactKind, ProductName};
use serde::Deserialize;
use tower::ServiceExt as _;
use tower_http::services::ServeFile;

use super::error::{ApiError, InternalError, OrNotFound as _};
use super::extract::{ApiQuery, page_request};
use super::upload;
use super::upload_budget::UploadBudget;
use super::views;
use crate::auth::{Admin, AuthError, Caller, Operator};
use crate::state::AppState;
use crate::store::StoreError;
use fleet_protocol::api::{ArtifactInfo, List};

pub fn router(kind: ArtifactKind, device_gate: &super::DeviceGate) -> ApiRouter {
    let base = fleet_protocol::paths::artifacts(kind);
    ApiRouter::new()
        .get(&base, get(move |app: State<AppState>, op: Operator, q: ApiQuery<ListQuery>| list(kind, app, op, q)))
        .post(
            &base,
            post(move |app: State<AppState>, admin: Admin, req: Request| create(kind, app, admin, req))
                // Uploads enforce their own limits (signed size, --max-artifact-size).
                .layer(axum::extract::DefaultBodyLimit::disable()),
        )
        .get(
            &format!("{base}/{{id}}"),
            get(move |app: State<AppState>, op: Operator, id: Path<String>| show(kind, app, op, id)),
        )
        .delete(
            &format!("{base}/{{id}}"),
            delete(move |app: State<AppState>, admin: Admin, id: Path<String>| remove(kind, app, admin, id)),
        )
        .get(
            &format!("{base}/{{id}}/blob"),
            get(move |app: State<AppState>, caller: Caller, id: Path<String>, req: Request| {
                blob(kind, app, caller, id, req)
            })
            // Held until the response starts: the body streams without it.
            .route_layer(device_gate.clone()),
        )
}

async fn create(
    kind: ArtifactKind,
    State(app): State<AppState>,
    admin: Admin,
    req: Request,
) -> Result<(StatusCode, Json<ArtifactInfo>), ApiError> {
    let budget = UploadBudget::default();
    let req = req.map(|body| budget.meter(body));
    let multipart = Multipart::from_request(req, &()).await.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let record = upload::receive(&app, kind, multipart, &budget).await?;
    app.metrics.upload_bytes.inc_by(record.manifest.size);
    let m = &record.manifest;
    let details = serde_json::json!({"kind": kind.as_str(), "name": m.name.as_str(), "version": m.version.to_string(),
        "size": m.size, "sha256": m.sha256.to_hex()});
    app.audit(&admin, "artifact.uploaded", &record.id, details).await;
    if kind == ArtifactKind::Firmware {
        app.ha_firmware_changed();
    }
    Ok((StatusCode::CREATED, Json(views::artifact(record))))
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    name: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

async fn list(
    kind: ArtifactKind,
    State(app): State<AppState>,
    _: Operator,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<List<ArtifactInfo>>, ApiError> {
    let name = q.name.map(ProductName::parse).transpose().map_err(|e| ApiError::invalid_id("name", e))?;
    let page = app.store.list_artifacts(kind, name.as_ref(), &page_request(q.limit, q.cursor)?).await?;
    Ok(Json(views::list(page, |a| ArtifactInfo { envelope: None, ..views::artifact(a) })))
}

async fn show(
    kind: ArtifactKind,
    State(app): State<AppState>,
    _: Operator,
    Path(id): Path<String>,
) -> Result<Json<ArtifactInfo>, ApiError> {
    let record = app.store.get_artifact(kind, &id).await.or_not_found(|| format!("{kind} {id}"))?;
    Ok(Json(views::artifact(record)))
}

/// Deletes the record, then the blob if no other artifact shares its bytes.
async fn remove(
    kind: ArtifactKind,
    State(app): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let using = app.store.rollouts_using(&id).await?;
    if !using.is_empty() {
        return Err(ApiError::new(
            fleet_protocol::ErrorCode::InUse,
            format!("{kind} {id} is used by rollouts still running, paused or winding down: {}", using.join(", ")),
        ));
    }
    let _lifecycle = app.blobs.lock().await?;
    let record = match app.store.delete_artifact(kind, &id).await {
        Err(StoreError::Referenced) => Err(ApiError::new(
            fleet_protocol::ErrorCode::InUse,
            format!("{kind} {id} is used by a rollout still running, paused or winding down"),
        )),
        deleted => deleted.or_not_found(|| format!("{kind} {id}")),
    }?;
    app.artifacts.forget(&id);
    app.sent_artifacts.forget_all();
    let digest = record.manifest.sha256;
    if !app.store.blob_referenced(&digest.to_hex()).await? {
        app.blobs.remove(&digest).await?;
    }
    app.audit(&admin, "artifact.deleted", &id, serde_json::json!({"kind": kind.as_str()})).await;
    if kind == ArtifactKind::Firmware {
        app.ha_firmware_changed();
    }
    Ok(StatusCode::NO_CONTENT)
}

/// A device that was never sent a command of this artifact gets 403, whether the artifact
/// exists or not (CONTRACT §3: another device's resource), so it learns nothing of others.
async fn may_download(app: &AppState, caller: &Caller, kind: ArtifactKind, id: &str) -> Result<(), ApiError> {
    match caller {
        Caller::Operator(_) => Ok(()),
        Caller::Device(device) if app.sent_artifacts.was_sent(device, kind, id) => Ok(()),
        Caller::Device(device) if app.store.was_sent_artifact(device, kind, id).await? => Ok(()),
        Caller::Device(_) => Err(AuthError::NotSentToDevice.into()),
    }
}

/// Most bytes read from a blob per chunk sent: larger than tower-http's 64 KiB default, so
/// a large download costs fewer reads, allocations and writes (see BENCHMARKS.md).
const DOWNLOAD_CHUNK: usize = 1 << 20;

/// The bytes, with Range (206) and a strong ETag: blobs are immutable and content-addressed.
/// Operators may fetch any; a device only the artifact of a command it was sent.
async fn blob(
    kind: ArtifactKind,
    State(app): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    req: Request,
) -> Result<Response, ApiError> {
    may_download(&app, &caller, kind, &id).await?;
    let record = app.artifacts.get(app.store.as_ref(), kind, &id).await.or_not_found(|| format!("{kind} {id}"))?;
    let etag = HeaderValue::from_str(&format!("\"{}\"", record.manifest.sha256))
        .map_err(|e| InternalError::caused_by("an ETag header", e))?;
    if req.headers().get(header::IF_NONE_MATCH).is_some_and(|v| v == etag || v == "*") {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response());
    }
    let path = app.blobs.path(&record.manifest.sha256);
    if !tokio::fs::try_exists(&path).await? {
        // Deleted meanwhile (perhaps by another replica)? Records never change, so the
        // store only has to say whether this one still exists.
        app.artifacts.forget(&id);
        app.store.get_artifact(kind, &id).await.or_not_found(|| format!("{kind} {id}"))?;
        return Err(InternalError::new(format!("blob {} of {kind} {id} is missing", record.manifest.sha256)).into());
    }
    // Never a buffer larger than the blob: thousands of devices fetch small blobs at once.
    let chunk = usize::try_from(record.manifest.size).unwrap_or(DOWNLOAD_CHUNK).clamp(8 << 10, DOWNLOAD_CHUNK);
    let serve = ServeFile::new(path).with_buf_chunk_size(chunk);
    let mut response =
        serve.oneshot(req).await.map_err(|e| InternalError::caused_by("serving a blob", e))?.into_response();
    if response.status().is_success() {
        let headers = response.headers_mut();
        headers.insert(header::ETAG, etag);
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/octet-stream"));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, max-age=31536000, immutable"));
        let length = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        app.metrics.download_bytes.inc_by(length.unwrap_or(0));
    }
    Ok(response)
}
