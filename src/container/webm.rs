//! WebM (Matroska, EBML): the container for VP8, which MP4 has no mapping for that players
//! accept. The segment is written with an unknown size and each cluster whole, so a file is
//! playable up to its last cluster however the writer stopped — the live-recording shape
//! browsers' MediaRecorder writes too.

use bytes::Bytes;

use super::depack::Codec;
use super::fmp4::FragTrack;

/// Element ids (Matroska spec, RFC 9559).
mod id {
    pub const EBML: u32 = 0x1A45_DFA3;
    pub const EBML_VERSION: u32 = 0x4286;
    pub const EBML_READ_VERSION: u32 = 0x42F7;
    pub const EBML_MAX_ID_LENGTH: u32 = 0x42F2;
    pub const EBML_MAX_SIZE_LENGTH: u32 = 0x42F3;
    pub const DOC_TYPE: u32 = 0x4282;
    pub const DOC_TYPE_VERSION: u32 = 0x4287;
    pub const DOC_TYPE_READ_VERSION: u32 = 0x4285;
    pub const SEGMENT: u32 = 0x1853_8067;
    pub const INFO: u32 = 0x1549_A966;
    pub const TIMESTAMP_SCALE: u32 = 0x2A_D7B1;
    pub const MUXING_APP: u32 = 0x4D80;
    pub const DURATION: u32 = 0x4489;
    pub const VOID: u32 = 0xEC;
    pub const WRITING_APP: u32 = 0x5741;
    pub const TRACKS: u32 = 0x1654_AE6B;
    pub const TRACK_ENTRY: u32 = 0xAE;
    pub const TRACK_NUMBER: u32 = 0xD7;
    pub const TRACK_UID: u32 = 0x73C5;
    pub const TRACK_TYPE: u32 = 0x83;
    pub const CODEC_ID: u32 = 0x86;
    pub const CODEC_PRIVATE: u32 = 0x63A2;
    pub const SEEK_PRE_ROLL: u32 = 0x56BB;
    pub const VIDEO: u32 = 0xE0;
    pub const PIXEL_WIDTH: u32 = 0xB0;
    pub const PIXEL_HEIGHT: u32 = 0xBA;
    pub const AUDIO: u32 = 0xE1;
    pub const SAMPLING_FREQUENCY: u32 = 0xB5;
    pub const CHANNELS: u32 = 0x9F;
    pub const CLUSTER: u32 = 0x1F43_B675;
    pub const TIMESTAMP: u32 = 0xE7;
    pub const SIMPLE_BLOCK: u32 = 0xA3;
}

fn put_id(out: &mut Vec<u8>, id: u32) {
    let b = id.to_be_bytes();
    let skip = b.iter().take_while(|x| **x == 0).count();
    out.extend_from_slice(&b[skip..]);
}

/// An element size as an EBML variable-length integer (8 bytes: simple and always enough).
fn put_size(out: &mut Vec<u8>, size: u64) {
    out.push(0x01);
    out.extend_from_slice(&size.to_be_bytes()[1..]);
}

fn element(out: &mut Vec<u8>, id: u32, body: &[u8]) {
    put_id(out, id);
    put_size(out, body.len() as u64);
    out.extend_from_slice(body);
}

fn uint(out: &mut Vec<u8>, id: u32, v: u64) {
    let b = v.to_be_bytes();
    let skip = b.iter().take_while(|x| **x == 0).count().min(7);
    element(out, id, &b[skip..]);
}

fn nested(out: &mut Vec<u8>, id: u32, f: impl FnOnce(&mut Vec<u8>)) {
    let mut body = Vec::new();
    f(&mut body);
    element(out, id, &body);
}

/// What the header says about one track.
#[derive(Debug, Clone)]
pub struct WebmTrack {
    /// 1-based; also the block's track number.
    pub number: u64,
    pub codec: Codec,
    pub dims: Option<(u16, u16)>,
    pub channels: u16,
}

/// Bytes a `Duration` element takes (id, 1-byte size, 8-byte float): reserved in the header
/// as a `Void` element of the same size and written over when the file ends.
pub const DURATION_LEN: usize = 11;

/// The `Duration` element (milliseconds, as the header's timestamp scale) that replaces the
/// header's placeholder at [`header`]'s returned offset.
pub fn duration(ms: f64) -> [u8; DURATION_LEN] {
    let mut out = [0u8; DURATION_LEN];
    out[..2].copy_from_slice(&(id::DURATION as u16).to_be_bytes());
    out[2] = 0x88; // size 8

    out[3..].copy_from_slice(&ms.to_be_bytes());
    out
}

