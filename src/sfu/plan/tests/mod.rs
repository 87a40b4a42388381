//! The planner driven with a fake clock: a scenario per rule (`scenarios`), then random input
//! sequences checked against the invariants after every step (`random`). This file is the
//! harness: a plan, a clock, and everything the plan said.

use std::time::{Duration, Instant};

use super::*;
use crate::media::SourceId;

mod random;
mod scenarios;
mod social;

pub(super) fn codec(mime: &str, clock: u32) -> CodecSpec {
    CodecSpec {
        mime_type: mime.into(),
        clock_rate: clock,
        channels: if mime.starts_with("audio") { 2 } else { 0 },
        fmtp: String::new(),
    }
}
pub(super) fn vp8() -> CodecSpec {
    codec("video/VP8", 90000)
}

pub(super) fn opus() -> CodecSpec {
    codec("audio/opus", 48000)
}

/// A room under test: the plan, a clock, and everything it said.
pub(super) struct Room {
    pub(super) plan: RoomPlan,
    pub(super) now: Instant,
    pub(super) out: Vec<Output>,
}

impl Room {
    pub(super) fn new() -> Room {
        Room {
            plan: RoomPlan::new(PlanConfig::default()),
            now: Instant::now(),
            out: Vec::new(),
        }
    }
    pub(super) fn at(&mut self, ms: u64) -> &mut Room {
        self.now += Duration::from_millis(ms);
        self
    }
    pub(super) fn go(&mut self, input: Input) -> Vec<Output> {
        let o = self.plan.handle(self.now, input);
        self.out.extend(o.clone());
        o
    }
    pub(super) fn publisher(&mut self) -> ParticipantId {
        let id = ParticipantId::new();
        self.go(Input::PublisherJoined {
            id: id.clone(),
            name: "p".into(),
            joined_at_ms: 0,
            expected: vec![(MediaKind::Audio, opus()), (MediaKind::Video, vp8())],
            screen_of: None,
        });
        id
    }
    pub(super) fn track(
        &mut self,
        p: &ParticipantId,
        kind: MediaKind,
        rid: Option<&str>,
    ) -> SourceId {
        let source = SourceId::next();
        let codec = match kind {
            MediaKind::Audio => opus(),
            MediaKind::Video => vp8(),
        };
        self.go(Input::TrackAdded {
            publisher: p.clone(),
            track: TrackDesc {
                source,
                kind,
                codec,
                rid: rid.map(str::to_owned),
            },
        });
        source
    }
    /// A viewer with slots of `kinds` (mids "0", "1", …), not yet connected.
    pub(super) fn join(
        &mut self,
        target: Option<&ParticipantId>,
        exclude: Option<&ParticipantId>,
        kinds: &[MediaKind],
    ) -> SessionId {
        let id = SessionId::new();
        let slots = kinds.iter().enumerate();
        self.go(Input::ViewerJoined {
            viewer: id,
            target: target.cloned(),
            exclude: exclude.cloned(),
            slots: slots
                .map(|(i, &kind)| SlotSpec {
                    mid: i.to_string(),
                    kind,
                })
                .collect(),
            relay: false,
        });
        id
    }
    /// The viewer's transport comes up with each slot negotiating `codec` of its kind.
    pub(super) fn connect(&mut self, viewer: SessionId, video: &CodecSpec) {
        let kinds = self.plan.viewers.iter().find(|v| v.id == viewer).unwrap();
        let negotiated = kinds
            .slots
            .iter()
            .map(|s| match s.spec.kind {
                MediaKind::Audio => vec![opus()],
                MediaKind::Video => vec![video.clone()],
            })
            .collect();
        self.go(Input::ViewerConnected { viewer, negotiated });
    }
    /// A viewer with `audio` + `video` slots (audio first), connected with Opus and VP8.
    pub(super) fn viewer(
        &mut self,
        exclude: Option<&ParticipantId>,
        audio: usize,
        video: usize,
    ) -> SessionId {
        let kinds: Vec<MediaKind> = std::iter::repeat_n(MediaKind::Audio, audio)
            .chain(std::iter::repeat_n(MediaKind::Video, video))
            .collect();
        let id = self.join(None, exclude, &kinds);
        self.connect(id, &vp8());
        id
    }
    pub(super) fn voice(&mut self, p: &ParticipantId, speaking: bool, loudness: u8) -> Vec<Output> {
        self.go(Input::Voice {
            publisher: p.clone(),
            speaking,
            loudness,
        })
    }
    pub(super) fn tick(
        &mut self,
        rates: &[(SourceId, u64)],
        estimates: &[(SessionId, u64)],
    ) -> Vec<Output> {
        self.go(Input::Tick {
            rates: rates
                .iter()
                .map(|&(source, bitrate)| TrackRate {
                    source,
                    bitrate,
                    peak: bitrate,
                    dims: None,
                })
                .collect(),
            estimates: estimates.to_vec(),
        })
    }
    pub(super) fn shows(&self, v: SessionId) -> Vec<Option<SourceId>> {
        self.plan.shows(v).unwrap()
    }
}

pub(super) fn events(out: &[Output]) -> Vec<&RoomEvent> {
    out.iter()
        .filter_map(|o| match o {
            Output::Event(e) => Some(e),
            _ => None,
        })
        .collect()
}
