//! The cascade: a plain WHEP viewer that reaches a node which does not own the room is served
//! on that node (the edge), which pulls the room from its owner (the origin) once, however
//! many viewers it has. The edge follows the origin's room events (`/rooms/{room}/events`,
//! authenticated with the cluster's shared secret) and keeps one mirror per publisher: an upstream WHEP session to `/whep/{room}/{participant}` on the origin whose tracks
//! feed the edge's room (`sfu::relay`), so the edge's viewers get slots, the keyframe cache
//! and layer choice from the edge as they would from the origin, and one upstream per track
//! per edge is the origin's whole cost.
//!
//! The cascade ends a grace after the edge's last viewer (player or event stream) leaves. When the origin goes (its
//! event stream ends), the mirrors go with it and the cascade asks the directory for the
//! room's owner again — a new owner (the publisher re-POSTed elsewhere after the old owner's
//! lease ran out) is followed; this node becoming the owner ends the cascade, the room being
//! local now.

use std::collections::HashMap;
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

use crate::cluster::mirror::Mirror;
use crate::cluster::{Cluster, Placement};
use crate::sfu::{ParticipantId, RoomId};

/// How long a cascade outlives the edge's last viewer (a player reloading keeps its upstream).
pub const IDLE_GRACE: Duration = Duration::from_secs(10);
/// How often the cascade looks at its viewers, its mirrors and (origin lost) the directory.
const CHECK_EVERY: Duration = Duration::from_secs(1);
/// An origin's event stream silent this long (its keep-alives come at most every 15 s) is
/// taken for a dead origin.
const STREAM_SILENCE: Duration = Duration::from_secs(45);
/// How long after a publisher joins or its tracks change the edge keeps asking the origin for
/// its simulcast layers, once per check (they arrive one by one); never otherwise, so an edge
/// does not read a large room's whole admin view every second.
const LAYER_WATCH: Duration = Duration::from_secs(5);
/// How long a viewer's POST waits for the cascade's first roster before it is served anyway
/// (its slots fill when the mirrors arrive).
pub const FIRST_ROSTER_WAIT: Duration = Duration::from_secs(3);

/// A running cascade, as the cluster keeps it.
pub struct CascadeHandle {
    /// True once the origin's first roster has been mirrored.
    pub synced: watch::Receiver<bool>,
}

/// What the origin says a publisher is.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sender {
    pub(crate) name: String,
    pub(crate) joined_at: SystemTime,
}

/// Starts the cascade of `room` from the origin at `origin`.
pub(crate) fn spawn(cluster: &Arc<Cluster>, room: RoomId, origin: String) -> Arc<CascadeHandle> {
    let (synced_tx, synced) = watch::channel(false);
    let handle = Arc::new(CascadeHandle { synced });
    tokio::spawn(run(Arc::downgrade(cluster), room, origin, synced_tx));
    handle
}

async fn run(
    cluster: Weak<Cluster>,
    room: RoomId,
    mut origin: String,
    synced: watch::Sender<bool>,
) {
    tracing::info!(%room, %origin, "cascade started");
    let mut mirrors: HashMap<ParticipantId, Mirror> = HashMap::new();
    loop {
        let Some(c) = cluster.upgrade() else { return };
        let why = follow(&c, &room, &origin, &mut mirrors, &synced).await;
        if matches!(why, Stop::Idle) {
            // Gone from the map first: a player arriving now starts a new cascade instead
            // of joining this ending one.
            c.cascade_ended(&room);
        }
        for (_, m) in mirrors.drain() {
            c.end_mirror(&m).await;
        }
        match why {
            Stop::Idle => break,
            Stop::OriginLost(e) => {
                tracing::warn!(%room, %origin, "cascade lost its origin: {e}");
            }
        }
        // Whom to follow now: wait for the room to have a live owner again.
        match next_origin(&c, &room).await {
            Some(o) => origin = o,
            None => break,
        }
        drop(c);
    }
    if let Some(c) = cluster.upgrade() {
        c.cascade_ended(&room);
    }
    tracing::info!(%room, "cascade ended");
}

