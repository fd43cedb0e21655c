//! `/tokens`: named operator tokens with a scope (`admin` or `read-only`), stored as
//! hashes and shown once, optionally also a broker account `op:{name}` (`"mqtt": true`,
//! CONTRACT §10); `/whoami`, the caller's own name and scope; and `/audit`, the trail of
//! every operator action.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use fleet_protocol::ErrorCode;
use fleet_protocol::api::{AuditEntry, List, TokenInfo, TokenScope, TokenWithSecret, WhoAmI};
use serde::Deserialize;

use super::error::{ApiError, OrNotFound as _};
use super::extract::{ApiJson, ApiQuery, page_request};
use super::routes::ApiRouter;
use super::views;
use crate::auth::{Admin, Operator};
use crate::state::AppState;
use crate::store::{OperatorTokenRecord, StoreError};
use crate::token::{ADMIN_TOKEN_NAME, OPERATOR_TOKEN_PREFIX, generate_token, hash_token};

pub fn router() -> ApiRouter {
    ApiRouter::new()
        .get("/tokens", get(list))
        .post("/tokens", post(create))
        .delete("/tokens/{name}", delete(revoke))
        .get("/whoami", get(whoami))
        .get("/audit", get(audit))
}

/// `POST /tokens`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateToken {
    name: String,
    scope: TokenScope,
    /// Also log in to the broker as `op:{name}` with this token (events, presence).
    #[serde(default)]
    mqtt: bool,
}

/// Token names: 1–64 characters of `[A-Za-z0-9._-]` (they appear in the audit trail).
fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

async fn create(
    State(app): State<AppState>,
    admin: Admin,
    ApiJson(req): ApiJson<CreateToken>,
) -> Result<(StatusCode, Json<TokenWithSecret>), ApiError> {
    if !valid_name(&req.name) {
        return Err(ApiError::bad_request("a token name is 1 to 64 characters of A-Z a-z 0-9 . _ -"));
    }
    let token = generate_token(OPERATOR_TOKEN_PREFIX)?;
    let broker_password_hash = match req.mqtt {
        true => Some(crate::broker::mosquitto::password_hash(&token)?),
        false => None,
    };
    let record = OperatorTokenRecord {
        name: req.name.clone(),
        scope: req.scope,
        token_hash: hash_token(&token),
        mqtt: req.mqtt,
        broker_password_hash,
        created_at_ms: crate::now_ms(),
    };
    app.store.insert_operator_token(&record).await.map_err(|e| match e {
        StoreError::Conflict => ApiError::new(ErrorCode::AlreadyExists, format!("token {:?} exists", req.name)),
        e => e.into(),
    })?;
    if record.mqtt {
        broker_in_step(&app, None).await;
    }
    app.audit(&admin, "token.created", &record.name, serde_json::json!({"scope": record.scope, "mqtt": record.mqtt}))
        .await;
    Ok((StatusCode::CREATED, Json(TokenWithSecret { info: views::token(record), token })))
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
) -> Result<Json<List<TokenInfo>>, ApiError> {
    let page = app.store.list_operator_tokens(&page_request(q.limit, q.cursor)?).await?;
    Ok(Json(views::list(page, views::token)))
}

/// Revoking works at once on every replica (tokens are looked up in the database). The
/// admin token is replaced with `FLEET_ADMIN_TOKEN`, not revoked.
async fn revoke(State(app): State<AppState>, admin: Admin, Path(name): Path<String>) -> Result<StatusCode, ApiError> {
    if name == ADMIN_TOKEN_NAME {
        return Err(ApiError::new(
            ErrorCode::InvalidState,
            "the admin token cannot be revoked; set FLEET_ADMIN_TOKEN to replace it",
        ));
    }
    app.store.delete_operator_token(&name).await.or_not_found(|| format!("token {name:?}"))?;
    broker_in_step(&app, Some(&name)).await;
    app.audit(&admin, "token.revoked", &name, serde_json::json!({})).await;
    Ok(StatusCode::NO_CONTENT)
}

/// The calling operator token's name and scope (any operator token may ask).
async fn whoami(caller: Operator) -> Json<WhoAmI> {
    Json(WhoAmI { name: caller.name, scope: caller.scope })
}

/// After an operator MQTT account was created or (`Some`) revoked: Mosquitto's files are
/// rewritten (its reload closes sessions whose credentials are gone) and the embedded
/// broker closes the account's session.
async fn broker_in_step(app: &AppState, revoked: Option<&str>) {
    if let Some(m) = &app.mosquitto {
        m.sync_now().await;
    }
    if let (Some(b), Some(name)) = (&app.broker, revoked) {
        b.kick_client(&crate::broker::account::Account::Operator(name.to_owned()).client_id()).await;
    }
}

async fn audit(
    State(app): State<AppState>,
    _: Operator,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<List<AuditEntry>>, ApiError> {
    if q.cursor.as_deref().is_some_and(|c| c.parse::<i64>().is_err()) {
        return Err(ApiError::bad_request("cursor: use next_cursor from the previous page"));
    }
    let page = app.store.list_audit(&page_request(q.limit, q.cursor)?).await?;
    Ok(Json(views::list(page, views::audit)))
}
