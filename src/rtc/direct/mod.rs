//! Viewer legs, all of them (room slots, by-participant players, counter-offers), driven by
//! wisp itself: the sans-IO `rtc` core of one connection is owned by one task, which reads its
//! sockets, runs its timers and writes the fan-outs' packets straight into it. `answer.rs`
//! builds every leg.
//!
//! Why: on the library's async layer every forwarded packet per viewer is a bounded-channel
//! send, an async mutex on the track, a wake of the connection's driver task and a whole pass
//! of its event loop (four more lock/unlock rounds on the core, a timer re-armed, a `select!`
//! rebuilt) before `sendto`. Here a wake drains up to [`BATCH`] packets into the core with no
//! lock at all, and the core's per-packet work (interceptors, SRTP) is the only work left.
//! Packets skip the library's per-packet `RTCRtpSender::write_rtp` checks, which rebuild the
//! sender's parameters (several allocations) for every packet: the slot writer already sends
//! with the negotiated payload type and the track's own SSRC.
//!
//! Invariants: the core is touched only by the driver task; signalling reaches it as
//! [`Job`]s over a channel, so nothing on the packet path waits for signalling. Host
//! candidates are added by hand (the bound sockets, announced as `--public-ip`), so there is
//! nothing to gather.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ::rtc::peer_connection::transport::{CandidateConfig, CandidateHostConfig, RTCIceCandidate};
use ::rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use bytes::BytesMut;
use tokio::sync::{mpsc, oneshot, watch};
use webrtc::peer_connection::RTCIceCandidateInit;

mod agreed;
mod answer;
mod core;
mod inbound;
mod nominate;
mod own;
mod pacer;
mod secure;
mod send;
pub(crate) mod sender;
mod tcp;
mod timers;
mod wire;
pub(crate) use agreed::ice_credentials;
pub(crate) use answer::{PendingTrack, negotiated, restart, viewer_leg};
pub(crate) use core::LegCore;
use inbound::{Inbound, Sockets};
pub(crate) use tcp::TcpSide;
use tcp::{MAX_TCP_STREAMS, TCP_BASE};
use timers::timer_plan;

use crate::error::{Error, Result};
use crate::rtc::feedback::{Feedback, estimate};
use crate::rtc::repair::Outgoing;
use crate::rtc::udp::Udp;
use crate::rtc::{PeerObserver, PeerState};
use crate::signal::MediaKind;

/// Packets taken from the queue per wake.
const BATCH: usize = 64;
/// Packets queued for one connection before the newest are dropped (as a full link would).
pub(crate) const QUEUE: usize = 1024;
/// Frames from the ICE-TCP streams queued before the driver drops (a flood hurts only its
/// target; its UDP sockets drop at their receive buffers).
const NET_QUEUE: usize = 256;
/// Feedback batches queued per track before they are dropped.
const FEEDBACK_QUEUE: usize = 16;
/// The soonest the loop re-handles a deadline that is already due (no busy loop).
const MIN_TIMER_STEP: Duration = Duration::from_millis(1);

/// A piece of signalling run on the driver task with the core.
type Job = Box<dyn FnOnce(&mut LegCore, Instant) + Send>;

enum Ctl {
    Run(Job),
    Close,
}

/// One socket a connection sends from, and the address its host candidate announces.
pub(crate) struct Sock {
    pub announced: SocketAddr,
    pub socket: Arc<Udp>,
    /// Datagrams for this connection, when the socket is shared (single-port mode); `None`
    /// when the connection reads the socket itself.
    pub queue: Option<mpsc::Receiver<(Vec<u8>, SocketAddr)>>,
}

/// Where a track's feedback goes.
struct TrackFeedback {
    ssrc: u32,
    kind: MediaKind,
    tx: mpsc::Sender<Vec<Feedback>>,
}

/// The signalling side's handle on a running connection.
pub(crate) struct DirectConn {
    ctl: mpsc::UnboundedSender<Ctl>,
}

impl DirectConn {
    /// Runs `f` on the driver task with the core, and returns what it returns.
    /// A connection that has ended is a session that is gone: `404` (a trickle PATCH racing
    /// its session's DELETE), never a `500`.
    pub(crate) async fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut LegCore, Instant) -> R + Send + 'static,
    ) -> Result<R> {
        let (tx, rx) = oneshot::channel();
        self.ctl
            .send(Ctl::Run(Box::new(move |pc, now| {
                let _ = tx.send(f(pc, now));
            })))
            .map_err(|_| Error::NotFound)?;
        rx.await.map_err(|_| Error::NotFound)
    }

    /// Sends DTLS close_notify and ends the driver.
    pub(crate) fn close(&self) {
        let _ = self.ctl.send(Ctl::Close);
    }
}

