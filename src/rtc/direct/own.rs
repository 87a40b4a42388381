//! wisp's own viewer-leg transport, the only one: the ICE agent (`rtc-ice`), the DTLS
//! endpoint (`rtc-dtls`, keys exported per RFC 5764), SRTP (`rtc-srtp`) and wisp's sending
//! side ([`Sender`]: transport-wide numbering, probes, the NACK history, sender reports, the
//! viewer's RTCP) wired directly, with no `RTCPeerConnection` pipeline and no interceptor
//! chain between them. The core's pipeline passes every packet through eight handlers (SCTP
//! and data channels included), each with its own queue and message struct; here a packet
//! goes sender → SRTP → datagram, by reference.
//!
//! Signalling still uses an `RTCPeerConnection`, as a model only: it writes the answer (and a
//! restart's), and the leg reads what was agreed from it (ICE credentials, DTLS role and
//! fingerprint, each stream's SSRCs, payload types and header extensions). That model is never
//! fed network data.
//!
//! Demultiplexing follows RFC 7983: STUN to the agent, DTLS to the endpoint, SRTCP to the
//! sender (a viewer sends no media).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ::rtc::crypto::RTCCryptoProvider;
use ::rtc::dtls::config::HandshakeConfig;
use ::rtc::dtls::endpoint::{Endpoint, EndpointEvent};
use ::rtc::ice::candidate::Candidate;
use ::rtc::ice::state::ConnectionState;
use ::rtc::ice::{Agent, AgentConfig, Event as IceEvent};
use ::rtc::interceptor::StreamInfo;
use ::rtc::sansio::Protocol;
use ::rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use ::rtc::srtp::context::Context;
use bytes::BytesMut;

use super::pacer::Pacer;
use super::sender::{Rtcp, Sender};
use super::wire::Wire;
use crate::rtc::PeerState;
use crate::rtc::repair::Outgoing;

/// The DTLS endpoint's one association, keyed by a fixed address: DTLS runs over whatever
/// pair ICE selects (and survives a restart's new pair), as in the `rtc` core.
const DTLS_PEER: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 65535);

/// What was agreed in signalling, read from the model connection.
pub(crate) struct Agreed {
    pub local_ufrag: String,
    pub local_pwd: String,
    pub remote_ufrag: String,
    pub remote_pwd: String,
    /// `a=setup:active` in our description: wisp is the DTLS client.
    pub dtls_client: bool,
    /// The client's `sha-256` certificate fingerprints, lower-case hex with colons.
    pub fingerprints: Vec<String>,
    pub remote_candidates: Vec<String>,
    /// Each send stream, with its m-line's mid.
    pub streams: Vec<(StreamInfo, String)>,
}

/// How the agent is set up (from the server's settings).
pub(crate) struct IceSetup {
    pub lite: bool,
    pub disconnected: Duration,
    pub failed: Duration,
    /// The host candidates: the announced address of each socket and ICE-TCP listener.
    pub hosts: Vec<(SocketAddr, bool)>,
}

pub(crate) struct OwnLeg {
    ice: Agent,
    dtls: Endpoint,
    /// Held until the pair is selected, when wisp is the DTLS client.
    client_config: Option<Arc<HandshakeConfig>>,
    srtp_in: Option<Context>,
    sender: Sender,
    pacer: Pacer,
    /// Forwarding-delay stamps of what was sent since the driver's last flush.
    stamps: Vec<u32>,
    wire: Wire,
    crypto: Arc<dyn RTCCryptoProvider>,
    ice_state: ConnectionState,
    rtcp: VecDeque<Rtcp>,
    states: VecDeque<PeerState>,
    closed: bool,
    /// The client's current ICE username fragment (a restart is told from a trickle by it).
    remote_ufrag: String,
    /// The ICE agent's and DTLS endpoint's next deadline, as last asked (`None`: ask again).
    /// Their timers move only when they are fed (a read, a timeout, a candidate, a restart,
    /// a close — each ends in `pump` or clears this), never when media is sent, so the
    /// driver's wakes for media (most of them) skip both lookups.
    transport_due: Option<Option<Instant>>,
}

fn err(what: &str) -> impl Fn(::rtc::shared::error::Error) -> String + '_ {
    move |e| format!("{what}: {e}")
}

