//! What participants do together beyond media, for display (the rules are the plan's,
//! `plan::social`): their own state, chat, a viewer's pin, and screen shares — a second WHIP
//! publication of a participant (`X-Wisp-Screen-Of: <its WHIP session id>`), a publisher of
//! its own that the room ranks first and never shows to its owner, ended when its owner leaves.

use std::time::SystemTime;

use super::plan::Input;
use super::{ParticipantId, Room, RoomId, SessionId, SessionKind, Sfu};
use crate::error::{Error, Result};

impl Room {
    /// A participant's own word on its state (display only); `None` leaves a part as it was.
    pub async fn set_state(
        &self,
        id: ParticipantId,
        muted: Option<bool>,
        camera_off: Option<bool>,
        weak: Option<bool>,
    ) {
        let input = Input::State {
            id,
            muted,
            camera_off,
            weak,
        };
        self.call(move |core, now| core.input(now, input)).await;
    }

    /// A chat message from participant `from`: sent to every subscriber and kept for those
    /// who come later, or refused (not in the room, empty, too long, too fast).
    pub async fn chat(
        &self,
        from: ParticipantId,
        text: String,
    ) -> Option<std::result::Result<(), crate::sfu::plan::ChatRefused>> {
        let at_ms = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64);
        self.call(move |core, now| {
            let e = core.plan.chat(now, &from, &text, at_ms)?;
            core.apply(e);
            Ok(())
        })
        .await
    }

    /// A viewer pins a participant (`None`: unpins).
    pub async fn pin(&self, viewer: SessionId, participant: Option<ParticipantId>) {
        let input = Input::Pin {
            viewer,
            participant,
        };
        self.call(move |core, now| core.input(now, input)).await;
    }
}

impl Sfu {
    /// The participant whose screen a new publication in `room` is, from the owner's WHIP
    /// session id: it must be a live publisher of the same room, and not a screen itself.
    pub(super) fn screen_owner(
        &self,
        room: &RoomId,
        owner_session: Option<SessionId>,
    ) -> Result<Option<ParticipantId>> {
        let Some(sid) = owner_session else {
            return Ok(None);
        };
        let refused = || {
            Error::BadRequest(format!(
                "X-Wisp-Screen-Of names no participant publishing in room '{room}'."
            ))
        };
        let s = self.session(sid).ok_or_else(refused)?;
        match &s.kind {
            SessionKind::Publisher(p) if &s.room.id == room && p.screen_of.is_none() => {
                Ok(Some(p.id.clone()))
            }
            _ => Err(refused()),
        }
    }

    /// Ends every screen share of `owner` (it left).
    pub(super) fn end_screens_of(&self, owner: &ParticipantId) {
        let screens: Vec<SessionId> = self
            .sessions()
            .values()
            .filter(|s| {
                matches!(&s.kind, SessionKind::Publisher(p) if p.screen_of.as_ref() == Some(owner))
            })
            .map(|s| s.id)
            .collect();
        for id in screens {
            let me = self.me.clone();
            tokio::spawn(async move {
                if let Some(sfu) = me.upgrade() {
                    let _ = sfu.remove(id).await;
                    tracing::info!(session = %id, "screen share ended with its owner");
                }
            });
        }
    }
}
