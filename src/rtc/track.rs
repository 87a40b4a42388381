//! Incoming and outgoing tracks, as the rest of wisp sees them.

use crate::rtc::repair::{Kept, Outgoing};
use std::sync::Arc;
use std::sync::OnceLock;

use ::rtc::media_stream::MediaStreamTrack;
use ::rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use ::rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters,
};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};

use crate::rtc::{PeerState, RtpPacket};
use crate::signal::{CodecSpec, MediaKind};

/// What the media layer is told about a publisher's track when it arrives.
pub struct InTrackInfo {
    pub kind: MediaKind,
    pub codec: CodecSpec,
    pub ssrc: u32,
    pub rid: Option<String>,
}

/// Receives a publisher track's packets, on its reader task.
pub trait RtpSink: Send + Sync {
    fn on_rtp(&self, pkt: RtpPacket);
    /// A sender report for this stream: its NTP and RTP timestamps (RFC 3550 §6.4.1).
    fn on_sender_report(&self, _ntp: u64, _rtp: u32) {}
    /// The track ended (publisher gone or track removed).
    fn on_end(&self) {}
}

/// A handle that sends keyframe requests (PLI) to a publisher track.
#[derive(Clone)]
pub struct KeyframeRequester {
    remote: Arc<dyn TrackRemote>,
    ssrc: u32,
}

impl KeyframeRequester {
    pub fn request(&self) {
        let remote = self.remote.clone();
        let ssrc = self.ssrc;
        tokio::spawn(async move {
            let pli = PictureLossIndication {
                sender_ssrc: 0,
                media_ssrc: ssrc,
            };
            if let Err(e) = remote.write_rtcp(vec![Box::new(pli)]).await {
                tracing::debug!("PLI not sent: {e}");
            }
        });
    }
}

/// What the library knows about one SSRC of a remote track.
async fn describe(
    remote: &Arc<dyn TrackRemote>,
    ssrc: u32,
    rid: Option<String>,
) -> Option<(InTrackInfo, KeyframeRequester)> {
    let codec = remote.codec(ssrc).await?;
    let kind = match remote.kind().await {
        ::rtc::rtp_transceiver::rtp_sender::RtpCodecKind::Audio => MediaKind::Audio,
        ::rtc::rtp_transceiver::rtp_sender::RtpCodecKind::Video => MediaKind::Video,
        _ => return None,
    };
    let rid = match rid {
        Some(r) => Some(r),
        None => remote.rid(ssrc).await.map(|r| r.to_string()),
    }
    .filter(|r| !r.is_empty());
    Some((
        InTrackInfo {
            kind,
            codec: CodecSpec {
                mime_type: codec.mime_type.clone(),
                clock_rate: codec.clock_rate,
                channels: codec.channels,
                fmtp: codec.sdp_fmtp_line.clone(),
            },
            ssrc,
            rid,
        },
        KeyframeRequester {
            remote: remote.clone(),
            ssrc,
        },
    ))
}

/// The reader task of one incoming track. A simulcast track carries one RTP stream per layer
/// (rid) through the same remote track, so packets are split by SSRC: each layer gets its own
/// sink (its own fan-out), announced when the library opens it or, failing that, at its first
/// packet. A plain track is the one-layer case.
pub(crate) async fn demux(remote: Arc<dyn TrackRemote>, observer: Arc<dyn super::PeerObserver>) {
    let mut sinks: Vec<(u32, Option<Arc<dyn RtpSink>>)> = Vec::new();
    async fn open(
        remote: &Arc<dyn TrackRemote>,
        observer: &Arc<dyn super::PeerObserver>,
        ssrc: u32,
        rid: Option<String>,
    ) -> Option<Arc<dyn RtpSink>> {
        let Some((info, requester)) = describe(remote, ssrc, rid).await else {
            tracing::debug!(ssrc, "ignoring an RTP stream without codec");
            return None;
        };
        observer.on_track(info, requester)
    }
    while let Some(evt) = remote.poll().await {
        match evt {
            TrackRemoteEvent::OnOpen(init) if !sinks.iter().any(|(s, _)| *s == init.ssrc) => {
                let rid = init.rid.map(|r| r.to_string());
                let sink = open(&remote, &observer, init.ssrc, rid).await;
                sinks.push((init.ssrc, sink));
            }
            TrackRemoteEvent::OnRtpPacket(pkt) => {
                let ssrc = pkt.header.ssrc;
                let sink = match sinks.iter().find(|(s, _)| *s == ssrc) {
                    Some((_, sink)) => sink.clone(),
                    None => {
                        let sink = open(&remote, &observer, ssrc, None).await;
                        sinks.push((ssrc, sink.clone()));
                        sink
                    }
                };
                if let Some(sink) = sink {
                    sink.on_rtp(pkt);
                }
            }
            TrackRemoteEvent::OnRtcpPacket(packets) => {
                for (ssrc, ntp, rtp) in super::sender_reports::sender_reports(&packets) {
                    if let Some((_, Some(sink))) = sinks.iter().find(|(s, _)| *s == ssrc) {
                        sink.on_sender_report(ntp, rtp);
                    }
                }
            }
            TrackRemoteEvent::OnEnded => break,
            _ => {}
        }
    }
    for (_, sink) in sinks.into_iter() {
        if let Some(sink) = sink {
            sink.on_end();
        }
    }
}

