//! One TURN allocation: its relay socket, permissions and channels, and the task that
//! carries peer datagrams back to the client (RFC 8656 §§9–12).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, Weak};
use std::time::Instant;

use crate::lock::Locked;
use crate::rtc::udp::Udp;
use ::rtc::stun::message::*;
use tokio::sync::mpsc;

/// How the engine answers a client: its UDP source address, or its TCP/TLS connection.
#[derive(Clone, Debug)]
pub enum Link {
    Udp(Arc<Udp>, SocketAddr),
    Stream(mpsc::Sender<Vec<u8>>),
}

impl Link {
    /// Non-blocking: a full socket buffer or connection queue drops the datagram, as UDP would.
    pub fn send(&self, bytes: Vec<u8>) {
        match self {
            Link::Udp(sock, to) => {
                let _ = sock.try_send_to(&bytes, *to);
            }
            Link::Stream(tx) => {
                let _ = tx.try_send(bytes);
            }
        }
    }

    pub fn is_stream(&self) -> bool {
        matches!(self, Link::Stream(_))
    }
}

/// A client transport address: which listener kind, and the remote address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FiveTuple {
    pub stream: bool,
    pub client: SocketAddr,
}

pub struct State {
    pub expires: Instant,
    pub permissions: HashMap<IpAddr, Instant>,
    pub channels: HashMap<u16, (SocketAddr, Instant)>,
}

pub struct Allocation {
    pub username: String,
    pub room: String,
    pub key: Vec<u8>,
    pub relay: Arc<Udp>,
    pub relayed: SocketAddr,
    pub link: Link,
    /// The RESERVATION-TOKEN its Allocate was answered with (a retransmission gets it again).
    pub reservation: Option<u64>,
    pub state: Mutex<State>,
    pub _port: crate::rtc::PortLease,
    pub reader: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Drop for Allocation {
    fn drop(&mut self) {
        if let Some(h) = self.reader.locked().take() {
            h.abort();
        }
    }
}

impl Allocation {
    pub fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.locked()
    }

    pub fn permitted(&self, ip: IpAddr, now: Instant) -> bool {
        self.state().permissions.get(&ip).is_some_and(|t| *t > now)
    }

    pub fn channel_to(&self, number: u16, now: Instant) -> Option<SocketAddr> {
        self.state()
            .channels
            .get(&number)
            .filter(|(_, t)| *t > now)
            .map(|(p, _)| *p)
    }

    pub fn channel_of(&self, peer: SocketAddr, now: Instant) -> Option<u16> {
        self.state()
            .channels
            .iter()
            .find(|(_, (p, t))| *p == peer && *t > now)
            .map(|(n, _)| *n)
    }
}

/// Peer → client: ChannelData when a channel is bound, else a Data indication.
pub async fn relay_reader(
    relay: Arc<Udp>,
    alloc: Weak<Allocation>,
    guard: Arc<dyn super::PeerGuard>,
) {
    let mut buf = vec![0u8; 65536];
    loop {
        let Ok((n, from)) = relay.recv_from(&mut buf).await else {
            continue;
        };
        let from = guard.external(from);
        let Some(a) = alloc.upgrade() else { return };
        let now = Instant::now();
        if !a.permitted(from.ip(), now) {
            continue;
        }
        let bytes = match a.channel_of(from, now) {
            Some(number) => {
                let pad = if a.link.is_stream() {
                    n.next_multiple_of(4) - n
                } else {
                    0
                };
                let mut out = Vec::with_capacity(4 + n + pad);
                out.extend_from_slice(&number.to_be_bytes());
                out.extend_from_slice(&(n as u16).to_be_bytes());
                out.extend_from_slice(&buf[..n]);
                out.resize(4 + n + pad, 0);
                out
            }
            None => {
                let mut m = Message::new();
                let built = m.build(&[
                    Box::new(TransactionId::new()),
                    Box::new(MessageType::new(METHOD_DATA, CLASS_INDICATION)),
                    Box::new(::rtc::turn::proto::peeraddr::PeerAddress {
                        ip: from.ip(),
                        port: from.port(),
                    }),
                    Box::new(::rtc::turn::proto::data::Data(buf[..n].to_vec())),
                ]);
                if built.is_err() {
                    continue;
                }
                m.raw
            }
        };
        a.link.send(bytes);
    }
}
