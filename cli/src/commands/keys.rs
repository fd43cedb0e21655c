//! `fleetctl keys add|list|revoke`.

use std::path::PathBuf;

use anyhow::Context as _;

use super::say;
use crate::ApiClient;
use crate::output::{Format, print_list, views};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Register a release key: NAME and its public key file.
    Add {
        /// A name for people (e.g. `release-2026`).
        name: String,
        /// The public key, SPKI PEM (`fleetctl keygen` writes NAME.pub).
        public_key: PathBuf,
    },
    /// List registered keys.
    List,
    /// Revoke a key by keyid (permanent).
    Revoke {
        /// The key's id (lowercase hex SHA-256 of the raw public key).
        keyid: String,
    },
}

pub async fn run(client: &ApiClient, out: Format, cmd: &Command) -> anyhow::Result<()> {
    match cmd {
        Command::Add { name, public_key } => {
            let pem =
                std::fs::read_to_string(public_key).with_context(|| format!("reading {}", public_key.display()))?;
            let key = client.add_key(name, &pem).await?;
            say(out, format_args!("added key {} ({})", key.keyid, key.name), &key)?;
        }
        Command::List => {
            let mut items = Vec::new();
            let mut cursor = None;
            loop {
                let page = client.list_keys(cursor.as_deref()).await?;
                items.extend(page.items);
                match page.next_cursor {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
            print_list(out, items, "keys", views::registry::keys_table)?;
        }
        Command::Revoke { keyid } => {
            client.revoke_key(keyid).await?;
            // The server no longer accepts uploads signed by it; devices learn of it from
            // the next trust document, which is offered here when the latest names it.
            let named = super::trust::latest_names(client, keyid).await;
            let offer = named.map(|v| format!("fleetctl trust revoke-key {keyid} (trust version {})", v + 1));
            let mut text = format!("revoked key {keyid}");
            if let Some(offer) = &offer {
                text.push_str(&format!("\ndevices still trust it: make the trust update with `{offer}`"));
            }
            say(out, text, &serde_json::json!({"revoked": keyid, "trust_update": offer}))?;
        }
    }
    Ok(())
}
