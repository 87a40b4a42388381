//! Who may do what. Three kinds of credential reach wisp:
//!
//! - the static `--token`: an admin of every room (as it always was);
//! - a JWT (`jwt.rs`) scoped to one room (or `*`) and one role, signed with `--jwt-secret`
//!   (HS256) or a key whose public half wisp holds (`--jwt-public-key`, `--jwt-jwks`);
//! - a short-lived event-stream token (`access.rs`) minted for a browser's `EventSource`, which
//!   cannot send an `Authorization` header.
//!
//! Checking is two steps with two answers: [`Auth::verify`] turns the bearer token into a
//! [`Grant`] or says why it is no credential at all (401); [`Grant::allows`] says whether the
//! grant covers this room and this action (403). With no credential configured, everything is
//! open, as before. Tokens are never logged: nothing here formats one into a message.

mod access;
mod jwt;

pub use access::ACCESS_TTL;
use std::fmt;

pub use jwt::{Claims, JwtConfig, claims, mint_token, parse_ttl};

use crate::error::{Error, Result};
use crate::sfu::RoomId;

/// What a grant lets its holder do.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Watch (WHEP) and read room events.
    Subscribe,
    /// Publish (WHIP), and take part in a conference (WHEP with `?self=`, room events).
    Publish,
    /// Everything, including the admin API and `/metrics`.
    Admin,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Role::Subscribe => "subscribe",
            Role::Publish => "publish",
            Role::Admin => "admin",
        })
    }
}

/// What a request is about to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// WHIP: `publish`.
    Publish,
    /// A plain WHEP viewer: `subscribe`.
    Watch,
    /// A conference participant's WHEP (`?self=`), room events, event-stream tokens:
    /// `subscribe` or `publish`.
    Participate,
    /// The admin API, `/metrics`: `admin`.
    Administer,
}

impl Action {
    fn allowed(self, role: Role) -> bool {
        match (self, role) {
            (_, Role::Admin) => true,
            (Action::Publish, r) => r == Role::Publish,
            (Action::Watch, r) => r == Role::Subscribe,
            (Action::Participate, _) => true,
            (Action::Administer, _) => false,
        }
    }

    fn words(self) -> &'static str {
        match self {
            Action::Publish => "publish",
            Action::Watch => "watch",
            Action::Participate => "join",
            Action::Administer => "administer",
        }
    }
}

/// The rooms a grant covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rooms {
    All,
    One(String),
}

/// What a verified credential grants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    pub rooms: Rooms,
    pub role: Role,
    /// The participant's display name from the token (wins over `?name=`).
    pub name: Option<String>,
}

impl Grant {
    /// Every action in every room (the static token's grant; another node's in cluster mode).
    pub fn admin() -> Grant {
        Grant::open()
    }

    /// What everyone holds on a server with no credentials configured.
    fn open() -> Grant {
        Grant {
            rooms: Rooms::All,
            role: Role::Admin,
            name: None,
        }
    }

    /// Whether this grant covers `action` in `room` (`None`: every room, e.g. `/metrics`).
    pub fn allows(&self, room: Option<&RoomId>, action: Action) -> Result<()> {
        match (&self.rooms, room) {
            (Rooms::All, _) => {}
            (Rooms::One(mine), Some(r)) if mine == r.as_str() => {}
            (Rooms::One(mine), Some(r)) => {
                return Err(Error::Forbidden(format!(
                    "The token is for room '{mine}', not '{r}'."
                )));
            }
            (Rooms::One(mine), None) => {
                return Err(Error::Forbidden(format!(
                    "The token is for room '{mine}' only, and this needs every room."
                )));
            }
        }
        if action.allowed(self.role) {
            Ok(())
        } else {
            Err(Error::Forbidden(format!(
                "The token's role '{}' does not allow it to {}.",
                self.role,
                action.words()
            )))
        }
    }

    /// Whether the grant covers every room (lists are filtered to the grant's room otherwise).
    pub fn covers(&self, room: &str) -> bool {
        match &self.rooms {
            Rooms::All => true,
            Rooms::One(mine) => mine == room,
        }
    }
}

/// The credentials wisp accepts, built once from the configuration.
pub struct Auth {
    token: Option<String>,
    jwt: Option<jwt::Verifier>,
    events: access::EventKey,
}

/// The authentication settings, as configured.
#[derive(Debug, Clone, Default)]
pub struct AuthConfig {
    /// `--token`: the all-rooms admin token.
    pub token: Option<String>,
    pub jwt: JwtConfig,
}

impl Auth {
    /// Reads the keys named in `config`; an unreadable or unusable key is an error.
    pub fn new(config: &AuthConfig) -> std::result::Result<Auth, String> {
        let jwt = if config.jwt.is_set() {
            Some(jwt::Verifier::new(&config.jwt)?)
        } else {
            None
        };
        Ok(Auth {
            token: config.token.clone(),
            jwt,
            events: access::EventKey::new(config.token.as_deref()),
        })
    }

    /// True when requests must carry a credential.
    pub fn required(&self) -> bool {
        self.token.is_some() || self.jwt.is_some()
    }

    /// The grant of the `Authorization` header's bearer token: 401 when there is none, when it
    /// is malformed, badly signed, expired or not for this server.
    pub fn verify(&self, bearer: Option<&str>) -> Result<Grant> {
        if !self.required() {
            return Ok(Grant::open());
        }
        let token = bearer.ok_or_else(|| {
            Error::Unauthorized(
                "This request needs a token in an Authorization: Bearer header.".into(),
            )
        })?;
        if let Some(t) = &self.token
            && constant_time_eq(t.as_bytes(), token.as_bytes())
        {
            return Ok(Grant {
                rooms: Rooms::All,
                role: Role::Admin,
                name: None,
            });
        }
        match &self.jwt {
            Some(v) => v.verify(token),
            None => Err(Error::Unauthorized("The bearer token is not valid.".into())),
        }
    }

    /// A short-lived token for `room`'s event stream (see `access.rs`); `None` when the server
    /// needs no credential.
    pub fn mint_events(&self, room: &RoomId) -> Option<String> {
        self.required().then(|| self.events.mint(room))
    }

    /// Whether `token` is an event-stream token for `room` that has not expired.
    pub fn verify_events(&self, room: &RoomId, token: &str) -> bool {
        self.events.verify(room, token)
    }
}

/// `wisp token`: a JWT for the arguments' room and role, signed as configured.
pub fn token_command(
    jwt: &JwtConfig,
    args: &crate::config::TokenArgs,
) -> std::result::Result<String, String> {
    if args.room != "*" {
        RoomId::parse(&args.room).map_err(|e| e.to_string())?;
    }
    let ttl = parse_ttl(&args.ttl)?;
    let claims = jwt::claims(jwt, &args.room, args.role, ttl, args.name.clone());
    mint_token(jwt, args.key.as_deref(), &claims)
}

/// Compares without an early exit on the first differing byte.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The bearer token of an `Authorization` header, if it has one.
pub fn bearer(h: &hyper::HeaderMap) -> Option<&str> {
    let v = h.get(hyper::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, rest) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| rest.trim())
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests;
