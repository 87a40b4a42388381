//! Process-wide totals of the forwarding counters, for metrics. Each fan-out and slot counts
//! in its own atomics (one uncontended add on the packet path, no cache line shared between
//! viewers); when one goes away its counts move into [`RETIRED`]. A total is `RETIRED` plus
//! the live ones, so it never goes down.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Sums of the forwarding counters. Arrays are indexed audio, video.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    pub packets_in: [u64; 2],
    pub bytes_in: [u64; 2],
    pub packets_out: [u64; 2],
    /// A viewer's queue was full (the slot then resyncs on a keyframe).
    pub dropped_queue_full: u64,
    /// Waiting for a keyframe after a join, a switch or a drop.
    pub dropped_keyframe_gate: u64,
    /// The viewer did not negotiate the publisher's codec.
    pub dropped_unplayable: u64,
    /// PLI/FIR sent to publishers (viewers' requests, aggregated and throttled).
    pub keyframe_requests: u64,
    /// Slots started from the keyframe cache.
    pub cache_joins: u64,
}

/// How many counters a [`Totals`] holds.
const FIELDS: usize = 11;

impl Totals {
    /// The counters in a fixed order (the one listing of them).
    fn fields(&self) -> [u64; FIELDS] {
        [
            self.packets_in[0],
            self.packets_in[1],
            self.bytes_in[0],
            self.bytes_in[1],
            self.packets_out[0],
            self.packets_out[1],
            self.dropped_queue_full,
            self.dropped_keyframe_gate,
            self.dropped_unplayable,
            self.keyframe_requests,
            self.cache_joins,
        ]
    }

    fn from_fields(v: [u64; FIELDS]) -> Totals {
        Totals {
            packets_in: [v[0], v[1]],
            bytes_in: [v[2], v[3]],
            packets_out: [v[4], v[5]],
            dropped_queue_full: v[6],
            dropped_keyframe_gate: v[7],
            dropped_unplayable: v[8],
            keyframe_requests: v[9],
            cache_joins: v[10],
        }
    }

    fn zip(&self, o: &Totals, f: impl Fn(u64, u64) -> u64) -> Totals {
        let (a, b) = (self.fields(), o.fields());
        Totals::from_fields(std::array::from_fn(|i| f(a[i], b[i])))
    }

    pub fn add(&mut self, o: &Totals) {
        *self = self.zip(o, u64::saturating_add);
    }

    /// Each counter's larger value: what a counter reports so it never goes down.
    pub fn max(&self, o: &Totals) -> Totals {
        self.zip(o, u64::max)
    }
}

/// The counts of fan-outs and slots that are gone.
pub struct Retired {
    counts: [AtomicU64; FIELDS],
}

/// The one place retired counts accumulate.
pub static RETIRED: Retired = Retired {
    counts: [const { AtomicU64::new(0) }; FIELDS],
};

impl Retired {
    /// Adds the counts of a fan-out or slot that is going away.
    pub fn retire(&self, t: &Totals) {
        for (c, v) in self.counts.iter().zip(t.fields()) {
            if v != 0 {
                c.fetch_add(v, Ordering::Relaxed);
            }
        }
    }

    pub fn totals(&self) -> Totals {
        Totals::from_fields(std::array::from_fn(|i| {
            self.counts[i].load(Ordering::Relaxed)
        }))
    }
}

/// Upper bounds (seconds) of the join-time histogram's buckets; a last one takes the rest.
pub const JOIN_BUCKETS: [f64; 8] = [0.1, 0.2, 0.3, 0.5, 1.0, 2.0, 5.0, 10.0];

/// Join time: from a viewer slot's creation (its WHEP POST) to the first video packet it sent.
pub static JOINS: Histogram = Histogram::new(&JOIN_BUCKETS);

/// Upper bounds (seconds) of the forwarding-delay histogram's buckets.
pub const FORWARD_BUCKETS: [f64; 11] = [
    0.0001, 0.00025, 0.0005, 0.00075, 0.001, 0.0015, 0.0025, 0.005, 0.01, 0.025, 0.1,
];

/// Forwarding delay: from a track's fan-out taking a publisher's packet to the viewer leg's
/// send of it returning (socket write included), for one packet in [`FORWARD_SAMPLE`] of each
/// track, per viewer. What the publisher's leg spends before the fan-out (its socket read,
/// SRTP, the library's receive path) is not in it.
pub static FORWARDS: Histogram = Histogram::new(&FORWARD_BUCKETS);

/// One packet in this many of a track is timed for [`FORWARDS`].
pub const FORWARD_SAMPLE: u64 = 16;

/// Buckets a [`Histogram`] can hold (bounds plus the last, unbounded one).
const MAX_BUCKETS: usize = 12;

