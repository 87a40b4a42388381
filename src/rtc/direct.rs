//! Viewer legs driven by wisp itself (`--egress direct`): the sans-IO `rtc` core of one
//! connection is owned by one task, which reads its sockets, runs its timers and writes the
//! slot writers' packets straight into it.
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

use ::rtc::peer_connection::RTCPeerConnection;
use ::rtc::peer_connection::event::RTCPeerConnectionEvent;
use ::rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use ::rtc::peer_connection::state::RTCPeerConnectionState;
use ::rtc::peer_connection::transport::{CandidateConfig, CandidateHostConfig, RTCIceCandidate};
use ::rtc::sansio::Protocol;
use ::rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use bytes::BytesMut;
use tokio::net::UdpSocket;
use tokio::sync::{mpsc, oneshot, watch};
use webrtc::peer_connection::RTCIceCandidateInit;

use ::rtc::peer_connection::RTCPeerConnectionBuilder;
use ::rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use webrtc::peer_connection::{
    MediaEngine, RTCConfigurationBuilder, RTCSessionDescription, SettingEngineBuilder,
};

use crate::error::{Error, Result};
use crate::rtc::feedback::{Feedback, estimate};
use crate::rtc::ice::IceRestart;
use crate::rtc::mux::MuxConn;
use crate::rtc::peer::{BIND_ATTEMPTS, Binding, Conn, random_token, send_slots};
use crate::rtc::setup::{default_codec, interceptors};
use crate::rtc::track::OutPath;
use crate::rtc::{OutTrack, PeerObserver, PeerState, RtcPeer, RtpPacket};
use crate::signal::{CodecSpec, MediaKind, OfferSummary};

/// Packets taken from the queue per wake.
const BATCH: usize = 64;
/// Packets queued for one connection before the newest are dropped (as a full link would).
pub(crate) const QUEUE: usize = 1024;
/// Datagrams from the network queued before the driver drops (a flood hurts only its target).
const NET_QUEUE: usize = 256;
/// Feedback batches queued per track before they are dropped.
const FEEDBACK_QUEUE: usize = 16;
/// The soonest the loop re-handles a deadline that is already due (no busy loop).
const MIN_TIMER_STEP: Duration = Duration::from_millis(1);

/// A piece of signalling run on the driver task with the core.
type Job = Box<dyn FnOnce(&mut RTCPeerConnection, Instant) + Send>;

enum Ctl {
    Run(Job),
    Close,
}

/// One socket a connection sends from, and the address its host candidate announces.
pub(crate) struct Sock {
    pub announced: SocketAddr,
    pub socket: Arc<UdpSocket>,
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
    pub(crate) async fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut RTCPeerConnection, Instant) -> R + Send + 'static,
    ) -> Result<R> {
        let (tx, rx) = oneshot::channel();
        self.ctl
            .send(Ctl::Run(Box::new(move |pc, now| {
                let _ = tx.send(f(pc, now));
            })))
            .map_err(|_| Error::Internal("the connection has ended".into()))?;
        rx.await
            .map_err(|_| Error::Internal("the connection has ended".into()))
    }

    /// Sends DTLS close_notify and ends the driver.
    pub(crate) fn close(&self) {
        let _ = self.ctl.send(Ctl::Close);
    }
}

/// The host candidate of one socket, for `add_local_candidate`.
pub(crate) fn host_candidate(addr: SocketAddr) -> Result<RTCIceCandidateInit> {
    let c = CandidateHostConfig {
        base_config: CandidateConfig {
            network: "udp".to_owned(),
            address: addr.ip().to_string(),
            port: addr.port(),
            component: 1,
            ..Default::default()
        },
        ..Default::default()
    }
    .new_candidate_host()
    .map_err(|e| Error::Internal(format!("host candidate: {e}")))?;
    RTCIceCandidate::from(&c)
        .to_json()
        .map_err(|e| Error::Internal(format!("host candidate: {e}")))
}

