//! Test harness: an in-process wisp on loopback and webrtc-rs client peers that publish and
//! play through it. Everything waits on events (channels, watch states), never on sleeps.

#![allow(dead_code)]

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rtc::media_stream::MediaStreamTrack;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use tokio::sync::{mpsc, watch};
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCIceGatheringState, RTCPeerConnectionState, RTCSessionDescription, Registry,
    SettingEngineBuilder, register_default_interceptors,
};
use wisp::rtc::feedback::KeyframeRequestTap;

/// The longest any test waits for one event before failing (a bound, not a synchroniser).
pub const EVENT_TIMEOUT: Duration = Duration::from_secs(20);

pub async fn within<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(EVENT_TIMEOUT, fut)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// A server config for loopback tests: port 0 for HTTP, a random ICE range.
pub fn test_config() -> wisp::Config {
    let base = 20000 + (rand::random::<u16>() % 400) * 100;
    let mut c = wisp::Config::from_args(wisp::Args::default()).expect("default config");
    c.listen = "127.0.0.1:0".parse().unwrap();
    c.ice_ports = (base, base + 99);
    c.public_ips = vec![IpAddr::from([127, 0, 0, 1])];
    c.allow_remote = vec!["127.0.0.0/8".parse().unwrap()];
    c
}

pub async fn start() -> wisp::Server {
    start_with(test_config()).await
}

pub async fn start_with(c: wisp::Config) -> wisp::Server {
    wisp::Server::start(c).await.expect("server starts")
}

pub fn http() -> reqwest::Client {
    reqwest::Client::builder().build().unwrap()
}

pub fn url(server: &wisp::Server, path: &str) -> String {
    format!("http://{}{}", server.addr, path)
}

#[derive(Clone)]
struct Handler {
    gathered: Arc<watch::Sender<bool>>,
    state: Arc<watch::Sender<RTCPeerConnectionState>>,
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

/// A webrtc-rs client peer connection on loopback.
pub struct Peer {
    pub pc: Arc<dyn PeerConnection>,
    pub state: watch::Receiver<RTCPeerConnectionState>,
    gathered: watch::Receiver<bool>,
    pub tracks: mpsc::UnboundedReceiver<Arc<dyn TrackRemote>>,
}

impl Peer {
    pub async fn new() -> Peer {
        let mut media = MediaEngine::default();
        media.register_default_codecs().unwrap();
        let registry = register_default_interceptors(Registry::new(), &mut media)
            .unwrap()
            .with(
                rtc::interceptor::Slot::from(14_000),
                KeyframeRequestTap::default(),
            );
        let (g_tx, g_rx) = watch::channel(false);
        let (s_tx, s_rx) = watch::channel(RTCPeerConnectionState::New);
        let (t_tx, t_rx) = mpsc::unbounded_channel();
        let pc = PeerConnectionBuilder::new()
            .with_media_engine(media)
            .with_interceptor_registry(registry)
            .with_setting_engine(
                SettingEngineBuilder::new()
                    .with_include_loopback_candidate(true)
                    .with_multicast_dns_mode(rtc::ice::mdns::MulticastDnsMode::Disabled)
                    .build(),
            )
            .with_handler(Arc::new(Handler {
                gathered: Arc::new(g_tx),
                state: Arc::new(s_tx),
                tracks: t_tx,
            }))
            .with_udp_addrs(vec!["127.0.0.1:0".to_string()])
            .build()
            .await
            .unwrap();
        Peer {
            pc: Arc::new(pc),
            state: s_rx,
            gathered: g_rx,
            tracks: t_rx,
        }
    }

    /// Creates the offer and waits for gathering, so it carries candidates (non-trickle).
    pub async fn offer(&self) -> String {
        let offer = self.pc.create_offer(None).await.unwrap();
        self.pc.set_local_description(offer).await.unwrap();
        let mut g = self.gathered.clone();
        within("gathering", g.wait_for(|g| *g)).await.unwrap();
        self.pc.local_description().await.unwrap().sdp
    }

    pub async fn accept(&self, answer: String) {
        self.pc
            .set_remote_description(RTCSessionDescription::answer(answer).unwrap())
            .await
            .unwrap();
    }

    pub async fn connected(&self) {
        let mut s = self.state.clone();
        within(
            "connected",
            s.wait_for(|s| *s == RTCPeerConnectionState::Connected),
        )
        .await
        .unwrap();
    }
}

/// What a POST returned.
pub struct Posted {
    pub status: u16,
    pub location: Option<String>,
    pub etag: Option<String>,
    pub participant: Option<String>,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

pub async fn post_sdp(url: &str, sdp: &str) -> Posted {
    let r = http()
        .post(url)
        .header("content-type", "application/sdp")
        .body(sdp.to_string())
        .send()
        .await
        .unwrap();
    let h = r.headers().clone();
    let get = |k: &str| h.get(k).and_then(|v| v.to_str().ok()).map(str::to_string);
    Posted {
        status: r.status().as_u16(),
        location: get("location"),
        etag: get("etag"),
        participant: get("x-wisp-participant"),
        headers: h.clone(),
        body: r.text().await.unwrap(),
    }
}

fn codec(kind: RtpCodecKind) -> RTCRtpCodec {
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

/// A publisher client: Opus + VP8 tracks it can write synthetic RTP to.
pub struct Publisher {
    pub peer: Peer,
    pub audio: Arc<TrackLocalStaticRTP>,
    pub video: Arc<TrackLocalStaticRTP>,
    pub audio_ssrc: u32,
    pub video_ssrc: u32,
    pub session: String,
    pub etag: String,
    pub participant: String,
    pub answer: String,
}

fn local_track(kind: RtpCodecKind, ssrc: u32) -> Arc<TrackLocalStaticRTP> {
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
            codec: codec(kind),
            ..Default::default()
        }],
    )))
}

