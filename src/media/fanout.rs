//! One publisher track's fan-out to the slots that currently show it.
//!
//! The subscriber list is an immutable snapshot behind an [`ArcSwap`]: membership changes
//! (signalling) publish a new `Vec`, the packet path only loads the current one. No lock is
//! shared between the publisher's reader task and any viewer.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use arc_swap::ArcSwap;

use crate::media::gop::GopCache;

use crate::lock::Locked;
use crate::media::SourceId;
use crate::media::counters::{RETIRED, Totals};
use crate::media::keyframe::is_keyframe;
use crate::media::padding::SeqCloser;
use crate::media::sink::{Item, SlotSink};
use crate::media::source::Upstream;
use crate::rtc::RtpPacket;
use crate::rtc::repair::TrackHistory;
use crate::signal::{CodecSpec, MediaKind};

/// Video that resumes after this long without a packet (the publisher's network dropped out)
/// asks the publisher for a keyframe at once: what viewers missed cannot be repaired, and
/// otherwise they wait for their own decoders to give up and ask (seconds, in Chromium).
const RESUME_GAP: std::time::Duration = std::time::Duration::from_millis(500);

#[derive(Debug, Default)]
struct Rate {
    last: Option<(u64, Instant)>,
    bps: u64,
    peak: u64,
}

/// Counters, readable without locks (for tests, logs and later metrics).
#[derive(Debug, Default)]
pub struct FanoutStats {
    pub packets_in: AtomicU64,
    pub bytes_in: AtomicU64,
    pub keyframes_in: AtomicU64,
    /// Slots started from the keyframe cache.
    pub cache_joins: AtomicU64,
}

pub struct TrackFanout {
    pub id: SourceId,
    pub kind: MediaKind,
    pub codec: CodecSpec,
    /// The simulcast layer (RTP stream id) this fan-out carries, if the publisher simulcasts.
    pub rid: Option<String>,
    /// Bitrate and size of what arrives, for layer choice and the `layers` event.
    rate: std::sync::Mutex<Rate>,
    /// Width << 16 | height of the last keyframe (VP8), 0 until known.
    dims: std::sync::atomic::AtomicU32,
    /// Lower-case codec name, precomputed for keyframe detection.
    codec_name: String,
    sinks: ArcSwap<Vec<Arc<SlotSink>>>,
    /// Renumbers over dropped padding (see `media::padding`).
    seq: std::sync::Mutex<SeqCloser>,
    /// Video only: the current group of pictures. Locked by the reader task once per packet
    /// (uncontended) and by `attach` when a slot joins, so the two never interleave.
    gop: Option<std::sync::Mutex<GopCache>>,
    /// Video only: what its viewers' NACKs are answered from, one copy for all of them
    /// (`rtc::repair`); locked by the reader once per packet and by a repair.
    history: Option<Arc<TrackHistory>>,
    /// What slots attached here hold: id, codec, and the throttled keyframe request.
    pub upstream: Arc<Upstream>,
    pub stats: FanoutStats,
    /// Milliseconds from `created` to the last packet, plus one (0: none yet).
    last_packet_ms: AtomicU64,
    created: Instant,
}

impl TrackFanout {
    pub fn new(
        kind: MediaKind,
        codec: CodecSpec,
        rid: Option<String>,
        request_upstream: Box<dyn Fn() + Send + Sync>,
    ) -> Arc<TrackFanout> {
        let id = SourceId::next();
        Arc::new(TrackFanout {
            upstream: Arc::new(Upstream::new(id, kind, codec.clone(), request_upstream)),
            id,
            kind,
            rid,
            rate: Default::default(),
            dims: Default::default(),
            codec_name: codec.name(),
            sinks: ArcSwap::from_pointee(Vec::new()),
            seq: Default::default(),
            gop: (kind == MediaKind::Video).then(Default::default),
            history: (kind == MediaKind::Video)
                .then(|| TrackHistory::register(id.0, codec.clock_rate)),
            last_packet_ms: AtomicU64::new(0),
            created: Instant::now(),
            codec,
            stats: FanoutStats::default(),
        })
    }

    /// The packet path: one `Arc` for the packet, then a non-blocking offer to each sink.
    pub fn forward(&self, pkt: RtpPacket) {
        self.forward_at(pkt, Instant::now());
    }

    /// [`TrackFanout::forward`] with the arrival time given.
    pub fn forward_at(&self, mut pkt: RtpPacket, now: Instant) {
        // Padding-only probes carry nothing to forward; the numbers after them move down so
        // viewers see no hole (uncontended: only this track's reader task locks it).
        let seq = self
            .seq
            .locked()
            .map(pkt.header.sequence_number, pkt.payload.is_empty());
        let Some(seq) = seq else { return };
        pkt.header.sequence_number = seq;
        let n = self.stats.packets_in.fetch_add(1, Ordering::Relaxed);
        self.stats
            .bytes_in
            .fetch_add(pkt.payload.len() as u64, Ordering::Relaxed);
        let marked = self.kind == MediaKind::Video && is_keyframe(&self.codec_name, &pkt.payload);
        if self.kind == MediaKind::Video {
            let ms = now.saturating_duration_since(self.created).as_millis() as u64 + 1;
            let last = self.last_packet_ms.swap(ms, Ordering::Relaxed);
            if last != 0 && ms.saturating_sub(last) >= RESUME_GAP.as_millis() as u64 && !marked {
                self.request_keyframe();
            }
        }
        let pkt = Arc::new(pkt);
        let (keyframe, sinks) = match &self.gop {
            Some(gop) => {
                // Cache and snapshot under one lock, so a slot attached meanwhile gets this
                // packet either in its burst or live, never both or neither. Only the first
                // keyframe-marked packet of an access unit counts as the keyframe: a viewer's
                // gate must not open at a picture's second IDR slice (see `media::gop`).
                let mut g = gop.locked();
                let starts = g.push(now, &pkt, marked);
                (starts, self.sinks.load())
            }
            None => (marked, self.sinks.load()),
        };
        if let Some(h) = &self.history {
            // Kept for repairs only while someone watches (a layer nobody is on keeps nothing).
            if sinks.is_empty() {
                h.forget();
            } else {
                h.keep(&pkt);
            }
        }
        if keyframe {
            self.stats.keyframes_in.fetch_add(1, Ordering::Relaxed);
        }
        if marked
            && self.codec_name == "vp8"
            && let Some((w, h)) = crate::media::keyframe::vp8_dimensions(&pkt.payload)
        {
            self.dims
                .store((w as u32) << 16 | h as u32, Ordering::Relaxed);
        }
        let hand_over = || {
            for sink in sinks.iter() {
                if !sink.offer(Item::Packet {
                    src: self.id,
                    keyframe,
                    pkt: pkt.clone(),
                }) {
                    self.request_keyframe();
                }
            }
        };
        if n.is_multiple_of(crate::media::counters::FORWARD_SAMPLE) {
            crate::media::counters::stamped(now, hand_over);
        } else {
            hand_over();
        }
    }

