//! How sessions hear from their peer connections: publisher tracks become fan-outs (and feed
//! the VAD), and a peer that fails or closes ends its session as if DELETEd.

use std::sync::{Arc, Weak};

use crate::media::TrackFanout;
use crate::rtc::{InTrackInfo, KeyframeRequester, PeerObserver, PeerState, RtpPacket, RtpSink};
use crate::sfu::{Participant, Room, SessionId, Sfu};
use crate::signal::MediaKind;

pub(crate) struct PublisherObserver {
    pub(crate) sfu: Weak<Sfu>,
    pub(crate) session: SessionId,
    pub(crate) room: Weak<Room>,
    pub(crate) participant: Arc<Participant>,
}

/// Feeds a publisher track's packets to its fan-out; removes the track when it ends.
struct TrackFeed {
    fanout: Arc<TrackFanout>,
    /// Audio tracks: the RFC 6464 extension id to read levels from.
    audio_level_id: Option<u8>,
    pub(crate) room: Weak<Room>,
    pub(crate) participant: Arc<Participant>,
}

impl RtpSink for TrackFeed {
    fn on_rtp(&self, pkt: RtpPacket) {
        if let Some(id) = self.audio_level_id
            && let Some(ext) = pkt.header.get_extension(id)
            && let (Some(&b), Some(room)) = (ext.first(), self.room.upgrade())
        {
            room.audio_level(&self.participant, std::time::Instant::now(), b & 0x7f);
        }
        self.fanout.forward(pkt);
    }

    fn on_end(&self) {
        if let Some(room) = self.room.upgrade() {
            room.remove_track(&self.participant, &self.fanout);
        }
    }
}

impl PeerObserver for PublisherObserver {
    fn on_state(&self, state: PeerState) {
        if matches!(state, PeerState::Failed | PeerState::Closed) {
            Sfu::end_later(&self.sfu, self.session, state);
        }
    }

    fn on_track(
        &self,
        info: InTrackInfo,
        keyframes: KeyframeRequester,
    ) -> Option<Arc<dyn RtpSink>> {
        let room = self.room.upgrade()?;
        tracing::info!(room = %room.id, participant = %self.participant.id, codec = %info.codec.mime_type, ssrc = info.ssrc, rid = ?info.rid, "track arrived");
        let kind = info.kind;
        let fanout = TrackFanout::new(
            info.kind,
            info.codec,
            info.rid,
            Box::new(move || keyframes.request()),
        );
        room.add_track(&self.participant, fanout.clone());
        let audio_level_id = match kind {
            MediaKind::Audio => *self
                .participant
                .audio_level_id
                .lock()
                .unwrap_or_else(|e| e.into_inner()),
            MediaKind::Video => None,
        };
        Some(Arc::new(TrackFeed {
            fanout,
            audio_level_id,
            room: self.room.clone(),
            participant: self.participant.clone(),
        }))
    }
}

pub(crate) struct ViewerObserver {
    pub(crate) sfu: Weak<Sfu>,
    pub(crate) session: SessionId,
    pub(crate) room: Weak<Room>,
}

impl PeerObserver for ViewerObserver {
    fn on_state(&self, state: PeerState) {
        match state {
            PeerState::Connected => {
                if let Some(room) = self.room.upgrade() {
                    room.viewer_connected(self.session);
                }
            }
            PeerState::Failed | PeerState::Closed => Sfu::end_later(&self.sfu, self.session, state),
            _ => {}
        }
    }

    fn on_track(&self, _: InTrackInfo, _: KeyframeRequester) -> Option<Arc<dyn RtpSink>> {
        None
    }
}
