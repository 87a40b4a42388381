//! ICE-TCP for publisher legs (`--ice-tcp-port`): the library's async driver accepts TCP
//! through its [`Runtime`], so a publisher leg gets a runtime whose TCP listener is a view of
//! the shared port. The driver binds a listener per host address (an ephemeral port, dropped
//! here) and asks the runtime to wrap it; the view it gets back accepts the streams
//! `rtc::tcp` routed to this leg by ufrag, replaying the first frame (the Binding request the
//! route was chosen by) before the rest of the stream. The answer's passive candidate is
//! announced with the shared port ([`super::Announcer`]), and the server never connects out
//! (`connect_tcp` is refused: a client's passive candidates must not make wisp dial).

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;
use webrtc::runtime::{AsyncTcpListener, AsyncTcpStream, AsyncUdpSocket, Runtime};

use crate::lock::Locked;
use crate::rtc::tcp::TcpPeer;

type Incoming = Arc<tokio::sync::Mutex<mpsc::Receiver<TcpPeer>>>;

/// Another runtime, with TCP listeners replaced by views of the shared ICE-TCP port(s).
#[derive(Debug)]
pub(crate) struct TcpRuntime {
    inner: Arc<dyn Runtime>,
    /// Per shared listener: its address and the streams routed to this leg.
    incoming: Vec<(SocketAddr, Incoming)>,
}

impl TcpRuntime {
    pub(crate) fn new(
        inner: Arc<dyn Runtime>,
        incoming: Vec<(SocketAddr, mpsc::Receiver<TcpPeer>)>,
    ) -> Arc<TcpRuntime> {
        let incoming = incoming
            .into_iter()
            .map(|(a, rx)| (a, Arc::new(tokio::sync::Mutex::new(rx))))
            .collect();
        Arc::new(TcpRuntime { inner, incoming })
    }

    /// The shared listener for a driver bind on `ip`: the one on the same address, else the
    /// first of the same family.
    fn incoming_for(&self, ip: IpAddr) -> Option<&Incoming> {
        let same = |a: &&(SocketAddr, Incoming)| a.0.ip() == ip;
        let family = |a: &&(SocketAddr, Incoming)| a.0.is_ipv4() == ip.is_ipv4();
        let found = self.incoming.iter().find(same);
        found
            .or_else(|| self.incoming.iter().find(family))
            .map(|(_, i)| i)
    }
}

impl Runtime for TcpRuntime {
    delegate_runtime!(inner);

    fn wrap_udp_socket(&self, socket: std::net::UdpSocket) -> io::Result<Arc<dyn AsyncUdpSocket>> {
        self.inner.wrap_udp_socket(socket)
    }

    fn wrap_tcp_listener(
        &self,
        listener: std::net::TcpListener,
    ) -> io::Result<Arc<dyn AsyncTcpListener>> {
        // The driver keys the listener (and the passive candidate it gathers) by the
        // ephemeral address; the streams report it as their local address, so the agent finds
        // that candidate for what arrives on them.
        let local = listener.local_addr()?;
        drop(listener);
        let incoming = self
            .incoming_for(local.ip())
            .ok_or_else(|| io::Error::other(format!("no ICE-TCP listener on {}", local.ip())))?;
        // On an ICE restart the driver re-binds and wraps again; both views share one queue.
        Ok(Arc::new(RoutedListener {
            local,
            incoming: incoming.clone(),
        }))
    }

    fn connect_tcp<'a>(
        &'a self,
        remote: SocketAddr,
    ) -> Pin<Box<dyn Future<Output = io::Result<Arc<dyn AsyncTcpStream>>> + Send + 'a>> {
        Box::pin(async move {
            Err(io::Error::new(
                io::ErrorKind::PermissionDenied,
                format!("wisp does not open ICE-TCP connections ({remote})"),
            ))
        })
    }
}

#[derive(Debug)]
struct RoutedListener {
    local: SocketAddr,
    incoming: Incoming,
}

impl AsyncTcpListener for RoutedListener {
    fn accept<'a>(
        &'a self,
    ) -> Pin<Box<dyn Future<Output = io::Result<(Arc<dyn AsyncTcpStream>, SocketAddr)>> + Send + 'a>>
    {
        Box::pin(async move {
            let Some(p) = self.incoming.lock().await.recv().await else {
                // The shared listener is gone (shutdown): nothing more will come.
                return std::future::pending().await;
            };
            let peer = p.peer;
            let stream: Arc<dyn AsyncTcpStream> = Arc::new(RoutedStream::new(self.local, p));
            Ok((stream, peer))
        })
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }
}