enum Stop {
    /// No viewer on this node for the grace.
    Idle,
    /// The origin's event stream ended or could not be opened.
    OriginLost(String),
}

/// Follows the origin's room events, keeping a mirror per publisher, until the
/// origin goes or this node's viewers have been gone for the grace.
async fn follow(
    c: &Arc<Cluster>,
    room: &RoomId,
    origin: &str,
    mirrors: &mut HashMap<ParticipantId, Mirror>,
    synced: &watch::Sender<bool>,
) -> Stop {
    let url = format!("{origin}{}", crate::http::paths::room_events(room.as_str()));
    let resp = match c.internal(c.http.get(&url)).send().await {
        Ok(r) if r.status().is_success() => r,
        Ok(r) => return Stop::OriginLost(format!("events: {}", r.status())),
        Err(e) => return Stop::OriginLost(format!("events: {e}")),
    };
    let mut resp = resp;
    let mut frames = Frames::default();
    let mut senders: HashMap<ParticipantId, Sender> = HashMap::new();
    // Each publisher's simulcast layers on the origin (none: one stream), from its admin API:
    // a layered publisher is pulled as one upstream leg per layer.
    let mut layers: HashMap<ParticipantId, Vec<String>> = HashMap::new();
    // Who speaks on the origin, and how loud: the origin's voice detector decides for the
    // edge too (the edge's upstream carries no audio levels), told again each check so the
    // edge's plan does not time the speaker out.
    let mut voices: HashMap<ParticipantId, (bool, u8)> = HashMap::new();
    let mut check = tokio::time::interval(CHECK_EVERY);
    let mut idle_since: Option<tokio::time::Instant> = None;
    let mut watch_layers_until = tokio::time::Instant::now() + LAYER_WATCH;
    loop {
        tokio::select! {
            chunk = tokio::time::timeout(STREAM_SILENCE, resp.chunk()) => match chunk {
                Err(_) => return Stop::OriginLost("its event stream went silent".into()),
                Ok(chunk) => match chunk {
                Ok(Some(bytes)) => {
                    let mut changed = false;
                    for (event, data) in frames.push(&bytes) {
                        changed |= apply(&mut senders, &event, &data);
                        if matches!(event.as_str(), "roster" | "joined" | "tracks") {
                            watch_layers_until = tokio::time::Instant::now() + LAYER_WATCH;
                        }
                        if event == "speaking" {
                            voice(&mut voices, &data);
                            speak(c, room, &voices);
                        }
                    }
                    voices.retain(|p, _| senders.contains_key(p));
                    if changed {
                        layers = c.layers(origin, room).await.unwrap_or(layers);
                        reconcile(c, room, origin, &senders, &layers, mirrors).await;
                        synced.send_replace(true);
                    }
                }
                Ok(None) => return Stop::OriginLost("events ended".into()),
                Err(e) => return Stop::OriginLost(format!("events: {e}")),
                },
            },
            _ = check.tick() => {
                speak(c, room, &voices);
                // A mirror whose upstream failed is gone from the sessions, and a publisher's
                // layers arrive one by one: start again what changed.
                // The directory may know first that the origin is gone (a host that died
                // without closing its connections) or that the room moved.
                match c.owner(room).await {
                    Ok(Some(Placement::There { url, .. })) if url == origin => {}
                    Ok(_) => return Stop::OriginLost("the directory names another owner".into()),
                    Err(_) => {} // Redis away: keep following what still flows
                }
                let broken = mirrors.values().any(|m| !m.alive(&c.sfu))
                    || senders.keys().any(|p| !mirrors.contains_key(p));
                if broken {
                    watch_layers_until = tokio::time::Instant::now() + LAYER_WATCH;
                }
                let now = if senders.is_empty() {
                    HashMap::new()
                } else if tokio::time::Instant::now() < watch_layers_until {
                    c.layers(origin, room).await.unwrap_or_else(|| layers.clone())
                } else {
                    layers.clone()
                };
                if broken || now != layers {
                    layers = now;
                    reconcile(c, room, origin, &senders, &layers, mirrors).await;
                }
                let viewers = watchers(c, room).await;
                match (viewers, idle_since) {
                    (0, None) => idle_since = Some(tokio::time::Instant::now()),
                    (0, Some(t)) if t.elapsed() >= IDLE_GRACE => return Stop::Idle,
                    (0, Some(_)) => {}
                    _ => idle_since = None,
                }
            }
        }
    }
}

