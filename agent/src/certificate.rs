//! Device certificates (CONTRACT §12): `fleet-agent enroll` makes a key (0600) and a CSR
//! whose CN is the device id, fetches the certificate with the device's token, and writes
//! `DIR/device.key` and `DIR/device.crt`; `fleet-agent run --client-cert --client-key` then
//! presents it on mqtts:// and https:// and renews it once two thirds of its lifetime have
//! passed ([`ClientCert::renew_at`]), only between updates (the runner decides when).
//!
//! A new key is written beside the old one (`device.key.next`), then the certificate, then
//! the new key replaces the old: a power cut in between leaves either the old pair, or the
//! new certificate with its key still in `.next`, which the next start puts in place
//! ([`ClientCert::load`] keeps whichever key matches the certificate).
//!
//! The key is an ECDSA P-256 key made by rcgen with ring, the provider rustls already uses:
//! no second crypto library. The running TLS clients present a renewed pair from their
//! next connection on (a live connection is not dropped for it).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{Context as _, bail};
use fleet_protocol::DeviceId;
use fleet_protocol::api::DeviceCertificate;
use fleet_protocol::tls::{ClientIdentity, ReloadableIdentity};
use rcgen::{CertificateParams, DnType, KeyPair};
use rustls::pki_types::CertificateDer;

use crate::atomic_file::{WriteOptions, write_atomically};

/// Where a certificate and its key are written.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Files<'a> {
    pub cert: &'a Path,
    pub key: &'a Path,
    pub durable: bool,
}

/// Makes a key and a CSR for `id`, asks the server to sign it (with `token`, or with the
/// certificate the client presents when `token` is empty) and writes both files.
pub(crate) async fn request(
    http: &reqwest::Client,
    server: &reqwest::Url,
    id: &DeviceId,
    token: &str,
    files: Files<'_>,
) -> anyhow::Result<DeviceCertificate> {
    let key = KeyPair::generate().context("making a key")?;
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, id.as_str());
    let csr = params.serialize_request(&key).context("making a CSR")?.pem().context("making a CSR")?;
    let path = format!("/devices/{id}/certificate");
    let url = fleet_protocol::paths::api_url(server.as_str().trim_end_matches('/'), &path);
    let mut post = http.post(&url).json(&serde_json::json!({ "csr_pem": csr }));
    if !token.is_empty() {
        post = post.bearer_auth(token);
    }
    let response = post.send().await.with_context(|| format!("POST {url}"))?;
    let status = response.status();
    if !status.is_success() {
        let body = response.text().await.unwrap_or_default();
        bail!("POST {url}: {status}: {body}");
    }
    let issued: DeviceCertificate = response.json().await.with_context(|| format!("POST {url}"))?;
    let next = next_key(files.key);
    let private = WriteOptions { durable: files.durable, mode: Some(0o600) };
    write_atomically(&next, key.serialize_pem().as_bytes(), private)
        .with_context(|| format!("writing {}", next.display()))?;
    let public = WriteOptions { durable: files.durable, mode: Some(0o644) };
    write_atomically(files.cert, issued.certificate_pem.as_bytes(), public)
        .with_context(|| format!("writing {}", files.cert.display()))?;
    promote(&next, files.key, files.durable)?;
    Ok(issued)
}

/// Where a new key waits until its certificate is written.
fn next_key(key: &Path) -> PathBuf {
    let mut name = key.as_os_str().to_owned();
    name.push(".next");
    PathBuf::from(name)
}

/// Renames the new key over the old one (and syncs the directory when `durable`).
fn promote(next: &Path, key: &Path, durable: bool) -> anyhow::Result<()> {
    std::fs::rename(next, key).with_context(|| format!("renaming {} to {}", next.display(), key.display()))?;
    if durable {
        let dir = key.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        std::fs::File::open(dir).and_then(|d| d.sync_all()).with_context(|| format!("syncing {}", dir.display()))?;
    }
    Ok(())
}

