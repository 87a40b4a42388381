//! A viewer leg's ICE-TCP streams (`--ice-tcp-port`, routed here by `rtc::tcp`): each has a
//! reader that unframes (RFC 4571) into the driver's net queue and a writer that sends what
//! the driver framed for that client.

use std::net::SocketAddr;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::task::AbortHandle;

use super::NetInput;
use crate::rtc::tcp::TcpPeer;

/// One ICE-TCP listener's view for a connection: the address its passive candidate
/// announces, and the streams routed to this connection.
pub(crate) struct TcpSide {
    pub announced: SocketAddr,
    pub incoming: mpsc::Receiver<TcpPeer>,
}

/// Net inputs from TCP streams carry `TCP_BASE + side` as their index.
pub(super) const TCP_BASE: usize = 1 << 16;
/// TCP streams one connection keeps (ICE may open one per candidate pair); more are closed.
pub(super) const MAX_TCP_STREAMS: usize = 4;
/// Framed writes queued per TCP stream before the newest are dropped (as a full link would).
const TCP_QUEUE: usize = 256;

/// Starts `s`'s reader (frames to `net`, tagged with `side`) and writer; returns the writer's
/// queue of framed packets and both tasks (aborted when the driver ends).
pub(super) fn run_stream(
    side: usize,
    s: TcpPeer,
    net: mpsc::Sender<NetInput>,
) -> (mpsc::Sender<Vec<u8>>, [AbortHandle; 2]) {
    let (mut rd, mut wr) = s.stream.into_split();
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(TCP_QUEUE);
    let writer = tokio::spawn(async move {
        while let Some(frame) = rx.recv().await {
            if wr.write_all(&frame).await.is_err() {
                return;
            }
        }
    });
    let peer = s.peer;
    let reader = tokio::spawn(async move {
        let mut decoder = ::rtc::shared::tcp_framing::TcpFrameDecoder::new();
        let mut buf = vec![0u8; 4096];
        loop {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => decoder.extend_from_slice(&buf[..n]),
            }
            while let Some(frame) = decoder.next_packet() {
                let input = (TCP_BASE + side, peer, BytesMut::from(&frame[..]));
                if net.try_send(input).is_err() && net.is_closed() {
                    return;
                }
            }
        }
    });
    (tx, [writer.abort_handle(), reader.abort_handle()])
}
