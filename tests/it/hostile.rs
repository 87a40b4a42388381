//! Hostile media: datagrams no WebRTC peer sends (truncated RTP, wrong versions, header
//! extensions longer than the packet, CSRC counts with no CSRCs, STUN without its cookie,
//! bytes outside every RFC 7983 range), sent straight at the ICE ports of a publisher leg and
//! a viewer leg while media flows. Each is dropped and counted
//! (`wisp_dropped_packets_total{reason="bad_packet"}`), and the viewer gets every frame sent
//! meanwhile.

use std::collections::BTreeSet;
use std::time::Duration;

use crate::harness::*;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use wisp::http::paths;

/// One of each kind of bad datagram.
fn bad_datagrams() -> Vec<Vec<u8>> {
    let rtp = |first: u8, rest: &[u8]| {
        let mut d = vec![first, 96, 0x12, 0x34, 0, 0, 0, 1, 0xde, 0xad, 0xbe, 0xef];
        d.extend_from_slice(rest);
        d
    };
    vec![
        rtp(0x80, &[])[..7].to_vec(),                     // truncated RTP header
        rtp(0x40, &[1, 2, 3, 4]),                         // version 1
        rtp(0x00, &[1, 2, 3, 4]),                         // version 0
        rtp(0xc0, &[1, 2, 3, 4]),                         // version 3
        rtp(0x8f, &[0; 8]),                               // 15 CSRCs counted, 2 present
        rtp(0x90, &[0xbe, 0xde, 0xff, 0xff, 1, 2, 3, 4]), // a 256 KB extension announced
        vec![0x81, 201, 0],                               // RTCP cut short
        vec![0, 1, 0, 0, 1, 2, 3, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], // STUN, no cookie
        vec![0x45; 100],                                  // TURN ChannelData on an ICE port
        vec![0xff; 1200],                                 // nothing at all
        vec![],                                           // empty
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_datagrams_are_dropped_counted_and_hurt_no_one() {
    let server = start().await;
    let publisher = Publisher::join(&server, "hostile").await;
    let mut viewer = Viewer::join(&server, &paths::whep("hostile")).await;
    // The viewer is live before the attack.
    publisher.send_video(0, true).await;
    within("the first frame", async {
        while !matches!(viewer.packets.recv().await, Some((RtpCodecKind::Video, _))) {}
    })
    .await;
    let before = sample(
        &scrape(&server).await,
        "wisp_dropped_packets_total{reason=\"bad_packet\"}",
    )
    .unwrap_or(0.0);

    let attacker = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let targets = [
        first_candidate(&publisher.answer),
        first_candidate(&viewer.answer),
    ];
    let bad = bad_datagrams();
    let rounds = 20;
    let mut seen = BTreeSet::new();
    let mut ticker = tokio::time::interval(Duration::from_millis(10));
    for n in 1..=200u16 {
        ticker.tick().await;
        publisher.send_video(n, false).await;
        if n <= rounds {
            for t in targets {
                for d in &bad {
                    attacker.send_to(d, t).await.unwrap();
                }
            }
        }
        while let Ok((kind, p)) = viewer.packets.try_recv() {
            if kind == RtpCodecKind::Video {
                seen.insert(u16::from_be_bytes([p.payload[2], p.payload[3]]));
            }
        }
    }
    within("the last frames", async {
        while !(1..=195).all(|n| seen.contains(&n)) {
            if let Some((RtpCodecKind::Video, p)) = viewer.packets.recv().await {
                seen.insert(u16::from_be_bytes([p.payload[2], p.payload[3]]));
            }
        }
    })
    .await;

    let sent = f64::from(rounds) * 2.0 * bad.len() as f64;
    let metrics = scrape(&server).await;
    let counted = sample(
        &metrics,
        "wisp_dropped_packets_total{reason=\"bad_packet\"}",
    )
    .unwrap()
        - before;
    // The empty datagram may never reach the gate (the kernel hands nothing to read).
    let floor = sent - f64::from(rounds) * 2.0;
    assert!(
        counted >= floor,
        "{counted} of {sent} bad datagrams counted\n{metrics}"
    );
    // Both legs still up: the server never saw a reason to end them.
    let r = http()
        .get(url(&server, &paths::api_room("hostile")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}
