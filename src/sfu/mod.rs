//! Rooms, sessions and participants: the signalling state of the server. No HTTP types here;
//! `http/` calls these operations and maps their errors.

pub mod events;
pub mod ids;
mod observers;
pub mod room;
pub mod slots;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use tokio::sync::watch;

use crate::error::{Error, Result};
use crate::media::SlotSink;
use crate::rtc::{PeerState, RtcEngine, RtcPeer};
use crate::signal::{self, Fragment, MediaKind, Role};
pub use ids::{ParticipantId, RoomId, SessionId};
use observers::{PublisherObserver, ViewerObserver};
pub use room::{Participant, Room, Viewer, ViewerState};

/// Which side a session is on.
pub enum SessionKind {
    Publisher(Arc<Participant>),
    Viewer(Arc<Viewer>),
}

/// One WHIP or WHEP session.
pub struct Session {
    pub id: SessionId,
    pub room: Arc<Room>,
    pub kind: SessionKind,
    pub peer: RtcPeer,
    /// The current strong entity-tag (quoted); it changes with every ICE restart.
    etag: Mutex<String>,
    /// A WHEP counter-offer awaits the client's answer (PATCH application/sdp).
    awaiting_answer: std::sync::atomic::AtomicBool,
    /// WHEP server-sent-events extension: stream id → the event names it asked for.
    event_streams: Mutex<HashMap<String, Vec<String>>>,
}

/// Event names a WHEP session's event streams may ask for (WHEP core extensions §4 plus the
/// room's own events).
pub const WHEP_EVENTS: &[&str] = &[
    "active",
    "inactive",
    "layers",
    "reconnect",
    "viewercount",
    "roster",
    "joined",
    "left",
    "tracks",
    "speaking",
    "active-speaker",
    "slots",
];

/// At most this many event streams per session.
const MAX_EVENT_STREAMS: usize = 4;

impl Session {
    /// True while a WHEP counter-offer waits for the client's SDP answer.
    pub fn awaiting_answer(&self) -> bool {
        self.awaiting_answer
            .load(std::sync::atomic::Ordering::Acquire)
    }

