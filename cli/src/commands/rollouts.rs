//! `fleetctl rollouts create|list|show|devices|pause|resume|cancel|watch`, and `device`
//! for one device of a rollout ([`super::rollout_devices`]).

use fleet_protocol::api::{CreateRollout, MaintenanceWindow, RolloutTarget};
use fleet_protocol::paths::RolloutAction;

use super::devices::parse_label;
use super::window::parse_window;
use super::{say, watch};
use crate::ApiClient;
use crate::output::{Format, print_json, print_list, views};

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
    /// Cumulative percentages of the targets, e.g. 1,10,50,100 (default: 100).
    #[arg(long, value_delimiter = ',')]
    pub waves: Vec<f64>,
    /// Seconds to wait after a wave finishes before the next starts (default: 0).
    #[arg(long)]
    pub wave_soak_s: Option<u64>,
    /// `auto` or `manual` (pause after each wave until resumed).
    #[arg(long)]
    pub wave_gate: Option<String>,
    /// Pause when more than this share of a wave's finished devices failed, 0-1.
    #[arg(long)]
    pub max_failure_ratio: Option<f64>,
    /// Judge the failure ratio once this many devices of the wave (or all of it) finished.
    #[arg(long)]
    pub min_finished: Option<u64>,
    /// Send the update to at most this many devices a minute (default: no cap).
    #[arg(long)]
    pub max_per_minute: Option<u64>,
    /// At most this many devices between sent and finished at once (default: no cap).
    #[arg(long)]
    pub max_in_flight: Option<u64>,
    /// Attempts per device, the first included; failed and timed-out devices are retried
    /// with backoff (default: 1).
    #[arg(long)]
    pub max_attempts: Option<u64>,
    /// A device that has not finished this many seconds after it was sent is timed out
    /// (default: 3600).
    #[arg(long)]
    pub device_timeout_s: Option<u64>,
    /// Retries across the whole rollout; once used up, failures are final (default: no
    /// limit beyond --max-attempts per device).
    #[arg(long)]
    pub max_retries_total: Option<u64>,
    /// Watch each device this many seconds after it succeeded: one that rolls back, fails
    /// or goes offline meanwhile is unhealthy, a failure for the gate (default: 0, off).
    #[arg(long)]
    pub health_window_s: Option<u64>,
    /// Of a wave's succeeded devices, the share that may be offline while watched, 0-1
    /// (default: none may).
    #[arg(long)]
    pub max_offline_ratio: Option<f64>,
    /// Start at this time (RFC 3339, e.g. 2026-01-01T02:00:00Z); until then the rollout is
    /// `scheduled`. A time past starts it at once.
    #[arg(long)]
    pub start_at: Option<String>,
    /// Dispatch new devices only in this weekly window: DAYS START-END ZONE, e.g.
    /// 'Mon-Fri 01:00-04:00 Europe/Berlin' (days: Mon..Sun, ranges and lists such as
    /// Sat,Sun; an END at or before START ends the next day).
    #[arg(long, value_parser = parse_window)]
    pub window: Option<MaintenanceWindow>,
    /// With --hardware/--label: devices registered or relabelled later that match join
    /// the last wave until the rollout is finished.
    #[arg(long, conflicts_with = "devices")]
    pub dynamic: bool,
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
        /// The rollout's id.
        id: String,
    },
    /// Delete a finished (completed or cancelled) rollout and its per-device history.
    Rm {
        /// The rollout's id.
        id: String,
    },
    /// Devices of a rollout, optionally in one state.
    Devices {
        /// The rollout's id.
        id: String,
        /// Only devices in this state, e.g. `failed`.
        #[arg(long)]
        state: Option<String>,
    },
    /// Pause: nothing new is sent; devices in flight finish.
    Pause {
        /// The rollout's id.
        id: String,
    },
    /// Resume a paused rollout.
    Resume {
        /// The rollout's id.
        id: String,
    },
    /// Cancel: pending devices are not sent anything; devices in flight are told to stop.
    Cancel {
        /// The rollout's id.
        id: String,
    },
    /// Cancel, retry or skip one device of a rollout.
    #[command(subcommand)]
    Device(super::rollout_devices::Command),
    /// Live progress per wave, offline devices and the reasons of failures; exits 0 when
    /// completed, non-zero when paused or cancelled.
    Watch {
        /// The rollout's id.
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
        max_retries_total: args.max_retries_total,
        health_window_s: args.health_window_s,
        max_offline_ratio: args.max_offline_ratio,
        start_at: args.start_at.clone(),
        maintenance_window: args.window.clone(),
        dynamic: args.dynamic,
    }
}

pub async fn run(client: &ApiClient, out: Format, cmd: &Command) -> anyhow::Result<()> {
    match cmd {
        Command::Create(args) => create(client, out, args).await?,
        Command::List => {
            let mut items = Vec::new();
            let mut cursor = None;
            loop {
                let page = client.list_rollouts(cursor.as_deref()).await?;
                items.extend(page.items);
                match page.next_cursor {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
            print_list(out, items, "rollouts", views::rollouts::table)?;
        }
        Command::Show { id } => {
            let rollout = client.get_rollout(id).await?;
            match out {
                Format::Json => print_json(&rollout)?,
                Format::Table => {
                    let reasons = watch::failure_reasons(client, &rollout, None).await?;
                    print!("{}", views::rollouts::summary(&rollout, &reasons));
                }
            }
        }
        Command::Rm { id } => {
            client.delete_rollout(id).await?;
            say(out, format_args!("deleted rollout {id}"), &serde_json::json!({"deleted": id}))?;
        }
        Command::Devices { id, state } => {
            let mut items = Vec::new();
            let mut cursor = None;
            loop {
                let page = client.rollout_devices(id, state.as_deref(), cursor.as_deref()).await?;
                items.extend(page.items);
                match page.next_cursor {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
            let what = match state {
                Some(s) => format!("devices {s} in rollout {id}"),
                None => format!("devices in rollout {id}"),
            };
            print_list(out, items, &what, views::rollouts::devices_table)?;
        }
        Command::Pause { id } => control(client, out, id, RolloutAction::Pause).await?,
        Command::Resume { id } => control(client, out, id, RolloutAction::Resume).await?,
        Command::Cancel { id } => control(client, out, id, RolloutAction::Cancel).await?,
        Command::Device(cmd) => super::rollout_devices::run(client, out, cmd).await?,
        Command::Watch { id } => watch::watch(client, out, id).await?,
    }
    Ok(())
}

async fn create(client: &ApiClient, out: Format, args: &CreateArgs) -> anyhow::Result<()> {
    if args.dry_run {
        let plan = client.plan_rollout(&request(args)).await?;
        match out {
            Format::Json => print_json(&plan)?,
            Format::Table => print!("{}", views::rollouts::plan(&plan)),
        }
        return Ok(());
    }
    let created = client.create_rollout(&request(args)).await?;
    match out {
        // With --watch, the events are the output.
        Format::Json if args.watch => {}
        Format::Json => print_json(&created)?,
        Format::Table => println!("created rollout {}", created.id),
    }
    if args.watch {
        return watch::watch(client, out, &created.id).await;
    }
    Ok(())
}

/// Pause, resume or cancel: `rollout ID: paused`.
async fn control(client: &ApiClient, out: Format, id: &str, action: RolloutAction) -> anyhow::Result<()> {
    let r = client.control_rollout(id, action).await?;
    say(out, format_args!("rollout {}: {}", r.id, r.state), &r)
}
