//! Publisher reconnect (`sfu::resume`): a publisher back with its resume secret takes over its
//! participant, live or parked, and viewers keep their slot with no `left`/`joined` flap; one
//! that does not come back leaves when the grace runs out.

use std::time::Duration;

use crate::harness::*;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use wisp::http::paths;
use wisp::sfu::SessionId;

/// Sends `from`'s video (keyframe every 10) until the viewer gets a packet numbered `at` or more.
async fn until_viewer_gets(from: &Publisher, viewer: &mut Viewer, at: u16) {
    let mut ticker = tokio::time::interval(Duration::from_millis(20));
    for n in 0..500u16 {
        ticker.tick().await;
        from.send_video(at + n, n.is_multiple_of(10)).await;
        while let Ok((kind, p)) = viewer.packets.try_recv() {
            if kind == RtpCodecKind::Video && u16::from_be_bytes([p.payload[2], p.payload[3]]) >= at
            {
                return;
            }
        }
    }
    panic!("the viewer never got video numbered from {at}");
}

/// Reads room events up to `marker` joining; panics on any `left` or `joined` of `id` before.
async fn no_flap_until(room: &mut Sse, id: &str, marker: &str) {
    loop {
        let (name, v) = room.next().await;
        let who = match name.as_str() {
            "joined" => v["participant"]["id"].as_str().map(str::to_owned),
            "left" => v["id"].as_str().map(str::to_owned),
            _ => None,
        };
        if name == "joined" && who.as_deref() == Some(marker) {
            return;
        }
        assert_ne!(
            who.as_deref(),
            Some(id),
            "{name} of the reconnecting publisher: {v}"
        );
    }
}

fn session_id(path: &str) -> SessionId {
    SessionId::parse(path.trim_start_matches(paths::SESSION)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_back_with_its_secret_keeps_its_place() {
    let server = start().await;
    let at = |p: &str| url(&server, p);
    let first = Publisher::join(&server, "rc").await;
    let mut viewer = Viewer::join(&server, &paths::whep("rc")).await;
    let mut room = Sse::open(&http(), &at(&paths::room_events("rc"))).await;
    assert_eq!(room.next().await.0, "roster");
    until_viewer_gets(&first, &mut viewer, 0).await;

    // Back before the old transport even failed (a restarted client): a live takeover.
    let again =
        Publisher::join_with_headers(&server, "rc", &[("x-wisp-resume", &first.resume)]).await;
    assert_eq!(again.participant, first.participant, "the same participant");
    let old = http().delete(at(&first.session)).send().await.unwrap();
    assert_eq!(old.status(), 404, "the old session was taken over");
    until_viewer_gets(&again, &mut viewer, 10_000).await;

    // Its transport dies (no DELETE): parked, then taken over from the lot. (wisp learns of a
    // dead transport from ICE, seconds later; the test ends it the way that does.)
    again.peer.pc.close().await.unwrap();
    server
        .sfu
        .end_by_transport(session_id(&again.session))
        .await
        .unwrap();
    let third =
        Publisher::join_with_headers(&server, "rc", &[("x-wisp-resume", &again.resume)]).await;
    assert_eq!(third.participant, first.participant);
    until_viewer_gets(&third, &mut viewer, 20_000).await;

    // A wrong secret is a new participant.
    let stranger =
        Publisher::join_with_headers(&server, "rc", &[("x-wisp-resume", "not-the-secret")]).await;
    assert_ne!(stranger.participant, first.participant);
    no_flap_until(&mut room, &first.participant, &stranger.participant).await;
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_that_does_not_come_back_leaves_after_the_grace() {
    let mut c = test_config();
    c.reconnect_grace = Duration::from_secs(2);
    let server = start_with(c).await;
    let gone = Publisher::join(&server, "rg").await;
    let mut room = Sse::open(&http(), &url(&server, &paths::room_events("rg"))).await;
    assert_eq!(room.next().await.0, "roster");
    gone.peer.pc.close().await.unwrap();
    server
        .sfu
        .end_by_transport(session_id(&gone.session))
        .await
        .unwrap();
    let left = room.until("left", |_| true).await;
    assert_eq!(left["id"], gone.participant.as_str());
    // Too late: the secret now starts a new participant.
    let late =
        Publisher::join_with_headers(&server, "rg", &[("x-wisp-resume", &gone.resume)]).await;
    assert_ne!(late.participant, gone.participant);
    let joined = room.until("joined", |_| true).await;
    assert_eq!(joined["participant"]["id"], late.participant.as_str());
    server.shutdown().await.unwrap();
}
