//! The driver's way to the wire: runs of equal-size datagrams to one peer leave as one
//! `sendmsg` with UDP generic segmentation offload (Linux `UDP_SEGMENT`), so the kernel walks
//! its send path once per run instead of once per packet. A video frame's packets are one
//! such run (the packetizer cuts a frame into equal pieces; the last may be shorter).
//!
//! Falls back to one datagram per call where GSO is refused (`EIO`/`EINVAL`: a device
//! without checksum offload, an old kernel), for every connection from then on.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::BytesMut;

use crate::rtc::udp::Udp;

/// Segments per `sendmsg`: the kernel's `UDP_MAX_SEGMENTS`.
const MAX_SEGMENTS: usize = 64;
/// Bytes per `sendmsg`: one IP datagram's worth, less headers.
const MAX_BYTES: usize = 65_000;

/// Cleared on the first refusal; shared by every connection.
static GSO: AtomicBool = AtomicBool::new(cfg!(target_os = "linux"));

thread_local! {
    /// The send batch's room, the thread's and not each driver's: a flush fills and empties
    /// it without waiting in between (as the leg's queue, see `wire`).
    static BATCH: std::cell::Cell<Vec<Datagram>> = const { std::cell::Cell::new(Vec::new()) };
}

/// This thread's empty send batch, for one flush; [`give_back`] returns it.
pub(super) fn batch() -> Vec<Datagram> {
    BATCH.take()
}

/// Returns a flush's batch, emptied, to the thread (see `wire::give_back`).
pub(super) fn give_back(out: Vec<Datagram>) {
    super::wire::give_back(&BATCH, out);
}

/// One datagram the core produced: which socket, to whom, what.
pub(super) struct Datagram {
    pub socket: usize,
    pub peer: SocketAddr,
    pub data: BytesMut,
}

/// How many of `out`, starting at its head, form one run: same socket and peer, each as
/// long as the first but the last, which may be shorter (the kernel's rule).
fn run_len(out: &[Datagram]) -> usize {
    let Some(first) = out.first() else { return 0 };
    let size = first.data.len();
    let mut n = 1;
    let mut bytes = size;
    while let Some(d) = out.get(n) {
        if d.socket != first.socket
            || d.peer != first.peer
            || d.data.len() > size
            || n == MAX_SEGMENTS
            || bytes + d.data.len() > MAX_BYTES
        {
            break;
        }
        n += 1;
        bytes += d.data.len();
        if d.data.len() < size {
            break; // a shorter one ends the run
        }
    }
    n
}

/// Sends and empties `out`; `sockets` by index. Returns the datagrams that could not be sent
/// (a full socket buffer drops them, as the network would).
pub(super) fn send_all(
    sockets: &[(SocketAddr, std::sync::Arc<Udp>)],
    out: &mut Vec<Datagram>,
) -> u64 {
    let mut failed = 0;
    let mut i = 0;
    while i < out.len() {
        let n = if GSO.load(Ordering::Relaxed) {
            run_len(&out[i..])
        } else {
            1
        };
        let run = &out[i..i + n];
        let Some((_, socket)) = sockets.get(run[0].socket) else {
            i += n;
            continue;
        };
        if n == 1 || !send_segmented(socket, run) {
            for d in run {
                if socket.try_send_to(&d.data, d.peer).is_err() {
                    failed += 1;
                }
            }
        }
        i += n;
    }
    out.clear();
    failed
}

/// One `sendmsg` for the run. False when it was not sent (the caller sends it datagram by
/// datagram): GSO refused, which also turns it off, or any other error.
#[cfg(target_os = "linux")]
fn send_segmented(socket: &Udp, run: &[Datagram]) -> bool {
    use nix::errno::Errno;
    use nix::sys::socket::{ControlMessage, MsgFlags, SockaddrStorage, sendmsg};
    use std::io::IoSlice;
    use std::os::fd::AsRawFd;

    let mut iov = [IoSlice::new(&[]); MAX_SEGMENTS];
    for (slot, d) in iov.iter_mut().zip(run) {
        *slot = IoSlice::new(&d.data);
    }
    let iov = &iov[..run.len().min(MAX_SEGMENTS)];
    let size = run[0].data.len() as u16;
    let peer = SockaddrStorage::from(run[0].peer);
    match sendmsg(
        socket.as_raw_fd(),
        iov,
        &[ControlMessage::UdpGsoSegments(&size)],
        MsgFlags::empty(),
        Some(&peer),
    ) {
        Ok(_) => true,
        Err(Errno::EIO | Errno::EINVAL) => {
            if GSO.swap(false, Ordering::Relaxed) {
                tracing::info!(
                    "UDP segmentation offload refused here; sending one datagram per call"
                );
            }
            false
        }
        Err(_) => false,
    }
}

#[cfg(not(target_os = "linux"))]
fn send_segmented(_: &Udp, _: &[Datagram]) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(socket: usize, port: u16, len: usize) -> Datagram {
        Datagram {
            socket,
            peer: SocketAddr::from(([127, 0, 0, 1], port)),
            data: BytesMut::zeroed(len),
        }
    }

    #[test]
    fn runs_are_equal_sizes_to_one_peer_with_a_shorter_last() {
        let out = [d(0, 1, 1200), d(0, 1, 1200), d(0, 1, 700), d(0, 1, 1200)];
        assert_eq!(run_len(&out), 3);
        assert_eq!(run_len(&out[3..]), 1);
        // A longer one, another peer or another socket starts a new run.
        assert_eq!(run_len(&[d(0, 1, 700), d(0, 1, 1200)]), 1);
        assert_eq!(run_len(&[d(0, 1, 1200), d(0, 2, 1200)]), 1);
        assert_eq!(run_len(&[d(0, 1, 1200), d(1, 1, 1200)]), 1);
        assert_eq!(run_len(&[]), 0);
    }

    #[test]
    fn runs_stay_within_the_kernels_limits() {
        let many: Vec<_> = (0..100).map(|_| d(0, 1, 100)).collect();
        assert_eq!(run_len(&many), MAX_SEGMENTS);
        let big: Vec<_> = (0..60).map(|_| d(0, 1, 1400)).collect();
        assert_eq!(run_len(&big), MAX_BYTES / 1400);
    }

    /// What leaves as one segmented send arrives as the same datagrams, in order.
    #[tokio::test]
    async fn a_segmented_run_arrives_as_its_datagrams() {
        let rx = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let tx = std::sync::Arc::new(Udp::bind("127.0.0.1:0".parse().unwrap()).unwrap());
        let peer = rx.local_addr().unwrap();
        let sizes = [1200, 1200, 1200, 300];
        let mut out: Vec<Datagram> = sizes
            .iter()
            .enumerate()
            .map(|(i, &len)| Datagram {
                socket: 0,
                peer,
                data: BytesMut::from(&vec![i as u8; len][..]),
            })
            .collect();
        let sockets = [(tx.local_addr().unwrap(), tx)];
        assert_eq!(send_all(&sockets, &mut out), 0);
        assert!(out.is_empty());
        // Loopback takes GSO on any kernel since 4.18: the run went as one send.
        assert!(GSO.load(Ordering::Relaxed), "GSO was refused");
        let mut buf = [0u8; 2048];
        for (i, &len) in sizes.iter().enumerate() {
            let (n, _) = rx.recv_from(&mut buf).await.unwrap();
            assert_eq!(n, len, "datagram {i}");
            assert!(buf[..n].iter().all(|b| *b == i as u8), "datagram {i}");
        }
    }
}
