//! `fleetctl rollouts create|list|show|devices|pause|resume|cancel|watch`.

use std::collections::BTreeMap;

use anyhow::{Context as _, bail};
use fleet_protocol::api::{CreateRollout, Rollout, RolloutTarget};
use fleet_protocol::paths::RolloutAction;
use fleet_protocol::state::{DeviceState, Reason};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use serde_json::Value;

use super::devices::parse_label;
use super::print_json;
use crate::ApiClient;
use crate::sse::SseReader;

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// Firmware id to roll out.
    #[arg(long, conflicts_with = "config", required_unless_present = "config")]
    pub firmware: Option<String>,
    /// Configuration document id to roll out.
    #[arg(long)]
    pub config: Option<String>,
    /// Target these devices (comma-separated).
    #[arg(long, value_delimiter = ',', conflicts_with_all = ["hardware", "labels"])]
    pub devices: Vec<String>,
    /// Target devices of this hardware model.
    #[arg(long)]
    pub hardware: Option<String>,
    /// Target devices with this label (key=value); repeatable.
    #[arg(long = "label", value_parser = parse_label)]
    pub labels: Vec<(String, String)>,
    /// Cumulative percentages, e.g. 1,10,50,100.
    #[arg(long, value_delimiter = ',')]
    pub waves: Vec<f64>,
    #[arg(long)]
    pub wave_soak_s: Option<u64>,
    /// `auto` or `manual` (pause after each wave until resumed).
    #[arg(long)]
    pub wave_gate: Option<String>,
    #[arg(long)]
    pub max_failure_ratio: Option<f64>,
    #[arg(long)]
    pub min_finished: Option<u64>,
    #[arg(long)]
    pub max_per_minute: Option<u64>,
    #[arg(long)]
    pub max_in_flight: Option<u64>,
    #[arg(long)]
    pub max_attempts: Option<u64>,
    #[arg(long)]
    pub device_timeout_s: Option<u64>,
    /// Show the resolved targets and waves; create nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Follow the rollout until it ends (as `rollouts watch`).
    #[arg(long)]
    pub watch: bool,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Create and start a rollout.
    Create(Box<CreateArgs>),
    /// List rollouts.
    List,
    /// Show a rollout with its counts per state and per wave.
    Show {
        id: String,
    },
    /// Devices of a rollout, optionally in one state.
    Devices {
        id: String,
        #[arg(long)]
        state: Option<String>,
    },
    Pause {
        id: String,
    },
    Resume {
        id: String,
    },
    Cancel {
        id: String,
    },
    /// Live progress per wave; exits 0 when completed, non-zero when paused or cancelled.
    Watch {
        id: String,
    },
}

fn request(args: &CreateArgs) -> CreateRollout {
    let target = if args.devices.is_empty() {
        RolloutTarget::Query { hardware: args.hardware.clone(), labels: args.labels.iter().cloned().collect() }
    } else {
        RolloutTarget::Devices { devices: args.devices.clone() }
    };
    CreateRollout {
        firmware: args.firmware.clone(),
        config: args.config.clone(),
        target,
        waves: (!args.waves.is_empty()).then(|| args.waves.clone()),
        wave_soak_s: args.wave_soak_s,
        wave_gate: args.wave_gate.clone(),
        max_failure_ratio: args.max_failure_ratio,
        min_finished: args.min_finished,
        max_per_minute: args.max_per_minute,
        max_in_flight: args.max_in_flight,
        max_attempts: args.max_attempts,
        device_timeout_s: args.device_timeout_s,
    }
}

