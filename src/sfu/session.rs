//! One WHIP or WHEP session, and what signalling returns about sessions: the result of a POST
//! (an answer or a counter-offer), of a PATCH, and the condition a PATCH sets on the session's
//! version.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::lock::Locked;
use crate::rtc::RtcPeer;
use crate::sfu::Sfu;
use crate::sfu::ids::{ParticipantId, SessionId};
use crate::sfu::room::{Participant, Room, Viewer};

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
    /// Voice activity thresholds for every participant.
    pub vad: crate::media::vad::VadConfig,
}

/// Counts a session being built against the limit, until dropped.
pub(super) struct Reservation<'a>(pub(super) &'a Sfu);

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        self.0
            .pending
            .fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}
