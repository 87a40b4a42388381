//! A viewer slot: the bounded queue between a fan-out and one outgoing track, and the
//! writer task that drains it through the [`Rewriter`].

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use arc_swap::ArcSwapOption;
use tokio::sync::mpsc;

use crate::lock::Locked;
use crate::media::SourceId;
use crate::media::counters::{JOINS, RETIRED, Totals};
use crate::media::output::SlotOutput;
use crate::media::pictures::{Numbered, PictureIds};
use crate::media::rewriter::Rewriter;
use crate::media::source::Upstream;
use crate::rtc::repair::Kept;
use crate::rtc::{RtpHeader, RtpPacket, Sent};
use crate::signal::{CodecSpec, MediaKind};

/// Packets a slot may hold before it drops (about 0.5 s of 2.5 Mbit/s video).
pub const SLOT_QUEUE: usize = 128;

/// What a slot's queue carries: shared packets, never copied per viewer.
pub enum Item {
    /// One live packet.
    Packet {
        src: SourceId,
        keyframe: bool,
        pkt: Arc<RtpPacket>,
    },
    /// The cached group of pictures for a slot that just attached: a keyframe first, then
    /// the packets after it, in one queue entry however long the group is.
    Burst {
        src: SourceId,
        packets: Vec<Arc<RtpPacket>>,
    },
}

#[derive(Debug, Default)]
pub struct SinkStats {
    pub forwarded: AtomicU64,
    pub dropped_full: AtomicU64,
    pub dropped_gate: AtomicU64,
    /// Packets of a codec the viewer did not negotiate.
    pub dropped_codec: AtomicU64,
}

pub struct SlotSink {
    pub kind: MediaKind,
    /// The m-line this slot answers.
    pub mid: String,
    feed: Feed,
    /// Set by `offer` when the queue overflowed; the writer then resyncs on a keyframe.
    overflowed: AtomicBool,
    /// The fan-out this slot is attached to (for keyframe requests and codec lookups).
    source: ArcSwapOption<Upstream>,
    /// The viewer leg's latest bandwidth estimate seen on this slot (`rtc::estimates`), bit/s;
    /// 0 = none.
    estimate: AtomicU64,
    /// The codecs the viewer negotiated on this m-line.
    codecs: Box<dyn Fn() -> Vec<CodecSpec> + Send + Sync>,
    /// Sets the probe the output sends on top of the media (`rtc::prober`).
    probe: Box<dyn Fn(u64) + Send + Sync>,
    /// When the slot was made (its viewer's POST), for the join-time metric.
    created: Instant,
    /// Its first video packet went out (join time recorded).
    joined: AtomicBool,
    pub stats: SinkStats,
}

/// How a slot's packets reach its output.
enum Feed {
    /// Through the slot's bounded queue to its writer task (outputs whose writes may wait).
    Queue(mpsc::Sender<Item>),
    /// Rewritten and written by the offering task itself (outputs that never wait).
    Inline(Box<dyn InlineFeed>),
}

/// A writer run by whoever offers (the fan-out, or `attach` for a burst).
trait InlineFeed: Send + Sync {
    fn feed(&self, sink: &SlotSink, item: Item) -> bool;
}

