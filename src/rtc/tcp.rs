//! ICE-TCP, passive side (RFC 6544), on one shared TCP port: clients that block UDP but allow
//! TCP connect without TURN. Every connection on the port starts with an RFC 4571 frame that
//! holds a STUN Binding request; its USERNAME (`ours:theirs`) names our ICE ufrag, which picks
//! the leg, as in the UDP mux ([`super::mux`]). The leg then owns the stream: the first frame
//! and everything after it go to its `rtc` core as `TransportProtocol::TCP`, and what the core
//! writes for that peer goes back framed.
//!
//! Bounded against abuse: a connection must deliver its first frame within
//! [`FIRST_FRAME_TIMEOUT`] and at most [`MAX_FIRST_FRAME`] bytes, at most [`MAX_HANDSHAKES`]
//! connections wait for theirs at once, and one naming no leg is closed. The agent still checks
//! MESSAGE-INTEGRITY, so a forged USERNAME only hands the forger's own stream to a leg that
//! will not answer it.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};

use crate::lock::Locked;

/// How long a new connection may take to send its first frame.
pub const FIRST_FRAME_TIMEOUT: Duration = Duration::from_secs(5);
/// The largest first frame taken: a Binding request is a few hundred bytes.
pub const MAX_FIRST_FRAME: usize = 1500;
/// Connections waiting for their first frame at once; more are closed at accept.
pub const MAX_HANDSHAKES: usize = 256;
/// Streams queued for one leg before more are refused.
const QUEUE: usize = 8;

/// A client's TCP connection, handed to the leg its first frame named.
#[derive(Debug)]
pub struct TcpPeer {
    pub stream: TcpStream,
    pub peer: SocketAddr,
    /// The first frame's payload (the Binding request), without its length prefix.
    pub first: Vec<u8>,
}

/// The shared listener and its routing table.
pub struct TcpMux {
    local: SocketAddr,
    routes: Mutex<HashMap<String, mpsc::Sender<TcpPeer>>>,
}

impl std::fmt::Debug for TcpMux {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TcpMux({})", self.local)
    }
}

impl TcpMux {
    /// Binds `addr` and starts accepting. Needs a tokio runtime.
    pub fn bind(addr: SocketAddr) -> io::Result<Arc<TcpMux>> {
        Self::bind_with(addr, FIRST_FRAME_TIMEOUT)
    }

    fn bind_with(addr: SocketAddr, first_frame: Duration) -> io::Result<Arc<TcpMux>> {
        let std = std::net::TcpListener::bind(addr)?;
        std.set_nonblocking(true)?;
        let listener = TcpListener::from_std(std)?;
        let mux = Arc::new(TcpMux {
            local: listener.local_addr()?,
            routes: Mutex::new(HashMap::new()),
        });
        tokio::spawn(accept_loop(Arc::downgrade(&mux), listener, first_frame));
        Ok(mux)
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    /// Routes connections naming `ufrag` to the returned receiver until the route is dropped.
    pub fn register(self: &Arc<Self>, ufrag: &str) -> (TcpRoute, mpsc::Receiver<TcpPeer>) {
        let (tx, rx) = mpsc::channel(QUEUE);
        (self.register_to(ufrag, tx), rx)
    }

    /// Routes connections naming `ufrag` to `tx` (an ICE restart's new ufrag, to the same leg).
    pub fn register_to(self: &Arc<Self>, ufrag: &str, tx: mpsc::Sender<TcpPeer>) -> TcpRoute {
        self.routes.locked().insert(ufrag.to_owned(), tx);
        TcpRoute {
            mux: Arc::downgrade(self),
            ufrag: ufrag.to_owned(),
        }
    }

    /// Legs registered now (tests, logs).
    pub fn routes(&self) -> usize {
        self.routes.locked().len()
    }

    fn route(&self, ufrag: &str) -> Option<mpsc::Sender<TcpPeer>> {
        self.routes.locked().get(ufrag).cloned()
    }
}

/// One leg's places on the ICE-TCP listeners, under each ufrag it has had; unregistered when
/// the leg ends.
#[derive(Debug, Default)]
pub struct TcpConn {
    places: Vec<(Arc<TcpMux>, mpsc::Sender<TcpPeer>)>,
    routes: Mutex<Vec<TcpRoute>>,
}

impl TcpConn {
    /// Registers `ufrag` on every listener in `muxes`; returns the leg's place and, per
    /// listener, its address and the streams routed to the leg.
    pub fn new(
        muxes: &[Arc<TcpMux>],
        ufrag: &str,
    ) -> (Arc<TcpConn>, Vec<(SocketAddr, mpsc::Receiver<TcpPeer>)>) {
        let mut places = Vec::new();
        let mut routes = Vec::new();
        let mut incoming = Vec::new();
        for m in muxes {
            let (tx, rx) = mpsc::channel(QUEUE);
            routes.push(m.register_to(ufrag, tx.clone()));
            places.push((m.clone(), tx));
            incoming.push((m.local_addr(), rx));
        }
        let conn = TcpConn {
            places,
            routes: Mutex::new(routes),
        };
        (Arc::new(conn), incoming)
    }