/// Starts a mirror for each publisher without one (or whose layers changed, or whose
/// upstream failed) and ends those of publishers that left.
async fn reconcile(
    c: &Arc<Cluster>,
    room: &RoomId,
    origin: &str,
    senders: &HashMap<ParticipantId, Sender>,
    layers: &HashMap<ParticipantId, Vec<String>>,
    mirrors: &mut HashMap<ParticipantId, Mirror>,
) {
    let stale: Vec<ParticipantId> = mirrors
        .iter()
        .filter(|(p, m)| {
            !senders.contains_key(*p)
                || !m.alive(&c.sfu)
                || m.layers != layers.get(*p).cloned().unwrap_or_default()
        })
        .map(|(p, _)| p.clone())
        .collect();
    for p in stale {
        if let Some(m) = mirrors.remove(&p) {
            c.end_mirror(&m).await;
        }
    }
    for (p, s) in senders {
        if mirrors.contains_key(p) {
            continue;
        }
        let want = layers.get(p).cloned().unwrap_or_default();
        match c.start_mirror(room, origin, p, s, want).await {
            Ok(m) => {
                mirrors.insert(p.clone(), m);
            }
            Err(e) => tracing::warn!(%room, participant = %p, "mirror not started: {e}"),
        }
    }
}

/// Applies one origin event to the set of publishers; true if it may have changed. Every
/// publisher is mirrored, sending yet or not: its upstream session gets its tracks when they
/// arrive on the origin, and `/whep/{room}/{participant}` finds it here from its join.
fn apply(senders: &mut HashMap<ParticipantId, Sender>, event: &str, data: &str) -> bool {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(data) else {
        return false;
    };
    let sender = |p: &serde_json::Value| Sender {
        name: p["name"].as_str().unwrap_or("guest").to_owned(),
        joined_at: SystemTime::UNIX_EPOCH
            + Duration::from_millis(p["joined_at"].as_u64().unwrap_or(0)),
    };
    let id = |p: &serde_json::Value| ParticipantId::parse(p["id"].as_str()?).ok();
    match event {
        "roster" => {
            senders.clear();
            for p in v["participants"].as_array().into_iter().flatten() {
                if let Some(i) = id(p) {
                    senders.insert(i, sender(p));
                }
            }
            true
        }
        "joined" => {
            let p = &v["participant"];
            id(p).is_some_and(|i| senders.insert(i, sender(p)).is_none())
        }
        "left" => id(&v).is_some_and(|i| senders.remove(&i).is_some()),
        _ => false,
    }
}

/// Who watches the room on this node: its players and its event streams' subscribers.
async fn watchers(c: &Cluster, room: &RoomId) -> usize {
    match c.sfu.room(room) {
        Some(r) => r.local_viewers().await + r.subscriber_count(),
        None => 0,
    }
}

/// Tells the edge's room who speaks on the origin, as its voice detector would.
fn speak(c: &Cluster, room: &RoomId, voices: &HashMap<ParticipantId, (bool, u8)>) {
    let Some(r) = c.sfu.room(room) else { return };
    for (p, &(speaking, loudness)) in voices {
        r.offer(crate::sfu::room::Command::Voice {
            publisher: p.clone(),
            speaking,
            loudness,
        });
    }
}

/// Applies an origin `speaking` event to who speaks.
fn voice(voices: &mut HashMap<ParticipantId, (bool, u8)>, data: &str) {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(data) else {
        return;
    };
    let Some(id) = v["id"].as_str().and_then(|i| ParticipantId::parse(i).ok()) else {
        return;
    };
    let level = v["level"].as_u64().unwrap_or(0).min(127) as u8;
    voices.insert(id, (v["speaking"].as_bool().unwrap_or(false), level));
}

