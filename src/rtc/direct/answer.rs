//! The signalling half of a direct connection: its sockets, the offer/answer on the core
//! before the driver starts, and ICE restarts on the running driver.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use ::rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use ::rtc::rtp_transceiver::RTCRtpSenderId;
use ::rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use tokio::sync::watch;
use webrtc::peer_connection::{RTCIceCandidateInit, RTCSessionDescription};

use super::core::PendingOwn;
use super::own::IceSetup;
use super::{DirectConn, LegCore, Sock, TcpSide, Wiring, host_candidate};
use crate::error::{Error, Result};
use crate::lock::Locked;
use crate::rtc::ice::IceRestart;
use crate::rtc::lib_leg::send_slots;
use crate::rtc::mux::MuxConn;
use crate::rtc::peer::{Binding, Conn};
use crate::rtc::setup::{LegRole, default_codec, leg_parts, random_token};
use crate::rtc::tcp::{TcpConn, TcpPeer};
use crate::rtc::udp;
use crate::rtc::{OutTrack, PeerObserver, PeerState, PortLease, RtcEngine, RtcPeer};
use crate::signal::candidate::LocalTransport::{TcpPassive, Udp};
use crate::signal::{CodecSpec, MediaKind, OfferSummary};

/// Restarts ICE on a direct connection with the client's new credentials (`remote`, from
/// the PATCH); returns wisp's new ufrag and password. Nothing else of the session changes in
/// a restart, so no description is written: the host candidates survive it (the sockets do).
pub(crate) async fn restart(d: &DirectConn, remote: (String, String)) -> Result<(String, String)> {
    d.call(move |core, now| {
        let own = core
            .own
            .as_mut()
            .ok_or("the session is still waiting for its SDP answer")?;
        let local = (random_token(16), random_token(32));
        own.restart(now, local.clone(), remote)?;
        Ok(local)
    })
    .await?
    .map_err(Error::RestartFailed)
}

/// This connection's side of each ICE-TCP listener: the streams routed to it, and the address
/// its passive candidate announces (`--public-ip` when bound to `--ice-bind`).
fn tcp_sides(
    engine: &RtcEngine,
    incoming: Vec<(SocketAddr, tokio::sync::mpsc::Receiver<TcpPeer>)>,
) -> Vec<TcpSide> {
    let announce = engine.settings.announcer();
    incoming
        .into_iter()
        .map(|(local, incoming)| TcpSide {
            announced: announce.announced(local.ip(), local.port(), TcpPassive),
            incoming,
        })
        .collect()
}

/// The sockets of a new direct connection: its own port from the pool on each bound
/// address, or its place on the shared sockets (single-port mode).
async fn direct_sockets(
    engine: &RtcEngine,
    room: &str,
) -> Result<(Vec<Sock>, Binding, Option<String>)> {
    let s = &engine.settings;
    let announce = s.announcer();
    let announced = |ip: std::net::IpAddr, port: u16| announce.announced(ip, port, Udp);
    if !engine.muxes.is_empty() {
        let ufrag = random_token(16);
        let conn = MuxConn::new(&engine.muxes, &ufrag);
        let mut socks = Vec::new();
        for m in &engine.muxes {
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
            tcp: None,
        };
        return Ok((socks, binding, Some(ufrag)));
    }
    let ips: Vec<std::net::IpAddr> = match s.bind_ip {
        Some(ip) => vec![ip],
        None => s.public_ips.clone(),
    };
    engine
        .bind_with_port(room, |lease: PortLease| {
            let socks = match ips
                .iter()
                .map(|ip| {
                    Ok(Sock {
                        announced: announced(*ip, lease.port),
                        socket: Arc::new(udp::Udp::bind(SocketAddr::new(*ip, lease.port))?),
                        queue: None,
                    })
                })
                .collect::<std::io::Result<Vec<Sock>>>()
            {
                Ok(socks) => socks,
                Err(e) => return std::future::ready(Err(e)),
            };
            let binding = Binding {
                _lease: Some(lease),
                mux: None,
                tcp: None,
            };
            std::future::ready(Ok((socks, binding, None)))
        })
        .await
}

