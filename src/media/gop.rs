//! The keyframe cache: per video track, the packets since the last keyframe, so a viewer that
//! joins (or a slot that switches to this source) starts decoding at once instead of waiting
//! for the publisher's next keyframe — which OBS, ignoring PLI, sends only every few seconds.
//!
//! Pure: `push` takes the time and the packet. Rules:
//! - a group starts at the **first packet of the access unit** (the packets sharing one RTP
//!   timestamp) that carries a keyframe: an H.264 IDR picture's parameter sets, SEI and every
//!   IDR slice; a VP9 picture's spatial layers; an AV1 temporal unit. Packets of that access
//!   unit that came before the first keyframe-marked one (an SEI, an AUD) are kept too;
//! - later keyframe-marked packets of the same access unit (the FU-A start of a second IDR
//!   slice, a single-NAL slice, an SVC layer) never restart the group, and `push` reports
//!   only the first one as the start, so a viewer's keyframe gate opens at the access unit's
//!   first marked packet and not in its middle;
//! - bounded by packets, bytes and age; once a bound is passed the cache is dropped until the
//!   next keyframe (a partial group is useless).

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::rtc::RtpPacket;

pub const MAX_PACKETS: usize = 2048;
pub const MAX_BYTES: usize = 3 * 1024 * 1024;
pub const MAX_AGE: Duration = Duration::from_secs(10);

/// A group of pictures: a keyframe access unit's first packet and everything after it.
#[derive(Default)]
pub struct GopCache {
    /// The group (while `started`), whose tail is the current access unit; without a group,
    /// only the current access unit, in case a keyframe turns up later in it.
    packets: Vec<Arc<RtpPacket>>,
    /// Payload bytes in `packets`.
    bytes: usize,
    /// When the current group started; `None` while there is no usable group.
    started: Option<Instant>,
    /// The current access unit: its RTP timestamp and the index of its first packet.
    au: Option<(u32, usize)>,
    /// The RTP timestamp of the access unit that last started a group (kept after a bound
    /// drops the group, so the rest of that access unit cannot start one mid-picture).
    key_ts: Option<u32>,
}

/// Whether RTP timestamp `a` is later than `b` (wrapping).
fn ts_newer(a: u32, b: u32) -> bool {
    a != b && a.wrapping_sub(b) < 0x8000_0000
}

impl GopCache {
    /// Records one packet of the track; `keyframe` says its payload carries a keyframe.
    /// Returns true when this packet starts a new group: the first keyframe-marked packet of
    /// its access unit. Only such a packet may open a viewer's keyframe gate.
    pub fn push(&mut self, now: Instant, pkt: &Arc<RtpPacket>, keyframe: bool) -> bool {
        let ts = pkt.header.timestamp;
        match self.au {
            // Same access unit, or a late packet of an earlier one: it joins the current tail.
            Some((cur, _)) if !ts_newer(ts, cur) => {}
            _ => {
                if self.started.is_none() {
                    self.packets.clear();
                    self.bytes = 0;
                }
                self.au = Some((ts, self.packets.len()));
            }
        }
        let starts = keyframe && self.key_ts != Some(ts);
        if starts {
            // The new group is the current access unit so far (when this packet belongs to
            // it), then this packet.
            let from = match self.au {
                Some((cur, first)) if cur == ts => first,
                _ => self.packets.len(),
            };
            self.packets.drain(..from);
            self.bytes = self.packets.iter().map(|p| p.payload.len()).sum();
            self.au = Some((ts, 0));
            self.key_ts = Some(ts);
            self.started = Some(now);
        }
        let size = pkt.payload.len();
        let over_age = self
            .started
            .is_some_and(|s| now.saturating_duration_since(s) > MAX_AGE);
        if self.packets.len() >= MAX_PACKETS || self.bytes + size > MAX_BYTES || over_age {
            self.clear();
            return starts;
        }
        self.packets.push(pkt.clone());
        self.bytes += size;
        starts
    }

    /// Drops the group (and the access unit in progress) until the next keyframe.
    pub fn clear(&mut self) {
        self.packets.clear();
        self.bytes = 0;
        self.started = None;
        self.au = None;
    }

    /// The cached group, starting at a keyframe access unit's first packet; empty when nothing
    /// usable is cached.
    pub fn packets(&self) -> &[Arc<RtpPacket>] {
        if self.started.is_some() {
            &self.packets
        } else {
            &[]
        }
    }

