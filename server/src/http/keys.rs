//! `/keys`: release keys the server checks uploads against.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use fleet_protocol::{ErrorCode, KeyId, PublicKey};
use serde::Deserialize;

use super::error::ApiError;
use super::extract::{ApiJson, ApiQuery, page_request};
use super::routes::ApiRouter;
use super::views;
use crate::auth::{Admin, Operator};
use crate::state::AppState;
use crate::store::{KeyRecord, StoreError};
use fleet_protocol::api::{KeyInfo, List};

pub fn router() -> ApiRouter {
    ApiRouter::new()
        .get("/keys", get(list))
        .post("/keys", post(add))
        .get("/keys/{keyid}", get(show))
        .delete("/keys/{keyid}", delete(revoke))
}

/// `POST /keys`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AddKey {
    name: String,
    public_key_pem: String,
}

async fn add(
    State(app): State<AppState>,
    admin: Admin,
    ApiJson(req): ApiJson<AddKey>,
) -> Result<(StatusCode, Json<KeyInfo>), ApiError> {
    let name = req.name.trim();
    if name.is_empty() || name.len() > 128 {
        return Err(ApiError::bad_request("name must be 1 to 128 characters"));
    }
    let key = PublicKey::from_pem(&req.public_key_pem).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let record = KeyRecord {
        keyid: key.keyid().clone(),
        name: name.to_owned(),
        public_key_pem: key.to_pem(),
        created_at_ms: crate::now_ms(),
        revoked_at_ms: None,
    };
    match app.store.insert_key(&record).await {
        Ok(()) => {
            let details = serde_json::json!({"name": record.name});
            app.audit(&admin, "key.added", &record.keyid.as_hex(), details).await;
            Ok((StatusCode::CREATED, Json(views::key(record))))
        }
        Err(StoreError::Conflict) => {
            let existing = app.store.get_key(key.keyid()).await?;
            Err(if existing.revoked_at_ms.is_some() {
                ApiError::new(ErrorCode::KeyRevoked, format!("key {} was revoked and cannot return", key.keyid()))
            } else {
                ApiError::new(ErrorCode::AlreadyExists, format!("key {} is already registered", key.keyid()))
            })
        }
        Err(e) => Err(e.into()),
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
) -> Result<Json<List<KeyInfo>>, ApiError> {
    let page = app.store.list_keys(&page_request(q.limit, q.cursor)?).await?;
    Ok(Json(views::list(page, views::key)))
}

fn keyid(raw: &str) -> Result<KeyId, ApiError> {
    KeyId::parse(raw).ok_or_else(|| ApiError::new(ErrorCode::InvalidId, "a keyid is 64 lowercase hex characters"))
}

async fn show(State(app): State<AppState>, _: Operator, Path(raw): Path<String>) -> Result<Json<KeyInfo>, ApiError> {
    let id = keyid(&raw)?;
    let key = app.store.get_key(&id).await.map_err(|e| not_found(e, &id))?;
    Ok(Json(views::key(key)))
}

/// Revocation is permanent: the row stays (artifacts name their signers) but the key
/// no longer counts towards any threshold.
async fn revoke(State(app): State<AppState>, admin: Admin, Path(raw): Path<String>) -> Result<StatusCode, ApiError> {
    let id = keyid(&raw)?;
    app.store.revoke_key(&id, crate::now_ms()).await.map_err(|e| not_found(e, &id))?;
    app.audit(&admin, "key.revoked", &id.as_hex(), serde_json::json!({})).await;
    crate::rollout::signers::pause_unsigned(&app).await?;
    Ok(StatusCode::NO_CONTENT)
}

fn not_found(e: StoreError, id: &KeyId) -> ApiError {
    match e {
        StoreError::NotFound => ApiError::not_found(format!("key {id}")),
        e => e.into(),
    }
}
