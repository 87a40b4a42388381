//! What an operator sees of a room (the admin API): each publisher with its tracks, each
//! viewer with what every slot shows, and at which layer and rate. A copy taken from the plan's
//! records in one go, so it is consistent with itself; pure, like the plan.

use super::replan::track;
use super::state::{Publisher, Track, Viewer, kind_index};
use crate::sfu::ids::{ParticipantId, SessionId};
use crate::signal::MediaKind;

/// One incoming track (one simulcast layer of one kind).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackView {
    pub kind: MediaKind,
    /// e.g. `video/VP8`.
    pub codec: String,
    pub rid: Option<String>,
    /// Smoothed bitrate, bit/s.
    pub bitrate: u64,
    /// Width and height of its last keyframe, when the codec tells.
    pub dims: Option<(u16, u16)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublisherView {
    pub id: ParticipantId,
    pub name: String,
    /// Milliseconds since the Unix epoch.
    pub joined_at_ms: u64,
    pub speaking: bool,
    /// Lowest layer first within a kind (as layer choice ranks them), audio before video.
    pub tracks: Vec<TrackView>,
}

/// One slot of a viewer session: an m-line and what it shows now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotView {
    pub mid: String,
    pub kind: MediaKind,
    /// The participant held in the slot.
    pub shows: Option<ParticipantId>,
    /// The layer attached (its rid, `None` for a single-layer publisher), when media flows.
    pub layer: Option<Option<String>>,
    /// The rate of the attached track, bit/s: what the slot forwards.
    pub bitrate: u64,
    pub dims: Option<(u16, u16)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ViewerView {
    pub id: SessionId,
    /// The publisher a by-participant viewer follows.
    pub target: Option<ParticipantId>,
    /// The conference participant this session belongs to (`?self=`).
    pub participant: Option<ParticipantId>,
    pub connected: bool,
    /// The viewer leg's latest bandwidth estimate (REMB and send-side, `rtc::estimates`), bit/s.
    pub estimate: Option<u64>,
    pub slots: Vec<SlotView>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanView {
    pub publishers: Vec<PublisherView>,
    pub viewers: Vec<ViewerView>,
}

pub(super) fn view(publishers: &[Publisher], tracks: &[Track], viewers: &[Viewer]) -> PlanView {
    let publishers = publishers
        .iter()
        .map(|p| {
            let mine: Vec<&Track> = [MediaKind::Audio, MediaKind::Video]
                .into_iter()
                .flat_map(|k| super::replan::layers_of(tracks, &p.id, k))
                .collect();
            PublisherView {
                id: p.id.clone(),
                name: p.name.clone(),
                joined_at_ms: p.joined_at_ms,
                speaking: p.speaking,
                tracks: mine
                    .into_iter()
                    .map(|t| TrackView {
                        kind: t.desc.kind,
                        codec: t.desc.codec.mime_type.clone(),
                        rid: t.desc.rid.clone(),
                        bitrate: t.rate.bitrate,
                        dims: t.rate.dims,
                    })
                    .collect(),
            }
        })
        .collect();
    let viewers = viewers
        .iter()
        .map(|v| {
            let mut seen = [0usize; 2];
            let slots = v
                .slots
                .iter()
                .map(|s| {
                    let k = kind_index(s.spec.kind);
                    let holder = v.holders[k]
                        .get(seen[k])
                        .and_then(|h| h.as_ref().map(|(id, _)| id.clone()));
                    seen[k] += 1;
                    let attached = s.shows.and_then(|src| track(tracks, src));
                    SlotView {
                        mid: s.spec.mid.clone(),
                        kind: s.spec.kind,
                        shows: holder,
                        layer: attached.map(|t| t.desc.rid.clone()),
                        bitrate: attached.map_or(0, |t| t.rate.bitrate),
                        dims: attached.and_then(|t| t.rate.dims),
                    }
                })
                .collect();
            ViewerView {
                id: v.id,
                target: v.target.clone(),
                participant: v.exclude.clone(),
                connected: v.connected,
                estimate: v.estimate,
                slots,
            }
        })
        .collect();
    PlanView {
        publishers,
        viewers,
    }
}
