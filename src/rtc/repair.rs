//! What a NACK is answered from. A publisher's video track keeps its recent packets once
//! ([`TrackHistory`], in its fan-out); each viewer stream remembers only how its sequence
//! numbers and timestamps map onto that track's ([`Kept::Shared`]), so one copy of a packet
//! serves every viewer's repair. Where a viewer's payload differs from the track's (a VP8
//! picture id renumbered for it, RED's primary cut out) or the stream is audio, the viewer's
//! sender keeps its own copy ([`Kept::Copy`]) as before.
//!
//! Both histories are a [`SeqRing`]: packets by sequence number modulo a power of two (so the
//! ring agrees across the 16-bit wrap), grown while it would overwrite a packet younger than
//! [`SeqRing::span`] seconds of the stream's clock, so a low-rate stream costs little.
//!
//! Tracks are found by their id through a registry written when a fan-out is made and when it
//! goes, read only when a viewer's stream starts a new mapping (a join, a layer switch, a
//! resync), never per packet: a packet's message carries plain numbers.

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex, Weak};

use crate::lock::Locked;
use crate::rtc::RtpPacket;

/// How a viewer's packet can be sent again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kept {
    /// The viewer's sender keeps its own copy.
    Copy,
    /// Track `source` holds it: the viewer's number is the track's plus `seq_delta`, its
    /// timestamp the track's plus `ts_delta` (the payload type is the one the viewer was sent).
    Shared {
        source: u64,
        seq_delta: u16,
        ts_delta: u32,
    },
}

/// A packet on its way to a viewer leg's driver, with how to repair it: only what a slot
/// writes (a forwarded packet has no CSRCs or extensions of its own; the leg adds its own),
/// 64 bytes where a whole `RtpPacket` is 112. The leg's queue holds up to a thousand of them
/// in blocks of 32, kept between bursts.
pub struct Outgoing {
    payload: bytes::Bytes,
    ssrc: u32,
    timestamp: u32,
    seq: u16,
    payload_type: u8,
    /// [`MARKER`], [`BURST`] (one byte, so the entry stays 64 with the stamp).
    flags: u8,
    kept: Kept,
    /// When the fan-out took it, for the forwarding-delay histogram (0: not timed; see
    /// `media::counters::FORWARDS`).
    stamp: u32,
}

/// The RTP marker bit.
const MARKER: u8 = 1;
/// Part of a burst (a replay of the keyframe cache): the leg paces it.
const BURST: u8 = 2;

impl Outgoing {
    pub fn new(pkt: RtpPacket, kept: Kept) -> Outgoing {
        let h = &pkt.header;
        Outgoing {
            ssrc: h.ssrc,
            timestamp: h.timestamp,
            seq: h.sequence_number,
            payload_type: h.payload_type,
            flags: if h.marker { MARKER } else { 0 },
            payload: pkt.payload,
            kept,
            stamp: 0,
        }
    }

    /// The same, as part of a burst the leg paces (see `rtc::direct::pacer`).
    pub fn in_burst(mut self) -> Outgoing {
        self.flags |= BURST;
        self
    }

    pub fn is_burst(&self) -> bool {
        self.flags & BURST != 0
    }

    /// The same, timed from `stamp` (0: not timed).
    pub fn stamped(mut self, stamp: u32) -> Outgoing {
        self.stamp = stamp;
        self
    }

    pub fn stamp(&self) -> u32 {
        self.stamp
    }

    pub fn ssrc(&self) -> u32 {
        self.ssrc
    }

    pub fn payload_len(&self) -> usize {
        self.payload.len()
    }

    /// The packet to send, and how it is kept.
    pub fn into_packet(self) -> (RtpPacket, Kept) {
        let header = ::rtc::rtp::header::Header {
            version: 2,
            marker: self.flags & MARKER != 0,
            payload_type: self.payload_type,
            sequence_number: self.seq,
            timestamp: self.timestamp,
            ssrc: self.ssrc,
            ..Default::default()
        };
        let payload = self.payload;
        (RtpPacket { header, payload }, self.kept)
    }
}

