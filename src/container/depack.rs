//! Whole frames' RTP payloads into the bitstream samples a container stores, per codec, with
//! what the container's header needs (H.264 parameter sets, picture size).
//!
//! H.264 (RFC 6184: single NAL units, STAP-A, FU-A) becomes AVC samples (4-byte lengths, as
//! MP4's `avc1` stores them); VP8 and VP9 lose their payload descriptors (RFC 7741, RFC 9628)
//! through webrtc-rs's depacketizers; an Opus payload is its sample. Nothing here panics on
//! what a publisher sent: a payload it cannot read is left out of its frame.

use bytes::{BufMut, Bytes, BytesMut};

use super::assemble::RawFrame;
use crate::signal::CodecSpec;

/// The codecs wisp stores without transcoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    H264,
    Vp8,
    Vp9,
    Opus,
}

impl Codec {
    /// The codec a track's MIME type names, if wisp can store it (RED is stored as its Opus).
    pub fn of(spec: &CodecSpec) -> Option<Codec> {
        match spec.name().as_str() {
            "h264" => Some(Codec::H264),
            "vp8" => Some(Codec::Vp8),
            "vp9" => Some(Codec::Vp9),
            "opus" | "red" => Some(Codec::Opus),
            _ => None,
        }
    }

    pub fn is_video(self) -> bool {
        self != Codec::Opus
    }

    pub fn clock_rate(self) -> u32 {
        if self.is_video() { 90_000 } else { 48_000 }
    }

    /// Whether an RTP payload of this codec starts a keyframe.
    pub fn is_key(self) -> fn(&[u8]) -> bool {
        match self {
            Codec::H264 => |p| crate::media::keyframe::is_keyframe("h264", p),
            Codec::Vp8 => |p| crate::media::keyframe::is_keyframe("vp8", p),
            Codec::Vp9 => |p| crate::media::keyframe::is_keyframe("vp9", p),
            Codec::Opus => |_| true,
        }
    }
}

/// One frame as a container stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// RTP timestamp.
    pub ts: u32,
    pub keyframe: bool,
    pub data: Bytes,
}

/// Per-track depacketizing state: the parameter sets and size seen last.
#[derive(Debug)]
pub struct Depack {
    pub codec: Codec,
    pub sps: Option<Bytes>,
    pub pps: Option<Bytes>,
    /// Width and height, once a keyframe (or SPS) told.
    pub dims: Option<(u16, u16)>,
}

impl Depack {
    pub fn new(codec: Codec) -> Depack {
        Depack {
            codec,
            sps: None,
            pps: None,
            dims: None,
        }
    }

    /// The frame's sample, or `None` when nothing in it could be read.
    pub fn sample(&mut self, f: &RawFrame) -> Option<Sample> {
        let data = match self.codec {
            Codec::H264 => self.h264(&f.payloads),
            Codec::Vp8 => {
                let d = strip(&f.payloads, rtc::rtp::codec::vp8::Vp8Packet::default);
                if f.keyframe
                    && let Some(dims) = vp8_size(&d)
                {
                    self.dims = Some(dims);
                }
                d
            }
            Codec::Vp9 => strip(&f.payloads, rtc::rtp::codec::vp9::Vp9Packet::default),
            Codec::Opus => f.payloads.first().cloned().unwrap_or_default(),
        };
        (!data.is_empty()).then_some(Sample {
            ts: f.ts,
            keyframe: f.keyframe,
            data,
        })
    }

    fn h264(&mut self, payloads: &[Bytes]) -> Bytes {
        let mut out = BytesMut::new();
        let mut fu: Option<BytesMut> = None;
        for p in payloads {
            let Some(&b0) = p.first() else { continue };
            match b0 & 0x1f {
                1..=23 => self.nal(&mut out, p),
                24 => {
                    // STAP-A: 16-bit sizes, then the units.
                    let mut i = 1;
                    while let Some(len) = p.get(i..i + 2) {
                        let n = u16::from_be_bytes([len[0], len[1]]) as usize;
                        let Some(unit) = p.get(i + 2..i + 2 + n) else {
                            break;
                        };
                        if !unit.is_empty() {
                            self.nal(&mut out, &p.slice(i + 2..i + 2 + n));
                        }
                        i += 2 + n;
                    }
                }
                28 => {
                    let Some(&b1) = p.get(1) else { continue };
                    if b1 & 0x80 != 0 {
                        let mut nal = BytesMut::with_capacity(p.len() * 8);
                        nal.put_u8((b0 & 0xe0) | (b1 & 0x1f));
                        fu = Some(nal);
                    }
                    if let Some(nal) = fu.as_mut() {
                        nal.extend_from_slice(&p[2..]);
                    }
                    if b1 & 0x40 != 0
                        && let Some(nal) = fu.take()
                    {
                        self.nal(&mut out, &nal.freeze());
                    }
                }
                _ => {} // STAP-B, MTAP, FU-B: not sent by WebRTC publishers
            }
        }
        out.freeze()
    }

