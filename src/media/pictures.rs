//! VP8 and VP9 picture numbering across source switches. Each simulcast layer (and each
//! publisher) numbers its pictures on its own: the PictureID and TL0PICIDX of the RFC 7741
//! (VP8) and RFC 9628 (VP9) payload descriptors. A
//! receiver finds a frame's references by those numbers, so when a slot switches from `f` to
//! `q`, a jump in them can leave it holding decodable frames it believes reference pictures it
//! never got: the bandwidth lab saw Chromium decode `q`'s keyframe and then nothing for 2.5 s,
//! no loss reported and no keyframe asked for. So a slot continues both numbers across a
//! switch, as it does sequence numbers and timestamps (`media::rewriter`).
//!
//! Pure: [`PictureIds::map`] takes the source and the payload and returns the payload to
//! send, the same bytes (no copy) while the slot has never switched. H.264 has no such
//! numbers; AV1's dependency descriptor numbers frames too, and is not mapped (see README).

use bytes::{Bytes, BytesMut};

use crate::media::SourceId;

/// Where one payload's descriptor keeps its numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fields {
    /// Offset of the PictureID and whether it is the 15-bit form.
    picture: Option<(usize, bool)>,
    /// Offset of TL0PICIDX.
    tl0: Option<usize>,
}

/// The codecs whose payload descriptors number pictures.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Numbered {
    Vp8,
    Vp9,
}

impl Numbered {
    /// For a codec's MIME type.
    pub fn of(mime_type: &str) -> Option<Numbered> {
        if mime_type.eq_ignore_ascii_case("video/vp8") {
            Some(Numbered::Vp8)
        } else if mime_type.eq_ignore_ascii_case("video/vp9") {
            Some(Numbered::Vp9)
        } else {
            None
        }
    }
}

fn fields(codec: Numbered, p: &[u8]) -> Option<Fields> {
    match codec {
        Numbered::Vp8 => vp8_fields(p),
        Numbered::Vp9 => vp9_fields(p),
    }
}

/// RFC 9628 §4.2: `I|P|L|F|B|E|V|Z`, then the PictureID (I), the layer indices (L), and in
/// non-flexible mode (F=0) TL0PICIDX after them.
fn vp9_fields(p: &[u8]) -> Option<Fields> {
    let &b0 = p.first()?;
    let (picture, i) = picture_field(p, 1, b0 & 0x80 != 0)?;
    let tl0 = if b0 & 0x20 != 0 {
        p.get(i)?; // layer indices
        let at = i + 1;
        if b0 & 0x10 == 0 {
            p.get(at)?;
            Some(at)
        } else {
            None
        }
    } else {
        None
    };
    Some(Fields { picture, tl0 })
}

/// The PictureID at `i` when `present` (7 or 15 bits, by its first bit), and where the
/// descriptor goes on after it; `None` when the payload is too short for it.
fn picture_field(p: &[u8], i: usize, present: bool) -> Option<(Option<(usize, bool)>, usize)> {
    if !present {
        return Some((None, i));
    }
    let long = p.get(i)? & 0x80 != 0;
    let next = i + if long { 2 } else { 1 };
    p.get(next - 1)?;
    Some((Some((i, long)), next))
}

/// RFC 7741 §4.2: `X|R|N|S|R|PID`, then (X) `I|L|T|K|RSV`, the PictureID (I), TL0PICIDX (L).
fn vp8_fields(p: &[u8]) -> Option<Fields> {
    let &b0 = p.first()?;
    if b0 & 0x80 == 0 {
        return Some(Fields {
            picture: None,
            tl0: None,
        });
    }
    let &x = p.get(1)?;
    let (picture, i) = picture_field(p, 2, x & 0x80 != 0)?;
    let tl0 = (x & 0x40 != 0).then_some(i);
    if let Some(t) = tl0 {
        p.get(t)?;
    }
    Some(Fields { picture, tl0 })
}

fn read_picture(p: &[u8], (at, long): (usize, bool)) -> u16 {
    if long {
        u16::from_be_bytes([p[at], p[at + 1]]) & 0x7fff
    } else {
        u16::from(p[at] & 0x7f)
    }
}

fn write_picture(p: &mut [u8], (at, long): (usize, bool), id: u16) {
    if long {
        let [hi, lo] = (id & 0x7fff).to_be_bytes();
        p[at] = 0x80 | hi;
        p[at + 1] = lo;
    } else {
        p[at] = (id & 0x7f) as u8;
    }
}

