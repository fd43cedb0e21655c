//! `fleetctl rollouts watch` (and `create --watch`): progress per wave from the event
//! stream, the reasons of failures (`rejected 1 (untrusted_key)`), and — when nothing has
//! moved for a while — which of the devices the wave waits for are offline, saying so
//! plainly when none of them can make progress. `--output json` prints each event's body
//! as one JSON line instead.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context as _, bail};
use fleet_protocol::api::{Rollout, RolloutDevice};
use fleet_protocol::state::{DeviceState, Reason};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use tokio::time::Instant;

use crate::output::Format;
use crate::output::views::plural;
use crate::output::views::rollouts::{Reasons, counts, finished, is_failure, some_ids};
use crate::sse::SseReader;
use crate::{ApiClient, ClientError};

/// Counts unchanged this long: look for offline devices.
const STALL_AFTER: Duration = Duration::from_secs(5);
/// And look again at most this often while nothing moves.
const RECHECK: Duration = Duration::from_secs(15);
/// Pages of entries read per state (100 each) when looking for reasons or offline devices.
const MAX_PAGES: usize = 20;
/// Devices whose presence is asked one by one; a larger remainder is only counted.
const MAX_LOOKUPS: usize = 100;

/// Follows the rollout until it completes (Ok), pauses or is cancelled (an error).
pub async fn watch(client: &ApiClient, out: Format, id: &str) -> anyhow::Result<()> {
    let response = client.rollout_events(id).await?;
    let mut events = SseReader::new(Box::pin(response.bytes_stream()));
    let mut bars = WaveBars::default();
    let mut follow = Follow::new();
    while let Some(event) = events.next_event().await? {
        let body: Rollout = serde_json::from_str(&event.data).context("a rollout event")?;
        if out.is_json() {
            println!("{}", event.data);
        } else {
            follow.reasons(client, &body).await?;
            if let Some(note) = follow.stall(client, &body).await? {
                bars.note(&note);
            }
            bars.show(&body);
        }
        let summary = counts(&body.counts, &follow.reasons);
        match body.state.as_str() {
            "completed" => {
                bars.end(ProgressBar::finish);
                if !out.is_json() {
                    println!("completed: {summary}");
                }
                return Ok(());
            }
            "paused" => {
                bars.end(ProgressBar::abandon);
                let reason = body.reason.as_deref().unwrap_or("operator");
                let why = body.pause_detail.as_deref().map(|d| format!("\n{d}")).unwrap_or_default();
                bail!("rollout {id} paused ({reason}): {summary}{why}");
            }
            "cancelled" => {
                bars.end(ProgressBar::abandon);
                bail!("rollout {id} cancelled: {summary}");
            }
            _ => {}
        }
    }
    bail!("the event stream ended before the rollout did")
}

/// Per failure state, how many devices carry each reason. With `known`, only the states
/// whose count differs from it are read again.
pub async fn failure_reasons(
    client: &ApiClient,
    body: &Rollout,
    known: Option<(&BTreeMap<String, u64>, &Reasons)>,
) -> Result<Reasons, ClientError> {
    let mut reasons = Reasons::new();
    for (state, n) in body.counts.iter().filter(|(s, n)| is_failure(s) && **n > 0) {
        let unchanged = known.filter(|(counts, _)| counts.get(state) == Some(n)).and_then(|(_, r)| r.get(state));
        if let Some(r) = unchanged {
            reasons.insert(state.clone(), r.clone());
            continue;
        }
        let tally = reasons.entry(state.clone()).or_default();
        for entry in entries(client, &body.id, state).await? {
            *tally.entry(entry.reason.map_or("no reason", Reason::as_str).to_owned()).or_default() += 1;
        }
    }
    Ok(reasons)
}

