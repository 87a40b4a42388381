//! What a driver drives: the `rtc` core's `RTCPeerConnection`, or wisp's own transport
//! ([`own`]) with that connection kept as the signalling model. The driver calls the same
//! operations either way; signalling jobs get both and keep the two in step.

use std::time::Instant;

use ::rtc::peer_connection::RTCPeerConnection;
use ::rtc::peer_connection::event::RTCPeerConnectionEvent;
use ::rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use ::rtc::peer_connection::state::RTCPeerConnectionState;
use ::rtc::sansio::Protocol;
use ::rtc::shared::TaggedBytesMut;

use super::own::OwnLeg;
use crate::rtc::{PeerState, RtpPacket};

/// A leg's core. With `own`, `pc` only models the signalling and never sees a packet.
pub(crate) struct LegCore {
    pub pc: RTCPeerConnection,
    pub own: Option<OwnLeg>,
}

impl LegCore {
    /// One datagram from the network; false when it was refused.
    pub(super) fn handle_read(&mut self, msg: TaggedBytesMut) -> bool {
        match &mut self.own {
            Some(own) => own.handle_read(msg),
            None => self.pc.handle_read(msg).is_ok(),
        }
    }

    pub(super) fn write_rtp(&mut self, now: Instant, pkt: RtpPacket) {
        match &mut self.own {
            Some(own) => own.write_rtp(now, pkt),
            // The track id is not used on the write path; an empty one costs nothing.
            None => {
                let _ = self.pc.handle_write(TaggedRTCMessage {
                    now,
                    message: RTCMessage::RtpPacket(String::new(), pkt),
                });
            }
        }
    }

    pub(super) fn poll_write(&mut self) -> Option<TaggedBytesMut> {
        match &mut self.own {
            Some(own) => own.poll_write(),
            None => self.pc.poll_write(),
        }
    }

    /// The next change of the connection's state.
    pub(super) fn poll_state(&mut self) -> Option<PeerState> {
        if let Some(own) = &mut self.own {
            return own.poll_state();
        }
        while let Some(evt) = self.pc.poll_event() {
            if let RTCPeerConnectionEvent::OnConnectionStateChangeEvent(s) = evt {
                return Some(match s {
                    RTCPeerConnectionState::Connected => PeerState::Connected,
                    RTCPeerConnectionState::Disconnected => PeerState::Disconnected,
                    RTCPeerConnectionState::Failed => PeerState::Failed,
                    RTCPeerConnectionState::Closed => PeerState::Closed,
                    _ => continue,
                });
            }
        }
        None
    }

    /// The next compound RTCP packet from the client that the application acts on.
    pub(super) fn poll_rtcp(&mut self) -> Option<Vec<Box<dyn ::rtc::rtcp::Packet>>> {
        if let Some(own) = &mut self.own {
            return own.poll_rtcp();
        }
        while let Some(msg) = self.pc.poll_read() {
            if let RTCMessage::RtcpPacket(_, packets) = msg.message {
                return Some(packets);
            }
        }
        None
    }

    pub(super) fn poll_timeout(&mut self) -> Option<Instant> {
        match &mut self.own {
            Some(own) => own.poll_timeout(),
            None => self.pc.poll_timeout(),
        }
    }

    pub(super) fn handle_timeout(&mut self, now: Instant) {
        match &mut self.own {
            Some(own) => own.handle_timeout(now),
            None => {
                let _ = self.pc.handle_timeout(now);
            }
        }
    }

    pub(super) fn close(&mut self, now: Instant) {
        match &mut self.own {
            Some(own) => own.close(now),
            None => {
                let _ = self.pc.close();
            }
        }
    }
}
