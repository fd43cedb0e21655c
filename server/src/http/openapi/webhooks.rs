//! The `/webhooks` operations (CONTRACT §10).

use fleet_protocol::api::List;
use fleet_protocol::events::{NewWebhook, WebhookCreated, WebhookDelivery, WebhookInfo};
use fleet_protocol::problem::Problem;

#[utoipa::path(get, path = "/api/v1/webhooks", tag = "webhooks",
    params(("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, description = "OK, with delivery counts", body = List<WebhookInfo>), (status = 400, description = "bad_request: limit outside 1 to 1000", body = Problem), (status = 401, description = "unauthorized: no or an unknown token", body = Problem), (status = 403, description = "forbidden: a device token, a read-only token on a write, or another device", body = Problem)))]
pub(super) fn webhooks_list() {}

#[utoipa::path(post, path = "/api/v1/webhooks", tag = "webhooks", request_body = NewWebhook,
    responses((status = 201, description = "The secret is shown only now", body = WebhookCreated),
        (status = 400, description = "bad_request: malformed input, a URL that is neither https:// nor http:// to a loopback host, or an unknown event type", body = Problem),
        (status = 401, description = "unauthorized: no or an unknown token", body = Problem), (status = 403, description = "forbidden: a device token, a read-only token on a write, or another device", body = Problem)))]
pub(super) fn webhooks_create() {}

#[utoipa::path(get, path = "/api/v1/webhooks/{id}", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 200, description = "Delivery counts, last status, last error", body = WebhookInfo),
        (status = 401, description = "unauthorized: no or an unknown token", body = Problem), (status = 403, description = "forbidden: a device token, a read-only token on a write, or another device", body = Problem), (status = 404, description = "not_found", body = Problem)))]
pub(super) fn webhooks_show() {}

#[utoipa::path(delete, path = "/api/v1/webhooks/{id}", tag = "webhooks", params(("id" = String, Path)),
    responses((status = 204, description = "Removed, with its pending deliveries"),
        (status = 401, description = "unauthorized: no or an unknown token", body = Problem), (status = 403, description = "forbidden: a device token, a read-only token on a write, or another device", body = Problem), (status = 404, description = "not_found", body = Problem)))]
pub(super) fn webhooks_remove() {}

#[utoipa::path(get, path = "/api/v1/webhooks/{id}/deliveries", tag = "webhooks",
    params(("id" = String, Path), ("limit" = Option<u32>, Query), ("cursor" = Option<String>, Query)),
    responses((status = 200, description = "Newest first", body = List<WebhookDelivery>), (status = 400, description = "bad_request: limit outside 1 to 1000", body = Problem),
        (status = 401, description = "unauthorized: no or an unknown token", body = Problem), (status = 403, description = "forbidden: a device token, a read-only token on a write, or another device", body = Problem), (status = 404, description = "not_found", body = Problem)))]
pub(super) fn webhooks_deliveries() {}
