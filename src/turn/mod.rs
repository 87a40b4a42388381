//! The embedded TURN/STUN server (`--turn-listen`): one UDP and one TCP listener on the same
//! address, optionally TLS (`turns:`) on another, relays from `--turn-relay-ports`. Clients get
//! per-session REST credentials in `Link: rel="ice-server"` headers; a relay may only reach the
//! ICE sessions of the room its credential names, so the server is no open proxy.
//!
//! Written here: the allocation engine (`server.rs`) and these listeners. From crates: STUN/TURN
//! message codecs and attributes (`rtc-stun`, `rtc-turn`), MESSAGE-INTEGRITY, and the TCP
//! stream splitter (`rtc-shared::turn_framing`). webrtc-rs 0.21 ships a TURN client only.

pub(crate) mod allocation;
mod auth;
pub mod credentials;
mod reserve;
pub(crate) mod server;
mod wire;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc};

use crate::rtc::udp::Udp;

pub use credentials::{Credential, Minter};
pub use server::PeerGuard;
use server::{Engine, Link, Settings};

use crate::rtc::PortPool;

/// Concurrent TCP/TLS client connections before new ones are refused.
const MAX_STREAMS: usize = 1024;
/// A stream connection that has not allocated by then is closed.
const STREAM_IDLE: Duration = Duration::from_secs(30);

/// Settings from the command line.
#[derive(Clone, Debug)]
pub struct TurnConfig {
    pub listen: SocketAddr,
    pub tls_listen: Option<SocketAddr>,
    /// Host put in the advertised URLs (an IP, or a name matching the TLS certificate).
    pub host: String,
    pub secret: Vec<u8>,
    pub relay_ports: (u16, u16),
    pub relay_bind: IpAddr,
    pub relay_public: IpAddr,
    pub credential_ttl: Duration,
    pub quota: usize,
}

/// The running server.
pub struct Turn {
    engine: Arc<Engine>,
    minter: Minter,
    urls: Vec<(String, bool)>,
    pub udp_addr: SocketAddr,
    pub tcp_addr: SocketAddr,
    pub tls_addr: Option<SocketAddr>,
}

impl Turn {
    /// Binds the listeners and starts serving; fails when an address cannot be bound.
    pub async fn start(
        cfg: TurnConfig,
        guard: Arc<dyn PeerGuard>,
        tls: Option<tokio_rustls::TlsAcceptor>,
    ) -> Result<Arc<Turn>, String> {
        let minter = Minter::new(&cfg.secret, cfg.credential_ttl);
        let engine = Engine::new(
            Settings {
                realm: "wisp".into(),
                minter: minter.clone(),
                relay_bind: cfg.relay_bind,
                relay_public: cfg.relay_public,
                quota: cfg.quota,
            },
            guard,
            PortPool::new(cfg.relay_ports.0, cfg.relay_ports.1),
        )?;
        let udp =
            Arc::new(Udp::bind(cfg.listen).map_err(|e| format!("TURN UDP {}: {e}", cfg.listen))?);
        let tcp = TcpListener::bind(cfg.listen)
            .await
            .map_err(|e| format!("TURN TCP {}: {e}", cfg.listen))?;
        let udp_addr = udp.local_addr().map_err(|e| e.to_string())?;
        let tcp_addr = tcp.local_addr().map_err(|e| e.to_string())?;
        let tls_listener = match (cfg.tls_listen, &tls) {
            (Some(addr), Some(_)) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|e| format!("TURN TLS {addr}: {e}"))?,
            ),
            (Some(_), None) => {
                return Err("--turn-tls-listen needs an HTTPS certificate (--tls-cert or --tls-self-signed)".into());
            }
            _ => None,
        };
        let tls_addr = match &tls_listener {
            Some(l) => Some(l.local_addr().map_err(|e| e.to_string())?),
            None => None,
        };
        let host = if cfg.host.contains(':') {
            format!("[{}]", cfg.host)
        } else {
            cfg.host.clone()
        };
        let mut urls = vec![
            (format!("stun:{host}:{}", udp_addr.port()), false),
            (
                format!("turn:{host}:{}?transport=udp", udp_addr.port()),
                true,
            ),
            (
                format!("turn:{host}:{}?transport=tcp", tcp_addr.port()),
                true,
            ),
        ];
        if let Some(a) = tls_addr {
            urls.push((format!("turns:{host}:{}?transport=tcp", a.port()), true));
        }
        tokio::spawn(serve_udp(engine.clone(), udp));
        let streams = Arc::new(Semaphore::new(MAX_STREAMS));
        tokio::spawn(serve_tcp(engine.clone(), tcp, None, streams.clone()));
        if let (Some(l), Some(acceptor)) = (tls_listener, tls) {
            tokio::spawn(serve_tcp(engine.clone(), l, Some(acceptor), streams));
        }
        let sweeper = Arc::downgrade(&engine);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(5));
            loop {
                tick.tick().await;
                let Some(e) = sweeper.upgrade() else { return };
                e.sweep(Instant::now());
            }
        });
        tracing::info!(%udp_addr, %tcp_addr, tls = ?tls_addr, "TURN/STUN server listening");
        Ok(Arc::new(Turn {
            engine,
            minter,
            urls,
            udp_addr,
            tcp_addr,
            tls_addr,
        }))
    }

    /// `Link` header values for a client of `room` (RFC 9725 §4.6), with fresh credentials.
    pub fn links(&self, room: &str) -> Vec<String> {
        let c = self.minter.mint(room);
        self.urls
            .iter()
            .map(|(url, turn)| {
                if *turn {
                    format!(
                        "<{url}>; rel=\"ice-server\"; username=\"{}\"; credential=\"{}\"; credential-type=\"password\"",
                        c.username, c.password
                    )
                } else {
                    format!("<{url}>; rel=\"ice-server\"")
                }
            })
            .collect()
    }

    /// A credential for `room` (tests, tools).
    pub fn credential(&self, room: &str) -> Credential {
        self.minter.mint(room)
    }

    pub fn allocation_count(&self) -> usize {
        self.engine.allocation_count()
    }
}

