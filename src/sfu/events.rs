//! Room events: a snapshot first (the roster, the recent chat, the audience), then changes.
//! Delivered through a bounded broadcast channel; a consumer that falls behind is dropped,
//! never buffered without bound. The field names are the wire names (serde); `http::events`
//! names and frames them as server-sent events.

use serde::Serialize;

/// One participant as the roster shows it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ParticipantInfo {
    pub id: String,
    pub name: String,
    /// Milliseconds since the Unix epoch.
    pub joined_at: u64,
    pub audio: bool,
    pub video: bool,
    pub speaking: bool,
    /// What the participant says of itself (`POST /session/{id}/state`): shown, never trusted.
    #[serde(flatten)]
    pub state: SelfState,
    /// A screen share: the participant whose screen this is.
    #[serde(rename = "screenOf")]
    pub screen_of: Option<String>,
}

/// What a participant tells the room about itself, for display only: its microphone muted,
/// its camera off, its connection weak (from its own statistics).
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SelfState {
    pub muted: bool,
    pub camera_off: bool,
    pub weak: bool,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum RoomEvent {
    Roster {
        participants: Vec<ParticipantInfo>,
        #[serde(rename = "activeSpeaker")]
        active_speaker: Option<String>,
    },
    Joined {
        participant: ParticipantInfo,
    },
    Left {
        id: String,
    },
    /// A participant's tracks changed.
    Tracks {
        id: String,
        audio: bool,
        video: bool,
    },
    Speaking {
        id: String,
        speaking: bool,
        /// Loudness 0–127 (higher is louder) of the interval that decided.
        level: u8,
    },
    ActiveSpeaker {
        id: String,
    },
    /// A participant's own word on its microphone, camera and connection changed.
    State {
        id: String,
        #[serde(flatten)]
        state: SelfState,
    },
    /// A chat message from a participant of the room (plain text).
    Chat {
        id: String,
        name: String,
        text: String,
        /// Milliseconds since the Unix epoch.
        at: u64,
    },
    /// The number of WHEP sessions in the room changed.
    Viewercount {
        viewercount: usize,
    },
    /// The server is shutting down: sessions should reconnect (elsewhere, or after a restart).
    Closing {
        reason: String,
    },
    /// A WHEP session's slot map changed. `viewer` is the participant id the session gave as
    /// `?self=` (absent for plain players); each slot is an answered mid and who it shows.
    Slots {
        viewer: Option<String>,
        slots: Vec<SlotInfo>,
    },
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SlotInfo {
    pub mid: String,
    pub kind: &'static str,
    pub participant: Option<String>,
}

/// What rooms tell the server-wide listeners (webhooks): membership and sending changes as
/// their room events say them, and the end of a room (its last session and subscriber gone, or
/// an operator closed it).
#[derive(Debug, Clone, PartialEq)]
pub enum Notice {
    Event(crate::sfu::RoomId, RoomEvent),
    Ended(crate::sfu::RoomId),
}