/// The rollout's entries in `state`, at most [`MAX_PAGES`] pages of them.
async fn entries(client: &ApiClient, id: &str, state: &str) -> Result<Vec<RolloutDevice>, ClientError> {
    let (mut items, mut cursor) = (Vec::new(), None);
    for _ in 0..MAX_PAGES {
        let page = client.rollout_devices(id, Some(state), cursor.as_deref()).await?;
        items.extend(page.items);
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    Ok(items)
}

/// What the watch remembers between events.
#[derive(Debug)]
struct Follow {
    reasons: Reasons,
    /// The counts the reasons were read for.
    reasons_for: BTreeMap<String, u64>,
    /// The counts last seen, and since when they have not changed.
    counts: BTreeMap<String, u64>,
    since: Instant,
    checked: Option<Instant>,
    /// The last note printed, not to repeat it.
    noted: Option<String>,
}

impl Follow {
    fn new() -> Self {
        let reasons = Reasons::new();
        Self {
            reasons,
            reasons_for: BTreeMap::new(),
            counts: BTreeMap::new(),
            since: Instant::now(),
            checked: None,
            noted: None,
        }
    }

    /// Reads the reasons again when the count of a failure state changed.
    async fn reasons(&mut self, client: &ApiClient, body: &Rollout) -> Result<(), ClientError> {
        let failures = |c: &BTreeMap<String, u64>| {
            c.iter().filter(|(s, _)| is_failure(s)).map(|(s, n)| (s.clone(), *n)).collect::<Vec<_>>()
        };
        if failures(&body.counts) != failures(&self.reasons_for) {
            self.reasons = failure_reasons(client, body, Some((&self.reasons_for, &self.reasons))).await?;
            self.reasons_for = body.counts.clone();
        }
        Ok(())
    }

    /// A note about offline devices, when counts have not moved for [`STALL_AFTER`] and it
    /// differs from the last one.
    async fn stall(&mut self, client: &ApiClient, body: &Rollout) -> Result<Option<String>, ClientError> {
        if body.counts != self.counts {
            self.counts = body.counts.clone();
            self.since = Instant::now();
            return Ok(None);
        }
        let recheck = self.checked.is_none_or(|at| at.elapsed() >= RECHECK);
        if body.state != "running" || self.since.elapsed() < STALL_AFTER || !recheck {
            return Ok(None);
        }
        self.checked = Some(Instant::now());
        let note = offline_note(client, body).await?;
        if note.is_none() || note == self.noted {
            return Ok(None);
        }
        self.noted.clone_from(&note);
        Ok(note)
    }
}

/// The devices of the current wave (and earlier ones) not yet final, and which are offline.
async fn offline_note(client: &ApiClient, body: &Rollout) -> Result<Option<String>, ClientError> {
    let Some(wave) = body.waves.get(body.current_wave as usize) else { return Ok(None) };
    let mut waiting = Vec::new();
    for state in wave.counts.keys().filter(|s| DeviceState::parse(s).is_some_and(|s| !s.is_final())) {
        let found = entries(client, &body.id, state).await?;
        waiting.extend(found.into_iter().filter(|e| e.wave <= body.current_wave).map(|e| e.device_id));
    }
    if waiting.is_empty() {
        return Ok(None);
    }
    if waiting.len() > MAX_LOOKUPS {
        return Ok(Some(format!("waiting for {} of wave {}", plural(waiting.len(), "device"), body.current_wave + 1)));
    }
    let mut offline = Vec::new();
    for id in &waiting {
        match client.get_device(id).await {
            Ok(d) if d.online => {}
            Ok(_) => offline.push(id.clone()),
            Err(ClientError::Problem(p)) if p.status == 404 => offline.push(id.clone()),
            Err(e) => return Err(e),
        }
    }
    Ok(stall_text(&waiting, &offline))
}

/// What to say about the devices a wave waits for.
fn stall_text(waiting: &[String], offline: &[String]) -> Option<String> {
    if offline.is_empty() {
        return None;
    }
    if offline.len() == waiting.len() {
        let which = if offline.len() == 1 {
            "the 1 remaining device is offline".to_owned()
        } else {
            format!("all {} remaining devices are offline", offline.len())
        };
        return Some(format!(
            "nothing can progress: {which} ({}); they get the update when they connect \
             (Ctrl-C stops watching; the rollout keeps running)",
            some_ids(offline)
        ));
    }
    Some(format!("waiting for {}, {} offline: {}", plural(waiting.len(), "device"), offline.len(), some_ids(offline)))
}

/// One progress bar per wave (on the terminal; hidden when it is not one).
#[derive(Debug, Default)]
struct WaveBars {
    multi: MultiProgress,
    bars: Vec<ProgressBar>,
}

impl WaveBars {
    fn show(&mut self, body: &Rollout) {
        let style = ProgressStyle::with_template("wave {prefix:>4} {bar:30} {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar());
        while self.bars.len() < body.waves.len() {
            let w = &body.waves[self.bars.len()];
            let bar = self.multi.add(ProgressBar::new(w.size));
            bar.set_style(style.clone());
            bar.set_prefix(format!("{}%", w.percent));
            self.bars.push(bar);
        }
        for (bar, w) in self.bars.iter().zip(&body.waves) {
            bar.set_position(finished(&w.counts));
            bar.set_message(format!("{} ({})", w.state.as_str(), counts(&w.counts, &Reasons::new())));
        }
    }

    /// A line above the bars (printed plainly when they are hidden).
    fn note(&self, text: &str) {
        self.multi.suspend(|| println!("{text}"));
    }

    fn end(&self, how: fn(&ProgressBar)) {
        self.bars.iter().for_each(how);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn all_remaining_devices_offline_means_nothing_can_progress() {
        let text = stall_text(&ids(&["gw-2", "gw-berlin-1"]), &ids(&["gw-2", "gw-berlin-1"])).unwrap();
        assert!(text.starts_with("nothing can progress: all 2 remaining devices are offline (gw-2, gw-berlin-1)"));
        let one = stall_text(&ids(&["gw-2"]), &ids(&["gw-2"])).unwrap();
        assert!(one.starts_with("nothing can progress: the 1 remaining device is offline (gw-2)"), "{one}");
    }

    #[test]
    fn some_offline_devices_are_named() {
        let text = stall_text(&ids(&["a", "b", "c"]), &ids(&["c"])).unwrap();
        assert_eq!(text, "waiting for 3 devices, 1 offline: c");
    }

    #[test]
    fn nothing_offline_says_nothing() {
        assert_eq!(stall_text(&ids(&["a"]), &[]), None);
    }
}
