//! `--tls-self-signed`: TLS for a LAN with one flag. On first start a CA of the server's
//! own is made in `DATA_DIR/tls/` (`ca.crt`, and `ca.key` 0600, which never leaves the
//! directory); at every start it signs a server certificate (`server.crt`, `server.key`
//! 0600) for the names the server answers to now: the listen address, `--public-url`'s
//! host, every `--tls-san`, and `localhost`/`127.0.0.1`. Devices and fleetctl pin the CA
//! with `--ca-file`; its SHA-256 fingerprint is logged so an operator can compare it with
//! the copy a device got. Keeping the CA and re-signing the server certificate means a new
//! name never forces every device to learn a new CA.

use std::io::Write as _;
use std::net::IpAddr;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType};
use sha2::{Digest as _, Sha256};

use super::data_dir::FILE_MODE;

/// The CA's subject. A re-made issuer must name exactly this to chain to the stored `ca.crt`.
const CA_NAME: &str = "Fleet OTA server CA";
/// The server certificate's lifetime; it is signed anew at every start.
const SERVER_CERT_DAYS: i64 = 397;
/// The CA's lifetime.
const CA_DAYS: i64 = 3650;

/// The files `--tls-self-signed` serves with, and the CA's fingerprint.
#[derive(Debug, Clone)]
pub struct SelfSigned {
    pub ca: PathBuf,
    /// The CA's key: it signs device certificates too (CONTRACT §12).
    pub ca_key: PathBuf,
    pub cert: PathBuf,
    pub key: PathBuf,
    /// SHA-256 of the CA certificate (DER), as colon-separated hex.
    pub ca_fingerprint: String,
}

/// Why the certificates could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum SelfSignedError {
    #[error("{0}: {1}")]
    Io(PathBuf, #[source] std::io::Error),
    #[error("{0}: {1}")]
    Certificate(PathBuf, #[source] rcgen::Error),
}

/// Makes the CA on first use and a server certificate for `names`, in `data_dir/tls`.
pub fn ensure(data_dir: &Path, names: &[String]) -> Result<SelfSigned, SelfSignedError> {
    let dir = data_dir.join("tls");
    std::fs::create_dir_all(&dir).map_err(|e| SelfSignedError::Io(dir.clone(), e))?;
    let (ca, ca_key) = (dir.join("ca.crt"), dir.join("ca.key"));
    let (ca_pem, issuer) = if ca.exists() && ca_key.exists() { read_ca(&ca, &ca_key)? } else { make_ca(&ca, &ca_key)? };
    let (cert, key) = (dir.join("server.crt"), dir.join("server.key"));
    let server_key = KeyPair::generate().map_err(|e| SelfSignedError::Certificate(key.clone(), e))?;
    let signed = server_params(names)
        .signed_by(&server_key, &issuer)
        .map_err(|e| SelfSignedError::Certificate(cert.clone(), e))?;
    write_private(&key, &server_key.serialize_pem())?;
    std::fs::write(&cert, signed.pem() + &ca_pem).map_err(|e| SelfSignedError::Io(cert.clone(), e))?;
    let ca_fingerprint = fingerprint(&ca)?;
    Ok(SelfSigned { ca, ca_key, cert, key, ca_fingerprint })
}

fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.distinguished_name.push(DnType::CommonName, CA_NAME);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    params
}

fn make_ca(ca: &Path, ca_key: &Path) -> Result<(String, Issuer<'static, KeyPair>), SelfSignedError> {
    let key = KeyPair::generate().map_err(|e| SelfSignedError::Certificate(ca_key.to_owned(), e))?;
    let mut params = ca_params();
    let now = time::OffsetDateTime::now_utc();
    (params.not_before, params.not_after) = (now - time::Duration::days(1), now + time::Duration::days(CA_DAYS));
    let cert = params.self_signed(&key).map_err(|e| SelfSignedError::Certificate(ca.to_owned(), e))?;
    write_private(ca_key, &key.serialize_pem())?;
    std::fs::write(ca, cert.pem()).map_err(|e| SelfSignedError::Io(ca.to_owned(), e))?;
    tracing::info!(ca = %ca.display(), "made a CA for --tls-self-signed");
    Ok((cert.pem(), Issuer::new(ca_params(), key)))
}

