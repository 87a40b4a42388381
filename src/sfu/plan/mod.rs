//! The room as a pure state machine: who is in it, what each viewer slot shows, and what the
//! room tells its subscribers. No I/O, no clock of its own, no tokio: [`RoomPlan::handle`]
//! takes the time and one [`Input`] and returns the [`Output`]s to apply, in order. The room
//! task (`sfu::room`) owns one plan and applies its outputs to fan-outs and channels.
//!
//! Policy, all here:
//! - **Ranking** of publishers: the dominant speaker first, then the most recent to start
//!   speaking, then join order. A conference viewer's candidates are that ranking without
//!   itself (`exclude`); a by-participant viewer's only candidate is its `target`.
//! - **Last-N**: each kind's slots take the candidates with [`slots::assign`] (holders keep
//!   their slot; a higher-ranked one takes a slot only after the holder's dwell).
//! - **Layers**: a video slot shows the layer [`LayerPref::pick`] chooses from the holder's
//!   layers (ranked by peak bitrate; active while above a tenth of the peak) for the slot's
//!   preference and budget: the viewer's estimate less what its *other* video slots carry,
//!   from one rate snapshot per tick, in saturating arithmetic.
//! - **Playability**: a slot given a codec its m-line did not negotiate still attaches (the
//!   slot drops what it cannot send) and the viewer is told once ([`Output::Unplayable`]).
//! - **Voice**: speaking follows the per-interval reports of the tracks' detectors; a publisher
//!   whose reports stop (DTX, a muted track) stops speaking after `voice_timeout`. The dominant
//!   speaker is the loudest one speaking, held for `dominant_dwell`.
//! - Media reaches a slot only once its viewer's transport is up (`ViewerConnected`), so the
//!   keyframe burst is never written into a connection that cannot send.

use std::time::Instant;

use crate::media::SourceId;
use crate::media::vad::Dominant;
use crate::sfu::events::{ParticipantInfo, RoomEvent};
use crate::sfu::ids::{ParticipantId, SessionId};
use crate::sfu::layers::LayerPref;
use crate::signal::{CodecSpec, MediaKind};

mod inspect;
mod io;
mod probe;
mod replan;
pub(super) mod social;
mod state;
mod view;
pub use inspect::{PlanView, PublisherView, SlotView, TrackView, ViewerView};
pub use io::{Input, LayerInfo, Output, PlanConfig, SlotSpec, TrackDesc, TrackRate, ViewerState};
pub use social::ChatRefused;
pub use state::Holders;
use state::{Publisher, Slot, Track, Viewer, by_id};

#[cfg(test)]
mod tests;

/// The room's state and policy.
pub struct RoomPlan {
    cfg: PlanConfig,
    /// In join order (the last tie-break of the ranking).
    publishers: Vec<Publisher>,
    /// In arrival order.
    tracks: Vec<Track>,
    /// In join order.
    viewers: Vec<Viewer>,
    dominant: Dominant<ParticipantId>,
    /// Cluster mode: the room's viewers on other nodes (their edges' counts).
    elsewhere: usize,
    /// The audience last announced (`viewercount`), so it is said once per change.
    announced_audience: Option<usize>,
    /// The latest chat messages, oldest first, for those who come later.
    chat: std::collections::VecDeque<RoomEvent>,
}

impl RoomPlan {
    pub fn new(cfg: PlanConfig) -> RoomPlan {
        RoomPlan {
            cfg,
            publishers: Vec::new(),
            tracks: Vec::new(),
            viewers: Vec::new(),
            dominant: Dominant::new(cfg.dominant_dwell),
            elsewhere: 0,
            announced_audience: None,
            chat: Default::default(),
        }
    }

