//! Publisher legs on the library's async layer: building the connection with the server's
//! settings and port(s), its event handler, and answering an ICE restart by renegotiation.
//! (Viewer legs are wisp's own, in `direct`.)

use std::net::SocketAddr;
use std::sync::Arc;

use ::rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use tokio::sync::watch;
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::{
    PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler, RTCIceGatheringState,
    RTCPeerConnectionState, RTCSessionDescription,
};
use webrtc::runtime::Runtime;

use crate::error::{Error, Result};
use crate::rtc::lib_tcp::TcpRuntime;
use crate::rtc::mux::{MuxConn, MuxRuntime};
use crate::rtc::peer::{Binding, Conn, PeerObserver, RtcPeer};
use crate::rtc::setup::{LegRole, kind_of, leg_parts, random_token};
use crate::rtc::tcp::TcpConn;
use crate::rtc::track;
use crate::rtc::{PeerState, PortLease, RtcEngine};
use crate::signal::{MediaKind, OfferSummary};

struct Handler {
    observer: Arc<dyn PeerObserver>,
    gathered: watch::Sender<bool>,
    state: watch::Sender<PeerState>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        self.gathered
            .send_replace(state == RTCIceGatheringState::Complete);
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        let mapped = match state {
            RTCPeerConnectionState::Connected => PeerState::Connected,
            RTCPeerConnectionState::Disconnected => PeerState::Disconnected,
            RTCPeerConnectionState::Failed => PeerState::Failed,
            RTCPeerConnectionState::Closed => PeerState::Closed,
            _ => return,
        };
        self.state.send_replace(mapped);
        self.observer.on_state(mapped);
    }

    async fn on_track(&self, remote: Arc<dyn TrackRemote>) {
        tokio::spawn(track::demux(remote, self.observer.clone()));
    }
}

pub(crate) fn lib_error(context: &str) -> impl Fn(webrtc::error::Error) -> Error + '_ {
    move |e| Error::Unprocessable(format!("{context}: {e}"))
}

/// A library-driven connection with the server's settings, bound to its port(s).
async fn lib_peer(
    engine: &RtcEngine,
    room: &str,
    observer: Arc<dyn PeerObserver>,
    summary: &OfferSummary,
) -> Result<RtcPeer> {
    if engine.muxes.is_empty() {
        engine
            .bind_with_port(room, |lease| {
                lib_connection(engine, &observer, summary, Some(lease), None)
            })
            .await
    } else {
        // Single-port mode: an ephemeral bind the mux replaces, credentials chosen up front
        // so the mux can route the first check.
        let mux = MuxConn::new(&engine.muxes, &random_token(16));
        lib_connection(engine, &observer, summary, None, Some(mux))
            .await
            .map_err(Error::Internal)
    }
}

/// One attempt at a library-driven connection on `lease`'s port (or the shared socket).
async fn lib_connection(
    engine: &RtcEngine,
    observer: &Arc<dyn PeerObserver>,
    summary: &OfferSummary,
    lease: Option<PortLease>,
    mux: Option<Arc<MuxConn>>,
) -> std::result::Result<RtcPeer, String> {
    let s = &engine.settings;
    let port = lease.as_ref().map_or(0, |l| l.port);
    // Both shared ports route by our ufrag: fix it up front when there is one.
    let ufrag = match &mux {
        Some(m) => Some(m.ufrag().to_owned()),
        None if !engine.tcp_muxes.is_empty() => Some(random_token(16)),
        None => None,
    };
    let tcp = ufrag
        .as_deref()
        .filter(|_| !engine.tcp_muxes.is_empty())
        .map(|u| TcpConn::new(&engine.tcp_muxes, u));
    let parts =
        leg_parts(s, engine.certificate(), LegRole::Publish, ufrag).map_err(|e| e.to_string())?;
    // Host candidates are exactly the bound sockets. With --ice-bind, the answer's
    // candidates are rewritten to --public-ip (webrtc-rs 0.21 stores but never applies
    // its NAT 1:1 setting).
    let binds: Vec<SocketAddr> = match s.bind_ip {
        Some(ip) => vec![SocketAddr::new(ip, port)],
        None => s
            .public_ips
            .iter()
            .map(|ip| SocketAddr::new(*ip, port))
            .collect(),
    };
    let (gathered_tx, gathered_rx) = watch::channel(false);
    let (state_tx, state_rx) = watch::channel(PeerState::New);
    let handler = Arc::new(Handler {
        observer: observer.clone(),
        gathered: gathered_tx,
        state: state_tx,
    });
    // Malformed datagrams stop at the gate (the single-port mux gates its own reads).
    let mut runtime: Arc<dyn Runtime> = match &mux {
        Some(m) => MuxRuntime::new(m.clone()),
        None => crate::rtc::gate::GateRuntime::new(),
    };
    // ICE-TCP: the driver's listeners are views of the shared TCP port(s); it binds an
    // ephemeral one per host address first, which is what its passive candidates name.
    let (tcp, tcp_binds) = match tcp {
        Some((conn, incoming)) => {
            runtime = TcpRuntime::new(runtime, incoming);
            let binds = binds.iter().map(|b| SocketAddr::new(b.ip(), 0)).collect();
            (Some(conn), binds)
        }
        None => (None, vec![]),
    };
    let pc = PeerConnectionBuilder::new()
        .with_runtime(runtime)
        .with_configuration(parts.config)
        .with_media_engine(parts.media)
        .with_interceptor_registry(parts.registry)
        .with_setting_engine(parts.settings)
        .with_handler(handler)
        .with_udp_addrs(binds)
        .with_tcp_addrs(tcp_binds)
        .build()
        .await
        .map_err(|e| e.to_string())?;
    Ok(RtcPeer::new(
        Conn::Lib(Arc::new(pc)),
        Binding {
            _lease: lease,
            mux,
            tcp,
        },
        state_rx,
        gathered_rx,
        summary,
        s,
    ))
}

