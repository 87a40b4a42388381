//! A viewer leg's send-side congestion control, run by the leg's sender
//! (`rtc::direct::sender`) on every packet that leaves: it writes the transport-wide sequence
//! number (draft-holmer-rmcat-transport-wide-cc-extensions), records each in a send history,
//! resolves the viewer's TWCC feedback against it and drives the leg's estimator
//! ([`LegEstimator`]); the new target goes to the feedback tap with the RTCP that moved it.
//!
//! Why not webrtc-rs's own TWCC sender and congestion-control interceptors: both act only on
//! the SSRCs of bound streams, so RTX packets (the NACK repairs and wisp's probes,
//! `rtc::prober`) leave unnumbered and unrecorded. A probe the estimator cannot see proves
//! nothing, and repairs it cannot see make it overestimate during loss. Transport-wide means
//! every packet of the transport: here, every RTP packet once the viewer negotiated it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ::rtc::interceptor::{BandwidthEstimator, PacketReport, StreamInfo, convert_twcc};
use ::rtc::rtcp::transport_feedbacks::transport_layer_cc::TransportLayerCc;
use ::rtc::shared::marshal::MarshalSize;

use crate::rtc::bwe::LegEstimator;
use crate::rtc::prober::{ProbeBook, Prober};

/// Packets remembered for the viewer's feedback, by transport-wide sequence number modulo the
/// ring's size: a ring, not the library's maps, one slot written in place per packet, nothing
/// hashed or pruned. It starts at [`FIRST_RING`] slots and doubles, up to this, when a packet
/// would take the slot of one sent less than [`RING_SPAN`] before that is still unreported: a
/// second of 2.5 Mbit/s video fits, where feedback comes every 50-100 ms, while a leg of
/// audio or a low layer keeps 3 KB instead of 24 KB.
const RING: usize = 512;
const FIRST_RING: usize = 64;
const RING_SPAN: std::time::Duration = std::time::Duration::from_secs(1);
/// A grown ring halves again once it has not grown for this long and a quarter of it holds
/// everything still unreported and younger than [`RING_SPAN`] (checked at most once a
/// second): a join's keyframe burst or a stall of feedback grows it, and then it would keep
/// 24 KB per viewer for the rest of the session.
const RING_SETTLE: std::time::Duration = std::time::Duration::from_secs(5);

/// How long probes stop once the path shows loss (the room's probe window, `sfu::plan::probe`).
const PROBE_HALT: std::time::Duration = std::time::Duration::from_secs(2);

/// Every 16-bit number in network byte order, so a packet's transport-wide number is a
/// static slice and writing it allocates nothing (the extension's wire form is the number
/// itself, draft-holmer-rmcat-transport-wide-cc-extensions §2).
static NUMBERS: [u8; 2 * 65536] = {
    let mut t = [0u8; 2 * 65536];
    let mut i = 0;
    while i < 65536 {
        t[2 * i] = (i >> 8) as u8;
        t[2 * i + 1] = i as u8;
        i += 1;
    }
    t
};

fn wire_number(seq: u16) -> bytes::Bytes {
    let i = 2 * usize::from(seq);
    bytes::Bytes::from_static(&NUMBERS[i..i + 2])
}

/// One packet sent, as the estimator will need it, in 16 bytes (a ring of 512 is 8 KB per
/// viewer; with an `Instant` and a 64-bit id each was 40, and a join's burst grows every
/// viewer's ring to 512). A free slot has size 0 (no RTP packet is empty).
#[derive(Debug, Clone, Copy, Default)]
struct Sent {
    ssrc: u32,
    /// Microseconds after the ring's epoch, wrapping (every ~71 minutes): what a slot holds
    /// is read back within seconds of being written, so the wrapping difference from now is
    /// its age.
    departure_us: u32,
    twcc_seq: u16,
    rtp_seq: u16,
    size: u16,
}

impl Sent {
    fn taken(&self) -> bool {
        self.size != 0
    }
}

