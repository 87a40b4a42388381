//! The embedded TURN/STUN server: relay-only webrtc-rs clients publish and play through it,
//! and a raw TURN client checks credentials, quotas and the relay guard.

use std::net::SocketAddr;
use std::time::Duration;

use crate::harness::*;
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use rtc::stun::message::*;
use rtc::stun::xoraddr::XorMappedAddress;
use rtc::turn::proto::peeraddr::PeerAddress;
use rtc::turn::proto::relayaddr::RelayedAddress;
use webrtc::peer_connection::RTCIceCandidateType;
use wisp::http::paths;
use wisp::rtc::client::ClientIce;
use wisp::turn::Minter;

/// The `Link` headers of a non-preflight OPTIONS on `path`.
async fn ice_links(server: &wisp::Server, path: &str) -> Vec<String> {
    let r = http()
        .request(reqwest::Method::OPTIONS, url(server, path))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.headers()
        .get_all("link")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_only_clients_publish_and_play_through_turn() {
    let server = start_with(turn_config(10)).await;
    let links = ice_links(&server, &paths::whip("relayed")).await;
    assert!(
        links.iter().any(|l| l.starts_with("<turn:127.0.0.1:")
            && l.contains("transport=udp")
            && l.contains("credential-type=\"password\"")),
        "{links:?}"
    );
    let ice = ClientIce::from_links(links.iter().map(String::as_str), true);
    let publisher = Publisher::join_with(&server, "relayed", ice).await;
    let links = ice_links(&server, &paths::whep("relayed")).await;
    let ice = ClientIce::from_links(links.iter().map(String::as_str), true);
    let mut viewer = Viewer::join_with(&server, &paths::whep("relayed"), ice).await;

    let mut video = 0;
    let mut ticker = tokio::time::interval(Duration::from_millis(5));
    let mut n: u16 = 0;
    while video < 30 {
        assert!(
            n < 3000,
            "the viewer did not receive media through the relay"
        );
        ticker.tick().await;
        publisher.send_video(n, n.is_multiple_of(10)).await;
        n += 1;
        while let Ok((kind, _)) = viewer.packets.try_recv() {
            video += (kind == RtpCodecKind::Video) as usize;
        }
    }
    for (who, peer) in [("publisher", &publisher.peer), ("viewer", &viewer.peer)] {
        let local = peer.selected_local_type().await.expect("a selected pair");
        assert_eq!(local, RTCIceCandidateType::Relay, "{who} is relayed");
    }
    assert!(server.turn.as_ref().unwrap().allocation_count() >= 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ice_server_links_only_outside_preflight() {
    let server = start_with(turn_config(10)).await;
    let r = http()
        .request(reqwest::Method::OPTIONS, url(&server, &paths::whip("x")))
        .header("origin", "https://example.com")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers().get("link").is_none(),
        "no credentials in a preflight"
    );
    let publisher = Publisher::join(&server, "x").await;
    let turn_links = publisher
        .links
        .iter()
        .filter(|v| v.contains("<turn:"))
        .count();
    assert_eq!(turn_links, 2, "turn: over UDP and TCP on the 201");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stun_binding_answers_the_mapped_address() {
    let server = start_with(turn_config(10)).await;
    let turn = server.turn.as_ref().unwrap();
    let mut c = Raw::udp(turn.udp_addr).await;
    let me = c.udp.as_ref().unwrap().local_addr().unwrap();
    let r = c
        .call(&[Box::new(TransactionId::new()), Box::new(BINDING_REQUEST)])
        .await;
    assert_eq!(r.typ, BINDING_SUCCESS);
    let mut mapped = XorMappedAddress::default();
    use rtc::stun::message::Getter;
    mapped.get_from(&r).unwrap();
    assert_eq!(SocketAddr::new(mapped.ip, mapped.port), me);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_forged_and_foreign_credentials_are_refused() {
    let server = start_with(turn_config(2)).await;
    let turn = server.turn.as_ref().unwrap();
    let minter = Minter::new(SECRET.as_bytes(), Duration::from_secs(60));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();

    // Expired: a correctly signed username whose time is up.
    let old = minter.mint_at("room", now - 10);
    let r = Raw::udp(turn.udp_addr)
        .await
        .allocate(&old.username, &old.password)
        .await;
    assert_eq!(code(&r), Some(401), "expired credentials");

    // Forged: a fresh username with a password not made from the server's secret.
    let forged = Minter::new(b"not-the-secret", Duration::from_secs(60)).mint("room");
    let r = Raw::udp(turn.udp_addr)
        .await
        .allocate(&forged.username, &forged.password)
        .await;
    assert_eq!(code(&r), Some(401), "forged credentials");

    // Good credentials for room "a" allocate, over UDP and over TCP.
    let good = turn.credential("a");
    let mut udp = Raw::udp(turn.udp_addr).await;
    let r = udp.allocate(&good.username, &good.password).await;
    assert_eq!(
        r.typ,
        MessageType::new(METHOD_ALLOCATE, CLASS_SUCCESS_RESPONSE)
    );
    let mut relayed = RelayedAddress::default();
    use rtc::stun::message::Getter;
    relayed.get_from(&r).unwrap();
    assert_eq!(relayed.ip.to_string(), "127.0.0.1");
    let mut tcp = Raw::tcp(turn.tcp_addr).await;
    let r = tcp.allocate(&good.username, &good.password).await;
    assert_eq!(
        r.typ,
        MessageType::new(METHOD_ALLOCATE, CLASS_SUCCESS_RESPONSE),
        "TURN over TCP"
    );
    // The quota (2 here) stops a third allocation with the same credential.
    let r = Raw::udp(turn.udp_addr)
        .await
        .allocate(&good.username, &good.password)
        .await;
    assert_eq!(code(&r), Some(486), "allocation quota");

    // Relays reach only ICE sessions of the credential's room: not an arbitrary address,
    // not the HTTP port, not a session of room "b"; a session of room "a" is fine.
    let in_b = Publisher::join(&server, "b").await;
    let in_a = Publisher::join(&server, "a").await;
    let port_of = |answer: &str| -> u16 {
        answer
            .lines()
            .find(|l| l.starts_with("a=candidate:"))
            .and_then(|l| l.split_whitespace().nth(5))
            .unwrap()
            .parse()
            .unwrap()
    };
    let (nonce, realm) = {
        // A fresh nonce: any authenticated request without integrity gets a 401 with one.
        let r = udp
            .call(&[
                Box::new(TransactionId::new()),
                Box::new(MessageType::new(METHOD_CREATE_PERMISSION, CLASS_REQUEST)),
            ])
            .await;
        nonce_realm(&r)
    };
    let peers: [(SocketAddr, u16); 4] = [
        ("10.1.2.3:5000".parse().unwrap(), 403),
        (server.addr, 403),
        (
            SocketAddr::new("127.0.0.1".parse().unwrap(), port_of(&in_b.answer)),
            403,
        ),
        (
            SocketAddr::new("127.0.0.1".parse().unwrap(), port_of(&in_a.answer)),
            0,
        ),
    ];
    for (peer, want) in peers {
        let r = udp
            .authed(
                METHOD_CREATE_PERMISSION,
                &good.username,
                &good.password,
                &realm,
                &nonce,
                vec![Box::new(PeerAddress {
                    ip: peer.ip(),
                    port: peer.port(),
                })],
            )
            .await;
        match want {
            0 => assert_eq!(
                r.typ,
                MessageType::new(METHOD_CREATE_PERMISSION, CLASS_SUCCESS_RESPONSE),
                "{peer}: {:?}",
                code(&r)
            ),
            w => assert_eq!(code(&r), Some(w), "permission to {peer}"),
        }
    }
    // Credentials minted for another room are replayed here: same refusal for room a's session.
    let other = turn.credential("b");
    let mut c = Raw::udp(turn.udp_addr).await;
    let r = c.allocate(&other.username, &other.password).await;
    assert_eq!(
        r.typ,
        MessageType::new(METHOD_ALLOCATE, CLASS_SUCCESS_RESPONSE)
    );
    let (nonce, realm) = {
        let r = c
            .call(&[
                Box::new(TransactionId::new()),
                Box::new(MessageType::new(METHOD_CREATE_PERMISSION, CLASS_REQUEST)),
            ])
            .await;
        nonce_realm(&r)
    };
    let r = c
        .authed(
            METHOD_CREATE_PERMISSION,
            &other.username,
            &other.password,
            &realm,
            &nonce,
            vec![Box::new(PeerAddress {
                ip: "127.0.0.1".parse().unwrap(),
                port: port_of(&in_a.answer),
            })],
        )
        .await;
    assert_eq!(
        code(&r),
        Some(403),
        "room b's credential cannot reach room a"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nat_1to1_announces_the_public_ip_and_the_relay_reaches_the_bound_socket() {
    // Sockets bound to 127.0.0.1, announced as 127.0.0.2 (which reaches nothing bound): only
    // the rewritten candidates plus the relay's public → bound translation can connect.
    let mut c = turn_config(10);
    c.ice_bind = Some("127.0.0.1".parse().unwrap());
    c.public_ips = vec!["127.0.0.2".parse().unwrap()];
    if let Some(t) = c.turn.as_mut() {
        t.relay_public = "127.0.0.2".parse().unwrap();
    }
    let server = start_with(c).await;
    let links = ice_links(&server, &paths::whip("nat")).await;
    let ice = ClientIce::from_links(links.iter().map(String::as_str), true);
    let publisher = Publisher::join_with(&server, "nat", ice).await;
    let candidates: Vec<&str> = publisher
        .answer
        .lines()
        .filter(|l| l.starts_with("a=candidate:"))
        .collect();
    assert!(!candidates.is_empty());
    assert!(
        candidates
            .iter()
            .all(|l| l.contains(" 127.0.0.2 ") && !l.contains(" 127.0.0.1 ")),
        "{candidates:?}"
    );
    let links = ice_links(&server, &paths::whep("nat")).await;
    let ice = ClientIce::from_links(links.iter().map(String::as_str), true);
    let mut viewer = Viewer::join_with(&server, &paths::whep("nat"), ice).await;
    let mut video = 0;
    let mut ticker = tokio::time::interval(Duration::from_millis(5));
    let mut n: u16 = 0;
    while video < 30 {
        assert!(n < 3000, "no media through NAT 1:1 + relay");
        ticker.tick().await;
        publisher.send_video(n, n.is_multiple_of(10)).await;
        n += 1;
        while let Ok((kind, _)) = viewer.packets.try_recv() {
            video += (kind == RtpCodecKind::Video) as usize;
        }
    }
}
