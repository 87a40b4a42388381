//! One WHIP or WHEP session, and what signalling returns about sessions: the result of a POST
//! (an answer or a counter-offer), of a PATCH, and the condition a PATCH sets on the session's
//! version.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::lock::Locked;
use crate::rtc::RtcPeer;
use crate::sfu::Sfu;
use crate::sfu::ids::{ParticipantId, RoomId, SessionId};
use crate::sfu::layers::LayerPref;
use crate::sfu::plan::{Input, Output};
use crate::sfu::room::{Participant, Room, Viewer};
use crate::signal::{self, Fragment, MediaKind, Role};

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
    /// When the POST created it (the admin API's uptime).
    pub started: std::time::Instant,
    /// The session's version: a fresh opaque value at every ICE restart (HTTP shows it as the
    /// entity-tag).
    pub(super) version: Mutex<String>,
    /// A WHEP counter-offer awaits the client's answer (PATCH application/sdp).
    pub(super) awaiting_answer: std::sync::atomic::AtomicBool,
}

impl Session {
    /// True while a WHEP counter-offer waits for the client's SDP answer.
    pub fn awaiting_answer(&self) -> bool {
        self.awaiting_answer
            .load(std::sync::atomic::Ordering::Acquire)
    }

    /// The current version (see `version`).
    pub fn version(&self) -> String {
        self.version.locked().clone()
    }

    /// WHEP layer selection: which simulcast layer the video slot `media` (m-line index or
    /// mid; default the first video slot) shows.
    pub async fn select_layer(&self, media: Option<&str>, pref: LayerPref) -> Result<()> {
        let (session, id) = (self, self.id);
        let SessionKind::Viewer(v) = &session.kind else {
            return Err(Error::NotFound);
        };
        let slot = match media {
            None => v.slots.iter().position(|s| s.kind == MediaKind::Video),
            Some(m) => m
                .parse::<usize>()
                .ok()
                .filter(|i| *i < v.slots.len())
                .or_else(|| v.slots.iter().position(|s| s.mid == m)),
        }
        .filter(|&i| v.slots[i].kind == MediaKind::Video)
        .ok_or_else(|| {
            Error::BadRequest(format!(
                "mediaId {} is not a video m-line of this session.",
                media.unwrap_or("(default)")
            ))
        })?;
        let refused = session
            .room
            .call(move |core, now| {
                core.input(
                    now,
                    Input::SetLayer {
                        viewer: id,
                        slot,
                        pref,
                    },
                )
            })
            .await
            .ok_or(Error::NotFound)?;
        match refused.into_iter().next() {
            Some(Output::Refused { reason }) => Err(Error::BadRequest(reason)),
            _ => Ok(()),
        }
    }

    /// PATCH application/sdp: the client's answer to a WHEP counter-offer.
    pub async fn answer(&self, sdp: &str) -> Result<()> {
        let (session, id) = (self, self.id);
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
    pub async fn patch(&self, precondition: Precondition, body: &str) -> Result<Patched> {
        let (session, id) = (self, self.id);
        let frag = Fragment::parse(body)?;
        let current = session.version();
        if let Precondition::OneOf(tags) = &precondition
            && !tags.contains(&current)
        {
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
            let version = new_version();
            *session.version.locked() = version.clone();
            tracing::info!(room = %session.room.id, session = %id, "ICE restarted");
            return Ok(Patched::Restarted {
                version,
                sdpfrag: restart.to_sdpfrag(),
            });
        }
        session.peer.add_candidates(&frag).await?;
        Ok(Patched::Trickled)
    }
}

pub(super) fn new_version() -> String {
    uuid::Uuid::new_v4().as_simple().to_string()
}

/// A PATCH's condition on the session's version (RFC 9110 §13.1.1, as `http` parsed it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Precondition {
    /// Whatever the version is.
    Any,
    /// The version must be one of these.
    OneOf(Vec<String>),
}

/// The result of a successful POST.
pub struct Created {
    pub session: SessionId,
    pub participant: Option<ParticipantId>,
    /// A publisher's resume secret (`X-Wisp-Resume`; see `sfu::resume`).
    pub resume: Option<String>,
    /// The SDP body: an answer, or a counter-offer when `counter_offer` is set.
    pub answer: String,
    /// The session's version (the entity-tag).
    pub version: String,
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

/// How long a WHEP counter-offer stays valid (draft-03 §4.2 default).
pub const COUNTER_OFFER_VALIDITY: Duration = Duration::from_secs(30);

/// The result of a successful PATCH.
pub enum Patched {
    /// Candidates applied: 204.
    Trickled,
    /// ICE restarted: 200 with this sdpfrag and the new ETag.
    Restarted { version: String, sdpfrag: String },
}

/// Limits applied to signalling.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_sessions: usize,
    /// Publishers and viewers in one room (`--max-sessions-per-room`).
    pub max_sessions_per_room: usize,
    /// Open event streams of one room (`--max-event-streams-per-room`).
    pub max_event_streams_per_room: usize,
    /// Voice activity thresholds for every participant.
    pub vad: crate::media::vad::VadConfig,
    /// How long a publisher whose transport died keeps its participant (`--reconnect-grace`).
    pub reconnect_grace: Duration,
}

/// Counts a session being built against the limits (the server's and its room's), until
/// dropped.
pub(super) struct Reservation<'a>(pub(super) &'a Sfu, pub(super) RoomId);

impl<'a> Reservation<'a> {
    /// A place for one more session in `room`: refused while draining, and past
    /// `--max-sessions` or `--max-sessions-per-room` (sessions being set up count too).
    pub(super) fn take(sfu: &'a Sfu, room: &RoomId) -> crate::error::Result<Reservation<'a>> {
        use crate::error::Error;
        if sfu.is_draining() {
            return Err(Error::Draining);
        }
        let pending = sfu
            .pending
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        let in_room = {
            let mut rooms = sfu.pending_rooms.locked();
            let n = rooms.entry(room.clone()).or_default();
            *n += 1;
            *n - 1
        };
        let r = Reservation(sfu, room.clone());
        let full = |what| Error::Unavailable {
            what,
            retry_after: Duration::from_secs(5),
        };
        if sfu.session_count() + pending >= sfu.limits.max_sessions {
            return Err(full("session slots"));
        }
        let live = sfu
            .sessions()
            .values()
            .filter(|s| s.room.id == *room)
            .count();
        if live + in_room >= sfu.limits.max_sessions_per_room {
            return Err(full("session slots in this room"));
        }
        Ok(r)
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        self.0
            .pending
            .fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
        let mut rooms = self.0.pending_rooms.locked();
        if let Some(n) = rooms.get_mut(&self.1) {
            *n -= 1;
            if *n == 0 {
                rooms.remove(&self.1);
            }
        }
    }
}
