//! Per-leg media engine and interceptor setup, and the codec defaults.

use std::time::Duration;

use ::rtc::interceptor::Slot;
use ::rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use webrtc::peer_connection::{
    MediaEngine, RTCConfiguration, RTCConfigurationBuilder, Registry, SettingEngine,
    SettingEngineBuilder,
};

use crate::error::{Error, Result};

use crate::signal::{CodecSpec, MediaKind};

/// RFC 6464 client-to-mixer audio level.
pub const AUDIO_LEVEL_URI: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";

pub(crate) fn kind_of(kind: MediaKind) -> RtpCodecKind {
    match kind {
        MediaKind::Audio => RtpCodecKind::Audio,
        MediaKind::Video => RtpCodecKind::Video,
    }
}

pub(crate) fn default_codec(kind: MediaKind) -> CodecSpec {
    match kind {
        MediaKind::Audio => crate::signal::red::opus_codec(),
        MediaKind::Video => CodecSpec {
            mime_type: "video/VP8".into(),
            clock_rate: 90000,
            channels: 0,
            fmtp: String::new(),
        },
    }
}

/// What every connection of one kind is built from, with the server's settings: codecs and
/// interceptors of the leg (`for_play`: a viewer), ICE/mDNS settings, and the one DTLS
/// certificate. `ufrag` fixes our ICE credentials up front (single-port mode routes by it).
pub(crate) struct LegParts {
    pub media: MediaEngine,
    pub registry: Registry,
    pub settings: SettingEngine,
    pub config: RTCConfiguration,
    /// What a viewer reports about the leg's streams (viewer legs only).
    pub reports: Option<std::sync::Arc<crate::rtc::feedback::ReportBook>>,
    /// The leg's probe rates (viewer legs only).
    pub probes: Option<std::sync::Arc<crate::rtc::prober::ProbeBook>>,
}

/// Which leg [`leg_parts`] builds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum LegRole {
    /// A publisher's leg: wisp receives.
    Publish,
    /// A viewer's leg: wisp sends. `send_side`: wisp estimates the leg's bandwidth itself
    /// (transport-wide CC). Only a viewer that offered RTX gets it: the estimate can rise
    /// only through probes, which go as RTX, and a viewer with transport-cc negotiated sends
    /// no REMB (Chromium), which would leave such a leg with no estimate that can rise.
    View { send_side: bool },
}

pub(crate) fn leg_parts(
    s: &super::RtcSettings,
    certificate: ::rtc::peer_connection::certificate::RTCCertificate,
    role: LegRole,
    ufrag: Option<String>,
) -> Result<LegParts> {
    let for_play = role != LegRole::Publish;
    let mut media = MediaEngine::default();
    media
        .register_default_codecs()
        .map_err(|e| Error::Internal(format!("codecs: {e}")))?;
    // RFC 2198 redundant Opus (signal::red): publishers that offer it send it, viewers that
    // offered it receive it.
    let red = crate::signal::red::red_codec();
    media
        .register_codec(
            ::rtc::rtp_transceiver::rtp_sender::RTCRtpCodecParameters {
                rtp_codec: ::rtc::rtp_transceiver::rtp_sender::RTCRtpCodec {
                    mime_type: red.mime_type,
                    clock_rate: red.clock_rate,
                    channels: red.channels,
                    sdp_fmtp_line: red.fmtp,
                    rtcp_feedback: vec![],
                },
                payload_type: 63,
            },
            RtpCodecKind::Audio,
        )
        .map_err(|e| Error::Internal(format!("codecs: {e}")))?;
    let reports = for_play.then(std::sync::Arc::<crate::rtc::feedback::ReportBook>::default);
    let probes = for_play.then(std::sync::Arc::<crate::rtc::prober::ProbeBook>::default);
    let send_side = role == LegRole::View { send_side: true };
    let registry = interceptors(for_play, send_side, &mut media)
        .map_err(|e| Error::Internal(format!("interceptors: {e}")))?;
    let mut se = SettingEngineBuilder::new()
        // A server neither resolves nor announces mDNS names; it also keeps the library's
        // driver from opening a multicast socket per session.
        .with_multicast_dns_mode(::rtc::ice::mdns::MulticastDnsMode::Disabled)
        .with_ice_timeouts(
            Some(s.ice_disconnected_timeout),
            Some(s.ice_failed_timeout),
            // Consent checks: also how soon a leg that went disconnected sees its path back.
            Some(Duration::from_secs(1)),
        );
    if s.ice_lite {
        se = se.with_lite(true);
    }
    if s.tcp_port.is_some() {
        // The agent pairs only the network types it is given; UDP alone by default.
        use ::rtc::ice::network_type::NetworkType;
        se = se.with_network_types(vec![
            NetworkType::Udp4,
            NetworkType::Udp6,
            NetworkType::Tcp4,
            NetworkType::Tcp6,
        ]);
    }
    if let Some(u) = ufrag {
        se = se.with_ice_credentials(u, random_token(32));
    }
    Ok(LegParts {
        reports,
        probes,
        media,
        registry,
        settings: se.build(),
        config: RTCConfigurationBuilder::new()
            .with_certificates(vec![certificate])
            .build(),
    })
}

