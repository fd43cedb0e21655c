//! `fleetctl rollouts create|list|show|devices|pause|resume|cancel|watch`.

use std::collections::BTreeMap;

use anyhow::{Context as _, bail};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use serde_json::{Value, json};

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

fn body(args: &CreateArgs) -> Value {
    let target = if args.devices.is_empty() {
        let labels: BTreeMap<_, _> = args.labels.iter().cloned().collect();
        json!({"hardware": args.hardware, "labels": labels})
    } else {
        json!({"devices": args.devices})
    };
    let mut b = json!({"target": target});
    let fields = [
        ("firmware", json!(args.firmware)),
        ("config", json!(args.config)),
        ("waves", if args.waves.is_empty() { Value::Null } else { json!(args.waves) }),
        ("wave_soak_s", json!(args.wave_soak_s)),
        ("wave_gate", json!(args.wave_gate)),
        ("max_failure_ratio", json!(args.max_failure_ratio)),
        ("min_finished", json!(args.min_finished)),
        ("max_per_minute", json!(args.max_per_minute)),
        ("max_in_flight", json!(args.max_in_flight)),
        ("max_attempts", json!(args.max_attempts)),
        ("device_timeout_s", json!(args.device_timeout_s)),
    ];
    for (k, v) in fields {
        if !v.is_null() {
            b[k] = v;
        }
    }
    b
}

pub async fn run(client: &ApiClient, cmd: &Command) -> anyhow::Result<()> {
    match cmd {
        Command::Create(args) => {
            let created = client.create_rollout(&body(args), args.dry_run).await?;
            if args.dry_run {
                return print_json(&created);
            }
            let id = created["id"].as_str().context("no id in the answer")?.to_owned();
            println!("created rollout {id}");
            if args.watch {
                return watch(client, &id).await;
            }
        }
        Command::List => {
            let mut cursor = None;
            loop {
                let page = client.list_rollouts(cursor.as_deref()).await?;
                for r in &page.items {
                    println!(
                        "{}  {:9}  {}  {}",
                        r["id"].as_str().unwrap_or(""),
                        r["state"].as_str().unwrap_or(""),
                        summary(r),
                        r["artifact"]["version"].as_str().unwrap_or("")
                    );
                }
                match page.next_cursor {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
        }
        Command::Show { id } => print_json(&client.get_rollout(id).await?)?,
        Command::Devices { id, state } => {
            let mut cursor = None;
            loop {
                let page = client.rollout_devices(id, state.as_deref(), cursor.as_deref()).await?;
                for e in &page.items {
                    println!(
                        "{}  {}  {}  attempts {}",
                        e["device_id"].as_str().unwrap_or(""),
                        e["state"].as_str().unwrap_or(""),
                        e["reason"].as_str().unwrap_or("-"),
                        e["attempts"]
                    );
                }
                match page.next_cursor {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
        }
        Command::Pause { id } => println!("{}", client.control_rollout(id, "pause").await?["state"]),
        Command::Resume { id } => println!("{}", client.control_rollout(id, "resume").await?["state"]),
        Command::Cancel { id } => println!("{}", client.control_rollout(id, "cancel").await?["state"]),
        Command::Watch { id } => watch(client, id).await?,
    }
    Ok(())
}

/// `succeeded 12, failed 1, …`.
fn summary(r: &Value) -> String {
    r["counts"]
        .as_object()
        .map(|m| m.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", "))
        .unwrap_or_default()
}

fn finished(counts: &Value) -> u64 {
    let finals = ["succeeded", "failed", "rejected", "rolled_back", "timed_out", "cancelled"];
    finals.iter().map(|s| counts[*s].as_u64().unwrap_or(0)).sum()
}

/// Progress bars per wave, fed by the SSE stream.
async fn watch(client: &ApiClient, id: &str) -> anyhow::Result<()> {
    let response = client.rollout_events(id).await?;
    let mut events = SseReader::new(Box::pin(response.bytes_stream()));
    let bars = MultiProgress::new();
    let style = ProgressStyle::with_template("wave {prefix:>3}% {bar:30} {pos}/{len} {msg}").expect("a valid template");
    let mut wave_bars: Vec<ProgressBar> = Vec::new();
    while let Some(event) = events.next_event().await? {
        let body: Value = serde_json::from_str(&event.data).context("a rollout event")?;
        let waves = body["waves"].as_array().cloned().unwrap_or_default();
        while wave_bars.len() < waves.len() {
            let w = &waves[wave_bars.len()];
            let bar = bars.add(ProgressBar::new(w["size"].as_u64().unwrap_or(0)));
            bar.set_style(style.clone());
            bar.set_prefix(w["percent"].to_string());
            wave_bars.push(bar);
        }
        for (bar, w) in wave_bars.iter().zip(&waves) {
            bar.set_position(finished(&w["counts"]));
            bar.set_message(format!("{} ({})", w["state"].as_str().unwrap_or(""), summary(w)));
        }
        match body["state"].as_str() {
            Some("completed") => {
                wave_bars.iter().for_each(ProgressBar::finish);
                println!("completed: {}", summary(&body));
                return Ok(());
            }
            Some("paused") => {
                wave_bars.iter().for_each(ProgressBar::abandon);
                bail!("rollout {id} paused ({}): {}", body["reason"].as_str().unwrap_or("operator"), summary(&body));
            }
            Some("cancelled") => {
                wave_bars.iter().for_each(ProgressBar::abandon);
                bail!("rollout {id} cancelled: {}", summary(&body));
            }
            _ => {}
        }
    }
    bail!("the event stream ended before the rollout did")
}
