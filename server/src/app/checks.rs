//! Start-up checks of the flags that need no I/O: refusals before anything is opened, and
//! warnings about credentials that would cross a network in cleartext.

use std::net::SocketAddr;

use fleet_protocol::topic::{is_loopback_host, parse_broker_url};

use super::StartupError;
use crate::settings::Settings;

/// Refuses a `--database-url` this build cannot open.
pub fn refuse_unbuilt(settings: &Settings) -> Result<(), StartupError> {
    match settings.database_url.as_deref() {
        None => Ok(()),
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => Ok(()),
        Some(_) => Err(StartupError::DatabaseUrl),
    }
}

/// Warns, once at start, about every way a credential would cross a non-loopback link in
/// cleartext.
pub fn warn_about_cleartext(settings: &Settings, listen: SocketAddr, https: bool, public_url: &str) {
    if !https && !listen.ip().is_loopback() {
        tracing::warn!(%listen, "HTTP without TLS beyond loopback: operator and device tokens travel in cleartext \
            (use --tls-cert/--tls-key, or a TLS-terminating proxy in front)");
    }
    if let Some(rest) = public_url.strip_prefix("http://") {
        let host = rest.split('/').next().unwrap_or_default();
        let host = host.rsplit_once(':').map_or(host, |(h, _)| h);
        if !is_loopback_host(host) {
            tracing::warn!(
                public_url,
                "devices download over cleartext HTTP with their tokens: use an https:// --public-url"
            );
        }
    }
    let broker = settings.mqtt_url.as_deref().and_then(|u| parse_broker_url(u).ok());
    if broker.as_ref().is_some_and(|url| !url.tls && !url.is_loopback()) {
        tracing::warn!(
            "MQTT without TLS beyond loopback: passwords and device tokens travel in \
            cleartext (use mqtts://)"
        );
    }
}
