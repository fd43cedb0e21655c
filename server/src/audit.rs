//! The audit trail: who did what to which resource. Handlers record an action after it
//! happened; a failure to record it is logged loudly, not turned into an error.

use crate::store::{AuditRecord, Store};

/// Who did it: an operator token's name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor(pub String);

/// Records `action` on `target` by `actor`.
pub async fn record(store: &dyn Store, actor: &Actor, action: &str, target: &str, details: serde_json::Value) {
    let entry = AuditRecord {
        id: 0,
        at_ms: crate::clock::now_ms(),
        actor: actor.0.clone(),
        action: action.to_owned(),
        target: target.to_owned(),
        details: details.to_string(),
    };
    tracing::info!(actor = %actor.0, action, target, "audit");
    if let Err(e) = store.record_audit(&entry).await {
        tracing::error!(actor = %actor.0, action, target, "audit trail not written: {e}");
    }
}
