//! Cluster mode on a real `redis-server`: rooms placed on one node, the others redirecting
//! there (`307`), claims released when rooms end and taken over when their node dies, and
//! `503` + `Retry-After` while Redis is away, with running sessions untouched.

use crate::harness::nodes::*;
use crate::harness::*;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use wisp::http::paths;
use wisp::rtc::client::ClientIce;

/// Most packets a publisher loop sends before the test gives up (bounds every loop).
const MAX_PACKETS: u16 = 2000;

/// A client that shows redirects instead of following them.
fn no_follow() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn post(url: &str, sdp: &str) -> reqwest::Response {
    no_follow()
        .post(url)
        .header("content-type", "application/sdp")
        .body(sdp.to_owned())
        .send()
        .await
        .unwrap()
}

fn base(s: &wisp::Server) -> String {
    url(s, "")
}

/// The node the directory gave `room` to, and the other one. Which node a room lands on
/// depends on the nodes' load reports (CPU included), so tests ask rather than assume.
async fn owner_and_other<'a>(
    redis: &Redis,
    room: &str,
    a: &'a wisp::Server,
    b: &'a wisp::Server,
) -> (&'a wisp::Server, &'a wisp::Server) {
    match redis.get(&format!("wisp:room:{room}")).await.as_deref() {
        Some("a") => (a, b),
        Some("b") => (b, a),
        other => panic!("room {room} is owned by {other:?}"),
    }
}

async fn get_json(u: &str) -> serde_json::Value {
    let text = http().get(u).send().await.unwrap().text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{u}: {e}: {text}"))
}

/// A recvonly offer a WHEP POST can carry (never answered: only the status matters).
async fn viewer_offer() -> String {
    let peer = Peer::new().await;
    for kind in [RtpCodecKind::Audio, RtpCodecKind::Video] {
        peer.pc
            .add_transceiver_from_kind(
                kind,
                Some(rtc::rtp_transceiver::RTCRtpTransceiverInit {
                    direction: rtc::rtp_transceiver::RTCRtpTransceiverDirection::Recvonly,
                    ..Default::default()
                }),
            )
            .await
            .unwrap();
    }
    peer.offer().await
}

