//! Serving HTTP(S) with an accept loop of our own and hyper's HTTP/1 connection, because
//! `axum::serve` sets no header-read deadline: a client that sends nothing, half a header,
//! or falls silent between keep-alive requests would hold its connection (and a file
//! descriptor) for good. Here it is closed after `--http-header-timeout`, and a TLS client
//! has as long for its handshake. Out of file descriptors, the loop waits
//! (`limits::accept_failed`) instead of spinning. On the stop the listener closes and the
//! requests in flight finish.

use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::Request;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tower::ServiceExt as _;

use crate::device_ca::ClientCertificate;

/// What every connection is served with.
struct Connections {
    router: Router,
    tls: Option<TlsAcceptor>,
    header_timeout: Duration,
}

/// Serves HTTP (or HTTPS with `tls`) until `shutdown`, then lets requests in flight finish.
/// With `require_tls` cleartext HTTP is served to loopback peers only.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    tls: Option<Arc<rustls::ServerConfig>>,
    require_tls: bool,
    header_timeout: Duration,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> io::Result<()> {
    let loopback_only = require_tls && tls.is_none();
    let connections = Arc::new(Connections { router, tls: tls.map(TlsAcceptor::from), header_timeout });
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    let mut starved = false;
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                if std::mem::take(&mut starved) {
                    tracing::info!("accepting connections again");
                }
                if loopback_only && !peer.ip().is_loopback() {
                    tracing::info!(%peer, "cleartext HTTP from beyond loopback refused (--require-tls)");
                    continue;
                }
                tokio::spawn(serve_connection(stream, connections.clone(), graceful.watcher()));
            }
            Err(e) => starved = crate::limits::accept_failed("HTTP", &e, starved).await,
        }
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// One connection: TLS handshake (within the header deadline) when HTTPS, then HTTP/1.
async fn serve_connection(stream: TcpStream, connections: Arc<Connections>, watcher: Watcher) {
    if let Err(e) = stream.set_nodelay(true) {
        tracing::debug!("TCP_NODELAY: {e}");
    }
    match &connections.tls {
        None => serve_http(stream, &connections, None, watcher).await,
        Some(acceptor) => {
            if let Some(stream) = crate::tls::handshake(acceptor, stream, connections.header_timeout).await {
                let cert = ClientCertificate::of(stream.get_ref().1);
                serve_http(stream, &connections, cert, watcher).await;
            }
        }
    }
}

/// HTTP/1 with keep-alive, every request's headers within the header deadline (the wait
/// for the next request on a kept-alive connection included). The client's verified
/// certificate, if it presented one, goes into every request's extensions (`auth` reads it).
async fn serve_http<I>(io: I, connections: &Connections, cert: Option<ClientCertificate>, watcher: Watcher)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(connections.header_timeout).keep_alive(true);
    let result = match cert {
        None => {
            let service = TowerToHyperService::new(connections.router.clone());
            watcher.watch(builder.serve_connection(TokioIo::new(io), service)).await
        }
        Some(cert) => {
            let router = connections.router.clone().map_request(move |mut request: Request<Incoming>| {
                request.extensions_mut().insert(cert.clone());
                request
            });
            let service = TowerToHyperService::new(router);
            watcher.watch(builder.serve_connection(TokioIo::new(io), service)).await
        }
    };
    if let Err(e) = result {
        tracing::debug!("HTTP connection closed: {e}");
    }
}
