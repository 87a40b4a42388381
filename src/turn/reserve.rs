//! Port reservations (RFC 8656 §7.2, §14.6, §14.9): an Allocate with EVEN-PORT and its R bit
//! gets an even relay port and the odd one after it held for a later Allocate, which names it
//! by the 8-byte RESERVATION-TOKEN of the first answer. A reservation lasts 30 s, counts
//! against its username's allocation quota while it lasts, and is used at most once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use ::rtc::stun::attributes::{
    ATTR_EVEN_PORT, ATTR_REQUESTED_ADDRESS_FAMILY, ATTR_RESERVATION_TOKEN,
};
use ::rtc::stun::message::Message;

use crate::lock::Locked;
use crate::rtc::PortLease;

/// How long a reserved port waits for its Allocate (the RFC's "approximately 30 seconds").
pub const RESERVATION_LIFETIME: Duration = Duration::from_secs(30);

/// Which relay port an Allocate asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PortRequest {
    Any,
    /// EVEN-PORT; `reserve`: hold the next port too (its R bit).
    Even {
        reserve: bool,
    },
    /// RESERVATION-TOKEN: the port an earlier Allocate reserved.
    Reserved(u64),
}

impl PortRequest {
    /// Reads EVEN-PORT and RESERVATION-TOKEN; `Err` is the 400 reason (both at once, a
    /// token with an address family, a malformed value).
    pub fn of(m: &Message) -> Result<PortRequest, &'static str> {
        let even = m.get(ATTR_EVEN_PORT).ok();
        let token = m.get(ATTR_RESERVATION_TOKEN).ok();
        match (even, token) {
            (None, None) => Ok(PortRequest::Any),
            (Some(_), Some(_)) => Err("EVEN-PORT and RESERVATION-TOKEN together"),
            (Some(v), None) => match v.as_slice() {
                [r] => Ok(PortRequest::Even {
                    reserve: r & 0x80 != 0,
                }),
                _ => Err("EVEN-PORT must be one byte"),
            },
            (None, Some(_)) if m.contains(ATTR_REQUESTED_ADDRESS_FAMILY) => {
                Err("RESERVATION-TOKEN and REQUESTED-ADDRESS-FAMILY together")
            }
            (None, Some(v)) => <[u8; 8]>::try_from(v.as_slice())
                .map(|t| PortRequest::Reserved(u64::from_be_bytes(t)))
                .map_err(|_| "RESERVATION-TOKEN must be 8 bytes"),
        }
    }
}

struct Held {
    username: String,
    lease: PortLease,
    expires: Instant,
}

/// The live reservations, by token.
#[derive(Default)]
pub struct Reservations(Mutex<HashMap<u64, Held>>);

impl Reservations {
    /// Holds `lease` for `username`; returns the token that claims it.
    pub fn hold(&self, username: &str, lease: PortLease, now: Instant) -> u64 {
        let mut map = self.0.locked();
        let token = loop {
            let t: u64 = rand::random();
            if t != 0 && !map.contains_key(&t) {
                break t;
            }
        };
        map.insert(
            token,
            Held {
                username: username.to_owned(),
                lease,
                expires: now + RESERVATION_LIFETIME,
            },
        );
        token
    }

    /// The port reserved under `token`, if it is live (any holder of the token may use it,
    /// as the RFC's second client may be another process of the same user).
    pub fn take(&self, token: u64, now: Instant) -> Option<PortLease> {
        let mut map = self.0.locked();
        let held = map.remove(&token)?;
        (held.expires > now).then_some(held.lease)
    }

    /// Live reservations made by `username`.
    pub fn count_for(&self, username: &str, now: Instant) -> usize {
        self.0
            .locked()
            .values()
            .filter(|h| h.username == username && h.expires > now)
            .count()
    }

    /// Frees the ports of expired reservations.
    pub fn sweep(&self, now: Instant) {
        self.0.locked().retain(|_, h| h.expires > now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rtc::PortPool;
    use ::rtc::stun::message::{CLASS_REQUEST, METHOD_ALLOCATE, MessageType, Setter};

    fn request(attrs: &[(::rtc::stun::attributes::AttrType, &[u8])]) -> Message {
        let mut m = Message::new();
        MessageType::new(METHOD_ALLOCATE, CLASS_REQUEST)
            .add_to(&mut m)
            .unwrap();
        for (t, v) in attrs {
            m.add(*t, v);
        }
        m
    }

    #[test]
    fn reads_the_port_request() {
        assert_eq!(PortRequest::of(&request(&[])), Ok(PortRequest::Any));
        assert_eq!(
            PortRequest::of(&request(&[(ATTR_EVEN_PORT, &[0x80])])),
            Ok(PortRequest::Even { reserve: true })
        );
        assert_eq!(
            PortRequest::of(&request(&[(ATTR_EVEN_PORT, &[0])])),
            Ok(PortRequest::Even { reserve: false })
        );
        assert_eq!(
            PortRequest::of(&request(&[(ATTR_RESERVATION_TOKEN, &7u64.to_be_bytes())])),
            Ok(PortRequest::Reserved(7))
        );
        for bad in [
            request(&[(ATTR_EVEN_PORT, &[0x80]), (ATTR_RESERVATION_TOKEN, &[0; 8])]),
            request(&[
                (ATTR_RESERVATION_TOKEN, &[0; 8]),
                (ATTR_REQUESTED_ADDRESS_FAMILY, &[1, 0, 0, 0]),
            ]),
            request(&[(ATTR_EVEN_PORT, &[])]),
            request(&[(ATTR_RESERVATION_TOKEN, &[0; 4])]),
        ] {
            assert!(PortRequest::of(&bad).is_err());
        }
    }

    #[test]
    fn a_reservation_is_used_once_and_expires() {
        let pool = PortPool::new(6000, 6003);
        let r = Reservations::default();
        let now = Instant::now();
        let (_, odd) = pool.lease_even(true).unwrap();
        let token = r.hold("u", odd.unwrap(), now);
        assert_eq!(r.count_for("u", now), 1);
        assert_eq!(r.take(token, now).map(|l| l.port), Some(6001));
        assert!(r.take(token, now).is_none(), "used once");
        let (_, odd) = pool.lease_even(true).unwrap();
        let token = r.hold("u", odd.unwrap(), now);
        r.sweep(now + RESERVATION_LIFETIME);
        assert_eq!(r.count_for("u", now), 0);
        assert!(r.take(token, now).is_none());
        assert_eq!(
            pool.in_use(),
            0,
            "the expired reservation's port is free again"
        );
    }
}
