//! Hundreds of random input sequences, checked after every step: no viewer shows itself, no
//! publisher holds two slots of one kind of one viewer, no departed publisher holds a slot,
//! holders never move between slots, and every shown source is a live track.

use super::*;
use crate::sfu::layers::LayerPref;

/// A tiny deterministic generator (xorshift), so failures replay.
struct Rng(u64);
impl Rng {
    fn next(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

#[test]
fn random_sequences_keep_the_invariants() {
    for seed in 1..=300u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let mut r = Room::new();
        let mut pubs: Vec<ParticipantId> = Vec::new();
        let mut tracks: Vec<(ParticipantId, SourceId, MediaKind)> = Vec::new();
        let mut viewers: Vec<(SessionId, Option<ParticipantId>)> = Vec::new();
        let mut last: std::collections::HashMap<SessionId, crate::sfu::plan::Holders> =
            Default::default();
        for step in 0..80 {
            r.at(rng.next(1200) as u64);
            match rng.next(10) {
                0 | 1 => pubs.push(r.publisher()),
                2 if !pubs.is_empty() => {
                    let p = pubs.remove(rng.next(pubs.len()));
                    tracks.retain(|t| t.0 != p);
                    r.go(Input::PublisherLeft { id: p });
                }
                3 if !pubs.is_empty() => {
                    let p = pubs[rng.next(pubs.len())].clone();
                    let kind = [MediaKind::Audio, MediaKind::Video][rng.next(2)];
                    let rid = ["q", "h", "f"][rng.next(3)];
                    let s = r.track(&p, kind, Some(rid));
                    tracks.push((p, s, kind));
                }
                4 if !tracks.is_empty() => {
                    let (p, s, _) = tracks.remove(rng.next(tracks.len()));
                    r.go(Input::TrackRemoved {
                        publisher: p,
                        source: s,
                    });
                }
                5 => {
                    let me = (!pubs.is_empty() && rng.next(2) == 0)
                        .then(|| pubs[rng.next(pubs.len())].clone());
                    let v = r.viewer(me.as_ref(), rng.next(3), rng.next(4));
                    viewers.push((v, me));
                }
                6 if !viewers.is_empty() => {
                    let (v, _) = viewers.remove(rng.next(viewers.len()));
                    last.remove(&v);
                    r.go(Input::ViewerLeft { viewer: v });
                }
                7 if !pubs.is_empty() => {
                    let p = pubs[rng.next(pubs.len())].clone();
                    r.voice(&p, rng.next(2) == 0, rng.next(128) as u8);
                }
                8 if !viewers.is_empty() => {
                    let (v, _) = viewers[rng.next(viewers.len())];
                    let pref = [
                        LayerPref::Auto,
                        LayerPref::Rid("h".into()),
                        LayerPref::MaxHeight(200),
                    ][rng.next(3)]
                    .clone();
                    r.go(Input::SetLayer {
                        viewer: v,
                        slot: rng.next(6),
                        pref,
                    });
                }
                _ => {
                    let rates: Vec<(SourceId, u64)> = tracks
                        .iter()
                        .map(|t| (t.1, [0, 1, 300_000, u64::MAX][rng.next(4)]))
                        .collect();
                    let est: Vec<(SessionId, u64)> = viewers
                        .iter()
                        .map(|v| (v.0, [0, 100_000, u64::MAX][rng.next(3)]))
                        .collect();
                    r.tick(&rates, &est);
                }
            }
            for (v, me) in &viewers {
                let holders = r.plan.holders(*v).unwrap();
                let ctx = format!("seed {seed} step {step}");
                for kind in &holders {
                    let held: Vec<&ParticipantId> = kind.iter().flatten().collect();
                    assert!(
                        me.as_ref().is_none_or(|me| !held.contains(&me)),
                        "{ctx}: a viewer shows itself"
                    );
                    let mut uniq = held.clone();
                    uniq.sort_by_key(|p| p.to_string());
                    uniq.dedup();
                    assert_eq!(uniq.len(), held.len(), "{ctx}: one publisher in two slots");
                    assert!(
                        held.iter().all(|p| pubs.contains(p)),
                        "{ctx}: a departed publisher holds a slot"
                    );
                }
                if let Some(before) = last.get(v) {
                    for (k, kind) in holders.iter().enumerate() {
                        for (j, p) in kind.iter().enumerate() {
                            let Some(p) = p else { continue };
                            if let Some(i) = before[k].iter().position(|b| b.as_ref() == Some(p)) {
                                assert_eq!(i, j, "{ctx}: a holder moved to another slot");
                            }
                        }
                    }
                }
                last.insert(*v, holders.clone());
                // Every shown source is a live track of that slot's holder.
                for (slot, shown) in r.shows(*v).iter().enumerate() {
                    let Some(s) = shown else { continue };
                    let t = tracks.iter().find(|t| t.1 == *s);
                    assert!(t.is_some(), "{ctx}: slot {slot} shows an ended track");
                }
            }
        }
    }
}
