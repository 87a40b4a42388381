//! The plan's own records of publishers, tracks and viewers: plain data, read and written by
//! the plan and its helpers.

use std::time::Instant;

use super::io::{SlotSpec, TrackDesc, TrackRate, ViewerState};
use crate::media::SourceId;
use crate::sfu::events::{SelfState, SlotInfo};
use crate::sfu::ids::{ParticipantId, SessionId};
use crate::sfu::layers::LayerPref;
use crate::signal::{CodecSpec, MediaKind};

pub(super) struct Publisher {
    pub(super) id: ParticipantId,
    pub(super) name: String,
    pub(super) joined_at_ms: u64,
    pub(super) expected: Vec<(MediaKind, CodecSpec)>,
    pub(super) speaking: bool,
    pub(super) loudness: u8,
    /// When its detector last reported.
    pub(super) last_voice: Option<Instant>,
    /// When it last started speaking (last-N priority).
    pub(super) last_spoke: Option<Instant>,
    /// A screen share: whose screen.
    pub(super) screen_of: Option<ParticipantId>,
    /// What it says of itself (display only).
    pub(super) state: SelfState,
    /// Its chat allowance (token bucket: messages, and when it was last topped up).
    pub(super) chat: (f64, Option<Instant>),
}

pub(super) struct Track {
    pub(super) publisher: ParticipantId,
    pub(super) desc: TrackDesc,
    pub(super) rate: TrackRate,
}

pub(super) struct Slot {
    pub(super) spec: SlotSpec,
    pub(super) negotiated: Vec<CodecSpec>,
    pub(super) pref: LayerPref,
    /// The source attached now (only while the viewer is connected).
    pub(super) shows: Option<SourceId>,
    /// When this slot probes for its next layer up.
    pub(super) probe: super::probe::Prober,
}

pub(super) struct Viewer {
    pub(super) id: SessionId,
    /// Another node's upstream session: not counted in the audience.
    pub(super) relay: bool,
    pub(super) target: Option<ParticipantId>,
    pub(super) exclude: Option<ParticipantId>,
    /// The participant this viewer pinned: first among its candidates.
    pub(super) pinned: Option<ParticipantId>,
    pub(super) slots: Vec<Slot>,
    pub(super) connected: bool,
    /// The latest bandwidth estimate, bit/s.
    pub(super) estimate: Option<u64>,
    /// Per kind (audio, video): who each slot of that kind shows, and since when.
    pub(super) holders: [Vec<Option<(ParticipantId, Instant)>>; 2],
    pub(super) announced: Option<Vec<SlotInfo>>,
    pub(super) state: ViewerState,
    pub(super) unplayable_sent: bool,
    /// When `layers` was last sent, with the shape it had (rids, sizes, active flags).
    pub(super) layers_sent: Option<(Instant, String)>,
}

pub(super) fn kind_index(kind: MediaKind) -> usize {
    match kind {
        MediaKind::Audio => 0,
        MediaKind::Video => 1,
    }
}

/// A layer is active while it runs at more than a tenth of its best rate (browsers pause
/// the top layers when their uplink estimate drops).
pub(super) fn active(rate: &TrackRate) -> bool {
    rate.peak == 0 || rate.bitrate.saturating_mul(10) > rate.peak
}

/// A viewer's slots as the plan sees them, for queries and tests.
pub type Holders = [Vec<Option<ParticipantId>>; 2];

/// Lookup helper shared by the views.
pub(super) fn by_id<'a>(publishers: &'a [Publisher], id: &ParticipantId) -> Option<&'a Publisher> {
    publishers.iter().find(|p| &p.id == id)
}
