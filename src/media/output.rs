//! Where a slot's packets go: the [`SlotOutput`] trait, and its implementation for the viewer
//! legs' outgoing tracks. Benches and tests give the slot other outputs.

use crate::rtc::repair::Kept;
use crate::rtc::{OutTrack, RtpPacket, Sent};
use crate::signal::{CodecSpec, MediaKind};

/// Where a slot's rewritten packets go: an [`OutTrack`] in the server, a counter in benches.
/// Generic (not `dyn`), so the per-packet write is not boxed.
pub trait SlotOutput: Send + Sync + 'static {
    fn kind(&self) -> MediaKind;
    fn mid(&self) -> &str;
    fn ssrc(&self) -> u32;
    /// The payload type the receiver accepts `codec` under, if any.
    fn payload_type_for(&self, codec: &CodecSpec) -> Option<u8>;
    /// The receiver's codecs, for a log line.
    fn describe(&self) -> String;
    /// The codecs the receiver negotiated (empty until its answer is known).
    fn codecs(&self) -> Vec<CodecSpec>;
    /// Sends one packet; false if it was refused.
    fn write(&self, pkt: RtpPacket) -> impl std::future::Future<Output = bool> + Send;
    /// Whether this output's writes never wait ([`SlotOutput::write_now`]). Then the fan-out
    /// rewrites and writes each packet in place, and the slot has no queue or writer task of
    /// its own: one task wake per packet per viewer fewer.
    fn writes_at_once(&self) -> bool {
        false
    }
    /// Whether the receiver's connection takes packets now (not while ICE is disconnected).
    fn is_open(&self) -> bool {
        true
    }
    /// The in-place write of an output that [`SlotOutput::writes_at_once`]; `kept` says how a
    /// repair of it finds it again.
    fn write_now(&self, _pkt: RtpPacket, _kept: Kept) -> Sent {
        Sent::Refused
    }
    /// [`SlotOutput::write_now`] for a packet of a burst (a join's or a layer switch's replay
    /// of the keyframe cache), which the output may pace.
    fn write_burst_now(&self, pkt: RtpPacket, kept: Kept) -> Sent {
        self.write_now(pkt, kept)
    }
    /// Sends `bps` of bandwidth probe alongside the packets (0: stop), where the output can.
    fn set_probe(&self, _bps: u64) {}
    /// Resolves at the receiver's next feedback; `None` once it is gone.
    fn next_feedback(
        &self,
    ) -> impl std::future::Future<Output = Option<Vec<crate::rtc::feedback::Feedback>>> + Send;
}

impl SlotOutput for OutTrack {
    fn kind(&self) -> MediaKind {
        self.kind
    }
    fn mid(&self) -> &str {
        &self.mid
    }
    fn ssrc(&self) -> u32 {
        self.ssrc
    }
    fn payload_type_for(&self, codec: &CodecSpec) -> Option<u8> {
        OutTrack::payload_type_for(self, codec)
    }
    fn describe(&self) -> String {
        self.negotiated()
            .iter()
            .map(|(pt, c)| format!("{pt} {} {}", c.mime_type, c.fmtp))
            .collect::<Vec<_>>()
            .join(", ")
    }
    fn codecs(&self) -> Vec<CodecSpec> {
        self.negotiated().iter().map(|(_, c)| c.clone()).collect()
    }
    async fn write(&self, pkt: RtpPacket) -> bool {
        OutTrack::write(self, pkt).await
    }
    fn writes_at_once(&self) -> bool {
        OutTrack::writes_at_once(self)
    }
    fn write_now(&self, pkt: RtpPacket, kept: Kept) -> Sent {
        OutTrack::write_now(self, pkt, kept)
    }
    fn write_burst_now(&self, pkt: RtpPacket, kept: Kept) -> Sent {
        OutTrack::write_burst_now(self, pkt, kept)
    }
    fn is_open(&self) -> bool {
        OutTrack::is_open(self)
    }
    fn set_probe(&self, bps: u64) {
        if let Some(p) = &self.probe {
            p.store(bps, std::sync::atomic::Ordering::Relaxed);
        }
    }
    async fn next_feedback(&self) -> Option<Vec<crate::rtc::feedback::Feedback>> {
        OutTrack::next_feedback(self).await
    }
}
