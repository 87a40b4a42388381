//! TURN REST credentials (draft-uberti-behave-turn-rest): the username is
//! `expiry:room:tag`, the password `base64(HMAC-SHA1(secret, username))`. wisp mints them per
//! WHIP/WHEP request and checks them statelessly; the room in the username scopes which ICE
//! sessions a relay may reach. Also the stateless NONCE (RFC 8656 §9.1).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::hmac;

/// A username/password pair for one client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    pub username: String,
    pub password: String,
}

/// Why a username was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    Malformed,
    Expired,
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Mints and checks credentials with one shared secret.
#[derive(Clone)]
pub struct Minter {
    key: hmac::Key,
    ttl: Duration,
}

impl Minter {
    pub fn new(secret: &[u8], ttl: Duration) -> Minter {
        Minter {
            key: hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret),
            ttl,
        }
    }

    /// A credential for one participant of `room`, valid for the configured lifetime.
    pub fn mint(&self, room: &str) -> Credential {
        self.mint_at(room, unix_now() + self.ttl.as_secs())
    }

    pub fn mint_at(&self, room: &str, expiry: u64) -> Credential {
        let tag: u64 = rand::random();
        let username = format!("{expiry}:{room}:{tag:016x}");
        let password = self.password(&username);
        Credential { username, password }
    }

    /// The REST password for `username`.
    pub fn password(&self, username: &str) -> String {
        STANDARD.encode(hmac::sign(&self.key, username.as_bytes()).as_ref())
    }

    /// Checks a username's form and expiry; returns its room. The password itself is proven
    /// by MESSAGE-INTEGRITY, keyed with [`Minter::password`].
    pub fn room_of<'a>(&self, username: &'a str) -> Result<&'a str, Refusal> {
        self.room_of_at(username, unix_now())
    }

    pub fn room_of_at<'a>(&self, username: &'a str, now: u64) -> Result<&'a str, Refusal> {
        let mut parts = username.splitn(3, ':');
        let expiry: u64 = parts
            .next()
            .and_then(|e| e.parse().ok())
            .ok_or(Refusal::Malformed)?;
        let room = parts
            .next()
            .filter(|r| !r.is_empty())
            .ok_or(Refusal::Malformed)?;
        parts.next().ok_or(Refusal::Malformed)?;
        if expiry <= now {
            return Err(Refusal::Expired);
        }
        Ok(room)
    }

    /// A NONCE that proves by itself when it was issued and to which client address:
    /// `hex(issued) + hex(HMAC(secret, issued | addr))[..16]`.
    pub fn nonce(&self, client: &std::net::SocketAddr) -> String {
        self.nonce_at(client, unix_now())
    }

    fn nonce_at(&self, client: &std::net::SocketAddr, issued: u64) -> String {
        let tag = hmac::sign(&self.key, format!("nonce|{issued}|{client}").as_bytes());
        let hex: String = tag.as_ref()[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("{issued:016x}{hex}")
    }

    /// Whether `nonce` was issued by us to `client` less than `max_age` ago.
    pub fn nonce_fresh(
        &self,
        nonce: &str,
        client: &std::net::SocketAddr,
        max_age: Duration,
    ) -> bool {
        let Some(issued) = nonce
            .get(..16)
            .and_then(|h| u64::from_str_radix(h, 16).ok())
        else {
            return false;
        };
        let now = unix_now();
        issued + max_age.as_secs() >= now
            && issued <= now + 1
            && crate::auth::constant_time_eq(
                self.nonce_at(client, issued).as_bytes(),
                nonce.as_bytes(),
            )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rest_password_is_base64_hmac_sha1_of_the_username() {
        // Computed independently:
        // `echo -n 1357924680:alice | openssl dgst -sha1 -hmac north -binary | base64`
        let m = Minter::new(b"north", Duration::from_secs(60));
        assert_eq!(
            m.password("1357924680:alice"),
            "Wlt1+Gcl3AJK5wEl96sLnoah7Bs="
        );
    }

    #[test]
    fn usernames_carry_expiry_and_room() {
        let m = Minter::new(b"s", Duration::from_secs(60));
        let c = m.mint_at("lobby", 1000);
        assert_eq!(m.room_of_at(&c.username, 999), Ok("lobby"));
        assert_eq!(m.room_of_at(&c.username, 1000), Err(Refusal::Expired));
        assert_eq!(m.room_of_at("abc:lobby:x", 1), Err(Refusal::Malformed));
        assert_eq!(m.room_of_at("5000:lobby", 1), Err(Refusal::Malformed));
        assert_eq!(m.room_of_at("5000::x", 1), Err(Refusal::Malformed));
    }

    #[test]
    fn nonces_are_bound_to_client_and_age() {
        let m = Minter::new(b"s", Duration::from_secs(60));
        let a: std::net::SocketAddr = "10.0.0.1:5000".parse().unwrap();
        let b: std::net::SocketAddr = "10.0.0.2:5000".parse().unwrap();
        let n = m.nonce(&a);
        assert!(m.nonce_fresh(&n, &a, Duration::from_secs(600)));
        assert!(!m.nonce_fresh(&n, &b, Duration::from_secs(600)));
        let old = m.nonce_at(&a, unix_now() - 700);
        assert!(!m.nonce_fresh(&old, &a, Duration::from_secs(600)));
        assert!(!m.nonce_fresh("zz", &a, Duration::from_secs(600)));
    }
}
