//! A hostile publisher, authenticated (its packets pass SRTP): RTP under a thousand made-up
//! SSRCs, RTCP storms (sender reports, BYEs, SDES and NACK lists naming every sequence number
//! for streams that do not exist). Its room-mate's viewer sees no change in loss or latency.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crate::harness::*;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use webrtc::media_stream::track_local::TrackLocal;
use wisp::http::paths;

/// One compound of RTCP noise: sender reports and BYEs from made-up sources, and NACKs
/// that between them name all 65,536 sequence numbers of a stream wisp never sent.
fn storm(round: u16) -> Vec<Box<dyn rtc::rtcp::Packet>> {
    use rtc::rtcp::goodbye::Goodbye;
    use rtc::rtcp::sender_report::SenderReport;
    use rtc::rtcp::transport_feedbacks::transport_layer_nack::{NackPair, TransportLayerNack};
    let mut pkts: Vec<Box<dyn rtc::rtcp::Packet>> = vec![];
    for k in 0..4u32 {
        pkts.push(Box::new(SenderReport {
            ssrc: 0x6100_0000 + u32::from(round) * 4 + k,
            ntp_time: u64::from(round) << 32,
            rtp_time: u32::from(round) * 3000,
            packet_count: u32::MAX,
            octet_count: u32::MAX,
            ..Default::default()
        }));
    }
    pkts.push(Box::new(TransportLayerNack {
        sender_ssrc: 1,
        media_ssrc: 0x6200_0000 + u32::from(round % 7),
        // 64 pairs of 17 numbers each: 64 rounds cover the whole sequence space.
        nacks: (0..64u16)
            .map(|i| NackPair {
                packet_id: (round % 64) * 1024 + i * 16,
                lost_packets: 0xffff,
            })
            .collect(),
    }));
    pkts.push(Box::new(Goodbye {
        sources: vec![0x6300_0000 + u32::from(round)],
        reason: "made up".into(),
    }));
    pkts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_scattering_ssrcs_and_rtcp_hurts_no_room_mate() {
    const FRAMES: u16 = 300;
    let server = start().await;
    let good = Publisher::join(&server, "mob").await;
    let mut viewer = Viewer::join(&server, &paths::whep("mob")).await;
    let hostile = Publisher::join(&server, "mob").await;
    good.send_video(0, true).await;
    within("the first frame", async {
        while !matches!(viewer.packets.recv().await, Some((RtpCodecKind::Video, _))) {}
    })
    .await;
    let before = scrape(&server).await;

    // Frames 1-300 from the good publisher at 100/s; the hostile one attacks during 101-200.
    let mut sent = HashMap::new();
    let mut got = HashMap::new();
    let send = async {
        let mut ticker = tokio::time::interval(Duration::from_millis(10));
        for n in 1..=FRAMES {
            ticker.tick().await;
            sent.insert(n, Instant::now());
            good.send_video(n, false).await;
            if n == 101 {
                hostile.peer.scatter_ssrcs(1000);
            }
            if (101..=200).contains(&n) {
                // 30 packets under made-up SSRCs every 10 ms (3,000 in all: each of the
                // thousand SSRCs three times), and a compound of RTCP noise.
                for k in 0..30 {
                    hostile.send_video(n * 30 + k, k == 0).await;
                }
                let _ = hostile.video.write_rtcp(storm(n)).await;
            }
            if n == 200 {
                hostile.peer.scatter_ssrcs(0);
            }
        }
    };
    let watch = async {
        while !(1..=FRAMES - 5).all(|k| got.contains_key(&k)) {
            match viewer.packets.recv().await {
                Some((RtpCodecKind::Video, p)) => {
                    let n = u16::from_be_bytes([p.payload[2], p.payload[3]]);
                    got.entry(n).or_insert_with(Instant::now);
                }
                Some(_) => {}
                None => break,
            }
        }
    };
    within("the frames", async { tokio::join!(send, watch) }).await;
    let after = scrape(&server).await;

    let lost: Vec<u16> = (1..=FRAMES - 5).filter(|k| !got.contains_key(k)).collect();
    assert!(
        lost.is_empty(),
        "the room-mate's viewer lost frames {lost:?}"
    );
    let p99 = |range: std::ops::RangeInclusive<u16>| {
        let mut v: Vec<Duration> = range
            .filter_map(|n| Some(got.get(&n)?.duration_since(sent[&n])))
            .collect();
        v.sort();
        v[(v.len() * 99 / 100).min(v.len() - 1)]
    };
    let delta =
        |name: &str| sample(&after, name).unwrap_or(0.0) - sample(&before, name).unwrap_or(0.0);
    eprintln!(
        "hostile publisher: room-mate's viewer lost 0 of {} frames; p99 latency {:?} before, \
         {:?} during, {:?} after the attack; RTP and RTCP dropped as unknown SSRC: {}; bad packets: {}",
        FRAMES - 5,
        p99(1..=100),
        p99(101..=200),
        p99(201..=FRAMES - 5),
        delta("wisp_dropped_packets_total{reason=\"unknown_ssrc\"}"),
        delta("wisp_dropped_packets_total{reason=\"bad_packet\"}"),
    );
    let unknown = delta("wisp_dropped_packets_total{reason=\"unknown_ssrc\"}");
    assert!(
        unknown >= 2_850.0,
        "{unknown} of 3,000 packets under made-up SSRCs counted"
    );
    // The room still answers.
    let r = http()
        .get(url(&server, &paths::api_room("mob")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// A video-only publisher whose offer declares no SSRC (webrtc-rs then binds whatever SSRC
/// arrives to its one media section) sends under a thousand SSRCs, each several times, in turn.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_section_publisher_cycling_undeclared_ssrcs_hurts_no_room_mate() {
    const FRAMES: u16 = 200;
    let server = start().await;
    let good = Publisher::join(&server, "cycle").await;
    let mut viewer = Viewer::join(&server, &paths::whep("cycle")).await;

    let peer = Peer::new().await;
    let video = wisp::rtc::client::local_track(RtpCodecKind::Video, 0x5b00_0001);
    peer.send_only(&video).await;
    let offer: String = peer
        .offer()
        .await
        .lines()
        .filter(|l| !l.starts_with("a=ssrc"))
        .map(|l| format!("{l}\r\n"))
        .collect();
    let r = post_sdp(&url(&server, &paths::whip("cycle")), &offer).await;
    assert_eq!(r.status, 201, "{}", r.body);
    peer.accept(r.body).await;
    peer.connected().await;

    good.send_video(0, true).await;
    within("the first frame", async {
        while !matches!(viewer.packets.recv().await, Some((RtpCodecKind::Video, _))) {}
    })
    .await;
    peer.scatter_ssrcs(1000);
    let mut got = std::collections::BTreeSet::new();
    let send = async {
        let mut ticker = tokio::time::interval(Duration::from_millis(10));
        let mut seq = 0u16;
        for n in 1..=FRAMES {
            ticker.tick().await;
            good.send_video(n, false).await;
            // 30 packets every 10 ms: 6,000 in all, each of the thousand SSRCs six times.
            for _ in 0..30 {
                seq = seq.wrapping_add(1);
                let pkt = rtc::rtp::packet::Packet {
                    header: rtc::rtp::header::Header {
                        version: 2,
                        marker: true,
                        payload_type: 96,
                        sequence_number: seq,
                        timestamp: u32::from(seq) * 3000,
                        ssrc: 0x5b00_0001,
                        ..Default::default()
                    },
                    payload: video_payload(seq, seq % 30 == 1),
                };
                let _ = video.write_rtp(pkt).await;
            }
        }
    };
    let watch = async {
        while !(1..=FRAMES - 5).all(|k| got.contains(&k)) {
            match viewer.packets.recv().await {
                Some((RtpCodecKind::Video, p)) => {
                    got.insert(u16::from_be_bytes([p.payload[2], p.payload[3]]));
                }
                Some(_) => {}
                None => break,
            }
        }
    };
    let before = scrape(&server).await;
    within("the frames", async { tokio::join!(send, watch) }).await;
    let after = scrape(&server).await;
    let name = "wisp_dropped_packets_total{reason=\"unknown_ssrc\"}";
    let unknown = sample(&after, name).unwrap() - sample(&before, name).unwrap();
    // The first made-up SSRC is bound (the single-section shortcut), its six packets kept;
    // every later SSRC is refused, as the section already has one.
    assert!(
        unknown >= 5_700.0,
        "{unknown} of 6,000 packets under made-up SSRCs counted"
    );
    eprintln!("single-section publisher: {unknown} of 6,000 packets dropped as unknown SSRC");
    let r = http()
        .get(url(&server, &paths::api_room("cycle")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let room: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    // The hostile publisher has one track, not a thousand (the good one sent only video).
    let tracks: Vec<usize> = room["participants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["tracks"].as_array().unwrap().len())
        .collect();
    assert_eq!(tracks, [1, 1], "{room}");
}
