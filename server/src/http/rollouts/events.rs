//! `GET /rollouts/{id}/events`: the rollout body as Server-Sent Events, for as long as the
//! token that opened the stream is valid.
//!
//! An event `rollout` with the full body goes out at once, whenever the body in the
//! database changes (checked every second, or sooner when this replica's engine or
//! ingester says so), and at least every 5 s. Fed from the database, so any replica serves
//! any stream. Every [`TOKEN_RECHECK`] the stream asks the database whether its token
//! still belongs to an operator and ends when it does not (revoked or replaced).
//!
//! A rollout in a final state (`completed`, `cancelled`) no longer changes: its body is
//! sent once more and the stream ends, so `curl -N` and other clients return.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use fleet_protocol::api::Rollout;
use futures_util::Stream;
use tokio::sync::broadcast;
use tokio::time::Instant;

use super::super::error::ApiError;
use crate::auth::{Operator, TokenHash};
use crate::rollout::view::rollout_body;
use crate::state::AppState;
use crate::store::TokenOwner;

/// How often an open stream checks that its token is still valid.
pub const TOKEN_RECHECK: Duration = Duration::from_secs(2);

pub(super) async fn events(
    State(app): State<AppState>,
    _: Operator,
    TokenHash(token_hash): TokenHash,
    Path(id): Path<String>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    super::load(&app, &id).await?;
    let changes = app.engine.as_ref().map(|e| e.changes.subscribe());
    let watch = Watch { app, id, token_hash, changes, last: None, checked: Instant::now(), ended: false };
    let stream = futures_util::stream::unfold(watch, |mut w| async move { w.next_event().await.map(|e| (Ok(e), w)) });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// One open stream.
struct Watch {
    app: AppState,
    id: String,
    token_hash: String,
    changes: Option<broadcast::Receiver<String>>,
    /// The last body sent, and when.
    last: Option<(Rollout, Instant)>,
    /// When the token was last found valid.
    checked: Instant,
    /// The final body has been sent.
    ended: bool,
}

impl Watch {
    /// The next event, or `None` to end the stream (token gone, rollout gone, or the
    /// rollout's final body sent).
    async fn next_event(&mut self) -> Option<Event> {
        if self.ended {
            return None;
        }
        loop {
            if self.last.is_some() {
                let _ = tokio::time::timeout(Duration::from_secs(1), self.changed()).await;
            }
            if !self.token_still_valid().await {
                return None;
            }
            let record = self.app.store.get_rollout(&self.id).await.ok()?;
            let body = rollout_body(self.app.store.as_ref(), &self.app.artifacts, &record).await.ok()?;
            self.ended = !record.state.is_active();
            let due =
                self.last.as_ref().is_none_or(|(prev, at)| *prev != body || at.elapsed() >= Duration::from_secs(5));
            if due {
                let event = Event::default().event("rollout").json_data(&body).ok()?;
                self.last = Some((body, Instant::now()));
                return Some(event);
            }
        }
    }

    /// Returns when this rollout changed (as far as this replica knows); never without a
    /// source of changes.
    async fn changed(&mut self) {
        let Some(rx) = self.changes.as_mut() else {
            return std::future::pending().await;
        };
        loop {
            match rx.recv().await {
                Ok(changed) if changed == self.id => return,
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => std::future::pending::<()>().await,
            }
        }
    }

    /// Asks the database at most every [`TOKEN_RECHECK`]; a failed lookup is asked again
    /// next time rather than ending the stream.
    async fn token_still_valid(&mut self) -> bool {
        if self.checked.elapsed() < TOKEN_RECHECK {
            return true;
        }
        match self.app.store.token_owner(&self.token_hash).await {
            Ok(Some(TokenOwner::Operator(_))) => {
                self.checked = Instant::now();
                true
            }
            Ok(_) => false,
            Err(e) => {
                tracing::warn!(error = %e, "re-checking an event stream's token");
                true
            }
        }
    }
}
