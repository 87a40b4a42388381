//! Event-stream tokens: `<expiry>.<hex HMAC-SHA256 over "events:<room>:<expiry>">`, valid for
//! [`ACCESS_TTL`]. A browser's `EventSource` cannot send an `Authorization` header, so the page
//! trades its real token for one of these (`POST /rooms/{room}/access`) and puts it in the
//! stream's URL; a leaked one opens one room's events for a few minutes and nothing else.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ring::hmac;

use crate::sfu::RoomId;

/// Lifetime of an event-stream access token.
pub const ACCESS_TTL: Duration = Duration::from_secs(300);

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The key event-stream tokens are signed with.
pub(super) struct EventKey(hmac::Key);

impl EventKey {
    /// Keyed by the static token when there is one (tokens survive a restart), by random
    /// bytes otherwise.
    pub(super) fn new(static_token: Option<&str>) -> EventKey {
        let secret = match static_token {
            Some(t) => t.as_bytes().to_vec(),
            None => {
                let mut b = [0u8; 32];
                rand::Rng::fill(&mut rand::rng(), &mut b[..]);
                b.to_vec()
            }
        };
        EventKey(hmac::Key::new(hmac::HMAC_SHA256, &secret))
    }

    fn message(room: &RoomId, expires: u64) -> String {
        format!("events:{room}:{expires}")
    }

    pub(super) fn mint(&self, room: &RoomId) -> String {
        let expires = now_secs() + ACCESS_TTL.as_secs();
        let tag = hmac::sign(&self.0, Self::message(room, expires).as_bytes());
        let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
        format!("{expires}.{hex}")
    }

    pub(super) fn verify(&self, room: &RoomId, token: &str) -> bool {
        let Some((exp, tag)) = token.split_once('.') else {
            return false;
        };
        let Ok(expires) = exp.parse::<u64>() else {
            return false;
        };
        if expires < now_secs() || tag.len() % 2 != 0 {
            return false;
        }
        let Some(bytes) = (0..tag.len())
            .step_by(2)
            .map(|i| {
                tag.get(i..i + 2)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
            })
            .collect::<Option<Vec<u8>>>()
        else {
            return false;
        };
        hmac::verify(&self.0, Self::message(room, expires).as_bytes(), &bytes).is_ok()
    }
}
