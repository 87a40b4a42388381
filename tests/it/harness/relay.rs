//! A lossy UDP relay between a client and the server, for NACK and keyframe-recovery tests.

use std::sync::Arc;

/// A UDP relay on loopback that drops every `every`-th SRTP/SRTCP datagram going `up`
/// (client → server) and/or `down` (server → client). ICE, DTLS and STUN pass untouched, so
/// only media is lost: deterministic loss for NACK and keyframe-recovery tests.
pub struct LossyRelay {
    /// Where the client must send (put in place of the server's candidates).
    pub addr: std::net::SocketAddr,
    pub dropped: Arc<std::sync::atomic::AtomicUsize>,
    /// SSRCs of the RTP datagrams that went server → client (the header is not encrypted).
    pub down_ssrcs: Arc<std::sync::Mutex<std::collections::BTreeSet<u32>>>,
    /// Set: the path is dead, every datagram both ways is dropped (STUN and DTLS too).
    pub cut: Arc<std::sync::atomic::AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for LossyRelay {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl LossyRelay {
    pub async fn start(
        server: std::net::SocketAddr,
        every: usize,
        up: bool,
        down: bool,
    ) -> LossyRelay {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let client_side = Arc::new(tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let server_side = Arc::new(tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap());
        let addr = client_side.local_addr().unwrap();
        let dropped = Arc::new(AtomicUsize::new(0));
        let cut = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let client: Arc<std::sync::Mutex<Option<std::net::SocketAddr>>> = Default::default();
        let is_media = |b: &[u8]| b.first().is_some_and(|x| (128..=191).contains(x));
        let (cs, ss, d, c, dead) = (
            client_side.clone(),
            server_side.clone(),
            dropped.clone(),
            client.clone(),
            cut.clone(),
        );
        let upward = tokio::spawn(async move {
            let mut buf = vec![0u8; 2048];
            let mut n = 0usize;
            while let Ok((len, from)) = cs.recv_from(&mut buf).await {
                *c.lock().unwrap() = Some(from);
                if dead.load(Ordering::Relaxed) {
                    continue;
                }
                if up && is_media(&buf[..len]) {
                    n += 1;
                    if n.is_multiple_of(every) {
                        d.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                }
                let _ = ss.send_to(&buf[..len], server).await;
            }
        });
        let down_ssrcs: Arc<std::sync::Mutex<std::collections::BTreeSet<u32>>> = Default::default();
        let (cs, ss, d, seen, dead) = (
            client_side,
            server_side,
            dropped.clone(),
            down_ssrcs.clone(),
            cut.clone(),
        );
        let downward = tokio::spawn(async move {
            let mut buf = vec![0u8; 2048];
            let mut n = 0usize;
            while let Ok((len, _)) = ss.recv_from(&mut buf).await {
                if dead.load(Ordering::Relaxed) {
                    continue;
                }
                // RTP, not RTCP (payload types 64-95 with the marker bit are RTCP's range).
                if len >= 12 && is_media(&buf[..len]) && !(192..=223).contains(&buf[1]) {
                    seen.lock()
                        .unwrap()
                        .insert(u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]));
                }
                if down && is_media(&buf[..len]) {
                    n += 1;
                    if n.is_multiple_of(every) {
                        d.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                }
                let to = *client.lock().unwrap();
                if let Some(to) = to {
                    let _ = cs.send_to(&buf[..len], to).await;
                }
            }
        });
        LossyRelay {
            addr,
            dropped,
            down_ssrcs,
            cut,
            tasks: vec![upward, downward],
        }
    }

    /// The answer with every server candidate replaced by one pointing at this relay.
    pub fn rewrite_answer(&self, answer: &str) -> String {
        let mut out = String::new();
        let mut done = false;
        for line in answer.split_inclusive('\n') {
            if line.starts_with("a=candidate:") {
                if !done {
                    out.push_str(&format!(
                        "a=candidate:1 1 udp 2130706431 {} {} typ host\r\n",
                        self.addr.ip(),
                        self.addr.port()
                    ));
                    done = true;
                }
                continue;
            }
            out.push_str(line);
        }
        out
    }
}

/// The server address of an answer's first candidate.
pub fn first_candidate(answer: &str) -> std::net::SocketAddr {
    let l = answer
        .lines()
        .find(|l| l.starts_with("a=candidate:"))
        .expect("a candidate");
    let f: Vec<&str> = l.split_whitespace().collect();
    format!("{}:{}", f[4], f[5]).parse().unwrap()
}
