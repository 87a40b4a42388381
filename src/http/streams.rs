//! The WHEP server-sent-events extension's stream registry (core extensions §4): a POST to a
//! session's `sse` URL names the events it wants and gets the `Location` of a stream; a GET
//! there opens it; a DELETE drops it. Entries of sessions that ended are pruned as new
//! streams are created, so the registry holds at most `MAX_PER_SESSION` per live session.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::error::{Error, Result};
use crate::lock::Locked;
use crate::sfu::SessionId;

/// Event names a WHEP session's event streams may ask for (WHEP core extensions §4 plus the
/// room's own events).
pub const WHEP_EVENTS: &[&str] = &[
    "active",
    "inactive",
    "layers",
    "reconnect",
    "viewercount",
    "roster",
    "joined",
    "left",
    "tracks",
    "speaking",
    "active-speaker",
    "slots",
    "closing",
];

/// At most this many event streams per session.
const MAX_PER_SESSION: usize = 4;

/// Stream id → the session it belongs to and the event names it asked for.
#[derive(Default)]
pub struct Streams {
    streams: Mutex<HashMap<String, (SessionId, Vec<String>)>>,
}

impl Streams {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (SessionId, Vec<String>)>> {
        self.streams.locked()
    }

    /// Registers a stream of `events` (all when empty) for the live session `id`; `alive`
    /// tells which sessions still exist. Returns the stream id.
    pub fn create(
        &self,
        id: SessionId,
        events: Vec<String>,
        alive: impl Fn(SessionId) -> bool,
    ) -> Result<String> {
        if let Some(bad) = events.iter().find(|e| !WHEP_EVENTS.contains(&e.as_str())) {
            return Err(Error::BadRequest(format!(
                "The event type \"{bad}\" is not supported."
            )));
        }
        let events = if events.is_empty() {
            WHEP_EVENTS.iter().map(|e| e.to_string()).collect()
        } else {
            events
        };
        let mut streams = self.lock();
        streams.retain(|_, (s, _)| alive(*s));
        if streams.values().filter(|(s, _)| *s == id).count() >= MAX_PER_SESSION {
            return Err(Error::Unavailable {
                what: "event streams for this session",
                retry_after: std::time::Duration::from_secs(5),
            });
        }
        let sid = uuid::Uuid::new_v4().as_simple().to_string();
        streams.insert(sid.clone(), (id, events));
        Ok(sid)
    }

    /// The event names of stream `sid` of session `id`.
    pub fn events(&self, id: SessionId, sid: &str) -> Result<Vec<String>> {
        match self.lock().get(sid) {
            Some((s, events)) if *s == id => Ok(events.clone()),
            _ => Err(Error::NotFound),
        }
    }

    pub fn delete(&self, id: SessionId, sid: &str) -> Result<()> {
        let mut streams = self.lock();
        match streams.get(sid) {
            Some((s, _)) if *s == id => {
                streams.remove(sid);
                Ok(())
            }
            _ => Err(Error::NotFound),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_belong_to_their_session_and_are_bounded() {
        let r = Streams::default();
        let (a, b) = (SessionId::new(), SessionId::new());
        let sid = r.create(a, vec!["active".into()], |_| true).unwrap();
        assert_eq!(r.events(a, &sid).unwrap(), vec!["active".to_string()]);
        assert!(r.events(b, &sid).is_err(), "another session's stream");
        assert!(matches!(
            r.create(a, vec!["nope".into()], |_| true),
            Err(Error::BadRequest(_))
        ));
        for _ in 0..3 {
            r.create(a, vec![], |_| true).unwrap();
        }
        assert!(matches!(
            r.create(a, vec![], |_| true),
            Err(Error::Unavailable { .. })
        ));
        // Once `a` is gone its streams are pruned.
        r.create(b, vec![], |s| s != a).unwrap();
        assert!(r.events(a, &sid).is_err());
        assert!(r.delete(b, &sid).is_err());
    }
}
