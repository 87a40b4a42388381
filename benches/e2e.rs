//! End-to-end load bench: the release `wisp` as its own process on loopback, one webrtc-rs
//! publisher sending 2.5 Mbit/s of synthetic video in 1,200-byte packets, 30 frames/s with
//! each frame's packets back to back (`--paced`: evenly spread), plus Opus-sized audio at
//! 50 packets/s (send time in the payload), and N webrtc-rs viewers that count and
//! timestamp what they receive. For each N: forwarded packets/s, server CPU-seconds (from
//! /proc/<pid>/stat) and so packets per server CPU-second, RSS per viewer, loss, end-to-end
//! latency percentiles, join time; then a fit CPU = a + b·N. In the same run, the floors
//! (`e2e/floor.rs`): a minimal relay (UDP in, SRTP AES-128-GCM per viewer, sendto) measured
//! the same way, saturated once and at each point's own load.
//!
//! `cargo bench --bench e2e -- [--viewers 10,25,50,100] [--seconds 5] [--wisp-args "…"] [--obs]
//! [--paced]`
//! Writes target/e2e-bench.{md,json,svg}. Every loop is bounded.
//!
//! `--cluster`: a real `redis-server` and two nodes, an origin and an edge; for each N, N
//! viewers on the origin itself (one node), then N viewers on the edge fed by the cascade,
//! alternated. Writes target/cluster-bench.md: the edge's CPU per viewer against one node's,
//! and the origin's CPU with an edge against one node's with one viewer.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit};
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_remote::TrackRemoteEvent;
use wisp::rtc::client::{ClientPeer, local_track};

#[path = "e2e/floor.rs"]
mod floor;

const VIDEO_BPS: f64 = 2_500_000.0;
const PACKET: usize = 1200;
const AUDIO_PPS: f64 = 50.0;
const FPS: f64 = 30.0;
const STEP: Duration = Duration::from_secs(20); // bound on any one wait

/// The publisher's video as (frames per second, packets per frame). Framed (default): 30
/// frames/s, each frame's packets back to back under one timestamp, as OBS and GStreamer send
/// them. Paced: one packet per "frame", evenly spread (a perfect pacer, no bursts at all).
fn video_schedule(paced: bool) -> (f64, f64) {
    let vpps = VIDEO_BPS / 8.0 / PACKET as f64;
    if paced {
        (vpps, 1.0)
    } else {
        (FPS, vpps / FPS)
    }
}

fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

/// utime+stime of a process (or `thread-self`), in seconds.
fn cpu_seconds(stat_path: &str) -> f64 {
    let s = std::fs::read_to_string(stat_path).unwrap_or_default();
    let after = s.rsplit_once(')').map(|x| x.1).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    ticks / 100.0 // USER_HZ is 100 on Linux
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i] as f64 / 1e6
}

#[derive(serde::Serialize, Clone)]
struct Point {
    viewers: usize,
    forwarded_pps: f64,
    /// CPU of the node the viewers play from, in cores.
    server_cpu: f64,
    /// `--cluster`: CPU of the node the publisher publishes to (the origin), in cores; the
    /// same as `server_cpu` on one node.
    origin_cpu: f64,
    packets_per_cpu_second: f64,
    floor_ratio: f64,
    /// Against the floor at this point's own load (`floor::at_load`); not measured (null) in
    /// the cluster sweep.
    load_floor_ratio: f64,
    rss_per_viewer_kib: f64,
    loss: f64,
    latency_ms_p50: f64,
    latency_ms_p99: f64,
    latency_ms_p999: f64,
    /// The server's own share (`wisp_forward_delay_seconds`, fan-out to `sendmsg` returned):
    /// the bucket bounds under which half and 99 % of the window's samples fell, ms.
    forward_ms_p50: f64,
    forward_ms_p99: f64,
    join_ms_median: f64,
}

/// The server's forwarding-delay histogram from its `/metrics`: cumulative counts by upper
/// bound (seconds).
async fn forward_buckets(http: &reqwest::Client, base: &str) -> Vec<(f64, f64)> {
    let Ok(r) = http.get(format!("{base}/metrics")).send().await else {
        return Vec::new();
    };
    let text = r.text().await.unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix("wisp_forward_delay_seconds_bucket{le=\"")?;
            let (le, v) = rest.split_once("\"} ")?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((le, v.trim().parse().ok()?))
        })
        .collect()
}

