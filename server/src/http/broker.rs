//! `/broker`: what an external broker needs to enforce per-device isolation.
//!
//! - Mosquitto on another host: `GET /broker/mosquitto/passwords` and `/broker/mosquitto/acl`
//!   return the `password_file` and `acl_file` (`fleetctl broker sync` writes them).
//! - EMQX: `POST /broker/emqx/authenticate` and `/broker/emqx/authorize` answer its HTTP
//!   authentication and authorization hooks with the same rules as every other broker.
//!
//! All of them need an admin token (EMQX sends one in its request headers): they hand out
//! every device's password hash and answer password guesses, which a read-only token must
//! not reach (docs/security.md). The server's own account is left out of the password file
//! unless `?include_server_account=true` asks for it, and failed EMQX logins are throttled
//! per username ([`guesses`]).

mod guesses;

use std::sync::Arc;

use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use fleet_protocol::ErrorCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::ApiError;
use super::extract::{ApiJson, ApiQuery};
use super::routes::ApiRouter;
use crate::auth::Admin;
use crate::broker::account::Account;
use crate::broker::mosquitto;
use crate::state::AppState;
use crate::token::hash_token;
use guesses::LoginGuesses;

pub fn router() -> ApiRouter {
    ApiRouter::new()
        .get("/broker/mosquitto/passwords", get(mosquitto_passwords))
        .get("/broker/mosquitto/acl", get(mosquitto_acl))
        .post("/broker/emqx/authenticate", post(emqx_authenticate).layer(Extension(Arc::new(LoginGuesses::default()))))
        .post("/broker/emqx/authorize", post(emqx_authorize))
}

fn text(body: String) -> impl IntoResponse {
    ([(CONTENT_TYPE, "text/plain; charset=utf-8")], body)
}

/// `GET /broker/mosquitto/passwords` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct PasswordsQuery {
    /// Also write the server's own account (`--mqtt-username`); off by default, so the
    /// files copied to other hosts carry no superuser hash unless that host needs it.
    #[serde(default)]
    include_server_account: bool,
}

async fn mosquitto_passwords(
    State(app): State<AppState>,
    _: Admin,
    ApiQuery(query): ApiQuery<PasswordsQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let devices = app.store.broker_credentials().await?;
    let server = app.broker_account.as_ref().filter(|_| query.include_server_account);
    Ok(text(mosquitto::password_file(server, &devices)))
}

async fn mosquitto_acl(State(app): State<AppState>, _: Admin) -> Result<impl IntoResponse, ApiError> {
    let users = app.store.broker_credentials().await?;
    Ok(text(mosquitto::acl_file(app.broker_account.as_ref(), &app.topics, &users)))
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

/// A device connects with its id as both client id and username and its token as password
/// (an operator account with `op:{name}` and its MQTT-enabled operator token);
/// the server's own account (`--mqtt-username`) is the only superuser. A username that
/// failed too often lately is refused with 429 before its password is looked at.
async fn emqx_authenticate(
    State(app): State<AppState>,
    Extension(guesses): Extension<Arc<LoginGuesses>>,
    _: Admin,
    ApiJson(req): ApiJson<EmqxAuthenticate>,
) -> Result<Json<Value>, ApiError> {
    let (Some(username), Some(password)) = (req.username, req.password) else {
        return Ok(verdict(false));
    };
    if !guesses.may_try(&username) {
        return Err(ApiError::new(ErrorCode::TooManyRequests, "too many failed logins for this username; retry later"));
    }
    let (allow, superuser) = check_login(&app, &req.clientid, &username, &password).await?;
    if !allow {
        guesses.failed(&username);
    }
    Ok(Json(json!({"result": if allow { "allow" } else { "deny" }, "is_superuser": superuser})))
}

/// (allowed, superuser) for one login.
async fn check_login(app: &AppState, clientid: &str, username: &str, password: &str) -> Result<(bool, bool), ApiError> {
    if let Some(server) = app.broker_account.as_ref().filter(|a| a.username == username) {
        // Compared as hashes: no early exit on the first differing byte of the secret.
        let ok = hash_token(password) == hash_token(server.password.expose());
        return Ok((ok, ok));
    }
    let Some(account) = Account::parse(username) else {
        return Ok((false, false));
    };
    if clientid != account.client_id() {
        return Ok((false, false));
    }
    let owner = app.device_tokens.owner(app.store.as_ref(), &hash_token(password)).await?;
    Ok((account.owns(owner.as_ref()), false))
}

/// EMQX's authorization request.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub(crate) struct EmqxAuthorize {
    clientid: String,
    username: Option<String>,
    topic: String,
    action: String,
}

/// Devices: subscribe to their own commands and the trust announcement, publish their own
/// status and presence; operator accounts: [`Account`]'s rules.
async fn emqx_authorize(
    State(app): State<AppState>,
    _: Admin,
    ApiJson(req): ApiJson<EmqxAuthorize>,
) -> Result<Json<Value>, ApiError> {
    let username = req.username.unwrap_or_default();
    if app.broker_account.as_ref().is_some_and(|a| a.username == username) {
        return Ok(verdict(true));
    }
    let Some(account) = Account::parse(&username) else {
        return Ok(verdict(false));
    };
    let allow = req.clientid == account.client_id()
        && match req.action.as_str() {
            "subscribe" => account.may_subscribe(&app.topics, &req.topic),
            "publish" => account.may_publish(&app.topics, &req.topic),
            _ => false,
        };
    Ok(verdict(allow && still_an_account(&app, &account).await?))
}

/// An operator account's token may have been revoked since it logged in (EMQX keeps the
/// session): it is looked up again. Devices are checked at login only, as before.
async fn still_an_account(app: &AppState, account: &Account) -> Result<bool, ApiError> {
    let Account::Operator(name) = account else {
        return Ok(true);
    };
    match app.store.get_operator_token(name).await {
        Ok(token) => Ok(token.mqtt),
        Err(crate::store::StoreError::NotFound) => Ok(false),
        Err(e) => Err(e.into()),
    }
}
