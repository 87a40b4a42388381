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
pub struct JoinTimes {
    buckets: [AtomicU64; 9],
    sum_micros: AtomicU64,
}

pub static JOINS: JoinTimes = JoinTimes {
    buckets: [const { AtomicU64::new(0) }; 9],
    sum_micros: AtomicU64::new(0),
};

impl JoinTimes {
    pub fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        let i = JOIN_BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(JOIN_BUCKETS.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
    }

    /// (sum in seconds, count, per-bucket counts by upper bound; the last bound is +∞).
    pub fn snapshot(&self) -> (f64, u64, Vec<(f64, u64)>) {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let bounds = JOIN_BUCKETS.iter().copied().chain([f64::INFINITY]);
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        (sum, counts.iter().sum(), bounds.zip(counts).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn join_times_fall_into_their_buckets() {
        let j = JoinTimes {
            buckets: [const { AtomicU64::new(0) }; 9],
            sum_micros: AtomicU64::new(0),
        };
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
