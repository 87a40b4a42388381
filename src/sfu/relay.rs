//! Mirrors (cluster mode's cascade): another node's publisher shown in this node's room, fed
//! by one upstream WHEP leg that wisp itself offers. The cascade (`cluster::cascade`) carries
//! the offer and answer over HTTP; here the leg is built and, once answered, becomes a
//! publisher session of the room like any other, so this node's viewers get slots, the
//! keyframe cache and layer choice exactly as on the origin.

use std::sync::{Arc, Mutex};

use crate::error::Result;
use crate::rtc::RtcPeer;
use crate::sfu::observers::PublisherObserver;
use crate::sfu::room::Command;
use crate::sfu::session::{Reservation, new_version};
use crate::sfu::{Participant, Room, RoomId, Session, SessionId, SessionKind, Sfu};
use crate::signal::{self, MediaKind};

/// An upstream leg whose offer is on its way to the origin.
pub struct PendingMirror {
    id: SessionId,
    room: Arc<Room>,
    participant: Arc<Participant>,
    peer: RtcPeer,
    observer: Arc<PublisherObserver>,
}

impl PendingMirror {
    /// The session the mirror will be.
    pub fn session(&self) -> SessionId {
        self.id
    }
}

impl Sfu {
    /// Publishers of `room` on this node (a cascade's mirrors not counted).
    pub fn publishers_in(&self, room: &RoomId) -> usize {
        self.sessions()
            .values()
            .filter(|s| s.room.id == *room)
            .filter(|s| matches!(&s.kind, SessionKind::Publisher(p) if !p.mirror))
            .count()
    }

    /// Builds one upstream leg of the mirror of `participant` (another node's publisher, as
    /// that node names it; see [`Participant::mirror`]) in `room_id`, receiving `kinds`, its
    /// video as simulcast `layer` when the leg is pinned to one: returns it with the offer to
    /// POST to the origin's `/whep/{room}/{participant}`. `session` is the leg's id (the
    /// participant's own for its first leg).
    pub async fn mirror_offer(
        &self,
        room_id: &RoomId,
        participant: &Arc<Participant>,
        session: SessionId,
        kinds: &[MediaKind],
        layer: Option<String>,
    ) -> Result<(PendingMirror, String)> {
        let id = session;
        let room = self.room_or_create(room_id);
        let mut observer = self.publisher_observer(id, &room, participant);
        if let Some(o) = Arc::get_mut(&mut observer) {
            o.layer = layer;
        }
        let (peer, offer) = match self
            .rtc
            .upstream(room_id.as_str(), kinds, observer.clone())
            .await
        {
            Ok(x) => x,
            Err(e) => {
                self.drop_room_if_empty(&room);
                return Err(e);
            }
        };
        Ok((
            PendingMirror {
                id,
                room,
                participant: participant.clone(),
                peer,
                observer,
            },
            offer,
        ))
    }

    /// Joins the mirror to its room as a publisher, then applies the origin's answer. In that
    /// order: the answer lets media flow at once (the origin sends as soon as DTLS is up), and
    /// a track that reached the room before its publisher had joined would be dropped, so a
    /// player on this node would never get it.
    pub async fn mirror_start(&self, m: PendingMirror, answer: &str) -> Result<SessionId> {
        let slot = match Reservation::take(self, &m.room.id) {
            Ok(slot) => slot,
            Err(e) => {
                self.mirror_abandon(m).await;
                return Err(e);
            }
        };
        if let Some(ext) =
            signal::offer::extmap_id(answer, MediaKind::Audio, crate::rtc::AUDIO_LEVEL_URI)
        {
            let _ = m.observer.audio_level_id.set(ext);
        }
        // A mirror pulled as several layers joins once, with its first leg.
        let first = !self
            .sessions()
            .values()
            .any(|s| matches!(&s.kind, SessionKind::Publisher(p) if p.id == m.participant.id));
        let session = Arc::new(Session {
            id: m.id,
            room: m.room.clone(),
            kind: SessionKind::Publisher(m.participant.clone()),
            peer: m.peer,
            started: std::time::Instant::now(),
            version: Mutex::new(new_version()),
            awaiting_answer: false.into(),
        });
        self.sessions().insert(m.id, session.clone());
        drop(slot);
        if first {
            m.room
                .send(Command::PublisherJoined {
                    participant: m.participant.clone(),
                    expected: signal::offer::first_codecs(answer),
                })
                .await;
        }
        if let Err(e) = session.peer.accept_answer(answer).await {
            // Leaves as any publisher session does (its participant too, if this was its
            // only leg), and closes the leg.
            let _ = self.remove(m.id).await;
            return Err(e);
        }
        tracing::info!(room = %m.room.id, session = %m.id, participant = %m.participant.id, "mirror joined");
        Ok(m.id)
    }

    /// Drops a pending mirror whose offer the origin refused.
    pub async fn mirror_abandon(&self, m: PendingMirror) {
        m.peer.close().await;
        self.drop_room_if_empty(&m.room);
    }
}
