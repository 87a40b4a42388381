//! The one bandwidth estimate a viewer leg gives its slots: the lower of what the viewer says it
//! can take (REMB, a receiver-side cap) and wisp's own send-side estimate (`rtc::bwe`, from the
//! viewer's transport-wide CC feedback), whichever of the two the viewer provides. Announced when
//! it moves by [`STEP`] or more, and at least every [`REFRESH`] while either keeps coming, so
//! feedback every 50 ms does not become a layer decision every 50 ms.

use std::time::{Duration, Instant};

/// A relative change worth announcing at once.
const STEP: f64 = 0.03;
/// The longest an unchanged estimate goes unannounced while feedback arrives.
const REFRESH: Duration = Duration::from_millis(500);

#[derive(Debug, Default)]
pub struct Estimates {
    remb: Option<u64>,
    send_side: Option<u64>,
    announced: Option<(u64, Instant)>,
}

impl Estimates {
    /// The viewer's REMB, bit/s.
    pub fn remb(&mut self, bps: u64) {
        self.remb = Some(bps);
    }

    /// wisp's send-side estimate, bit/s.
    pub fn send_side(&mut self, bps: u64) {
        self.send_side = Some(bps);
    }

    /// The combined estimate, if it is due to be announced now.
    pub fn due(&mut self, now: Instant) -> Option<u64> {
        let e = match (self.remb, self.send_side) {
            (Some(r), Some(s)) => r.min(s),
            (r, s) => r.or(s)?,
        };
        let due = self.announced.is_none_or(|(last, at)| {
            (e as f64 - last as f64).abs() >= STEP * last.max(1) as f64
                || now.saturating_duration_since(at) >= REFRESH
        });
        if due {
            self.announced = Some((e, now));
        }
        due.then_some(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lower_of_the_two_announced_on_change_or_refresh() {
        let t = Instant::now();
        let mut e = Estimates::default();
        assert_eq!(e.due(t), None, "nothing known");
        e.send_side(1_000_000);
        assert_eq!(e.due(t), Some(1_000_000));
        e.send_side(1_010_000);
        assert_eq!(
            e.due(t + Duration::from_millis(50)),
            None,
            "1 % is not news"
        );
        assert_eq!(
            e.due(t + Duration::from_millis(600)),
            Some(1_010_000),
            "refreshed"
        );
        e.remb(400_000);
        assert_eq!(
            e.due(t + Duration::from_millis(650)),
            Some(400_000),
            "the viewer's cap"
        );
        e.remb(5_000_000);
        assert_eq!(e.due(t + Duration::from_millis(700)), Some(1_010_000));
    }
}
