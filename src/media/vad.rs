//! Voice activity from RFC 6464 audio levels: a pure per-participant detector and a
//! dominant-speaker picker, fed with `(time, level)` and tested with synthetic sequences.
//!
//! Per interval (default 500 ms) the detector counts the packets at or above the active level
//! (default −30 dBov, i.e. `level <= 30`); the interval is active when at least a fraction of
//! its packets are (default 40 %, LiveKit's rule). Speaking turns on after `on_after` active
//! intervals and off after `off_after` inactive ones, so a cough or a breath does not flicker.
//! Intervals with no packets (DTX silence, muted tracks) count as inactive.

use std::time::{Duration, Instant};

/// Detector thresholds (config: `--vad-*`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VadConfig {
    /// Loudest-is-0 dBov threshold: a packet with `level <= active_level` is active.
    pub active_level: u8,
    /// Fraction of active packets that makes an interval active.
    pub min_active_fraction: f32,
    pub interval: Duration,
    /// Active intervals needed to start speaking.
    pub on_after: u32,
    /// Inactive intervals needed to stop speaking.
    pub off_after: u32,
}

impl Default for VadConfig {
    fn default() -> Self {
        VadConfig {
            active_level: 30,
            min_active_fraction: 0.4,
            interval: Duration::from_millis(500),
            on_after: 1,
            off_after: 2,
        }
    }
}

/// A speaking state change, with the interval's loudness (0–127, higher is louder).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Change {
    pub speaking: bool,
    pub loudness: u8,
}

#[derive(Debug, Clone)]
pub struct Vad {
    cfg: VadConfig,
    interval_start: Option<Instant>,
    packets: u32,
    active: u32,
    loud_sum: u32,
    speaking: bool,
    streak: u32,
    /// Loudness of the last closed interval (for dominant-speaker ranking).
    pub loudness: u8,
    /// Intervals closed so far (a reader can tell when one closed).
    closed: u64,
}

impl Vad {
    pub fn new(cfg: VadConfig) -> Vad {
        Vad {
            cfg,
            interval_start: None,
            packets: 0,
            active: 0,
            loud_sum: 0,
            speaking: false,
            streak: 0,
            loudness: 0,
            closed: 0,
        }
    }

    /// How many intervals have closed so far.
    pub fn intervals(&self) -> u64 {
        self.closed
    }

    pub fn speaking(&self) -> bool {
        self.speaking
    }

    /// One audio packet's level (RFC 6464: 0 loudest … 127 silence).
    pub fn observe(&mut self, now: Instant, level: u8) -> Option<Change> {
        let change = self.tick(now);
        self.interval_start.get_or_insert(now);
        let level = level.min(127);
        self.packets += 1;
        self.loud_sum += (127 - level) as u32;
        if level <= self.cfg.active_level {
            self.active += 1;
        }
        change
    }

    /// Closes every interval that ended by `now`; call it periodically so silence without
    /// packets is noticed. Returns the last state change, if any.
    pub fn tick(&mut self, now: Instant) -> Option<Change> {
        let mut change = None;
        while let Some(start) = self.interval_start {
            if now.saturating_duration_since(start) < self.cfg.interval {
                break;
            }
            if let Some(c) = self.close_interval() {
                change = Some(c);
            }
            let next = start + self.cfg.interval;
            // Stop stepping through an idle stretch once it can change nothing more.
            self.interval_start =
                if self.packets == 0 && !self.speaking && self.streak >= self.cfg.off_after {
                    None
                } else {
                    Some(next)
                };
        }
        change
    }

    fn close_interval(&mut self) -> Option<Change> {
        let active = self.packets > 0
            && self.active as f32 >= self.cfg.min_active_fraction * self.packets as f32;
        self.closed += 1;
        self.loudness = self.loud_sum.checked_div(self.packets).unwrap_or(0) as u8;
        self.packets = 0;
        self.active = 0;
        self.loud_sum = 0;
        if active == self.speaking {
            self.streak = 0;
            return None;
        }
        self.streak += 1;
        let needed = if active {
            self.cfg.on_after
        } else {
            self.cfg.off_after
        };
        if self.streak >= needed {
            self.speaking = active;
            self.streak = 0;
            return Some(Change {
                speaking: active,
                loudness: self.loudness,
            });
        }
        None
    }
}

/// Picks the dominant speaker among participants, holding each choice for a minimum dwell.
#[derive(Debug, Clone)]
pub struct Dominant<Id> {
    current: Option<Id>,
    since: Option<Instant>,
    pub min_dwell: Duration,
}

impl<Id: Clone + PartialEq> Dominant<Id> {
    pub fn new(min_dwell: Duration) -> Self {
        Dominant {
            current: None,
            since: None,
            min_dwell,
        }
    }

