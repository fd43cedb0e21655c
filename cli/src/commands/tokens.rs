//! `fleetctl tokens create|list|revoke` and `fleetctl audit`.

use super::say;
use crate::ApiClient;
use crate::client::TokenScope;
use crate::output::{Format, print_json, print_list, views};

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Create a named operator token; prints it (shown only once).
    Create {
        /// The token's name (shown in the audit trail).
        name: String,
        /// `admin` (everything) or `read-only` (every read, no write).
        #[arg(long, value_parser = parse_scope, default_value = "read-only")]
        scope: TokenScope,
        /// Also log in to the MQTT broker as `op:NAME` with this token (event topics,
        /// presence).
        #[arg(long)]
        mqtt: bool,
    },
    /// List operator tokens (names and scopes, never the secrets).
    List,
    /// Revoke a token at once.
    Revoke {
        /// The token's name.
        name: String,
    },
}

fn parse_scope(s: &str) -> Result<TokenScope, String> {
    TokenScope::parse(s).ok_or_else(|| "expected admin or read-only".into())
}

pub async fn run(client: &ApiClient, out: Format, cmd: &Command) -> anyhow::Result<()> {
    match cmd {
        Command::Create { name, scope, mqtt } => {
            let created = client.create_token(name, *scope, *mqtt).await?;
            if out.is_json() {
                print_json(&created)?;
            } else {
                let broker =
                    if created.info.mqtt { format!(", MQTT user op:{}", created.info.name) } else { String::new() };
                eprintln!("token {} ({}{broker}) — shown only once:", created.info.name, created.info.scope);
                println!("{}", created.token);
            }
        }
        Command::List => {
            let mut items = Vec::new();
            let mut cursor = None;
            loop {
                let page = client.list_operator_tokens(cursor.as_deref()).await?;
                items.extend(page.items);
                match page.next_cursor {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
            print_list(out, items, "tokens", views::registry::tokens_table)?;
        }
        Command::Revoke { name } => {
            client.revoke_operator_token(name).await?;
            say(out, format_args!("revoked {name}"), &serde_json::json!({"revoked": name}))?;
        }
    }
    Ok(())
}

/// `fleetctl audit`: the newest operator actions first.
#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    /// How many entries.
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
    /// Print one JSON object a line (JSON Lines) instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub async fn audit(client: &ApiClient, out: Format, args: &AuditArgs) -> anyhow::Result<()> {
    let (mut left, mut cursor) = (args.limit, None);
    let mut items = Vec::new();
    while left > 0 {
        let page = client.audit(Some(left.min(500)), cursor.as_deref()).await?;
        left = left.saturating_sub(page.items.len() as u32);
        items.extend(page.items);
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    if args.json {
        for e in &items {
            println!("{}", serde_json::to_string(e)?);
        }
        return Ok(());
    }
    print_list(out, items, "audit entries", views::registry::audit_table)?;
    Ok(())
}