    /// Updates the bitrate from the byte counter (the room's tick calls this).
    pub fn sample_rate(&self, now: Instant) {
        let bytes = self.stats.bytes_in.load(Ordering::Relaxed);
        let mut r = self.rate.locked();
        if let Some((b0, t0)) = r.last {
            let dt = now.saturating_duration_since(t0).as_secs_f64();
            if dt < 0.2 {
                return;
            }
            let bps = ((bytes - b0) as f64 * 8.0 / dt) as u64;
            // A light smoothing over ~1 s of ticks; the peak only ever grows.
            r.bps = if r.bps == 0 {
                bps
            } else {
                (r.bps * 3 + bps) / 4
            };
            r.peak = r.peak.max(r.bps);
        }
        r.last = Some((bytes, now));
    }

    /// Current payload bitrate (bit/s), smoothed; 0 while unknown or paused.
    pub fn bitrate(&self) -> u64 {
        self.rate.locked().bps
    }

    /// The highest smoothed bitrate seen: a stable rank for simulcast layers (a paused layer
    /// keeps its place).
    pub fn peak_bitrate(&self) -> u64 {
        self.rate.locked().peak
    }

    /// Width and height of the last keyframe, when the codec tells (VP8).
    pub fn dimensions(&self) -> Option<(u16, u16)> {
        let d = self.dims.load(Ordering::Relaxed);
        (d != 0).then_some(((d >> 16) as u16, d as u16))
    }

    /// Asks the publisher for a keyframe (throttled, see [`Upstream::request_keyframe`]).
    pub fn request_keyframe(&self) {
        self.upstream.request_keyframe();
    }

    /// Points `sink` here and adds it to the snapshot (signalling path). A video slot first gets
    /// the cached group of pictures as one burst; without one, the publisher is asked for a
    /// keyframe.
    pub fn attach(&self, sink: &Arc<SlotSink>) {
        self.attach_within(sink, usize::MAX);
    }

    /// [`TrackFanout::attach`] for a slot switching to this source from another (a layer change):
    /// the cached group of pictures is replayed only while it holds at most `burst` bytes, else
    /// a keyframe is asked for. A switch down for a narrowed link must not start by pushing
    /// seconds of video into it at once.
    pub fn attach_within(&self, sink: &Arc<SlotSink>, burst: usize) {
        let _guard = match &self.gop {
            Some(gop) => {
                let g = gop.locked();
                let bytes: usize = g.packets().iter().map(|p| p.payload.len() + 12).sum();
                if g.packets().is_empty() || bytes > burst {
                    self.request_keyframe();
                } else {
                    self.stats.cache_joins.fetch_add(1, Ordering::Relaxed);
                    sink.offer(Item::Burst {
                        src: self.id,
                        packets: g.packets().to_vec(),
                    });
                }
                Some(g)
            }
            None => None,
        };
        self.sinks.rcu(|cur| {
            let mut next = Vec::with_capacity(cur.len() + 1);
            next.extend(cur.iter().filter(|s| !Arc::ptr_eq(s, sink)).cloned());
            next.push(sink.clone());
            next
        });
    }

    /// Removes a sink from the snapshot (signalling path).
    pub fn detach(&self, sink: &Arc<SlotSink>) {
        self.sinks.rcu(|cur| {
            cur.iter()
                .filter(|s| !Arc::ptr_eq(s, sink))
                .cloned()
                .collect::<Vec<_>>()
        });
    }

    /// Removes every sink, e.g. when the publisher leaves.
    pub fn detach_all(&self) -> Vec<Arc<SlotSink>> {
        let old = self.sinks.swap(Arc::new(Vec::new()));
        old.iter().cloned().collect()
    }

    pub fn sink_count(&self) -> usize {
        self.sinks.load().len()
    }

    /// This fan-out's counts, for metrics.
    pub fn totals(&self) -> Totals {
        let k = (self.kind == MediaKind::Video) as usize;
        let mut t = Totals::default();
        t.packets_in[k] = self.stats.packets_in.load(Ordering::Relaxed);
        t.bytes_in[k] = self.stats.bytes_in.load(Ordering::Relaxed);
        t.keyframe_requests = self.upstream.keyframe_requests_sent.load(Ordering::Relaxed);
        t.cache_joins = self.stats.cache_joins.load(Ordering::Relaxed);
        t
    }
}

impl Drop for TrackFanout {
    fn drop(&mut self) {
        RETIRED.retire(&self.totals());
    }
}
