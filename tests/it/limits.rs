//! HTTP limits: a client that sends nothing or only part of its headers is closed at the
//! header timeout, connections over the per-address cap are refused while the others are
//! served, and POSTs past the per-address rate get 429 + Retry-After in words.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::harness::*;
use wisp::http::paths;

/// Reads until the server closes the connection (bounded by the harness timeout).
async fn closed_by_server(mut s: TcpStream) -> Vec<u8> {
    within("the server to close the connection", async {
        let mut got = Vec::new();
        let mut buf = [0u8; 1024];
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return got,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_silent_clients_are_closed_at_the_header_timeout() {
    let mut c = test_config();
    c.http_limits.header_timeout = Duration::from_secs(1);
    let server = start_with(c).await;
    let silent = TcpStream::connect(server.addr).await.unwrap();
    let mut partial = TcpStream::connect(server.addr).await.unwrap();
    partial
        .write_all(b"POST /whip/r1 HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let (a, b) = tokio::join!(closed_by_server(silent), closed_by_server(partial));
    assert!(a.is_empty(), "nothing is said to a silent client");
    // hyper answers an unfinished head with 408 or just closes; either way it is gone.
    assert!(
        b.is_empty() || b.starts_with(b"HTTP/1.1 408"),
        "{}",
        String::from_utf8_lossy(&b)
    );
    // The server still serves everyone else.
    let r = http()
        .get(url(&server, paths::HEALTH))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_over_the_per_address_cap_are_refused() {
    let mut c = test_config();
    c.http_limits.max_connections_per_ip = 3;
    let server = start_with(c).await;
    // Three idle connections hold this address's places (each has sent a byte, so only the
    // cap can close the fourth).
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut s = TcpStream::connect(server.addr).await.unwrap();
        s.write_all(b"G").await.unwrap();
        held.push(s);
    }
    let fourth = TcpStream::connect(server.addr).await.unwrap();
    let answer = String::from_utf8(closed_by_server(fourth).await).unwrap();
    assert!(answer.starts_with("HTTP/1.1 503 "), "{answer}");
    assert!(answer.contains("Retry-After: 5\r\n"), "{answer}");
    assert!(answer.ends_with("Too many connections from this address; retry in a moment.\n"));
    drop(held);
    // Places come back when the server has seen the connections close (it notices each close
    // on its own task, so a request made at once may still find them held: wait, bounded, for
    // the place to come back).
    within("a place after the held connections closed", async {
        loop {
            if let Ok(r) = http().get(url(&server, paths::HEALTH)).send().await
                && r.status() == 200
            {
                return;
            }
            tokio::task::yield_now().await;
        }
    })
    .await;
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn posts_past_the_rate_get_429_with_retry_after() {
    let mut c = test_config();
    c.http_limits.request_rate = 0.001; // one token per 1000 s
    c.http_limits.request_burst = 2.0;
    let server = start_with(c).await;
    let whip = url(&server, &paths::whip("rate"));
    let offer = "v=0\r\n"; // malformed on purpose: the limit comes before validation
    for _ in 0..2 {
        assert_eq!(post_sdp(&whip, offer).await.status, 400);
    }
    let r = post_sdp(&whip, offer).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.headers["retry-after"], "1000");
    assert_eq!(
        r.body.trim(),
        "Too many requests from this address; retry in 1000 s."
    );
    // GETs are not limited.
    assert_eq!(
        http()
            .get(url(&server, paths::HEALTH))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    server.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_close_but_event_streams_stay_open() {
    let mut c = test_config();
    c.http_limits.idle_timeout = Duration::from_secs(1);
    let server = start_with(c).await;
    // HTTP/2 with prior knowledge: the preface and an empty SETTINGS frame, then silence.
    // hyper would keep it forever; the idle timeout closes it.
    let mut h2 = TcpStream::connect(server.addr).await.unwrap();
    h2.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .await
        .unwrap();
    let t = std::time::Instant::now();
    let said = closed_by_server(h2).await;
    assert!(!said.is_empty(), "the server answered the preface");
    let waited = t.elapsed();
    assert!(
        waited >= Duration::from_millis(900),
        "closed after {waited:?}, before the idle timeout"
    );

    // An event stream writes a keep-alive comment well within the idle timeout: after three
    // idle timeouts it is still open and still delivers events.
    let client = http();
    let mut events = Sse::open(&client, &url(&server, &paths::room_events("idle"))).await;
    assert_eq!(events.next().await.0, "roster");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    let mut comments = 0;
    while tokio::time::Instant::now() < deadline {
        match tokio::time::timeout_at(deadline, events.raw_chunk()).await {
            Ok(Some(chunk)) if chunk.starts_with(": keep-alive") => comments += 1,
            Ok(Some(_)) => {}
            Ok(None) => panic!("the event stream was closed"),
            Err(_) => break,
        }
    }
    assert!(comments >= 3, "{comments} keep-alive comments in 3 s");
    let _publisher = Publisher::join(&server, "idle").await;
    events.until("joined", |_| true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_room_answers_503_and_other_rooms_are_served() {
    let mut c = test_config();
    c.max_sessions_per_room = 2;
    c.max_event_streams_per_room = 2;
    // Keep-alives every second: a closed stream is noticed at the next one.
    c.http_limits.idle_timeout = Duration::from_secs(3);
    let server = start_with(c).await;
    let _a = Publisher::join(&server, "full").await;
    let _b = Viewer::join(&server, &paths::whep("full")).await;
    let r = post_sdp(
        &url(&server, &paths::whip("full")),
        include_str!("../../conformance/fixtures/whip-offer.sdp"),
    )
    .await;
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(
        r.body.trim_end(),
        "The server is out of session slots in this room; retry later."
    );
    assert!(
        r.headers.contains_key("retry-after"),
        "503 carries Retry-After"
    );
    // Another room is not affected.
    let _c = Publisher::join(&server, "other").await;

    // Event streams: two open, the third refused, until one closes.
    let client = http();
    let events = url(&server, &paths::room_events("full"));
    let first = Sse::open(&client, &events).await;
    let _second = Sse::open(&client, &events).await;
    let r = client.get(&events).send().await.unwrap();
    assert_eq!(r.status(), 503);
    assert!(r.headers().contains_key("retry-after"));
    assert_eq!(
        r.text().await.unwrap().trim_end(),
        "The server is out of event streams for this room; retry later."
    );
    drop(first);
    within("the closed stream's place to free", async {
        loop {
            let r = client.get(&events).send().await.unwrap();
            if r.status() == 200 {
                break;
            }
            assert_eq!(r.status(), 503);
            tokio::task::yield_now().await;
        }
    })
    .await;
}
