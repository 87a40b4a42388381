//! A minimal WebRTC client peer on loopback, for wisp's own tests and load generator: it
//! publishes or plays through a wisp server the way a real WHIP/WHEP client does. Lives here
//! because `rtc/` is the only module that touches webrtc-rs.

use std::sync::Arc;
use std::time::Duration;

use ::rtc::media_stream::MediaStreamTrack;
use ::rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use tokio::sync::{mpsc, watch};
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCConfigurationBuilder, RTCIceCandidateType, RTCIceGatheringState, RTCIceServer,
    RTCIceTransportPolicy, RTCPeerConnectionState, RTCSessionDescription, RTCStatsReportEntry,
    Registry, SettingEngineBuilder, StatsSelector, register_default_interceptors,
};

use crate::rtc::feedback::KeyframeRequestTap;
use crate::rtc::scatter::{ScatterKnob, SsrcScatter};

struct Handler {
    gathered: watch::Sender<bool>,
    state: watch::Sender<RTCPeerConnectionState>,
    tracks: mpsc::UnboundedSender<Arc<dyn TrackRemote>>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_gathering_state_change(&self, s: RTCIceGatheringState) {
        self.gathered
            .send_replace(s == RTCIceGatheringState::Complete);
    }
    async fn on_connection_state_change(&self, s: RTCPeerConnectionState) {
        self.state.send_replace(s);
    }
    async fn on_track(&self, t: Arc<dyn TrackRemote>) {
        let _ = self.tracks.send(t);
    }
}

/// A client peer connection bound to 127.0.0.1, with loopback candidates and keyframe
/// requests delivered to its local tracks.
pub struct ClientPeer {
    pub pc: Arc<dyn PeerConnection>,
    pub state: watch::Receiver<RTCPeerConnectionState>,
    gathered: watch::Receiver<bool>,
    /// Remote tracks as they arrive (a viewer's media).
    pub tracks: mpsc::UnboundedReceiver<Arc<dyn TrackRemote>>,
    /// Set to n > 0, the client sends its RTP under n made-up SSRCs ([`SsrcScatter`]).
    pub scatter: ScatterKnob,
    /// ICE over TCP only ([`ClientIce::tcp_only`]).
    tcp_only: bool,
}

/// Why a client step failed.
pub type ClientError = Box<dyn std::error::Error + Send + Sync>;

/// ICE servers a client uses, e.g. from wisp's `Link: rel="ice-server"` headers.
#[derive(Clone, Debug, Default)]
pub struct ClientIce {
    pub servers: Vec<RTCIceServer>,
    /// Gather relay candidates only (`iceTransportPolicy: "relay"`).
    pub relay_only: bool,
    /// Local address to bind [default: 127.0.0.1:0].
    pub bind: Option<String>,
    /// ICE over TCP only (an active candidate, RFC 6544), like a client whose network
    /// blocks UDP.
    pub tcp_only: bool,
}

impl ClientIce {
    /// Parses `Link` header values (RFC 9725 §4.6) into ICE servers.
    pub fn from_links<'a>(links: impl IntoIterator<Item = &'a str>, relay_only: bool) -> ClientIce {
        let param = |part: &str, name: &str| {
            part.split(';')
                .map(str::trim)
                .find_map(|p| p.strip_prefix(name)?.strip_prefix('='))
                .map(|v| v.trim_matches('"').to_owned())
        };
        let servers = links
            .into_iter()
            .flat_map(|h| {
                h.split(", <")
                    .map(|p| p.trim_start_matches('<').to_owned())
                    .collect::<Vec<_>>()
            })
            .filter(|p| p.contains("rel=\"ice-server\""))
            .filter_map(|p| {
                let url = p.split('>').next()?.to_owned();
                Some(RTCIceServer {
                    urls: vec![url],
                    username: param(&p, "username").unwrap_or_default(),
                    credential: param(&p, "credential").unwrap_or_default(),
                })
            })
            .collect();
        ClientIce {
            servers,
            relay_only,
            bind: None,
            tcp_only: false,
        }
    }
}

impl ClientPeer {
    pub async fn new() -> Result<ClientPeer, ClientError> {
        ClientPeer::with_ice(ClientIce::default()).await
    }

