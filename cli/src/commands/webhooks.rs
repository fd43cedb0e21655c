//! `fleetctl webhooks add|list|show|deliveries|rm`.

use super::say;
use crate::ApiClient;
use crate::output::{Format, print_json, print_list, views};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Register an endpoint (https://, or http:// to this machine); prints its signing
    /// secret (shown only once).
    Add {
        /// The endpoint (named apart from the global `--url`, the server's).
        #[arg(value_name = "URL")]
        endpoint: String,
        /// Event types or patterns, comma-separated: `rollout.*,device.failed`, `*`.
        #[arg(long, value_delimiter = ',', required = true)]
        events: Vec<String>,
    },
    /// List webhooks with their delivery counts.
    List,
    /// One webhook: counts, last status, last error.
    Show {
        /// The webhook's id (`wh_…`).
        id: String,
    },
    /// A webhook's deliveries, newest first.
    Deliveries {
        /// The webhook's id (`wh_…`).
        id: String,
        /// How many.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
    /// Remove a webhook and its pending deliveries.
    Rm {
        /// The webhook's id (`wh_…`).
        id: String,
    },
}

pub async fn run(client: &ApiClient, out: Format, cmd: &Command) -> anyhow::Result<()> {
    match cmd {
        Command::Add { endpoint, events } => {
            let created = client.add_webhook(endpoint, events).await?;
            if out.is_json() {
                print_json(&created)?;
            } else {
                eprintln!("webhook {} — its secret, shown only once:", created.id);
                println!("{}", created.secret);
            }
        }
        Command::List => {
            let (mut items, mut cursor) = (Vec::new(), None);
            loop {
                let page = client.list_webhooks(cursor.as_deref()).await?;
                items.extend(page.items);
                match page.next_cursor {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
            print_list(out, items, "webhooks", views::webhooks::webhooks_table)?;
        }
        Command::Show { id } => {
            let w = client.get_webhook(id).await?;
            if out.is_json() {
                print_json(&w)?;
            } else {
                print!("{}", views::webhooks::webhook(&w));
            }
        }
        Command::Deliveries { id, limit } => {
            let page = client.webhook_deliveries(id, Some((*limit).clamp(1, 1000)), None).await?;
            print_list(out, page.items, "deliveries", views::webhooks::deliveries_table)?;
        }
        Command::Rm { id } => {
            client.remove_webhook(id).await?;
            say(out, format_args!("removed {id}"), &serde_json::json!({"removed": id}))?;
        }
    }
    Ok(())
}