impl SlotSink {
    /// Creates the slot and spawns its writer and feedback tasks on the current runtime.
    pub fn spawn<O: SlotOutput>(out: Arc<O>) -> Arc<SlotSink> {
        let (feed, rx) = if out.writes_at_once() {
            let w = Writer::new(out.clone());
            (Feed::Inline(Box::new(std::sync::Mutex::new(w))), None)
        } else {
            let (tx, rx) = mpsc::channel(SLOT_QUEUE);
            (Feed::Queue(tx), Some(rx))
        };
        let sink = Arc::new(SlotSink {
            kind: out.kind(),
            mid: out.mid().to_string(),
            feed,
            overflowed: AtomicBool::new(false),
            source: ArcSwapOption::empty(),
            estimate: AtomicU64::new(0),
            codecs: {
                let o = out.clone();
                Box::new(move || o.codecs())
            },
            probe: {
                let o = out.clone();
                Box::new(move |bps| o.set_probe(bps))
            },
            created: Instant::now(),
            joined: AtomicBool::new(false),
            stats: SinkStats::default(),
        });
        if let Some(rx) = rx {
            tokio::spawn(writer(Arc::downgrade(&sink), out.clone(), rx));
        }
        let weak = Arc::downgrade(&sink);
        tokio::spawn(async move {
            // Viewer PLI/FIR → the current source, throttled there; REMB → the estimate the
            // room task samples for the planner's layer choice.
            while let Some(feedback) = out.next_feedback().await {
                let Some(sink) = weak.upgrade() else { break };
                for f in feedback {
                    match f {
                        crate::rtc::feedback::Feedback::KeyframeRequest => {
                            if let Some(src) = sink.source() {
                                src.request_keyframe();
                            }
                        }
                        crate::rtc::feedback::Feedback::Estimate(bps) => {
                            sink.estimate.store(bps.max(1), Ordering::Relaxed);
                        }
                    }
                }
            }
        });
        sink
    }

    /// Non-blocking hand-off from the fan-out. Returns false when the packet was dropped.
    pub fn offer(&self, item: Item) -> bool {
        let tx = match &self.feed {
            Feed::Queue(tx) => tx,
            Feed::Inline(w) => return w.feed(self, item),
        };
        match tx.try_send(item) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.overflow();
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => true,
        }
    }

    /// Counts a dropped packet; the writer resyncs on the next keyframe.
    fn overflow(&self) {
        self.stats.dropped_full.fetch_add(1, Ordering::Relaxed);
        self.overflowed.store(true, Ordering::Relaxed);
    }

    /// The codecs this slot's viewer negotiated (empty until its answer is known).
    pub fn codecs(&self) -> Vec<CodecSpec> {
        (self.codecs)()
    }

    /// Sends `bps` of bandwidth probe on top of the media from now on (0: stop).
    pub fn set_probe(&self, bps: u64) {
        (self.probe)(bps);
    }

    /// The viewer's bandwidth estimate last seen on this slot (bit/s), if any.
    pub fn estimate(&self) -> Option<u64> {
        Some(self.estimate.load(Ordering::Relaxed)).filter(|e| *e > 0)
    }

    /// Counts one packet out; the first video one records the viewer's join time.
    fn sent_one(&self) {
        self.stats.forwarded.fetch_add(1, Ordering::Relaxed);
        // A plain load first: the read-modify-write runs once per slot, not once per packet.
        if self.kind == MediaKind::Video
            && !self.joined.load(Ordering::Relaxed)
            && !self.joined.swap(true, Ordering::Relaxed)
        {
            JOINS.observe(self.created.elapsed());
        }
    }

    /// This slot's counts, for metrics.
    pub fn totals(&self) -> Totals {
        let mut t = Totals::default();
        t.packets_out[(self.kind == MediaKind::Video) as usize] =
            self.stats.forwarded.load(Ordering::Relaxed);
        t.dropped_queue_full = self.stats.dropped_full.load(Ordering::Relaxed);
        t.dropped_keyframe_gate = self.stats.dropped_gate.load(Ordering::Relaxed);
        t.dropped_unplayable = self.stats.dropped_codec.load(Ordering::Relaxed);
        t
    }

    pub fn source(&self) -> Option<Arc<Upstream>> {
        self.source.load_full()
    }

    /// Points the slot at a new fan-out (or none). The caller attaches/detaches the snapshot.
    pub fn set_source(&self, src: Option<Arc<Upstream>>) {
        self.source.store(src);
    }
}

/// How a source's payloads become this slot's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Shape {
    /// As they are.
    Same,
    /// RED (RFC 2198) to a viewer that takes only Opus: the primary block.
    RedPrimary,
    /// VP8 or VP9, picture numbers continued across source switches (`media::pictures`).
    Numbered(Numbered),
}

