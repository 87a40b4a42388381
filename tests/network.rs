//! Ports and addresses: single-port mode carries many sessions on one UDP port without
//! cross-talk, and announces that port.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use webrtc::media_stream::track_local::TrackLocal;
use wisp::http::paths;

fn single_port_config() -> wisp::Config {
    let mut c = test_config();
    // A port outside the per-session range, which must stay unused.
    c.ice_udp_port = Some(c.ice_ports.0 - 1);
    c
}

/// The distinct ports of an answer's candidates.
fn candidate_ports(sdp: &str) -> Vec<u16> {
    let mut ports: Vec<u16> = sdp
        .lines()
        .filter(|l| l.starts_with("a=candidate:"))
        .filter_map(|l| l.split_whitespace().nth(5)?.parse().ok())
        .collect();
    ports.dedup();
    ports
}

/// Room `i`'s video payload: the room index and the frame number, so any packet from another
/// room is recognised.
fn tagged(room: u16, n: u16) -> Bytes {
    let mut p = video_payload(n, n.is_multiple_of(10)).to_vec();
    p[4..6].copy_from_slice(&room.to_be_bytes());
    Bytes::from(p)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_sessions_share_one_udp_port_without_cross_talk() {
    const ROOMS: u16 = 25; // 25 publishers + 25 viewers = 50 sessions on one port
    let config = single_port_config();
    let port = config.ice_udp_port.unwrap();
    let server = start_with(config).await;
    let mut pairs = Vec::new();
    for r in 0..ROOMS {
        let room = format!("sp{r}");
        let publisher = Publisher::join(&server, &room).await;
        assert_eq!(candidate_ports(&publisher.answer), vec![port]);
        let viewer = Viewer::join(&server, &paths::whep(&room)).await;
        assert_eq!(candidate_ports(&viewer.answer), vec![port]);
        pairs.push((publisher, viewer));
    }
    assert_eq!(
        server.sfu.engine().muxes[0].connections(),
        2 * ROOMS as usize
    );
    assert_eq!(
        server.sfu.engine().ports.in_use(),
        0,
        "no per-session ports"
    );

    let mut got = vec![0usize; ROOMS as usize];
    let mut ticker = tokio::time::interval(Duration::from_millis(10));
    let mut n: u16 = 0;
    while got.iter().any(|g| *g < 20) {
        assert!(n < 1500, "some viewers got too little media: {got:?}");
        ticker.tick().await;
        for (r, (publisher, _)) in pairs.iter().enumerate() {
            let pkt = rtc::rtp::packet::Packet {
                header: rtc::rtp::header::Header {
                    version: 2,
                    marker: true,
                    payload_type: 96,
                    sequence_number: n,
                    timestamp: n as u32 * 3000,
                    ssrc: publisher.video_ssrc,
                    ..Default::default()
                },
                payload: tagged(r as u16, n),
            };
            let _ = publisher.video.write_rtp(pkt).await;
        }
        n += 1;
        for (r, (_, viewer)) in pairs.iter_mut().enumerate() {
            while let Ok((kind, p)) = viewer.packets.try_recv() {
                if kind != RtpCodecKind::Video {
                    continue;
                }
                let from = u16::from_be_bytes([p.payload[4], p.payload[5]]);
                assert_eq!(from as usize, r, "viewer {r} received room {from}'s video");
                got[r] += 1;
            }
        }
    }
    drop(pairs);
}
