//! Device certificates at the embedded broker. TLS ends in the [`gate`](super::gate), so rmqtt
//! sees only a loopback connection from the gate's relay. For a client that presented a
//! verified certificate, the gate records the certificate under the address of the relay's
//! own socket to rmqtt (unique while it is open), which is the session's remote address in
//! rmqtt; the authentication hook looks it up there and lets the device in with no password.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use crate::device_ca::ClientCertificate;

/// Certificates of relayed connections, by the relay's local address towards rmqtt.
#[derive(Debug, Default)]
pub struct CertLogins(Mutex<HashMap<SocketAddr, ClientCertificate>>);

impl CertLogins {
    /// Records `cert` for the relay socket at `relay`, until the returned guard drops.
    pub fn record(self: &Arc<Self>, relay: SocketAddr, cert: ClientCertificate) -> Recorded {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).insert(relay, cert);
        Recorded { logins: self.clone(), relay }
    }

    /// The certificate of the connection rmqtt sees from `remote`, if it presented one.
    pub fn get(&self, remote: SocketAddr) -> Option<ClientCertificate> {
        self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(&remote).cloned()
    }
}

/// Forgets a recorded certificate when dropped (the relay ended).
#[derive(Debug)]
pub struct Recorded {
    logins: Arc<CertLogins>,
    relay: SocketAddr,
}

impl Drop for Recorded {
    fn drop(&mut self) {
        self.logins.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&self.relay);
    }
}
