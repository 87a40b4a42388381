//! Operating wisp: liveness and readiness, and the SIGTERM drain (`Server::drain`).

use std::time::Duration;

use crate::harness::*;
use wisp::http::paths;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_refuses_new_sessions_tells_everyone_and_ends_when_the_sessions_do() {
    let server = start().await;
    let at = |p: &str| url(&server, p);
    let (healthz, readyz, whip) = (at(paths::HEALTH), at(paths::READY), at(&paths::whip("dr")));
    let get = |u: String| async move { http().get(u).send().await.unwrap() };
    assert_eq!(get(healthz.clone()).await.status(), 200);
    assert_eq!(get(readyz.clone()).await.status(), 200);

    let publisher = Publisher::join(&server, "dr").await;
    let viewer = Viewer::join(&server, &paths::whep("dr")).await;
    let mut room = Sse::open(&http(), &at(&paths::room_events("dr"))).await;
    assert_eq!(room.next().await.0, "roster");
    let created = http()
        .post(at(&format!("{}/sse", viewer.session)))
        .header("content-type", "application/json")
        .body(r#"["reconnect"]"#)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let stream = created.headers()["location"].to_str().unwrap().to_string();
    let mut whep = Sse::open(&http(), &at(&stream)).await;
    let (publisher_session, viewer_session) = (at(&publisher.session), at(&viewer.session));

    let sfu = server.sfu.clone();
    let drained = tokio::spawn(server.drain(Duration::from_secs(60)));
    // Everyone is told, in words; the flag is set before the rooms are told.
    let closing = room.until("closing", |_| true).await;
    assert!(
        closing["reason"]
            .as_str()
            .unwrap()
            .contains("shutting down"),
        "{closing}"
    );
    let again = whep.until("reconnect", |_| true).await;
    assert_eq!(again["url"], paths::whep("dr"));
    assert!(again["reason"].as_str().unwrap().contains("shutting down"));

    // Alive, not ready, and no new sessions.
    assert_eq!(get(healthz).await.status(), 200);
    let ready = get(readyz).await;
    assert_eq!(ready.status(), 503);
    assert!(ready.headers().contains_key("retry-after"));
    let refused = post_sdp(&whip, &publisher.answer.replace("a=recvonly", "a=sendonly")).await;
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert!(refused.headers.contains_key("retry-after"));
    assert_eq!(
        refused.body.trim(),
        "The server is shutting down and takes no new sessions; retry shortly."
    );

    // The drain ends as soon as the clients leave, not at its timeout.
    assert_eq!(sfu.session_count(), 2);
    for s in [publisher_session, viewer_session] {
        assert_eq!(http().delete(s).send().await.unwrap().status(), 200);
    }
    within("the drain to end with the last session", drained)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(sfu.session_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drain_ends_the_sessions_left_when_its_time_is_up() {
    let server = start().await;
    let _publisher = Publisher::join(&server, "dr2").await;
    let sfu = server.sfu.clone();
    assert_eq!(sfu.session_count(), 1);
    within(
        "the drain to give up on the session left",
        server.drain(Duration::from_millis(200)),
    )
    .await
    .unwrap();
    assert_eq!(sfu.session_count(), 0, "ended by the drain");
}

/// The value of the sample `name` (with its labels, as written) in a scrape.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_sessions_packets_and_requests() {
    let mut c = test_config();
    c.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    let server = start_with(c).await;
    // What Prometheus asks for gets OpenMetrics; other clients the classic text format.
    let scrape = |u: String| async move {
        let r = http()
            .get(u)
            .header(
                "accept",
                "application/openmetrics-text;version=1.0.0,text/plain;q=0.5",
            )
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/openmetrics-text")
        );
        r.text().await.unwrap()
    };
    let classic = http()
        .get(url(&server, paths::METRICS))
        .send()
        .await
        .unwrap();
    assert!(
        classic.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let on_main = url(&server, paths::METRICS);
    let on_own = format!("http://{}{}", server.metrics_addr.unwrap(), paths::METRICS);
    let before = scrape(on_main.clone()).await;
    assert_eq!(sample(&before, "wisp_sessions{kind=\"viewer\"}"), Some(0.0));
    assert_eq!(
        sample(&before, "wisp_packets_in_total{kind=\"video\"}"),
        Some(0.0)
    );

    let publisher = Publisher::join(&server, "m").await;
    let mut viewer = Viewer::join(&server, &paths::whep("m")).await;
    let mut ticker = tokio::time::interval(Duration::from_millis(5));
    let mut n = 0u16;
    loop {
        assert!(n < 3000, "no video reached the viewer");
        ticker.tick().await;
        publisher.send_video(n, n.is_multiple_of(30)).await;
        n += 1;
        if let Ok((rtc::rtp_transceiver::rtp_sender::RtpCodecKind::Video, _)) =
            viewer.packets.try_recv()
        {
            break;
        }
    }
    // 32 more live packets through: one in 16 of a track's is timed for the forwarding delay.
    let mut live = 0;
    while live < 32 {
        assert!(n < 3000, "no more video reached the viewer");
        ticker.tick().await;
        publisher.send_video(n, false).await;
        n += 1;
        while let Ok((kind, _)) = viewer.packets.try_recv() {
            if kind == rtc::rtp_transceiver::rtp_sender::RtpCodecKind::Video {
                live += 1;
            }
        }
    }
    let after = scrape(on_own).await;
    assert_eq!(
        sample(&after, "wisp_sessions{kind=\"publisher\"}"),
        Some(1.0)
    );
    assert_eq!(sample(&after, "wisp_sessions{kind=\"viewer\"}"), Some(1.0));
    assert_eq!(sample(&after, "wisp_rooms"), Some(1.0));
    assert!(sample(&after, "wisp_packets_in_total{kind=\"video\"}").unwrap() > 0.0);
    assert!(sample(&after, "wisp_packets_out_total{kind=\"video\"}").unwrap() > 0.0);
    assert!(
        sample(&after, "wisp_join_seconds_count").unwrap() >= 1.0,
        "the viewer's join time was recorded"
    );
    assert!(
        sample(&after, "wisp_forward_delay_seconds_count").unwrap() >= 1.0,
        "the forwarding delay of timed packets was recorded"
    );
    // The WHIP 201 and the two earlier scrapes, counted by route and status.
    assert_eq!(
        sample(
            &after,
            "wisp_http_requests_total{route=\"whip\",status=\"201\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        sample(
            &after,
            "wisp_http_requests_total{route=\"metrics\",status=\"200\"}"
        ),
        Some(2.0)
    );
    // Counters stay put after their sessions go (their counts are retired, not lost).
    let video_in = sample(&after, "wisp_packets_in_total{kind=\"video\"}").unwrap();
    for s in [&publisher.session, &viewer.session] {
        http().delete(url(&server, s)).send().await.unwrap();
    }
    let gone = scrape(on_main).await;
    assert_eq!(sample(&gone, "wisp_sessions{kind=\"viewer\"}"), Some(0.0));
    assert!(sample(&gone, "wisp_packets_in_total{kind=\"video\"}").unwrap() >= video_in);
    server.shutdown().await.unwrap();
}
