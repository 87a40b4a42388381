//! What the plan tells others, computed from its records: roster entries, the codecs a new
//! viewer should bind, and the WHEP `layers` data. Pure, like the plan.

use std::time::Instant;

use super::io::{LayerInfo, Output, PlanConfig};
use super::replan::layers_of;
use super::state::{Publisher, Track, Viewer, active, by_id, kind_index};
use crate::sfu::events::ParticipantInfo;
use crate::sfu::ids::ParticipantId;
use crate::signal::{CodecSpec, MediaKind};

/// The roster entry for publisher `id`.
pub(super) fn info(
    publishers: &[Publisher],
    tracks: &[Track],
    id: &ParticipantId,
) -> Option<ParticipantInfo> {
    let p = by_id(publishers, id)?;
    let has = |kind| {
        tracks
            .iter()
            .any(|t| &t.publisher == id && t.desc.kind == kind)
    };
    Some(ParticipantInfo {
        id: p.id.to_string(),
        name: p.name.clone(),
        joined_at: p.joined_at_ms,
        audio: has(MediaKind::Audio),
        video: has(MediaKind::Video),
        speaking: p.speaking,
        state: p.state,
        screen_of: p.screen_of.as_ref().map(ToString::to_string),
    })
}

/// The codec publisher `p` sends for `kind`: its first arrived track's, else the answered one.
fn codec(tracks: &[Track], p: &Publisher, kind: MediaKind) -> Option<CodecSpec> {
    tracks
        .iter()
        .find(|t| t.publisher == p.id && t.desc.kind == kind)
        .map(|t| t.desc.codec.clone())
        .or_else(|| {
            p.expected
                .iter()
                .find(|(k, _)| *k == kind)
                .map(|(_, c)| c.clone())
        })
}

/// For a new viewer's m-lines of `kinds`: the codec of whoever each will show first (the
/// target, or the publishers in join order less `exclude`).
pub(super) fn codecs_for(
    publishers: &[Publisher],
    tracks: &[Track],
    target: Option<&ParticipantId>,
    exclude: Option<&ParticipantId>,
    kinds: &[MediaKind],
) -> Vec<Option<CodecSpec>> {
    let shown: Vec<&Publisher> = publishers
        .iter()
        .filter(|p| match target {
            Some(t) => &p.id == t,
            None => Some(&p.id) != exclude,
        })
        .collect();
    let mut index = [0usize; 2];
    kinds
        .iter()
        .map(|&kind| {
            let k = kind_index(kind);
            let p = shown.get(index[k]);
            index[k] += 1;
            p.and_then(|p| codec(tracks, p, kind))
        })
        .collect()
}

/// Refreshes each viewer's `layers` data: per video slot that shows someone, that publisher's
/// video layers, lowest first. Sent when their shape (rids, sizes, active flags) changes,
/// else every `layers_every` with fresh bitrates; never before the first non-empty one.
pub(super) fn layers(
    cfg: &PlanConfig,
    tracks: &[Track],
    viewers: &mut [Viewer],
    now: Instant,
    out: &mut Vec<Output>,
) {
    for v in viewers {
        let mut data = Vec::new();
        let mut shape = String::new();
        for (i, slot) in v.slots.iter().enumerate() {
            if slot.spec.kind != MediaKind::Video {
                continue;
            }
            let Some(p) = slot
                .shows
                .and_then(|s| tracks.iter().find(|t| t.desc.source == s))
                .map(|t| t.publisher.clone())
            else {
                continue;
            };
            let layers: Vec<LayerInfo> = layers_of(tracks, &p, MediaKind::Video)
                .into_iter()
                .map(|t| {
                    shape.push_str(&format!(
                        "{i}:{:?}:{:?}:{};",
                        t.desc.rid,
                        t.rate.dims,
                        active(&t.rate)
                    ));
                    LayerInfo {
                        rid: t.desc.rid.clone(),
                        dims: t.rate.dims,
                        bitrate: t.rate.bitrate,
                    }
                })
                .collect();
            data.push((i, layers));
        }
        let send = match &v.layers_sent {
            None => !data.is_empty(),
            Some((at, last)) => {
                *last != shape || now.saturating_duration_since(*at) >= cfg.layers_every
            }
        };
        if send {
            v.layers_sent = Some((now, shape));
            out.push(Output::Layers {
                viewer: v.id,
                layers: data,
            });
        }
    }
}
