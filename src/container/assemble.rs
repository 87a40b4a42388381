//! RTP packets of one track back into whole frames, in order, for a muxer.
//!
//! Pure: [`Assembler::push`] takes the time and one packet, [`Assembler::poll`] the time, and
//! both return the frames now complete. Rules:
//! - packets are reordered by (unwrapped) sequence number; late duplicates are dropped;
//! - a video frame is the run of packets with one timestamp, complete at its marker bit or
//!   when the next packet (with a new timestamp) is there; an audio packet is a frame;
//! - a hole waits up to `wait` for its repair (NACK/RTX), counted from when it was first seen;
//!   then audio skips it, and video drops what it holds and waits for the next keyframe (a
//!   frame decoded without its references would be corrupt), asking for one
//!   ([`Assembled::want_keyframe`]);
//! - video starts on a keyframe; what comes before the first is dropped;
//! - at most [`MAX_HELD`] packets are held: past it the hole is given up at once.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;

/// The most packets held while waiting for a hole to be repaired (about 2 s of 4 Mbit/s video).
pub const MAX_HELD: usize = 1024;

/// One whole frame's packets, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawFrame {
    /// The RTP timestamp every packet of the frame carries.
    pub ts: u32,
    pub keyframe: bool,
    pub payloads: Vec<Bytes>,
}

/// What a push or a poll produced.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Assembled {
    pub frames: Vec<RawFrame>,
    /// Video was lost past repair: the track waits for a keyframe; ask the publisher for one.
    pub want_keyframe: bool,
}

#[derive(Debug)]
struct Held {
    ts: u32,
    marker: bool,
    payload: Bytes,
}

/// Reassembly state of one track.
#[derive(Debug)]
pub struct Assembler {
    video: bool,
    /// Whether a payload starts a keyframe (video only).
    is_key: fn(&[u8]) -> bool,
    wait: Duration,
    held: BTreeMap<u64, Held>,
    /// The extended sequence number the next frame starts at.
    next: Option<u64>,
    /// The highest extended sequence number seen (to unwrap the next).
    highest: Option<u64>,
    /// When the hole at `next` was first seen.
    hole_since: Option<Instant>,
    /// Video: drop until a keyframe starts.
    need_key: bool,
    /// Packets dropped as lost or late (for the log).
    pub lost: u64,
}

impl Assembler {
    /// `is_key` tells whether a payload starts a keyframe (ignored for audio).
    pub fn new(video: bool, is_key: fn(&[u8]) -> bool, wait: Duration) -> Assembler {
        Assembler {
            video,
            is_key,
            wait,
            held: BTreeMap::new(),
            next: None,
            highest: None,
            hole_since: None,
            need_key: video,
            lost: 0,
        }
    }

    /// Unwraps a 16-bit sequence number next to the highest seen.
    fn extend(&mut self, seq: u16) -> u64 {
        let Some(h) = self.highest else {
            // Start high enough that numbers before the first never go below zero.
            let e = (1u64 << 32) + seq as u64;
            self.highest = Some(e);
            return e;
        };
        let delta = seq.wrapping_sub(h as u16) as i16 as i64;
        let e = (h as i64 + delta) as u64;
        if e > h {
            self.highest = Some(e);
        }
        e
    }

    pub fn push(
        &mut self,
        now: Instant,
        seq: u16,
        ts: u32,
        marker: bool,
        payload: Bytes,
    ) -> Assembled {
        let e = self.extend(seq);
        if self.next.is_some_and(|n| e < n) || self.held.contains_key(&e) {
            return Assembled::default(); // late or doubled: its frame is out already
        }
        self.held.insert(
            e,
            Held {
                ts,
                marker,
                payload,
            },
        );
        self.poll(now)
    }

    /// Emits what is complete, and gives up holes that waited too long.
    pub fn poll(&mut self, now: Instant) -> Assembled {
        let mut out = Assembled::default();
        loop {
            if self.need_key && !self.skip_to_keyframe() {
                return out;
            }
            let Some(&first) = self.held.keys().next() else {
                return out;
            };
            let next = *self.next.get_or_insert(first);
            match self.frame_at(next) {
                Some(end) => {
                    let frame = self.take(next, end);
                    self.next = Some(end + 1);
                    self.hole_since = None;
                    out.frames.push(frame);
                }
                None => {
                    let waiting = *self.hole_since.get_or_insert(now);
                    if self.held.len() < MAX_HELD
                        && now.saturating_duration_since(waiting) < self.wait
                    {
                        return out;
                    }
                    self.give_up(&mut out);
                }
            }
        }
    }

    /// The last sequence number of the complete frame starting at `at`, if it is complete.
    fn frame_at(&self, at: u64) -> Option<u64> {
        let first = self.held.get(&at)?;
        if !self.video {
            return Some(at);
        }
        let mut end = at;
        let mut cur = first;
        loop {
            if cur.marker {
                return Some(end);
            }
            let next = self.held.get(&(end + 1))?;
            if next.ts != first.ts {
                return Some(end);
            }
            end += 1;
            cur = next;
        }
    }

    fn take(&mut self, from: u64, to: u64) -> RawFrame {
        let mut payloads = Vec::with_capacity((to - from + 1) as usize);
        let mut ts = 0;
        for s in from..=to {
            if let Some(h) = self.held.remove(&s) {
                ts = h.ts;
                payloads.push(h.payload);
            }
        }
        let keyframe = !self.video || payloads.first().is_some_and(|p| (self.is_key)(p));
        RawFrame {
            ts,
            keyframe,
            payloads,
        }
    }