/// How far back a publisher leg asks for lost packets: 256 packets is about a second of
/// 2.5 Mbit/s video. Older losses are not worth repairing; after a network dropout the
/// keyframe wisp asks for repairs them (see `media::fanout`).
const NACK_WINDOW: u16 = 256;
/// Times one lost packet is asked for (100 ms apart). Unlimited (the library's default), the
/// packets lost in a dropout were asked for every 100 ms for as long as they stayed in the
/// window, and Chromium spent its upload on answering them instead of on new media: 2-8 s
/// before viewers saw video again after a 10 s outage, 2.3-3.3 s without those NACKs.
const MAX_NACKS_PER_PACKET: u16 = 3;

/// A publisher leg's interceptors (NACK generator, receiver reports, the stranger count,
/// transport-wide CC feedback for the publisher's bandwidth estimate) and what its viewer leg
/// negotiates. A viewer leg (`view`) runs no chain: wisp's own transport does its sending
/// side (`rtc::direct::sender`); here its media engine learns the simulcast extensions and,
/// with `send_side`, transport-wide CC (`rtc::congestion` numbers every packet and reads the
/// viewer's feedback). Without it the leg neither offers nor answers transport-cc, and its
/// viewer's REMB is the estimate. No pacer: only probes and join bursts would need one, and
/// the prober paces its probes over frames.
pub(crate) fn interceptors(
    view: bool,
    send_side: bool,
    media: &mut MediaEngine,
) -> webrtc::error::Result<Registry> {
    use ::rtc::interceptor::{NackGeneratorBuilder, ReceiverReportBuilder};
    use webrtc::peer_connection::{
        configure_simulcast_extension_headers, configure_twcc_receiver_only,
    };
    configure_simulcast_extension_headers(media)?;
    if view {
        if send_side {
            register_twcc(media)?;
        }
        Ok(Registry::new())
    } else {
        // RFC 6464 audio levels from publishers feed the server-side VAD.
        media.register_header_extension(
            ::rtc::rtp_transceiver::rtp_sender::RTCRtpHeaderExtensionCapability {
                uri: AUDIO_LEVEL_URI.to_owned(),
            },
            RtpCodecKind::Audio,
            None,
        )?;
        let registry = Registry::new()
            .with(
                Slot::NackGenerator,
                NackGeneratorBuilder::new()
                    .with_size(NACK_WINDOW)
                    .with_max_nacks_per_packet(MAX_NACKS_PER_PACKET)
                    .build(),
            )
            .with(Slot::ReceiverReport, ReceiverReportBuilder::new().build())
            // Wire-most on the read walk: sees every packet the core let in, once.
            .with(
                Slot::from(500),
                crate::rtc::strangers::StrangerCount::default(),
            )
            // Sender reports up to the application (recording and HLS sync audio to video).
            .with(
                Slot::from(14_000),
                crate::rtc::sender_reports::SenderReportTap::default(),
            );
        configure_twcc_receiver_only(registry, media)
    }
}

/// `a=rtcp-fb:* transport-cc` and the transport-wide sequence number extension, both kinds.
fn register_twcc(media: &mut MediaEngine) -> webrtc::error::Result<()> {
    for kind in [RtpCodecKind::Video, RtpCodecKind::Audio] {
        media.register_feedback(
            ::rtc::rtp_transceiver::rtp_sender::RTCPFeedback {
                typ: "transport-cc".to_owned(),
                parameter: String::new(),
            },
            kind,
        );
        media.register_header_extension(
            ::rtc::rtp_transceiver::rtp_sender::RTCRtpHeaderExtensionCapability {
                uri: ::rtc::sdp::extmap::TRANSPORT_CC_URI.to_owned(),
            },
            kind,
            None,
        )?;
    }
    Ok(())
}

/// ICE-safe random characters (ufrag/pwd use `[A-Za-z0-9+/]`).
pub(crate) fn random_token(len: usize) -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    (0..len)
        .map(|_| rng.sample(rand::distr::Alphanumeric) as char)
        .collect()
}