pub async fn run(client: &ApiClient, cmd: &Command) -> anyhow::Result<()> {
    match cmd {
        Command::Create(args) => create(client, args).await?,
        Command::List => {
            let mut cursor = None;
            loop {
                let page = client.list_rollouts(cursor.as_deref()).await?;
                for r in &page.items {
                    let version = r.artifact.as_ref().map_or("", |a| a.version.as_str());
                    println!("{}  {:9}  {}  {}", r.id, r.state, summary(&r.counts), version);
                }
                match page.next_cursor {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
        }
        Command::Show { id } => print_sorted(&client.get_rollout(id).await?)?,
        Command::Devices { id, state } => {
            let mut cursor = None;
            loop {
                let page = client.rollout_devices(id, state.as_deref(), cursor.as_deref()).await?;
                for e in &page.items {
                    let reason = e.reason.map_or("-", Reason::as_str);
                    println!("{}  {}  {}  attempts {}", e.device_id, e.state.as_str(), reason, e.attempts);
                }
                match page.next_cursor {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
        }
        Command::Pause { id } => print_state(&client.control_rollout(id, RolloutAction::Pause).await?),
        Command::Resume { id } => print_state(&client.control_rollout(id, RolloutAction::Resume).await?),
        Command::Cancel { id } => print_state(&client.control_rollout(id, RolloutAction::Cancel).await?),
        Command::Watch { id } => watch(client, id).await?,
    }
    Ok(())
}

async fn create(client: &ApiClient, args: &CreateArgs) -> anyhow::Result<()> {
    if args.dry_run {
        return print_sorted(&client.plan_rollout(&request(args)).await?);
    }
    let created = client.create_rollout(&request(args)).await?;
    println!("created rollout {}", created.id);
    if args.watch {
        return watch(client, &created.id).await;
    }
    Ok(())
}

/// Pretty JSON with every object's keys in order, as `fleetctl` has always shown rollouts.
fn print_sorted(body: &impl serde::Serialize) -> anyhow::Result<()> {
    print_json(&serde_json::to_value(body)?)
}

/// The rollout's new state, quoted as JSON.
fn print_state(r: &Rollout) {
    println!("{}", Value::from(r.state.as_str()));
}

/// `succeeded 12, failed 1, …`.
fn summary(counts: &BTreeMap<String, u64>) -> String {
    counts.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", ")
}

/// Devices in a final state.
fn finished(counts: &BTreeMap<String, u64>) -> u64 {
    counts
        .iter()
        .filter(|(state, _)| DeviceState::parse(state).is_some_and(DeviceState::is_final))
        .map(|(_, n)| n)
        .sum()
}

/// Progress bars per wave, fed by the SSE stream.
async fn watch(client: &ApiClient, id: &str) -> anyhow::Result<()> {
    let response = client.rollout_events(id).await?;
    let mut events = SseReader::new(Box::pin(response.bytes_stream()));
    let bars = MultiProgress::new();
    let style = ProgressStyle::with_template("wave {prefix:>3}% {bar:30} {pos}/{len} {msg}").expect("a valid template");
    let mut wave_bars: Vec<ProgressBar> = Vec::new();
    while let Some(event) = events.next_event().await? {
        let body: Rollout = serde_json::from_str(&event.data).context("a rollout event")?;
        while wave_bars.len() < body.waves.len() {
            let w = &body.waves[wave_bars.len()];
            let bar = bars.add(ProgressBar::new(w.size));
            bar.set_style(style.clone());
            // As JSON writes it (`100.0`), as before.
            bar.set_prefix(Value::from(w.percent).to_string());
            wave_bars.push(bar);
        }
        for (bar, w) in wave_bars.iter().zip(&body.waves) {
            bar.set_position(finished(&w.counts));
            bar.set_message(format!("{} ({})", w.state.as_str(), summary(&w.counts)));
        }
        match body.state.as_str() {
            "completed" => {
                wave_bars.iter().for_each(ProgressBar::finish);
                println!("completed: {}", summary(&body.counts));
                return Ok(());
            }
            "paused" => {
                wave_bars.iter().for_each(ProgressBar::abandon);
                let reason = body.reason.as_deref().unwrap_or("operator");
                bail!("rollout {id} paused ({reason}): {}", summary(&body.counts));
            }
            "cancelled" => {
                wave_bars.iter().for_each(ProgressBar::abandon);
                bail!("rollout {id} cancelled: {}", summary(&body.counts));
            }
            _ => {}
        }
    }
    bail!("the event stream ended before the rollout did")
}