/// What a ring holds must say its sequence number and RTP timestamp.
pub trait Stamped {
    fn seq(&self) -> u16;
    fn timestamp(&self) -> u32;
}

impl Stamped for Arc<RtpPacket> {
    fn seq(&self) -> u16 {
        self.header.sequence_number
    }
    fn timestamp(&self) -> u32 {
        self.header.timestamp
    }
}

/// Packets by sequence number; see the module's notes.
pub struct SeqRing<T> {
    slots: Vec<Option<T>>,
    first: usize,
    max: usize,
    /// The RTP clock ticks the ring should cover when it can.
    span: u32,
}

impl<T: Stamped> SeqRing<T> {
    /// Starts at `first` slots (both powers of two), grows to `max`, covering `seconds` of a
    /// `clock_rate` stream.
    pub fn new(first: usize, max: usize, clock_rate: u32, seconds: u32) -> SeqRing<T> {
        debug_assert!(first.is_power_of_two() && max.is_power_of_two() && first <= max);
        SeqRing {
            slots: Vec::new(),
            first,
            max,
            span: clock_rate.max(1).saturating_mul(seconds),
        }
    }

    pub fn keep(&mut self, item: T) {
        let (seq, ts) = (item.seq(), item.timestamp());
        if self.slots.len() < self.max {
            let len = self.slots.len();
            let recent = |old: &T| old.seq() != seq && ts.wrapping_sub(old.timestamp()) < self.span;
            if len == 0
                || self.slots[usize::from(seq) % len]
                    .as_ref()
                    .is_some_and(recent)
            {
                self.grow();
            }
        }
        let i = usize::from(seq) % self.slots.len();
        self.slots[i] = Some(item);
    }

    /// Doubles the ring (at first: `first` slots), every item moved to its place.
    fn grow(&mut self) {
        let len = if self.slots.is_empty() {
            self.first
        } else {
            (self.slots.len() * 2).min(self.max)
        };
        let mut bigger: Vec<Option<T>> = std::iter::repeat_with(|| None).take(len).collect();
        for item in self.slots.drain(..).flatten() {
            let i = usize::from(item.seq()) % len;
            bigger[i] = Some(item);
        }
        self.slots = bigger;
    }

    /// The item numbered `seq`, if still held.
    pub fn get(&self, seq: u16) -> Option<&T> {
        if self.slots.is_empty() {
            return None;
        }
        self.slots[usize::from(seq) % self.slots.len()]
            .as_ref()
            .filter(|t| t.seq() == seq)
    }

    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Lets go of everything (it starts small again at the next `keep`).
    pub fn clear(&mut self) {
        self.slots = Vec::new();
    }
}

/// The most packets a track keeps for its viewers' repairs (3 s of ~5 Mbit/s video).
const TRACK_HISTORY: usize = 2048;
/// How much of a track its history covers when it can, in seconds.
pub const HISTORY_SECONDS: u32 = 3;

/// One publisher track's recent packets, shared by every viewer's repairs.
pub struct TrackHistory {
    id: u64,
    ring: Mutex<SeqRing<Arc<RtpPacket>>>,
}

static TRACKS: LazyLock<Mutex<HashMap<u64, Weak<TrackHistory>>>> = LazyLock::new(Default::default);

impl TrackHistory {
    /// A history for track `id`, findable by that id until it is dropped.
    pub fn register(id: u64, clock_rate: u32) -> Arc<TrackHistory> {
        let h = Arc::new(TrackHistory {
            id,
            ring: Mutex::new(SeqRing::new(64, TRACK_HISTORY, clock_rate, HISTORY_SECONDS)),
        });
        TRACKS.locked().insert(id, Arc::downgrade(&h));
        h
    }

