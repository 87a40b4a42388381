//! When a video slot probes: the plan knows the rate a probe must add for the slot's next
//! layer up (`LayerPref::probe`); this decides when to send it. A probe runs for
//! [`PROBE_FOR`]; if the slot has not stepped up by then, the next waits a pause that doubles
//! each time (from [`FIRST_PAUSE`] to [`MAX_PAUSE`]), so a path that cannot carry more is not
//! flooded every few seconds. A step up, or nothing left to prove, starts over; a step down
//! waits [`FIRST_PAUSE`] first. Pure.

use std::time::{Duration, Instant};

pub(super) const PROBE_FOR: Duration = Duration::from_secs(2);
pub(super) const FIRST_PAUSE: Duration = Duration::from_secs(4);
pub(super) const MAX_PAUSE: Duration = Duration::from_secs(32);

#[derive(Debug, Default, Clone)]
pub(super) struct Prober {
    /// The probe rate set on the slot now, bit/s (0: none).
    sending: u64,
    /// The layer the slot showed when the current probe or pause began.
    from: Option<usize>,
    until: Option<Instant>,
    not_before: Option<Instant>,
    pause: Duration,
}

impl Prober {
    /// `need`: the rate a probe must add now (`None`: nothing held back); `current`: the layer
    /// the slot shows. Returns the probe rate to set on the slot, when it changes.
    pub(super) fn step(
        &mut self,
        now: Instant,
        need: Option<u64>,
        current: Option<usize>,
    ) -> Option<u64> {
        let down = matches!((current, self.from), (Some(c), Some(f)) if c < f);
        if need.is_none() || current != self.from {
            // Stepped up, or nothing to prove: start over.
            *self = Prober {
                sending: self.sending,
                from: current,
                ..Prober::default()
            };
        }
        if down {
            // Stepped down: the path just showed it cannot carry more, and a probe now would
            // add to the loss the narrowed link is already causing (the lab saw 2-2.7 s video
            // freezes from probing into it). Wait as after a failed probe.
            self.pause = FIRST_PAUSE;
            self.not_before = Some(now + FIRST_PAUSE);
        }
        let want = match (need, self.until) {
            (None, _) => 0,
            (Some(_), Some(until)) if now < until => self.sending,
            (Some(_), Some(_)) => {
                // The probe ran out and the slot did not step up: pause, longer each time.
                self.until = None;
                self.pause = (self.pause * 2).clamp(FIRST_PAUSE, MAX_PAUSE);
                self.not_before = Some(now + self.pause);
                0
            }
            (Some(bps), None) if self.not_before.is_none_or(|t| now >= t) => {
                self.until = Some(now + PROBE_FOR);
                bps
            }
            (Some(_), None) => 0,
        };
        (want != self.sending).then(|| {
            self.sending = want;
            want
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probes_pause_longer_each_time_and_start_over_on_a_step_up() {
        let t = Instant::now();
        let s = |secs: f64| t + Duration::from_secs_f64(secs);
        let mut p = Prober::default();
        assert_eq!(
            p.step(t, None, Some(0)),
            None,
            "nothing to prove, nothing sent"
        );
        assert_eq!(p.step(t, Some(500_000), Some(0)), Some(500_000));
        assert_eq!(
            p.step(s(1.0), Some(600_000), Some(0)),
            None,
            "held for the probe"
        );
        assert_eq!(p.step(s(2.0), Some(500_000), Some(0)), Some(0), "ran out");
        assert_eq!(p.step(s(5.0), Some(500_000), Some(0)), None, "paused 4 s");
        assert_eq!(p.step(s(6.0), Some(500_000), Some(0)), Some(500_000));
        assert_eq!(p.step(s(8.0), Some(500_000), Some(0)), Some(0));
        assert_eq!(p.step(s(15.0), Some(500_000), Some(0)), None, "paused 8 s");
        assert_eq!(p.step(s(16.0), Some(500_000), Some(0)), Some(500_000));
        // It worked: the slot is on layer 1 now; the next probe (for layer 2) starts at once.
        assert_eq!(p.step(s(17.0), Some(1_000_000), Some(1)), Some(1_000_000));
        // Nothing held back any more: stop.
        assert_eq!(p.step(s(17.5), None, Some(2)), Some(0));
        for k in 0..20 {
            // Failing forever: pauses stop growing at 32 s.
            p.step(s(20.0 + 40.0 * f64::from(k)), Some(1), Some(2));
            p.step(s(22.0 + 40.0 * f64::from(k)), Some(1), Some(2));
        }
        assert!(p.pause <= MAX_PAUSE);
    }

    #[test]
    fn a_step_down_waits_before_probing_again() {
        let t = Instant::now();
        let s = |secs: f64| t + Duration::from_secs_f64(secs);
        let mut p = Prober::default();
        assert_eq!(p.step(t, None, Some(2)), None, "on top, nothing to prove");
        // The link narrowed: down to layer 1, then 0. No probe for the layer above yet.
        assert_eq!(p.step(s(0.5), Some(600_000), Some(1)), None);
        assert_eq!(p.step(s(0.8), Some(300_000), Some(0)), None);
        assert_eq!(p.step(s(4.0), Some(300_000), Some(0)), None, "paused 4 s");
        assert_eq!(p.step(s(4.8), Some(300_000), Some(0)), Some(300_000));
        // A failed probe after that pauses 8 s.
        assert_eq!(p.step(s(6.8), Some(300_000), Some(0)), Some(0));
        assert_eq!(p.step(s(14.0), Some(300_000), Some(0)), None);
        assert_eq!(p.step(s(14.8), Some(300_000), Some(0)), Some(300_000));
    }
}