/// Asks the directory (every [`CHECK_EVERY`]) until the room has a live owner that is not this
/// node (its URL), or becomes this node's or loses its viewers here (`None`).
async fn next_origin(c: &Arc<Cluster>, room: &RoomId) -> Option<String> {
    let mut idle_since: Option<tokio::time::Instant> = None;
    loop {
        tokio::time::sleep(CHECK_EVERY).await;
        if watchers(c, room).await == 0 {
            let t = *idle_since.get_or_insert_with(tokio::time::Instant::now);
            if t.elapsed() >= IDLE_GRACE {
                return None;
            }
        } else {
            idle_since = None;
        }
        match c.owner(room).await {
            Ok(Some(Placement::There { url, .. })) => return Some(url),
            Ok(Some(Placement::Here)) => return None,
            // No live owner yet (its node died and no publisher has come back), or Redis
            // is away: ask again.
            Ok(None) | Err(_) => {}
        }
    }
}

/// Server-sent events split into (event, data) as bytes arrive; a frame is decoded whole, so
/// a character split across chunks stays whole.
#[derive(Default)]
struct Frames {
    buf: Vec<u8>,
}

impl Frames {
    fn push(&mut self, bytes: &[u8]) -> Vec<(String, String)> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        while let Some(end) = self.buf.windows(2).position(|w| w == b"\n\n") {
            let frame: Vec<u8> = self.buf.drain(..end + 2).collect();
            let frame = String::from_utf8_lossy(&frame);
            let (mut event, mut data) = (String::new(), String::new());
            for line in frame.lines() {
                if let Some(e) = line.strip_prefix("event:") {
                    event = e.trim().to_owned();
                } else if let Some(d) = line.strip_prefix("data:") {
                    data.push_str(d.trim_start());
                }
            }
            if !event.is_empty() {
                out.push((event, data));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_character_split_across_chunks_stays_whole() {
        let mut f = Frames::default();
        let frame = "event: joined\ndata: {\"name\":\"Zoë\"}\n\n".as_bytes();
        let cut = frame.iter().position(|&b| b == 0xc3).unwrap() + 1;
        assert!(f.push(&frame[..cut]).is_empty());
        assert_eq!(f.push(&frame[cut..])[0].1, "{\"name\":\"Zoë\"}");
    }

    #[test]
    fn frames_split_across_chunks() {
        let mut f = Frames::default();
        assert!(f.push(b"event: roster\ndata: {\"a\":").is_empty());
        let got = f.push(b"1}\n\n: keep-alive\n\nevent: left\ndata: {}\n\n");
        assert_eq!(
            got,
            vec![
                ("roster".into(), "{\"a\":1}".into()),
                ("left".into(), "{}".into())
            ]
        );
    }

    #[test]
    fn the_publishers_follow_the_origins_events() {
        let mut s = HashMap::new();
        let p1 = "aaaaaaaa";
        let roster = format!(
            r#"{{"type":"roster","participants":[{{"id":"{p1}","name":"Ann","joined_at":5,"audio":true,"video":false,"speaking":false}}],"activeSpeaker":null}}"#
        );
        assert!(apply(&mut s, "roster", &roster));
        let ann = &s[&ParticipantId::parse(p1).unwrap()];
        assert_eq!(ann.name, "Ann");
        assert_eq!(
            ann.joined_at,
            SystemTime::UNIX_EPOCH + Duration::from_millis(5)
        );
        let joined = r#"{"type":"joined","participant":{"id":"bbbbbbbb","name":"Bo","joined_at":6,"audio":false,"video":false,"speaking":false}}"#;
        assert!(apply(&mut s, "joined", joined), "mirrored before it sends");
        assert!(!apply(&mut s, "joined", joined), "once");
        assert_eq!(s.len(), 2);
        assert!(apply(&mut s, "left", r#"{"type":"left","id":"bbbbbbbb"}"#));
        assert_eq!(s.len(), 1);
        assert!(!apply(&mut s, "speaking", r#"{"id":"x"}"#));
        assert!(!apply(&mut s, "roster", "not json"));
    }
}
