//! `/keys`: release keys the server checks uploads against.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use fleet_protocol::{ErrorCode, KeyId, PublicKey};
use serde::Deserialize;

use super::error::{ApiError, OrNotFound as _};
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

/// Registering is idempotent: the same key under the same name again answers 200 with the
/// registered key, so a script (the demo) can be run twice. The same key under another name,
/// or another key under the name of an active one, is a 409 `already_exists` conflict.
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
    let taken = app.store.active_keys().await?.into_iter().find(|k| k.name == name && k.keyid != *key.keyid());
    if let Some(other) = taken {
        let detail = format!("the name {name:?} belongs to key {}: revoke it or choose another name", other.keyid);
        return Err(ApiError::new(ErrorCode::AlreadyExists, detail));
    }
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
            registered_again(existing, name).map(|k| (StatusCode::OK, Json(views::key(k))))
        }
        Err(e) => Err(e.into()),
    }
}

/// A key that is already registered: itself again under its own name, else why not.
fn registered_again(existing: KeyRecord, name: &str) -> Result<KeyRecord, ApiError> {
    let keyid = &existing.keyid;
    if existing.revoked_at_ms.is_some() {
        Err(ApiError::new(ErrorCode::KeyRevoked, format!("key {keyid} was revoked and cannot return")))
    } else if existing.name != name {
        let detail = format!("key {keyid} is already registered as {:?}", existing.name);
        Err(ApiError::new(ErrorCode::AlreadyExists, detail))
    } else {
        Ok(existing)
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
    let key = app.store.get_key(&id).await.or_not_found(|| format!("key {id}"))?;
    Ok(Json(views::key(key)))
}

/// Revocation is permanent: the row stays (artifacts name their signers) but the key
/// no longer counts towards any threshold.
async fn revoke(State(app): State<AppState>, admin: Admin, Path(raw): Path<String>) -> Result<StatusCode, ApiError> {
    let id = keyid(&raw)?;
    app.store.revoke_key(&id, crate::now_ms()).await.or_not_found(|| format!("key {id}"))?;
    app.audit(&admin, "key.revoked", &id.as_hex(), serde_json::json!({})).await;
    crate::rollout::signers::pause_unsigned(&app).await?;
    Ok(StatusCode::NO_CONTENT)
}
