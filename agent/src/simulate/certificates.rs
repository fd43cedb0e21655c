//! `simulate --certificates`: every virtual device enrolls as `fleet-agent enroll` does (a
//! key and a CSR whose CN is its id, signed by the server with its token; CONTRACT §12),
//! keeps `device.crt` and `device.key` in its own state dir, and then logs in as
//! `fleet-agent run --client-cert --client-key` does: its certificate on mqtts:// with no
//! password, and on https:// in place of its token.
//!
//! A kept pair is used again when the device's kept token was accepted (the same server)
//! and the certificate is not yet due for renewal; otherwise the device enrolls anew.
//!
//! Each device presents its own certificate, so each has an HTTPS client (a connection
//! pool) of its own; all of them still pass the one `--http-connections` gate.

use std::path::Path;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use anyhow::{Context as _, bail};
use fleet_protocol::DeviceId;
use futures_util::{StreamExt as _, stream};

use super::tokens::{DeviceToken, Origin};
use crate::certificate::{ClientCert, Files, request};
use crate::config::{Broker, broker_presenting};
use crate::http::Http;

/// Enrollments under way at once, as for the tokens.
const AT_ONCE: usize = 16;

/// A device's certificate, and whether it was kept from an earlier run.
type Enrolled = anyhow::Result<(Arc<ClientCert>, bool)>;

/// How one virtual device logs in to the server and the broker.
#[derive(Debug)]
pub struct Login {
    /// Empty with a certificate: the certificate stands for it.
    pub token: String,
    pub client_cert: Option<Arc<ClientCert>>,
    pub broker: Broker,
    pub http: Http,
}

/// What every device's login is made from.
#[derive(Debug, Clone, Copy)]
pub struct Setup<'a> {
    /// `--certificates`.
    pub certificates: bool,
    pub http: &'a Http,
    pub server: &'a reqwest::Url,
    pub mqtt_url: &'a str,
    pub ca_file: Option<&'a Path>,
    pub broker: &'a Broker,
    pub state_dir: &'a Path,
}

/// Every device's login: its token on the shared client and broker settings, or (with
/// `--certificates`) its certificate, enrolled 16 at a time; fails naming devices that
/// could not enroll.
pub async fn logins(setup: Setup<'_>, tokens: Vec<(String, DeviceToken)>) -> anyhow::Result<Vec<(String, Login)>> {
    if !setup.certificates {
        let shared = |token| Login { token, client_cert: None, broker: setup.broker.clone(), http: setup.http.clone() };
        return Ok(tokens.into_iter().map(|(id, t)| (id, shared(t.token))).collect());
    }
    if setup.server.scheme() != "https" || !setup.broker.url.tls {
        bail!("--certificates needs an https:// --server and an mqtts:// --mqtt-url");
    }
    let started = Instant::now();
    let results: Vec<(String, Enrolled)> = stream::iter(tokens)
        .map(|(id, token)| async move {
            let cert = certificate(&setup, &id, &token).await;
            (id, cert)
        })
        .buffered(AT_ONCE)
        .collect()
        .await;
    let (mut logins, mut kept, mut failed) = (Vec::new(), 0, Vec::new());
    for (id, result) in results {
        match result.and_then(|(cert, reused)| Ok((login(&setup, cert)?, reused))) {
            Ok((login, reused)) => {
                kept += usize::from(reused);
                logins.push((id, login));
            }
            Err(e) => failed.push(format!("{id}: {e:#}")),
        }
    }
    if !failed.is_empty() {
        for reason in failed.iter().take(10) {
            eprintln!("fleet-agent simulate: cannot enroll {reason}");
        }
        bail!("{} of the {} devices could not enroll (see above)", failed.len(), failed.len() + logins.len());
    }
    let took = started.elapsed().as_secs_f64();
    println!("certificates: {} devices in {took:.2} s ({kept} kept ones used again)", logins.len());
    Ok(logins)
}

/// The device's certificate: the kept one if it may be used again, else a new one; and
/// whether it was kept.
async fn certificate(setup: &Setup<'_>, id: &str, token: &DeviceToken) -> Enrolled {
    let dir = setup.state_dir.join(id);
    let (cert, key) = (dir.join("device.crt"), dir.join("device.key"));
    if token.origin == Origin::Kept {
        if let Some(kept) = still_good(&cert, &key) {
            return Ok((kept, true));
        }
    }
    let device = DeviceId::parse(id).context("device id")?;
    std::fs::create_dir_all(&dir).with_context(|| format!("{}", dir.display()))?;
    let files = Files { cert: &cert, key: &key, durable: false };
    {
        let _turn = setup.http.turn().await;
        request(setup.http.client(), setup.server, &device, &token.token, files).await?;
    }
    Ok((Arc::new(ClientCert::load(cert, key)?), false))
}

/// A kept pair that loads and is not yet due for renewal.
fn still_good(cert: &Path, key: &Path) -> Option<Arc<ClientCert>> {
    if !cert.exists() {
        return None;
    }
    let kept = ClientCert::load(cert.to_owned(), key.to_owned()).ok()?;
    (kept.renew_at() > SystemTime::now()).then(|| Arc::new(kept))
}

/// The login of a device presenting `cert`: its own TLS settings for the broker and its
/// own HTTPS client, behind the shared gate.
fn login(setup: &Setup<'_>, cert: Arc<ClientCert>) -> anyhow::Result<Login> {
    let broker = broker_presenting(setup.mqtt_url, setup.ca_file, Some(cert.identity.clone()))?;
    let client = crate::update::download::http_client_presenting(setup.ca_file, &cert)?;
    Ok(Login { token: String::new(), client_cert: Some(cert), broker, http: setup.http.with_client(client) })
}
