//! Counts the RTP a publisher sends under an SSRC that is none of its streams', and its RTCP
//! about streams that do not exist: sender reports and BYEs from unknown sources, and NACK,
//! PLI or FIR (a publisher leg sends no media, so such feedback is about nothing)
//! ([`UNKNOWN_SSRC`], `wisp_dropped_packets_total{reason="unknown_ssrc"}`). The `rtc` core binds
//! a stream (declared SSRC, the single-section shortcut, or mid/rid) before its first packet
//! enters the interceptors, so a packet that reaches here unbound is one the core then drops:
//! a thousand made-up SSRCs cost a lookup each and leave no state behind. Read-only: the packet
//! goes on as it came.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use ::rtc::interceptor::{Interceptor, Packet, StreamInfo, TaggedPacket};
use ::rtc::sansio::Protocol;
use ::rtc::shared::error::Error;

/// Publisher RTP under no stream's SSRC, and RTCP packets about none, since start.
pub static UNKNOWN_SSRC: AtomicU64 = AtomicU64::new(0);

/// The interceptor, one per publisher leg.
#[derive(Default)]
pub struct StrangerCount {
    /// The bound streams' SSRCs, their RTX and FEC SSRCs included (a handful).
    known: Vec<u32>,
    read: VecDeque<TaggedPacket>,
    write: VecDeque<TaggedPacket>,
}

impl StrangerCount {
    /// An RTCP packet from or about no stream of this publisher's.
    fn about_nothing(&self, p: &dyn ::rtc::rtcp::Packet) -> bool {
        use ::rtc::rtcp::goodbye::Goodbye;
        use ::rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
        use ::rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
        use ::rtc::rtcp::sender_report::SenderReport;
        use ::rtc::rtcp::transport_feedbacks::transport_layer_nack::TransportLayerNack;
        let any = p.as_any();
        if let Some(sr) = any.downcast_ref::<SenderReport>() {
            !self.known.contains(&sr.ssrc)
        } else if let Some(bye) = any.downcast_ref::<Goodbye>() {
            bye.sources.iter().any(|s| !self.known.contains(s))
        } else {
            any.is::<TransportLayerNack>()
                || any.is::<PictureLossIndication>()
                || any.is::<FullIntraRequest>()
        }
    }
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for StrangerCount {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

    fn handle_read(&mut self, msg: TaggedPacket) -> Result<(), Error> {
        let strangers = match &msg.message.packet {
            Packet::Rtp(p) => u64::from(!self.known.contains(&p.header.ssrc)),
            Packet::Rtcp(packets) => packets
                .iter()
                .filter(|p| self.about_nothing(p.as_ref()))
                .count() as u64,
            _ => 0,
        };
        if strangers > 0 {
            UNKNOWN_SSRC.fetch_add(strangers, Ordering::Relaxed);
        }
        self.read.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<TaggedPacket> {
        self.read.pop_front()
    }

    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Error> {
        self.write.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<TaggedPacket> {
        self.write.pop_front()
    }
}

impl Interceptor for StrangerCount {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}

    fn bind_remote_stream(&mut self, info: &StreamInfo) {
        for ssrc in [Some(info.ssrc), info.ssrc_rtx, info.ssrc_fec]
            .into_iter()
            .flatten()
        {
            if !self.known.contains(&ssrc) {
                self.known.push(ssrc);
            }
        }
    }

    fn unbind_remote_stream(&mut self, info: &StreamInfo) {
        self.known
            .retain(|s| ![Some(info.ssrc), info.ssrc_rtx, info.ssrc_fec].contains(&Some(*s)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::rtc::interceptor::AttributedPacket;

    fn rtp(ssrc: u32) -> TaggedPacket {
        let mut p = ::rtc::rtp::packet::Packet::default();
        p.header.ssrc = ssrc;
        TaggedPacket {
            now: Instant::now(),
            transport: Default::default(),
            message: AttributedPacket::new(Packet::Rtp(p)),
        }
    }

    #[test]
    fn counts_only_packets_of_no_bound_stream_and_passes_all() {
        let mut c = StrangerCount::default();
        c.bind_remote_stream(&StreamInfo {
            ssrc: 10,
            ssrc_rtx: Some(11),
            ..Default::default()
        });
        let before = UNKNOWN_SSRC.load(Ordering::Relaxed);
        for ssrc in [10, 11, 12, 10, 13] {
            c.handle_read(rtp(ssrc)).unwrap();
        }
        assert!(UNKNOWN_SSRC.load(Ordering::Relaxed) >= before + 2);
        assert_eq!(std::iter::from_fn(|| c.poll_read()).count(), 5);
        c.unbind_remote_stream(&StreamInfo {
            ssrc: 10,
            ssrc_rtx: Some(11),
            ..Default::default()
        });
        assert!(c.known.is_empty());
    }
}
