//! The device's HTTP client: redirects followed only within one origin, pinned to a CA
//! with `--ca-file`, presenting the device certificate with `--client-cert`, few idle
//! connections kept.

use std::path::Path;
use std::time::Duration;

use anyhow::Context as _;

/// How long an idle HTTP connection is kept for the next request.
const IDLE_CONNECTION: Duration = Duration::from_secs(5);
/// Idle HTTP connections kept at most (one device needs one; a simulator shares its client).
pub const MAX_IDLE_CONNECTIONS: usize = 64;

/// An HTTP client that follows redirects only within one origin and, with a CA file,
/// trusts only that CA for https://.
pub fn http_client(ca_file: Option<&Path>) -> anyhow::Result<reqwest::Client> {
    let mut builder = client_builder();
    if let Some(path) = ca_file {
        let pem = std::fs::read(path).with_context(|| format!("--ca-file {}", path.display()))?;
        let certs =
            reqwest::Certificate::from_pem_bundle(&pem).with_context(|| format!("--ca-file {}", path.display()))?;
        anyhow::ensure!(!certs.is_empty(), "--ca-file {}: no certificate", path.display());
        builder = builder.tls_certs_only(certs);
    }
    Ok(builder.build()?)
}

/// [`http_client`] presenting the device certificate `cert` (renewals included).
pub fn http_client_presenting(
    ca_file: Option<&Path>,
    cert: &crate::certificate::ClientCert,
) -> anyhow::Result<reqwest::Client> {
    let config = fleet_protocol::tls::client_config_with_resolver(ca_file, cert.identity.clone())
        .context("--ca-file/--client-cert")?;
    Ok(client_builder().use_preconfigured_tls(config).build()?)
}

fn client_builder() -> reqwest::ClientBuilder {
    fleet_protocol::tls::install_default_provider();
    let policy = reqwest::redirect::Policy::custom(|attempt| {
        let same = attempt.previous().first().is_some_and(|first| first.origin() == attempt.url().origin());
        if same && attempt.previous().len() < 5 { attempt.follow() } else { attempt.stop() }
    });
    reqwest::Client::builder()
        .redirect(policy)
        .connect_timeout(Duration::from_secs(10))
        .read_timeout(Duration::from_secs(60))
        // A device's requests come in bursts (confirm, then download): an idle connection
        // kept for reqwest's default 90 s would cost the server a socket per device, and a
        // simulator one per virtual device.
        .pool_idle_timeout(IDLE_CONNECTION)
        .pool_max_idle_per_host(MAX_IDLE_CONNECTIONS)
        .tcp_nodelay(true)
}
