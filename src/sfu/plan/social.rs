//! What participants tell each other through the room, for display only: their own state
//! (microphone muted, camera off, a weak connection) and chat. The plan never uses either for
//! anything else — a participant that says it is muted still speaks if its audio says so.
//!
//! Chat rules: a message is one participant's (a publisher of the room), trimmed, 1 to
//! [`CHAT_MAX_CHARS`] characters; each participant may send a burst of [`CHAT_BURST`] and then
//! one per second ([`CHAT_PER_SECOND`]); the latest [`CHAT_HISTORY`] messages are kept for
//! those who subscribe later.

use std::time::{Duration, Instant};

use super::RoomPlan;
use super::io::Output;
use crate::sfu::events::RoomEvent;
use crate::sfu::ids::ParticipantId;

/// Longest chat message, in characters.
pub const CHAT_MAX_CHARS: usize = 500;
/// Messages a participant may send at once.
pub const CHAT_BURST: f64 = 5.0;
/// Then this many per second.
pub const CHAT_PER_SECOND: f64 = 1.0;
/// Messages kept for late joiners.
pub const CHAT_HISTORY: usize = 50;

/// Why a chat message was not taken, in one sentence for the sender.
#[derive(Debug, Clone, PartialEq)]
pub enum ChatRefused {
    NotHere,
    Empty,
    TooLong,
    /// Sending too fast: the next message is accepted after this long.
    TooFast(Duration),
}

impl std::fmt::Display for ChatRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChatRefused::NotHere => write!(f, "Only the room's participants may chat."),
            ChatRefused::Empty => write!(f, "The chat message is empty."),
            ChatRefused::TooLong => write!(
                f,
                "The chat message is longer than {CHAT_MAX_CHARS} characters."
            ),
            ChatRefused::TooFast(_) => write!(f, "Chat messages are coming too fast."),
        }
    }
}

impl RoomPlan {
    /// A publisher's own word on its state; a `state` event when anything changed.
    pub(super) fn set_state(
        &mut self,
        id: &ParticipantId,
        muted: Option<bool>,
        camera_off: Option<bool>,
        weak: Option<bool>,
    ) -> Option<Output> {
        let p = self.publishers.iter_mut().find(|p| &p.id == id)?;
        let before = p.state;
        p.state.muted = muted.unwrap_or(before.muted);
        p.state.camera_off = camera_off.unwrap_or(before.camera_off);
        p.state.weak = weak.unwrap_or(before.weak);
        (p.state != before).then(|| {
            Output::Event(RoomEvent::State {
                id: id.to_string(),
                state: p.state,
            })
        })
    }

    /// A chat message from publisher `from` at `at_ms` (Unix milliseconds): the `chat` event
    /// to send, or why not.
    pub fn chat(
        &mut self,
        now: Instant,
        from: &ParticipantId,
        text: &str,
        at_ms: u64,
    ) -> Result<Output, ChatRefused> {
        let text = text.trim();
        if text.is_empty() {
            return Err(ChatRefused::Empty);
        }
        if text.chars().count() > CHAT_MAX_CHARS {
            return Err(ChatRefused::TooLong);
        }
        let p = self
            .publishers
            .iter_mut()
            .find(|p| &p.id == from)
            .ok_or(ChatRefused::NotHere)?;
        let (tokens, since) = p.chat;
        let grown = since.map_or(0.0, |t| {
            now.saturating_duration_since(t).as_secs_f64() * CHAT_PER_SECOND
        });
        let tokens = (tokens + grown).min(CHAT_BURST);
        if tokens < 1.0 {
            p.chat = (tokens, Some(now));
            let wait = (1.0 - tokens) / CHAT_PER_SECOND;
            return Err(ChatRefused::TooFast(Duration::from_secs_f64(wait)));
        }
        p.chat = (tokens - 1.0, Some(now));
        let e = RoomEvent::Chat {
            id: from.to_string(),
            name: p.name.clone(),
            text: text.to_string(),
            at: at_ms,
        };
        if self.chat.len() == CHAT_HISTORY {
            self.chat.pop_front();
        }
        self.chat.push_back(e.clone());
        Ok(Output::Event(e))
    }

    /// The latest chat messages, oldest first.
    pub fn chat_history(&self) -> Vec<RoomEvent> {
        self.chat.iter().cloned().collect()
    }
}
