//! A client's connection while it waits to be let in. Until the broker's first answer
//! (CONNACK, or its refusal) the connection is *pending*: it holds one of the gate's
//! pending permits, and a read or a write past the CONNECT deadline fails, which ends the
//! connection in rmqtt as any broken socket does (a CONNACK that comes too late, after a
//! slow authentication, is not sent: the client is closed, as the relay closed it). The
//! first bytes the broker writes in time let it in: the permit goes back and no deadline
//! applies any more.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::OwnedSemaphorePermit;
use tokio::time::{Instant, Sleep};

/// A connection of `S`, pending until the broker first writes to it.
#[derive(Debug)]
pub struct Admission<S> {
    inner: S,
    pending: Option<Pending>,
}

#[derive(Debug)]
struct Pending {
    _permit: OwnedSemaphorePermit,
    deadline: Pin<Box<Sleep>>,
}

impl<S> Admission<S> {
    /// `inner`, pending with `permit` until the broker answers, by `deadline` at the latest.
    pub fn new(inner: S, deadline: Instant, permit: OwnedSemaphorePermit) -> Self {
        let pending = Pending { _permit: permit, deadline: Box::pin(tokio::time::sleep_until(deadline)) };
        Self { inner, pending: Some(pending) }
    }
}

impl<S> Admission<S> {
    /// An error once the deadline has passed while pending.
    fn late(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        let Some(pending) = &mut self.pending else {
            return Ok(());
        };
        if pending.deadline.as_mut().poll(cx).is_pending() {
            return Ok(());
        }
        tracing::debug!("an MQTT client was not let in by its CONNECT deadline: closed");
        Err(io::Error::new(io::ErrorKind::TimedOut, "not let in by the CONNECT deadline"))
    }

    /// The broker wrote `written` bytes: any lets the client in.
    fn answered(&mut self, written: usize) -> usize {
        if written > 0 {
            self.pending = None;
        }
        written
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Admission<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        self.late(cx)?;
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Admission<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.late(cx)?;
        let written = ready!(Pin::new(&mut self.inner).poll_write(cx, buf))?;
        Poll::Ready(Ok(self.answered(written)))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.late(cx)?;
        let written = ready!(Pin::new(&mut self.inner).poll_write_vectored(cx, bufs))?;
        Poll::Ready(Ok(self.answered(written)))
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _, DuplexStream};
    use tokio::sync::Semaphore;

    use super::*;

    /// A pending connection with a 50 ms deadline, its peer, and the semaphore of its permit.
    fn pending() -> (Admission<DuplexStream>, DuplexStream, Arc<Semaphore>) {
        let permits = Arc::new(Semaphore::new(1));
        let (ours, theirs) = tokio::io::duplex(64);
        let deadline = Instant::now() + Duration::from_millis(50);
        let conn = Admission::new(ours, deadline, permits.clone().try_acquire_owned().unwrap());
        (conn, theirs, permits)
    }

    #[tokio::test]
    async fn a_read_past_the_deadline_fails_while_pending() {
        let (mut conn, _theirs, permits) = pending();
        assert_eq!(permits.available_permits(), 0);
        let err = conn.read(&mut [0u8; 8]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(permits.available_permits(), 0, "still pending");
    }

    #[tokio::test]
    async fn an_answer_past_the_deadline_is_not_sent() {
        let (mut conn, _theirs, _) = pending();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let err = conn.write_all(b"\x20\x02\x00\x00").await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }

    #[tokio::test]
    async fn the_first_answer_lets_it_in_and_gives_the_permit_back() {
        let (mut conn, mut theirs, permits) = pending();
        conn.write_all(b"\x20\x02\x00\x00").await.unwrap();
        assert_eq!(permits.available_permits(), 1);
        tokio::time::sleep(Duration::from_millis(100)).await;
        theirs.write_all(b"ping").await.unwrap();
        let mut got = [0u8; 4];
        conn.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"ping", "no deadline once let in");
    }
}
