//! Samples onto one clock per file: each track's RTP timestamps become decode times in its
//! own timescale, and the tracks start where they started in real time relative to each other.
//!
//! With the publisher's RTCP sender reports for every track, the tracks are put on the
//! sender's wall clock (RFC 3550 §6.4.1: each report ties a stream's RTP clock to it), which
//! carries the capture-time alignment the sender knows (a camera's latency against a
//! microphone's); one offset then ties that clock to arrival time. Without them, each track's
//! RTP clock is tied to arrival time on its own. Either way the tie is the fastest packet seen
//! (the least of `arrival − sender time`): jitter and queueing only ever delay a packet, so the
//! minimum is the path's fixed delay, and packets replayed from the keyframe cache (old
//! timestamps, sent late) never move it. Within a track, durations come from RTP timestamps
//! alone, so a file's timing is the publisher's, not the network's. Pure: times are given.

use super::depack::Sample;
use super::fmp4::{FragSample, FragTrack};

/// 32-bit RTP timestamps unwrapped to a 64-bit line.
#[derive(Debug, Default, Clone)]
pub struct Unwrap {
    last: Option<i64>,
}

impl Unwrap {
    pub fn ext(&mut self, ts: u32) -> i64 {
        let e = match self.last {
            None => (1i64 << 32) + ts as i64,
            Some(l) => l + ts.wrapping_sub(l as u32) as i32 as i64,
        };
        if self.last.is_none_or(|l| e > l) {
            self.last = Some(e);
        }
        e
    }
}

/// One track of a file: its clock, the samples not yet written, and where its decode times
/// started.
#[derive(Debug)]
pub struct Lane {
    pub id: u32,
    pub rate: u32,
    unwrap: Unwrap,
    /// Seconds: the least `arrival − ts/rate` seen (or, once synced, the sender clock's).
    offset: Option<f64>,
    /// The first sender report: (sender seconds, extended RTP timestamp).
    report: Option<(f64, i64)>,
    /// The least `arrival − sender time` of the packets since that report.
    sender_skew: Option<f64>,
    /// On the sender's clock: `offset` no longer moves.
    synced: bool,
    pending: Vec<(i64, Sample)>,
    /// The first written sample's extended timestamp and decode time.
    base: Option<(i64, u64)>,
    /// The last written sample's duration (the final sample repeats it).
    last_duration: u32,
}

impl Lane {
    pub fn new(id: u32, rate: u32) -> Lane {
        Lane {
            id,
            rate: rate.max(1),
            unwrap: Unwrap::default(),
            offset: None,
            report: None,
            sender_skew: None,
            synced: false,
            pending: Vec::new(),
            base: None,
            last_duration: 0,
        }
    }

    /// One packet's arrival (seconds on the file's clock) and RTP timestamp.
    pub fn observe(&mut self, arrival: f64, ts: u32) {
        let e = self.unwrap.ext(ts);
        if let Some((secs, e0)) = self.report {
            let skew = arrival - (secs + (e - e0) as f64 / self.rate as f64);
            if self.sender_skew.is_none_or(|m| skew < m) {
                self.sender_skew = Some(skew);
            }
        }
        let o = arrival - e as f64 / self.rate as f64;
        if !self.synced && self.offset.is_none_or(|m| o < m) {
            self.offset = Some(o);
        }
    }

    /// The publisher's sender report for this track (NTP and RTP timestamps); the first one
    /// is kept (one sender clock: later reports say the same, but for drift).
    pub fn note_sender_report(&mut self, ntp: u64, rtp: u32) {
        if self.report.is_none() {
            let secs = (ntp >> 32) as f64 + (ntp & 0xffff_ffff) as f64 / 4_294_967_296.0;
            self.report = Some((secs, self.unwrap.ext(rtp)));
        }
    }

    /// The least `arrival − sender time` seen, once a report and a packet after it came.
    pub fn sender_skew(&self) -> Option<f64> {
        self.sender_skew
    }

    /// Puts the track on the sender's clock, tied to arrival by `skew` (the least of every
    /// synced track's [`Lane::sender_skew`]). False without a sender report.
    pub fn sync_to_sender(&mut self, skew: f64) -> bool {
        let Some((secs, e0)) = self.report else {
            return false;
        };
        self.offset = Some(secs - e0 as f64 / self.rate as f64 + skew);
        self.synced = true;
        true
    }

    pub fn push(&mut self, s: Sample) {
        let e = self.unwrap.ext(s.ts);
        self.pending.push((e, s));
    }

    /// When the first pending sample was captured, on the file's clock.
    pub fn first_time(&self) -> Option<f64> {
        let (e, _) = self.pending.first()?;
        Some(*e as f64 / self.rate as f64 + self.offset?)
    }

    pub fn started(&self) -> bool {
        self.base.is_some()
    }

    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Pending samples' span in seconds (first to last timestamp).
    pub fn span(&self) -> f64 {
        match (self.pending.first(), self.pending.last()) {
            (Some((a, _)), Some((b, _))) => (b - a) as f64 / self.rate as f64,
            _ => 0.0,
        }
    }

    /// The first pending sample that is a keyframe, from index `from`.
    pub fn keyframe_at_or_after(&self, from: usize) -> Option<usize> {
        (from..self.pending.len()).find(|i| self.pending[*i].1.keyframe)
    }

    /// Extended timestamp of pending sample `i`, in seconds on this lane's clock.
    pub fn time_of(&self, i: usize) -> Option<f64> {
        let (e, _) = self.pending.get(i)?;
        Some(*e as f64 / self.rate as f64 + self.offset?)
    }

