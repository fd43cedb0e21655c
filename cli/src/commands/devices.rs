//! `fleetctl devices add|list|show|rm|rotate-token|import`.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::PathBuf;

use anyhow::{Context as _, bail};

use super::print_json;
use crate::ApiClient;
use crate::client::DeviceQuery;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Register a device; prints its token (shown only once).
    Add {
        id: String,
        #[arg(long)]
        hardware: String,
        /// key=value; repeatable.
        #[arg(long = "label", value_parser = parse_label)]
        labels: Vec<(String, String)>,
    },
    /// List devices, filtered by hardware and labels.
    List {
        #[arg(long)]
        hardware: Option<String>,
        #[arg(long = "label", value_parser = parse_label)]
        labels: Vec<(String, String)>,
    },
    /// Show one device.
    Show { id: String },
    /// Decommission a device: its token stops working.
    Rm { id: String },
    /// Issue a new token; the old one stops working.
    RotateToken { id: String },
    /// Register devices from a CSV file with columns id,hardware[,labels] where labels
    /// are `key=value` pairs separated by `;`. Tokens go to --tokens-out (mode 0600).
    Import {
        file: PathBuf,
        #[arg(long, default_value = "device-tokens.csv")]
        tokens_out: PathBuf,
    },
}

pub fn parse_label(s: &str) -> Result<(String, String), String> {
    s.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())).ok_or_else(|| format!("label `{s}` is not key=value"))
}

pub async fn run(client: &ApiClient, cmd: &Command) -> anyhow::Result<()> {
    match cmd {
        Command::Add { id, hardware, labels } => {
            let labels: BTreeMap<_, _> = labels.iter().cloned().collect();
            let d = client.add_device(id, hardware, &labels).await?;
            println!("registered {}", d.device.id);
            println!("token {}", d.token);
        }
        Command::List { hardware, labels } => {
            let mut query = DeviceQuery { hardware: hardware.clone(), labels: labels.clone(), ..Default::default() };
            loop {
                let page = client.list_devices(&query).await?;
                for d in &page.items {
                    let fw = d.firmware.as_ref().map(|f| format!("{} {}", f.name, f.version)).unwrap_or("-".into());
                    let online = if d.online { "online" } else { "offline" };
                    println!("{}  {}  {}  {}", d.id, d.hardware, online, fw);
                }
                match page.next_cursor {
                    Some(c) => query.cursor = Some(c),
                    None => break,
                }
            }
        }
        Command::Show { id } => print_json(&client.get_device(id).await?)?,
        Command::Rm { id } => {
            client.delete_device(id).await?;
            println!("decommissioned {id}");
        }
        Command::RotateToken { id } => {
            let d = client.rotate_token(id).await?;
            println!("token {}", d.token);
        }
        Command::Import { file, tokens_out } => import(client, file, tokens_out).await?,
    }
    Ok(())
}

/// Registers each row, appending `id,token` to the tokens file as soon as the server
/// answers, so no token is lost if the import stops half-way.
async fn import(client: &ApiClient, file: &PathBuf, tokens_out: &PathBuf) -> anyhow::Result<()> {
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
    println!("registered {ok} devices; tokens in {}", tokens_out.display());
    if failed > 0 {
        bail!("{failed} rows failed");
    }
    Ok(())
}
