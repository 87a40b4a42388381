//! The viewer leg's pacer, for bursts only: a join's (or a layer switch's) replay of the
//! keyframe cache hands the leg up to a whole group of pictures at once — at 2.5 Mbit/s and a
//! keyframe every 2 s, ~600 KB — which, sent back to back, overflows the queue of any
//! bottleneck slower than the server's socket (the loss then costs NACKs and often a new
//! keyframe). Live packets are not paced: they come at the publisher's own pace.
//!
//! A token bucket: the first [`FREE`] bytes of a burst leave at once (the keyframe, so the
//! first picture is not delayed), the rest at [`PACE`], or at what drains the queue within
//! [`MAX_DRAIN`] when it is bigger (a long group of pictures is not held back for seconds). While a stream has packets queued, its live packets queue behind
//! them, so each stream stays in order; other streams (audio) pass.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::rtc::repair::Outgoing;

/// Bytes a burst sends at once: a keyframe of a 720p stream, most of a 1080p one.
const FREE: f64 = 64.0 * 1024.0;
/// The pace of the rest, bytes per second (10 Mbit/s: a 600 KB group in half a second).
const PACE: f64 = 10e6 / 8.0;
/// The longest the queue may take to drain at the current rate; beyond it the rate rises.
const MAX_DRAIN: Duration = Duration::from_millis(500);
/// What a packet costs beyond its payload (RTP header and extensions, SRTP tag).
const OVERHEAD: usize = 40;

pub(super) struct Pacer {
    queue: VecDeque<Outgoing>,
    /// Bytes queued.
    queued: usize,
    /// Bytes that may leave now; below zero, the debt the pace pays off first.
    budget: f64,
    /// When the budget was last refilled (none: full).
    refilled: Option<Instant>,
    /// Bytes per second while the queue holds packets: the pace, raised by the pushes that
    /// make the queue bigger than it drains within [`MAX_DRAIN`].
    rate: f64,
}

fn cost(o: &Outgoing) -> usize {
    o.payload_len() + OVERHEAD
}

impl Default for Pacer {
    fn default() -> Pacer {
        Pacer {
            queue: VecDeque::new(),
            queued: 0,
            budget: 0.0,
            refilled: None,
            rate: PACE,
        }
    }
}

impl Pacer {
    /// Whether stream `ssrc` has packets waiting (its next packet must queue behind them).
    pub(super) fn holds(&self, ssrc: u32) -> bool {
        self.queue.iter().any(|o| o.ssrc() == ssrc)
    }

    pub(super) fn push(&mut self, now: Instant, o: Outgoing) {
        self.refill(now);
        self.queued += cost(&o);
        self.queue.push_back(o);
        self.rate = self.rate.max(self.queued as f64 / MAX_DRAIN.as_secs_f64());
    }

    /// The next packet that may leave now.
    pub(super) fn pop(&mut self, now: Instant) -> Option<Outgoing> {
        if self.queue.is_empty() {
            return None;
        }
        self.refill(now);
        if self.budget <= 0.0 {
            return None;
        }
        let o = self.queue.pop_front()?;
        let c = cost(&o);
        self.queued -= c;
        self.budget -= c as f64;
        if self.queue.is_empty() {
            self.rate = PACE;
            if self.queue.capacity() > 64 {
                self.queue.shrink_to(0); // a burst's room, given back
            }
        }
        Some(o)
    }

    /// When the next queued packet may leave.
    pub(super) fn poll_timeout(&self) -> Option<Instant> {
        if self.queue.is_empty() {
            return None;
        }
        let at = self.refilled?;
        if self.budget > 0.0 {
            return Some(at);
        }
        let wait = Duration::from_secs_f64(-self.budget / self.rate + 1e-6);
        Some(at + wait)
    }

    fn refill(&mut self, now: Instant) {
        self.budget = match self.refilled {
            Some(t) => {
                let earned = now.saturating_duration_since(t).as_secs_f64() * self.rate;
                (self.budget + earned).min(FREE)
            }
            None => FREE,
        };
        self.refilled = Some(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtc::RtpPacket;
    use crate::rtc::repair::Kept;

    fn packet(ssrc: u32, seq: u16) -> Outgoing {
        let mut p = RtpPacket::default();
        p.header.ssrc = ssrc;
        p.header.sequence_number = seq;
        p.payload = bytes::Bytes::from(vec![0u8; 1200 - OVERHEAD]);
        Outgoing::new(p, Kept::Copy)
    }

    /// Drains `p` the way the leg does (at each deadline), returning when each packet left.
    fn drain(p: &mut Pacer, mut now: Instant) -> Vec<(u16, Instant)> {
        let mut left = Vec::new();
        for _ in 0..100_000 {
            while let Some(o) = p.pop(now) {
                left.push((o.into_packet().0.header.sequence_number, now));
            }
            match p.poll_timeout() {
                Some(t) => now = t.max(now),
                None => break,
            }
        }
        left
    }

    #[test]
    fn a_burst_sends_its_first_64_kb_at_once_and_the_rest_at_the_pace() {
        let t0 = Instant::now();
        let mut p = Pacer::default();
        // 500 packets of 1200 bytes: 600 KB, a 2 s group of pictures at 2.5 Mbit/s.
        for seq in 0..500 {
            p.push(t0, packet(1, seq));
        }
        let left = drain(&mut p, t0);
        assert_eq!(left.len(), 500);
        assert!(left.windows(2).all(|w| w[0].0 < w[1].0), "in order");
        let at_once = left.iter().filter(|(_, t)| *t == t0).count();
        assert_eq!(at_once, 55, "64 KB / 1200 B, the last one on credit");
        // 600 KB queued would take 0.48 s at 10 Mbit/s: under the 0.5 s bound, so the pace.
        let took = left.last().unwrap().1 - t0;
        let expect = (500.0 * 1200.0 - FREE) / PACE;
        assert!(
            (took.as_secs_f64() - expect).abs() < 0.01,
            "{took:?} vs {expect} s"
        );
    }

    #[test]
    fn a_queue_bigger_than_the_pace_drains_within_the_bound() {
        let t0 = Instant::now();
        let mut p = Pacer::default();
        // 2 MB: a 4 s group at 4 Mbit/s; at 10 Mbit/s it would take 1.6 s.
        for seq in 0..1700 {
            p.push(t0, packet(1, seq));
        }
        let left = drain(&mut p, t0);
        assert_eq!(left.len(), 1700);
        let took = left.last().unwrap().1 - t0;
        assert!(took <= MAX_DRAIN + Duration::from_millis(5), "{took:?}");
    }

    #[test]
    fn only_the_stream_with_packets_queued_waits() {
        let t0 = Instant::now();
        let mut p = Pacer::default();
        assert!(!p.holds(1));
        for seq in 0..200 {
            p.push(t0, packet(1, seq));
        }
        while p.pop(t0).is_some() {}
        assert!(p.holds(1), "the paced part is still queued");
        assert!(!p.holds(2), "another stream passes");
        let left = drain(&mut p, t0);
        assert!(!p.holds(1));
        assert_eq!(left.len(), 200 - 55);
        // Idle, the budget refills: the next burst starts at once again.
        let later = left.last().unwrap().1 + Duration::from_secs(1);
        p.push(later, packet(1, 1000));
        assert!(p.pop(later).is_some());
    }
}