    /// Appends one NAL unit, length-prefixed, noting parameter sets.
    fn nal(&mut self, out: &mut BytesMut, nal: &Bytes) {
        match nal.first().map(|b| b & 0x1f) {
            Some(7) => {
                if let Some(dims) = h264_size(nal) {
                    self.dims = Some(dims);
                }
                self.sps = Some(nal.clone());
            }
            Some(8) => self.pps = Some(nal.clone()),
            _ => {}
        }
        out.put_u32(nal.len() as u32);
        out.extend_from_slice(nal);
    }
}

/// Concatenates payloads with their descriptors removed by a fresh depacketizer each (their
/// state would otherwise leak from one packet's optional fields into the next).
fn strip<D: rtc::rtp::packetizer::Depacketizer>(payloads: &[Bytes], new: fn() -> D) -> Bytes {
    let mut out = BytesMut::new();
    for p in payloads {
        if let Ok(b) = new().depacketize(p) {
            out.extend_from_slice(&b);
        }
    }
    out.freeze()
}

/// A VP8 keyframe's size (RFC 6386 §9.1).
fn vp8_size(f: &[u8]) -> Option<(u16, u16)> {
    if f.len() < 10 || f[0] & 1 != 0 || f[3..6] != [0x9d, 0x01, 0x2a] {
        return None;
    }
    let w = u16::from_le_bytes([f[6], f[7]]) & 0x3fff;
    let h = u16::from_le_bytes([f[8], f[9]]) & 0x3fff;
    Some((w, h))
}

/// Reads Exp-Golomb coded fields from an RBSP.
struct Bits {
    data: Vec<u8>,
    pos: usize,
}

