//! `/rollouts`: create (with `?dry_run=true`), list, show, delete (a finished one), per-device state, pause, resume,
//! cancel, a Server-Sent Events stream of the rollout body ([`events`]), and cancel, retry
//! or skip one device ([`device_control`]).

mod device_control;
mod events;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use fleet_protocol::ErrorCode;
use fleet_protocol::api::{List, Rollout, RolloutDevice};
use fleet_protocol::state::DeviceState;
use serde::Deserialize;
use serde_json::json;

use super::error::{ApiError, OrNotFound as _};
use super::extract::{ApiJson, ApiQuery, page_request};
use super::routes::ApiRouter;
use super::views;
use crate::auth::{Admin, Operator};
use crate::rollout::control::Action;
use crate::rollout::create::{Created, create};
use crate::rollout::model::RolloutRecord;
use crate::rollout::plan::RolloutRequest;
use crate::rollout::view::{entry_body, rollout_body};
use crate::state::AppState;
use crate::store::rollouts::RolloutDeletion;

pub fn router() -> ApiRouter {
    ApiRouter::new()
        .get("/rollouts", get(list))
        .post("/rollouts", post(create_rollout))
        .get("/rollouts/{id}", get(show))
        .delete("/rollouts/{id}", delete(remove))
        .get("/rollouts/{id}/devices", get(devices))
        .post("/rollouts/{id}/pause", post(pause))
        .post("/rollouts/{id}/resume", post(resume))
        .post("/rollouts/{id}/cancel", post(cancel))
        .get("/rollouts/{id}/events", get(events::events))
        .post("/rollouts/{id}/devices/{device_id}/cancel", post(device_control::cancel))
        .post("/rollouts/{id}/devices/{device_id}/retry", post(device_control::retry))
        .post("/rollouts/{id}/devices/{device_id}/skip", post(device_control::skip))
}

#[derive(Debug, Deserialize)]
struct CreateQuery {
    #[serde(default)]
    dry_run: bool,
}

async fn create_rollout(
    State(app): State<AppState>,
    admin: Admin,
    ApiQuery(q): ApiQuery<CreateQuery>,
    ApiJson(req): ApiJson<RolloutRequest>,
) -> Result<Response, ApiError> {
    match create(&app, req, q.dry_run).await? {
        Created::DryRun(plan) => Ok(Json(plan).into_response()),
        Created::Rollout(record) => {
            app.wake_engine();
            let body = rollout_body(app.store.as_ref(), &app.artifacts, &record).await?;
            let details = json!({"kind": record.kind.as_str(), "artifact_id": record.artifact_id,
                "devices": body.total, "waves": record.waves});
            app.audit(&admin, "rollout.created", &record.id, details).await;
            Ok((StatusCode::CREATED, Json(body)).into_response())
        }
    }
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    limit: Option<u32>,
    cursor: Option<String>,
}

async fn list(
    State(app): State<AppState>,
    _: Operator,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<List<Rollout>>, ApiError> {
    let page = app.store.list_rollouts(&page_request(q.limit, q.cursor)?).await?;
    let mut items = Vec::with_capacity(page.items.len());
    for r in &page.items {
        items.push(rollout_body(app.store.as_ref(), &app.artifacts, r).await?);
    }
    Ok(Json(List { items, next_cursor: page.next_cursor }))
}

async fn load(app: &AppState, id: &str) -> Result<RolloutRecord, ApiError> {
    app.store.get_rollout(id).await.or_not_found(|| format!("rollout {id}"))
}

async fn show(State(app): State<AppState>, _: Operator, Path(id): Path<String>) -> Result<Json<Rollout>, ApiError> {
    let r = load(&app, &id).await?;
    Ok(Json(rollout_body(app.store.as_ref(), &app.artifacts, &r).await?))
}

/// Deletes a finished rollout and its entries; any other is 409 `invalid_state`.
async fn remove(State(app): State<AppState>, admin: Admin, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    match app.store.delete_finished_rollout(&id).await.or_not_found(|| format!("rollout {id}"))? {
        RolloutDeletion::Deleted => {
            app.audit(&admin, "rollout.deleted", &id, json!({})).await;
            Ok(StatusCode::NO_CONTENT)
        }
        RolloutDeletion::Unfinished(state) => Err(ApiError::new(
            ErrorCode::InvalidState,
            format!("rollout {id} is {}; only a completed or cancelled rollout can be deleted", state.as_str()),
        )),
    }
}

#[derive(Debug, Deserialize)]
struct DevicesQuery {
    state: Option<String>,
    limit: Option<u32>,
    cursor: Option<String>,
}

async fn devices(
    State(app): State<AppState>,
    _: Operator,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<DevicesQuery>,
) -> Result<Json<List<RolloutDevice>>, ApiError> {
    load(&app, &id).await?;
    let state = q
        .state
        .map(|s| DeviceState::parse(&s).ok_or_else(|| ApiError::bad_request(format!("unknown state `{s}`"))))
        .transpose()?;
    let page = app.store.list_entries(&id, state, &page_request(q.limit, q.cursor)?).await?;
    Ok(Json(views::list(page, |e| entry_body(&e))))
}

/// Pauses, resumes or cancels a rollout (the rules: [`crate::rollout::control`]); a move
/// its state does not allow is 409 `invalid_state`.
async fn control(app: &AppState, admin: &Admin, id: &str, action: Action) -> Result<Json<Rollout>, ApiError> {
    let r = crate::rollout::control::control(app, id, action).await?;
    app.audit(admin, action.audit_name(), id, json!({})).await;
    Ok(Json(rollout_body(app.store.as_ref(), &app.artifacts, &r).await?))
}

async fn pause(State(app): State<AppState>, admin: Admin, Path(id): Path<String>) -> Result<Json<Rollout>, ApiError> {
    control(&app, &admin, &id, Action::Pause).await
}

async fn resume(State(app): State<AppState>, admin: Admin, Path(id): Path<String>) -> Result<Json<Rollout>, ApiError> {
    control(&app, &admin, &id, Action::Resume).await
}

async fn cancel(State(app): State<AppState>, admin: Admin, Path(id): Path<String>) -> Result<Json<Rollout>, ApiError> {
    control(&app, &admin, &id, Action::Cancel).await
}
