//! Bearer tokens: who is calling (CONTRACT §3).
//!
//! An operator presents an operator token (the admin token, kept in the database so every
//! replica knows it); a device presents its own token. Tokens are random 256-bit values,
//! shown once and stored only as SHA-256 hex. No or an unknown token is 401; a device token
//! on an operator route is 403.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use base64::Engine as _;
use fleet_protocol::api::TokenScope;
use fleet_protocol::{DeviceId, ErrorCode, Sha256Digest};

use crate::http::error::ApiError;
use crate::state::AppState;
use crate::store::TokenOwner;

/// Prefix of device tokens, so a leaked one is recognisable (e.g. by secret scanners).
pub const DEVICE_TOKEN_PREFIX: &str = "fleet_dev_";
/// Prefix of generated admin tokens.
pub const ADMIN_TOKEN_PREFIX: &str = "fleet_admin_";
/// Prefix of named operator tokens.
pub const OPERATOR_TOKEN_PREFIX: &str = "fleet_op_";

/// A fresh random token: the prefix and 256 random bits, URL-safe base64.
pub fn generate_token(prefix: &str) -> anyhow::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    Ok(format!("{prefix}{}", base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)))
}

/// What is stored for a token: its SHA-256, lowercase hex.
pub fn hash_token(token: &str) -> String {
    Sha256Digest::of(token.as_bytes()).to_hex()
}

/// The name under which the admin token is stored.
pub const ADMIN_TOKEN_NAME: &str = "admin";

/// An authenticated operator (any scope): the token's name and what it may do. Read routes
/// take this; write routes take [`Admin`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator {
    pub name: String,
    pub scope: TokenScope,
}

/// The authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    Operator(Operator),
    Device(DeviceId),
}

impl Caller {
    /// Devices may act only on their own resources; the operator on all.
    pub fn require_device_or_operator(&self, id: &DeviceId) -> Result<(), ApiError> {
        match self {
            Caller::Operator(_) => Ok(()),
            Caller::Device(own) if own == id => Ok(()),
            Caller::Device(_) => Err(ApiError::new(ErrorCode::Forbidden, "a device may only access its own resources")),
        }
    }
}

fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(token) = bearer(parts) else {
            return Err(ApiError::new(ErrorCode::Unauthorized, "missing bearer token"));
        };
        let hash = hash_token(token);
        match state.device_tokens.owner(state.store.as_ref(), &hash).await? {
            Some(TokenOwner::Operator(t)) => Ok(Caller::Operator(Operator { name: t.name, scope: t.scope })),
            Some(TokenOwner::Device(id)) => Ok(Caller::Device(id)),
            None => Err(ApiError::new(ErrorCode::Unauthorized, "unknown token")),
        }
    }
}

/// An operator who may change things (scope `admin`); the name goes into the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admin {
    pub name: String,
}

/// A write route's caller: read-only tokens and devices get 403.
impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let op = Operator::from_request_parts(parts, state).await?;
        match op.scope {
            TokenScope::Admin => Ok(Admin { name: op.name }),
            TokenScope::ReadOnly => {
                Err(ApiError::new(ErrorCode::Forbidden, format!("token {:?} is read-only", op.name)))
            }
        }
    }
}

/// An operator route's caller; rejects devices with 403.
impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match Caller::from_request_parts(parts, state).await? {
            Caller::Operator(op) => Ok(op),
            Caller::Device(_) => Err(ApiError::new(ErrorCode::Forbidden, "this route is for operators")),
        }
    }
}
