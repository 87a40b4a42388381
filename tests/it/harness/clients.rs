//! webrtc-rs client peers: a plain peer, a publisher writing synthetic RTP (VP8 or H.264, plus
//! Opus with audio levels), and a viewer collecting what it receives.

use std::sync::Arc;

use bytes::Bytes;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::rtp_transceiver::rtp_sender::{RTCRtpCodec, RTCRtpCodecParameters};
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use tokio::sync::mpsc;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::PeerConnection;
use wisp::rtc::client::{ClientIce, ClientPeer, client_codec, local_track, local_track_with};

use super::*;

/// A webrtc-rs client peer connection on loopback (see `wisp::rtc::client`).
pub struct Peer {
    inner: ClientPeer,
    pub pc: Arc<dyn PeerConnection>,
    pub tracks: mpsc::UnboundedReceiver<Arc<dyn TrackRemote>>,
}

impl Peer {
    pub async fn new() -> Peer {
        Peer::with_ice(ClientIce::default()).await
    }

    pub async fn with_ice(ice: ClientIce) -> Peer {
        let mut inner = ClientPeer::with_ice(ice).await.unwrap();
        let tracks = std::mem::replace(&mut inner.tracks, mpsc::unbounded_channel().1);
        Peer {
            pc: inner.pc.clone(),
            inner,
            tracks,
        }
    }

    /// Creates the offer and waits for gathering, so it carries candidates (non-trickle).
    /// A peer with one recvonly video m-line that offers H.264 (Constrained Baseline) only.
    pub async fn h264_viewer() -> Peer {
        let peer = Peer::new().await;
        let video = peer
            .pc
            .add_transceiver_from_kind(
                RtpCodecKind::Video,
                Some(RTCRtpTransceiverInit {
                    direction: RTCRtpTransceiverDirection::Recvonly,
                    ..Default::default()
                }),
            )
            .await
            .unwrap();
        video
            .set_codec_preferences(vec![h264_cb(125)])
            .await
            .unwrap();
        peer
    }

    pub async fn offer(&self) -> String {
        self.inner.offer(EVENT_TIMEOUT).await.unwrap()
    }

    pub async fn accept(&self, answer: String) {
        self.inner.accept(answer).await.unwrap()
    }

    /// Adds a send-only transceiver for `track`.
    pub async fn send_only(
        &self,
        track: &Arc<TrackLocalStaticRTP>,
    ) -> Arc<dyn webrtc::rtp_transceiver::RtpTransceiver> {
        self.pc
            .add_transceiver_from_track(
                track.clone() as Arc<dyn TrackLocal>,
                Some(RTCRtpTransceiverInit {
                    direction: RTCRtpTransceiverDirection::Sendonly,
                    ..Default::default()
                }),
            )
            .await
            .unwrap()
    }

    /// From now on, sends every RTP packet under one of `n` made-up SSRCs (0: stop).
    pub fn scatter_ssrcs(&self, n: u32) {
        self.inner
            .scatter
            .store(n, std::sync::atomic::Ordering::Relaxed);
    }

    pub async fn connected(&self) {
        self.inner
            .connected(EVENT_TIMEOUT)
            .await
            .expect("connected in time")
    }