/// What a track needs to hand packets to its connection and read its feedback.
pub(crate) struct TrackPort {
    pub rtp: mpsc::Sender<RtpPacket>,
    pub feedback: tokio::sync::Mutex<mpsc::Receiver<Vec<Feedback>>>,
}

/// Builds the channels of a connection before it runs: one packet queue shared by its
/// tracks, one feedback queue per track.
pub(crate) struct Wiring {
    rtp_tx: mpsc::Sender<RtpPacket>,
    rtp_rx: mpsc::Receiver<RtpPacket>,
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
        pc: RTCPeerConnection,
        socks: Vec<Sock>,
        state: watch::Sender<PeerState>,
        observer: Arc<dyn PeerObserver>,
    ) -> DirectConn {
        let (ctl_tx, ctl_rx) = mpsc::unbounded_channel();
        let (net_tx, net_rx) = mpsc::channel(NET_QUEUE);
        let mut readers = Vec::new();
        let mut sockets = Vec::new();
        for (i, mut s) in socks.into_iter().enumerate() {
            let tx = net_tx.clone();
            readers.push(match s.queue.take() {
                Some(q) => tokio::spawn(forward_queue(i, q, tx)).abort_handle(),
                None => tokio::spawn(read_socket(i, s.socket.clone(), tx)).abort_handle(),
            });
            sockets.push((s.announced, s.socket));
        }
        let driver = Driver {
            pc,
            sockets,
            state,
            observer,
            tracks: self.tracks,
            readers,
            send_errors: 0,
        };
        drop(self.rtp_tx);
        tokio::spawn(driver.run(ctl_rx, self.rtp_rx, net_rx));
        DirectConn { ctl: ctl_tx }
    }
}

type NetInput = (usize, SocketAddr, BytesMut);

async fn read_socket(i: usize, socket: Arc<UdpSocket>, tx: mpsc::Sender<NetInput>) {
    let mut buf = BytesMut::new();
    loop {
        buf.resize(2048, 0);
        match socket.recv_from(&mut buf).await {
            Ok((n, from)) => {
                buf.truncate(n);
                if tx.try_send((i, from, buf.split())).is_err() && tx.is_closed() {
                    return;
                }
            }
            // ICMP errors surface here as ConnectionRefused: keep serving.
            Err(_) if !tx.is_closed() => continue,
            Err(_) => return,
        }
    }
}

async fn forward_queue(
    i: usize,
    mut q: mpsc::Receiver<(Vec<u8>, SocketAddr)>,
    tx: mpsc::Sender<NetInput>,
) {
    while let Some((data, from)) = q.recv().await {
        if tx.try_send((i, from, BytesMut::from(&data[..]))).is_err() && tx.is_closed() {
            return;
        }
    }
}

