//! Conference behaviour on the media path: a one-slot WHEP viewer (the program feed) follows
//! the active speaker, switching sources without a sequence gap.

use crate::harness::*;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use wisp::http::paths;
use wisp::sfu::{ParticipantId, SessionId, SessionKind, ViewerState};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn program_feed_follows_the_active_speaker_without_a_gap() {
    let server = start().await;
    let a = Publisher::join(&server, "pf").await;
    let b = Publisher::join(&server, "pf").await;
    let mut viewer = Viewer::join(&server, &paths::whep("pf")).await; // 1 audio + 1 video slot
    let id = SessionId::parse(viewer.session.trim_start_matches(paths::SESSION)).unwrap();
    let mut state = match &server.sfu.session(id).unwrap().kind {
        SessionKind::Viewer(v) => v.state.subscribe(),
        _ => unreachable!(),
    };
    let b_id = ParticipantId::parse(&b.participant).unwrap();

    // Both send video (b's frames numbered from 10000); only b speaks.
    let mut ticker = tokio::time::interval(std::time::Duration::from_millis(20));
    let mut got = Vec::new();
    let mut n = 0u16;
    let from_b =
        |p: &rtc::rtp::packet::Packet| u16::from_be_bytes([p.payload[2], p.payload[3]]) >= 10000;
    while got.iter().filter(|p| from_b(p)).count() < 20 {
        assert!(n < 1000, "the feed never switched to the speaker");
        ticker.tick().await;
        a.send_video(n, n.is_multiple_of(10)).await;
        b.send_video(10000 + n, n.is_multiple_of(10)).await;
        a.send_audio_level(n, 127).await;
        b.send_audio_level(n, 10).await;
        n += 1;
        while let Ok((kind, p)) = viewer.packets.try_recv() {
            if kind == RtpCodecKind::Video {
                got.push(p);
            }
        }
    }
    assert_eq!(*state.borrow_and_update(), ViewerState::Watching(b_id));
    assert!(!from_b(&got[0]), "the feed started on the first publisher");
    for w in got.windows(2) {
        assert_eq!(
            w[1].header.sequence_number,
            w[0].header.sequence_number.wrapping_add(1),
            "one continuous stream across the switch"
        );
        assert_eq!(w[1].header.ssrc, w[0].header.ssrc);
    }
    server.shutdown().await.unwrap();
}
