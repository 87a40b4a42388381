//! What participants tell each other through the room, over HTTP with real WHIP sessions:
//! their own state (`POST /session/{id}/state`), chat (`POST /rooms/{room}/chat`, participants
//! only, bounded, rate-limited, with history for late subscribers), screen shares
//! (`X-Wisp-Screen-Of`) that end with their owner, and a WHEP viewer's pin.

use crate::harness::*;
use wisp::http::paths;
use wisp::sfu::SessionId;

fn post_json(url: &str, body: &str) -> reqwest::RequestBuilder {
    http()
        .post(url)
        .header("content-type", "application/json")
        .body(body.to_string())
}

fn session_id(location: &str) -> String {
    location.rsplit('/').next().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn state_and_chat_reach_the_room_and_late_subscribers_get_the_history() {
    let server = start().await;
    let a = Publisher::join(&server, "soc").await;
    let sid = session_id(&a.session);
    let mut sse = Sse::open(&http(), &url(&server, &paths::room_events("soc"))).await;
    let (_, roster) = sse.next().await;
    let me = &roster["participants"][0];
    assert_eq!(me["muted"], false);
    assert_eq!(me["cameraOff"], false);
    assert!(me["screenOf"].is_null());

    // State: by the WHIP session, a state event with all three parts.
    let state_url = url(&server, &format!("{}/state", a.session));
    let r = post_json(&state_url, r#"{"muted":true}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let s = sse.until("state", |_| true).await;
    assert_eq!(s["id"], a.participant.as_str());
    assert_eq!(
        (s["muted"].clone(), s["cameraOff"].clone()),
        (true.into(), false.into())
    );
    let r = post_json(&state_url, "not json").send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("JSON object"));

    // A player's session has no state to tell.
    let viewer = Viewer::join(&server, &paths::whep("soc")).await;
    let r = post_json(&url(&server, &format!("{}/state", viewer.session)), "{}")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);

    // Chat: only from a WHIP session of this room; the text is kept as text.
    let chat = url(&server, &paths::room_chat("soc"));
    let r = post_json(&chat, r#"{"text":"hi"}"#).send().await.unwrap();
    assert_eq!(r.status(), 403, "no sender");
    let viewer_sid = session_id(&viewer.session);
    let r = post_json(&chat, r#"{"text":"hi"}"#)
        .header("x-wisp-session", viewer_sid.as_str())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "a player is not a participant");
    let markup = r#"{"text":"<img src=x onerror=alert(1)><script>alert(2)</script>"}"#;
    let send = |body: &'static str| {
        post_json(&chat, body)
            .header("x-wisp-session", sid.as_str())
            .send()
    };
    assert_eq!(send(markup).await.unwrap().status(), 204);
    let c = sse.until("chat", |_| true).await;
    assert_eq!(
        c["text"],
        "<img src=x onerror=alert(1)><script>alert(2)</script>"
    );
    assert_eq!(c["id"], a.participant.as_str());
    let r = send(r#"{"text":"   "}"#).await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("empty"));
    let long = format!(r#"{{"text":"{}"}}"#, "x".repeat(501));
    let r = post_json(&chat, &long)
        .header("x-wisp-session", sid.as_str())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // The burst of five (one spent), refused within the next few with a Retry-After.
    let mut refused = None;
    for i in 0..8 {
        let r = send(r#"{"text":"again"}"#).await.unwrap();
        if r.status() == 429 {
            refused = Some((i, r.headers().get("retry-after").cloned()));
            break;
        }
        assert_eq!(r.status(), 204);
    }
    let (i, retry) = refused.expect("a flood of chat is refused");
    assert!(i >= 4, "the burst is five messages");
    assert!(retry.is_some());

    // A late subscriber: the roster, then the history, oldest first.
    let mut late = Sse::open(&http(), &url(&server, &paths::room_events("soc"))).await;
    assert_eq!(late.next().await.0, "roster");
    let (name, first) = late.next().await;
    assert_eq!(name, "chat");
    assert_eq!(
        first["text"],
        "<img src=x onerror=alert(1)><script>alert(2)</script>"
    );
    drop((a, viewer));
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_screen_share_is_its_owners_and_ends_with_it() {
    let server = start().await;
    let a = Publisher::join(&server, "scr").await;
    let mut sse = Sse::open(&http(), &url(&server, &paths::room_events("scr"))).await;
    sse.next().await;
    let owner = session_id(&a.session);
    let screen =
        Publisher::join_with_headers(&server, "scr", &[("x-wisp-screen-of", owner.as_str())]).await;
    let j = sse
        .until("joined", |v| {
            v["participant"]["id"] == screen.participant.as_str()
        })
        .await;
    assert_eq!(j["participant"]["screenOf"], a.participant.as_str());

    // An owner that is not a publisher of this room is refused in words.
    let other = Publisher::join(&server, "elsewhere").await;
    let peer = Peer::new().await;
    let offer = peer.offer().await;
    let stranger = session_id(&other.session);
    for bad in [
        stranger.as_str(),
        "00000000-0000-4000-8000-000000000000",
        "nope",
    ] {
        let r = post_sdp_with(
            &url(&server, &paths::whip("scr")),
            &offer,
            &[("x-wisp-screen-of", bad)],
        )
        .await;
        assert_eq!(r.status, 400, "{bad}: {}", r.body);
        assert!(r.body.contains("X-Wisp-Screen-Of"), "{}", r.body);
    }

    // The owner's viewer never gets the screen; the owner leaving ends it.
    let r = http()
        .delete(url(&server, &a.session))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    sse.until("left", |v| v["id"] == a.participant.as_str())
        .await;
    sse.until("left", |v| v["id"] == screen.participant.as_str())
        .await;
    let sid = SessionId::parse(&session_id(&screen.session)).unwrap();
    assert!(
        server.sfu.session(sid).is_none(),
        "the share's session ended"
    );
    drop((screen, other));
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pin_rides_on_the_layer_request() {
    let server = start().await;
    let a = Publisher::join(&server, "pin").await;
    let viewer = Viewer::join(&server, &paths::whep("pin")).await;
    let layer = url(&server, &format!("{}/layer", viewer.session));
    let body = format!(r#"{{"mediaId":"1","participant":"{}"}}"#, a.participant);
    let r = post_json(&layer, &body).send().await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let r = post_json(&layer, r#"{"mediaId":"1","participant":"../x"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = post_json(&layer, r#"{"mediaId":"1","participant":""}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // A publisher's session cannot pin.
    let r = post_json(&url(&server, &format!("{}/layer", a.session)), &body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    drop((a, viewer));
    server.shutdown().await.unwrap();
}