/// Whether picture id `a` is newer than `b` in a 15-bit wrapping space.
fn picture_newer(a: u16, b: u16) -> bool {
    let d = a.wrapping_sub(b) & 0x7fff;
    d != 0 && d < 0x4000
}

/// One slot's picture numbering state.
#[derive(Debug, Clone, Default)]
pub struct PictureIds {
    /// The source being mapped, and what is added to its PictureID and TL0PICIDX.
    map: Option<(SourceId, u16, u8)>,
    /// The newest PictureID and TL0PICIDX sent.
    last_picture: Option<u16>,
    last_tl0: Option<u8>,
}

impl PictureIds {
    /// Maps one forwarded payload of `source`. `fresh` says the slot's rewriter has just
    /// started forwarding here after a wait for a keyframe (a switch, a join, or a resync):
    /// a new source then continues from the last numbers sent; the same source keeps its
    /// mapping (its own numbering gap tells the receiver pictures were skipped).
    pub fn map(
        &mut self,
        codec: Numbered,
        source: SourceId,
        fresh: bool,
        payload: &Bytes,
    ) -> Bytes {
        let Some(f) = fields(codec, payload) else {
            return payload.clone();
        };
        let picture = f.picture.map(|at| read_picture(payload, at));
        let tl0 = f.tl0.map(|t| payload[t]);
        if fresh && self.map.is_none_or(|(s, _, _)| s != source) {
            let dp = match (self.last_picture, picture) {
                (Some(last), Some(p)) => last.wrapping_add(1).wrapping_sub(p) & 0x7fff,
                _ => 0,
            };
            let dt = match (self.last_tl0, tl0) {
                (Some(last), Some(t)) => last.wrapping_add(1).wrapping_sub(t),
                _ => 0,
            };
            self.map = Some((source, dp, dt));
        }
        let (dp, dt) = match self.map {
            Some((s, dp, dt)) if s == source => (dp, dt),
            _ => (0, 0),
        };
        let out_picture = picture.map(|p| p.wrapping_add(dp) & 0x7fff);
        let out_tl0 = tl0.map(|t| t.wrapping_add(dt));
        if let Some(p) = out_picture
            && self.last_picture.is_none_or(|l| picture_newer(p, l))
        {
            self.last_picture = Some(p);
        }
        if let Some(t) = out_tl0 {
            // TL0PICIDX moves by one per base-layer picture: newer when within half its range.
            if self
                .last_tl0
                .is_none_or(|l| t != l && t.wrapping_sub(l) < 0x80)
            {
                self.last_tl0 = Some(t);
            }
        }
        if dp == 0 && dt == 0 {
            return payload.clone();
        }
        let mut out = BytesMut::from(&payload[..]);
        if let (Some(at), Some(p)) = (f.picture, out_picture) {
            write_picture(&mut out, at, p);
        }
        if let (Some(at), Some(t)) = (f.tl0, out_tl0) {
            out[at] = t;
        }
        out.freeze()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const F: SourceId = SourceId(1);
    const Q: SourceId = SourceId(2);

    /// A descriptor with a 15-bit PictureID and TL0PICIDX, then two payload bytes.
    fn pkt(picture: u16, tl0: u8) -> Bytes {
        let [hi, lo] = picture.to_be_bytes();
        Bytes::from(vec![0x90, 0xc0, 0x80 | hi, lo, tl0, 0x20, 0xaa, 0xbb])
    }

    const VP8: Numbered = Numbered::Vp8;

    fn ids(p: &Bytes) -> (u16, u8) {
        let f = fields(VP8, p).unwrap();
        (read_picture(p, f.picture.unwrap()), p[f.tl0.unwrap()])
    }

    #[test]
    fn a_switch_continues_both_numbers_and_the_first_source_is_not_copied() {
        let mut v = PictureIds::default();
        let first = pkt(30_000, 200);
        let out = v.map(VP8, F, true, &first);
        assert_eq!(
            out.as_ptr(),
            first.as_ptr(),
            "no switch yet: the same bytes"
        );
        v.map(VP8, F, false, &pkt(30_001, 201));
        // The slot switches to q, whose numbers are far behind f's (and wrap).
        assert_eq!(ids(&v.map(VP8, Q, true, &pkt(5, 17))), (30_002, 202));
        assert_eq!(ids(&v.map(VP8, Q, false, &pkt(6, 17))), (30_003, 202));
        let out = v.map(VP8, Q, false, &pkt(7, 18));
        assert_eq!(ids(&out), (30_004, 203));
        assert_eq!(&out[5..], &[0x20, 0xaa, 0xbb], "the rest untouched");
        // A late packet of q's keyframe keeps the mapping and does not move `last` back.
        assert_eq!(ids(&v.map(VP8, Q, false, &pkt(5, 17))), (30_002, 202));
        // Back to f: continues from q's newest.
        assert_eq!(ids(&v.map(VP8, F, true, &pkt(32_767, 255))), (30_005, 204));
        assert_eq!(
            ids(&v.map(VP8, F, false, &pkt(0, 0))),
            (30_006, 205),
            "f wraps"
        );
    }

    #[test]
    fn a_resync_on_the_same_source_keeps_its_mapping() {
        let mut v = PictureIds::default();
        v.map(VP8, F, true, &pkt(100, 1));
        v.map(VP8, Q, true, &pkt(9_000, 50));
        assert_eq!(ids(&v.map(VP8, Q, false, &pkt(9_001, 50))), (102, 2));
        // Our queue overflowed; the next keyframe of the same source is later in its numbers.
        assert_eq!(ids(&v.map(VP8, Q, true, &pkt(9_040, 60))), (141, 12));
    }

    #[test]
    fn seven_bit_ids_wrap_in_seven_bits_and_bad_descriptors_pass_untouched() {
        let mut v = PictureIds::default();
        let short = |id: u8| Bytes::from(vec![0x90, 0x80, id & 0x7f, 0x00]);
        v.map(VP8, F, true, &short(120));
        let out = v.map(VP8, Q, true, &short(3));
        assert_eq!(out[2], 121);
        // 7-bit ids wrap at 128 on the wire.
        v.map(VP8, Q, false, &short(9));
        assert_eq!(v.map(VP8, Q, false, &short(10))[2], 0);
        for bad in [
            &[][..],
            &[0x90][..],
            &[0x90, 0x80][..],
            &[0x90, 0x80, 0x80][..],
        ] {
            let b = Bytes::copy_from_slice(bad);
            assert_eq!(v.map(VP8, F, true, &b), b);
        }
        // No X bit: nothing to map.
        let plain = Bytes::from_static(&[0x10, 0x00, 0x01]);
        assert_eq!(v.map(VP8, F, true, &plain), plain);
    }

    #[test]
    fn vp9_non_flexible_mode_maps_picture_id_and_tl0picidx() {
        // I=1, L=1, F=0, B=1: 15-bit PictureID, layer indices, TL0PICIDX, payload.
        let vp9 = |picture: u16, tl0: u8| {
            let [hi, lo] = picture.to_be_bytes();
            Bytes::from(vec![0xa8, 0x80 | hi, lo, 0x00, tl0, 0xee])
        };
        let read = |p: &Bytes| {
            let f = fields(Numbered::Vp9, p).unwrap();
            (read_picture(p, f.picture.unwrap()), p[f.tl0.unwrap()])
        };
        let mut v = PictureIds::default();
        v.map(Numbered::Vp9, F, true, &vp9(1_000, 9));
        let out = v.map(Numbered::Vp9, Q, true, &vp9(20_000, 200));
        assert_eq!(read(&out), (1_001, 10));
        assert_eq!(out[3], 0x00, "layer indices untouched");
        assert_eq!(out[5], 0xee);
        // Flexible mode (F=1) has no TL0PICIDX: only the PictureID moves.
        let flexible = Bytes::from(vec![0xb8, 0x80, 0x05, 0x00, 0x42]);
        let out = v.map(Numbered::Vp9, Q, false, &flexible);
        assert_eq!(
            u16::from_be_bytes([out[1], out[2]]) & 0x7fff,
            5u16.wrapping_add(1_001u16.wrapping_sub(20_000)) & 0x7fff
        );
        assert_eq!(out[4], 0x42);
        // Too short for what its flags promise: untouched.
        let short = Bytes::from_static(&[0xa8, 0x80]);
        assert_eq!(v.map(Numbered::Vp9, Q, false, &short), short);
    }
}
