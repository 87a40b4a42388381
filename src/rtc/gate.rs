//! The first look at every datagram that reaches an ICE port, before any connection parses it:
//! what cannot be STUN, DTLS, RTP or RTCP (RFC 7983 §7, by first byte), or is shorter than the
//! header it claims, is dropped and counted ([`BAD_PACKETS`], `wisp_dropped_packets_total
//! {reason="bad_packet"}`). A hostile or broken peer then costs one branch per datagram instead
//! of a parse, an error and a log line inside webrtc-rs. Datagrams a connection itself refuses
//! (SRTP authentication, replays) are counted too where wisp drives the connection (viewer
//! legs).
//!
//! Applied by the viewer-leg driver, the single-port mux, and [`GateRuntime`] for publisher
//! legs on their own ports.

use std::future::Future;
use std::io::{self, IoSliceMut};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use webrtc::runtime::{
    AsyncTcpListener, AsyncTcpStream, AsyncUdpSocket, RecvMeta, Runtime, TokioRuntime, Transmit,
};

/// Datagrams dropped as malformed or refused, since start.
pub static BAD_PACKETS: AtomicU64 = AtomicU64::new(0);

/// Counts one datagram dropped as bad.
pub fn refused() {
    BAD_PACKETS.fetch_add(1, Ordering::Relaxed);
}

/// STUN's magic cookie (RFC 8489 §5): every ICE check and response carries it.
const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xa4, 0x42];

/// Whether `d` can be a datagram of an ICE connection: STUN with a whole header, a DTLS record
/// header, or RTP/RTCP version 2 with every header field it claims (CSRCs, extension) present.
pub fn plausible(d: &[u8]) -> bool {
    let Some(&first) = d.first() else {
        return false;
    };
    match first {
        // STUN: 20-byte header, length a multiple of 4 that the datagram holds, the cookie.
        0..=3 => {
            d.len() >= 20
                && d[4..8] == MAGIC_COOKIE
                && u16::from_be_bytes([d[2], d[3]]).is_multiple_of(4)
                && 20 + usize::from(u16::from_be_bytes([d[2], d[3]])) <= d.len()
        }
        // DTLS: a 13-byte record header.
        20..=63 => d.len() >= 13,
        // RTP and RTCP (version 2 is the top two bits of this range).
        128..=191 => rtp_header_fits(d),
        _ => false,
    }
}

/// RTCP (payload types 192–223 in the second byte, RFC 5761 §4) needs its 8-byte header;
/// RTP its 12 bytes, the CSRCs it counts, and the whole header extension it announces.
fn rtp_header_fits(d: &[u8]) -> bool {
    if d.len() < 8 {
        return false;
    }
    if (192..=223).contains(&d[1]) {
        return true;
    }
    let mut need = 12 + 4 * usize::from(d[0] & 0x0f);
    if d[0] & 0x10 != 0 {
        let Some(ext) = d.get(need + 2..need + 4) else {
            return false;
        };
        need += 4 + 4 * usize::from(u16::from_be_bytes([ext[0], ext[1]]));
    }
    d.len() >= need
}

/// A UDP socket that drops what [`plausible`] refuses before the connection reads it.
#[derive(Debug)]
struct GatedSocket(Arc<dyn AsyncUdpSocket>);

impl AsyncUdpSocket for GatedSocket {
    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.0.local_addr()
    }

    fn poll_send(&self, cx: &mut Context<'_>, t: &Transmit<'_>) -> Poll<io::Result<usize>> {
        self.0.poll_send(cx, t)
    }

    // Both must be the wrapped socket's: the driver sizes its receive buffers by
    // `max_gro_segments`, and the socket underneath coalesces what a GSO sender sends in one
    // run. With the trait's default (1) here, a coalesced read landed in a one-datagram
    // buffer and the kernel dropped the rest of the run: a publisher sending frames as GSO
    // runs (another wisp's cascade upstream) lost ~70 % of its video.
    fn max_gso_segments(&self) -> usize {
        self.0.max_gso_segments()
    }

    fn max_gro_segments(&self) -> usize {
        self.0.max_gro_segments()
    }

    fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        bufs: &mut [IoSliceMut<'_>],
        meta: &mut [RecvMeta],
    ) -> Poll<io::Result<usize>> {
        // Bounded: every round consumes datagrams from the socket, which is finite when read
        // without waiting; a round with nothing left returns Pending.
        loop {
            let n = match self.0.poll_recv(cx, bufs, meta) {
                Poll::Ready(Ok(n)) => n,
                other => return other,
            };
            let kept = keep_plausible(bufs, meta, n);
            if kept > 0 || n == 0 {
                return Poll::Ready(Ok(kept));
            }
        }
    }
}

