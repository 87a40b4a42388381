//! Who is in a room, as signalling and the room task share them: a publisher
//! ([`Participant`]) and a WHEP session's side of the room ([`Viewer`]: its slots and what the
//! room tells it).

use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::watch;

use crate::media::SlotSink;
use crate::sfu::ids::{ParticipantId, SessionId};
use crate::sfu::plan::{LayerInfo, ViewerState};

/// A publisher: who it is. What it sends is the plan's business.
pub struct Participant {
    pub id: ParticipantId,
    pub name: String,
    pub session: SessionId,
    pub joined_at: SystemTime,
    /// The secret a later WHIP POST shows to take this participant over (`X-Wisp-Resume`).
    pub resume: String,
    /// The name came from the token's `name` claim: a POST with a token of the same name may
    /// take the participant over (a restarted OBS or whipsink shows nothing else).
    pub named_by_token: bool,
    /// A mirror of another node's publisher (cluster mode's cascade): its upstream leg
    /// ending ends it at once; the cascade decides what comes next.
    pub mirror: bool,
    /// A screen share: the participant whose screen it is (`X-Wisp-Screen-Of`).
    pub screen_of: Option<ParticipantId>,
}

impl Participant {
    pub fn new(name: String, session: SessionId, named_by_token: bool) -> Arc<Participant> {
        Arc::new(Participant {
            id: ParticipantId::new(),
            name,
            session,
            joined_at: SystemTime::now(),
            resume: uuid::Uuid::new_v4().as_simple().to_string(),
            named_by_token,
            mirror: false,
            screen_of: None,
        })
    }

    /// A screen share of `owner`: a publisher of its own, shown as `owner`'s screen.
    pub fn screen(name: String, session: SessionId, owner: ParticipantId) -> Arc<Participant> {
        let mut p = Participant::new(name, session, false);
        if let Some(p) = Arc::get_mut(&mut p) {
            p.screen_of = Some(owner);
        }
        p
    }

    /// Another node's publisher as this node shows it: its id, name and join time kept, so
    /// the rosters, slots and `/whep/{room}/{participant}` URLs of both nodes agree.
    pub fn mirror(
        id: ParticipantId,
        name: String,
        joined_at: SystemTime,
        session: SessionId,
    ) -> Arc<Participant> {
        Arc::new(Participant {
            id,
            name,
            session,
            joined_at,
            resume: uuid::Uuid::new_v4().as_simple().to_string(),
            named_by_token: false,
            mirror: true,
            screen_of: None,
        })
    }

    /// The same participant on a new session (a publisher reconnecting).
    pub fn resumed(&self, session: SessionId) -> Arc<Participant> {
        Arc::new(Participant {
            id: self.id.clone(),
            name: self.name.clone(),
            session,
            joined_at: self.joined_at,
            resume: self.resume.clone(),
            named_by_token: self.named_by_token,
            mirror: self.mirror,
            screen_of: self.screen_of.clone(),
        })
    }
}

/// The per-video-slot layers a viewer is told about (WHEP `layers` event).
pub type Layers = Vec<(usize, Vec<LayerInfo>)>;

/// A WHEP session's side of the room: its slots, and what the room tells it.
pub struct Viewer {
    pub session: SessionId,
    /// A by-participant viewer; `None` follows the room.
    pub target: Option<ParticipantId>,
    /// The viewer's own participant id, never shown to itself.
    pub exclude: Option<ParticipantId>,
    pub slots: Vec<Arc<SlotSink>>,
    /// Another node's upstream session (cluster mode's cascade), not one of the audience.
    pub relay: bool,
    pub state: watch::Sender<ViewerState>,
    /// The WHEP `layers` data; `None` until the first.
    pub layers: watch::Sender<Option<Layers>>,
    /// Why the player should POST again (the WHEP `reconnect` event): a slot was given a codec
    /// the viewer did not negotiate (it gets a counter-offer then), or the server is draining.
    pub reconnect: watch::Sender<Option<String>>,
}

impl Viewer {
    pub fn new(
        session: SessionId,
        target: Option<ParticipantId>,
        exclude: Option<ParticipantId>,
        slots: Vec<Arc<SlotSink>>,
        relay: bool,
    ) -> Arc<Viewer> {
        Arc::new(Viewer {
            session,
            relay,
            target,
            exclude,
            slots,
            state: watch::channel(ViewerState::Waiting).0,
            layers: watch::channel(None).0,
            reconnect: watch::channel(None).0,
        })
    }
}