impl Bits {
    fn bit(&mut self) -> Option<u32> {
        let byte = *self.data.get(self.pos / 8)?;
        let b = (byte >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        Some(b as u32)
    }
    fn bits(&mut self, n: u32) -> Option<u32> {
        (0..n).try_fold(0u32, |acc, _| Some((acc << 1) | self.bit()?))
    }
    fn ue(&mut self) -> Option<u32> {
        let mut zeros = 0;
        while self.bit()? == 0 {
            zeros += 1;
            if zeros > 31 {
                return None;
            }
        }
        Some((1u32 << zeros) - 1 + self.bits(zeros)?)
    }
    fn se(&mut self) -> Option<i32> {
        let v = self.ue()? as i64;
        Some(if v % 2 == 1 { (v + 1) / 2 } else { -(v / 2) } as i32)
    }
}

/// The picture size an H.264 SPS NAL unit (header byte included) describes (ITU-T H.264
/// §7.3.2.1.1, with the frame cropping applied).
pub fn h264_size(nal: &[u8]) -> Option<(u16, u16)> {
    // Emulation prevention bytes out (00 00 03 → 00 00).
    let mut data = Vec::with_capacity(nal.len());
    let mut zeros = 0;
    for &b in nal.get(1..)? {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        data.push(b);
    }
    let mut r = Bits { data, pos: 0 };
    let profile = r.bits(8)?;
    r.bits(16)?; // constraint flags, level
    r.ue()?; // seq_parameter_set_id
    let mut chroma = 1;
    let mut separate_planes = 0;
    if [100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135].contains(&profile) {
        chroma = r.ue()?;
        if chroma == 3 {
            separate_planes = r.bit()?;
        }
        r.ue()?; // bit_depth_luma_minus8
        r.ue()?; // bit_depth_chroma_minus8
        r.bit()?; // qpprime_y_zero_transform_bypass_flag
        if r.bit()? == 1 {
            for i in 0..if chroma == 3 { 12 } else { 8 } {
                if r.bit()? == 1 {
                    let size = if i < 6 { 16 } else { 64 };
                    let (mut last, mut next) = (8i32, 8i32);
                    for _ in 0..size {
                        if next != 0 {
                            next = (last + r.se()? + 256) % 256;
                        }
                        if next != 0 {
                            last = next;
                        }
                    }
                }
            }
        }
    }
    r.ue()?; // log2_max_frame_num_minus4
    match r.ue()? {
        0 => {
            r.ue()?;
        }
        1 => {
            r.bit()?;
            r.se()?;
            r.se()?;
            for _ in 0..r.ue()?.min(255) {
                r.se()?;
            }
        }
        _ => {}
    }
    r.ue()?; // max_num_ref_frames
    r.bit()?; // gaps_in_frame_num_value_allowed_flag
    let w_mbs = r.ue()? + 1;
    let h_units = r.ue()? + 1;
    let frame_mbs_only = r.bit()?;
    if frame_mbs_only == 0 {
        r.bit()?;
    }
    r.bit()?; // direct_8x8_inference_flag
    let (mut cl, mut cr, mut ct, mut cb) = (0, 0, 0, 0);
    if r.bit()? == 1 {
        (cl, cr, ct, cb) = (r.ue()?, r.ue()?, r.ue()?, r.ue()?);
    }
    let fields = 2 - frame_mbs_only;
    let (cx, cy) = match (chroma, separate_planes) {
        (1, _) => (2, 2 * fields),
        (2, _) => (2, fields),
        _ => (1, fields),
    };
    let w = (w_mbs * 16).checked_sub(cx * (cl + cr))?;
    let h = (fields * h_units * 16).checked_sub(cy * (ct + cb))?;
    Some((u16::try_from(w).ok()?, u16::try_from(h).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn h264_sps_sizes() {
        // High profile 1280x720 (ffmpeg's), and a Constrained Baseline 640x480 with cropping
        // off (Chromium's), and 1920x1080 (cropped from 1088).
        let hd = b"gd\0\x1f\xac$\x84\x01@\x16\xec\x04@\0\0\x03\0@\0\0\x0c#\xc6\x0c\x92";
        assert_eq!(h264_size(hd), Some((1280, 720)));
        let vga = [
            0x67, 0x42, 0xc0, 0x1e, 0xd9, 0x00, 0xa0, 0x3d, 0xa1, 0x00, 0x00, 0x03, 0x00, 0x01,
            0x00, 0x00, 0x03, 0x00, 0x3c, 0x8f, 0x16, 0x2e, 0x48,
        ];
        assert_eq!(h264_size(&vga), Some((640, 480)));
        let fhd = [
            0x67, 0x64, 0x00, 0x28, 0xac, 0xd9, 0x40, 0x78, 0x02, 0x27, 0xe5, 0x84, 0x00, 0x00,
            0x03, 0x00, 0x04, 0x00, 0x00, 0x03, 0x00, 0xf0, 0x3c, 0x60, 0xc6, 0x58,
        ];
        assert_eq!(h264_size(&fhd), Some((1920, 1080)));
        assert_eq!(h264_size(&[0x67, 0x64]), None);
    }

    #[test]
    fn h264_payloads_become_avc_samples_with_their_parameter_sets() {
        let mut d = Depack::new(Codec::H264);
        let sps = Bytes::from_static(
            b"gd\0\x1f\xac$\x84\x01@\x16\xec\x04@\0\0\x03\0@\0\0\x0c#\xc6\x0c\x92",
        );
        let pps = Bytes::from_static(&[0x68, 0xee, 0x32, 0xc8, 0xb0]);
        let mut stap = vec![24u8];
        for n in [&sps, &pps] {
            stap.extend_from_slice(&(n.len() as u16).to_be_bytes());
            stap.extend_from_slice(n);
        }
        let fu1 = Bytes::from_static(&[0x7c, 0x85, 1, 2, 3]);
        let fu2 = Bytes::from_static(&[0x7c, 0x45, 4, 5]);
        let f = RawFrame {
            ts: 9,
            keyframe: true,
            payloads: vec![Bytes::from(stap), fu1, fu2],
        };
        let s = d.sample(&f).expect("a sample");
        let mut want = Vec::new();
        for n in [&sps[..], &pps[..], &[0x65, 1, 2, 3, 4, 5][..]] {
            want.extend_from_slice(&(n.len() as u32).to_be_bytes());
            want.extend_from_slice(n);
        }
        assert_eq!(&s.data[..], &want[..]);
        assert_eq!(d.sps.as_ref(), Some(&sps));
        assert_eq!(d.pps.as_ref(), Some(&pps));
        assert_eq!(d.dims, Some((1280, 720)));
    }

    #[test]
    fn malformed_h264_payloads_are_left_out_not_panicked_on() {
        let mut d = Depack::new(Codec::H264);
        for p in [
            &[24u8, 0xff][..],
            &[24, 0, 9, 1],
            &[28],
            &[28, 0x40, 1],
            &[0],
        ] {
            let f = RawFrame {
                ts: 0,
                keyframe: false,
                payloads: vec![Bytes::copy_from_slice(p)],
            };
            let _ = d.sample(&f);
        }
    }
}