/// Moves the plausible datagrams of the first `n` to the front; returns how many there are.
/// A coalesced receive (several segments in one buffer) is judged by its first segment.
fn keep_plausible(bufs: &mut [IoSliceMut<'_>], meta: &mut [RecvMeta], n: usize) -> usize {
    let mut kept = 0;
    for i in 0..n {
        let len = meta[i].len.min(bufs[i].len());
        let first = meta[i].stride.clamp(1, len.max(1)).min(len);
        if !plausible(&bufs[i][..first]) {
            refused();
            continue;
        }
        if kept != i {
            let (to, from) = bufs.split_at_mut(i);
            to[kept][..len].copy_from_slice(&from[0][..len]);
            meta[kept] = meta[i];
        }
        kept += 1;
    }
    kept
}

/// tokio, with every UDP socket behind the gate.
#[derive(Debug)]
pub struct GateRuntime(TokioRuntime);

impl GateRuntime {
    pub fn new() -> Arc<GateRuntime> {
        Arc::new(GateRuntime(TokioRuntime))
    }
}

impl Runtime for GateRuntime {
    delegate_runtime!(0);

    fn wrap_udp_socket(&self, socket: std::net::UdpSocket) -> io::Result<Arc<dyn AsyncUdpSocket>> {
        Ok(Arc::new(GatedSocket(self.0.wrap_udp_socket(socket)?)))
    }

    fn wrap_tcp_listener(
        &self,
        listener: std::net::TcpListener,
    ) -> io::Result<Arc<dyn AsyncTcpListener>> {
        self.0.wrap_tcp_listener(listener)
    }

    fn connect_tcp<'a>(
        &'a self,
        addr: SocketAddr,
    ) -> Pin<Box<dyn Future<Output = io::Result<Arc<dyn AsyncTcpStream>>> + Send + 'a>> {
        self.0.connect_tcp(addr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rtp(first: u8, extra: &[u8]) -> Vec<u8> {
        let mut d = vec![first, 96, 0, 1, 0, 0, 0, 1, 0, 0, 0, 2];
        d.extend_from_slice(extra);
        d
    }

    #[tokio::test]
    async fn the_gate_keeps_the_sockets_gso_and_gro_sizes() {
        let bind = || std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let plain = TokioRuntime.wrap_udp_socket(bind()).unwrap();
        let gated = GateRuntime::new().wrap_udp_socket(bind()).unwrap();
        assert_eq!(gated.max_gro_segments(), plain.max_gro_segments());
        assert_eq!(gated.max_gso_segments(), plain.max_gso_segments());
        // Linux coalesces on receive: the case the driver must size its buffers for.
        #[cfg(target_os = "linux")]
        assert!(gated.max_gro_segments() > 1);
    }

    #[test]
    fn tells_plausible_from_bad() {
        let mut stun = vec![0, 1, 0, 4, 0x21, 0x12, 0xa4, 0x42];
        stun.extend_from_slice(&[0; 12]);
        stun.extend_from_slice(&[0; 4]);
        assert!(plausible(&stun));
        stun[3] = 8; // claims more than it holds
        assert!(!plausible(&stun));
        stun[3] = 4;
        stun[4] = 0; // no magic cookie
        assert!(!plausible(&stun));

        assert!(plausible(&[22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]));
        assert!(!plausible(&[22, 0xfe, 0xfd]));

        assert!(plausible(&rtp(0x80, &[1, 2, 3])));
        assert!(!plausible(&rtp(0x80, &[])[..11]), "truncated header");
        assert!(!plausible(&rtp(0x40, &[1, 2, 3])), "version 1");
        assert!(!plausible(&rtp(0x00, &[1, 2, 3])), "version 0");
        assert!(
            !plausible(&rtp(0x82, &[0, 0, 0, 1])),
            "two CSRCs, one present"
        );
        // An extension header announcing 0x100 words, with 8 bytes of it present.
        assert!(!plausible(&rtp(
            0x90,
            &[0xbe, 0xde, 0x01, 0x00, 0, 0, 0, 0]
        )));
        assert!(plausible(&rtp(
            0x90,
            &[0xbe, 0xde, 0x00, 0x01, 0x10, 0xff, 0, 0]
        )));
        // RTCP: a receiver report header, and one cut short.
        assert!(plausible(&[0x81, 201, 0, 7, 0, 0, 0, 1]));
        assert!(!plausible(&[0x81, 201, 0, 7]));
        assert!(!plausible(&[]));
        assert!(!plausible(&[0x45; 40]), "TURN channel data on an ICE port");
    }

    #[test]
    fn keeps_only_plausible_datagrams_in_order() {
        let good_a = rtp(0x80, &[1]);
        let bad = vec![0xff; 20];
        let good_b = rtp(0x80, &[2, 2]);
        let mut storage = [good_a.clone(), bad.clone(), good_b.clone()].map(|d| {
            let mut v = vec![0u8; 64];
            v[..d.len()].copy_from_slice(&d);
            v
        });
        let lens = [good_a.len(), bad.len(), good_b.len()];
        let mut meta: Vec<RecvMeta> = lens
            .iter()
            .map(|&len| {
                let mut m = RecvMeta::default();
                m.len = len;
                m.stride = len;
                m
            })
            .collect();
        let before = BAD_PACKETS.load(Ordering::Relaxed);
        let mut bufs: Vec<IoSliceMut<'_>> =
            storage.iter_mut().map(|v| IoSliceMut::new(v)).collect();
        let kept = keep_plausible(&mut bufs, &mut meta, 3);
        assert_eq!(kept, 2);
        assert_eq!(&bufs[1][..meta[1].len], &good_b[..]);
        assert_eq!(&bufs[0][..meta[0].len], &good_a[..]);
        assert!(BAD_PACKETS.load(Ordering::Relaxed) > before);
    }
}