impl OwnLeg {
    pub(crate) fn new(
        now: Instant,
        agreed: Agreed,
        setup: IceSetup,
        certificate: ::rtc::dtls::crypto::Certificate,
        feedback: super::core::Feedback,
    ) -> Result<OwnLeg, String> {
        use ::rtc::ice::network_type::NetworkType;
        let crypto = ::rtc::crypto::default_provider().map_err(|e| format!("crypto: {e}"))?;
        let mut network_types = vec![NetworkType::Udp4, NetworkType::Udp6];
        if setup.hosts.iter().any(|(_, tcp)| *tcp) {
            network_types.extend([NetworkType::Tcp4, NetworkType::Tcp6]);
        }
        let config = AgentConfig {
            lite: setup.lite,
            local_ufrag: agreed.local_ufrag,
            local_pwd: agreed.local_pwd,
            disconnected_timeout: Some(setup.disconnected),
            failed_timeout: Some(setup.failed),
            keepalive_interval: Some(Duration::from_secs(1)),
            network_types,
            // wisp's candidates are its sockets (ICE-lite requires exactly that).
            candidate_types: vec![::rtc::ice::candidate::CandidateType::Host],
            multicast_dns_mode: ::rtc::ice::mdns::MulticastDnsMode::Disabled,
            ..Default::default()
        };
        let mut ice =
            Agent::new(now, Arc::new(config), crypto.clone()).map_err(err("ICE agent"))?;
        for (addr, tcp) in setup.hosts {
            let c = super::host_ice_candidate(addr, tcp).map_err(|e| e.to_string())?;
            ice.add_local_candidate(c).map_err(err("local candidate"))?;
        }
        let handshake = Arc::new(super::secure::dtls_config(
            &crypto,
            certificate,
            agreed.fingerprints,
            agreed.dtls_client,
        )?);
        let (dtls, client_config) = if agreed.dtls_client {
            (
                Endpoint::new(DTLS_PEER, TransportProtocol::UDP, None),
                Some(handshake),
            )
        } else {
            (
                Endpoint::new(DTLS_PEER, TransportProtocol::UDP, Some(handshake)),
                None,
            )
        };
        let sender = Sender::new(&agreed.streams, feedback.reports, feedback.probes);
        let mut leg = OwnLeg {
            ice,
            dtls,
            client_config,
            srtp_in: None,
            sender,
            pacer: Pacer::default(),
            stamps: Vec::new(),
            crypto,
            wire: Wire::new(),
            ice_state: ConnectionState::New,
            rtcp: VecDeque::new(),
            states: VecDeque::new(),
            closed: false,
            remote_ufrag: agreed.remote_ufrag.clone(),
            transport_due: None,
        };
        leg.ice
            .start_connectivity_checks(now, false, agreed.remote_ufrag, agreed.remote_pwd)
            .map_err(err("ICE start"))?;
        for c in &agreed.remote_candidates {
            leg.add_remote_candidate(c);
        }
        leg.pump(now);
        Ok(leg)
    }

    /// Adds a client candidate (an `a=candidate:` value, with or without its prefix); one
    /// that does not parse is ignored.
    pub(crate) fn add_remote_candidate(&mut self, line: &str) {
        let raw = line
            .trim()
            .trim_start_matches("a=")
            .trim_start_matches("candidate:");
        match ::rtc::ice::candidate::unmarshal_candidate(raw) {
            Ok(c) if c.tcp_type() != ::rtc::ice::tcp_type::TcpType::Active => {
                let _ = self.ice.add_remote_candidate(c);
                self.transport_due = None;
            }
            // An active TCP candidate connects to us: nothing to check towards it.
            Ok(_) => {}
            Err(e) => tracing::debug!("remote candidate not added: {e}"),
        }
    }

    /// An ICE restart: new credentials on both sides; DTLS and SRTP go on over the new pair.
    pub(crate) fn restart(
        &mut self,
        now: Instant,
        local: (String, String),
        remote: (String, String),
    ) -> Result<(), String> {
        self.ice
            .restart(now, local.0, local.1, true)
            .map_err(err("ICE restart"))?;
        self.remote_ufrag = remote.0.clone();
        self.ice
            .start_connectivity_checks(now, false, remote.0, remote.1)
            .map_err(err("ICE restart"))?;
        self.pump(now);
        Ok(())
    }

    /// The client's current ICE username fragment.
    pub(crate) fn remote_ufrag(&self) -> &str {
        &self.remote_ufrag
    }

