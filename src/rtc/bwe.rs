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
//! GCC's halves are the library's (`SlopeEstimator` → `OveruseDetector` → `RateController`, and
//! `LossController`), wired here rather than through its `Gcc`: that one measures the received
//! rate with a window of one entry per acknowledged packet whose queue never shrinks (17 KB per
//! viewer once a probe burst has grown it, the largest thing in a leg's heap after the NACK
//! history). The acknowledged-rate window below already holds one entry per feedback, and every
//! packet of a feedback was stamped with the same instant there, so the received rate GCC needs
//! is read off it, exactly.
//!
//! The other way, a link that narrows shows first as loss: when more than [`LOSSY`] of what
//! was sent over the last [`RECENT`] is reported lost, the path is carrying all it can, and the
//! estimate is what arrived over that span, no more. GCC's own delay and loss halves take
//! seconds to come down that far; a viewer's video freezes meanwhile.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use ::rtc::interceptor::{
    BandwidthEstimator, EstimatorStats, GCC_RATE_WINDOW, LossController, OveruseDetector,
    PacketReport, RateController, SlopeEstimator,
};

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

/// GCC: the delay half and the loss half, the lower wins.
struct Gcc {
    slope: SlopeEstimator,
    detector: OveruseDetector,
    delay: RateController,
    loss: LossController,
    target: f64,
}

impl Gcc {
    fn new() -> Gcc {
        Gcc {
            slope: SlopeEstimator::new(),
            detector: OveruseDetector::new(),
            delay: RateController::new(INITIAL, FLOOR, CEILING),
            loss: LossController::new(INITIAL, FLOOR, CEILING),
            target: INITIAL,
        }
    }

    /// One feedback's reports, with the rate the viewer received over GCC's window.
    fn on_reports(&mut self, now: Instant, reports: &[PacketReport], received: Option<f64>) {
        let mut usage = self.detector.usage();
        for r in reports {
            if let Some(trend) = self.slope.accumulate(r) {
                usage = self.detector.update(trend.at, trend.estimate_ms);
            }
        }
        let delay = self.delay.update(now, usage, received);
        let lost = reports.iter().filter(|r| !r.arrived).count();
        let loss = self.loss.update(now, lost, reports.len());
        self.target = delay.min(loss).clamp(FLOOR, CEILING);
    }
}

/// One feedback, as the windows keep it.
#[derive(Clone, Copy)]
struct Acked {
    at: Instant,
    bytes: usize,
    reported: usize,
    lost: usize,
}

/// The estimator driven by a viewer leg's congestion-control interceptor.
pub struct LegEstimator {
    gcc: Gcc,
    /// Per feedback over the last [`WINDOW`].
    acked: VecDeque<Acked>,
    acked_bytes: usize,
    first: Option<Instant>,
    target: f64,
}

