//! Rooms, sessions and participants: the signalling state of the server. No HTTP types here;
//! `http/` calls these operations and maps their errors.

pub mod admin;
pub mod events;
pub mod ids;
pub mod layers;
mod members;
mod observers;
pub mod plan;
mod relay;
mod resume;
pub mod room;
mod session;
pub mod slots;
mod social;
mod tap;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::lock::Locked;
use crate::media::SlotSink;
use crate::rtc::RtcEngine;
use crate::signal::{self, MediaKind, Role};
pub use ids::{ParticipantId, RoomId, SessionId};
use observers::ViewerObserver;
pub use plan::ViewerState;
pub use relay::PendingMirror;
pub use resume::{DEFAULT_GRACE, Resume};
use room::Command;
pub use room::{Participant, ROOM_TICK, Room, Viewer};
pub use session::{
    COUNTER_OFFER_VALIDITY, CounterOffer, Created, Limits, Patched, Precondition, Session,
    SessionKind,
};
use session::{Reservation, new_version};
pub use tap::{Tap, Tapped};

/// Notices a slow server-wide listener may fall behind by.
pub const NOTICE_BACKLOG: usize = 1024;

/// The server's signalling state.
pub struct Sfu {
    rtc: RtcEngine,
    limits: Limits,
    rooms: Mutex<HashMap<RoomId, Arc<Room>>>,
    sessions: Mutex<HashMap<SessionId, Arc<Session>>>,
    /// Sessions being set up (counted against the limit before their peer exists).
    pending: std::sync::atomic::AtomicUsize,
    /// The same, by room.
    pending_rooms: Mutex<HashMap<RoomId, usize>>,
    /// Set by [`Sfu::drain`]: no new sessions.
    draining: std::sync::atomic::AtomicBool,
    /// Woken whenever a session ends (drain waits on it).
    ended: tokio::sync::Notify,
    /// Publishers whose transport died, kept for the reconnect grace (see `resume`).
    parked: resume::Lot,
    /// What rooms tell server-wide listeners (webhooks).
    notices: tokio::sync::broadcast::Sender<events::Notice>,
    me: Weak<Sfu>,
}

impl Sfu {
    /// The peer-connection factory (ports, shared sockets, certificate).
    pub fn engine(&self) -> &RtcEngine {
        &self.rtc
    }

    pub fn new(rtc: RtcEngine, limits: Limits) -> Arc<Sfu> {
        Arc::new_cyclic(|me| Sfu {
            rtc,
            limits,
            rooms: Mutex::new(HashMap::new()),
            sessions: Mutex::new(HashMap::new()),
            pending: Default::default(),
            pending_rooms: Default::default(),
            draining: Default::default(),
            ended: Default::default(),
            parked: Default::default(),
            notices: tokio::sync::broadcast::channel(NOTICE_BACKLOG).0,
            me: me.clone(),
        })
    }

    /// Every room's membership and sending changes, and rooms ending (for webhooks). A
    /// listener that falls [`NOTICE_BACKLOG`] behind loses the oldest.
    pub fn notices(&self) -> tokio::sync::broadcast::Receiver<events::Notice> {
        self.notices.subscribe()
    }

    pub fn rtc(&self) -> &RtcEngine {
        &self.rtc
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<SessionId, Arc<Session>>> {
        self.sessions.locked()
    }

    fn rooms(&self) -> std::sync::MutexGuard<'_, HashMap<RoomId, Arc<Room>>> {
        self.rooms.locked()
    }

    pub fn session(&self, id: SessionId) -> Option<Arc<Session>> {
        self.sessions().get(&id).cloned()
    }

    /// Sessions by kind: (publishers, viewers).
    pub fn session_counts(&self) -> (usize, usize) {
        let sessions = self.sessions();
        let publishers = sessions
            .values()
            .filter(|s| matches!(s.kind, SessionKind::Publisher(_)))
            .count();
        (publishers, sessions.len() - publishers)
    }

    /// Every room now.
    pub fn rooms_now(&self) -> Vec<Arc<Room>> {
        self.rooms().values().cloned().collect()
    }

    pub fn session_count(&self) -> usize {
        self.sessions().len()
    }

