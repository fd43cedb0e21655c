//! `fleet-agent enroll`: a key (0600) and a CSR whose CN is the device id, signed by the
//! server with the device's token (see [`crate::certificate`]).

use std::path::PathBuf;

use anyhow::Context as _;
use fleet_protocol::DeviceId;

use crate::certificate::{Files, request};

/// The flags of `fleet-agent enroll`.
#[derive(Debug, Clone, clap::Args)]
pub struct EnrollArgs {
    /// This device's id, as registered with the server.
    #[arg(long, env = "FLEET_AGENT_DEVICE_ID")]
    pub device_id: String,
    /// File holding the device token (used once, to ask for the certificate).
    #[arg(long, env = "FLEET_AGENT_TOKEN_FILE")]
    pub token_file: PathBuf,
    /// Server base URL (https://).
    #[arg(long, env = "FLEET_AGENT_SERVER")]
    pub server: String,
    /// CA certificate(s) (PEM) of the server: only these are trusted.
    #[arg(long, env = "FLEET_AGENT_CA_FILE")]
    pub ca_file: Option<PathBuf>,
    /// Where `device.key` and `device.crt` are written.
    #[arg(long, env = "FLEET_AGENT_STATE_DIR")]
    pub state_dir: PathBuf,
}

/// `fleet-agent enroll`.
pub async fn enroll(args: EnrollArgs) -> anyhow::Result<()> {
    let id = DeviceId::parse(args.device_id.clone()).context("--device-id")?;
    let token = crate::config::read_token(&args.token_file)?;
    let server = crate::config::server_url(&args.server)?;
    let http = crate::update::download::http_client(args.ca_file.as_deref())?;
    std::fs::create_dir_all(&args.state_dir).with_context(|| format!("{}", args.state_dir.display()))?;
    let (cert, key) = (args.state_dir.join("device.crt"), args.state_dir.join("device.key"));
    let issued = request(&http, &server, &id, &token, Files { cert: &cert, key: &key, durable: true }).await?;
    tracing::info!(cert = %cert.display(), key = %key.display(), serial = %issued.serial, expires_at = %issued.expires_at, "enrolled");
    println!("{}\n{}", cert.display(), key.display());
    Ok(())
}
