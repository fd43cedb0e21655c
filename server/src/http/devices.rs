//! `/devices`: the registry and inventory, token rotation, and each device's command.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};

use super::routes::ApiRouter;
use fleet_protocol::{DeviceId, ErrorCode, HardwareModel};
use serde::Deserialize;

use super::error::ApiError;
use super::extract::{ApiJson, device_id, page_request};
use super::views;
use crate::auth::{Admin, Caller, DEVICE_TOKEN_PREFIX, Operator, generate_token, hash_token};
use crate::state::AppState;
use crate::store::{DeviceFilter, NewDevice, StoreError, StoreResult};
use fleet_protocol::api::{DeviceInfo, DeviceWithToken, List};

/// At most this many labels per device.
pub const MAX_LABELS: usize = 32;

pub fn router(device_gate: &super::DeviceGate) -> ApiRouter {
    ApiRouter::new()
        .get("/devices", get(list))
        .post("/devices", post(register))
        .get("/devices/{id}", get(show))
        .delete("/devices/{id}", delete(decommission))
        .post("/devices/{id}/token", post(rotate_token))
        .get("/devices/{id}/command", get(command).route_layer(device_gate.clone()))
}

/// `POST /devices`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Register {
    id: String,
    hardware: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

/// Label keys follow the id rule (plus `/` for namespaces); values are short printable text.
fn check_labels(labels: &BTreeMap<String, String>) -> Result<(), ApiError> {
    if labels.len() > MAX_LABELS {
        return Err(ApiError::bad_request(format!("at most {MAX_LABELS} labels")));
    }
    for (k, v) in labels {
        let key_ok = !k.is_empty()
            && k.len() <= 64
            && k.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-' | b'/'));
        if !key_ok {
            return Err(ApiError::bad_request(format!(
                "label key {k:?} must be 1-64 characters of letters, digits, '.', '_', '-', '/'"
            )));
        }
        if v.chars().count() > 128 || v.chars().any(char::is_control) {
            return Err(ApiError::bad_request(format!("label {k:?}: value must be at most 128 printable characters")));
        }
    }
    Ok(())
}

fn broker_password_hash(token: &str) -> Result<String, ApiError> {
    crate::broker::mosquitto::password_hash(token).map_err(|e| ApiError::new(ErrorCode::Internal, e.to_string()))
}

async fn register(
    State(app): State<AppState>,
    admin: Admin,
    ApiJson(req): ApiJson<Register>,
) -> Result<(StatusCode, Json<DeviceWithToken>), ApiError> {
    let id = device_id(req.id)?;
    let hardware = HardwareModel::parse(req.hardware).map_err(|e| ApiError::invalid_id("hardware", e))?;
    check_labels(&req.labels)?;
    let token = generate_token(DEVICE_TOKEN_PREFIX)?;
    let new = NewDevice {
        id: id.clone(),
        hardware,
        labels: req.labels,
        token_hash: hash_token(&token),
        broker_password_hash: broker_password_hash(&token)?,
        created_at_ms: crate::now_ms(),
    };
    let device = app.store.insert_device(&new).await.map_err(|e| match e {
        StoreError::Conflict => ApiError::new(ErrorCode::AlreadyExists, format!("device {id} is already registered")),
        e => e.into(),
    })?;
    app.device_credentials_changed(None).await;
    let details = serde_json::json!({"hardware": device.hardware.as_str(), "labels": device.labels});
    app.audit(&admin, "device.registered", id.as_str(), details).await;
    Ok((StatusCode::CREATED, Json(DeviceWithToken { device: views::device(device), token })))
}

/// Parses `hardware=`, repeatable `label=key=value`, `limit=`, `cursor=`.
fn parse_list_query(raw: Option<&str>) -> Result<(DeviceFilter, Option<u32>, Option<String>), ApiError> {
    let mut filter = DeviceFilter::default();
    let (mut limit, mut cursor) = (None, None);
    for (k, v) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        match &*k {
            "hardware" => {
                filter.hardware =
                    Some(HardwareModel::parse(v.into_owned()).map_err(|e| ApiError::invalid_id("hardware", e))?)
            }
            "label" => {
                let (key, value) =
                    v.split_once('=').ok_or_else(|| ApiError::bad_request("label filters are label=key=value"))?;
                filter.labels.push((key.to_owned(), value.to_owned()));
            }
            "limit" => limit = Some(v.parse().map_err(|_| ApiError::bad_request("limit must be a number"))?),
            "cursor" => cursor = Some(v.into_owned()),
            other => {
                return Err(ApiError::bad_request(format!("unknown query parameter `{other}`")));
            }
        }
    }
    Ok((filter, limit, cursor))
}