pub struct CongestionControl {
    estimator: LegEstimator,
    prober: Prober,
    /// Allocated when the viewer negotiated the extension.
    sent: Vec<Sent>,
    /// What `Sent::departure_us` counts from.
    epoch: Instant,
    /// Transport-wide numbers given so far: the next number, unwrapped (reports' ids); its
    /// low 16 bits are the next number on the wire.
    numbered: u64,
    /// The negotiated extension id (from the first stream bound with it).
    ext_id: Option<u8>,
    last_target: f64,
    /// When the ring last grew or was last checked for halving.
    grown: Option<Instant>,
    checked: Option<Instant>,
}

impl CongestionControl {
    pub fn new(probes: Arc<ProbeBook>) -> CongestionControl {
        CongestionControl {
            estimator: LegEstimator::default(),
            prober: Prober::new(probes),
            sent: Vec::new(),
            epoch: Instant::now(),
            numbered: 0,
            ext_id: None,
            last_target: 0.0,
            grown: None,
            checked: None,
        }
    }

    /// Writes the next transport-wide number on `p` and records it.
    fn number(&mut self, now: Instant, p: &mut ::rtc::rtp::packet::Packet) {
        let Some(id) = self.ext_id else {
            return;
        };
        let seq = self.next_seq();
        if p.header.set_extension(id, wire_number(seq)).is_ok() {
            self.numbered += 1;
            let now_us = self.micros(now);
            let mut i = usize::from(seq) % self.sent.len();
            if self.sent.len() < RING && young(&self.sent[i], now_us) {
                self.grown = Some(now);
                self.resize(self.sent.len() * 2);
                i = usize::from(seq) % self.sent.len();
            }
            self.sent[i] = Sent {
                twcc_seq: seq,
                ssrc: p.header.ssrc,
                rtp_seq: p.header.sequence_number,
                size: u16::try_from(p.marshal_size()).unwrap_or(u16::MAX).max(1),
                departure_us: now_us,
            };
        }
    }

    /// One RTP packet on its way out: numbered and recorded, with the probes it brings (each
    /// numbered too), to go out right after it.
    pub fn on_write(
        &mut self,
        now: Instant,
        p: &mut ::rtc::rtp::packet::Packet,
    ) -> Vec<::rtc::rtp::packet::Packet> {
        let mut probes = self.prober.on_write(now, p);
        self.number(now, p);
        for probe in &mut probes {
            self.number(now, probe);
        }
        probes
    }

    /// The viewer's RTCP: its transport-wide feedback drives the estimator. Returns the new
    /// target when it moved.
    pub fn on_feedback(
        &mut self,
        now: Instant,
        packets: &[Box<dyn ::rtc::rtcp::Packet>],
    ) -> Option<f64> {
        if self.sent.is_empty() {
            return None;
        }
        let mut reports = Vec::new();
        let now_us = self.micros(now);
        for p in packets {
            let Some(fb) = p.as_any().downcast_ref::<TransportLayerCc>() else {
                continue;
            };
            for ack in convert_twcc(fb) {
                let len = self.sent.len();
                let slot = &mut self.sent[usize::from(ack.sequence_number) % len];
                // Reported once; a number the ring no longer holds is past helping.
                if slot.taken() && slot.twcc_seq == ack.sequence_number {
                    let s = std::mem::take(slot);
                    let age = Duration::from_micros(u64::from(now_us.wrapping_sub(s.departure_us)));
                    // Unwrapped from the next number: how far behind it this one is.
                    let behind = u64::from(self.next_seq().wrapping_sub(s.twcc_seq));
                    reports.push(PacketReport {
                        ssrc: s.ssrc,
                        id: self.numbered.saturating_sub(behind),
                        rtp_sequence_number: s.rtp_seq,
                        is_twcc: true,
                        twcc_sequence_number: s.twcc_seq,
                        size: usize::from(s.size),
                        arrived: ack.arrived,
                        departure: now.checked_sub(age).unwrap_or(now),
                        arrival: ack.arrival,
                        ecn: ack.ecn,
                    });
                }
            }
        }
        self.settle(now);
        if reports.is_empty() {
            return None;
        }
        self.estimator.on_reports(now, &reports);
        if self.estimator.saturated(now).is_some() {
            self.prober.halt(now + PROBE_HALT);
        }
        let target = self.estimator.target_bitrate();
        (target != self.last_target).then(|| {
            self.last_target = target;
            target
        })
    }
}

