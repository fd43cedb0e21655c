//! `fleetctl tokens create|list|revoke` and `fleetctl audit`.

use crate::ApiClient;
use crate::client::TokenScope;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Create a named operator token; prints it (shown only once).
    Create {
        name: String,
        /// `admin` (everything) or `read-only` (every read, no write).
        #[arg(long, value_parser = parse_scope, default_value = "read-only")]
        scope: TokenScope,
    },
    /// List operator tokens (names and scopes, never the secrets).
    List,
    /// Revoke a token at once.
    Revoke { name: String },
}

fn parse_scope(s: &str) -> Result<TokenScope, String> {
    TokenScope::parse(s).ok_or_else(|| "expected admin or read-only".into())
}

pub async fn run(client: &ApiClient, cmd: &Command) -> anyhow::Result<()> {
    match cmd {
        Command::Create { name, scope } => {
            let created = client.create_operator_token(name, *scope).await?;
            eprintln!("token {} ({}) — shown only once:", created.info.name, created.info.scope);
            println!("{}", created.token);
        }
        Command::List => {
            let mut cursor = None;
            loop {
                let page = client.list_operator_tokens(cursor.as_deref()).await?;
                for t in &page.items {
                    println!("{:24}  {:9}  {}", t.name, t.scope.as_str(), t.created_at);
                }
                match page.next_cursor {
                    Some(c) => cursor = Some(c),
                    None => break,
                }
            }
        }
        Command::Revoke { name } => {
            client.revoke_operator_token(name).await?;
            println!("revoked {name}");
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
    /// Print JSON lines instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub async fn audit(client: &ApiClient, args: &AuditArgs) -> anyhow::Result<()> {
    let (mut left, mut cursor) = (args.limit, None);
    while left > 0 {
        let page = client.audit(Some(left.min(500)), cursor.as_deref()).await?;
        for e in &page.items {
            if args.json {
                println!("{}", serde_json::to_string(e)?);
            } else {
                println!("{}  {:16}  {:22}  {}  {}", e.at, e.actor, e.action, e.target, e.details);
            }
        }
        left = left.saturating_sub(page.items.len() as u32);
        match page.next_cursor {
            Some(c) => cursor = Some(c),
            None => break,
        }
    }
    Ok(())
}