    /// The local candidate type of the selected pair.
    pub async fn selected_local_type(
        &self,
    ) -> Option<webrtc::peer_connection::RTCIceCandidateType> {
        self.inner.selected_local_type().await
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
    post_sdp_as(url, sdp, None).await
}

/// POSTs an SDP offer, with `Authorization: Bearer <bearer>` when given.
pub async fn post_sdp_as(url: &str, sdp: &str, bearer: Option<&str>) -> Posted {
    let auth = bearer.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
    post_sdp_with(url, sdp, &headers).await
}

/// POSTs an SDP offer with these extra headers.
pub async fn post_sdp_with(url: &str, sdp: &str, headers: &[(&str, &str)]) -> Posted {
    let mut req = http()
        .post(url)
        .header("content-type", "application/sdp")
        .body(sdp.to_string());
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let r = req.send().await.unwrap();
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

/// H.264 Constrained Baseline, packetization mode 1, under payload type `pt`.
pub fn h264_cb(pt: u8) -> RTCRtpCodecParameters {
    RTCRtpCodecParameters {
        rtp_codec: RTCRtpCodec {
            mime_type: "video/H264".into(),
            clock_rate: 90000,
            channels: 0,
            sdp_fmtp_line: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f"
                .into(),
            rtcp_feedback: vec![],
        },
        payload_type: pt,
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
    /// The 201's `X-Wisp-Resume` secret.
    pub resume: String,
    pub answer: String,
    /// The 201's `Link` header values.
    pub links: Vec<String>,
    /// The lossy relay media goes through, if any.
    pub relay: Option<LossyRelay>,
}

async fn via_relay(answer: &str, lossy: Option<(usize, bool, bool)>) -> Option<LossyRelay> {
    match lossy {
        Some((every, up, down)) => {
            Some(LossyRelay::start(first_candidate(answer), every, up, down).await)
        }
        None => None,
    }
}

impl Publisher {
    /// Publishes to `room` and waits until the connection is up.
    pub async fn join(server: &wisp::Server, room: &str) -> Publisher {
        Publisher::join_with(server, room, ClientIce::default()).await
    }

    pub async fn join_with(server: &wisp::Server, room: &str, ice: ClientIce) -> Publisher {
        Publisher::join_inner(server, room, ice, None, None, &[]).await
    }

    /// Publishes H.264 (Constrained Baseline, packetization mode 1) video instead of VP8;
    /// `video_pt` is the payload type the answer gave it.
    pub async fn join_h264(server: &wisp::Server, room: &str) -> Publisher {
        let h264 = h264_cb(102);
        Publisher::join_inner(server, room, ClientIce::default(), None, Some(h264), &[]).await
    }

    /// Publishes through a [`LossyRelay`] dropping every `every`-th media datagram going up.
    pub async fn join_lossy(server: &wisp::Server, room: &str, every: usize) -> Publisher {
        Publisher::join_inner(
            server,
            room,
            ClientIce::default(),
            Some((every, true, false)),
            None,
            &[],
        )
        .await
    }

    /// Publishes to `room` with `Authorization: Bearer <token>`.
    pub async fn join_token(server: &wisp::Server, room: &str, token: &str) -> Publisher {
        let auth = format!("Bearer {token}");
        let h = [("authorization", auth.as_str())];
        Publisher::join_inner(server, room, ClientIce::default(), None, None, &h).await
    }

    /// Publishes to `room` with these extra request headers (e.g. `X-Wisp-Resume`).
    pub async fn join_with_headers(
        server: &wisp::Server,
        room: &str,
        headers: &[(&str, &str)],
    ) -> Publisher {
        Publisher::join_inner(server, room, ClientIce::default(), None, None, headers).await
    }

    async fn join_inner(
        server: &wisp::Server,
        room: &str,
        ice: ClientIce,
        lossy: Option<(usize, bool, bool)>,
        video_codec: Option<RTCRtpCodecParameters>,
        headers: &[(&str, &str)],
    ) -> Publisher {
        let base = url(server, "");
        Publisher::join_at(&base, room, ice, lossy, video_codec, headers).await
    }

    /// Publishes to `room` on the server at `base` (e.g. `http://127.0.0.1:8080`), which
    /// need not be in this process.
    pub async fn join_at(
        base: &str,
        room: &str,
        ice: ClientIce,
        lossy: Option<(usize, bool, bool)>,
        video_codec: Option<RTCRtpCodecParameters>,
        headers: &[(&str, &str)],
    ) -> Publisher {
        let peer = Peer::with_ice(ice).await;
        let audio_ssrc = rand::random::<u32>();
        let video_ssrc = rand::random::<u32>();
        let audio = local_track(RtpCodecKind::Audio, audio_ssrc);
        let video = local_track_with(
            RtpCodecKind::Video,
            video_ssrc,
            video_codec.as_ref().map_or_else(
                || client_codec(RtpCodecKind::Video),
                |c| c.rtp_codec.clone(),
            ),
        );
        for (i, t) in [&audio, &video].into_iter().enumerate() {
            let transceiver = peer.send_only(t).await;
            if let (1, Some(codec)) = (i, &video_codec) {
                transceiver
                    .set_codec_preferences(vec![codec.clone()])
                    .await
                    .unwrap();
            }
        }
        let offer = peer.offer().await;
        let r = post_sdp_with(
            &format!("{base}{}", wisp::http::paths::whip(room)),
            &offer,
            headers,
        )
        .await;
        assert_eq!(r.status, 201, "{}", r.body);
        let relay = via_relay(&r.body, lossy).await;
        let answer = relay
            .as_ref()
            .map_or(r.body.clone(), |l| l.rewrite_answer(&r.body));
        peer.accept(answer).await;
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
            resume: r.headers["x-wisp-resume"].to_str().unwrap().to_string(),
            links: r
                .headers
                .get_all("link")
                .iter()
                .filter_map(|v| v.to_str().ok().map(str::to_owned))
                .collect(),
            answer: r.body,
            relay,
        }
    }

    /// Sends video frame `n` as one packet: a VP8 keyframe when `key`, else a delta frame.
    /// The payload encodes `n`, so a receiver can check it byte for byte.
    pub async fn send_video(&self, n: u16, key: bool) -> bool {
        self.send_video_seq(n, n, key).await
    }

    /// Video frame `n` under sequence number `seq` (when padding took numbers in between).
    pub async fn send_video_seq(&self, seq: u16, n: u16, key: bool) -> bool {
        self.send_video_payload(seq, n, video_payload(n, key)).await
    }

    /// Video frame `n` as one packet of `len` bytes: [`video_payload`] padded with `n`.
    pub async fn send_video_sized(&self, n: u16, key: bool, len: usize) -> bool {
        let mut p = video_payload(n, key).to_vec();
        p.resize(len, n as u8);
        self.send_video_payload(n, n, Bytes::from(p)).await
    }

    async fn send_video_payload(&self, seq: u16, n: u16, payload: Bytes) -> bool {
        let pkt = rtc::rtp::packet::Packet {
            header: rtc::rtp::header::Header {
                version: 2,
                marker: true,
                payload_type: 96,
                sequence_number: seq,
                timestamp: n as u32 * 3000,
                ssrc: self.video_ssrc,
                ..Default::default()
            },
            payload,
        };
        self.video.write_rtp(pkt).await.is_ok()
    }

    /// A padding-only video packet (a bandwidth probe, as Chromium sends without RTX).
    pub async fn send_video_padding(&self, seq: u16, n: u16) -> bool {
        let pkt = rtc::rtp::packet::Packet {
            header: rtc::rtp::header::Header {
                version: 2,
                padding: true,
                payload_type: 96,
                sequence_number: seq,
                timestamp: n as u32 * 3000,
                ssrc: self.video_ssrc,
                ..Default::default()
            },
            payload: Bytes::new(),
        };
        self.video.write_rtp(pkt).await.is_ok()
    }

    /// Sends audio packet `n` carrying an RFC 6464 level (0 loudest … 127 silence).
    pub async fn send_audio_level(&self, n: u16, level: u8) -> bool {
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
        let level = rtc::rtp::extension::HeaderExtension::AudioLevel(
            rtc::rtp::extension::audio_level_extension::AudioLevelExtension {
                level,
                voice: level < 60,
            },
        );
        self.audio
            .write_rtp_with_extensions(pkt, &[level])
            .await
            .is_ok()
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
    pub relay: Option<LossyRelay>,
    /// The remote tracks, for sending feedback (e.g. REMB) like a browser would.
    pub remotes: Arc<std::sync::Mutex<Vec<Arc<dyn TrackRemote>>>>,
}

impl Viewer {
    /// The SSRCs of the video track wisp sends this viewer.
    pub async fn video_ssrcs(&self) -> Vec<u32> {
        let remotes = self.remotes.lock().unwrap().clone();
        for r in remotes {
            if r.kind().await == RtpCodecKind::Video {
                return r.ssrcs().await;
            }
        }
        panic!("no video track")
    }

    /// Sends RTCP on the video track, whatever it says.
    pub async fn send_rtcp(&self, packets: Vec<Box<dyn rtc::rtcp::Packet>>) {
        let remotes = self.remotes.lock().unwrap().clone();
        for r in remotes {
            if r.kind().await == RtpCodecKind::Video {
                let _ = r.write_rtcp(packets).await;
                return;
            }
        }
        panic!("no video track")
    }

    /// Sends a REMB (receiver bandwidth estimate) on the video track, as Chromium does.
    pub async fn send_estimate(&self, bps: f32) {
        let mut video = None;
        let remotes = self.remotes.lock().unwrap().clone();
        for r in remotes {
            if r.kind().await == RtpCodecKind::Video {
                video = Some(r);
            }
        }
        let video = video.expect("a video track");
        let ssrcs = video.ssrcs().await;
        let remb = rtc::rtcp::payload_feedbacks::receiver_estimated_maximum_bitrate::ReceiverEstimatedMaximumBitrate {
            sender_ssrc: 0,
            bitrate: bps,
            ssrcs,
        };
        video.write_rtcp(vec![Box::new(remb)]).await.unwrap();
    }

    pub async fn join(server: &wisp::Server, path: &str) -> Viewer {
        Viewer::join_with(server, path, ClientIce::default()).await
    }

    pub async fn join_with(server: &wisp::Server, path: &str, ice: ClientIce) -> Viewer {
        Viewer::join_inner(server, path, ice, None, None).await
    }

    /// Plays through a [`LossyRelay`] dropping every `every`-th media datagram coming down.
    pub async fn join_lossy(server: &wisp::Server, path: &str, every: usize) -> Viewer {
        Viewer::join_inner(
            server,
            path,
            ClientIce::default(),
            Some((every, false, true)),
            None,
        )
        .await
    }

    /// Plays `path` with `Authorization: Bearer <token>`.
    pub async fn join_token(server: &wisp::Server, path: &str, token: &str) -> Viewer {
        Viewer::join_inner(server, path, ClientIce::default(), None, Some(token)).await
    }

    async fn join_inner(
        server: &wisp::Server,
        path: &str,
        ice: ClientIce,
        lossy: Option<(usize, bool, bool)>,
        bearer: Option<&str>,
    ) -> Viewer {
        Viewer::join_url(&url(server, path), ice, lossy, bearer).await
    }

    /// Plays the WHEP endpoint at `endpoint` (a full URL; the server need not be in this
    /// process).
    pub async fn join_url(
        endpoint: &str,
        ice: ClientIce,
        lossy: Option<(usize, bool, bool)>,
        bearer: Option<&str>,
    ) -> Viewer {
        let peer = Peer::with_ice(ice).await;
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
        let r = post_sdp_as(endpoint, &offer, bearer).await;
        assert_eq!(r.status, 201, "{}", r.body);
        let relay = via_relay(&r.body, lossy).await;
        let answer = relay
            .as_ref()
            .map_or(r.body.clone(), |l| l.rewrite_answer(&r.body));
        peer.accept(answer).await;
        let (tx, rx) = mpsc::unbounded_channel();
        let mut peer = peer;
        let mut tracks = std::mem::replace(&mut peer.tracks, mpsc::unbounded_channel().1);
        let remotes: Arc<std::sync::Mutex<Vec<Arc<dyn TrackRemote>>>> = Default::default();
        let seen = remotes.clone();
        tokio::spawn(async move {
            while let Some(t) = tracks.recv().await {
                seen.lock().unwrap().push(t.clone());
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
            relay,
            remotes,
        }
    }
}
