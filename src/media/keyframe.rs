//! Keyframe detection from RTP payloads, per codec. Pure functions, no allocation.
//!
//! A forwarder must know where a decodable picture starts: a viewer that joins, or a slot that
//! switches source, forwards nothing until one arrives.

/// Whether this RTP payload starts (or carries) a keyframe for the codec `name`
/// (lower-case MIME subtype). Audio and unknown codecs report `true`: they need no gate.
pub fn is_keyframe(name: &str, payload: &[u8]) -> bool {
    match name {
        "vp8" => vp8(payload),
        "vp9" => vp9(payload),
        "h264" => h264(payload),
        "av1" => av1(payload),
        _ => true,
    }
}

/// RFC 7741: start of partition 0 (S=1, PID=0) and the VP8 frame tag's P bit clear.
fn vp8(p: &[u8]) -> bool {
    vp8_frame(p).is_some_and(|f| f.first().is_some_and(|tag| tag & 0x01 == 0))
}

/// The VP8 frame bytes of a packet that starts partition 0 of a frame (S=1, PID=0), after the
/// RFC 7741 payload descriptor.
fn vp8_frame(p: &[u8]) -> Option<&[u8]> {
    let &b0 = p.first()?;
    if b0 & 0x10 == 0 || b0 & 0x07 != 0 {
        return None;
    }
    let mut i = 1;
    if b0 & 0x80 != 0 {
        let &x = p.get(1)?;
        i = 2;
        if x & 0x80 != 0 {
            // PictureID, 7 or 15 bits
            let &pic = p.get(i)?;
            i += if pic & 0x80 != 0 { 2 } else { 1 };
        }
        if x & 0x40 != 0 {
            i += 1; // TL0PICIDX
        }
        if x & 0x30 != 0 {
            i += 1; // TID/KEYIDX
        }
    }
    p.get(i..)
}

/// Width and height from a VP8 keyframe's first packet (RFC 6386 §9.1: 3-byte frame tag,
/// start code 9d 01 2a, then 14-bit width and height, little-endian).
pub fn vp8_dimensions(p: &[u8]) -> Option<(u16, u16)> {
    let f = vp8_frame(p)?;
    if f.len() < 10 || f[0] & 0x01 != 0 || f[3..6] != [0x9d, 0x01, 0x2a] {
        return None;
    }
    let w = u16::from_le_bytes([f[6], f[7]]) & 0x3fff;
    let h = u16::from_le_bytes([f[8], f[9]]) & 0x3fff;
    Some((w, h))
}

/// draft-ietf-payload-vp9: B (start of frame) set and P (inter-picture predicted) clear.
fn vp9(p: &[u8]) -> bool {
    let Some(&b0) = p.first() else { return false };
    let inter = b0 & 0x40 != 0;
    let begin = b0 & 0x08 != 0;
    begin && !inter
}

/// RFC 6184: an IDR slice (5) or SPS (7), alone, inside STAP-A (24) or starting an FU-A (28).
fn h264(p: &[u8]) -> bool {
    let Some(&b0) = p.first() else { return false };
    match b0 & 0x1F {
        5 | 7 => true,
        24 => {
            let mut i = 1;
            while i + 2 < p.len() {
                let size = u16::from_be_bytes([p[i], p[i + 1]]) as usize;
                if let Some(&nal) = p.get(i + 2)
                    && matches!(nal & 0x1F, 5 | 7)
                {
                    return true;
                }
                i += 2 + size;
            }
            false
        }
        28 => p
            .get(1)
            .is_some_and(|fu| fu & 0x80 != 0 && matches!(fu & 0x1F, 5 | 7)),
        _ => false,
    }
}

/// AV1 RTP spec §4.4: the N bit of the aggregation header marks a new coded video sequence.
fn av1(p: &[u8]) -> bool {
    p.first().is_some_and(|b| b & 0x08 != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vp8_keyframe_dimensions() {
        // descriptor S=1, then tag (key), start code, 640 x 360
        let p = [
            0x10, 0x50, 0x2a, 0x01, 0x9d, 0x01, 0x2a, 0x80, 0x02, 0x68, 0x01, 0xff,
        ];
        assert_eq!(vp8_dimensions(&p), Some((640, 360)));
        let mut delta = p;
        delta[1] |= 0x01;
        assert_eq!(vp8_dimensions(&delta), None);
        assert_eq!(vp8_dimensions(&p[..8]), None);
    }

    #[test]
    fn vp8_key_and_delta() {
        // S=1 PID=0, no extension, frame tag with P=0
        assert!(is_keyframe("vp8", &[0x10, 0x00, 0x9d]));
        assert!(!is_keyframe("vp8", &[0x10, 0x01]));
        // continuation packet (S=0)
        assert!(!is_keyframe("vp8", &[0x00, 0x00]));
        // X=1, I=1 with 15-bit picture id, then tag P=0
        assert!(is_keyframe("vp8", &[0x90, 0x80, 0x81, 0x23, 0x00]));
        assert!(!is_keyframe("vp8", &[0x90, 0x80, 0x81]));
        assert!(!is_keyframe("vp8", &[]));
    }

    #[test]
    fn h264_variants() {
        assert!(is_keyframe("h264", &[0x65]));
        assert!(is_keyframe("h264", &[0x67, 0x42]));
        assert!(!is_keyframe("h264", &[0x41]));
        // STAP-A with SPS inside
        assert!(is_keyframe("h264", &[0x78, 0x00, 0x02, 0x67, 0x42]));
        // FU-A start of IDR
        assert!(is_keyframe("h264", &[0x7c, 0x85]));
        assert!(!is_keyframe("h264", &[0x7c, 0x05]));
        // truncated STAP-A never panics
        assert!(!is_keyframe("h264", &[0x78, 0xff]));
    }

    #[test]
    fn vp9_av1_audio() {
        assert!(is_keyframe("vp9", &[0x08]));
        assert!(!is_keyframe("vp9", &[0x48]));
        assert!(is_keyframe("av1", &[0x08]));
        assert!(!is_keyframe("av1", &[0x00]));
        assert!(is_keyframe("opus", &[]));
    }
}
