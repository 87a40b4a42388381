//! Newtype identifiers: a room name, a session (the unguessable URL secret) and a participant
//! (the public id others may see). Knowing a participant id never lets anyone act on its
//! session.

use std::fmt;

use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RoomId(String);

impl RoomId {
    /// Room names are 1–64 characters of `[A-Za-z0-9._~-]`, so they are safe in URLs and logs.
    pub fn parse(s: &str) -> Result<RoomId> {
        let ok = !s.is_empty()
            && s.len() <= 64
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'~' | b'-'));
        if ok {
            Ok(RoomId(s.to_string()))
        } else {
            Err(Error::BadRequest(
                "Room names are 1 to 64 characters of letters, digits, '.', '_', '~' or '-'."
                    .into(),
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RoomId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A session's secret id: a uuid v4, the last segment of its `Location` URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SessionId(uuid::Uuid);

impl SessionId {
    pub fn new() -> SessionId {
        SessionId(uuid::Uuid::new_v4())
    }

    pub fn parse(s: &str) -> Option<SessionId> {
        uuid::Uuid::try_parse(s).ok().map(SessionId)
    }
}

impl Default for SessionId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.as_simple())
    }
}

/// A publisher's public id within its room.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ParticipantId(String);

impl ParticipantId {
    pub fn new() -> ParticipantId {
        ParticipantId(uuid::Uuid::new_v4().as_simple().to_string()[..12].to_string())
    }

    pub fn parse(s: &str) -> Result<ParticipantId> {
        if !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric()) {
            Ok(ParticipantId(s.to_string()))
        } else {
            Err(Error::BadRequest(
                "Participant ids are 1 to 64 letters or digits.".into(),
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for ParticipantId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for ParticipantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_names() {
        assert!(RoomId::parse("lobby-1.a_b~").is_ok());
        for bad in ["", "a/b", "a b", "ü", &"x".repeat(65)] {
            assert_eq!(RoomId::parse(bad).unwrap_err().status(), 400, "{bad}");
        }
    }

    #[test]
    fn session_ids_round_trip_and_differ() {
        let a = SessionId::new();
        assert_eq!(SessionId::parse(&a.to_string()), Some(a));
        assert_ne!(a, SessionId::new());
        assert_eq!(SessionId::parse("not-a-uuid"), None);
    }
}