impl Default for LegEstimator {
    fn default() -> Self {
        LegEstimator {
            gcc: Gcc::new(),
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

    /// What GCC calls the received rate: the bytes acknowledged over its window (feedback
    /// older than that gone), over the time since the oldest feedback left in it; `None` with
    /// fewer than two packets or no span, as the library's calculator says.
    fn received_rate(&self, now: Instant) -> Option<f64> {
        let cutoff = now.checked_sub(GCC_RATE_WINDOW).unwrap_or(now);
        let (mut bytes, mut packets, mut oldest) = (0, 0, None);
        for a in self.acked.iter().rev().take_while(|a| a.at >= cutoff) {
            if a.reported > a.lost {
                // Only arrivals are samples (a feedback of losses alone starts no span).
                bytes += a.bytes;
                packets += a.reported - a.lost;
                oldest = Some(a.at);
            }
        }
        let span = now.saturating_duration_since(oldest?);
        (packets >= 2 && !span.is_zero()).then(|| (bytes * 8) as f64 / span.as_secs_f64())
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
            .take_while(|a| now.saturating_duration_since(a.at) <= RECENT);
        let (bytes, sent, lost) = recent.fold((0, 0, 0), |(b, s, l), a| {
            (b + a.bytes, s + a.reported, l + a.lost)
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
        self.first.get_or_insert(now);
        let bytes: usize = reports.iter().filter(|r| r.arrived).map(|r| r.size).sum();
        let lost = reports.iter().filter(|r| !r.arrived).count();
        self.acked.push_back(Acked {
            at: now,
            bytes,
            reported: reports.len(),
            lost,
        });
        self.acked_bytes += bytes;
        while let Some(&old) = self.acked.front() {
            if now.saturating_duration_since(old.at) <= WINDOW {
                break;
            }
            self.acked.pop_front();
            self.acked_bytes -= old.bytes;
        }
        let received = self.received_rate(now);
        self.gcc.on_reports(now, reports, received);
        let cap = self
            .acked_rate(now)
            .map_or(f64::MAX, |r| (r * HEADROOM).max(FLOOR));
        self.target = self
            .gcc
            .target
            .min(cap)
            .min(self.saturated(now).unwrap_or(f64::MAX));
    }

    fn target_bitrate(&self) -> f64 {
        self.target
    }

    fn stats(&self) -> EstimatorStats {
        let mut stats = EstimatorStats::default();
        stats.delay_based_bitrate = Some(self.gcc.delay.target());
        stats.loss_based_bitrate = Some(self.gcc.loss.target());
        stats.packet_loss = self.gcc.loss.average_loss();
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::rtc::rtcp::transport_feedbacks::cc_feedback_report::Ecn;

    /// Packet `id`'s report: `size` bytes that left at `departure` and arrived at `arrival`
    /// (from the feedback's time base), or were lost.
    fn report(id: u64, size: usize, departure: Instant, arrival: Option<Duration>) -> PacketReport {
        PacketReport {
            ssrc: 1,
            id,
            rtp_sequence_number: id as u16,
            is_twcc: true,
            twcc_sequence_number: id as u16,
            size,
            arrived: arrival.is_some(),
            departure,
            arrival,
            ecn: Ecn::NotEct,
        }
    }

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
                    let arrival = departure.duration_since(t0) + Duration::from_millis(20);
                    report(*id, 1000, departure, Some(arrival))
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
        assert!(e.gcc.target > 1_000_000.0, "{}", e.gcc.target);
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
                    report(id, 500, now, (k % 5 == 0).then(|| now.duration_since(t)))
                })
                .collect();
            e.on_reports(now, &reports);
        }
        let est = e.target_bitrate();
        assert!((150_000.0..=200_000.0).contains(&est), "{est}");
    }

    /// The halves wired here answer exactly as the library's `Gcc` over the same feedback, and
    /// the received rate is its `RateCalculator`'s: a
    /// clean start, a queue building (delay rising 4 ms per feedback) with some feedbacks of
    /// losses alone, losses, recovery.
    #[test]
    fn gcc_wired_here_agrees_with_the_librarys() {
        use ::rtc::interceptor::Gcc as LibraryGcc;
        let t0 = Instant::now();
        let mut ours = LegEstimator::default();
        let mut lib = LibraryGcc::new(INITIAL, FLOOR, CEILING);
        let mut rate = ::rtc::interceptor::RateCalculator::default();
        let mut id = 0u64;
        let mut queue = Duration::ZERO;
        let mut seen = Vec::new();
        for batch in 0..400u64 {
            let now = t0 + Duration::from_millis(50 * (batch + 1));
            let phase = batch / 100;
            if phase == 1 {
                queue += Duration::from_millis(4);
            } else if queue > Duration::ZERO {
                queue = queue.saturating_sub(Duration::from_millis(8));
            }
            let per = 5 + (batch % 7) as usize;
            let reports: Vec<PacketReport> = (0..per)
                .map(|k| {
                    id += 1;
                    let departure = now - Duration::from_millis(50)
                        + Duration::from_millis(50 * k as u64 / per as u64);
                    // Losses in phase 2; while the queue builds, every 9th feedback is of
                    // losses alone (it must not start the received rate's span).
                    let lost = (phase == 2 && k % 4 == 0) || (phase == 1 && batch % 9 == 0);
                    let arrival = departure.duration_since(t0) + Duration::from_millis(20) + queue;
                    report(id, 900 + 37 * k, departure, (!lost).then_some(arrival))
                })
                .collect();
            ours.on_reports(now, &reports);
            lib.on_reports(now, &reports);
            for r in reports.iter().filter(|r| r.arrived) {
                rate.add(now, r.size);
            }
            assert_eq!(
                ours.received_rate(now),
                rate.rate_bits_per_second(now),
                "feedback {batch}"
            );
            assert_eq!(ours.gcc.target, lib.target_bitrate(), "feedback {batch}");
            seen.push(lib.target_bitrate());
        }
        // The run moved the target both ways (it compared something).
        let peak = seen[..100].iter().cloned().fold(0.0, f64::max);
        let low = seen[100..300].iter().cloned().fold(f64::MAX, f64::min);
        assert!(peak > INITIAL && low < peak / 2.0, "{peak} {low}");
    }
}
