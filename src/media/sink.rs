//! A viewer slot: the bounded queue between a fan-out and one outgoing track, and the
//! writer task that drains it through the [`Rewriter`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use arc_swap::ArcSwapOption;
use tokio::sync::mpsc;

use crate::media::SourceId;
use crate::media::fanout::TrackFanout;
use crate::media::rewriter::Rewriter;
use crate::rtc::{OutTrack, RtpHeader, RtpPacket};
use crate::signal::{CodecSpec, MediaKind};

/// Where a slot's rewritten packets go: an [`OutTrack`] in the server, a counter in benches.
/// Generic (not `dyn`), so the per-packet write is not boxed.
pub trait SlotOutput: Send + Sync + 'static {
    fn kind(&self) -> MediaKind;
    fn mid(&self) -> &str;
    fn ssrc(&self) -> u32;
    /// The payload type the receiver accepts `codec` under, if any.
    fn payload_type_for(&self, codec: &CodecSpec) -> Option<u8>;
    /// The receiver's codecs, for a log line.
    fn describe(&self) -> String;
    /// Sends one packet; false if it was refused.
    fn write(&self, pkt: RtpPacket) -> impl std::future::Future<Output = bool> + Send;
    /// Resolves at the receiver's next keyframe request; false once it is gone.
    fn next_keyframe_request(&self) -> impl std::future::Future<Output = bool> + Send;
}

impl SlotOutput for OutTrack {
    fn kind(&self) -> MediaKind {
        self.kind
    }
    fn mid(&self) -> &str {
        &self.mid
    }
    fn ssrc(&self) -> u32 {
        self.ssrc
    }
    fn payload_type_for(&self, codec: &CodecSpec) -> Option<u8> {
        OutTrack::payload_type_for(self, codec)
    }
    fn describe(&self) -> String {
        self.negotiated()
            .iter()
            .map(|(pt, c)| format!("{pt} {} {}", c.mime_type, c.fmtp))
            .collect::<Vec<_>>()
            .join(", ")
    }
    async fn write(&self, pkt: RtpPacket) -> bool {
        OutTrack::write(self, pkt).await
    }
    async fn next_keyframe_request(&self) -> bool {
        OutTrack::next_keyframe_request(self).await
    }
}

/// Packets a slot may hold before it drops (about 0.5 s of 2.5 Mbit/s video).
pub const SLOT_QUEUE: usize = 128;

/// One queued packet: shared, never copied per viewer.
pub struct Item {
    pub src: SourceId,
    pub keyframe: bool,
    pub pkt: Arc<RtpPacket>,
}

#[derive(Debug, Default)]
pub struct SinkStats {
    pub forwarded: AtomicU64,
    pub dropped_full: AtomicU64,
    pub dropped_gate: AtomicU64,
}

pub struct SlotSink {
    pub kind: MediaKind,
    /// The m-line this slot answers.
    pub mid: String,
    tx: mpsc::Sender<Item>,
    /// Set by `offer` when the queue overflowed; the writer then resyncs on a keyframe.
    overflowed: AtomicBool,
    /// The fan-out this slot is attached to (for keyframe requests and codec lookups).
    source: ArcSwapOption<TrackFanout>,
    pub stats: SinkStats,
}

impl SlotSink {
    /// Creates the slot and spawns its writer and feedback tasks on the current runtime.
    pub fn spawn<O: SlotOutput>(out: Arc<O>) -> Arc<SlotSink> {
        let (tx, rx) = mpsc::channel(SLOT_QUEUE);
        let sink = Arc::new(SlotSink {
            kind: out.kind(),
            mid: out.mid().to_string(),
            tx,
            overflowed: AtomicBool::new(false),
            source: ArcSwapOption::empty(),
            stats: SinkStats::default(),
        });
        tokio::spawn(writer(Arc::downgrade(&sink), out.clone(), rx));
        let weak = Arc::downgrade(&sink);
        tokio::spawn(async move {
            // Viewer PLI/FIR → the current source, throttled there.
            while out.next_keyframe_request().await {
                let Some(sink) = weak.upgrade() else { break };
                if let Some(src) = sink.source() {
                    src.request_keyframe();
                }
            }
        });
        sink
    }

    /// Non-blocking hand-off from the fan-out. Returns false when the packet was dropped.
    pub fn offer(&self, item: Item) -> bool {
        match self.tx.try_send(item) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.stats.dropped_full.fetch_add(1, Ordering::Relaxed);
                self.overflowed.store(true, Ordering::Relaxed);
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => true,
        }
    }

    pub fn source(&self) -> Option<Arc<TrackFanout>> {
        self.source.load_full()
    }

    /// Points the slot at a new fan-out (or none). The caller attaches/detaches the snapshot.
    pub fn set_source(&self, src: Option<Arc<TrackFanout>>) {
        self.source.store(src);
    }
}

async fn writer<O: SlotOutput>(
    sink: std::sync::Weak<SlotSink>,
    out: Arc<O>,
    mut rx: mpsc::Receiver<Item>,
) {
    let mut rewriter: Option<Rewriter> = None;
    // Cached per source: the payload type to send with, if the viewer negotiated the codec.
    let mut cached: Option<(SourceId, Option<u8>)> = None;
    let mut warned = false;
    while let Some(item) = rx.recv().await {
        let Some(sink) = sink.upgrade() else { break };
        // A guard, not a clone: no shared refcount traffic per packet across viewers.
        let guard = sink.source.load();
        let Some(src) = guard.as_ref() else { continue };
        if src.id != item.src {
            continue; // queued before a switch
        }
        let pt = match cached {
            Some((id, pt)) if id == src.id => pt,
            _ => {
                let pt = out.payload_type_for(&src.codec);
                cached = Some((src.id, pt));
                pt
            }
        };
        let Some(pt) = pt else {
            if !warned {
                tracing::warn!(
                    mid = %sink.mid,
                    codec = %src.codec.mime_type,
                    fmtp = %src.codec.fmtp,
                    viewer = %out.describe(),
                    "the viewer did not negotiate the publisher's codec; dropping its packets"
                );
                warned = true;
            }
            continue;
        };
        let rw = rewriter.get_or_insert_with(|| {
            Rewriter::new(src.kind == MediaKind::Video, src.codec.clock_rate)
        });
        if sink.overflowed.swap(false, Ordering::Relaxed) {
            rw.resync();
        }
        let h = &item.pkt.header;
        match rw.handle(
            Instant::now(),
            item.src,
            h.sequence_number,
            h.timestamp,
            item.keyframe,
        ) {
            None => {
                sink.stats.dropped_gate.fetch_add(1, Ordering::Relaxed);
                src.request_keyframe();
            }
            Some((seq, ts)) => {
                let pkt = RtpPacket {
                    header: RtpHeader {
                        version: 2,
                        marker: h.marker,
                        payload_type: pt,
                        sequence_number: seq,
                        timestamp: ts,
                        ssrc: out.ssrc(),
                        ..Default::default()
                    },
                    payload: item.pkt.payload.clone(),
                };
                drop(guard);
                if out.write(pkt).await {
                    sink.stats.forwarded.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }
}
