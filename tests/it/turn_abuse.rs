//! TURN port reservations (RFC 8656 §7.2: EVEN-PORT, RESERVATION-TOKEN), which coturn's own
//! test client sends on every Allocate, and the quotas around them.

use rtc::stun::attributes::*;
use rtc::stun::message::*;
use rtc::turn::proto::relayaddr::RelayedAddress;

use crate::harness::*;

fn relayed_port(r: &Message) -> u16 {
    let mut relayed = RelayedAddress::default();
    relayed.get_from(r).unwrap();
    relayed.port
}

fn success(r: &Message) -> bool {
    r.typ == MessageType::new(METHOD_ALLOCATE, CLASS_SUCCESS_RESPONSE)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn even_port_reserves_the_next_port_for_its_token() {
    let server = start_with(turn_config(3)).await;
    let turn = server.turn.as_ref().unwrap();
    let cred = turn.credential("a");

    // EVEN-PORT without R: an even port, no token.
    let r = Raw::udp(turn.udp_addr)
        .await
        .allocate_with(&cred.username, &cred.password, &[(ATTR_EVEN_PORT, vec![0])])
        .await;
    assert!(success(&r), "{:?}", code(&r));
    assert_eq!(relayed_port(&r) % 2, 0);
    assert!(r.get(ATTR_RESERVATION_TOKEN).is_err());

    // With R: an even port and a token for the next one.
    let mut first = Raw::udp(turn.udp_addr).await;
    let r = first
        .allocate_with(
            &cred.username,
            &cred.password,
            &[(ATTR_EVEN_PORT, vec![0x80])],
        )
        .await;
    assert!(success(&r), "{:?}", code(&r));
    let even = relayed_port(&r);
    assert_eq!(even % 2, 0);
    let token = r.get(ATTR_RESERVATION_TOKEN).expect("a RESERVATION-TOKEN");
    assert_eq!(token.len(), 8);

    // The reservation counts against the quota (3: two allocations and one reservation).
    let r = Raw::udp(turn.udp_addr)
        .await
        .allocate(&cred.username, &cred.password)
        .await;
    assert_eq!(
        code(&r),
        Some(486),
        "the reservation holds a place in the quota"
    );

    // The token claims the odd port (a second client of the same user, as RTCP beside RTP).
    let r = Raw::udp(turn.udp_addr)
        .await
        .allocate_with(
            &cred.username,
            &cred.password,
            &[(ATTR_RESERVATION_TOKEN, token.clone())],
        )
        .await;
    assert!(success(&r), "{:?}", code(&r));
    assert_eq!(relayed_port(&r), even + 1);

    // Once only; an unknown token; both attributes at once; a malformed EVEN-PORT.
    let other = turn.credential("b");
    for (attrs, want) in [
        (vec![(ATTR_RESERVATION_TOKEN, token.clone())], 508),
        (vec![(ATTR_RESERVATION_TOKEN, vec![9; 8])], 508),
        (
            vec![
                (ATTR_EVEN_PORT, vec![0x80]),
                (ATTR_RESERVATION_TOKEN, vec![9; 8]),
            ],
            400,
        ),
        (vec![(ATTR_EVEN_PORT, vec![0x80, 0])], 400),
        (vec![(ATTR_RESERVATION_TOKEN, vec![9; 4])], 400),
    ] {
        let r = Raw::udp(turn.udp_addr)
            .await
            .allocate_with(&other.username, &other.password, &attrs)
            .await;
        assert_eq!(code(&r), Some(want), "{attrs:?}");
    }
}