/// A routed stream: the first frame (already read by the router) comes out again first.
#[derive(Debug)]
struct RoutedStream {
    local: SocketAddr,
    peer: SocketAddr,
    /// The first frame, length prefix included, and how much of it was read back.
    replay: Mutex<(Vec<u8>, usize)>,
    rd: tokio::sync::Mutex<OwnedReadHalf>,
    wr: tokio::sync::Mutex<OwnedWriteHalf>,
}

impl RoutedStream {
    fn new(local: SocketAddr, p: TcpPeer) -> RoutedStream {
        let mut framed = Vec::with_capacity(p.first.len() + 2);
        framed.extend_from_slice(&(p.first.len() as u16).to_be_bytes());
        framed.extend_from_slice(&p.first);
        let (rd, wr) = p.stream.into_split();
        RoutedStream {
            local,
            peer: p.peer,
            replay: Mutex::new((framed, 0)),
            rd: tokio::sync::Mutex::new(rd),
            wr: tokio::sync::Mutex::new(wr),
        }
    }

    /// Copies what is left of the first frame into `buf`; 0 once it has all been read.
    fn replayed(&self, buf: &mut [u8]) -> usize {
        let mut r = self.replay.locked();
        let (frame, at) = &mut *r;
        let n = (frame.len() - *at).min(buf.len());
        buf[..n].copy_from_slice(&frame[*at..*at + n]);
        *at += n;
        if *at == frame.len() && !frame.is_empty() {
            *frame = Vec::new();
            *at = 0;
        }
        n
    }
}

impl AsyncTcpStream for RoutedStream {
    fn read<'a, 'b>(
        &'a self,
        buf: &'b mut [u8],
    ) -> Pin<Box<dyn Future<Output = io::Result<usize>> + Send + 'b>>
    where
        'a: 'b,
    {
        Box::pin(async move {
            let n = self.replayed(buf);
            if n > 0 {
                return Ok(n);
            }
            self.rd.lock().await.read(buf).await
        })
    }

    fn write_all<'a, 'b>(
        &'a self,
        buf: &'b [u8],
    ) -> Pin<Box<dyn Future<Output = io::Result<()>> + Send + 'b>>
    where
        'a: 'b,
    {
        Box::pin(async move { self.wr.lock().await.write_all(buf).await })
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.local)
    }

    fn peer_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.peer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::{TcpListener, TcpStream};

    /// A connected pair: the server side as a routed peer whose first frame is `first`.
    async fn routed(first: &[u8]) -> (TcpPeer, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (stream, peer) = l.accept().await.unwrap();
        let p = TcpPeer {
            stream,
            peer,
            first: first.to_vec(),
        };
        (p, client)
    }

    #[tokio::test]
    async fn the_first_frame_is_read_again_then_the_stream_goes_on() {
        let (p, mut client) = routed(b"hello").await;
        let peer = p.peer;
        let local: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let s = RoutedStream::new(local, p);
        assert_eq!(
            (s.local_addr().unwrap(), s.peer_addr().unwrap()),
            (local, peer)
        );
        // A small buffer reads the replay in pieces.
        let mut buf = [0u8; 4];
        let mut got = Vec::new();
        while got.len() < 7 {
            let n = s.read(&mut buf).await.unwrap();
            got.extend_from_slice(&buf[..n]);
        }
        assert_eq!(got, b"\x00\x05hello");
        client.write_all(b"more").await.unwrap();
        let n = s.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"more");
        s.write_all(b"back").await.unwrap();
        let mut back = [0u8; 4];
        client.read_exact(&mut back).await.unwrap();
        assert_eq!(&back, b"back");
    }

    #[tokio::test]
    async fn listeners_accept_the_routed_streams_and_the_runtime_never_dials() {
        let shared: SocketAddr = "127.0.0.1:3478".parse().unwrap();
        let (tx, rx) = mpsc::channel(4);
        let rt = TcpRuntime::new(Arc::new(webrtc::runtime::TokioRuntime), vec![(shared, rx)]);
        let std_l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let ephemeral = std_l.local_addr().unwrap();
        let l = rt.wrap_tcp_listener(std_l).unwrap();
        assert_eq!(l.local_addr().unwrap(), ephemeral);
        let (p, _client) = routed(b"x").await;
        let peer = p.peer;
        tx.send(p).await.unwrap();
        let (s, from) = l.accept().await.unwrap();
        assert_eq!((from, s.local_addr().unwrap()), (peer, ephemeral));
        assert!(rt.connect_tcp(shared).await.is_err());
        // No listener of the family: wrapping fails rather than listening on the wrong one.
        if let Ok(v6) = std::net::TcpListener::bind("[::1]:0") {
            assert!(rt.wrap_tcp_listener(v6).is_err());
        }
    }
}