/// The smallest bucket bound (ms) under which a share `q` of what was counted between two
/// scrapes fell.
fn bucket_quantile(before: &[(f64, f64)], after: &[(f64, f64)], q: f64) -> f64 {
    let window: Vec<(f64, f64)> = after
        .iter()
        .map(|&(le, a)| {
            let b = before.iter().find(|(l, _)| *l == le).map_or(0.0, |x| x.1);
            (le, a - b)
        })
        .collect();
    let total = window.last().map_or(0.0, |x| x.1);
    if total <= 0.0 {
        return f64::NAN;
    }
    window
        .iter()
        .find(|(_, c)| *c >= q * total)
        .map_or(f64::NAN, |(le, _)| le * 1000.0)
}

/// `--obs`: the publisher behaves like OBS — a keyframe every 4 s and keyframe requests
/// ignored — so a viewer's join depends on the server's keyframe cache alone.
static OBS_LIKE: AtomicBool = AtomicBool::new(false);
/// `--paced`: video packets evenly spread instead of sent a frame at a time.
static PACED: AtomicBool = AtomicBool::new(false);
/// Audio + video m-line pairs per viewer (`--slots`).
static SLOTS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(1);

struct Server {
    child: Child,
    base: String,
}

/// A bench that panics midway must not leave its server running (it would hold the ports
/// and the next run would measure it instead).
impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `extra`: more wisp flags, e.g. `--ice-udp-port 46000` to measure single-port mode.
/// `WISP_BIN=/path/to/wisp` runs another build (A/B comparisons of two commits).
fn start_server(extra: &[String]) -> Server {
    start_server_at(extra, 18380, "46000-47999")
}

fn start_server_at(extra: &[String], port: u16, ice_ports: &str) -> Server {
    let bin = std::env::var("WISP_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_wisp").into());
    let mut child = Command::new(bin)
        .args(extra)
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--ice-ports",
            ice_ports,
            "--max-sessions",
            "4000",
            "--allow-remote",
            "127.0.0.0/8",
            // Every viewer joins from 127.0.0.1: the per-address request limit (its own
            // tests) would refuse a sweep's joins, which come faster than 50 a second.
            "--request-rate",
            "1000000",
            "--request-burst",
            "1000000",
        ])
        .env("WISP_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start wisp");
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    use std::io::BufRead;
    while out.read_line(&mut line).unwrap_or(0) > 0 && !line.contains("wisp is running") {
        line.clear();
    }
    assert!(
        line.contains("wisp is running"),
        "wisp did not start (is port {port} taken by an earlier run?)"
    );
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
    }
}

async fn post(http: &reqwest::Client, url: &str, sdp: String) -> (String, String) {
    let r = http
        .post(url)
        .header("content-type", "application/sdp")
        .body(sdp)
        .send()
        .await
        .expect("POST");
    assert_eq!(r.status(), 201, "POST {url}");
    let loc = r.headers()["location"].to_str().unwrap().to_string();
    (loc, r.text().await.unwrap())
}

/// Shared receive counters of all viewers.
#[derive(Default)]
struct Rx {
    packets: AtomicU64,
    /// Video packets sent after `window_ns` (live, not from a join's keyframe-cache burst).
    live_video: AtomicU64,
    window_ns: AtomicU64,
    latencies: Mutex<Vec<u64>>,
    recording: AtomicBool,
}

