//! The `Reconnect` health check: after the reboot into the new slot the device must reach
//! its broker again and the server must answer `/healthz` within the timeout. Time spent
//! waiting for a turn at the simulator's HTTP gate, and attempts this process could not
//! make for want of descriptors, are the load generator's, not the new firmware's: they do
//! not count against the timeout.

use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use crate::http::{Http, LocalError};

/// The pause between two `/healthz` requests.
const PAUSE: Duration = Duration::from_millis(500);

/// Whether the link comes up (when there is one) and `url` answers with success within
/// `timeout` of this device's own trying.
pub async fn reconnected(up: Option<watch::Receiver<bool>>, http: &Http, url: &str, timeout: Duration) -> bool {
    let mut deadline = Instant::now() + timeout;
    if let Some(mut up) = up {
        if tokio::time::timeout_at(deadline, up.wait_for(|u| *u)).await.is_err() {
            return false;
        }
    }
    loop {
        let asked = Instant::now();
        let turn = http.turn().await;
        deadline += asked.elapsed();
        let sent = Instant::now();
        match tokio::time::timeout_at(deadline, http.client().get(url).send()).await {
            Err(_) => return false,
            Ok(Ok(answer)) if answer.status().is_success() => return true,
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                if let Some(local) = LocalError::of(&e) {
                    tracing::warn!("health check request not sent: {local}; not counted");
                    deadline += sent.elapsed() + PAUSE;
                }
            }
        }
        drop(turn);
        if Instant::now() + PAUSE > deadline {
            return false;
        }
        tokio::time::sleep(PAUSE).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waiting_at_the_gate_does_not_count_against_the_timeout() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/healthz", listener.local_addr().unwrap());
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
            while let Ok((mut s, _)) = listener.accept().await {
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").await;
            }
        });
        let http = Http::gated(crate::update::download::http_client(None).unwrap(), 1);
        let busy = http.turn().await;
        let release = async {
            tokio::time::sleep(Duration::from_millis(600)).await;
            drop(busy);
        };
        let (healthy, ()) = tokio::join!(reconnected(None, &http, &url, Duration::from_millis(300)), release);
        assert!(healthy, "600 ms at the gate, then the server answered at once: within 300 ms of trying");

        let nobody = "http://127.0.0.1:1/healthz";
        assert!(!reconnected(None, &http, nobody, Duration::from_millis(300)).await, "a server that never answers");
    }
}
