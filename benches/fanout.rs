//! Micro benchmarks of the forwarding path minus sockets: one incoming packet through
//! `TrackFanout::forward` and each slot's `Rewriter` to N outputs that only count — `queue`:
//! through each slot's bounded queue and writer task (outputs whose writes may wait);
//! `inline`: rewritten and written by the fan-out itself (outputs that never wait: every
//! viewer leg, which wisp drives). Reports ns per packet per viewer, and allocations per
//! forwarded packet per viewer (counting allocator). Also the rewriter alone.
//!
//! `cargo bench --bench fanout`

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tokio::sync::Notify;
use wisp::media::{Rewriter, SlotOutput, SlotSink, SourceId, TrackFanout};
use wisp::rtc::{RtpHeader, RtpPacket};
use wisp::signal::{CodecSpec, MediaKind};

struct Counting;
static ALLOCS: AtomicUsize = AtomicUsize::new(0);
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        ALLOCS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) }
    }
}
#[global_allocator]
static GLOBAL: Counting = Counting;

/// An output that counts packets and wakes the bench when all have arrived.
struct Counter {
    written: Arc<AtomicU64>,
    done: Arc<Notify>,
    target: Arc<AtomicU64>,
    inline: bool,
}

impl Counter {
    fn count(&self, pkt: RtpPacket) {
        black_box(&pkt);
        let n = self.written.fetch_add(1, Ordering::AcqRel) + 1;
        if n == self.target.load(Ordering::Acquire) {
            self.done.notify_one();
        }
    }
}

impl SlotOutput for Counter {
    fn kind(&self) -> MediaKind {
        MediaKind::Video
    }
    fn mid(&self) -> &str {
        "1"
    }
    fn ssrc(&self) -> u32 {
        1234
    }
    fn payload_type_for(&self, _: &CodecSpec) -> Option<u8> {
        Some(96)
    }
    fn describe(&self) -> String {
        String::new()
    }
    fn codecs(&self) -> Vec<CodecSpec> {
        Vec::new()
    }
    async fn write(&self, pkt: RtpPacket) -> bool {
        self.count(pkt);
        true
    }
    fn writes_at_once(&self) -> bool {
        self.inline
    }
    fn write_now(&self, pkt: RtpPacket, _kept: wisp::rtc::repair::Kept) -> wisp::rtc::Sent {
        self.count(pkt);
        wisp::rtc::Sent::Ok
    }
    async fn next_feedback(&self) -> Option<Vec<wisp::rtc::feedback::Feedback>> {
        std::future::pending::<()>().await;
        None
    }
}

fn vp8() -> CodecSpec {
    CodecSpec {
        mime_type: "video/VP8".into(),
        clock_rate: 90000,
        channels: 0,
        fmtp: String::new(),
    }
}

fn packet(seq: u16, payload: &Bytes) -> RtpPacket {
    RtpPacket {
        header: RtpHeader {
            version: 2,
            marker: true,
            payload_type: 96,
            sequence_number: seq,
            timestamp: seq as u32 * 3000,
            ssrc: 42,
            ..Default::default()
        },
        payload: payload.clone(),
    }
}

struct Rig {
    fanout: Arc<TrackFanout>,
    written: Arc<AtomicU64>,
    target: Arc<AtomicU64>,
    done: Arc<Notify>,
    seq: u16,
    _sinks: Vec<Arc<SlotSink>>,
}

fn rig(rt: &tokio::runtime::Runtime, n: usize, inline: bool) -> Rig {
    let _g = rt.enter();
    let fanout = TrackFanout::new(MediaKind::Video, vp8(), None, Box::new(|| {}));
    let written = Arc::new(AtomicU64::new(0));
    let target = Arc::new(AtomicU64::new(u64::MAX));
    let done = Arc::new(Notify::new());
    let sinks: Vec<_> = (0..n)
        .map(|_| {
            let s = SlotSink::spawn(Arc::new(Counter {
                written: written.clone(),
                done: done.clone(),
                target: target.clone(),
                inline,
            }));
            s.set_source(Some(fanout.upstream.clone()));
            fanout.attach(&s);
            s
        })
        .collect();
    Rig {
        fanout,
        written,
        target,
        done,
        seq: 0,
        _sinks: sinks,
    }
}

/// Forwards `packets` packets (a keyframe first on the first call) and waits until every
/// sink has written them all.
fn burst(rt: &tokio::runtime::Runtime, r: &mut Rig, viewers: usize, packets: u16, payload: &Bytes) {
    let before = r.written.load(Ordering::Acquire);
    r.target
        .store(before + viewers as u64 * packets as u64, Ordering::Release);
    rt.block_on(async {
        let done = r.done.notified();
        tokio::pin!(done);
        done.as_mut().enable();
        for _ in 0..packets {
            let mut p = packet(r.seq, payload);
            if r.seq == 0 {
                p.payload = Bytes::from_static(&[0x10, 0x00, 0x9d, 0x01, 0x2a]);
            }
            r.fanout.forward(p);
            r.seq = r.seq.wrapping_add(1);
        }
        if r.written.load(Ordering::Acquire) < r.target.load(Ordering::Acquire) {
            tokio::time::timeout(Duration::from_secs(10), done)
                .await
                .expect("sinks drained");
        }
    });
}

const BURST: u16 = 64; // below the slot queue size, so nothing is dropped

fn fanout(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let payload = Bytes::from(vec![0x90u8; 1200]);
    let mut group = c.benchmark_group("fanout");
    group.measurement_time(Duration::from_secs(3));
    for (mode, inline) in [("queue", false), ("inline", true)] {
        for n in [1usize, 10, 100, 1000] {
            fanout_point(&rt, &mut group, &payload, mode, inline, n);
        }
    }
    group.finish();
}

fn fanout_point(
    rt: &tokio::runtime::Runtime,
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    payload: &Bytes,
    mode: &str,
    inline: bool,
    n: usize,
) {
    {
        let mut r = rig(rt, n, inline);
        burst(rt, &mut r, n, BURST, payload); // warm: keyframe opens the gates
        // Allocations per forwarded packet per viewer, over one burst.
        let a0 = ALLOCS.load(Ordering::Relaxed);
        burst(rt, &mut r, n, BURST, payload);
        let allocs = (ALLOCS.load(Ordering::Relaxed) - a0) as f64 / (BURST as f64 * n as f64);
        println!("fanout/{mode}/{n}: {allocs:.3} allocations per packet per viewer");
        group.throughput(Throughput::Elements(BURST as u64 * n as u64));
        group.bench_function(format!("{mode}/{n}"), |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    burst(rt, &mut r, n, BURST, payload);
                }
                start.elapsed()
            })
        });
    }
}

fn rewriter(c: &mut Criterion) {
    let mut r = Rewriter::new(true, 90_000);
    let now = Instant::now();
    r.handle(now, SourceId(1), 0, 0, true);
    let mut seq = 1u16;
    c.bench_function("rewriter/handle", |b| {
        b.iter(|| {
            seq = seq.wrapping_add(1);
            black_box(r.handle(now, SourceId(1), seq, seq as u32 * 3000, false))
        })
    });
}

criterion_group!(benches, fanout, rewriter);
criterion_main!(benches);
