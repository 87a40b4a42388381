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

impl Totals {
    pub fn add(&mut self, o: &Totals) {
        for k in 0..2 {
            self.packets_in[k] += o.packets_in[k];
            self.bytes_in[k] += o.bytes_in[k];
            self.packets_out[k] += o.packets_out[k];
        }
        self.dropped_queue_full += o.dropped_queue_full;
        self.dropped_keyframe_gate += o.dropped_keyframe_gate;
        self.dropped_unplayable += o.dropped_unplayable;
        self.keyframe_requests += o.keyframe_requests;
        self.cache_joins += o.cache_joins;
    }
}

/// The counts of fan-outs and slots that are gone.
pub struct Retired {
    counts: [AtomicU64; 12],
}

/// The one place retired counts accumulate.
pub static RETIRED: Retired = Retired {
    counts: [const { AtomicU64::new(0) }; 12],
};

impl Retired {
    fn fields(t: &Totals) -> [u64; 12] {
        [
            t.packets_in[0],
            t.packets_in[1],
            t.bytes_in[0],
            t.bytes_in[1],
            t.packets_out[0],
            t.packets_out[1],
            t.dropped_queue_full,
            t.dropped_keyframe_gate,
            t.dropped_unplayable,
            t.keyframe_requests,
            t.cache_joins,
            0,
        ]
    }

    /// Adds the counts of a fan-out or slot that is going away.
    pub fn retire(&self, t: &Totals) {
        for (c, v) in self.counts.iter().zip(Self::fields(t)) {
            if v != 0 {
                c.fetch_add(v, Ordering::Relaxed);
            }
        }
    }

    pub fn totals(&self) -> Totals {
        let v: Vec<u64> = self
            .counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect();
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
            counts: [const { AtomicU64::new(0) }; 12],
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
    }
}