/// The host candidate of one socket, for `add_local_candidate`: UDP, or with `tcp` a passive
/// ICE-TCP one (RFC 6544).
pub(crate) fn host_candidate(addr: SocketAddr, tcp: bool) -> Result<RTCIceCandidateInit> {
    let c = host_ice_candidate(addr, tcp)?;
    RTCIceCandidate::from(&c)
        .to_json()
        .map_err(|e| Error::Internal(format!("host candidate: {e}")))
}

/// [`host_candidate`], as the ICE agent takes it.
pub(crate) fn host_ice_candidate(
    addr: SocketAddr,
    tcp: bool,
) -> Result<::rtc::ice::candidate::Candidate> {
    CandidateHostConfig {
        base_config: CandidateConfig {
            network: if tcp { "tcp" } else { "udp" }.to_owned(),
            address: addr.ip().to_string(),
            port: addr.port(),
            component: 1,
            ..Default::default()
        },
        tcp_type: if tcp {
            ::rtc::ice::tcp_type::TcpType::Passive
        } else {
            Default::default()
        },
    }
    .new_candidate_host()
    .map_err(|e| Error::Internal(format!("host candidate: {e}")))
}

/// What a track needs to hand packets to its connection and read its feedback.
pub(crate) struct TrackPort {
    pub rtp: mpsc::Sender<Outgoing>,
    pub feedback: tokio::sync::Mutex<mpsc::Receiver<Vec<Feedback>>>,
}

/// Builds the channels of a connection before it runs: one packet queue shared by its
/// tracks, one feedback queue per track.
pub(crate) struct Wiring {
    rtp_tx: mpsc::Sender<Outgoing>,
    rtp_rx: mpsc::Receiver<Outgoing>,
    tracks: Vec<TrackFeedback>,
}

impl Wiring {
    pub(crate) fn new() -> Wiring {
        let (rtp_tx, rtp_rx) = mpsc::channel(QUEUE);
        Wiring {
            rtp_tx,
            rtp_rx,
            tracks: Vec::new(),
        }
    }

    /// The port of a new send track with SSRC `ssrc`.
    pub(crate) fn track(&mut self, ssrc: u32, kind: MediaKind) -> TrackPort {
        let (tx, rx) = mpsc::channel(FEEDBACK_QUEUE);
        self.tracks.push(TrackFeedback { ssrc, kind, tx });
        TrackPort {
            rtp: self.rtp_tx.clone(),
            feedback: tokio::sync::Mutex::new(rx),
        }
    }

    /// Starts the driver task with the negotiated core.
    pub(crate) fn spawn(
        self,
        core: LegCore,
        socks: Vec<Sock>,
        tcp: Vec<TcpSide>,
        state: watch::Sender<PeerState>,
        observer: Arc<dyn PeerObserver>,
    ) -> DirectConn {
        let (ctl_tx, ctl_rx) = mpsc::unbounded_channel();
        let mut tcp_sides = Vec::new();
        let mut listens = Inbound::default();
        for (i, side) in tcp.into_iter().enumerate() {
            tcp_sides.push(side.announced);
            listens.0.push((i, side.incoming));
        }
        // The driver reads its own sockets and the shared sockets' queues itself.
        let mut own = Sockets(Vec::new());
        let mut muxed = Inbound::default();
        let mut sockets = Vec::new();
        for (i, mut s) in socks.into_iter().enumerate() {
            match s.queue.take() {
                Some(q) => muxed.0.push((i, q)),
                None => own.0.push((i, s.socket.clone())),
            }
            sockets.push((s.announced, s.socket));
        }
        let driver = Driver {
            core,
            sockets,
            tcp_sides,
            tcp_writers: Default::default(),
            net_tx: None,
            state,
            observer,
            tracks: self.tracks,
            readers: Vec::new(),
            send_errors: 0,
            nomination: Default::default(),
        };
        drop(self.rtp_tx);
        tokio::spawn(driver.run(ctl_rx, self.rtp_rx, own, muxed, listens));
        DirectConn { ctl: ctl_tx }
    }
}

type NetInput = (usize, SocketAddr, BytesMut);