fn read_ca(ca: &Path, ca_key: &Path) -> Result<(String, Issuer<'static, KeyPair>), SelfSignedError> {
    let pem = std::fs::read_to_string(ca).map_err(|e| SelfSignedError::Io(ca.to_owned(), e))?;
    let key_pem = std::fs::read_to_string(ca_key).map_err(|e| SelfSignedError::Io(ca_key.to_owned(), e))?;
    let key = KeyPair::from_pem(&key_pem).map_err(|e| SelfSignedError::Certificate(ca_key.to_owned(), e))?;
    Ok((pem, Issuer::new(ca_params(), key)))
}

/// A server certificate for `names` (and loopback), for TLS servers only.
fn server_params(names: &[String]) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, "Fleet OTA server");
    let mut all: Vec<String> = vec!["localhost".into(), "127.0.0.1".into()];
    all.extend(names.iter().filter(|n| !n.is_empty()).cloned());
    all.sort();
    all.dedup();
    params.subject_alt_names = all
        .iter()
        .filter_map(|n| match n.parse::<IpAddr>() {
            Ok(ip) => Some(SanType::IpAddress(ip)),
            Err(_) => n.clone().try_into().ok().map(SanType::DnsName),
        })
        .collect();
    params.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let now = time::OffsetDateTime::now_utc();
    (params.not_before, params.not_after) =
        (now - time::Duration::days(1), now + time::Duration::days(SERVER_CERT_DAYS));
    params
}

/// Writes `contents` to `path`, readable by the owner only.
fn write_private(path: &Path, contents: &str) -> Result<(), SelfSignedError> {
    let err = |e| SelfSignedError::Io(path.to_owned(), e);
    let _ = std::fs::remove_file(path);
    let mut file = std::fs::OpenOptions::new().write(true).create_new(true).mode(FILE_MODE).open(path).map_err(err)?;
    file.write_all(contents.as_bytes()).map_err(err)
}

/// SHA-256 of the first certificate in a PEM file, as `AB:CD:…`.
fn fingerprint(pem: &Path) -> Result<String, SelfSignedError> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject as _;
    let der = CertificateDer::from_pem_file(pem)
        .map_err(|e| SelfSignedError::Io(pem.to_owned(), std::io::Error::other(e.to_string())))?;
    let digest = Sha256::digest(der.as_ref());
    Ok(digest.iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":"))
}

#[cfg(test)]
mod tests {
    use rustls::client::danger::ServerCertVerifier as _;

    use super::*;

    #[test]
    fn the_ca_is_made_once_and_each_start_signs_a_certificate_it_chains_to() {
        let dir = tempfile::tempdir().unwrap();
        let first = ensure(dir.path(), &["gw.example".into()]).unwrap();
        let ca = std::fs::read_to_string(&first.ca).unwrap();
        let again = ensure(dir.path(), &["10.0.0.5".into()]).unwrap();
        assert_eq!(std::fs::read_to_string(&again.ca).unwrap(), ca, "the CA is kept");
        assert_eq!(first.ca_fingerprint, again.ca_fingerprint);
        assert_eq!(first.ca_fingerprint.len(), 32 * 3 - 1);
        for private in [dir.path().join("tls/ca.key"), again.key.clone()] {
            let mode = std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&private).unwrap().permissions());
            assert_eq!(mode & 0o777, 0o600, "{}", private.display());
        }
        // The new certificate verifies against the kept CA for its new name.
        let mut roots = rustls::RootCertStore::empty();
        roots.add_parsable_certificates(fleet_protocol::tls::load_certs(&again.ca).unwrap());
        let chain = fleet_protocol::tls::load_certs(&again.cert).unwrap();
        let verifier =
            rustls::client::WebPkiServerVerifier::builder_with_provider(roots.into(), fleet_protocol::tls::provider())
                .build()
                .unwrap();
        let name = rustls::pki_types::ServerName::try_from("10.0.0.5").unwrap();
        let now = rustls::pki_types::UnixTime::now();
        verifier.verify_server_cert(&chain[0], &chain[1..], &name, &[], now).expect("chains to the kept CA");
    }
}
