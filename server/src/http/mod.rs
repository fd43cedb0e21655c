//! The HTTP API (CONTRACT §3): one module per resource, each owning its `router()`;
//! [`error`] maps every failure to problem+json once; [`refusals`] dresses the routing and
//! serving layers' own refusals (405, 414, 416, 431) the same way; [`ui`] serves the
//! operator dashboard (CONTRACT §8) beside the API, outside its list of routes.

pub mod artifacts;
pub mod broker;
pub mod devices;
pub mod error;
pub mod extract;
pub mod keys;
pub mod openapi;
mod refusals;
pub mod rollouts;
pub mod routes;
pub mod tokens;
pub mod trust;
pub mod ui;
mod upload;
mod upload_budget;
pub mod views;
pub mod webhooks;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use fleet_protocol::{ArtifactKind, paths};
use tower_http::request_id::{MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::auth::Operator;
use crate::metrics::RouteLabels;
use crate::state::AppState;
use error::ApiError;
use routes::ApiRouter;

/// JSON request bodies are small; uploads lift this limit on their own route.
const JSON_BODY_LIMIT: usize = 1024 * 1024;

/// Device requests (a command confirmed, a blob's response started) served at once; the
/// rest wait their turn here instead of in the database's connection queue, where every
/// operator request would wait behind them (BENCHMARKS.md, "API under load"). Blob
/// downloads by operators pass the same gate; other operator routes do not.
const DEVICE_REQUESTS_AT_ONCE: usize = 32;

/// The gate of the routes a fleet calls all at once during a rollout.
pub type DeviceGate = tower::limit::GlobalConcurrencyLimitLayer;

/// Every route, with the list of (method, path) it serves.
fn api() -> ApiRouter {
    let device_gate = DeviceGate::new(DEVICE_REQUESTS_AT_ONCE);
    let api = ApiRouter::new()
        .merge(keys::router())
        .merge(artifacts::router(ArtifactKind::Firmware, &device_gate))
        .merge(artifacts::router(ArtifactKind::Config, &device_gate))
        .merge(devices::router(&device_gate))
        .merge(rollouts::router())
        .merge(broker::router())
        .merge(tokens::router())
        .merge(trust::router())
        .merge(webhooks::router())
        .get(paths::OPENAPI, get(openapi::document));
    ApiRouter::new()
        .get(paths::HEALTHZ, get(healthz))
        .get("/readyz", get(readyz))
        .get("/metrics", get(metrics))
        .nest(paths::API_PREFIX, api)
}

/// The (method, path) pairs the server serves, besides the Swagger UI's pages.
pub fn routes() -> Vec<(axum::http::Method, String)> {
    api().into_parts().1
}

/// The whole API, the Swagger UI at `/api/docs` and the dashboard under `/ui/`.
pub fn router(state: AppState) -> Router {
    let (api, _) = api().into_parts();
    let docs = utoipa_swagger_ui::SwaggerUi::new("/api/docs")
        .config(utoipa_swagger_ui::Config::new([paths::api_path(paths::OPENAPI)]));
    api.merge(Router::from(docs))
        .merge(ui::router())
        .layer(middleware::from_fn_with_state(state.clone(), track_latency))
        .fallback(|| async { ApiError::not_found("route") })
        .layer(middleware::from_fn(refusals::as_problems))
        .layer(DefaultBodyLimit::max(JSON_BODY_LIMIT))
        // Outermost last: a request gets its id, then its span, and the id goes back out.
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .layer(SetRequestIdLayer::x_request_id(RequestIds::new()))
        .with_state(state)
}

/// Liveness: the process answers.
async fn healthz() -> axum::Json<serde_json::Value> {
    axum::Json(serde_json::json!({"status": "ok"}))
}

/// Readiness: the database answers and the MQTT client is connected; 503 otherwise, with
/// which check failed.
async fn readyz(State(app): State<AppState>) -> (StatusCode, axum::Json<serde_json::Value>) {
    let database = match tokio::time::timeout(std::time::Duration::from_secs(2), app.store.now_ms()).await {
        Ok(Ok(_)) => "ok".to_owned(),
        Ok(Err(e)) => e.to_string(),
        Err(_) => "no answer within 2 s".to_owned(),
    };
    let broker = if app.mqtt.is_connected() { "ok" } else { "not connected" };
    let ready = database == "ok" && broker == "ok";
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    let body = serde_json::json!({"status": if ready { "ready" } else { "not_ready" },
        "checks": {"database": database, "broker": broker}});
    (status, axum::Json(body))
}

/// Prometheus metrics, for operator tokens (a read-only one is enough).
async fn metrics(State(app): State<AppState>, _: Operator) -> Result<impl axum::response::IntoResponse, ApiError> {
    let body = app.metrics.render(app.store.as_ref()).await?;
    Ok(([(CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")], body))
}

/// Request ids: `<process prefix>-<n>`, unique across replicas; a caller's own
/// `x-request-id` is kept.
#[derive(Debug, Clone)]
struct RequestIds {
    prefix: Arc<str>,
    next: Arc<AtomicU64>,
}

impl RequestIds {
    /// The prefix is random (it is not a secret: without randomness, the process id).
    fn new() -> Self {
        let prefix =
            crate::random::bytes::<4>().map(hex::encode).unwrap_or_else(|_| format!("{:08x}", std::process::id()));
        Self { prefix: prefix.into(), next: Arc::new(AtomicU64::new(1)) }
    }
}

impl MakeRequestId for RequestIds {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        HeaderValue::from_str(&format!("{}-{n}", self.prefix)).ok().map(RequestId::new)
    }
}

/// Every log line of a request carries its method, path (never the query) and id; headers
/// (tokens) are never logged.
fn request_span(req: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    let id = req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("-");
    tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id = %id)
}

/// Records each request's latency under its route pattern.
async fn track_latency(State(app): State<AppState>, req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map_or("unmatched", MatchedPath::as_str).to_owned();
    let method = req.method().to_string();
    let started = Instant::now();
    let response = next.run(req).await;
    let labels = RouteLabels { method, route, status: response.status().as_u16() };
    app.metrics.http_requests.get_or_create(&labels).observe(started.elapsed().as_secs_f64());
    response
}
