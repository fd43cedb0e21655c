//! `/devices`: the registry and inventory, token rotation, and each device's command.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, patch, post};

use super::routes::ApiRouter;
use fleet_protocol::HardwareModel;
use serde::Deserialize;

use super::error::{ApiError, OrNotFound as _};
use super::extract::{ApiJson, device_id, page_request};
use super::views;
use crate::auth::{Admin, Caller, Operator};
use crate::credentials::{self, Registration};
use crate::state::AppState;
use crate::store::DeviceFilter;
use fleet_protocol::api::{
    CertificateRequest, DeviceCertificate, DeviceInfo, DeviceWithToken, List, MAX_LABELS, TokenScope,
};

pub fn router(device_gate: &super::DeviceGate) -> ApiRouter {
    ApiRouter::new()
        .get("/devices", get(list))
        .post("/devices", post(register))
        .get("/devices/{id}", get(show))
        .patch("/devices/{id}", patch(relabel))
        .delete("/devices/{id}", delete(decommission))
        .post("/devices/{id}/token", post(rotate_token))
        .post("/devices/{id}/certificate", post(certificate))
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

/// `PATCH /devices/{id}`: the device's new labels, replacing all it had.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Relabel {
    labels: BTreeMap<String, String>,
}

/// Label keys follow the id rule (plus `/` for namespaces); values are short printable text.
fn check_labels(labels: &BTreeMap<String, String>) -> Result<(), ApiError> {
    if labels.len() > MAX_LABELS {
        return Err(ApiError::bad_request(format!("at most {MAX_LABELS} labels, not {}", labels.len())));
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

async fn register(
    State(app): State<AppState>,
    admin: Admin,
    ApiJson(req): ApiJson<Register>,
) -> Result<(StatusCode, Json<DeviceWithToken>), ApiError> {
    let id = device_id(req.id)?;
    let hardware = HardwareModel::parse(req.hardware).map_err(|e| ApiError::invalid_id("hardware", e))?;
    check_labels(&req.labels)?;
    let registration = Registration { id, hardware, labels: req.labels };
    let issued = credentials::register(&app, &admin.actor(), registration).await?;
    Ok((StatusCode::CREATED, Json(DeviceWithToken { device: views::device(issued.device), token: issued.token })))
}

/// `GET /devices`'s query.
struct ListQuery {
    filter: DeviceFilter,
    limit: Option<u32>,
    cursor: Option<String>,
    /// `trust_behind=true`: only devices below the latest trust version (CONTRACT §11).
    trust_behind: bool,
}

/// Parses `hardware=`, repeatable `label=key=value`, `trust_behind=`, `limit=`, `cursor=`.
fn parse_list_query(raw: Option<&str>) -> Result<ListQuery, ApiError> {
    let mut filter = DeviceFilter::default();
    let (mut limit, mut cursor, mut trust_behind) = (None, None, false);
    for (k, v) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        match &*k {
            "hardware" => {
                filter.hardware =
                    Some(HardwareModel::parse(v.into_owned()).map_err(|e| ApiError::invalid_id("hardware", e))?)
            }
            "label" => {
                let (key, value) =
                    v.split_once('=').ok_or_else(|| ApiError::bad_request("label filters are label=key=value"))?;
                if filter.labels.len() == MAX_LABELS {
                    return Err(ApiError::bad_request(format!("at most {MAX_LABELS} label filters")));
                }
                filter.labels.push((key.to_owned(), value.to_owned()));
            }
            "limit" => limit = Some(v.parse().map_err(|_| ApiError::bad_request("limit must be a number"))?),
            "cursor" => cursor = Some(v.into_owned()),
            "trust_behind" => {
                trust_behind = v.parse().map_err(|_| ApiError::bad_request("trust_behind must be true or false"))?
            }
            other => {
                return Err(ApiError::bad_request(format!("unknown query parameter `{other}`")));
            }
        }
    }
    Ok(ListQuery { filter, limit, cursor, trust_behind })
}

async fn list(
    State(app): State<AppState>,
    _: Operator,
    RawQuery(raw): RawQuery,
) -> Result<Json<List<DeviceInfo>>, ApiError> {
    let ListQuery { mut filter, limit, cursor, trust_behind } = parse_list_query(raw.as_deref())?;
    let page = page_request(limit, cursor)?;
    if trust_behind {
        // Behind the latest: a lower version, or none reported. Without any trust
        // document, nobody is behind.
        match app.store.latest_trust().await? {
            Some(latest) => filter.trust_below = Some(latest.version),
            None => return Ok(Json(List { items: vec![], next_cursor: None })),
        }
    }
    let page = app.store.list_devices(&filter, &page).await?;
    Ok(Json(views::list(page, views::device)))
}

async fn show(State(app): State<AppState>, _: Operator, Path(raw): Path<String>) -> Result<Json<DeviceInfo>, ApiError> {
    let id = device_id(raw)?;
    let device = app.store.get_device(&id).await.or_not_found(|| format!("device {id}"))?;
    let mut body = views::device(device);
    if let Some((rollout, state)) = app.store.device_rollout(&id).await? {
        body.rollout = Some(serde_json::json!({"id": rollout, "state": state.as_str()}));
    }
    Ok(Json(body))
}

async fn relabel(
    State(app): State<AppState>,
    admin: Admin,
    Path(raw): Path<String>,
    ApiJson(req): ApiJson<Relabel>,
) -> Result<Json<DeviceInfo>, ApiError> {
    let id = device_id(raw)?;
    check_labels(&req.labels)?;
    let device = app.store.set_device_labels(&id, &req.labels).await.or_not_found(|| format!("device {id}"))?;
    app.audit(admin.actor(), "device.relabelled", id.as_str(), serde_json::json!({"labels": device.labels})).await;
    Ok(Json(views::device(device)))
}

async fn decommission(
    State(app): State<AppState>,
    admin: Admin,
    Path(raw): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = device_id(raw)?;
    credentials::remove(&app, &admin.actor(), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn rotate_token(
    State(app): State<AppState>,
    admin: Admin,
    Path(raw): Path<String>,
) -> Result<Json<DeviceWithToken>, ApiError> {
    let id = device_id(raw)?;
    let issued = credentials::rotate(&app, &admin.actor(), &id).await?;
    Ok(Json(DeviceWithToken { device: views::device(issued.device), token: issued.token }))
}

/// `POST /devices/{id}/certificate`: signs the device's CSR (the operator, or the device
/// itself with its token or its current certificate).
async fn certificate(
    State(app): State<AppState>,
    caller: Caller,
    Path(raw): Path<String>,
    ApiJson(request): ApiJson<CertificateRequest>,
) -> Result<Json<DeviceCertificate>, ApiError> {
    let id = device_id(raw)?;
    caller.require_device_or_operator(&id)?;
    let actor = match &caller {
        Caller::Operator(op) if op.scope == TokenScope::ReadOnly => {
            return Err(crate::auth::AuthError::ReadOnly(op.name.clone()).into());
        }
        Caller::Operator(op) => crate::audit::Actor(op.name.clone()),
        Caller::Device(d) => crate::audit::Actor(format!("device:{d}")),
    };
    let signed = credentials::certify(&app, &actor, &id, &request.csr_pem).await?;
    Ok(Json(DeviceCertificate {
        certificate_pem: signed.pem,
        serial: signed.record.serial,
        expires_at: crate::timestamp::rfc3339(signed.record.not_after_ms),
    }))
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
        app.store.get_device(&id).await.or_not_found(|| format!("device {id}"))?;
    }
    let generation = app.sent_artifacts.generation();
    let Some(current) = app.store.current_command(&id).await? else {
        return Ok(StatusCode::NO_CONTENT.into_response());
    };
    let artifact = app.artifacts.get(app.store.as_ref(), current.kind, &current.artifact_id).await?;
    match crate::rollout::command(&app.public_url, &current.rollout_id, &id, &artifact, current.cancel) {
        Some(command) => {
            // The device now holds this artifact's URL: its download needs no look-up.
            if matches!(caller, Caller::Device(_)) && !current.cancel {
                app.sent_artifacts.sent(&id, current.kind, &current.artifact_id, generation);
            }
            Ok(Json(command).into_response())
        }
        None => Ok(StatusCode::NO_CONTENT.into_response()),
    }
}