/// The publisher's leg: a receive-only connection on the library's async layer, answering
/// the WHIP offer (H.264 reordered to the variant most players decode, RED first).
pub(crate) async fn publisher_leg(
    engine: &RtcEngine,
    room: &str,
    offer: &str,
    summary: &OfferSummary,
    observer: Arc<dyn PeerObserver>,
) -> Result<(RtcPeer, String)> {
    let peer = lib_peer(engine, room, observer, summary).await?;
    let result = async {
        receive_only(&peer, summary.media.iter().map(|m| m.kind)).await?;
        // Of several H.264 variants, take the one most players decode.
        let offer = crate::signal::codec::prefer_decodable_h264(offer);
        // RED over Opus first, so the publisher sends redundant audio (signal::red).
        let offer = crate::signal::red::prefer_red(&offer);
        peer.negotiate(&offer).await
    }
    .await;
    closed_on_error(peer, result).await
}

/// A cascade's upstream leg (cluster mode): wisp as a WHEP player of another node, one
/// receive-only m-line per kind of `kinds` (mids 0, 1, … in that order), offered with every
/// codec wisp forwards. Returns the connection and its offer (gathered: it carries every
/// candidate); the other node's answer goes to [`RtcPeer::accept_answer`]. Its tracks reach `observer` as a publisher's do.
pub(crate) async fn upstream_leg(
    engine: &RtcEngine,
    room: &str,
    kinds: &[MediaKind],
    observer: Arc<dyn PeerObserver>,
) -> Result<(RtcPeer, String)> {
    let summary = OfferSummary {
        media: vec![],
        mids: (0..kinds.len()).map(|i| i.to_string()).collect(),
    };
    let peer = lib_peer(engine, room, observer, &summary).await?;
    let result = async {
        receive_only(&peer, kinds.iter().copied()).await?;
        peer.make_offer().await
    }
    .await;
    closed_on_error(peer, result).await
}

/// One receive-only transceiver per kind, in order.
async fn receive_only(peer: &RtcPeer, kinds: impl Iterator<Item = MediaKind>) -> Result<()> {
    for kind in kinds {
        peer.lib()?
            .add_transceiver_from_kind(
                kind_of(kind),
                Some(RTCRtpTransceiverInit {
                    direction: RTCRtpTransceiverDirection::Recvonly,
                    ..Default::default()
                }),
            )
            .await
            .map_err(lib_error("transceiver"))?;
    }
    Ok(())
}

/// The leg with its SDP, or the leg closed and the error.
async fn closed_on_error(peer: RtcPeer, sdp: Result<String>) -> Result<(RtcPeer, String)> {
    match sdp {
        Ok(sdp) => Ok((peer, sdp)),
        Err(e) => {
            peer.close().await;
            Err(e)
        }
    }
}

/// One send track per live m-line of the client's offer: its kind and mid.
pub(crate) fn send_slots(summary: &OfferSummary) -> Vec<(MediaKind, String)> {
    summary
        .media
        .iter()
        .map(|m| (m.kind, m.mid.clone()))
        .collect()
}

/// Answers an ICE-restart offer on a library connection; returns the local description.
pub(crate) async fn lib_restart(
    pc: &Arc<dyn PeerConnection>,
    desc: RTCSessionDescription,
) -> Result<String> {
    let failed = |e: webrtc::error::Error| Error::RestartFailed(e.to_string());
    pc.set_remote_description(desc).await.map_err(failed)?;
    let answer = pc.create_answer(None).await.map_err(failed)?;
    pc.set_local_description(answer).await.map_err(failed)?;
    pc.local_description()
        .await
        .map(|d| d.sdp)
        .ok_or_else(|| Error::RestartFailed("no local description".into()))
}
