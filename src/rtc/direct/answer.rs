//! The signalling half of a direct connection: its sockets, the offer/answer on the core
//! before the driver starts, and ICE restarts on the running driver.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use ::rtc::peer_connection::RTCPeerConnectionBuilder;
use ::rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use tokio::net::UdpSocket;
use tokio::sync::watch;
use webrtc::peer_connection::{RTCIceCandidateInit, RTCSessionDescription};

use super::{DirectConn, Sock, Wiring, host_candidate};
use crate::error::{Error, Result};
use crate::rtc::ice::IceRestart;
use crate::rtc::mux::MuxConn;
use crate::rtc::peer::{BIND_ATTEMPTS, Binding, Conn, random_token, send_slots};
use crate::rtc::setup::{default_codec, leg_parts};
use crate::rtc::track::OutPath;
use crate::rtc::{OutTrack, PeerObserver, PeerState, RtcPeer};
use crate::signal::{CodecSpec, OfferSummary};

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
        let parts = leg_parts(s, self.certificate(), true, ufrag)?;
        let now = Instant::now();
        let mut pc = RTCPeerConnectionBuilder::new()
            .with_configuration(parts.config)
            .with_media_engine(parts.media)
            .with_interceptor_registry(parts.registry)
            .with_setting_engine(parts.settings)
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
