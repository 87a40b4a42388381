//! Ports and addresses: single-port mode carries many sessions on one UDP port without
//! cross-talk, and announces that port.

use std::time::Duration;

use crate::harness::*;
use bytes::Bytes;
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

/// Sends video until the viewer has 20 packets of it (bounded).
async fn media_flows(publisher: &Publisher, viewer: &mut Viewer) {
    let mut video = 0;
    let mut ticker = tokio::time::interval(Duration::from_millis(5));
    let mut n: u16 = 0;
    while video < 20 {
        assert!(n < 3000, "the viewer received too little media");
        ticker.tick().await;
        publisher.send_video(n, n.is_multiple_of(10)).await;
        n += 1;
        while let Ok((kind, _)) = viewer.packets.try_recv() {
            video += (kind == RtpCodecKind::Video) as usize;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ipv6_host_candidates_carry_media() {
    let mut c = test_config();
    c.public_ips = vec!["::1".parse().unwrap()];
    c.allow_remote = vec!["::1/128".parse().unwrap()];
    let server = start_with(c).await;
    let v6 = || wisp::rtc::client::ClientIce {
        bind: Some("[::1]:0".into()),
        ..Default::default()
    };
    let publisher = Publisher::join_with(&server, "six", v6()).await;
    assert!(
        publisher
            .answer
            .lines()
            .filter(|l| l.starts_with("a=candidate:"))
            .all(|l| l.contains(" ::1 ")),
        "{}",
        publisher.answer
    );
    let mut viewer = Viewer::join_with(&server, &paths::whep("six"), v6()).await;
    media_flows(&publisher, &mut viewer).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ice_lite_answers_and_carries_media() {
    let mut c = test_config();
    c.ice_lite = true;
    let server = start_with(c).await;
    let publisher = Publisher::join(&server, "lite").await;
    assert!(
        publisher.answer.contains("a=ice-lite"),
        "{}",
        publisher.answer
    );
    let mut viewer = Viewer::join(&server, &paths::whep("lite")).await;
    media_flows(&publisher, &mut viewer).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_only_clients_reach_the_single_port_through_turn() {
    let mut c = single_port_config();
    let relay = c.ice_ports.0 - 100;
    c.turn = Some(wisp::turn::TurnConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        tls_listen: None,
        host: "127.0.0.1".into(),
        secret: b"s".to_vec(),
        relay_ports: (relay, relay + 50),
        relay_bind: "127.0.0.1".parse().unwrap(),
        relay_public: "127.0.0.1".parse().unwrap(),
        credential_ttl: Duration::from_secs(600),
        quota: 10,
    });
    let server = start_with(c).await;
    let links = |room: &str| {
        let c = server.turn.as_ref().unwrap().links(room);
        wisp::rtc::client::ClientIce::from_links(c.iter().map(String::as_str), true)
    };
    let publisher = Publisher::join_with(&server, "spr", links("spr")).await;
    let mut viewer = Viewer::join_with(&server, &paths::whep("spr"), links("spr")).await;
    media_flows(&publisher, &mut viewer).await;
    let local = viewer.peer.selected_local_type().await;
    assert_eq!(
        local,
        Some(webrtc::peer_connection::RTCIceCandidateType::Relay)
    );
}

/// The answer's ICE-TCP candidates: exactly one passive candidate per bound address, on the
/// shared port, and never an active one (wisp does not dial clients).
fn assert_tcp_candidates(answer: &str, tcp_port: u16) {
    let tcp: Vec<&str> = answer
        .lines()
        .filter(|l| l.starts_with("a=candidate:") && l.to_ascii_lowercase().contains(" tcp "))
        .collect();
    let passive = format!(" {tcp_port} typ host tcptype passive");
    assert!(
        !tcp.is_empty() && tcp.iter().all(|l| l.contains(&passive)),
        "the answer offers the shared TCP port, passive only: {answer}"
    );
}

/// ICE-TCP (RFC 6544): a viewer whose network blocks UDP connects over TCP to the one shared
/// TCP port, with no TURN, and gets the publisher's media.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tcp_only_viewer_connects_over_ice_tcp() {
    let mut c = test_config();
    let tcp_port = c.ice_ports.0 - 2;
    c.ice_tcp_port = Some(tcp_port);
    let server = start_with(c).await;
    let publisher = Publisher::join(&server, "tcp").await;
    let tcp_only = wisp::rtc::client::ClientIce {
        tcp_only: true,
        ..Default::default()
    };
    let mut viewer = Viewer::join_with(&server, &paths::whep("tcp"), tcp_only).await;
    assert_tcp_candidates(&viewer.answer, tcp_port);
    media_flows(&publisher, &mut viewer).await;
}

/// ICE-TCP for publishers too, on the same shared port, in both UDP modes (port range and
/// single port): a publisher that can only reach TCP connects, and a UDP viewer gets its media.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tcp_only_publisher_connects_over_ice_tcp() {
    for single_port in [false, true] {
        let mut c = test_config();
        let tcp_port = c.ice_ports.0 - 2;
        c.ice_tcp_port = Some(tcp_port);
        if single_port {
            c.ice_udp_port = Some(c.ice_ports.0 - 3);
        }
        let server = start_with(c).await;
        let tcp_only = wisp::rtc::client::ClientIce {
            tcp_only: true,
            ..Default::default()
        };
        let publisher = Publisher::join_with(&server, "tcp", tcp_only).await;
        assert_tcp_candidates(&publisher.answer, tcp_port);
        let mut viewer = Viewer::join(&server, &paths::whep("tcp")).await;
        media_flows(&publisher, &mut viewer).await;
        server.shutdown().await.unwrap();
    }
}

/// A viewer's ICE restart (RFC 9725 §4.3.2 on wisp's own viewer leg, which answers it with
/// new credentials and no renegotiation): the client offers new credentials in a PATCH, takes
/// the server's new ones from the 200's sdpfrag, and its media goes on over the new ICE
/// session. Twice, so the second restart starts from the first one's credentials.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewers_ice_restart_keeps_its_media() {
    use rtc::peer_connection::configuration::RTCOfferOptions;
    use webrtc::peer_connection::RTCSessionDescription;
    let server = start().await;
    let publisher = Publisher::join(&server, "restart").await;
    let mut viewer = Viewer::join(&server, &paths::whep("restart")).await;
    let mut n: u16 = 0;
    let mut flows = async |viewer: &mut Viewer| {
        let mut video = 0;
        let mut ticker = tokio::time::interval(Duration::from_millis(5));
        let end = n + 3000;
        while video < 20 {
            assert!(n < end, "the viewer received too little media");
            ticker.tick().await;
            publisher.send_video(n, n.is_multiple_of(10)).await;
            n += 1;
            while let Ok((kind, _)) = viewer.packets.try_recv() {
                video += (kind == RtpCodecKind::Video) as usize;
            }
        }
    };
    flows(&mut viewer).await;
    let attr = |sdp: &str, name: &str| {
        sdp.lines()
            .find_map(|l| l.trim_end().strip_prefix(name).map(str::to_string))
            .unwrap_or_else(|| panic!("no {name} in {sdp}"))
    };
    let mut server_ufrag = attr(&viewer.answer, "a=ice-ufrag:");
    let mut etag = viewer.etag.clone();
    for _ in 0..2 {
        let pc = &viewer.peer.pc;
        let offer = pc
            .create_offer(Some(RTCOfferOptions { ice_restart: true }))
            .await
            .unwrap();
        pc.set_local_description(offer.clone()).await.unwrap();
        let frag = format!(
            "a=ice-ufrag:{}\r\na=ice-pwd:{}\r\n",
            attr(&offer.sdp, "a=ice-ufrag:"),
            attr(&offer.sdp, "a=ice-pwd:")
        );
        let r = http()
            .patch(url(&server, &viewer.session))
            .header("content-type", "application/trickle-ice-sdpfrag")
            .header("if-match", &etag)
            .body(frag)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        etag = r.headers()["etag"].to_str().unwrap().to_string();
        let body = r.text().await.unwrap();
        let (ufrag, pwd) = (attr(&body, "a=ice-ufrag:"), attr(&body, "a=ice-pwd:"));
        assert_ne!(ufrag, server_ufrag, "a restart gets new server credentials");
        assert!(body.contains("a=candidate:"), "{body}");
        server_ufrag = ufrag.clone();
        // The answer in effect with the server's new credentials and candidates.
        let mut answer = String::new();
        let previous = pc.remote_description().await.unwrap().sdp;
        for line in previous.split_inclusive('\n') {
            let t = line.trim_end();
            if t.starts_with("a=ice-ufrag:") {
                answer.push_str(&format!("a=ice-ufrag:{ufrag}\r\n"));
            } else if t.starts_with("a=ice-pwd:") {
                answer.push_str(&format!("a=ice-pwd:{pwd}\r\n"));
            } else if !t.starts_with("a=candidate:") && !t.starts_with("a=end-of-candidates") {
                answer.push_str(line);
            }
            if t.starts_with("a=mid:") {
                for c in body.lines().filter(|l| l.starts_with("a=candidate:")) {
                    answer.push_str(c);
                    answer.push_str("\r\n");
                }
            }
        }
        pc.set_remote_description(RTCSessionDescription::answer(answer).unwrap())
            .await
            .unwrap();
        // Packets already in flight on the old pair are not the new session's.
        while viewer.packets.try_recv().is_ok() {}
        flows(&mut viewer).await;
    }
}
