//! Webhooks against a small local receiver: signed events in order as a publisher comes and
//! goes, the admission hook's yes, no (403 with its reason) and silence (503), and a dead
//! receiver costing signalling nothing.

use std::sync::Arc;
use std::time::Duration;

use crate::harness::*;
use wisp::http::paths;

const SECRET: &str = "hook-secret";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_arrive_signed_and_in_order() {
    let mut hook =
        HookReceiver::start(Arc::new(|_: &str| (200, String::new(), Duration::ZERO))).await;
    let mut c = test_config();
    c.webhook = Some((hook.url.clone(), SECRET.into()));
    let server = start_with(c).await;
    let publisher = Publisher::join(&server, "hk?name=Ada").await;
    // Media as a publisher sends it (a single packet may arrive before the leg reads it).
    let feed = async {
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        for n in 0..500u16 {
            tick.tick().await;
            publisher.send_video(n, n % 50 == 0).await;
        }
    };
    let collect = async {
        let mut seen = Vec::new();
        while seen.len() < 2 {
            let (h, body, e) = hook.next_json().await;
            let ts: u64 = h["x-wisp-timestamp"].to_str().unwrap().parse().unwrap();
            assert_eq!(
                h["x-wisp-signature"].to_str().unwrap(),
                wisp::hooks::sign(SECRET.as_bytes(), ts, &body),
                "signed over the timestamp and the body"
            );
            assert_eq!(
                (e["room"].as_str(), e["name"].as_str()),
                (Some("hk"), Some("Ada"))
            );
            assert_eq!(e["participant"], publisher.participant.as_str());
            seen.push(e["type"].as_str().unwrap().to_owned());
        }
        seen
    };
    let seen = tokio::select! {
        seen = collect => seen,
        () = feed => panic!("no publish.started after 10 s of media"),
    };
    assert_eq!(seen, ["participant.joined", "publish.started"]);
    let r = http()
        .delete(url(&server, &publisher.session))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    for want in ["publish.stopped", "participant.left", "room.closed"] {
        let (_, _, e) = hook.next_json().await;
        assert_eq!(e["type"], want, "{e}");
    }
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admission_hook_says_yes_no_or_nothing() {
    let mut hook = HookReceiver::start(Arc::new(|body: &str| {
        let ask: serde_json::Value = serde_json::from_str(body).unwrap();
        match (ask["room"].as_str(), ask["name"].as_str()) {
            (Some("slow"), _) => (200, String::new(), Duration::from_secs(5)),
            (_, Some("mallory")) => (
                403,
                "Mallory is not on the guest list.\nmore".into(),
                Duration::ZERO,
            ),
            _ => (204, String::new(), Duration::ZERO),
        }
    }))
    .await;
    let mut c = test_config();
    c.auth_webhook = Some(hook.url.clone());
    c.auth_webhook_timeout = Duration::from_millis(300);
    let server = start_with(c).await;

    // Yes: the session is made; the receiver was asked with what wisp knows.
    let ok = Publisher::join(&server, "adm?name=Ada").await;
    let (_, _, ask) = hook.next_json().await;
    assert_eq!(ask["room"], "adm");
    assert_eq!(ask["action"], "publish");
    assert_eq!(ask["name"], "Ada");
    assert_eq!(ask["client"], "127.0.0.1");
    assert!(ask["claims"].is_null(), "no tokens on this server: {ask}");
    let viewer = Viewer::join(&server, &paths::whep("adm")).await;
    let (_, _, ask) = hook.next_json().await;
    assert_eq!(ask["action"], "watch");

    // No: 403 with the receiver's reason (its first line).
    let offer = ok.answer.replace("a=recvonly", "a=sendonly");
    let r = post_sdp(
        &url(&server, &format!("{}?name=mallory", paths::whip("adm"))),
        &offer,
    )
    .await;
    assert_eq!(r.status, 403);
    assert_eq!(
        r.body.trim(),
        "The admission service refused this request: Mallory is not on the guest list."
    );
    // Nothing in time: 503 + Retry-After.
    let r = post_sdp(&url(&server, &paths::whip("slow")), &offer).await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(r.headers.contains_key("retry-after"));
    assert_eq!(
        r.body.trim(),
        "The admission service did not answer in time; retry shortly."
    );
    drop(viewer);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_receiver_costs_signalling_nothing() {
    // A port nothing listens on.
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}/hook", l.local_addr().unwrap())
    };
    let mut c = test_config();
    c.webhook = Some((dead, SECRET.into()));
    let server = start_with(c).await;
    let publisher = Publisher::join(&server, "dead").await;
    let mut viewer = Viewer::join(&server, &paths::whep("dead")).await;
    within("media despite a dead webhook receiver", async {
        let mut n = 0u16;
        loop {
            publisher.send_video(n, true).await;
            n += 1;
            if let Ok(Some(_)) =
                tokio::time::timeout(Duration::from_millis(20), viewer.packets.recv()).await
            {
                return;
            }
        }
    })
    .await;
    server.shutdown().await.unwrap();
}