/// After a renewal cut short: puts `key.next` in place if it is the certificate's key,
/// else drops it (the certificate was not written, the old pair stands).
fn settle(cert: &Path, key: &Path) -> anyhow::Result<()> {
    let next = next_key(key);
    if !next.exists() {
        return Ok(());
    }
    let pending = ClientIdentity { cert, key: &next };
    if pending.matches() {
        tracing::info!(key = %key.display(), "completing a renewal that was cut short");
        promote(&next, key, true)
    } else {
        std::fs::remove_file(&next).with_context(|| format!("removing {}", next.display()))
    }
}

/// How long a renewal that failed, or waits for an update, is put off.
pub const RETRY: Duration = Duration::from_secs(30);

/// The runtime's instant of a wall-clock time (now if it has passed).
pub fn instant_of(at: SystemTime) -> tokio::time::Instant {
    tokio::time::Instant::now() + at.duration_since(SystemTime::now()).unwrap_or_default()
}

/// `--client-cert/--client-key` of a running agent: what TLS presents, and renewal.
#[derive(Debug)]
pub struct ClientCert {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// Presented by every TLS client of the agent; replaced on renewal.
    pub identity: Arc<ReloadableIdentity>,
}

impl ClientCert {
    /// Loads `--client-cert/--client-key` (completing a renewal a power cut interrupted).
    pub fn load(cert: PathBuf, key: PathBuf) -> anyhow::Result<Self> {
        settle(&cert, &key)?;
        let identity = ReloadableIdentity::load(ClientIdentity { cert: &cert, key: &key })
            .context("--client-cert/--client-key")?;
        Ok(Self { cert, key, identity })
    }

    /// When the certificate is due for renewal: two thirds into its lifetime (now if it
    /// cannot be read).
    pub fn renew_at(&self) -> SystemTime {
        match read_validity(&self.cert) {
            Ok((from, to)) => from + (to.duration_since(from).unwrap_or_default() * 2 / 3),
            Err(e) => {
                tracing::warn!(cert = %self.cert.display(), "reading the certificate's lifetime: {e:#}");
                SystemTime::now()
            }
        }
    }

    /// Gets a new certificate (with the current one, and `token` if the device has one),
    /// writes it and presents it from the next connection on.
    pub async fn renew(
        &self,
        http: &reqwest::Client,
        server: &reqwest::Url,
        id: &DeviceId,
        token: &str,
        durable: bool,
    ) -> anyhow::Result<()> {
        let files = Files { cert: &self.cert, key: &self.key, durable };
        let issued = request(http, server, id, token, files).await?;
        self.identity.reload(ClientIdentity { cert: &self.cert, key: &self.key })?;
        tracing::info!(serial = %issued.serial, expires_at = %issued.expires_at, "device certificate renewed");
        Ok(())
    }
}

/// The first certificate's validity (notBefore, notAfter), read from its DER.
fn read_validity(path: &Path) -> anyhow::Result<(SystemTime, SystemTime)> {
    let certs = fleet_protocol::tls::load_certs(path)?;
    let cert: &CertificateDer<'_> = certs.first().context("no certificate")?;
    validity(cert.as_ref()).context("not an X.509 certificate")
}

/// Reads one DER element: (tag, contents, rest).
fn element(der: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = der.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        (rest[..n].iter().fold(0usize, |acc, b| (acc << 8) | usize::from(*b)), &rest[n..])
    };
    (rest.len() >= len).then(|| (tag, &rest[..len], &rest[len..]))
}

