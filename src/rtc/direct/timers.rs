//! When a viewer leg's driver wakes for its timers.

use std::time::{Duration, Instant};

/// How late a connected leg may meet its lazy deadlines (keepalives, consent, DTLS, sender
/// reports) when nothing else wakes it: longer than the gap between its media wakes (20 ms
/// audio, 33 ms video), so a leg with media flowing never wakes for them alone.
const LAZY_SLACK: Duration = Duration::from_millis(50);

/// Whether a deadline is due at `now`, and when the driver must wake for its timers
/// otherwise. A connected leg's lazy deadlines are met on whatever wakes it first after them
/// (its media, every 20-33 ms while it flows); it wakes for them alone only [`LAZY_SLACK`]
/// late. Each timer of each viewer was a worker's wake-up of its own. The urgent ones (the
/// pacer's) are kept to the instant.
pub(super) fn timer_plan(
    urgent: Option<Instant>,
    lazy: Option<Instant>,
    connected: bool,
    now: Instant,
) -> (bool, Instant) {
    let slack = if connected {
        LAZY_SLACK
    } else {
        Duration::ZERO
    };
    let due = [urgent, lazy].into_iter().flatten().any(|t| t <= now);
    let wake = [urgent, lazy.map(|t| t + slack)]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(now + Duration::from_secs(1));
    (due, wake)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_connected_legs_lazy_deadline_waits_for_its_next_wake_or_the_slack() {
        let now = Instant::now();
        let lazy = Some(now + 10 * MS);
        assert_eq!(timer_plan(None, lazy, true, now), (false, now + 60 * MS));
        // Not yet connected (the handshake's retransmissions): to the instant.
        assert_eq!(timer_plan(None, lazy, false, now), (false, now + 10 * MS));
        // Once it has passed, any wake (a media packet's) handles it.
        assert!(timer_plan(None, lazy, true, now + 11 * MS).0);
    }

    #[test]
    fn the_pacers_deadline_is_kept_to_the_instant() {
        let now = Instant::now();
        let (urgent, lazy) = (Some(now + 3 * MS), Some(now + 10 * MS));
        assert_eq!(timer_plan(urgent, lazy, true, now), (false, now + 3 * MS));
        assert_eq!(
            timer_plan(urgent, None, true, now + 3 * MS),
            (true, now + 3 * MS)
        );
    }

    #[test]
    fn without_deadlines_the_driver_still_wakes_each_second() {
        let now = Instant::now();
        assert_eq!(
            timer_plan(None, None, true, now),
            (false, now + Duration::from_secs(1))
        );
    }
}
