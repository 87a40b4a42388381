//! A packager's task: the tap's packets into parts and segments.
//!
//! Parts are cut every [`PART`] of media, or at a video keyframe once the segment has run
//! [`SEGMENT`] (the keyframe then starts the next segment); the packager asks the publisher
//! for a keyframe as a segment nears its aim, so segments stay near it whatever the
//! publisher's own keyframe interval. A cut takes every sample before its time from each
//! track; a track's late sample goes into the next part with its own decode time.

use std::sync::Weak;
use std::time::{Duration, Instant, SystemTime};

use super::playlist::{KEEP, PART, Part, SEGMENT, Segment, TARGET_DURATION};
use super::{IDLE, Packager, Packagers};
use crate::container::depack::Codec;
use crate::container::fmp4::{self, FragTrack};
use crate::container::{self, Ingest};
use crate::lock::Locked;
use crate::sfu::{Tap, Tapped};
use crate::signal::MediaKind;

/// How long a hole waits for its repair: live, so shorter than a recording's.
const REPAIR_WAIT: Duration = Duration::from_millis(150);
/// Media held before the init segment is written (path delays settle, parameter sets come).
const WARM_UP: Duration = Duration::from_millis(600);
/// How long the init waits for the publisher's sender reports (see `record`'s).
const SENDER_REPORT_WAIT: Duration = Duration::from_secs(3);
/// The newest sample of the slower track may arrive this long after the faster's.
const SKEW: f64 = 0.1;

struct State {
    tracks: [Option<Ingest>; 2],
    epoch: Instant,
    wall: SystemTime,
    first: Option<Instant>,
    /// Which kinds are in the stream, once the init is out.
    kinds: Option<[bool; 2]>,
    origin: f64,
    /// Where the open part starts, on the epoch clock.
    part_start: f64,
    /// How long the open segment has run, up to `part_start`.
    segment_run: f64,
    seq: u32,
    last_key_request: Option<Instant>,
}

pub(super) async fn run(p: std::sync::Arc<Packager>, mut tap: Tap, all: Weak<Packagers>) {
    let mut st = State {
        tracks: [None, None],
        epoch: Instant::now(),
        wall: SystemTime::now(),
        first: None,
        kinds: None,
        origin: 0.0,
        part_start: 0.0,
        segment_run: 0.0,
        seq: 0,
        last_key_request: None,
    };
    let mut tick = tokio::time::interval(Duration::from_millis(50));
    loop {
        tokio::select! {
            pkt = tap.rx.recv() => match pkt {
                Some(t) => {
                    if let Err(why) = st.packet(&tap, t) {
                        *p.refused.locked() = Some(why);
                        break;
                    }
                }
                None => break,
            },
            _ = tick.tick() => {
                if p.idle() > IDLE {
                    break;
                }
                let now = Instant::now();
                let mut want = false;
                for (k, t) in st.tracks.iter_mut().enumerate() {
                    let Some(t) = t else { continue };
                    want |= t.poll(now);
                    let kind = if k == 1 { MediaKind::Video } else { MediaKind::Audio };
                    t.note_sender_report(tap.sender_report(kind));
                }
                if want {
                    tap.request_keyframe();
                }
                if let Err(why) = st.cut(&p, &tap) {
                    *p.refused.locked() = Some(why);
                    break;
                }
            }
        }
    }
    p.ended.store(true, std::sync::atomic::Ordering::Release);
    p.changed.send_modify(|v| *v += 1);
    if let Some(all) = all.upgrade() {
        all.forget(&p);
    }
    tracing::info!(room = %p.key.0, "HLS packager stopped");
}

impl State {
    fn packet(&mut self, tap: &Tap, t: Tapped) -> Result<(), String> {
        let now = Instant::now();
        self.first.get_or_insert(now);
        let k = (t.kind == MediaKind::Video) as usize;
        let Some(codec) = Codec::of(&t.codec) else {
            return Ok(());
        };
        if codec == Codec::Vp8 {
            return Err(
                "The publisher sends VP8, which HLS cannot carry without transcoding; \
                 publish H.264 (the /publish page can) to watch over HLS"
                    .into(),
            );
        }
        let track = self.tracks[k]
            .get_or_insert_with(|| Ingest::new(codec, t.codec.channels, k as u32 + 1, REPAIR_WAIT));
        if track.codec != codec {
            return Ok(());
        }
        let arrival = now.duration_since(self.epoch).as_secs_f64();
        if track.packet(now, arrival, t.pkt) {
            tap.request_keyframe();
        }
        Ok(())
    }