impl CongestionControl {
    /// A stream the leg sends: probed if it has RTX; the first stream with the extension
    /// negotiated fixes its id (it is one per transport).
    pub fn bind(&mut self, info: &StreamInfo) {
        self.prober.bind(info);
        if self.ext_id.is_none() {
            self.ext_id = info
                .rtp_header_extensions
                .iter()
                .find(|e| e.uri == ::rtc::sdp::extmap::TRANSPORT_CC_URI)
                .and_then(|e| u8::try_from(e.id).ok())
                .filter(|id| *id != 0);
            if self.ext_id.is_some() {
                self.sent = vec![Sent::default(); FIRST_RING];
            }
        }
    }

    /// Halves a grown ring when it has settled (see [`RING_SETTLE`]).
    fn settle(&mut self, now: Instant) {
        let len = self.sent.len();
        let since = |t: Option<Instant>| t.map(|t| now.saturating_duration_since(t));
        if len <= FIRST_RING
            || since(self.grown).is_some_and(|d| d < RING_SETTLE)
            || since(self.checked).is_some_and(|d| d < RING_SPAN)
        {
            return;
        }
        self.checked = Some(now);
        let now_us = self.micros(now);
        if self.sent.iter().filter(|s| young(s, now_us)).count() <= len / 4 {
            self.resize(len / 2);
        }
    }

    /// Moves the ring to `len` slots, each unreported packet to its slot in the new size
    /// (sizes are powers of two, so a number's slot stays its number modulo the size across
    /// the wrap); where two meet, the later one stays (the one fewer numbers behind the next).
    fn resize(&mut self, len: usize) {
        let mut ring = vec![Sent::default(); len];
        let next = self.next_seq();
        for s in self.sent.drain(..).filter(Sent::taken) {
            let slot = &mut ring[usize::from(s.twcc_seq) % len];
            if !slot.taken() || next.wrapping_sub(s.twcc_seq) < next.wrapping_sub(slot.twcc_seq) {
                *slot = s;
            }
        }
        self.sent = ring;
    }

    /// The next transport-wide number on the wire.
    fn next_seq(&self) -> u16 {
        self.numbered as u16
    }

    /// `now` as a record's departure (see [`Sent`]).
    fn micros(&self, now: Instant) -> u32 {
        now.saturating_duration_since(self.epoch).as_micros() as u32
    }
}

