//! RFC 2198 payloads: the primary (newest) block of a RED packet, for viewers that take
//! plain Opus. Pure and allocation-free: the caller slices the shared payload.

/// The byte range of the primary block in a RED payload, or `None` if it is malformed.
///
/// Layout: 4-byte headers `F=1 | PT(7) | timestamp offset(14) | length(10)` for each
/// redundant block, then a 1-byte header `F=0 | PT(7)` for the primary, then the redundant
/// blocks' data in order, then the primary's.
pub fn primary(payload: &[u8]) -> Option<std::ops::Range<usize>> {
    let mut i = 0usize;
    let mut redundant = 0usize;
    loop {
        let b = *payload.get(i)?;
        if b & 0x80 == 0 {
            i += 1;
            break;
        }
        let h = payload.get(i..i + 4)?;
        redundant += (((h[2] & 0x03) as usize) << 8) | h[3] as usize;
        i += 4;
    }
    let start = i.checked_add(redundant)?;
    (start <= payload.len()).then_some(start..payload.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primary_only() {
        // F=0, PT 111, then the Opus frame.
        let p = [111, 0xaa, 0xbb];
        assert_eq!(primary(&p), Some(1..3));
    }

    #[test]
    fn one_redundant_block() {
        // Redundant block: PT 111, ts offset 960, length 2; primary PT 111.
        let off: u32 = 960;
        let len: u16 = 2;
        let h = [
            0x80 | 111,
            (off >> 6) as u8,
            (((off & 0x3f) as u8) << 2) | (len >> 8) as u8,
            len as u8,
        ];
        let mut p = h.to_vec();
        p.push(111);
        p.extend([1, 2]); // redundant data
        p.extend([7, 8, 9]); // primary
        let r = primary(&p).unwrap();
        assert_eq!(&p[r], &[7, 8, 9]);
    }

    #[test]
    fn malformed_is_refused() {
        assert_eq!(primary(&[]), None);
        assert_eq!(primary(&[0x80 | 111, 0, 0]), None, "truncated header");
        // Claims 255 bytes of redundancy that are not there.
        assert_eq!(primary(&[0x80 | 111, 0, 0, 255, 111, 1]), None);
        // An empty primary (DTX) is fine.
        assert_eq!(primary(&[111]), Some(1..1));
    }
}
