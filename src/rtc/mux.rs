//! Single-port mode (`--ice-udp-port P`): every peer connection shares one UDP socket per
//! bound address. webrtc-rs 0.21 has no UDP mux, but it takes a [`Runtime`] per connection,
//! and `Runtime::wrap_udp_socket` decides what socket the connection really uses. Each
//! connection gets a [`MuxSocket`]: sends go out through the shared socket, and it receives
//! from a queue the shared socket's reader fills.
//!
//! Demultiplexing (as in pion's UDPMux): a STUN Binding request names our ICE username
//! fragment first in USERNAME (`ours:theirs`), which picks the connection and teaches the mux
//! the sender's address; everything else (DTLS, SRTP, STUN responses) goes by remote address.
//! The agent still checks MESSAGE-INTEGRITY, so a forged USERNAME only reroutes the forger's
//! own datagrams. The connection's own socket (bound to an ephemeral port) is dropped; its
//! candidates are announced with the shared port instead ([`super::Announcer`]).

use std::collections::HashMap;
use std::future::Future;
use std::io::{self, IoSliceMut};
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use tokio::sync::mpsc;
use webrtc::runtime::{
    AsyncTcpListener, AsyncTcpStream, AsyncUdpSocket, RecvMeta, Runtime, TokioRuntime, Transmit,
};

use crate::lock::Locked;
use crate::rtc::udp::Udp;

/// Datagrams queued per connection before the mux drops (a stalled connection never
/// holds up the others).
const QUEUE: usize = 1024;

type Datagram = (Vec<u8>, SocketAddr);

#[derive(Default)]
struct Routes {
    by_ufrag: HashMap<String, u64>,
    by_addr: HashMap<SocketAddr, u64>,
    queues: HashMap<u64, mpsc::Sender<Datagram>>,
}

/// One shared UDP socket and its routing table.
pub struct UdpMux {
    sock: Arc<Udp>,
    routes: Mutex<Routes>,
}

impl std::fmt::Debug for UdpMux {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "UdpMux({:?})", self.sock.local_addr().ok())
    }
}

impl UdpMux {
    /// Binds `addr` and starts the reader. Needs a tokio runtime.
    pub fn bind(addr: SocketAddr) -> io::Result<Arc<UdpMux>> {
        let mux = Arc::new(UdpMux {
            sock: Arc::new(Udp::bind(addr)?),
            routes: Mutex::new(Routes::default()),
        });
        tokio::spawn(read_loop(Arc::downgrade(&mux), mux.sock.clone()));
        Ok(mux)
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.sock.local_addr()
    }

    fn routes(&self) -> std::sync::MutexGuard<'_, Routes> {
        self.routes.locked()
    }

    /// Connections currently registered (tests, logs).
    pub fn connections(&self) -> usize {
        self.routes().queues.len()
    }

    fn route(&self, buf: &[u8], from: SocketAddr) -> Option<mpsc::Sender<Datagram>> {
        let mut r = self.routes();
        let id = match binding_request_ufrag(buf) {
            Some(ufrag) => {
                let id = *r.by_ufrag.get(ufrag)?;
                r.by_addr.insert(from, id);
                id
            }
            None => *r.by_addr.get(&from)?,
        };
        r.queues.get(&id).cloned()
    }
}

async fn read_loop(mux: std::sync::Weak<UdpMux>, sock: Arc<Udp>) {
    let mut buf = vec![0u8; 2048];
    loop {
        let Ok((n, from)) = sock.recv_from(&mut buf).await else {
            // ICMP errors surface here as ConnectionRefused: keep serving.
            continue;
        };
        let Some(mux) = mux.upgrade() else { return };
        if !super::gate::plausible(&buf[..n]) {
            super::gate::refused();
            continue;
        }
        if let Some(q) = mux.route(&buf[..n], from) {
            let _ = q.try_send((buf[..n].to_vec(), from));
        }
    }
}

