//! `fleetctl keys add|list|revoke`.

use std::path::PathBuf;

use anyhow::Context as _;

use super::print_json;
use crate::ApiClient;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Register a release key: NAME and its public key file.
    Add { name: String, public_key: PathBuf },
    /// List registered keys.
    List,
    /// Revoke a key by keyid (permanent).
    Revoke { keyid: String },
}

pub async fn run(client: &ApiClient, cmd: &Command) -> anyhow::Result<()> {
    match cmd {
        Command::Add { name, public_key } => {
            let pem =
                std::fs::read_to_string(public_key).with_context(|| format!("reading {}", public_key.display()))?;
            let key = client.add_key(name, &pem).await?;
            println!("added key {} ({})", key.keyid, key.name);
        }
        Command::List => {
            let mut cursor = None;
            loop {
                let page = client.list_keys(cursor.as_deref()).await?;
                for k in &page.items {
                    let state = if k.revoked_at.is_some() { "revoked" } else { "active" };
                    println!("{}  {:8}  {}", k.keyid, state, k.name);
                }
                match page.next_cursor {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
        }
        Command::Revoke { keyid } => {
            client.revoke_key(keyid).await?;
            print_json(&serde_json::json!({"revoked": keyid}))?;
        }
    }
    Ok(())
}