/// Durations counted in buckets by upper bound (seconds, inclusive; a last bucket takes the
/// rest) and summed, lock-free.
pub struct Histogram {
    bounds: &'static [f64],
    buckets: [AtomicU64; MAX_BUCKETS],
    sum_micros: AtomicU64,
}

impl Histogram {
    pub const fn new(bounds: &'static [f64]) -> Histogram {
        assert!(bounds.len() < MAX_BUCKETS);
        Histogram {
            bounds,
            buckets: [const { AtomicU64::new(0) }; MAX_BUCKETS],
            sum_micros: AtomicU64::new(0),
        }
    }

    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = self
            .bounds
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(self.bounds.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }

    /// (sum in seconds, count, per-bucket counts by upper bound; the last bound is +∞).
    pub fn snapshot(&self) -> (f64, u64, Vec<(f64, u64)>) {
        let counts: Vec<u64> = self.buckets[..=self.bounds.len()]
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let bounds = self.bounds.iter().copied().chain([f64::INFINITY]);
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        (sum, counts.iter().sum(), bounds.zip(counts).collect())
    }
}

/// The instant forwarding delays are stamped from (a stamp is microseconds since, wrapping).
static EPOCH: std::sync::LazyLock<std::time::Instant> =
    std::sync::LazyLock::new(std::time::Instant::now);

thread_local! {
    /// The stamp of the packet the fan-out is handing to its slots on this thread (0: none).
    static STAMP: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Runs `f` (a fan-out handing one packet to its slots) with the packet stamped `at`, for
/// the outputs it writes to in place to carry ([`forward_stamp`]).
pub fn stamped<R>(at: std::time::Instant, f: impl FnOnce() -> R) -> R {
    let stamp = (at.saturating_duration_since(*EPOCH).as_micros() as u32).max(1);
    STAMP.with(|s| s.set(stamp));
    let r = f();
    STAMP.with(|s| s.set(0));
    r
}

/// The stamp of the packet being handed over on this thread, 0 when it is not timed.
pub fn forward_stamp() -> u32 {
    STAMP.with(|s| s.get())
}

/// Counts the forwarding delay of a packet stamped `stamp`, sent by `now`.
pub fn forwarded(stamp: u32, now: std::time::Instant) {
    let now_us = now.saturating_duration_since(*EPOCH).as_micros() as u32;
    FORWARDS.observe(Duration::from_micros(u64::from(now_us.wrapping_sub(stamp))));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_times_fall_into_their_buckets() {
        let j = Histogram::new(&JOIN_BUCKETS);
        j.observe(Duration::from_millis(220));
        j.observe(Duration::from_millis(300));
        j.observe(Duration::from_secs(60));
        let (sum, count, buckets) = j.snapshot();
        assert_eq!(count, 3);
        assert!((sum - 60.52).abs() < 1e-6);
        assert_eq!(
            buckets[2],
            (0.3, 2),
            "0.22 s and 0.3 s (bounds are inclusive)"
        );
        assert_eq!(buckets[8], (f64::INFINITY, 1));
    }

    #[test]
    fn a_stamped_packet_counts_its_forwarding_delay() {
        let _ = *EPOCH;
        let t = std::time::Instant::now();
        let stamp = stamped(t, forward_stamp);
        assert_ne!(stamp, 0, "stamped while handed over");
        assert_eq!(forward_stamp(), 0, "and only then");
        let (_, before, b0) = FORWARDS.snapshot();
        forwarded(stamp, t + Duration::from_micros(300));
        let (sum, after, b1) = FORWARDS.snapshot();
        assert_eq!(after, before + 1);
        assert_eq!(b1[2], (0.0005, b0[2].1 + 1), "300 µs: the 0.5 ms bucket");
        assert!(sum >= 0.000299);
    }

    #[test]
    fn retired_counts_round_trip_and_add_up() {
        let r = Retired {
            counts: [const { AtomicU64::new(0) }; FIELDS],
        };
        let t = Totals {
            packets_in: [1, 2],
            bytes_in: [3, 4],
            packets_out: [5, 6],
            dropped_queue_full: 7,
            dropped_keyframe_gate: 8,
            dropped_unplayable: 9,
            keyframe_requests: 10,
            cache_joins: 11,
        };
        r.retire(&t);
        r.retire(&t);
        let mut twice = t;
        twice.add(&t);
        assert_eq!(r.totals(), twice);
        assert_eq!(t.max(&twice), twice);
        // Counters never go down: each field keeps its larger value.
        let a = Totals {
            packets_in: [5, 9],
            cache_joins: 3,
            ..Default::default()
        };
        let b = Totals {
            packets_in: [4, 10],
            ..Default::default()
        };
        let h = a.max(&b);
        assert_eq!(h.packets_in, [5, 10]);
        assert_eq!(h.cache_joins, 3);
    }
}
