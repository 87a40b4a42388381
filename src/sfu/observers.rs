//! How sessions hear from their peer connections: a publisher's tracks become fan-outs (with
//! a voice detector for audio) that the room task is told about, a viewer's transport coming
//! up is passed on, and a peer that fails or closes ends its session as if DELETEd.

use std::sync::{Arc, OnceLock, Weak};

use crate::media::TrackFanout;
use crate::media::input::{TrackInput, VoiceInput};
use crate::media::vad::VadConfig;
use crate::rtc::{InTrackInfo, KeyframeRequester, PeerObserver, PeerState, RtpSink};
use crate::sfu::room::Command;
use crate::sfu::{Participant, ParticipantId, Room, SessionId, Sfu};
use crate::signal::MediaKind;

impl Sfu {
    /// How session `id`'s publisher leg tells `room` about `participant`'s tracks.
    pub(crate) fn publisher_observer(
        &self,
        id: SessionId,
        room: &Arc<Room>,
        participant: &Participant,
    ) -> Arc<PublisherObserver> {
        Arc::new(PublisherObserver {
            sfu: self.me.clone(),
            session: id,
            room: Arc::downgrade(room),
            participant: participant.id.clone(),
            audio_level_id: Default::default(),
            vad: self.limits.vad,
            layer: None,
        })
    }
}

pub(crate) struct PublisherObserver {
    pub(crate) sfu: Weak<Sfu>,
    pub(crate) session: SessionId,
    pub(crate) room: Weak<Room>,
    pub(crate) participant: ParticipantId,
    /// The negotiated RFC 6464 audio-level extension id, known once the answer is made.
    pub(crate) audio_level_id: OnceLock<u8>,
    pub(crate) vad: VadConfig,
    /// A cascade's upstream leg pinned to one simulcast layer of the origin's publisher: its
    /// video arrives as a plain stream and is this layer here.
    pub(crate) layer: Option<String>,
}

impl PeerObserver for PublisherObserver {
    fn on_state(&self, state: PeerState) {
        if matches!(state, PeerState::Failed | PeerState::Closed) {
            end_later(&self.sfu, self.session, state);
        }
    }

    fn on_track(
        &self,
        info: InTrackInfo,
        keyframes: KeyframeRequester,
    ) -> Option<Arc<dyn RtpSink>> {
        let room = self.room.upgrade()?;
        tracing::info!(room = %room.id, participant = %self.participant, codec = %info.codec.mime_type, ssrc = info.ssrc, rid = ?info.rid, "track arrived");
        let kind = info.kind;
        let rid = match (kind, &self.layer) {
            (MediaKind::Video, Some(layer)) => Some(layer.clone()),
            _ => info.rid,
        };
        let fanout = TrackFanout::new(
            info.kind,
            info.codec,
            rid,
            Box::new(move || keyframes.request()),
        );
        room.send_now(Command::TrackAdded {
            publisher: self.participant.clone(),
            fanout: fanout.clone(),
        });
        let voice = match (kind, self.audio_level_id.get()) {
            (MediaKind::Audio, Some(&id)) => {
                let (room, publisher) = (self.room.clone(), self.participant.clone());
                Some(VoiceInput::new(
                    id,
                    self.vad,
                    Box::new(move |v| {
                        if let Some(room) = room.upgrade() {
                            room.offer(Command::Voice {
                                publisher: publisher.clone(),
                                speaking: v.speaking,
                                loudness: v.loudness,
                            });
                        }
                    }),
                ))
            }
            _ => None,
        };
        let ended = {
            let (room, publisher, fanout) =
                (self.room.clone(), self.participant.clone(), fanout.clone());
            Box::new(move || {
                if let Some(room) = room.upgrade() {
                    room.send_now(Command::TrackEnded {
                        publisher: publisher.clone(),
                        fanout: fanout.clone(),
                    });
                }
            })
        };
        Some(Arc::new(TrackInput {
            fanout,
            voice,
            ended,
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
                    room.send_now(Command::ViewerConnected(self.session));
                }
            }
            PeerState::Failed | PeerState::Closed => end_later(&self.sfu, self.session, state),
            _ => {}
        }
    }

    fn on_track(&self, _: InTrackInfo, _: KeyframeRequester) -> Option<Arc<dyn RtpSink>> {
        None
    }
}

/// A peer failed or closed on its own: end the session (a publisher's participant waits for
/// the reconnect grace).
fn end_later(sfu: &Weak<Sfu>, id: SessionId, why: PeerState) {
    if let Some(sfu) = sfu.upgrade() {
        tokio::spawn(async move {
            if sfu.end_by_transport(id).await.is_ok() {
                tracing::info!(session = %id, ?why, "session ended by its transport");
            }
        });
    }
}
