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