    pub fn bytes(&self) -> usize {
        if self.started.is_some() {
            self.bytes
        } else {
            0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn p(seq: u16, len: usize) -> Arc<RtpPacket> {
        let mut pkt = RtpPacket::default();
        pkt.header.sequence_number = seq;
        pkt.header.timestamp = seq as u32 * 3000;
        pkt.payload = Bytes::from(vec![0u8; len]);
        Arc::new(pkt)
    }

    /// A packet of the access unit at `ts`.
    fn au(seq: u16, ts: u32) -> Arc<RtpPacket> {
        let mut pkt = RtpPacket::default();
        pkt.header.sequence_number = seq;
        pkt.header.timestamp = ts;
        pkt.payload = Bytes::from(vec![0u8; 10]);
        Arc::new(pkt)
    }

    fn seqs(c: &GopCache) -> Vec<u16> {
        c.packets()
            .iter()
            .map(|p| p.header.sequence_number)
            .collect()
    }

    #[test]
    fn a_group_starts_at_the_first_packet_of_the_keyframe_access_unit() {
        let t = Instant::now();
        let mut c = GopCache::default();
        // A delta picture, then the keyframe picture: SEI (unmarked), SPS (marked), PPS,
        // IDR slice 1 as FU-A start (marked), its middle and end, IDR slice 2 start (marked)
        // and end; then a delta picture.
        assert!(!c.push(t, &au(1, 1000), false));
        assert!(!c.push(t, &au(2, 4000), false), "an SEI is not a keyframe");
        assert!(c.push(t, &au(3, 4000), true), "the SPS starts the group");
        assert!(!c.push(t, &au(4, 4000), false));
        assert!(
            !c.push(t, &au(5, 4000), true),
            "a later IDR slice does not restart"
        );
        assert!(!c.push(t, &au(6, 4000), false));
        assert!(
            !c.push(t, &au(7, 4000), true),
            "nor does a third marked packet"
        );
        assert!(!c.push(t, &au(8, 7000), false));
        assert_eq!(seqs(&c), vec![2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(c.bytes(), 70);
        // The next keyframe picture replaces the group from its own first packet.
        assert!(!c.push(t, &au(9, 10000), false));
        assert!(c.push(t, &au(10, 10000), true));
        assert_eq!(seqs(&c), vec![9, 10]);
    }

    #[test]
    fn a_first_keyframe_keeps_its_access_unit_and_nothing_older() {
        let t = Instant::now();
        let mut c = GopCache::default();
        c.push(t, &au(1, 1000), false);
        c.push(t, &au(2, 4000), false);
        assert!(c.packets().is_empty(), "nothing before a keyframe");
        assert_eq!(c.bytes(), 0);
        assert!(c.push(t, &au(3, 4000), true));
        assert_eq!(seqs(&c), vec![2, 3]);
    }

    #[test]
    fn a_late_packet_of_an_earlier_picture_joins_the_tail() {
        let t = Instant::now();
        let mut c = GopCache::default();
        c.push(t, &au(1, 4000), true);
        c.push(t, &au(3, 7000), false);
        c.push(t, &au(2, 4000), false); // reordered
        assert!(c.push(t, &au(4, 10000), true));
        assert_eq!(
            seqs(&c),
            vec![4],
            "the reordered packet did not open an access unit"
        );
    }

    #[test]
    fn the_rest_of_a_dropped_keyframe_picture_cannot_start_a_group() {
        let t = Instant::now();
        let mut c = GopCache::default();
        let mut big = RtpPacket::default();
        big.header.timestamp = 4000;
        big.payload = Bytes::from(vec![0u8; MAX_BYTES + 1]);
        assert!(c.push(t, &Arc::new(big), true));
        assert!(c.packets().is_empty(), "over the byte bound");
        assert!(!c.push(t, &au(2, 4000), true), "mid-picture: no new group");
        assert!(c.packets().is_empty());
        assert!(c.push(t, &au(3, 7000), true));
        assert_eq!(seqs(&c), vec![3]);
    }

    #[test]
    fn keeps_the_group_since_the_last_keyframe() {
        let t = Instant::now();
        let mut c = GopCache::default();
        c.push(t, &p(1, 10), false);
        assert!(c.packets().is_empty(), "nothing before a keyframe");
        c.push(t, &p(2, 10), true);
        c.push(t, &p(3, 10), false);
        assert_eq!(c.packets().len(), 2);
        c.push(t, &p(4, 10), true);
        c.push(t, &p(5, 10), false);
        let seqs: Vec<u16> = c
            .packets()
            .iter()
            .map(|p| p.header.sequence_number)
            .collect();
        assert_eq!(seqs, vec![4, 5]);
        assert_eq!(c.bytes(), 20);
    }

    #[test]
    fn bounds_drop_the_group_until_the_next_keyframe() {
        let t = Instant::now();
        let mut c = GopCache::default();
        c.push(t, &p(1, MAX_BYTES - 10), true);
        c.push(t, &p(2, 100), false);
        assert!(c.packets().is_empty(), "over the byte bound");
        c.push(t, &p(3, 10), false);
        assert!(c.packets().is_empty(), "stays empty until a keyframe");
        c.push(t, &p(4, 10), true);
        c.push(t + MAX_AGE + Duration::from_millis(1), &p(5, 10), false);
        assert!(c.packets().is_empty(), "over the age bound");
    }

    /// Real packetizations (captured by `tests/interop/capture_rtp.py`): each packet's
    /// length as a big-endian u16, then the packet.
    fn fixture(bytes: &[u8]) -> Vec<Arc<RtpPacket>> {
        use ::rtc::shared::marshal::Unmarshal;
        let mut out = Vec::new();
        let mut rest = bytes;
        while let [a, b, tail @ ..] = rest {
            let n = u16::from_be_bytes([*a, *b]) as usize;
            let mut raw = &tail[..n];
            out.push(Arc::new(
                RtpPacket::unmarshal(&mut raw).expect("fixture packet"),
            ));
            rest = &tail[n..];
        }
        out
    }

    /// The H.264 NAL unit types a packet carries, in order (RFC 6184: single NAL unit,
    /// STAP-A, or the start of an FU-A).
    fn nal_types(p: &[u8]) -> Vec<u8> {
        match p.first().map(|b| b & 0x1f) {
            Some(24) => {
                let mut out = Vec::new();
                let mut i = 1;
                while i + 2 < p.len() {
                    out.push(p[i + 2] & 0x1f);
                    i += 2 + u16::from_be_bytes([p[i], p[i + 1]]) as usize;
                }
                out
            }
            Some(28) => match p.get(1) {
                Some(fu) if fu & 0x80 != 0 => vec![fu & 0x1f],
                _ => vec![],
            },
            Some(t) => vec![t],
            None => vec![],
        }
    }

    /// Replays a capture through the cache, checking after every packet that the group (when
    /// there is one) is a whole keyframe picture: it starts at the first packet carrying that
    /// picture's timestamp, has SPS and PPS before its first IDR slice, and holds every IDR
    /// slice of the picture. Returns how many groups started.
    fn replay(name: &str, bytes: &[u8], slices: usize) -> usize {
        let packets = fixture(bytes);
        let mut c = GopCache::default();
        let t = Instant::now();
        let mut starts = 0;
        for (i, p) in packets.iter().enumerate() {
            let marked = crate::media::keyframe::is_keyframe("h264", &p.payload);
            if c.push(t, p, marked) {
                starts += 1;
            }
            let group = c.packets();
            let Some(first) = group.first() else { continue };
            let ts = first.header.timestamp;
            let au_first = packets[..=i]
                .iter()
                .position(|q| q.header.timestamp == ts)
                .unwrap();
            assert!(
                Arc::ptr_eq(first, &packets[au_first]),
                "{name}: after packet {i} the group starts mid-picture"
            );
            let nals: Vec<u8> = group
                .iter()
                .take_while(|q| q.header.timestamp == ts)
                .flat_map(|q| nal_types(&q.payload))
                .collect();
            let idr = nals.iter().position(|&t| t == 5);
            let last_of_au = packets[..=i].iter().rposition(|q| q.header.timestamp == ts);
            if last_of_au != Some(i) || packets.get(i + 1).map(|q| q.header.timestamp) != Some(ts) {
                // The picture is complete in the cache: check it whole.
                let idr = idr.unwrap_or_else(|| panic!("{name}: no IDR slice in {nals:?}"));
                assert!(
                    nals[..idr].contains(&7) && nals[..idr].contains(&8),
                    "{name}: no SPS/PPS before the first IDR slice: {nals:?}"
                );
                let in_group = nals.iter().filter(|&&t| t == 5).count();
                assert_eq!(
                    in_group, slices,
                    "{name}: IDR slices in the group: {nals:?}"
                );
            }
        }
        starts
    }

    #[test]
    fn real_h264_packetizations_cache_whole_keyframe_pictures() {
        // x264 High, tune=zerolatency, threads=4 (four slices a picture; threads=1: one),
        // key-int-max=30, 2.5 s: three keyframe pictures in each x264 capture.
        let cases: [(&str, &[u8], usize, usize); 4] = [
            (
                "x264 sliced, STAP-A (aggregate-mode=zero-latency)",
                include_bytes!("../../tests/fixtures/rtp/x264-high-sliced-stapa.rtp"),
                4,
                3,
            ),
            (
                "x264 sliced, single NAL units (aggregate-mode=none, as libdatachannel)",
                include_bytes!("../../tests/fixtures/rtp/x264-high-sliced-single-nal.rtp"),
                4,
                3,
            ),
            (
                "x264 one slice, single NAL units",
                include_bytes!("../../tests/fixtures/rtp/x264-high-one-slice-single-nal.rtp"),
                1,
                3,
            ),
            (
                // Chromium 156 (OpenH264, Constrained Baseline) through wisp to aiortc: one
                // keyframe picture (STAP-A with SPS and PPS, then the IDR slice as FU-A).
                "Chromium H.264",
                include_bytes!("../../tests/fixtures/rtp/chromium-h264.rtp"),
                1,
                1,
            ),
        ];
        for (name, bytes, slices, keyframes) in cases {
            assert_eq!(
                replay(name, bytes, slices),
                keyframes,
                "{name}: one start per keyframe picture"
            );
        }
    }
}