/// Certificate ::= SEQUENCE { tbsCertificate SEQUENCE { [0] version OPTIONAL, serial,
/// signature, issuer, validity SEQUENCE { notBefore, notAfter }, … }, … }
fn validity(der: &[u8]) -> Option<(SystemTime, SystemTime)> {
    let (_, cert, _) = element(der)?;
    let (_, tbs, _) = element(cert)?;
    let (tag, _, mut rest) = element(tbs)?;
    if tag != 0xa0 {
        rest = tbs; // no version: the serial comes first
    }
    for _ in 0..3 {
        rest = element(rest)?.2; // serial, signature, issuer
    }
    let (_, validity, _) = element(rest)?;
    let (tag_from, from, rest) = element(validity)?;
    let (tag_to, to, _) = element(rest)?;
    Some((time_of(tag_from, from)?, time_of(tag_to, to)?))
}

/// UTCTime (YYMMDDHHMMSSZ) or GeneralizedTime (YYYYMMDDHHMMSSZ).
fn time_of(tag: u8, text: &[u8]) -> Option<SystemTime> {
    let text = std::str::from_utf8(text).ok()?.strip_suffix('Z')?;
    let full = match (tag, text.len()) {
        (0x17, 12) => format!("{}{text}", if text[..2].parse::<u32>().ok()? >= 50 { "19" } else { "20" }),
        (0x18, 14) => text.to_owned(),
        _ => return None,
    };
    let n = |range: std::ops::Range<usize>| full.get(range)?.parse::<u32>().ok();
    let month = time::Month::try_from(u8::try_from(n(4..6)?).ok()?).ok()?;
    let date = time::Date::from_calendar_date(i32::try_from(n(0..4)?).ok()?, month, u8::try_from(n(6..8)?).ok()?);
    let clock = time::Time::from_hms(
        u8::try_from(n(8..10)?).ok()?,
        u8::try_from(n(10..12)?).ok()?,
        u8::try_from(n(12..14)?).ok()?,
    );
    let at = time::PrimitiveDateTime::new(date.ok()?, clock.ok()?).assume_utc();
    let secs = u64::try_from(at.unix_timestamp()).ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_renewal_cut_short_keeps_the_key_that_matches_the_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("device.crt"), dir.path().join("device.key"));
        let pair = |name: &str| {
            let k = KeyPair::generate().unwrap();
            let mut params = CertificateParams::default();
            params.distinguished_name.push(DnType::CommonName, name);
            (params.self_signed(&k).unwrap().pem(), k.serialize_pem())
        };
        let (old_cert, old_key) = pair("old");
        let (new_cert, new_key) = pair("new");
        // Cut before the certificate was written: the stray new key goes.
        std::fs::write(&cert, &old_cert).unwrap();
        std::fs::write(&key, &old_key).unwrap();
        std::fs::write(next_key(&key), &new_key).unwrap();
        ClientCert::load(cert.clone(), key.clone()).unwrap();
        assert_eq!(std::fs::read_to_string(&key).unwrap(), old_key);
        assert!(!next_key(&key).exists());
        // Cut after it: the new key is put in place.
        std::fs::write(&cert, &new_cert).unwrap();
        std::fs::write(next_key(&key), &new_key).unwrap();
        ClientCert::load(cert, key.clone()).unwrap();
        assert_eq!(std::fs::read_to_string(&key).unwrap(), new_key);
        assert!(!next_key(&key).exists());
    }

    #[test]
    fn the_lifetime_is_read_from_the_certificate() {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::default();
        params.distinguished_name.push(DnType::CommonName, "dev-1");
        let from = time::OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
        (params.not_before, params.not_after) = (from, from + time::Duration::days(90));
        let cert = params.self_signed(&key).unwrap();
        let (a, b) = validity(cert.der()).unwrap();
        assert_eq!(a, SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000));
        assert_eq!(b.duration_since(a).unwrap(), Duration::from_secs(90 * 86_400));
        // 2050 and later are GeneralizedTime.
        params.not_after = time::OffsetDateTime::from_unix_timestamp(2_600_000_000).unwrap();
        let cert = params.self_signed(&key).unwrap();
        assert_eq!(validity(cert.der()).unwrap().1, SystemTime::UNIX_EPOCH + Duration::from_secs(2_600_000_000));
    }
}
