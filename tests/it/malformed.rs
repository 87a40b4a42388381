//! Malformed-input injection: mutated offers and fragments must give a clear 4xx (or be
//! accepted), never a panic or a 5xx, and the server keeps serving. Deterministic: a fixed seed.

use crate::harness::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use wisp::signal::{Fragment, Role, offer::parse_offer};

const OFFER: &str = include_str!("../../conformance/fixtures/whip-offer.sdp");
const FRAG: &str = include_str!("../../conformance/fixtures/trickle.sdpfrag");

fn mutate(rng: &mut StdRng, base: &str) -> String {
    let mut b = base.as_bytes().to_vec();
    for _ in 0..rng.random_range(1..8) {
        if b.is_empty() {
            break;
        }
        let i = rng.random_range(0..b.len());
        match rng.random_range(0..4) {
            0 => b[i] = rng.random(),
            1 => {
                b.remove(i);
            }
            2 => b.insert(i, rng.random()),
            _ => {
                let j = rng.random_range(i..b.len());
                b.drain(i..j);
            }
        }
    }
    String::from_utf8_lossy(&b).into_owned()
}

#[test]
fn parsers_never_panic_on_mutations() {
    let mut rng = StdRng::seed_from_u64(0x5715);
    for _ in 0..20_000 {
        let o = mutate(&mut rng, OFFER);
        let _ = parse_offer(&o, Role::Publish);
        let _ = parse_offer(&o, Role::Play);
        let f = mutate(&mut rng, FRAG);
        let _ = Fragment::parse(&f);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutated_offers_get_4xx_or_201_and_the_server_keeps_serving() {
    let server = start().await;
    let whip = url(&server, &wisp::http::paths::whip("fuzz"));
    let mut rng = StdRng::seed_from_u64(42);
    for _ in 0..150 {
        let r = post_sdp(&whip, &mutate(&mut rng, OFFER)).await;
        assert!(
            r.status == 201 || (400..500).contains(&r.status),
            "status {} for a mutated offer: {}",
            r.status,
            r.body
        );
        if r.status == 201 {
            let loc = r.location.unwrap();
            http().delete(url(&server, &loc)).send().await.unwrap();
        } else {
            assert!(r.body.trim_end().ends_with('.'), "{}", r.body);
        }
    }
    let r = post_sdp(&whip, OFFER).await;
    assert_eq!(r.status, 201, "{}", r.body);
    server.shutdown().await.unwrap();
}
