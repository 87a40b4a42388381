//! Works around the ICE agent's lost nomination (webrtc-rs 0.21's `rtc-ice`, controlled role).
//!
//! The controlling client nominates a pair by sending a Binding request with USE-CANDIDATE.
//! When that request arrives while the agent's own check on the pair is still in flight (the
//! usual race on a fresh connection: the agent checks the client's candidates the moment the
//! offer is applied, before the client has the answer), the agent sends **no response** and
//! does not nominate the pair once its check succeeds (RFC 8445 §7.3.1.4 answers every valid
//! request; §7.3.1.5 nominates on the triggered check's success). The client retransmits after
//! its RTO — 500 ms for aiortc — and a third of joins took ~0.6 s instead of ~0.2 s.
//!
//! The driver keeps the last nominating request that arrived before the connection was up and
//! hands it to the agent once more right after the agent's check to that address succeeds.
//! The pair is then valid, so the agent selects it and answers the request under the client's
//! own transaction id, which the client is still waiting on. If the first arrival was already
//! answered, the replay draws one duplicate success response, which STUN clients ignore.
//!
//! Pure: [`Replay::inbound`] looks at each datagram before the core gets it and says what, if
//! anything, to feed the core again after it.

use std::net::SocketAddr;

/// STUN message types (RFC 8489 §5) and the ICE attribute (RFC 8445 §16.1) we look for.
const BINDING_REQUEST: u16 = 0x0001;
const BINDING_SUCCESS: u16 = 0x0101;
const MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xa4, 0x42];
const USE_CANDIDATE: u16 = 0x0025;

/// What a datagram is, as far as the replay cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A Binding request carrying USE-CANDIDATE.
    Nomination,
    BindingSuccess,
    Other,
}

fn kind(data: &[u8]) -> Kind {
    let (Some(head), Some(cookie)) = (data.get(..4), data.get(4..8)) else {
        return Kind::Other;
    };
    if cookie != MAGIC_COOKIE {
        return Kind::Other;
    }
    let msg_type = u16::from_be_bytes([head[0], head[1]]);
    let len = u16::from_be_bytes([head[2], head[3]]) as usize;
    match msg_type {
        BINDING_SUCCESS => Kind::BindingSuccess,
        BINDING_REQUEST => {
            let Some(mut attrs) = data.get(20..20 + len) else {
                return Kind::Other;
            };
            while let [t0, t1, l0, l1, rest @ ..] = attrs {
                if u16::from_be_bytes([*t0, *t1]) == USE_CANDIDATE {
                    return Kind::Nomination;
                }
                let padded = (u16::from_be_bytes([*l0, *l1]) as usize).div_ceil(4) * 4;
                attrs = rest.get(padded..).unwrap_or_default();
            }
            Kind::Other
        }
        _ => Kind::Other,
    }
}

/// The held nomination of one connection.
#[derive(Debug, Default)]
pub(crate) struct Replay {
    held: Option<(SocketAddr, Vec<u8>)>,
}

impl Replay {
    /// Called with each datagram from `from` before the core handles it; `connected` is the
    /// connection's state. Returns a datagram to hand the core right after this one.
    pub(crate) fn inbound(
        &mut self,
        from: SocketAddr,
        data: &[u8],
        connected: bool,
    ) -> Option<Vec<u8>> {
        if connected {
            self.held = None;
            return None;
        }
        match kind(data) {
            Kind::Nomination => {
                self.held = Some((from, data.to_vec()));
                None
            }
            Kind::BindingSuccess if self.held.as_ref().is_some_and(|(a, _)| *a == from) => {
                self.held.take().map(|(_, d)| d)
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A STUN message of `msg_type` with the given attributes (type, value).
    fn stun(msg_type: u16, attrs: &[(u16, &[u8])]) -> Vec<u8> {
        let mut body = Vec::new();
        for (t, v) in attrs {
            body.extend(t.to_be_bytes());
            body.extend((v.len() as u16).to_be_bytes());
            body.extend(*v);
            body.resize(body.len().div_ceil(4) * 4, 0);
        }
        let mut m = msg_type.to_be_bytes().to_vec();
        m.extend((body.len() as u16).to_be_bytes());
        m.extend(MAGIC_COOKIE);
        m.extend([7u8; 12]);
        m.extend(body);
        m
    }

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([198, 18, 0, 2], port))
    }

    #[test]
    fn tells_nominations_from_other_stun_and_from_media() {
        let user = (0x0006, &b"abcd:efgh"[..]);
        let nominate = stun(
            BINDING_REQUEST,
            &[user, (0x0024, &[0, 0, 0, 1]), (USE_CANDIDATE, &[])],
        );
        assert_eq!(kind(&nominate), Kind::Nomination);
        assert_eq!(kind(&stun(BINDING_REQUEST, &[user])), Kind::Other);
        assert_eq!(kind(&stun(BINDING_SUCCESS, &[])), Kind::BindingSuccess);
        // DTLS, RTP, a truncated header, an attribute length past the end: never a panic.
        assert_eq!(kind(&[22, 254, 253, 0]), Kind::Other);
        assert_eq!(kind(&[0x80, 96, 0, 1, 0, 0, 0, 0]), Kind::Other);
        assert_eq!(kind(&nominate[..10]), Kind::Other);
        let mut long = stun(BINDING_REQUEST, &[(0x0006, &[1, 2, 3, 4])]);
        long[22] = 0xff; // the attribute claims more than the message holds
        assert_eq!(kind(&long), Kind::Other);
    }

    #[test]
    fn replays_the_held_nomination_after_the_check_to_that_address_succeeds() {
        let nominate = stun(BINDING_REQUEST, &[(USE_CANDIDATE, &[])]);
        let success = stun(BINDING_SUCCESS, &[]);
        let mut r = Replay::default();
        assert_eq!(r.inbound(addr(1), &nominate, false), None);
        assert_eq!(r.inbound(addr(2), &success, false), None, "another address");
        assert_eq!(r.inbound(addr(1), &success, false), Some(nominate.clone()));
        assert_eq!(r.inbound(addr(1), &success, false), None, "once");
    }

    #[test]
    fn nothing_is_held_or_replayed_once_connected() {
        let nominate = stun(BINDING_REQUEST, &[(USE_CANDIDATE, &[])]);
        let success = stun(BINDING_SUCCESS, &[]);
        let mut r = Replay::default();
        r.inbound(addr(1), &nominate, false);
        assert_eq!(r.inbound(addr(1), &success, true), None);
        r.inbound(addr(1), &nominate, true);
        assert_eq!(r.inbound(addr(1), &success, false), None);
    }
}