struct Driver {
    pc: RTCPeerConnection,
    /// Announced address and socket, by index.
    sockets: Vec<(SocketAddr, Arc<UdpSocket>)>,
    state: watch::Sender<PeerState>,
    observer: Arc<dyn PeerObserver>,
    tracks: Vec<TrackFeedback>,
    /// The socket readers, stopped when the driver ends.
    readers: Vec<tokio::task::AbortHandle>,
    send_errors: u64,
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
        mut rtp: mpsc::Receiver<RtpPacket>,
        mut net: mpsc::Receiver<NetInput>,
    ) {
        let sleep = tokio::time::sleep(Duration::from_secs(1));
        tokio::pin!(sleep);
        let mut batch: Vec<RtpPacket> = Vec::with_capacity(BATCH);
        let mut last_due: Option<Instant> = None;
        loop {
            self.flush();
            self.events();
            self.reads();
            let now = Instant::now();
            let mut deadline = self
                .pc
                .poll_timeout()
                .unwrap_or(now + Duration::from_secs(1));
            if deadline <= now {
                // Due now: handle it, unless it was handled within the last millisecond.
                match last_due {
                    Some(t) if now.saturating_duration_since(t) < MIN_TIMER_STEP => {
                        deadline = t + MIN_TIMER_STEP;
                    }
                    _ => {
                        last_due = Some(now);
                        let _ = self.pc.handle_timeout(now);
                        continue;
                    }
                }
            }
            sleep.as_mut().reset(deadline.into());
            tokio::select! {
                biased;
                c = ctl.recv() => match c {
                    Some(Ctl::Run(job)) => job(&mut self.pc, Instant::now()),
                    Some(Ctl::Close) | None => break,
                },
                d = net.recv() => {
                    let Some(first) = d else { break };
                    self.read(first);
                    for _ in 0..BATCH {
                        match net.try_recv() {
                            Ok(more) => self.read(more),
                            Err(_) => break,
                        }
                    }
                }
                n = rtp.recv_many(&mut batch, BATCH) => {
                    if n == 0 {
                        break;
                    }
                    let now = Instant::now();
                    for pkt in batch.drain(..) {
                        // The track id is not used on the write path; an empty one costs
                        // nothing.
                        let _ = self.pc.handle_write(TaggedRTCMessage {
                            now,
                            message: RTCMessage::RtpPacket(String::new(), pkt),
                        });
                    }
                }
                _ = &mut sleep => {
                    last_due = None;
                    let _ = self.pc.handle_timeout(Instant::now());
                }
            }
        }
        let _ = self.pc.close();
        self.flush();
        self.set_state(PeerState::Closed);
    }

    fn read(&mut self, (i, from, data): NetInput) {
        let Some((local, _)) = self.sockets.get(i) else {
            return;
        };
        let _ = self.pc.handle_read(TaggedBytesMut {
            now: Instant::now(),
            transport: TransportContext {
                local_addr: *local,
                peer_addr: from,
                transport_protocol: TransportProtocol::UDP,
                ecn: None,
            },
            message: data,
        });
    }

    /// Sends everything the core has queued. A full socket buffer drops the datagram, as the
    /// network would.
    fn flush(&mut self) {
        while let Some(msg) = self.pc.poll_write() {
            let socket = match self.sockets.as_slice() {
                [(_, s)] => s,
                many => match many.iter().find(|(a, _)| *a == msg.transport.local_addr) {
                    Some((_, s)) => s,
                    None => continue,
                },
            };
            if socket
                .try_send_to(&msg.message, msg.transport.peer_addr)
                .is_err()
            {
                self.send_errors += 1;
            }
        }
    }

    fn set_state(&mut self, s: PeerState) {
        if *self.state.borrow() == s {
            return;
        }
        self.state.send_replace(s);
        self.observer.on_state(s);
    }

    fn events(&mut self) {
        while let Some(evt) = self.pc.poll_event() {
            if let RTCPeerConnectionEvent::OnConnectionStateChangeEvent(s) = evt {
                let mapped = match s {
                    RTCPeerConnectionState::Connected => PeerState::Connected,
                    RTCPeerConnectionState::Disconnected => PeerState::Disconnected,
                    RTCPeerConnectionState::Failed => PeerState::Failed,
                    RTCPeerConnectionState::Closed => PeerState::Closed,
                    _ => continue,
                };
                self.set_state(mapped);
            }
        }
    }

    /// Viewer RTCP that the keyframe tap let through: keyframe requests to the track they
    /// name, bandwidth estimates to every video track.
    fn reads(&mut self) {
        while let Some(msg) = self.pc.poll_read() {
            let RTCMessage::RtcpPacket(_, packets) = msg.message else {
                continue;
            };
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

/// Answers an ICE-restart offer on a direct connection; returns the local description. The
/// host candidates survive the restart (the sockets do).
pub(crate) async fn restart(
    d: &DirectConn,
    desc: webrtc::peer_connection::RTCSessionDescription,
) -> Result<String> {
    d.call(move |pc, now| {
        pc.set_remote_description(now, desc)?;
        let answer = pc.create_answer(None)?;
        pc.set_local_description(now, answer)?;
        Ok(pc.local_description().map(|d| d.sdp))
    })
    .await?
    .map_err(|e: ::rtc::shared::error::Error| Error::RestartFailed(e.to_string()))?
    .ok_or_else(|| Error::RestartFailed("no local description".into()))
}

impl crate::rtc::RtcEngine {
    /// The sockets of a new direct connection: its own port from the pool on each bound
    /// address, or its place on the shared sockets (single-port mode).
    fn direct_sockets(&self, room: &str) -> Result<(Vec<Sock>, Binding, Option<String>)> {
        let s = &self.settings;
        let announce = s.announcer();
        let announced = |ip: std::net::IpAddr, port: u16| {
            announce
                .announce(ip, port)
                .first()
                .map(|(ip, port)| SocketAddr::new(*ip, *port))
                .unwrap_or(SocketAddr::new(ip, port))
        };
        if !self.muxes.is_empty() {
            let ufrag = random_token(16);
            let conn = MuxConn::new(&self.muxes, &ufrag);
            let mut socks = Vec::new();
            for m in &self.muxes {
                let local = m
                    .local_addr()
                    .map_err(|e| Error::Internal(format!("shared socket: {e}")))?;
                if let Some((socket, queue)) = conn.claim(local.ip()) {
                    socks.push(Sock {
                        announced: announced(local.ip(), local.port()),
                        socket,
                        queue: Some(queue),
                    });
                }
            }
            let binding = Binding {
                _lease: None,
                mux: Some(conn),
            };
            return Ok((socks, binding, Some(ufrag)));
        }
        let ips: Vec<std::net::IpAddr> = match s.bind_ip {
            Some(ip) => vec![ip],
            None => s.public_ips.clone(),
        };
        let mut last_err = None;
        for _ in 0..BIND_ATTEMPTS {
            let lease = self.lease_port(room)?;
            let bound: std::io::Result<Vec<Sock>> = ips
                .iter()
                .map(|ip| {
                    let std = std::net::UdpSocket::bind(SocketAddr::new(*ip, lease.port))?;
                    std.set_nonblocking(true)?;
                    Ok(Sock {
                        announced: announced(*ip, lease.port),
                        socket: Arc::new(UdpSocket::from_std(std)?),
                        queue: None,
                    })
                })
                .collect();
            match bound {
                Ok(socks) => {
                    let binding = Binding {
                        _lease: Some(lease),
                        mux: None,
                    };
                    return Ok((socks, binding, None));
                }
                Err(e) => {
                    tracing::debug!(port = lease.port, "direct connection did not bind: {e}");
                    last_err = Some(e);
                }
            }
        }
        Err(Error::Internal(format!(
            "no port could be bound: {}",
            last_err.map(|e| e.to_string()).unwrap_or_default()
        )))
    }

    /// [`RtcEngine::play`] on a connection wisp drives itself: the whole offer/answer runs on
    /// the core before its driver starts, with the bound sockets as host candidates.
    pub(crate) async fn play_direct(
        &self,
        room: &str,
        offer: &str,
        summary: &OfferSummary,
        prefs: &[Option<CodecSpec>],
        observer: Arc<dyn PeerObserver>,
    ) -> Result<(RtcPeer, Vec<Arc<OutTrack>>, String)> {
        let s = &self.settings;
        let (socks, binding, ufrag) = self.direct_sockets(room)?;
        let lib = |what: &'static str| {
            move |e: ::rtc::shared::error::Error| Error::Unprocessable(format!("{what}: {e}"))
        };
        let mut media = MediaEngine::default();
        media
            .register_default_codecs()
            .map_err(|e| Error::Internal(format!("codecs: {e}")))?;
        let registry = interceptors(true, &mut media)
            .map_err(|e| Error::Internal(format!("interceptors: {e}")))?;
        let mut se = SettingEngineBuilder::new()
            .with_multicast_dns_mode(::rtc::ice::mdns::MulticastDnsMode::Disabled)
            .with_ice_timeouts(
                Some(s.ice_disconnected_timeout),
                Some(s.ice_failed_timeout),
                Some(Duration::from_secs(2)),
            );
        if s.ice_lite {
            se = se.with_lite(true);
        }
        if let Some(u) = ufrag {
            se = se.with_ice_credentials(u, random_token(32));
        }
        let config = RTCConfigurationBuilder::new()
            .with_certificates(vec![self.certificate()])
            .build();
        let now = Instant::now();
        let mut pc = RTCPeerConnectionBuilder::new()
            .with_configuration(config)
            .with_media_engine(media)
            .with_interceptor_registry(registry)
            .with_setting_engine(se.build())
            .build(now)
            .map_err(lib("peer connection"))?;

        let (state_tx, state_rx) = watch::channel(PeerState::New);
        let mut wiring = Wiring::new();
        let mut senders = Vec::new();
        for (i, (kind, mid)) in send_slots(summary).into_iter().enumerate() {
            let codec = prefs
                .get(i)
                .cloned()
                .flatten()
                .unwrap_or_else(|| default_codec(kind));
            let ssrc = rand::random::<u32>();
            let track = crate::rtc::track::send_track(i, kind, ssrc, &codec);
            let tid = pc
                .add_transceiver_from_track(
                    track,
                    Some(RTCRtpTransceiverInit {
                        direction: RTCRtpTransceiverDirection::Sendonly,
                        ..Default::default()
                    }),
                )
                .map_err(lib("track"))?;
            let sender = pc.rtp_transceiver(tid).and_then(|t| t.sender());
            senders.push((kind, mid, ssrc, sender));
        }
        let desc = RTCSessionDescription::offer(s.filter.filter_sdp(offer))
            .map_err(|e| Error::BadSdp(e.to_string().trim_end_matches('.').to_string()))?;
        pc.set_remote_description(now, desc)
            .map_err(lib("remote description"))?;
        for sock in &socks {
            pc.add_local_candidate(host_candidate(sock.announced)?)
                .map_err(lib("local candidate"))?;
        }
        pc.add_local_candidate(RTCIceCandidateInit::default())
            .map_err(lib("end of candidates"))?;
        let answer = pc.create_answer(None).map_err(lib("answer"))?;
        pc.set_local_description(now, answer)
            .map_err(lib("local description"))?;
        let sdp = pc
            .local_description()
            .map(|d| d.sdp.clone())
            .ok_or_else(|| Error::Internal("no local description".into()))?;

        let mut tracks = Vec::new();
        for (kind, mid, ssrc, sender) in senders {
            let negotiated: Vec<(u8, CodecSpec)> = sender
                .and_then(|id| pc.rtp_sender(id))
                .map(|mut snd| {
                    snd.get_parameters()
                        .rtp_parameters
                        .codecs
                        .iter()
                        .map(|c| {
                            (
                                c.payload_type,
                                CodecSpec {
                                    mime_type: c.rtp_codec.mime_type.clone(),
                                    clock_rate: c.rtp_codec.clock_rate,
                                    channels: c.rtp_codec.channels,
                                    fmtp: c.rtp_codec.sdp_fmtp_line.clone(),
                                },
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            let out = OutTrack {
                kind,
                mid,
                ssrc,
                path: OutPath::Direct(wiring.track(ssrc, kind)),
                negotiated: Default::default(),
                state: state_rx.clone(),
            };
            let _ = out.negotiated.set(negotiated);
            tracks.push(Arc::new(out));
        }
        let conn = wiring.spawn(pc, socks, state_tx, observer);
        let (_, gathered) = watch::channel(true);
        let peer = RtcPeer::new(
            Conn::Direct(conn),
            binding,
            state_rx,
            gathered,
            summary,
            &self.settings,
        );
        if let Ok(r) = IceRestart::from_sdp(&sdp) {
            *peer
                .answer_candidates
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = r.candidates;
        }
        Ok((peer, tracks, sdp))
    }
}