    /// Adds the ufrag of an ICE restart (the old one keeps routing until the leg ends).
    pub fn add_ufrag(&self, ufrag: &str) {
        let mut routes = self.routes.locked();
        for (m, tx) in &self.places {
            routes.push(m.register_to(ufrag, tx.clone()));
        }
    }
}

/// One leg's registration; unregisters on drop.
#[derive(Debug)]
pub struct TcpRoute {
    mux: Weak<TcpMux>,
    ufrag: String,
}

impl Drop for TcpRoute {
    fn drop(&mut self) {
        if let Some(m) = self.mux.upgrade() {
            m.routes.locked().remove(&self.ufrag);
        }
    }
}

async fn accept_loop(mux: Weak<TcpMux>, listener: TcpListener, first_frame: Duration) {
    let handshakes = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            // Out of descriptors and the like: keep serving the connections that exist.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        if mux.strong_count() == 0 {
            return;
        }
        let Ok(permit) = handshakes.clone().try_acquire_owned() else {
            continue; // dropped: closed
        };
        let mux = mux.clone();
        tokio::spawn(async move {
            let _permit = permit;
            let _ = stream.set_nodelay(true);
            let mut stream = stream;
            let first = match tokio::time::timeout(first_frame, read_frame(&mut stream)).await {
                Ok(Ok(f)) => f,
                _ => {
                    super::gate::refused();
                    return;
                }
            };
            let Some(ufrag) = super::mux::binding_request_ufrag(&first) else {
                super::gate::refused();
                return;
            };
            let Some(tx) = mux.upgrade().and_then(|m| m.route(ufrag)) else {
                return;
            };
            let _ = tx.try_send(TcpPeer {
                stream,
                peer,
                first,
            });
        });
    }
}

/// Reads one RFC 4571 frame of at most [`MAX_FIRST_FRAME`] bytes.
async fn read_frame(stream: &mut TcpStream) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 2];
    stream.read_exact(&mut len).await?;
    let len = u16::from_be_bytes(len) as usize;
    if len == 0 || len > MAX_FIRST_FRAME {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "frame size"));
    }
    let mut buf = vec![0u8; len];
    stream.read_exact(&mut buf).await?;
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtc::mux::tests::binding;
    use tokio::io::AsyncWriteExt;

    fn framed(p: &[u8]) -> Vec<u8> {
        let mut f = (p.len() as u16).to_be_bytes().to_vec();
        f.extend_from_slice(p);
        f
    }

    /// Whether the server closed `s` (reads EOF or a reset) within a bound.
    async fn closed(s: &mut TcpStream) -> bool {
        let mut b = [0u8; 1];
        matches!(
            tokio::time::timeout(Duration::from_secs(5), s.read(&mut b)).await,
            Ok(Ok(0) | Err(_))
        )
    }

    #[tokio::test]
    async fn a_binding_request_hands_the_stream_to_the_leg_it_names() {
        let mux = TcpMux::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let (route, mut rx) = mux.register("srv1");
        let mut c = TcpStream::connect(mux.local_addr()).await.unwrap();
        // The frame arrives in two pieces, and more follows it.
        let req = binding("srv1:cli9");
        let f = framed(&req);
        c.write_all(&f[..3]).await.unwrap();
        c.write_all(&f[3..]).await.unwrap();
        c.write_all(&framed(b"dtls")).await.unwrap();
        let got = tokio::time::timeout(Duration::from_secs(5), rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(got.first, req);
        assert_eq!(got.peer, c.local_addr().unwrap());
        // The rest of the stream is the leg's to read.
        let mut s = got.stream;
        let mut rest = [0u8; 6];
        s.read_exact(&mut rest).await.unwrap();
        assert_eq!(&rest, &framed(b"dtls")[..]);
        drop(route);
        assert_eq!(mux.routes(), 0);
    }

    #[tokio::test]
    async fn strangers_garbage_oversize_and_silence_are_closed() {
        let mux =
            TcpMux::bind_with("127.0.0.1:0".parse().unwrap(), Duration::from_millis(200)).unwrap();
        let (_route, mut rx) = mux.register("srv1");
        let cases: [Vec<u8>; 4] = [
            framed(&binding("nobody:cli9")),
            framed(&[0x80; 40]),
            vec![0xff, 0xff, 0x00, 0x01],
            vec![],
        ];
        for bytes in cases {
            let mut c = TcpStream::connect(mux.local_addr()).await.unwrap();
            c.write_all(&bytes).await.unwrap();
            assert!(closed(&mut c).await, "closed after {bytes:?}");
        }
        assert!(rx.try_recv().is_err(), "nothing reached the leg");
    }

    #[tokio::test]
    async fn an_ice_restarts_ufrag_routes_to_the_same_leg_until_it_ends() {
        let mux = TcpMux::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let (conn, mut incoming) = TcpConn::new(std::slice::from_ref(&mux), "old1");
        conn.add_ufrag("new2");
        let (at, rx) = &mut incoming[0];
        assert_eq!(*at, mux.local_addr());
        for ufrag in ["old1", "new2"] {
            let mut c = TcpStream::connect(mux.local_addr()).await.unwrap();
            c.write_all(&framed(&binding(&format!("{ufrag}:cli"))))
                .await
                .unwrap();
            let got = tokio::time::timeout(Duration::from_secs(5), rx.recv())
                .await
                .unwrap()
                .unwrap();
            assert_eq!(got.peer, c.local_addr().unwrap());
        }
        assert_eq!(mux.routes(), 2);
        drop(conn);
        assert_eq!(mux.routes(), 0, "the leg ended: both ufrags forgotten");
    }
}