/// The payload type and shape a slot sends `codec` with, if its viewer can take it. RED goes
/// as RED only to a viewer that negotiated it over the same Opus payload type (the blocks
/// inside name it); every other Opus viewer gets the primary blocks.
pub(super) fn send_as<O: SlotOutput>(out: &O, codec: &CodecSpec) -> Option<(u8, Shape)> {
    if !codec.is_red() {
        let shape = Numbered::of(&codec.mime_type).map_or(Shape::Same, Shape::Numbered);
        return out.payload_type_for(codec).map(|pt| (pt, shape));
    }
    let opus = out.payload_type_for(&crate::signal::red::opus_codec());
    let red = out.payload_type_for(codec).filter(|pt| Some(*pt) != opus);
    match (red, opus) {
        (Some(r), Some(o)) if Some(o) == codec.red_inner_pt() => Some((r, Shape::Same)),
        (_, Some(o)) => Some((o, Shape::RedPrimary)),
        (Some(r), None) => Some((r, Shape::Same)),
        (None, None) => None,
    }
}

/// The writer task's state across packets.
struct Writer<O> {
    out: Arc<O>,
    rewriter: Option<Rewriter>,
    pictures: PictureIds,
    /// Cached per source: how to send it, if the viewer negotiated a codec that can carry it.
    pt: Option<(SourceId, Option<(u8, Shape)>)>,
    warned: bool,
    /// The connection refused a write (ICE disconnected): nothing is stepped until it is open
    /// again, and then the slot waits for a keyframe (asking for one), since what the viewer
    /// missed meanwhile cannot be repaired.
    stalled: bool,
}

impl<O: SlotOutput> Writer<O> {
    fn new(out: Arc<O>) -> Writer<O> {
        Writer {
            out,
            rewriter: None,
            pictures: PictureIds::default(),
            pt: None,
            warned: false,
            stalled: false,
        }
    }

    /// False while the connection stays shut after a refused write; when it opens again the
    /// slot resyncs on a keyframe.
    fn open(&mut self) -> bool {
        if !self.stalled {
            return true;
        }
        if !self.out.is_open() {
            return false;
        }
        self.stalled = false;
        if let Some(rw) = self.rewriter.as_mut() {
            rw.resync();
        }
        true
    }

    /// Rewrites one packet of `src` for this slot, or `None` to drop it; with how a repair
    /// finds it: a video packet whose payload went out as the track has it is in the track's
    /// shared history (`rtc::repair`), anything else the viewer's sender keeps a copy of.
    fn step(
        &mut self,
        sink: &SlotSink,
        src: &Upstream,
        pkt: &RtpPacket,
        keyframe: bool,
    ) -> Option<(RtpPacket, Kept)> {
        let pt = match self.pt {
            Some((id, pt)) if id == src.id => pt,
            _ => {
                let pt = send_as(self.out.as_ref(), &src.codec);
                self.pt = Some((src.id, pt));
                pt
            }
        };
        let Some((pt, shape)) = pt else {
            sink.stats.dropped_codec.fetch_add(1, Ordering::Relaxed);
            if !self.warned {
                tracing::warn!(
                    mid = %sink.mid,
                    codec = %src.codec.mime_type,
                    fmtp = %src.codec.fmtp,
                    viewer = %self.out.describe(),
                    "the viewer did not negotiate the publisher's codec; dropping its packets"
                );
                self.warned = true;
            }
            return None;
        };
        let payload = match shape {
            Shape::Same | Shape::Numbered(_) => pkt.payload.clone(),
            Shape::RedPrimary => pkt.payload.slice(crate::media::red::primary(&pkt.payload)?),
        };
        let rw = self.rewriter.get_or_insert_with(|| {
            Rewriter::new(src.kind == MediaKind::Video, src.codec.clock_rate)
        });
        if sink.overflowed.swap(false, Ordering::Relaxed) {
            rw.resync();
        }
        let h = &pkt.header;
        let fresh = rw.waiting_for_keyframe(src.id);
        match rw.handle(
            Instant::now(),
            src.id,
            h.sequence_number,
            h.timestamp,
            keyframe,
        ) {
            None => {
                sink.stats.dropped_gate.fetch_add(1, Ordering::Relaxed);
                src.request_keyframe();
                None
            }
            Some((seq, ts)) => {
                let out = match shape {
                    Shape::Numbered(c) => self.pictures.map(c, src.id, fresh, &payload),
                    _ => payload,
                };
                let same = shape != Shape::RedPrimary
                    && out.as_ptr() == pkt.payload.as_ptr()
                    && out.len() == pkt.payload.len();
                let kept = match rw.deltas() {
                    Some((seq_delta, ts_delta)) if same && src.kind == MediaKind::Video => {
                        Kept::Shared {
                            source: src.id.0,
                            seq_delta,
                            ts_delta,
                        }
                    }
                    _ => Kept::Copy,
                };
                let header = RtpHeader {
                    version: 2,
                    marker: h.marker,
                    payload_type: pt,
                    sequence_number: seq,
                    timestamp: ts,
                    ssrc: self.out.ssrc(),
                    ..Default::default()
                };
                Some((
                    RtpPacket {
                        payload: out,
                        header,
                    },
                    kept,
                ))
            }
        }
    }

