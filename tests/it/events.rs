//! Room events over server-sent events: roster, joined/tracks, speaking from RFC 6464 audio
//! levels (server-side VAD), active speaker, left; and the stream's auth.

use crate::harness::*;
use wisp::http::paths;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roster_speaking_active_speaker_and_left() {
    let server = start().await;
    let mut sse = Sse::open(&http(), &url(&server, &paths::room_events("ev"))).await;
    let (name, roster) = sse.next().await;
    assert_eq!(name, "roster");
    assert_eq!(roster["participants"].as_array().unwrap().len(), 0);

    let publisher = Publisher::join(&server, "ev").await;
    let joined = sse.until("joined", |_| true).await;
    assert_eq!(joined["participant"]["id"], publisher.participant.as_str());

    // 20 ms audio packets: loud speech until the server says "speaking", then silence until
    // it says it stopped. Bounded by packet count, never by sleeping.
    let id = publisher.participant.clone();
    let session = publisher.session.clone();
    let mut ticker = tokio::time::interval(std::time::Duration::from_millis(20));
    let speak = tokio::spawn(async move {
        let mut n = 0u16;
        loop {
            ticker.tick().await;
            publisher.send_audio_level(n, 15).await;
            n += 1;
            if n > 1500 {
                return (publisher, n);
            }
        }
    });
    let on = sse
        .until("speaking", |v| {
            v["id"] == id.as_str() && v["speaking"] == true
        })
        .await;
    assert!(on["level"].as_u64().unwrap() > 100);
    sse.until("active-speaker", |v| v["id"] == id.as_str())
        .await;
    speak.abort();
    let publisher = match speak.await {
        Err(e) if e.is_cancelled() => None,
        Ok((p, _)) => Some(p),
        Err(e) => panic!("{e}"),
    };
    // Silence: either quiet packets or none at all (DTX) must turn speaking off.
    sse.until("speaking", |v| {
        v["id"] == id.as_str() && v["speaking"] == false
    })
    .await;
    drop(publisher);
    let r = http().delete(url(&server, &session)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    sse.until("left", |v| v["id"] == id.as_str()).await;
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn event_stream_auth_bearer_or_room_scoped_token() {
    let mut c = test_config();
    c.auth.token = Some("s3cret".into());
    let server = start_with(c).await;
    let events = url(&server, &paths::room_events("auth"));
    assert_eq!(http().get(&events).send().await.unwrap().status(), 401);
    let r = http()
        .get(&events)
        .bearer_auth("s3cret")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    drop(r);
    // EventSource path: mint a short-lived token with the bearer, use it in the URL.
    let minted: serde_json::Value = serde_json::from_str(
        &http()
            .post(url(&server, &paths::room_access("auth")))
            .bearer_auth("s3cret")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    )
    .unwrap();
    let access = minted["access"].as_str().unwrap().to_string();
    assert!(!access.contains("s3cret"));
    let ok = http()
        .get(format!("{events}?access={access}"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    drop(ok);
    let other_room = url(&server, &paths::room_events("other"));
    let r = http()
        .get(format!("{other_room}?access={access}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "tokens are room-scoped");
    let r = http()
        .post(url(&server, &paths::room_access("auth")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "minting needs the bearer token");
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewers_slot_map_is_announced() {
    let server = start().await;
    let mut sse = Sse::open(&http(), &url(&server, &paths::room_events("sl"))).await;
    sse.until("roster", |_| true).await;
    let publisher = Publisher::join(&server, "sl").await;
    let _viewer = Viewer::join(&server, &format!("{}?self=me1", paths::whep("sl"))).await;
    let map = sse.until("slots", |v| v["viewer"] == "me1").await;
    let slots = map["slots"].as_array().unwrap();
    assert_eq!(slots.len(), 2);
    for s in slots {
        assert_eq!(s["participant"], publisher.participant.as_str(), "{map}");
    }
    server.shutdown().await.unwrap();
}

/// A page that opens the stream after its viewers joined (a publisher that reconnects) learns
/// the audience from the snapshot, not from the next change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_subscriber_learns_the_audience_at_once() {
    let server = start().await;
    let _publisher = Publisher::join(&server, "aud").await;
    let _v1 = Viewer::join(&server, &paths::whep("aud")).await;
    let _v2 = Viewer::join(&server, &paths::whep("aud")).await;
    let mut sse = Sse::open(&http(), &url(&server, &paths::room_events("aud"))).await;
    assert_eq!(sse.next().await.0, "roster");
    let (name, v) = sse.next().await;
    assert_eq!(
        (name.as_str(), v["viewercount"].as_u64()),
        ("viewercount", Some(2)),
        "the snapshot ends with the audience"
    );
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whep_server_sent_events_extension() {
    let server = start().await;
    let offer = include_str!("../../conformance/fixtures/whep-offer.sdp");
    let r = post_sdp(&url(&server, &paths::whep("ext")), offer).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let link = r.headers["link"].to_str().unwrap().to_string();
    assert!(
        link.contains("rel=\"urn:ietf:params:whep:ext:core:server-sent-events\""),
        "{link}"
    );
    assert!(
        link.contains("events=\"active,inactive,layers,reconnect,viewercount"),
        "{link}"
    );
    let links: Vec<&str> = r
        .headers
        .get_all("link")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    assert!(
        links
            .iter()
            .any(|l| l.contains("/layer>; rel=\"urn:ietf:params:whep:ext:core:layer\"")),
        "the layer selection extension is advertised: {links:?}"
    );
    let entry = link[link.find('<').unwrap() + 1..link.find('>').unwrap()].to_string();

    let bad = http()
        .post(url(&server, &entry))
        .header("content-type", "application/json")
        .body(r#"["active","bogus"]"#)
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let created = http()
        .post(url(&server, &entry))
        .header("content-type", "application/json")
        .body(r#"["active","inactive","viewercount"]"#)
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let stream = created.headers()["location"].to_str().unwrap().to_string();

    let mut sse = Sse::open(&http(), &url(&server, &stream)).await;
    let (name, v) = sse.next().await;
    assert_eq!(
        (name.as_str(), v["viewercount"].as_u64()),
        ("viewercount", Some(1))
    );
    let publisher = Publisher::join(&server, "ext").await;
    sse.until("active", |_| true).await;
    let gone = http()
        .delete(url(&server, &publisher.session))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 200);
    sse.until("inactive", |_| true).await;

    assert_eq!(
        http()
            .delete(url(&server, &stream))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        http()
            .get(url(&server, &stream))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    server.shutdown().await.unwrap();
}
