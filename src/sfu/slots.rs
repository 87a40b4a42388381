//! Which participant each of a viewer's slots shows: pure, with hysteresis.
//!
//! While there are no more candidates than slots, everyone has a slot, and a participant keeps
//! the slot it has (no tile reshuffles when someone joins or leaves). Beyond that, slots go to
//! the highest-priority candidates — the room orders them dominant speaker first, then by most
//! recent speech — but a participant keeps its slot for at least `min_dwell` before a
//! higher-priority one may take it, so tiles do not flicker.

use std::time::{Duration, Instant};

/// Assigns `candidates` (in priority order) to slots whose current holders and their start
/// times are `current`. Returns the new holder per slot; unchanged slots keep their start time.
pub fn assign<P: Clone + PartialEq>(
    current: &[Option<(P, Instant)>],
    candidates: &[P],
    now: Instant,
    min_dwell: Duration,
) -> Vec<Option<(P, Instant)>> {
    let k = current.len();
    let desired: Vec<&P> = candidates.iter().take(k).collect();
    let mut out: Vec<Option<(P, Instant)>> = current
        .iter()
        .map(|slot| {
            slot.clone().filter(|(p, since)| {
                // Keep holders that are still wanted, or still protected by their dwell time.
                candidates.contains(p)
                    && (desired.contains(&p) || now.saturating_duration_since(*since) < min_dwell)
            })
        })
        .collect();
    for want in desired {
        if out.iter().flatten().any(|(p, _)| p == want) {
            continue;
        }
        // An empty slot first; else the lowest-priority holder whose dwell has passed.
        let free = out.iter().position(Option::is_none).or_else(|| {
            out.iter()
                .enumerate()
                .filter_map(|(i, s)| s.as_ref().map(|(p, since)| (i, p, *since)))
                .filter(|(_, p, since)| {
                    !candidates.iter().take(k).any(|c| c == *p)
                        && now.saturating_duration_since(*since) >= min_dwell
                })
                .max_by_key(|(_, p, _)| {
                    candidates
                        .iter()
                        .position(|c| c == *p)
                        .unwrap_or(usize::MAX)
                })
                .map(|(i, _, _)| i)
        });
        if let Some(i) = free {
            out[i] = Some((want.clone(), now));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const DWELL: Duration = Duration::from_secs(3);

    fn who(a: &[Option<(&'static str, Instant)>]) -> Vec<Option<&'static str>> {
        a.iter().map(|s| s.map(|(p, _)| p)).collect()
    }

    #[test]
    fn everyone_fits_and_nobody_moves() {
        let t = Instant::now();
        let s = assign(&[None, None, None], &["a", "b"], t, DWELL);
        assert_eq!(who(&s), vec![Some("a"), Some("b"), None]);
        // c joins with top priority: it takes the empty slot, a and b stay put.
        let s = assign(&s, &["c", "a", "b"], t, DWELL);
        assert_eq!(who(&s), vec![Some("a"), Some("b"), Some("c")]);
        // a leaves: its slot empties, the others stay.
        let s = assign(&s, &["c", "b"], t, DWELL);
        assert_eq!(who(&s), vec![None, Some("b"), Some("c")]);
    }

    #[test]
    fn last_n_follows_the_speaker_with_a_dwell() {
        let t = Instant::now();
        let s = assign(&[None, None], &["a", "b", "c"], t, DWELL);
        assert_eq!(who(&s), vec![Some("a"), Some("b")]);
        // c speaks at once: a and b are still within their dwell.
        let s2 = assign(&s, &["c", "a", "b"], t + Duration::from_secs(1), DWELL);
        assert_eq!(who(&s2), who(&s));
        // After the dwell, c replaces the lowest-priority holder (b).
        let s3 = assign(&s2, &["c", "a", "b"], t + DWELL, DWELL);
        assert_eq!(who(&s3), vec![Some("a"), Some("c")]);
        assert_eq!(
            s3[0].map(|x| x.1),
            Some(t),
            "a kept its slot and its start time"
        );
    }

    #[test]
    fn program_feed_is_one_slot_following_the_dominant_speaker() {
        let t = Instant::now();
        let s = assign(&[None], &["a", "b"], t, DWELL);
        assert_eq!(who(&s), vec![Some("a")]);
        let s = assign(&s, &["b", "a"], t + Duration::from_secs(1), DWELL);
        assert_eq!(who(&s), vec![Some("a")], "held during the dwell");
        let s = assign(&s, &["b", "a"], t + DWELL, DWELL);
        assert_eq!(who(&s), vec![Some("b")]);
    }
}