    pub async fn with_ice(ice: ClientIce) -> Result<ClientPeer, ClientError> {
        let mut media = MediaEngine::default();
        media.register_default_codecs()?;
        // Like browsers, offer RFC 6464 audio levels (wisp's VAD reads them).
        media.register_header_extension(
            ::rtc::rtp_transceiver::rtp_sender::RTCRtpHeaderExtensionCapability {
                uri: crate::rtc::AUDIO_LEVEL_URI.to_owned(),
            },
            RtpCodecKind::Audio,
            None,
        )?;
        let scatter = ScatterKnob::default();
        let registry = register_default_interceptors(Registry::new(), &mut media)?
            .with(
                ::rtc::interceptor::Slot::from(14_000),
                KeyframeRequestTap::default(),
            )
            .with(
                ::rtc::interceptor::Slot::from(500),
                SsrcScatter::new(scatter.clone()),
            );
        let (g_tx, g_rx) = watch::channel(false);
        let (s_tx, s_rx) = watch::channel(RTCPeerConnectionState::New);
        let (t_tx, t_rx) = mpsc::unbounded_channel();
        let mut config = RTCConfigurationBuilder::new().with_ice_servers(ice.servers);
        if ice.relay_only {
            config = config.with_ice_transport_policy(RTCIceTransportPolicy::Relay);
        }
        let mut settings = SettingEngineBuilder::new()
            .with_include_loopback_candidate(true)
            .with_multicast_dns_mode(::rtc::ice::mdns::MulticastDnsMode::Disabled);
        let bind = ice.bind.unwrap_or_else(|| "127.0.0.1:0".to_string());
        let tcp_only = ice.tcp_only;
        let (udp, tcp) = if ice.tcp_only {
            use ::rtc::ice::network_type::NetworkType;
            settings = settings.with_network_types(vec![NetworkType::Tcp4, NetworkType::Tcp6]);
            (vec![], vec![bind])
        } else {
            (vec![bind], vec![])
        };
        let pc = PeerConnectionBuilder::new()
            .with_configuration(config.build())
            .with_media_engine(media)
            .with_interceptor_registry(registry)
            .with_setting_engine(settings.build())
            .with_handler(Arc::new(Handler {
                gathered: g_tx,
                state: s_tx,
                tracks: t_tx,
            }))
            .with_udp_addrs(udp)
            .with_tcp_addrs(tcp)
            .build()
            .await?;
        Ok(ClientPeer {
            pc: Arc::new(pc),
            state: s_rx,
            gathered: g_rx,
            tracks: t_rx,
            scatter,
            tcp_only,
        })
    }

    /// Creates the offer and waits (up to `limit`) for gathering, so it carries candidates.
    pub async fn offer(&self, limit: Duration) -> Result<String, ClientError> {
        let offer = self.pc.create_offer(None).await?;
        self.pc.set_local_description(offer).await?;
        let mut g = self.gathered.clone();
        tokio::time::timeout(limit, g.wait_for(|g| *g)).await??;
        Ok(self
            .pc
            .local_description()
            .await
            .ok_or("no local description")?
            .sdp)
    }

    pub async fn accept(&self, answer: String) -> Result<(), ClientError> {
        self.pc
            .set_remote_description(RTCSessionDescription::answer(answer.clone())?)
            .await?;
        if self.tcp_only {
            // webrtc-rs 0.21 opens its active TCP connections only for passive candidates
            // added one by one, not for those in a description.
            for line in answer.lines() {
                let line = line.trim_end();
                if let Some(c) = line.strip_prefix("a=")
                    && c.starts_with("candidate:")
                    && c.contains("tcptype passive")
                {
                    self.pc
                        .add_ice_candidate(webrtc::peer_connection::RTCIceCandidateInit {
                            candidate: c.to_owned(),
                            sdp_mid: Some("0".to_owned()),
                            sdp_mline_index: Some(0),
                            ..Default::default()
                        })
                        .await?;
                }
            }
        }
        Ok(())
    }

    /// The type of the local candidate of the selected pair (e.g. `Relay`), once connected.
    pub async fn selected_local_type(&self) -> Option<RTCIceCandidateType> {
        let report = self
            .pc
            .get_stats(std::time::Instant::now(), StatsSelector::None)
            .await;
        let pair_id = &report.transport()?.selected_candidate_pair_id;
        let pair = report.candidate_pairs().find(|p| &p.stats.id == pair_id)?;
        let id = &pair.local_candidate_id;
        // The report files local candidates under a prefixed id.
        let entry = report
            .get(id)
            .or_else(|| report.get(&format!("RTCLocalIceCandidate_{id}")));
        match entry {
            Some(RTCStatsReportEntry::LocalCandidate(c)) => Some(c.candidate_type),
            _ => None,
        }
    }

    /// Waits (up to `limit`) for the connection to come up.
    pub async fn connected(&self, limit: Duration) -> Result<(), ClientError> {
        let mut s = self.state.clone();
        tokio::time::timeout(
            limit,
            s.wait_for(|s| *s == RTCPeerConnectionState::Connected),
        )
        .await??;
        Ok(())
    }
}

/// Opus and VP8 as the client sends them.
pub fn client_codec(kind: RtpCodecKind) -> RTCRtpCodec {
    match kind {
        RtpCodecKind::Audio => RTCRtpCodec {
            mime_type: "audio/opus".into(),
            clock_rate: 48000,
            channels: 2,
            sdp_fmtp_line: "minptime=10;useinbandfec=1".into(),
            rtcp_feedback: vec![],
        },
        _ => RTCRtpCodec {
            mime_type: "video/VP8".into(),
            clock_rate: 90000,
            channels: 0,
            sdp_fmtp_line: String::new(),
            rtcp_feedback: vec![],
        },
    }
}

/// A local track that sends pre-packetized RTP with `ssrc`.
pub fn local_track(kind: RtpCodecKind, ssrc: u32) -> Arc<TrackLocalStaticRTP> {
    local_track_with(kind, ssrc, client_codec(kind))
}

/// A local track that sends pre-packetized RTP of `codec` with `ssrc`.
pub fn local_track_with(
    kind: RtpCodecKind,
    ssrc: u32,
    codec: RTCRtpCodec,
) -> Arc<TrackLocalStaticRTP> {
    Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
        format!("stream-{ssrc}"),
        format!("track-{ssrc}"),
        format!("label-{ssrc}"),
        kind,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                ssrc: Some(ssrc),
                ..Default::default()
            },
            codec,
            ..Default::default()
        }],
    )))
}
