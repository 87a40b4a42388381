//! Publisher reconnect. A publisher whose transport dies (ICE failed, the peer closed) keeps its
//! participant for `--reconnect-grace`: it is *parked*, and the room says nothing. A new WHIP
//! POST to the same room that proves it is the same publisher takes the participant over, parked
//! or still alive (a killed OBS or whipsink restarts long before its old session times out):
//! viewers keep their slots and get the new session's media, nobody sees it leave or join.
//! When the grace runs out, the room is told it left.
//!
//! The proof is either the resume secret the first 201 carried (`X-Wisp-Resume`, sent back as
//! that header or `?resume=`), or a token whose `name` claim named the participant (what a
//! client that only knows its URL and token can show). A DELETE is a real leave: nothing is
//! parked.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::lock::Locked;
use crate::sfu::room::{Participant, Room};
use crate::sfu::{ParticipantId, RoomId, Session, SessionKind};

/// How a POST shows it is a publisher coming back.
#[derive(Debug, Clone, Default)]
pub struct Resume {
    /// The `X-Wisp-Resume` secret of an earlier 201.
    pub secret: Option<String>,
    /// The display name was the token's `name` claim.
    pub named_by_token: bool,
}

impl Resume {
    fn proves(&self, p: &Participant, name: &str) -> bool {
        let by_secret = self.secret.as_deref().is_some_and(|s| {
            s.len() == p.resume.len()
                && s.bytes()
                    .zip(p.resume.bytes())
                    .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                    == 0
        });
        by_secret || (self.named_by_token && p.named_by_token && p.name == name)
    }
}

/// A participant whose transport died, waiting for its publisher to come back.
struct Parked {
    room: Arc<Room>,
    participant: Arc<Participant>,
}

/// The parked participants of the server.
#[derive(Default)]
pub(crate) struct Lot(Mutex<HashMap<ParticipantId, Parked>>);

impl Lot {
    pub(crate) fn park(&self, room: Arc<Room>, participant: Arc<Participant>) {
        self.0
            .locked()
            .insert(participant.id.clone(), Parked { room, participant });
    }

    /// The parked participant of `room` that `resume` proves, left parked.
    pub(crate) fn find(
        &self,
        room: &RoomId,
        name: &str,
        resume: &Resume,
    ) -> Option<Arc<Participant>> {
        self.0
            .locked()
            .values()
            .find(|p| &p.room.id == room && resume.proves(&p.participant, name))
            .map(|p| p.participant.clone())
    }

    /// Takes `id` out to resume it; false if it is no longer parked.
    pub(crate) fn take(&self, id: &ParticipantId) -> bool {
        self.0.locked().remove(id).is_some()
    }

    /// Takes `id` out when the grace of its dead `session` ran out; `None` if it was resumed
    /// meanwhile (and perhaps parked again by a later session, whose own grace then counts).
    pub(crate) fn expire(
        &self,
        id: &ParticipantId,
        session: crate::sfu::SessionId,
    ) -> Option<Arc<Room>> {
        let mut lot = self.0.locked();
        match lot.get(id) {
            Some(p) if p.participant.session == session => lot.remove(id).map(|p| p.room),
            _ => None,
        }
    }

    /// Whether a participant of `room` is parked (the room must stay).
    pub(crate) fn holds(&self, room: &Arc<Room>) -> bool {
        self.0.locked().values().any(|p| Arc::ptr_eq(&p.room, room))
    }
}

/// The live publisher session in `room` that `resume` proves (a publisher back before its
/// old transport has even failed).
pub(crate) fn live_match<'a>(
    sessions: impl Iterator<Item = &'a Arc<Session>>,
    room: &RoomId,
    name: &str,
    resume: &Resume,
) -> Option<Arc<Session>> {
    sessions
        .filter(|s| &s.room.id == room)
        .find(|s| matches!(&s.kind, SessionKind::Publisher(p) if resume.proves(p, name)))
        .cloned()
}

/// The default `--reconnect-grace`.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(10);

impl super::Sfu {
    /// The participant of `room` that a POST with `resume` takes over: a live publisher's
    /// (back before its old transport failed) or a parked one.
    pub(super) fn coming_back(
        &self,
        room: &RoomId,
        name: &str,
        resume: &Resume,
    ) -> Option<Arc<Participant>> {
        if resume.secret.is_none() && !resume.named_by_token {
            return None;
        }
        let live = live_match(self.sessions().values(), room, name, resume);
        match live.as_ref().map(|s| &s.kind) {
            Some(SessionKind::Publisher(p)) => Some(p.clone()),
            _ => self.parked.find(room, name, resume),
        }
    }

    /// Ends `old`'s session quietly (no `left`) or takes it off the lot; false if it is gone
    /// by now (its grace ran out): the new session then joins as itself.
    pub(super) fn take_over(&self, old: &Participant) -> bool {
        let live = self.sessions().remove(&old.session);
        match live {
            Some(s) => {
                tracing::info!(room = %s.room.id, session = %s.id, participant = %old.id, "taken over by the publisher's new session");
                tokio::spawn(async move { s.peer.close().await });
                true
            }
            None => self.parked.take(&old.id),
        }
    }
}