async fn list(
    State(app): State<AppState>,
    _: Operator,
    RawQuery(raw): RawQuery,
) -> Result<Json<List<DeviceInfo>>, ApiError> {
    let (filter, limit, cursor) = parse_list_query(raw.as_deref())?;
    let page = app.store.list_devices(&filter, &page_request(limit, cursor)?).await?;
    Ok(Json(views::list(page, views::device)))
}

fn missing(id: &DeviceId) -> impl FnOnce(StoreError) -> ApiError + '_ {
    move |e| match e {
        StoreError::NotFound => ApiError::not_found(format!("device {id}")),
        e => e.into(),
    }
}

async fn show(State(app): State<AppState>, _: Operator, Path(raw): Path<String>) -> Result<Json<DeviceInfo>, ApiError> {
    let id = device_id(raw)?;
    let device = app.store.get_device(&id).await.map_err(missing(&id))?;
    let mut body = views::device(device);
    if let Some((rollout, state)) = app.store.device_rollout(&id).await? {
        body.rollout = Some(serde_json::json!({"id": rollout, "state": state.as_str()}));
    }
    Ok(Json(body))
}

async fn decommission(
    State(app): State<AppState>,
    admin: Admin,
    Path(raw): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = device_id(raw)?;
    let (store, removed) = (app.store.clone(), id.clone());
    revoke(&app, &admin, &id, "device.removed", async move { store.delete_device(&removed).await }).await?;
    app.wake_engine();
    Ok(StatusCode::NO_CONTENT)
}

/// Runs `change` (the device's token rotated, or the device removed) to its end even if
/// the request is dropped meanwhile, then brings everything in step and records `action`
/// in the audit trail: an old token never outlives a change that was made, and no change
/// goes unrecorded.
async fn revoke(
    app: &AppState,
    admin: &Admin,
    id: &DeviceId,
    action: &'static str,
    change: impl std::future::Future<Output = StoreResult<()>> + Send + 'static,
) -> Result<(), ApiError> {
    let (app_now, admin, device) = (app.clone(), admin.clone(), id.clone());
    tokio::spawn(async move {
        change.await?;
        app_now.device_credentials_changed(Some(&device)).await;
        app_now.audit(&admin, action, device.as_str(), serde_json::json!({})).await;
        Ok(())
    })
    .await
    .map_err(|e| ApiError::from(anyhow::anyhow!("changing the credentials of {id}: {e}")))?
    .map_err(missing(id))
}

async fn rotate_token(
    State(app): State<AppState>,
    admin: Admin,
    Path(raw): Path<String>,
) -> Result<Json<DeviceWithToken>, ApiError> {
    let id = device_id(raw)?;
    let token = generate_token(DEVICE_TOKEN_PREFIX)?;
    let (store, rotated) = (app.store.clone(), id.clone());
    let (token_hash, broker_hash) = (hash_token(&token), broker_password_hash(&token)?);
    let change = async move { store.rotate_device_token(&rotated, &token_hash, &broker_hash).await };
    revoke(&app, &admin, &id, "device.token_rotated", change).await?;
    let device = app.store.get_device(&id).await.map_err(missing(&id))?;
    Ok(Json(DeviceWithToken { device: views::device(device), token }))
}

/// The device's current command (the same JSON as on MQTT), or 204 when it has none.
async fn command(
    State(app): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse as _;
    let id = device_id(raw)?;
    caller.require_device_or_operator(&id)?;
    if matches!(caller, Caller::Operator(_)) {
        // A device caller exists: its token was just found.
        app.store.get_device(&id).await.map_err(missing(&id))?;
    }
    let Some(current) = app.store.current_command(&id).await? else {
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    let artifact = app.artifacts.get(app.store.as_ref(), current.kind, &current.artifact_id).await?;
    match crate::rollout::command(&app.public_url, &current.rollout_id, &id, &artifact, current.cancel) {
        Some(command) => Ok(Json(command).into_response()),
        None => Ok(StatusCode::NO_CONTENT.into_response()),
    }
}
