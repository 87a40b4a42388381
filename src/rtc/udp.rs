//! A UDP socket registered with the runtime for reading only.
//!
//! tokio's `UdpSocket` registers every socket for both readiness directions, edge-triggered.
//! A UDP socket becomes writable again each time the kernel frees a datagram it sent, so every
//! send raised a write-readiness event: the epoll wait-queue callback ran in the sender, and a
//! worker parked in `epoll_wait` was woken to record a readiness nobody waited for. With 100
//! viewers a server made ~5× more of those wake-ups than it had datagrams to read (`strace` of
//! `epoll_wait` under the e2e bench: 12.7k write-only events against 2.7k readable in 2 s).
//! wisp never waits to write UDP (a full socket buffer drops the datagram, as the network would),
//! so its media sockets — the viewer legs' own, the single-port mux's and the TURN server's —
//! register for reading alone and send with plain non-blocking calls.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, RawFd};
use std::task::{Context, Poll, ready};

use tokio::io::Interest;
use tokio::io::unix::AsyncFd;

#[derive(Debug)]
pub struct Udp(AsyncFd<std::net::UdpSocket>);

impl Udp {
    /// Binds `addr`; needs a tokio runtime.
    pub fn bind(addr: SocketAddr) -> io::Result<Udp> {
        let socket = std::net::UdpSocket::bind(addr)?;
        socket.set_nonblocking(true)?;
        // SAFETY: the `AsyncFd` owns the socket, which owns its descriptor: it stays open and
        // the same until the `AsyncFd` drops it, and nothing here hands out `&mut` to it.
        // (tokio's safe `with_interest` is deprecated for taking any `AsRawFd`.)
        let fd = unsafe { AsyncFd::register_with_interest(socket, Interest::READABLE) };
        Ok(Udp(fd?))
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.get_ref().local_addr()
    }

    /// Sends now or fails (`WouldBlock` when the socket buffer is full); never waits.
    pub fn try_send_to(&self, buf: &[u8], to: SocketAddr) -> io::Result<usize> {
        self.0.get_ref().send_to(buf, to)
    }

    /// A datagram already queued, or `WouldBlock` (without a system call when the runtime
    /// has seen nothing arrive since the last `WouldBlock`).
    pub fn try_recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.0.try_io(Interest::READABLE, |s| s.recv_from(buf))
    }

    /// The next datagram, or pending (woken when one arrives).
    pub fn poll_recv_from(
        &self,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<(usize, SocketAddr)>> {
        loop {
            let mut ready = ready!(self.0.poll_read_ready(cx))?;
            // `WouldBlock` clears the readiness and polls again, which registers the waker.
            if let Ok(got) = ready.try_io(|s| s.get_ref().recv_from(buf)) {
                return Poll::Ready(got);
            }
        }
    }

    pub async fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        self.0
            .async_io(Interest::READABLE, |s| s.recv_from(buf))
            .await
    }
}

impl AsRawFd for Udp {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn sends_and_receives_and_waits_for_a_datagram() {
        let a = Udp::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let b = Udp::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let mut buf = [0u8; 64];
        assert_eq!(
            b.try_recv_from(&mut buf).unwrap_err().kind(),
            io::ErrorKind::WouldBlock
        );
        // A read that waits, then the datagram that wakes it.
        let wait = async {
            let (n, from) = b.recv_from(&mut buf).await.unwrap();
            (buf[..n].to_vec(), from)
        };
        let send = async {
            tokio::task::yield_now().await;
            a.try_send_to(b"hello", b.local_addr().unwrap()).unwrap()
        };
        let ((got, from), sent) = tokio::join!(wait, send);
        assert_eq!(
            (got.as_slice(), from, sent),
            (&b"hello"[..], a.local_addr().unwrap(), 5)
        );
        // And the non-waiting read still sees what is queued.
        a.try_send_to(b"again", b.local_addr().unwrap()).unwrap();
        let n = std::future::poll_fn(|cx| b.poll_recv_from(cx, &mut buf))
            .await
            .unwrap()
            .0;
        assert_eq!(&buf[..n], b"again");
    }
}
