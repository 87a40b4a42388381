//! The floors the e2e bench sets wisp against: the least work a relay of the same packets does.
//! Both relay through one thread that SRTP-protects each packet per viewer (AES-128-GCM, what
//! wisp negotiates first) and `sendto`s it. The relay thread's CPU time is read as wisp's is
//! (the kernel's run time of the task), from /proc/thread-self/schedstat in nanoseconds: the
//! 10 ms ticks of /proc/…/stat are too coarse for a few viewers' load (3 ticks at N = 10).
//!
//! - [`saturated`]: packets back to back, as fast as the relay takes them, its viewers read by
//!   a thread that polls. The relay never sleeps and no reader is ever woken: a throughput
//!   ceiling, the reference of the "× floor".
//! - [`at_load`]: the bench's own load (the publisher's framed or paced video and 50 audio
//!   packets a second, for as long as a point runs), its viewers read by an async runtime
//!   parked in epoll between datagrams, as the bench's webrtc-rs viewers are. The relay sleeps
//!   between frames and pays what any relay at this load pays: its own wake per datagram and,
//!   inside `sendto`, its viewers' wake-ups. "× floor at load" is how close wisp comes to the
//!   least work this load needs.

use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rtc::shared::marshal::Marshal;

use super::{AUDIO_PPS, PACKET, cpu_seconds, video_schedule};

/// This thread's CPU time in seconds: the run time the scheduler keeps (ns), or the clock
/// ticks of /proc/thread-self/stat where the kernel has no schedstat.
fn thread_cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .map_or_else(
            || cpu_seconds("/proc/thread-self/stat"),
            |ns| ns as f64 / 1e9,
        )
}

fn srtp_contexts(viewers: usize) -> Vec<rtc::srtp::context::Context> {
    let crypto = rtc::crypto::default_provider().expect("crypto");
    (0..viewers)
        .map(|i| {
            rtc::srtp::context::Context::new(
                &[i as u8; 16],
                &[7u8; 12],
                rtc::srtp::protection_profile::ProtectionProfile::AeadAes128Gcm,
                None,
                None,
                crypto.crypto(),
            )
            .expect("srtp context")
        })
        .collect()
}

/// The relay's sockets: where the publisher sends, where the relay sends from, and a socket
/// per viewer.
struct Sockets {
    input: UdpSocket,
    in_addr: SocketAddr,
    out: UdpSocket,
    sinks: Vec<UdpSocket>,
    addrs: Vec<SocketAddr>,
}

impl Sockets {
    fn bind(viewers: usize) -> Sockets {
        let any = || UdpSocket::bind("127.0.0.1:0").unwrap();
        let input = any();
        let sinks: Vec<UdpSocket> = (0..viewers).map(|_| any()).collect();
        Sockets {
            in_addr: input.local_addr().unwrap(),
            input,
            out: any(),
            addrs: sinks.iter().map(|s| s.local_addr().unwrap()).collect(),
            sinks,
        }
    }
}

/// The relay's work for one packet: protect it for each viewer and send it. Returns how many
/// were sent.
fn relay(
    ctxs: &mut [rtc::srtp::context::Context],
    out: &UdpSocket,
    addrs: &[SocketAddr],
    pkt: &[u8],
) -> u64 {
    let mut sent = 0;
    for (ctx, addr) in ctxs.iter_mut().zip(addrs) {
        if let Ok(enc) = ctx.encrypt_rtp(pkt) {
            let _ = out.send_to(&enc, addr);
            sent += 1;
        }
    }
    sent
}

fn rtp(payload_type: u8, seq: u64, timestamp: u32, ssrc: u32, payload: &[u8]) -> Vec<u8> {
    rtc::rtp::packet::Packet {
        header: rtc::rtp::header::Header {
            version: 2,
            payload_type,
            sequence_number: seq as u16,
            timestamp,
            ssrc,
            ..Default::default()
        },
        payload: Bytes::copy_from_slice(payload),
    }
    .marshal()
    .unwrap()
    .to_vec()
}

/// The saturated floor: `packets` packets back to back to `viewers` viewers. Returns
/// protected-and-sent packets per CPU-second of the relay thread.
pub fn saturated(viewers: usize, packets: usize) -> f64 {
    let net = Sockets::bind(viewers);
    let (input, in_addr, out, sinks, addrs) =
        (net.input, net.in_addr, net.out, net.sinks, net.addrs);
    // The viewers read what they get, as wisp's do: a receive buffer left to fill up makes
    // the kernel drop at delivery, a cheaper path than delivering (the floor came out up to
    // 2x higher and swung with it).
    let readers = Viewers::start(sinks, Viewers::mode(Mode::Polling));
    let mut ctxs = srtp_contexts(viewers);
    let feeder = std::thread::spawn(move || {
        let s = UdpSocket::bind("127.0.0.1:0").unwrap();
        let payload = vec![0x5a; PACKET];
        for seq in 0..packets {
            let _ = s.send_to(&rtp(96, seq as u64, 0, 1, &payload), in_addr);
            if seq % 64 == 63 {
                std::thread::sleep(Duration::from_micros(200)); // keep the input buffer from overflowing
            }
        }
    });
    input
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut buf = [0u8; 2048];
    let c0 = thread_cpu_seconds();
    let mut relayed = 0u64;
    while let Ok(len) = input.recv(&mut buf) {
        relayed += relay(&mut ctxs, &out, &addrs, &buf[..len]);
        if relayed >= (packets * viewers) as u64 {
            break;
        }
    }
    let c1 = thread_cpu_seconds();
    let _ = feeder.join();
    readers.stop();
    relayed as f64 / (c1 - c0).max(0.01)
}