    /// One datagram from the client; false when it was refused.
    pub(crate) fn handle_read(&mut self, msg: TaggedBytesMut) -> bool {
        let now = msg.now;
        let ok = match msg.message.first() {
            Some(0..=3) => self.ice.handle_read(msg).is_ok(),
            Some(20..=63) if self.valid(now, msg.transport) => self.read_dtls(now, msg.message),
            Some(128..=191) if self.valid(now, msg.transport) => self.read_srtcp(now, msg),
            _ => false,
        };
        self.pump(now);
        ok
    }

    fn valid(&mut self, now: Instant, t: TransportContext) -> bool {
        self.ice.get_selected_candidate_pair().is_some()
            && self.ice.is_valid_non_stun_traffic(now, t)
    }

    fn read_dtls(&mut self, now: Instant, data: BytesMut) -> bool {
        if self.closed {
            return true;
        }
        let events = match self.dtls.read(now, DTLS_PEER, None, data) {
            Ok(e) => e,
            Err(_) => return false,
        };
        for e in events {
            match e {
                EndpointEvent::HandshakeComplete => match self.srtp_contexts() {
                    Ok((local, remote)) => {
                        tracing::debug!("own leg: DTLS done, SRTP keyed");
                        self.wire.srtp = Some(local);
                        self.srtp_in = Some(remote);
                        self.update_state();
                    }
                    Err(e) => {
                        tracing::debug!("SRTP keys: {e}");
                        self.states.push_back(PeerState::Failed);
                    }
                },
                EndpointEvent::PeerClosed => {
                    self.closed = true;
                    self.states.push_back(PeerState::Closed);
                }
                _ => {}
            }
        }
        true
    }

    /// The SRTP contexts of the finished handshake.
    fn srtp_contexts(&self) -> Result<(Context, Context), String> {
        let state = self
            .dtls
            .get_connection_state(DTLS_PEER)
            .ok_or("no DTLS association")?;
        super::secure::srtp_contexts(state, &self.crypto)
    }

    fn read_srtcp(&mut self, now: Instant, msg: TaggedBytesMut) -> bool {
        if !::rtc::shared::util::is_rtcp(&msg.message) {
            return true; // a viewer's media: not taken
        }
        let Some(ctx) = self.srtp_in.as_mut() else {
            return false;
        };
        let Ok(mut plain) = ctx.decrypt_rtcp(&msg.message) else {
            return false;
        };
        let Ok(packets) = ::rtc::rtcp::packet::unmarshal(&mut plain) else {
            return false;
        };
        let Self {
            sender, wire, rtcp, ..
        } = self;
        if let Some(delivered) = sender.read_rtcp(now, packets, &mut |p| wire.rtp(now, p)) {
            rtcp.push_back(delivered);
        }
        true
    }

    /// Hands one packet from a slot to the sender and on to the client.
    /// A burst's packets, and a stream's packets while its burst is queued, go through the
    /// pacer (see `pacer`).
    pub(crate) fn write_rtp(&mut self, now: Instant, out: Outgoing) {
        if self.wire.srtp.is_none() {
            return; // not connected yet: as a full link would, drop
        }
        if out.is_burst() || self.pacer.holds(out.ssrc()) {
            self.pacer.push(now, out);
            self.release(now);
        } else {
            self.send(now, out);
        }
    }

    fn send(&mut self, now: Instant, out: Outgoing) {
        if out.stamp() != 0 {
            self.stamps.push(out.stamp());
        }
        let (pkt, kept) = out.into_packet();
        let wire = &mut self.wire;
        self.sender.send(now, pkt, kept, &mut |p| wire.rtp(now, p));
    }

    /// What the pacer lets go now.
    fn release(&mut self, now: Instant) {
        while let Some(out) = self.pacer.pop(now) {
            self.send(now, out);
        }
    }

    /// Moves what the agent and the endpoint produced into the outgoing queue and reacts to
    /// the agent's events.
    fn pump(&mut self, now: Instant) {
        self.transport_due = None;
        while let Some(e) = self.ice.poll_event() {
            match e.event {
                IceEvent::ConnectionStateChange(s) => {
                    tracing::debug!("own leg: ICE {s}");
                    self.ice_state = s;
                    self.update_state();
                }
                IceEvent::SelectedCandidatePairChange(local, remote) => {
                    self.wire.path = Some(TransportContext {
                        local_addr: local.base_addr(),
                        peer_addr: remote.addr(),
                        transport_protocol: local.network_type().to_protocol(),
                        ecn: None,
                    });
                    if let Some(config) = self.client_config.take()
                        && let Err(e) = self.dtls.connect(now, DTLS_PEER, config, None)
                    {
                        tracing::debug!("DTLS connect: {e}");
                    }
                }
                _ => {}
            }
        }
        while let Some(t) = self.ice.poll_write() {
            self.wire.queue(t);
        }
        while let Some(mut t) = self.dtls.poll_transmit() {
            if let Some(path) = self.wire.path {
                t.transport = path;
                self.wire.queue(t);
            }
        }
    }

