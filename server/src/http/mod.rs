//! The HTTP API (CONTRACT §3): one module per resource, each owning its `router()`;
//! [`error`] maps every failure to problem+json once.

pub mod artifacts;
pub mod broker;
pub mod devices;
pub mod error;
pub mod extract;
pub mod keys;
pub mod rollouts;
pub mod tokens;
mod upload;
pub mod views;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use fleet_protocol::ArtifactKind;
use tower_http::trace::TraceLayer;

use crate::state::AppState;
use error::ApiError;

/// JSON request bodies are small; uploads lift this limit on their own route.
const JSON_BODY_LIMIT: usize = 1024 * 1024;

/// The whole API.
pub fn router(state: AppState) -> Router {
    let api = Router::new()
        .merge(keys::router())
        .merge(artifacts::router(ArtifactKind::Firmware))
        .merge(artifacts::router(ArtifactKind::Config))
        .merge(devices::router())
        .merge(rollouts::router())
        .merge(broker::router())
        .merge(tokens::router());
    Router::new()
        .route("/healthz", get(healthz))
        .nest("/api/v1", api)
        .fallback(|| async { ApiError::not_found("route") })
        .layer(DefaultBodyLimit::max(JSON_BODY_LIMIT))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}

async fn healthz() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({"status": "ok"}))
}