/// The EBML header, the start of an unknown-size segment, its info and its tracks; and the
/// offset of the duration's placeholder.
pub fn header(tracks: &[WebmTrack]) -> (Vec<u8>, usize) {
    let mut out = Vec::new();
    nested(&mut out, id::EBML, |b| {
        uint(b, id::EBML_VERSION, 1);
        uint(b, id::EBML_READ_VERSION, 1);
        uint(b, id::EBML_MAX_ID_LENGTH, 4);
        uint(b, id::EBML_MAX_SIZE_LENGTH, 8);
        element(b, id::DOC_TYPE, b"webm");
        uint(b, id::DOC_TYPE_VERSION, 4);
        uint(b, id::DOC_TYPE_READ_VERSION, 2);
    });
    put_id(&mut out, id::SEGMENT);
    out.extend_from_slice(&[0x01, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]); // unknown size
    let mut placeholder = 0;
    let info_at = out.len();
    nested(&mut out, id::INFO, |b| {
        uint(b, id::TIMESTAMP_SCALE, 1_000_000); // milliseconds
        element(b, id::MUXING_APP, b"wisp");
        element(b, id::WRITING_APP, b"wisp");
        placeholder = b.len();
        // A Void of DURATION_LEN bytes: id, size 9 as a 1-byte vint, 9 bytes.
        b.push(id::VOID as u8);
        b.push(0x80 | 9);
        b.extend_from_slice(&[0; 9]);
    });
    // The Info's own id (4 bytes) and size (8 bytes) come before its body.
    let placeholder = info_at + 4 + 8 + placeholder;
    nested(&mut out, id::TRACKS, |b| {
        for t in tracks {
            nested(b, id::TRACK_ENTRY, |e| {
                uint(e, id::TRACK_NUMBER, t.number);
                uint(e, id::TRACK_UID, t.number);
                match t.codec {
                    Codec::Opus => {
                        uint(e, id::TRACK_TYPE, 2);
                        element(e, id::CODEC_ID, b"A_OPUS");
                        element(e, id::CODEC_PRIVATE, &opus_head(t.channels));
                        uint(e, id::SEEK_PRE_ROLL, 80_000_000);
                        nested(e, id::AUDIO, |a| {
                            element(a, id::SAMPLING_FREQUENCY, &48_000f64.to_be_bytes());
                            uint(a, id::CHANNELS, t.channels as u64);
                        });
                    }
                    video => {
                        uint(e, id::TRACK_TYPE, 1);
                        let name: &[u8] = if video == Codec::Vp9 {
                            b"V_VP9"
                        } else {
                            b"V_VP8"
                        };
                        element(e, id::CODEC_ID, name);
                        let (w, h) = t.dims.unwrap_or((0, 0));
                        nested(e, id::VIDEO, |v| {
                            uint(v, id::PIXEL_WIDTH, w as u64);
                            uint(v, id::PIXEL_HEIGHT, h as u64);
                        });
                    }
                }
            });
        }
    });
    (out, placeholder)
}

/// RFC 7845 §5.1 identification header (no pre-skip: WebRTC Opus carries none).
fn opus_head(channels: u16) -> Vec<u8> {
    let mut h = b"OpusHead".to_vec();
    h.push(1);
    h.push(channels as u8);
    h.extend_from_slice(&0u16.to_le_bytes());
    h.extend_from_slice(&48_000u32.to_le_bytes());
    h.extend_from_slice(&0i16.to_le_bytes());
    h.push(0);
    h
}

/// One cluster holding the runs' samples, interleaved by time. `rates` gives each run's
/// timescale (by position).
pub fn cluster(runs: &[(FragTrack, u32)]) -> Option<Vec<u8>> {
    let mut blocks: Vec<(i64, u64, bool, &Bytes)> = Vec::new();
    for (run, rate) in runs {
        let rate = (*rate).max(1) as i64;
        let mut t = run.decode_time as i64;
        for s in &run.samples {
            blocks.push((t * 1000 / rate, run.id as u64, s.keyframe, &s.data));
            t += s.duration as i64;
        }
    }
    blocks.sort_by_key(|b| (b.0, b.1));
    let start = blocks.first()?.0;
    let mut out = Vec::new();
    nested(&mut out, id::CLUSTER, |c| {
        uint(c, id::TIMESTAMP, start as u64);
        for (t, track, key, data) in &blocks {
            let rel = (*t - start).clamp(0, i16::MAX as i64) as i16;
            let mut body = Vec::with_capacity(data.len() + 4);
            body.push(0x80 | *track as u8); // 1-byte track number vint
            body.extend_from_slice(&rel.to_be_bytes());
            body.push(if *key { 0x80 } else { 0 });
            body.extend_from_slice(data);
            element(c, id::SIMPLE_BLOCK, &body);
        }
    });
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::container::fmp4::FragSample;

    #[test]
    fn the_duration_fits_its_placeholder() {
        let (h, at) = header(&[]);
        assert_eq!(&h[at..at + 2], &[0xEC, 0x89]);
        assert_eq!(duration(1500.0)[..3], [0x44, 0x89, 0x88]);
    }

    #[test]
    fn ids_and_sizes_are_ebml() {
        let mut v = Vec::new();
        uint(&mut v, id::TIMESTAMP_SCALE, 1_000_000);
        assert_eq!(
            v,
            [
                0x2A, 0xD7, 0xB1, 0x01, 0, 0, 0, 0, 0, 0, 3, 0x0F, 0x42, 0x40
            ]
        );
    }

    #[test]
    fn a_cluster_interleaves_tracks_by_time() {
        let run = |id, dt, n| FragTrack {
            id,
            decode_time: dt,
            samples: (0..n)
                .map(|i| FragSample {
                    duration: if id == 1 { 3000 } else { 960 },
                    keyframe: i == 0,
                    data: Bytes::from(vec![id as u8; 3]),
                })
                .collect(),
        };
        let c = cluster(&[(run(1, 90_000, 2), 90_000), (run(2, 48_000, 3), 48_000)]).unwrap();
        // Cluster timestamp is 1000 ms; first block (either track at 0 ms relative).
        let ts_at = c.windows(2).position(|w| w == [0xE7, 0x01]).unwrap();
        assert_eq!(&c[ts_at + 9..ts_at + 11], &[0x03, 0xE8]);
        assert!(c.iter().filter(|b| **b == 0xA3).count() >= 5);
    }
}