    pub fn handle(&mut self, now: Instant, input: Input) -> Vec<Output> {
        let mut out = Vec::new();
        match input {
            Input::PublisherJoined {
                id,
                name,
                joined_at_ms,
                expected,
                screen_of,
            } => {
                if self.has_publisher(&id) {
                    return out;
                }
                self.publishers.push(Publisher {
                    id: id.clone(),
                    name,
                    joined_at_ms,
                    expected,
                    speaking: false,
                    loudness: 0,
                    last_voice: None,
                    last_spoke: None,
                    screen_of,
                    state: Default::default(),
                    chat: (social::CHAT_BURST, None),
                });
                if let Some(participant) = self.info(&id) {
                    out.push(Output::Event(RoomEvent::Joined { participant }));
                }
                self.replan(now, &mut out);
            }
            Input::PublisherLeft { id } => {
                let before = self.publishers.len();
                self.publishers.retain(|p| p.id != id);
                if self.publishers.len() == before {
                    return out;
                }
                self.tracks.retain(|t| t.publisher != id);
                if self.dominant.current() == Some(&id) {
                    self.dominant = Dominant::new(self.cfg.dominant_dwell);
                }
                out.push(Output::Event(RoomEvent::Left { id: id.to_string() }));
                self.replan(now, &mut out);
            }
            Input::TrackAdded { publisher, track } => {
                if !self.has_publisher(&publisher)
                    || self.tracks.iter().any(|t| t.desc.source == track.source)
                {
                    return out;
                }
                let rate = TrackRate {
                    source: track.source,
                    bitrate: 0,
                    peak: 0,
                    dims: None,
                };
                self.tracks.push(Track {
                    publisher: publisher.clone(),
                    desc: track,
                    rate,
                });
                out.extend(self.tracks_event(&publisher));
                self.replan(now, &mut out);
            }
            Input::TrackRemoved { publisher, source } => {
                let before = self.tracks.len();
                self.tracks
                    .retain(|t| !(t.desc.source == source && t.publisher == publisher));
                if self.tracks.len() == before {
                    return out;
                }
                out.extend(self.tracks_event(&publisher));
                self.replan(now, &mut out);
            }
            Input::Voice {
                publisher,
                speaking,
                loudness,
            } => {
                let Some(p) = self.publishers.iter_mut().find(|p| p.id == publisher) else {
                    return out;
                };
                p.last_voice = Some(now);
                p.loudness = loudness;
                if p.speaking != speaking {
                    p.speaking = speaking;
                    out.push(Output::Event(RoomEvent::Speaking {
                        id: publisher.to_string(),
                        speaking,
                        level: loudness,
                    }));
                    if speaking {
                        p.last_spoke = Some(now);
                        self.replan(now, &mut out); // last-N: slots follow the speakers
                    }
                }
            }
            Input::ViewerJoined {
                viewer,
                target,
                exclude,
                slots,
                relay,
            } => {
                if self.viewers.iter().any(|v| v.id == viewer) {
                    return out;
                }
                self.viewers.push(Viewer {
                    id: viewer,
                    relay,
                    target,
                    exclude,
                    pinned: None,
                    slots: slots
                        .into_iter()
                        .map(|spec| Slot {
                            spec,
                            negotiated: Vec::new(),
                            pref: LayerPref::Auto,
                            shows: None,
                            probe: probe::Prober::default(),
                        })
                        .collect(),
                    connected: false,
                    estimate: None,
                    holders: [Vec::new(), Vec::new()],
                    announced: None,
                    state: ViewerState::Waiting,
                    unplayable_sent: false,
                    layers_sent: None,
                });
                self.announce_audience(&mut out);
                self.replan(now, &mut out);
            }
            Input::ViewerConnected { viewer, negotiated } => {
                let Some(v) = self.viewers.iter_mut().find(|v| v.id == viewer) else {
                    return out;
                };
                v.connected = true;
                for (slot, codecs) in v.slots.iter_mut().zip(negotiated) {
                    slot.negotiated = codecs;
                }
                self.replan(now, &mut out);
            }
            Input::ViewerLeft { viewer } => {
                let Some(i) = self.viewers.iter().position(|v| v.id == viewer) else {
                    return out;
                };
                let v = self.viewers.remove(i);
                self.announce_audience(&mut out);
                for (slot, s) in v.slots.iter().enumerate() {
                    if s.shows.is_some() {
                        out.push(Output::Switch {
                            viewer,
                            slot,
                            from: s.shows,
                            to: None,
                        });
                    }
                }
            }
            Input::Elsewhere { viewers } => {
                self.elsewhere = viewers;
                self.announce_audience(&mut out);
            }
            Input::SetLayer { viewer, slot, pref } => {
                if let Err(reason) = self.set_layer(viewer, slot, pref) {
                    out.push(Output::Refused { reason });
                    return out;
                }
                self.replan(now, &mut out);
            }
            Input::Pin {
                viewer,
                participant,
            } => {
                if let Some(v) = self.viewers.iter_mut().find(|v| v.id == viewer) {
                    v.pinned = participant;
                    self.replan(now, &mut out);
                }
            }
            Input::State {
                id,
                muted,
                camera_off,
                weak,
            } => out.extend(self.set_state(&id, muted, camera_off, weak)),
            Input::Tick { rates, estimates } => self.tick(now, rates, estimates, &mut out),
        }
        out
    }

