//! The viewer leg's way out (`own`): each RTP packet written once into a scratch buffer and
//! SRTP-protected into its datagram, RTCP compounds likewise, queued for the driver's flush
//! on the selected pair.
//!
//! The queue and the scratch buffer are needed only while the leg's driver runs: the driver
//! flushes the queue empty before it waits again. So their room belongs to the worker thread,
//! not to the leg: a leg borrows the thread's room at its first push and gives it back when a
//! flush empties the queue. With hundreds of viewers per thread, that is one queue's room
//! (a wake's batch, up to 128 entries of 120 bytes) per thread instead of per viewer. A leg
//! whose queue is not flushed (a test driving the core by hand) just keeps its own room.

use std::cell::Cell;
use std::collections::VecDeque;
use std::thread::LocalKey;
use std::time::Instant;

use ::rtc::shared::marshal::{Marshal, MarshalSize};
use ::rtc::shared::{TaggedBytesMut, TransportContext, TransportMessage};
use ::rtc::srtp::context::Context;
use bytes::BytesMut;

use super::sender::Rtcp;
use crate::rtc::RtpPacket;

/// The largest RTP packet usually written (a 1,200-byte payload, its header and extensions):
/// what the scratch buffer starts at.
const MTU: usize = 1500;

thread_local! {
    /// The queue room lent to the leg this thread drives (see the module's comment).
    static ROOM: Cell<VecDeque<TaggedBytesMut>> = const { Cell::new(VecDeque::new()) };
    /// Where this thread marshals an RTP packet before SRTP.
    static SCRATCH: Cell<Vec<u8>> = const { Cell::new(Vec::new()) };
}

/// A collection whose room a thread lends (see the module's comment).
pub(super) trait Room: Default {
    fn room(&self) -> usize;
    fn shrink_to(&mut self, keep: usize);
    fn clear(&mut self);
}

impl<T> Room for Vec<T> {
    fn room(&self) -> usize {
        self.capacity()
    }
    fn shrink_to(&mut self, keep: usize) {
        Vec::shrink_to(self, keep);
    }
    fn clear(&mut self) {
        Vec::clear(self);
    }
}

impl<T> Room for VecDeque<T> {
    fn room(&self) -> usize {
        self.capacity()
    }
    fn shrink_to(&mut self, keep: usize) {
        VecDeque::shrink_to(self, keep);
    }
    fn clear(&mut self) {
        VecDeque::clear(self);
    }
}

/// Returns `room`, emptied, to this thread's `cell`, which keeps the bigger of it and what it
/// holds; a burst's room (past two wakes' batches) is shrunk to one batch first.
pub(super) fn give_back<R: Room>(cell: &'static LocalKey<Cell<R>>, mut room: R) {
    room.clear();
    if room.room() > 2 * super::BATCH {
        room.shrink_to(super::BATCH);
    }
    let kept = cell.take();
    cell.set(if kept.room() >= room.room() {
        kept
    } else {
        room
    });
}

/// What leaves: datagrams for the driver's flush, SRTP-protected for the selected pair.
pub(super) struct Wire {
    pub srtp: Option<Context>,
    /// The selected pair, as datagrams to it are tagged.
    pub path: Option<TransportContext>,
    out: VecDeque<TaggedBytesMut>,
}

impl Wire {
    pub fn new() -> Wire {
        Wire {
            srtp: None,
            path: None,
            out: VecDeque::new(),
        }
    }

    /// Queues a datagram, borrowing the thread's room if the queue has none.
    pub fn queue(&mut self, t: TaggedBytesMut) {
        if self.out.capacity() == 0 {
            self.out = ROOM.take();
        }
        self.out.push_back(t);
    }

    pub fn push(&mut self, now: Instant, path: TransportContext, message: BytesMut) {
        self.queue(TransportMessage {
            now,
            transport: path,
            message,
        });
    }

    /// The next datagram for the flush. The one that finds the queue empty gives its room
    /// back to the thread; a burst's room (a NACK naming hundreds of packets, a join's
    /// keyframe run) is shrunk to a wake's batch first.
    pub fn pop(&mut self) -> Option<TaggedBytesMut> {
        let t = self.out.pop_front();
        if t.is_none() && self.out.capacity() > 0 {
            give_back(&ROOM, std::mem::take(&mut self.out));
        }
        t
    }

    /// One RTP packet: written once into the scratch buffer, encrypted into the datagram.
    pub fn rtp(&mut self, now: Instant, rtp: &RtpPacket) {
        let (Some(path), Some(ctx)) = (self.path, self.srtp.as_mut()) else {
            return;
        };
        let mut scratch = SCRATCH.take();
        let n = rtp.marshal_size().max(MTU);
        if n > scratch.len() {
            scratch.resize(n, 0);
        }
        let data = match rtp.marshal_to(&mut scratch) {
            Ok(n) => ctx.encrypt_rtp_with_header(&scratch[..n], &rtp.header).ok(),
            Err(_) => None,
        };
        SCRATCH.set(scratch);
        if let Some(data) = data {
            self.push(now, path, data);
        }
    }

    /// One compound RTCP packet (the sender's reports).
    pub fn rtcp(&mut self, now: Instant, packets: &Rtcp) {
        let (Some(path), Some(ctx)) = (self.path, self.srtp.as_mut()) else {
            return;
        };
        let Ok(plain) = ::rtc::rtcp::packet::marshal(packets) else {
            return;
        };
        if let Ok(data) = ctx.encrypt_rtcp(&plain) {
            self.push(now, path, data);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn datagram() -> TaggedBytesMut {
        TransportMessage {
            now: Instant::now(),
            transport: TransportContext::default(),
            message: BytesMut::from(&[1u8; 100][..]),
        }
    }

    /// A queue flushed empty holds no room of its own: the next leg on the thread uses the
    /// same room, and a burst's room comes back shrunk to a wake's batch.
    #[test]
    fn the_queues_room_is_the_threads_between_flushes() {
        let (mut a, mut b) = (Wire::new(), Wire::new());
        for _ in 0..10 {
            a.queue(datagram());
        }
        let room = a.out.capacity();
        assert!(room >= 10);
        while a.pop().is_some() {}
        assert_eq!(a.out.capacity(), 0, "given back");
        b.queue(datagram());
        assert_eq!(b.out.capacity(), room, "the same room, lent again");
        for _ in 0..(4 * super::super::BATCH) {
            b.queue(datagram());
        }
        while b.pop().is_some() {}
        assert_eq!(b.out.capacity(), 0);
        a.queue(datagram());
        assert!(
            a.out.capacity() <= 2 * super::super::BATCH,
            "a burst's room shrunk"
        );
    }
}