/// The floor at the bench's load: `viewers` viewers of the bench publisher's traffic (framed,
/// or `paced`) for `seconds`. Returns protected-and-sent packets per CPU-second of the relay
/// thread.
pub fn at_load(viewers: usize, seconds: f64, paced: bool) -> f64 {
    let net = Sockets::bind(viewers);
    let (input, in_addr, out, sinks, addrs) =
        (net.input, net.in_addr, net.out, net.sinks, net.addrs);
    let readers = Viewers::start(sinks, Viewers::mode(Mode::Parked));
    let mut ctxs = srtp_contexts(viewers);
    // The publisher, on the bench's schedule (a 2 ms tick, as its sender task).
    let fed = Arc::new(AtomicBool::new(false));
    let feeder = {
        let fed = fed.clone();
        std::thread::spawn(move || {
            let s = UdpSocket::bind("127.0.0.1:0").unwrap();
            let (fps, per_frame) = video_schedule(paced);
            let (video, audio) = (vec![0x5a; PACKET], vec![0xfc; 80]);
            let (mut nv, mut nf, mut na) = (0u64, 0u64, 0u64);
            let start = Instant::now();
            while start.elapsed().as_secs_f64() < seconds {
                std::thread::sleep(Duration::from_millis(2));
                let t = start.elapsed().as_secs_f64();
                while (nf as f64) <= t * fps {
                    let ts = (nf as f64 * 90_000.0 / fps) as u32;
                    let end = ((nf + 1) as f64 * per_frame).ceil() as u64;
                    while nv < end {
                        let _ = s.send_to(&rtp(96, nv, ts, 1, &video), in_addr);
                        nv += 1;
                    }
                    nf += 1;
                }
                while (na as f64) < t * AUDIO_PPS {
                    let _ = s.send_to(&rtp(111, na, (na * 960) as u32, 2, &audio), in_addr);
                    na += 1;
                }
            }
            fed.store(true, Ordering::Release);
        })
    };
    // Bounded: the feeder stops after `seconds`, then the next read times out.
    input
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut buf = [0u8; 2048];
    let c0 = thread_cpu_seconds();
    let mut relayed = 0u64;
    loop {
        match input.recv(&mut buf) {
            Ok(len) => {
                relayed += relay(&mut ctxs, &out, &addrs, &buf[..len]);
            }
            Err(_) if fed.load(Ordering::Acquire) => break,
            Err(_) => {}
        }
    }
    let c1 = thread_cpu_seconds();
    let _ = feeder.join();
    readers.stop();
    relayed as f64 / (c1 - c0).max(0.01)
}

/// How a floor's viewers read.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// A thread that polls every socket and naps 50 µs when all are empty: no reader is ever
    /// parked, so the relay's `sendto` never wakes one.
    Polling,
    /// A task per socket on a current-thread runtime, parked in epoll when idle (as the
    /// bench's webrtc-rs viewers are): a datagram to an idle viewer wakes it, inside `sendto`.
    Parked,
}

/// A floor's viewers, reading until stopped: the polling thread's stop flag, or the parked
/// runtime's stop signal.
enum Viewers {
    Polling(Arc<AtomicBool>, std::thread::JoinHandle<()>),
    Parked(
        tokio::sync::oneshot::Sender<()>,
        std::thread::JoinHandle<()>,
    ),
}

impl Viewers {
    /// `default`, or what `FLOOR_READERS` (`polling` or `parked`) asks for: the same floor
    /// with the other readers, to tell the relay's own cost from its viewers' wake-ups.
    fn mode(default: Mode) -> Mode {
        match std::env::var("FLOOR_READERS").as_deref() {
            Ok("polling") => Mode::Polling,
            Ok("parked") => Mode::Parked,
            _ => default,
        }
    }

    fn start(sinks: Vec<UdpSocket>, mode: Mode) -> Viewers {
        for s in &sinks {
            s.set_nonblocking(true).unwrap();
        }
        if mode == Mode::Polling {
            let stop = Arc::new(AtomicBool::new(false));
            let flag = stop.clone();
            let thread = std::thread::spawn(move || {
                let mut b = [0u8; 2048];
                while !flag.load(Ordering::Relaxed) {
                    let mut got = false;
                    for s in &sinks {
                        while s.recv(&mut b).is_ok() {
                            got = true;
                        }
                    }
                    if !got {
                        std::thread::sleep(Duration::from_micros(50));
                    }
                }
            });
            return Viewers::Polling(stop, thread);
        }
        let (done, done_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let tasks: Vec<_> = sinks
                    .into_iter()
                    .map(|s| {
                        let s = tokio::net::UdpSocket::from_std(s).unwrap();
                        tokio::spawn(async move {
                            let mut b = [0u8; 2048];
                            while s.recv(&mut b).await.is_ok() {}
                        })
                    })
                    .collect();
                let _ = done_rx.await;
                for t in tasks {
                    t.abort();
                }
            });
        });
        Viewers::Parked(done, thread)
    }

    fn stop(self) {
        let thread = match self {
            Viewers::Polling(stop, thread) => {
                stop.store(true, Ordering::Relaxed);
                thread
            }
            Viewers::Parked(done, thread) => {
                let _ = done.send(());
                thread
            }
        };
        let _ = thread.join();
    }
}
