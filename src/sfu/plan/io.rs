//! The plan's vocabulary: its configuration, inputs and outputs.

use std::time::Duration;

use crate::media::SourceId;
use crate::sfu::events::RoomEvent;
use crate::sfu::ids::{ParticipantId, SessionId};
use crate::sfu::layers::LayerPref;
use crate::signal::{CodecSpec, MediaKind};

/// One simulcast layer as the WHEP `layers` event describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LayerInfo {
    pub rid: Option<String>,
    pub dims: Option<(u16, u16)>,
    /// bit/s
    pub bitrate: u64,
}

/// The plan's timing rules.
#[derive(Debug, Clone, Copy)]
pub struct PlanConfig {
    /// How long a participant keeps a slot before a higher-ranked one may take it.
    pub slot_dwell: Duration,
    /// How long the dominant speaker holds the floor before another may take it.
    pub dominant_dwell: Duration,
    /// How often the `layers` data repeats when only bitrates moved.
    pub layers_every: Duration,
    /// A publisher whose voice reports stop for this long is silent.
    pub voice_timeout: Duration,
}

impl Default for PlanConfig {
    fn default() -> Self {
        PlanConfig {
            slot_dwell: Duration::from_secs(3),
            dominant_dwell: Duration::from_millis(1500),
            layers_every: Duration::from_secs(2),
            voice_timeout: Duration::from_millis(1500),
        }
    }
}

/// What a viewer session is showing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ViewerState {
    /// No publisher to show yet (or the last one left).
    Waiting,
    /// The first slot with a holder (video first) shows this participant.
    Watching(ParticipantId),
}

/// One incoming track (one simulcast layer of one kind).
#[derive(Debug, Clone)]
pub struct TrackDesc {
    pub source: SourceId,
    pub kind: MediaKind,
    pub codec: CodecSpec,
    pub rid: Option<String>,
}

/// One track's measured rate, sampled once per tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrackRate {
    pub source: SourceId,
    /// Smoothed bitrate, bit/s.
    pub bitrate: u64,
    /// The highest smoothed bitrate seen (a stable rank for layers).
    pub peak: u64,
    /// Width and height of the last keyframe, when the codec tells.
    pub dims: Option<(u16, u16)>,
}

/// One slot of a viewer: an m-line it offered to receive on.
#[derive(Debug, Clone)]
pub struct SlotSpec {
    pub mid: String,
    pub kind: MediaKind,
}

#[derive(Debug, Clone)]
pub enum Input {
    PublisherJoined {
        id: ParticipantId,
        name: String,
        /// Milliseconds since the Unix epoch.
        joined_at_ms: u64,
        /// The codec per kind the publisher was answered with: known before its media.
        expected: Vec<(MediaKind, CodecSpec)>,
        /// A screen share of this participant: ranked before everyone, and never shown to
        /// the viewer that is that participant.
        screen_of: Option<ParticipantId>,
    },
    PublisherLeft {
        id: ParticipantId,
    },
    TrackAdded {
        publisher: ParticipantId,
        track: TrackDesc,
    },
    TrackRemoved {
        publisher: ParticipantId,
        source: SourceId,
    },
    /// One closed voice-activity interval of a publisher's audio.
    Voice {
        publisher: ParticipantId,
        speaking: bool,
        loudness: u8,
    },
    ViewerJoined {
        viewer: SessionId,
        target: Option<ParticipantId>,
        exclude: Option<ParticipantId>,
        slots: Vec<SlotSpec>,
        /// Another node's upstream session (cluster mode): served like any player, but not
        /// part of the audience (that node counts its own players).
        relay: bool,
    },
    /// Cluster mode: how many players the room has on the other nodes.
    Elsewhere {
        viewers: usize,
    },
    /// The viewer's transport is up; `negotiated` is each slot's codecs.
    ViewerConnected {
        viewer: SessionId,
        negotiated: Vec<Vec<CodecSpec>>,
    },
    ViewerLeft {
        viewer: SessionId,
    },
    /// WHEP layer selection for video slot `slot` (index among the viewer's slots).
    SetLayer {
        viewer: SessionId,
        slot: usize,
        pref: LayerPref,
    },
    /// A viewer pins a participant (ranked first among its candidates, so it keeps a slot),
    /// or unpins (`None`).
    Pin {
        viewer: SessionId,
        participant: Option<ParticipantId>,
    },
    /// What a publisher says of itself; `None` leaves that part as it was.
    State {
        id: ParticipantId,
        muted: Option<bool>,
        camera_off: Option<bool>,
        weak: Option<bool>,
    },
    /// Periodic: track rates and each viewer leg's bandwidth estimate, sampled now.
    Tick {
        rates: Vec<TrackRate>,
        estimates: Vec<(SessionId, u64)>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Output {
    /// Slot `slot` of `viewer` stops showing `from` and starts showing `to`; apply in that
    /// order (detach, point the slot, attach).
    Switch {
        viewer: SessionId,
        slot: usize,
        from: Option<SourceId>,
        to: Option<SourceId>,
    },
    Event(RoomEvent),
    ViewerState {
        viewer: SessionId,
        state: ViewerState,
    },
    /// A slot was given a codec its viewer did not negotiate (sent once per viewer).
    Unplayable {
        viewer: SessionId,
        reason: String,
    },
    /// Per video slot (by index) that shows someone, that publisher's layers, lowest first.
    Layers {
        viewer: SessionId,
        layers: Vec<(usize, Vec<LayerInfo>)>,
    },
    /// Slot `slot` of `viewer` sends `bps` of probe on top of its media (0: stop), so the
    /// leg's estimate can show whether its next layer up fits.
    Probe {
        viewer: SessionId,
        slot: usize,
        bps: u64,
    },
    /// A `SetLayer` that cannot be honoured, in one sentence.
    Refused {
        reason: String,
    },
}