/// The next frame of the connection's TCP streams; pending while it has none.
async fn recv(net: &mut Option<mpsc::Receiver<NetInput>>) -> Option<NetInput> {
    match net {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// One connection's driver task: its core, where it sends, and what it tells signalling.
struct Driver {
    core: LegCore,
    /// Announced address and socket, by index.
    sockets: Vec<(SocketAddr, Arc<Udp>)>,
    /// The ICE-TCP listeners' announced addresses, by side.
    tcp_sides: Vec<SocketAddr>,
    /// Each TCP stream's writer, by the client's address.
    tcp_writers: std::collections::HashMap<SocketAddr, mpsc::Sender<Vec<u8>>>,
    /// For the TCP streams' readers (made with the first stream).
    net_tx: Option<mpsc::Sender<NetInput>>,
    state: watch::Sender<PeerState>,
    observer: Arc<dyn PeerObserver>,
    tracks: Vec<TrackFeedback>,
    /// The TCP streams' tasks, stopped when the driver ends.
    readers: Vec<tokio::task::AbortHandle>,
    send_errors: u64,
    /// The client's nominating check the agent may have left unanswered (see `nominate`).
    nomination: nominate::Replay,
}

impl Drop for Driver {
    fn drop(&mut self) {
        for r in &self.readers {
            r.abort();
        }
    }
}

impl Driver {
    async fn run(
        mut self,
        mut ctl: mpsc::UnboundedReceiver<Ctl>,
        mut rtp: mpsc::Receiver<Outgoing>,
        own: Sockets,
        mut muxed: Inbound<(Vec<u8>, SocketAddr)>,
        mut listens: Inbound<crate::rtc::tcp::TcpPeer>,
    ) {
        let sleep = tokio::time::sleep(Duration::from_secs(1));
        tokio::pin!(sleep);
        let mut batch: Vec<Outgoing> = Vec::with_capacity(BATCH);
        let mut last_due: Option<Instant> = None;
        // The TCP streams' frames, once one has come.
        let mut net: Option<mpsc::Receiver<NetInput>> = None;
        loop {
            self.flush();
            self.events();
            self.reads();
            let now = Instant::now();
            let (urgent, lazy) = self.core.poll_timeouts();
            let connected = *self.state.borrow() == PeerState::Connected;
            let (due, mut deadline) = timer_plan(urgent, lazy, connected, now);
            if due {
                // Due now: handle it, unless it was handled within the last millisecond.
                match last_due {
                    Some(t) if now.saturating_duration_since(t) < MIN_TIMER_STEP => {
                        deadline = t + MIN_TIMER_STEP;
                    }
                    _ => {
                        last_due = Some(now);
                        self.core.handle_timeout(now);
                        continue;
                    }
                }
            }
            sleep.as_mut().reset(deadline.into());
            tokio::select! {
                biased;
                c = ctl.recv() => match c {
                    Some(Ctl::Run(job)) => job(&mut self.core, Instant::now()),
                    Some(Ctl::Close) | None => break,
                },
                (side, s) = listens.next() => {
                    if let Some(rx) = self.tcp_stream(side, s) {
                        net = Some(rx);
                    }
                }
                first = own.next() => {
                    self.read(first);
                    for more in std::iter::from_fn(|| own.try_next()).take(BATCH) {
                        self.read(more);
                    }
                }
                first = muxed.next() => {
                    // A wake's run: what else the shared sockets queued, up to a batch.
                    let more = std::iter::from_fn(|| muxed.try_next()).take(BATCH);
                    for (i, (data, from)) in std::iter::once(first).chain(more) {
                        self.read((i, from, BytesMut::from(&data[..])));
                    }
                }
                Some(first) = recv(&mut net) => {
                    self.read(first);
                    for _ in 0..BATCH {
                        match net.as_mut().map(|n| n.try_recv()) {
                            Some(Ok(more)) => self.read(more),
                            _ => break,
                        }
                    }
                }
                n = rtp.recv_many(&mut batch, BATCH) => {
                    if n == 0 {
                        break;
                    }
                    let now = Instant::now();
                    for pkt in batch.drain(..) {
                        self.core.write_rtp(now, pkt);
                    }
                }
                _ = &mut sleep => {
                    last_due = None;
                    self.core.handle_timeout(Instant::now());
                }
            }
        }
        self.core.close(Instant::now());
        self.flush();
        self.set_state(PeerState::Closed);
    }

    /// Takes a client's ICE-TCP stream (see `tcp`), then reads its first frame. Returns the
    /// queue its frames come on when this is the first stream.
    fn tcp_stream(
        &mut self,
        side: usize,
        s: crate::rtc::tcp::TcpPeer,
    ) -> Option<mpsc::Receiver<NetInput>> {
        self.tcp_writers.retain(|_, w| !w.is_closed());
        if self.tcp_writers.len() >= MAX_TCP_STREAMS {
            return None; // dropped: closed
        }
        let mut made = None;
        let net = self.net_tx.get_or_insert_with(|| {
            let (tx, rx) = mpsc::channel(NET_QUEUE);
            made = Some(rx);
            tx
        });
        let (peer, first) = (s.peer, BytesMut::from(&s.first[..]));
        let (writer, tasks) = tcp::run_stream(side, s, net.clone());
        self.tcp_writers.insert(peer, writer);
        self.readers.extend(tasks);
        self.read((TCP_BASE + side, peer, first));
        made
    }

    fn read(&mut self, (i, from, data): NetInput) {
        let (local, protocol) = match i.checked_sub(TCP_BASE) {
            Some(side) => match self.tcp_sides.get(side) {
                Some(&a) => (a, TransportProtocol::TCP),
                None => return,
            },
            None => match self.sockets.get(i) {
                Some(&(a, _)) => (a, TransportProtocol::UDP),
                None => return,
            },
        };
        if !crate::rtc::gate::plausible(&data) {
            crate::rtc::gate::refused();
            return;
        }
        let connected = *self.state.borrow() == PeerState::Connected;
        let again = self.nomination.inbound(from, &data, connected);
        let mut feed = |message: BytesMut| {
            let read = self.core.handle_read(TaggedBytesMut {
                now: Instant::now(),
                transport: TransportContext {
                    local_addr: local,
                    peer_addr: from,
                    transport_protocol: protocol,
                    ecn: None,
                },
                message,
            });
            if !read {
                crate::rtc::gate::refused();
            }
        };
        feed(data);
        if let Some(nomination) = again {
            feed(BytesMut::from(&nomination[..]));
        }
    }

    /// Sends everything the core has queued, runs of equal datagrams as one segmented send
    /// (see `send`). A full socket buffer drops the datagram, as the network would.
    fn flush(&mut self) {
        let mut out = send::batch();
        while let Some(msg) = self.core.poll_write() {
            if msg.transport.transport_protocol == TransportProtocol::TCP {
                if let Some(w) = self.tcp_writers.get(&msg.transport.peer_addr) {
                    let framed = ::rtc::shared::tcp_framing::frame_packet(&msg.message);
                    let _ = w.try_send(framed);
                }
                continue;
            }
            let socket = match self.sockets.as_slice() {
                [_] => 0,
                many => match many
                    .iter()
                    .position(|(a, _)| *a == msg.transport.local_addr)
                {
                    Some(i) => i,
                    None => continue,
                },
            };
            out.push(send::Datagram {
                socket,
                peer: msg.transport.peer_addr,
                data: msg.message,
            });
        }
        if !out.is_empty() {
            self.send_errors += send::send_all(&self.sockets, &mut out);
        }
        send::give_back(out);
        self.core.forwarded();
    }

    fn set_state(&mut self, s: PeerState) {
        if *self.state.borrow() == s {
            return;
        }
        self.state.send_replace(s);
        self.observer.on_state(s);
    }

    fn events(&mut self) {
        while let Some(s) = self.core.poll_state() {
            self.set_state(s);
        }
    }

    /// Viewer RTCP that the keyframe tap let through: keyframe requests to the track they
    /// name, bandwidth estimates to every video track.
    fn reads(&mut self) {
        while let Some(packets) = self.core.poll_rtcp() {
            for p in &packets {
                if let Some(bps) = estimate(p.as_ref()) {
                    for t in self.tracks.iter().filter(|t| t.kind == MediaKind::Video) {
                        let _ = t.tx.try_send(vec![Feedback::Estimate(bps)]);
                    }
                } else if !crate::rtc::feedback::feedback(std::slice::from_ref(p)).is_empty() {
                    let dest = p.destination_ssrc();
                    for t in self.tracks.iter().filter(|t| dest.contains(&t.ssrc)) {
                        let _ = t.tx.try_send(vec![Feedback::KeyframeRequest]);
                    }
                }
            }
        }
    }
}
