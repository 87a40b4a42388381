//! TURN long-term credentials on a request (RFC 8489 §9.2, RFC 8656 §5): the check, and the
//! 401/438 challenge carrying the realm and a fresh nonce.

use std::net::SocketAddr;
use std::time::Duration;

use ::rtc::stun::attributes::*;
use ::rtc::stun::error_code::*;
use ::rtc::stun::integrity::MessageIntegrity;
use ::rtc::stun::message::*;
use ::rtc::stun::textattrs::TextAttribute;

use super::credentials::Minter;
use super::credentials::Refusal;
use super::wire::{Reply, SOFTWARE, error};

/// How long a nonce stays fresh.
const NONCE_LIFETIME: Duration = Duration::from_secs(600);

/// Long-term credential check (RFC 8489 §9.2). `Ok` carries the HMAC key and the room.
pub(super) fn authenticate(
    our_realm: &str,
    minter: &Minter,
    crypto: &dyn ::rtc::crypto::RTCCrypto,
    m: &mut Message,
    client: SocketAddr,
) -> Result<(Vec<u8>, String, String), Reply> {
    let method = m.typ.method;
    if !m.contains(ATTR_MESSAGE_INTEGRITY) {
        return Err(challenge(
            our_realm,
            minter,
            m,
            method,
            CODE_UNAUTHORIZED,
            "credentials required",
            client,
        ));
    }
    let text = |t| TextAttribute::get_from_as(m, t).map(|a| a.text).ok();
    let (Some(username), Some(realm), Some(nonce)) =
        (text(ATTR_USERNAME), text(ATTR_REALM), text(ATTR_NONCE))
    else {
        return Err(error(
            m,
            method,
            CODE_BAD_REQUEST,
            "USERNAME, REALM and NONCE are required",
            None,
        ));
    };
    if realm != our_realm || !minter.nonce_fresh(&nonce, &client, NONCE_LIFETIME) {
        return Err(challenge(
            our_realm,
            minter,
            m,
            method,
            CODE_STALE_NONCE,
            "stale nonce",
            client,
        ));
    }
    let room = match minter.room_of(&username) {
        Ok(room) => room.to_owned(),
        Err(Refusal::Expired) => {
            return Err(challenge(
                our_realm,
                minter,
                m,
                method,
                CODE_UNAUTHORIZED,
                "credentials expired",
                client,
            ));
        }
        Err(Refusal::Malformed) => {
            return Err(challenge(
                our_realm,
                minter,
                m,
                method,
                CODE_UNAUTHORIZED,
                "unknown username",
                client,
            ));
        }
    };
    let password = minter.password(&username);
    let key = MessageIntegrity::long_term_integrity_key(username.clone(), realm, password, crypto)
        .map_err(|_| None)?;
    if MessageIntegrity::check(m, &key, crypto).is_err() {
        return Err(challenge(
            our_realm,
            minter,
            m,
            method,
            CODE_UNAUTHORIZED,
            "wrong credentials",
            client,
        ));
    }
    Ok((key, username, room))
}

fn challenge(
    realm: &str,
    minter: &Minter,
    m: &Message,
    method: Method,
    code: ErrorCode,
    reason: &str,
    client: SocketAddr,
) -> Reply {
    let mut out = Message::new();
    out.build(&[
        Box::new(m.transaction_id),
        Box::new(MessageType::new(method, CLASS_ERROR_RESPONSE)),
        Box::new(ErrorCodeAttribute {
            code,
            reason: reason.as_bytes().to_vec(),
        }),
        Box::new(TextAttribute::new(ATTR_REALM, realm.to_owned())),
        Box::new(TextAttribute::new(ATTR_NONCE, minter.nonce(&client))),
        Box::new(TextAttribute::new(ATTR_SOFTWARE, SOFTWARE.into())),
    ])
    .ok()?;
    Some(out.raw)
}
