//! The keyframe cache: per video track, the packets since the last keyframe, so a viewer that
//! joins (or a slot that switches to this source) starts decoding at once instead of waiting
//! for the publisher's next keyframe — which OBS, ignoring PLI, sends only every few seconds.
//!
//! Pure: `push` takes the time and the packet. Bounded by packets, bytes and age; once a bound
//! is passed the cache is dropped until the next keyframe (a partial group is useless).

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::rtc::RtpPacket;

pub const MAX_PACKETS: usize = 2048;
pub const MAX_BYTES: usize = 3 * 1024 * 1024;
pub const MAX_AGE: Duration = Duration::from_secs(10);

/// A group of pictures: a keyframe's first packet and everything after it.
#[derive(Default)]
pub struct GopCache {
    packets: Vec<Arc<RtpPacket>>,
    bytes: usize,
    started: Option<Instant>,
}

impl GopCache {
    /// Records one packet of the track. `keyframe` marks the start of a new group.
    pub fn push(&mut self, now: Instant, pkt: &Arc<RtpPacket>, keyframe: bool) {
        if keyframe {
            self.packets.clear();
            self.bytes = 0;
            self.started = Some(now);
        }
        let Some(started) = self.started else {
            return; // no keyframe seen since the last reset
        };
        let size = pkt.payload.len();
        if self.packets.len() >= MAX_PACKETS
            || self.bytes + size > MAX_BYTES
            || now.saturating_duration_since(started) > MAX_AGE
        {
            self.clear();
            return;
        }
        self.packets.push(pkt.clone());
        self.bytes += size;
    }

    pub fn clear(&mut self) {
        self.packets.clear();
        self.bytes = 0;
        self.started = None;
    }

    /// The cached group, first packet a keyframe; empty when nothing usable is cached.
    pub fn packets(&self) -> &[Arc<RtpPacket>] {
        &self.packets
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn p(seq: u16, len: usize) -> Arc<RtpPacket> {
        let mut pkt = RtpPacket::default();
        pkt.header.sequence_number = seq;
        pkt.payload = Bytes::from(vec![0u8; len]);
        Arc::new(pkt)
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
}
