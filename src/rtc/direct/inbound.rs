//! What reaches a viewer's driver from the network: sockets of its own and queues (the
//! single-port mux's, the ICE-TCP listeners'), all read by the driver in place, and the
//! frames of its ICE-TCP streams, which their reader tasks send it.

use std::sync::Arc;
use std::task::Poll;

use bytes::BytesMut;
use tokio::sync::mpsc;

use super::NetInput;
use crate::rtc::udp::Udp;

/// The largest datagram read (a viewer sends RTCP and consent checks, never this much).
const DATAGRAM: usize = 2048;
/// Errors a socket may return in one poll before it is left for the next (ICMP errors
/// surface as one failed read each; a socket that keeps failing must not spin the driver).
const MAX_ERRORS: usize = 64;

/// The connection's own sockets, each with its index, read by the driver itself: no reader
/// task and channel per viewer (a task, a channel block and a hop per datagram fewer). A
/// viewer sends little (RTCP, consent checks), so each datagram is copied out at its size
/// from a buffer on the stack (split off one growing buffer, each kept that buffer's whole
/// allocation alive: ~30 KB per viewer in a heap profile at N = 100).
pub(super) struct Sockets(pub(super) Vec<(usize, Arc<Udp>)>);

impl Sockets {
    /// A datagram already queued, if any, without waiting.
    pub(super) fn try_next(&self) -> Option<NetInput> {
        let mut buf = [0u8; DATAGRAM];
        for (i, s) in &self.0 {
            for _ in 0..MAX_ERRORS {
                match s.try_recv_from(&mut buf) {
                    Ok((n, from)) => return Some((*i, from, BytesMut::from(&buf[..n]))),
                    // Nothing queued on this one: try the next socket.
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                    // ICMP errors surface here as ConnectionRefused: read on.
                    Err(_) => continue,
                }
            }
        }
        None
    }

    /// The next datagram of any socket; pending while there is none (or no socket).
    pub(super) async fn next(&self) -> NetInput {
        std::future::poll_fn(|cx| {
            let mut buf = [0u8; DATAGRAM];
            for (i, s) in &self.0 {
                for _ in 0..MAX_ERRORS {
                    match s.poll_recv_from(cx, &mut buf) {
                        Poll::Ready(Ok((n, from))) => {
                            return Poll::Ready((*i, from, BytesMut::from(&buf[..n])));
                        }
                        // ICMP errors surface here as ConnectionRefused: keep serving.
                        Poll::Ready(Err(_)) => continue,
                        Poll::Pending => break,
                    }
                }
            }
            Poll::Pending
        })
        .await
    }
}

/// Queues the driver reads itself, each with its index: the single-port mux's datagrams for
/// this connection, or its ICE-TCP listeners' new streams. Read in place, they need no
/// forwarding task and channel of their own per viewer. A queue that has closed is skipped;
/// the queues are few (one per shared socket or listener), so scanning from the first
/// starves none in practice.
pub(super) struct Inbound<T>(pub(super) Vec<(usize, mpsc::Receiver<T>)>);

impl<T> Default for Inbound<T> {
    fn default() -> Self {
        Inbound(Vec::new())
    }
}

impl<T> Inbound<T> {
    /// An item already queued, if any, without waiting.
    pub(super) fn try_next(&mut self) -> Option<(usize, T)> {
        self.0
            .iter_mut()
            .find_map(|(i, q)| q.try_recv().ok().map(|t| (*i, t)))
    }

    /// The next item of any queue; pending while there is none (or no queue).
    pub(super) async fn next(&mut self) -> (usize, T) {
        std::future::poll_fn(|cx| {
            for (i, q) in &mut self.0 {
                if let std::task::Poll::Ready(Some(t)) = q.poll_recv(cx) {
                    return std::task::Poll::Ready((*i, t));
                }
            }
            std::task::Poll::Pending
        })
        .await
    }
}
