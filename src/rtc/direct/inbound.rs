//! What reaches a viewer's driver from the network: a socket of its own, read by a task, or
//! queues the driver reads in place.

use std::sync::Arc;

use bytes::BytesMut;
use tokio::net::UdpSocket;
use tokio::sync::mpsc;

use super::NetInput;

pub(super) async fn read_socket(i: usize, socket: Arc<UdpSocket>, tx: mpsc::Sender<NetInput>) {
    let mut buf = [0u8; 2048];
    loop {
        match socket.recv_from(&mut buf).await {
            Ok((n, from)) => {
                if tx.try_send((i, from, BytesMut::from(&buf[..n]))).is_err() && tx.is_closed() {
                    return;
                }
            }
            // ICMP errors surface here as ConnectionRefused: keep serving.
            Err(_) if !tx.is_closed() => continue,
            Err(_) => return,
        }
    }
}

/// Queues the driver reads itself, each with its index: the single-port mux's datagrams for
/// this connection, or its ICE-TCP listeners' new streams. Read in place, they need no
/// forwarding task and channel of their own per viewer (a task, a channel block and a hop
/// per datagram fewer). A queue that has closed is skipped; the queues are few (one per
/// shared socket or listener), so scanning from the first starves none in practice.
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