    pub fn current(&self) -> Option<&Id> {
        self.current.as_ref()
    }

    /// `candidates`: (id, speaking, loudness). Returns the new dominant speaker on a change.
    pub fn update(&mut self, now: Instant, candidates: &[(Id, bool, u8)]) -> Option<Id> {
        let loudest = candidates
            .iter()
            .filter(|c| c.1)
            .max_by_key(|c| c.2)
            .map(|c| c.0.clone())?;
        if self.current.as_ref() == Some(&loudest) {
            return None;
        }
        let current_speaking = candidates
            .iter()
            .any(|c| Some(&c.0) == self.current.as_ref() && c.1);
        let dwelt = self
            .since
            .is_none_or(|s| now.saturating_duration_since(s) >= self.min_dwell);
        if current_speaking && !dwelt {
            return None;
        }
        self.current = Some(loudest.clone());
        self.since = Some(now);
        Some(loudest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// Feeds `ms` milliseconds of 20 ms packets at `level`; returns the changes seen.
    fn feed(v: &mut Vad, t: &mut Instant, ms: u64, level: u8) -> Vec<bool> {
        let mut out = vec![];
        for _ in 0..ms / 20 {
            if let Some(c) = v.observe(*t, level) {
                out.push(c.speaking);
            }
            *t += 20 * MS;
        }
        out
    }

    #[test]
    fn silence_never_speaks() {
        let mut v = Vad::new(VadConfig::default());
        let mut t = Instant::now();
        assert!(feed(&mut v, &mut t, 5000, 127).is_empty());
        assert!(!v.speaking());
    }

    #[test]
    fn steady_speech_turns_on_then_off_after_silence() {
        let mut v = Vad::new(VadConfig::default());
        let mut t = Instant::now();
        assert_eq!(feed(&mut v, &mut t, 2000, 20), vec![true]);
        assert!(v.speaking());
        assert_eq!(feed(&mut v, &mut t, 2000, 120), vec![false]);
    }

    #[test]
    fn a_cough_does_not_count() {
        let mut v = Vad::new(VadConfig::default());
        let mut t = Instant::now();
        let mut changes = feed(&mut v, &mut t, 1000, 127);
        changes.extend(feed(&mut v, &mut t, 100, 5)); // 100 ms burst
        changes.extend(feed(&mut v, &mut t, 2000, 127));
        assert!(changes.is_empty(), "{changes:?}");
    }

    #[test]
    fn dtx_silence_without_packets_turns_off() {
        let mut v = Vad::new(VadConfig::default());
        let mut t = Instant::now();
        feed(&mut v, &mut t, 1500, 25);
        assert!(v.speaking());
        // No packets at all for 2 s (DTX): the periodic tick notices.
        let change = v.tick(t + Duration::from_secs(2));
        assert_eq!(change.map(|c| c.speaking), Some(false));
    }

    #[test]
    fn brief_pauses_in_speech_do_not_flicker() {
        let mut v = Vad::new(VadConfig::default());
        let mut t = Instant::now();
        let mut changes = vec![];
        for _ in 0..5 {
            changes.extend(feed(&mut v, &mut t, 900, 20));
            changes.extend(feed(&mut v, &mut t, 300, 127)); // a breath
        }
        assert_eq!(changes, vec![true]);
    }

    #[test]
    fn two_overlapping_speakers_and_the_dominant_one() {
        let (mut a, mut b) = (
            Vad::new(VadConfig::default()),
            Vad::new(VadConfig::default()),
        );
        let mut d = Dominant::new(Duration::from_millis(1500));
        let start = Instant::now();
        let mut picks = vec![];
        // A talks loudly from 0 s; B joins quietly at 1 s, then B gets louder and A stops at 3 s.
        for step in 0..(6000 / 20) {
            let t = start + step * 20 * MS;
            let ms = step * 20;
            a.observe(t, if ms < 3000 { 10 } else { 127 });
            b.observe(
                t,
                if ms < 1000 {
                    127
                } else if ms < 2000 {
                    28
                } else {
                    8
                },
            );
            if let Some(id) = d.update(
                t,
                &[
                    ("a", a.speaking(), a.loudness),
                    ("b", b.speaking(), b.loudness),
                ],
            ) {
                picks.push((ms, id));
            }
        }
        assert_eq!(picks.first().map(|p| p.1), Some("a"));
        assert!(picks.iter().any(|p| p.1 == "b"), "{picks:?}");
        // A held the floor for the dwell time before B could take it.
        let b_at = picks.iter().find(|p| p.1 == "b").map(|p| p.0).unwrap_or(0);
        assert!(b_at >= 1500, "{picks:?}");
        assert!(!a.speaking() && b.speaking());
    }
}