    /// Writes the init once it can, then cuts what parts are due.
    fn cut(&mut self, p: &Packager, tap: &Tap) -> Result<(), String> {
        if self.kinds.is_none() && !self.init(p, tap)? {
            return Ok(());
        }
        let kinds = self.kinds.unwrap_or_default();
        let in_stream = |k: usize| kinds[k];
        let newest = self
            .tracks
            .iter()
            .enumerate()
            .filter(|(k, _)| in_stream(*k))
            .filter_map(|(_, t)| {
                let t = t.as_ref()?;
                t.lane.time_of(t.lane.pending().checked_sub(1)?)
            })
            .fold(f64::NEG_INFINITY, f64::max);
        let safe = newest - SKEW;
        loop {
            let aim = self.part_start + PART;
            // A keyframe past the segment's aim starts the next segment.
            let key = self.tracks[1].as_ref().filter(|_| kinds[1]).and_then(|v| {
                let from = v.lane.index_at(self.part_start + 1e-3);
                let i = v.lane.keyframe_at_or_after(from)?;
                let t = v.lane.time_of(i)?;
                (t <= aim.min(safe) && self.segment_run + (t - self.part_start) >= SEGMENT)
                    .then_some(t)
            });
            let (end, closes) = match key {
                Some(t) => (t, true),
                None if safe >= aim => {
                    // No keyframe in time: a segment past the target duration closes anyway.
                    let run = self.segment_run + PART;
                    (aim, run + PART > TARGET_DURATION as f64)
                }
                None => break,
            };
            self.emit(p, end, closes)?;
        }
        let due = self.segment_run + (safe - self.part_start) >= SEGMENT - 0.5;
        if due
            && self
                .last_key_request
                .is_none_or(|t| t.elapsed() >= Duration::from_secs(1))
        {
            self.last_key_request = Some(Instant::now());
            tap.request_keyframe();
        }
        Ok(())
    }

    /// Cuts the open part at `end` (epoch clock); `closes` ends its segment there too.
    fn emit(&mut self, p: &Packager, end: f64, closes: bool) -> Result<(), String> {
        let kinds = self.kinds.unwrap_or_default();
        let mut runs: Vec<FragTrack> = Vec::new();
        let mut independent = !kinds[1];
        for (k, t) in self.tracks.iter_mut().enumerate() {
            let Some(t) = t.as_mut() else { continue };
            let n = t.lane.index_at(end);
            let run = t.lane.take(self.origin, n, !kinds[k]);
            if let Some(run) = run.filter(|_| kinds[k]) {
                if k == 1 {
                    independent = run.samples.first().is_some_and(|s| s.keyframe);
                }
                runs.push(run);
            }
        }
        let duration = end - self.part_start;
        // The part's start on the wall clock (before the packager started, for media the
        // keyframe cache replayed).
        let wall_ms = self
            .wall
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let date_ms = (wall_ms + (self.part_start * 1000.0) as i64).max(0) as u64;
        self.part_start = end;
        self.segment_run += duration;
        if !runs.is_empty() {
            self.seq += 1;
            let bytes = fmp4::fragment(self.seq, &runs).map_err(|e| e.to_string())?;
            let mut s = p.state.locked();
            let open = s.segments.back().is_some_and(|g| !g.complete);
            if !open {
                let msn = s.segments.back().map_or(0, |g| g.msn + 1);
                s.segments.push_back(Segment {
                    msn,
                    parts: Vec::new(),
                    complete: false,
                    date_ms,
                });
            }
            if let Some(g) = s.segments.back_mut() {
                g.parts.push(Part {
                    bytes: bytes.into(),
                    duration,
                    independent,
                });
                if closes {
                    g.complete = true;
                }
            }
            while s.segments.iter().filter(|g| g.complete).count() > KEEP {
                s.segments.pop_front();
            }
        } else if closes && let Some(g) = p.state.locked().segments.back_mut() {
            g.complete = true;
        }
        if closes {
            self.segment_run = 0.0;
        }
        p.changed.send_modify(|v| *v += 1);
        Ok(())
    }

    /// The init segment, once the tracks are known; false while it is too early.
    fn init(&mut self, p: &Packager, tap: &Tap) -> Result<bool, String> {
        let Some(first) = self.first else {
            return Ok(false);
        };
        if first.elapsed() < WARM_UP {
            return Ok(false);
        }
        let mut kinds = [false; 2];
        for (k, t) in self.tracks.iter().enumerate() {
            if let Some(t) = t {
                kinds[k] = t.lane.pending() > 0 && t.describable();
            }
        }
        if let Some(v) = &self.tracks[1]
            && !kinds[1]
        {
            // Video without its parameter sets yet: ask, and wait for them a while.
            if first.elapsed() < Duration::from_secs(5) {
                if v.lane.pending() > 0 {
                    tap.request_keyframe();
                }
                return Ok(false);
            }
        }
        if kinds == [false, false] {
            return Ok(false);
        }
        let may_wait = first.elapsed() < SENDER_REPORT_WAIT;
        let Some(synced) = container::start_clock(&mut self.tracks, kinds, may_wait) else {
            return Ok(false);
        };
        tracing::info!(room = %p.key.0, synced_by_sender_reports = synced, "HLS stream starts");
        let infos: Vec<_> = self
            .tracks
            .iter()
            .enumerate()
            .filter(|(k, _)| kinds[*k])
            .filter_map(|(_, t)| Some(t.as_ref()?.fmp4_info()))
            .collect();
        let init = fmp4::init_segment(&infos).map_err(|e| e.to_string())?;
        // Start at the video's first keyframe (what is before it cannot be shown), else at
        // the audio's first sample.
        let start = match self.tracks[1].as_ref().filter(|_| kinds[1]) {
            Some(v) => v.lane.first_time(),
            None => self.tracks[0].as_ref().and_then(|a| a.lane.first_time()),
        }
        .unwrap_or(0.0);
        for t in self.tracks.iter_mut().flatten() {
            let n = t.lane.index_at(start);
            t.lane.take(start, n, true); // audio from before the picture starts
        }
        self.origin = start;
        self.part_start = start;
        p.state.locked().init = Some(init.into());
        self.kinds = Some(kinds);
        Ok(true)
    }
}
