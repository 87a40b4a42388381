//! Send-side bandwidth estimation for a viewer leg: webrtc-rs's GCC (delay- and loss-based,
//! fed by the viewer's transport-wide congestion control feedback), held to what the path has
//! shown it can carry.
//!
//! GCC alone raises its target whenever it sees no congestion, even while wisp sends far less
//! than the target (a viewer on a low simulcast layer): an estimate of 10 Mbit/s on a leg that
//! has never carried more than 200 kbit/s says nothing about the path. So the estimate a leg
//! reports is GCC's target capped at [`HEADROOM`] times the rate the viewer acknowledged over
//! the last [`WINDOW`]. To learn whether a higher layer fits, the leg sends probes
//! (`rtc::prober`) and the acknowledged rate, and with it the cap, rises if the path carries it.
//!
//! The other way, a link that narrows shows first as loss: when more than [`LOSSY`] of what
//! was sent over the last [`RECENT`] is reported lost, the path is carrying all it can, and the
//! estimate is what arrived over that span, no more. GCC's own delay and loss halves take
//! seconds to come down that far; a viewer's video freezes meanwhile.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use ::rtc::interceptor::{BandwidthEstimator, EstimatorStats, Gcc, PacketReport};

/// The acknowledged-rate window.
pub const WINDOW: Duration = Duration::from_secs(1);
/// How far above the acknowledged rate the estimate may go.
pub const HEADROOM: f64 = 1.5;
/// The span and loss fraction that mark a saturated path.
pub const RECENT: Duration = Duration::from_millis(300);
pub const LOSSY: f64 = 0.1;
/// GCC's starting point, floor and ceiling, bit/s.
const INITIAL: f64 = 1_000_000.0;
const FLOOR: f64 = 100_000.0;
const CEILING: f64 = 50_000_000.0;

/// The estimator driven by a viewer leg's congestion-control interceptor.
pub struct LegEstimator {
    gcc: Gcc,
    /// Per feedback over the last [`WINDOW`]: when, bytes arrived, packets reported, lost.
    acked: VecDeque<(Instant, usize, usize, usize)>,
    acked_bytes: usize,
    first: Option<Instant>,
    target: f64,
}

impl Default for LegEstimator {
    fn default() -> Self {
        LegEstimator {
            gcc: Gcc::new(INITIAL, FLOOR, CEILING),
            acked: VecDeque::new(),
            acked_bytes: 0,
            first: None,
            target: INITIAL,
        }
    }
}

impl LegEstimator {
    /// What arrived over the window, bit/s (the window is shorter at the start).
    fn acked_rate(&self, now: Instant) -> Option<f64> {
        let span = now
            .saturating_duration_since(self.first?)
            .clamp(WINDOW / 4, WINDOW);
        Some(self.acked_bytes as f64 * 8.0 / span.as_secs_f64())
    }
}

impl LegEstimator {
    /// What arrived over the last [`RECENT`] (bit/s), if more than [`LOSSY`] was lost there:
    /// the path is carrying all it can.
    pub fn saturated(&self, now: Instant) -> Option<f64> {
        let recent = self
            .acked
            .iter()
            .rev()
            .take_while(|(at, ..)| now.saturating_duration_since(*at) <= RECENT);
        let (bytes, sent, lost) = recent.fold((0, 0, 0), |(b, s, l), &(_, bb, ss, ll)| {
            (b + bb, s + ss, l + ll)
        });
        (sent >= 10 && lost as f64 > LOSSY * sent as f64)
            .then(|| (bytes as f64 * 8.0 / RECENT.as_secs_f64()).max(FLOOR))
    }
}