/// Sends media until `viewer` has `n` video packets.
async fn flows(publisher: &Publisher, viewer: &mut Viewer, n: usize) {
    let mut ticker = tokio::time::interval(std::time::Duration::from_millis(5));
    let (mut got, mut i) = (0, 0u16);
    while got < n {
        assert!(i < MAX_PACKETS, "the viewer did not receive media");
        ticker.tick().await;
        publisher.send_video(i, i.is_multiple_of(10)).await;
        i += 1;
        while let Ok((kind, _)) = viewer.packets.try_recv() {
            got += usize::from(kind == RtpCodecKind::Video);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_room_lives_on_its_owner_and_the_other_nodes_redirect_there() {
    let redis = Redis::start();
    let a = node(&redis, "a").await;
    let b = node(&redis, "b").await;

    let publisher = Publisher::join(&b, "r").await;
    let (owner, other) = owner_and_other(&redis, "r", &a, &b).await;
    assert!(
        publisher.session.starts_with(&base(owner)),
        "the session's Location is absolute, on the owner: {}",
        publisher.session
    );
    assert_eq!(owner.sfu.session_counts(), (1, 0));
    assert_eq!(other.sfu.session_counts(), (0, 0));

    // WHIP and a participant's WHEP to the other node: 307 to the same path and query on
    // the owner.
    let offer = Peer::new().await.offer().await;
    let r = post(
        &format!("{}{}?name=x", base(other), paths::whip("r")),
        &offer,
    )
    .await;
    assert_eq!(r.status(), 307);
    assert_eq!(
        r.headers()["location"],
        format!("{}{}?name=x", base(owner), paths::whip("r")).as_str()
    );
    let body = r.text().await.unwrap();
    let id = owner.cluster.as_ref().unwrap().node_id();
    assert!(body.contains(&format!("node {id}")), "{body}");
    let whep = format!("{}?self={}", paths::whep("r"), publisher.participant);
    let r = post(&format!("{}{whep}", base(other)), &viewer_offer().await).await;
    assert_eq!(r.status(), 307);
    assert_eq!(
        r.headers()["location"],
        format!("{}{whep}", base(owner)).as_str()
    );

    // A publisher that follows the redirect (reqwest does, as RFC 9725 §4.5 asks)
    // publishes on the owner.
    let second = Publisher::join(other, "r").await;
    assert_eq!(owner.sfu.session_counts(), (2, 0));
    assert!(second.session.starts_with(&base(owner)));

    // The owner renews its claim while the room lives: still its after a lease's worth of
    // beats.
    let beats = wisp::cluster::LEASE.as_secs() / wisp::cluster::RENEW_EVERY.as_secs() + 2;
    beaten(owner, beats).await;
    assert_eq!(redis.get("wisp:room:r").await.as_deref(), Some(id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_rooms_go_to_the_least_loaded_node_and_are_released_when_they_end() {
    let redis = Redis::start();
    let a = node(&redis, "a").await;
    let b = node(&redis, "b").await;
    let busy = Publisher::join(&a, "busy").await;
    let (loaded, idle) = owner_and_other(&redis, "busy", &a, &b).await;
    beaten(loaded, 2).await; // its report now counts its session

    // The loaded node is asked for a new room but the other has fewer sessions: 307 there,
    // and the claim is the idle node's.
    let offer = Peer::new().await.offer().await;
    let r = post(&format!("{}{}", base(loaded), paths::whip("fresh")), &offer).await;
    assert_eq!(r.status(), 307, "{}", r.text().await.unwrap());
    assert_eq!(
        r.headers()["location"],
        format!("{}{}", base(idle), paths::whip("fresh")).as_str()
    );
    let idle_id = idle.cluster.as_ref().unwrap().node_id();
    assert_eq!(redis.get("wisp:room:fresh").await.as_deref(), Some(idle_id));
    let on_b = Publisher::join(loaded, "fresh").await;
    assert_eq!(idle.sfu.session_counts(), (1, 0));

    // The room ends on its node (DELETE): its claim goes at once, not after the lease.
    let mut watch = redis.watch("wisp:room:fresh").await;
    let r = http().delete(&on_b.session).send().await.unwrap().status();
    assert_eq!(r, 200);
    loop {
        let ev = next_event(&mut watch).await;
        assert_ne!(
            ev, "expired",
            "the claim should be released, not left to expire"
        );
        if ev == "del" {
            break;
        }
    }
    assert_eq!(redis.get("wisp:room:fresh").await, None);
    drop(busy);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_owners_room_moves_to_a_live_node_within_the_lease() {
    let redis = Redis::start();
    let mut a = NodeProcess::start(&redis, "a");
    let headers = [];
    let first = Publisher::join_at(&a.url, "r", ClientIce::default(), None, None, &headers).await;
    assert_eq!(redis.get("wisp:room:r").await.as_deref(), Some("a"));
    let b = node(&redis, "b").await;

    // A dies without a word. Until its node lease runs out B still sends the room there...
    let mut lease = redis.watch("wisp:node:a").await;
    a.kill();
    let offer = Peer::new().await.offer().await;
    let r = post(&format!("{}{}", base(&b), paths::whip("r")), &offer).await;
    assert_eq!(r.status(), 307);
    // ...and once it has (at most the lease after A's last beat), the next POST moves it.
    assert_eq!(next_event(&mut lease).await, "expired");
    let again = Publisher::join(&b, "r").await;
    assert_eq!(redis.get("wisp:room:r").await.as_deref(), Some("b"));
    assert_eq!(b.sfu.session_counts(), (1, 0));
    drop((first, again));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_redis_new_rooms_get_503_running_sessions_go_on_and_the_node_reconnects() {
    let mut redis = Redis::start();
    let a = node(&redis, "a").await;
    let publisher = Publisher::join(&a, "r").await;
    let mut viewer = Viewer::join(&a, &paths::whep("r")).await;
    flows(&publisher, &mut viewer, 10).await;

    redis.kill();
    let offer = Peer::new().await.offer().await;
    let r = post(&format!("{}{}", base(&a), paths::whip("other")), &offer).await;
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "2");
    let body = r.text().await.unwrap();
    assert!(body.contains("cluster directory"), "{body}");
    // Media keeps flowing with the directory gone.
    flows(&publisher, &mut viewer, 20).await;

    // Redis comes back (empty): the node reconnects by itself, claims its room again, and
    // new rooms are placed again.
    let mut health = a.cluster.as_ref().unwrap().health();
    within("the heartbeat to notice Redis is gone", async {
        health.wait_for(|h| !h.reachable).await.unwrap();
    })
    .await;
    redis.restart();
    within("the heartbeat to reach Redis again", async {
        health.wait_for(|h| h.reachable).await.unwrap();
    })
    .await;
    assert_eq!(redis.get("wisp:room:r").await.as_deref(), Some("a"));
    let again = Publisher::join(&a, "other").await;
    drop(again);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plain_player_on_another_node_is_served_there_through_one_upstream() {
    let redis = Redis::start();
    let a = node(&redis, "a").await;
    let b = node(&redis, "b").await;
    let publisher = Publisher::join(&a, "r").await;
    let (origin, edge) = owner_and_other(&redis, "r", &a, &b).await;
    let mut origin_events = Sse::open(&http(), &url(origin, &paths::room_events("r"))).await;
    // Events on the edge are the origin's, through the cascade (started by this stream).
    let mut edge_events = Sse::open(&http(), &url(edge, &paths::room_events("r"))).await;
    let (_, roster) = within("the edge's roster", edge_events.next()).await;
    assert_eq!(
        roster["participants"][0]["id"],
        publisher.participant.as_str()
    );

    // Two plain players reach the edge: both served there, fed by one upstream session from
    // the origin.
    let mut v1 = Viewer::join(edge, &paths::whep("r")).await;
    assert!(v1.session.starts_with(&base(edge)), "{}", v1.session);
    let by_name = paths::whep_participant("r", &publisher.participant);
    let mut v2 = Viewer::join(edge, &by_name).await;
    flows(&publisher, &mut v1, 20).await;
    flows(&publisher, &mut v2, 20).await;
    assert_eq!(
        origin.sfu.session_counts(),
        (1, 1),
        "one upstream on the origin"
    );
    assert_eq!(
        edge.sfu.session_counts(),
        (1, 2),
        "a mirror and two players on the edge"
    );

    // The audience is cluster-wide: both nodes say 2 (the edge's players; the upstream is
    // not one of them), and the edge's room speaks as the origin's voice detector decides.
    within(
        "the origin to count the edge's players",
        origin_events.until("viewercount", |d| d["viewercount"] == 2),
    )
    .await;
    within(
        "the edge to count its players",
        edge_events.until("viewercount", |d| d["viewercount"] == 2),
    )
    .await;
    // /api/rooms on any node lists the cluster's rooms, counted over all nodes.
    let listed = get_json(&url(edge, "/api/rooms")).await;
    let origin_id = origin.cluster.as_ref().unwrap().node_id();
    assert_eq!(
        listed["rooms"],
        serde_json::json!([{"id": "r", "participants": 1, "viewers": 2, "node": origin_id}])
    );
    let publisher = std::sync::Arc::new(publisher);
    let speaker = publisher.clone();
    let speak = tokio::spawn(async move {
        let mut ticker = tokio::time::interval(std::time::Duration::from_millis(20));
        for n in 0..1500u16 {
            ticker.tick().await;
            speaker.send_audio_level(n, 15).await;
        }
    });
    let id = publisher.participant.clone();
    edge_events
        .until("speaking", |v| {
            v["id"] == id.as_str() && v["speaking"] == true
        })
        .await;
    speak.abort();
    drop(edge_events);

    // The players leave; a grace later the edge closes its upstream on the origin.
    for v in [&v1, &v2] {
        let s = http().delete(&v.session).send().await.unwrap().status();
        assert_eq!(s, 200);
    }
    within(
        "the origin to count no players",
        origin_events.until("viewercount", |d| d["viewercount"] == 0),
    )
    .await;
    // The edge's room ends with its cascade, which DELETEs its upstream on the origin first.
    let mut notices = edge.sfu.notices();
    within("the edge's room to end", async {
        while !matches!(notices.recv().await, Ok(wisp::sfu::events::Notice::Ended(r)) if r.as_str() == "r") {}
    })
    .await;
    assert_eq!(origin.sfu.session_counts(), (1, 0), "the upstream is gone");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edge_pulls_a_simulcast_publisher_layer_by_layer_and_its_players_choose() {
    use crate::simulcast::{SimulcastPublisher, pump};
    let redis = Redis::start();
    let a = node(&redis, "a").await;
    let b = node(&redis, "b").await;
    let publisher = SimulcastPublisher::join(&a, "sim").await;
    let (origin, edge) = owner_and_other(&redis, "sim", &a, &b).await;
    let mut viewer = Viewer::join(edge, &paths::whep("sim")).await;
    let mut n = 0u16;

    // Once the publisher's layers flow, the edge pulls one upstream per layer (three WHEP
    // sessions on the origin), and its player gets the best layer, as on the origin: 30
    // packets in a row of "f".
    pump(&publisher, &mut viewer, &mut n, |g| {
        origin.sfu.session_counts() == (1, 3)
            && g.len() >= 30
            && g[g.len() - 30..].iter().all(|g| g.layer == 2)
    })
    .await;
    // Each upstream leg's track joins the edge's room with its first packet, so the listing
    // may trail the sessions: keep media flowing until it names all three (bounded by pump).
    let rids_of = |detail: &serde_json::Value| {
        let mut rids: Vec<String> = detail["participants"][0]["tracks"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t["rid"].as_str().map(str::to_owned))
            .collect();
        rids.sort_unstable();
        rids
    };
    let mut detail = get_json(&url(edge, "/api/rooms/sim")).await;
    for _ in 0..50 {
        if rids_of(&detail) == ["f", "h", "q"] {
            break;
        }
        pump(&publisher, &mut viewer, &mut n, |g| g.len() >= 10).await;
        detail = get_json(&url(edge, "/api/rooms/sim")).await;
    }
    assert_eq!(rids_of(&detail), ["f", "h", "q"], "{detail}");

    // The player chooses the low layer on the edge (its m-line 1 is video).
    crate::simulcast::ask_low_layer(&format!("{}/layer", viewer.session)).await;
    pump(&publisher, &mut viewer, &mut n, |g| {
        g.len() >= 30 && g[g.len() - 30..].iter().all(|g| g.layer == 0)
    })
    .await;
}