/// Whether a record holds a packet sent less than [`RING_SPAN`] before `now_us`.
fn young(s: &Sent, now_us: u32) -> bool {
    s.taken() && u128::from(now_us.wrapping_sub(s.departure_us)) < RING_SPAN.as_micros()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::rtc::interceptor::RTPHeaderExtension;
    use ::rtc::rtp::extension::transport_cc_extension::TransportCcExtension;
    use ::rtc::shared::marshal::Marshal;
    use ::rtc::shared::marshal::Unmarshal;

    #[test]
    fn the_static_numbers_are_the_extensions_wire_form() {
        for seq in [0u16, 1, 255, 256, 0x1234, u16::MAX] {
            let ext = TransportCcExtension {
                transport_sequence: seq,
            }
            .marshal()
            .unwrap();
            assert_eq!(&wire_number(seq)[..], &ext[..], "{seq}");
        }
    }

    #[test]
    fn every_packet_is_numbered_and_recorded_repairs_and_probes_included() {
        let mut cc = CongestionControl::new(Arc::default());
        let t = Instant::now();
        let write = |cc: &mut CongestionControl, ssrc: u32| {
            let mut p = ::rtc::rtp::packet::Packet::default();
            p.header.ssrc = ssrc;
            assert!(cc.on_write(t, &mut p).is_empty(), "no probes asked for");
            p
        };
        // Not negotiated: nothing written, nothing recorded.
        assert!(write(&mut cc, 10).header.get_extension(3).is_none());
        cc.bind(&StreamInfo {
            ssrc: 10,
            ssrc_rtx: Some(11),
            rtp_header_extensions: vec![RTPHeaderExtension {
                uri: ::rtc::sdp::extmap::TRANSPORT_CC_URI.to_owned(),
                id: 3,
            }],
            ..Default::default()
        });
        // The media SSRC, its RTX SSRC and one never bound: one sequence for all.
        let seqs: Vec<u16> = [10, 11, 10, 12]
            .into_iter()
            .map(|ssrc| {
                let mut ext = write(&mut cc, ssrc).header.get_extension(3).unwrap();
                TransportCcExtension::unmarshal(&mut ext)
                    .unwrap()
                    .transport_sequence
            })
            .collect();
        assert_eq!(seqs, [0, 1, 2, 3]);
        assert_eq!(cc.sent.iter().filter(|s| s.taken()).count(), 4);
    }

    /// A leg bound to one stream (SSRC 10) with the extension as id 3.
    fn bound() -> CongestionControl {
        let mut cc = CongestionControl::new(Arc::default());
        cc.bind(&StreamInfo {
            ssrc: 10,
            rtp_header_extensions: vec![RTPHeaderExtension {
                uri: ::rtc::sdp::extmap::TRANSPORT_CC_URI.to_owned(),
                id: 3,
            }],
            ..Default::default()
        });
        cc
    }

    /// A record is 16 bytes, and reads back its packet's departure to the microsecond and
    /// its place in the sequence, also across the wrap of its 32-bit clock.
    #[test]
    fn records_are_small_and_read_back_exactly() {
        use ::rtc::rtcp::transport_feedbacks::transport_layer_cc::{
            PacketStatusChunk, RunLengthChunk, StatusChunkTypeTcc, SymbolTypeTcc,
        };
        assert_eq!(std::mem::size_of::<Sent>(), 16);
        let t0 = Instant::now();
        let mut cc = bound();
        // An epoch 2^32 µs (~71.6 min) minus a little before: the clock wraps mid-test.
        let Some(epoch) = t0.checked_sub(Duration::from_micros((1u64 << 32) - 500)) else {
            return; // the host has been up for less than that: nothing to wrap
        };
        cc.epoch = epoch;
        cc.numbered = 65_536; // an unwrapped count past one wrap of the 16-bit numbers
        let sends: Vec<Instant> = (0..4u64)
            .map(|i| t0 + Duration::from_micros(300 * i))
            .collect();
        for (i, at) in sends.iter().enumerate() {
            let mut p = ::rtc::rtp::packet::Packet::default();
            p.header.ssrc = 10;
            p.header.sequence_number = 100 + i as u16;
            cc.on_write(*at, &mut p);
        }
        let now = t0 + Duration::from_millis(50);
        let fb = TransportLayerCc {
            base_sequence_number: 0,
            packet_status_count: 4,
            packet_chunks: vec![PacketStatusChunk::RunLengthChunk(RunLengthChunk {
                type_tcc: StatusChunkTypeTcc::RunLengthChunk,
                packet_status_symbol: SymbolTypeTcc::PacketNotReceived,
                run_length: 4,
            })],
            ..Default::default()
        };
        let mut got = Vec::new();
        for ack in convert_twcc(&fb) {
            let slot = cc.sent[usize::from(ack.sequence_number) % cc.sent.len()];
            assert!(slot.taken());
            got.push(slot);
        }
        cc.on_feedback(now, &[Box::new(fb) as Box<dyn ::rtc::rtcp::Packet>]);
        assert_eq!(
            cc.sent.iter().filter(|s| s.taken()).count(),
            0,
            "each reported once"
        );
        let now_us = cc.micros(now);
        for (i, s) in got.iter().enumerate() {
            let age = Duration::from_micros(u64::from(now_us.wrapping_sub(s.departure_us)));
            let back = now - age;
            let want = sends[i];
            let diff = if back > want {
                back - want
            } else {
                want - back
            };
            assert!(
                diff <= Duration::from_micros(1),
                "packet {i}: off by {diff:?}"
            );
            assert_eq!(s.rtp_seq, 100 + i as u16);
        }
        // The wrap happened between the first and the last send.
        assert!(got[0].departure_us > got[3].departure_us, "{got:?}");
    }

    /// The ring stays small while feedback keeps up, grows while a second's packets are
    /// unreported, and a packet recorded before a growth is still found by its feedback.
    #[test]
    fn the_send_ring_grows_only_for_what_is_in_flight() {
        use ::rtc::rtcp::transport_feedbacks::transport_layer_cc::{
            PacketStatusChunk, RunLengthChunk, StatusChunkTypeTcc, SymbolTypeTcc,
        };
        let mut cc = bound();
        let t0 = Instant::now();
        let ms = |n: u64| t0 + std::time::Duration::from_millis(n);
        let send = |cc: &mut CongestionControl, at: Instant| {
            let mut p = ::rtc::rtp::packet::Packet::default();
            p.header.ssrc = 10;
            cc.on_write(at, &mut p);
        };
        let ack = |cc: &mut CongestionControl, first: u16, count: u16, at: Instant| {
            let fb = TransportLayerCc {
                base_sequence_number: first,
                packet_status_count: count,
                reference_time: 0,
                fb_pkt_count: 0,
                packet_chunks: vec![PacketStatusChunk::RunLengthChunk(RunLengthChunk {
                    type_tcc: StatusChunkTypeTcc::RunLengthChunk,
                    packet_status_symbol: SymbolTypeTcc::PacketNotReceived,
                    run_length: count,
                })],
                recv_deltas: vec![],
                ..Default::default()
            };
            let before = cc.sent.iter().filter(|s| s.taken()).count();
            cc.on_feedback(at, &[Box::new(fb) as Box<dyn ::rtc::rtcp::Packet>]);
            before - cc.sent.iter().filter(|s| s.taken()).count()
        };
        // 10 s at 100 packets a second, reported ten at a time (every 100 ms): 64 slots do.
        for i in 0..1000u16 {
            send(&mut cc, ms(10 * u64::from(i)));
            if i % 10 == 9 {
                assert_eq!(ack(&mut cc, i - 9, 10, ms(10 * u64::from(i))), 10);
            }
        }
        assert_eq!(cc.sent.len(), FIRST_RING);
        // Feedback stalls: 300 packets in 300 ms take 512 slots, and the first of them is
        // still reported when the feedback comes.
        for i in 0..300u64 {
            send(&mut cc, ms(10_000 + i));
        }
        assert_eq!(cc.sent.len(), RING);
        assert_eq!(ack(&mut cc, 1000, 300, ms(10_400)), 300);
        // Feedback keeps up again: the ring halves back, once a second after 5 s without
        // growing, and what is in flight across a halving is still reported.
        let mut sizes = Vec::new();
        for i in 1300..2300u16 {
            let at = ms(10_400 + 10 * u64::from(i - 1299));
            send(&mut cc, at);
            if i % 10 == 9 && i > 1309 {
                // Each feedback one batch behind: ten packets in flight at every halving.
                assert_eq!(ack(&mut cc, i - 19, 10, at), 10, "at {i}");
                sizes.push(cc.sent.len());
            }
        }
        // Halved at ~5 s, 6 s and 7 s after the growth, no sooner.
        assert!(sizes[..44].iter().all(|&n| n == RING), "{sizes:?}");
        assert_eq!(sizes.last(), Some(&FIRST_RING), "{sizes:?}");
    }
}
