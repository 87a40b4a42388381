//! STUN/TURN message helpers: XOR-PEER-ADDRESS lists, LIFETIME, signed responses.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ::rtc::stun::attributes::*;
use ::rtc::stun::error_code::*;
use ::rtc::stun::fingerprint::FINGERPRINT;
use ::rtc::stun::integrity::MessageIntegrity;
use ::rtc::stun::message::*;
use ::rtc::stun::textattrs::TextAttribute;
use ::rtc::turn::proto::lifetime::Lifetime;

/// The SOFTWARE attribute of every response.
pub(super) const SOFTWARE: &str = "wisp";

/// What a request handler answers: a response, or nothing (indications).
pub(super) type Reply = Option<Vec<u8>>;

pub fn requested_lifetime(m: &Message) -> Duration {
    let mut l = Lifetime::default();
    match l.get_from(m) {
        Ok(()) => l.0,
        Err(_) => ::rtc::turn::proto::lifetime::DEFAULT_LIFETIME,
    }
}

/// Every XOR-PEER-ADDRESS of a request (CreatePermission may carry several).
pub fn peer_addresses(m: &Message) -> Vec<SocketAddr> {
    m.attributes
        .0
        .iter()
        .filter(|a| a.typ == ATTR_XOR_PEER_ADDRESS)
        .filter_map(|a| {
            let v = &a.value;
            if v.len() < 8 {
                return None;
            }
            let port = u16::from_be_bytes([v[2], v[3]]) ^ (MAGIC_COOKIE >> 16) as u16;
            let cookie = MAGIC_COOKIE.to_be_bytes();
            let ip = match v[1] {
                0x01 => {
                    let b: [u8; 4] = v.get(4..8)?.try_into().ok()?;
                    IpAddr::from(std::array::from_fn::<u8, 4, _>(|i| b[i] ^ cookie[i]))
                }
                0x02 => {
                    let b: [u8; 16] = v.get(4..20)?.try_into().ok()?;
                    let mut key = [0u8; 16];
                    key[..4].copy_from_slice(&cookie);
                    key[4..].copy_from_slice(&m.transaction_id.0);
                    IpAddr::from(std::array::from_fn::<u8, 16, _>(|i| b[i] ^ key[i]))
                }
                _ => return None,
            };
            Some(SocketAddr::new(ip, port))
        })
        .collect()
}

pub fn success(
    m: &Message,
    method: Method,
    attrs: Vec<Box<dyn Setter>>,
    key: &[u8],
    crypto: &dyn ::rtc::crypto::RTCCrypto,
) -> Reply {
    let mut setters: Vec<Box<dyn Setter + '_>> = vec![
        Box::new(m.transaction_id),
        Box::new(MessageType::new(method, CLASS_SUCCESS_RESPONSE)),
    ];
    setters.extend(attrs);
    setters.push(Box::new(TextAttribute::new(ATTR_SOFTWARE, SOFTWARE.into())));
    setters.push(Box::new(MessageIntegrity::new_raw_integrity_with_provider(
        key.to_vec(),
        crypto,
    )));
    setters.push(Box::new(FINGERPRINT));
    let mut out = Message::new();
    out.build(&setters).ok()?;
    Some(out.raw)
}

/// An error response; signed when the request was authenticated (RFC 8489 §9.2.4).
pub fn error(
    m: &Message,
    method: Method,
    code: ErrorCode,
    reason: &str,
    key: Option<&[u8]>,
) -> Reply {
    let crypto = ::rtc::crypto::default_provider().ok();
    let mut setters: Vec<Box<dyn Setter + '_>> = vec![
        Box::new(m.transaction_id),
        Box::new(MessageType::new(method, CLASS_ERROR_RESPONSE)),
        Box::new(ErrorCodeAttribute {
            code,
            reason: reason.as_bytes().to_vec(),
        }),
        Box::new(TextAttribute::new(ATTR_SOFTWARE, SOFTWARE.into())),
    ];
    if let (Some(key), Some(c)) = (key, crypto.as_ref()) {
        setters.push(Box::new(MessageIntegrity::new_raw_integrity_with_provider(
            key.to_vec(),
            c.crypto(),
        )));
    }
    let mut out = Message::new();
    out.build(&setters).ok()?;
    Some(out.raw)
}