    pub fn room(&self, id: &RoomId) -> Option<Arc<Room>> {
        self.rooms().get(id).cloned()
    }

    /// The room, created on first use with its task.
    pub fn room_or_create(&self, id: &RoomId) -> Arc<Room> {
        let vad = self.limits.vad;
        // A publisher whose voice reports stop is silent after the intervals the detector
        // needs to turn off, plus one.
        let cfg = plan::PlanConfig {
            voice_timeout: vad.interval * (vad.off_after + 1),
            ..Default::default()
        };
        self.rooms()
            .entry(id.clone())
            .or_insert_with(|| Room::spawn(id.clone(), cfg, self.notices.clone()))
            .clone()
    }

    /// Whether `room` may open one more event stream (`--max-event-streams-per-room`).
    pub fn event_stream_allowed(&self, room: &Room) -> Result<()> {
        if room.event_consumers() >= self.limits.max_event_streams_per_room {
            return Err(Error::Unavailable {
                what: "event streams for this room",
                retry_after: Duration::from_secs(5),
            });
        }
        Ok(())
    }

    /// WHIP: a new publisher in `room_id`, or one coming back (`resume`) to take over its
    /// participant.
    pub async fn publish(
        &self,
        room_id: &RoomId,
        name: Option<String>,
        resume: &Resume,
        offer: &str,
        screen_of: Option<SessionId>,
    ) -> Result<Created> {
        let owner = self.screen_owner(room_id, screen_of)?;
        let summary = signal::offer::parse_offer(offer, Role::Publish)?;
        let _slot = Reservation::take(self, room_id)?;
        let id = SessionId::new();
        let name = name
            .map(|n| {
                n.chars()
                    .filter(|c| !c.is_control())
                    .take(64)
                    .collect::<String>()
            })
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| "guest".into());
        let room = self.room_or_create(room_id);
        // A screen share is a participant of its own, never a resumed one.
        let back = owner
            .is_none()
            .then(|| self.coming_back(room_id, &name, resume))
            .flatten();
        let participant = match (&back, owner) {
            (Some(old), _) => old.resumed(id),
            (None, Some(owner)) => Participant::screen(name, id, owner),
            (None, None) => Participant::new(name, id, resume.named_by_token),
        };
        let observer = self.publisher_observer(id, &room, &participant);
        let (peer, answer) = match self
            .rtc
            .publish(room_id.as_str(), offer, &summary, observer.clone())
            .await
        {
            Ok(x) => x,
            Err(e) => {
                self.drop_room_if_empty(&room);
                return Err(e);
            }
        };
        if let Some(ext) =
            signal::offer::extmap_id(&answer, MediaKind::Audio, crate::rtc::AUDIO_LEVEL_URI)
        {
            let _ = observer.audio_level_id.set(ext);
        }
        let version = new_version();
        let session = Arc::new(Session {
            id,
            room: room.clone(),
            kind: SessionKind::Publisher(participant.clone()),
            peer,
            started: std::time::Instant::now(),
            version: Mutex::new(version.clone()),
            awaiting_answer: false.into(),
        });
        self.sessions().insert(id, session);
        // Queued before the 201 leaves, so it precedes any of the publisher's tracks.
        if back.is_some_and(|old| self.take_over(&old)) {
            room.send(Command::PublisherResumed(participant.id.clone()))
                .await;
            tracing::info!(room = %room_id, session = %id, participant = %participant.id, "publisher came back");
        } else {
            room.send(Command::PublisherJoined {
                participant: participant.clone(),
                expected: signal::offer::first_codecs(&answer),
            })
            .await;
            tracing::info!(room = %room_id, session = %id, participant = %participant.id, "publisher joined");
        }
        Ok(Created {
            session: id,
            participant: Some(participant.id.clone()),
            resume: Some(participant.resume.clone()),
            answer,
            version,
            counter_offer: None,
        })
    }

    /// A session's transport failed or closed on its own. A publisher is parked for the
    /// reconnect grace (see `resume`); everything else ends as if DELETEd.
    pub async fn end_by_transport(&self, id: SessionId) -> Result<()> {
        let grace = self.limits.reconnect_grace;
        let session = self.session(id).ok_or(Error::NotFound)?;
        let SessionKind::Publisher(p) = &session.kind else {
            return self.remove(id).await;
        };
        if p.mirror {
            return self.remove(id).await;
        }
        if grace.is_zero() || self.sessions().remove(&id).is_none() {
            return self.remove(id).await;
        }
        self.parked.park(session.room.clone(), p.clone());
        session.peer.close().await;
        self.ended.notify_waiters();
        tracing::info!(room = %session.room.id, session = %id, participant = %p.id, grace_s = grace.as_secs(), "publisher's transport ended; its participant waits for it");
        let (me, pid) = (self.me.clone(), p.id.clone());
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            let Some(sfu) = me.upgrade() else { return };
            if let Some(room) = sfu.parked.expire(&pid, id) {
                room.send(Command::PublisherLeft(pid.clone())).await;
                tracing::info!(room = %room.id, participant = %pid, "publisher did not come back: left");
                sfu.end_screens_of(&pid);
                sfu.drop_room_if_empty(&room);
            }
        });
        Ok(())
    }

    /// WHEP: a new viewer of `room_id`, following the room or one participant; `relay` when
    /// it is another node's upstream session (cluster mode), not one of the audience.
    pub async fn play(
        &self,
        room_id: &RoomId,
        target: Option<ParticipantId>,
        exclude: Option<ParticipantId>,
        offer: &str,
        relay: bool,
    ) -> Result<Created> {
        let summary = signal::offer::parse_offer(offer, Role::Play)?;
        let room = match &target {
            // A named participant must exist; a room viewer may wait for publishers.
            Some(_) => self.room(room_id).ok_or(Error::NotFound)?,
            None => self.room_or_create(room_id),
        };
        let _slot = Reservation::take(self, room_id)?;
        let id = SessionId::new();
        // Prefer the codec of whoever each slot will show first, so the viewer's track is bound
        // with the publisher's codec.
        let kinds: Vec<MediaKind> = summary.media.iter().map(|m| m.kind).collect();
        let (t, x) = (target.clone(), exclude.clone());
        let (present, codecs) = room
            .call(move |core, _| {
                let present = t.as_ref().is_none_or(|t| core.plan.has_publisher(t));
                (
                    present,
                    core.plan.codecs_for(t.as_ref(), x.as_ref(), &kinds),
                )
            })
            .await
            .ok_or(Error::NotFound)?;
        if !present {
            self.drop_room_if_empty(&room);
            return Err(Error::NotFound);
        }
        let prefs: Vec<_> = summary
            .media
            .iter()
            .zip(codecs)
            .map(|(m, c)| c.map(|c| c.for_viewer(&m.codecs)))
            .collect();
        // If an m-line cannot carry the codec its publisher sends, counter with our own offer
        // (WHEP draft-03 §4.2) instead of answering with a black screen.
        let missing: Vec<_> = summary
            .media
            .iter()
            .zip(&prefs)
            .filter_map(|(m, pref)| {
                let c = pref.as_ref()?;
                (!m.codecs.iter().any(|oc| c.can_feed(oc))).then_some((m.mid.as_str(), c))
            })
            .collect();
        let counter = !missing.is_empty();
        let reason = signal::codec::counter_offer_reason(&missing);
        let observer = Arc::new(ViewerObserver {
            sfu: self.me.clone(),
            session: id,
            room: Arc::downgrade(&room),
        });
        let negotiated = if counter {
            self.rtc
                .counter_offer(room_id.as_str(), &summary, &prefs, observer)
                .await
        } else {
            self.rtc
                .play(room_id.as_str(), offer, &summary, &prefs, observer)
                .await
        };
        let (peer, tracks, mut answer) = match negotiated {
            Ok(x) => x,
            Err(e) => {
                self.drop_room_if_empty(&room);
                return Err(e);
            }
        };
        let slots: Vec<Arc<SlotSink>> = tracks.into_iter().map(SlotSink::spawn).collect();
        let viewer = Viewer::new(id, target, exclude, slots, relay);
        let version = new_version();
        let session = Arc::new(Session {
            id,
            room: room.clone(),
            kind: SessionKind::Viewer(viewer.clone()),
            peer,
            started: std::time::Instant::now(),
            version: Mutex::new(version.clone()),
            awaiting_answer: counter.into(),
        });
        self.sessions().insert(id, session);
        room.send(Command::ViewerJoined(viewer)).await;
        let counter_offer = counter.then(|| {
            // The same words in the body, for clients that show only the body (RFC 8866 §5.4).
            answer = signal::offer::with_session_info(&answer, &reason);
            // Drop the session if the answer never comes.
            let sfu = self.me.clone();
            tokio::spawn(async move {
                tokio::time::sleep(COUNTER_OFFER_VALIDITY).await;
                if let Some(sfu) = sfu.upgrade()
                    && sfu.session(id).is_some_and(|s| {
                        s.awaiting_answer.load(std::sync::atomic::Ordering::Acquire)
                    })
                {
                    let _ = sfu.remove(id).await;
                    tracing::info!(session = %id, "counter-offer expired unanswered");
                }
            });
            CounterOffer {
                until: std::time::SystemTime::now() + COUNTER_OFFER_VALIDITY,
                reason,
            }
        });
        tracing::info!(room = %room_id, session = %id, counter_offer = counter, "viewer joined");
        Ok(Created {
            session: id,
            participant: None,
            resume: None,
            answer,
            version,
            counter_offer,
        })
    }

    /// DELETE (and every other way a session ends): frees everything at once.
    pub async fn remove(&self, id: SessionId) -> Result<()> {
        let session = self.sessions().remove(&id).ok_or(Error::NotFound)?;
        match &session.kind {
            SessionKind::Publisher(p) => {
                // A mirror pulled as several layers leaves with its last leg (the others'
                // tracks end with their legs).
                let legs_left = p.mirror
                    && self
                        .sessions()
                        .values()
                        .any(|s| matches!(&s.kind, SessionKind::Publisher(o) if o.id == p.id));
                if !legs_left {
                    session
                        .room
                        .send(Command::PublisherLeft(p.id.clone()))
                        .await;
                    tracing::info!(room = %session.room.id, session = %id, participant = %p.id, "publisher left");
                    self.end_screens_of(&p.id);
                }
            }
            SessionKind::Viewer(_) => {
                session.room.send(Command::ViewerLeft(id)).await;
                tracing::info!(room = %session.room.id, session = %id, "viewer left");
            }
        }
        self.drop_room_if_empty(&session.room);
        session.peer.close().await;
        self.ended.notify_waiters();
        Ok(())
    }

    /// Forgets a room with no sessions and no event subscribers (its task then ends).
    pub fn drop_room_if_empty(&self, room: &Arc<Room>) {
        let in_use =
            self.sessions().values().any(|s| Arc::ptr_eq(&s.room, room)) || self.parked.holds(room);
        let mut rooms = self.rooms();
        if !in_use
            && room.subscriber_count() == 0
            && rooms.get(&room.id).is_some_and(|r| Arc::ptr_eq(r, room))
        {
            rooms.remove(&room.id);
        }
    }

    /// Whether the server is draining (no new sessions).
    pub fn is_draining(&self) -> bool {
        self.draining.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Starts draining: new sessions are refused (`503` + `Retry-After`), and every room tells
    /// its subscribers (`closing`) and its WHEP viewers (`reconnect`) why, in words.
    pub async fn drain(&self, reason: &str) {
        self.draining
            .store(true, std::sync::atomic::Ordering::Release);
        let rooms: Vec<Arc<Room>> = self.rooms().values().cloned().collect();
        for room in rooms {
            room.send(Command::Closing {
                reason: reason.to_owned(),
                reconnect: true,
            })
            .await;
        }
    }

    /// Resolves once no session is left.
    pub async fn sessions_ended(&self) {
        loop {
            let ended = self.ended.notified();
            if self.session_count() == 0 {
                return;
            }
            ended.await;
        }
    }

    /// Ends every session (graceful shutdown).
    pub async fn shutdown(&self) {
        let ids: Vec<SessionId> = self.sessions().keys().copied().collect();
        for id in ids {
            let _ = self.remove(id).await;
        }
    }
}