    pub fn etag(&self) -> String {
        self.etag.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

fn new_etag() -> String {
    format!("\"{}\"", uuid::Uuid::new_v4().as_simple())
}

/// The result of a successful POST.
pub struct Created {
    pub session: SessionId,
    pub participant: Option<ParticipantId>,
    /// The SDP body: an answer, or a counter-offer when `counter_offer` is set.
    pub answer: String,
    pub etag: String,
    /// Set for a WHEP counter-offer (406).
    pub counter_offer: Option<CounterOffer>,
}

/// Why and until when a WHEP counter-offer (406) stands.
pub struct CounterOffer {
    /// The client's answer must arrive by then.
    pub until: std::time::SystemTime,
    /// One sentence for people: which codec the publisher sends that the offer lacked, and what
    /// to do. Printable ASCII only.
    pub reason: String,
}

/// How often rooms close silent VAD intervals and re-rank the dominant speaker.
pub const ROOM_TICK: Duration = Duration::from_millis(250);

/// How long a WHEP counter-offer stays valid (draft-03 §4.2 default).
pub const COUNTER_OFFER_VALIDITY: Duration = Duration::from_secs(30);

/// The result of a successful PATCH.
pub enum Patched {
    /// Candidates applied: 204.
    Trickled,
    /// ICE restarted: 200 with this sdpfrag and the new ETag.
    Restarted { etag: String, sdpfrag: String },
}

/// Limits applied to signalling.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_sessions: usize,
    /// Voice activity thresholds for every participant.
    pub vad: crate::media::vad::VadConfig,
}

/// The server's signalling state.
pub struct Sfu {
    rtc: RtcEngine,
    limits: Limits,
    rooms: Mutex<HashMap<RoomId, Arc<Room>>>,
    sessions: Mutex<HashMap<SessionId, Arc<Session>>>,
    /// Sessions being set up (counted against the limit before their peer exists).
    pending: std::sync::atomic::AtomicUsize,
    me: Weak<Sfu>,
}

/// Counts a session being built against the limit, until dropped.
struct Reservation<'a>(&'a Sfu);

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        self.0
            .pending
            .fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
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
            me: me.clone(),
        })
    }

    pub fn rtc(&self) -> &RtcEngine {
        &self.rtc
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<SessionId, Arc<Session>>> {
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn rooms(&self) -> std::sync::MutexGuard<'_, HashMap<RoomId, Arc<Room>>> {
        self.rooms.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn session(&self, id: SessionId) -> Option<Arc<Session>> {
        self.sessions().get(&id).cloned()
    }

    pub fn session_count(&self) -> usize {
        self.sessions().len()
    }

    pub fn room(&self, id: &RoomId) -> Option<Arc<Room>> {
        self.rooms().get(id).cloned()
    }

    /// The room, created on first use with its VAD/dominant-speaker ticker.
    pub fn room_or_create(&self, id: &RoomId) -> Arc<Room> {
        self.rooms()
            .entry(id.clone())
            .or_insert_with(|| {
                let room = Room::new(id.clone());
                let weak = Arc::downgrade(&room);
                tokio::spawn(async move {
                    let mut every = tokio::time::interval(ROOM_TICK);
                    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
                    loop {
                        every.tick().await;
                        match weak.upgrade() {
                            Some(room) => room.tick(std::time::Instant::now()),
                            None => break, // the room is gone
                        }
                    }
                });
                room
            })
            .clone()
    }

    fn reserve(&self) -> Result<Reservation<'_>> {
        let pending = self
            .pending
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        let r = Reservation(self);
        if self.session_count() + pending >= self.limits.max_sessions {
            return Err(Error::Unavailable {
                what: "session slots",
                retry_after: Duration::from_secs(5),
            });
        }
        Ok(r)
    }

    /// WHIP: a new publisher in `room_id`.
    pub async fn publish(
        &self,
        room_id: &RoomId,
        name: Option<String>,
        offer: &str,
    ) -> Result<Created> {
        let summary = signal::offer::parse_offer(offer, Role::Publish)?;
        let _slot = self.reserve()?;
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
        let participant = Participant::new(name, id, self.limits.vad);
        let participant_for_codecs = participant.clone();
        let observer = Arc::new(PublisherObserver {
            sfu: self.me.clone(),
            session: id,
            room: Arc::downgrade(&room),
            participant: participant.clone(),
        });
        let (peer, answer) = match self
            .rtc
            .publish(room_id.as_str(), offer, &summary, observer)
            .await
        {
            Ok(x) => x,
            Err(e) => {
                self.drop_room_if_empty(&room);
                return Err(e);
            }
        };
        *participant_for_codecs
            .expected
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = signal::offer::first_codecs(&answer);
        *participant_for_codecs
            .audio_level_id
            .lock()
            .unwrap_or_else(|e| e.into_inner()) =
            signal::offer::extmap_id(&answer, MediaKind::Audio, crate::rtc::AUDIO_LEVEL_URI);
        let etag = new_etag();
        let session = Arc::new(Session {
            id,
            room: room.clone(),
            kind: SessionKind::Publisher(participant.clone()),
            peer,
            etag: Mutex::new(etag.clone()),
            awaiting_answer: false.into(),
            event_streams: Mutex::default(),
        });
        self.sessions().insert(id, session);
        room.add_publisher(participant.clone());
        tracing::info!(room = %room_id, session = %id, participant = %participant.id, "publisher joined");
        Ok(Created {
            session: id,
            participant: Some(participant.id.clone()),
            answer,
            etag,
            counter_offer: None,
        })
    }

    /// WHEP: a new viewer of `room_id`, following the room or one participant.
    pub async fn play(
        &self,
        room_id: &RoomId,
        target: Option<ParticipantId>,
        exclude: Option<ParticipantId>,
        offer: &str,
    ) -> Result<Created> {
        let summary = signal::offer::parse_offer(offer, Role::Play)?;
        let room = match &target {
            // A named participant must exist; a room viewer may wait for publishers.
            Some(p) => {
                let room = self.room(room_id).ok_or(Error::NotFound)?;
                room.participant(p).ok_or(Error::NotFound)?;
                room
            }
            None => self.room_or_create(room_id),
        };
        let _slot = self.reserve()?;
        let id = SessionId::new();
        // Prefer the codec of whoever each slot will show first, so the viewer's track is bound
        // with the publisher's codec.
        let shown: Vec<Arc<Participant>> = match &target {
            Some(p) => room.participant(p).into_iter().collect(),
            None => room
                .publishers()
                .into_iter()
                .filter(|p| Some(&p.id) != exclude.as_ref())
                .collect(),
        };
        let mut index = [0usize; 2];
        let prefs: Vec<_> = summary
            .media
            .iter()
            .map(|m| {
                let k = (m.kind == MediaKind::Video) as usize;
                let p = shown.get(index[k]);
                index[k] += 1;
                p.and_then(|p| p.codec(m.kind))
                    .map(|c| c.for_viewer(&m.codecs))
            })
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
        let (state, _) = watch::channel(ViewerState::Waiting);
        let viewer = Arc::new(Viewer {
            session: id,
            target,
            exclude,
            slots,
            state,
            announced: Mutex::new(Vec::new()),
            assigned: Mutex::new([Vec::new(), Vec::new()]),
            layers: watch::channel(String::new()).0,
            layers_sent: Mutex::new(None),
            unplayable: watch::channel(None).0,
        });
        let etag = new_etag();
        let session = Arc::new(Session {
            id,
            room: room.clone(),
            kind: SessionKind::Viewer(viewer.clone()),
            peer,
            etag: Mutex::new(etag.clone()),
            awaiting_answer: counter.into(),
            event_streams: Mutex::default(),
        });
        self.sessions().insert(id, session);
        room.add_viewer(viewer);
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
            answer,
            etag,
            counter_offer,
        })
    }

    /// WHEP SSE extension: creates an event stream for `events` (all when empty).
    pub fn create_event_stream(&self, id: SessionId, events: Vec<String>) -> Result<String> {
        let session = self.session(id).ok_or(Error::NotFound)?;
        if !matches!(session.kind, SessionKind::Viewer(_)) {
            return Err(Error::NotFound);
        }
        if let Some(bad) = events.iter().find(|e| !WHEP_EVENTS.contains(&e.as_str())) {
            return Err(Error::BadRequest(format!(
                "The event type \"{bad}\" is not supported."
            )));
        }
        let events = if events.is_empty() {
            WHEP_EVENTS.iter().map(|e| e.to_string()).collect()
        } else {
            events
        };
        let mut streams = session
            .event_streams
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if streams.len() >= MAX_EVENT_STREAMS {
            return Err(Error::Unavailable {
                what: "event streams for this session",
                retry_after: Duration::from_secs(5),
            });
        }
        let sid = uuid::Uuid::new_v4().as_simple().to_string();
        streams.insert(sid.clone(), events);
        Ok(sid)
    }

    /// The viewer, its room and the event names of one of its event streams.
    pub fn event_stream(
        &self,
        id: SessionId,
        sid: &str,
    ) -> Result<(Arc<Viewer>, Arc<Room>, Vec<String>)> {
        let session = self.session(id).ok_or(Error::NotFound)?;
        let events = session
            .event_streams
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(sid)
            .cloned()
            .ok_or(Error::NotFound)?;
        match &session.kind {
            SessionKind::Viewer(v) => Ok((v.clone(), session.room.clone(), events)),
            SessionKind::Publisher(_) => Err(Error::NotFound),
        }
    }

    /// WHEP layer selection: which simulcast layer the video slot `media` (m-line index or
    /// mid; default the first video slot) shows.
    pub fn select_layer(
        &self,
        id: SessionId,
        media: Option<&str>,
        pref: crate::media::LayerPref,
    ) -> Result<()> {
        let session = self.session(id).ok_or(Error::NotFound)?;
        let SessionKind::Viewer(v) = &session.kind else {
            return Err(Error::NotFound);
        };
        let slot = match media {
            None => v.slots.iter().find(|s| s.kind == MediaKind::Video),
            Some(m) => m
                .parse::<usize>()
                .ok()
                .and_then(|i| v.slots.get(i))
                .or_else(|| v.slots.iter().find(|s| s.mid == m)),
        }
        .filter(|s| s.kind == MediaKind::Video)
        .ok_or_else(|| {
            Error::BadRequest(format!(
                "mediaId {} is not a video m-line of this session.",
                media.unwrap_or("(default)")
            ))
        })?;
        if let crate::media::LayerPref::Rid(rid) = &pref
            && let Some(src) = slot.source()
        {
            let published = session.room.publishers().iter().any(|p| {
                let layers = p.layers(MediaKind::Video);
                layers.iter().any(|t| Arc::ptr_eq(t, &src))
                    && layers
                        .iter()
                        .any(|t| t.rid.as_deref() == Some(rid.as_str()))
            });
            if !published {
                return Err(Error::BadRequest(format!(
                    "The publisher shown here sends no layer with rid \"{rid}\"."
                )));
            }
        }
        slot.set_layer(pref);
        session.room.reconcile();
        Ok(())
    }

    pub fn delete_event_stream(&self, id: SessionId, sid: &str) -> Result<()> {
        let session = self.session(id).ok_or(Error::NotFound)?;
        session
            .event_streams
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(sid)
            .map(|_| ())
            .ok_or(Error::NotFound)
    }

    /// PATCH application/sdp: the client's answer to a WHEP counter-offer.
    pub async fn answer(&self, id: SessionId, sdp: &str) -> Result<()> {
        let session = self.session(id).ok_or(Error::NotFound)?;
        if !session
            .awaiting_answer
            .load(std::sync::atomic::Ordering::Acquire)
        {
            return Err(Error::Unprocessable(
                "this session is not waiting for an SDP answer".into(),
            ));
        }
        // The answer must receive what we offered to send.
        signal::offer::parse_offer(sdp, Role::Play)?;
        session.peer.apply_answer(sdp).await?;
        session
            .awaiting_answer
            .store(false, std::sync::atomic::Ordering::Release);
        tracing::info!(room = %session.room.id, session = %id, "counter-offer answered");
        Ok(())
    }

    /// PATCH: trickle candidates or an ICE restart.
    pub async fn patch(
        &self,
        id: SessionId,
        if_match: Option<&str>,
        body: &str,
    ) -> Result<Patched> {
        let session = self.session(id).ok_or(Error::NotFound)?;
        let if_match = if_match.ok_or(Error::PreconditionRequired)?.trim();
        let frag = Fragment::parse(body)?;
        let current = session.etag();
        if if_match != "*" && !if_match.split(',').any(|t| t.trim() == current) {
            return Err(Error::PreconditionFailed);
        }
        // Trickle fragments usually repeat the current credentials; only new ones restart ICE
        // (RFC 9725 §4.3.2).
        let restart = match &frag.ice_ufrag {
            Some(u) => session.peer.remote_ufrag().await.as_deref() != Some(u.as_str()),
            None => false,
        };
        if let (true, Some(ufrag), Some(pwd)) = (restart, &frag.ice_ufrag, &frag.ice_pwd) {
            let restart = session.peer.restart_ice(ufrag, pwd).await?;
            session.peer.add_candidates(&frag).await?;
            let etag = new_etag();
            *session.etag.lock().unwrap_or_else(|e| e.into_inner()) = etag.clone();
            tracing::info!(room = %session.room.id, session = %id, "ICE restarted");
            return Ok(Patched::Restarted {
                etag,
                sdpfrag: restart.to_sdpfrag(),
            });
        }
        session.peer.add_candidates(&frag).await?;
        Ok(Patched::Trickled)
    }

    /// DELETE (and every other way a session ends): frees everything at once.
    pub async fn remove(&self, id: SessionId) -> Result<()> {
        let session = self.sessions().remove(&id).ok_or(Error::NotFound)?;
        match &session.kind {
            SessionKind::Publisher(p) => {
                session.room.remove_publisher(id);
                tracing::info!(room = %session.room.id, session = %id, participant = %p.id, "publisher left");
            }
            SessionKind::Viewer(_) => {
                session.room.remove_viewer(id);
                tracing::info!(room = %session.room.id, session = %id, "viewer left");
            }
        }
        self.drop_room_if_empty(&session.room);
        session.peer.close().await;
        Ok(())
    }

    /// Forgets a room with no sessions and no event subscribers.
    pub fn drop_room_if_empty(&self, room: &Arc<Room>) {
        let mut rooms = self.rooms();
        if room.is_empty()
            && room.subscriber_count() == 0
            && rooms.get(&room.id).is_some_and(|r| Arc::ptr_eq(r, room))
        {
            rooms.remove(&room.id);
        }
    }

    /// Ends every session (graceful shutdown).
    pub async fn shutdown(&self) {
        let ids: Vec<SessionId> = self.sessions().keys().copied().collect();
        for id in ids {
            let _ = self.remove(id).await;
        }
    }

    /// A peer failed or closed on its own: end the session as if DELETEd.
    fn end_later(sfu: &Weak<Sfu>, id: SessionId, why: PeerState) {
        if let Some(sfu) = sfu.upgrade() {
            tokio::spawn(async move {
                if sfu.remove(id).await.is_ok() {
                    tracing::info!(session = %id, ?why, "session ended by its transport");
                }
            });
        }
    }
}
