//! End-to-end media through wisp with webrtc-rs peers on loopback.

use std::collections::HashMap;

use crate::harness::*;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use webrtc::media_stream::track_local::TrackLocal;
use wisp::http::paths;
use wisp::sfu::{SessionId, SessionKind, ViewerState};

/// Most packets a publisher loop sends before the test gives up (bounds every loop).
const MAX_PACKETS: u16 = 3000;

fn viewer_state(
    server: &wisp::Server,
    location: &str,
) -> tokio::sync::watch::Receiver<ViewerState> {
    let id = SessionId::parse(location.trim_start_matches(paths::SESSION)).unwrap();
    let s = server.sfu.session(id).expect("viewer session exists");
    match &s.kind {
        SessionKind::Viewer(v) => v.state.subscribe(),
        _ => panic!("not a viewer"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_then_two_viewers_receive_identical_payloads() {
    let server = start().await;
    let publisher = Publisher::join(&server, "r1").await;
    let mut room_viewer = Viewer::join(&server, &paths::whep("r1")).await;
    let mut named_viewer = Viewer::join(
        &server,
        &paths::whep_participant("r1", &publisher.participant),
    )
    .await;

    // Pace media until both viewers have 40 video and 20 audio packets. A keyframe every
    // 10 frames lets a viewer start without waiting for a PLI round trip.
    let mut got: Vec<HashMap<RtpCodecKind, Vec<rtc::rtp::packet::Packet>>> =
        vec![HashMap::new(), HashMap::new()];
    let mut ticker = tokio::time::interval(std::time::Duration::from_millis(5));
    let mut n: u16 = 0;
    let enough = |g: &HashMap<RtpCodecKind, Vec<_>>| {
        g.get(&RtpCodecKind::Video).map_or(0, Vec::len) >= 40
            && g.get(&RtpCodecKind::Audio).map_or(0, Vec::len) >= 20
    };
    while !(enough(&got[0]) && enough(&got[1])) {
        assert!(n < MAX_PACKETS, "viewers did not receive enough media");
        ticker.tick().await;
        publisher.send_video(n, n.is_multiple_of(10)).await;
        publisher.send_audio(n).await;
        n += 1;
        for (i, v) in [&mut room_viewer, &mut named_viewer]
            .into_iter()
            .enumerate()
        {
            while let Ok((kind, p)) = v.packets.try_recv() {
                got[i].entry(kind).or_default().push(p);
            }
        }
    }

    for g in &got {
        let video = &g[&RtpCodecKind::Video];
        // The first packet a viewer sees is a keyframe.
        assert_eq!(
            video[0].payload[1] & 0x01,
            0,
            "first video packet is a keyframe"
        );
        let ssrc = video[0].header.ssrc;
        assert_ne!(ssrc, publisher.video_ssrc, "SSRC is rewritten per viewer");
        for w in video.windows(2) {
            assert_eq!(w[1].header.ssrc, ssrc);
            assert_eq!(
                w[1].header.sequence_number,
                w[0].header.sequence_number.wrapping_add(1),
                "no gaps the publisher did not make"
            );
        }
        for p in video {
            // Payload byte-identical to what frame n carried; seq/ts mapped consistently.
            let n = u16::from_be_bytes([p.payload[2], p.payload[3]]);
            assert_eq!(p.payload, video_payload(n, p.payload[1] & 1 == 0));
            assert_eq!(
                p.header.sequence_number.wrapping_sub(n),
                video[0]
                    .header
                    .sequence_number
                    .wrapping_sub(u16::from_be_bytes([
                        video[0].payload[2],
                        video[0].payload[3]
                    ]))
            );
            assert_eq!(
                p.header.timestamp.wrapping_sub(n as u32 * 3000),
                video[0].header.timestamp.wrapping_sub(
                    u16::from_be_bytes([video[0].payload[2], video[0].payload[3]]) as u32 * 3000
                )
            );
        }
        let audio = &g[&RtpCodecKind::Audio];
        for w in audio.windows(2) {
            assert_eq!(w[1].header.ssrc, audio[0].header.ssrc);
            assert_eq!(
                w[1].header.sequence_number,
                w[0].header.sequence_number.wrapping_add(1)
            );
        }
    }
    server.shutdown().await.unwrap();
}

/// Padding-only probes are not forwarded, and leave no hole: a hole no NACK can fill stalls
/// jitter buffers (aiortc's waits for 512 packets past one).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_padding_leaves_no_sequence_gap() {
    let server = start().await;
    let publisher = Publisher::join(&server, "pad").await;
    let mut viewer = Viewer::join(&server, &paths::whep("pad")).await;
    let mut video: Vec<rtc::rtp::packet::Packet> = Vec::new();
    let mut ticker = tokio::time::interval(std::time::Duration::from_millis(5));
    let (mut n, mut seq, mut pads) = (0u16, 0u16, 0usize);
    while video.len() < 60 {
        assert!(n < MAX_PACKETS, "the viewer did not receive enough video");
        ticker.tick().await;
        publisher.send_video_seq(seq, n, n.is_multiple_of(10)).await;
        seq = seq.wrapping_add(1);
        if n % 4 == 3 {
            // Three probes after every fourth frame.
            for _ in 0..3 {
                publisher.send_video_padding(seq, n).await;
                seq = seq.wrapping_add(1);
                pads += 1;
            }
        }
        n += 1;
        while let Ok((kind, p)) = viewer.packets.try_recv() {
            if kind == RtpCodecKind::Video {
                video.push(p);
            }
        }
    }
    assert!(pads >= 40, "{pads} padding packets sent");
    assert!(
        video.iter().all(|p| !p.payload.is_empty()),
        "no padding forwarded"
    );
    for w in video.windows(2) {
        let (a, b) = (&w[0], &w[1]);
        let frame = |p: &rtc::rtp::packet::Packet| u16::from_be_bytes([p.payload[2], p.payload[3]]);
        assert_eq!(frame(b), frame(a) + 1, "every frame arrives");
        assert_eq!(
            b.header.sequence_number,
            a.header.sequence_number.wrapping_add(1),
            "frames {} and {} are consecutive on the wire",
            frame(a),
            frame(b)
        );
    }
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_viewer_triggers_a_keyframe_request_when_nothing_is_cached() {
    let server = start().await;
    let publisher = Publisher::join(&server, "r2").await;
    // The server learns the track from its first packet; no keyframe yet, so nothing cached.
    publisher.send_video(0, false).await;
    let mut viewer = Viewer::join(&server, &paths::whep("r2")).await;
    let pli = tokio::spawn({
        let video = publisher.video.clone();
        async move {
            loop {
                match webrtc::media_stream::track_local::TrackLocal::poll(video.as_ref()).await {
                    Some(webrtc::media_stream::track_local::TrackLocalEvent::OnRtcpPacket(_)) => {
                        return true;
                    }
                    Some(_) => continue,
                    None => return false,
                }
            }
        }
    });
    let mut ticker = tokio::time::interval(std::time::Duration::from_millis(5));
    let mut n = 1u16;
    while !pli.is_finished() {
        assert!(n < MAX_PACKETS, "no keyframe request reached the publisher");
        ticker.tick().await;
        publisher.send_video(n, false).await;
        n += 1;
    }
    assert!(pli.await.unwrap(), "publisher saw a PLI/FIR");
    // Delta frames were gated; the keyframe sent in answer is the first thing the viewer sees.
    publisher.send_video(n, true).await;
    let first = loop {
        let (kind, p) = within("first video packet", viewer.packets.recv())
            .await
            .unwrap();
        if kind == RtpCodecKind::Video {
            break p;
        }
    };
    assert_eq!(u16::from_be_bytes([first.payload[2], first.payload[3]]), n);
    server.shutdown().await.unwrap();
}

/// Keyframes the server counted on the video of the room's first publisher.
async fn video_keyframes_in(server: &wisp::Server, room: &str) -> u64 {
    video_stat(server, room, |s| &s.keyframes_in).await
}

/// One counter of the video of the room's first publisher.
async fn video_stat(
    server: &wisp::Server,
    room: &str,
    which: fn(&wisp::media::fanout::FanoutStats) -> &std::sync::atomic::AtomicU64,
) -> u64 {
    let room = wisp::sfu::RoomId::parse(room).unwrap();
    let Some(room) = server.sfu.room(&room) else {
        return 0;
    };
    let tracks = room.publisher_tracks().await;
    tracks
        .first()
        .map(|(_, tracks)| {
            tracks
                .iter()
                .filter(|t| t.kind == wisp::signal::MediaKind::Video)
                .map(|t| which(&t.stats).load(std::sync::atomic::Ordering::Relaxed))
                .sum::<u64>()
        })
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_viewer_starts_from_the_keyframe_cache_without_a_new_keyframe() {
    let server = start().await;
    let publisher = Publisher::join(&server, "r5").await;
    // One keyframe, then deltas; the publisher never answers PLI (like OBS). Keyframes are
    // sent only until the server has one (the very first writes may precede the library's
    // track binding), which the server's own counters tell.
    let keyframes_seen = || video_keyframes_in(&server, "r5");
    let mut ticker = tokio::time::interval(std::time::Duration::from_millis(5));
    let mut n = 0u16;
    let mut last_key = 0u16;
    while n < 20 || keyframes_seen().await == 0 {
        assert!(n < MAX_PACKETS, "the server never received a keyframe");
        ticker.tick().await;
        let key = keyframes_seen().await == 0;
        if key {
            last_key = n;
        }
        publisher.send_video(n, key).await;
        n += 1;
    }
    let mut viewer = Viewer::join(&server, &paths::whep("r5")).await;
    let mut got = Vec::new();
    while got.len() < 40 {
        assert!(n < MAX_PACKETS, "the viewer did not start from the cache");
        ticker.tick().await;
        publisher.send_video(n, false).await;
        n += 1;
        while let Ok((kind, p)) = viewer.packets.try_recv() {
            if kind == RtpCodecKind::Video {
                got.push(p);
            }
        }
    }
    let frame = |p: &rtc::rtp::packet::Packet| u16::from_be_bytes([p.payload[2], p.payload[3]]);
    assert!(
        frame(&got[0]) <= last_key && got[0].payload[1] & 1 == 0,
        "the first packet is a cached keyframe, sent before the viewer joined"
    );
    for w in got.windows(2) {
        assert_eq!(
            frame(&w[1]),
            frame(&w[0]) + 1,
            "cached group then live, nothing lost or doubled"
        );
        assert_eq!(
            w[1].header.sequence_number,
            w[0].header.sequence_number.wrapping_add(1)
        );
    }
    server.shutdown().await.unwrap();
}

/// Issue 16: a join's replay of the keyframe cache is paced. Its first 64 KB leave at once
/// (the keyframe), the rest at 10 Mbit/s, so ~560 KB cached takes at least ~0.4 s to arrive
/// (no machine makes the pacer faster; a slow one only spreads it more), in order, whole.
/// Before the pacer it arrived within milliseconds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_join_burst_is_paced_after_its_first_64_kb() {
    let server = start().await;
    let publisher = Publisher::join(&server, "r-pace").await;
    // A keyframe (again until the server has one), then deltas: ~500 packets cached.
    let mut ticker = tokio::time::interval(std::time::Duration::from_millis(1));
    let (mut n, mut last_key) = (0u16, 0u16);
    while n < 500 || video_keyframes_in(&server, "r-pace").await == 0 {
        assert!(n < MAX_PACKETS, "the server never received a keyframe");
        ticker.tick().await;
        let key = video_keyframes_in(&server, "r-pace").await == 0;
        if key {
            last_key = n;
        }
        assert!(publisher.send_video_sized(n, key, 1100).await);
        n += 1;
    }
    within("every packet at the server", async {
        while video_stat(&server, "r-pace", |s| &s.packets_in).await < u64::from(n) {
            ticker.tick().await;
        }
    })
    .await;
    let cached = usize::from(n - last_key);
    let mut viewer = Viewer::join(&server, &paths::whep("r-pace")).await;
    let mut got = Vec::new();
    while got.len() < cached {
        let (kind, p) = within("the cached group", viewer.packets.recv())
            .await
            .unwrap();
        if kind == RtpCodecKind::Video {
            got.push((p, std::time::Instant::now()));
        }
    }
    let frame = |p: &rtc::rtp::packet::Packet| u16::from_be_bytes([p.payload[2], p.payload[3]]);
    let frames: Vec<u16> = got.iter().map(|(p, _)| frame(p)).collect();
    assert_eq!(
        frames,
        (last_key..n).collect::<Vec<_>>(),
        "the group, in order"
    );
    // The pacer's floor on the spread (its 40 bytes of overhead per packet, as it counts):
    let paced = (cached * (1100 + 40)) as f64 - 64.0 * 1024.0;
    let least = paced / (10e6 / 8.0);
    let spread = (got[cached - 1].1 - got[0].1).as_secs_f64();
    assert!(
        spread >= 0.8 * least,
        "{cached} packets arrived over {spread:.3} s, paced they take >= {least:.3} s"
    );
    server.shutdown().await.unwrap();
}

/// The RTP packets of a capture in `tests/fixtures/rtp/` (see `tests/interop/capture_rtp.py`).
fn rtp_fixture(bytes: &[u8]) -> Vec<rtc::rtp::packet::Packet> {
    use rtc::shared::marshal::Unmarshal;
    let mut out = Vec::new();
    let mut rest = bytes;
    while let [a, b, tail @ ..] = rest {
        let n = u16::from_be_bytes([*a, *b]) as usize;
        let mut raw = &tail[..n];
        out.push(rtc::rtp::packet::Packet::unmarshal(&mut raw).unwrap());
        rest = &tail[n..];
    }
    out
}

/// Issue 20: x264 with sliced threads writes each keyframe picture as an AUD, then SPS, PPS
/// and one IDR slice four times over (config-interval=-1 repeats the parameter sets), each its
/// own packet. A publisher that ignores PLI sends one group of pictures; a viewer that joins
/// halfway must get the whole keyframe picture, from its first packet, before anything else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_viewer_gets_the_whole_sliced_h264_keyframe_picture_from_the_cache() {
    let server = start().await;
    let publisher = Publisher::join_h264(&server, "r-h264").await;
    let pt = publisher
        .answer
        .lines()
        .find_map(|l| {
            let rest = l.strip_prefix("a=rtpmap:")?;
            let (pt, codec) = rest.split_once(' ')?;
            codec.starts_with("H264/").then(|| pt.parse::<u8>().ok())?
        })
        .expect("the answer accepts H.264");
    let capture = rtp_fixture(include_bytes!(
        "../fixtures/rtp/x264-high-sliced-single-nal.rtp"
    ));
    // The first group of pictures: up to the next picture that carries a keyframe.
    let key_ts = capture[0].header.timestamp;
    let next_key = capture
        .iter()
        .find(|p| {
            p.header.timestamp != key_ts && wisp::media::keyframe::is_keyframe("h264", &p.payload)
        })
        .map(|p| p.header.timestamp)
        .expect("a second keyframe in the capture");
    let gop = capture
        .iter()
        .take_while(|p| p.header.timestamp != next_key)
        .collect::<Vec<_>>();
    let half = gop.len() / 2;
    let keyframe_picture = gop.iter().filter(|p| p.header.timestamp == key_ts).count();
    assert!(
        keyframe_picture > 10 && half > keyframe_picture,
        "capture shape"
    );

    let keyframes_seen = || video_keyframes_in(&server, "r-h264");
    // Sends the capture's packet `i` of repetition `round`: numbers continue across rounds.
    let mut seq = 0u16;
    let send = |seq: &mut u16, round: u32, i: usize| {
        let mut p = gop[i].clone();
        p.header.ssrc = publisher.video_ssrc;
        p.header.payload_type = pt;
        p.header.sequence_number = *seq;
        p.header.timestamp = p.header.timestamp.wrapping_add(round * 90_000);
        *seq = seq.wrapping_add(1);
        let video = publisher.video.clone();
        async move { video.write_rtp(p).await.is_ok() }
    };
    // Repeat the group until the server has counted a keyframe (the first writes may precede
    // the library's track binding), then once more, up to halfway.
    let mut ticker = tokio::time::interval(std::time::Duration::from_millis(2));
    let mut round = 0;
    while keyframes_seen().await == 0 {
        assert!(round < 20, "the server never received a keyframe");
        for i in 0..gop.len() {
            ticker.tick().await;
            send(&mut seq, round, i).await;
        }
        round += 1;
    }
    for i in 0..half {
        ticker.tick().await;
        assert!(send(&mut seq, round, i).await);
    }
    let mut viewer = Viewer::join(&server, &paths::whep("r-h264")).await;
    for i in half..gop.len() {
        ticker.tick().await;
        send(&mut seq, round, i).await;
    }
    let mut got = Vec::new();
    while got.len() < gop.len() {
        let (kind, p) = within("the group on the viewer", viewer.packets.recv())
            .await
            .unwrap();
        if kind == RtpCodecKind::Video {
            got.push(p);
        }
    }
    for (k, (sent, seen)) in gop.iter().zip(&got).enumerate() {
        assert_eq!(
            sent.payload, seen.payload,
            "packet {k} of the group: the viewer starts at the keyframe picture's first \
             packet (its AUD) and gets every slice, then the rest in order"
        );
    }
    for w in got.windows(2) {
        assert_eq!(
            w[1].header.sequence_number,
            w[0].header.sequence_number.wrapping_add(1)
        );
    }
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_the_publisher_leaves_viewers_waiting_for_the_next() {
    let server = start().await;
    let publisher = Publisher::join(&server, "r3").await;
    publisher.send_video(0, true).await;
    let viewer = Viewer::join(&server, &paths::whep("r3")).await;
    let mut state = viewer_state(&server, &viewer.session);
    within(
        "viewer watching",
        state.wait_for(|s| matches!(s, ViewerState::Watching(_))),
    )
    .await
    .unwrap();

    let r = http()
        .delete(url(&server, &publisher.session))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    within(
        "viewer waiting",
        state.wait_for(|s| *s == ViewerState::Waiting),
    )
    .await
    .unwrap();
    let r = http()
        .delete(url(&server, &publisher.session))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    // The viewer session stays and picks up the next publisher.
    let next = Publisher::join(&server, "r3").await;
    next.send_video(0, true).await;
    within(
        "viewer watching the next publisher",
        state.wait_for(|s| {
            *s == ViewerState::Watching(wisp::sfu::ParticipantId::parse(&next.participant).unwrap())
        }),
    )
    .await
    .unwrap();
    assert_eq!(server.sfu.session_count(), 2);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewer_without_the_publishers_codec_gets_a_counter_offer_and_plays() {
    let server = start().await;
    let publisher = Publisher::join(&server, "r4").await; // sends VP8
    publisher.send_video(0, true).await;

    // A viewer that can decode VP8 but offers only H.264.
    let peer = Peer::h264_viewer().await;
    let offer = peer.offer().await;
    assert!(!offer.contains("VP8"), "the test offer must lack VP8");
    let r = post_sdp(&url(&server, &paths::whep("r4")), &offer).await;
    assert_eq!(r.status, 406, "{}", r.body);
    let ct = r.headers["content-type"].to_str().unwrap();
    assert!(
        ct.starts_with("application/sdp") && ct.contains("valid-until=\""),
        "{ct}"
    );
    assert!(r.body.contains("VP8") && r.body.contains("a=sendonly"));
    // Told in words: a header for HTTP clients, the same sentence as the SDP's session
    // information for clients that show only the body.
    let reason = r.headers["x-wisp-reason"].to_str().unwrap();
    assert_eq!(
        reason,
        "The publisher sends video/VP8 (mid 0), which this offer does not list; \
         answer this counter-offer by PATCH to receive it."
    );
    assert!(
        r.body.contains(&format!("\r\ni={reason}\r\n")),
        "{}",
        r.body
    );
    let session = r.location.unwrap();

    // The player answers the counter-offer on a fresh connection (its first one is left in
    // have-local-offer).
    peer.pc.close().await.unwrap();
    let mut peer = Peer::new().await;
    peer.pc
        .set_remote_description(
            webrtc::peer_connection::RTCSessionDescription::offer(r.body).unwrap(),
        )
        .await
        .unwrap();
    let answer = peer.pc.create_answer(None).await.unwrap();
    peer.pc.set_local_description(answer).await.unwrap();
    let answer = peer.pc.local_description().await.unwrap().sdp;
    let patch = |body: String, ct: &'static str| {
        http()
            .patch(url(&server, &session))
            .header("content-type", ct)
            .body(body)
            .send()
    };
    assert_eq!(
        patch("v=0\r\nbroken".into(), "application/sdp")
            .await
            .unwrap()
            .status(),
        400
    );
    assert_eq!(
        patch(answer.clone(), "application/sdp")
            .await
            .unwrap()
            .status(),
        204
    );
    // Once answered, the session takes only trickle fragments again.
    assert_eq!(
        patch(answer, "application/sdp").await.unwrap().status(),
        415
    );
    peer.connected().await;

    let mut tracks = std::mem::replace(&mut peer.tracks, tokio::sync::mpsc::unbounded_channel().1);
    let track = within("viewer track", async {
        // Media flows only after the answer; keep sending until the track shows up.
        let mut ticker = tokio::time::interval(std::time::Duration::from_millis(5));
        let mut n = 1u16;
        loop {
            tokio::select! {
                t = tracks.recv() => break t.unwrap(),
                _ = ticker.tick() => {
                    assert!(n < MAX_PACKETS);
                    publisher.send_video(n, n.is_multiple_of(10)).await;
                    n += 1;
                }
            }
        }
    })
    .await;
    let codec = track.codec(track.ssrcs().await[0]).await.unwrap();
    assert_eq!(codec.mime_type.to_ascii_lowercase(), "video/vp8");
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewer_that_cannot_decode_a_later_publisher_is_told_to_reconnect() {
    let server = start().await;
    // The viewer comes first, offering only H.264, into an empty room: 201, nothing to show.
    let peer = Peer::h264_viewer().await;
    let r = post_sdp(&url(&server, &paths::whep("r6")), &peer.offer().await).await;
    assert_eq!(r.status, 201, "{}", r.body);
    peer.accept(r.body.clone()).await;
    peer.connected().await;
    let session = r.location.unwrap();
    let c = http()
        .post(url(&server, &format!("{session}/sse")))
        .body(r#"["reconnect"]"#)
        .send()
        .await
        .unwrap();
    assert_eq!(c.status(), 201);
    let mut events = http()
        .get(url(&server, c.headers()["location"].to_str().unwrap()))
        .send()
        .await
        .unwrap();

    // A VP8 publisher arrives: the viewer cannot take it, and is told so in words.
    let publisher = Publisher::join(&server, "r6").await;
    let mut text = String::new();
    let mut ticker = tokio::time::interval(std::time::Duration::from_millis(20));
    let mut n = 0u16;
    let data = within("a reconnect event", async {
        loop {
            tokio::select! {
                chunk = events.chunk() => {
                    text.push_str(&String::from_utf8_lossy(&chunk.unwrap().unwrap()));
                    if let Some(i) = text.find("event: reconnect\ndata: ") {
                        let rest = &text[i + 23..];
                        if let Some(end) = rest.find('\n') {
                            return rest[..end].to_string();
                        }
                    }
                }
                // The publisher's track exists once its media flows.
                _ = ticker.tick() => {
                    publisher.send_video(n, n.is_multiple_of(10)).await;
                    n += 1;
                }
            }
        }
    })
    .await;
    let v: serde_json::Value = serde_json::from_str(&data).unwrap();
    assert_eq!(v["url"], "/whep/r6", "{data}");
    assert!(v["reason"].as_str().unwrap().contains("VP8"), "{data}");
    // Re-POSTing the same offer now gets the counter-offer it can answer.
    let again = post_sdp(&url(&server, &paths::whep("r6")), &peer.offer().await).await;
    assert_eq!(again.status, 406, "{}", again.body);
    let reason = again.headers["x-wisp-reason"].to_str().unwrap();
    assert!(reason.contains("video/VP8"), "{reason}");
}
