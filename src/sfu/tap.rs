//! Taps: a room's tracks to an in-process consumer — a recorder, an HLS packager — through
//! the same planner, slots and rewriters a WHEP player gets. A tap is a viewer the plan
//! knows (following the room, or pinned to one participant; `Auto` layers, so the best
//! simulcast layer), never one of the audience, connected from the start. Its slots' outputs
//! hand each rewritten packet to the tap's one bounded queue; a consumer that falls behind
//! loses packets there and its slot resyncs on a keyframe, as a slow player's would.

use std::sync::Arc;

use tokio::sync::{Notify, mpsc};

use crate::error::{Error, Result};
use crate::media::{SlotOutput, SlotSink};
use crate::rtc::RtpPacket;
use crate::rtc::feedback::Feedback;
use crate::sfu::room::Command;
use crate::sfu::{ParticipantId, Room, RoomId, SessionId, Sfu, Viewer};
use crate::signal::{CodecSpec, MediaKind};

/// Packets a tap holds for its consumer (about 1 s of 2.5 Mbit/s video with its audio).
const TAP_QUEUE: usize = 512;

/// The codecs a tap takes, with the payload type it is given them under.
const TAKES: [(MediaKind, &str, u32, u16, u8); 4] = [
    (MediaKind::Audio, "audio/opus", 48_000, 2, 111),
    (MediaKind::Video, "video/H264", 90_000, 0, 102),
    (MediaKind::Video, "video/VP8", 90_000, 0, 96),
    (MediaKind::Video, "video/VP9", 90_000, 0, 98),
];

/// One packet out of a tap.
#[derive(Debug)]
pub struct Tapped {
    pub kind: MediaKind,
    /// The codec it is in (what the publisher sends; RED arrives as its Opus).
    pub codec: CodecSpec,
    pub pkt: RtpPacket,
}

/// What the tap's consumer holds. Dropping it takes the tap out of the room.
pub struct Tap {
    pub session: SessionId,
    pub room: Arc<Room>,
    pub rx: mpsc::Receiver<Tapped>,
    keyframe: Arc<Notify>,
    /// Audio, video.
    slots: Vec<Arc<SlotSink>>,
}

impl Tap {
    /// Asks the video's publisher for a keyframe (throttled at its fan-out).
    pub fn request_keyframe(&self) {
        self.keyframe.notify_waiters();
    }

    /// The last RTCP sender report of the `kind` stream the tap shows now: (NTP, RTP).
    pub fn sender_report(&self, kind: MediaKind) -> Option<(u64, u32)> {
        let slot = self.slots.get((kind == MediaKind::Video) as usize)?;
        slot.source()?.sender_report()
    }
}

impl Drop for Tap {
    fn drop(&mut self) {
        self.room.send_now(Command::ViewerLeft(self.session));
    }
}

struct TapOutput {
    kind: MediaKind,
    mid: &'static str,
    ssrc: u32,
    tx: mpsc::Sender<Tapped>,
    keyframe: Arc<Notify>,
}

fn codec(mime: &str, rate: u32, channels: u16) -> CodecSpec {
    CodecSpec {
        mime_type: mime.into(),
        clock_rate: rate,
        channels,
        fmtp: String::new(),
    }
}

impl SlotOutput for TapOutput {
    fn kind(&self) -> MediaKind {
        self.kind
    }
    fn mid(&self) -> &str {
        self.mid
    }
    fn ssrc(&self) -> u32 {
        self.ssrc
    }
    fn payload_type_for(&self, c: &CodecSpec) -> Option<u8> {
        TAKES
            .iter()
            .find(|(k, m, ..)| *k == self.kind && c.mime_type.eq_ignore_ascii_case(m))
            .map(|t| t.4)
    }
    fn describe(&self) -> String {
        "wisp tap".into()
    }
    fn codecs(&self) -> Vec<CodecSpec> {
        TAKES
            .iter()
            .filter(|t| t.0 == self.kind)
            .map(|(_, m, r, ch, _)| codec(m, *r, *ch))
            .collect()
    }
    async fn write(&self, pkt: RtpPacket) -> bool {
        let Some((_, m, r, ch, _)) = TAKES
            .iter()
            .find(|t| t.0 == self.kind && t.4 == pkt.header.payload_type)
        else {
            return true;
        };
        let t = Tapped {
            kind: self.kind,
            codec: codec(m, *r, *ch),
            pkt,
        };
        // Never waits: a consumer behind by a whole queue loses this packet, and the slot's
        // own queue (behind this) would otherwise fill and resync on a keyframe anyway.
        match self.tx.try_send(t) {
            Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => true,
            Err(mpsc::error::TrySendError::Full(_)) => true,
        }
    }
    async fn next_feedback(&self) -> Option<Vec<Feedback>> {
        tokio::select! {
            _ = self.keyframe.notified() => Some(vec![Feedback::KeyframeRequest]),
            _ = self.tx.closed() => None,
        }
    }
}

impl Sfu {
    /// Taps `room`: its first-ranked publisher's audio and video (`target` `None`), or one
    /// participant's. `NotFound` when the room (or the participant) is not here.
    pub async fn tap(&self, room: &RoomId, target: Option<ParticipantId>) -> Result<Tap> {
        let room = self.room(room).ok_or(Error::NotFound)?;
        if let Some(t) = target.clone() {
            let present = room.call(move |core, _| core.plan.has_publisher(&t)).await;
            if present != Some(true) {
                return Err(Error::NotFound);
            }
        }
        let session = SessionId::new();
        let (tx, rx) = mpsc::channel(TAP_QUEUE);
        let keyframe = Arc::new(Notify::new());
        let slots: Vec<Arc<SlotSink>> = [(MediaKind::Audio, "0"), (MediaKind::Video, "1")]
            .into_iter()
            .map(|(kind, mid)| {
                SlotSink::spawn(Arc::new(TapOutput {
                    kind,
                    mid,
                    ssrc: rand::random(),
                    tx: tx.clone(),
                    keyframe: keyframe.clone(),
                }))
            })
            .collect();
        drop(tx);
        let viewer = Viewer::new(session, target, None, slots.clone(), true);
        room.send(Command::ViewerJoined(viewer)).await;
        room.send(Command::ViewerConnected(session)).await;
        Ok(Tap {
            session,
            room,
            rx,
            keyframe,
            slots,
        })
    }
}

impl Sfu {
    /// Whether participant `id` is a mirror of another node's publisher (cluster mode): it is
    /// recorded and packaged on its own node.
    pub fn is_mirror(&self, id: &ParticipantId) -> bool {
        self.sessions().values().any(
            |s| matches!(&s.kind, crate::sfu::SessionKind::Publisher(p) if &p.id == id && p.mirror),
        )
    }
}
