//! HTTP behaviour of the WHIP/WHEP endpoints and sessions: every status code the core
//! issue names, with real sessions where one is needed.

use crate::harness::*;
use wisp::http::paths;

const FRAG: &str = "application/trickle-ice-sdpfrag";

async fn patch(
    server: &wisp::Server,
    loc: &str,
    if_match: Option<&str>,
    ct: &str,
    body: &str,
) -> reqwest::Response {
    let mut r = http()
        .patch(url(server, loc))
        .header("content-type", ct)
        .body(body.to_string());
    if let Some(m) = if_match {
        r = r.header("if-match", m);
    }
    r.send().await.unwrap()
}

fn canned_offer(dir: &str) -> String {
    format!(
        "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n\
a=fingerprint:sha-256 AA:BB\r\na=ice-ufrag:abcd\r\na=ice-pwd:aaaaaaaaaaaaaaaaaaaaaaaa\r\n\
m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na={dir}\r\na=rtcp-mux\r\n\
a=setup:actpass\r\na=rtpmap:111 opus/48000/2\r\n"
    )
}

#[tokio::test]
async fn endpoint_errors_have_status_and_one_sentence() {
    let server = start().await;
    let whip = url(&server, &paths::whip("room"));
    let r = http()
        .post(&whip)
        .header("content-type", "text/plain")
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
    assert!(r.text().await.unwrap().contains("application/sdp"));
    let r = post_sdp(&whip, "this is not sdp").await;
    assert_eq!(r.status, 400, "{}", r.body);
    let r = post_sdp(&whip, &canned_offer("recvonly")).await;
    assert_eq!(r.status, 422, "{}", r.body);
    let r = post_sdp(
        &url(&server, &paths::whep("room")),
        &canned_offer("sendonly"),
    )
    .await;
    assert_eq!(r.status, 422, "{}", r.body);
    let big = "v=0\r\n".repeat(20_000);
    let r = post_sdp(&whip, &big).await;
    assert_eq!(r.status, 413);
    let r = http().get(url(&server, "/nope")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    let r = post_sdp(&url(&server, "/whip/bad%20room"), &canned_offer("sendonly")).await;
    assert_eq!(r.status, 400);
    let r = post_sdp(
        &url(&server, &paths::whep_participant("room", "nobody")),
        &canned_offer("recvonly"),
    )
    .await;
    assert_eq!(r.status, 404);
    let r = http().put(&whip).send().await.unwrap();
    assert_eq!(r.status(), 405);
    assert!(r.headers().contains_key("allow"));
    // Each error body is one sentence ending in a period.
    let r = post_sdp(&whip, &canned_offer("inactive")).await;
    assert!(
        r.body.trim_end().ends_with('.') && r.body.lines().count() == 1,
        "{}",
        r.body
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn options_get_head() {
    let server = start().await;
    let whep = url(&server, &paths::whep("room"));
    let r = http()
        .request(reqwest::Method::OPTIONS, &whep)
        .header("origin", "https://example.com")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let h = r.headers();
    assert_eq!(h["access-control-allow-origin"], "*");
    assert!(
        h["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("PATCH")
    );
    assert!(
        h["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("If-Match")
    );
    assert!(
        h["access-control-expose-headers"]
            .to_str()
            .unwrap()
            .contains("Location")
    );
    assert_eq!(h["accept-post"], "application/sdp");
    assert!(!h.contains_key("link"), "no ICE servers in a preflight");
    let r = http()
        .request(reqwest::Method::OPTIONS, &whep)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    assert_eq!(r.headers()["accept-post"], "application/sdp");
    let r = http().get(&whep).send().await.unwrap();
    assert!(r.status().is_success());
    assert!(r.bytes().await.unwrap().is_empty());
    let r = http().head(&whep).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/sdp");
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn bearer_token_is_required_except_for_preflight() {
    let mut c = test_config();
    c.auth.token = Some("s3cret".into());
    let server = start_with(c).await;
    let whip = url(&server, &paths::whip("room"));
    let r = post_sdp(&whip, &canned_offer("sendonly")).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.headers["www-authenticate"], "Bearer");
    let r = http()
        .post(&whip)
        .bearer_auth("wrong")
        .header("content-type", "application/sdp")
        .body(canned_offer("sendonly"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let session = url(&server, &paths::session(&wisp::sfu::SessionId::new()));
    let r = http()
        .patch(&session)
        .header("content-type", FRAG)
        .body("a=end-of-candidates\r\n")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = http().delete(&session).send().await.unwrap();
    assert_eq!(r.status(), 401);
    // With the token the request reaches validation (here: a 422 for a recvonly offer).
    let r = http()
        .post(&whip)
        .bearer_auth("s3cret")
        .header("content-type", "application/sdp")
        .body(canned_offer("recvonly"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let r = http()
        .request(reqwest::Method::OPTIONS, &whip)
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_patch_delete_lifecycle() {
    let server = start().await;
    let p = Publisher::join(&server, "room").await;
    assert!(p.session.starts_with(paths::SESSION));
    assert!(p.etag.starts_with('"') && p.etag.ends_with('"'));
    assert!(p.answer.contains("a=recvonly"));
    assert!(!p.answer.contains("a=sendrecv"));
    assert!(
        p.answer.contains("a=candidate:"),
        "answer carries server candidates"
    );
    assert_ne!(p.participant, p.session.trim_start_matches(paths::SESSION));

    let trickle = "a=ice-options:trickle\r\nm=audio 9 RTP/AVP 0\r\na=mid:1\r\n\
a=candidate:1 1 udp 2130706431 127.0.0.1 50999 typ host\r\n";
    let r = patch(&server, &p.session, Some(&p.etag), FRAG, trickle).await;
    assert_eq!(r.status(), 204);
    assert!(!r.headers().contains_key("etag"));
    assert!(r.bytes().await.unwrap().is_empty());
    // A trickle fragment that repeats the current credentials is not an ICE restart.
    let local = p.peer.pc.local_description().await.unwrap().sdp;
    let cred = |k: &str| {
        local
            .lines()
            .find_map(|l| l.trim_end().strip_prefix(k).map(str::to_string))
            .unwrap()
    };
    let same = format!(
        "a=ice-ufrag:{}\r\na=ice-pwd:{}\r\nm=audio 9 RTP/AVP 0\r\na=mid:0\r\n\
a=candidate:1 1 udp 2130706431 127.0.0.1 50998 typ host\r\n",
        cred("a=ice-ufrag:"),
        cred("a=ice-pwd:")
    );
    let r = patch(&server, &p.session, Some(&p.etag), FRAG, &same).await;
    assert_eq!(r.status(), 204);
    assert!(!r.headers().contains_key("etag"));
    let unusable = "m=audio 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\n\
a=candidate:1 1 TCP 2130706431 127.0.0.1 9 typ host tcptype active\r\n\
a=candidate:2 1 udp 2130706431 fe80::1 5000 typ host\r\n\
a=candidate:3 1 udp 2130706431 abc.local 5000 typ host\r\n";
    assert_eq!(
        patch(&server, &p.session, Some(&p.etag), FRAG, unusable)
            .await
            .status(),
        204
    );
    assert_eq!(
        patch(
            &server,
            &p.session,
            Some(&p.etag),
            FRAG,
            "a=end-of-candidates\r\n"
        )
        .await
        .status(),
        204
    );
    assert_eq!(
        patch(&server, &p.session, None, FRAG, trickle)
            .await
            .status(),
        428
    );
    assert_eq!(
        patch(&server, &p.session, Some("\"stale\""), FRAG, trickle)
            .await
            .status(),
        412
    );
    assert_eq!(
        patch(
            &server,
            &p.session,
            Some(&p.etag),
            "application/sdp",
            trickle
        )
        .await
        .status(),
        415
    );
    assert_eq!(
        patch(&server, &p.session, Some(&p.etag), FRAG, "garbage here")
            .await
            .status(),
        400
    );

    // ICE restart: new credentials → 200 + sdpfrag with the server's new ones + a new ETag.
    let old_ufrag = p
        .answer
        .lines()
        .find_map(|l| l.strip_prefix("a=ice-ufrag:"))
        .unwrap()
        .trim()
        .to_string();
    let restart = "a=ice-ufrag:rst1\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n";
    let r = patch(&server, &p.session, Some("*"), FRAG, restart).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], FRAG);
    let etag1 = r.headers()["etag"].to_str().unwrap().to_string();
    assert_ne!(etag1, p.etag);
    let body = r.text().await.unwrap();
    let new_ufrag = body
        .lines()
        .find_map(|l| l.strip_prefix("a=ice-ufrag:"))
        .unwrap()
        .trim()
        .to_string();
    assert_ne!(new_ufrag, old_ufrag);
    assert!(body.contains("a=ice-pwd:"));
    assert!(body.contains("a=candidate:"));
    let restart2 = "a=ice-ufrag:rst2\r\na=ice-pwd:bcdefghijklmnopqrstuvwxy\r\n";
    let r = patch(&server, &p.session, Some(&etag1), FRAG, restart2).await;
    assert_eq!(r.status(), 200);
    let etag2 = r.headers()["etag"].to_str().unwrap().to_string();
    assert_ne!(etag2, etag1);
    assert_eq!(
        patch(&server, &p.session, Some(&etag1), FRAG, trickle)
            .await
            .status(),
        412
    );

    let r = http().get(url(&server, &p.session)).send().await.unwrap();
    assert!(r.status().is_success());
    let r = http()
        .delete(url(&server, &p.session))
        .header("if-match", "\"whatever\"")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        patch(&server, &p.session, Some(&etag2), FRAG, trickle)
            .await
            .status(),
        404
    );
    assert_eq!(
        http()
            .delete(url(&server, &p.session))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        http()
            .get(url(&server, &p.session))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(server.sfu.session_count(), 0);
    assert_eq!(
        server.sfu.rtc().ports.in_use(),
        0,
        "the session's port is free again"
    );
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exhausted_limits_answer_503_with_retry_after() {
    let mut c = test_config();
    c.ice_ports = (c.ice_ports.0, c.ice_ports.0);
    let server = start_with(c).await;
    let _p = Publisher::join(&server, "room").await;
    let peer = Peer::new().await;
    peer.pc
        .add_transceiver_from_kind(
            rtc::rtp_transceiver::rtp_sender::RtpCodecKind::Audio,
            Some(rtc::rtp_transceiver::RTCRtpTransceiverInit {
                direction: rtc::rtp_transceiver::RTCRtpTransceiverDirection::Recvonly,
                ..Default::default()
            }),
        )
        .await
        .unwrap();
    let offer = peer.offer().await;
    let r = post_sdp(&url(&server, &paths::whep("room")), &offer).await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert!(r.headers.contains_key("retry-after"));
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_prior_knowledge_is_served() {
    let server = start().await;
    let client = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let r = client
        .get(url(&server, &paths::whip("room")))
        .send()
        .await
        .unwrap();
    assert_eq!(r.version(), reqwest::Version::HTTP_2);
    assert!(r.status().is_success());
    server.shutdown().await.unwrap();
}

/// A viewer gets transport-wide CC (wisp's own estimate) only when it offered RTX, which the
/// probes that let the estimate rise go as; otherwise the answer leaves transport-cc out, so
/// a browser keeps sending REMB and the leg keeps an estimate.
#[tokio::test]
async fn a_viewer_gets_transport_cc_only_with_rtx() {
    let server = start().await;
    let fixture = include_str!("../../conformance/fixtures/whep-offer.sdp")
        .replace("\r\n", "\n")
        .replace('\n', "\r\n");
    let twcc = fixture
        .replace(
            "a=rtcp-fb:96 nack\r\n",
            "a=rtcp-fb:96 nack\r\na=rtcp-fb:96 transport-cc\r\n",
        )
        .replace(
            "a=rtcp-rsize\r\n",
            "a=rtcp-rsize\r\na=extmap:3 http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n",
        );
    assert!(twcc.contains("transport-cc") && twcc.contains("rtx/90000"));
    let without_rtx = twcc
        .replace(
            "m=video 9 UDP/TLS/RTP/SAVPF 96 97",
            "m=video 9 UDP/TLS/RTP/SAVPF 96",
        )
        .replace("a=rtpmap:97 rtx/90000\r\na=fmtp:97 apt=96\r\n", "");
    assert!(!without_rtx.contains("rtx"));
    for (offer, want) in [(&twcc, true), (&without_rtx, false)] {
        let r = http()
            .post(url(&server, &paths::whep("room")))
            .header("content-type", "application/sdp")
            .body(offer.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        let answer = r.text().await.unwrap();
        assert_eq!(
            answer.contains("transport-cc"),
            want,
            "RTX offered: {want}; the answer:\n{answer}"
        );
        assert_eq!(answer.contains("transport-wide-cc"), want, "{answer}");
    }
}
