//! Containers for what publishers send, without transcoding: RTP back into frames
//! ([`assemble`]), frames into codec samples ([`depack`]), samples onto one clock per file
//! ([`timeline`]), and the file formats — fragmented MP4 ([`fmp4`]) and WebM ([`webm`]).
//! Recording (`record/`) and HLS (`hls/`) are built from these; everything here is pure.

pub mod assemble;
pub mod depack;
pub mod fmp4;
pub mod timeline;
pub mod webm;

use std::time::{Duration, Instant};

use assemble::Assembler;
use depack::{Codec, Depack};
use timeline::Lane;

/// One track on its way into a container: packets → frames → samples on its lane.
#[derive(Debug)]
pub struct Ingest {
    pub codec: Codec,
    pub channels: u16,
    asm: Assembler,
    pub depack: Depack,
    pub lane: Lane,
}

impl Ingest {
    /// Track `id` (1-based) of `codec`; holes wait `repair` for a retransmission.
    pub fn new(codec: Codec, channels: u16, id: u32, repair: Duration) -> Ingest {
        Ingest {
            codec,
            channels: channels.max(1),
            asm: Assembler::new(codec.is_video(), codec.is_key(), repair),
            depack: Depack::new(codec),
            lane: Lane::new(id, codec.clock_rate()),
        }
    }

    /// One packet, arrived `arrival` seconds into the file's clock. True when video was
    /// lost past repair and a keyframe should be asked for.
    pub fn packet(&mut self, now: Instant, arrival: f64, pkt: crate::rtc::RtpPacket) -> bool {
        let h = &pkt.header;
        self.lane.observe(arrival, h.timestamp);
        let out = self
            .asm
            .push(now, h.sequence_number, h.timestamp, h.marker, pkt.payload);
        self.samples(&out.frames);
        out.want_keyframe
    }

    /// Gives up holes that waited too long; true as for [`Ingest::packet`].
    pub fn poll(&mut self, now: Instant) -> bool {
        let out = self.asm.poll(now);
        self.samples(&out.frames);
        out.want_keyframe
    }

    fn samples(&mut self, frames: &[assemble::RawFrame]) {
        for f in frames {
            if let Some(s) = self.depack.sample(f) {
                self.lane.push(s);
            }
        }
    }

    /// Whether the container can describe this track yet (H.264 needs its parameter sets).
    pub fn describable(&self) -> bool {
        self.codec != Codec::H264 || (self.depack.sps.is_some() && self.depack.pps.is_some())
    }

    /// Notes the publisher's sender report for this track.
    pub fn note_sender_report(&mut self, report: Option<(u64, u32)>) {
        if let Some((ntp, rtp)) = report {
            self.lane.note_sender_report(ntp, rtp);
        }
    }

    pub fn fmp4_info(&self) -> fmp4::TrackInfo {
        fmp4::TrackInfo {
            id: self.lane.id,
            codec: self.codec,
            timescale: self.lane.rate,
            dims: self.depack.dims,
            sps: self.depack.sps.clone(),
            pps: self.depack.pps.clone(),
            channels: self.channels,
        }
    }
}

/// Puts the tracks on the publisher's clock when every one has a sender report (and packets
/// after it); true if so. One track alone needs no sync.
pub fn sync_to_sender(tracks: &mut [&mut Ingest]) -> bool {
    if tracks.len() < 2 {
        return false;
    }
    let skews: Option<Vec<f64>> = tracks.iter().map(|t| t.lane.sender_skew()).collect();
    let Some(skew) = skews.map(|s| s.into_iter().fold(f64::INFINITY, f64::min)) else {
        return false;
    };
    tracks.iter_mut().all(|t| t.lane.sync_to_sender(skew))
}

/// Whether every track has what [`sync_to_sender`] needs.
pub fn can_sync(tracks: &[&Ingest]) -> bool {
    tracks.len() >= 2 && tracks.iter().all(|t| t.lane.sender_skew().is_some())
}

/// Puts the tracks of `kinds` (audio, video) on one clock as a file or stream starts:
/// `None` while both kinds are in but their sender reports are not both known yet and the
/// caller `may_wait`; else whether the sender reports aligned them (arrival time if not).
pub fn start_clock(
    tracks: &mut [Option<Ingest>; 2],
    kinds: [bool; 2],
    may_wait: bool,
) -> Option<bool> {
    let mut included: Vec<&mut Ingest> = tracks
        .iter_mut()
        .enumerate()
        .filter(|(k, _)| kinds[*k])
        .filter_map(|(_, t)| t.as_mut())
        .collect();
    let ready = {
        let view: Vec<&Ingest> = included.iter().map(|t| &**t).collect();
        can_sync(&view)
    };
    if kinds == [true, true] && !ready && may_wait {
        return None;
    }
    Some(sync_to_sender(&mut included))
}