/// The library's description of slot `i`'s send track: one encoding with our SSRC, bound
/// to the codec the slot prefers.
pub(crate) fn send_track(
    i: usize,
    kind: MediaKind,
    ssrc: u32,
    codec: &CodecSpec,
) -> MediaStreamTrack {
    let id = uuid::Uuid::new_v4().simple().to_string();
    MediaStreamTrack::new(
        format!("wisp-{}", &id[..8]),
        id,
        format!("slot-{i}"),
        super::setup::kind_of(kind),
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                ssrc: Some(ssrc),
                ..Default::default()
            },
            codec: RTCRtpCodec {
                mime_type: codec.mime_type.clone(),
                clock_rate: codec.clock_rate,
                channels: codec.channels,
                sdp_fmtp_line: codec.fmtp.clone(),
                rtcp_feedback: vec![],
            },
            ..Default::default()
        }],
    )
}

/// What became of a write that does not wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sent {
    /// Queued for the wire.
    Ok,
    /// The connection's queue is full: dropped, as a full link would.
    Full,
    /// Not sendable now (not connected yet, or closed).
    Refused,
}

/// One outgoing track of a viewer session (one answered m-line).
pub struct OutTrack {
    pub kind: MediaKind,
    pub mid: String,
    pub ssrc: u32,
    /// Its way into the connection's driver (`rtc::direct`), and its feedback back.
    pub(crate) port: super::direct::TrackPort,
    /// Payload types and codecs negotiated on this m-line, set once after the answer.
    pub(crate) negotiated: OnceLock<Vec<(u8, CodecSpec)>>,
    /// The owning peer connection's state, to know when the track is bound.
    pub(crate) state: tokio::sync::watch::Receiver<PeerState>,
    /// Its probe rate, read by the leg's prober (`rtc::prober`), bit/s.
    pub(crate) probe: Option<std::sync::Arc<std::sync::atomic::AtomicU64>>,
}

impl OutTrack {
    /// The payload type under which the viewer accepts a stream encoded as `codec`.
    pub fn payload_type_for(&self, codec: &CodecSpec) -> Option<u8> {
        self.negotiated
            .get()?
            .iter()
            .find(|(_, c)| codec.compatible_with(c))
            .or_else(|| {
                self.negotiated
                    .get()?
                    .iter()
                    .find(|(_, c)| codec.can_feed(c))
            })
            .map(|(pt, _)| *pt)
    }

    /// The codecs the viewer accepts on this m-line.
    pub fn negotiated(&self) -> &[(u8, CodecSpec)] {
        self.negotiated.get().map(Vec::as_slice).unwrap_or(&[])
    }

    /// Queues one packet for the connection; false if it was refused (not yet connected,
    /// closed) or dropped (the connection's queue is full, as a full link would).
    pub async fn write(&self, pkt: RtpPacket) -> bool {
        self.write_now(pkt, Kept::Copy) == Sent::Ok
    }

    /// Whether [`OutTrack::write_now`] is the way to write: the connection's queue never makes
    /// a writer wait, so the fan-out writes in place.
    pub fn writes_at_once(&self) -> bool {
        true
    }

    /// Whether the connection is up (packets written now would be sent).
    pub fn is_open(&self) -> bool {
        *self.state.borrow() == PeerState::Connected
    }

    /// Queues one packet for the connection, without waiting; `kept` says how a NACK for
    /// it will be answered.
    pub fn write_now(&self, pkt: RtpPacket, kept: Kept) -> Sent {
        let stamp = crate::media::counters::forward_stamp();
        self.send_now(Outgoing::new(pkt, kept).stamped(stamp))
    }

    /// [`OutTrack::write_now`] for a packet of a burst (a replay of the keyframe cache),
    /// which the leg paces.
    pub fn write_burst_now(&self, pkt: RtpPacket, kept: Kept) -> Sent {
        self.send_now(Outgoing::new(pkt, kept).in_burst())
    }

    fn send_now(&self, out: Outgoing) -> Sent {
        if *self.state.borrow() != PeerState::Connected {
            return Sent::Refused;
        }
        match self.port.rtp.try_send(out) {
            Ok(()) => Sent::Ok,
            Err(tokio::sync::mpsc::error::TrySendError::Full(_)) => Sent::Full,
            Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) => Sent::Refused,
        }
    }

    /// Waits for the viewer's next feedback (keyframe requests, bandwidth estimates); `None`
    /// once the connection's driver has ended.
    pub async fn next_feedback(&self) -> Option<Vec<super::feedback::Feedback>> {
        self.port.feedback.lock().await.recv().await
    }
}