/// The relay guard wisp uses: a peer must be one of the server's announced ICE addresses on
/// a port leased to a session of the credential's room.
pub struct IceSessions {
    pub ports: PortPool,
    /// Announced ICE addresses (`--public-ip`).
    pub public_ips: Vec<IpAddr>,
    /// The address ICE sockets are bound to behind NAT 1:1 (`--ice-bind`).
    pub bind_ip: Option<IpAddr>,
    /// Single-port mode: the one ICE port. Every session shares it, so the room of a relayed
    /// datagram cannot be told from its address there; the relay is still limited to it.
    pub shared_port: Option<u16>,
}

impl PeerGuard for IceSessions {
    fn allows(&self, room: &str, peer: SocketAddr) -> bool {
        self.public_ips.contains(&peer.ip())
            && match self.shared_port {
                Some(p) => peer.port() == p,
                None => self.ports.owned_by(peer.port(), room),
            }
    }

    fn internal(&self, peer: SocketAddr) -> SocketAddr {
        match self.bind_ip {
            Some(b) if b.is_ipv4() == peer.is_ipv4() => SocketAddr::new(b, peer.port()),
            _ => peer,
        }
    }

    fn external(&self, from: SocketAddr) -> SocketAddr {
        match self.bind_ip {
            Some(b) if b == from.ip() => self
                .public_ips
                .iter()
                .find(|p| p.is_ipv4() == b.is_ipv4())
                .map_or(from, |p| SocketAddr::new(*p, from.port())),
            _ => from,
        }
    }
}

async fn serve_udp(engine: Arc<Engine>, sock: Arc<Udp>) {
    let mut buf = vec![0u8; 65536];
    loop {
        match sock.recv_from(&mut buf).await {
            Ok((n, from)) => engine.handle(&Link::Udp(sock.clone(), from), from, &buf[..n]),
            // ICMP errors surface as ConnectionReset on some systems: keep serving.
            Err(e) => tracing::trace!("TURN UDP recv: {e}"),
        }
    }
}

async fn serve_tcp(
    engine: Arc<Engine>,
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    streams: Arc<Semaphore>,
) {
    loop {
        let Ok((stream, peer)) = listener.accept().await else {
            continue;
        };
        let Ok(permit) = streams.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "TURN: too many stream connections; refusing one");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let engine = engine.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let _permit = permit;
            match tls {
                None => serve_stream(engine, stream, peer).await,
                Some(acceptor) => {
                    match tokio::time::timeout(STREAM_IDLE, acceptor.accept(stream)).await {
                        Ok(Ok(s)) => serve_stream(engine, s, peer).await,
                        _ => tracing::debug!(%peer, "TURN TLS handshake failed"),
                    }
                }
            }
        });
    }
}

/// One TCP/TLS client: STUN and ChannelData framed back to back (RFC 8656 §12.5).
async fn serve_stream<S>(engine: Arc<Engine>, stream: S, peer: SocketAddr)
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut rd, mut wr) = tokio::io::split(stream);
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(512);
    let writer = tokio::spawn(async move {
        while let Some(bytes) = rx.recv().await {
            if wr.write_all(&bytes).await.is_err() {
                return;
            }
        }
    });
    let link = Link::Stream(tx);
    let mut decoder = ::rtc::shared::turn_framing::TurnStreamDecoder::new();
    let mut buf = vec![0u8; 16384];
    loop {
        let idle = !engine.has_stream_allocation(peer);
        let read = if idle {
            match tokio::time::timeout(STREAM_IDLE, rd.read(&mut buf)).await {
                Ok(r) => r,
                Err(_) => break,
            }
        } else {
            rd.read(&mut buf).await
        };
        let n = match read {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        decoder.extend_from_slice(&buf[..n]);
        loop {
            match decoder.next_message() {
                Ok(Some(msg)) => engine.handle(&link, peer, &msg),
                Ok(None) => break,
                Err(_) => {
                    engine.connection_closed(peer);
                    writer.abort();
                    return;
                }
            }
        }
    }
    engine.connection_closed(peer);
    drop(link);
    let _ = writer.await;
}
