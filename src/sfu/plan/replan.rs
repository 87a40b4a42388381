//! Re-planning: which publisher each viewer slot holds (last-N) and which of its layers the
//! slot shows. Run by the plan after every input that can change the answer; reads the
//! plan's records through [`Ctx`] and writes only the viewers it is given.

use std::time::Instant;

use super::io::{Output, PlanConfig, ViewerState};
use super::state::{Publisher, Slot, Track, Viewer, active, kind_index};
use crate::media::SourceId;
use crate::sfu::events::{RoomEvent, SlotInfo};
use crate::sfu::ids::ParticipantId;
use crate::sfu::layers::{LayerDesc, LayerPref};
use crate::sfu::slots;
use crate::signal::MediaKind;

/// What re-planning reads.
pub(super) struct Ctx<'a> {
    pub cfg: &'a PlanConfig,
    /// In join order.
    pub publishers: &'a [Publisher],
    pub tracks: &'a [Track],
    pub dominant: Option<&'a ParticipantId>,
}

impl Ctx<'_> {
    /// Publishers in priority order: screen shares, dominant, most recent to start
    /// speaking, join order.
    fn ranked(&self) -> Vec<ParticipantId> {
        let mut ranked: Vec<(usize, &Publisher)> = self.publishers.iter().enumerate().collect();
        ranked.sort_by(|(ia, a), (ib, b)| {
            let dom = |p: &Publisher| Some(&p.id) == self.dominant;
            let screen = |p: &Publisher| p.screen_of.is_some();
            screen(b)
                .cmp(&screen(a))
                .then_with(|| dom(b).cmp(&dom(a)))
                .then_with(|| b.last_spoke.cmp(&a.last_spoke))
                .then_with(|| ia.cmp(ib))
        });
        ranked.into_iter().map(|(_, p)| p.id.clone()).collect()
    }

    fn track(&self, source: SourceId) -> Option<&Track> {
        track(self.tracks, source)
    }

    /// Re-points every slot of `viewers` at what it should show now.
    pub(super) fn replan(&self, now: Instant, viewers: &mut [Viewer], out: &mut Vec<Output>) {
        let ranked = self.ranked();
        for v in viewers {
            self.replan_viewer(now, &ranked, v, out);
        }
    }

    fn replan_viewer(
        &self,
        now: Instant,
        ranked: &[ParticipantId],
        v: &mut Viewer,
        out: &mut Vec<Output>,
    ) {
        // A conference viewer sees neither itself nor its own screen share.
        let own = |p: &ParticipantId| {
            v.exclude.as_ref().is_some_and(|me| {
                p == me
                    || self
                        .publishers
                        .iter()
                        .any(|x| &x.id == p && x.screen_of.as_ref() == Some(me))
            })
        };
        let mut candidates: Vec<ParticipantId> = match &v.target {
            Some(t) => ranked.iter().filter(|p| *p == t).cloned().collect(),
            None => ranked.iter().filter(|p| !own(p)).cloned().collect(),
        };
        // The pinned participant first: it keeps (or takes) a slot whoever speaks.
        if let Some(pin) = &v.pinned
            && let Some(i) = candidates.iter().position(|p| p == pin)
        {
            let p = candidates.remove(i);
            candidates.insert(0, p);
        }
        for kind in [MediaKind::Audio, MediaKind::Video] {
            let k = kind_index(kind);
            let count = v.slots.iter().filter(|s| s.spec.kind == kind).count();
            v.holders[k].resize(count, None);
            v.holders[k] = slots::assign(&v.holders[k], &candidates, now, self.cfg.slot_dwell);
        }
        let rate = |s: &Slot| {
            s.shows
                .and_then(|src| self.track(src))
                .map_or(0, |t| t.rate.bitrate)
        };
        let used: u64 = v
            .slots
            .iter()
            .filter(|s| s.spec.kind == MediaKind::Video)
            .fold(0u64, |sum, s| sum.saturating_add(rate(s)));
        let mut index = [0usize; 2];
        let mut map = Vec::with_capacity(v.slots.len());
        for i in 0..v.slots.len() {
            let kind = v.slots[i].spec.kind;
            let k = kind_index(kind);
            let holder = v.holders[k]
                .get(index[k])
                .cloned()
                .flatten()
                .map(|(p, _)| p);
            index[k] += 1;
            map.push(SlotInfo {
                mid: v.slots[i].spec.mid.clone(),
                kind: if k == 0 { "audio" } else { "video" },
                participant: holder.as_ref().map(|p| p.to_string()),
            });
            let slot = &v.slots[i];
            // This slot's share: the estimate less what the viewer's other video slots carry.
            let budget = (kind == MediaKind::Video)
                .then(|| {
                    v.estimate
                        .map(|e| e.saturating_sub(used.saturating_sub(rate(slot))))
                })
                .flatten();
            let want = holder
                .as_ref()
                .filter(|_| v.connected)
                .and_then(|p| self.pick(p, kind, &slot.pref, slot.shows, budget));
            let (need, at) = holder
                .as_ref()
                .filter(|_| v.connected)
                .map_or((None, None), |p| {
                    self.probe_need(p, kind, &slot.pref, want, budget)
                });
            if let Some(t) = want.and_then(|src| self.track(src))
                && !slot.negotiated.iter().any(|c| t.desc.codec.can_feed(c))
                && !v.unplayable_sent
            {
                v.unplayable_sent = true;
                out.push(Output::Unplayable {
                    viewer: v.id,
                    reason: format!(
                        "m-line {} did not negotiate {}",
                        slot.spec.mid,
                        t.desc.codec.describe()
                    ),
                });
            }
            if want != slot.shows {
                out.push(Output::Switch {
                    viewer: v.id,
                    slot: i,
                    from: slot.shows,
                    to: want,
                });
                v.slots[i].shows = want;
            }
            if let Some(bps) = v.slots[i].probe.step(now, need, at) {
                out.push(Output::Probe {
                    viewer: v.id,
                    slot: i,
                    bps,
                });
            }
        }
        if v.announced.as_ref() != Some(&map) {
            v.announced = Some(map.clone());
            out.push(Output::Event(RoomEvent::Slots {
                viewer: v.exclude.as_ref().map(|p| p.to_string()),
                slots: map,
            }));
        }
        let first = v.holders[1]
            .iter()
            .chain(v.holders[0].iter())
            .flatten()
            .next()
            .map(|(p, _)| p.clone());
        let state = first.map_or(ViewerState::Waiting, ViewerState::Watching);
        if state != v.state {
            v.state = state.clone();
            out.push(Output::ViewerState {
                viewer: v.id,
                state,
            });
        }
    }

    /// What a slot that will show `shows` of `p`'s `kind` must probe for its next layer up
    /// (see `LayerPref::probe`), and the index of the layer it shows.
    fn probe_need(
        &self,
        p: &ParticipantId,
        kind: MediaKind,
        pref: &LayerPref,
        shows: Option<SourceId>,
        budget: Option<u64>,
    ) -> (Option<u64>, Option<usize>) {
        let layers = layers_of(self.tracks, p, kind);
        let at = shows.and_then(|c| layers.iter().position(|t| t.desc.source == c));
        if layers.len() <= 1 {
            return (None, at);
        }
        (pref.probe(&describe(&layers), at, budget), at)
    }

    /// The track a slot with preference `pref` should show of publisher `p`'s `kind`, given
    /// what it shows now and its budget.
    fn pick(
        &self,
        p: &ParticipantId,
        kind: MediaKind,
        pref: &LayerPref,
        current: Option<SourceId>,
        budget: Option<u64>,
    ) -> Option<SourceId> {
        let layers = layers_of(self.tracks, p, kind);
        if layers.len() <= 1 {
            return layers.first().map(|t| t.desc.source);
        }
        let desc = describe(&layers);
        let current = current.and_then(|c| layers.iter().position(|t| t.desc.source == c));
        pref.pick(&desc, current, budget)
            .map(|i| layers[i].desc.source)
    }
}

