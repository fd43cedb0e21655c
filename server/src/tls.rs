//! HTTPS: the server's certificate, and the handshake of one connection within a deadline
//! (each connection's own task runs it, see `app/serve.rs`, so a slow or silent client never
//! holds up the others).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::pem::PemObject as _;
use rustls::server::danger::ClientCertVerifier;
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// Why the certificate or key could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsConfigError {
    #[error(transparent)]
    Certificates(#[from] fleet_protocol::tls::TlsError),
    #[error("TLS key {0}: {1}")]
    Key(PathBuf, rustls::pki_types::pem::Error),
    #[error("TLS certificate {0}: {1}")]
    Rejected(PathBuf, rustls::Error),
}

/// Loads the certificate chain and key into a server configuration (HTTP/1.1). With
/// `clients`, client certificates are asked for and verified by it (device certificates,
/// optional: see [`crate::device_ca`]).
pub fn server_config(
    cert: &Path,
    key: &Path,
    clients: Option<Arc<dyn ClientCertVerifier>>,
) -> Result<Arc<ServerConfig>, TlsConfigError> {
    let chain = fleet_protocol::tls::load_certs(cert)?;
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| TlsConfigError::Key(key.to_owned(), e))?;
    let mut config = ServerConfig::builder_with_provider(fleet_protocol::tls::provider())
        .with_safe_default_protocol_versions()
        .and_then(|b| match clients {
            Some(verifier) => b.with_client_cert_verifier(verifier).with_single_cert(chain, key),
            None => b.with_no_client_auth().with_single_cert(chain, key),
        })
        .map_err(|e| TlsConfigError::Rejected(cert.to_owned(), e))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The HTTPS configuration for the embedded broker's mqtts:// listener: the same
/// certificate, without HTTP's ALPN (MQTT clients offer none, or `mqtt`).
pub fn for_mqtt(https: &Arc<ServerConfig>) -> Arc<ServerConfig> {
    let mut config = ServerConfig::clone(https);
    config.alpn_protocols.clear();
    Arc::new(config)
}

/// Completes a client's TLS handshake within `deadline`; `None` (logged at debug) when it
/// fails or takes longer, so a silent client holds its connection no longer than that.
pub async fn handshake(acceptor: &TlsAcceptor, stream: TcpStream, deadline: Duration) -> Option<TlsStream<TcpStream>> {
    let peer = stream.peer_addr().ok();
    match tokio::time::timeout(deadline, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => Some(stream),
        Ok(Err(e)) => {
            tracing::debug!(?peer, "TLS handshake failed: {e}");
            None
        }
        Err(_) => {
            tracing::debug!(?peer, "TLS handshake timed out");
            None
        }
    }
}
