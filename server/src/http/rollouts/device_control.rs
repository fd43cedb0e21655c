//! `POST /rollouts/{id}/devices/{device_id}/{cancel,retry,skip}`: one device of a rollout
//! (the rules: [`crate::rollout::device_control`]). Admin scope; each answers the entry as
//! stored and leaves an audit entry naming the device.

use axum::Json;
use axum::extract::{Path, State};
use fleet_protocol::api::RolloutDevice;
use serde_json::json;

use crate::auth::Admin;
use crate::http::error::ApiError;
use crate::http::extract::device_id;
use crate::rollout::device_control::{DeviceAction, control_device};
use crate::rollout::view::entry_body;
use crate::state::AppState;

async fn act(
    app: &AppState,
    admin: &Admin,
    id: &str,
    device: String,
    action: DeviceAction,
) -> Result<Json<RolloutDevice>, ApiError> {
    let device = device_id(device)?;
    let entry = control_device(app, id, &device, action).await?;
    let details = json!({"device_id": device.as_str(), "state": entry.state.as_str()});
    app.audit(admin, action.audit_name(), id, details).await;
    Ok(Json(entry_body(&entry)))
}

pub async fn cancel(
    State(app): State<AppState>,
    admin: Admin,
    Path((id, device)): Path<(String, String)>,
) -> Result<Json<RolloutDevice>, ApiError> {
    act(&app, &admin, &id, device, DeviceAction::Cancel).await
}

pub async fn retry(
    State(app): State<AppState>,
    admin: Admin,
    Path((id, device)): Path<(String, String)>,
) -> Result<Json<RolloutDevice>, ApiError> {
    act(&app, &admin, &id, device, DeviceAction::Retry).await
}

pub async fn skip(
    State(app): State<AppState>,
    admin: Admin,
    Path((id, device)): Path<(String, String)>,
) -> Result<Json<RolloutDevice>, ApiError> {
    act(&app, &admin, &id, device, DeviceAction::Skip).await
}
