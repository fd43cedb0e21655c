//! `/webhooks` (CONTRACT §10): operators register HTTPS endpoints (HTTP only to loopback)
//! for event types; the secret is shown once. Delivery state is read from the outbox
//! (`events::webhooks::deliver` sends it).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post};
use fleet_protocol::api::List;
use fleet_protocol::events::{DeliveryCounts, NewWebhook, WebhookCreated, WebhookDelivery, WebhookInfo, parse_pattern};
use serde::Deserialize;

use super::error::{ApiError, OrNotFound as _};
use super::extract::{ApiJson, ApiQuery, page_request};
use super::routes::ApiRouter;
use crate::auth::{Admin, Operator};
use crate::events::webhooks::{check_url, new_secret, webhook_id};
use crate::state::AppState;
use crate::store::events::{DeliveryRecord, WebhookRecord};
use crate::timestamp::rfc3339;

pub fn router() -> ApiRouter {
    ApiRouter::new()
        .get("/webhooks", get(list))
        .post("/webhooks", post(create))
        .get("/webhooks/{id}", get(show))
        .delete("/webhooks/{id}", delete(remove))
        .get("/webhooks/{id}/deliveries", get(deliveries))
}

/// At most this many patterns per webhook.
const MAX_EVENTS: usize = 32;

async fn create(
    State(app): State<AppState>,
    admin: Admin,
    ApiJson(req): ApiJson<NewWebhook>,
) -> Result<(StatusCode, Json<WebhookCreated>), ApiError> {
    let url = check_url(&req.url).map_err(|e| ApiError::bad_request(e.to_string()))?;
    if req.events.is_empty() || req.events.len() > MAX_EVENTS {
        return Err(ApiError::bad_request(format!("events: 1 to {MAX_EVENTS} event types or patterns")));
    }
    let events = req.events.iter().map(|p| parse_pattern(p)).collect::<Result<Vec<_>, _>>();
    let events = events.map_err(|e| ApiError::bad_request(format!("events: {e}")))?;
    let record = WebhookRecord {
        id: webhook_id()?,
        url: url.to_string(),
        events,
        secret: new_secret()?,
        enabled: true,
        last_status: None,
        last_error: None,
        last_attempt_at_ms: None,
        created_at_ms: crate::clock::now_ms(),
    };
    app.store.insert_webhook(&record).await?;
    let details = serde_json::json!({"url": record.url, "events": record.events});
    app.audit(&admin, "webhook.created", &record.id, details).await;
    Ok((StatusCode::CREATED, Json(WebhookCreated { id: record.id, secret: record.secret })))
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
) -> Result<Json<List<WebhookInfo>>, ApiError> {
    let page = app.store.list_webhooks(&page_request(q.limit, q.cursor)?).await?;
    let mut items = Vec::with_capacity(page.items.len());
    for w in page.items {
        items.push(info(&app, w).await?);
    }
    Ok(Json(List { items, next_cursor: page.next_cursor }))
}

async fn show(State(app): State<AppState>, _: Operator, Path(id): Path<String>) -> Result<Json<WebhookInfo>, ApiError> {
    let webhook = app.store.get_webhook(&id).await.or_not_found(|| format!("webhook {id}"))?;
    Ok(Json(info(&app, webhook).await?))
}

async fn remove(State(app): State<AppState>, admin: Admin, Path(id): Path<String>) -> Result<StatusCode, ApiError> {
    app.store.delete_webhook(&id).await.or_not_found(|| format!("webhook {id}"))?;
    app.audit(&admin, "webhook.deleted", &id, serde_json::json!({})).await;
    Ok(StatusCode::NO_CONTENT)
}

async fn deliveries(
    State(app): State<AppState>,
    _: Operator,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<List<WebhookDelivery>>, ApiError> {
    let page = page_request(q.limit, q.cursor)?;
    app.store.get_webhook(&id).await.or_not_found(|| format!("webhook {id}"))?;
    let page = app.store.list_deliveries(&id, &page).await?;
    Ok(Json(super::views::list(page, delivery)))
}

/// A webhook with its delivery counts (never its secret).
async fn info(app: &AppState, w: WebhookRecord) -> Result<WebhookInfo, ApiError> {
    let tally = app.store.delivery_tally(&w.id).await?;
    Ok(WebhookInfo {
        counts: DeliveryCounts { pending: tally.pending, delivered: tally.delivered, failed: tally.failed },
        last_status: w.last_status.and_then(|s| u16::try_from(s).ok()),
        last_attempt_at: w.last_attempt_at_ms.map(rfc3339),
        created_at: rfc3339(w.created_at_ms),
        id: w.id,
        url: w.url,
        events: w.events,
        enabled: w.enabled,
        last_error: w.last_error,
    })
}

fn delivery(d: DeliveryRecord) -> WebhookDelivery {
    WebhookDelivery {
        next_attempt_at: (d.state == "pending").then(|| rfc3339(d.next_attempt_at_ms)),
        last_status: d.last_status.and_then(|s| u16::try_from(s).ok()),
        created_at: rfc3339(d.created_at_ms),
        delivered_at: d.delivered_at_ms.map(rfc3339),
        id: d.id,
        kind: d.event_type,
        state: d.state,
        attempts: d.attempts,
        last_error: d.last_error,
    }
}
