//! Bandwidth probes for a viewer leg, as RFC 4588 retransmissions: while a slot probes (the
//! room asks for the rate its next layer up would add, `sfu::plan::probe`), each frame's last
//! packet is followed by copies of itself on the stream's RTX SSRC, as many as the probe rate
//! owes since the previous frame (`media::probe`). The viewer discards them as repairs of a
//! packet it already has, but each carries its own transport-wide sequence number, so its
//! feedback shows the path carrying media plus probe, and the leg's estimate (`rtc::bwe`)
//! rises if the path takes it. Chromium probes the same way.
//!
//! Why RTX and not copies on the media SSRC: a receiver's SRTP replay check drops a repeated
//! sequence number before its feedback recorder sees it, so such copies read as loss. And why
//! not padding-only packets: webrtc-rs's RTP writer pads to 4 bytes at most.
//!
//! The RTX sequence space is shared with the NACK repairs, which pass through here on their
//! way out: every RTX packet, theirs and ours, is numbered here from one counter per RTX SSRC.
//! Streams without RTX are not probed ([`ProbeBook::can_probe`]). Run by the leg's congestion
//! control (`rtc::congestion`), so probes and repairs get their transport-wide numbers there
//! with everything else.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use ::rtc::interceptor::StreamInfo;
use ::rtc::rtp;

use crate::lock::Locked;
use crate::media::probe::ProbePacer;

/// A leg's probe rates by media SSRC, shared by its outgoing tracks (which set them) and its
/// prober (which reads them).
#[derive(Debug, Default)]
pub struct ProbeBook {
    rates: Mutex<HashMap<u32, Arc<AtomicU64>>>,
    rtx: AtomicBool,
}

impl ProbeBook {
    /// The probe rate cell of `ssrc` (bit/s; 0: none).
    pub fn rate(&self, ssrc: u32) -> Arc<AtomicU64> {
        self.rates.locked().entry(ssrc).or_default().clone()
    }

    /// Whether any stream of the leg negotiated RTX, so it can be probed.
    pub fn can_probe(&self) -> bool {
        self.rtx.load(Ordering::Relaxed)
    }
}

struct Stream {
    ssrc: u32,
    rtx_ssrc: u32,
    rtx_pt: u8,
    /// Next RTX sequence number.
    rtx_seq: u16,
    rate: Arc<AtomicU64>,
    pacer: ProbePacer,
}

/// A leg's probes and RTX numbering (a handful of streams: scanned, not hashed).
pub struct Prober {
    book: Arc<ProbeBook>,
    streams: Vec<Stream>,
    /// No probes before this: the path showed it is full (see [`Prober::halt`]).
    halted_until: Option<Instant>,
}

impl Prober {
    pub fn new(book: Arc<ProbeBook>) -> Prober {
        Prober {
            book,
            streams: Vec::new(),
            halted_until: None,
        }
    }

    /// The path is losing what it is sent: no probes until `until`, whatever the room asks. A
    /// probe into a full link costs the viewer its media (a shaper drops either), so it ends
    /// at the first feedback that shows loss, not at the end of the room's probe window.
    pub fn halt(&mut self, until: Instant) {
        self.halted_until = Some(until);
    }

    /// One RTP packet on its way out: an RTX repair is renumbered; a frame's last packet of a
    /// probing stream brings the probes owed, returned to go out right after it.
    pub fn on_write(
        &mut self,
        now: Instant,
        p: &mut rtp::packet::Packet,
    ) -> Vec<rtp::packet::Packet> {
        let ssrc = p.header.ssrc;
        if let Some(s) = self.streams.iter_mut().find(|s| s.rtx_ssrc == ssrc) {
            p.header.sequence_number = s.rtx_seq;
            s.rtx_seq = s.rtx_seq.wrapping_add(1);
            return Vec::new();
        }
        if !p.header.marker {
            return Vec::new();
        }
        let Some(s) = self.streams.iter_mut().find(|s| s.ssrc == ssrc) else {
            return Vec::new();
        };
        let halted = self.halted_until.is_some_and(|t| now < t);
        let bps = if halted {
            0
        } else {
            s.rate.load(Ordering::Relaxed)
        };
        let n = s.pacer.due(bps, now, 14 + p.payload.len());
        if n == 0 {
            return Vec::new();
        }
        let mut payload = Vec::with_capacity(2 + p.payload.len());
        payload.extend_from_slice(&p.header.sequence_number.to_be_bytes());
        payload.extend_from_slice(&p.payload);
        let payload = bytes::Bytes::from(payload);
        (0..n)
            .map(|_| {
                let mut header = p.header.clone();
                header.ssrc = s.rtx_ssrc;
                header.payload_type = s.rtx_pt;
                header.sequence_number = s.rtx_seq;
                s.rtx_seq = s.rtx_seq.wrapping_add(1);
                rtp::packet::Packet {
                    header,
                    payload: payload.clone(),
                }
            })
            .collect()
    }

