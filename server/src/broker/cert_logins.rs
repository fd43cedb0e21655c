//! Device certificates at the embedded broker. TLS ends in the [`gate`](super::gate), so
//! rmqtt never sees the handshake. For a client that presented a verified certificate, the
//! gate records the certificate under the client's address while its session lasts; the
//! authentication hook looks it up there, for sessions of the mqtts:// listener only, and
//! lets the device in with no password. rmqtt names a session by the client's address
//! alone, which two open connections can share (to two addresses of a server listening on
//! all of them, through a NAT that keeps the source port): a second connection from an
//! address already recorded is refused, so one can never log in with the other's
//! certificate.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use rmqtt::types::Id;

use super::listeners;
use crate::device_ca::ClientCertificate;

/// Certificates of open mqtts:// connections, by the client's address.
#[derive(Debug, Default)]
pub struct CertLogins(Mutex<HashMap<SocketAddr, ClientCertificate>>);

impl CertLogins {
    /// Records `cert` for the mqtts:// client at `peer`, until the returned guard drops;
    /// `None` when another open connection from `peer` is recorded already.
    pub fn record(self: &Arc<Self>, peer: SocketAddr, cert: ClientCertificate) -> Option<Recorded> {
        let mut logins = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        match logins.entry(peer) {
            std::collections::hash_map::Entry::Occupied(_) => None,
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(cert);
                Some(Recorded { logins: self.clone(), peer })
            }
        }
    }

    /// The certificate the session `id` presented, if it came through the mqtts://
    /// listener with one.
    pub fn get(&self, id: &Id) -> Option<ClientCertificate> {
        if id.lid != listeners::TLS {
            return None;
        }
        let peer = id.remote_addr?;
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(&peer).cloned()
    }
}

/// Forgets a recorded certificate when dropped (the connection ended).
#[derive(Debug)]
pub struct Recorded {
    logins: Arc<CertLogins>,
    peer: SocketAddr,
}

impl Drop for Recorded {
    fn drop(&mut self) {
        self.logins.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&self.peer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(lid: rmqtt::types::ListenerId, peer: SocketAddr) -> Id {
        Id::new(1, lid, None, Some(peer), "cert-a".into(), None)
    }

    #[test]
    fn a_certificate_counts_only_for_sessions_of_the_tls_listener_while_recorded() {
        let logins = Arc::new(CertLogins::default());
        let peer: SocketAddr = "192.0.2.7:40001".parse().unwrap();
        let recorded = logins.record(peer, ClientCertificate("fingerprint".into())).unwrap();
        assert!(logins.record(peer, ClientCertificate("another".into())).is_none(), "a second connection from it");
        assert_eq!(logins.get(&session(listeners::TLS, peer)).map(|c| c.0), Some("fingerprint".into()));
        assert!(logins.get(&session(listeners::CLEARTEXT, peer)).is_none(), "cleartext from the same address");
        assert!(logins.get(&session(listeners::TLS, "192.0.2.7:40002".parse().unwrap())).is_none());
        drop(recorded);
        assert!(logins.get(&session(listeners::TLS, peer)).is_none(), "forgotten when the session ends");
    }
}