/// What layer choice knows of each of `layers`.
fn describe<'a>(layers: &[&'a Track]) -> Vec<LayerDesc<'a>> {
    layers
        .iter()
        .map(|t| LayerDesc {
            rid: t.desc.rid.as_deref(),
            active: active(&t.rate),
            height: t.rate.dims.map(|d| d.1),
            bitrate: t.rate.bitrate,
        })
        .collect()
}

pub(super) fn track(tracks: &[Track], source: SourceId) -> Option<&Track> {
    tracks.iter().find(|t| t.desc.source == source)
}

/// Publisher `p`'s tracks of `kind`, lowest quality first: by picture size when every one
/// has told it (VP8 keyframes do), then by the highest bitrate each reached (a paused layer
/// keeps its rank), ties in arrival order. Size comes first because rates mislead while a
/// publisher ramps up: Chromium's `f` starts below its `h`'s peak, and a viewer ranked so
/// sat on `h`, taking it for the best.
pub(super) fn layers_of<'a>(
    tracks: &'a [Track],
    p: &ParticipantId,
    kind: MediaKind,
) -> Vec<&'a Track> {
    let mut v: Vec<&Track> = tracks
        .iter()
        .filter(|t| &t.publisher == p && t.desc.kind == kind)
        .collect();
    let sized = v.iter().all(|t| t.rate.dims.is_some());
    v.sort_by_key(|t| {
        let area = t.rate.dims.filter(|_| sized);
        let area = area.map_or(0, |(w, h)| u32::from(w) * u32::from(h));
        (area, t.rate.peak)
    });
    v
}