    /// The index of the first pending sample at or after `t` (file clock), or the count.
    pub fn index_at(&self, t: f64) -> usize {
        (0..self.pending.len())
            .find(|i| self.time_of(*i).is_some_and(|x| x >= t - 1e-6))
            .unwrap_or(self.pending.len())
    }

    /// Takes the first `n` pending samples as a run, timed from `origin` (file clock) for the
    /// lane's first run. A sample's duration is the gap to the next one's timestamp, so the
    /// last pending sample stays unless `last` (the file is ending).
    pub fn take(&mut self, origin: f64, n: usize, last: bool) -> Option<FragTrack> {
        let keep_one = !last && n >= self.pending.len();
        let n = if keep_one { n.saturating_sub(1) } else { n }.min(self.pending.len());
        if n == 0 {
            return None;
        }
        let (first_ext, _) = self.pending[0];
        let (base_ext, base_dt) = *self.base.get_or_insert_with(|| {
            let t = first_ext as f64 / self.rate as f64 + self.offset.unwrap_or(0.0) - origin;
            (first_ext, (t.max(0.0) * self.rate as f64).round() as u64)
        });
        let decode_time = base_dt.saturating_add(first_ext.saturating_sub(base_ext).max(0) as u64);
        let mut samples = Vec::with_capacity(n);
        let rest = self.pending.split_off(n);
        let taken = std::mem::replace(&mut self.pending, rest);
        let next_ext = self.pending.first().map(|(e, _)| *e);
        let mut it = taken.into_iter().peekable();
        while let Some((e, s)) = it.next() {
            let following = it.peek().map(|(n, _)| *n).or(next_ext);
            let duration = match following {
                Some(f) => (f - e).clamp(1, self.rate as i64 * 10) as u32,
                None if self.last_duration > 0 => self.last_duration,
                None => self.rate / 50, // 20 ms: an Opus frame; a guess for lone video
            };
            self.last_duration = duration;
            samples.push(FragSample {
                duration,
                keyframe: s.keyframe,
                data: s.data,
            });
        }
        Some(FragTrack {
            id: self.id,
            decode_time,
            samples,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn s(ts: u32) -> Sample {
        Sample {
            ts,
            keyframe: true,
            data: Bytes::from_static(b"x"),
        }
    }

    #[test]
    fn sender_reports_carry_the_senders_alignment_across_tracks() {
        // The sender says video's frame at RTP 9_000_000 was captured 80 ms after audio's
        // sample at RTP 480_000 (a camera slower than the microphone); both arrive at once.
        let ntp = |s: f64| (s * 4_294_967_296.0) as u64;
        let mut a = Lane::new(2, 48_000);
        let mut v = Lane::new(1, 90_000);
        a.note_sender_report(ntp(100.0), 480_000);
        v.note_sender_report(ntp(100.08), 9_000_000);
        a.observe(1.0, 480_000);
        v.observe(1.0, 9_000_000);
        a.push(s(480_000));
        v.push(s(9_000_000));
        let skew = a.sender_skew().unwrap().min(v.sender_skew().unwrap());
        assert!(a.sync_to_sender(skew) && v.sync_to_sender(skew));
        let d = v.first_time().unwrap() - a.first_time().unwrap();
        assert!(
            (d - 0.08).abs() < 1e-6,
            "video is 80 ms after audio, not {d}"
        );
        // Arrival no longer moves a synced track.
        v.observe(0.5, 9_000_000);
        assert!((v.first_time().unwrap() - a.first_time().unwrap() - 0.08).abs() < 1e-6);
    }

    #[test]
    fn timestamps_unwrap_across_the_32_bit_edge() {
        let mut u = Unwrap::default();
        let a = u.ext(u32::MAX - 10);
        assert_eq!(u.ext(5) - a, 16);
        assert_eq!(u.ext(u32::MAX - 20) - a, -10);
    }

    #[test]
    fn tracks_start_where_they_started_in_real_time() {
        // Audio's first sample was captured at 1.0 s, video's at 1.25 s (file clock): video
        // starts 0.25 s into the file, whatever their RTP timestamps were.
        let mut a = Lane::new(2, 48_000);
        let mut v = Lane::new(1, 90_000);
        a.observe(1.0, 480_000);
        a.push(s(480_000));
        a.push(s(480_960));
        // The keyframe cache replays video from 0.5 s earlier, arriving late: ignored for the
        // clock because a live packet shows the real path.
        v.observe(1.30, 9_000_000 - 45_000);
        v.observe(1.25, 9_000_000);
        v.push(s(9_000_000));
        v.push(s(9_003_000));
        let origin = a.first_time().unwrap().min(v.first_time().unwrap());
        let fa = a.take(origin, 2, false).unwrap();
        let fv = v.take(origin, 2, false).unwrap();
        assert_eq!(fa.decode_time, 0);
        assert_eq!(fv.decode_time, 22_500);
        assert_eq!(
            fa.samples.len(),
            1,
            "the last sample waits for its duration"
        );
        assert_eq!(fa.samples[0].duration, 960);
        a.push(s(481_920));
        let fa = a.take(origin, 2, true).unwrap();
        assert_eq!(fa.decode_time, 960);
        assert_eq!(
            fa.samples.iter().map(|x| x.duration).collect::<Vec<_>>(),
            vec![960, 960]
        );
    }
}
