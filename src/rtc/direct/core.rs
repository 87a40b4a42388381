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

use ::rtc::rtp_transceiver::RTCRtpSenderId;

use super::own::{IceSetup, OwnLeg};
use crate::rtc::{PeerState, RtpPacket};

/// A leg's core. With `own`, `pc` only models the signalling and never sees a packet.
pub(crate) struct LegCore {
    pub pc: RTCPeerConnection,
    pub own: Option<OwnLeg>,
    /// wisp's own transport, waiting for both descriptions (a counter-offer's answer): until
    /// then nothing is read or sent.
    pub pending: Option<PendingOwn>,
}

/// What wisp's own transport starts from, besides what signalling agrees.
pub(crate) struct PendingOwn {
    pub setup: IceSetup,
    pub certificate: ::rtc::dtls::crypto::Certificate,
    pub chain: Box<dyn ::rtc::interceptor::Interceptor>,
}

impl LegCore {
    /// Starts wisp's own transport, if it is waiting, from what `pc` agreed for `senders`.
    pub(crate) fn start_own(
        &mut self,
        now: Instant,
        senders: &[(Option<RTCRtpSenderId>, String)],
    ) -> Result<(), String> {
        if self.pending.is_none() {
            return Ok(());
        }
        // What fails here leaves it waiting: the client may answer again.
        let agreed = super::agreed::agreed(&mut self.pc, senders)?;
        let Some(p) = self.pending.take() else {
            return Ok(());
        };
        self.own = Some(OwnLeg::new(now, agreed, p.setup, p.certificate, p.chain)?);
        Ok(())
    }

    /// One datagram from the network; false when it was refused.
    pub(super) fn handle_read(&mut self, msg: TaggedBytesMut) -> bool {
        match &mut self.own {
            Some(own) => own.handle_read(msg),
            // Early checks of a client still to answer: it sends them again.
            None if self.pending.is_some() => true,
            None => self.pc.handle_read(msg).is_ok(),
        }
    }

    pub(super) fn write_rtp(&mut self, now: Instant, pkt: RtpPacket) {
        match &mut self.own {
            Some(own) => own.write_rtp(now, pkt),
            None if self.pending.is_some() => {}
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
            None if self.pending.is_some() => None,
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
            None if self.pending.is_some() => None,
            None => self.pc.poll_timeout(),
        }
    }

    pub(super) fn handle_timeout(&mut self, now: Instant) {
        match &mut self.own {
            Some(own) => own.handle_timeout(now),
            None if self.pending.is_some() => {}
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
