//! Loss recovery with real loss: a relay on loopback drops every 25th media datagram (4 %)
//! between publisher and server, and between server and viewer. NACKs must bring every frame
//! back: the ingest leg by wisp NACKing the publisher, the egress leg by wisp answering the
//! viewer's NACKs from its retransmission buffer (as RFC 4588 RTX, which the viewer negotiates).

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::harness::*;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use wisp::http::paths;

/// Sends frames 0..FRAMES at 100/s and returns the frame numbers the viewer saw.
async fn run(publisher: &Publisher, viewer: &mut Viewer, frames: u16) -> BTreeSet<u16> {
    let mut seen = BTreeSet::new();
    let mut ticker = tokio::time::interval(Duration::from_millis(10));
    for n in 0..frames {
        ticker.tick().await;
        // One keyframe at the start only: recovery has to come from retransmission.
        publisher.send_video(n, n == 0).await;
        while let Ok((kind, p)) = viewer.packets.try_recv() {
            if kind == RtpCodecKind::Video {
                seen.insert(u16::from_be_bytes([p.payload[2], p.payload[3]]));
            }
        }
    }
    // Let the last retransmissions arrive: wait for the tail frames, bounded.
    let want = frames - 5;
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while !(0..want).all(|n| seen.contains(&n)) {
            match viewer.packets.recv().await {
                Some((RtpCodecKind::Video, p)) => {
                    seen.insert(u16::from_be_bytes([p.payload[2], p.payload[3]]));
                }
                Some(_) => {}
                None => break,
            }
        }
    })
    .await;
    seen
}

fn missing(seen: &BTreeSet<u16>, upto: u16) -> Vec<u16> {
    (0..upto).filter(|n| !seen.contains(n)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_loss_is_recovered_by_nacking_the_publisher() {
    let server = start().await;
    let publisher = Publisher::join_lossy(&server, "lossy-in", 25).await;
    let mut viewer = Viewer::join(&server, &paths::whep("lossy-in")).await;
    let seen = run(&publisher, &mut viewer, 400).await;
    let dropped = publisher
        .relay
        .as_ref()
        .unwrap()
        .dropped
        .load(Ordering::Relaxed);
    assert!(dropped >= 10, "the relay dropped {dropped} packets");
    assert_eq!(
        missing(&seen, 395),
        Vec::<u16>::new(),
        "{dropped} dropped on ingest"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn egress_loss_is_recovered_from_the_retransmission_buffer() {
    let server = start().await;
    let publisher = Publisher::join(&server, "lossy-out").await;
    let mut viewer = Viewer::join_lossy(&server, &paths::whep("lossy-out"), 25).await;
    let seen = run(&publisher, &mut viewer, 400).await;
    let dropped = viewer
        .relay
        .as_ref()
        .unwrap()
        .dropped
        .load(Ordering::Relaxed);
    assert!(dropped >= 10, "the relay dropped {dropped} packets");
    assert_eq!(
        missing(&seen, 395),
        Vec::<u16>::new(),
        "{dropped} dropped on egress"
    );
    // The viewer negotiated rtx, so the repairs came as RFC 4588 retransmissions on the RTX
    // SSRC the answer pairs with the video SSRC.
    let fid: Vec<u32> = viewer
        .answer
        .lines()
        .find_map(|l| l.trim_end().strip_prefix("a=ssrc-group:FID "))
        .expect("the answer pairs an RTX SSRC with the video SSRC")
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect();
    assert_eq!(fid.len(), 2, "{fid:?}");
    let ssrcs = viewer
        .relay
        .as_ref()
        .unwrap()
        .down_ssrcs
        .lock()
        .unwrap()
        .clone();
    assert!(
        ssrcs.contains(&fid[1]),
        "no datagram on the RTX SSRC {} (seen {ssrcs:?})",
        fid[1]
    );
    // The operator sees the repair: on the leg (admin API) and in the metrics.
    let room: serde_json::Value = serde_json::from_str(
        &http()
            .get(url(&server, &paths::api_room("lossy-out")))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    )
    .unwrap();
    let video = room["viewers"][0]["slots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == "video")
        .unwrap()
        .clone();
    assert!(video["stats"]["nacks"].as_u64() >= Some(1), "{video}");
    assert!(
        video["stats"]["retransmitted"].as_u64() >= Some(1),
        "{video}"
    );
    let metrics = scrape(&server).await;
    assert!(
        sample(&metrics, "wisp_nacks_received_total") >= Some(1.0),
        "{metrics}"
    );
    assert!(
        sample(&metrics, "wisp_retransmissions_total") >= Some(1.0),
        "{metrics}"
    );
}
