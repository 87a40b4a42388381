//! Closing the sequence gaps that dropped padding leaves.
//!
//! Publishers probe bandwidth with padding-only RTP packets on the media SSRC (Chromium does
//! whenever RTX is not negotiated). wisp does not forward them — they carry nothing a viewer
//! decodes — but each one still owns a sequence number. Forwarded as is, the stream a viewer
//! gets would have a hole for every probe: holes no NACK can fill, which jitter buffers such
//! as aiortc's wait on for hundreds of packets. So the fan-out renumbers: every media packet
//! moves down by the number of padding packets before it (as LiveKit's RTPMunger does).
//!
//! Pure: [`SeqCloser::map`] takes the publisher's sequence number and whether the packet is
//! padding only, and returns the number to forward with (or `None` for padding).
//! Retransmissions and reordered packets get the offset that was in force at their own
//! sequence number, not the current one, from a short history of offset changes.

/// Offset changes remembered for late packets (each is one padding run).
const HISTORY: usize = 64;

/// Whether `a` is newer than `b` in RTP's wrapping sequence space.
fn newer(a: u16, b: u16) -> bool {
    a != b && a.wrapping_sub(b) < 0x8000
}

#[derive(Debug, Default, Clone)]
pub struct SeqCloser {
    /// Highest sequence number seen (padding or media).
    highest: Option<u16>,
    /// Padding packets removed so far: subtracted from every newer media packet.
    offset: u16,
    /// `(first sequence number the offset applies to, offset)`, oldest first.
    changes: std::collections::VecDeque<(u16, u16)>,
}

impl SeqCloser {
    /// The sequence number to forward `seq` with; `None` for padding (dropped).
    pub fn map(&mut self, seq: u16, padding_only: bool) -> Option<u16> {
        let in_order = self.highest.is_none_or(|h| newer(seq, h));
        if padding_only {
            // A late padding packet changes nothing: its number was already left in place.
            if in_order {
                self.highest = Some(seq);
                self.offset = self.offset.wrapping_add(1);
                if self.changes.len() == HISTORY {
                    self.changes.pop_front();
                }
                self.changes.push_back((seq.wrapping_add(1), self.offset));
            }
            return None;
        }
        if in_order {
            self.highest = Some(seq);
            return Some(seq.wrapping_sub(self.offset));
        }
        // Older than the newest: the offset of the last change at or before it.
        let offset = self
            .changes
            .iter()
            .rev()
            .find(|(from, _)| !newer(*from, seq))
            .map(|(_, o)| *o)
            .unwrap_or_else(|| {
                // Before every remembered change: the offset before the oldest of them.
                self.changes
                    .front()
                    .map(|(_, o)| o.wrapping_sub(1))
                    .unwrap_or(self.offset)
            });
        Some(seq.wrapping_sub(offset))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(c: &mut SeqCloser, input: &[(u16, bool)]) -> Vec<Option<u16>> {
        input.iter().map(|(s, p)| c.map(*s, *p)).collect()
    }

    #[test]
    fn media_alone_is_untouched() {
        let mut c = SeqCloser::default();
        let out = run(&mut c, &[(10, false), (11, false), (13, false)]);
        assert_eq!(out, vec![Some(10), Some(11), Some(13)], "real gaps stay");
    }

    #[test]
    fn padding_leaves_no_hole() {
        let mut c = SeqCloser::default();
        let out = run(
            &mut c,
            &[
                (100, false),
                (101, true),
                (102, true),
                (103, false),
                (104, false),
            ],
        );
        assert_eq!(out, vec![Some(100), None, None, Some(101), Some(102)]);
    }

    #[test]
    fn late_packets_get_the_offset_of_their_time() {
        let mut c = SeqCloser::default();
        // 201 is lost at first and retransmitted after the padding run 203-204.
        let out = run(
            &mut c,
            &[
                (200, false),
                (202, false),
                (203, true),
                (204, true),
                (205, false),
            ],
        );
        assert_eq!(out, vec![Some(200), Some(202), None, None, Some(203)]);
        assert_eq!(
            c.map(201, false),
            Some(201),
            "before the padding: no offset"
        );
        assert_eq!(c.map(202, false), Some(202), "a duplicate maps as before");
        assert_eq!(c.map(205, false), Some(203));
    }

    #[test]
    fn wraps_around() {
        let mut c = SeqCloser::default();
        let out = run(
            &mut c,
            &[(65534, false), (65535, true), (0, true), (1, false)],
        );
        assert_eq!(out, vec![Some(65534), None, None, Some(65535)]);
        assert_eq!(c.map(65534, false), Some(65534));
    }

    #[test]
    fn late_padding_changes_nothing() {
        let mut c = SeqCloser::default();
        let out = run(&mut c, &[(1, false), (3, false), (2, true), (4, false)]);
        assert_eq!(out, vec![Some(1), Some(3), None, Some(4)]);
    }

    #[test]
    fn long_runs_forget_the_oldest_changes() {
        let mut c = SeqCloser::default();
        let mut s = 0u16;
        for _ in 0..(HISTORY + 10) {
            assert_eq!(c.map(s, false), Some(s.wrapping_sub(c.offset)));
            s = s.wrapping_add(1);
            assert_eq!(c.map(s, true), None);
            s = s.wrapping_add(1);
        }
        assert_eq!(c.changes.len(), HISTORY);
        assert_eq!(c.map(s, false), Some(s - (HISTORY as u16 + 10)));
    }
}
