//! TLS client settings, one rule for every client (the server's MQTT link, the agent's
//! downloads and MQTT link, fleetctl): rustls with the ring provider; with a CA file, only
//! that CA is trusted (pinned); without one, the system's roots.

use std::path::Path;
use std::sync::{Arc, RwLock};

use rustls::client::ResolvesClientCert;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use rustls::sign::CertifiedKey;
use rustls::{ClientConfig, RootCertStore};

/// Why TLS settings could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("CA file {0}: {1}")]
    CaFile(String, String),
    #[error("CA file {0} holds no certificate")]
    NoCertificate(String),
    #[error("no system root certificates: {0}")]
    NoSystemRoots(String),
    #[error("TLS: {0}")]
    Rustls(#[from] rustls::Error),
}

/// The crypto provider every TLS configuration uses.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Makes ring the process's default provider, for clients that look one up (reqwest).
/// Call before building such a client; later calls do nothing.
pub fn install_default_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Certificates of a PEM file.
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let shown = path.display().to_string();
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| TlsError::CaFile(shown.clone(), e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::CaFile(shown.clone(), e.to_string()))?;
    if certs.is_empty() {
        return Err(TlsError::NoCertificate(shown));
    }
    Ok(certs)
}

/// The roots a client trusts: the CA file's certificates, else the system's.
pub fn roots(ca_file: Option<&Path>) -> Result<RootCertStore, TlsError> {
    let mut roots = RootCertStore::empty();
    match ca_file {
        Some(path) => {
            for cert in load_certs(path)? {
                roots.add(cert).map_err(|e| TlsError::CaFile(path.display().to_string(), e.to_string()))?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            if found.certs.is_empty() {
                let why = found.errors.first().map_or_else(|| "none found".to_owned(), ToString::to_string);
                return Err(TlsError::NoSystemRoots(why));
            }
            roots.add_parsable_certificates(found.certs);
        }
    }
    Ok(roots)
}

/// A client configuration trusting `ca_file` (or the system's roots).
pub fn client_config(ca_file: Option<&Path>) -> Result<ClientConfig, TlsError> {
    Ok(ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots(ca_file)?)
        .with_no_client_auth())
}

/// A client certificate (chain, PEM) and its private key (PEM): a device certificate
/// (CONTRACT §12).
#[derive(Debug, Clone, Copy)]
pub struct ClientIdentity<'a> {
    pub cert: &'a Path,
    pub key: &'a Path,
}

impl ClientIdentity<'_> {
    /// The certificate and key, ready for TLS.
    pub fn load(&self) -> Result<Arc<CertifiedKey>, TlsError> {
        let chain = load_certs(self.cert)?;
        let shown = || self.key.display().to_string();
        let key = rustls::pki_types::PrivateKeyDer::from_pem_file(self.key)
            .map_err(|e| TlsError::CaFile(shown(), e.to_string()))?;
        let key = provider().key_provider.load_private_key(key)?;
        Ok(Arc::new(CertifiedKey::new(chain, key)))
    }
}

impl ClientIdentity<'_> {
    /// Whether the key is the certificate's (false when either cannot be read).
    pub fn matches(&self) -> bool {
        self.load().is_ok_and(|k| k.keys_match().is_ok())
    }
}

/// A client certificate that can be replaced while clients use it (a renewed device
/// certificate): each new TLS connection presents the current one.
#[derive(Debug)]
pub struct ReloadableIdentity(RwLock<Arc<CertifiedKey>>);

impl ReloadableIdentity {
    pub fn load(identity: ClientIdentity<'_>) -> Result<Arc<Self>, TlsError> {
        Ok(Arc::new(Self(RwLock::new(identity.load()?))))
    }

    /// Presents `identity` from the next connection on.
    pub fn reload(&self, identity: ClientIdentity<'_>) -> Result<(), TlsError> {
        let loaded = identity.load()?;
        *self.0.write().unwrap_or_else(std::sync::PoisonError::into_inner) = loaded;
        Ok(())
    }
}

impl ResolvesClientCert for ReloadableIdentity {
    fn resolve(&self, _: &[&[u8]], _: &[rustls::SignatureScheme]) -> Option<Arc<CertifiedKey>> {
        Some(self.0.read().unwrap_or_else(std::sync::PoisonError::into_inner).clone())
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// A client configuration trusting `ca_file` (or the system's roots) that presents
/// `identity` when the server asks for a certificate.
pub fn client_config_with_identity(
    ca_file: Option<&Path>,
    identity: ClientIdentity<'_>,
) -> Result<ClientConfig, TlsError> {
    client_config_with_resolver(ca_file, ReloadableIdentity::load(identity)?)
}

/// A client configuration trusting `ca_file` (or the system's roots) that presents the
/// current certificate of `identity`.
pub fn client_config_with_resolver(
    ca_file: Option<&Path>,
    identity: Arc<ReloadableIdentity>,
) -> Result<ClientConfig, TlsError> {
    Ok(ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots(ca_file)?)
        .with_client_cert_resolver(identity))
}
