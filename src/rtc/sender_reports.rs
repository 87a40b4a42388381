//! Hands publishers' RTCP sender reports to the application: each ties a stream's RTP clock to
//! the sender's wall clock (RFC 3550 §6.4.1), which is what puts a publisher's audio and video
//! on one timeline in a recording or an HLS stream (`container::timeline`). The `rtc` core
//! stops inbound RTCP at the end of its chain unless something vouches for it, so this marks
//! compound packets that carry a sender report; the rest of the chain is untouched.

use std::collections::VecDeque;
use std::time::Instant;

use ::rtc::interceptor::{Attribute, Interceptor, Packet, StreamInfo, TaggedPacket};
use ::rtc::rtcp::sender_report::SenderReport;
use ::rtc::sansio::Protocol;
use ::rtc::shared::error::Error;

/// The interceptor, one per publisher leg.
#[derive(Default)]
pub struct SenderReportTap {
    read: VecDeque<TaggedPacket>,
    write: VecDeque<TaggedPacket>,
}

/// The (NTP timestamp, RTP timestamp) of each sender report in `packets`, by SSRC.
pub fn sender_reports(packets: &[Box<dyn ::rtc::rtcp::Packet>]) -> Vec<(u32, u64, u32)> {
    packets
        .iter()
        .filter_map(|p| p.as_any().downcast_ref::<SenderReport>())
        .map(|sr| (sr.ssrc, sr.ntp_time, sr.rtp_time))
        .collect()
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for SenderReportTap {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Error> {
        if let Packet::Rtcp(packets) = &msg.message.packet
            && packets.iter().any(|p| p.as_any().is::<SenderReport>())
        {
            msg.message.add(Attribute::DeliverToApplication);
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

impl Interceptor for SenderReportTap {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}
