//! The slot rewriter: maps a source's sequence numbers and timestamps onto one outgoing
//! stream, so a viewer sees a single continuous RTP stream however often the source behind
//! its slot changes (publisher re-joins now; last-N switching and simulcast layers later).
//!
//! Pure: `handle` takes the time and the packet's numbers and returns the numbers to send,
//! or `None` to drop. Rules:
//! - the first packet of a source (and, for video, after [`Rewriter::resync`]) must be a
//!   keyframe; until one arrives nothing is forwarded and the caller asks for one;
//! - on a switch, sequence numbers continue from the last one sent (no gap a NACK would chase)
//!   and timestamps continue from the last one sent plus the wall-clock time elapsed;
//! - within a source, gaps and reordering the publisher made are preserved.

use std::time::Instant;

use crate::media::SourceId;

#[derive(Debug, Clone, Copy)]
struct Mapping {
    source: SourceId,
    seq_delta: u16,
    ts_delta: u32,
}

/// Per-slot rewriting state.
#[derive(Debug, Clone)]
pub struct Rewriter {
    /// Video waits for keyframes; audio never does.
    video: bool,
    /// RTP clock rate of the outgoing stream, to turn elapsed time into timestamp ticks.
    clock_rate: u32,
    mapping: Option<Mapping>,
    /// Highest sequence number sent, and its timestamp and send time.
    last: Option<(u16, u32, Instant)>,
    /// A drop happened: wait for a keyframe and close the sequence gap.
    resync: bool,
}

/// Whether `a` is newer than `b` in RTP's wrapping sequence space.
fn seq_newer(a: u16, b: u16) -> bool {
    a != b && a.wrapping_sub(b) < 0x8000
}

impl Rewriter {
    pub fn new(video: bool, clock_rate: u32) -> Rewriter {
        Rewriter {
            video,
            clock_rate: clock_rate.max(1),
            mapping: None,
            last: None,
            resync: false,
        }
    }

    /// Packets were lost on our side (full queue): drop until the next keyframe, then continue
    /// the sequence without a gap.
    pub fn resync(&mut self) {
        if self.video {
            self.resync = true;
        }
    }

    /// The current mapping: what is added to a source's sequence numbers and timestamps.
    pub fn deltas(&self) -> Option<(u16, u32)> {
        self.mapping.map(|m| (m.seq_delta, m.ts_delta))
    }

    /// True while the rewriter is waiting for a keyframe before it forwards anything.
    pub fn waiting_for_keyframe(&self, source: SourceId) -> bool {
        self.video && (self.resync || self.mapping.is_none_or(|m| m.source != source))
    }

    /// Maps one packet. Returns `(sequence number, timestamp)` to send, or `None` to drop it.
    pub fn handle(
        &mut self,
        now: Instant,
        source: SourceId,
        seq: u16,
        ts: u32,
        keyframe: bool,
    ) -> Option<(u16, u32)> {
        let switching = self.mapping.is_none_or(|m| m.source != source);
        if switching || self.resync {
            if self.video && !keyframe {
                return None;
            }
            let mapping = match (self.last, switching) {
                (None, _) => Mapping {
                    source,
                    seq_delta: 0,
                    ts_delta: 0,
                },
                (Some((last_seq, last_ts, at)), true) => {
                    let elapsed = now.saturating_duration_since(at);
                    let ticks = (elapsed.as_secs_f64() * self.clock_rate as f64) as u32;
                    Mapping {
                        source,
                        seq_delta: last_seq.wrapping_add(1).wrapping_sub(seq),
                        ts_delta: last_ts.wrapping_add(ticks.max(1)).wrapping_sub(ts),
                    }
                }
                (Some((last_seq, _, _)), false) => {
                    // Same source after our own drop: keep its timeline, close the seq gap.
                    let m = self.mapping.unwrap_or(Mapping {
                        source,
                        seq_delta: 0,
                        ts_delta: 0,
                    });
                    Mapping {
                        seq_delta: last_seq.wrapping_add(1).wrapping_sub(seq),
                        ..m
                    }
                }
            };
            self.mapping = Some(mapping);
            self.resync = false;
        }
        let m = self.mapping?;
        let out_seq = seq.wrapping_add(m.seq_delta);
        let out_ts = ts.wrapping_add(m.ts_delta);
        match self.last {
            Some((last_seq, _, _)) if !seq_newer(out_seq, last_seq) => {
                // Reordered or retransmitted: forward with the mapping, leave `last` alone.
            }
            _ => self.last = Some((out_seq, out_ts, now)),
        }
        Some((out_seq, out_ts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const A: SourceId = SourceId(1);
    const B: SourceId = SourceId(2);

    #[test]
    fn identity_for_first_source_and_waits_for_keyframe() {
        let t = Instant::now();
        let mut r = Rewriter::new(true, 90_000);
        assert_eq!(r.handle(t, A, 10, 1000, false), None);
        assert!(r.waiting_for_keyframe(A));
        assert_eq!(r.handle(t, A, 11, 1000, true), Some((11, 1000)));
        assert_eq!(r.handle(t, A, 12, 4000, false), Some((12, 4000)));
        // publisher's own gap is kept
        assert_eq!(r.handle(t, A, 15, 7000, false), Some((15, 7000)));
        // reordered packet still mapped
        assert_eq!(r.handle(t, A, 14, 7000, false), Some((14, 7000)));
        assert_eq!(r.handle(t, A, 16, 7000, false), Some((16, 7000)));
    }

    #[test]
    fn switch_continues_sequence_and_rebases_time() {
        let t = Instant::now();
        let mut r = Rewriter::new(true, 90_000);
        r.handle(t, A, 65534, 100, true);
        r.handle(t, A, 65535, 200, false);
        // new source: drop until its keyframe
        assert_eq!(r.handle(t, B, 500, 9_000_000, false), None);
        let later = t + Duration::from_millis(100);
        let (seq, ts) = r.handle(later, B, 501, 9_000_000, true).unwrap();
        assert_eq!(seq, 0); // wrapped, continuous
        assert_eq!(ts, 200 + 9000);
        assert_eq!(
            r.handle(later, B, 502, 9_003_000, false),
            Some((1, 200 + 9000 + 3000))
        );
    }

    #[test]
    fn resync_closes_our_gap() {
        let t = Instant::now();
        let mut r = Rewriter::new(true, 90_000);
        r.handle(t, A, 1, 0, true);
        r.handle(t, A, 2, 0, false);
        r.resync();
        assert_eq!(r.handle(t, A, 3, 3000, false), None);
        assert_eq!(r.handle(t, A, 9, 9000, true), Some((3, 9000)));
        assert_eq!(r.handle(t, A, 10, 9000, false), Some((4, 9000)));
    }

    #[test]
    fn audio_never_waits() {
        let t = Instant::now();
        let mut r = Rewriter::new(false, 48_000);
        assert_eq!(r.handle(t, A, 7, 960, false), Some((7, 960)));
        r.resync();
        assert!(!r.waiting_for_keyframe(A));
        let (seq, _) = r
            .handle(t + Duration::from_millis(20), B, 100, 5, false)
            .unwrap();
        assert_eq!(seq, 8);
    }
}