    /// The leg's state: connected once ICE is and SRTP has its keys.
    fn update_state(&mut self) {
        let s = match self.ice_state {
            ConnectionState::Connected if self.wire.srtp.is_some() => PeerState::Connected,
            ConnectionState::Connected | ConnectionState::Checking | ConnectionState::New => return,
            ConnectionState::Disconnected => PeerState::Disconnected,
            ConnectionState::Failed => PeerState::Failed,
            ConnectionState::Closed => PeerState::Closed,
            _ => return,
        };
        self.states.push_back(s);
    }

    pub(crate) fn poll_write(&mut self) -> Option<TaggedBytesMut> {
        self.wire.pop()
    }

    /// Counts the forwarding delay of the timed packets the last flush sent.
    pub(crate) fn forwarded(&mut self) {
        if !self.stamps.is_empty() {
            let now = Instant::now();
            for s in self.stamps.drain(..) {
                crate::media::counters::forwarded(s, now);
            }
        }
    }

    pub(crate) fn poll_state(&mut self) -> Option<PeerState> {
        self.states.pop_front()
    }

    pub(crate) fn poll_rtcp(&mut self) -> Option<Vec<Box<dyn ::rtc::rtcp::Packet>>> {
        self.rtcp.pop_front()
    }

    /// The leg's next deadlines: `(urgent, lazy)`. Urgent is the pacer's (a paced burst or
    /// probe leaves on time); lazy is the agent's, the endpoint's and the sender reports',
    /// which tolerate being late by a few tens of milliseconds (keepalives every second,
    /// consent over seconds, reports at a randomised interval anyway, RFC 3550 §6.2).
    pub(crate) fn poll_timeouts(&mut self) -> (Option<Instant>, Option<Instant>) {
        let transport = match self.transport_due {
            Some(due) => due,
            None => {
                let due = [self.ice.poll_timeout(), self.dtls.poll_timeout(&DTLS_PEER)]
                    .into_iter()
                    .flatten()
                    .min();
                self.transport_due = Some(due);
                due
            }
        };
        let lazy = [transport, self.sender.poll_timeout()]
            .into_iter()
            .flatten()
            .min();
        (self.pacer.poll_timeout(), lazy)
    }

    pub(crate) fn handle_timeout(&mut self, now: Instant) {
        let _ = self.ice.handle_timeout(now);
        if self.dtls.get_connections_keys().next().is_some() {
            let _ = self.dtls.handle_timeout(DTLS_PEER, now);
        }
        self.release(now);
        for reports in self.sender.handle_timeout(now) {
            self.wire.rtcp(now, &reports);
        }
        self.pump(now);
    }

    /// Sends DTLS close_notify and stops the agent.
    pub(crate) fn close(&mut self, now: Instant) {
        if !self.closed {
            self.closed = true;
            let _ = self.dtls.close(now);
        }
        self.pump(now);
        let _ = self.ice.close();
        self.transport_due = None;
    }

    /// The leg as an operator reads it: the pair in use and what each stream sent (the
    /// viewer's reports are added from the tap's book, as for every leg).
    pub(crate) fn stats(&self) -> crate::rtc::stats::LegStats {
        let pair: Option<(&Candidate, &Candidate)> = self.ice.get_selected_candidate_pair();
        // The latest STUN round trip on that pair (consent checks renew it every second).
        let ice_rtt_ms = pair.and_then(|(l, r)| {
            self.ice
                .get_candidate_pairs_stats(Instant::now())
                .into_iter()
                .find(|s| s.local_candidate_id == l.id() && s.remote_candidate_id == r.id())
                .map(|s| s.current_round_trip_time)
                .filter(|rtt| *rtt > 0.0)
                .map(|rtt| rtt * 1e3)
        });
        crate::rtc::stats::LegStats {
            local_candidate: pair.map(|p| p.0.candidate_type().to_string()),
            remote_candidate: pair.map(|p| p.1.candidate_type().to_string()),
            protocol: pair.map(|p| p.0.network_type().network_short()),
            ice_rtt_ms,
            streams: self.sender.stats(),
        }
    }
}