    async fn send(&mut self, sink: &SlotSink, pkt: RtpPacket) {
        if self.out.write(pkt).await {
            sink.sent_one();
        } else {
            self.stalled = true;
        }
    }
}

impl<O: SlotOutput> Writer<O> {
    /// Writes one packet in place (`burst`: of a replay, which the output may pace); false
    /// when the output's queue was full.
    fn write_now(&mut self, sink: &SlotSink, (pkt, kept): (RtpPacket, Kept), burst: bool) -> bool {
        let sent = if burst {
            self.out.write_burst_now(pkt, kept)
        } else {
            self.out.write_now(pkt, kept)
        };
        match sent {
            Sent::Ok => {
                sink.sent_one();
                true
            }
            Sent::Full => {
                sink.overflow();
                false
            }
            Sent::Refused => {
                self.stalled = true;
                true
            }
        }
    }
}

/// The in-place writer: the same steps as the writer task, under a lock that only two
/// fan-outs feeding one slot across a layer switch ever contend for.
impl<O: SlotOutput> InlineFeed for std::sync::Mutex<Writer<O>> {
    fn feed(&self, sink: &SlotSink, item: Item) -> bool {
        let mut w = self.locked();
        let guard = sink.source.load();
        let Some(s) = guard.as_ref() else {
            return true;
        };
        if !w.open() {
            return true;
        }
        match item {
            Item::Packet { src, keyframe, pkt } => {
                if s.id != src {
                    return true; // offered by a fan-out the slot has just left
                }
                match w.step(sink, s, &pkt, keyframe) {
                    Some(p) => w.write_now(sink, p, false),
                    None => true,
                }
            }
            Item::Burst { src, packets } => {
                if s.id != src {
                    return true;
                }
                for (i, pkt) in packets.iter().enumerate() {
                    if let Some(p) = w.step(sink, s, pkt, i == 0)
                        && !w.write_now(sink, p, true)
                    {
                        return false;
                    }
                }
                true
            }
        }
    }
}

async fn writer<O: SlotOutput>(
    sink: std::sync::Weak<SlotSink>,
    out: Arc<O>,
    mut rx: mpsc::Receiver<Item>,
) {
    let mut w = Writer::new(out);
    while let Some(item) = rx.recv().await {
        let Some(sink) = sink.upgrade() else { break };
        match item {
            Item::Packet { src, keyframe, pkt } => {
                if !w.open() {
                    continue;
                }
                let out = {
                    // A guard, not a clone: no shared refcount traffic per packet.
                    let guard = sink.source.load();
                    match guard.as_ref() {
                        Some(s) if s.id == src => w.step(&sink, s, &pkt, keyframe),
                        _ => None, // queued before a switch
                    }
                };
                if let Some((p, _)) = out {
                    w.send(&sink, p).await;
                }
            }
            Item::Burst { src, packets } => {
                let Some(s) = sink.source().filter(|s| s.id == src) else {
                    continue;
                };
                if !w.open() {
                    continue;
                }
                for (i, pkt) in packets.iter().enumerate() {
                    // The group starts at a keyframe by construction.
                    if let Some((p, _)) = w.step(&sink, &s, pkt, i == 0) {
                        w.send(&sink, p).await;
                    }
                }
            }
        }
    }
}

impl Drop for SlotSink {
    fn drop(&mut self) {
        RETIRED.retire(&self.totals());
    }
}