impl Publisher {
    /// Publishes to `room` and waits until the connection is up.
    pub async fn join(server: &wisp::Server, room: &str) -> Publisher {
        let peer = Peer::new().await;
        let audio_ssrc = rand::random::<u32>();
        let video_ssrc = rand::random::<u32>();
        let audio = local_track(RtpCodecKind::Audio, audio_ssrc);
        let video = local_track(RtpCodecKind::Video, video_ssrc);
        for t in [&audio, &video] {
            peer.pc
                .add_transceiver_from_track(
                    t.clone() as Arc<dyn TrackLocal>,
                    Some(RTCRtpTransceiverInit {
                        direction: RTCRtpTransceiverDirection::Sendonly,
                        ..Default::default()
                    }),
                )
                .await
                .unwrap();
        }
        let offer = peer.offer().await;
        let r = post_sdp(&url(server, &wisp::http::paths::whip(room)), &offer).await;
        assert_eq!(r.status, 201, "{}", r.body);
        peer.accept(r.body.clone()).await;
        peer.connected().await;
        Publisher {
            peer,
            audio,
            video,
            audio_ssrc,
            video_ssrc,
            session: r.location.unwrap(),
            etag: r.etag.unwrap(),
            participant: r.participant.unwrap(),
            answer: r.body,
        }
    }

    /// Sends video frame `n` as one packet: a VP8 keyframe when `key`, else a delta frame.
    /// The payload encodes `n`, so a receiver can check it byte for byte.
    pub async fn send_video(&self, n: u16, key: bool) -> bool {
        let pkt = rtc::rtp::packet::Packet {
            header: rtc::rtp::header::Header {
                version: 2,
                marker: true,
                payload_type: 96,
                sequence_number: n,
                timestamp: n as u32 * 3000,
                ssrc: self.video_ssrc,
                ..Default::default()
            },
            payload: video_payload(n, key),
        };
        self.video.write_rtp(pkt).await.is_ok()
    }

    pub async fn send_audio(&self, n: u16) -> bool {
        let pkt = rtc::rtp::packet::Packet {
            header: rtc::rtp::header::Header {
                version: 2,
                payload_type: 111,
                sequence_number: n,
                timestamp: n as u32 * 960,
                ssrc: self.audio_ssrc,
                ..Default::default()
            },
            payload: Bytes::from(vec![0xfc, (n >> 8) as u8, n as u8]),
        };
        self.audio.write_rtp(pkt).await.is_ok()
    }

    /// Resolves at the next keyframe request (PLI/FIR) the server sends for the video track.
    pub async fn keyframe_request(&self) -> bool {
        loop {
            match self.video.poll().await {
                Some(TrackLocalEvent::OnRtcpPacket(_)) => return true,
                Some(_) => continue,
                None => return false,
            }
        }
    }
}

/// VP8 payload descriptor (S=1, PID=0) + a frame tag whose P bit marks delta frames,
/// then the frame number.
pub fn video_payload(n: u16, key: bool) -> Bytes {
    let mut p = vec![0x10, if key { 0x00 } else { 0x01 }, (n >> 8) as u8, n as u8];
    p.extend(std::iter::repeat_n(n as u8, 100));
    Bytes::from(p)
}

/// A viewer client with one audio and one video recvonly m-line.
pub struct Viewer {
    pub peer: Peer,
    pub session: String,
    pub etag: String,
    pub answer: String,
    pub packets: mpsc::UnboundedReceiver<(RtpCodecKind, rtc::rtp::packet::Packet)>,
}

impl Viewer {
    pub async fn join(server: &wisp::Server, path: &str) -> Viewer {
        let peer = Peer::new().await;
        for kind in [RtpCodecKind::Audio, RtpCodecKind::Video] {
            peer.pc
                .add_transceiver_from_kind(
                    kind,
                    Some(RTCRtpTransceiverInit {
                        direction: RTCRtpTransceiverDirection::Recvonly,
                        ..Default::default()
                    }),
                )
                .await
                .unwrap();
        }
        let offer = peer.offer().await;
        let r = post_sdp(&url(server, path), &offer).await;
        assert_eq!(r.status, 201, "{}", r.body);
        peer.accept(r.body.clone()).await;
        let (tx, rx) = mpsc::unbounded_channel();
        let mut peer = peer;
        let mut tracks = std::mem::replace(&mut peer.tracks, mpsc::unbounded_channel().1);
        tokio::spawn(async move {
            while let Some(t) = tracks.recv().await {
                let tx = tx.clone();
                tokio::spawn(async move {
                    let kind = t.kind().await;
                    while let Some(ev) = t.poll().await {
                        if let TrackRemoteEvent::OnRtpPacket(p) = ev
                            && tx.send((kind, p)).is_err()
                        {
                            break;
                        }
                    }
                });
            }
        });
        peer.connected().await;
        Viewer {
            peer,
            session: r.location.unwrap(),
            etag: r.etag.unwrap(),
            answer: r.body,
            packets: rx,
        }
    }
}