    fn set_layer(&mut self, viewer: SessionId, slot: usize, pref: LayerPref) -> Result<(), String> {
        let Some(v) = self.viewers.iter().position(|v| v.id == viewer) else {
            return Err("This session is not in the room.".into());
        };
        let Some(s) = self.viewers[v].slots.get(slot) else {
            return Err(format!("mediaId {slot} is not an m-line of this session."));
        };
        if s.spec.kind != MediaKind::Video {
            return Err(format!(
                "mediaId {slot} is not a video m-line of this session."
            ));
        }
        if let LayerPref::Rid(rid) = &pref
            && let Some(shown) = s.shows
        {
            let publisher = self.track(shown).map(|t| t.publisher.clone());
            let sends = self.tracks.iter().any(|t| {
                Some(&t.publisher) == publisher.as_ref()
                    && t.desc.kind == MediaKind::Video
                    && t.desc.rid.as_deref() == Some(rid.as_str())
            });
            if !sends {
                return Err(format!(
                    "The publisher shown here sends no layer with rid \"{rid}\"."
                ));
            }
        }
        self.viewers[v].slots[slot].pref = pref;
        Ok(())
    }

    fn tick(
        &mut self,
        now: Instant,
        rates: Vec<TrackRate>,
        estimates: Vec<(SessionId, u64)>,
        out: &mut Vec<Output>,
    ) {
        for r in rates {
            if let Some(t) = self.tracks.iter_mut().find(|t| t.desc.source == r.source) {
                t.rate = r;
            }
        }
        for (viewer, bps) in estimates {
            if let Some(v) = self.viewers.iter_mut().find(|v| v.id == viewer) {
                v.estimate = Some(bps);
            }
        }
        // Reports that stopped (DTX silence, a muted or ended track) mean silence.
        for p in &mut self.publishers {
            let stale = p
                .last_voice
                .is_none_or(|t| now.saturating_duration_since(t) >= self.cfg.voice_timeout);
            if stale && p.speaking {
                p.speaking = false;
                out.push(Output::Event(RoomEvent::Speaking {
                    id: p.id.to_string(),
                    speaking: false,
                    level: 0,
                }));
            }
            if stale {
                p.loudness = 0;
            }
        }
        let candidates: Vec<(ParticipantId, bool, u8)> = self
            .publishers
            .iter()
            .map(|p| (p.id.clone(), p.speaking, p.loudness))
            .collect();
        if let Some(id) = self.dominant.update(now, &candidates) {
            out.push(Output::Event(RoomEvent::ActiveSpeaker {
                id: id.to_string(),
            }));
        }
        // Slot changes held back by a dwell become due as time passes; layers follow rates.
        self.replan(now, out);
        view::layers(&self.cfg, &self.tracks, &mut self.viewers, now, out);
    }

    fn replan(&mut self, now: Instant, out: &mut Vec<Output>) {
        let ctx = replan::Ctx {
            cfg: &self.cfg,
            publishers: &self.publishers,
            tracks: &self.tracks,
            dominant: self.dominant.current(),
        };
        ctx.replan(now, &mut self.viewers, out);
    }

    fn track(&self, source: SourceId) -> Option<&Track> {
        replan::track(&self.tracks, source)
    }

