//! The subcommands. Each module owns its arguments and its `run`.

pub mod artifacts;
pub mod broker;
pub mod devices;
pub mod keygen;
pub mod keys;
pub mod rollout_devices;
pub mod rollouts;
pub mod sign;
pub mod tokens;
pub mod trust;
pub mod watch;
pub mod webhooks;
pub mod window;

use clap::{Parser, Subcommand};
use fleet_protocol::ArtifactKind;

use crate::ApiClient;
use crate::output::Format;

/// The file `fleet-server` writes its admin token to, read when `FLEET_TOKEN` is unset.
pub const DEFAULT_TOKEN_FILE: &str = "fleet-data/admin.token";

#[derive(Debug, Parser)]
#[command(name = "fleetctl", version, about = "Operate a Fleet OTA server: keys, signing, uploads, devices")]
pub struct Cli {
    /// Server base URL.
    #[arg(long, env = "FLEET_URL", default_value = "http://127.0.0.1:8080", global = true)]
    pub url: String,
    /// Operator token (default: the contents of ./fleet-data/admin.token).
    #[arg(long, env = "FLEET_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// CA certificate(s) (PEM) the server's https:// certificate must chain to (default: the
    /// system's roots).
    #[arg(long, env = "FLEET_CA_FILE", global = true)]
    pub ca_file: Option<std::path::PathBuf>,
    /// `table` (tables and short summaries for people; also `text`) or `json` (the API's
    /// bodies, for scripts).
    #[arg(long, short = 'o', value_enum, default_value_t = Format::Table, global = true)]
    pub output: Format,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create an Ed25519 release key pair: NAME.key (0600) and NAME.pub.
    Keygen(keygen::Args),
    /// Sign an artifact offline: writes FILE.dsse.json.
    Sign(sign::Args),
    /// Release keys registered with the server.
    #[command(subcommand)]
    Keys(keys::Command),
    /// Firmware images.
    #[command(subcommand)]
    Firmware(artifacts::Command),
    /// Configuration documents.
    #[command(subcommand)]
    Configs(artifacts::Command),
    /// The device registry.
    #[command(subcommand)]
    Devices(devices::Command),
    /// Rollouts: create, follow, pause, resume, cancel.
    #[command(subcommand)]
    Rollouts(rollouts::Command),
    /// Named operator tokens: admin or read-only.
    #[command(subcommand)]
    Tokens(tokens::Command),
    /// The audit trail: every operator action, newest first.
    Audit(tokens::AuditArgs),
    /// Webhooks: event deliveries over HTTP(S), signed, with their delivery state.
    #[command(subcommand)]
    Webhooks(webhooks::Command),
    /// External brokers: keep a Mosquitto's password and ACL files in step.
    #[command(subcommand)]
    Broker(broker::Command),
    /// Trust documents: the root, firmware and config keys devices trust (signed offline).
    #[command(subcommand)]
    Trust(trust::Command),
}

impl Cli {
    fn client(&self) -> anyhow::Result<ApiClient> {
        let token = match &self.token {
            Some(t) => t.clone(),
            None => std::fs::read_to_string(DEFAULT_TOKEN_FILE).map(|t| t.trim().to_owned()).map_err(|e| {
                anyhow::anyhow!("no token: set FLEET_TOKEN or run where {DEFAULT_TOKEN_FILE} exists ({e})")
            })?,
        };
        Ok(ApiClient::trusting(&self.url, token, self.ca_file.as_deref())?)
    }
}

/// Runs one command.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let out = cli.output;
    match &cli.command {
        Command::Keygen(args) => keygen::run(out, args),
        Command::Sign(args) => sign::run(out, args).await,
        Command::Keys(cmd) => keys::run(&cli.client()?, out, cmd).await,
        Command::Firmware(cmd) => artifacts::run(&cli.client()?, out, ArtifactKind::Firmware, cmd).await,
        Command::Configs(cmd) => artifacts::run(&cli.client()?, out, ArtifactKind::Config, cmd).await,
        Command::Devices(cmd) => devices::run(&cli.client()?, out, cmd).await,
        Command::Rollouts(cmd) => rollouts::run(&cli.client()?, out, cmd).await,
        Command::Tokens(cmd) => tokens::run(&cli.client()?, out, cmd).await,
        Command::Audit(args) => tokens::audit(&cli.client()?, out, args).await,
        Command::Broker(cmd) => broker::run(&cli.client()?, out, cmd).await,
        Command::Trust(cmd) => trust::run(cli.client().ok().as_ref(), out, cmd).await,
        Command::Webhooks(cmd) => webhooks::run(&cli.client()?, out, cmd).await,
    }
}

/// Prints a short line for people, or `json` for scripts.
pub(crate) fn say(out: Format, text: impl std::fmt::Display, json: &impl serde::Serialize) -> anyhow::Result<()> {
    if out.is_json() {
        crate::output::print_json(json)?;
    } else {
        println!("{text}");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory as _;

    use super::*;

    /// Every argument of every subcommand, flags and positionals, says what it is for in
    /// `--help`.
    #[test]
    fn every_argument_has_a_description() {
        fn walk(cmd: &clap::Command, path: &str, missing: &mut Vec<String>) {
            for arg in cmd.get_arguments() {
                if arg.get_help().is_none() && arg.get_long_help().is_none() {
                    missing.push(format!("{path} {}", arg.get_id()));
                }
            }
            for sub in cmd.get_subcommands() {
                if sub.get_about().is_none() {
                    missing.push(format!("{path} {} (no about)", sub.get_name()));
                }
                walk(sub, &format!("{path} {}", sub.get_name()), missing);
            }
        }
        let mut cmd = Cli::command();
        cmd.build();
        let mut missing = Vec::new();
        walk(&cmd, "fleetctl", &mut missing);
        assert!(missing.is_empty(), "no description: {missing:#?}");
    }

    #[test]
    fn output_is_a_global_flag_with_a_table_default() {
        let cli = Cli::try_parse_from(["fleetctl", "devices", "list"]).unwrap();
        assert_eq!(cli.output, Format::Table);
        let cli = Cli::try_parse_from(["fleetctl", "devices", "list", "-o", "json"]).unwrap();
        assert_eq!(cli.output, Format::Json);
        let cli = Cli::try_parse_from(["fleetctl", "--output", "text", "rollouts", "list"]).unwrap();
        assert_eq!(cli.output, Format::Table);
        assert!(Cli::try_parse_from(["fleetctl", "-o", "yaml", "keys", "list"]).is_err());
    }
}
