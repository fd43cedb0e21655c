//! `/broker`: what an external broker needs to enforce per-device isolation.
//!
//! - Mosquitto on another host: `GET /broker/mosquitto/passwords` and `/broker/mosquitto/acl`
//!   return the `password_file` and `acl_file` (`fleetctl broker sync` writes them).
//! - EMQX: `POST /broker/emqx/authenticate` and `/broker/emqx/authorize` answer its HTTP
//!   authentication and authorization hooks with the same rules as every other broker.
//!
//! All of them are for operator tokens (EMQX sends one in its request headers).

use axum::Json;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use fleet_protocol::DeviceId;
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::ApiError;
use super::extract::ApiJson;
use super::routes::ApiRouter;
use crate::auth::Operator;
use crate::broker::mosquitto;
use crate::state::AppState;
use crate::store::TokenOwner;
use crate::token::hash_token;

pub fn router() -> ApiRouter {
    ApiRouter::new()
        .get("/broker/mosquitto/passwords", get(mosquitto_passwords))
        .get("/broker/mosquitto/acl", get(mosquitto_acl))
        .post("/broker/emqx/authenticate", post(emqx_authenticate))
        .post("/broker/emqx/authorize", post(emqx_authorize))
}

fn text(body: String) -> impl IntoResponse {
    ([(CONTENT_TYPE, "text/plain; charset=utf-8")], body)
}

async fn mosquitto_passwords(State(app): State<AppState>, _: Operator) -> Result<impl IntoResponse, ApiError> {
    let devices = app.store.broker_credentials().await?;
    Ok(text(mosquitto::password_file(app.broker_account.as_ref(), &devices)))
}

async fn mosquitto_acl(State(app): State<AppState>, _: Operator) -> Result<impl IntoResponse, ApiError> {
    Ok(text(mosquitto::acl_file(app.broker_account.as_ref(), &app.topics)))
}

/// EMQX's authentication request.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub(crate) struct EmqxAuthenticate {
    clientid: String,
    username: Option<String>,
    password: Option<String>,
}

fn verdict(allow: bool) -> Json<Value> {
    Json(json!({"result": if allow { "allow" } else { "deny" }, "is_superuser": false}))
}

/// A device connects with its id as both client id and username and its token as password;
/// the server's own account (`--mqtt-username`) is the only superuser.
async fn emqx_authenticate(
    State(app): State<AppState>,
    _: Operator,
    ApiJson(req): ApiJson<EmqxAuthenticate>,
) -> Result<Json<Value>, ApiError> {
    let (Some(username), Some(password)) = (req.username, req.password) else {
        return Ok(verdict(false));
    };
    if let Some(server) = app.broker_account.as_ref().filter(|a| a.username == username) {
        // Compared as hashes: no early exit on the first differing byte of the secret.
        let ok = hash_token(&password) == hash_token(server.password.expose());
        return Ok(Json(json!({"result": if ok { "allow" } else { "deny" }, "is_superuser": ok})));
    }
    let Ok(device) = DeviceId::parse(username) else {
        return Ok(verdict(false));
    };
    if req.clientid != device.as_str() {
        return Ok(verdict(false));
    }
    let owner = app.device_tokens.owner(app.store.as_ref(), &hash_token(&password)).await?;
    Ok(verdict(matches!(owner, Some(TokenOwner::Device(owner)) if owner == device)))
}

/// EMQX's authorization request.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub(crate) struct EmqxAuthorize {
    clientid: String,
    username: Option<String>,
    topic: String,
    action: String,
}

/// Devices: subscribe to their own commands, publish their own status and presence.
async fn emqx_authorize(
    State(app): State<AppState>,
    _: Operator,
    ApiJson(req): ApiJson<EmqxAuthorize>,
) -> Result<Json<Value>, ApiError> {
    let username = req.username.unwrap_or_default();
    if app.broker_account.as_ref().is_some_and(|a| a.username == username) {
        return Ok(verdict(true));
    }
    let Ok(device) = DeviceId::parse(username) else {
        return Ok(verdict(false));
    };
    let allow = req.clientid == device.as_str()
        && match req.action.as_str() {
            "subscribe" => app.topics.device_may_subscribe(&device, &req.topic),
            "publish" => app.topics.device_may_publish(&device, &req.topic),
            _ => false,
        };
    Ok(verdict(allow))
}
