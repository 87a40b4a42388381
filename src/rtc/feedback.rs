//! An interceptor that hands a viewer's keyframe requests (PLI, FIR) and bandwidth estimates
//! (REMB) to the application: requests are forwarded to the publisher, estimates pick
//! simulcast layers. Every other inbound RTCP stays with the library's
//! interceptors (NACK responder, reports), as the webrtc crate's rtcp-processing example shows.

use std::collections::VecDeque;
use std::time::Instant;

use ::rtc::interceptor::{Attribute, Interceptor, Packet, StreamInfo, TaggedPacket};
use ::rtc::rtcp::payload_feedbacks::full_intra_request::FullIntraRequest;
use ::rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use ::rtc::rtcp::payload_feedbacks::receiver_estimated_maximum_bitrate::ReceiverEstimatedMaximumBitrate;
use ::rtc::sansio::Protocol;
use ::rtc::shared::error::Error;

/// What a viewer's RTCP tells the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feedback {
    KeyframeRequest,
    /// The receiver's bandwidth estimate for the whole connection (REMB), bit/s.
    Estimate(u64),
}

/// Reads the feedback out of RTCP packets delivered to the application.
pub fn feedback(packets: &[Box<dyn ::rtc::rtcp::Packet>]) -> Vec<Feedback> {
    packets
        .iter()
        .filter_map(|p| {
            if is_keyframe_request(p.as_ref()) {
                Some(Feedback::KeyframeRequest)
            } else {
                estimate(p.as_ref()).map(Feedback::Estimate)
            }
        })
        .collect()
}

#[derive(Default)]
pub struct KeyframeRequestTap {
    read: VecDeque<TaggedPacket>,
    write: VecDeque<TaggedPacket>,
}

fn is_keyframe_request(p: &dyn ::rtc::rtcp::Packet) -> bool {
    let any = p.as_any();
    any.is::<PictureLossIndication>() || any.is::<FullIntraRequest>()
}

/// The bitrate of a REMB, if `p` is one.
pub fn estimate(p: &dyn ::rtc::rtcp::Packet) -> Option<u64> {
    p.as_any()
        .downcast_ref::<ReceiverEstimatedMaximumBitrate>()
        .map(|r| r.bitrate.max(0.0) as u64)
}

fn wanted(p: &dyn ::rtc::rtcp::Packet) -> bool {
    is_keyframe_request(p) || estimate(p).is_some()
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for KeyframeRequestTap {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

    fn handle_read(&mut self, mut msg: TaggedPacket) -> Result<(), Error> {
        if let Packet::Rtcp(packets) = &msg.message.packet {
            let wanted: Vec<Box<dyn ::rtc::rtcp::Packet>> = packets
                .iter()
                .filter(|p| wanted(p.as_ref()))
                .cloned()
                .collect();
            if wanted.is_empty() {
                return Ok(());
            }
            msg.message.packet = Packet::Rtcp(wanted);
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

impl Interceptor for KeyframeRequestTap {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}