/// Our ufrag from a STUN Binding request's USERNAME (`ours:theirs`), without a full decode.
pub(crate) fn binding_request_ufrag(b: &[u8]) -> Option<&str> {
    if b.len() < 20 || b[0..2] != [0x00, 0x01] || b[4..8] != [0x21, 0x12, 0xA4, 0x42] {
        return None;
    }
    let end = (20 + u16::from_be_bytes([b[2], b[3]]) as usize).min(b.len());
    let mut i = 20;
    while i + 4 <= end {
        let typ = u16::from_be_bytes([b[i], b[i + 1]]);
        let len = u16::from_be_bytes([b[i + 2], b[i + 3]]) as usize;
        let value = b.get(i + 4..i + 4 + len)?;
        if typ == 0x0006 {
            let user = std::str::from_utf8(value).ok()?;
            return user.split(':').next();
        }
        i += 4 + len.next_multiple_of(4);
    }
    None
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// One connection's registration with every shared socket; unregisters on drop.
#[derive(Debug)]
pub struct MuxConn {
    id: u64,
    ufrag: String,
    muxes: Vec<Arc<UdpMux>>,
    /// Receivers not yet claimed by `wrap_udp_socket`, by shared socket.
    pending: Mutex<Vec<(IpAddr, mpsc::Receiver<Datagram>)>>,
}

impl MuxConn {
    /// Registers a connection whose ICE username fragment is `ufrag`.
    pub fn new(muxes: &[Arc<UdpMux>], ufrag: &str) -> Arc<MuxConn> {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let mut pending = Vec::new();
        for m in muxes {
            let (tx, rx) = mpsc::channel(QUEUE);
            let mut r = m.routes();
            r.queues.insert(id, tx);
            r.by_ufrag.insert(ufrag.to_owned(), id);
            if let Ok(a) = m.local_addr() {
                pending.push((a.ip(), rx));
            }
        }
        Arc::new(MuxConn {
            id,
            ufrag: ufrag.to_owned(),
            muxes: muxes.to_vec(),
            pending: Mutex::new(pending),
        })
    }

    /// The ICE username fragment the connection was registered with.
    pub fn ufrag(&self) -> &str {
        &self.ufrag
    }

    /// Takes this connection's queue on the shared socket bound to `ip`, with that socket
    /// (for sending). Once per address.
    pub(crate) fn claim(&self, ip: IpAddr) -> Option<(Arc<Udp>, mpsc::Receiver<Datagram>)> {
        let mut pending = self.pending.locked();
        let at = pending.iter().position(|(i, _)| *i == ip)?;
        let shared = self
            .muxes
            .iter()
            .find(|m| m.local_addr().is_ok_and(|a| a.ip() == ip))?
            .sock
            .clone();
        let (_, rx) = pending.swap_remove(at);
        Some((shared, rx))
    }

    /// Adds the ufrag of an ICE restart (the old one keeps routing until the connection ends).
    pub fn add_ufrag(&self, ufrag: &str) {
        for m in &self.muxes {
            m.routes().by_ufrag.insert(ufrag.to_owned(), self.id);
        }
    }
}

impl Drop for MuxConn {
    fn drop(&mut self) {
        for m in &self.muxes {
            let mut r = m.routes();
            r.queues.remove(&self.id);
            r.by_ufrag.retain(|_, id| *id != self.id);
            r.by_addr.retain(|_, id| *id != self.id);
        }
    }
}

/// The socket a connection sees: sends through the shared socket, receives its queue.
#[derive(Debug)]
struct MuxSocket {
    /// The address the connection bound (its candidates' base); announced as the shared port.
    local: SocketAddr,
    shared: Arc<Udp>,
    rx: Mutex<mpsc::Receiver<Datagram>>,
    _conn: Arc<MuxConn>,
}

impl AsyncUdpSocket for MuxSocket {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }

    fn poll_send(&self, _cx: &mut Context<'_>, t: &Transmit<'_>) -> Poll<io::Result<usize>> {
        // A full socket buffer drops the datagram, as the network would, rather than parking
        // this connection behind a waker that other connections share.
        match self.shared.try_send_to(t.contents, t.destination) {
            Ok(_) => Poll::Ready(Ok(t.contents.len())),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Poll::Ready(Ok(t.contents.len())),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        let (Some(buf), Some(m)) = (bufs.first_mut(), meta.first_mut()) else {
            return Poll::Ready(Ok(0));
        };
        let mut rx = self.rx.locked();
        match rx.poll_recv(cx) {
            Poll::Ready(Some((data, from))) => {
                let n = data.len().min(buf.len());
                buf[..n].copy_from_slice(&data[..n]);
                let mut meta = RecvMeta::default();
                meta.addr = from;
                meta.len = n;
                meta.stride = n.max(1);
                meta.dst_ip = Some(self.local.ip());
                *m = meta;
                Poll::Ready(Ok(1))
            }
            Poll::Ready(None) => Poll::Ready(Err(io::Error::other("UDP mux closed"))),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// tokio, except that UDP sockets are replaced by views of the shared sockets.
#[derive(Debug)]
pub struct MuxRuntime {
    inner: TokioRuntime,
    conn: Arc<MuxConn>,
}

impl MuxRuntime {
    pub fn new(conn: Arc<MuxConn>) -> Arc<MuxRuntime> {
        Arc::new(MuxRuntime {
            inner: TokioRuntime,
            conn,
        })
    }
}

impl Runtime for MuxRuntime {
    delegate_runtime!(inner);

    fn wrap_udp_socket(&self, socket: std::net::UdpSocket) -> io::Result<Arc<dyn AsyncUdpSocket>> {
        let local = socket.local_addr()?;
        drop(socket);
        let (shared, rx) = self
            .conn
            .claim(local.ip())
            .ok_or_else(|| io::Error::other(format!("no shared UDP socket on {}", local.ip())))?;
        Ok(Arc::new(MuxSocket {
            local,
            shared,
            rx: Mutex::new(rx),
            _conn: self.conn.clone(),
        }))
    }

    fn wrap_tcp_listener(
        &self,
        listener: std::net::TcpListener,
    ) -> io::Result<Arc<dyn AsyncTcpListener>> {
        self.inner.wrap_tcp_listener(listener)
    }

    fn connect_tcp<'a>(
        &'a self,
        remote: SocketAddr,
    ) -> Pin<Box<dyn Future<Output = io::Result<Arc<dyn AsyncTcpStream>>> + Send + 'a>> {
        self.inner.connect_tcp(remote)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A STUN Binding request carrying only USERNAME (also `rtc::tcp`'s tests).
    pub(crate) fn binding(username: &str) -> Vec<u8> {
        let mut attr = vec![0x00, 0x06];
        attr.extend_from_slice(&(username.len() as u16).to_be_bytes());
        attr.extend_from_slice(username.as_bytes());
        while attr.len() % 4 != 0 {
            attr.push(0);
        }
        let mut m = vec![0x00, 0x01];
        m.extend_from_slice(&(attr.len() as u16).to_be_bytes());
        m.extend_from_slice(&[0x21, 0x12, 0xA4, 0x42]);
        m.extend_from_slice(&[7; 12]);
        m.extend_from_slice(&attr);
        m
    }

    #[test]
    fn reads_our_ufrag_from_binding_requests_only() {
        assert_eq!(binding_request_ufrag(&binding("srv1:cli9")), Some("srv1"));
        let mut response = binding("srv1:cli9");
        response[0..2].copy_from_slice(&[0x01, 0x01]);
        assert_eq!(binding_request_ufrag(&response), None);
        assert_eq!(binding_request_ufrag(&[0x80; 40]), None, "RTP");
        let mut truncated = binding("srv1:cli9");
        truncated.truncate(26);
        assert_eq!(binding_request_ufrag(&truncated), None);
    }

    #[tokio::test]
    async fn routes_by_ufrag_then_by_address_and_forgets_on_drop() {
        let mux = UdpMux::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let a = MuxConn::new(std::slice::from_ref(&mux), "aaaa");
        let b = MuxConn::new(std::slice::from_ref(&mux), "bbbb");
        let from: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        assert!(
            mux.route(&[0x80, 0, 0, 0], from).is_none(),
            "unknown sender"
        );
        mux.route(&binding("bbbb:x"), from).expect("by ufrag");
        let q = mux.route(&[0x80, 0, 0, 0], from).expect("by address");
        assert!(q.same_channel(&mux.routes().queues[&b.id]));
        assert!(mux.route(&binding("cccc:x"), from).is_none());
        drop(b);
        assert!(mux.route(&[0x80, 0, 0, 0], from).is_none());
        assert_eq!(mux.connections(), 1);
        drop(a);
        assert_eq!(mux.connections(), 0);
    }
}
