//! What a driver drives: wisp's own transport ([`own`]), and until it starts an
//! `RTCPeerConnection` as the signalling model (it writes the answer or the counter-offer and
//! never sees a packet). Once the transport runs the model is dropped: an ICE restart is the
//! transport's alone, its answer is new credentials beside the sockets' candidates.

use std::time::Instant;

use ::rtc::peer_connection::RTCPeerConnection;
use ::rtc::shared::TaggedBytesMut;

use ::rtc::rtp_transceiver::RTCRtpSenderId;

use super::own::{IceSetup, OwnLeg};
use crate::rtc::PeerState;

/// A leg's core: `model` models the signalling until `own`, the transport, starts once both
/// descriptions are known.
pub(crate) struct LegCore {
    /// Boxed: it is most of the core's size (8.6 KB), and the driver's future holds the core.
    pub model: Option<Box<RTCPeerConnection>>,
    pub own: Option<OwnLeg>,
    /// The transport, waiting for both descriptions (a counter-offer's answer): until then
    /// nothing is read or sent.
    pub pending: Option<PendingOwn>,
}

/// What wisp's own transport starts from, besides what signalling agrees.
pub(crate) struct PendingOwn {
    pub setup: IceSetup,
    pub certificate: ::rtc::dtls::crypto::Certificate,
    pub feedback: Feedback,
}

/// Where the own leg's sender records what the viewer reports, and reads its probe rates
/// (without them the leg neither estimates nor probes).
pub(crate) struct Feedback {
    pub reports: std::sync::Arc<crate::rtc::feedback::ReportBook>,
    pub probes: Option<std::sync::Arc<crate::rtc::prober::ProbeBook>>,
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
        let model = self.model.as_mut().ok_or("no signalling model")?;
        let agreed = super::agreed::agreed(model, senders)?;
        let Some(p) = self.pending.take() else {
            return Ok(());
        };
        self.own = Some(OwnLeg::new(
            now,
            agreed,
            p.setup,
            p.certificate,
            p.feedback,
        )?);
        // Its descriptions, transceivers and media engine are tens of kilobytes per viewer
        // (more per m-line), and nothing reads them once the transport runs.
        self.model = None;
        Ok(())
    }

    /// One datagram from the network; false when it was refused.
    pub(super) fn handle_read(&mut self, msg: TaggedBytesMut) -> bool {
        match &mut self.own {
            Some(own) => own.handle_read(msg),
            // Early checks of a client still to answer: it sends them again.
            None => true,
        }
    }

    pub(super) fn write_rtp(&mut self, now: Instant, pkt: crate::rtc::repair::Outgoing) {
        if let Some(own) = &mut self.own {
            own.write_rtp(now, pkt);
        }
    }

    /// After a flush: the timed packets it sent count their forwarding delay.
    pub(super) fn forwarded(&mut self) {
        if let Some(own) = &mut self.own {
            own.forwarded();
        }
    }

    pub(super) fn poll_write(&mut self) -> Option<TaggedBytesMut> {
        self.own.as_mut()?.poll_write()
    }

    /// The next change of the connection's state.
    pub(super) fn poll_state(&mut self) -> Option<PeerState> {
        self.own.as_mut()?.poll_state()
    }

    /// The next compound RTCP packet from the client that the application acts on.
    pub(super) fn poll_rtcp(&mut self) -> Option<Vec<Box<dyn ::rtc::rtcp::Packet>>> {
        self.own.as_mut()?.poll_rtcp()
    }

    /// The transport's `(urgent, lazy)` deadlines (see `OwnLeg::poll_timeouts`).
    pub(super) fn poll_timeouts(&mut self) -> (Option<Instant>, Option<Instant>) {
        match &mut self.own {
            Some(own) => own.poll_timeouts(),
            None => (None, None),
        }
    }

    pub(super) fn handle_timeout(&mut self, now: Instant) {
        if let Some(own) = &mut self.own {
            own.handle_timeout(now);
        }
    }

    pub(super) fn close(&mut self, now: Instant) {
        if let Some(own) = &mut self.own {
            own.close(now);
        }
    }
}