/// `server` takes the publisher and `play` the viewers (the same server on one node; an edge
/// of it with `--cluster`), both in room `name`.
async fn run_point(
    server: &Server,
    play: &Server,
    name: &str,
    n: usize,
    seconds: f64,
    floor_pps: f64,
) -> Point {
    let http = reqwest::Client::new();
    let room = format!("{}/whip/{name}", server.base);
    let origin_pid = server.child.id();
    let pid = play.child.id();

    // Publisher
    let publisher = ClientPeer::new().await.unwrap();
    let (vs, as_) = (rand::random::<u32>(), rand::random::<u32>());
    let video = local_track(RtpCodecKind::Video, vs);
    let audio = local_track(RtpCodecKind::Audio, as_);
    for t in [&video, &audio] {
        publisher
            .pc
            .add_transceiver_from_track(
                t.clone() as Arc<dyn TrackLocal>,
                Some(RTCRtpTransceiverInit {
                    direction: RTCRtpTransceiverDirection::Sendonly,
                    ..Default::default()
                }),
            )
            .await
            .unwrap();
    }
    let offer = publisher.offer(STEP).await.unwrap();
    let (pub_loc, answer) = post(&http, &room, offer).await;
    publisher.accept(answer).await.unwrap();
    publisher.connected(STEP).await.unwrap();

    let sent = Arc::new(AtomicU64::new(0));
    let sent_video = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    // Like a browser encoder, answer keyframe requests with the next packet.
    let want_key = Arc::new(AtomicBool::new(true));
    {
        let (video, want_key) = (video.clone(), want_key.clone());
        tokio::spawn(async move {
            while let Some(ev) = video.poll().await {
                if matches!(
                    ev,
                    webrtc::media_stream::track_local::TrackLocalEvent::OnRtcpPacket(_)
                ) {
                    want_key.store(true, Ordering::Relaxed);
                }
            }
        });
    }
    let sender = {
        let (sent, stop, video, audio) = (sent.clone(), stop.clone(), video.clone(), audio.clone());
        let (want_key, sent_video) = (want_key.clone(), sent_video.clone());
        tokio::spawn(async move {
            let (fps, per_frame) = video_schedule(PACED.load(Ordering::Relaxed));
            let start = Instant::now();
            let (mut nv, mut nf, mut na) = (0u64, 0u64, 0u64);
            let mut tick = tokio::time::interval(Duration::from_millis(2));
            let filler = vec![0x5au8; PACKET - 10];
            // Bounded: at most ten minutes of media.
            while !stop.load(Ordering::Relaxed) && start.elapsed() < Duration::from_secs(600) {
                tick.tick().await;
                let t = start.elapsed().as_secs_f64();
                while (nf as f64) <= t * fps {
                    let obs = OBS_LIKE.load(Ordering::Relaxed);
                    let every = if obs { 4.0 * fps } else { 2.0 * fps } as u64;
                    let asked = want_key.swap(false, Ordering::Relaxed) && !obs;
                    let key = asked || nf % every == 0;
                    let end = ((nf + 1) as f64 * per_frame).ceil() as u64;
                    let first = nv;
                    while nv < end {
                        let mut p = Vec::with_capacity(PACKET);
                        // VP8 descriptor: S on a frame's first packet; P = 0 on a keyframe.
                        let s = if nv == first { 0x10 } else { 0x00 };
                        p.extend_from_slice(&[s, if key { 0 } else { 1 }]);
                        p.extend_from_slice(&now_ns().to_be_bytes());
                        p.extend_from_slice(&filler);
                        let pkt = rtc::rtp::packet::Packet {
                            header: rtc::rtp::header::Header {
                                version: 2,
                                marker: nv + 1 == end,
                                payload_type: 96,
                                sequence_number: nv as u16,
                                timestamp: (nf as f64 * 90_000.0 / fps) as u32,
                                ssrc: vs,
                                ..Default::default()
                            },
                            payload: Bytes::from(p),
                        };
                        if video.write_rtp(pkt).await.is_ok() {
                            sent.fetch_add(1, Ordering::Relaxed);
                            sent_video.fetch_add(1, Ordering::Relaxed);
                        }
                        nv += 1;
                    }
                    nf += 1;
                }
                while (na as f64) < t * AUDIO_PPS {
                    let pkt = rtc::rtp::packet::Packet {
                        header: rtc::rtp::header::Header {
                            version: 2,
                            payload_type: 111,
                            sequence_number: na as u16,
                            timestamp: (na * 960) as u32,
                            ssrc: as_,
                            ..Default::default()
                        },
                        payload: Bytes::from(vec![0xfc; 80]),
                    };
                    if audio.write_rtp(pkt).await.is_ok() {
                        sent.fetch_add(1, Ordering::Relaxed);
                    }
                    na += 1;
                }
            }
        })
    };
    let rss_before = rss_kib(pid);

    // Viewers, joined in batches of 10.
    let rx = Arc::new(Rx::default());
    let mut viewers = Vec::new();
    let joins = Arc::new(Mutex::new(Vec::new()));
    let whep = format!("{}/whep/{name}", play.base);
    for batch in (0..n).collect::<Vec<_>>().chunks(10) {
        let mut handles = Vec::new();
        for _ in batch {
            let (http, whep, rx, joins) = (http.clone(), whep.clone(), rx.clone(), joins.clone());
            handles.push(tokio::spawn(async move {
                let mut peer = ClientPeer::new().await.unwrap();
                let slots = SLOTS.load(Ordering::Relaxed).max(1);
                for kind in [RtpCodecKind::Audio, RtpCodecKind::Video].repeat(slots) {
                    peer.pc
                        .add_transceiver_from_kind(
                            kind,
                            Some(RTCRtpTransceiverInit {
                                direction: RTCRtpTransceiverDirection::Recvonly,
                                ..Default::default()
                            }),
                        )
                        .await
                        .unwrap();
                }
                let t0 = Instant::now();
                let offer = peer.offer(STEP).await.unwrap();
                let (loc, answer) = post(&http, &whep, offer).await;
                peer.accept(answer).await.unwrap();
                let (first_tx, first_rx) = tokio::sync::oneshot::channel::<()>();
                let mut tracks =
                    std::mem::replace(&mut peer.tracks, tokio::sync::mpsc::unbounded_channel().1);
                let first = Arc::new(Mutex::new(Some(first_tx)));
                tokio::spawn(async move {
                    while let Some(t) = tracks.recv().await {
                        let (rx, first) = (rx.clone(), first.clone());
                        tokio::spawn(async move {
                            let video = t.kind().await == RtpCodecKind::Video;
                            while let Some(ev) = t.poll().await {
                                if let TrackRemoteEvent::OnRtpPacket(p) = ev {
                                    rx.packets.fetch_add(1, Ordering::Relaxed);
                                    if video && p.payload.len() >= 10 {
                                        if let Some(tx) = first.lock().unwrap().take() {
                                            let _ = tx.send(());
                                        }
                                        let sent = u64::from_be_bytes(
                                            p.payload[2..10].try_into().unwrap(),
                                        );
                                        if rx.recording.load(Ordering::Relaxed)
                                            && sent >= rx.window_ns.load(Ordering::Relaxed)
                                        {
                                            rx.live_video.fetch_add(1, Ordering::Relaxed);
                                            rx.latencies
                                                .lock()
                                                .unwrap()
                                                .push(now_ns().saturating_sub(sent));
                                        }
                                    }
                                }
                            }
                        });
                    }
                });
                tokio::time::timeout(STEP, first_rx)
                    .await
                    .expect("first video packet in time")
                    .unwrap();
                joins
                    .lock()
                    .unwrap()
                    .push(t0.elapsed().as_secs_f64() * 1000.0);
                (peer, loc)
            }));
        }
        for h in handles {
            viewers.push(h.await.unwrap());
        }
    }

    // Warm up (joins' keyframe-cache bursts drain), then measure a window. Latency and loss
    // count only video sent inside the window.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let o0 = cpu_seconds(&format!("/proc/{origin_pid}/stat"));
    let (c0, r0, s0, t0) = (
        cpu_seconds(&format!("/proc/{pid}/stat")),
        rx.packets.load(Ordering::Relaxed),
        sent_video.load(Ordering::Relaxed),
        Instant::now(),
    );
    let fwd0 = forward_buckets(&http, &play.base).await;
    rx.window_ns.store(now_ns(), Ordering::Relaxed);
    rx.recording.store(true, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
    let fwd1 = forward_buckets(&http, &play.base).await;
    let (c1, r1, s1, el) = (
        cpu_seconds(&format!("/proc/{pid}/stat")),
        rx.packets.load(Ordering::Relaxed),
        sent_video.load(Ordering::Relaxed),
        t0.elapsed().as_secs_f64(),
    );
    let o1 = cpu_seconds(&format!("/proc/{origin_pid}/stat"));
    // Let the window's last packets arrive before closing the books on loss.
    tokio::time::sleep(Duration::from_millis(500)).await;
    rx.recording.store(false, Ordering::Relaxed);
    let live = rx.live_video.load(Ordering::Relaxed) as f64;
    let rss_during = rss_kib(pid);
    stop.store(true, Ordering::Relaxed);
    let _ = sender.await;

    let mut lat = std::mem::take(&mut *rx.latencies.lock().unwrap());
    lat.sort_unstable();
    let mut js = joins.lock().unwrap().clone();
    js.sort_by(|a, b| a.total_cmp(b));
    let received = (r1 - r0) as f64;
    let expected = ((s1 - s0) * n as u64) as f64;
    let _ = sent;
    let cpu = c1 - c0;
    let ppcs = if cpu > 0.0 { received / cpu } else { f64::NAN };

    // Tear down through the API, as clients would.
    // In cluster mode Locations are absolute.
    let at = |base: &str, loc: &str| {
        if loc.starts_with("http") {
            loc.to_owned()
        } else {
            format!("{base}{loc}")
        }
    };
    for (peer, loc) in &viewers {
        let _ = http.delete(at(&play.base, loc)).send().await;
        let _ = peer.pc.close().await;
    }
    let _ = http.delete(at(&server.base, &pub_loc)).send().await;
    let _ = publisher.pc.close().await;

    Point {
        viewers: n,
        forwarded_pps: received / el,
        server_cpu: cpu / el,
        origin_cpu: (o1 - o0) / el,
        packets_per_cpu_second: ppcs,
        floor_ratio: ppcs / floor_pps,
        load_floor_ratio: f64::NAN,
        rss_per_viewer_kib: rss_during.saturating_sub(rss_before) as f64 / n as f64,
        loss: if expected > 0.0 {
            (1.0 - live / expected).max(0.0)
        } else {
            f64::NAN
        },
        latency_ms_p50: percentile(&lat, 0.5),
        latency_ms_p99: percentile(&lat, 0.99),
        latency_ms_p999: percentile(&lat, 0.999),
        forward_ms_p50: bucket_quantile(&fwd0, &fwd1, 0.5),
        forward_ms_p99: bucket_quantile(&fwd0, &fwd1, 0.99),
        join_ms_median: js.get(js.len() / 2).copied().unwrap_or(f64::NAN),
    }
}

fn fit(points: &[Point]) -> (f64, f64) {
    let n = points.len() as f64;
    let (sx, sy) = points.iter().fold((0.0, 0.0), |a, p| {
        (a.0 + p.viewers as f64, a.1 + p.server_cpu)
    });
    let (mx, my) = (sx / n, sy / n);
    let (mut num, mut den) = (0.0, 0.0);
    for p in points {
        num += (p.viewers as f64 - mx) * (p.server_cpu - my);
        den += (p.viewers as f64 - mx).powi(2);
    }
    let b = if den > 0.0 { num / den } else { f64::NAN };
    (my - b * mx, b)
}

fn plot(points: &[Point], floor_pps: f64, path: &str) {
    use plotters::prelude::*;
    let root = SVGBackend::new(path, (800, 480)).into_drawing_area();
    let _ = root.fill(&WHITE);
    let xmax = points.iter().map(|p| p.viewers).max().unwrap_or(10) as f64 * 1.1;
    let ymax = points
        .iter()
        .map(|p| p.packets_per_cpu_second)
        .fold(floor_pps, f64::max)
        * 1.15;
    let Ok(mut chart) = ChartBuilder::on(&root)
        .caption(
            "wisp: forwarded packets per server CPU-second",
            ("sans-serif", 20),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0f64..xmax, 0f64..ymax)
    else {
        return;
    };
    let _ = chart
        .configure_mesh()
        .x_desc("viewers (N)")
        .y_desc("packets / CPU-second")
        .draw();
    let pts: Vec<(f64, f64)> = points
        .iter()
        .map(|p| (p.viewers as f64, p.packets_per_cpu_second))
        .collect();
    if let Ok(s) = chart.draw_series(LineSeries::new(pts.clone(), &BLUE)) {
        s.label("wisp")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLUE));
    }
    let _ = chart.draw_series(
        pts.iter()
            .map(|&(x, y)| Circle::new((x, y), 4, BLUE.filled())),
    );
    if let Ok(s) = chart.draw_series(LineSeries::new(
        vec![(0.0, floor_pps), (xmax, floor_pps)],
        &RED,
    )) {
        s.label("floor: UDP + SRTP-GCM + sendto")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED));
    }
    let _ = chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw();
    let _ = root.present();
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let viewers: Vec<usize> = arg("--viewers")
        .unwrap_or_else(|| "10,25,50,100".into())
        .split(',')
        .filter_map(|v| v.trim().parse().ok())
        .collect();
    let seconds: f64 = arg("--seconds").and_then(|s| s.parse().ok()).unwrap_or(5.0);
    OBS_LIKE.store(args.iter().any(|a| a == "--obs"), Ordering::Relaxed);
    PACED.store(args.iter().any(|a| a == "--paced"), Ordering::Relaxed);
    // `--slots K`: each viewer offers K audio + K video m-lines, as the conference page does
    // (8 + 8); with one publisher only the first pair shows anything.
    let slots = arg("--slots").and_then(|s| s.parse().ok()).unwrap_or(1);
    SLOTS.store(slots, Ordering::Relaxed);
    let max_n = viewers.iter().copied().max().unwrap_or(10);

    // The median of three: one run of the floor moves with the machine as much as wisp does.
    // At least 200k sends per run, so one run spans more than a moment of the machine.
    let floor_viewers = max_n.min(100);
    let floor_packets = (200_000 / floor_viewers).max(2000);
    let mut floors: Vec<f64> = (0..3)
        .map(|_| floor::saturated(floor_viewers, floor_packets))
        .collect();
    floors.sort_by(|a, b| a.total_cmp(b));
    let floor_pps = floors[1];
    eprintln!(
        "floor: {floor_pps:.0} packets per CPU-second (UDP in, SRTP AES-128-GCM, sendto; median of {:.0} / {:.0} / {:.0})",
        floors[0], floors[1], floors[2]
    );

    // `--wisp-args "--ice-udp-port 46000"`: run the sweep against another server setup.
    let extra: Vec<String> = arg("--wisp-args")
        .map(|a| a.split_whitespace().map(str::to_owned).collect())
        .unwrap_or_default();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    if args.iter().any(|a| a == "--cluster") {
        rt.block_on(cluster_sweep(&viewers, seconds, floor_pps));
        return;
    }
    let mut server = start_server(&extra);
    let mut points = Vec::new();
    for &n in &viewers {
        eprintln!("running N = {n}");
        let mut p = rt.block_on(run_point(
            &server,
            &server,
            &format!("bench{n}"),
            n,
            seconds,
            floor_pps,
        ));
        // The median of three, as the saturated floor's.
        let mut loads: Vec<f64> = (0..3)
            .map(|_| floor::at_load(n, seconds, PACED.load(Ordering::Relaxed)))
            .collect();
        loads.sort_by(|a, b| a.total_cmp(b));
        eprintln!(
            "floor at N = {n}'s load: {:.0} packets per CPU-second (median of {:.0} / {:.0} / {:.0})",
            loads[1], loads[0], loads[1], loads[2]
        );
        p.load_floor_ratio = p.packets_per_cpu_second / loads[1];
        points.push(p);
    }
    let _ = Command::new("kill")
        .args(["-INT", &server.child.id().to_string()])
        .status();
    let _ = server.child.wait();

    let (a, b) = fit(&points);
    let mut md = String::from(
        "| viewers | forwarded pkt/s | server CPU (cores) | pkt per CPU-s | × floor | × floor at load | RSS/viewer KiB | loss | latency p50/p99/p99.9 ms | wisp's share p50/p99 ≤ ms | join ms (median) |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for p in &points {
        md.push_str(&format!(
            "| {} | {:.0} | {:.2} | {:.0} | {:.2} | {:.2} | {:.0} | {:.2}% | {:.2} / {:.2} / {:.2} | {} / {} | {:.0} |\n",
            p.viewers,
            p.forwarded_pps,
            p.server_cpu,
            p.packets_per_cpu_second,
            p.floor_ratio,
            p.load_floor_ratio,
            p.rss_per_viewer_kib,
            p.loss * 100.0,
            p.latency_ms_p50,
            p.latency_ms_p99,
            p.latency_ms_p999,
            p.forward_ms_p50,
            p.forward_ms_p99,
            p.join_ms_median
        ));
    }
    md.push_str(&format!(
        "\nFloor (same run, saturated): {floor_pps:.0} packets per CPU-second; the floor at load is measured at each point's own load (benches/e2e/floor.rs). Fit: server CPU = {a:.4} + {b:.5}·N cores (b = CPU per viewer).\n"
    ));
    println!("{md}");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join("e2e-bench.md"), &md);
    let json = serde_json::json!({
        "floor_packets_per_cpu_second": floor_pps,
        "fit": {"a": a, "b": b},
        "points": points,
    });
    let _ = std::fs::write(
        dir.join("e2e-bench.json"),
        serde_json::to_string_pretty(&json).unwrap(),
    );
    plot(
        &points,
        floor_pps,
        dir.join("e2e-bench.svg")
            .to_str()
            .unwrap_or("e2e-bench.svg"),
    );
    eprintln!("wrote target/e2e-bench.md, .json, .svg");
}