    pub fn bind(&mut self, info: &StreamInfo) {
        let (Some(rtx_ssrc), Some(rtx_pt)) = (info.ssrc_rtx, info.payload_type_rtx) else {
            return;
        };
        self.book.rtx.store(true, Ordering::Relaxed);
        self.streams.retain(|s| s.ssrc != info.ssrc);
        self.streams.push(Stream {
            ssrc: info.ssrc,
            rtx_ssrc,
            rtx_pt,
            rtx_seq: rand::random(),
            rate: self.book.rate(info.ssrc),
            pacer: ProbePacer::default(),
        });
    }

    pub fn unbind(&mut self, info: &StreamInfo) {
        self.streams.retain(|s| s.ssrc != info.ssrc);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn rtp(ssrc: u32, seq: u16, marker: bool) -> rtp::packet::Packet {
        let mut p = rtp::packet::Packet::default();
        p.header.ssrc = ssrc;
        p.header.sequence_number = seq;
        p.header.marker = marker;
        p.payload = bytes::Bytes::from(vec![7u8; 986]);
        p
    }

    #[test]
    fn probes_are_rtx_copies_numbered_with_the_repairs() {
        let book = Arc::new(ProbeBook::default());
        let mut p = Prober::new(book.clone());
        assert!(!book.can_probe());
        p.bind(&StreamInfo {
            ssrc: 10,
            ssrc_rtx: Some(11),
            payload_type_rtx: Some(97),
            ..Default::default()
        });
        assert!(book.can_probe());
        let t = Instant::now();
        // Not probing: media passes untouched, nothing added.
        assert!(p.on_write(t, &mut rtp(10, 100, true)).is_empty());
        // 800 kbit/s of probe at 100 frames a second: 1,000 bytes a frame, one copy each.
        book.rate(10).store(800_000, Ordering::Relaxed);
        let mut copies = Vec::new();
        for k in 1..=10u16 {
            let at = t + Duration::from_millis(10 * u64::from(k));
            let mut media = rtp(10, 100 + k, false);
            assert!(
                p.on_write(at, &mut media).is_empty(),
                "only after a frame's end"
            );
            let mut last = rtp(10, 200 + k, true);
            copies.extend(p.on_write(at, &mut last));
            assert_eq!(
                last.header.sequence_number,
                200 + k,
                "media left as it came"
            );
        }
        // The first frame owes nothing yet; each later one, one copy.
        assert_eq!(copies.len(), 9);
        let c = &copies[0];
        assert_eq!((c.header.ssrc, c.header.payload_type), (11, 97));
        // RFC 4588: the original sequence number, then the original payload.
        assert_eq!(&c.payload[..2], &202u16.to_be_bytes());
        assert_eq!(c.payload.len(), 2 + 986);
        // A NACK repair continues the same RTX sequence.
        let mut repair = rtp(11, 5, false);
        assert!(p.on_write(t, &mut repair).is_empty());
        let seqs: Vec<u16> = copies
            .iter()
            .chain([&repair])
            .map(|c| c.header.sequence_number)
            .collect();
        assert!(
            seqs.windows(2).all(|w| w[1] == w[0].wrapping_add(1)),
            "{seqs:?}"
        );
        // Halted (the path is full): nothing, though the room still asks.
        p.halt(t + Duration::from_secs(2));
        for k in 1..=10u64 {
            let at = t + Duration::from_millis(200 + 10 * k);
            assert!(p.on_write(at, &mut rtp(10, 400, true)).is_empty());
        }
        // Stopped: nothing more.
        book.rate(10).store(0, Ordering::Relaxed);
        assert!(
            p.on_write(t + Duration::from_secs(1), &mut rtp(10, 300, true))
                .is_empty()
        );
    }
}
