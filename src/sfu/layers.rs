//! Simulcast layer choice for one viewer slot: pure, over a description of the layers.
//!
//! Rules ([`LayerPref::pick`]): only active layers are candidates (all of them when none is);
//! `Auto` without a bandwidth estimate takes the best; with a budget it keeps the current
//! layer while it fits, moves up only when a higher layer fits in 75 % of the budget
//! (hysteresis), and drops to the best layer within 75 % when the current one no longer fits
//! (the lowest when none does). `Rid` takes that layer while it is active, else the best.
//! `MaxHeight` takes the tallest layer of known height within the limit, else the lowest.
//! The room planner (`sfu::plan`) calls it; nothing here reads live state.

/// Which simulcast layer a video slot wants.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum LayerPref {
    /// The server's choice: the best active layer.
    #[default]
    Auto,
    /// One encoding by RTP stream id; the best active layer while it is missing or paused.
    Rid(String),
    /// The best active layer no taller than this (layers of unknown size do not qualify).
    MaxHeight(u16),
}

/// What layer choice knows about one layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LayerDesc<'a> {
    pub rid: Option<&'a str>,
    pub active: bool,
    pub height: Option<u16>,
    /// Current bitrate, bit/s.
    pub bitrate: u64,
}

impl LayerPref {
    /// Picks from `layers` ordered lowest to highest quality. `current` is the layer shown now;
    /// `budget` the bandwidth the viewer's estimate leaves for this slot. Auto with a budget
    /// keeps the current layer while it fits, moves up only when the higher layer fits in
    /// 75 % of the budget (hysteresis), and down to the best layer within 75 % when the
    /// current one no longer fits.
    pub fn pick(
        &self,
        layers: &[LayerDesc<'_>],
        current: Option<usize>,
        budget: Option<u64>,
    ) -> Option<usize> {
        let active: Vec<usize> = (0..layers.len()).filter(|i| layers[*i].active).collect();
        let pool = if active.is_empty() {
            (0..layers.len()).collect()
        } else {
            active
        };
        let best = pool.last().copied();
        match self {
            LayerPref::Auto => {
                let Some(b) = budget else { return best };
                let rate = |i: usize| layers[i].bitrate;
                let keep = current.filter(|c| pool.contains(c) && rate(*c) <= b);
                let up = pool
                    .iter()
                    .copied()
                    .rev()
                    .find(|i| rate(*i).saturating_mul(4) <= b.saturating_mul(3));
                match keep {
                    Some(k) => Some(up.filter(|u| *u > k).unwrap_or(k)),
                    // Down by the same 75 % rule: the switch itself needs room (the new
                    // layer's keyframe, repairs of what the narrowed path lost), and a layer
                    // chosen so could have been chosen going up, so it does not flap.
                    None => up.or_else(|| pool.first().copied()),
                }
            }
            LayerPref::Rid(r) => pool
                .iter()
                .copied()
                .find(|i| layers[*i].rid == Some(r.as_str()))
                .or(best),
            LayerPref::MaxHeight(h) => pool
                .iter()
                .copied()
                .rev()
                .find(|i| layers[*i].height.is_some_and(|lh| lh <= *h))
                .or_else(|| pool.first().copied()),
        }
    }

    /// For `Auto` held below the best active layer by its budget: the rate (bit/s) a probe
    /// must add to what the slot sends now (layer `current`) for the next layer up to fit the
    /// up-rule's 75 %, so the leg's estimate can show whether the path carries it. `None`
    /// when nothing is held back.
    pub fn probe(
        &self,
        layers: &[LayerDesc<'_>],
        current: Option<usize>,
        budget: Option<u64>,
    ) -> Option<u64> {
        if *self != LayerPref::Auto {
            return None;
        }
        let (budget, current) = (budget?, current?);
        let any_active = layers.iter().any(|l| l.active);
        let next = (current + 1..layers.len()).find(|i| layers[*i].active || !any_active)?;
        let need = layers[next].bitrate.saturating_mul(4) / 3;
        (need > budget).then(|| {
            need.saturating_sub(layers[current].bitrate)
                .clamp(MIN_PROBE, MAX_PROBE)
        })
    }
}

/// Probe rates, bit/s: below the lower a probe says nothing; above the upper it is a flood.
const MIN_PROBE: u64 = 50_000;
const MAX_PROBE: u64 = 4_000_000;

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(rid: &'static str, bitrate: u64, height: u16) -> LayerDesc<'static> {
        LayerDesc {
            rid: Some(rid),
            active: true,
            height: Some(height),
            bitrate,
        }
    }

    /// q, h, f at 150 kbit/s, 500 kbit/s and 1.5 Mbit/s.
    fn three() -> Vec<LayerDesc<'static>> {
        vec![
            layer("q", 150_000, 180),
            layer("h", 500_000, 360),
            layer("f", 1_500_000, 720),
        ]
    }

    #[test]
    fn auto_without_an_estimate_takes_the_best_active_layer() {
        let mut l = three();
        assert_eq!(LayerPref::Auto.pick(&l, None, None), Some(2));
        l[2].active = false;
        assert_eq!(LayerPref::Auto.pick(&l, Some(2), None), Some(1), "f paused");
        for x in &mut l {
            x.active = false;
        }
        assert_eq!(
            LayerPref::Auto.pick(&l, None, None),
            Some(2),
            "all paused: all"
        );
        assert_eq!(LayerPref::Auto.pick(&[], None, None), None);
    }

    #[test]
    fn auto_with_a_budget_has_hysteresis() {
        let l = three();
        // Fits h (500k <= 600k) but f needs 2 Mbit/s of headroom (75 % rule): stay on h.
        assert_eq!(LayerPref::Auto.pick(&l, Some(1), Some(600_000)), Some(1));
        // Up only once f fits in 75 % of the budget.
        assert_eq!(LayerPref::Auto.pick(&l, Some(1), Some(1_999_999)), Some(1));
        assert_eq!(LayerPref::Auto.pick(&l, Some(1), Some(2_000_000)), Some(2));
        // f still fits at 1.5 Mbit/s: kept (no flapping at the boundary).
        assert_eq!(LayerPref::Auto.pick(&l, Some(2), Some(1_500_000)), Some(2));
        // No longer fits: down to the best layer within 75 %.
        assert_eq!(LayerPref::Auto.pick(&l, Some(2), Some(1_400_000)), Some(1));
        // h would fit in 90 % of 600 kbit/s, not in 75 %: down to q, past h (the lab's
        // narrowed link froze the video for up to 2.7 s stepping through h).
        assert_eq!(LayerPref::Auto.pick(&l, Some(2), Some(600_000)), Some(0));
        // Nothing fits: the lowest.
        assert_eq!(LayerPref::Auto.pick(&l, Some(1), Some(10_000)), Some(0));
        // A zero budget and huge rates never overflow.
        let huge = vec![layer("a", u64::MAX, 1), layer("b", u64::MAX, 2)];
        assert_eq!(LayerPref::Auto.pick(&huge, None, Some(0)), Some(0));
        assert_eq!(
            LayerPref::Auto.pick(&huge, Some(1), Some(u64::MAX)),
            Some(1)
        );
    }

    #[test]
    fn auto_held_below_the_best_asks_for_a_probe_sized_for_the_next_layer() {
        let l = three();
        let auto = LayerPref::Auto;
        // On q with 300 kbit/s: h needs 667 kbit/s of budget, so 517 kbit/s more than q.
        assert_eq!(auto.probe(&l, Some(0), Some(300_000)), Some(516_666));
        // On h with room for f: nothing held back; on f: nothing above.
        assert_eq!(auto.probe(&l, Some(1), Some(2_500_000)), None);
        assert_eq!(auto.probe(&l, Some(2), Some(100_000)), None);
        // No estimate, another preference, or nothing shown: no probe.
        assert_eq!(auto.probe(&l, Some(0), None), None);
        assert_eq!(LayerPref::Rid("q".into()).probe(&l, Some(0), Some(1)), None);
        assert_eq!(auto.probe(&l, None, Some(1)), None);
        // A paused h is skipped: the probe is sized for f (capped at 4 Mbit/s).
        let mut paused = three();
        paused[1].active = false;
        assert_eq!(auto.probe(&paused, Some(0), Some(300_000)), Some(1_850_000));
    }

    #[test]
    fn rid_and_max_height() {
        let mut l = three();
        assert_eq!(LayerPref::Rid("q".into()).pick(&l, Some(2), None), Some(0));
        assert_eq!(
            LayerPref::Rid("x".into()).pick(&l, None, None),
            Some(2),
            "unknown rid"
        );
        l[0].active = false;
        assert_eq!(
            LayerPref::Rid("q".into()).pick(&l, None, None),
            Some(2),
            "q paused"
        );
        let l = three();
        assert_eq!(LayerPref::MaxHeight(400).pick(&l, None, None), Some(1));
        assert_eq!(
            LayerPref::MaxHeight(100).pick(&l, None, None),
            Some(0),
            "none fit"
        );
        let mut unknown = three();
        unknown[1].height = None;
        assert_eq!(
            LayerPref::MaxHeight(400).pick(&unknown, None, None),
            Some(0)
        );
    }
}