    /// The roster entry for publisher `id`.
    pub fn info(&self, id: &ParticipantId) -> Option<ParticipantInfo> {
        view::info(&self.publishers, &self.tracks, id)
    }

    /// Everyone in the room now, and the active speaker.
    pub fn roster(&self) -> RoomEvent {
        RoomEvent::Roster {
            participants: self
                .publishers
                .iter()
                .filter_map(|p| self.info(&p.id))
                .collect(),
            active_speaker: self.dominant.current().map(|id| id.to_string()),
        }
    }

    pub fn has_publisher(&self, id: &ParticipantId) -> bool {
        by_id(&self.publishers, id).is_some()
    }

    /// Everything an operator sees of the room, consistent at this instant.
    pub fn view(&self) -> PlanView {
        inspect::view(&self.publishers, &self.tracks, &self.viewers)
    }

    /// The room's audience: its players here (not other nodes' upstream sessions) and, in
    /// cluster mode, on the other nodes.
    pub fn viewer_count(&self) -> usize {
        self.local_viewers() + self.elsewhere
    }

    /// The room's players on this node, other nodes' upstream sessions not counted.
    pub fn local_viewers(&self) -> usize {
        self.viewers.iter().filter(|v| !v.relay).count()
    }

    /// Says `viewercount` when the audience changed since it was last said.
    fn announce_audience(&mut self, out: &mut Vec<Output>) {
        let n = self.viewer_count();
        if self.announced_audience != Some(n) {
            self.announced_audience = Some(n);
            out.push(Output::Event(RoomEvent::Viewercount { viewercount: n }));
        }
    }

    pub fn is_empty(&self) -> bool {
        self.publishers.is_empty() && self.viewers.is_empty()
    }

    /// Publishers in join order.
    pub fn publishers(&self) -> Vec<ParticipantId> {
        self.publishers.iter().map(|p| p.id.clone()).collect()
    }

    /// Publisher `id`'s tracks, in arrival order.
    pub fn sources_of(&self, id: &ParticipantId) -> Vec<SourceId> {
        self.tracks
            .iter()
            .filter(|t| &t.publisher == id)
            .map(|t| t.desc.source)
            .collect()
    }

    /// The publisher a source belongs to.
    pub fn publisher_of(&self, source: SourceId) -> Option<ParticipantId> {
        self.track(source).map(|t| t.publisher.clone())
    }

    /// For a new viewer's m-lines of `kinds`: the codec of whoever each will show first (the
    /// target, or the publishers in join order less `exclude`), so its tracks are bound with
    /// the publisher's codec.
    pub fn codecs_for(
        &self,
        target: Option<&ParticipantId>,
        exclude: Option<&ParticipantId>,
        kinds: &[MediaKind],
    ) -> Vec<Option<CodecSpec>> {
        view::codecs_for(&self.publishers, &self.tracks, target, exclude, kinds)
    }

    /// Who each slot of `viewer` holds, per kind (audio, video).
    pub fn holders(&self, viewer: SessionId) -> Option<Holders> {
        let v = self.viewers.iter().find(|v| v.id == viewer)?;
        Some(
            v.holders
                .clone()
                .map(|h| h.into_iter().map(|s| s.map(|(p, _)| p)).collect()),
        )
    }

    /// What each slot of `viewer` shows (attached sources), by slot index.
    pub fn shows(&self, viewer: SessionId) -> Option<Vec<Option<SourceId>>> {
        let v = self.viewers.iter().find(|v| v.id == viewer)?;
        Some(v.slots.iter().map(|s| s.shows).collect())
    }

    fn tracks_event(&self, publisher: &ParticipantId) -> Option<Output> {
        let info = self.info(publisher)?;
        Some(Output::Event(RoomEvent::Tracks {
            id: info.id,
            audio: info.audio,
            video: info.video,
        }))
    }
}

impl std::fmt::Debug for RoomPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoomPlan")
            .field("publishers", &self.publishers.len())
            .field("tracks", &self.tracks.len())
            .field("viewers", &self.viewers.len())
            .finish()
    }
}