    /// The hole at `next` is not coming: audio moves on to what is held; video drops the
    /// frame it was in and waits for a keyframe.
    fn give_up(&mut self, out: &mut Assembled) {
        self.hole_since = None;
        if self.video {
            self.need_key = true;
            out.want_keyframe = true;
            return;
        }
        if let Some(&first) = self.held.keys().next() {
            self.lost += first.saturating_sub(self.next.unwrap_or(first));
            self.next = Some(first);
        }
    }

    /// Drops held packets up to the first that starts a keyframe; false if none does yet.
    fn skip_to_keyframe(&mut self) -> bool {
        let key = self
            .held
            .iter()
            .find(|(_, h)| (self.is_key)(&h.payload))
            .map(|(s, _)| *s);
        match key {
            Some(k) => {
                let before = self.held.len();
                self.held = self.held.split_off(&k);
                self.lost += (before - self.held.len()) as u64;
                self.next = Some(k);
                self.need_key = false;
                true
            }
            None => {
                self.lost += self.held.len() as u64;
                self.held.clear();
                self.next = None;
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(p: &[u8]) -> bool {
        p.first() == Some(&b'K')
    }

    fn video() -> Assembler {
        Assembler::new(true, key, Duration::from_millis(100))
    }

    fn b(s: &str) -> Bytes {
        Bytes::copy_from_slice(s.as_bytes())
    }

    #[test]
    fn video_frames_complete_at_the_marker_and_start_on_a_keyframe() {
        let t = Instant::now();
        let mut a = video();
        assert!(
            a.push(t, 9, 0, true, b("d")).frames.is_empty(),
            "before any keyframe"
        );
        assert!(a.push(t, 10, 90, false, b("K1")).frames.is_empty());
        let out = a.push(t, 11, 90, true, b("x"));
        assert_eq!(out.frames.len(), 1);
        assert_eq!(out.frames[0].payloads, vec![b("K1"), b("x")]);
        assert!(out.frames[0].keyframe);
        let out = a.push(t, 12, 180, true, b("d"));
        assert_eq!(out.frames[0].ts, 180);
        assert!(!out.frames[0].keyframe);
    }

    #[test]
    fn reordered_packets_are_put_back_in_order_across_the_wrap() {
        let t = Instant::now();
        let mut a = video();
        a.push(t, 65534, 0, true, b("K"));
        assert!(a.push(t, 0, 180, true, b("c")).frames.is_empty());
        let out = a.push(t, 65535, 90, true, b("b"));
        let ts: Vec<u32> = out.frames.iter().map(|f| f.ts).collect();
        assert_eq!(ts, vec![90, 180]);
    }

    #[test]
    fn a_repaired_hole_loses_nothing() {
        let t = Instant::now();
        let mut a = video();
        a.push(t, 1, 0, true, b("K"));
        assert!(a.push(t, 3, 180, true, b("c")).frames.is_empty());
        let out = a.push(t + Duration::from_millis(60), 2, 90, true, b("b"));
        assert_eq!(out.frames.len(), 2);
        assert!(!out.want_keyframe);
    }

    #[test]
    fn video_lost_past_the_wait_skips_to_the_next_keyframe() {
        let t = Instant::now();
        let mut a = video();
        a.push(t, 1, 0, true, b("K"));
        a.push(t, 3, 180, true, b("c"));
        assert!(a.poll(t + Duration::from_millis(99)).frames.is_empty());
        let out = a.poll(t + Duration::from_millis(100));
        assert!(out.want_keyframe && out.frames.is_empty());
        assert!(a.push(t, 4, 270, true, b("d")).frames.is_empty());
        let out = a.push(t, 5, 360, true, b("K2"));
        assert_eq!(out.frames.len(), 1);
        assert_eq!(out.frames[0].ts, 360);
    }

    #[test]
    fn audio_skips_a_lost_packet_and_goes_on() {
        let t = Instant::now();
        let mut a = Assembler::new(false, key, Duration::from_millis(100));
        assert_eq!(a.push(t, 1, 0, false, b("a")).frames.len(), 1);
        assert!(a.push(t, 3, 1920, false, b("c")).frames.is_empty());
        let out = a.poll(t + Duration::from_millis(150));
        assert_eq!(out.frames.len(), 1);
        assert!(!out.want_keyframe);
        assert_eq!(a.lost, 1);
        assert!(a.push(t, 2, 960, false, b("late")).frames.is_empty());
    }

    #[test]
    fn a_frame_without_a_marker_ends_where_the_next_timestamp_starts() {
        let t = Instant::now();
        let mut a = video();
        a.push(t, 1, 0, false, b("K"));
        let out = a.push(t, 2, 90, false, b("n"));
        assert_eq!(out.frames.len(), 1);
        assert_eq!(out.frames[0].ts, 0);
    }

    #[test]
    fn a_flood_behind_a_hole_is_bounded() {
        let t = Instant::now();
        let mut a = video();
        a.push(t, 0, 0, true, b("K"));
        for i in 2..(MAX_HELD as u16 + 10) {
            a.push(t, i, i as u32 * 90, true, b("d"));
        }
        assert!(a.held.len() <= MAX_HELD);
    }
}
