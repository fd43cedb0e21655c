//! The server's TLS at start: `--tls-cert/--tls-key`, or `--tls-self-signed` (a CA of its
//! own, see [`super::self_signed`]); and the device CA that signs device certificates.

use std::net::SocketAddr;
use std::sync::Arc;

use super::StartupError;
use super::self_signed;
use crate::device_ca::DeviceCa;
use crate::settings::Settings;

/// The HTTPS (and mqtts) configuration: `--tls-cert/--tls-key`, or `--tls-self-signed`'s
/// certificate for the names the server answers to; none for cleartext. With a device CA
/// (`--device-ca-cert`, else `--tls-self-signed`'s CA) client certificates chained to it are
/// asked for, optionally, and the CA comes back to sign them.
pub(super) fn server_tls(settings: &Settings, local_addr: SocketAddr) -> Result<Tls, StartupError> {
    let (cert, key, own_ca) = if let (Some(cert), Some(key)) = (&settings.tls_cert, &settings.tls_key) {
        (cert.clone(), key.clone(), None)
    } else if settings.tls_self_signed {
        let made = self_signed::ensure(&settings.data_dir, &self_signed_names(settings, local_addr))?;
        tracing::info!(ca = %made.ca.display(), sha256 = %made.ca_fingerprint, "TLS with the server's own CA: give devices and fleetctl this CA file (--ca-file)");
        (made.cert, made.key, Some((made.ca, made.ca_key)))
    } else {
        if settings.device_ca_cert.is_some() {
            tracing::warn!("--device-ca-cert without TLS: devices cannot present certificates, none are signed");
        }
        return Ok((None, None));
    };
    let lifetime = match settings.test_device_cert_lifetime_s {
        Some(s) => std::time::Duration::from_secs(s),
        None => std::time::Duration::from_secs(u64::from(settings.device_cert_days) * 86_400),
    };
    let device_ca = match (&settings.device_ca_cert, &settings.device_ca_key) {
        (Some(c), Some(k)) => Some(DeviceCa::load(c, k, lifetime)?),
        _ => own_ca.map(|(c, k)| DeviceCa::load(&c, &k, lifetime)).transpose()?,
    };
    let clients = match &device_ca {
        Some(ca) => Some(ca.client_verifier().map_err(|e| StartupError::DeviceCaVerifier(e.to_string()))?),
        None => None,
    };
    let config = crate::tls::server_config(&cert, &key, clients)?;
    Ok((Some(config), device_ca.map(Arc::new)))
}

/// The HTTPS configuration and the device CA, each when there is one.
pub(super) type Tls = (Option<Arc<rustls::ServerConfig>>, Option<Arc<DeviceCa>>);

/// The names `--tls-self-signed`'s certificate is for, besides loopback.
fn self_signed_names(settings: &Settings, local_addr: SocketAddr) -> Vec<String> {
    let mut names = settings.tls_san.clone();
    if !local_addr.ip().is_unspecified() {
        names.push(local_addr.ip().to_string());
    }
    let host =
        settings.public_url.as_deref().and_then(|u| u.parse::<axum::http::Uri>().ok()?.host().map(str::to_owned));
    names.extend(host.map(|h| h.trim_matches(['[', ']']).to_owned()));
    names
}