    /// The history of track `id`, while the track lives.
    pub fn find(id: u64) -> Option<Weak<TrackHistory>> {
        TRACKS.locked().get(&id).cloned()
    }

    /// Keeps one packet as the track's viewers were given it.
    pub fn keep(&self, pkt: &Arc<RtpPacket>) {
        self.ring.locked().keep(pkt.clone());
    }

    /// Lets go of what is held: nobody watches the track (a simulcast layer no viewer is on
    /// need not keep seconds of video).
    pub fn forget(&self) {
        let mut ring = self.ring.locked();
        if ring.capacity() > 0 {
            ring.clear();
        }
    }

    /// The track's packet numbered `seq`, if still held.
    pub fn get(&self, seq: u16) -> Option<Arc<RtpPacket>> {
        self.ring.locked().get(seq).cloned()
    }

    #[cfg(test)]
    pub fn capacity(&self) -> usize {
        self.ring.locked().capacity()
    }
}

impl Drop for TrackHistory {
    fn drop(&mut self) {
        let mut tracks = TRACKS.locked();
        if tracks.get(&self.id).is_some_and(|w| w.strong_count() == 0) {
            tracks.remove(&self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkt(seq: u16, ts: u32) -> Arc<RtpPacket> {
        let mut p = RtpPacket::default();
        p.header.sequence_number = seq;
        p.header.timestamp = ts;
        Arc::new(p)
    }

    #[test]
    fn a_slots_packet_crosses_to_the_driver_whole_in_64_bytes() {
        assert!(std::mem::size_of::<Outgoing>() <= 64);
        let mut p = RtpPacket::default();
        p.header.version = 2;
        (p.header.marker, p.header.payload_type) = (true, 96);
        (p.header.sequence_number, p.header.timestamp, p.header.ssrc) = (9, 7, 5);
        p.payload = bytes::Bytes::from_static(b"frame");
        let kept = Kept::Shared {
            source: 1,
            seq_delta: 2,
            ts_delta: 3,
        };
        assert_eq!(Outgoing::new(p.clone(), kept).into_packet(), (p, kept));
    }

    #[test]
    fn a_ring_grows_only_to_cover_its_span() {
        // 90 kHz, 3 s; 10 packets per 3000 ticks (300 packets/s).
        let mut r = SeqRing::new(16, 2048, 90_000, 3);
        for i in 0..3000u32 {
            r.keep(pkt(i as u16, i * 300));
        }
        // 3 s is 900 packets: the ring stops at the first power of two that holds them.
        assert_eq!(r.capacity(), 1024);
        assert!(r.get(2999).is_some());
        assert!(r.get(2999 - 1023).is_some());
        assert!(r.get(2999 - 1024).is_none(), "overwritten");
        // A slow stream (10 packets/s) stays small.
        let mut slow = SeqRing::new(16, 2048, 90_000, 3);
        for i in 0..300u32 {
            slow.keep(pkt(i as u16, i * 9000));
        }
        assert_eq!(slow.capacity(), 32);
    }

    #[test]
    fn a_ring_agrees_across_the_wrap_and_checks_numbers() {
        let mut r = SeqRing::new(16, 16, 90_000, 3);
        for s in 65530..=65535u16 {
            r.keep(pkt(s, 0));
        }
        for s in 0..4u16 {
            r.keep(pkt(s, 0));
        }
        assert!(r.get(65533).is_some() && r.get(3).is_some());
        // Same slot, another number: not what was asked for.
        assert!(r.get(65533u16.wrapping_add(16)).is_none());
    }

    #[test]
    fn a_track_is_found_while_it_lives() {
        let id = crate::media::SourceId::next().0;
        let h = TrackHistory::register(id, 90_000);
        h.keep(&pkt(7, 1));
        let found = TrackHistory::find(id).and_then(|w| w.upgrade()).unwrap();
        assert_eq!(found.get(7).unwrap().header.timestamp, 1);
        drop(found);
        drop(h);
        assert!(TrackHistory::find(id).is_none());
    }
}
