//! Event webhooks (see the module above).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio::sync::broadcast;

use crate::sfu::Sfu;
use crate::sfu::events::{Notice, RoomEvent};

/// Attempts per event before it is given up (with backoff 0.5 s, 1 s, 2 s, 4 s between).
const ATTEMPTS: u32 = 5;
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// How long one delivery attempt may take.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

/// One event as the receiver gets it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Event {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub room: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub participant: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// For `publish.started`: what it sends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audio: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub video: Option<bool>,
    /// Milliseconds since the Unix epoch.
    pub at: u64,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// `sha256=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`: the `X-Wisp-Signature` value.
pub fn sign(secret: &[u8], timestamp: u64, body: &str) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret);
    let tag = ring::hmac::sign(&key, format!("{timestamp}.{body}").as_bytes());
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// Turns notices into events, remembering who sends what to say `publish.started/stopped`.
#[derive(Default)]
struct Translator {
    /// (room, participant) → (name, sending anything).
    known: HashMap<(String, String), (String, bool)>,
}

impl Translator {
    fn events(&mut self, n: Notice) -> Vec<Event> {
        let at = now_ms();
        let ev = |kind, room: &str, participant: Option<&str>, name: Option<&str>| Event {
            kind,
            room: room.to_owned(),
            participant: participant.map(str::to_owned),
            name: name.map(str::to_owned),
            audio: None,
            video: None,
            at,
        };
        match n {
            Notice::Event(room, RoomEvent::Joined { participant: p }) => {
                let sending = p.audio || p.video;
                self.known
                    .insert((room.to_string(), p.id.clone()), (p.name.clone(), sending));
                vec![ev(
                    "participant.joined",
                    room.as_str(),
                    Some(&p.id),
                    Some(&p.name),
                )]
            }
            Notice::Event(room, RoomEvent::Tracks { id, audio, video }) => {
                let Some((name, sending)) = self.known.get_mut(&(room.to_string(), id.clone()))
                else {
                    return vec![];
                };
                let now = audio || video;
                if now == *sending {
                    return vec![];
                }
                *sending = now;
                let kind = if now {
                    "publish.started"
                } else {
                    "publish.stopped"
                };
                let mut e = ev(kind, room.as_str(), Some(&id), Some(name.as_str()));
                if now {
                    (e.audio, e.video) = (Some(audio), Some(video));
                }
                vec![e]
            }
            Notice::Event(room, RoomEvent::Left { id }) => {
                let mut out = Vec::new();
                let known = self.known.remove(&(room.to_string(), id.clone()));
                let name = known.as_ref().map(|(n, _)| n.as_str());
                if known.as_ref().is_some_and(|(_, sending)| *sending) {
                    out.push(ev("publish.stopped", room.as_str(), Some(&id), name));
                }
                out.push(ev("participant.left", room.as_str(), Some(&id), name));
                out
            }
            Notice::Ended(room) => {
                self.known.retain(|(r, _), _| r != room.as_str());
                vec![ev("room.closed", room.as_str(), None, None)]
            }
            Notice::Event(..) => vec![],
        }
    }
}

/// `--webhook URL`: delivers every event to one receiver.
pub struct EventHook {
    url: String,
    secret: Arc<[u8]>,
    client: reqwest::Client,
}

impl EventHook {
    pub fn new(url: String, secret: &str) -> Result<EventHook, String> {
        let client = reqwest::Client::builder()
            .timeout(ATTEMPT_TIMEOUT)
            .build()
            .map_err(|e| format!("webhook client: {e}"))?;
        Ok(EventHook {
            url,
            secret: secret.as_bytes().into(),
            client,
        })
    }

    /// Delivers until the server's notices end.
    pub async fn run(self, sfu: Arc<Sfu>) {
        let mut notices = sfu.notices();
        drop(sfu);
        let mut translator = Translator::default();
        loop {
            match notices.recv().await {
                Ok(n) => {
                    for e in translator.events(n) {
                        self.deliver(&e).await;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(lost)) => {
                    tracing::warn!(lost, "webhook: the receiver is too slow; events were lost");
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    }

    async fn deliver(&self, e: &Event) {
        let Ok(body) = serde_json::to_string(e) else {
            return;
        };
        let mut backoff = FIRST_BACKOFF;
        for attempt in 1..=ATTEMPTS {
            let ts = now_ms() / 1000;
            let sent = self
                .client
                .post(&self.url)
                .header("content-type", "application/json")
                .header("x-wisp-timestamp", ts.to_string())
                .header("x-wisp-signature", sign(&self.secret, ts, &body))
                .body(body.clone())
                .send()
                .await;
            match sent {
                Ok(r) if r.status().is_success() => return,
                Ok(r) if r.status().is_client_error() && r.status() != 429 => {
                    tracing::warn!(event = e.kind, status = %r.status(), "webhook: the receiver refused the event; not retried");
                    return;
                }
                Ok(r) => {
                    tracing::debug!(event = e.kind, attempt, status = %r.status(), "webhook: will retry")
                }
                Err(err) => tracing::debug!(event = e.kind, attempt, "webhook: {err}; will retry"),
            }
            if attempt < ATTEMPTS {
                tokio::time::sleep(backoff).await;
                backoff *= 2;
            }
        }
        tracing::warn!(event = e.kind, room = %e.room, "webhook: gave up after {ATTEMPTS} attempts");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sfu::RoomId;
    use crate::sfu::events::ParticipantInfo;

    fn joined(id: &str, video: bool) -> RoomEvent {
        RoomEvent::Joined {
            participant: ParticipantInfo {
                id: id.into(),
                name: "Ada".into(),
                joined_at: 0,
                audio: false,
                video,
                speaking: false,
                state: Default::default(),
                screen_of: None,
            },
        }
    }

    #[test]
    fn notices_become_events() {
        let room = RoomId::parse("r").unwrap();
        let mut t = Translator::default();
        let kinds = |v: Vec<Event>| v.into_iter().map(|e| e.kind).collect::<Vec<_>>();
        let e = t.events(Notice::Event(room.clone(), joined("p1", false)));
        assert_eq!(e[0].name.as_deref(), Some("Ada"));
        assert_eq!(kinds(e), ["participant.joined"]);
        let tracks = |audio, video| RoomEvent::Tracks {
            id: "p1".into(),
            audio,
            video,
        };
        let e = t.events(Notice::Event(room.clone(), tracks(true, false)));
        assert_eq!(
            (e[0].kind, e[0].audio, e[0].video),
            ("publish.started", Some(true), Some(false))
        );
        assert!(
            t.events(Notice::Event(room.clone(), tracks(true, true)))
                .is_empty(),
            "still sending"
        );
        let left = RoomEvent::Left { id: "p1".into() };
        assert_eq!(
            kinds(t.events(Notice::Event(room.clone(), left))),
            ["publish.stopped", "participant.left"]
        );
        assert_eq!(kinds(t.events(Notice::Ended(room))), ["room.closed"]);
    }

    #[test]
    fn signatures_are_hmac_sha256_over_timestamp_and_body() {
        // Checked with: printf '%s' '1700000000.{"a":1}' | openssl dgst -sha256 -hmac s3cret
        assert_eq!(
            sign(b"s3cret", 1_700_000_000, r#"{"a":1}"#),
            "sha256=1698a50bc74d1ff1db85c4e0a5297c2ad9fdba245d5737cdb789e4cc6e098940"
        );
    }
}
