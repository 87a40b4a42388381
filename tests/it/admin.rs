//! The admin API: what it shows of a room while media flows, kicking a participant, closing a
//! room, and the admin role it needs.

use std::time::Duration;

use crate::harness::*;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use wisp::auth::{JwtConfig, Role, claims, mint_token};
use wisp::http::paths;

async fn get_json(u: &str, bearer: &str) -> (u16, serde_json::Value) {
    let r = http().get(u).bearer_auth(bearer).send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_shows_a_room_kicks_and_closes() {
    let jwt = JwtConfig {
        secret: Some("admin-api-test-secret".into()),
        ..Default::default()
    };
    let token = |room: &str, role| {
        mint_token(
            &jwt,
            None,
            &claims(&jwt, room, role, Duration::from_secs(300), None),
        )
        .unwrap()
    };
    let mut c = test_config();
    c.auth.jwt = jwt.clone();
    let server = start_with(c).await;
    let at = |p: &str| url(&server, p);
    let admin = token("adm", Role::Admin);

    let alice =
        Publisher::join_token(&server, "adm?name=alice", &token("adm", Role::Publish)).await;
    let path = format!("{}?self={}", paths::whep("adm"), alice.participant);
    let mut own = Viewer::join_token(&server, &path, &token("adm", Role::Publish)).await;
    let mut player =
        Viewer::join_token(&server, &paths::whep("adm"), &token("adm", Role::Subscribe)).await;
    let mut room = Sse::open(
        &http().clone(),
        &format!(
            "{}?access={}",
            at(&paths::room_events("adm")),
            access(&server, &admin).await
        ),
    )
    .await;
    assert_eq!(room.next().await.0, "roster");

    // Media flows to the player.
    let mut ticker = tokio::time::interval(Duration::from_millis(20));
    let mut video = 0;
    let mut n = 0u16;
    while n < 500 {
        if video >= 20 {
            break;
        }
        ticker.tick().await;
        alice.send_video(n, n.is_multiple_of(10)).await;
        alice.send_audio(n).await;
        n += 1;
        while let Ok((kind, _)) = player.packets.try_recv() {
            video += usize::from(kind == RtpCodecKind::Video);
        }
    }
    assert!(video >= 20, "the player got video");
    let _ = own.packets.try_recv();

    // The list.
    let (status, rooms) = get_json(&at(&paths::api_rooms()), &admin).await;
    assert_eq!(status, 200, "{rooms}");
    assert_eq!(rooms["rooms"][0]["id"], "adm");
    assert_eq!(rooms["rooms"][0]["participants"], 1);
    assert_eq!(rooms["rooms"][0]["viewers"], 2);

    // The room: alice, her tracks, both legs, the player's slots showing alice with stats.
    let (status, detail) = get_json(&at(&paths::api_room("adm")), &admin).await;
    assert_eq!(status, 200, "{detail}");
    let p = &detail["participants"][0];
    assert_eq!(
        (p["name"].as_str(), p["id"].as_str()),
        (Some("alice"), Some(alice.participant.as_str()))
    );
    assert_eq!(p["network"]["localCandidate"], "host", "{p}");
    let tracks = p["tracks"].as_array().unwrap();
    assert!(
        tracks
            .iter()
            .any(|t| t["kind"] == "video" && t["codec"] == "video/VP8"),
        "{p}"
    );
    assert!(
        tracks
            .iter()
            .any(|t| t["kind"] == "video" && t["stats"]["packets"].as_u64() > Some(0)),
        "wisp counts what it receives: {p}"
    );
    let viewers = detail["viewers"].as_array().unwrap();
    assert_eq!(viewers.len(), 2);
    let own_leg = viewers
        .iter()
        .find(|v| v["participant"] == alice.participant.as_str())
        .unwrap();
    assert!(
        own_leg["slots"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["shows"].is_null()),
        "alice's own leg never shows her: {own_leg}"
    );
    let leg = viewers.iter().find(|v| v["participant"].is_null()).unwrap();
    assert_eq!(leg["connected"], true);
    assert!(leg["uptimeSeconds"].as_f64().unwrap() > 0.0);
    assert_eq!(leg["network"]["localCandidate"], "host", "{leg}");
    let video_slot = leg["slots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["kind"] == "video")
        .unwrap();
    assert_eq!(video_slot["shows"], alice.participant.as_str());
    assert_eq!(video_slot["showsName"], "alice");
    assert_eq!(
        video_slot["layer"], "",
        "a single-layer publisher: {video_slot}"
    );
    assert!(
        video_slot["stats"]["packets"].as_u64() >= Some(20),
        "{video_slot}"
    );
    assert_eq!(video_slot["stats"]["direction"], "send");

    // The player's receiver reports reach the leg: loss, jitter, and an RTT once a report
    // echoes one of wisp's sender reports (polled: reports come about once a second).
    let reported = within("the player's receiver reports on the leg", async {
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        loop {
            tick.tick().await;
            // Contiguous numbers: a jump would be loss in the player's report.
            alice.send_video(n, false).await;
            n += 1;
            let (_, d) = get_json(&at(&paths::api_room("adm")), &admin).await;
            let leg = d["viewers"]
                .as_array()
                .and_then(|v| v.iter().find(|v| v["participant"].is_null()).cloned());
            let slot = leg.as_ref().and_then(|l| {
                l["slots"]
                    .as_array()
                    .and_then(|s| s.iter().find(|s| s["kind"] == "video").cloned())
            });
            // And the ICE round trip of the leg's pair, from its consent checks.
            let ice_rtt = leg.as_ref().map(|l| l["network"]["iceRttMs"].clone());
            if let (Some(slot), Some(ice_rtt)) = (slot, ice_rtt)
                && slot["stats"]["rttMs"].is_number()
                && ice_rtt.is_number()
            {
                return (slot, ice_rtt);
            }
        }
    })
    .await;
    let (reported, ice_rtt) = reported;
    assert!(ice_rtt.as_f64() < Some(1000.0), "loopback: {ice_rtt}");
    let stats = &reported["stats"];
    assert_eq!(stats["fractionLost"], 0.0, "{stats}");
    assert!(stats["jitterMs"].as_f64() >= Some(0.0), "{stats}");
    assert!(stats["rttMs"].as_f64() < Some(1000.0), "loopback: {stats}");

    // The admin role of this room only.
    let (status, body) =
        get_json(&at(&paths::api_room("adm")), &token("adm", Role::Subscribe)).await;
    assert_eq!(status, 403, "{body}");
    let (status, _) = get_json(&at(&paths::api_room("adm")), &token("other", Role::Admin)).await;
    assert_eq!(status, 403);
    let (status, rooms) = get_json(&at(&paths::api_rooms()), &token("other", Role::Admin)).await;
    assert_eq!(
        (status, rooms["rooms"].as_array().map(Vec::len)),
        (200, Some(0)),
        "filtered"
    );
    let r = http().get(at(&paths::api_rooms())).send().await.unwrap();
    assert_eq!(r.status(), 401);
    let (status, _) = get_json(&at(&paths::api_room("nosuch")), &token("*", Role::Admin)).await;
    assert_eq!(status, 404);

    // Kick alice: her publisher and her own WHEP leg end; the room says she left.
    let kick = http()
        .delete(at(&paths::api_participant("adm", &alice.participant)))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(kick.status(), 200);
    assert_eq!(kick.text().await.unwrap(), r#"{"ended":2}"#);
    let left = room.until("left", |_| true).await;
    assert_eq!(left["id"], alice.participant.as_str());
    for s in [&alice.session, &own.session] {
        let r = http()
            .delete(at(s))
            .bearer_auth(&admin)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 404, "{s} ended");
    }
    let again = http()
        .delete(at(&paths::api_participant("adm", &alice.participant)))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 404);

    // Close the room: subscribers are told, the player's leg ends.
    let close = http()
        .delete(at(&paths::api_room("adm")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(close.status(), 200);
    let closing = room.until("closing", |_| true).await;
    assert_eq!(closing["reason"], "An operator closed this room.");
    let r = http()
        .delete(at(&player.session))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    server.shutdown().await.unwrap();
}

async fn access(server: &wisp::Server, bearer: &str) -> String {
    let r = http()
        .post(url(server, &paths::room_access("adm")))
        .bearer_auth(bearer)
        .send()
        .await
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    v["access"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn the_openapi_document_is_served_without_a_token() {
    let mut c = test_config();
    c.auth.token = Some("t".into());
    let server = start_with(c).await;
    let r = http()
        .get(url(&server, paths::OPENAPI))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    let doc: serde_json::Value = serde_json::from_str(&r.text().await.unwrap()).unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for p in [
        "/api/rooms",
        "/api/rooms/{room}",
        "/api/rooms/{room}/participants/{participant}",
    ] {
        assert!(doc["paths"][p].is_object(), "{p} documented");
    }
    server.shutdown().await.unwrap();
}
