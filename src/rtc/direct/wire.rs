//! The viewer leg's way out (`own`): each RTP packet written once into a scratch buffer and
//! SRTP-protected into its datagram, RTCP compounds likewise, queued for the driver's flush
//! on the selected pair.

use std::collections::VecDeque;
use std::time::Instant;

use ::rtc::shared::marshal::{Marshal, MarshalSize};
use ::rtc::shared::{TaggedBytesMut, TransportContext, TransportMessage};
use ::rtc::srtp::context::Context;
use bytes::BytesMut;

use super::sender::Rtcp;
use crate::rtc::RtpPacket;

/// What leaves: datagrams for the driver's flush, SRTP-protected for the selected pair.
pub(super) struct Wire {
    pub srtp: Option<Context>,
    /// The selected pair, as datagrams to it are tagged.
    pub path: Option<TransportContext>,
    pub out: VecDeque<TaggedBytesMut>,
    /// The buffer each RTP packet is marshalled into before SRTP.
    pub scratch: Vec<u8>,
}

impl Wire {
    pub fn push(&mut self, now: Instant, path: TransportContext, message: BytesMut) {
        self.out.push_back(TransportMessage {
            now,
            transport: path,
            message,
        });
    }

    /// One RTP packet: written once into the scratch buffer, encrypted into the datagram.
    pub fn rtp(&mut self, now: Instant, rtp: &RtpPacket) {
        let (Some(path), Some(ctx)) = (self.path, self.srtp.as_mut()) else {
            return;
        };
        let n = rtp.marshal_size();
        if n > self.scratch.len() {
            self.scratch.resize(n, 0);
        }
        let Ok(n) = rtp.marshal_to(&mut self.scratch) else {
            return;
        };
        if let Ok(data) = ctx.encrypt_rtp_with_header(&self.scratch[..n], &rtp.header) {
            self.push(now, path, data);
        }
    }

    /// One compound RTCP packet (the sender's reports).
    pub fn rtcp(&mut self, now: Instant, packets: &Rtcp) {
        let (Some(path), Some(ctx)) = (self.path, self.srtp.as_mut()) else {
            return;
        };
        let Ok(plain) = ::rtc::rtcp::packet::marshal(packets) else {
            return;
        };
        if let Ok(data) = ctx.encrypt_rtcp(&plain) {
            self.push(now, path, data);
        }
    }
}
