//! Forwarding: the per-packet path from a publisher's track to every viewer slot.
//!
//! ```text
//! rtc reader task ──▶ TrackFanout::forward ──(snapshot of sinks, no lock)──▶ SlotSink::offer
//!                                                                              │ bounded queue
//!                                                            slot writer task ◀┘
//!                                          Rewriter (SSRC/seq/ts, keyframe gate) ──▶ OutTrack
//! ```
//!
//! Invariants: `forward` never blocks and never allocates per viewer (the payload is one shared
//! `Bytes`, the packet one `Arc`); a full viewer queue drops and asks for a keyframe; the
//! rewriter is pure and unit-tested.

pub mod counters;
pub mod fanout;
pub mod gop;
pub mod input;
pub mod keyframe;
pub mod output;
pub mod padding;
pub mod pictures;
pub mod probe;
pub mod red;
pub mod rewriter;
pub mod sink;
pub mod source;
pub mod vad;

#[cfg(test)]
mod tests;

pub use fanout::TrackFanout;
pub use output::SlotOutput;
pub use rewriter::Rewriter;
pub use sink::SlotSink;

use std::sync::atomic::{AtomicU64, Ordering};

/// Identifies one incoming track (one publisher's audio or video) for the lifetime of the
/// process. Rewriters compare it to notice a source switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SourceId(pub u64);

impl SourceId {
    pub fn next() -> SourceId {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        SourceId(NEXT.fetch_add(1, Ordering::Relaxed))
    }
}
