//! A hostile publisher's knob for the test client ([`super::client::ClientPeer`]): once
//! switched on, every RTP packet the client sends leaves under one of `n` made-up SSRCs, after
//! everything else in the client has seen it under its real one, and before SRTP (so wisp gets
//! it authenticated, as it would from a peer that means harm). Real clients never do this; it
//! exists so the tests can show what wisp does with a publisher that does.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Instant;

use ::rtc::interceptor::{Interceptor, Packet, StreamInfo, TaggedPacket};
use ::rtc::sansio::Protocol;
use ::rtc::shared::error::Error;

/// How many SSRCs to scatter outgoing RTP over (0: off); shared with the client's owner.
pub type ScatterKnob = Arc<AtomicU32>;

/// The interceptor: wire-most on the client's chain.
#[derive(Default)]
pub struct SsrcScatter {
    knob: ScatterKnob,
    sent: u32,
    read: VecDeque<TaggedPacket>,
    write: VecDeque<TaggedPacket>,
}

impl SsrcScatter {
    pub fn new(knob: ScatterKnob) -> SsrcScatter {
        SsrcScatter {
            knob,
            ..SsrcScatter::default()
        }
    }
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for SsrcScatter {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = Error;
    type Time = Instant;

    fn handle_read(&mut self, msg: TaggedPacket) -> Result<(), Error> {
        self.read.push_back(msg);
        Ok(())
    }

    fn poll_read(&mut self) -> Option<TaggedPacket> {
        self.read.pop_front()
    }

    fn handle_write(&mut self, mut msg: TaggedPacket) -> Result<(), Error> {
        let n = self.knob.load(Ordering::Relaxed);
        if let (Packet::Rtp(p), true) = (&mut msg.message.packet, n > 0) {
            // 0x5c00_0000 + k: made up, and far from the random SSRCs the tracks use.
            p.header.ssrc = 0x5c00_0000 + self.sent % n;
            self.sent = self.sent.wrapping_add(1);
        }
        self.write.push_back(msg);
        Ok(())
    }

    fn poll_write(&mut self) -> Option<TaggedPacket> {
        self.write.pop_front()
    }
}

impl Interceptor for SsrcScatter {
    fn bind_local_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _info: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _info: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _info: &StreamInfo) {}
}
