//! Webhooks and their deliveries.

use fleet_protocol::events::{WebhookDelivery, WebhookInfo};

use super::detail;
use crate::output::Table;

fn or_dash(v: Option<impl ToString>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "-".into())
}

/// `webhooks list`.
pub fn webhooks_table(items: &[WebhookInfo]) -> Table {
    let mut t = Table::new(["ID", "URL", "EVENTS", "ENABLED", "PENDING", "DELIVERED", "FAILED", "LAST"]);
    for w in items {
        t.row([
            w.id.clone(),
            w.url.clone(),
            w.events.join(","),
            if w.enabled { "yes" } else { "no" }.to_owned(),
            w.counts.pending.to_string(),
            w.counts.delivered.to_string(),
            w.counts.failed.to_string(),
            or_dash(w.last_status),
        ]);
    }
    t
}

/// `webhooks show`.
pub fn webhook(w: &WebhookInfo) -> String {
    detail(&[
        ("id", w.id.clone()),
        ("url", w.url.clone()),
        ("events", w.events.join(", ")),
        ("enabled", if w.enabled { "yes" } else { "no (the endpoint answered 410)" }.to_owned()),
        ("pending", w.counts.pending.to_string()),
        ("delivered", w.counts.delivered.to_string()),
        ("failed", w.counts.failed.to_string()),
        ("last status", w.last_status.map(|s| s.to_string()).unwrap_or_default()),
        ("last error", w.last_error.clone().unwrap_or_default()),
        ("last attempt", w.last_attempt_at.clone().unwrap_or_default()),
        ("created", w.created_at.clone()),
    ])
}

/// `webhooks deliveries`.
pub fn deliveries_table(items: &[WebhookDelivery]) -> Table {
    let mut t = Table::new(["ID", "TYPE", "STATE", "ATTEMPTS", "STATUS", "NEXT", "ERROR", "CREATED"]);
    for d in items {
        t.row([
            d.id.clone(),
            d.kind.clone(),
            d.state.clone(),
            d.attempts.to_string(),
            or_dash(d.last_status),
            or_dash(d.next_attempt_at.as_ref()),
            or_dash(d.last_error.as_ref()),
            d.created_at.clone(),
        ]);
    }
    t
}
