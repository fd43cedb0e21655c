//! `fleetctl devices add|list|show|label|rm|rotate-token|import`.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::PathBuf;

use anyhow::{Context as _, bail};

use super::say;
use crate::ApiClient;
use crate::client::{DeviceQuery, DeviceWithToken};
use crate::output::{Format, print_json, print_list, views};
use crate::secret_file::write_secret;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Register a device; prints its token (shown only once).
    Add {
        /// The device id (1-64 of `A-Za-z0-9._-`, starting with a letter or digit).
        id: String,
        /// The device's hardware model, e.g. `rpi4`.
        #[arg(long)]
        hardware: String,
        /// A label, key=value; repeatable.
        #[arg(long = "label", value_parser = parse_label)]
        labels: Vec<(String, String)>,
        /// Write the token to this file (mode 0600) instead of printing it.
        #[arg(long)]
        token_file: Option<PathBuf>,
    },
    /// List devices, filtered by hardware and labels.
    List {
        /// Only devices of this hardware model.
        #[arg(long)]
        hardware: Option<String>,
        /// Only devices with this label, key=value; repeatable (all must match).
        #[arg(long = "label", value_parser = parse_label)]
        labels: Vec<(String, String)>,
        /// Only devices below the latest trust document version (or reporting none).
        #[arg(long)]
        trust_behind: bool,
    },
    /// Show one device.
    Show {
        /// The device id.
        id: String,
    },
    /// Replace ALL of a device's labels with the ones given: labels not named are removed.
    Label {
        /// The device id.
        id: String,
        /// The device's complete new label set, key=value pairs.
        #[arg(value_parser = parse_label, required_unless_present = "clear")]
        labels: Vec<(String, String)>,
        /// Remove every label instead.
        #[arg(long, conflicts_with = "labels")]
        clear: bool,
    },
    /// Decommission a device: its token stops working.
    Rm {
        /// The device id.
        id: String,
    },
    /// Issue a new token; the old one stops working.
    RotateToken {
        /// The device id.
        id: String,
        /// Write the new token to this file (mode 0600) instead of printing it.
        #[arg(long)]
        token_file: Option<PathBuf>,
    },
    /// Register devices from a CSV file with columns id,hardware[,labels] where labels
    /// are `key=value` pairs separated by `;`. Tokens go to --tokens-out (mode 0600).
    Import {
        /// The CSV file, with a header line.
        file: PathBuf,
        /// Where `id,token` lines are appended (mode 0600).
        #[arg(long, default_value = "device-tokens.csv")]
        tokens_out: PathBuf,
    },
}

pub fn parse_label(s: &str) -> Result<(String, String), String> {
    s.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())).ok_or_else(|| format!("label `{s}` is not key=value"))
}

pub async fn run(client: &ApiClient, out: Format, cmd: &Command) -> anyhow::Result<()> {
    let now = time::OffsetDateTime::now_utc();
    match cmd {
        Command::Add { id, hardware, labels, token_file } => {
            let labels: BTreeMap<_, _> = labels.iter().cloned().collect();
            let d = client.add_device(id, hardware, &labels).await?;
            print_token(out, &format!("registered {}", d.device.id), &d, token_file.as_deref())?;
        }
        Command::List { hardware, labels, trust_behind } => {
            let mut query = DeviceQuery {
                hardware: hardware.clone(),
                labels: labels.clone(),
                trust_behind: *trust_behind,
                ..Default::default()
            };
            let mut items = Vec::new();
            loop {
                let page = client.list_devices(&query).await?;
                items.extend(page.items);
                match page.next_cursor {
                    Some(c) => query.cursor = Some(c),
                    None => break,
                }
            }
            let count = views::devices::count_line(&items);
            let listed = !items.is_empty();
            print_list(out, items, "devices", |d| views::devices::table(d, now))?;
            if listed && !out.is_json() {
                println!("{count}");
            }
        }
        Command::Show { id } => {
            let device = client.get_device(id).await?;
            match out {
                Format::Json => print_json(&device)?,
                Format::Table => print!("{}", views::devices::summary(&device, now)),
            }
        }
        Command::Label { id, labels, clear: _ } => {
            let mut set = BTreeMap::new();
            for (k, v) in labels {
                if set.insert(k.clone(), v.clone()).is_some() {
                    bail!("label `{k}` is given twice");
                }
            }
            let device = client.set_device_labels(id, &set).await?;
            match out {
                Format::Json => print_json(&device)?,
                Format::Table => print!("{}", views::devices::summary(&device, now)),
            }
        }
        Command::Rm { id } => {
            client.delete_device(id).await?;
            say(out, format_args!("decommissioned {id}"), &serde_json::json!({"deleted": id}))?;
        }
        Command::RotateToken { id, token_file } => {
            let d = client.rotate_token(id).await?;
            print_token(out, &format!("rotated the token of {}", d.device.id), &d, token_file.as_deref())?;
        }
        Command::Import { file, tokens_out } => import(client, out, file, tokens_out).await?,
    }
    Ok(())
}

/// A new token: into a 0600 file when one is named (the summary says where), else printed
/// as `token …` (or in the JSON body).
fn print_token(
    out: Format,
    what: &str,
    d: &DeviceWithToken,
    token_file: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    if let Some(path) = token_file {
        write_secret(path, &d.token)?;
    }
    match (out, token_file) {
        (Format::Json, _) => print_json(d)?,
        (Format::Table, Some(path)) => println!("{what}; token written to {} (mode 0600)", path.display()),
        (Format::Table, None) => println!("{what}\ntoken {}", d.token),
    }
    Ok(())
}

/// Registers each row, appending `id,token` to the tokens file as soon as the server
/// answers, so no token is lost if the import stops half-way.
async fn import(client: &ApiClient, out_format: Format, file: &PathBuf, tokens_out: &PathBuf) -> anyhow::Result<()> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_path(file)
        .with_context(|| format!("reading {}", file.display()))?;
    let mut out = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(tokens_out)
        .with_context(|| format!("opening {}", tokens_out.display()))?;
    let (mut ok, mut failed) = (0usize, 0usize);
    for (line, row) in reader.records().enumerate() {
        let row = row.with_context(|| format!("{} row {}", file.display(), line + 2))?;
        let (Some(id), Some(hardware)) = (row.get(0), row.get(1)) else {
            bail!("{} row {}: expected id,hardware[,labels]", file.display(), line + 2);
        };
        let labels = match row.get(2).filter(|l| !l.is_empty()) {
            Some(l) => {
                l.split(';').map(parse_label).collect::<Result<BTreeMap<_, _>, _>>().map_err(anyhow::Error::msg)?
            }
            None => BTreeMap::new(),
        };
        match client.add_device(id, hardware, &labels).await {
            Ok(d) => {
                writeln!(out, "{},{}", d.device.id, d.token)?;
                out.flush()?;
                ok += 1;
            }
            Err(e) => {
                eprintln!("{id}: {e}");
                failed += 1;
            }
        }
    }
    out.sync_all()?;
    let json = serde_json::json!({"registered": ok, "failed": failed, "tokens_out": tokens_out});
    say(out_format, format_args!("registered {ok} devices; tokens in {}", tokens_out.display()), &json)?;
    if failed > 0 {
        bail!("{failed} rows failed");
    }
    Ok(())
}
