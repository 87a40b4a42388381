//! Churn soak (bounded): cycles of publish / subscribe / leave with a seeded random mix of
//! DELETE, abandoned sessions (an offer POSTed, never connected), ICE restarts (PATCH with
//! new credentials, If-Match: *) and killed clients (dropped without a word). Afterwards, once
//! the server has ended what it must end by itself, the process's RSS, open file descriptors
//! and live tokio tasks are back near the baseline, and no ICE port is still leased.
//! The baseline is taken after a warm-up churn of the same mix and size as the one measured
//! (capped at 100), and both RSS readings after `malloc_trim`: glibc keeps freed memory in its
//! arenas, so untrimmed RSS follows the allocator's high-water, not what is live.
//! `WISP_SOAK_CYCLES` sets the cycles (50 in the suite; the README quotes 1,000).

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::harness::*;
use wisp::http::paths;

const OFFER: &str = include_str!("../../conformance/fixtures/whip-offer.sdp");

unsafe extern "C" {
    /// glibc: returns freed heap memory to the system.
    fn malloc_trim(pad: usize) -> i32;
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap()
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

#[derive(Debug, Clone, Copy)]
struct Usage {
    rss_kib: u64,
    fds: usize,
    tasks: usize,
}

/// What the process holds, after handing freed heap back to the system: glibc keeps freed
/// memory in its arenas (after 400 cycles untrimmed RSS was 46.8 -> 50.7 MiB while trimmed it
/// was 34.9 MiB), which would hide a real leak or fake one.
fn usage() -> Usage {
    // SAFETY: glibc's malloc_trim only releases memory that is already free.
    unsafe { malloc_trim(0) };
    Usage {
        rss_kib: rss_kib(),
        fds: open_fds(),
        tasks: tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks(),
    }
}

/// One cycle: a publisher and a viewer in a fresh room, ended the way `how` says.
async fn cycle(server: &wisp::Server, n: usize, how: u8) {
    let room = format!("soak{n}");
    match how {
        // Abandoned: an offer POSTed, and nothing after it.
        0 => {
            let r = post_sdp(&url(server, &paths::whip(&room)), OFFER).await;
            assert_eq!(r.status, 201, "{}", r.body);
        }
        _ => {
            let publisher = Publisher::join(server, &room).await;
            let mut viewer = Viewer::join(server, &paths::whep(&room)).await;
            for k in 0..3 {
                publisher.send_video(k, k == 0).await;
            }
            within("a frame", async {
                while viewer.packets.recv().await.is_none() {}
            })
            .await;
            match how {
                // ICE restart (the server answers with new credentials), then DELETE.
                1 => {
                    let r = http()
                        .patch(url(server, &viewer.session))
                        .header("content-type", "application/trickle-ice-sdpfrag")
                        .header("if-match", "*")
                        .body("a=ice-ufrag:rst1\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n")
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.status(), 200);
                    for s in [&viewer.session, &publisher.session] {
                        http().delete(url(server, s)).send().await.unwrap();
                    }
                }
                // Killed: both clients vanish without a DELETE.
                2 => {}
                // A clean leave.
                _ => {
                    for s in [&viewer.session, &publisher.session] {
                        let r = http().delete(url(server, s)).send().await.unwrap();
                        assert_eq!(r.status(), 200);
                    }
                }
            }
            let _ = publisher.peer.pc.close().await;
            let _ = viewer.peer.pc.close().await;
        }
    }
}

/// Waits (bounded) until the server holds no session and no ICE port, and the tasks that
/// end on their own timers (a killed publisher's reconnect grace) have ended.
async fn drained(server: &wisp::Server) {
    tokio::time::timeout(Duration::from_secs(120), async {
        loop {
            if server.sfu.session_count() == 0
                && server.sfu.engine().ports.in_use() == 0
                && tokio::runtime::Handle::current()
                    .metrics()
                    .num_alive_tasks()
                    <= 4
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .unwrap_or_else(|_| {
        panic!(
            "{} sessions, {} ICE ports and {} tasks still there 120 s after the churn",
            server.sfu.session_count(),
            server.sfu.engine().ports.in_use(),
            tokio::runtime::Handle::current()
                .metrics()
                .num_alive_tasks()
        )
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn churn_leaves_no_sessions_ports_tasks_or_memory_behind() {
    let cycles: usize = std::env::var("WISP_SOAK_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(50);
    let mut c = test_config();
    c.ice_ports = (c.ice_ports.0, c.ice_ports.0 + 99);
    let server = start_with(c).await;
    // Warm-up: a churn of the same mix brings the allocator to its high-water.
    let mut rng = StdRng::seed_from_u64(0x50a4);
    let warm = cycles.min(100);
    for n in 0..warm {
        cycle(&server, n, rng.random_range(0..4u8)).await;
    }
    drained(&server).await;
    let base = usage();
    let mut kinds = [0usize; 4];
    for n in 0..cycles {
        let how = rng.random_range(0..4u8);
        kinds[usize::from(how)] += 1;
        cycle(&server, warm + n, how).await;
    }
    drained(&server).await;
    let after = usage();
    eprintln!(
        "soak: {cycles} cycles (abandoned {}, ICE restart {}, killed {}, DELETE {}): \
         RSS {} -> {} KiB, fds {} -> {}, tokio tasks {} -> {}, ICE ports leased 0",
        kinds[0],
        kinds[1],
        kinds[2],
        kinds[3],
        base.rss_kib,
        after.rss_kib,
        base.fds,
        after.fds,
        base.tasks,
        after.tasks
    );
    let within5 = |b: f64, a: f64, slack: f64| a <= b * 1.05 + slack;
    assert!(
        within5(base.rss_kib as f64, after.rss_kib as f64, 0.0),
        "RSS {} -> {} KiB",
        base.rss_kib,
        after.rss_kib
    );
    // A handful of descriptors and tasks may be the harness's own.
    assert!(
        within5(base.fds as f64, after.fds as f64, 4.0),
        "{base:?} -> {after:?}"
    );
    assert!(
        within5(base.tasks as f64, after.tasks as f64, 4.0),
        "{base:?} -> {after:?}"
    );
}
