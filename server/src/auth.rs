//! Who is calling (CONTRACT §3): the axum extractors [`Caller`], [`Operator`] and
//! [`Admin`], for the HTTP layer only.
//!
//! An operator presents an operator token (the admin token, kept in the database so every
//! replica knows it); a device presents its own token (made and hashed by
//! [`crate::token`]) or, over HTTPS, a device certificate the server signed. No or an unknown token is 401; a device token on an operator route is
//! 403. A refusal is an [`AuthError`], which `http::error` maps to problem+json like every
//! other error, so this module needs nothing of the HTTP layer.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use fleet_protocol::DeviceId;
use fleet_protocol::api::TokenScope;

use crate::audit::Actor;
use crate::device_ca::ClientCertificate;
use crate::state::AppState;
use crate::store::{StoreError, TokenOwner};
use crate::token::hash_token;

/// Why a caller was refused.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("missing bearer token")]
    MissingToken,
    #[error("unknown token")]
    UnknownToken,
    #[error("this route is for operators")]
    NotAnOperator,
    #[error("token {0:?} is read-only")]
    ReadOnly(String),
    #[error("a device may only access its own resources")]
    OtherDevice,
    #[error("a device may download only the artifacts of commands it was sent")]
    NotSentToDevice,
    /// The token could not be looked up.
    #[error("looking up a token: {0}")]
    Store(#[from] StoreError),
}

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
    pub fn require_device_or_operator(&self, id: &DeviceId) -> Result<(), AuthError> {
        match self {
            Caller::Operator(_) => Ok(()),
            Caller::Device(own) if own == id => Ok(()),
            Caller::Device(_) => Err(AuthError::OtherDevice),
        }
    }
}

fn bearer(parts: &Parts) -> Option<&str> {
    let value = parts.headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AuthError> {
        let Some(token) = bearer(parts) else {
            return device_certificate(parts, state).await;
        };
        let hash = hash_token(token);
        match state.device_tokens.owner(state.store.as_ref(), &hash).await? {
            Some(TokenOwner::Operator(t)) => Ok(Caller::Operator(Operator { name: t.name, scope: t.scope })),
            Some(TokenOwner::Device(id)) => Ok(Caller::Device(id)),
            None => Err(AuthError::UnknownToken),
        }
    }
}

/// A caller with no bearer token over HTTPS with a device certificate (CONTRACT §12): the
/// certificate stands for its device's token while it is valid and not revoked.
async fn device_certificate(parts: &Parts, state: &AppState) -> Result<Caller, AuthError> {
    let cert = parts.extensions.get::<ClientCertificate>().ok_or(AuthError::MissingToken)?;
    match crate::device_ca::device_of(state.store.as_ref(), &cert.0, crate::clock::now_ms()).await? {
        Some(device) => Ok(Caller::Device(device)),
        None => Err(AuthError::UnknownToken),
    }
}

/// The SHA-256 of the bearer token presented, for a route that checks it again later (an
/// event stream ends when its token is revoked). Authenticates nothing by itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenHash(pub String);

impl<S: Send + Sync> FromRequestParts<S> for TokenHash {
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, AuthError> {
        bearer(parts).map(|token| Self(hash_token(token))).ok_or(AuthError::MissingToken)
    }
}

/// An operator who may change things (scope `admin`); the name goes into the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admin {
    pub name: String,
}

impl Admin {
    /// The admin as the audit trail names them.
    pub fn actor(&self) -> Actor {
        Actor(self.name.clone())
    }
}

impl From<&Admin> for Actor {
    fn from(admin: &Admin) -> Self {
        Actor(admin.name.clone())
    }
}

/// A write route's caller: read-only tokens and devices get 403.
impl FromRequestParts<AppState> for Admin {
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AuthError> {
        let op = Operator::from_request_parts(parts, state).await?;
        match op.scope {
            TokenScope::Admin => Ok(Admin { name: op.name }),
            TokenScope::ReadOnly => Err(AuthError::ReadOnly(op.name)),
        }
    }
}

/// An operator route's caller; rejects devices with 403.
impl FromRequestParts<AppState> for Operator {
    type Rejection = AuthError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AuthError> {
        match Caller::from_request_parts(parts, state).await? {
            Caller::Operator(op) => Ok(op),
            Caller::Device(_) => Err(AuthError::NotAnOperator),
        }
    }
}