impl BandwidthEstimator for LegEstimator {
    fn on_reports(&mut self, now: Instant, reports: &[PacketReport]) {
        if reports.is_empty() {
            return;
        }
        self.gcc.on_reports(now, reports);
        self.first.get_or_insert(now);
        let arrived: usize = reports.iter().filter(|r| r.arrived).map(|r| r.size).sum();
        let lost = reports.iter().filter(|r| !r.arrived).count();
        self.acked.push_back((now, arrived, reports.len(), lost));
        self.acked_bytes += arrived;
        while let Some(&(at, bytes, _, _)) = self.acked.front() {
            if now.saturating_duration_since(at) <= WINDOW {
                break;
            }
            self.acked.pop_front();
            self.acked_bytes -= bytes;
        }
        let cap = self
            .acked_rate(now)
            .map_or(f64::MAX, |r| (r * HEADROOM).max(FLOOR));
        self.target = self
            .gcc
            .target_bitrate()
            .min(cap)
            .min(self.saturated(now).unwrap_or(f64::MAX));
    }

    fn target_bitrate(&self) -> f64 {
        self.target
    }

    fn stats(&self) -> EstimatorStats {
        self.gcc.stats()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::rtc::rtcp::transport_feedbacks::cc_feedback_report::Ecn;

    /// Feedback every 50 ms for `secs` seconds: `rate` bit/s sent in 1,000-byte packets, each
    /// arriving `delay` after it left (constant: no queue building), none lost.
    fn feed(e: &mut LegEstimator, t0: Instant, secs: u64, rate: u64, id: &mut u64) -> Instant {
        let per_batch = (rate / 8 / 1000 / 20).max(1);
        let mut now = t0;
        for _ in 0..secs * 20 {
            now += Duration::from_millis(50);
            let reports: Vec<PacketReport> = (0..per_batch)
                .map(|k| {
                    *id += 1;
                    let departure =
                        now - Duration::from_millis(50) + Duration::from_millis(50 * k / per_batch);
                    PacketReport {
                        ssrc: 1,
                        id: *id,
                        rtp_sequence_number: *id as u16,
                        is_twcc: true,
                        twcc_sequence_number: *id as u16,
                        size: 1000,
                        arrived: true,
                        departure,
                        arrival: Some(departure.duration_since(t0) + Duration::from_millis(20)),
                        ecn: Ecn::NotEct,
                    }
                })
                .collect();
            e.on_reports(now, &reports);
        }
        now
    }

    #[test]
    fn the_estimate_is_held_to_what_the_path_carried() {
        let mut e = LegEstimator::default();
        let mut id = 0;
        let t = feed(&mut e, Instant::now(), 10, 200_000, &mut id);
        let est = e.target_bitrate();
        // Ten clean seconds at 200 kbit/s: GCC alone would be far higher by now.
        assert!(
            e.gcc.target_bitrate() > 1_000_000.0,
            "{}",
            e.gcc.target_bitrate()
        );
        assert!((250_000.0..=320_000.0).contains(&est), "{est}");
        // Carrying 2 Mbit/s (a probe) lifts the estimate with it.
        let t = feed(&mut e, t, 3, 2_000_000, &mut id);
        let est = e.target_bitrate();
        assert!(est >= 2_500_000.0, "{est}");
        // The link narrows: four of five packets lost, 160 kbit/s arriving. Once the recent
        // span holds only that, the estimate is what arrives.
        let mut now = t;
        for _ in 0..7 {
            now += Duration::from_millis(50);
            let reports: Vec<PacketReport> = (0..10)
                .map(|k| {
                    id += 1;
                    PacketReport {
                        ssrc: 1,
                        id,
                        rtp_sequence_number: id as u16,
                        is_twcc: true,
                        twcc_sequence_number: id as u16,
                        size: 500,
                        arrived: k % 5 == 0,
                        departure: now,
                        arrival: (k % 5 == 0).then(|| now.duration_since(t)),
                        ecn: Ecn::NotEct,
                    }
                })
                .collect();
            e.on_reports(now, &reports);
        }
        let est = e.target_bitrate();
        assert!((150_000.0..=200_000.0).contains(&est), "{est}");
    }
}
