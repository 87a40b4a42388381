//! A probe, paced per frame: the probe rate owed since the previous frame, as a number of
//! copies of the frame's last packet to send right after it (`rtc::prober` sends them as RTX).
//! Spreading a probe over the frames keeps it from being a burst.

use std::time::{Duration, Instant};

/// The most copies after one frame (a frame's worth of a 4 Mbit/s probe at 15 fps).
pub const MAX_PER_FRAME: usize = 32;
/// Time longer than this between frames is not owed (a paused or switching source).
const MAX_GAP: Duration = Duration::from_millis(100);

#[derive(Debug, Default)]
pub struct ProbePacer {
    owed: f64,
    at: Option<Instant>,
}

impl ProbePacer {
    /// Copies of a `len`-byte packet to send now, at `bps` of probe (0: none, and start over).
    pub fn due(&mut self, bps: u64, now: Instant, len: usize) -> usize {
        if bps == 0 || len == 0 {
            *self = ProbePacer::default();
            return 0;
        }
        let elapsed = self
            .at
            .map_or(Duration::ZERO, |at| now.saturating_duration_since(at))
            .min(MAX_GAP);
        self.at = Some(now);
        self.owed += bps as f64 / 8.0 * elapsed.as_secs_f64();
        let n = ((self.owed / len as f64) as usize).min(MAX_PER_FRAME);
        self.owed = (self.owed - (n * len) as f64).max(0.0);
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owes_the_probe_rate_over_the_frames() {
        let t = Instant::now();
        let mut p = ProbePacer::default();
        assert_eq!(p.due(0, t, 1000), 0);
        assert_eq!(p.due(960_000, t, 1000), 0, "nothing owed yet");
        // 960 kbit/s over 30 frames a second: 4,000 bytes a frame, four 1,000-byte copies.
        let mut sent = 0;
        for k in 1..=30u32 {
            sent += p.due(
                960_000,
                t + Duration::from_millis(u64::from(k) * 1000 / 30),
                1000,
            );
        }
        assert!((119..=120).contains(&sent), "{sent}");
        // A long gap owes at most 100 ms; a stop forgets the rest.
        assert_eq!(p.due(960_000, t + Duration::from_secs(10), 1000), 12);
        assert_eq!(p.due(0, t + Duration::from_secs(11), 1000), 0);
        assert_eq!(p.due(960_000, t + Duration::from_secs(12), 1000), 0);
        // Small packets: capped per frame.
        assert_eq!(
            p.due(4_000_000, t + Duration::from_millis(12_100), 100),
            MAX_PER_FRAME
        );
    }
}