/// Kills the bench's `redis-server` when the sweep ends or panics.
struct RedisChild(Child);

impl Drop for RedisChild {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `--cluster`: one node against the cascade, alternated per N (see the header).
async fn cluster_sweep(viewers: &[usize], seconds: f64, floor_pps: f64) {
    let redis_port = 16479;
    let mut redis = Command::new("redis-server")
        .args(["--bind", "127.0.0.1", "--port", &redis_port.to_string()])
        .args(["--save", "", "--appendonly", "no"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server (Debian package redis-server)");
    {
        use std::io::BufRead;
        let out = std::io::BufReader::new(redis.stdout.take().unwrap());
        let mut lines = out.lines();
        let up = lines
            .by_ref()
            .map_while(Result::ok)
            .any(|l| l.contains("Ready to accept connections"));
        assert!(up, "redis-server did not start on port {redis_port}");
        std::thread::spawn(move || lines.for_each(drop));
    }
    let _redis = RedisChild(redis);
    let url = format!("redis://127.0.0.1:{redis_port}");
    let node = |id: &str, port: u16| {
        vec![
            "--cluster-redis".to_owned(),
            url.clone(),
            "--node-url".to_owned(),
            format!("http://127.0.0.1:{port}"),
            "--node-id".to_owned(),
            id.to_owned(),
        ]
    };
    let origin = start_server_at(&node("origin", 18380), 18380, "46000-46999");
    let edge = start_server_at(&node("edge", 18381), 18381, "47000-47999");
    let mut con = redis::Client::open(url.as_str())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let mut md = String::from(
        "| viewers | one node: CPU (cores) | per viewer | cascade: edge CPU | edge per viewer | origin CPU | forwarded pkt/s (one node / edge) | loss (one node / edge) |\n|---:|---:|---:|---:|---:|---:|---:|---:|\n",
    );
    for &n in viewers {
        // Both rooms are pinned to the origin (a new room would go to the least-loaded node).
        for room in [format!("one{n}"), format!("cascade{n}")] {
            let _: () = redis::cmd("SET")
                .arg(format!("wisp:room:{room}"))
                .arg("origin")
                .arg("PX")
                .arg(60_000)
                .query_async(&mut con)
                .await
                .unwrap();
        }
        eprintln!("running N = {n} on one node");
        let single = run_point(&origin, &origin, &format!("one{n}"), n, seconds, floor_pps).await;
        eprintln!("running N = {n} on the edge");
        let cascade = run_point(
            &origin,
            &edge,
            &format!("cascade{n}"),
            n,
            seconds,
            floor_pps,
        )
        .await;
        md.push_str(&format!(
            "| {n} | {:.3} | {:.4} | {:.3} | {:.4} | {:.3} | {:.0} / {:.0} | {:.2}% / {:.2}% |\n",
            single.server_cpu,
            single.server_cpu / n as f64,
            cascade.server_cpu,
            cascade.server_cpu / n as f64,
            cascade.origin_cpu,
            single.forwarded_pps,
            cascade.forwarded_pps,
            single.loss * 100.0,
            cascade.loss * 100.0,
        ));
    }
    md.push_str("\nOne node: the publisher and the viewers on the origin. Cascade: the publisher on the origin, the viewers on the edge, which pulls the room over one upstream session. Origin CPU in the cascade rows is what the origin spends on its publisher and that one upstream.\n");
    println!("{md}");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target");
    let _ = std::fs::create_dir_all(&dir);
    let _ = std::fs::write(dir.join("cluster-bench.md"), &md);
    for s in [&origin, &edge] {
        let _ = Command::new("kill")
            .args(["-INT", &s.child.id().to_string()])
            .status();
    }
    eprintln!("wrote target/cluster-bench.md");
}
