//! Recording and HLS over HTTP on loopback: a publisher's session becomes a listed file,
//! served behind the room's tokens (header, `?token=`), with byte ranges; names outside the
//! directory are not served; HLS of a VP8 room is refused in words. (The files' contents are
//! checked with ffprobe/ffmpeg and real clients in tests/interop/record_lab.sh.)

use std::time::Duration;

use crate::harness::*;
use wisp::auth::{JwtConfig, Role, claims, mint_token};
use wisp::http::paths;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publisher_is_recorded_listed_and_served_behind_the_rooms_tokens() {
    let jwt = JwtConfig {
        secret: Some("record-test-secret".into()),
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
    let dir = std::env::temp_dir().join(format!("wisp-rec-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut c = test_config();
    c.auth.jwt = jwt.clone();
    c.record =
        wisp::record::RecordConfig::new(Some(dir.clone()), Some(vec!["rec".into()])).unwrap();
    let server = start_with(c).await;
    let at = |p: &str| url(&server, p);
    let watcher = token("rec", Role::Subscribe);
    let list_url = at(&paths::api_recordings("rec"));
    let list = |bearer: Option<String>| {
        let u = list_url.clone();
        async move {
            let mut r = http().get(&u);
            if let Some(b) = bearer {
                r = r.bearer_auth(b);
            }
            let r = r.send().await.unwrap();
            let status = r.status().as_u16();
            let body: serde_json::Value =
                serde_json::from_str(&r.text().await.unwrap()).unwrap_or_default();
            (status, body)
        }
    };

    // Not recorded: another room's publisher leaves nothing behind.
    let other = Publisher::join_token(&server, "other", &token("other", Role::Publish)).await;
    let publisher =
        Publisher::join_token(&server, "rec?name=Ada L", &token("rec", Role::Publish)).await;

    // Media until the file is there (its header waits for both tracks' timing).
    let mut n = 0u16;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let file = within("the recording to be listed", async {
        loop {
            tick.tick().await;
            publisher.send_video(n, n.is_multiple_of(30)).await;
            publisher.send_audio(n).await;
            other.send_video(n, n.is_multiple_of(30)).await;
            n = n.wrapping_add(1);
            if n.is_multiple_of(10) {
                let (status, body) = list(Some(watcher.clone())).await;
                assert_eq!(status, 200, "{body}");
                if let Some(f) = body["recordings"].as_array().and_then(|a| a.first()) {
                    assert_eq!(f["recording"], true, "{body}");
                    break f["url"].as_str().unwrap().to_string();
                }
            }
        }
    })
    .await;
    assert!(
        file.starts_with("/recordings/rec/Ada_L-") && file.ends_with("Z.webm"),
        "{file}"
    );
    assert!(
        !dir.join("other").exists(),
        "--record-rooms leaves other rooms alone"
    );

    // The listing and the file need a token for the room.
    assert_eq!(list(None).await.0, 401);
    assert_eq!(list(Some(token("nope", Role::Subscribe))).await.0, 403);
    let r = http().get(at(&file)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);

    // The publisher leaves: the file is closed and stays listed.
    publisher.peer.pc.close().await.ok();
    let delete = http()
        .delete(at(&publisher.session))
        .bearer_auth(token("rec", Role::Publish))
        .send()
        .await
        .unwrap();
    assert_eq!(delete.status().as_u16(), 200);
    within("the recording to end", async {
        loop {
            let (_, body) = list(Some(watcher.clone())).await;
            if body["recordings"][0]["recording"] == false {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;

    // A <video> element's request: the token in the query; then a range.
    let u = format!("{}?token={watcher}", at(&file));
    let r = http().get(&u).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["content-type"], "video/webm");
    assert_eq!(r.headers()["accept-ranges"], "bytes");
    let body = r.bytes().await.unwrap();
    assert_eq!(&body[..4], &[0x1A, 0x45, 0xDF, 0xA3], "an EBML file");
    for what in [&b"webm"[..], b"V_VP8", b"A_OPUS"] {
        assert!(
            body.windows(what.len()).any(|w| w == what),
            "{what:?} in it"
        );
    }
    let r = http()
        .get(&u)
        .header("range", "bytes=4-")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 206);
    let total = body.len();
    assert_eq!(
        r.headers()["content-range"],
        format!("bytes 4-{}/{total}", total - 1).as_str()
    );
    assert_eq!(&r.bytes().await.unwrap()[..], &body[4..]);
    let r = http()
        .get(&u)
        .header("range", format!("bytes={total}-"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 416);
    assert_eq!(
        r.headers()["content-range"],
        format!("bytes */{total}").as_str()
    );

    // Only recordings are served, and only the room's.
    for bad in [
        "/recordings/rec/..%2Fother",
        "/recordings/rec/.hidden.mp4",
        "/recordings/rec/x.txt",
    ] {
        let r = http()
            .get(format!("{}?token={watcher}", at(bad)))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 404, "{bad}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hls_of_a_vp8_room_is_refused_in_words_and_an_empty_room_is_not_found() {
    let server = start().await;
    let at = |p: &str| url(&server, p);
    let r = http()
        .get(at(&paths::hls_playlist("nobody")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);

    let publisher = Publisher::join(&server, "vp8hls").await;
    let playlist = at(&paths::hls_playlist("vp8hls"));
    let get = tokio::spawn(async move { http().get(playlist).send().await.unwrap() });
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let mut n = 0u16;
    let r = within("the HLS answer", async {
        loop {
            tick.tick().await;
            publisher.send_video(n, n.is_multiple_of(30)).await;
            publisher.send_audio(n).await;
            n = n.wrapping_add(1);
            if get.is_finished() {
                break get.await.unwrap();
            }
        }
    })
    .await;
    assert_eq!(r.status().as_u16(), 422);
    let text = r.text().await.unwrap();
    assert!(text.contains("VP8") && text.contains("H.264"), "{text}");
}