/// The one builder of viewer legs: a connection wisp drives itself with one send-only
/// track per m-line of the client's offer, bound to codec `prefs[i]` (the publisher's, when
/// known) or a default. With `answer_to`, the client's offer is answered at once; without,
/// wisp makes its own offer (a WHEP counter-offer, draft-03 §4.2) and the tracks learn
/// their codecs when [`RtcPeer::apply_answer`] applies the client's answer. Either way the
/// signalling runs on the core before its driver starts, with the bound sockets as host
/// candidates.
pub(crate) async fn viewer_leg(
    engine: &RtcEngine,
    room: &str,
    answer_to: Option<&str>,
    summary: &OfferSummary,
    prefs: &[Option<CodecSpec>],
    observer: Arc<dyn PeerObserver>,
) -> Result<(RtcPeer, Vec<Arc<OutTrack>>, String)> {
    let s = &engine.settings;
    let (socks, mut binding, ufrag) = direct_sockets(engine, room).await?;
    // ICE-TCP routes by our ufrag too: fix it up front when there is a TCP port.
    let ufrag = match ufrag {
        None if !engine.tcp_muxes.is_empty() => Some(random_token(16)),
        u => u,
    };
    let tcp = match (&ufrag, engine.tcp_muxes.is_empty()) {
        (Some(u), false) => {
            let (conn, incoming) = TcpConn::new(&engine.tcp_muxes, u);
            binding.tcp = Some(conn);
            tcp_sides(engine, incoming)
        }
        _ => vec![],
    };
    let lib = |what: &'static str| {
        move |e: ::rtc::shared::error::Error| Error::Unprocessable(format!("{what}: {e}"))
    };
    // Send-side estimation needs RTX to probe with; a counter-offer offers both.
    let rtx = summary.media.iter().any(|m| {
        m.kind == MediaKind::Video
            && m.codecs
                .iter()
                .any(|c| c.mime_type.to_ascii_lowercase().ends_with("/rtx"))
    });
    let send_side = answer_to.is_none() || rtx;
    let role = LegRole::View { send_side };
    let parts = leg_parts(s, engine.certificate(), role, ufrag)?;
    let parts_probes = parts.probes.clone();
    let now = Instant::now();
    // The connection only models the signalling: wisp's transport does the sending side,
    // estimating and probing where the viewer can take probes.
    let reports = parts.reports.clone().unwrap_or_default();
    let feedback = super::core::Feedback {
        reports: reports.clone(),
        probes: parts_probes.clone().filter(|_| send_side),
    };
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
        let out = Arc::new(OutTrack {
            kind,
            mid,
            ssrc,
            port: wiring.track(ssrc, kind),
            negotiated: Default::default(),
            state: state_rx.clone(),
            probe: parts_probes.as_ref().map(|b| b.rate(ssrc)),
        });
        senders.push(PendingTrack { out, sender });
    }
    if let Some(offer) = answer_to {
        let desc = RTCSessionDescription::offer(s.filter.filter_sdp(offer))
            .map_err(|e| Error::BadSdp(e.to_string().trim_end_matches('.').to_string()))?;
        pc.set_remote_description(now, desc)
            .map_err(lib("remote description"))?;
    }
    for sock in &socks {
        pc.add_local_candidate(host_candidate(sock.announced, false)?)
            .map_err(lib("local candidate"))?;
    }
    for side in &tcp {
        pc.add_local_candidate(host_candidate(side.announced, true)?)
            .map_err(lib("local candidate"))?;
    }
    pc.add_local_candidate(RTCIceCandidateInit::default())
        .map_err(lib("end of candidates"))?;
    let local = match answer_to {
        Some(_) => pc.create_answer(None).map_err(lib("answer"))?,
        None => pc.create_offer(None).map_err(lib("offer"))?,
    };
    pc.set_local_description(now, local)
        .map_err(lib("local description"))?;
    let sdp = pc
        .local_description()
        .map(|d| d.sdp.clone())
        .ok_or_else(|| Error::Internal("no local description".into()))?;
    let tracks: Vec<Arc<OutTrack>> = senders.iter().map(|p| p.out.clone()).collect();
    let sender_ids: Vec<_> = senders
        .iter()
        .map(|p| (p.sender, p.out.mid.clone()))
        .collect();
    let pending = match answer_to {
        Some(_) => {
            for p in &senders {
                let _ = p.out.negotiated.set(negotiated(&mut pc, p.sender));
            }
            None
        }
        None => Some(senders),
    };
    let mut hosts: Vec<(SocketAddr, bool)> = socks.iter().map(|k| (k.announced, false)).collect();
    hosts.extend(tcp.iter().map(|t| (t.announced, true)));
    let mut core = LegCore {
        model: Some(Box::new(pc)),
        own: None,
        pending: Some(PendingOwn {
            setup: IceSetup {
                lite: s.ice_lite,
                disconnected: s.ice_disconnected_timeout,
                failed: s.ice_failed_timeout,
                hosts,
            },
            certificate: engine.certificate().dtls_certificate,
            feedback,
        }),
    };
    // An answer starts at once; a counter-offer when the client's answer is applied.
    if answer_to.is_some() {
        core.start_own(now, &sender_ids).map_err(Error::BadSdp)?;
    }
    let conn = wiring.spawn(core, socks, tcp, state_tx, observer);
    let (_, gathered) = watch::channel(true);
    let mut peer = RtcPeer::new(
        Conn::Direct(conn),
        binding,
        state_rx,
        gathered,
        summary,
        &engine.settings,
    );
    peer.reports = Some(reports);
    *peer.pending.lock().await = pending;
    if let Ok(r) = IceRestart::from_sdp(&sdp) {
        *peer.answer_candidates.locked() = r.candidates;
    }
    Ok((peer, tracks, sdp))
}

/// A send track whose codecs are known once the client's answer is applied.
pub(crate) struct PendingTrack {
    pub(crate) out: Arc<OutTrack>,
    pub(crate) sender: Option<RTCRtpSenderId>,
}

/// The payload types and codecs a sender negotiated.
pub(crate) fn negotiated(
    pc: &mut RTCPeerConnection,
    sender: Option<RTCRtpSenderId>,
) -> Vec<(u8, CodecSpec)> {
    sender
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
        .unwrap_or_default()
}
